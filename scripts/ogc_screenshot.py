"""Screenshot of the HTML items page (with its map) for the README: docs/ogc-html.png.

Loads data/sample.gpkg into a temporary SpatiaLite file, serves it on a free
loopback port and opens ``/collections/premises/items?f=html`` in headless
Chromium (Debian's /usr/bin/chromium). Run from the repository root:
``python scripts/ogc_screenshot.py``.
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from netgis.api.app import create_app
from netgis.api.settings import Settings
from netgis.io import read_dataset
from netgis.storage import Repository

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="netgis-shot-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'shot.db'}"
        repo = Repository.from_url(url)
        repo.init()
        repo.load_dataset(read_dataset(ROOT / "data" / "sample.gpkg"))
        repo.close()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(create_app(Settings(database_url=url)),
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                            args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page(viewport={"width": 1100, "height": 900})
                page.goto(f"http://127.0.0.1:{port}/collections/premises/items?f=html&limit=12",
                          wait_until="networkidle")
                page.wait_for_selector("#map[data-features]")
                page.screenshot(path=str(ROOT / "docs" / "ogc-html.png"))
                browser.close()
        finally:
            server.should_exit = True
            thread.join(timeout=30)
            sock.close()


if __name__ == "__main__":
    main()
