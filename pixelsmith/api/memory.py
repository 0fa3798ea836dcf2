"""Giving memory back after large requests.

A maximal request (a 16 MP fast-upscale) allocates hundreds of MB in many small and large blocks
across threads; glibc keeps freed heap pages in its arenas, so without help the server's resident
size ratchets up to its worst request and stays there. After a request whose output is large the
server empties the models' scratch-buffer pools (ncnn's, for the upscalers; weights stay loaded),
collects garbage and asks glibc to return free pages (``malloc_trim(0)``), once the answer is sent
(:class:`pixelsmith.api.app.Frontdoor`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import threading
from typing import Any

LARGE_PIXELS = 4_000_000  # outputs at least this big release memory after their answer
_lock = threading.Lock()
_libc: Any = None


def _malloc_trim() -> bool:
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):  # not glibc (musl, macOS): collection only
            _libc = False
    if not _libc:
        return False
    _libc.malloc_trim(0)
    return True


def enabled() -> bool:
    """``PIXELSMITH_RELEASE_MEMORY=0`` turns the release off (to measure what it saves)."""
    return os.environ.get("PIXELSMITH_RELEASE_MEMORY", "1") != "0"


def release_memory() -> bool:
    """Collect garbage and return free heap pages to the OS; whether malloc_trim ran (glibc)."""
    if not enabled():
        return False
    with _lock:  # one at a time: concurrent large requests need not trim twice at once
        from pixelsmith.engines.embedded import release_sessions

        release_sessions()  # the upscalers' buffer pools (sized by the largest tile seen)
        gc.collect()
        return _malloc_trim()


def is_large(out: Any) -> bool:
    """Whether a :class:`pixelsmith.core.Output` is big enough to release memory after."""
    image = getattr(out, "image", None)
    size = getattr(image, "size", None)
    if size:
        return int(size[0]) * int(size[1]) >= LARGE_PIXELS
    return len(getattr(out, "data", b"")) >= LARGE_PIXELS  # no image kept: judge by the encoded bytes


def rss_bytes(pid: int | None = None) -> int:
    """Resident set size of a process (this one by default), from /proc."""
    with open(f"/proc/{pid or 'self'}/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
