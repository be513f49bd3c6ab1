"""A generated city above the page's feature limit, served by a real uvicorn server and opened
in headless Chromium: the coverage map draws its premises from the server's vector tiles, so
at street zoom the page shows exactly the premises that lie in view.

The city is the issue's: 200,000 premises (its spans come from tiles too). The file took
55 s at load average 5 on the shared 2-core machine, over 200 s at load 12-18; on a machine
that busy ``NETGIS_TILES_BROWSER_PREMISES=30000`` keeps the premises above the page limit
(the spans then fall below it) in about a third of the time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from fastapi import FastAPI

from netgis.api.app import create_app
from netgis.engine.analysis import Analysis
from netgis.generate import generate_city
from netgis.maps._base import class_masks
from netgis.maps.coverage import premise_classes
from netgis.schema import DEFAULT_MAX_FEATURES
from netgis.storage import Repository
from tests.api.helpers import LiveServer, make_settings
from tests.maps.test_browser import Loaded, assert_clean

# one worker builds the 200 k city once for the whole module (pytest -n 3 --dist loadgroup)
pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("tiles-browser-city")]

#: Premises of the city (see the module's docstring).
N_PREMISES = int(os.environ.get("NETGIS_TILES_BROWSER_PREMISES", "200000"))
#: A name that would run script if it reached the page as HTML.
XSS = '<img src=x onerror="window.__netgis_xss=1">'
#: Street zoom (about 1 m per pixel).
STREET_ZOOM = 17

#: The features of every loaded tile of each vector-tile layer, with their WGS84 position
#: (points: the tile's coordinates as Leaflet.VectorGrid placed them) and CSS class.
TILE_FEATURES = """() => {
    const map = window[document.querySelector('.folium-map').id];
    const out = [];
    for (const name of Object.keys(window)) {
        if (!name.startsWith('vector_tile_layer_')) continue;
        const grid = window[name];
        const size = grid.getTileSize();
        for (const [key, tile] of Object.entries(grid._vectorTiles)) {
            const [x, y, z] = key.split(':').map(Number);
            for (const [id, f] of Object.entries(tile._features)) {
                const sym = f.feature;
                const cls = sym._path ? sym._path.getAttribute('class') : null;
                let lat = null, lng = null;
                if (sym._point) {
                    const px = L.point(x * size.x, y * size.y).add(sym._point);
                    const ll = map.unproject(px, z);
                    lat = ll.lat; lng = ll.lng;
                }
                out.push({layer: f.layerName, id: id, lat: lat, lng: lng, cls: cls,
                          props: sym.properties});
            }
        }
    }
    return out;
}"""

VIEW = """() => {
    const map = window[document.querySelector('.folium-map').id];
    const b = map.getBounds();
    return {west: b.getWest(), south: b.getSouth(), east: b.getEast(), north: b.getNorth(),
            zoom: map.getZoom()};
}"""

SET_VIEW = """([lat, lng, zoom]) => new Promise((done) => {
    const map = window[document.querySelector('.folium-map').id];
    const grids = Object.keys(window).filter(n => n.startsWith('vector_tile_layer_'))
        .map(n => window[n]);
    let waiting = grids.length;
    if (waiting === 0) { done(false); return; }
    // a view whose tiles never all arrive is an answer too, not a hang
    setTimeout(() => done(false), 180000);
    grids.forEach(g => g.once('load', () => { if (--waiting === 0) done(true); }));
    map.setView([lat, lng], zoom, {animate: false});
})"""


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, FastAPI]]:
    """uvicorn serving a generated 200k-premise city (one premise named like an attack) from
    SpatiaLite, its analysis warmed up."""
    city = generate_city(premises=N_PREMISES, seed=61)
    premises = city.premises.copy()
    premises.loc[premises.index[0], "address"] = XSS
    city = replace(city, premises=premises)
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('tiles-live')) / 'city.db'}"
    repo = Repository.from_url(url)
    repo.init()
    repo.load_dataset(city)
    repo.engine.dispose()
    app = create_app(make_settings(url))
    with LiveServer(app) as srv:
        app.state.services.analysis()  # the analysis the tiles and the page are made of
        yield srv, app


def _analysis(app: FastAPI) -> Analysis:
    _, result = app.state.services.analysis()
    return result  # type: ignore[no-any-return]


def _settle(page: Any, inflight: set[Any], quiet_ms: int = 500, limit_s: float = 180) -> None:
    """Wait until no request of ``page`` has been in flight for ``quiet_ms``. (Playwright's
    ``networkidle`` is not used here: on the second page of a 200 k city in one browser
    profile it sometimes never fired, with no request open; nor Leaflet's ``isLoading()``,
    which stays true for a layer whose pending tiles a zoom change dropped.)"""
    deadline = time.monotonic() + limit_s
    quiet_since = None
    while time.monotonic() < deadline:
        page.wait_for_timeout(100)
        if inflight:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif (time.monotonic() - quiet_since) * 1000 >= quiet_ms:
            return
    pytest.fail(f"requests still open after {limit_s} s: {sorted(r.url for r in inflight)}")


def _open_at(browser_context: Any, srv: LiveServer, lat: float, lng: float, zoom: int,
             kind: str = "coverage") -> Loaded:
    """``/maps/{kind}`` opened and set to ``zoom`` at ``lat``/``lng``, its tiles loaded."""
    browser_context.set_default_timeout(180_000)  # a big city's page takes a while to build
    tab = browser_context.new_page()
    page = Loaded(tab)
    inflight: set[Any] = set()
    tab.on("request", lambda r: (page.requests.append(r.url), inflight.add(r)))
    tab.on("requestfinished", lambda r: inflight.discard(r))
    tab.on("requestfailed", lambda r: (page.failed.append(r.url), inflight.discard(r)))
    tab.on("response", lambda r: page.failed.append(r.url) if r.status >= 400 else None)
    tab.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: page.errors.append(str(e)))
    tab.goto(f"{srv.url}/maps/{kind}", wait_until="load")
    tab.wait_for_selector(".leaflet-control-layers")
    _settle(tab, inflight)
    assert tab.evaluate(SET_VIEW, [lat, lng, zoom])
    _settle(tab, inflight)
    return page


def test_street_zoom_shows_exactly_the_premises_in_view(
        browser_context: Any, big: tuple[LiveServer, FastAPI], tmp_path: Path) -> None:
    srv, app = big
    result = _analysis(app)
    p = result.premises.to_crs(4326)
    assert len(p) == N_PREMISES > DEFAULT_MAX_FEATURES
    # a known block: around the premise nearest the city's centre
    centre = shapely.Point(*np.median(shapely.get_coordinates(p.geometry.values), axis=0))
    block = p.geometry.iloc[int(np.argmin(shapely.distance(p.geometry.values, centre)))]
    page = _open_at(browser_context, srv, block.y, block.x, STREET_ZOOM)
    assert_clean(page)
    assert any(f"{srv.url}/tiles/premises/{STREET_ZOOM}/" in u for u in page.requests)
    view = page.page.evaluate(VIEW)
    assert view["zoom"] == STREET_ZOOM
    features = [f for f in page.page.evaluate(TILE_FEATURES) if f["layer"] == "premises"]
    rendered = {f["id"]: f for f in features
                if view["west"] <= f["lng"] <= view["east"]
                and view["south"] <= f["lat"] <= view["north"]}
    # the premises in view, from the data; a premise within a pixel of the edge may be drawn
    # on either side of it (tile coordinates are rounded to 1/16 pixel)
    x, y = p.geometry.x.to_numpy(), p.geometry.y.to_numpy()
    pixel = (view["east"] - view["west"]) / page.page.viewport_size["width"]

    def within(margin: float) -> set[str]:
        inside = ((x >= view["west"] + margin) & (x <= view["east"] - margin)
                  & (y >= view["south"] + margin) & (y <= view["north"] - margin))
        return set(p["premise_id"][inside])

    surely, maybe = within(pixel), within(-pixel)
    assert len(surely) > 50  # a real street, not an empty field
    assert surely <= set(rendered) <= maybe
    # each drawn in its class, from the analysis
    classes = premise_classes("margin_db" in p.columns)
    expected = np.full(len(p), "", dtype=object)
    for cls, mask in zip(classes, class_masks(p, classes), strict=True):
        expected[mask] = cls.style["className"]
    want = dict(zip(p["premise_id"], expected, strict=True))
    wrong = [i for i, f in rendered.items() if want[i] not in (f["cls"] or "").split()]
    assert wrong == []
    page.page.screenshot(path=tmp_path / "street.png")
    page.page.close()


def test_an_attack_in_a_tile_property_stays_text(
        browser_context: Any, big: tuple[LiveServer, FastAPI]) -> None:
    srv, app = big
    p = _analysis(app).premises.to_crs(4326)
    target = p[p["address"] == XSS]
    assert len(target) == 1
    pt = target.geometry.iloc[0]
    page = _open_at(browser_context, srv, pt.y, pt.x, 19)
    # the spans drawn over the premises are put away, as a user unticks their overlay
    page.page.evaluate("""() => {
        const map = window[document.querySelector('.folium-map').id];
        Object.keys(window).filter(n => n.startsWith('vector_tile_layer_'))
            .map(n => window[n]).filter(g => g.getDataLayerNames().includes('spans'))
            .forEach(g => map.removeLayer(g));
    }""")
    xy = page.page.evaluate(
        """([lat, lng]) => {
            const map = window[document.querySelector('.folium-map').id];
            const r = map.getContainer().getBoundingClientRect();
            const q = map.latLngToContainerPoint([lat, lng]);
            return [q.x + r.left, q.y + r.top];
        }""", [pt.y, pt.x])
    hit = page.page.evaluate(
        "([x, y]) => (document.elementFromPoint(x, y) || {}).getAttribute?.('class')", xy)
    assert "netgis-premise" in (hit or ""), hit
    page.page.mouse.click(*xy)
    popup = page.page.locator(".leaflet-popup-content")
    popup.wait_for()
    assert XSS in popup.inner_text()
    assert popup.locator("img").count() == 0
    assert page.page.evaluate("() => window.__netgis_xss") is None
    assert_clean(page)
    page.page.close()


def test_criticality_page_draws_every_span_in_view_from_tiles(
        browser_context: Any, big: tuple[LiveServer, FastAPI]) -> None:
    srv, app = big
    s = _analysis(app).spans.to_crs(4326)
    if len(s) <= DEFAULT_MAX_FEATURES:  # NETGIS_TILES_BROWSER_PREMISES made the city small
        pytest.skip(f"{len(s)} spans: within the page limit, no span tiles")
    worst = s.loc[s["cut_units"].fillna(0).idxmax()].geometry.interpolate(0.5, normalized=True)
    page = _open_at(browser_context, srv, worst.y, worst.x, 16, kind="criticality")
    assert_clean(page)
    view = page.page.evaluate(VIEW)
    loaded = page.page.evaluate(TILE_FEATURES)
    assert {f["layer"] for f in loaded} == {"spans"}
    assert {c for f in loaded for c in (f["cls"] or "").split() if c.startswith("netgis-")} \
        == {"netgis-span-safe"}
    in_view = set(s["span_id"][s.intersects(shapely.box(
        view["west"], view["south"], view["east"], view["north"]))])
    assert len(in_view) > 5
    assert in_view <= {f["id"] for f in loaded}
    page.page.close()
