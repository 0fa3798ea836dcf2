"""Concurrent text-to-image requests with the same shape run as one batch.

Requests are grouped by (checkpoint, size, steps, guidance). The first request
of a group leads: it waits up to PIXELSMITH_BATCH_WINDOW_MS (default 0: no
waiting; requests that arrive while a run holds the GPU still join the next
batch) for others, takes up to PIXELSMITH_MAX_BATCH (default 4), and runs them
in one pipeline call. Each item keeps its own prompt embeddings and its own
seeded CPU generator, so its image is the one it would get alone (up to
floating-point batch effects).
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable

from pixelsmith.engines.diffusers._lazy import torch


@dataclass
class Item:
    kwargs: dict[str, Any]  # prompt_embeds & co. for one request (batch dimension 1)
    generator: Any
    ctx: Any = None  # the request's Context (progress reporting)
    future: Future = field(default_factory=Future)


class Batcher:
    def __init__(self) -> None:
        self._pending: dict[tuple, list[Item]] = {}
        self._lock = threading.Lock()
        self.batches: list[int] = []  # sizes of the batches run (for tests and metrics)

    @staticmethod
    def window() -> float:
        return float(os.environ.get("PIXELSMITH_BATCH_WINDOW_MS", "0")) / 1000.0

    @staticmethod
    def max_batch() -> int:
        return max(1, int(os.environ.get("PIXELSMITH_MAX_BATCH", "4")))

    def submit(self, key: tuple, item: Item, run: Callable[[list[Item]], list[Any]]) -> tuple[Any, int]:
        """Queue ``item``; returns (its image, the size of the batch it ran in)."""
        with self._lock:
            queue = self._pending.setdefault(key, [])
            queue.append(item)
            leader = len(queue) == 1
        if leader:
            if self.window() > 0:
                time.sleep(self.window())
            self._drain(key, run)
        return item.future.result()

    def _drain(self, key: tuple, run: Callable[[list[Item]], list[Any]]) -> None:
        from pixelsmith.engines.diffusers.components import RUN_LOCK

        with RUN_LOCK:  # while another batch runs, more requests queue up for this one
            while True:
                with self._lock:
                    queue = self._pending.get(key, [])
                    batch, rest = queue[: self.max_batch()], queue[self.max_batch():]
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
