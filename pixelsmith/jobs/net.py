"""URLs the server is asked to fetch or call: one canonical form for allow-list checks, and HTTP
that never follows a redirect.

:func:`normal_url` is what an allow-list compares (``PIXELSMITH_JOBS_ALLOW`` for inputs,
``PIXELSMITH_WEBHOOK_ALLOW`` for webhooks): scheme and host lower-cased, the default port
dropped, percent-encoding made canonical, and a URL that could mean something other than
its text refused outright: a dot segment (``..``, ``%2e%2e``, ``.%2E`` ...), an encoded
slash or backslash inside a segment, user info (``http://allowed@evil/``), a bad port.
Redirects are never followed (:func:`http_get`, :func:`http_post`): a redirect target was
not checked against the allow-list, so a 3xx is an error.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from pixelsmith.errors import Forbidden

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_FETCH_BYTES = 256 * 1024 * 1024  # an input image fetched over HTTP (the decoder's pixel limits apply after)
_SEGMENT_SAFE = "!$&'()*+,;=:@~-._"


class RedirectRefused(OSError):
    """The server answered a redirect; it is not followed (its target was never allow-listed)."""


def _decoded(segment: str) -> str:
    """A path segment percent-decoded until nothing changes (``%252e`` is ``%2e`` is ``.``)."""
    for _ in range(8):
        once = urllib.parse.unquote(segment)
        if once == segment:
            return once
        segment = once
    return segment


def normal_url(url: str, what: str = "URL") -> str:
    """The canonical text of ``url`` for prefix checks; :class:`Forbidden` for a URL whose meaning could
    differ from its text (dot segments, encoded separators, user info, a bad port)."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise Forbidden(f"{what} {url!r} is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise Forbidden(f"{what} {url!r} has user info ('user@host'); give the URL without it")
    host = (parts.hostname or "").rstrip(".")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS.get(scheme):
        netloc += f":{port}"
    segments = []
    for raw in parts.path.split("/"):
        seg = _decoded(raw)
        if seg in (".", "..") or "/" in seg or "\\" in seg:
            raise Forbidden(
                f"{what} {url!r} has a dot segment or an encoded separator ('.', '..', '%2e%2e', '%2f' ...); "
                "give the path without it"
            )
        segments.append(urllib.parse.quote(seg, safe=_SEGMENT_SAFE))
    path = "/".join(segments)
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{netloc}{path}{query}"


def under_prefix(url: str, prefix: str) -> bool:
    """Whether the (normalised) ``url`` is the (normalised) ``prefix`` or lies under it."""
    norm, p = normal_url(url), normal_url(prefix, "allowed prefix")
    return norm == p or norm.startswith(p.rstrip("/") + "/")


# -- addresses ----------------------------------------------------------------------------------------
def public_address(address: str) -> bool:
    """A globally routable address: not loopback, private, link-local, multicast, reserved or unspecified."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_link_local or ip.is_loopback)


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (each one must pass a check: DNS may answer several)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


# -- HTTP without redirects ---------------------------------------------------------------------------
class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        raise RedirectRefused(f"{req.full_url} answered a redirect ({code}) to {newurl!r}; redirects are not followed")


_OPENER = urllib.request.build_opener(_NoRedirect())


def http_get(url: str, *, timeout: float = 30.0, max_bytes: int = MAX_FETCH_BYTES) -> bytes:
    """GET an http(s) URL's body; a redirect is :class:`RedirectRefused`, a bigger body an OSError."""
    if urllib.parse.urlsplit(url).scheme.lower() not in DEFAULT_PORTS:
        raise ValueError(f"not an http(s) URL: {url!r}")
    with _OPENER.open(urllib.request.Request(url, method="GET"), timeout=timeout) as response:
        data: bytes = response.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise OSError(f"{url} is over {max_bytes} bytes")
    return data


def http_post(url: str, body: bytes, headers: Mapping[str, str], *, timeout: float = 10.0) -> int:
    """POST ``body`` to an http(s) URL; the response status. A redirect is :class:`RedirectRefused`,
    an error status is returned (not raised), an unreachable host is an OSError."""
    if urllib.parse.urlsplit(url).scheme.lower() not in DEFAULT_PORTS:
        raise ValueError(f"not an http(s) URL: {url!r}")
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(65536)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
