"""Concurrent text-to-image requests with the same shape run as one batch.

Requests are grouped by (checkpoint, size, steps, guidance). The first request
of a group leads: it waits up to PIXELSMITH_BATCH_WINDOW_MS (default 0: no
waiting; requests that arrive while a run holds the GPU still join the next
batch) for others, takes up to PIXELSMITH_MAX_BATCH (default 4), and runs them
in one pipeline call. Each item keeps its own prompt embeddings and its own
seeded CPU generator, so its image is the one it would get alone (up to
floating-point batch effects).

A caller that knows it sends N requests together (``core.run_many``, hence a
Ray Serve ``@serve.batch``) makes that deterministic instead of a matter of
timing: it runs each request inside ``group.member()`` of one :class:`Group` of
N. A leader from a group waits until every member has reached the batcher or
withdrawn (a request that never gets here — image-to-image, another tool, an
error — withdraws when it takes another path or ends), bounded by
PIXELSMITH_GROUP_WAIT_S (default 5), then runs them all in one call.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from pixelsmith.engines.diffusers._lazy import torch


@dataclass
class Item:
    kwargs: dict[str, Any]  # prompt_embeds & co. for one request (batch dimension 1)
    generator: Any
    ctx: Any = None  # the request's Context (progress reporting)
    future: Future = field(default_factory=Future)


class Group:
    """N requests announced together; counts those that may still reach the batcher."""

    def __init__(self, expected: int):
        self.outstanding = expected
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def member(self) -> Iterator[None]:
        """Run one request of the group (in its own thread) inside this."""
        token = _MEMBER.set(_Membership(self))
        try:
            yield
        finally:
            withdraw()  # a no-op when the request already reached the batcher
            _MEMBER.reset(token)

    @staticmethod
    def batch_sizes() -> list[int]:
        """Sizes of the pipeline calls the batcher has made in this process."""
        return list(BATCHER.batches)

    def _leave(self) -> None:
        with self._changed:
            self.outstanding -= 1
            self._changed.notify_all()

    def wait(self, timeout: float) -> bool:
        """Until every member has arrived or withdrawn (True), or ``timeout`` seconds passed (False)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.outstanding <= 0, timeout)


class _Membership:
    def __init__(self, group: Group):
        self.group = group
        self.counted = True  # still counted as a possible arrival

    def leave(self) -> None:
        if self.counted:
            self.counted = False
            self.group._leave()


_MEMBER: contextvars.ContextVar[_Membership | None] = contextvars.ContextVar("pixelsmith_batch_member", default=None)


def withdraw() -> None:
    """This request will not reach the batcher (its group's leader stops waiting for it)."""
    member = _MEMBER.get()
    if member is not None:
        member.leave()


class Batcher:
    def __init__(self) -> None:
        self._pending: dict[tuple, list[Item]] = {}
        self._lock = threading.Lock()
        self.batches: list[int] = []  # sizes of the batches run (for tests and metrics)
        self.late_groups = 0  # group leaders that stopped waiting at PIXELSMITH_GROUP_WAIT_S

    @staticmethod
    def window() -> float:
        return float(os.environ.get("PIXELSMITH_BATCH_WINDOW_MS", "0")) / 1000.0

    @staticmethod
    def group_wait() -> float:
        return float(os.environ.get("PIXELSMITH_GROUP_WAIT_S", "5"))

    @staticmethod
    def max_batch() -> int:
        return max(1, int(os.environ.get("PIXELSMITH_MAX_BATCH", "4")))

    def submit(self, key: tuple, item: Item, run: Callable[[list[Item]], list[Any]]) -> tuple[Any, int]:
        """Queue ``item``; returns (its image, the size of the batch it ran in)."""
        member = _MEMBER.get()
        with self._lock:
            queue = self._pending.setdefault(key, [])
            queue.append(item)
            leader = len(queue) == 1
        group = member.group if member is not None else None
        withdraw()  # arrived: it is queued before it stops counting, so a waiting leader finds it
        if leader:
            if group is not None:
                self.late_groups += not group.wait(self.group_wait())
            elif self.window() > 0:
                time.sleep(self.window())
            self._drain(key, run)
        return item.future.result()

    def _drain(self, key: tuple, run: Callable[[list[Item]], list[Any]]) -> None:
        from pixelsmith.engines.diffusers.components import RUN_LOCK

        with RUN_LOCK:  # while another batch runs, more requests queue up for this one
            while True:
                with self._lock:
                    queue = self._pending.get(key, [])
                    batch, rest = queue[: self.max_batch()], queue[self.max_batch() :]
                    if rest:
                        self._pending[key] = rest
                    else:
                        self._pending.pop(key, None)
                if not batch:
                    return
                self.batches.append(len(batch))
                try:
                    images = run(batch)
                    for it, img in zip(batch, images):
                        it.future.set_result((img, len(batch)))
                except BaseException as exc:  # every waiter gets the error, not a hang
                    for it in batch:
                        if not it.future.done():
                            it.future.set_exception(exc)
                if not rest:
                    return


def stack(items: list[Item]) -> dict[str, Any]:
    """One call's keyword arguments from per-request embeddings."""
    first = items[0].kwargs
    out = {k: v for k, v in first.items() if not isinstance(v, torch.Tensor)}
    for k, v in first.items():
        if isinstance(v, torch.Tensor):
            out[k] = torch.cat([it.kwargs[k] for it in items])
    out["generator"] = [it.generator for it in items]
    return out


BATCHER = Batcher()
