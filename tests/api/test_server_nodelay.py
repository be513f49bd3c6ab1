"""``netgis serve``'s HTTP protocol switches Nagle's algorithm off, as uvicorn's multi-worker
listening socket (protocol number 0) keeps asyncio from doing it (api/server.py)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from netgis.api.server import set_nodelay
from tests.api.helpers import free_port


def _accepted_like_uvicorn_workers() -> tuple[socket.socket, socket.socket, socket.socket]:
    listener = socket.socket(socket.AF_INET)  # as uvicorn's Config.bind_socket makes it
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    return listener, client, accepted


def test_set_nodelay_on_a_socket_asyncio_leaves_alone() -> None:
    listener, client, accepted = _accepted_like_uvicorn_workers()
    try:
        assert accepted.proto == 0  # why asyncio's own _set_nodelay skips it
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0

        async def check() -> None:
            loop = asyncio.get_running_loop()
            transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, accepted)
            try:
                assert set_nodelay(transport)
            finally:
                transport.abort()

        asyncio.run(check())
    finally:
        client.close()
        listener.close()


def test_two_workers_answer_keep_alive_requests(tmp_path: Path) -> None:
    """`netgis serve --workers 2` over a real port serves a keep-alive client request after
    request (each answered, over one connection); the protocol is the one above."""
    port = free_port()
    db = tmp_path / "n.db"
    env = {**os.environ, "NETGIS_DATABASE_URL": f"sqlite:///{db}"}
    subprocess.run([sys.executable, "-m", "netgis.cli", "db", "init"], env=env, check=True,
                   capture_output=True)
    server = subprocess.Popen([sys.executable, "-m", "netgis.cli", "serve", "--port", str(port),
                               "--workers", "2"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            while True:
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
            codes = [client.get(p).status_code for p in ("/health", "/kpis", "/health") * 3]
        assert codes == [200] * 9
    finally:
        server.terminate()
        _, err = server.communicate(timeout=60)
    at = err.find(b"Traceback")
    assert at < 0, err[at:at + 4000].decode(errors="replace")
