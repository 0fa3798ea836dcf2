"""Real-ESRGAN x4 through ncnn on the CPU, tiled with overlap so memory stays bounded.

Parallelism: the image is cut into equal tiles, as many as a multiple of the
worker count, and each worker thread runs one single-threaded ncnn net (ncnn
releases the GIL while it extracts). On a shared 2-core machine this beats one
net with 2 OpenMP threads, whose threads spin-wait on each other whenever
another process holds a core. The nets live in a pool owned by the session, so
the weights are loaded (and winograd-transformed) once per process, not once
per call.
"""

from __future__ import annotations

import math
import os
import queue
from concurrent.futures import ThreadPoolExecutor

import ncnn
import numpy as np
from PIL import Image

from pixelsmith.config import threads
from pixelsmith.engines.embedded import session_class
from pixelsmith.models import model_path

SCALE = 4


def split(length: int, tile: int, parts_multiple: int = 1) -> list[tuple[int, int]]:
    """Cut ``length`` into near-equal spans of at most ``tile`` (start, end)."""
    n = max(1, math.ceil(length / tile))
    if n % parts_multiple:
        n += parts_multiple - n % parts_multiple
    n = min(n, length)
    edges = [round(i * length / n) for i in range(n + 1)]
    return list(zip(edges[:-1], edges[1:]))


class RealEsrganSession:
    model = ""
    tile = 192  # largest tile side in input pixels; bounds the net's peak memory
    overlap = 12  # context pixels added around each tile and cropped away after
    # Inputs under this many pixels that fit one tile run as that one tile on one net, however many workers:
    # splitting them for the workers adds the overlap on a small area (64x64 became two 64x44 tiles, 1.375x
    # the network work) and loads a second net (~21 MiB) on the first call. Measured with bench/tile_split.py
    # (2 workers, interleaved, 2 shared cores at load 2-4), 2 tiles vs 1, medians at 64 / 128 / 192 / 256 px
    # square: realesr-general-x4v3 CPU 1.00x / 1.31x / 1.44x / 1.01x, wall 1.06x / 1.27x / 1.07x / 0.77x;
    # animevideov3 CPU 1.52x / 1.92x / 1.23x / 1.22x, wall 1.06x / 0.71x / 0.95x / 0.97x. Below 256x256 the
    # split costs up to 1.9x CPU and saves wall only when the other core is free (in a batch it is not).
    split_below = 256 * 256

    def __init__(self) -> None:
        self.workers = max(1, int(os.environ.get("PIXELSMITH_TILE_WORKERS", "0")) or threads())
        self._nets: queue.SimpleQueue[ncnn.Net] = queue.SimpleQueue()  # idle nets; a new one is made when all are busy
        self._pools: list[ncnn.Allocator] = []
        # The first net is loaded now: a session is its loaded model (``core.load_model``, a server's preload),
        # and the memory row of issue 13 is measured right after it (bench/startup.py, ``*-loaded``).
        self._nets.put(self._new_net())

    def release(self) -> None:
        """Free the buffers the nets' pools keep between calls (their weights stay loaded). Buffers in use
        by a running extraction are not in a pool's free list, so this is safe while others run."""
        for pool in list(self._pools):
            pool.clear()

    def _new_net(self) -> ncnn.Net:
        net = ncnn.Net()
        net.opt.use_vulkan_compute = False
        # Pools of our own rather than the net's hidden local ones: a pool keeps the buffers of the largest
        # tile it has seen (hundreds of MB per net), and only ours can be emptied (:meth:`release`).
        pools = (ncnn.PoolAllocator(), ncnn.PoolAllocator())  # locked: release() may clear them from any thread
        net.opt.blob_allocator, net.opt.workspace_allocator = pools
        self._pools.extend(pools)  # kept alive with the session (the net holds raw pointers to them)
        net.opt.num_threads = max(1, threads() // self.workers)
        net.load_param(str(model_path(self.model, "model.param")))
        net.load_model(str(model_path(self.model, "model.bin")))
        return net

    def _borrow(self) -> ncnn.Net:
        try:
            return self._nets.get_nowait()
        except queue.Empty:
            return self._new_net()

    def infer(self, tile: np.ndarray) -> np.ndarray:
        """The raw model call: HxWx3 float32 0..1 -> (4H)x(4W)x3 float32."""
        net = self._borrow()
        try:
            chw = np.ascontiguousarray(tile.transpose(2, 0, 1))
            ex = net.create_extractor()
            mat = ncnn.Mat(chw)  # ``chw`` must stay alive until extract returns (else NaNs)
            ex.input("data", mat)
            _, out = ex.extract("output")
            result = np.array(out).transpose(1, 2, 0)
            del ex, mat, chw
            return result
        finally:
            self._nets.put(net)

    def boxes(self, h: int, w: int) -> list[tuple[int, int, int, int]]:
        """Tiles (y0, y1, x0, x1) covering the image, their count a multiple of the workers when possible."""
        rows = split(h, self.tile)
        cols = split(w, self.tile)
        if self.workers > 1 and h * w >= self.split_below and (len(rows) * len(cols)) % self.workers:
            # Add tiles along the longer side so no worker idles at the end.
            if w >= h:
                cols = split(w, self.tile, self.workers)
            else:
                rows = split(h, self.tile, self.workers)
        return [(y0, y1, x0, x1) for y0, y1 in rows for x0, x1 in cols]

    def upscale(self, image: Image.Image, progress=None) -> Image.Image:
        """x4 upscale of an RGB(A) image; alpha is upscaled with Lanczos."""
        alpha = image.getchannel("A") if image.mode == "RGBA" else None
        rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        h, w, _ = rgb.shape
        out = np.empty((h * SCALE, w * SCALE, 3), dtype=np.uint8)
        boxes = self.boxes(h, w)
        done = [0]
        pad = self.overlap

        def run(box: tuple[int, int, int, int]) -> None:
            y0, y1, x0, x1 = box
            cy0, cx0 = max(0, y0 - pad), max(0, x0 - pad)
            cy1, cx1 = min(h, y1 + pad), min(w, x1 + pad)
            up = self.infer(rgb[cy0:cy1, cx0:cx1])
            # Keep only the tile's own area: the overlap gave it context at the borders.
            ty, tx = (y0 - cy0) * SCALE, (x0 - cx0) * SCALE
            th, tw = (y1 - y0) * SCALE, (x1 - x0) * SCALE
            out[y0 * SCALE : y1 * SCALE, x0 * SCALE : x1 * SCALE] = np.clip(
                up[ty : ty + th, tx : tx + tw] * 255.0 + 0.5, 0, 255
            ).astype(np.uint8)
            done[0] += 1
            if progress:
                progress(done[0], len(boxes))

        if self.workers == 1 or len(boxes) == 1:
            for box in boxes:
                run(box)
        else:
            with ThreadPoolExecutor(min(self.workers, len(boxes))) as pool:
                list(pool.map(run, boxes))
        result = Image.fromarray(out, "RGB")
        if alpha is not None:
            result.putalpha(alpha.resize(result.size, Image.Resampling.LANCZOS))
        return result


@session_class("realesr-animevideov3-x4")
class FastUpscaler(RealEsrganSession):
    model = "realesr-animevideov3-x4"
    tile = 384  # a compact net: larger tiles waste less on overlap at ~0.2 GB per tile


@session_class("realesrgan-x4plus")
class PhotoUpscaler(RealEsrganSession):
    model = "realesrgan-x4plus"
    tile = 192  # RRDB: about 1.5 GB per net at this size, one net per worker


@session_class("span-x4-ch52")
class SpanUpscaler(RealEsrganSession):
    """SPAN x4 (official ch52 weights): natural skin, a little soft; same ncnn blobs (data -> output)."""

    model = "span-x4-ch52"
    tile = 256


@session_class("realesr-general-x4v3")
class GeneralUpscaler(RealEsrganSession):
    """Real-ESRGAN realesr-general-x4v3: the compact photo model, sharp on stone, foliage and text."""

    model = "realesr-general-x4v3"
    tile = 384


@session_class("clearreality-x4")
class ClearRealityUpscaler(RealEsrganSession):
    """ClearReality v1 (SPAN architecture): opt-in only, its weights are CC-BY-NC-SA-4.0 (non-commercial)."""

    model = "clearreality-x4"
    tile = 256
