"""Snap a sloppy brushed mask to the object it mostly covers (Segment Anything), for erase.

A brush stroke over an object usually spills over its neighbours; erasing the spill erases part of the
neighbour too, and the completion then grows the neighbour into the hole. :func:`snap_mask` asks the
segmenter for the object under the stroke (the stroke's box and points deep inside it), and keeps

- all of that object (what the brush missed of it, too), grown by ``margin`` px for its soft edge and shadow;
- of the stroke, only what lies within ``margin`` px of the object: a spill onto a neighbour is dropped.

When the segmenter finds nothing the stroke mostly covers (the object's pixels less than 60% under the
stroke, or the object far larger than the stroke), the stroke is returned unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from pixelsmith.engines.sessions import Segmenter
from pixelsmith.lazy import cv2


@dataclass(frozen=True)
class Snapped:
    mask: np.ndarray  # float32 0..1, the image's size
    snapped: bool
    score: float  # the segmenter's predicted IoU (0 when it was not asked)
    object_fraction: float  # share of the stroke that the snapped object covers


def _points(region: np.ndarray, count: int) -> list[list[float]]:
    dist = cv2.distanceTransform(region.astype(np.uint8), cv2.DIST_L2, 5)
    spacing = max(8.0, 0.25 * float(np.sqrt(region.sum())))
    out: list[list[float]] = []
    for _ in range(count):
        y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
        if dist[y, x] < 2.0:
            break
        out.append([float(x), float(y), 1.0])
        cv2.circle(dist, (int(x), int(y)), int(spacing), 0.0, -1)
    return out


def snap_mask(image: Image.Image, mask: np.ndarray, sam: Segmenter, margin: int = 6) -> Snapped:
    """The brushed ``mask`` (float 0..1) snapped to the object it mostly covers; see the module doc."""
    stroke = mask >= 0.5
    if stroke.sum() < 64:
        return Snapped(mask, False, 0.0, 0.0)
    ys, xs = np.nonzero(stroke)
    box = [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())]
    # the stroke's core: an overlap onto a neighbour is a thin rim, so the deepest points are on the object
    points = _points(stroke, 3)
    tries = [sam.segment(image, points=points, box=box, multimask=m) for m in (False, True)]
    best = None
    for seg in sorted(tries, key=lambda t: -t.score):
        obj = seg.array
        area = float(obj.sum())
        covered = float((obj & stroke).sum()) / max(area, 1.0)
        if area > 0 and covered >= 0.6 and area <= 1.5 * float(stroke.sum()):
            best = (seg, obj)
            break
    if best is None:
        return Snapped(mask, False, max(t.score for t in tries), 0.0)
    seg, obj = best
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
    near = cv2.dilate(obj.astype(np.uint8), kernel).astype(bool)
    keep = near & (stroke | cv2.dilate(obj.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool))
    out = np.where(keep, np.maximum(mask, obj.astype(np.float32)), 0.0).astype(np.float32)
    return Snapped(out, True, seg.score, float((obj & stroke).sum()) / float(stroke.sum()))
