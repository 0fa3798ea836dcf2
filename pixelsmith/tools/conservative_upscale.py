"""conservative-upscale: to about 4 MP, changing the image as little as possible."""
from __future__ import annotations

from pixelsmith.tools.base import (Field, ImageInput, NegativePrompt, OutputFormat, Prompt, Seed, Tool, ToolRequest,
                                   rules)


class ConservativeUpscaleRequest(ToolRequest):
    image: ImageInput(rules.STANDARD_ASPECT, "The image to upscale.")
    prompt: str = Prompt(description="What the image shows (guides diffusion refinement)")
    creativity: float = Field(0.35, ge=0.1, le=0.5, description="How much detail may be invented")
    negative_prompt: str | None = NegativePrompt()
    seed: int = Seed()
    output_format: OutputFormat = Field("png", description="Format of the output image")


TOOL = Tool(
    name="conservative-upscale", group="upscale", title="Conservative Upscale", request=ConservativeUpscaleRequest,
    rest_path="/v2beta/stable-image/upscale/conservative",
    bedrock_model="stability.stable-conservative-upscale-v1:0",
    summary="Upscales to about 4 megapixels while preserving the input.",
)
