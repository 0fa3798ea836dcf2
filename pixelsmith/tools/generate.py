"""generate: text-to-image and image-to-image in the role of SD3.5, Stable Image Core and Ultra.

One tool serves the three REST routes and the Bedrock text-to-image models;
``model`` says which role a request plays (the routes and model IDs set it).
"""

from __future__ import annotations

from typing import Annotated, Literal

from PIL import Image
from pydantic import model_validator

from pixelsmith.tools.base import (
    AspectRatio,
    Field,
    ImageField,
    NegativePrompt,
    OutputFormat,
    Prompt,
    Seed,
    StylePreset,
    Tool,
    ToolRequest,
    rules,
)

GenerateModel = Literal["sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium", "sd3.5-flash", "ultra", "core"]


class GenerateRequest(ToolRequest):
    prompt: str = Prompt()
    negative_prompt: str | None = NegativePrompt()
    aspect_ratio: AspectRatio = Field("1:1", description="Aspect ratio of the output (text-to-image)")
    model: GenerateModel = Field("sd3.5-large", description="Which model role: SD3.5 variants, ultra or core")
    mode: Literal["text-to-image", "image-to-image"] | None = Field(
        None, description="text-to-image, or image-to-image with image and strength (inferred from image if absent)"
    )
    image: Annotated[Image.Image, ImageField(rules.GENERATE_INIT, "Starting image for image-to-image.")] | None = None
    strength: float | None = Field(
        None, ge=0, le=1, description="image-to-image: 0 keeps the image, 1 ignores it (default 0.35)"
    )
    cfg_scale: float | None = Field(None, ge=1, le=10, description="Prompt adherence (default 4; 1 for turbo/flash)")
    seed: int = Seed()
    output_format: OutputFormat = Field("png", description="Format of the output image")
    style_preset: StylePreset | None = Field(None, description="Guides the image towards a style")

    @model_validator(mode="after")
    def _mode(self) -> GenerateRequest:
        if self.mode == "image-to-image" and self.image is None:
            raise ValueError("image-to-image needs an image")
        return self

    @property
    def image_to_image(self) -> bool:
        return self.image is not None and self.mode != "text-to-image" or self.mode == "image-to-image"

    @property
    def effective_strength(self) -> float:
        return 0.35 if self.strength is None else self.strength

    @property
    def effective_cfg(self) -> float:
        if self.cfg_scale is not None:
            return self.cfg_scale
        return 1.0 if self.model in ("sd3.5-large-turbo", "sd3.5-flash") else 4.0


TOOL = Tool(
    name="generate",
    group="generate",
    title="Generate",
    request=GenerateRequest,
    rest_path="/v2beta/stable-image/generate/sd3",
    bedrock_model="stability.sd3-5-large-v1:0",
    summary="Text-to-image and image-to-image (SD3.5 Large/Medium/Turbo, Core, Ultra roles).",
)
