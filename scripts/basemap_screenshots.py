"""The README's street-zoom screenshots of the coverage map: over a served base map, and over
the dataset's own streets. ``.venv/bin/python scripts/basemap_screenshots.py [DATASET] [DIR]``
(default ``data/sample.gpkg``, ``docs/img``).

- ``map-coverage-basemap.png``: ``netgis serve`` (the real app on a free loopback port, the
  dataset in a temporary SpatiaLite file) with ``NETGIS_BASEMAP`` set to a raster MBTiles
  file made here, because this machine has no OpenStreetMap extract: its tiles are drawn
  with Pillow from the dataset's own streets (names along them) and districts, zooms 13 to
  17, as a stand-in for one a city makes from OpenStreetMap (docs/basemap.md).
- ``map-coverage-streets.png``: the self-contained page ``netgis map coverage`` writes, with
  no base map: the dataset's ``streets`` layer under the plant.

Both at zoom 17 around the core, 900x560, in headless ``/usr/bin/chromium`` (Playwright, no
network). A development tool: Playwright is a test dependency.
"""

from __future__ import annotations

import io
import itertools
import math
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from PIL import Image, ImageDraw, ImageFont

from netgis.io import read_dataset
from netgis.io.basemap import write_mbtiles

ZOOMS = range(13, 18)
STREET_ZOOM = 17
VIEWPORT = {"width": 900, "height": 560}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
AREA_COLOURS = ["#efe9dc", "#e9efdf", "#ece6e9", "#e4ebee", "#efeadf", "#e6ece3"]


def pixel(lon: np.ndarray, lat: np.ndarray, z: int) -> tuple[np.ndarray, np.ndarray]:
    """Global Web Mercator pixel coordinates at zoom ``z`` (256 px tiles)."""
    size = 256 * 2 ** z
    x = (lon + 180.0) / 360.0 * size
    y = (1 - np.arcsinh(np.tan(np.radians(lat))) / math.pi) / 2 * size
    return x, y


def render(streets: gpd.GeoDataFrame, areas: gpd.GeoDataFrame,
           box: tuple[float, float, float, float], z: int) -> tuple[Image.Image, int, int]:
    """The base map of ``box`` at zoom ``z`` as one image aligned on tiles, and the tile x, y
    of its top left corner."""
    west, south, east, north = box
    corner_x, corner_y = pixel(np.array([west, east]), np.array([north, south]), z)
    x0, x1 = int(corner_x[0] // 256), int(corner_x[1] // 256)
    y0, y1 = int(corner_y[0] // 256), int(corner_y[1] // 256)
    image = Image.new("RGB", ((x1 - x0 + 1) * 256, (y1 - y0 + 1) * 256), "#f2efe9")
    draw = ImageDraw.Draw(image)

    def xy(geom: Any) -> list[tuple[float, float]]:
        c = shapely.get_coordinates(geom)
        px, py = pixel(c[:, 0], c[:, 1], z)
        return list(zip((px - x0 * 256).tolist(), (py - y0 * 256).tolist(), strict=True))

    for i, geom in enumerate(areas.geometry):
        for part in shapely.get_parts(geom):
            draw.polygon(xy(part.exterior), fill=AREA_COLOURS[i % len(AREA_COLOURS)],
                         outline="#d8d0c4")
    width = {13: 2, 14: 3, 15: 5, 16: 8, 17: 13}[z]
    lines = [xy(part) for geom in streets.geometry for part in shapely.get_parts(geom)]
    for line in lines:
        draw.line(line, fill="#c9c2b8", width=width + 2, joint="curve")
    for line in lines:
        draw.line(line, fill="#ffffff", width=width, joint="curve")
    if z >= 16:
        font = ImageFont.load_default(size=11 if z == 16 else 13)
        for name, geom in zip(streets["name"], streets.geometry, strict=True):
            label(image, font, str(name), xy(geom), every=4 if z == 16 else 3)
    return image, x0, y0


def label(image: Image.Image, font: Any, text: str, line: list[tuple[float, float]],
          every: int) -> None:
    """``text`` along ``line`` on every ``every``-th block, turned with it, haloed."""
    for (ax, ay), (bx, by) in list(itertools.pairwise(line))[1::every]:
        angle = math.degrees(math.atan2(by - ay, bx - ax))
        angle = angle - 180 if angle > 90 else angle + 180 if angle < -90 else angle
        box = font.getbbox(text)
        tag = Image.new("RGBA", (box[2] + 6, box[3] + 6), (0, 0, 0, 0))
        ImageDraw.Draw(tag).text((3, 3), text, font=font, fill="#555049", stroke_width=2,
                                 stroke_fill="#ffffff")
        tag = tag.rotate(-angle, expand=True, resample=Image.Resampling.BICUBIC)
        image.paste(tag, (int((ax + bx) / 2 - tag.width / 2), int((ay + by) / 2 - tag.height / 2)),
                    tag)


def make_basemap(dataset: Any, path: Path) -> Path:
    """A raster MBTiles of the dataset's streets and districts around its plant."""
    streets = dataset.streets.to_crs(4326)
    areas = dataset.areas.to_crs(4326)
    west, south, east, north = dataset.nodes.to_crs(4326).total_bounds
    box = (west - 0.01, south - 0.006, east + 0.01, north + 0.006)
    tiles: dict[tuple[int, int, int], bytes] = {}
    for z in ZOOMS:
        image, x0, y0 = render(streets, areas, box, z)
        for i in range(image.width // 256):
            for j in range(image.height // 256):
                out = io.BytesIO()
                image.crop((i * 256, j * 256, i * 256 + 256, j * 256 + 256)).save(out, "PNG")
                tiles[(z, x0 + i, y0 + j)] = out.getvalue()
    return write_mbtiles(path, tiles, {
        "name": "sample city", "format": "png", "minzoom": str(ZOOMS[0]),
        "maxzoom": str(ZOOMS[-1]), "bounds": ",".join(f"{v:.6f}" for v in box),
        "attribution": "Sample city streets (netgis generate), drawn for this picture"})


def serve(app: Any) -> tuple[Any, threading.Thread, str]:
    """uvicorn serving ``app`` on a free loopback port, in a thread."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{sock.getsockname()[1]}"


def shoot(ctx: Any, url: str, centre: tuple[float, float], target: Path) -> None:
    """``url`` at street zoom around ``centre`` (lon, lat), written to ``target``."""
    page = ctx.new_page()
    hosts: set[str] = set()
    page.on("request", lambda r: hosts.add(r.url.split("/")[2] if "://" in r.url else r.url))
    page.goto(url, wait_until="load")
    page.wait_for_selector(".leaflet-control-layers")
    page.evaluate("""([lat, lng, zoom]) => {
        const map = window[document.querySelector('.folium-map').id];
        map.setView([lat, lng], zoom, {animate: false});
    }""", [centre[1], centre[0], STREET_ZOOM])
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(500)
    page.screenshot(path=str(target))
    page.close()
    print(f"{target} {target.stat().st_size // 1024} KB, hosts asked: {sorted(hosts)}")


def main(argv: list[str]) -> int:
    """Write both screenshots."""
    from playwright.sync_api import sync_playwright

    from netgis.api.app import create_app
    from netgis.api.settings import Settings
    from netgis.engine.analysis import analyze
    from netgis.maps import build_map, inline_html
    from netgis.storage import Repository

    source = argv[0] if argv else "data/sample.gpkg"
    out_dir = Path(argv[1] if len(argv) > 1 else "docs/img")
    out_dir.mkdir(parents=True, exist_ok=True)
    dataset = read_dataset(source)
    core = dataset.nodes[dataset.nodes["kind"] == "core"].to_crs(4326).geometry.iloc[0]
    centre = (core.x + 0.0015, core.y)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        basemap = make_basemap(dataset, root / "city.mbtiles")
        url = f"sqlite:///{root / 'city.db'}"
        repo = Repository.from_url(url)
        repo.init()
        repo.load_dataset(dataset)
        repo.engine.dispose()
        page = root / "streets.html"
        page.write_text(inline_html(build_map("coverage", analyze(dataset))), encoding="utf-8")
        server, thread, base = serve(create_app(Settings(database_url=url, basemap=basemap)))
        try:
            with sync_playwright() as p:
                ctx = p.chromium.launch_persistent_context(
                    str(root / "profile"), executable_path="/usr/bin/chromium",
                    headless=True, args=CHROMIUM_ARGS, viewport=VIEWPORT)
                shoot(ctx, f"{base}/maps/coverage", centre, out_dir / "map-coverage-basemap.png")
                shoot(ctx, page.as_uri(), centre, out_dir / "map-coverage-streets.png")
                ctx.close()
        finally:
            server.should_exit = True
            thread.join(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
