"""Base maps in headless Chromium: a raster MBTiles and a vector PMTiles base map, each made
here and served by a real server over a real port (``NETGIS_BASEMAP``), under the coverage
map at street zoom, the portal and the OGC HTML pages; and without a base map, the
dataset's own streets under the plant, their names in tooltips.

Every request of every page is recorded: none leaves 127.0.0.1.
"""

from __future__ import annotations

import gzip
import io
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import mapbox_vector_tile
import pytest
import shapely
from PIL import Image
from pmtiles.convert import mbtiles_to_pmtiles

from netgis.engine.analysis import Analysis
from netgis.io.basemap import write_mbtiles
from netgis.maps import build_map, inline_html
from netgis.storage import Repository
from tests.api.helpers import LiveServer, make_settings
from tests.maps.helpers import PageServer
from tests.maps.test_browser import Loaded, assert_clean

pytestmark = pytest.mark.browser

#: Street zoom; the base maps have tiles down to NATIVE_ZOOM only (deeper ones are enlarged).
STREET_ZOOM = 17
NATIVE_ZOOM = 16
ZOOMS = range(12, NATIVE_ZOOM + 1)
ATTRIBUTION = '<a href="https://example.org/">&copy; Test tiles</a> & friends'
ATTRIBUTION_TEXT = "© Test tiles & friends"


def tile_range(bounds: tuple[float, float, float, float], z: int) -> Iterator[tuple[int, int]]:
    """XYZ x, y of every tile at zoom ``z`` that a WGS84 box touches."""
    west, south, east, north = bounds
    n = 2 ** z

    def xy(lon: float, lat: float) -> tuple[int, int]:
        rad = math.radians(lat)
        return (int((lon + 180) / 360 * n),
                int((1 - math.asinh(math.tan(rad)) / math.pi) / 2 * n))

    (x0, y0), (x1, y1) = xy(west, north), xy(east, south)
    for x in range(x0, x1 + 1):
        for y in range(y0, y1 + 1):
            yield x, y


def png(z: int, x: int, y: int) -> bytes:
    """A 256 px tile whose colour says where it is."""
    out = io.BytesIO()
    Image.new("RGB", (256, 256), (200, 40 + (x % 8) * 25, 40 + (y % 8) * 25)).save(out, "PNG")
    return out.getvalue()


def mvt(z: int, x: int, y: int) -> bytes:
    """A gzip-compressed vector tile: a water polygon, a road and a place label."""
    data = mapbox_vector_tile.encode([
        {"name": "water", "features": [{"geometry": "POLYGON ((0 0, 2048 0, 2048 2048, "
                                                    "0 2048, 0 0))", "properties": {}}]},
        {"name": "transportation", "features": [{"geometry": "LINESTRING (0 0, 4096 4096)",
                                                 "properties": {"class": "primary"}}]},
        {"name": "place", "features": [{"geometry": "POINT (100 100)",
                                        "properties": {"name": "Town"}}]},
    ])
    return gzip.compress(data, mtime=0)


def make_basemap(path: Path, bounds: tuple[float, float, float, float], fmt: str) -> Path:
    """An MBTiles base map of ``bounds`` at :data:`ZOOMS`, PNG or vector tiles."""
    draw = png if fmt == "png" else mvt
    tiles = {(z, x, y): draw(z, x, y) for z in ZOOMS for x, y in tile_range(bounds, z)}
    meta = {"name": "test base map", "format": fmt, "attribution": ATTRIBUTION,
            "minzoom": str(ZOOMS[0]), "maxzoom": str(ZOOMS[-1]),
            "bounds": ",".join(f"{v:.6f}" for v in bounds)}
    if fmt == "pbf":
        meta["json"] = '{"vector_layers": [{"id": "water"}, {"id": "transportation"}]}'
    return write_mbtiles(path, tiles, meta)


@pytest.fixture(scope="module")
def served(city: Analysis, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[dict[str, LiveServer]]:
    """The generated city in SpatiaLite, served twice over real ports: over a raster
    MBTiles base map and over a vector PMTiles one (made from an MBTiles by the pmtiles
    package's converter)."""
    root = tmp_path_factory.mktemp("basemap-live")
    bounds = tuple(float(v) for v in city.premises.to_crs(4326).total_bounds)
    wide = (bounds[0] - 0.01, bounds[1] - 0.01, bounds[2] + 0.01, bounds[3] + 0.01)
    raster = make_basemap(root / "raster.mbtiles", wide, "png")
    vector_mb = make_basemap(root / "vector.mbtiles", wide, "pbf")
    vector = root / "vector.pmtiles"
    mbtiles_to_pmtiles(str(vector_mb), str(vector), NATIVE_ZOOM)
    url = f"sqlite:///{root / 'city.db'}"
    repo = Repository.from_url(url)
    repo.init()
    repo.load_dataset(city.dataset)
    repo.engine.dispose()
    with LiveServer(_app(url, raster)) as raster_srv, LiveServer(_app(url, vector)) as vector_srv:
        yield {"raster": raster_srv, "vector": vector_srv}


def _app(url: str, basemap: Path) -> Any:
    from netgis.api.app import create_app

    return create_app(make_settings(url, basemap=str(basemap)))


def _open(context: Any, url: str, ready: str) -> Loaded:
    tab = context.new_page()
    page = Loaded(tab)
    tab.on("request", lambda r: page.requests.append(r.url))
    tab.on("requestfailed", lambda r: page.failed.append(r.url))
    tab.on("response", lambda r: page.failed.append(r.url) if r.status >= 400 else None)
    tab.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: page.errors.append(str(e)))
    tab.goto(url, wait_until="load")
    tab.wait_for_selector(ready)
    return page


def _street_zoom(page: Loaded, city: Analysis) -> None:
    """The map set to street zoom at the city's centre, its tiles loaded."""
    centre = shapely.get_coordinates(city.nodes.to_crs(4326).geometry.iloc[[0]])[0]
    page.page.evaluate("""([lat, lng, zoom]) => {
        const map = window[document.querySelector('.folium-map').id];
        map.setView([lat, lng], zoom, {animate: false});
    }""", [float(centre[1]), float(centre[0]), STREET_ZOOM])
    page.page.wait_for_load_state("networkidle")


TILE_IMAGES = """() => Array.from(document.querySelectorAll('img.leaflet-tile'))
    .map(img => ({src: img.src, loaded: img.complete && img.naturalWidth === 256,
                  shown: img.classList.contains('leaflet-tile-loaded')}))"""


def _basemap_requests(page: Loaded, server: LiveServer) -> list[str]:
    return [u for u in page.requests if urlsplit(u).path.startswith("/basemap/")
            and u.startswith(server.url)]


def test_coverage_map_over_a_raster_mbtiles_basemap(
        browser_context: Any, served: dict[str, LiveServer], city: Analysis) -> None:
    srv = served["raster"]
    page = _open(browser_context, f"{srv.url}/maps/coverage", ".leaflet-control-layers")
    _street_zoom(page, city)
    assert_clean(page)  # every request to 127.0.0.1, none failed, no script error
    asked = _basemap_requests(page, srv)
    # street zoom shows the deepest tiles of the file, enlarged
    assert asked and all(f"/basemap/{NATIVE_ZOOM}/" in u or u.endswith(".png") for u in asked)
    assert any(f"/basemap/{NATIVE_ZOOM}/" in u for u in asked)
    images = [i for i in page.page.evaluate(TILE_IMAGES) if "/basemap/" in i["src"]]
    assert images and all(i["loaded"] and i["shown"] for i in images)
    attribution = page.page.locator(".leaflet-control-attribution")
    assert attribution.is_visible()
    assert ATTRIBUTION_TEXT in attribution.inner_text()
    # the file's attribution is text: its link markup never became a link
    assert attribution.locator("a[href='https://example.org/']").count() == 0
    # a base map replaces the dataset's streets (the city has some in its file)
    assert page.count("path.netgis-street") == 0
    assert page.count("path.netgis-span-lit") > 0  # the plant above it
    page.page.close()


def test_coverage_map_over_a_vector_pmtiles_basemap(
        browser_context: Any, served: dict[str, LiveServer], city: Analysis) -> None:
    srv = served["vector"]
    page = _open(browser_context, f"{srv.url}/maps/coverage", ".leaflet-control-layers")
    _street_zoom(page, city)
    assert_clean(page)
    asked = _basemap_requests(page, srv)
    assert any(f"/basemap/{NATIVE_ZOOM}/" in u and u.endswith(".pbf") for u in asked)
    # Leaflet.VectorGrid drew the tiles on canvases in the tile pane
    drawn = page.page.evaluate("""() => Array.from(
        document.querySelectorAll('.leaflet-tile-pane canvas.leaflet-tile'))
        .filter(c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                       for (let i = 3; i < d.length; i += 4) { if (d[i] > 0) return true; }
                       return false; }).length""")
    assert drawn > 0
    assert ATTRIBUTION_TEXT in page.page.locator(".leaflet-control-attribution").inner_text()
    page.page.close()


def test_portal_and_item_page_draw_the_basemap(
        browser_context: Any, served: dict[str, LiveServer], city: Analysis) -> None:
    srv = served["raster"]
    premise = city.premises["premise_id"].iloc[0]
    item = _open(browser_context, f"{srv.url}/collections/premises/items/{premise}?f=html",
                 "#map[data-features]")
    item.page.wait_for_load_state("networkidle")
    assert_clean(item)
    images = [i for i in item.page.evaluate(TILE_IMAGES) if "/basemap/" in i["src"]]
    assert images and all(i["loaded"] for i in images)
    assert ATTRIBUTION_TEXT in item.page.locator(".leaflet-control-attribution").inner_text()
    item.page.close()
    portal = _open(browser_context, f"{srv.url}/portal", "#portal-address")
    address = str(city.premises["address"].dropna().iloc[0])
    portal.page.fill("#portal-address", address)
    portal.page.press("#portal-address", "Enter")
    portal.page.wait_for_selector("#portal-map .leaflet-tile-loaded")
    portal.page.wait_for_load_state("networkidle")
    assert_clean(portal)
    assert _basemap_requests(portal, srv)
    assert ATTRIBUTION_TEXT in portal.page.locator(".leaflet-control-attribution").inner_text()
    portal.page.close()


#: A point along a street path where the street itself is the topmost element (the plant
#: is drawn above it), in page pixels; null when the plant covers every point tried.
STREET_POINT = """() => {
    for (const path of document.querySelectorAll('path.netgis-street')) {
        const length = path.getTotalLength();
        for (let f = 0.05; f < 1; f += 0.05) {
            const p = path.getPointAtLength(length * f);
            const m = path.getScreenCTM();
            const x = p.x * m.a + p.y * m.c + m.e, y = p.x * m.b + p.y * m.d + m.f;
            if (x < 5 || y < 5 || x > innerWidth - 5 || y > innerHeight - 5) continue;
            if (document.elementFromPoint(x, y) === path) return [x, y];
        }
    }
    return null;
}"""


def test_without_basemap_streets_are_drawn_under_the_plant(
        browser_context: Any, server: PageServer, city: Analysis) -> None:
    assert city.dataset.streets is not None
    url = server.write("streets.html", inline_html(build_map("coverage", city)))
    page = _open(browser_context, url, ".leaflet-control-layers")
    page.page.wait_for_load_state("networkidle")
    assert_clean(page)
    assert page.count("path.netgis-street") == len(city.dataset.streets)
    # in their own pane, below the overlay pane the plant is drawn in
    panes = page.page.evaluate("""() => {
        const z = (sel) => Number(getComputedStyle(document.querySelector(sel)).zIndex);
        const street = document.querySelector('path.netgis-street').closest('.leaflet-pane');
        return [Number(getComputedStyle(street).zIndex), z('.leaflet-overlay-pane')];
    }""")
    assert panes[0] < panes[1]
    assert page.count(".leaflet-tile-pane img") == 0  # no base map, no tile asked for
    point = page.page.evaluate(STREET_POINT)
    assert point is not None
    page.page.mouse.move(*point)
    tooltip = page.page.wait_for_selector(".leaflet-tooltip td")
    assert tooltip.inner_text().strip() in {str(n) for n in city.dataset.streets["name"]}
    page.page.close()
