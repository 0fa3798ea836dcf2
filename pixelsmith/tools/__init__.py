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


def _one(key: str) -> Tool | None:
    """Only the module of the tool asked for, when the registry is not loaded yet: running one tool need not
    build the other 13 request models (~30 ms of CPU, bench/startup.py). The same Tool object as in TOOLS."""
    module = key.replace("-", "_")
    if module not in _MODULES:
        return None
    tool: Tool = importlib.import_module(f"pixelsmith.tools.{module}").TOOL
    return tool if tool.name == key else None


def get_tool(name: str) -> Tool:
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
    if not _LOADED.is_set() and (tool := _one(key)) is not None:
        return tool
    _load()
    if key not in TOOLS:
        raise UnknownTool(f"unknown tool {name!r}; tools: {', '.join(TOOLS)}")
    return TOOLS[key]
