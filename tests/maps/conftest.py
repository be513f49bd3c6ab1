"""Fixtures for the map tests: analysed datasets, a local HTTP server, headless Chromium."""

from __future__ import annotations

import http.server
import shutil
import socket
import struct
import tempfile
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maps import static_dir
from netgis.analysis import Analysis, analyze
from netgis.generate import generate_city
from netgis.io import read_dataset

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _png_1x1() -> bytes:
    """A valid 1x1 light-grey PNG, the body of every tile the local tile server returns."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00\xee\xee\xee\xff")) + chunk(b"IEND", b""))


TILE_PNG = _png_1x1()


@pytest.fixture(scope="session")
def ring() -> Analysis:
    """ring_spur: the hand-drawn example whose answers are in its README."""
    return analyze(read_dataset(str(EXAMPLES / "ring_spur" / "dataset.gpkg")))


@pytest.fixture(scope="session")
def city() -> Analysis:
    """A generated city of 400 premises (lit, unlit, planned and retired spans, areas)."""
    return analyze(generate_city(premises=400, seed=1))


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves /static/... from maps.static_dir(), /tiles/... as one PNG, the rest from a dir."""

    pages: Path
    log: list[str]

    def translate_path(self, path: str) -> str:
        clean = path.split("?", 1)[0].split("#", 1)[0]
        if clean.startswith("/static/"):
            return str(static_dir() / clean.removeprefix("/static/"))
        return str(self.pages / clean.lstrip("/"))

    def do_GET(self) -> None:
        self.log.append(self.path)
        if self.path.startswith("/tiles/"):
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(TILE_PNG)))
            self.end_headers()
            self.wfile.write(TILE_PNG)
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean; requests are recorded in ``log``


class PageServer:
    """A real HTTP server on a free 127.0.0.1 port serving a temporary directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.log: list[str] = []
        handler = type("Handler", (_Handler,), {"pages": root, "log": self.log})
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def write(self, name: str, html: str) -> str:
        (self.root / name).write_text(html, encoding="utf-8")
        return self.url(name)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def server() -> Iterator[PageServer]:
    root = Path(tempfile.mkdtemp(prefix="netgis-maps-"))
    srv = PageServer(root)
    yield srv
    srv.close()
    shutil.rmtree(root, ignore_errors=True)


def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture(scope="session")
def browser_context() -> Iterator[Any]:
    """Headless /usr/bin/chromium with a fresh, empty profile and no background traffic."""
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        pytest.fail("/usr/bin/chromium is missing: run scripts/install-system.sh")
    profile = tempfile.mkdtemp(prefix="netgis-chromium-")
    with playwright.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            profile,
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"],
            viewport={"width": 1200, "height": 800},
        )
        yield ctx
        ctx.close()
    shutil.rmtree(profile, ignore_errors=True)
