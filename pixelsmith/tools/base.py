"""What every tool is made of: a typed request model and a Tool entry.

The request models are the single source of truth for fields: the CLI flags,
both HTTP APIs, the jobs API and the studio forms are all generated from them.
Image fields are declared as ``Annotated[Image.Image, ImageField(rule, description)]``:
type checkers see a PIL image, and pydantic decodes untrusted bytes safely during
validation under the field's size rule.

How an engine serves a tool (its recipe) is not here: it is in
``pixelsmith/engines/<engine>/recipes/<tool>.py``. This package imports nothing from ``engines``.
"""

from __future__ import annotations

import base64
import io
import pathlib
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args, get_origin

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, GetJsonSchemaHandler, ValidationError
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

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


@dataclass(frozen=True)
class ImageField:
    """Marks an ``Annotated[Image.Image, ...]`` field as an uploaded image with a size rule.

    Validation accepts what :func:`coerce_image` accepts and returns a normalised PIL image; the JSON
    schema is a binary file with the rule under ``x-image-rule`` (the CLI, studio and OpenAPI read it).
    """

    rule: rules.ImageRule
    description: str

    def _validate(self, value: Any, info: core_schema.ValidationInfo) -> Image.Image:
        try:
            return coerce_image(value, info.field_name or "image", self.rule)
        except InvalidRequest as exc:
            problem = exc.problems[0]
            raise PydanticCustomError(problem.code, "{msg}", {"msg": problem.message}) from None

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.with_info_plain_validator_function(
            self._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                _png_b64, return_schema=core_schema.str_schema(), when_used="json"
            ),
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        rule = self.rule
        return {
            "type": "string",
            "format": "binary",
            "contentMediaType": "image/*",
            "description": f"{self.description} PNG, JPEG or WebP; {rule.describe()}.",
            "x-image-rule": {
                "min_side": rule.min_side,
                "max_side": rule.max_side,
                "min_pixels": rule.min_pixels,
                "max_pixels": rule.max_pixels,
                "max_aspect": rule.max_aspect,
            },
        }


class ToolRequest(BaseModel):
    """Base of every tool's request: unknown fields are refused, numbers may arrive as text."""

    # defer_build: a request model's validator is built on its first use, not when its module is imported, so
    # listing the 14 tools (`pixelsmith tools`) does not build 14 validators (~50 ms, bench/startup.py)
    model_config = ConfigDict(
        extra="forbid", arbitrary_types_allowed=True, str_strip_whitespace=False, defer_build=True
    )

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


# pydantic prefixes the message of a ValueError/AssertionError raised in a validator with its kind; the
# front doors show the validator's own words ("at least one of left, right ... must be non-zero").
_PREFIXES = {"value_error": "Value error, ", "assertion_error": "Assertion failed, "}


def _clean(msg: str, kind: str) -> str:
    prefix = _PREFIXES.get(kind)
    return msg[len(prefix) :] if prefix and msg.startswith(prefix) else msg


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
            problems.append(FieldProblem(loc, _clean(err["msg"], kind), kind))
    error_cls = InvalidRequest
    if any(p.code == "image_too_large" for p in problems):
        from pixelsmith.errors import ImageTooLarge

        error_cls = ImageTooLarge
    return error_cls(problems, accepted_fields=accepted)


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

    def parse(self, data: dict[str, Any]) -> ToolRequest:
        return self.request.parse(data, self.name)


__all__ = [
    "AspectRatio",
    "Field",
    "ImageField",
    "MAX_SEED",
    "NegativePrompt",
    "OutputFormat",
    "PixelsmithError",
    "Prompt",
    "Seed",
    "StylePreset",
    "Tool",
    "ToolRequest",
    "coerce_image",
    "rules",
]
