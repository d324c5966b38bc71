"""The portal's defences that sit around every request.

* **Which host and which client**: :func:`allowed_hosts` (``[portal] url`` and
  ``[portal] allowed_hosts``) and :func:`client_address`, which believes
  ``X-Forwarded-For`` only from ``[portal] trusted_proxies``: otherwise any client could
  pose as any address and walk round the login lock-out.
* **Headers on every response** (:class:`HardeningMiddleware`): a Content-Security-Policy
  without inline script, ``frame-ancestors 'none'`` and ``X-Frame-Options``,
  ``nosniff``, a strict referrer policy, and HSTS when the portal's URL is https. A request
  for a host that is not allowed is answered 400 before any route sees it, so a poisoned
  ``Host`` cannot reach a page.
* **Rate limits** (:class:`RateLimiter`): a sliding window per client, in memory (one
  per worker process; a limit behind several workers is per worker).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from windl.config import Site
from windl.errors import ConfigError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")
#: the longest text of a request (a search) the audit log keeps
AUDIT_TEXT_LIMIT = 500


def portal_url(site: Site) -> str | None:
    """``[portal] url`` without a trailing slash (None when unset)."""
    url = site.setting("portal", "url")
    if not url:
        return None
    parts = urlsplit(str(url))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"[portal] url must be an http(s) address, not {url!r}", site.root)
    return str(url).rstrip("/")


def allowed_hosts(site: Site) -> frozenset[str] | None:
    """Host names requests may name; None: any (neither url nor allowed_hosts is set)."""
    hosts = {str(h).strip().lower() for h in site.setting("portal", "allowed_hosts", [])}
    url = portal_url(site)
    if url:
        hosts.add((urlsplit(url).hostname or "").lower())
    if not hosts:
        return None
    return frozenset(hosts | set(LOOPBACK_NAMES))


def trusted_proxies(site: Site) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The networks whose ``X-Forwarded-For`` the portal believes (``[portal] trusted_proxies``)."""
    networks = []
    for entry in site.setting("portal", "trusted_proxies", []):
        try:
            networks.append(ipaddress.ip_network(str(entry), strict=False))
        except ValueError:
            raise ConfigError(
                f"[portal] trusted_proxies: {entry!r} is not an IP address or network", site.root
            ) from None
    return tuple(networks)


def _is_trusted(address: str, proxies: Iterable[Any]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_address(peer: str, forwarded_for: str | None, proxies: tuple[Any, ...]) -> str:
    """The client's address: the peer, or the nearest untrusted hop a trusted proxy names."""
    if not proxies or not forwarded_for or not _is_trusted(peer, proxies):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not _is_trusted(hop, proxies):
            return hop
    return peer


def _host_name(host_header: str) -> str:
    host = host_header.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class HardeningMiddleware:
    """Refuse unknown hosts (400) and add the security headers to every response."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str] | None, https: bool) -> None:
        self.app = app
        self.hosts = hosts
        self.headers = [*HEADERS, HSTS] if https else list(HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.hosts is not None:
            host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
            if _host_name(host) not in self.hosts:
                await self._refuse(send)
                return

        async def send_hardened(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_hardened)

    async def _refuse(self, send: Send) -> None:
        body = b"this portal does not answer for that host name\n"
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            *self.headers,
        ]
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds per key (a sliding window)."""

    def __init__(self, limit: int, window: float = 60.0, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Count one event for ``key``; False when it is over the limit."""
        if self.limit <= 0:
            return True
        now = time.monotonic()
        with self._lock:
            events = self._events.get(key)
            if events is None:
                if len(self._events) >= self.max_keys:
                    self._forget_idle(now)
                events = self._events.setdefault(key, deque())
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) >= self.limit:
                return False
            events.append(now)
            return True

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, e in self._events.items() if not e or e[-1] <= now - self.window]:
            del self._events[key]
        if len(self._events) >= self.max_keys:
            self._events.clear()  # a flood of addresses: start again rather than grow


def capped(text: str, limit: int = AUDIT_TEXT_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"
