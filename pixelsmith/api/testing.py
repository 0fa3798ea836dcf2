"""A live server on loopback in a background thread, for tests and benchmarks.

with LiveServer(Settings(data_dir=tmp)) as server:
    requests.get(server.url + "/healthz")
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from pixelsmith.api.app import Settings, create_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, settings: Settings, **uvicorn_options: Any):
        import uvicorn

        settings.host = "127.0.0.1"
        settings.port = settings.port if settings.port not in (0, 8000) else free_port()
        self.settings = settings
        self.app = create_app(settings)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=settings.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            **uvicorn_options,
        )
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]  # older uvicorn
        self.thread = threading.Thread(target=self.server.run, daemon=True, name=f"uvicorn-{settings.port}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


_SHARED: dict[str, LiveServer] = {}


def shared_server(name: str, **settings: Any) -> LiveServer:
    """One live server per name per process, so several test modules can share it (daemon thread)."""
    if name not in _SHARED:
        import tempfile

        data_dir = tempfile.mkdtemp(prefix=f"pixelsmith-{name}-")
        _SHARED[name] = LiveServer(Settings(data_dir=data_dir, access_log=False, **settings)).start()
    return _SHARED[name]
