"""What every tool is made of: a typed request model, a Tool entry, and recipes.

The request models are the single source of truth for fields: the CLI flags,
both HTTP APIs, the jobs API and the studio forms are all generated from them.
Image fields are declared with :func:`ImageInput`, which carries the field's size
rule and decodes untrusted bytes safely during validation.
"""

from __future__ import annotations

import base64
import io
import pathlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, get_args, get_origin

from PIL import Image
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, ValidationError, WithJsonSchema
from pydantic_core import PydanticCustomError

from pixelsmith.errors import FieldProblem, InvalidRequest, PixelsmithError
from pixelsmith.imaging import rules
from pixelsmith.imaging.decode import b64decode_field, decode_image

OutputFormat = Literal["png", "jpeg", "webp"]
StylePreset = Literal[
    "3d-model",
    "analog-film",
    "anime",
    "cinematic",
    "comic-book",
    "digital-art",
    "enhance",
    "fantasy-art",
    "isometric",
    "line-art",
    "low-poly",
    "modeling-compound",
    "neon-punk",
    "origami",
    "photographic",
    "pixel-art",
    "tile-texture",
]
AspectRatio = Literal["21:9", "16:9", "3:2", "5:4", "1:1", "4:5", "2:3", "9:16", "9:21"]
GROUPS = ("edit", "upscale", "control", "generate")

MAX_SEED = 4_294_967_295  # Bedrock's text-to-image pages allow 4294967295; REST stops one below
MAX_PROMPT = 10_000


def Seed(description: str = "0 or omitted = random; the same seed and request give the same image") -> Any:
    return Field(0, ge=0, le=MAX_SEED, description=description)


def Prompt(default: Any = ..., description: str = "What you want to see in the output image") -> Any:
    return Field(default, min_length=0, max_length=MAX_PROMPT, description=description)


def NegativePrompt() -> Any:
    return Field(None, max_length=MAX_PROMPT, description="What you do not want to see in the output image")


def _to_pil(rule: rules.ImageRule) -> Callable[[Any, Any], Image.Image]:
    def convert(value: Any, info: Any = None) -> Image.Image:
        name = getattr(info, "field_name", None) or "image"
        try:
            return coerce_image(value, name, rule)
        except InvalidRequest as exc:
            problem = exc.problems[0]
            raise PydanticCustomError(problem.code, "{msg}", {"msg": problem.message}) from None

    return convert


def coerce_image(value: Any, field_name: str, rule: rules.ImageRule) -> Image.Image:
    """Accept PIL images, bytes, base64 text (Bedrock) or a file path (CLI, Python API)."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]  # the AWS Erase sample's trailing comma sends ["<b64>"]; be lenient
    if isinstance(value, Image.Image):
        rule.check(field_name, *value.size)
        from pixelsmith.imaging.decode import normalise

        return normalise(value.copy())
    if isinstance(value, pathlib.Path):
        try:
            value = value.read_bytes()
        except OSError as exc:
            raise InvalidRequest.one(field_name, f"cannot read file: {exc.strerror}", "unreadable_file") from None
    elif isinstance(value, str):
        value = b64decode_field(field_name, value.strip())
    elif isinstance(value, (bytearray, memoryview)):
        value = bytes(value)
    if not isinstance(value, bytes):
        raise InvalidRequest.one(field_name, "must be an image (bytes, base64 text or a file)", "not_an_image")
    return decode_image(value, field=field_name, rule=rule)


def _png_b64(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def ImageInput(rule: rules.ImageRule, description: str) -> Any:
    """An image field type: decoded on validation, schema'd as a binary file."""
    schema = {
        "type": "string",
        "format": "binary",
        "contentMediaType": "image/*",
        "description": f"{description} PNG, JPEG or WebP; {rule.describe()}.",
        "x-image-rule": {
            "min_side": rule.min_side,
            "max_side": rule.max_side,
            "min_pixels": rule.min_pixels,
            "max_pixels": rule.max_pixels,
            "max_aspect": rule.max_aspect,
        },
    }
    return Annotated[
        Image.Image,
        BeforeValidator(_to_pil(rule)),
        PlainSerializer(_png_b64, return_type=str, when_used="json"),
        WithJsonSchema(schema),
    ]


class ToolRequest(BaseModel):
    """Base of every tool's request: unknown fields are refused, numbers may arrive as text."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, str_strip_whitespace=False)

    @classmethod
    def image_fields(cls) -> list[str]:
        return [n for n, f in cls.model_fields.items() if _is_image(f)]

    @classmethod
    def primary_image(cls) -> str | None:
        names = cls.image_fields()
        for preferred in ("image", "init_image"):
            if preferred in names:
                return preferred
        return names[0] if names else None

    @classmethod
    def parse(cls, data: dict[str, Any], tool_name: str = "") -> ToolRequest:
        """Validate, turning pydantic's errors into one typed InvalidRequest."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise request_error(exc, cls, tool_name) from None


def _is_image(info: Any) -> bool:
    def walk(tp: Any) -> bool:
        if tp is Image.Image:
            return True
        if get_origin(tp) is Annotated:
            return walk(get_args(tp)[0])
        return any(walk(arg) for arg in get_args(tp))

    return walk(info.annotation)


def request_error(exc: ValidationError, model: type[ToolRequest], tool_name: str) -> InvalidRequest:
    problems: list[FieldProblem] = []
    accepted = list(model.model_fields)
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or ""
        kind = err["type"]
        if kind == "extra_forbidden":
            msg = (
                f"Invalid field '{loc}' in request. Available fields for {tool_name or 'this tool'} are: "
                + ", ".join(accepted)
            )
            problems.append(FieldProblem("", msg, "unknown_field"))
        elif kind == "missing":
            problems.append(FieldProblem(loc, "is required", "required"))
        else:
            problems.append(FieldProblem(loc, err["msg"], kind))
    error_cls = InvalidRequest
    if any(p.code == "image_too_large" for p in problems):
        from pixelsmith.errors import ImageTooLarge

        error_cls = ImageTooLarge
    return error_cls(problems, accepted_fields=accepted)


@dataclass
class ToolResult:
    """What a recipe returns: the image plus what the caller should know about it."""

    image: Image.Image
    seed: int = 0
    finish_reason: str = "SUCCESS"
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Recipe:
    """How one engine serves one tool: the models it needs and the steps to run."""

    engine: str
    models: tuple[str, ...]
    run: Callable[..., ToolResult]
    priority: int = 0  # higher wins when several engines can serve a tool
    note: str = ""
    progress_unit: str = "step"  # what the recipe's ctx.progress(done, total) counts: tile, level, iteration...


@dataclass
class Tool:
    name: str
    group: str
    title: str
    request: type[ToolRequest]
    rest_path: str
    bedrock_model: str | None = None  # base model id, without the inference-profile prefix
    rest_async: bool = False
    summary: str = ""
    needs: str = ""  # what serves this tool when no recipe is installed (shown by `pixelsmith tools`)
    recipes: dict[str, Recipe] = field(default_factory=dict)

    def recipe(
        self,
        engine: str,
        *,
        models: tuple[str, ...] | list[str] = (),
        priority: int = 0,
        note: str = "",
        progress_unit: str = "step",
    ):
        """Decorator: register ``fn(request, ctx) -> ToolResult`` as this tool's recipe on ``engine``.
        ``progress_unit`` names what its ``ctx.progress(done, total)`` counts (shown as "Tile 3 of 16")."""

        def register(fn: Callable[..., ToolResult]) -> Callable[..., ToolResult]:
            self.recipes[engine] = Recipe(engine, tuple(models), fn, priority, note, progress_unit)
            return fn

        return register

    def parse(self, data: dict[str, Any]) -> ToolRequest:
        return self.request.parse(data, self.name)


__all__ = [
    "AspectRatio",
    "Field",
    "ImageInput",
    "MAX_SEED",
    "NegativePrompt",
    "OutputFormat",
    "PixelsmithError",
    "Prompt",
    "Recipe",
    "Seed",
    "StylePreset",
    "Tool",
    "ToolRequest",
    "ToolResult",
    "coerce_image",
    "rules",
]
