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
a dozen floats per target instead of 147.  Levels larger than ``max_pixels`` get
a single cheap pass, which bounds time and memory for very large holes (outpaint).

Nothing here touches pixels outside ``hole``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

PATCH = 7
FEATURES = 12  # PCA components kept per patch
LOCAL_REACH = 8.0  # copy distance, in hole thicknesses, that costs one median patch distance
TEXTURE_WEIGHT = 4.0  # weight of the local gradient-energy channels in the patch distance
Progress = Callable[[int, int], None]


@dataclass
class _Level:
    img: np.ndarray  # float32 HxWx5: RGB 0..1 and two texture channels (hole: current estimate)
    hole: np.ndarray  # bool HxW
    valid: np.ndarray  # bool HxW: patch centred here lies inside the image and outside the hole
    targets: np.ndarray  # bool HxW: patch centred here overlaps the hole


def complete(rgb: np.ndarray, hole: np.ndarray, *, seed: int = 0, creativity: float = 0.3,
             max_pixels: int = 1_500_000, progress: Progress | None = None) -> np.ndarray:
    """Return ``rgb`` (uint8 HxWx3) with the ``hole`` pixels synthesised from the rest.

    ``creativity`` (0..1) loosens the preference for source patches near the target:
    0 copies from the closest matching surroundings, 1 lets any matching patch in the
    image be used. The same ``seed`` gives the same result.
    """
    hole = np.asarray(hole, dtype=bool)
    if not hole.any():
        return rgb.copy()
    if hole.all():
        raise ValueError("nothing to copy from: the hole covers the whole image")
    rng = np.random.default_rng(seed)
    img = rgb.astype(np.float32) / 255.0
    levels = _pyramid(np.concatenate([img, _texture(img, hole)], axis=2), hole)
    total = len(levels)
    nnf = None
    for depth in range(total - 1, -1, -1):
        lv = levels[depth]
        big = int(lv.targets.sum()) > max_pixels
        if nnf is None:
            lv.img = _initial_fill(lv.img, lv.hole)
            nnf = _random_nnf(lv, rng)
        else:
            prev = levels[depth + 1]
            nnf = _upsample_nnf(nnf, prev, lv, rng)
            up = cv2.resize(prev.img, (lv.img.shape[1], lv.img.shape[0]), interpolation=cv2.INTER_LINEAR)
            lv.img[lv.hole] = up[lv.hole]
        iters = 1 if big else (2 if depth == 0 else min(2 + depth, 6))
        solver = _Solver(lv, nnf, rng, creativity, cheap=big)
        if depth < total - 1:
            # Rebuild the level from the carried matches first: searching on the upsampled
            # (blurry) estimate would pull matches towards smooth regions.
            solver.rescore()
            solver.vote(window=3 if big else PATCH)
        for it in range(iters):
            solver.search(rounds=1 if (big or depth == 0) else 2)
            # The last vote at full resolution trusts only the best matches: averaging many
            # slightly shifted patches is what turns texture into blur.
            sharp = depth == 0 and it == iters - 1
            solver.vote(window=3 if big else PATCH, sharpness=4.0 if sharp else 1.0)
        nnf = solver.nnf
        if progress:
            progress(total - depth, total)
    out = rgb.copy()
    filled = np.clip(levels[0].img[..., :3] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    out[hole] = filled[hole]
    return out


# --- pyramid -------------------------------------------------------------------------------

def _pyramid(img: np.ndarray, hole: np.ndarray) -> list[_Level]:
    levels = [_make_level(img, hole)]
    while True:
        cur = levels[-1]
        h, w = cur.hole.shape
        thick = float(cv2.distanceTransform(cur.hole.astype(np.uint8), cv2.DIST_L2, 3).max())
        if thick <= PATCH // 2 + 1 or min(h, w) // 2 < 4 * PATCH:
            break
        size = ((w + 1) // 2, (h + 1) // 2)
        small = cv2.resize(cur.img, size, interpolation=cv2.INTER_AREA)
        small_hole = cv2.resize(cur.hole.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 1e-3
        nxt = _make_level(small, small_hole)
        if nxt.valid.sum() < 64:
            break
        levels.append(nxt)
    return levels


def _make_level(img: np.ndarray, hole: np.ndarray) -> _Level:
    r = PATCH // 2
    kernel = np.ones((PATCH, PATCH), np.uint8)
    near_hole = cv2.dilate(hole.astype(np.uint8), kernel) > 0
    valid = ~near_hole
    valid[:r, :] = valid[-r:, :] = False
    valid[:, :r] = valid[:, -r:] = False
    return _Level(img.copy(), hole, valid, near_hole)


def _initial_fill(img: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Smooth diffusion of the border into the hole: the coarsest level's starting guess."""
    out = img.copy()
    for c in range(0, img.shape[2], 3):
        part = np.ascontiguousarray(img[..., c:c + 3])
        n = part.shape[2]
        if n < 3:
            part = np.concatenate([part, np.zeros(part.shape[:2] + (3 - n,), np.float32)], axis=2)
        u8 = np.clip(part * 255 + 0.5, 0, 255).astype(np.uint8)
        filled = cv2.inpaint(u8, hole.astype(np.uint8), 3, cv2.INPAINT_TELEA)
        out[..., c:c + n][hole] = filled[..., :n][hole].astype(np.float32) / 255.0
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
    """PatchMatch search and EM voting on one pyramid level."""

    def __init__(self, lv: _Level, nnf: np.ndarray, rng: np.random.Generator, creativity: float, cheap: bool):
        self.lv, self.nnf, self.rng, self.cheap = lv, nnf, rng, cheap
        h, w = lv.hole.shape
        self.ty, self.tx = np.nonzero(lv.targets)
        self.basis = _pca_basis(lv, rng)
        # Prefer nearby sources unless creative: a penalty growing with the copy distance,
        # one median match cost at LOCAL_REACH times the hole's thickness.
        reach = LOCAL_REACH * max(float(cv2.distanceTransform(lv.hole.astype(np.uint8), cv2.DIST_L2, 3).max()), 4.0)
        self.locality = (1.0 - float(np.clip(creativity, 0.0, 1.0))) ** 2 / reach ** 2
        # Voting confidence: pixels near the known border are more trustworthy (Wexler's alpha^-d).
        depth = cv2.distanceTransform(lv.hole.astype(np.uint8), cv2.DIST_L2, 3)
        self.confidence = np.power(1.3, -np.minimum(depth, 30.0)).astype(np.float32)
        self.dist = np.zeros(len(self.ty), np.float32)

    # distances
    def _features(self) -> None:
        # Texture channels (Newson et al. 2014) keep textured targets from matching flat sources.
        self.feat = np.concatenate(
            [_project(_lab(self.lv.img[..., :3]), self.basis), TEXTURE_WEIGHT * self.lv.img[..., 3:]], axis=2)
        self.ft = self.feat[self.ty, self.tx]
        self.scale = None

    def _cost(self, sy: np.ndarray, sx: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        ft = self.ft if idx is None else self.ft[idx]
        ty = self.ty if idx is None else self.ty[idx]
        tx = self.tx if idx is None else self.tx[idx]
        d = ((self.feat[sy, sx] - ft) ** 2).sum(axis=1)
        if self.locality:
            d += self.locality * self.scale * ((sy - ty) ** 2 + (sx - tx) ** 2)
        return d

    def _try(self, sy: np.ndarray, sx: np.ndarray, idx: np.ndarray | None = None) -> None:
        h, w = self.lv.hole.shape
        sel = slice(None) if idx is None else idx
        inside = (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w)
        sy, sx = np.where(inside, sy, 0), np.where(inside, sx, 0)
        ok = inside & self.lv.valid[sy, sx]
        d = self._cost(sy, sx, idx)
        better = ok & (d < self.dist[sel])
        if idx is None:
            idx_b = np.nonzero(better)[0]
        else:
            idx_b = idx[better]
        self.dist[idx_b] = d[better]
        self.nnf[self.ty[idx_b], self.tx[idx_b], 0] = sy[better]
        self.nnf[self.ty[idx_b], self.tx[idx_b], 1] = sx[better]

    def rescore(self) -> None:
        """Features of the current estimate and the cost of the current matches."""
        self._features()
        sy, sx = self.nnf[self.ty, self.tx, 0], self.nnf[self.ty, self.tx, 1]
        raw = ((self.feat[sy, sx] - self.ft) ** 2).sum(axis=1)
        self.scale = float(np.median(raw)) + 1e-6
        self.dist = self._cost(sy, sx)

    def search(self, rounds: int) -> None:
        self.rescore()
        h, w = self.lv.hole.shape
        jumps = (2, 1) if self.cheap else (16, 8, 4, 2, 1)
        for _ in range(rounds):
            for k in jumps:
                for dy, dx in ((0, k), (0, -k), (k, 0), (-k, 0)):
                    qy, qx = self.ty + dy, self.tx + dx
                    inb = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)
                    idx = np.nonzero(inb)[0]
                    ny = self.nnf[qy[idx], qx[idx], 0]
                    nx = self.nnf[qy[idx], qx[idx], 1]
                    has = ny >= 0
                    idx, ny, nx = idx[has], ny[has], nx[has]
                    self._try(ny - dy, nx - dx, idx)
            radius = float(max(h, w))
            n_random = 3 if self.cheap else 12
            for _ in range(n_random):
                if radius < 1:
                    break
                cy, cx = self.nnf[self.ty, self.tx, 0], self.nnf[self.ty, self.tx, 1]
                r = int(radius)
                oy = self.rng.integers(-r, r + 1, len(self.ty))
                ox = self.rng.integers(-r, r + 1, len(self.ty))
                self._try(cy + oy, cx + ox)
                radius *= 0.5

    def vote(self, window: int, sharpness: float = 1.0) -> None:
        """Each hole pixel := weighted mean of what the overlapping patches' matches put there."""
        lv = self.lv
        h, w = lv.hole.shape
        r = window // 2
        sigma2 = float(np.percentile(self.dist, 75)) / sharpness + 1e-6
        weight = np.zeros((h + 2 * r, w + 2 * r), np.float32)
        wt = np.exp(-self.dist / (2 * sigma2)).astype(np.float32) * self.confidence[self.ty, self.tx]
        weight[self.ty + r, self.tx + r] = wt
        src = np.zeros((h + 2 * r, w + 2 * r, 2), np.int32)
        src[..., 0], src[..., 1] = PATCH // 2, PATCH // 2  # any in-image centre for non-targets
        src[self.ty + r, self.tx + r] = self.nnf[self.ty, self.tx]
        py, px = np.nonzero(lv.hole)
        acc = np.zeros((len(py), lv.img.shape[2]), np.float32)
        wsum = np.zeros(len(py), np.float32)
        for oy in range(-r, r + 1):
            for ox in range(-r, r + 1):
                cy, cx = py - oy + r, px - ox + r  # centre of the patch that covers p at offset (oy, ox)
                wgt = weight[cy, cx]
                s = src[cy, cx]
                acc += wgt[:, None] * lv.img[s[:, 0] + oy, s[:, 1] + ox]
                wsum += wgt
        ok = wsum > 0
        vals = lv.img[py, px]
        vals[ok] = acc[ok] / wsum[ok, None]
        lv.img[py, px] = vals


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


def _pca_basis(lv: _Level, rng: np.random.Generator) -> np.ndarray:
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
    k = min(FEATURES, patches.shape[0], patches.shape[1])
    _, _, vt = np.linalg.svd(patches, full_matrices=False)
    return vt[:k].reshape(k, PATCH, PATCH, 3).astype(np.float32)


def _project(lab: np.ndarray, basis: np.ndarray) -> np.ndarray:
    h, w = lab.shape[:2]
    out = np.empty((h, w, len(basis)), np.float32)
    chans = [np.ascontiguousarray(lab[..., c]) for c in range(3)]
    for i, comp in enumerate(basis):
        acc = cv2.filter2D(chans[0], -1, comp[..., 0], borderType=cv2.BORDER_REFLECT)
        acc += cv2.filter2D(chans[1], -1, comp[..., 1], borderType=cv2.BORDER_REFLECT)
        acc += cv2.filter2D(chans[2], -1, comp[..., 2], borderType=cv2.BORDER_REFLECT)
        out[..., i] = acc
    return out
