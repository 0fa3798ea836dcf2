"""A loopback HTTP file server for the tests that fetch inputs by URL (test_jobs_paths, test_jobs_hardening)."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def serve_files(
    files: dict[str, bytes], redirects: dict[str, str] | None = None, fetched: list[str] | None = None
) -> Iterator[str]:
    """Serve ``files`` (path -> body; anything else is a 404) and ``redirects`` (path -> 302 location) on
    127.0.0.1; each requested path is appended to ``fetched``. Yields the base URL."""
    moved = redirects or {}

    class Files(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server name
            if fetched is not None:
                fetched.append(self.path)
            if self.path in moved:
                self.send_response(302)
                self.send_header("location", moved[self.path])
                self.end_headers()
                return
            body = files.get(self.path)
            self.send_response(200 if body else 404)
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
