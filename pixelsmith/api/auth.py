"""API keys: created by ``pixelsmith keys create``, stored hashed, accepted on both APIs.

A key is an access-key pair: an ID (``PSK...``, 20 characters, like an AWS access
key ID) and a 40-character secret. REST and Bedrock clients send it as
``Authorization: Bearer sk-<ID>.<secret>``; boto3 clients configured with
``aws_access_key_id=<ID>, aws_secret_access_key=<secret>`` sign with SigV4, which
we verify with botocore's own signer.

Storage: the SQLite table holds only a SHA-256 of each secret. SigV4 needs the
secret itself to recompute the signature, so secrets are not random: each one is
HMAC(master key, key ID), and the master key lives in its own file (mode 0600)
next to the database. Reading the database alone reveals no usable secret.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import pathlib
import re
import secrets
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from pixelsmith.errors import Forbidden, RateLimited, Unauthorized
from pixelsmith.fsutil import private_dir, private_file

KEY_PREFIX = "PSK"
BEARER_PREFIX = "sk-"
MAX_CLOCK_SKEW = 15 * 60  # seconds, as AWS allows
KEY_ID = re.compile(r"PSK[A-Z2-7]{16,17}")  # what `create` makes (PSK + 16): nothing else can be ours
SECRET = re.compile(r"[A-Za-z0-9_-]{40}")
UNSIGNED_ENV = "PIXELSMITH_ALLOW_UNSIGNED_PAYLOAD"  # the operator's opt-in to SigV4 UNSIGNED-PAYLOAD
CACHE_SIZE = 1024  # known keys kept in memory (LRU); unknown ids are never cached


class SigV4Rejected(Forbidden):
    """A SigV4 request we cannot accept; ``aws_code`` is the exception name AWS would use."""

    def __init__(self, message: str, aws_code: str):
        super().__init__(message)
        self.aws_code = aws_code


@dataclass
class ApiKey:
    id: str
    name: str
    created: float
    revoked: float | None = None
    rate: float | None = None  # requests per second; None = the server default
    burst: int | None = None

    @property
    def active(self) -> bool:
        return self.revoked is None


@dataclass
class NewKey:
    key: ApiKey
    secret: str

    @property
    def bearer(self) -> str:
        return f"{BEARER_PREFIX}{self.key.id}.{self.secret}"


class KeyStore:
    """The server's keys, in ``<data_dir>/server.db``; safe to share between threads."""

    def __init__(self, data_dir: pathlib.Path):
        self.dir = private_dir(data_dir)  # 0700 whatever the umask
        self._master = _master_key(self.dir / "master.key")
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.dir / "server.db", check_same_thread=False, isolation_level=None)
        private_file(self.dir / "server.db")
        self._db.execute("PRAGMA journal_mode=WAL")
        private_file(self.dir / "server.db")  # and its -wal / -shm
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_sha256 TEXT NOT NULL,"
            " created REAL NOT NULL, revoked REAL, rate REAL, burst INTEGER)"
        )
        self._cache: OrderedDict[str, tuple[float, ApiKey, str]] = OrderedDict()
        self.cache_size = CACHE_SIZE

    def secret_for(self, key_id: str) -> str:
        mac = hmac.new(self._master, key_id.encode(), hashlib.sha256).digest()
        return base64.b64encode(mac, altchars=b"-_").decode()[:40]

    def create(self, name: str = "", rate: float | None = None, burst: int | None = None) -> NewKey:
        key_id = KEY_PREFIX + base64.b32encode(secrets.token_bytes(10)).decode()[:17]
        secret = self.secret_for(key_id)
        key = ApiKey(key_id, name or key_id, time.time(), None, rate, burst)
        with self._lock:
            self._db.execute(
                "INSERT INTO api_keys VALUES (?,?,?,?,?,?,?)",
                (key.id, key.name, _sha256(secret), key.created, None, rate, burst),
            )
        return NewKey(key, secret)

    def list(self) -> list[ApiKey]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id,name,created,revoked,rate,burst FROM api_keys ORDER BY created"
            ).fetchall()
        return [ApiKey(*row) for row in rows]

    def revoke(self, key_id: str) -> bool:
        with self._lock:
            cur = self._db.execute(
                "UPDATE api_keys SET revoked=? WHERE id=? AND revoked IS NULL", (time.time(), key_id)
            )
            self._cache.pop(key_id, None)
        return cur.rowcount > 0

    def lookup(self, key_id: str) -> tuple[ApiKey | None, str]:
        """The key and its secret hash; known keys are cached a few seconds (LRU, at most ``cache_size``)
        so revocation applies quickly. An id that is not of our format is refused before any lookup, and an
        unknown id is never cached, so a flood of made-up ids costs no memory."""
        if not KEY_ID.fullmatch(key_id):
            return None, ""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key_id)
            if hit and now - hit[0] < 5.0:
                self._cache.move_to_end(key_id)
                return hit[1], hit[2]
            row = self._db.execute(
                "SELECT id,name,created,revoked,rate,burst,secret_sha256 FROM api_keys WHERE id=?", (key_id,)
            ).fetchone()
            if row is None:
                self._cache.pop(key_id, None)
                return None, ""
            key, digest = ApiKey(*row[:6]), row[6]
            self._cache[key_id] = (now, key, digest)
            self._cache.move_to_end(key_id)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return key, digest

    def check_bearer(self, token: str) -> ApiKey:
        if not token.startswith(BEARER_PREFIX) or "." not in token:
            raise Unauthorized("the API key is malformed; expected sk-<ID>.<secret> from `pixelsmith keys create`")
        key_id, secret = token[len(BEARER_PREFIX) :].split(".", 1)
        if not KEY_ID.fullmatch(key_id) or not SECRET.fullmatch(secret):
            raise Unauthorized("the API key is not valid")
        key, digest = self.lookup(key_id)
        if key is None or not hmac.compare_digest(digest, _sha256(secret)):
            raise Unauthorized("the API key is not valid")
        if not key.active:
            raise Unauthorized("the API key has been revoked")
        return key

    def check_sigv4(
        self, method: str, url: str, headers: dict[str, str], body: bytes, *, allow_unsigned_payload: bool = False
    ) -> ApiKey:
        """Verify an AWS SigV4 ``Authorization`` header by re-signing with botocore.

        The body is always bound to the signature: botocore hashes it into the canonical request unless
        ``x-amz-content-sha256`` is a signed header, in which case that header must equal sha256(body).
        ``UNSIGNED-PAYLOAD`` (a signature that covers no body) is refused unless the operator allows it.
        """
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        auth = headers.get("authorization", "")
        try:
            fields = dict(part.strip().split("=", 1) for part in auth[len("AWS4-HMAC-SHA256 ") :].split(","))
            key_id, date, region, service, _ = fields["Credential"].split("/")
            signed = fields["SignedHeaders"].split(";")
            signature = fields["Signature"]
        except (KeyError, ValueError):
            raise SigV4Rejected(
                "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'.",
                "IncompleteSignatureException",
            ) from None
        amz_date = headers.get("x-amz-date", "")
        try:
            when = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
        except ValueError:
            raise SigV4Rejected("Missing or malformed X-Amz-Date header.", "IncompleteSignatureException") from None
        if abs(time.time() - when.timestamp()) > MAX_CLOCK_SKEW or not amz_date.startswith(date):
            raise SigV4Rejected(
                "Signature expired: the request time is too far from the server time.", "InvalidSignatureException"
            )
        key, _ = self.lookup(key_id)
        if key is None or not key.active:
            raise SigV4Rejected("The security token included in the request is invalid.", "UnrecognizedClientException")
        if "x-amz-content-sha256" in signed:
            claimed = headers.get("x-amz-content-sha256", "")
            if claimed == "UNSIGNED-PAYLOAD":
                if not allow_unsigned_payload:
                    raise SigV4Rejected(
                        "UNSIGNED-PAYLOAD is not accepted by this server: sign the body (the operator can allow it "
                        "with PIXELSMITH_ALLOW_UNSIGNED_PAYLOAD=1, over TLS only).",
                        "InvalidSignatureException",
                    )
            elif not hmac.compare_digest(claimed.lower(), hashlib.sha256(body).hexdigest()):
                raise SigV4Rejected(
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                    "InvalidSignatureException",
                )
        request = AWSRequest(
            method=method, url=url, data=body, headers={h: headers[h] for h in signed if h in headers and h != "host"}
        )
        if "host" in signed:
            request.headers["host"] = headers.get("host", "")
        signer = SigV4Auth(Credentials(key_id, self.secret_for(key_id)), service, region)
        request.context["timestamp"] = amz_date
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if not hmac.compare_digest(expected, signature):
            raise SigV4Rejected(
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method.",
                "InvalidSignatureException",
            )
        return key


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _master_key(path: pathlib.Path) -> bytes:
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
    return path.read_bytes()


async def current_key(request: Request) -> ApiKey | None:
    """FastAPI dependency: the caller's key (None when auth is off), after its rate limit.

    Raises Unauthorized / Forbidden / RateLimited; the app renders them in the
    caller's API shape (Stability or Bedrock) from the path.
    """
    state = request.app.state
    key: ApiKey | None = None
    client = request.client.host if request.client else "local"
    if state.settings.auth_enabled:
        guard = _failure_guard(state)
        guard.check(client)  # 429 while this address has failed too often (before any key is looked at)
        try:
            key = await authenticate(request)
        except (Unauthorized, Forbidden):
            guard.failed(client)
            raise
    caller = key.id if key else f"ip:{client}"
    state.limits.rate.take(caller, key.rate if key else None, key.burst if key else None)
    request.state.key_id = key.id if key else None
    request.state.caller = caller  # whose cost budget pays (pixelsmith.api.cost)
    return key


class FailureLimiter:
    """Failed authentications per client address: a token bucket of ``burst`` failures refilled at ``rate``
    per second. While an address's bucket is empty every attempt from it is refused with RateLimited (429)
    before its key is checked, so guessing keys is slow; other addresses are not affected. At most
    ``max_clients`` addresses are remembered (least recently failing forgotten first)."""

    def __init__(self, burst: int = 20, rate: float = 0.1, max_clients: int = 10_000):
        self.burst = burst
        self.rate = rate
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _tokens(self, client: str, now: float) -> float:
        tokens, last = self._buckets.get(client, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - last) * self.rate)

    def check(self, client: str) -> None:
        if self.burst <= 0:
            return
        now = time.monotonic()
        with self._lock:
            if client not in self._buckets:
                return
            tokens = self._tokens(client, now)
        if tokens < 1.0:
            wait = (1.0 - tokens) / self.rate if self.rate > 0 else 3600.0
            raise RateLimited(
                f"too many failed authentications from {client}; retry after {wait:.0f} seconds", retry_after=wait
            )

    def failed(self, client: str) -> None:
        if self.burst <= 0:
            return
        now = time.monotonic()
        with self._lock:
            self._buckets[client] = (max(0.0, self._tokens(client, now) - 1.0), now)
            self._buckets.move_to_end(client)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)


def _failure_guard(state: Any) -> FailureLimiter:
    guard = getattr(state, "auth_failures", None)
    if guard is None:
        settings = state.settings
        guard = FailureLimiter(getattr(settings, "auth_fail_burst", 20), getattr(settings, "auth_fail_rate", 0.1))
        state.auth_failures = guard
    return guard


async def authenticate(request: Request) -> ApiKey:
    store: KeyStore = request.app.state.keys
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return store.check_bearer(header[7:].strip())
    if header.startswith("AWS4-HMAC-SHA256 ") and request.url.path.startswith("/model/"):
        body = await request.body()
        scope: MutableMapping[str, Any] = request.scope
        path = scope.get("raw_path") or request.url.path.encode()
        query = scope.get("query_string") or b""
        url = f"http://{request.headers.get('host', 'localhost')}{path.decode('latin-1')}"
        if query:
            url += "?" + query.decode("latin-1")
        allow = bool(getattr(request.app.state.settings, "allow_unsigned_payload", False))
        return store.check_sigv4(
            request.method,
            url,
            {k.lower(): v for k, v in request.headers.items()},
            body,
            allow_unsigned_payload=allow or os.environ.get(UNSIGNED_ENV, "") in ("1", "true", "yes"),
        )
    if header:
        raise Unauthorized("unsupported Authorization scheme; use `Bearer sk-<ID>.<secret>`")
    raise Unauthorized(
        "missing authorization header: this server requires an API key (`pixelsmith keys create` on the server)"
    )


__all__ = ["ApiKey", "FailureLimiter", "KeyStore", "NewKey", "SigV4Rejected", "authenticate", "current_key"]
