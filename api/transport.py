"""How a request reached the server: through which proxy, over which scheme; and HSTS.

:class:`Transport` is the outermost middleware of the app. When the peer of the connection
is a trusted reverse proxy (``NETGIS_FORWARDED_ALLOW_IPS``: addresses or networks, ``*``
for any; empty by default, so no client's forwarded headers count), the request takes:

- the client address of ``X-Forwarded-For`` (the nearest address that is not a trusted
  proxy itself) and the scheme of ``X-Forwarded-Proto``: uvicorn's
  :class:`~uvicorn.middleware.proxy_headers.ProxyHeadersMiddleware` does both (the
  server's own handling of those headers is off: ``proxy_headers=False`` in
  :func:`api.server.uvicorn_options`, so the app decides the same way under any server);
- the host of ``X-Forwarded-Host`` (the value the nearest proxy set, the last one; a value
  that is not ``host[:port]`` is ignored) as the server's address (ASGI ``server``), from
  which :class:`api.security.PublicOrigin` builds absolute links unless
  ``NETGIS_PUBLIC_URL`` is set.

The client address is what rate limits count by and what logs name. The RFC 7239
``Forwarded`` header is not read: proxies are to send the ``X-Forwarded-*`` ones.

Every response to a request that came over https (TLS at the server, or an https scheme
forwarded by a trusted proxy) carries ``Strict-Transport-Security: max-age=N``
(``NETGIS_HSTS_MAX_AGE``, 0 for none); over plain http none (RFC 6797 §7.2).

Examples
--------
>>> forwarded_host(b"maps.example.org")
('maps.example.org', None)
>>> forwarded_host(b"evil.example, [2001:db8::1]:8443")
('2001:db8::1', 8443)
>>> forwarded_host(b"example.org/path") is None
True
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from ipaddress import ip_address, ip_network

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

_HOST = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9](?:[A-Za-z0-9.-]*"
                   r"[A-Za-z0-9])?))(?::(?P<port>[0-9]{1,5}))?")


def forwarded_host(value: bytes) -> tuple[str, int | None] | None:
    """The host and port of an ``X-Forwarded-Host`` value (its last item), or None when it
    is not ``host[:port]``."""
    last = value.decode("latin-1").rsplit(",", 1)[-1].strip()
    match = _HOST.fullmatch(last)
    if match is None:
        return None
    port = int(match["port"]) if match["port"] else None
    if port is not None and not 0 < port < 65536:
        return None
    return (match["v6"] or match["name"]), port


class Transport:
    """ASGI middleware: forwarded headers from trusted proxies only, HSTS over https.

    Parameters
    ----------
    app
        The application.
    trusted
        Addresses or networks of the trusted reverse proxies, ``*`` for any peer; empty:
        forwarded headers are ignored.
    hsts_max_age
        ``max-age`` of ``Strict-Transport-Security`` over https; 0: no such header.
    """

    def __init__(self, app: ASGIApp, *, trusted: Sequence[str], hsts_max_age: int) -> None:
        self.app = app
        self.any_peer = "*" in trusted
        self.networks = [ip_network(t, strict=False) for t in trusted if t != "*"]
        self.hsts = f"max-age={int(hsts_max_age)}".encode("latin-1") if hsts_max_age else None
        self.proxied = ProxyHeadersMiddleware(
            self._answer, trusted_hosts=list(trusted)) if trusted else None  # type: ignore[arg-type]

    def trusts(self, peer: str | None) -> bool:
        """Whether ``peer`` (the connection's address) is a trusted proxy."""
        if peer is None:
            return False
        if self.any_peer:
            return True
        try:
            address = ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Take the forwarded client, scheme and host from a trusted peer, then answer."""
        if scope["type"] != "http" or self.proxied is None:
            await self._answer(scope, receive, send)
            return
        client = scope.get("client")
        if self.trusts(client[0] if client else None):
            values = [v for k, v in scope.get("headers", ()) if k == b"x-forwarded-host"]
            host = forwarded_host(values[-1]) if values else None
            if host is not None:
                scope = {**scope, "server": host}
            await self.proxied(scope, receive, send)  # type: ignore[arg-type]
            return
        await self._answer(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.hsts is None or scope.get("scheme") != "https":
            await self.app(scope, receive, send)
            return
        hsts = self.hsts

        async def send_with_hsts(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["Strict-Transport-Security"] = \
                    hsts.decode("latin-1")
            await send(message)

        await self.app(scope, receive, send_with_hsts)
