"""What a request costs to serve, in cost units, read from the request before any pixel is decoded.

A request's cost is its output size in megapixels times a per-tool factor (how
heavy the tool's work is per output megapixel), and at least :data:`MIN_COST`.
A 4.4 KB 1536x640 PNG for fast-upscale therefore costs what its 16 MP output
costs, not what its upload weighs: the server weighs admission and per-key
budgets by this number (see :class:`CostBudget` and ``Gate(queue_cost=...)``).

The sizes come from the image headers only (``Image.open`` reads no pixels), so
estimating is cheap; a field that is not an image is left for the request model
to refuse, counted here at the tool's default size.
"""

from __future__ import annotations

import base64
import binascii
import io
import threading
import time
from typing import Any

from PIL import Image

from pixelsmith.errors import RateLimited

MIN_COST = 0.05
DEFAULT_MP = 1.0  # output size when it cannot be told from the request (text-to-image: about 1 MP)

# Relative work per output megapixel (fast-upscale's 16 MP output ~ 35 s of CPU = 32 units).
TOOL_FACTORS: dict[str, float] = {
    "fast-upscale": 2.0,
    "conservative-upscale": 20.0,
    "creative-upscale": 20.0,
    "generate": 20.0,
    "inpaint": 10.0,
    "outpaint": 10.0,
    "search-and-replace": 10.0,
    "search-and-recolor": 10.0,
    "sketch": 10.0,
    "structure": 10.0,
    "style-guide": 10.0,
    "style-transfer": 10.0,
    "erase": 4.0,
    "remove-background": 2.0,
}
DEFAULT_FACTOR = 10.0


def _header_size(value: Any) -> tuple[int, int] | None:
    """(width, height) from an image's header (bytes, or base64 text as Bedrock sends it); None if unreadable."""
    if isinstance(value, str):
        text = value.split(",", 1)[1] if value.startswith("data:") and "," in value else value
        try:
            value = base64.b64decode(text, validate=True)  # bounded by the body limit; in a worker thread
        except (binascii.Error, ValueError):
            return None
    if not isinstance(value, (bytes, bytearray)) or not value:
        return None
    try:
        with Image.open(io.BytesIO(value)) as img:
            return img.size
    except Exception:  # noqa: BLE001 - not an image: the request model refuses it with the right message
        return None


def output_megapixels(tool_name: str, fields: dict[str, Any]) -> float:
    """The output size this request asks for, in megapixels, from image headers."""
    primary = "init_image" if "init_image" in fields else "image"
    size = _header_size(fields.get(primary))
    if size is None:
        return DEFAULT_MP
    width, height = size
    if tool_name == "fast-upscale":
        from pixelsmith.tools.fast_upscale import output_size

        width, height = output_size(width, height)
    elif tool_name == "conservative-upscale":
        from pixelsmith.tools.conservative_upscale import output_size as conservative_size

        width, height = conservative_size(max(width, 1), max(height, 1))
    elif tool_name == "creative-upscale":
        width, height = width * 4, height * 4
    elif tool_name == "outpaint":
        extra = [_int(fields.get(side)) for side in ("left", "right", "up", "down")]
        width, height = width + extra[0] + extra[1], height + extra[2] + extra[3]
    return width * height / 1e6


def request_cost(tool_name: str, fields: dict[str, Any]) -> float:
    """Cost units for one request: output megapixels x the tool's factor (at least MIN_COST)."""
    factor = TOOL_FACTORS.get(tool_name, DEFAULT_FACTOR)
    return max(MIN_COST, output_megapixels(tool_name, fields) * factor)


def _int(value: Any) -> int:
    try:
        return max(0, min(int(value), 2000))
    except (TypeError, ValueError):
        return 0


class CostBudget:
    """A token bucket per caller, in cost units: ``burst`` at once, refilled at ``rate`` per second.

    A request costing more than the whole bucket is still admitted when the bucket
    is full (so a maximal request is possible at all), and then leaves it in debt.
    """

    def __init__(self, rate: float, burst: float):
        self.rate = rate  # <= 0 disables the budget
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, who: str, cost: float) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(who, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < min(cost, self.burst):
                self._buckets[who] = (tokens, now)
                wait = (min(cost, self.burst) - tokens) / self.rate
                raise RateLimited(
                    f"This request costs {cost:.1f} units (output megapixels x tool factor); your budget is "
                    f"{self.burst:g} units refilled at {self.rate:g} per second and has {max(tokens, 0):.1f} left; "
                    f"retry after {wait:.0f} seconds.",
                    retry_after=wait,
                )
            self._buckets[who] = (tokens - cost, now)
            if len(self._buckets) > 100_000:  # forget idle callers rather than grow forever
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 3600}

    def refund(self, who: str, cost: float) -> None:
        """Give back what a request refused before any tool work (a 400 at validation) was charged."""
        if self.rate <= 0:
            return
        with self._lock:
            if who in self._buckets:
                tokens, last = self._buckets[who]
                self._buckets[who] = (min(self.burst, tokens + cost), last)


__all__ = ["CostBudget", "TOOL_FACTORS", "output_megapixels", "request_cost"]
