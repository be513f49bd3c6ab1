"""What ``netgis serve`` gives uvicorn besides the app: its HTTP protocol, limits and logging.

uvicorn's multi-worker mode binds its listening socket as ``socket.socket(family)``, so
the socket's protocol number is 0 and asyncio, which sets ``TCP_NODELAY`` only on
sockets whose protocol is TCP, leaves Nagle's algorithm on for every connection the
workers accept. A keep-alive client then waits for the delayed ACK on each response
sent in two writes: measured on loopback, 44-48 ms per request against 3-4 ms from
one worker (whose sockets come from ``getaddrinfo`` with the TCP protocol number).
:class:`NoDelayH11Protocol` switches Nagle off on each TCP connection it serves.

uvicorn's h11 protocol gives no time limit to a request's headers: a client sending
nothing, or a header line every few seconds, held its connection for minutes.
:class:`NoDelayH11Protocol` closes a connection whose request headers are not complete
``header_timeout_s`` after the connection (or the request's first byte); bodies have
their limit in :class:`api.limits.BodyLimit`, idle keep-alive connections uvicorn's
``timeout_keep_alive``. :func:`uvicorn_options` gathers them from the settings.

:func:`log_config` writes plain text or, with ``NETGIS_LOG_FORMAT=json``, one JSON object
per line (api/request_log.py). :class:`RedactSecrets` keeps keys out of the log: the API
takes a key only in the X-API-Key header and refuses ``?api_key=`` (400), but the access
log prints the request line as sent.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
import socket
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import unquote_plus

import h11
from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.http.h11_impl import H11Protocol

if TYPE_CHECKING:
    from netgis.api.settings import Settings

#: Largest request line and headers uvicorn's h11 parser buffers (h11's own default).
MAX_HEADER_BYTES = 16 * 1024


def set_nodelay(transport: Any) -> bool:
    """Switch Nagle's algorithm off on ``transport``'s socket when it is TCP; whether it did.

    Examples
    --------
    >>> class Pipe:  # a transport without a socket (a Unix pipe, a test double)
    ...     def get_extra_info(self, name): return None
    >>> set_nodelay(Pipe())
    False
    """
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6) \
            or sock.type != socket.SOCK_STREAM:
        return False
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return True


class NoDelayH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with ``TCP_NODELAY`` set on each connection and a time limit
    on request headers (see the module)."""

    #: Seconds a client has to complete a request's headers; :func:`configure` sets it
    #: from the settings in each server process.
    header_timeout_s: ClassVar[float] = 10.0

    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Set ``TCP_NODELAY`` on a new connection and start waiting for its headers."""
        set_nodelay(transport)
        super().connection_made(transport)  # type: ignore[arg-type]
        self._await_headers()

    def data_received(self, data: bytes) -> None:
        """Feed ``data`` to h11; keep the header timer running while headers are incomplete."""
        super().data_received(data)
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._await_headers()  # a request begun whose headers are not complete
        else:
            self._stop_waiting()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the header timer of a closed connection."""
        self._stop_waiting()
        super().connection_lost(exc)

    def _await_headers(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s,
                                                      self._headers_too_slow)

    def _stop_waiting(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.logger.info("closed a connection whose request headers took more than "
                             "%g s", self.header_timeout_s)
            self.transport.close()


def configure(settings: Settings) -> None:
    """Set what :class:`NoDelayH11Protocol` takes from ``settings`` (once per process)."""
    NoDelayH11Protocol.header_timeout_s = settings.header_timeout_s


#: Query parameters whose value is a secret wherever it is written (a key sent by mistake).
SECRET_PARAMETERS = frozenset({"api_key", "apikey", "x_api_key", "key", "token",
                               "access_token"})
_QUERY_ITEM = re.compile(r"([?&])([^=&#\s]*)=([^&#\s\"]*)")


def redact(text: str) -> str:
    """``text`` with the value of every secret query parameter of a URL in it replaced.

    Examples
    --------
    >>> redact("GET /collections?limit=2&API%5Fkey=s3cret HTTP/1.1")
    'GET /collections?limit=2&API%5Fkey=REDACTED HTTP/1.1'
    """
    def hide(match: re.Match[str]) -> str:
        name = unquote_plus(match.group(2)).lower().replace("-", "_")
        if name in SECRET_PARAMETERS:
            return f"{match.group(1)}{match.group(2)}=REDACTED"
        return match.group(0)

    return _QUERY_ITEM.sub(hide, text) if "=" in text else text


class RedactSecrets(logging.Filter):
    """A logging filter: the secret query values of a record's message and arguments
    (uvicorn's access log passes the request's path and query as an argument) redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place; every record is kept."""
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def log_config(log_format: str = "text") -> dict[str, Any]:
    """uvicorn's logging configuration with :class:`RedactSecrets` on every handler.

    ``log_format="json"``: every line a JSON object (:class:`api.request_log.JsonFormatter`),
    the ``netgis`` loggers (the request lines among them) written at INFO too, and no
    access handler (the request lines take its place: :func:`uvicorn_options` turns
    uvicorn's access log off).
    """
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_secrets"] = {"()": RedactSecrets}
    if log_format == "json":
        config["formatters"] = {"json": {"()": "netgis.api.request_log.JsonFormatter"}}
        config["handlers"] = {"default": {"class": "logging.StreamHandler",
                                          "stream": "ext://sys.stderr", "formatter": "json"}}
        config["loggers"] = {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "netgis": {"handlers": ["default"], "level": "INFO", "propagate": False}}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_secrets")
    return config


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What ``uvicorn.run`` is given besides the app, host, port and workers."""
    return {"http": NoDelayH11Protocol, "log_level": "info",
            "log_config": log_config(settings.log_format),
            # JSON: the request log (api.request_log) says what the access log would
            "access_log": settings.log_format != "json",
            "timeout_keep_alive": settings.keep_alive_s,
            "timeout_graceful_shutdown": settings.shutdown_timeout_s,
            "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
            # forwarded headers are the app's (api.transport, NETGIS_FORWARDED_ALLOW_IPS), not
            # uvicorn's, which trusts 127.0.0.1 by default
            "proxy_headers": False}
