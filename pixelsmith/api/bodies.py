"""Parsing untrusted JSON bodies: depth- and size-safe, every failure an InvalidRequest (400).

``json.loads`` recurses once per nesting level: ``[`` x 100,000 raises
RecursionError, which no ``except ValueError`` catches (a 500). Here it is caught
at the parse, and a parsed document nested deeper than :data:`MAX_DEPTH` is
refused too (checked without recursion), so nothing downstream recurses on it.
"""

from __future__ import annotations

import json
from typing import Any

from pixelsmith.errors import InvalidRequest

MAX_DEPTH = 64  # a manifest or a model's fields nest a few levels; anything deeper is not ours


def parse_json(body: bytes | str, *, field: str = "", max_depth: int = MAX_DEPTH, what: str = "the body") -> Any:
    """The JSON value in ``body``; InvalidRequest (code ``bad_json``) when it is not JSON or too deep."""
    too_deep = f"{what} is nested too deeply (at most {max_depth} levels)"
    try:
        value = json.loads(body)
    except RecursionError:
        raise InvalidRequest.one(field, too_deep, "bad_json") from None
    except json.JSONDecodeError as exc:
        raise InvalidRequest.one(field, f"{what} is not valid JSON: {exc.msg}", "bad_json") from None
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest.one(field, f"{what} is not valid JSON", "bad_json") from None
    if depth_of(value, max_depth + 1) > max_depth:
        raise InvalidRequest.one(field, too_deep, "bad_json")
    return value


def depth_of(value: Any, stop: int) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), iteratively; stops counting at ``stop``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest >= stop:
            return deepest
        stack.extend((child, depth) for child in children if isinstance(child, (dict, list)))
    return deepest


__all__ = ["MAX_DEPTH", "depth_of", "parse_json"]
