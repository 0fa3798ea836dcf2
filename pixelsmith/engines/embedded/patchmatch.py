"""Exemplar-based image completion: multi-scale PatchMatch with EM voting (Wexler et al. 2007,
Barnes et al. 2009), vectorised in numpy and OpenCV.

``complete(rgb, hole)`` fills the pixels where ``hole`` is True with patches copied
from the rest of the image, coarse to fine:

* a Gaussian-style pyramid is built until the hole is a few pixels thick, so the
  coarsest level decides the large-scale structure (where lines and regions go);
* at each level, every patch that overlaps the hole gets a nearest neighbour among
  the patches fully outside it (PatchMatch: jump-flood propagation from neighbours
  plus random search, all targets at once), then each hole pixel becomes the
  weighted vote of the overlapping patches' pixels (EM iterations);
* the nearest-neighbour field, not the image, is carried to the next finer level,
  so fine detail is copied from the finer source instead of upsampled blur.

Patch distances are taken in a PCA-reduced space of 7x7 Lab patches (each
component is one correlation filter), which makes every candidate test a gather of
a dozen floats per target instead of 147.  Levels with more than ``max_pixels``
target patches get a single cheap pass (short propagation, 3x3 voting), and so does a
coarser level with more than a quarter of that (the level it hands over to will be cheap),
which bounds time and memory for very large holes (outpaint): the structure is decided
at the levels below that size, the large levels only copy the detail.

A stroke that spills onto a neighbouring object would make the fill continue that object
into the hole; ``far_side`` finds such an object across a strong edge the hole's border
cuts, and its pixels are then never copied (``edges=True``, the erase tool's setting).

Work follows the hole, not the canvas: the preference for nearby sources means matches
come from the hole's neighbourhood (measured: 99.9 % of sources lie within 4 hole
thicknesses of the hole's bounding box, at creativity 0 and 0.3), so each group of holes
is completed on a crop of that neighbourhood (``LOCAL_MARGIN`` = 5 thicknesses, wider as
creativity loosens the preference; 5 keeps the whole-canvas figures: coarse PSNR -0.2 dB,
texture ratio equal, over 5 scenes x 3 seeds) and pasted back. A small hole in a large photo costs
what it costs in a small one.

Finally the seam is corrected across frequency bands: the mismatch between the
known pixels along the border and what the matched patches would put there is
interpolated into the hole by push-pull (a multi-resolution pyramid) and faded with
the distance from the border, so low-frequency colour steps at the seam vanish while
the copied texture is kept.

Nothing here touches pixels outside ``hole``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from pixelsmith.errors import Unprocessable

PATCH = 7
FEATURES = 12  # PCA components kept per patch
LOCAL_REACH = 8.0  # copy distance, in hole thicknesses, that costs one median patch distance
TEXTURE_WEIGHT = 12.0  # weight of the two local gradient-energy channels in the patch distance
FINAL_WINDOW, FINAL_SHARPNESS = 7, 4.0  # the last vote at full resolution
DETAIL_SIGMA = 1.5  # below this scale (pixels) the final detail is copied, not voted
FINE_COPY = True  # a large full-resolution level copies the carried matches without searching
LOCAL_MARGIN = 5.0  # context kept around a hole, in hole thicknesses (at creativity <= 0.3)
DETAIL_BAND = 256  # rows per band of the final detail transfer
# far_side(): the ring of known pixels it reads (px), and what makes a neighbour across a strong edge
EDGE_RING, EDGE_CONTRAST, EDGE_SEPARATION, EDGE_SHARPNESS = 6, 20.0, 3.0, 0.15
EDGE_SHARE, EDGE_MIN_AREA = (0.03, 0.45), 400
VOTE_CHUNK = 1 << 18  # hole pixels voted at a time (bounds the temporaries of a large outpaint)
Progress = Callable[[int, int], None]


@dataclass
class _Level:
    img: np.ndarray  # float32 HxWx5: RGB 0..1 and two texture channels (hole: current estimate)
    hole: np.ndarray  # bool HxW
    valid: np.ndarray  # bool HxW: patch centred here lies inside the image and outside the hole
    targets: np.ndarray  # bool HxW: patch centred here overlaps the hole
    far: np.ndarray | None = None  # bool HxW: known pixels across a strong edge the hole cuts (not copied)


def complete(
    rgb: np.ndarray,
    hole: np.ndarray,
    *,
    seed: int = 0,
    creativity: float = 0.3,
    max_pixels: int = 300_000,
    max_canvas: int = 6_000_000,
    progress: Progress | None = None,
    local: bool = True,
    edges: bool = True,
) -> np.ndarray:
    """Return ``rgb`` (uint8 HxWx3) with the ``hole`` pixels synthesised from the rest.

    ``creativity`` (0..1) loosens the preference for source patches near the target:
    0 copies from the closest matching surroundings, 1 lets any matching patch in the
    image be used. The same ``seed`` gives the same result. ``local`` (the default)
    works on crops around the holes (``work_regions``); False works on the whole canvas. ``edges`` (the
    default) keeps the fill from copying a neighbouring object that the hole cuts into (``far_side``).
    """
    hole = np.asarray(hole, dtype=bool)
    if not hole.any():
        return rgb.copy()
    kw = _Settings(seed, creativity, max_pixels, max_canvas, edges)
    regions, labels = work_regions(hole, creativity) if local else ([], None)
    if labels is None:
        return _complete_canvas(rgb, hole, kw, progress)
    out = rgb.copy()
    done = [0, 0]  # levels finished by earlier crops, levels of the current one

    def step(d: int, t: int) -> None:
        done[1] = t
        if progress:
            progress(done[0] + d, done[0] + t)

    for i, box in enumerate(regions, start=1):
        sub_hole = hole[box]  # every hole in the crop is filled (none is a source), ...
        try:
            sub = _complete_canvas(np.ascontiguousarray(rgb[box]), sub_hole, kw, step)
        except NothingToCopy:
            return _complete_canvas(rgb, hole, kw, progress)
        mine = sub_hole & (labels[box] == i)  # ... but only this group's pixels are kept from it
        out[box][mine] = sub[mine]
        done[0] += done[1]
    return out


def work_regions(hole: np.ndarray, creativity: float = 0.3) -> tuple[list[tuple[slice, slice]], np.ndarray | None]:
    """The crops ``complete`` works on: each group of holes with ``LOCAL_MARGIN`` hole thicknesses of
    context around it (wider as ``creativity`` loosens the locality preference), and the group label of
    every pixel; ``([whole canvas], None)`` when a neighbourhood would span the canvas anyway."""
    h, w = hole.shape
    u8 = hole.astype(np.uint8)
    thick = max(float(cv2.distanceTransform(u8, cv2.DIST_L2, 3).max()), 4.0)
    loosen = 0.7 / max(1.0 - float(np.clip(creativity, 0.0, 1.0)), 1e-3)
    margin = int(np.ceil(LOCAL_MARGIN * thick * max(1.0, loosen))) + PATCH
    margin = max(margin, 8 * PATCH)
    whole = [(slice(0, h), slice(0, w))]
    if 2 * margin >= min(h, w):
        return whole, None
    # Holes whose neighbourhoods overlap are completed together (one crop over their union).
    near = cv2.dilate(u8, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * margin + 1, 2 * margin + 1)))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(near, connectivity=8)
    # A crop must be large enough for the pyramid to reach the same coarsest level as the whole canvas
    # would (the level where the hole is a few pixels thick decides the structure).
    halvings = max(int(np.ceil(np.log2(thick / (PATCH // 2 + 1)))), 0)
    side = 4 * PATCH * 2**halvings + 2
    boxes = []
    for i in range(1, n):
        x, y, bw, bh = (int(v) for v in stats[i, :4])
        boxes.append((_span(y, bh, side, h), _span(x, bw, side, w)))
    area = sum((b[0].stop - b[0].start) * (b[1].stop - b[1].start) for b in boxes)
    if area > h * w // 2:  # cropping would save little: keep the canvas (and its exact result)
        return whole, None
    return boxes, labels


def _span(start: int, length: int, least: int, limit: int) -> slice:
    """``[start, start + length)`` widened evenly to at least ``least``, kept inside ``[0, limit)``."""
    grow = max(least - length, 0)
    lo = max(start - grow // 2, 0)
    hi = min(max(start + length + grow - grow // 2, lo + least), limit)
    return slice(max(min(lo, hi - least), 0), hi)


@dataclass(frozen=True)
class _Settings:
    seed: int
    creativity: float
    max_pixels: int
    max_canvas: int
    edges: bool = True


def _complete_canvas(rgb: np.ndarray, hole: np.ndarray, kw: _Settings, progress: Progress | None) -> np.ndarray:
    seed, creativity, max_pixels, max_canvas = kw.seed, kw.creativity, kw.max_pixels, kw.max_canvas
    h, w = hole.shape
    if h * w > max_canvas:
        return _complete_reduced(
            rgb,
            hole,
            max_canvas,
            seed=seed,
            creativity=creativity,
            max_pixels=max_pixels,
            progress=progress,
            edges=kw.edges,
        )
    known = ~cv2.dilate(hole.astype(np.uint8), np.ones((PATCH, PATCH), np.uint8)).astype(bool)
    known[: PATCH // 2, :] = known[-(PATCH // 2) :, :] = known[:, : PATCH // 2] = known[:, -(PATCH // 2) :] = False
    if known.sum() < 16:
        raise NothingToCopy(
            "the mask leaves too little of the image to copy from "
            f"(at least a few {PATCH}x{PATCH} patches must lie outside it)"
        )
    rng = np.random.default_rng(seed)
    far = far_side(rgb, hole) if kw.edges else None
    levels = _pyramid(_with_texture(rgb, hole), hole, far)
    total = len(levels)
    copy_only = int(levels[0].targets.sum()) > max_pixels and FINE_COPY
    if copy_only and total > 1:
        # The full-resolution level will only copy colours: its texture channels (2 of 5) were needed
        # for the pyramid only (41 MB on the notebook's 2304x2220 outpaint).
        levels[0].img = np.ascontiguousarray(levels[0].img[..., :3])
    nnf = None
    for depth in range(total - 1, -1, -1):
        lv = levels[depth]
        # Above full resolution a level is cheap too when the level it hands over to is about to be cheap
        # (4x its targets over max_pixels): the structure is decided one level coarser. Measured on the
        # notebook's 2304x2220 outpaint: the 576x555 level (166k targets, 4 searches) was 5.0 of 12.1 CPU-s;
        # on a 1280x1920 outpaint with known truth, coarse PSNR 12.53 -> 12.61 dB, seam 2.32 -> 2.17 (2 seeds).
        big = int(lv.targets.sum()) * (4 if depth else 1) > max_pixels
        if nnf is None:
            # The starting guess diffuses only the hole's own side inwards, not the far side's colours.
            lv.img = _initial_fill(lv.img, lv.hole, lv.far)
            nnf = _random_nnf(lv, rng)
        else:
            prev = levels[depth + 1]
            nnf = _upsample_nnf(nnf, prev, lv, rng)
            chans = lv.img.shape[2]
            lv.img[lv.hole] = _resize(prev.img[..., :chans], (lv.img.shape[1], lv.img.shape[0]), cv2.INTER_LINEAR)[
                lv.hole
            ]
        iters = 1 if big else (2 if depth == 0 else min(2 + depth, 6))
        solver = _Solver(lv, nnf, rng, creativity, cheap=big)
        nnf = None  # the solver holds the matches now (41 MB at full resolution on the notebook outpaint)
        if big and depth == 0 and FINE_COPY:
            # A large full-resolution level only copies the detail the level below decided: the carried
            # matches, voted 3x3 with equal weights (no patch features at this size: they were most of
            # the time and the peak memory of a large outpaint).
            solver.vote(window=3)
            iters = 0
        elif depth < total - 1:
            # Rebuild the level from the carried matches first: searching on the upsampled
            # (blurry) estimate would pull matches towards smooth regions.
            solver.rescore()
            solver.vote(window=3 if big else PATCH)
        for it in range(iters):
            solver.search(rounds=1 if (big or depth == 0) else 2)
            # The last vote at full resolution trusts only the best matches: averaging many
            # slightly shifted patches is what turns texture into blur.
            sharp = depth == 0 and it == iters - 1
            solver.vote(
                window=3 if big else (FINAL_WINDOW if sharp else PATCH), sharpness=FINAL_SHARPNESS if sharp else 1.0
            )
        nnf = solver.nnf if depth else None
        if depth:
            levels[depth + 1 :] = []  # coarser levels are done with (their images were the estimate's start)
        if progress:
            progress(total - depth, total)
    _restore_detail(levels[0], solver)
    _correct_seam(levels[0], solver)
    out = rgb.copy()
    hy, hx = np.nonzero(hole)
    out[hy, hx] = np.clip(levels[0].img[hy, hx, :3] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out


def _with_texture(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The level-0 image: RGB 0..1 and the two texture channels, float32."""
    img = rgb.astype(np.float32) / 255.0
    return np.concatenate([img, _texture(img, hole)], axis=2)


class NothingToCopy(Unprocessable):
    """The hole leaves no whole patch outside it (a 422 for the caller)."""


def _complete_reduced(rgb: np.ndarray, hole: np.ndarray, max_canvas: int, **kw) -> np.ndarray:
    """Very large canvases (up to 50 MP for a 9 MP outpaint): synthesise at a reduced scale,
    upsample the fill, keep every known pixel. Bounds time and memory; the fill is softer."""
    h, w = hole.shape
    k = (max_canvas / float(h * w)) ** 0.5
    size = (max(int(w * k), 2 * PATCH), max(int(h * k), 2 * PATCH))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    small_hole = cv2.resize(hole.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 1e-3
    filled = complete(small, small_hole, max_canvas=max_canvas, local=False, **kw)
    up = cv2.resize(filled, (w, h), interpolation=cv2.INTER_CUBIC)
    out = rgb.copy()
    out[hole] = up[hole]
    return out


# --- the far side of a strong edge the hole cuts ----------------------------------------------


def far_side(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray | None:
    """Known pixels of a neighbouring object that the hole cuts into, or None when there is none.

    A brush stroke over one object that spills 10-20 px onto its neighbour leaves the neighbour on part of
    the hole's border, and a completion continues the border inwards: the neighbour grows into the hole.
    The neighbour is a minority colour class of the ring of known pixels around the hole (three-means
    in Lab) for which all of these hold, so that textures and soft gradients are left alone:

    * the class is far from the others (``EDGE_CONTRAST`` Lab units, ``EDGE_SEPARATION`` of its own
      deviation) and holds ``EDGE_SHARE`` of the ring;
    * the class's pixels in the image, closed over thin gaps (a page's lines) and opened to drop thin
      structures (mortar, grass blades), form blobs, and the blobs touching the ring hold most of them
      (one object, not a recurring texture element);
    * the blobs' outline near the hole is sharp (a strong edge, not a cloud's soft rim): its gradient
      is at least ``EDGE_SHARPNESS`` of the contrast per pixel.

    Returns the touching blobs (the far side of that edge from the hole's majority context)."""
    known = ~hole
    if known.sum() < 256:
        return None
    lab = cv2.cvtColor(cv2.GaussianBlur(rgb.astype(np.float32) / 255.0, (0, 0), 1.0), cv2.COLOR_RGB2LAB)
    out_dist = cv2.distanceTransform(known.astype(np.uint8), cv2.DIST_L2, 3)
    ring = known & (out_dist <= EDGE_RING)
    x = lab[ring]
    if len(x) < 64:
        return None
    # Three colour classes of the ring (a textured background often has two of its own: light and dark).
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.05)
    cv2.setRNGSeed(0)  # k-means++ seeding: the same image gives the same classes
    sample = np.ascontiguousarray(x[:: max(len(x) // 4000, 1)])
    labels = np.zeros((len(sample), 1), np.int32)  # an output here (no KMEANS_USE_INITIAL_LABELS)
    _, _, centres = cv2.kmeans(sample, 3, labels, crit, 2, cv2.KMEANS_PP_CENTERS)
    near = np.argmin(((x[:, None, :] - centres[None]) ** 2).sum(2), axis=1)
    share = np.bincount(near, minlength=3) / len(x)
    whole = np.argmin(((lab[:, :, None, :] - centres[None, None]) ** 2).sum(3), axis=2)
    disc = lambda r: cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))  # noqa: E731
    grad = None
    far = np.zeros(hole.shape, bool)
    for k in np.argsort(share):
        if not EDGE_SHARE[0] <= share[k] <= EDGE_SHARE[1] or (near == k).sum() < 16:
            continue
        others = [j for j in range(3) if j != k]
        gap = min(float(np.linalg.norm(centres[k] - centres[j])) for j in others)
        spread = float(np.sqrt(((x[near == k] - centres[k]) ** 2).sum(1).mean()))
        if gap < EDGE_CONTRAST or gap < EDGE_SEPARATION * spread:
            continue
        like = (known & (whole == k)).astype(np.uint8)
        like = cv2.morphologyEx(like, cv2.MORPH_CLOSE, disc(2))
        like = cv2.morphologyEx(like, cv2.MORPH_OPEN, disc(4)) & known.astype(np.uint8)
        n, comp = cv2.connectedComponents(like, connectivity=8)
        touching = np.unique(comp[ring & (like > 0)])
        touching = touching[touching > 0]
        if len(touching) == 0:
            continue
        blob = np.isin(comp, touching)
        area = int(blob.sum())
        if area < EDGE_MIN_AREA or area < 0.5 * like.sum() or area > 0.5 * known.sum():
            continue
        # Sharp boundary: the gradient across the blob's outline near the hole, relative to the contrast.
        if grad is None:
            grad = np.zeros(hole.shape, np.float32)
            for ch in range(3):
                gx = cv2.Sobel(lab[..., ch], cv2.CV_32F, 1, 0, ksize=3) / 8
                gy = cv2.Sobel(lab[..., ch], cv2.CV_32F, 0, 1, ksize=3) / 8
                grad += gx * gx + gy * gy
            grad = np.sqrt(grad)
        b8 = blob.astype(np.uint8)
        outline = (cv2.dilate(b8, disc(1)) > 0) & ~(cv2.erode(b8, disc(1)) > 0) & known
        outline &= (out_dist >= 2) & (out_dist <= 6 * EDGE_RING)
        if outline.sum() < 8 or float(np.percentile(grad[outline], 75)) < EDGE_SHARPNESS * gap:
            continue
        far |= blob
    return far if far.any() else None


# --- pyramid -------------------------------------------------------------------------------


def _pyramid(img: np.ndarray, hole: np.ndarray, far: np.ndarray | None = None) -> list[_Level]:
    levels = [_make_level(img, hole, far)]
    far_f: np.ndarray | None = None if far is None else far.astype(np.float32)
    while True:
        cur = levels[-1]
        h, w = cur.hole.shape
        thick = float(cv2.distanceTransform(cur.hole.astype(np.uint8), cv2.DIST_L2, 3).max())
        if thick <= PATCH // 2 + 1 or min(h, w) // 2 < 4 * PATCH:
            break
        size = ((w + 1) // 2, (h + 1) // 2)
        small = _resize(cur.img, size, cv2.INTER_AREA)
        small_hole = cv2.resize(cur.hole.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 1e-3
        if far_f is not None:
            far_f = cv2.resize(far_f, size, interpolation=cv2.INTER_AREA)
        nxt = _make_level(small, small_hole, None if far_f is None else (far_f > 0.25) & ~small_hole)
        if nxt.valid.sum() < 64:
            break
        levels.append(nxt)
    return levels


def _resize(img: np.ndarray, size: tuple[int, int], interpolation: int) -> np.ndarray:
    # OpenCV resizes at most 4 channels at a time.
    parts = [
        cv2.resize(np.ascontiguousarray(img[..., c : c + 3]), size, interpolation=interpolation)
        for c in range(0, img.shape[2], 3)
    ]
    return np.concatenate([p if p.ndim == 3 else p[..., None] for p in parts], axis=2)


def _make_level(img: np.ndarray, hole: np.ndarray, far: np.ndarray | None = None) -> _Level:
    r = PATCH // 2
    kernel = np.ones((PATCH, PATCH), np.uint8)
    near_hole = cv2.dilate(hole.astype(np.uint8), kernel) > 0
    valid = ~near_hole
    valid[:r, :] = valid[-r:, :] = False
    valid[:, :r] = valid[:, -r:] = False
    if far is not None:
        # No source patch may hold a far-side pixel, unless that would leave almost nothing to copy from.
        keep = valid & ~(cv2.dilate(far.astype(np.uint8), kernel) > 0)
        if keep.sum() >= max(64, valid.sum() // 4):
            valid = keep
        else:
            far = None
    return _Level(img, hole, valid, near_hole, far)  # img is the caller's fresh array (not copied)


def _initial_fill(img: np.ndarray, hole: np.ndarray, far: np.ndarray | None = None) -> np.ndarray:
    """Smooth diffusion of the border into the hole: the coarsest level's starting guess. Far-side pixels
    are diffused over too (then kept), so only the hole's own side flows in."""
    out = img.copy()
    mask = (hole if far is None else hole | far).astype(np.uint8)
    for c in range(0, img.shape[2], 3):
        part = np.ascontiguousarray(img[..., c : c + 3])
        n = part.shape[2]
        if n < 3:
            part = np.concatenate([part, np.zeros(part.shape[:2] + (3 - n,), np.float32)], axis=2)
        u8 = np.clip(part * 255 + 0.5, 0, 255).astype(np.uint8)
        filled = cv2.inpaint(u8, mask, 3, cv2.INPAINT_TELEA)
        out[..., c : c + n][hole] = filled[..., :n][hole].astype(np.float32) / 255.0
    return out


# --- nearest-neighbour fields ----------------------------------------------------------------


def _random_nnf(lv: _Level, rng: np.random.Generator) -> np.ndarray:
    """HxWx2 int32 source centre for every target; -1 elsewhere."""
    h, w = lv.hole.shape
    nnf = np.full((h, w, 2), -1, np.int32)
    vy, vx = np.nonzero(lv.valid)
    ty, tx = np.nonzero(lv.targets)
    pick = rng.integers(0, len(vy), len(ty))
    nnf[ty, tx, 0] = vy[pick]
    nnf[ty, tx, 1] = vx[pick]
    return nnf


def _upsample_nnf(coarse: np.ndarray, prev: _Level, lv: _Level, rng: np.random.Generator) -> np.ndarray:
    h, w = lv.hole.shape
    ch, cw = prev.hole.shape
    nnf = np.full((h, w, 2), -1, np.int32)
    ty, tx = np.nonzero(lv.targets)
    cy, cx = np.minimum(ty // 2, ch - 1), np.minimum(tx // 2, cw - 1)
    sy = coarse[cy, cx, 0] * 2 + (ty & 1)
    sx = coarse[cy, cx, 1] * 2 + (tx & 1)
    ok = (coarse[cy, cx, 0] >= 0) & (sy < h) & (sx < w)
    sy, sx = np.where(ok, sy, 0), np.where(ok, sx, 0)
    ok &= lv.valid[sy, sx]
    vy, vx = np.nonzero(lv.valid)
    pick = rng.integers(0, len(vy), len(ty))
    nnf[ty, tx, 0] = np.where(ok, sy, vy[pick])
    nnf[ty, tx, 1] = np.where(ok, sx, vx[pick])
    return nnf


class _Solver:
    """PatchMatch search and EM voting on one pyramid level.

    Matches are kept as source coordinates per target (``sy``, ``sx``, int32) and every candidate
    test is one ``np.take`` of a few floats per target; neighbours for propagation are looked up once
    per level (targets do not move), so a candidate is the neighbour's match shifted back, no division.
    """

    def __init__(self, lv: _Level, nnf: np.ndarray, rng: np.random.Generator, creativity: float, cheap: bool):
        self.lv, self.rng, self.cheap = lv, rng, cheap
        h, w = lv.hole.shape
        self.h, self.w = h, w
        ty, tx = np.nonzero(lv.targets)
        self.ty, self.tx = ty.astype(np.int32), tx.astype(np.int32)
        self.t = self.ty * np.int32(w) + self.tx
        self.sy = nnf[ty, tx, 0].astype(np.int32)
        self.sx = nnf[ty, tx, 1].astype(np.int32)
        self.valid = lv.valid.ravel()
        self.features = FEATURES // 2 if cheap else FEATURES
        self.basis: np.ndarray | None = None  # computed on first use: a copy-only level never needs it
        self.feat: np.ndarray | None = None
        # Prefer nearby sources unless creative: a penalty growing with the copy distance,
        # one median match cost at LOCAL_REACH times the hole's thickness.
        depth = cv2.distanceTransform(lv.hole.astype(np.uint8), cv2.DIST_L2, 3)
        reach = LOCAL_REACH * max(float(depth.max()), 4.0)
        self.locality = (1.0 - float(np.clip(creativity, 0.0, 1.0))) ** 2 / reach**2
        # Voting confidence: pixels near the known border are more trustworthy (Wexler's alpha^-d).
        self.confidence = np.power(1.3, -np.minimum(depth[ty, tx], 30.0)).astype(np.float32)
        self.dist = np.zeros(len(self.t), np.float32)
        self.scale = 1.0
        self._pairs: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    @property
    def s(self) -> np.ndarray:
        """Flat source index of every target's match."""
        return self.sy * np.int32(self.w) + self.sx

    @property
    def nnf(self) -> np.ndarray:
        out = np.full((self.h, self.w, 2), -1, np.int32)
        out[self.ty, self.tx, 0] = self.sy
        out[self.ty, self.tx, 1] = self.sx
        return out

    # distances
    def _features(self) -> None:
        """Patch features of the level; after the first call only the targets' box is recomputed
        (source patches lie outside the hole, so their features never change)."""
        if self.basis is None:
            self.basis = _pca_basis(self.lv, self.rng, self.features)
        if self.feat is None:
            self.feat = self._features_of(self.lv.img).reshape(self.h * self.w, -1)
        else:
            r = PATCH // 2
            y0, y1 = max(int(self.ty.min()) - 2 * r, 0), min(int(self.ty.max()) + 2 * r + 1, self.h)
            x0, x1 = max(int(self.tx.min()) - 2 * r, 0), min(int(self.tx.max()) + 2 * r + 1, self.w)
            box = self._features_of(self.lv.img[y0:y1, x0:x1])
            self.feat[self.t] = box[self.ty - y0, self.tx - x0]
        self.ft = np.take(self.feat, self.t, axis=0)

    def _features_of(self, img: np.ndarray) -> np.ndarray:
        # Texture channels (Newson et al. 2014) keep textured targets from matching flat sources.
        assert self.basis is not None
        return np.concatenate([_project(_lab(img[..., :3]), self.basis), TEXTURE_WEIGHT * img[..., 3:]], axis=2)

    def _cost(self, sy: np.ndarray, sx: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        assert self.feat is not None
        ft = self.ft if idx is None else self.ft[idx]
        diff = np.take(self.feat, sy * np.int32(self.w) + sx, axis=0)
        diff -= ft
        d = np.einsum("ij,ij->i", diff, diff)
        if self.locality:
            dy = sy - (self.ty if idx is None else self.ty[idx])
            dx = sx - (self.tx if idx is None else self.tx[idx])
            d += (self.locality * self.scale) * (dy * dy + dx * dx).astype(np.float32)
        return d

    def _try(self, sy: np.ndarray, sx: np.ndarray, idx: np.ndarray | None = None) -> None:
        """Adopt candidate sources (``sy``, ``sx``) for targets ``idx`` where they match better."""
        h, w = self.h, self.w
        inside = (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w)
        ok = inside & self.valid[np.where(inside, sy * np.int32(w) + sx, 0)]
        # Only candidates that are sources at all are scored (the others could never be adopted).
        keep = np.nonzero(ok)[0]
        sy, sx = sy[keep], sx[keep]
        sel = keep if idx is None else idx[keep]
        d = self._cost(sy, sx, sel)
        better = d < self.dist[sel]
        idx_b = sel[better]
        self.dist[idx_b] = d[better]
        self.sy[idx_b] = sy[better]
        self.sx[idx_b] = sx[better]

    def _neighbours(self, dy: int, dx: int) -> tuple[np.ndarray, np.ndarray]:
        """Targets whose neighbour at (+dy, +dx) is also a target, and that neighbour's index."""
        key = (dy, dx)
        if key not in self._pairs:
            h, w = self.h, self.w
            qy, qx = self.ty + dy, self.tx + dx
            idx = np.nonzero((qy >= 0) & (qy < h) & (qx >= 0) & (qx < w))[0]
            index = np.full(h * w, -1, np.int32)
            index[self.t] = np.arange(len(self.t), dtype=np.int32)
            k = index[self.t[idx] + np.int32(dy * w + dx)]
            has = k >= 0
            self._pairs[key] = (idx[has].astype(np.int32), k[has])
        return self._pairs[key]

    def rescore(self) -> None:
        """Features of the current estimate and the cost of the current matches."""
        self._features()
        locality, self.locality = self.locality, 0.0
        raw = self._cost(self.sy, self.sx)
        self.locality = locality
        self.scale = float(np.median(raw)) + 1e-6
        self.dist = self._cost(self.sy, self.sx)

    def search(self, rounds: int) -> None:
        self.rescore()
        h, w = self.h, self.w
        # Large levels only repair the carried matches locally: their structure is already decided.
        jumps = (1,) if self.cheap else (16, 8, 4, 2, 1)
        for _ in range(rounds):
            for k in jumps:
                for dy, dx in ((0, k), (0, -k), (k, 0), (-k, 0)):
                    idx, nb = self._neighbours(dy, dx)
                    # The neighbour's match, shifted back.
                    self._try(self.sy[nb] - np.int32(dy), self.sx[nb] - np.int32(dx), idx)
            radius = float(max(h, w))
            for _ in range(0 if self.cheap else 12):
                if radius < 1:
                    break
                r = int(radius)
                sy = self.sy + self.rng.integers(-r, r + 1, len(self.t))
                sx = self.sx + self.rng.integers(-r, r + 1, len(self.t))
                self._try(sy, sx)
                radius *= 0.5

    def vote(self, window: int, sharpness: float = 1.0) -> None:
        """Each hole pixel := weighted mean of what the overlapping patches' matches put there."""
        py, px = np.nonzero(self.lv.hole)
        tables = self._vote_tables(window, sharpness)
        img = self.lv.img
        # In slices, so the per-offset temporaries stay small on a full-resolution outpaint; the sources
        # read lie outside the hole, so writing a slice's result before the next is read changes nothing.
        for a in range(0, len(py), VOTE_CHUNK):
            cy, cx = py[a : a + VOTE_CHUNK], px[a : a + VOTE_CHUNK]
            vals, ok = self._vote_at(tables, cy, cx)
            img[cy[ok], cx[ok]] = vals[ok]
        self.last_vote = (window, sharpness)

    def votes(self, py: np.ndarray, px: np.ndarray, window: int, sharpness: float = 1.0):
        """What the target patches covering pixels (py, px) propose there, and where any does."""
        return self._vote_at(self._vote_tables(window, sharpness), py, px)

    def _vote_tables(self, window: int, sharpness: float) -> tuple[int, np.ndarray, np.ndarray]:
        h, w = self.h, self.w
        r = window // 2
        wp = w + 2 * r
        sigma2 = float(np.percentile(self.dist, 75)) / sharpness + 1e-6
        pad_t = (self.ty + np.int32(r)) * np.int32(wp) + (self.tx + np.int32(r))
        weight = np.zeros((h + 2 * r) * wp, np.float32)
        # Clamped exponent: a float32 weight that underflows to 0 would leave pixels unvoted.
        weight[pad_t] = np.exp(-np.minimum(self.dist / (2 * sigma2), 40.0)).astype(np.float32) * self.confidence
        src = np.full((h + 2 * r) * wp, (PATCH // 2) * w + PATCH // 2, np.int32)  # any in-image centre
        src[pad_t] = self.s
        return r, weight, src

    def _vote_at(self, tables: tuple[int, np.ndarray, np.ndarray], py: np.ndarray, px: np.ndarray):
        r, weight, src = tables
        w = self.w
        wp = w + 2 * r
        img = self.lv.img.reshape(self.h * w, -1)
        acc = np.zeros((len(py), img.shape[1]), np.float32)
        wsum = np.zeros(len(py), np.float32)
        p = (py.astype(np.int32) + np.int32(r)) * np.int32(wp) + (px.astype(np.int32) + np.int32(r))
        for oy in range(-r, r + 1):
            for ox in range(-r, r + 1):
                c = p - np.int32(oy * wp + ox)  # centre of the patch that covers p at offset (oy, ox)
                wgt = weight[c]
                acc += wgt[:, None] * np.take(img, src[c] + np.int32(oy * w + ox), axis=0)
                wsum += wgt
        ok = wsum > 0
        return acc / np.where(ok, wsum, 1.0)[:, None], ok


def _restore_detail(lv: _Level, solver: _Solver, sigma: float = DETAIL_SIGMA) -> None:
    """Voting averages overlapping patches, which softens fine texture. Keep the vote's low
    frequencies and take the high frequencies from each pixel's own best match (a straight copy)."""
    if sigma <= 0:
        return
    h, w = lv.hole.shape
    at = np.full(h * w, -1, np.int32)
    at[solver.t] = solver.s
    rgb = lv.img[..., :3]
    flat = np.ascontiguousarray(rgb).reshape(-1, 3) if rgb.base is not None else rgb.reshape(-1, 3)
    # In bands of rows with a halo wider than the blur, so only a band's arrays are alive at a time
    # (the whole-canvas version held five full-size copies: the peak memory of a large outpaint).
    # Results are written after all bands: a band's blur reads the unmodified rows of its neighbours.
    halo = int(np.ceil(4 * sigma)) + 2
    results = []
    for y0 in range(0, h, DETAIL_BAND):
        y1 = min(y0 + DETAIL_BAND, h)
        if not lv.hole[y0:y1].any():
            continue
        ya, yb = max(y0 - halo, 0), min(y1 + halo, h)
        part = rgb[ya:yb]
        copy = part.copy()
        cy, cx = np.nonzero(lv.hole[ya:yb])  # the halo's hole pixels are copies too, as on the whole canvas
        copy[cy, cx] = flat[at[(cy + ya) * w + cx]]
        low_vote = cv2.GaussianBlur(np.ascontiguousarray(part), (0, 0), sigma)
        low_copy = cv2.GaussianBlur(copy, (0, 0), sigma)
        mine = (cy >= y0 - ya) & (cy < y1 - ya)
        gy, gx = cy[mine], cx[mine]
        results.append((gy + ya, gx, np.clip((low_vote + copy - low_copy)[gy, gx], 0, 1)))
    for hy, hx, vals in results:
        lv.img[hy, hx, :3] = vals


def _correct_seam(lv: _Level, solver: _Solver, fade: float = 24.0) -> None:
    """Remove the colour step at the hole's border: interpolate the border residual inward."""
    ring = lv.targets & ~lv.hole
    if lv.far is not None:
        ring &= ~lv.far  # the far side's border is a cut edge: its colour must not be spread into the fill
    ry, rx = np.nonzero(ring)
    if len(ry) == 0:
        return
    window, sharpness = getattr(solver, "last_vote", (PATCH, 1.0))
    pred, ok = solver.votes(ry, rx, window, sharpness)
    h, w = lv.hole.shape
    residual = np.zeros((h, w, 3), np.float32)
    weight = np.zeros((h, w), np.float32)
    residual[ry[ok], rx[ok]] = lv.img[ry[ok], rx[ok], :3] - pred[ok, :3]
    weight[ry[ok], rx[ok]] = 1.0
    del pred
    spread = _push_pull(residual, weight)
    del residual, weight
    hy, hx = np.nonzero(lv.hole)
    depth = cv2.distanceTransform(lv.hole.astype(np.uint8), cv2.DIST_L2, 3)[hy, hx]
    gain = np.exp(-depth / fade)[..., None]
    lv.img[hy, hx, :3] = np.clip(lv.img[hy, hx, :3] + gain * spread[hy, hx], 0, 1)


def _push_pull(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Fill a sparse field (``values`` known where ``weight`` > 0) everywhere: push-pull (Gortler et al.)."""
    h, w = weight.shape
    if min(h, w) <= 4:
        total = weight.sum()
        mean = (values * weight[..., None]).sum((0, 1)) / max(total, 1e-6)
        return np.broadcast_to(mean, values.shape).astype(np.float32).copy()
    size = ((w + 1) // 2, (h + 1) // 2)
    w_small = cv2.resize(weight, size, interpolation=cv2.INTER_AREA)
    v_small = cv2.resize(values * weight[..., None], size, interpolation=cv2.INTER_AREA)
    coarse = _push_pull(v_small / np.maximum(w_small, 1e-6)[..., None], np.minimum(w_small * 4, 1.0))
    up = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)
    a = np.clip(weight, 0, 1)[..., None]
    return (a * values + (1 - a) * up).astype(np.float32)


def _texture(img: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Mean absolute x and y luminance gradients over a patch, measured on the known pixels only."""
    lum = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    known = (~cv2.dilate(hole.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)).astype(np.float32)
    gx = np.abs(cv2.Sobel(lum, cv2.CV_32F, 1, 0, ksize=3)) * known / 4
    gy = np.abs(cv2.Sobel(lum, cv2.CV_32F, 0, 1, ksize=3)) * known / 4
    norm = cv2.boxFilter(known, -1, (PATCH, PATCH), normalize=True) + 1e-6
    out = np.stack([cv2.boxFilter(gx, -1, (PATCH, PATCH)) / norm, cv2.boxFilter(gy, -1, (PATCH, PATCH)) / norm], 2)
    return out.astype(np.float32)


# --- patch features -------------------------------------------------------------------------


def _lab(img: np.ndarray) -> np.ndarray:
    lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB)
    return lab * np.array([1.0, 0.8, 0.8], np.float32) / 100.0


def _pca_basis(lv: _Level, rng: np.random.Generator, features: int = FEATURES) -> np.ndarray:
    """FEATURES x PATCH x PATCH x 3 principal components of the level's known patches."""
    r = PATCH // 2
    vy, vx = np.nonzero(lv.valid)
    pick = rng.choice(len(vy), size=min(3000, len(vy)), replace=False)
    lab = _lab(lv.img[..., :3])
    offs = np.arange(-r, r + 1)
    ys = vy[pick][:, None, None] + offs[None, :, None]
    xs = vx[pick][:, None, None] + offs[None, None, :]
    patches = lab[ys, xs].reshape(len(pick), -1)
    patches -= patches.mean(axis=0)
    k = min(features, patches.shape[0], patches.shape[1])
    _, vecs = np.linalg.eigh(patches.T @ patches)  # ascending eigenvalues: the last k are the principal ones
    return vecs[:, ::-1][:, :k].T.reshape(k, PATCH, PATCH, 3).astype(np.float32)


def _project(lab: np.ndarray, basis: np.ndarray) -> np.ndarray:
    h, w = lab.shape[:2]
    out = np.empty((h, w, len(basis)), np.float32)
    chans = [np.ascontiguousarray(lab[..., c]) for c in range(3)]
    for i, comp in enumerate(basis):
        acc: np.ndarray = cv2.filter2D(chans[0], -1, comp[..., 0], borderType=cv2.BORDER_REFLECT)
        acc += cv2.filter2D(chans[1], -1, comp[..., 1], borderType=cv2.BORDER_REFLECT)
        acc += cv2.filter2D(chans[2], -1, comp[..., 2], borderType=cv2.BORDER_REFLECT)
        out[..., i] = acc
    return out
