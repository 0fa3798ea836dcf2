"""Export the MobileSAM checkpoint to two ONNX files, once, at ``pixelsmith models fetch`` time.

The model code is PyPI ``mobilesam-mirror==1.0.0`` (Apache-2.0), read from its downloaded wheel (the fetcher
checks the wheel's sha256 and unpacks it into a temporary folder), never installed. Its package ``__init__``
imports the predictor and the automatic mask generator, which import torchvision (PyPI torchvision breaks
against our CPU torch build), and ``tiny_vit_sam.py`` imports three helpers from timm (which imports
torchvision too). So this module

- registers an empty ``mobile_sam`` package (its ``__path__`` only) so that ``mobile_sam.modeling`` and
  ``mobile_sam.build_sam`` import without running ``mobile_sam/__init__.py``;
- stubs, for the duration of the export only, ``timm.models.layers`` (``DropPath``: identity at eval, which
  is all an export traces, since ``drop_path_rate=0``; ``to_2tuple``; ``trunc_normal_``, only weight
  initialisation, overwritten by the checkpoint) and ``timm.models.registry.register_model`` (a registry
  of model names we do not use).

Outputs (the run-time session, :mod:`pixelsmith.engines.embedded.mobilesam`, needs only onnxruntime):

- ``mobilesam_encoder.onnx``: ``image`` float32 [1, 3, 1024, 1024] (normalised, longest side resized to 1024,
  zero padded bottom/right) -> ``image_embeddings`` [1, 256, 64, 64];
- ``mobilesam_decoder.onnx``: ``image_embeddings``, ``point_coords`` [1, N, 2] (in the 1024 frame),
  ``point_labels`` [1, N] (1 include, 0 exclude, 2/3 box corners, -1 padding), ``mask_input``
  [1, 1, 256, 256], ``has_mask_input`` [1] -> ``low_res_masks`` [1, 4, 256, 256] (logits; 0 is the
  single-mask output, 1..3 the multimask outputs) and ``iou_predictions`` [1, 4].
"""

from __future__ import annotations

import contextlib
import pathlib
import sys
import types
from collections.abc import Iterator
from typing import Any

ENCODER = "mobilesam_encoder.onnx"
DECODER = "mobilesam_decoder.onnx"


@contextlib.contextmanager
def _mobile_sam_importable(code_dir: pathlib.Path) -> Iterator[None]:
    import torch

    saved = {k: v for k, v in sys.modules.items() if k == "mobile_sam" or k.startswith(("mobile_sam.", "timm"))}
    for k in saved:
        del sys.modules[k]

    class DropPath(torch.nn.Module):
        def __init__(self, drop_prob: float | None = None) -> None:
            super().__init__()
            self.drop_prob = drop_prob

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x  # eval mode (and drop_path_rate=0 in build_sam_vit_t): identity

    def to_2tuple(x: Any) -> tuple[Any, Any]:
        return tuple(x) if isinstance(x, (tuple, list)) else (x, x)

    def trunc_normal_(tensor: torch.Tensor, std: float = 1.0, **_: Any) -> torch.Tensor:
        return torch.nn.init.trunc_normal_(tensor, std=std)

    timm = types.ModuleType("timm")
    models = types.ModuleType("timm.models")
    layers = types.ModuleType("timm.models.layers")
    registry = types.ModuleType("timm.models.registry")
    layers.DropPath = DropPath  # type: ignore[attr-defined]
    layers.to_2tuple = to_2tuple  # type: ignore[attr-defined]
    layers.trunc_normal_ = trunc_normal_  # type: ignore[attr-defined]
    registry.register_model = lambda fn: fn  # type: ignore[attr-defined]
    package = types.ModuleType("mobile_sam")
    package.__path__ = [str(code_dir / "mobile_sam")]
    stubs = {
        "timm": timm,
        "timm.models": models,
        "timm.models.layers": layers,
        "timm.models.registry": registry,
        "mobile_sam": package,
    }
    sys.modules.update(stubs)
    try:
        yield
    finally:
        for k in [k for k in sys.modules if k == "mobile_sam" or k.startswith(("mobile_sam.", "timm"))]:
            del sys.modules[k]
        sys.modules.update(saved)


def export(checkpoint: pathlib.Path, code_dir: pathlib.Path, out_dir: pathlib.Path) -> list[pathlib.Path]:
    """Write the encoder and decoder ONNX files for ``checkpoint`` into ``out_dir``; returns their paths."""
    import importlib
    import importlib.util

    if importlib.util.find_spec("onnx") is None:
        raise ImportError("the ONNX export needs the onnx package (requirements.txt pins onnx==1.18.0)")
    import torch

    with _mobile_sam_importable(code_dir):
        build = importlib.import_module("mobile_sam.build_sam")
        onnx_utils = importlib.import_module("mobile_sam.utils.onnx")
        sam = build.build_sam_vit_t(checkpoint=None)
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        sam.load_state_dict(state)
        sam.eval()
        helper = onnx_utils.SamOnnxModel(sam, return_single_mask=False)

        class Decoder(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.helper = helper

            def forward(
                self,
                image_embeddings: torch.Tensor,
                point_coords: torch.Tensor,
                point_labels: torch.Tensor,
                mask_input: torch.Tensor,
                has_mask_input: torch.Tensor,
            ) -> tuple[torch.Tensor, torch.Tensor]:
                sparse = self.helper._embed_points(point_coords, point_labels)
                dense = self.helper._embed_masks(mask_input, has_mask_input)
                masks, iou = sam.mask_decoder.predict_masks(
                    image_embeddings=image_embeddings,
                    image_pe=sam.prompt_encoder.get_dense_pe(),
                    sparse_prompt_embeddings=sparse,
                    dense_prompt_embeddings=dense,
                )
                return masks, iou

        out_dir.mkdir(parents=True, exist_ok=True)
        encoder_path, decoder_path = out_dir / ENCODER, out_dir / DECODER
        with torch.no_grad():
            torch.onnx.export(
                sam.image_encoder,
                (torch.zeros(1, 3, 1024, 1024),),
                str(encoder_path),
                input_names=["image"],
                output_names=["image_embeddings"],
                opset_version=17,
                dynamo=False,
            )
            torch.onnx.export(
                Decoder(),
                (
                    torch.zeros(1, 256, 64, 64),
                    torch.zeros(1, 2, 2),
                    torch.tensor([[1.0, -1.0]]),
                    torch.zeros(1, 1, 256, 256),
                    torch.zeros(1),
                ),
                str(decoder_path),
                input_names=["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input"],
                output_names=["low_res_masks", "iou_predictions"],
                dynamic_axes={"point_coords": {1: "points"}, "point_labels": {1: "points"}},
                opset_version=17,
                dynamo=False,
            )
    return [encoder_path, decoder_path]
