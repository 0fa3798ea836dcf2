"""Job webhooks: where they may go, how they are signed, and delivery with retries.

One event is delivered per job: ``job.finished``, when the job reaches a final state
(``finished``: every item done or failed; or ``cancelled``, once its running items have
stopped). It is POSTed as JSON until the receiver answers 2xx, at most
:data:`MAX_ATTEMPTS` times with exponential backoff (1 s, 2 s, 4 s ... capped), and never
again after a 2xx: each job's delivery state lives in its meta in the job store
(``webhook_attempts``, ``webhook_next``, ``webhook_sent``, ``webhook_delivered``,
``webhook_error``), so a restarted server neither loses nor repeats it. Every attempt of
one event carries the same ``Pixelsmith-Webhook-Id``; a receiver that answered an error
and then sees a retry should treat the id as the event's identity.

Signature, in the style of the well-known webhook providers::

    Pixelsmith-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>

The secret is per API key, derived from the server's master key (``GET /v1/webhook-secret``
shows it to its key's owner); :func:`verify` is the receiver's check (compare in constant
time, refuse old timestamps).

Destinations: ``PIXELSMITH_WEBHOOK_ALLOW`` (comma-separated URL prefixes, normalised as
the inputs' allow-list is: :func:`pixelsmith.jobs.net.normal_url`). When it is unset only
public addresses are called: the host is resolved and every address it resolves to must be
public (never loopback, private, link-local, multicast or reserved). The check runs at
submission and again before each attempt; redirects are never followed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from pixelsmith.errors import Forbidden
from pixelsmith.jobs.net import DEFAULT_PORTS, RedirectRefused, http_post, normal_url, public_address, resolve_host

log = logging.getLogger("pixelsmith.jobs")
ALLOW_ENV = "PIXELSMITH_WEBHOOK_ALLOW"
SIGNATURE_HEADER = "Pixelsmith-Signature"
EVENT = "job.finished"
MAX_ATTEMPTS = 6
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 300.0
TOLERANCE_S = 300  # a receiver refuses signatures older than this


def allowed_prefixes(environ: Mapping[str, str] | None = None) -> list[str]:
    raw = (os.environ if environ is None else environ).get(ALLOW_ENV, "")
    return [p.strip() for p in raw.split(",") if p.strip()]


def check_destination(
    url: Any, environ: Mapping[str, str] | None = None, resolve: Callable[[str, int], list[str]] = resolve_host
) -> str:
    """The webhook URL in its canonical form, or :class:`Forbidden` saying why it may not be called."""
    if not isinstance(url, str) or urllib.parse.urlsplit(url.strip()).scheme.lower() not in DEFAULT_PORTS:
        raise Forbidden(f"webhook {url!r} is not an http(s) URL")
    norm = normal_url(url, "webhook")
    prefixes = allowed_prefixes(environ)
    if prefixes:
        for prefix in prefixes:
            p = normal_url(prefix, "allowed webhook prefix")
            if norm == p or norm.startswith(p.rstrip("/") + "/"):
                return norm
        raise Forbidden(f"webhook {url!r} is not under an allowed prefix ({ALLOW_ENV})")
    parts = urllib.parse.urlsplit(norm)
    host = parts.hostname or ""
    try:
        addresses = resolve(host, parts.port or DEFAULT_PORTS[parts.scheme])
    except OSError as exc:
        raise Forbidden(f"webhook {url!r}: its host does not resolve ({exc})") from None
    private = [a for a in addresses if not public_address(a)]
    if private or not addresses:
        raise Forbidden(
            f"webhook {url!r} resolves to a non-public address ({', '.join(private) or 'none'}); "
            f"only public addresses are called unless {ALLOW_ENV} allows it"
        )
    return norm


# -- signatures -----------------------------------------------------------------------------------------
def webhook_secret(master: bytes, owner: str | None) -> str:
    """The signing secret of one API key (``owner``; None: a server without auth), from the master key."""
    mac = hmac.new(master, b"pixelsmith webhook v1:" + (owner or "").encode(), hashlib.sha256)
    return "whsec_" + mac.hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Pixelsmith-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, *, now: float | None = None, tolerance: float = TOLERANCE_S) -> bool:
    """A receiver's check: the header's ``v1`` matches ``body`` and its ``t`` is recent."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


# -- delivery -------------------------------------------------------------------------------------------
def backoff(attempts: int, base: float = BACKOFF_BASE_S) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt."""
    return float(min(BACKOFF_MAX_S, base * 2 ** max(0, attempts - 1)))


def deliver(url: str, body: dict[str, Any], secret: str, event_id: str) -> tuple[bool, str]:
    """One attempt: (delivered, what happened). Only a 2xx is a delivery."""
    raw = json.dumps(body, default=str, separators=(",", ":")).encode()
    headers = {
        "content-type": "application/json",
        "user-agent": "pixelsmith-webhooks/1",
        SIGNATURE_HEADER: sign(secret, int(time.time()), raw),
        "Pixelsmith-Event": str(body.get("event")),
        "Pixelsmith-Webhook-Id": event_id,
    }
    try:
        status = http_post(url, raw, headers)
    except RedirectRefused as exc:
        return False, str(exc)
    except (OSError, ValueError) as exc:
        return False, f"{type(exc).__name__}: {exc}"
    return 200 <= status < 300, f"HTTP {status}"
