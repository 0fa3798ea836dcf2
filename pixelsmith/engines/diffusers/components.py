"""Shared model components: loaded lazily, once, kept in an LRU under a memory budget.

Every tool on the SD3.5 family uses the same transformer, VAE and text encoders (and every tool on
the SDXL family the same VAE and text encoders, with the base or the inpainting UNet):
generate, inpaint, the ControlNet tools and the upscalers all ask this store for
``("sd3.5-large", "transformer")`` and get the one loaded copy. Pipelines are
cheap wrappers built per call around these components (see ``pipelines.py``).

Settings (environment):
  PIXELSMITH_DEVICE       cuda / cuda:1 / cpu / mps (default: cuda when available)
  PIXELSMITH_DTYPE        bfloat16 / float16 / float32 (default: bf16 on GPUs that have it, else fp16; fp32 on CPU)
  PIXELSMITH_GPU_MEMORY   budget in GB for resident components (default: 90% of the device's memory)
  PIXELSMITH_OFFLOAD      1 = components pushed out of the budget wait in CPU memory instead of being dropped
"""

from __future__ import annotations

import collections
import os
import pathlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pixelsmith.engines.diffusers._lazy import torch
from pixelsmith.models.catalog import get_model, model_path


def weights_dir(name: str) -> pathlib.Path:
    """The folder holding an installed model's files (real files, hard links or links into the HF cache)."""
    return model_path(get_model(name).name)


def device() -> torch.device:
    wanted = os.environ.get("PIXELSMITH_DEVICE")
    if wanted:
        return torch.device(wanted)
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def dtype() -> torch.dtype:
    wanted = os.environ.get("PIXELSMITH_DTYPE")
    if wanted:
        return getattr(torch, wanted)
    dev = device()
    if dev.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if dev.type == "mps":
        return torch.float16
    return torch.float32  # CPUs: bf16 matmuls are slow or missing on most


def budget_bytes() -> int:
    gb = os.environ.get("PIXELSMITH_GPU_MEMORY")
    if gb:
        return int(float(gb) * 1e9)
    dev = device()
    if dev.type == "cuda":
        return int(torch.cuda.get_device_properties(dev).total_memory * 0.9)
    return 1 << 62  # CPU: the OS manages memory; no budget


def offload_enabled() -> bool:
    return os.environ.get("PIXELSMITH_OFFLOAD", "") not in ("", "0", "false", "no")


def nbytes(obj: Any) -> int:
    if isinstance(obj, torch.nn.Module):
        return sum(t.numel() * t.element_size() for t in [*obj.parameters(), *obj.buffers()])
    return 0


@dataclass
class Entry:
    value: Any
    size: int
    resident: bool  # on the compute device (counts against the budget)


class ComponentStore:
    """An LRU of loaded components keyed by (model, part), bounded by a device-memory budget."""

    def __init__(self) -> None:
        self._entries: collections.OrderedDict[tuple, Entry] = collections.OrderedDict()
        self._lock = threading.RLock()
        self.loads = 0  # how many times a loader ran (tests check sharing with it)

    def get(self, key: tuple, load: Callable[[], Any], on_device: bool = True) -> Any:
        """The component under ``key``, loaded once; ``on_device=False`` leaves it in CPU memory (an
        offloading plan: diffusers' offload hooks move it to the device while it runs)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                value = load()
                self.loads += 1
                entry = Entry(value, nbytes(value), resident=False)
                self._entries[key] = entry
            self._entries.move_to_end(key)
            if not on_device:
                if entry.resident and isinstance(entry.value, torch.nn.Module):
                    entry.value.to("cpu")
                entry.resident = False
                return entry.value
            if not entry.resident:
                self._make_room(entry.size, keep=key)
                if isinstance(entry.value, torch.nn.Module):
                    entry.value.to(device())
                entry.resident = True
            return entry.value

    def put(self, key: tuple, value: Any) -> Any:
        """Register an already built component (benchmarks build random-weight models in memory)."""
        with self._lock:
            self._entries[key] = Entry(value, nbytes(value), resident=False)
        return self.get(key, lambda: value)

    def resident_bytes(self) -> int:
        return sum(e.size for e in self._entries.values() if e.resident)

    def keys(self) -> list[tuple]:
        return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            _empty_cache()

    def _make_room(self, size: int, keep: tuple) -> None:
        budget = budget_bytes()
        for key in list(self._entries):
            if self.resident_bytes() + size <= budget:
                break
            entry = self._entries[key]
            if key == keep or not entry.resident or entry.size == 0:
                continue
            if offload_enabled():
                entry.value.to("cpu")
                entry.resident = False
            else:
                del self._entries[key]
            _empty_cache()


def _empty_cache() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


STORE = ComponentStore()
# One diffusion run at a time per process: runs share components whose state (attention
# processors while an IP-Adapter is attached, device placement) must not change mid-run.
RUN_LOCK = threading.RLock()
# Hugging Face fast tokenizers are not safe to call from several threads at once: each call sets the shared
# Rust tokenizer's padding and truncation state (huggingface/tokenizers#537). Three threads encoding prompts
# on one SD3 pipeline's tokenizers gave "Sizes of tensors must match ... Expected size 7 but got size 77" in
# 1 of 3 runs of 3 x 40 encodes (a 500 for one request of a Ray Serve batch, seen in CI). Every tokenizer
# call of this engine holds this lock (prompt embeddings, OWLv2's text queries).
TOKENIZER_LOCK = threading.Lock()


# --- loaders --------------------------------------------------------------------------------


def sd3_part(base: str, part: str, on_device: bool = True, quantize: str = "none") -> Any:
    """One component of an SD3 pipeline folder (transformer, vae, text_encoder[_2|_3], tokenizer[_2|_3]).

    ``quantize`` (int8 | nf4) loads the transformer through diffusers' torchao or bitsandbytes
    backend, as the memory plan asks (planner.py); quantized weights load straight to the device.
    """
    if part == "transformer" and quantize != "none":
        return STORE.get((base, part, quantize), lambda: _quantized_transformer(base, quantize))

    def load() -> Any:
        root = weights_dir(base)
        if part.startswith("tokenizer"):
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(root / part)
        if part == "transformer":
            from diffusers import SD3Transformer2DModel

            return optimise(SD3Transformer2DModel.from_pretrained(root, subfolder=part, torch_dtype=dtype()).eval())
        if part == "vae":
            from diffusers import AutoencoderKL

            return optimise(AutoencoderKL.from_pretrained(root, subfolder=part, torch_dtype=dtype()).eval())
        if part == "text_encoder_3":
            from transformers import T5EncoderModel

            return T5EncoderModel.from_pretrained(root / part, dtype=dtype()).eval()
        from transformers import CLIPTextModelWithProjection

        return CLIPTextModelWithProjection.from_pretrained(root / part, dtype=dtype()).eval()

    return STORE.get((base, part), load, on_device=on_device or part.startswith("tokenizer"))


def _variant(folder: pathlib.Path) -> str | None:
    """ "fp16" when the folder holds the hub's fp16 weight files (what ``pull`` fetches for SDXL), else None."""
    return "fp16" if any(folder.glob("*.fp16.safetensors")) else None


def xl_part(base: str, part: str, on_device: bool = True, quantize: str = "none") -> Any:
    """One component of an SDXL pipeline (unet, vae, text_encoder[_2], tokenizer[_2]).

    A UNet-only checkpoint (``hub.SHARES``: the inpainting one) takes everything but its UNet from
    the base checkpoint, so inpainting and text-to-image share one VAE and one pair of text encoders.
    In float16 the VAE is ``sdxl-vae-fp16-fix`` when installed (the original overflows to NaN in fp16;
    without the fix the pipelines upcast it to fp32 for decoding, as its config's force_upcast asks).
    """
    from pixelsmith.models import is_installed
    from pixelsmith.models.hub import SHARES

    owner = base if part == "unet" else SHARES.get(base, base)
    if part == "vae" and dtype() == torch.float16 and is_installed("sdxl-vae-fp16-fix"):
        owner, folder_part = "sdxl-vae-fp16-fix", ""
    else:
        folder_part = part
    if part == "unet" and quantize != "none":
        return STORE.get((owner, part, quantize), lambda: _quantized(owner, "unet", quantize))

    def load() -> Any:
        root = weights_dir(owner)
        folder = root / folder_part if folder_part else root
        if part.startswith("tokenizer"):
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(folder)
        if part == "unet":
            from diffusers import UNet2DConditionModel

            return optimise(
                UNet2DConditionModel.from_pretrained(folder, torch_dtype=dtype(), variant=_variant(folder)).eval()
            )
        if part == "vae":
            from diffusers import AutoencoderKL

            return optimise(AutoencoderKL.from_pretrained(folder, torch_dtype=dtype(), variant=_variant(folder)).eval())
        import transformers

        cls = transformers.CLIPTextModel if part == "text_encoder" else transformers.CLIPTextModelWithProjection
        return cls.from_pretrained(folder, dtype=dtype(), variant=_variant(folder)).eval()

    return STORE.get((owner, part), load, on_device=on_device or part.startswith("tokenizer"))


def _quantized_transformer(base: str, quantize: str) -> Any:
    return _quantized(base, "transformer", quantize)


def _quantized(base: str, part: str, quantize: str) -> Any:
    import diffusers

    if quantize == "nf4":
        config: Any = diffusers.BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype()
        )
    elif quantize == "int8":
        config = diffusers.TorchAoConfig("int8wo")
    else:
        raise ValueError(f"unknown quantization {quantize!r}")
    cls = diffusers.SD3Transformer2DModel if part == "transformer" else diffusers.UNet2DConditionModel
    folder = weights_dir(base) / part
    return cls.from_pretrained(folder, torch_dtype=dtype(), quantization_config=config, variant=_variant(folder)).eval()


def optimise(model: Any) -> Any:
    """GPU speed-ups that keep outputs equal to plain diffusers up to rounding (see docs/performance.md).

    - fused QKV projections in the MMDiT (one matmul instead of three);
    - channels-last memory layout for the VAE's convolutions;
    - torch.compile of the transformer with PIXELSMITH_COMPILE=1 (or a mode name such as
      max-autotune): minutes of warm-up per shape, worth it for a server, not for one image.
    """
    if device().type != "cuda":
        return model
    kind = type(model).__name__
    if kind == "SD3Transformer2DModel":
        if os.environ.get("PIXELSMITH_FUSE_QKV", "1") != "0":
            model.fuse_qkv_projections()
        mode = os.environ.get("PIXELSMITH_COMPILE", "")
        if mode not in ("", "0"):
            model.compile(mode=None if mode == "1" else mode, fullgraph=True, dynamic=False)
    elif kind == "UNet2DConditionModel":
        model = model.to(memory_format=torch.channels_last)  # the UNet is convolutions as much as attention
        mode = os.environ.get("PIXELSMITH_COMPILE", "")
        if mode not in ("", "0"):
            model.compile(mode=None if mode == "1" else mode, fullgraph=True, dynamic=False)
    elif kind == "AutoencoderKL":
        model = model.to(memory_format=torch.channels_last)
    return model


def scheduler(base: str) -> Any:
    """A fresh scheduler (they keep per-run state) from the model's scheduler config: flow-matching Euler for
    SD3, the checkpoint's own (EulerDiscreteScheduler for SDXL base) for SDXL."""
    import diffusers

    from pixelsmith.models.hub import KIND, SHARES

    if KIND.get(base) in ("sdxl", "sdxl-unet"):
        owner = SHARES.get(base, base)
        config = STORE.get(
            (owner, "scheduler_config"),
            lambda: diffusers.EulerDiscreteScheduler.load_config(weights_dir(owner), subfolder="scheduler"),
        )
        return getattr(diffusers, config.get("_class_name", "EulerDiscreteScheduler")).from_config(config)
    config = STORE.get(
        (base, "scheduler_config"),
        lambda: diffusers.FlowMatchEulerDiscreteScheduler.load_config(weights_dir(base), subfolder="scheduler"),
    )
    return diffusers.FlowMatchEulerDiscreteScheduler.from_config(config)


def controlnet(name: str, on_device: bool = True) -> Any:
    """An SD3 ControlNet, or a UNet ControlNet (SDXL) for the ``sdxl-controlnet`` catalogue kind."""
    import diffusers

    from pixelsmith.models.hub import KIND

    def load() -> Any:
        folder = weights_dir(name)
        if KIND.get(name) == "sdxl-controlnet":
            return diffusers.ControlNetModel.from_pretrained(folder, torch_dtype=dtype(), variant=_variant(folder))
        return diffusers.SD3ControlNetModel.from_pretrained(folder, torch_dtype=dtype())

    return STORE.get((name, "controlnet"), lambda: load().eval(), on_device=on_device)


def hf_model(name: str, cls_name: str, subfolder: str = "") -> Any:
    """A transformers model (detector, segmenter, depth, image encoder) by class name, optionally from a
    sub-folder of the model's folder (h94/IP-Adapter keeps its image encoder in ``models/image_encoder``)."""
    import transformers

    cls = getattr(transformers, cls_name)
    return STORE.get(
        (name, cls_name, subfolder),
        lambda: cls.from_pretrained(weights_dir(name) / subfolder, dtype=dtype()).eval(),
    )


def hf_processor(name: str, cls_name: str) -> Any:
    import transformers

    cls = getattr(transformers, cls_name)
    return STORE.get((name, cls_name), lambda: cls.from_pretrained(weights_dir(name)))


def hf_processor_at(name: str, cls_name: str, subfolder: str) -> Any:
    import transformers

    cls = getattr(transformers, cls_name)
    return STORE.get((name, cls_name, subfolder), lambda: cls.from_pretrained(weights_dir(name) / subfolder))
