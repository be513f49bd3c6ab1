"""Stored XSS (issue 19, defect 4): data shown in a map is text, never markup.

A dataset whose area name, area id, premise id, address, node name and duct
id carry ``<img onerror>`` / ``<script>`` / ``<svg onload>`` payloads is
drawn by the API (/maps/{kind} from a real uvicorn server) and by the command
line (``netgis map KIND``). Headless Chromium opens every popup and tooltip;
no payload may run (no dialog, no request for the ``x`` image), every payload
must show literally, and the page's Content-Security-Policy must not block
the map's own scripts (a violation is a console error) while it does refuse a
script injected into the page.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from netgis.api.app import create_app
from netgis.cli import main
from netgis.io import read_dataset, write_dataset
from netgis.storage import Repository
from tests.api.helpers import LiveServer, make_settings
from tests.helpers import EXAMPLES_DIR
from tests.maps.helpers import PageServer
from tests.maps.test_browser import settled_xy

pytestmark = pytest.mark.browser

AREA_NAME = "<img src=x onerror=alert('area-name')>"
AREA_ID = "east\"><svg onload=alert('area-id')>"
PREMISE_ID = "<script>alert('premise-id')</script>"
ADDRESS = "<img src=x onerror=alert('address')> & Co"
NODE_NAME = "<b onmouseover=alert('node')>C</b><img src=x onerror=alert('node')>"
DUCT = "<iframe src=javascript:alert('duct')>"

#: Which payloads each map kind shows in a popup or tooltip.
EXPECTED = {
    "areas": [AREA_NAME, AREA_ID],
    "coverage": [PREMISE_ID, ADDRESS, NODE_NAME, DUCT],
    "criticality": [NODE_NAME, DUCT],
    "gaps": [ADDRESS],
}

#: Open every feature's popup and tooltip the way a click / hover does (the event
#: propagates from the feature to the GeoJSON layer that holds the binding); return
#: what each showed.
OPEN_ALL = """() => {
    const m = window[document.querySelector('.folium-map').id];
    // no fade: a closed popup leaves the page at once, the next one is the only one
    m._fadeAnimated = false;
    // every overlay on the map, including those that start hidden
    Object.values(window).filter(v => v instanceof L.Control.Layers)
        .forEach(c => c._layers.forEach(o => m.addLayer(o.layer)));
    const out = {popups: [], tooltips: []};
    const features = [];
    m.eachLayer(l => { if (l.feature) features.push(l); });
    for (const l of features) {
        const at = l.getLatLng ? l.getLatLng() : l.getBounds().getCenter();
        l.fire('click', {latlng: at}, true);
        const popup = document.querySelector('.leaflet-popup-content');
        if (popup) { out.popups.push(popup.innerText); m.closePopup(); }
        l.fire('mouseover', {latlng: at}, true);
        const tip = document.querySelector('.leaflet-tooltip');
        if (tip) { out.tooltips.push(tip.innerText); }
        l.fire('mouseout', {latlng: at}, true);
    }
    return out;
}"""


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ring_spur with the payloads in its text fields, as a GeoPackage."""
    ds = read_dataset(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg")
    ds.areas.loc[ds.areas["area_id"] == "west", "name"] = AREA_NAME
    ds.areas.loc[ds.areas["area_id"] == "east", "area_id"] = AREA_ID
    ds.premises.loc[ds.premises["premise_id"] == "p_ring", "premise_id"] = PREMISE_ID
    ds.premises["address"] = ADDRESS
    ds.nodes.loc[ds.nodes["node_id"] == "C", "name"] = NODE_NAME
    ds.spans["duct_id"] = DUCT
    return write_dataset(ds, tmp_path_factory.mktemp("xss") / "hostile.gpkg")


@pytest.fixture(scope="module")
def api_server(hostile: Path, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[LiveServer]:
    url = f"sqlite:///{tmp_path_factory.mktemp('xss-db') / 'x.db'}"
    repo = Repository.from_url(url)
    repo.init()
    repo.load_dataset(read_dataset(hostile))
    repo.close()
    app: FastAPI = create_app(make_settings(url))
    with LiveServer(app) as srv:
        yield srv


def cli_page(kind: str, dataset: Path, server: PageServer, monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture[str]) -> str:
    """``netgis map KIND DATASET --out FILE`` into the page server's folder; its URL."""
    out = server.root / f"xss-{kind}.html"
    monkeypatch.setattr(sys, "argv", ["netgis", "map", kind, str(dataset), "--out", str(out)])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 0, capsys.readouterr().err
    return server.url(out.name)


def visit(context: Any, url: str) -> dict[str, Any]:
    """Load ``url``, open every popup and tooltip; what showed, ran and failed."""
    page = context.new_page()
    dialogs: list[str] = []
    errors: list[str] = []
    requests: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(url, wait_until="load")
    page.wait_for_selector(".leaflet-control-layers")
    shown: dict[str, list[str]] = page.evaluate(OPEN_ALL)
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)  # an <img onerror> fires once its request failed
    return {"page": page, "shown": shown, "dialogs": dialogs, "errors": errors,
            "requests": requests}


def check(result: dict[str, Any], kind: str) -> None:
    texts = result["shown"]["popups"] + result["shown"]["tooltips"]
    assert result["shown"]["popups"], "no popup opened"
    assert result["dialogs"] == []
    assert result["errors"] == []  # includes Content-Security-Policy violations
    assert not [u for u in result["requests"] if u.rstrip("/").endswith("/x")]
    for payload in EXPECTED[kind]:
        assert any(payload in t for t in texts), (payload, texts)
    # nothing the payloads would have created exists in the document
    assert result["page"].evaluate(
        "() => document.querySelectorAll('img[src=x], svg[onload], iframe, b[onmouseover]')"
        ".length") == 0
    # and the Content-Security-Policy is in force: a script injected into the page
    # (as a payload that slipped through would be) is refused
    assert result["page"].evaluate("""() => {
        const s = document.createElement('script');
        s.textContent = 'window.__injected = 1';
        document.head.appendChild(s);
        return window.__injected === 1;
    }""") is False


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_api_map_pages_show_payloads_as_text(kind: str, browser_context: Any,
                                             api_server: LiveServer) -> None:
    result = visit(browser_context, f"{api_server.url}/maps/{kind}")
    check(result, kind)
    result["page"].close()


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_cli_map_pages_show_payloads_as_text(kind: str, browser_context: Any, hostile: Path,
                                             server: PageServer,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    result = visit(browser_context, cli_page(kind, hostile, server, monkeypatch, capsys))
    check(result, kind)
    result["page"].close()


def test_a_real_click_on_the_hostile_area(browser_context: Any, api_server: LiveServer) -> None:
    """The popup a user's click opens on /maps/areas names the area literally."""
    result = visit(browser_context, f"{api_server.url}/maps/areas")
    page = result["page"]
    page.evaluate("() => window[document.querySelector('.folium-map').id].closePopup()")
    ds = read_dataset(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg")
    west = ds.areas[ds.areas["area_id"] == "west"]
    x, y = settled_xy(type("L", (), {"page": page})(), west.geometry.representative_point())
    page.mouse.click(x, y)
    page.wait_for_selector(".leaflet-popup-content")
    assert AREA_NAME in page.locator(".leaflet-popup-content").inner_text()
    page.wait_for_timeout(300)
    assert result["dialogs"] == [] and result["errors"] == []
    page.close()
