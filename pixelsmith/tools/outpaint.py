"""outpaint: extend the canvas in any direction with content that continues the image."""

from __future__ import annotations

from pydantic import model_validator

from pixelsmith.tools.base import (
    Field,
    ImageInput,
    OutputFormat,
    Prompt,
    Seed,
    StylePreset,
    Tool,
    ToolRequest,
    ToolResult,
    rules,
)


class OutpaintRequest(ToolRequest):
    image: ImageInput(rules.STANDARD_ASPECT, "The image to extend.")
    left: int = Field(0, ge=0, le=2000, description="Pixels to add on the left")
    right: int = Field(0, ge=0, le=2000, description="Pixels to add on the right")
    up: int = Field(0, ge=0, le=2000, description="Pixels to add at the top")
    down: int = Field(0, ge=0, le=2000, description="Pixels to add at the bottom")
    creativity: float = Field(0.5, ge=0, le=1, description="How freely the new area may be invented")
    prompt: str = Prompt("", description="What to see in the new area (optional)")
    seed: int = Seed()
    output_format: OutputFormat = Field("png", description="Format of the output image")
    style_preset: StylePreset | None = Field(None, description="Guides the image towards a style")

    @model_validator(mode="after")
    def _one_direction(self):
        if not (self.left or self.right or self.up or self.down):
            raise ValueError("at least one of left, right, up, down must be non-zero")
        return self


TOOL = Tool(
    name="outpaint",
    group="edit",
    title="Outpaint",
    request=OutpaintRequest,
    rest_path="/v2beta/stable-image/edit/outpaint",
    bedrock_model="stability.stable-outpaint-v1:0",
    summary="Extends the image in any direction, continuing its content.",
)


@TOOL.recipe(
    "embedded",
    models=[],
    priority=5,
    progress_unit="level",
    note="embedded: exemplar-based completion (multi-scale PatchMatch); prompt and style_preset "
    "have no effect on this engine",
)
def outpaint_embedded(req: OutpaintRequest, ctx) -> ToolResult:
    """Grow the canvas, then synthesise the new margins from the image's own patches, coarse to fine.

    ``creativity`` loosens the preference for copying from content near the seam (0: the
    closest matching surroundings, 1: any matching patch of the image). The original
    pixels are placed back unchanged.
    """
    import numpy as np
    from PIL import Image

    from pixelsmith.engines.embedded.patchmatch import complete

    src = req.image.convert("RGB")
    w, h = src.size
    canvas = np.zeros((h + req.up + req.down, w + req.left + req.right, 3), np.uint8)
    inside = (slice(req.up, req.up + h), slice(req.left, req.left + w))
    canvas[inside] = np.asarray(src)
    hole = np.ones(canvas.shape[:2], bool)
    hole[inside] = False
    out = complete(canvas, hole, seed=ctx.seed, creativity=req.creativity, progress=ctx.progress)
    out[inside] = np.asarray(src)  # complete() never writes outside the hole; this makes it explicit
    meta = {"added": {"left": req.left, "right": req.right, "up": req.up, "down": req.down}}
    return ToolResult(Image.fromarray(out, "RGB"), seed=ctx.seed, metadata=meta)
