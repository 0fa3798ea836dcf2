"""Amazon Bedrock ``InvokeModel`` adapter: JSON with base64 images in, ``{seeds, finish_reasons, images}`` out.

Errors carry ``x-amzn-ErrorType`` and ``{"message": ...}`` so botocore raises the
exception class Bedrock would. Unknown fields are refused (ValidationException
listing the accepted fields), as Bedrock does. A model this server knows but
cannot run (its weights are not installed) is a ValidationException whose
message names the model and the command that installs it.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pixelsmith.api import model_ids
from pixelsmith.api.auth import ApiKey, SigV4Rejected, current_key
from pixelsmith.api.bodies import parse_json
from pixelsmith.errors import (
    Busy,
    FieldProblem,
    Forbidden,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PixelsmithError,
    RateLimited,
    ToolUnavailable,
    Unauthorized,
    UnknownModel,
    Unprocessable,
)
from pixelsmith.tools import get_tool

ERROR_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.bedrock/"
FILTER_REASON = {"CONTENT_FILTERED": "Filter reason: output image"}


# -- errors ---------------------------------------------------------------------
def classify(exc: Exception) -> tuple[int, str]:
    """(HTTP status, Bedrock exception name) for any error."""
    if isinstance(exc, SigV4Rejected):
        return 403, exc.aws_code
    if isinstance(exc, PayloadTooLarge):
        return 413, "ValidationException"
    if isinstance(exc, (InvalidRequest, ToolUnavailable, Unprocessable)):
        return 400, "ValidationException"
    if isinstance(exc, (UnknownModel, NotFound)):
        return 404, "ResourceNotFoundException"
    if isinstance(exc, RateLimited):
        return 429, "ThrottlingException"
    if isinstance(exc, Busy):
        return 503, "ServiceUnavailableException"
    if isinstance(exc, (Unauthorized, Forbidden)):
        return 403, "AccessDeniedException"
    if isinstance(exc, StarletteHTTPException):
        return exc.status_code, "ResourceNotFoundException" if exc.status_code == 404 else "ValidationException"
    return 500, "InternalServerException"


def message_for(exc: Exception) -> str:
    if isinstance(exc, InvalidRequest):
        unknown = [p for p in exc.problems if p.code == "unknown_field"]
        if unknown:  # Bedrock passes Stability's own JSON detail through as the message
            return json.dumps({"detail": unknown[0].message})
        lines = "; ".join(exc.details)
        return f"Malformed input request: {lines}, please reformat your input and try again."
    if isinstance(exc, PixelsmithError) and exc.status < 500 or isinstance(exc, Busy):
        return exc.message
    if isinstance(exc, StarletteHTTPException):
        return str(exc.detail)
    return "The server encountered an internal error while processing the request."


def error_response(exc: Exception, request_id: str) -> JSONResponse:
    status, name = classify(exc)
    headers = {"x-amzn-ErrorType": f"{name}:{ERROR_NAMESPACE}", "x-amzn-RequestId": request_id}
    if isinstance(exc, (RateLimited, Busy)):
        headers["retry-after"] = str(max(1, round(exc.retry_after + 0.5)))
    return JSONResponse({"message": message_for(exc)}, status_code=status, headers=headers)


# -- requests -------------------------------------------------------------------
def read_fields(body: bytes, content_type: str, target: model_ids.ModelTarget) -> dict[str, Any]:
    ctype = content_type.split(";")[0].strip().lower()
    if ctype and ctype not in ("application/json", "*/*"):
        raise InvalidRequest.one(
            "", f"Content-Type {ctype} is not supported; the body must be JSON (application/json)", "bad_content_type"
        )
    data = parse_json(body)  # InvalidRequest (400) when not JSON or nested too deeply
    if not isinstance(data, dict):
        raise InvalidRequest.one("", "the body must be a JSON object", "bad_json")
    tool = get_tool(target.tool)
    accepted = [f for f in tool.request.model_fields if f not in target.fixed]
    for name in data:
        if name not in accepted:
            message = f"Invalid field '{name}' in request. Available fields for {tool.name} are: " + ", ".join(accepted)
            raise InvalidRequest([FieldProblem("", message, "unknown_field")], accepted_fields=accepted)
    return {**data, **target.fixed}


def router() -> APIRouter:
    api = APIRouter(tags=["Amazon Bedrock InvokeModel"])

    @api.post(
        "/model/{model_id:path}/invoke",
        summary="InvokeModel (Stability image models)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"type": "object", "description": "The model's fields; images as base64 strings"}
                    }
                },
            }
        },
    )
    async def invoke(model_id: str, request: Request, key: ApiKey | None = Depends(current_key)) -> Response:
        request.state.route = "/model/{modelId}/invoke"
        target = model_ids.resolve(model_id)
        request.state.model = target.model_id
        body = await request.body()  # bounded by the 25 MB body limit; parsed off the event loop
        fields = await anyio.to_thread.run_sync(read_fields, body, request.headers.get("content-type", ""), target)
        out = await request.app.state.service.run(
            target.tool,
            fields,
            request.headers.get("x-pixelsmith-engine") or None,
            getattr(request.state, "caller", None),
            request=request,
            owner=key.id if key else None,
            route=f"/model/{target.model_id}/invoke",
        )
        request.state.tool_seconds = out.seconds
        reason = FILTER_REASON.get(out.finish_reason)
        answer: dict[str, Any] = (
            {"finish_reasons": [reason]}
            if reason
            else {"seeds": [out.seed], "finish_reasons": [None], "images": [base64.b64encode(out.data).decode()]}
        )
        return Response(
            json.dumps(answer),
            media_type="application/json",
            headers={"x-amzn-RequestId": request.state.request_id, "x-pixelsmith-tool-seconds": f"{out.seconds:.6f}"},
        )

    return api
