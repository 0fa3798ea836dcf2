"""Steps the diffusers recipes share: style presets, the model family, masked inpainting, tiling.

Each recipe module stays a short, readable sequence of these steps. Every generative recipe is
declared with :func:`family_recipe` and runs on the family ``families.py`` chooses for its tool
(SD3.5 or SDXL); the steps here take that family's checkpoints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

from PIL import Image

from pixelsmith.engines.diffusers import components as C
from pixelsmith.engines.diffusers import pipelines as P
from pixelsmith.engines.diffusers._lazy import torch
from pixelsmith.engines.diffusers.families import SD35, Family, FamilyModels
from pixelsmith.engines.recipe import Context, Recipe, ToolResult, recipe
from pixelsmith.errors import Missing, ToolUnavailable
from pixelsmith.imaging.composite import composite
from pixelsmith.models import is_installed

if TYPE_CHECKING:  # numpy is imported inside the functions: listing the tools imports no numpy
    import numpy as np

BASE = SD35.base  # the preferred checkpoint (SD3.5 Large)
PRIORITY = 20  # above the embedded engine (10): with diffusion weights installed, these win


def family_recipe(
    tool: Any, roles: Sequence[str], extra: Sequence[str] = (), priority: int = PRIORITY
) -> Callable[[Callable[[Any, Context], ToolResult]], Recipe[Any]]:
    """``@recipe`` for a generative tool: its ``models`` are the chosen family's for ``roles`` plus ``extra``."""

    def declare(fn: Callable[[Any, Context], ToolResult]) -> Recipe[Any]:
        declared = recipe(tool, engine="diffusers", priority=priority)(fn)
        # A live sequence in place of the tuple: everything reading recipe.models sees the chosen family's.
        return dataclasses.replace(declared, models=cast(Any, FamilyModels(roles, extra)))

    return declare


def family(tool: Any) -> Family:
    """The family serving ``tool`` now (what its recipe's models were checked against)."""
    from pixelsmith.engines import ENGINES

    rec = ENGINES["diffusers"].recipe(tool.name)
    models = getattr(rec, "models", None)
    return models.family() if isinstance(models, FamilyModels) else SD35


@contextlib.contextmanager
def ip_adapter(pipe: Any, fam: Family, scale: float) -> Iterator[Any]:
    """The family's IP-Adapter attached to the pipeline's denoiser for one run."""
    if P.is_xl(fam.base):
        with P.ip_adapter_xl(pipe, fam.adapter, scale) as attached:
            yield attached
    else:
        assert fam.encoder is not None
        with P.ip_adapter(pipe, fam.adapter, fam.encoder, scale) as attached:
            yield attached


def min_strength(strength: float, steps: int) -> float:
    """diffusers' img2img and inpaint pipelines run int(steps x strength) steps and fail below one."""
    return max(strength, 1.0 / steps)


# style_preset -> (prompt template, negative prompt additions). docs/style-presets.md lists them.
STYLE_PRESETS: dict[str, tuple[str, str]] = {
    "3d-model": (
        "professional 3d model of {prompt}, octane render, highly detailed, volumetric, dramatic lighting",
        "ugly, deformed, noisy, low poly, blurry, painting",
    ),
    "analog-film": (
        "analog film photo of {prompt}, faded film, desaturated, 35mm photo, grainy, vignette, vintage, Kodachrome",
        "painting, drawing, illustration, cartoon, anime, 3d render",
    ),
    "anime": (
        "anime artwork of {prompt}, anime style, key visual, vibrant, studio anime, highly detailed",
        "photo, deformed, black and white, realism, disfigured, low contrast",
    ),
    "cinematic": (
        "cinematic film still of {prompt}, shallow depth of field, vignette, highly detailed, high budget, "
        "bokeh, cinemascope, moody, epic, film grain",
        "anime, cartoon, graphic, text, painting, crayon, sketch",
    ),
    "comic-book": (
        "comic book panel of {prompt}, graphic illustration, comic art, graphic novel art, vibrant, highly detailed",
        "photograph, deformed, glitch, noisy, realistic, stock photo",
    ),
    "digital-art": (
        "digital artwork of {prompt}, concept art, digital painting, highly detailed, trending on artstation",
        "photo, photorealistic, realism, ugly",
    ),
    "enhance": (
        "breathtaking {prompt}, award-winning, professional, highly detailed",
        "ugly, deformed, noisy, blurry, distorted, grainy",
    ),
    "fantasy-art": (
        "ethereal fantasy concept art of {prompt}, magnificent, celestial, painterly, epic, majestic, "
        "magical, fantasy art",
        "photographic, realistic, realism, 35mm film, dslr, cropped, frame, text",
    ),
    "isometric": (
        "isometric style {prompt}, vibrant, beautiful, crisp, detailed, ultra detailed, intricate",
        "deformed, mutated, ugly, disfigured, blur, blurry, noise, noisy, realistic, photographic",
    ),
    "line-art": (
        "line art drawing of {prompt}, professional, sleek, modern, minimalist, graphic, line art, vector graphics",
        "anime, photorealistic, 35mm film, deformed, glitch, blurry, noisy, realistic, painting",
    ),
    "low-poly": (
        "low-poly style {prompt}, low-poly game art, polygon mesh, jagged, blocky, wireframe edges, centered "
        "composition",
        "noisy, sloppy, messy, grainy, highly detailed, ultra textured, photo",
    ),
    "modeling-compound": (
        "play-doh style {prompt}, sculpture, clay art, centered composition, claymation",
        "sloppy, messy, grainy, highly detailed, ultra textured, photo",
    ),
    "neon-punk": (
        "neonpunk style {prompt}, cyberpunk, vaporwave, neon, vibes, vibrant, stunningly beautiful, crisp, "
        "detailed, sleek, ultramodern, magenta highlights, dark purple shadows, high contrast, cinematic",
        "painting, drawing, illustration, glitch, deformed, mutated, cross-eyed, ugly, disfigured",
    ),
    "origami": (
        "origami style {prompt}, paper art, pleated paper, folded, origami art, pleats, cut and fold, centered "
        "composition",
        "noisy, sloppy, messy, grainy, highly detailed, ultra textured, photo",
    ),
    "photographic": (
        "cinematic photo of {prompt}, 35mm photograph, film, bokeh, professional, 4k, highly detailed",
        "drawing, painting, crayon, sketch, graphite, impressionist, noisy, blurry, soft, deformed, ugly",
    ),
    "pixel-art": (
        "pixel-art {prompt}, low-res, blocky, pixel art style, 8-bit graphics",
        "sloppy, messy, blurry, noisy, highly detailed, ultra textured, photo, realistic",
    ),
    "tile-texture": (
        "{prompt}, seamless tileable texture, flat, top-down, evenly lit, repeating pattern",
        "perspective, vignette, shadow, border, frame, text",
    ),
}


def styled(prompt: str, negative: str | None, preset: str | None) -> tuple[str, str]:
    """The prompt and negative prompt with the style preset's template applied."""
    negative = negative or ""
    if not preset:
        return prompt, negative
    template, extra = STYLE_PRESETS[preset]
    text = template.format(prompt=prompt).strip(" ,") if prompt else template.replace("{prompt}", "").strip(" ,")
    return text, ", ".join(p for p in (negative, extra) if p)


def need(tool: str, *models: str) -> None:
    """Fail clearly when a model this request needs (beyond the recipe's own list) is missing."""
    absent = [m for m in models if not is_installed(m)]
    if absent:
        cmd = "pixelsmith models pull " + " ".join(absent)
        raise ToolUnavailable(tool, [Missing("diffusers", absent, cmd)])


def pick_base(tool: str, candidates: tuple[str, ...]) -> str:
    """The first installed checkpoint among ``candidates`` (best first)."""
    for name in candidates:
        if is_installed(name):
            return name
    need(tool, candidates[0])
    return candidates[0]


def cfg_for(base: str, requested: float | None = None) -> float:
    return requested if requested is not None else P.DEFAULTS.get(base, (28, 4.0))[1]


def run(pipe: Any, seed: int, **kwargs: Any) -> Image.Image:
    """One pipeline call, serialised with the others (they share components).

    The global RNG is seeded too (in a forked RNG state, so nothing outside
    changes): some pipelines draw without the generator, e.g. the SD3 ControlNet
    pipeline samples the control image's VAE latents.
    """
    devices = [C.device().index or 0] if C.device().type == "cuda" else []
    with C.RUN_LOCK, torch.inference_mode(), torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return pipe(**kwargs).images[0]


# --- masked inpainting at the working resolution, composited back at full resolution -------------


def crop_box(mask: np.ndarray, min_side: int, margin: float = 0.25) -> tuple[int, int, int, int]:
    """A box around the mask (with context around it) to diffuse instead of the whole image."""
    import numpy as np

    h, w = mask.shape
    ys, xs = np.nonzero(mask > 0)
    if len(xs) == 0:
        return 0, 0, w, h
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    pad = int(margin * max(x1 - x0, y1 - y0)) + 8
    x0, y0, x1, y1 = x0 - pad, y0 - pad, x1 + pad, y1 + pad
    # At least min_side on each axis (or the image), so the model sees enough surroundings.
    for lo, hi, size in ((0, 2, w), (1, 3, h)):
        box = [x0, y0, x1, y1]
        need_px = min(size, min_side) - (box[hi] - box[lo])
        if need_px > 0:
            box[lo] -= need_px // 2
            box[hi] += need_px - need_px // 2
        shift = max(0, -box[lo]) - max(0, box[hi] - size)
        box[lo], box[hi] = max(0, box[lo] + shift), min(size, box[hi] + shift)
        x0, y0, x1, y1 = box
    return int(x0), int(y0), int(x1), int(y1)


def inpaint(
    ctx: Context,
    image: Image.Image,
    mask: np.ndarray,
    prompt: str,
    negative: str,
    *,
    strength: float = 1.0,
    base: str = BASE,
    seed_offset: int = 0,
) -> Image.Image:
    """Repaint where ``mask`` > 0; everything else is the input, bit for bit."""
    import numpy as np

    original = image
    rgb = image.convert("RGB")
    pipe = P.build("inpaint", base)
    if P.is_xl(base):
        # The SD-XL inpainting card: "make sure to use strength below 1.0" (1.0 starts from pure noise
        # and ignores the masked image's latents that its extra UNet channels see).
        strength = min(strength, 0.99)
    x0, y0, x1, y1 = crop_box(mask, P.native_side(pipe) // 2)
    crop, crop_mask = rgb.crop((x0, y0, x1, y1)), mask[y0:y1, x0:x1]
    size = P.working_size(pipe, *crop.size)
    mask_img = Image.fromarray((np.clip(crop_mask, 0, 1) * 255 + 0.5).astype(np.uint8)).resize(
        size, Image.Resampling.BILINEAR
    )
    steps = P.steps_for(base)
    cfg = cfg_for(base)
    out = run(
        pipe,
        ctx.seed + seed_offset,
        image=crop.resize(size, Image.Resampling.LANCZOS),
        mask_image=mask_img,
        strength=min_strength(strength, steps),
        height=size[1],
        width=size[0],
        num_inference_steps=steps,
        generator=P.generator(ctx.seed, seed_offset),
        callback_on_step_end=P.progress_callback(ctx, steps),
        **P.prompt_kwargs(pipe, base, prompt, negative, cfg),
    )
    edited = rgb.copy()
    edited.paste(out.resize(crop.size, Image.Resampling.LANCZOS), (x0, y0))
    return composite(original, edited, mask)


# --- tiled refinement for the upscalers -------------------------------------------------------------


def tiles(size: tuple[int, int], tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    w, h = size

    def starts(n: int) -> list[int]:
        if n <= tile:
            return [0]
        count = math.ceil((n - overlap) / (tile - overlap))
        step = (n - tile) / (count - 1)
        return [int(round(i * step)) for i in range(count)]

    return [(x, y, min(x + tile, w), min(y + tile, h)) for y in starts(h) for x in starts(w)]


def tiled(image: Image.Image, tile: int, overlap: int, fn: Callable[[Image.Image, int], Image.Image]) -> Image.Image:
    """Run ``fn`` on overlapping tiles and blend them with linear ramps (no visible seams)."""
    import numpy as np

    w, h = image.size
    acc = np.zeros((h, w, 3), np.float64)
    weight = np.zeros((h, w, 1), np.float64)
    for i, (x0, y0, x1, y1) in enumerate(tiles(image.size, tile, overlap)):
        out = fn(image.crop((x0, y0, x1, y1)), i)
        if out.size != (x1 - x0, y1 - y0):
            out = out.resize((x1 - x0, y1 - y0), Image.Resampling.LANCZOS)
        ramp = _ramp(x1 - x0, y1 - y0, overlap, (x0 > 0, y0 > 0, x1 < w, y1 < h))
        acc[y0:y1, x0:x1] += np.asarray(out.convert("RGB"), np.float64) * ramp
        weight[y0:y1, x0:x1] += ramp
    return Image.fromarray(np.clip(acc / np.maximum(weight, 1e-8) + 0.5, 0, 255).astype(np.uint8))


def _ramp(w: int, h: int, overlap: int, sides: tuple[bool, bool, bool, bool]) -> np.ndarray:
    import numpy as np

    def axis(n: int, lo: bool, hi: bool) -> np.ndarray:
        r = np.ones(n)
        k = min(overlap, n // 2)
        if k > 0:
            edge = (np.arange(k) + 1) / (k + 1)
            if lo:
                r[:k] = edge
            if hi:
                r[n - k :] = edge[::-1]
        return r

    left, top, right, bottom = sides
    return (axis(h, top, bottom)[:, None] * axis(w, left, right)[None, :])[..., None]


def refine_tiles(
    ctx: Context,
    image: Image.Image,
    prompt: str,
    negative: str,
    strength: float,
    *,
    controlnet: str | None,
    base: str = BASE,
    blur_radius: float = 2.0,
) -> Image.Image:
    """Low-to-mid strength img2img over native-size tiles, each guided by the tile ControlNet (SD3.5: blur;
    SDXL: the tile ControlNet, through diffusers' ControlNet img2img pipeline, which has a strength)."""
    xl = P.is_xl(base)
    if controlnet:
        pipe = P.build("control-img2img" if xl else "control", base, controlnet)
    else:
        pipe = P.build("img2img", base)
    side = P.native_side(pipe)
    g = P.granularity(pipe)
    cfg = cfg_for(base)
    steps = P.steps_for(base)
    plan = tiles(image.size, side, side // 8)
    kept = max(1, int(round(steps * strength)))
    from pixelsmith.engines.diffusers import preprocess

    def one(tile: Image.Image, i: int) -> Image.Image:
        size = (max(g, tile.width // g * g), max(g, tile.height // g * g))
        done = i * kept
        cb = P.progress_callback(ctx, kept, done, kept * len(plan))
        common = dict(
            height=size[1], width=size[0], callback_on_step_end=cb, **P.prompt_kwargs(pipe, base, prompt, negative, cfg)
        )
        src = tile.resize(size, Image.Resampling.LANCZOS)
        if controlnet and xl:
            return run(
                pipe,
                ctx.seed + i,
                image=src,
                control_image=preprocess.blur(src, blur_radius),
                controlnet_conditioning_scale=0.9,
                strength=min_strength(strength, steps),
                num_inference_steps=steps,
                generator=P.generator(ctx.seed, i),
                **common,
            )
        if controlnet:
            start = P.img2img_start(pipe, src, strength, steps, ctx.seed + i, size)
            return run(
                pipe,
                ctx.seed + i,
                control_image=preprocess.blur(src, blur_radius),
                controlnet_conditioning_scale=0.9,
                **start,
                **common,
            )
        return run(
            pipe,
            ctx.seed + i,
            image=src,
            strength=min_strength(strength, steps),
            num_inference_steps=steps,
            generator=P.generator(ctx.seed, i),
            **common,
        )

    return tiled(image, side, side // 8, one)
