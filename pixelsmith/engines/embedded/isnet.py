"""ISNet salient-object segmentation (ONNX, 1024x1024) -> a soft alpha matte."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from PIL import Image

from pixelsmith.config import threads
from pixelsmith.engines.embedded import session_class
from pixelsmith.models import model_path

SIZE = 1024


@session_class("isnet-general")
class IsnetSession:
    model = "isnet-general"

    def __init__(self) -> None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads()
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        path = model_path(self.model, "isnet-general.onnx")
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    @staticmethod
    def preprocess(image: Image.Image) -> np.ndarray:
        small = image.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BILINEAR)
        x = (np.asarray(small, dtype=np.float32) - 128.0) / 256.0
        return x.transpose(2, 0, 1)[None]

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """The raw model call: (1,3,1024,1024) -> (1024,1024) in 0..1."""
        return self.session.run(["output"], {"input": batch})[0][0, 0]

    def matte(self, image: Image.Image) -> np.ndarray:
        """Soft foreground probability at the image's own resolution, float32 0..1."""
        pred = np.clip(self.infer(self.preprocess(image)), 0.0, 1.0)
        full = Image.fromarray((pred * 255.0 + 0.5).astype(np.uint8), "L").resize(image.size, Image.Resampling.BILINEAR)
        return np.asarray(full, dtype=np.float32) / 255.0
