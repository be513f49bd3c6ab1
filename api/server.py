"""What ``netgis serve`` gives uvicorn besides the app: an HTTP protocol that answers without delay.

uvicorn's multi-worker mode binds its listening socket as ``socket.socket(family)``, so
the socket's protocol number is 0 and asyncio, which sets ``TCP_NODELAY`` only on
sockets whose protocol is TCP, leaves Nagle's algorithm on for every connection the
workers accept. A keep-alive client then waits for the delayed ACK on each response
sent in two writes: measured on loopback, 44-48 ms per request against 3-4 ms from
one worker (whose sockets come from ``getaddrinfo`` with the TCP protocol number).
:class:`NoDelayH11Protocol` switches Nagle off on each TCP connection it serves.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


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
    """uvicorn's h11 protocol with ``TCP_NODELAY`` set on each connection (see the module)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        set_nodelay(transport)
        super().connection_made(transport)  # type: ignore[arg-type]
