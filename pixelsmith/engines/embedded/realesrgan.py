"""Real-ESRGAN x4 through ncnn on the CPU, tiled with overlap so memory stays bounded."""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import ncnn
import numpy as np
from PIL import Image

from pixelsmith.config import threads
from pixelsmith.engines.embedded import session_class
from pixelsmith.models import model_path

SCALE = 4


class RealEsrganSession:
    model = ""
    tile = 192  # input pixels per tile side; x4plus at 192 px peaks around 1.5 GB
    overlap = 12

    def __init__(self) -> None:
        # One net per worker thread: tiles run in parallel on separate cores.
        self.workers = max(1, min(threads(), int(os.environ.get("PIXELSMITH_TILE_WORKERS", "0")) or threads()))
        self._local = threading.local()

    def _net(self) -> ncnn.Net:
        net = getattr(self._local, "net", None)
        if net is None:
            net = ncnn.Net()
            net.opt.use_vulkan_compute = False
            net.opt.num_threads = max(1, threads() // self.workers)
            net.load_param(str(model_path(self.model, "model.param")))
            net.load_model(str(model_path(self.model, "model.bin")))
            self._local.net = net
        return net

    def infer(self, tile: np.ndarray) -> np.ndarray:
        """The raw model call: HxWx3 float32 0..1 -> (4H)x(4W)x3 float32."""
        chw = np.ascontiguousarray(tile.transpose(2, 0, 1))
        ex = self._net().create_extractor()
        mat = ncnn.Mat(chw)  # ``chw`` must stay alive until extract returns (else NaNs)
        ex.input("data", mat)
        _, out = ex.extract("output")
        result = np.array(out).transpose(1, 2, 0)
        del mat, chw
        return result

    def upscale(self, image: Image.Image, progress=None) -> Image.Image:
        """x4 upscale of an RGB(A) image; alpha is upscaled with Lanczos."""
        alpha = image.getchannel("A") if image.mode == "RGBA" else None
        rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        h, w, _ = rgb.shape
        out = np.zeros((h * SCALE, w * SCALE, 3), dtype=np.float32)
        boxes = [(y, x) for y in range(0, h, self.tile) for x in range(0, w, self.tile)]
        done = [0]

        def run(box: tuple[int, int]) -> None:
            y, x = box
            y0, x0 = max(0, y - self.overlap), max(0, x - self.overlap)
            y1, x1 = min(h, y + self.tile + self.overlap), min(w, x + self.tile + self.overlap)
            up = self.infer(rgb[y0:y1, x0:x1])
            # Keep only the tile's own area: the overlap gave it context at the borders.
            ty, tx = (y - y0) * SCALE, (x - x0) * SCALE
            th, tw = (min(h, y + self.tile) - y) * SCALE, (min(w, x + self.tile) - x) * SCALE
            out[y * SCALE:y * SCALE + th, x * SCALE:x * SCALE + tw] = up[ty:ty + th, tx:tx + tw]
            done[0] += 1
            if progress:
                progress(done[0], len(boxes))

        if self.workers == 1 or len(boxes) == 1:
            for box in boxes:
                run(box)
        else:
            with ThreadPoolExecutor(self.workers) as pool:
                list(pool.map(run, boxes))
        result = Image.fromarray(np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8), "RGB")
        if alpha is not None:
            result.putalpha(alpha.resize(result.size, Image.Resampling.LANCZOS))
        return result


@session_class("realesr-animevideov3-x4")
class FastUpscaler(RealEsrganSession):
    model = "realesr-animevideov3-x4"
    tile = 256


@session_class("realesrgan-x4plus")
class PhotoUpscaler(RealEsrganSession):
    model = "realesrgan-x4plus"
    tile = 192
