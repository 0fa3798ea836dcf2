"""The tool registry: one module per tool (its request model and Tool entry); adding a tool is adding a
module and one line here. How each engine serves a tool is in ``pixelsmith/engines/<engine>/recipes/``."""

from __future__ import annotations

import importlib
import threading

from pixelsmith.errors import UnknownTool
from pixelsmith.tools.base import Tool

_MODULES = (
    # edit
    "erase",
    "remove_background",
    "search_and_recolor",
    "search_and_replace",
    "inpaint",
    "outpaint",
    # upscale
    "fast_upscale",
    "conservative_upscale",
    "creative_upscale",
    # control
    "sketch",
    "structure",
    "style_guide",
    "style_transfer",
    # generate
    "generate",
)
TOOLS: dict[str, Tool] = {}
_LOCK = threading.Lock()
_LOADED = threading.Event()


def _load() -> None:
    # Server threads may ask for their first tool at the same moment: one loads, the others wait,
    # and nobody reads a half-filled registry (TOOLS is filled before the event is set).
    if _LOADED.is_set():
        return
    with _LOCK:
        if _LOADED.is_set():
            return
        for mod in _MODULES:
            tool = importlib.import_module(f"pixelsmith.tools.{mod}").TOOL
            TOOLS[tool.name] = tool
        _LOADED.set()


def all_tools() -> list[Tool]:
    _load()
    return list(TOOLS.values())


def get_tool(name: str) -> Tool:
    _load()
    key = name.strip().lower().replace("_", "-")
    aliases = {
        "upscale-fast": "fast-upscale",
        "upscale-conservative": "conservative-upscale",
        "upscale-creative": "creative-upscale",
        "style": "style-guide",
        "recolor": "search-and-recolor",
        "replace": "search-and-replace",
        "remove-bg": "remove-background",
    }
    key = aliases.get(key, key)
    if key not in TOOLS:
        raise UnknownTool(f"unknown tool {name!r}; tools: {', '.join(TOOLS)}")
    return TOOLS[key]
