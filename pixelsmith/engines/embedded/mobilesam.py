"""MobileSAM (Segment Anything, ViT-T image encoder) on onnxruntime: points and boxes -> a mask.

Two ONNX files exported once by ``pixelsmith models fetch`` (:mod:`pixelsmith.models.export_mobilesam`): the
image encoder (~4 s a 1024² image on 2 threads) and the prompt decoder (~0.1-0.3 s a prompt). The encoder's
embedding is kept per image (an LRU of :data:`CACHE_SIZE` images, ~4 MB each) under the image's
:func:`image_id`, so a further click on the same image costs only the decoder.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
from PIL import Image

from pixelsmith.engines.embedded import session_class
from pixelsmith.engines.embedded.onnx_options import session_options
from pixelsmith.lazy import cv2
from pixelsmith.models import model_path

MODEL = "mobilesam"
SIZE = 1024
LOW_RES = 256
CACHE_SIZE = 8
PIXEL_MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
PIXEL_STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)

Point = tuple[float, float, int]  # x, y (image pixels), label: 1 include, 0 exclude
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 (image pixels)


class UnknownImage(KeyError):
    """An image_id whose embedding is not (or no longer) cached: send the image again."""


def image_id(image: Image.Image) -> str:
    """sha256 hex of the image's RGB bytes and size: the key of its cached embedding."""
    rgb = image.convert("RGB")
    digest = hashlib.sha256(f"{rgb.width}x{rgb.height}:".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class Embedding:
    image_id: str
    size: tuple[int, int]  # original (w, h)
    resized: tuple[int, int]  # (w, h) inside the 1024 frame
    features: np.ndarray  # [1, 256, 64, 64]
    seconds: float


@dataclass(frozen=True)
class Segmentation:
    """One predicted mask at the image's size: ``logits`` (float32, > 0 inside), ``score`` (predicted IoU)."""

    image_id: str
    logits: np.ndarray
    score: float
    seconds: float  # decode time (plus the encode when this call embedded the image)

    @property
    def array(self) -> np.ndarray:
        """The mask, boolean HxW."""
        return self.logits > 0.0

    @property
    def mask(self) -> Image.Image:
        """The mask as a PIL mode-L image, 0/255, at the image's size."""
        return Image.fromarray(self.array.astype(np.uint8) * 255, "L")

    @property
    def size(self) -> tuple[int, int]:
        return (int(self.logits.shape[1]), int(self.logits.shape[0]))

    def probability(self) -> np.ndarray:
        """Soft 0..1 float32 HxW (the sigmoid of the logits)."""
        return (1.0 / (1.0 + np.exp(-np.clip(self.logits, -30.0, 30.0)))).astype(np.float32)


def validate_prompt(size: tuple[int, int], points: Sequence[Sequence[float]], box: Sequence[float] | None) -> None:
    """ValueError unless there is a prompt, inside the image, with labels 0/1 and a box x0<x1, y0<y1."""
    w, h = size
    if not points and box is None:
        raise ValueError("give at least one point or a box")
    for p in points:
        if len(p) not in (2, 3):
            raise ValueError(f"a point is [x, y] or [x, y, label], got {list(p)}")
        x, y = float(p[0]), float(p[1])
        if len(p) == 3 and float(p[2]) not in (0.0, 1.0):
            raise ValueError(f"a point's label is 1 (include) or 0 (exclude), got {p[2]}")
        if not (0 <= x < w and 0 <= y < h):
            raise ValueError(f"point ({x:g}, {y:g}) is outside the {w}x{h} image")
    if box is not None:
        if len(box) != 4:
            raise ValueError(f"a box is [x0, y0, x1, y1], got {list(box)}")
        x0, y0, x1, y1 = (float(v) for v in box)
        if not (x1 > x0 and y1 > y0):
            raise ValueError(f"a box needs x0 < x1 and y0 < y1, got {list(box)}")
        if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
            raise ValueError(f"box {list(box)} is outside the {w}x{h} image")


@session_class(MODEL)
class MobileSamSession:
    model = MODEL

    def __init__(self) -> None:
        opts = session_options()  # threads() intra-op threads that sleep when idle: onnx_options.py
        providers = ["CPUExecutionProvider"]
        self.encoder = ort.InferenceSession(str(model_path(MODEL, "mobilesam_encoder.onnx")), opts, providers=providers)
        self.decoder = ort.InferenceSession(str(model_path(MODEL, "mobilesam_decoder.onnx")), opts, providers=providers)
        self._cache: OrderedDict[str, Embedding] = OrderedDict()
        self._lock = threading.Lock()

    # -- the image encoder, cached -------------------------------------------------------------------------
    @staticmethod
    def preprocess(image: Image.Image) -> tuple[np.ndarray, tuple[int, int]]:
        rgb = image.convert("RGB")
        w, h = rgb.size
        scale = SIZE / max(w, h)
        nw, nh = int(w * scale + 0.5), int(h * scale + 0.5)
        small = np.asarray(rgb.resize((nw, nh), Image.Resampling.BILINEAR), dtype=np.float32)
        x = np.zeros((SIZE, SIZE, 3), dtype=np.float32)
        x[:nh, :nw] = (small - PIXEL_MEAN) / PIXEL_STD
        return x.transpose(2, 0, 1)[None], (nw, nh)

    def cached(self, key: str) -> Embedding | None:
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
            return found

    def embed(self, image: Image.Image, key: str | None = None) -> Embedding:
        """The image's embedding (``key``: its :func:`image_id` if known), from the cache or computed now."""
        key = key or image_id(image)
        found = self.cached(key)
        if found is not None:
            return found
        t0 = time.perf_counter()
        batch, resized = self.preprocess(image)
        features = self.encoder.run(["image_embeddings"], {"image": batch})[0]
        emb = Embedding(key, (image.width, image.height), resized, features, time.perf_counter() - t0)
        with self._lock:
            self._cache[key] = emb
            self._cache.move_to_end(key)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return emb

    # -- the prompt decoder ----------------------------------------------------------------------------------
    def predict(
        self,
        emb: Embedding,
        points: Sequence[Sequence[float]] = (),
        box: Sequence[float] | None = None,
        multimask: bool | None = None,
    ) -> Segmentation:
        """Decode a prompt against an embedding.

        ``multimask``: False takes SAM's single-mask output; True the best-scored of its three multimask
        outputs (better for one ambiguous click); None (default) does what SAM's own ONNX export does: the
        multimask choice for a lone point, the single mask for several points or a box.
        """
        validate_prompt(emb.size, points, box)
        t0 = time.perf_counter()
        w, h = emb.size
        nw, nh = emb.resized
        sx, sy = nw / w, nh / h
        coords: list[list[float]] = []
        labels: list[float] = []
        for p in points:
            coords.append([float(p[0]) * sx, float(p[1]) * sy])
            labels.append(float(int(p[2]) if len(p) == 3 else 1))
        if box is not None:
            x0, y0, x1, y1 = (float(v) for v in box)
            coords += [[x0 * sx, y0 * sy], [x1 * sx, y1 * sy]]
            labels += [2.0, 3.0]
        else:
            coords.append([0.0, 0.0])
            labels.append(-1.0)
        low, iou = self.decoder.run(
            ["low_res_masks", "iou_predictions"],
            {
                "image_embeddings": emb.features,
                "point_coords": np.asarray([coords], dtype=np.float32),
                "point_labels": np.asarray([labels], dtype=np.float32),
                "mask_input": np.zeros((1, 1, LOW_RES, LOW_RES), dtype=np.float32),
                "has_mask_input": np.zeros(1, dtype=np.float32),
            },
        )
        if multimask is None:
            multimask = len(coords) <= 2 and box is None
        pick = 1 + int(np.argmax(iou[0, 1:])) if multimask else 0
        logits = self.upscale(low[0, pick], emb)
        return Segmentation(emb.image_id, logits, float(iou[0, pick]), time.perf_counter() - t0)

    @staticmethod
    def upscale(low: np.ndarray, emb: Embedding) -> np.ndarray:
        """256² low-res logits -> the 1024 frame -> crop the padding -> the image's size (SAM's postprocess)."""
        nw, nh = emb.resized
        frame = cv2.resize(low.astype(np.float32), (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
        return np.ascontiguousarray(
            cv2.resize(frame[:nh, :nw], emb.size, interpolation=cv2.INTER_LINEAR), dtype=np.float32
        )

    def segment(
        self,
        image: Image.Image | str,
        points: Sequence[Sequence[float]] = (),
        box: Sequence[float] | None = None,
        multimask: bool | None = None,
    ) -> Segmentation:
        """Segment ``image`` (a PIL image, or the image_id of one embedded earlier) from points and/or a box."""
        if isinstance(image, str):
            emb = self.cached(image)
            if emb is None:
                raise UnknownImage(image)
            encode = 0.0
        else:
            validate_prompt(image.size, points, box)
            key = image_id(image)
            known = self.cached(key)
            emb = known or self.embed(image, key)
            encode = 0.0 if known is not None else emb.seconds
        seg = self.predict(emb, points, box, multimask)
        return Segmentation(seg.image_id, seg.logits, seg.score, seg.seconds + encode)
