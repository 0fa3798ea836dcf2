"""SSD-MobileNet-v2 COCO detector (TensorFlow frozen graph run by cv2.dnn) -> labelled boxes."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from pixelsmith.config import threads
from pixelsmith.engines.embedded import session_class
from pixelsmith.models import model_path

# The TF object-detection API numbers COCO's 80 classes with the original 1..90 ids (gaps kept).
COCO_IDS = {
    1: "person",
    2: "bicycle",
    3: "car",
    4: "motorcycle",
    5: "airplane",
    6: "bus",
    7: "train",
    8: "truck",
    9: "boat",
    10: "traffic light",
    11: "fire hydrant",
    13: "stop sign",
    14: "parking meter",
    15: "bench",
    16: "bird",
    17: "cat",
    18: "dog",
    19: "horse",
    20: "sheep",
    21: "cow",
    22: "elephant",
    23: "bear",
    24: "zebra",
    25: "giraffe",
    27: "backpack",
    28: "umbrella",
    31: "handbag",
    32: "tie",
    33: "suitcase",
    34: "frisbee",
    35: "skis",
    36: "snowboard",
    37: "sports ball",
    38: "kite",
    39: "baseball bat",
    40: "baseball glove",
    41: "skateboard",
    42: "surfboard",
    43: "tennis racket",
    44: "bottle",
    46: "wine glass",
    47: "cup",
    48: "fork",
    49: "knife",
    50: "spoon",
    51: "bowl",
    52: "banana",
    53: "apple",
    54: "sandwich",
    55: "orange",
    56: "broccoli",
    57: "carrot",
    58: "hot dog",
    59: "pizza",
    60: "donut",
    61: "cake",
    62: "chair",
    63: "couch",
    64: "potted plant",
    65: "bed",
    67: "dining table",
    70: "toilet",
    72: "tv",
    73: "laptop",
    74: "mouse",
    75: "remote",
    76: "keyboard",
    77: "cell phone",
    78: "microwave",
    79: "oven",
    80: "toaster",
    81: "sink",
    82: "refrigerator",
    84: "book",
    85: "clock",
    86: "vase",
    87: "scissors",
    88: "teddy bear",
    89: "hair drier",
    90: "toothbrush",
}
COCO_CLASSES = tuple(COCO_IDS.values())
INPUT = 300  # the graph's fixed input side


@dataclass
class Detection:
    label: str
    score: float
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in image pixels


@session_class("ssd-mobilenet-v2-coco")
class SsdSession:
    model = "ssd-mobilenet-v2-coco"

    def __init__(self) -> None:
        cv2.setNumThreads(threads())
        self.net = cv2.dnn.readNetFromTensorflow(
            str(model_path(self.model, "frozen_inference_graph.pb")), str(model_path(self.model, "ssd.pbtxt"))
        )

    def detect(self, image: Image.Image, min_score: float = 0.3) -> list[Detection]:
        """Every box scoring at least ``min_score``, best first."""
        rgb = np.asarray(image.convert("RGB"))
        h, w = rgb.shape[:2]
        blob = cv2.dnn.blobFromImage(rgb, size=(INPUT, INPUT), swapRB=False, crop=False)  # the graph takes RGB
        self.net.setInput(blob)
        raw = self.net.forward()[0, 0]  # N x [batch, class, score, x0, y0, x1, y1] (relative)
        found = []
        for _, cls, score, x0, y0, x1, y1 in raw:
            label = COCO_IDS.get(int(cls))
            if label is None or score < min_score:
                continue
            box = (int(max(0, x0) * w), int(max(0, y0) * h), int(min(1, x1) * w), int(min(1, y1) * h))
            if box[2] - box[0] >= 2 and box[3] - box[1] >= 2:
                found.append(Detection(label, float(score), box))
        return sorted(found, key=lambda d: -d.score)
