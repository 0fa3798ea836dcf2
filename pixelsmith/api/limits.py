"""Limits that keep one server healthy under any load.

* :class:`RateLimiter`: a token bucket per API key (or per client address when
  auth is off); an empty bucket raises RateLimited with the seconds to wait.
* :class:`Gate`: bounded concurrency per worker. At most ``concurrency`` requests
  run tools at once, at most ``queue_size`` wait, each at most ``queue_timeout``
  seconds; beyond that the caller gets Busy (503) at once, never a pile-up.
* :class:`BodyLimit`: ASGI middleware that counts request-body bytes as they
  stream in and answers 413 the moment a body passes its API's limit (10 MiB REST,
  25 MB Bedrock); a body is never buffered beyond its limit.

Image pixel limits are not here: the request models check every image header
against its field's rule before any pixel is decoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio

from pixelsmith.errors import Busy, PayloadTooLarge, RateLimited

MiB = 1024 * 1024


class RateLimiter:
    def __init__(self, rate: float, burst: int):
        self.rate = rate  # tokens per second; <= 0 disables rate limiting
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, who: str, rate: float | None = None, burst: int | None = None) -> None:
        rate = self.rate if rate is None else rate
        burst = self.burst if burst is None else burst
        if rate <= 0:
            return
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(who, (float(burst), now))
            tokens = min(float(burst), tokens + (now - last) * rate)
            if tokens < 1.0:
                self._buckets[who] = (tokens, now)
                wait = (1.0 - tokens) / rate
                raise RateLimited(
                    f"You have exceeded the rate limit of {burst} requests at {rate:g} per second; "
                    f"retry after {wait:.1f} seconds.",
                    retry_after=wait,
                )
            self._buckets[who] = (tokens - 1.0, now)
            if len(self._buckets) > 100_000:  # forget idle callers rather than grow forever
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 3600}


class Gate:
    """Bounded concurrency with a bounded, timed queue (one per worker process)."""

    def __init__(self, concurrency: int, queue_size: int, queue_timeout: float, queue_cost: float = 0.0):
        self.concurrency = max(1, concurrency)
        self.queue_size = max(0, queue_size)
        self.queue_timeout = queue_timeout
        self.queue_cost = queue_cost  # cost units (pixelsmith.api.cost) that may wait at once; <= 0: no limit
        self.running = 0
        self.waiting = 0
        self.waiting_cost = 0.0
        self._sem: asyncio.Semaphore | None = None
        self.threads = anyio.CapacityLimiter(self.concurrency)

    @contextlib.asynccontextmanager
    async def slot(self, cost: float = 0.0) -> AsyncIterator[None]:
        """One run slot; ``cost`` (units, see pixelsmith.api.cost) counts against the queue's cost limit."""
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.concurrency)  # created inside the server's event loop
        if self._sem.locked() and self.waiting >= self.queue_size:
            raise Busy(f"the server is at capacity ({self.running} running, {self.waiting} queued); retry later")
        if (
            self._sem.locked()
            and self.queue_cost > 0
            and self.waiting > 0
            and self.waiting_cost + cost > self.queue_cost
        ):
            raise Busy(
                f"the server's queue holds {self.waiting_cost:.0f} of its {self.queue_cost:g} cost units and this "
                f"request costs {cost:.1f}; retry later",
                retry_after=max(5.0, min(self.queue_timeout, self.waiting_cost / max(self.concurrency, 1))),
            )
        self.waiting += 1
        self.waiting_cost += cost
        try:
            await asyncio.wait_for(self._sem.acquire(), self.queue_timeout)
        except TimeoutError:
            raise Busy(f"no worker became free within {self.queue_timeout:g} seconds; retry later") from None
        finally:
            self.waiting -= 1
            self.waiting_cost -= cost
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            self._sem.release()

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run blocking ``fn`` in a worker thread once a slot is free."""
        async with self.slot():
            return await anyio.to_thread.run_sync(fn, *args, limiter=self.threads)


class BodyTooLarge(Exception):
    """Raised from ``receive`` when a body passes its limit; BodyLimit turns it into a 413."""


Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]
DRAIN_CAP = 64 * MiB  # read (and discard) at most this much more so the client sees the 413


class BodyLimit:
    """ASGI middleware enforcing per-API body limits while the body streams in."""

    def __init__(
        self,
        app: Any,
        limit_for: Callable[[str], int | None],
        reject: Callable[[dict, PayloadTooLarge], Awaitable[tuple[int, list, bytes]]],
    ):
        self.app = app
        self.limit_for = limit_for
        self.reject = reject

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        limit = self.limit_for(scope["path"]) if scope["type"] == "http" else None
        if limit is None:
            return await self.app(scope, receive, send)
        error = PayloadTooLarge(f"body: payloads cannot be larger than {_size(limit)} in size")
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _drain(receive, declared)
            return await self._send_413(scope, send, error)
        seen = 0
        started = False

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge()
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await _drain(receive, DRAIN_CAP)
            await self._send_413(scope, send, error)

    async def _send_413(self, scope: dict, send: Send, error: PayloadTooLarge) -> None:
        status, headers, body = await self.reject(scope, error)
        await send({"type": "http.response.start", "status": status, "headers": headers + [(b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: dict) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _drain(receive: Receive, cap: int) -> None:
    """Discard what the client is still sending (bounded) so it can read our answer."""
    got = 0
    with anyio.move_on_after(5):
        while got <= min(cap, DRAIN_CAP):
            message = await receive()
            if message["type"] != "http.request":
                return
            got += len(message.get("body", b""))
            if not message.get("more_body", False):
                return


def _size(limit: int) -> str:
    return f"{limit // MiB}MiB" if limit % MiB == 0 else f"{limit / 1e6:g}MB"
