"""Stability REST v2beta adapter: multipart in, raw image or JSON out, ``{id, name, errors}`` on failure.

Unknown form fields are ignored (lenient; their names come back in the
``x-pixelsmith-ignored-fields`` header), so scripts written for Stability's API
keep working when they send a field pixelsmith does not know.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from pixelsmith.api.auth import ApiKey, current_key
from pixelsmith.core import Output
from pixelsmith.errors import InvalidRequest, NotFound, PixelsmithError, RateLimited, Unauthorized
from pixelsmith.imaging.encode import mime_for
from pixelsmith.tools import all_tools, get_tool
from pixelsmith.tools.base import Tool

INTERNAL = "An unexpected server error has occurred, please try again later."
NOT_FOUND = "id: the generation either does not exist or has expired."
SD3_MODELS = ("sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium", "sd3.5-flash")
SD3_RENAMED = {"sd3-large": "sd3.5-large", "sd3-large-turbo": "sd3.5-large-turbo", "sd3-medium": "sd3.5-medium"}
MAX_FIELDS = 64
MAX_FILES = 8
MAX_TEXT_PART = 1024 * 1024  # a text field (a prompt is at most 10,000 characters)


# -- errors ---------------------------------------------------------------------
def error_name(exc: PixelsmithError, path: str) -> str:
    if isinstance(exc, InvalidRequest):
        return "bad_request"  # Stability names every 400 so, whatever the field
    if isinstance(exc, NotFound) and "/result" in path:
        return "generation_not_found"
    return exc.code


def error_body(request_id: str, status: int, name: str, errors: list[str]) -> tuple[int, dict[str, Any]]:
    return status, {"id": request_id, "name": name, "errors": errors or [name]}


def error_response(exc: Exception, request_id: str, path: str = "") -> JSONResponse:
    headers: dict[str, str] = {}
    if isinstance(exc, PixelsmithError) and exc.status < 500:
        status, body = error_body(request_id, exc.status, error_name(exc, path), exc.details)
        if isinstance(exc, RateLimited):
            headers["retry-after"] = str(max(1, round(exc.retry_after + 0.5)))
        if isinstance(exc, Unauthorized):
            headers["www-authenticate"] = "Bearer"
    elif isinstance(exc, PixelsmithError) and exc.status == 503:
        status, body = error_body(request_id, 503, exc.code, exc.details)
        headers["retry-after"] = str(max(1, round(getattr(exc, "retry_after", 5.0) + 0.5)))
    elif isinstance(exc, StarletteHTTPException):
        name = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
        status, body = error_body(request_id, exc.status_code, name, [str(exc.detail)])
    else:  # never a stack trace on the wire; the access log has the request id
        status, body = error_body(request_id, 500, "internal_error", [INTERNAL])
    return JSONResponse(body, status_code=status, headers=headers)


# -- requests -------------------------------------------------------------------
async def read_fields(request: Request, tool: Tool, fixed: dict[str, Any]) -> dict[str, Any]:
    """The multipart form as request-model fields: files as bytes, unknown names dropped."""
    ctype = request.headers.get("content-type", "").lower()
    if not ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        raise InvalidRequest.one(
            "content-type", "must be multipart/form-data (send images as file parts)", "bad_content_type"
        )
    try:
        form = await request.form(max_files=MAX_FILES, max_fields=MAX_FIELDS, max_part_size=MAX_TEXT_PART)
    except StarletteHTTPException as exc:
        raise InvalidRequest.one("body", f"malformed multipart body: {exc.detail}", "malformed_multipart") from None
    model_fields = tool.request.model_fields
    fields: dict[str, Any] = {}
    ignored: list[str] = []
    try:
        for name, value in form.multi_items():
            if name not in model_fields or name in fixed or name in fields:
                if name not in fields and name not in fixed:
                    ignored.append(name)
                continue
            if isinstance(value, UploadFile):
                fields[name] = await value.read()
            elif value == "" and _drop_empty(model_fields[name]):
                continue  # an empty optional field means "not sent"
            else:
                fields[name] = value
    finally:
        await form.close()
    request.state.ignored_fields = ignored
    return {**fields, **fixed}


def _drop_empty(info: Any) -> bool:
    return not info.is_required() and not isinstance(info.default, str)


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "").lower()


def render(out: Output, as_json: bool, extra: dict[str, str] | None = None) -> Response:
    return render_image(out.data, out.format, out.seed, out.finish_reason, as_json, extra)


def render_image(
    data: bytes,
    fmt: str,
    seed: int,
    finish_reason: str,
    as_json: bool,
    extra: dict[str, str] | None = None,
    *,
    poll: bool = False,
) -> Response:
    """An image as Stability answers it: raw bytes with seed and finish-reason headers, or JSON."""
    headers = dict(extra or {})
    mime = mime_for(fmt)
    if as_json:
        body = {"image": base64.b64encode(data).decode(), "seed": seed, "finish_reason": finish_reason}
        if poll:  # ComfyUI's Stability nodes read a finished poll's image from `result`; others read `image`
            body["result"] = body["image"]
        return Response(json.dumps(body), media_type=f"application/json; type={mime}", headers=headers)
    headers.update({"seed": str(seed), "finish-reason": finish_reason})
    return Response(data, media_type=mime, headers=headers)


# ComfyUI's Stability API nodes (comfy_api_nodes) call these routes under this prefix, against the base
# URL given by ComfyUI's --comfy-api-base: the same requests, so the same routes answer them.
PROXY_PREFIX = "/proxy/stability/v2beta/"


class ProxyPrefix:
    """ASGI middleware: ``/proxy/stability/v2beta/...`` is served as ``/v2beta/...`` (auth, limits, errors,
    metrics and logs included: it runs before everything else)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PROXY_PREFIX):
            path = "/v2beta/" + scope["path"][len(PROXY_PREFIX) :]
            scope = {**scope, "path": path, "raw_path": path.encode()}
        await self.app(scope, receive, send)


# -- routes ---------------------------------------------------------------------
def router() -> APIRouter:
    api = APIRouter(tags=["Stability REST v2beta"])
    for tool in all_tools():
        if tool.name == "generate":
            continue
        _add(api, tool, tool.rest_path, {})
    generate = get_tool("generate")
    _add(api, generate, "/v2beta/stable-image/generate/ultra", {"model": "ultra"})
    _add(api, generate, "/v2beta/stable-image/generate/core", {"model": "core"})
    _add(api, generate, "/v2beta/stable-image/generate/sd3", None)

    @api.get("/v2beta/results/{gen_id}", summary="Poll an asynchronous generation (creative upscale)")
    async def results(gen_id: str, request: Request, key: ApiKey | None = Depends(current_key)) -> Response:
        return _poll(request, gen_id, key)

    @api.get("/v2beta/stable-image/upscale/creative/result/{gen_id}", summary="Poll creative upscale (legacy path)")
    async def legacy_result(gen_id: str, request: Request, key: ApiKey | None = Depends(current_key)) -> Response:
        return _poll(request, gen_id, key)

    return api


def _add(api: APIRouter, tool: Tool, path: str, fixed: dict[str, Any] | None) -> None:
    schema = _form_schema(tool, fixed)
    summary = f"{tool.title}{' (asynchronous: returns an id)' if tool.rest_async else ''}"

    async def endpoint(request: Request, key: ApiKey | None = Depends(current_key)) -> Response:
        request.state.route = path
        request.state.model = tool.name
        fields = await read_fields(request, tool, fixed if fixed is not None else {})
        if fixed is None:  # the sd3 route: the model form field picks the SD3.5 variant
            model = SD3_RENAMED.get(fields.get("model", "sd3.5-large"), fields.get("model", "sd3.5-large"))
            if model not in SD3_MODELS:
                raise InvalidRequest.one("model", f"must be one of {', '.join(SD3_MODELS)}", "literal_error")
            fields["model"] = model
        extra = (
            {"x-pixelsmith-ignored-fields": ",".join(request.state.ignored_fields)}
            if request.state.ignored_fields
            else {}
        )
        service = request.app.state.service
        if tool.rest_async:
            gen_id = await service.submit(
                tool.name, fields, key.id if key else None, getattr(request.state, "caller", None)
            )
            return JSONResponse({"id": gen_id}, headers=extra)
        out = await service.run(
            tool.name,
            fields,
            request.headers.get("x-pixelsmith-engine") or None,
            getattr(request.state, "caller", None),
            request=request,
            owner=key.id if key else None,
            route=path,
        )
        request.state.tool_seconds = out.seconds
        extra["x-pixelsmith-tool-seconds"] = f"{out.seconds:.6f}"
        return render(out, wants_json(request), extra)

    endpoint.__name__ = "rest_" + path.rsplit("/v2beta/stable-image/", 1)[-1].replace("/", "_").replace("-", "_")
    api.add_api_route(
        path,
        endpoint,
        methods=["POST"],
        summary=summary,
        description=tool.summary,
        openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}},
        responses={
            200: {"content": {"image/*": {}, "application/json": {}}, "description": "The image"},
            400: {"description": "Invalid parameters: `{id, name, errors[]}`"},
            413: {"description": "Body over 10 MiB"},
            429: {"description": "Rate limited"},
        },
    )


def _form_schema(tool: Tool, fixed: dict[str, Any] | None) -> dict[str, Any]:
    schema = tool.request.model_json_schema()
    schema.pop("$defs", None)
    for name in fixed or {}:
        schema.get("properties", {}).pop(name, None)
        if name in schema.get("required", []):
            schema["required"].remove(name)
    return schema


def _poll(request: Request, gen_id: str, key: ApiKey | None) -> Response:
    request.state.route = "/v2beta/results/{id}"
    result = request.app.state.service.result(gen_id, key.id if key else None)
    if result is None:
        raise NotFound(NOT_FOUND)
    request.state.model = result.tool
    if result.status == "in-progress":
        return JSONResponse({"id": gen_id, "status": "in-progress"}, status_code=202)
    if result.status == "failed":
        err = result.error or {"status": 500, "name": "internal_error", "errors": [INTERNAL]}
        status, body = error_body(request.state.request_id, err["status"], err["name"], err["errors"])
        return JSONResponse(body, status_code=status)
    return render_image(
        result.data(),
        result.format or "png",
        result.seed or 0,
        result.finish_reason or "SUCCESS",
        wants_json(request),
        poll=True,
    )


__all__ = ["error_response", "render", "render_image", "router"]
