"""``POST /v1/segment``: click-to-select with Segment Anything (MobileSAM), a pixelsmith extension.

Request (JSON)::

    {"image": "<base64 PNG/JPEG/WebP>"}  or  {"image_id": "<id from an earlier reply>"}
    "points": [[x, y, label], ...]   pixel coordinates in the image; label 1 include, 0 exclude (default 1)
    "box": [x0, y0, x1, y1]          optional; points and/or a box are required
    "multimask": true | false        optional; default: SAM's rule (multimask choice for a lone click)

Reply 200::

    {"image_id": "<sha256 of the RGB bytes + size>", "mask": "<base64 PNG, mode L, 0/255, the image's size>",
     "score": <predicted IoU>, "size": [w, h], "seconds": <float>}

The image's embedding (the slow part, ~4 s) is cached per ``image_id`` (the last 8 images per server
process), so a further click that sends ``image_id`` costs only the prompt decoder (~0.3 s). An
``image_id`` that is not cached is 404: send the image again. Errors are in the jobs API's shape
(``{"error", "message", "details"}``); the same API key as ``/v1/jobs`` when auth is on.
"""

from __future__ import annotations

import asyncio
import base64
import io
import threading
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pixelsmith.errors import FieldProblem, InvalidRequest

# one segmentation at a time per process: each one already uses the configured threads
_RUN_LOCK = threading.Lock()


class SegmentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: str | None = Field(None, description="base64 PNG, JPEG or WebP (a data: URL prefix is accepted)")
    image_id: str | None = Field(None, description="the image_id of an earlier reply (its embedding is cached)")
    points: list[list[float]] = Field(default_factory=list, description="[[x, y, label], ...]; label 1 or 0")
    box: list[float] | None = Field(None, description="[x0, y0, x1, y1] in image pixels")
    multimask: bool | None = None


class SegmentReply(BaseModel):
    image_id: str
    mask: str
    score: float
    size: tuple[int, int]
    seconds: float


def _parse(body: Any) -> SegmentRequest:
    try:
        return SegmentRequest.model_validate(body)
    except ValidationError as exc:
        problems = [
            FieldProblem(".".join(str(p) for p in err["loc"]) or "body", err["msg"], "invalid") for err in exc.errors()
        ]
        raise InvalidRequest(problems) from None


def _run(req: SegmentRequest) -> SegmentReply:
    import pixelsmith
    from pixelsmith.imaging.decode import b64decode_field, decode_image

    if (req.image is None) == (req.image_id is None):
        raise InvalidRequest.one("image", "send either image (base64) or the image_id of an earlier reply")
    if not req.points and req.box is None:
        raise InvalidRequest.one("points", "give at least one point [x, y, label] or a box [x0, y0, x1, y1]")
    image = decode_image(b64decode_field("image", req.image)) if req.image is not None else None
    with _RUN_LOCK:
        seg = pixelsmith.segment(image, points=req.points, box=req.box, multimask=req.multimask, image_id=req.image_id)
    buf = io.BytesIO()
    seg.mask.save(buf, format="PNG", optimize=False)
    return SegmentReply(
        image_id=seg.image_id,
        mask=base64.b64encode(buf.getvalue()).decode("ascii"),
        score=round(seg.score, 4),
        size=seg.size,
        seconds=round(seg.seconds, 3),
    )


def make_router(key_dependency: Callable[..., Any] | None = None) -> APIRouter:
    """The ``/v1/segment`` router; ``key_dependency`` is the jobs API's (the server's API key check)."""
    if key_dependency is None:
        from pixelsmith.api.auth import current_key

        key_dependency = current_key
    router = APIRouter(tags=["Segment"])

    @router.post(
        "/v1/segment",
        summary="Select an object: points and/or a box -> a mask (MobileSAM; embedding cached per image)",
        response_model=SegmentReply,
    )
    async def segment(request: Request, key: Any = Depends(key_dependency)) -> SegmentReply:
        from pixelsmith.api.bodies import parse_json

        body = parse_json(await request.body(), field="body")  # 400 when not JSON or nested too deeply
        req = _parse(body)
        request.state.route = "/v1/segment"
        return await asyncio.to_thread(_run, req)

    return router
