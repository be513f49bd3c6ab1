"""Request ids and the structured request log (``NETGIS_LOG_FORMAT=json``).

Every request gets an id: the client's ``X-Request-ID`` when it is a short run of
safe characters (:data:`REQUEST_ID`), else a new UUID. It is on the request's
state (``request.state.request_id``) and in the ``X-Request-ID`` header of every
answer (a 500, sent from outside every middleware, gets it from
:mod:`api.errors`).

With ``NETGIS_LOG_FORMAT=json`` each request also gives one log record of the
``netgis.api.access`` logger, which :class:`JsonFormatter` writes as one JSON
line: time, level, request id, method, route template, path, status, duration
in milliseconds, client address and principal (the name of the API key or of
the token's subject, put on ``request.state.principal`` by :mod:`api.deps`).
What a client sends as a secret is never among them: no header, no query
string. :func:`api.server.log_config` gives every handler this formatter then
and turns uvicorn's own access line off.

Examples
--------
>>> request_id_of("checkout-7f3a")
'checkout-7f3a'
>>> len(request_id_of("two words")), len(request_id_of(None))
(36, 36)
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The header a request id comes in and goes out by.
REQUEST_ID_HEADER = "X-Request-ID"
#: A request id a client may choose: 1 to 128 letters, digits and ``._:-`` (a UUID, a
#: trace id, a proxy's id); anything else is replaced by a new UUID.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
#: The logger of the request lines (level INFO).
access_log = logging.getLogger("netgis.api.access")


def request_id_of(sent: str | None) -> str:
    """The id of a request whose ``X-Request-ID`` header is ``sent`` (None: none)."""
    if sent is not None and REQUEST_ID.fullmatch(sent):
        return sent
    return str(uuid.uuid4())


def route_template(scope: Scope) -> str | None:
    """The matched route's path template (``/collections/{layer}/items``), None when no
    route matched."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else None


class RequestLog:
    """ASGI middleware: the request id of every request, and one log record per request
    when ``log_requests`` (the JSON log format)."""

    def __init__(self, app: ASGIApp, *, log_requests: bool) -> None:
        self.app = app
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the request with its id in the answer's headers, then log it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                sent = value.decode("latin-1")
                break
        request_id = request_id_of(sent)
        # the same dict as request.state of every handler (starlette keeps it in the scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status = [500]  # no answer sent: the exception's 500 is sent outside this middleware

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.log_requests:
                self._log(scope, state, status[0], time.perf_counter() - started)

    @staticmethod
    def _log(scope: Scope, state: dict[str, Any], status: int, seconds: float) -> None:
        client = scope.get("client")
        principal = state.get("principal")
        fields = {
            "request_id": state["request_id"], "method": scope["method"],
            "route": route_template(scope), "path": scope["path"], "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "client": client[0] if client else None,
            "principal": principal if isinstance(principal, str) else None,
        }
        access_log.info("%s %s %s", scope["method"], fields["route"] or scope["path"], status,
                        extra={"request": fields})


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``timestamp`` (UTC, ISO 8601), ``level``, ``logger``,
    ``message``, a request's fields (:class:`RequestLog`) and an ``exception``'s traceback.

    Examples
    --------
    >>> record = logging.LogRecord("netgis", logging.INFO, __file__, 1, "hi %s", ("you",), None)
    >>> json.loads(JsonFormatter().format(record))["message"]
    'hi you'
    """

    def format(self, record: logging.LogRecord) -> str:
        """``record`` as one line of JSON."""
        out: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        fields = getattr(record, "request", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        # one line whatever the message holds: json.dumps escapes every newline
        return json.dumps(out, ensure_ascii=False, default=str)
