"""Shared by the diffusers engine's tests of both families (test_diffusers_engine.py for SD3.5,
test_diffusers_sdxl.py for SDXL): a models folder of tiny random-weight models installed through
``pull --from``, the sample inputs, and a run on the diffusers engine. Imported by those test modules, so
its fixtures are theirs (pytest collects fixtures from a test module's namespace)."""

from __future__ import annotations

import contextlib
import json
import pathlib
from collections.abc import Iterable, Iterator

import numpy as np
import pytest
from PIL import Image

from pixelsmith import core

SAMPLES = pathlib.Path(__file__).resolve().parent.parent / "samples"
CONFIGS = pathlib.Path(__file__).parent / "data" / "configs"  # the real architectures' configs (SOURCES.md)


def cfg(rel: str) -> dict:
    return json.loads((CONFIGS / rel).read_text())


def meta_empty(*shape: int):
    """A bf16 tensor of ``shape`` on the meta device: a shape, no storage."""
    import torch

    return torch.empty(*shape, device=torch.device("meta"), dtype=torch.bfloat16)


@pytest.fixture(scope="module")
def quiet_diffusers():
    """diffusers' logger at error level for the module (the meta builds warn about every missing weight)."""
    from diffusers.utils import logging as dlog

    level = dlog.get_verbosity()
    dlog.set_verbosity_error()
    yield
    dlog.set_verbosity(level)


@contextlib.contextmanager
def tiny_models(tmp_path_factory, names: Iterable[str], link: Iterable[str] = ()) -> Iterator[dict]:
    """A models folder holding the tiny diffusers models ``names`` (built here, imported with pull --from) and
    symlinks to the real models ``link`` where installed; the engine on the CPU with 2 steps; 1 torch thread
    (tiny matmuls: threads only add synchronisation on a shared CPU)."""
    import torch

    from pixelsmith.config import models_dir
    from pixelsmith.engines.diffusers import components, tiny
    from pixelsmith.engines.diffusers.pull import pull

    real = models_dir()
    root = tmp_path_factory.mktemp("models")
    built = tmp_path_factory.mktemp("tiny")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PIXELSMITH_MODELS", str(root))
        mp.setenv("PIXELSMITH_DIFFUSION_STEPS", "2")
        mp.setenv("PIXELSMITH_DEVICE", "cpu")
        mp.delenv("PIXELSMITH_FAMILY", raising=False)
        for name in link:
            if (real / name).exists():
                (root / name).symlink_to(real / name)
        tiny.build_all(built, tuple(names))
        components.STORE.clear()
        installed = pull(["all"], source=built, log=lambda line: None)
        try:
            yield {"root": root, "built": built, "installed": installed}
        finally:
            components.STORE.clear()
    torch.set_num_threads(threads)


def sample(name: str, size: tuple[int, int]) -> Image.Image:
    return Image.open(SAMPLES / name).convert("RGB").resize(size, Image.Resampling.LANCZOS)


@pytest.fixture(scope="module")
def photo():
    return sample("search_and_replace_input.png", (96, 64))


@pytest.fixture(scope="module")
def box_mask():
    mask = Image.new("L", (96, 64), 0)
    mask.paste(255, (30, 20, 60, 45))
    return mask


def run(tool: str, **fields):
    return core.run(tool, fields, engine="diffusers")


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"))
