"""The services' image size rules, checked on the header before any decoding."""

from __future__ import annotations

from dataclasses import dataclass

from pixelsmith.errors import ImageTooLarge, InvalidRequest

# No image larger than this is ever decoded, whatever a rule says: it bounds the
# memory one request can take (16 MP of RGBA float32 is already ~256 MB).
HARD_MAX_PIXELS = 16_777_216
HARD_MAX_SIDE = 16_384


@dataclass(frozen=True)
class ImageRule:
    """Size limits for one image field, as the reference states them."""

    min_side: int = 64
    max_side: int = HARD_MAX_SIDE
    min_pixels: int = 4_096
    max_pixels: int = 9_437_184
    max_aspect: float | None = None  # e.g. 2.5 means 1:2.5 .. 2.5:1

    def describe(self) -> str:
        text = f"every side {self.min_side}..{self.max_side} px, {self.min_pixels:,}..{self.max_pixels:,} pixels"
        if self.max_aspect:
            text += f", aspect ratio 1:{self.max_aspect:g}..{self.max_aspect:g}:1"
        return text

    def check(self, field: str, width: int, height: int) -> None:
        pixels = width * height
        if pixels > min(self.max_pixels, HARD_MAX_PIXELS) or max(width, height) > self.max_side:
            raise ImageTooLarge.one(
                field,
                f"image is {width}x{height} = {pixels:,} pixels; the limit is {self.describe()}",
                "image_too_large",
            )
        if min(width, height) < self.min_side or pixels < self.min_pixels:
            raise InvalidRequest.one(
                field, f"image is {width}x{height}; it must have {self.describe()}", "image_too_small"
            )
        if self.max_aspect:
            ratio = max(width / height, height / width)
            if ratio > self.max_aspect + 1e-9:
                raise InvalidRequest.one(
                    field,
                    f"aspect ratio {width}:{height} is outside 1:{self.max_aspect:g}..{self.max_aspect:g}:1",
                    "bad_aspect_ratio",
                )


# The rules of the reference (§2-3), as the union of what REST and Bedrock accept
# (docs/api-choices.md says which reading was taken where they differ).
STANDARD = ImageRule()
STANDARD_ASPECT = ImageRule(max_aspect=2.5)
REMOVE_BACKGROUND = ImageRule()  # REST 4.19 MP, Bedrock 9.4 MP: the union
CREATIVE_UPSCALE = ImageRule(max_pixels=1_048_576)
FAST_UPSCALE = ImageRule(min_side=32, max_side=1_536, min_pixels=1_024, max_pixels=1_048_576)
GENERATE_INIT = ImageRule(max_side=16_384, max_pixels=HARD_MAX_PIXELS)
MASK = ImageRule(min_side=1, min_pixels=1, max_pixels=HARD_MAX_PIXELS)  # resized to the image anyway
