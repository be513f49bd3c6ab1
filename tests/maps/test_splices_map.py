"""The strand plant on the maps (docs/strands.md): the splice diagram of a node
(``/maps/splices/{node_id}``), and "Trace to OLT" on the coverage map, served by a real
uvicorn on a loopback port whose database holds the strand plant of
tests/api/strand_data.py, and opened in headless Chromium (/usr/bin/chromium).

The screenshots of the docs are taken here: docs/img/splice-diagram.png and
docs/img/trace-map.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from netgis.api.app import create_app
from netgis.io import read_dataset
from netgis.maps.splices import COLOUR_HEX, splice_page
from netgis.storage import Repository
from netgis.strand_plant import strand_plant
from tests.api.helpers import API_KEY, LiveServer, make_settings
from tests.api.strand_data import strand_dataset
from tests.maps.helpers import run_axe

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return strand_dataset(tmp_path_factory.mktemp("splice-data"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, dataset_dir: Path
           ) -> Iterator[tuple[str, httpx.Client]]:
    """The URL of uvicorn serving the strand dataset (no base map: nothing leaves the
    machine), and a client of it."""
    url = f"sqlite:///{tmp_path_factory.mktemp('splice-db') / 'splices.db'}"
    repo = Repository.from_url(url)
    repo.init()
    repo.load_dataset(read_dataset(dataset_dir))
    repo.engine.dispose()
    app = create_app(make_settings(url, tiles_url=""))
    with LiveServer(app) as live, httpx.Client(base_url=live.url, timeout=120) as client:
        yield live.url, client


def rows_of(html: str, table: str) -> list[list[str]]:
    """The text of each body row's cells of the first table whose tag holds ``table``."""
    found = re.search(rf"<table[^>]*{re.escape(table)}[^>]*>(.*?)</table>", html, re.S)
    assert found, table
    rows = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", found.group(1), re.S):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        rows.append([unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells])
    return rows


# ------------------------------------------------------------------------------ the page

def test_the_splice_diagram_of_b_names_every_strand_end(served: tuple[str, httpx.Client]
                                                        ) -> None:
    _, client = served
    r = client.get("/maps/splices/B")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["x-data-version"] and "script-src 'self'" in r.headers[
        "content-security-policy"]
    html = r.text
    assert "<script" not in html.split("</head>")[1]  # a page of tables, no script
    cables = rows_of(html, 'id="cables"')
    assert [c[0] for c in cables[1:]] == ["K1", "K2", "K3"]
    assert "arrives from A over span s2 and ends here" in cables[1][-1]
    assert "starts here and leaves toward E over span s5" in cables[2][-1]
    k1 = rows_of(html, 'data-cable="K1"')
    assert k1[0] == ["Strand", "Tube", "Colour", "State", "End from A (side from)"]
    assert k1[1] == ["Tube 1: blue"]
    assert k1[2] == ["1", "1 blue", "blue", "", "spliced to in:SP1:1 (splice c2)"]
    assert k1[6][3] == "broken" and k1[7][3] == "reserved"
    assert k1[8] == ["Tube 2: orange"]  # six strands a tube: strand 7 is blue in tube 2
    assert k1[9][:3] == ["7", "2 orange", "blue"]
    k3 = rows_of(html, 'data-cable="K3"')
    # twelve strands in one tube: every TIA-598 colour, by name
    assert [row[2] for row in k3[2:]] == list(COLOUR_HEX)
    sp1 = rows_of(html, 'data-splitter="SP1"')
    assert sp1[1:7] == [["input 1", "spliced to strand:K1:1:from (splice c2)"],
                        ["input 2", "spliced to strand:K3:1:from (splice c5)"],
                        ["output 1", "spliced to strand:K2:1:to (splice c3)"],
                        ["output 2", "drop d2 -> premise p_north100"],
                        ["output 3", "drop d5 -> premise p_north100"],
                        ["output 4", "spliced to strand:K2:2:to (splice c6)"]]
    assert sp1[-1] == ["output 8", "nothing connected (open end)"]


def test_express_strands_pass_through_and_cut_ones_have_two_ends(
        served: tuple[str, httpx.Client]) -> None:
    _, client = served
    html = client.get("/maps/splices/E").text
    k2 = rows_of(html, 'data-cable="K2"')
    assert k2[0][-2:] == ["End back toward B (side from)", "End on toward F (side to)"]
    # strand 1 is cut at E (its drop), strands 2 and 3 pass through to F
    assert k2[2][-2:] == ["drop d1 -> premise p_spur1", "nothing connected (open end)"]
    assert k2[3][-1] == "passes through (express, not cut here)"
    assert k2[4][-1] == "passes through (express, not cut here)"
    assert "1 of its 12 strands are cut here" in html
    core = client.get("/maps/splices/C").text
    assert rows_of(core, 'data-olt="P1"')[1] == ["port", "connected to strand:K1:1:to "
                                                 "(connector c1)"]
    assert rows_of(core, 'data-olt="P2"')[1] == ["port", "connected to strand:K3:1:to "
                                                 "(connector c4)"]
    assert "OLT port P3 of OLT OLT1" in core


def test_unknown_nodes_and_nodes_without_strands(served: tuple[str, httpx.Client]) -> None:
    _, client = served
    r = client.get("/maps/splices/nowhere")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert client.get("/maps/splices/B", params={"x": "1"}).status_code == 400
    node = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [8.70, 50.12]},
            "properties": {"node_id": "bare<i>", "kind": "handhole",
                           "status": "in_service"}}
    done = client.post("/collections/nodes/items", json=node, headers={"X-API-Key": API_KEY})
    assert done.status_code == 201, done.text
    try:
        r = client.get("/maps/splices/bare%3Ci%3E")
        assert r.status_code == 200
        assert "No cable, splitter or OLT port is at node bare&lt;i&gt;" in r.text
        assert "bare<i>" not in r.text
    finally:
        client.delete("/collections/nodes/items/bare%3Ci%3E", headers={"X-API-Key": API_KEY})


def test_every_value_on_the_page_is_escaped(dataset_dir: Path) -> None:
    ds = read_dataset(dataset_dir)
    tables = {name: frame.copy() for name, frame in ds.strands.items()}
    tables["cables"]["name"] = tables["cables"]["name"].astype(object)
    tables["cables"].loc[0, "name"] = "<script>alert(1)</script>"
    html, _ = splice_page(strand_plant(ds, tables), "B", node={"name": "<i>x</i>"})
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<i>x</i>" not in html


# ------------------------------------------------------------------------------ Chromium

def _watch(page: Any) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {"requests": [], "errors": [], "failed": []}
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("response", lambda r: seen["failed"].append(r.url) if r.status >= 400 else None)
    return seen


@pytest.mark.browser
def test_splice_diagram_in_chromium_is_accessible(served: tuple[str, httpx.Client],
                                                  browser_context: Any) -> None:
    url, _ = served
    page = browser_context.new_page()
    try:
        seen = _watch(page)
        page.set_viewport_size({"width": 1000, "height": 900})
        page.goto(f"{url}/maps/splices/B", wait_until="networkidle")
        assert page.title() == "Splice diagram of node B"
        assert page.locator("table").count() == 5  # cables, three cables' strands, SP1
        assert page.locator("table.strands tbody tr[data-strand]").count() == 36
        assert page.locator("td[data-colour='white']").count() == 5  # K1, K2: 6, 12; K3: 6
        assert page.locator("caption").count() == page.locator("table").count()
        # the swatch is decoration; the colour is read as its name
        assert page.locator("td[data-colour='violet']").inner_text().strip() == "violet"
        assert page.locator(".sw[aria-hidden='true']").count() == \
            page.locator(".sw").count() > 0
        assert run_axe(page, f"{url}/static/vendor/axe-core/axe.min.js") == []
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_IMG / "splice-diagram.png"),
                        clip={"x": 0, "y": 0, "width": 1000, "height": 900})
        page.click("text=splice diagram of E")
        page.wait_for_load_state("networkidle")
        assert urlsplit(page.url).path == "/maps/splices/E"
        assert run_axe(page, f"{url}/static/vendor/axe-core/axe.min.js") == []
        assert seen["errors"] == [] and seen["failed"] == []
        assert {urlsplit(u).hostname for u in seen["requests"]} == {"127.0.0.1"}
    finally:
        page.close()


def _screen_xy(page: Any, feature: str, value: str) -> tuple[float, float]:
    """Where the map draws the point feature whose property ``feature`` is ``value``."""
    xy: list[float] = page.evaluate(
        """([key, value]) => {
            const m = window[document.querySelector('.folium-map').id];
            const r = m.getContainer().getBoundingClientRect();
            let out = null;
            m.eachLayer(l => {
                if (l.feature && l.getLatLng && String(l.feature.properties[key]) === value) {
                    const p = m.latLngToContainerPoint(l.getLatLng());
                    out = [p.x + r.left, p.y + r.top];
                }
            });
            return out;
        }""", [feature, value])
    assert xy is not None, (feature, value)
    return xy[0], xy[1]


def _open_popup(page: Any, feature: str, value: str) -> None:
    """Click the feature where it is drawn (once no popup, nor one fading out, covers it)."""
    page.evaluate("() => window[document.querySelector('.folium-map').id].closePopup()")
    page.locator(".leaflet-popup").wait_for(state="detached")
    page.mouse.click(*_screen_xy(page, feature, value))
    page.wait_for_selector(".leaflet-popup-content")


@pytest.mark.browser
def test_trace_to_olt_draws_the_path_on_the_coverage_map(served: tuple[str, httpx.Client],
                                                         browser_context: Any) -> None:
    url, client = served
    trace = client.get("/trace", params={"premise": "p_spur1"}).json()
    best = trace["paths"][0]
    kinds = [h["hop_type"] for h in best["hops"]]
    page = browser_context.new_page()
    try:
        seen = _watch(page)
        page.set_viewport_size({"width": 1100, "height": 750})
        page.goto(f"{url}/maps/coverage", wait_until="networkidle")
        page.wait_for_selector(".leaflet-control-layers")
        _open_popup(page, "premise_id", "p_spur1")
        assert "p_spur1" in page.inner_text(".leaflet-popup-content")
        page.click(".netgis-trace-button")
        page.wait_for_selector(".netgis-trace-loss")
        # every hop drawn: pieces (over their casing), connections, the splitter, the drop
        assert page.locator("path.netgis-trace-piece").count() == kinds.count("piece") == 2
        assert page.locator("path.netgis-trace-casing").count() == 2
        assert page.locator("path.netgis-trace-connection").count() == \
            kinds.count("connection") == 3
        assert page.locator("path.netgis-trace-splitter").count() == 1
        assert page.locator("path.netgis-trace-drop").count() == 1
        # each piece in its strand's colour
        strokes = page.eval_on_selector_all("path.netgis-trace-piece",
                                            "els => els.map(e => e.getAttribute('stroke'))")
        colours = [h["colour"] for h in best["hops"] if h["hop_type"] == "piece"]
        assert strokes == [COLOUR_HEX[c] for c in colours]
        panel = page.inner_text(".netgis-trace-panel")
        assert f"path {best['path_id']} from OLT port {best['olt_port_id']}" in panel
        loss = page.inner_text(".netgis-trace-loss")
        assert loss == (f"Loss {best['loss_db']:.3f} dB of a {trace['budget_db']:.1f} dB "
                        f"budget: margin {best['margin_db']:.3f} dB (in budget).")
        assert page.locator(".netgis-trace-path").count() == len(trace["paths"]) == 2
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        page.wait_for_timeout(400)  # the fit to the path is animated
        page.screenshot(path=str(DOCS_IMG / "trace-map.png"))
        # a piece's tooltip names its strand and its loss
        page.hover("path.netgis-trace-piece >> nth=1")
        tip = page.locator(".leaflet-tooltip .netgis-trace-tip").inner_text()
        k2 = next(h for h in best["hops"] if h["ref_id"] == "K2")
        assert f"Cable K2, strand {k2['strand']} ({k2['colour']}; tube {k2['tube']})" in tip
        assert f"loss {k2['loss_db']:.3f} dB, {k2['cum_loss_db']:.3f} dB so far" in tip
        # the other path, and the trace cleared
        page.click(".netgis-trace-path >> nth=1")
        assert trace["paths"][1]["path_id"] in page.inner_text(".netgis-trace-panel")
        assert page.locator("path.netgis-trace-piece").count() == 2
        page.click(".netgis-trace-clear")
        assert page.locator("path.netgis-trace-piece").count() == 0
        assert page.locator(".netgis-trace-panel").count() == 0
        # a premise no glass reaches says so (the page again: the view was fit to the path)
        page.goto(f"{url}/maps/coverage", wait_until="networkidle")
        _open_popup(page, "premise_id", "p_ring")
        page.click(".netgis-trace-button")
        page.wait_for_selector("text=No path from an OLT port reaches premise p_ring")
        assert page.locator("path.netgis-trace-piece").count() == 0
        # a node's popup links to its splice diagram
        _open_popup(page, "node_id", "B")
        page.click("text=Splice diagram of node B")
        page.wait_for_load_state("networkidle")
        assert urlsplit(page.url).path == "/maps/splices/B"
        assert seen["errors"] == [] and seen["failed"] == []
        assert {urlsplit(u).hostname for u in seen["requests"]} == {"127.0.0.1"}
        assert any(u.endswith("/static/trace/trace.js") for u in seen["requests"])
    finally:
        page.close()
