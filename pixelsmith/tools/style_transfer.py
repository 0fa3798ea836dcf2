"""style-transfer: repaint init_image in the style of style_image.

Embedded: neural style transfer by optimisation over the VGG16 layers of the packaged HED weights, 1 MP out.
"""

from __future__ import annotations

from pixelsmith.tools.base import (
    Field,
    ImageInput,
    NegativePrompt,
    OutputFormat,
    Prompt,
    Seed,
    Tool,
    ToolRequest,
    ToolResult,
    rules,
)


class StyleTransferRequest(ToolRequest):
    init_image: ImageInput(rules.STANDARD_ASPECT, "The image to restyle.")
    style_image: ImageInput(rules.STANDARD, "The image whose style to apply.")
    prompt: str = Prompt("", description="Optional description of the result")
    negative_prompt: str | None = NegativePrompt()
    style_strength: float = Field(1.0, ge=0, le=1, description="How strongly the style is applied")
    composition_fidelity: float = Field(
        0.9, ge=0, le=1, description="How closely the composition of init_image is kept"
    )
    change_strength: float = Field(0.9, ge=0.1, le=1, description="How much the original image may change")
    seed: int = Seed()
    output_format: OutputFormat = Field("png", description="Format of the output image")


TOOL = Tool(
    name="style-transfer",
    group="control",
    title="Style Transfer",
    request=StyleTransferRequest,
    rest_path="/v2beta/stable-image/control/style-transfer",
    bedrock_model="stability.stable-style-transfer-v1:0",
    summary="Applies the style of style_image to init_image, keeping its composition.",
)


# Embedded recipe: Gatys-style optimisation over HED's VGG16 features (pixelsmith/engines/embedded/style.py holds
# the method and documents how style_strength, composition_fidelity and change_strength map onto it).
SCHEDULE = None  # None: style.Schedule()'s scales and iterations; tests set a shorter one
NOTE = "embedded engine: optimisation-based neural style transfer; prompt and negative_prompt have no effect"


@TOOL.recipe("embedded", models=["hed", "realesr-animevideov3-x4"], priority=10, progress_unit="iteration")
def style_transfer(req: StyleTransferRequest, ctx) -> ToolResult:
    from pixelsmith.engines.embedded.style import transfer, weights  # torch: imported only when used

    result = transfer(
        ctx.session("hed"),
        req.init_image,
        req.style_image,
        style_strength=req.style_strength,
        composition_fidelity=req.composition_fidelity,
        change_strength=req.change_strength,
        seed=ctx.seed,
        schedule=SCHEDULE,
        upscaler=ctx.session("realesr-animevideov3-x4"),
        progress=ctx.progress,
    )
    content_w, style_w = weights(req.style_strength, req.composition_fidelity)
    return ToolResult(
        result.image,
        seed=ctx.seed,
        metadata={
            "note": NOTE,
            "content_weight": round(content_w, 5),
            "style_weight": round(style_w, 5),
            "losses": {k: round(v, 5) for k, v in result.losses.items()},
            "stage_seconds": result.seconds,
        },
    )
