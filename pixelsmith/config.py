"""Where pixelsmith keeps things, from the environment (no config file needed)."""

from __future__ import annotations

import os
import pathlib


def home() -> pathlib.Path:
    """Root of pixelsmith's cache: $PIXELSMITH_HOME, else the user's cache dir."""
    env = os.environ.get("PIXELSMITH_HOME")
    if env:
        return pathlib.Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "pixelsmith"


def models_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("PIXELSMITH_MODELS") or home() / "models").expanduser()


def threads() -> int:
    """CPU threads a model may use ($PIXELSMITH_THREADS, default all cores)."""
    return int(os.environ.get("PIXELSMITH_THREADS") or os.cpu_count() or 1)
