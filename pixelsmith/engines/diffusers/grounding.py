"""Text-grounded masks: OWLv2 finds boxes for a phrase, SAM turns each box into a pixel mask.

This is how search-and-replace and search-and-recolor know what to edit. Both
models run through ``transformers`` and are shared through the component store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image

from pixelsmith.engines.diffusers import components as C
from pixelsmith.engines.diffusers._lazy import torch

if TYPE_CHECKING:  # numpy is imported inside the functions: listing the tools imports no numpy
    import numpy as np

DETECTOR = "owlv2-base"
SEGMENTER = "sam-vit-base"


@dataclass
class Found:
    mask: np.ndarray  # float32 HxW in 0..1, white = the object
    boxes: list[tuple[float, float, float, float]]
    scores: list[float]
    fallback: bool  # nothing passed the threshold: the best box was used anyway


def detect(
    image: Image.Image, phrase: str, threshold: float = 0.1, detector: str = DETECTOR, max_boxes: int = 4
) -> tuple[list[tuple[float, float, float, float]], list[float], bool]:
    """Boxes (x0, y0, x1, y1 in image pixels) for ``phrase``, best first."""
    model = C.hf_model(detector, "Owlv2ForObjectDetection")
    tokenizer = C.hf_processor(detector, "AutoTokenizer")
    processor = C.hf_processor(detector, "Owlv2ImageProcessor")
    rgb = image.convert("RGB")
    with C.TOKENIZER_LOCK:  # a shared fast tokenizer is not thread-safe (see C.TOKENIZER_LOCK)
        text = tokenizer(
            [phrase.strip() or "object"],
            padding="max_length",
            truncation=True,
            max_length=min(tokenizer.model_max_length, 16),
            return_tensors="pt",
        )
    pixels = processor(images=rgb, return_tensors="pt").pixel_values.to(C.device(), model.dtype)
    with torch.inference_mode():
        out = model(
            input_ids=text.input_ids.to(C.device()),
            attention_mask=text.attention_mask.to(C.device()),
            pixel_values=pixels,
        )
    # OWLv2 pads to a square at the bottom/right: boxes come back in that square's frame.
    side = max(rgb.size)
    logits = out.logits[0].float().max(-1).values.sigmoid().cpu()
    boxes = out.pred_boxes[0].float().cpu()  # cx, cy, w, h in 0..1 of the padded square
    order = torch.argsort(logits, descending=True)
    chosen = [int(i) for i in order if logits[i] >= threshold][:max_boxes]
    fallback = not chosen
    if fallback:
        chosen = [int(order[0])]
    result = []
    for i in chosen:
        cx, cy, w, h = (boxes[i] * side).tolist()
        x0, y0 = max(0.0, cx - w / 2), max(0.0, cy - h / 2)
        x1, y1 = min(float(rgb.width), cx + w / 2), min(float(rgb.height), cy + h / 2)
        least = max(2.0, 0.08 * min(rgb.size))  # a box squeezed to nothing (or in the padding): give it a size
        if x1 - x0 < least or y1 - y0 < least:
            x0, y0 = min(x0, rgb.width - least), min(y0, rgb.height - least)
            x1, y1 = max(x1, x0 + least), max(y1, y0 + least)
        result.append((x0, y0, x1, y1))
    return result, [float(logits[i]) for i in chosen], fallback


def segment(
    image: Image.Image, boxes: list[tuple[float, float, float, float]], segmenter: str = SEGMENTER
) -> np.ndarray:
    """SAM's soft mask for the union of ``boxes`` at the image's resolution."""
    import numpy as np
    from transformers import SamProcessor

    model = C.hf_model(segmenter, "SamModel")
    processor = SamProcessor(image_processor=C.hf_processor(segmenter, "SamImageProcessor"))
    rgb = image.convert("RGB")
    inputs = processor(images=rgb, input_boxes=[[list(b) for b in boxes]], return_tensors="pt")
    with torch.inference_mode():
        out = model(
            pixel_values=inputs["pixel_values"].to(C.device(), model.dtype),
            input_boxes=inputs["input_boxes"].to(C.device(), model.dtype),
            multimask_output=False,
        )
    masks = processor.image_processor.post_process_masks(
        out.pred_masks.float().cpu(), inputs["original_sizes"], inputs["reshaped_input_sizes"], binarize=False
    )[0]
    prob = torch.sigmoid(masks).amax(dim=(0, 1)).numpy().astype(np.float32)  # union over boxes
    return prob


def find(image: Image.Image, phrase: str, threshold: float = 0.1) -> Found:
    """The object named by ``phrase`` as a soft pixel mask (grow it with imaging.masks.grow_mask)."""
    import numpy as np

    boxes, scores, fallback = detect(image, phrase, threshold)
    mask = segment(image, boxes)
    # Keep SAM inside its boxes (slightly enlarged): stray blobs elsewhere are never the object.
    keep = np.zeros_like(mask)
    for x0, y0, x1, y1 in boxes:
        pad = 0.05 * max(x1 - x0, y1 - y0)
        keep[int(max(0, y0 - pad)) : int(np.ceil(y1 + pad)), int(max(0, x0 - pad)) : int(np.ceil(x1 + pad))] = 1
    mask = mask * keep
    if float((mask >= 0.5).sum()) == 0:  # SAM found nothing inside the box: edit the box itself
        mask = keep
    return Found(mask.astype(np.float32), boxes, scores, fallback)
