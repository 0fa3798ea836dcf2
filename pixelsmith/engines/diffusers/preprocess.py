"""Control images for the SD3.5 ControlNets: canny edges, sketch lines, depth maps, blur tiles."""

from __future__ import annotations

from PIL import Image, ImageFilter

from pixelsmith.engines.diffusers import components as C
from pixelsmith.engines.diffusers._lazy import torch
from pixelsmith.lazy import cv2

DEPTH_MODEL = "depth-anything-v2-small"


def canny(image: Image.Image, low: int = 100, high: int = 200) -> Image.Image:
    """White edges on black, the way the canny ControlNet was trained."""
    import numpy as np

    gray = np.asarray(image.convert("L"))
    edges = cv2.Canny(gray, low, high)
    return Image.fromarray(edges).convert("RGB")


def sketch_lines(image: Image.Image) -> Image.Image:
    """A drawing (dark strokes on light paper, or light on dark) as white lines on black.

    Thin strokes survive as they are; scanned pencil gets an adaptive threshold so
    paper texture does not turn into edges. The result is what the canny
    ControlNet expects, so sketches need no model of their own.
    """
    import numpy as np

    gray = np.asarray(image.convert("L"), dtype=np.uint8)
    if gray.mean() < 128:  # light lines on a dark ground: flip to dark-on-light first
        gray = (255 - gray).astype(np.uint8)
    block = max(3, (min(gray.shape) // 32) | 1)
    lines = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, block, 8)
    if lines.mean() < 1:  # a flat or photographic input: fall back to its edges
        return canny(image)
    return Image.fromarray(lines).convert("RGB")


def depth(image: Image.Image, model: str = DEPTH_MODEL) -> Image.Image:
    """Depth Anything's relative depth (near = white), as an RGB image at the input size."""
    import numpy as np

    net = C.hf_model(model, "DepthAnythingForDepthEstimation")
    processor = C.hf_processor(model, "AutoImageProcessor")
    inputs = processor(images=image.convert("RGB"), return_tensors="pt")
    with torch.inference_mode():
        pred = net(pixel_values=inputs.pixel_values.to(C.device(), net.dtype)).predicted_depth.float()
    pred = (
        torch.nn.functional.interpolate(
            pred[:, None], size=(image.height, image.width), mode="bicubic", align_corners=False
        )[0, 0]
        .cpu()
        .numpy()
    )
    lo, hi = np.percentile(pred, 1), np.percentile(pred, 99)
    norm = np.clip((pred - lo) / max(hi - lo, 1e-6), 0, 1)
    return Image.fromarray((norm * 255 + 0.5).astype(np.uint8)).convert("RGB")


def blur(image: Image.Image, radius: float) -> Image.Image:
    """The blur ControlNet's input: the image softened (it was trained to sharpen such inputs)."""
    return image.convert("RGB").filter(ImageFilter.GaussianBlur(radius)) if radius > 0 else image.convert("RGB")
