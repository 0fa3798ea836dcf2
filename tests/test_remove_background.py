"""remove-background on the notebook's three people photos, scored against hand-seeded references."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from conftest import ROOT
from PIL import Image

import pixelsmith
from bench.quality.remove_background import edge_width
from pixelsmith.engines.embedded import matting

PHOTOS = {  # photo -> the IoU it must reach (measured: 0.971, 0.962, 0.956; see docs/quality.md)
    "remove_background_input.png": 0.95,
    "inpainting_input_image.png": 0.94,
    "search_and_recolor_input.png": 0.93,
}


@pytest.fixture(scope="module")
def results(embedded_models):
    return {name: pixelsmith.run("remove-background", image=ROOT / "samples" / name) for name in PHOTOS}


@pytest.mark.parametrize("name", list(PHOTOS))
def test_subject_kept_whole_background_transparent(results, name):
    out = results[name]
    assert out.image.mode == "RGBA" and out.image.size == (1024, 1024)
    alpha = np.asarray(out.image.getchannel("A"), dtype=np.float32) / 255.0
    ref = np.asarray(Image.open(ROOT / "tests/data/refs" / name.replace(".png", ".mask.png"))) >= 128
    fg = alpha >= 0.5
    iou = (fg & ref).sum() / (fg | ref).sum()
    assert iou >= PHOTOS[name], f"IoU {iou:.3f}"
    # Far from the subject the background is fully transparent.
    far = cv2.dilate(ref.astype(np.uint8), np.ones((61, 61), np.uint8)) == 0
    assert (alpha[far] < 0.02).mean() > 0.99
    # Deep inside the subject it is fully opaque.
    core = cv2.erode(ref.astype(np.uint8), np.ones((31, 31), np.uint8)).astype(bool)
    assert (alpha[core] > 0.98).mean() > 0.92  # measured 0.93-1.0; the references have small errors


def test_edges_are_soft(results):
    # Hair and edges get intermediate alpha, not a hard cut-out.
    alpha = np.asarray(results["remove_background_input.png"].image.getchannel("A"))
    assert ((alpha > 5) & (alpha < 250)).sum() > 2000


def test_rgb_outside_the_soft_band_is_the_input(results):
    src = np.asarray(Image.open(ROOT / "samples" / "remove_background_input.png").convert("RGB"))
    out = np.asarray(results["remove_background_input.png"].image)
    alpha = out[..., 3]
    soft = ((alpha > 0) & (alpha < 255)).astype(np.uint8)
    away = cv2.dilate(soft, np.ones((7, 7), np.uint8)) == 0  # the band is grown by 2 px
    assert (out[..., :3][away] == src[away]).all()
    assert (out[..., :3][alpha == 255] == src[alpha == 255]).mean() > 0.999


BACKDROPS = {"green": (0, 255, 0), "magenta": (255, 0, 255)}


def _backdrop_hue(rgb: np.ndarray, backdrop: str) -> np.ndarray:
    """How far a colour leans toward the backdrop: G - (R+B)/2 for green, the opposite for magenta."""
    lean = rgb[..., 1] - (rgb[..., 0] + rgb[..., 2]) / 2
    return lean if backdrop == "green" else -lean


@pytest.fixture(scope="module")
def over_backdrops(embedded_models):
    """The hair photo with a known soft alpha (ISNet's own matte of it) over green and over magenta, cut out."""
    src = Image.open(ROOT / "samples" / "remove_background_input.png").convert("RGB")
    truth = np.asarray(pixelsmith.run("remove-background", image=src).image.getchannel("A"), np.float32) / 255
    fg = np.asarray(src, np.float32)
    cut = {}
    for name, colour in BACKDROPS.items():
        a = truth[..., None]
        comp = np.clip(fg * a + np.array(colour, np.float32) * (1 - a) + 0.5, 0, 255).astype(np.uint8)
        out = pixelsmith.run("remove-background", image=Image.fromarray(comp)).image
        cut[name] = np.asarray(out.convert("RGB"), np.float32)
    band = (truth > 0.1) & (truth < 0.9)  # the semi-transparent hair and edges, ~7000 px
    return fg, cut, band


def test_edge_colours_do_not_depend_on_the_backdrop(over_backdrops):
    # Measured: mean |green - magenta| over the band 38 (blur-fusion), 113 with the composite's own colours.
    _fg, cut, band = over_backdrops
    diff = np.abs(cut["green"] - cut["magenta"]).mean(axis=-1)[band]
    assert diff.mean() < 55, f"{diff.mean():.1f}"


@pytest.mark.parametrize("backdrop", list(BACKDROPS))
def test_edges_do_not_show_the_backdrop_hue(over_backdrops, backdrop):
    # Lean toward the backdrop's hue beyond the photo's own, mean over the band. Measured: green 1, magenta 20
    # (blur-fusion); 112 and 115 with the composite's own colours.
    fg, cut, band = over_backdrops
    excess = (_backdrop_hue(cut[backdrop], backdrop) - _backdrop_hue(fg, backdrop))[band]
    assert excess.mean() < 35, f"{excess.mean():.1f}"


def test_webp_keeps_transparency(embedded_models):
    small = Image.open(ROOT / "samples" / "remove_background_input.png").resize((256, 256))
    out = pixelsmith.run("remove-background", image=small, output_format="webp")
    back = Image.open(io.BytesIO(out.data))
    assert back.format == "WEBP" and back.mode == "RGBA"
    assert np.asarray(back.getchannel("A")).min() == 0


# Edge refinement at the input resolution. 256-px crops (1024 coordinates) of the hair photo: windblown strands over
# orange leaves; pale blonde hair on white sky (where colours cannot separate them); the sweater's shoulder; of the
# dark suit photo: the trousers on the night street; of the jacket photo: the left sleeve on snow. On the last two
# the colour test mostly refuses (dark on dark, blue on blue-white) and the solid-edge curve does the work.
HAIR, SUIT, JACKET = "remove_background_input.png", "inpainting_input_image.png", "search_and_recolor_input.png"
CROPS = {
    "strands": (HAIR, 600, 400),
    "pale": (HAIR, 340, 430),
    "shoulder": (HAIR, 240, 560),
    "trousers": (SUIT, 400, 760),
    "sleeve": (JACKET, 230, 560),
}
CROP, ENLARGE = 256, 3


@pytest.fixture(scope="module")
def enlarged_crops(results):
    """Per crop: a 3x version with crisp edges (fast-upscale x4, Lanczos to 3x, as the bench's 3072-px photos), the
    1024 matte's crop enlarged bilinearly (what the recipe had at 3072 px before refine_edges), the reference."""
    side = CROP * ENLARGE
    out = {}
    for tag, (name, x, y) in CROPS.items():
        src = Image.open(ROOT / "samples" / name).convert("RGB")
        alpha = results[name].image.getchannel("A")
        ref = np.asarray(Image.open(ROOT / "tests/data/refs" / name.replace(".png", ".mask.png")))
        box = (x, y, x + CROP, y + CROP)
        up = pixelsmith.run("fast-upscale", image=src.crop(box)).image.convert("RGB")
        rgb = np.asarray(up.resize((side, side), Image.Resampling.LANCZOS))
        bilinear = np.asarray(alpha.crop(box).resize((side, side), Image.Resampling.BILINEAR), np.float32) / 255
        out[tag] = rgb, bilinear, ref[y : y + CROP, x : x + CROP]
    return out


def _refined(rgb: np.ndarray, bilinear: np.ndarray) -> np.ndarray:
    # The crop is 1/4 of a 1024-px network input, enlarged 3x: the network saw it at 256 px.
    return np.round(matting.refine_edges(rgb, bilinear, model_size=CROP) * 255) / 255


@pytest.mark.parametrize("tag", list(CROPS))
def test_refined_edges_are_narrower(enlarged_crops, tag):
    # Median 1/|grad alpha| over 0.3 < alpha < 0.7 at the reference edge, bilinear -> refined (px at 3x). Measured:
    # strands 10.54 -> 6.77, pale 7.35 -> 4.85, shoulder 5.83 -> 2.79, trousers 6.25 -> 4.24, sleeve 5.39 -> 2.55; per
    # unit of edge length 7.67 -> 4.17, 6.35 -> 3.53, 5.40 -> 2.51, 5.78 -> 3.29, 5.02 -> 2.39 (colour line alone,
    # before the solid-edge curve: strands 6.78 / 4.25, pale 5.91 / 4.50, shoulder 3.39 / 2.88).
    rgb, bilinear, ref = enlarged_crops[tag]
    refined = _refined(rgb, bilinear)
    before, after = edge_width(bilinear, ref), edge_width(refined, ref)
    assert after < 0.88 * before, f"{before:.2f} -> {after:.2f}"
    before, after = edge_width(bilinear, ref, per_length=True), edge_width(refined, ref, per_length=True)
    assert after < 0.8 * before, f"per length {before:.2f} -> {after:.2f}"


@pytest.mark.parametrize("tag", list(CROPS))
def test_refinement_keeps_the_subject(enlarged_crops, tag):
    rgb, bilinear, ref = enlarged_crops[tag]
    refined = _refined(rgb, bilinear)
    a, b = refined >= 0.5, bilinear >= 0.5
    assert (a & b).sum() / (a | b).sum() > 0.96  # measured: 0.987, 0.999, 0.999, 0.996, 0.999
    # No holes punched into the subject (pale hair on pale sky is where a colour model would cut): inside the
    # reference (shrunk 2 px at 1024), pixels lowered by more than 0.5. Measured: 0 in each crop (131 913, 480 987,
    # 406 539, 230 517, 384 075 px); with the matte allowed to be lowered up to 0.8 instead of 0.6, 147 in the
    # strands crop.
    inside = cv2.erode((ref >= 128).astype(np.uint8), np.ones((5, 5), np.uint8))
    inside = cv2.resize(inside, bilinear.shape[::-1], interpolation=cv2.INTER_NEAREST).astype(bool)
    assert ((refined < bilinear - 0.5) & inside).sum() < 0.002 * inside.sum()
    # Only the soft band changes: of the hard pixels next to it, hardly any move by more than 0.01 (the solid-edge
    # curve takes 0.995 to 1 on the trousers and sleeve, a move of 0.005). Measured: 0.01-0.09 % of them.
    hard = (bilinear <= 0.005) | (bilinear >= 0.995)
    assert (np.abs(refined - bilinear)[hard] > 0.01).mean() < 0.005


def test_matte_at_the_network_size_is_not_refined(results):
    alpha = np.asarray(results["remove_background_input.png"].image.getchannel("A"), np.float32) / 255
    rgb = np.asarray(Image.open(ROOT / "samples" / "remove_background_input.png").convert("RGB"))
    assert matting.refine_edges(rgb, alpha) is alpha  # 1024 px: the recipe's output is ISNet's own matte


@pytest.mark.parametrize("tag", ["trousers", "sleeve"])
def test_solid_edges_are_steepened_where_colours_refuse(enlarged_crops, tag):
    # Where the colour test refuses but ISNet's matte shows a solid edge, the ramp is steepened toward the photo's
    # own edge. Per unit of edge length, px at 3x: bilinear -> colour line only (the previous recipe) -> with the
    # solid-edge curve; measured: trousers 5.78 -> 4.55 -> 3.29, sleeve 5.02 -> 3.59 -> 2.39 (0.79x and 0.72x
    # the bilinear before, 0.57x and 0.48x now).
    rgb, bilinear, ref = enlarged_crops[tag]
    before, after = (
        edge_width(bilinear, ref, per_length=True),
        edge_width(_refined(rgb, bilinear), ref, per_length=True),
    )
    assert after < 0.65 * before, f"per length {before:.2f} -> {after:.2f}"


def test_single_strands_are_not_solid_edges(enlarged_crops):
    # The curve must leave single strands alone (ISNet gives them 0.3-0.6: they would vanish or turn into opaque
    # ribbons): no pixel of a thin structure of the network-size matte (mid alpha, nothing >= 0.9 within 3 px, i.e.
    # a strand whose peak is below 0.9) is taken for a solid edge. Measured: 0 of the strands crop's 1 478.
    _rgb, bilinear, _ref = enlarged_crops["strands"]
    small = cv2.resize(bilinear, (CROP, CROP), interpolation=cv2.INTER_AREA)
    thin = (small > matting.SURE_BG) & (small < 0.9) & (cv2.dilate(small, np.ones((7, 7), np.uint8)) < 0.9)
    assert thin.sum() > 500
    assert not (matting.clean_edges(small).astype(bool) & thin).any()
