"""Search-and-recolor quality on real photos, against two naive baselines on the same masks.

For each case: the fraction of the object's pixels whose hue is within 20 degrees of the target's (and
visibly coloured, chroma >= 5), the correlation of the object's lightness with the input's (shading
kept = close to 1), how far the object's median lightness is from the target's (L_error), the largest
change outside the grown mask (must be 0) and, on the notebook photo,
the mean change inside hand-drawn regions that must not change (face, hair, both backpack straps,
background; tests/data/recolor_regions.json).

Baselines, given the very same grounded mask: "hsv" sets HSV hue to the target's and keeps S and V (the
usual quick recolour); "tint" blends the target colour over the object at 60% (a flat overlay).

    .venv/bin/python bench/quality/recolor.py            # prints the tables, writes the contact sheet
    .venv/bin/python bench/quality/recolor.py --quick    # the notebook case only
    .venv/bin/python bench/quality/recolor.py suit sweater   # only the cases on these photos

The contact sheet (inputs, masks, outputs) goes to bench/results/recolor_sheet.png.
"""

from __future__ import annotations

import json
import pathlib
import sys
import time

import cv2
import numpy as np
from PIL import Image, ImageDraw

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "samples" / "search_and_recolor_input.png"
REGIONS = ROOT / "tests" / "data" / "recolor_regions.json"
HUE_TOLERANCE = 20.0  # degrees of CIELAB hue


def regions(shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """The hand-drawn notebook regions as boolean masks."""
    out = {}
    for name, polys in json.loads(REGIONS.read_text()).items():
        if name.startswith("_"):
            continue
        m = np.zeros(shape, np.uint8)
        for poly in polys:
            cv2.fillPoly(m, [np.array(poly, np.int32)], 1)
        out[name] = m.astype(bool)
    return out


def lab(img) -> np.ndarray:
    return cv2.cvtColor(
        np.asarray(img.convert("RGB") if hasattr(img, "convert") else img, np.float32) / 255.0, cv2.COLOR_RGB2LAB
    )


def hue_fraction(result, where: np.ndarray, target_rgb: tuple[int, int, int]) -> float:
    """Share of ``where`` whose hue is within HUE_TOLERANCE of the target's, with chroma >= 5."""
    out = lab(result)[where]
    t = lab(np.array([[target_rgb]], np.uint8))[0, 0]
    hue = np.degrees(np.arctan2(out[:, 2], out[:, 1]))
    th = np.degrees(np.arctan2(t[2], t[1]))
    diff = np.abs((hue - th + 180.0) % 360.0 - 180.0)
    chroma = np.hypot(out[:, 1], out[:, 2])
    return float(((diff <= HUE_TOLERANCE) & (chroma >= 5.0)).mean())


def lightness_correlation(before, after, where: np.ndarray) -> float:
    a, b = lab(before)[..., 0][where], lab(after)[..., 0][where]
    return float(np.corrcoef(a, b)[0, 1])


def lightness_error(result, where: np.ndarray, target_rgb: tuple[int, int, int]) -> float:
    """How far the object's median lightness lands from the target colour's (pink is light, not dark magenta)."""
    t = lab(np.array([[target_rgb]], np.uint8))[0, 0, 0]
    return float(abs(np.median(lab(result)[..., 0][where]) - t))


def mean_change(before, after, where: np.ndarray) -> float:
    x = np.asarray(before.convert("RGB"), np.float32)[where]
    y = np.asarray(after.convert("RGB"), np.float32)[where]
    return float(np.abs(x - y).mean())


def baseline_hsv(image: Image.Image, mask: np.ndarray, rgb: tuple[int, int, int]) -> Image.Image:
    hsv = cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2HSV)
    th = cv2.cvtColor(np.array([[rgb]], np.uint8), cv2.COLOR_RGB2HSV)[0, 0, 0]
    out = hsv.copy()
    out[..., 0] = th
    new = cv2.cvtColor(out, cv2.COLOR_HSV2RGB)
    return _blend(image, new, mask)


def baseline_tint(image: Image.Image, mask: np.ndarray, rgb: tuple[int, int, int]) -> Image.Image:
    src = np.asarray(image.convert("RGB"), np.float32)
    new = 0.4 * src + 0.6 * np.array(rgb, np.float32)
    return _blend(image, np.clip(new + 0.5, 0, 255).astype(np.uint8), mask)


def _blend(image: Image.Image, new: np.ndarray, mask: np.ndarray) -> Image.Image:
    from pixelsmith.imaging.composite import composite

    return composite(image.convert("RGB"), Image.fromarray(new), mask)


PHOTOS = {"suit": "inpainting_input_image.png", "sweater": "search_and_replace_input.png"}  # notebook photos too
CASES = [
    # image, select_prompt, prompt
    ("notebook", "jacket", "pink jacket"),
    ("notebook", "jacket", "dark green jacket"),
    ("notebook", "jacket", "pastel yellow"),
    ("notebook", "hair", "platinum blonde"),
    ("suit", "jacket", "burgundy"),
    ("suit", "trousers", "beige"),
    ("suit", "shoes", "white"),
    ("sweater", "sweater", "navy blue"),
    ("sweater", "hair", "auburn"),
    ("chelsea", "cat", "purple"),
    ("coffee", "cup", "red"),
    ("astronaut", "the main object", "neon orange"),
]


def load(name: str) -> Image.Image:
    if name == "notebook":
        image = Image.open(NOTEBOOK).convert("RGB")
        image.info["notebook"] = True  # the hand-drawn regions apply
        return image
    if name in PHOTOS:
        return Image.open(ROOT / "samples" / PHOTOS[name]).convert("RGB")
    import skimage.data

    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")


def run_case(image: Image.Image, select: str, prompt: str) -> dict:
    from pixelsmith.core import run
    from pixelsmith.engines.embedded.colors import parse_color
    from pixelsmith.engines.embedded.grounding import ground
    from pixelsmith.imaging.masks import grow_mask

    started = time.perf_counter()
    out = run("search-and-recolor", {"image": image, "select_prompt": select, "prompt": prompt})
    seconds = time.perf_counter() - started
    found = ground(image, select)  # the same mask again, for the measures and the baselines
    obj = found.mask >= 0.5
    grown = grow_mask(found.mask, 3)
    target = parse_color(prompt).rgb
    rows = {}
    for method, result in (
        ("pixelsmith", out.image),
        ("hsv", baseline_hsv(image, grown, target)),
        ("tint", baseline_tint(image, grown, target)),
    ):
        rows[method] = {
            "hue_in_range": hue_fraction(result, obj, target),
            "lightness_corr": lightness_correlation(image, result, obj),
            "L_error": lightness_error(result, obj, target),
            "outside_max": float(
                np.abs(np.asarray(result, np.int16) - np.asarray(image, np.int16))[grown == 0].max(initial=0)
            ),
        }
        if image.size == (1024, 1024) and select == "jacket" and image.info.get("notebook"):
            for name, where in regions(obj.shape).items():
                if name == "jacket":
                    rows[method]["jacket_hue"] = hue_fraction(result, where, target)
                else:
                    rows[method][f"{name}_chg"] = mean_change(image, result, where)
    return {
        "seconds": seconds,
        "mask_fraction": float(obj.mean()),
        "rows": rows,
        "image": out.image,
        "mask": found.mask,
        "target": target,
    }


def contact_sheet(entries: list[tuple[str, Image.Image, np.ndarray, Image.Image]], path: pathlib.Path) -> None:
    tile = 256
    sheet = Image.new("RGB", (3 * tile, len(entries) * (tile + 18)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (label, before, mask, after) in enumerate(entries):
        y = i * (tile + 18)
        draw.text((4, y + 2), label, fill="black")
        m = Image.fromarray((np.clip(mask, 0, 1) * 255).astype(np.uint8))
        for j, im in enumerate((before, m.convert("RGB"), after)):
            thumb = im.copy()
            thumb.thumbnail((tile, tile))
            sheet.paste(thumb, (j * tile, y + 18))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def main() -> None:
    quick = "--quick" in sys.argv
    entries = []
    only = [a for a in sys.argv[1:] if not a.startswith("--")]
    cases = CASES[:1] if quick else [c for c in CASES if not only or c[0] in only]
    for name, select, prompt in cases:
        image = load(name)
        r = run_case(image, select, prompt)
        print(
            f"\n{name} / select {select!r} / prompt {prompt!r} -> {r['target']}  "
            f"({r['seconds']:.1f} s, mask {100 * r['mask_fraction']:.1f}% of the image)"
        )
        keys = list(r["rows"]["pixelsmith"])
        print(f"{'method':11s}" + "".join(f"{k:>15s}" for k in keys))
        for method, row in r["rows"].items():
            print(f"{method:11s}" + "".join(f"{row[k]:15.3f}" for k in keys))
        entries.append((f"{name}: {select} -> {prompt}", image, r["mask"], r["image"]))
    sheet = ROOT / "bench" / "results" / f"recolor_sheet{'-' + '-'.join(only) if only else ''}.png"
    contact_sheet(entries, sheet)
    print(f"\ncontact sheet: {sheet}")


if __name__ == "__main__":
    main()
