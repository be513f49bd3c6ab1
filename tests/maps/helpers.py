"""Helpers of the map tests: read back what a map builder put into a folium.Map, and serve
pages from a local HTTP server."""

from __future__ import annotations

import contextlib
import http.server
import re
import shutil
import socket
import struct
import tempfile
import threading
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import folium
from branca.element import Element

from netgis.maps import static_dir


def walk(element: Element) -> Iterator[Element]:
    """Every element below ``element`` (depth first, in render order)."""
    for child in element._children.values():
        yield child
        yield from walk(child)


def geojson_layers(m: folium.Map) -> list[folium.GeoJson]:
    return [e for e in walk(m) if isinstance(e, folium.GeoJson)]


def css_class(layer: folium.GeoJson) -> str:
    """The CSS class every path of ``layer`` gets (its style's className)."""
    style = layer.style_function(layer.data["features"][0])
    return str(style["className"])


def features_by_class(m: folium.Map) -> Counter[str]:
    """Number of GeoJSON features per CSS class in ``m``."""
    out: Counter[str] = Counter()
    for layer in geojson_layers(m):
        if layer.data["features"]:
            out[css_class(layer)] += len(layer.data["features"])
    return out


def properties(m: folium.Map, cls: str) -> list[dict[str, Any]]:
    """The properties of every feature with CSS class ``cls``."""
    return [f["properties"] | {"_id": f.get("id")} for layer in geojson_layers(m)
            if layer.data["features"] and css_class(layer) == cls
            for f in layer.data["features"]]


def overlay_names(m: folium.Map) -> list[str]:
    return [e.layer_name for e in walk(m) if isinstance(e, folium.FeatureGroup)]


def asset_urls(html: str) -> list[str]:
    """The URL of every <script src=...> and <link href=...> tag of a rendered page."""
    urls = re.findall(r'<(?:script[^>]*\ssrc|link[^>]*\shref)="([^"]*)"', html)
    return [u for u in urls if not u.startswith("data:")]


def _png_1x1() -> bytes:
    """A valid 1x1 light-grey PNG, the body of every tile the local tile server returns."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00\xee\xee\xee\xff")) + chunk(b"IEND", b""))


TILE_PNG = _png_1x1()


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


def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def dashboard_marks(page: Any) -> dict[str, list[str]]:
    """The ARIA label of every mark of every chart of a loaded dashboard, by chart name
    (what a screen reader announces; the charts' data formatted in the browser)."""
    marks: dict[str, list[str]] = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('figure[data-chart]')].map(
            f => [f.dataset.chart, [...f.querySelectorAll('[role=graphics-symbol][aria-label]')]
                  .filter(e => !e.closest('.role-legend, .role-axis'))
                  .map(e => e.getAttribute('aria-label'))]))""")
    return marks


def run_axe(page: Any, axe_url: str) -> list[dict[str, Any]]:
    """axe-core's violations on ``page`` (WCAG 2 A/AA and best practices): id, impact and
    the first offending elements. ``axe_url`` is the vendored axe.min.js on the page's own
    server, so a Content-Security-Policy of 'self' scripts lets it run."""
    page.add_script_tag(url=axe_url)
    violations: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document)).violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 3).map(n => n.html)}))""")
    return violations


def page_layers(html: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Every GeoJSON feature a rendered folium page embeds, by CSS class, then by feature id.

    Each GeoJSON layer has one style (its ``className``, see ``maps._base.geojson_layer``)
    written in its styler function, and its data in its ``_add(...)`` call.
    """
    import json

    css_of = dict(re.findall(r'function (geo_json_\w+)_styler\(feature\) \{.*?"className": '
                             r'"([^"]+)"', html, flags=re.S))
    decoder = json.JSONDecoder()
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for match in re.finditer(r"(geo_json_\w+)_add\(", html):
        if match.group(1) not in css_of:
            continue
        data, _ = decoder.raw_decode(html, match.end())
        layer = out.setdefault(css_of[match.group(1)], {})
        for feature in data.get("features", []):
            layer[str(feature["id"])] = feature
    return out


#: The Playwright driver open in this test process, if any (see :func:`playwright_driver`).
_DRIVER: list[Any] = []


@contextlib.contextmanager
def playwright_driver() -> Iterator[Any]:
    """The open Playwright driver, or a new one for the ``with`` block.

    The sync API runs an event loop of its own: a second ``sync_playwright()`` started
    while one is open (the session's ``browser_context`` of tests/maps, then a test
    elsewhere that wants a browser) fails with "Sync API inside the asyncio loop". So a
    browser is launched from the open driver when there is one; else a driver is started
    for the block and stopped after it, leaving no loop behind for later tests.
    """
    import pytest

    if _DRIVER:
        yield _DRIVER[-1]
        return
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as driver:
        _DRIVER.append(driver)
        try:
            yield driver
        finally:
            _DRIVER.pop()


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless /usr/bin/chromium context with a fresh profile and no background traffic
    (the ``browser_context`` fixture's, and for test modules outside tests/maps)."""
    import pytest

    if not Path("/usr/bin/chromium").exists():
        pytest.fail("/usr/bin/chromium is missing: run scripts/install-system.sh")
    profile = tempfile.mkdtemp(prefix="netgis-chromium-")
    try:
        with playwright_driver() as driver:
            ctx = driver.chromium.launch_persistent_context(
                profile, executable_path="/usr/bin/chromium", headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--no-first-run"],
                viewport={"width": 1200, "height": 800})
            try:
                yield ctx
            finally:
                ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
