"""Limits that keep one client from using up the server: body sizes and new analyses.

:class:`BodyLimit` counts request body bytes as they arrive and stops reading at the
route's limit, so a body larger than allowed never sits whole in memory or in
temporary files (chunked bodies carry no Content-Length to check up front).

:class:`RateLimiter` is a token bucket per client for requests that would start new
work (an analysis, a page or report not kept, a scenario: see
:meth:`api.services.Services.admit`); :func:`current_client` tells the service layer
who is asking (see :func:`api.deps.identify_client`), without changing the services'
signatures.

Examples
--------
>>> limiter = RateLimiter(per_minute=60, burst=2)
>>> limiter.take("10.0.0.1", now=0.0), limiter.take("10.0.0.1", now=0.0)
(None, None)
>>> limiter.take("10.0.0.1", now=0.0)  # empty: one token comes back each second
1
>>> limiter.take("10.0.0.1", now=1.0) is None
True
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import LRUCache
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from netgis.api.errors import ApiError, problem
from netgis.errors import Problem

# ------------------------------------------------------------------------ request bodies


class BodyTooLarge(ApiError):
    """413: the request body passed the route's limit (raised while it is being read)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes",
                         [Problem("body", None, None, f"larger than {limit} bytes")])
        self.limit = limit


class BodyTimeout(ApiError):
    """408: the client paused longer than allowed while sending the request body."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(408, f"the request body stopped arriving for {timeout_s:g} s",
                         [Problem("body", None, None,
                                  f"no byte of it came for {timeout_s:g} s")],
                         headers={"Connection": "close"})


class BodyLimit:
    """ASGI middleware: refuse a request body once it passes its route's limit, or once it
    pauses longer than ``read_timeout_s``.

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

    A client that stops sending its body for ``read_timeout_s`` (a slow client holding
    the connection, or one that sent a Content-Length it never fills) gets a 408
    problem and the connection is closed. Once the body is complete, reads (waiting
    for the client to disconnect) have no time limit.

    Parameters
    ----------
    app
        The application.
    limit_of
        The largest body, in bytes, for the request's scope.
    read_timeout_s
        Longest pause between two parts of the body, in seconds (None: no limit).
    """

    def __init__(self, app: ASGIApp, *, limit_of: Callable[[Scope], int],
                 read_timeout_s: float | None = None) -> None:
        self.app = app
        self.limit_of = limit_of
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with a ``receive`` that counts and times its body."""
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
        complete = False

        async def counted() -> Message:
            nonlocal limit, received, complete
            if limit is None:
                limit = self.limit_of(scope)
                if declared is not None and declared > limit:
                    raise BodyTooLarge(limit)
            if complete or self.read_timeout_s is None:
                message = await receive()
            else:
                try:
                    message = await asyncio.wait_for(receive(), self.read_timeout_s)
                except TimeoutError:
                    raise BodyTimeout(self.read_timeout_s) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
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
        except (BodyTooLarge, BodyTimeout) as exc:
            # read outside a route (by a middleware): the error handlers never saw it
            if started:
                raise
            await problem(exc.status, exc.detail, exc.problems, exc.headers)(
                scope, receive, send)


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


# -------------------------------------------------------------------------- new analyses


class RateLimited(ApiError):
    """429: the client started as much new work (analyses, pages, reports) as it may for now."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            429, "too many new analyses, pages or reports from this client: repeat a "
            "request whose result is cached, send an X-API-Key, or retry in "
            f"{retry_after} s",
            [Problem("request", None, None,
                     "new analyses, pages and reports are rate limited per client")],
            headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


class RateLimiter:
    """A token bucket per client: ``burst`` tokens, refilled at ``per_minute``.

    Parameters
    ----------
    per_minute
        Tokens a client gets back per minute; 0 turns the limit off.
    burst
        Tokens a client holds at most (new analyses in a row).
    clients
        Buckets kept, least recently used dropped first (a dropped client starts full
        again), so that many clients cannot grow the table without bound.
    """

    def __init__(self, per_minute: float, burst: int, clients: int = 10_000) -> None:
        self.per_second = per_minute / 60.0
        self.burst = max(1, int(burst))
        self.clients = clients
        self._lock = threading.Lock()
        # client -> (tokens, time of the last update)
        self._buckets: LRUCache[str, tuple[float, float]] = LRUCache(maxsize=clients)

    @property
    def enabled(self) -> bool:
        """Whether the limit is on (a refill rate over 0)."""
        return self.per_second > 0

    def take(self, client: str, now: float | None = None) -> int | None:
        """Take a token for ``client``: None when granted, else the seconds to wait."""
        if not self.enabled:
            return None
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.per_second)
            granted = tokens >= 1.0
            if granted:
                tokens -= 1.0
            self._buckets[client] = (tokens, now)
        if granted:
            return None
        return max(1, math.ceil((1.0 - tokens) / self.per_second))

    def admit(self, client: str) -> None:
        """Take a token for ``client`` or raise :class:`RateLimited`."""
        wait = self.take(client)
        if wait is not None:
            raise RateLimited(wait)


@dataclass(frozen=True)
class Client:
    """Who sent the request being answered: address, and whether it holds a valid key."""

    address: str
    keyed: bool


#: The client of the request this thread (or task) answers; None outside requests.
_client: contextvars.ContextVar[Client | None] = contextvars.ContextVar(
    "netgis_client", default=None)


def set_current_client(client: Client) -> None:
    """Record the client of the current request (each request runs in its own context)."""
    _client.set(client)


def current_client() -> Client | None:
    """The client of the request being answered, or None (startup, snapshots after writes)."""
    return _client.get()
