"""What every response says about itself, and where the links it holds point.

:class:`SecurityHeaders` gives every response ``X-Content-Type-Options: nosniff`` (no
browser guesses a type the server did not name: a feature's text served as JSON never
runs as a script) and keeps every HTML page out of another site's frame: ``frame-ancestors
'self'`` is added to the page's Content-Security-Policy (a page without one gets a policy
that loads nothing). ``frame-ancestors`` counts only in the header: the policy a map page
also carries in a ``<meta>`` element (for a saved copy) is left as it is.

:class:`PublicOrigin` makes the request's URL, from which every absolute link is built
(``request.url``, ``request.base_url``: TileJSON, the OGC links, the report's map links),
start with the configured public URL (``NETGIS_PUBLIC_URL``) or else the address the
server was reached on (its socket), never with the Host header a client sent.

Examples
--------
>>> framed("default-src 'none'; img-src data:")
"default-src 'none'; img-src data:; frame-ancestors 'self'"
>>> framed("default-src 'none'; frame-ancestors 'none'")
"default-src 'none'; frame-ancestors 'none'"
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Who may frame the HTML pages: pages of this server only.
FRAME_ANCESTORS = "frame-ancestors 'self'"
#: The policy of an HTML response that brought none: nothing loads, nothing runs.
FALLBACK_POLICY = f"default-src 'none'; base-uri 'none'; form-action 'none'; {FRAME_ANCESTORS}"


def framed(policy: str) -> str:
    """``policy`` with :data:`FRAME_ANCESTORS` unless it says who may frame it already."""
    names = {d.strip().split(" ", 1)[0].lower() for d in policy.split(";") if d.strip()}
    if "frame-ancestors" in names:
        return policy
    return f"{policy.rstrip().rstrip(';')}; {FRAME_ANCESTORS}"


class SecurityHeaders:
    """ASGI middleware: ``nosniff`` on every response, framing rules on every HTML page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the request, adding the headers to its response's start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                if headers.get("content-type", "").lower().startswith("text/html"):
                    policy = headers.get("content-security-policy")
                    headers["Content-Security-Policy"] = (
                        FALLBACK_POLICY if policy is None else framed(policy))
                    # for browsers that know no frame-ancestors
                    headers["X-Frame-Options"] = "SAMEORIGIN"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class PublicOrigin:
    """ASGI middleware: the request's scheme and host are the server's, not the client's.

    Parameters
    ----------
    app
        The application.
    public_url
        ``http(s)://host[:port]`` clients reach the server by (a proxy's address), or None:
        the address of the server's socket the request came in on.
    """

    def __init__(self, app: ASGIApp, *, public_url: str | None) -> None:
        self.app = app
        parts = urlsplit(public_url) if public_url else None
        self.scheme = parts.scheme if parts is not None else None
        self.host = parts.netloc.encode("latin-1") if parts is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the request with its host header and scheme replaced by the server's."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = [(k, v) for k, v in scope.get("headers", ()) if k != b"host"]
        host = self.host if self.host is not None else _socket_host(scope)
        if host is not None:
            headers.append((b"host", host))
        # without a host header Starlette builds URLs from path alone (relative links)
        changed = {**scope, "headers": headers}
        if self.scheme is not None:
            changed["scheme"] = self.scheme
        await self.app(changed, receive, send)


def _socket_host(scope: Scope) -> bytes | None:
    """``host[:port]`` of the server's socket (``scope["server"]``), default port left out."""
    server = scope.get("server")
    if not server or server[0] is None:
        return None
    host, port = server
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    default = {"http": 80, "https": 443}.get(scope.get("scheme", "http"))
    return (host if port is None or port == default else f"{host}:{port}").encode("latin-1")
