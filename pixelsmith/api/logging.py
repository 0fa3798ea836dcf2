"""Structured JSON access log: one line per request on the ``pixelsmith.access`` logger."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

access = logging.getLogger("pixelsmith.access")
errors = logging.getLogger("pixelsmith.server")


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        if isinstance(record.msg, dict):
            entry.update(record.msg)
        else:
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


def setup(level: str = "info", stream: Any = None) -> None:
    """Send pixelsmith's server logs to stderr as JSON lines (idempotent)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLines())
    for logger in (access, errors):
        logger.handlers = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False


def log_access(**fields: Any) -> None:
    access.info(fields)
