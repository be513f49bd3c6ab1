"""Limits that keep one client from using up the server: request body sizes.

:class:`BodyLimit` counts request body bytes as they arrive and stops reading at the
route's limit, so a body larger than allowed never sits whole in memory or in
temporary files (chunked bodies carry no Content-Length to check up front).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError, problem
from netgis.errors import Problem

# ------------------------------------------------------------------------ request bodies


class BodyTooLarge(ApiError):
    """413: the request body passed the route's limit (raised while it is being read)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes",
                         [Problem("body", None, None, f"larger than {limit} bytes")])
        self.limit = limit


class BodyLimit:
    """ASGI middleware: refuse a request body once it passes its route's limit.

    Every ``http.request`` message is counted as the application receives it; the
    one that passes the limit raises :class:`BodyTooLarge` inside whatever is
    reading (``request.body()``, the multipart parser spooling an upload), which
    the error handlers turn into a 413 problem at once. The bytes read so far are
    dropped with the reader; the rest of the body is never stored (the server
    discards it, or closes the connection). A declared Content-Length over the
    limit is refused at the first read, before any byte is taken.

    The limit is asked of ``limit_of(scope)`` when the body is first read: by then
    the router has put the matched route into the scope, so the limit can depend
    on the route (uploads may be larger than JSON bodies).

    Parameters
    ----------
    app
        The application.
    limit_of
        The largest body, in bytes, for the request's scope.
    """

    def __init__(self, app: ASGIApp, *, limit_of: Callable[[Scope], int]) -> None:
        self.app = app
        self.limit_of = limit_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, chunked = _body_headers(scope)
        if not declared and not chunked:
            # no body (HTTP/1.1 has none without either header): nothing to count
            await self.app(scope, receive, send)
            return
        limit: int | None = None
        received = 0

        async def counted() -> Message:
            nonlocal limit, received
            if limit is None:
                limit = self.limit_of(scope)
                if declared is not None and declared > limit:
                    raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge as exc:
            # read outside a route (by a middleware): the error handlers never saw it
            if started:
                raise
            await problem(413, exc.detail, exc.problems)(scope, receive, send)


def _body_headers(scope: Scope) -> tuple[int | None, bool]:
    """The declared Content-Length (None if absent or unreadable) and whether it is chunked."""
    declared: int | None = None
    chunked = False
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            declared = int(text) if text.isdigit() else None
        elif name == b"transfer-encoding":
            chunked = True
    return declared, chunked
