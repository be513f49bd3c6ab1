"""Maps an engineer can read on a whole city (issue 14): the worst N on the criticality map
and its threshold control, a scenario drawn above everything, the gaps map's area outline,
area labels, network-wide legend classes, repeated parameters and the page cache.

One generated city (400 premises: 20 single-point-of-failure spans, 15 nodes) served by a
real uvicorn on a loopback port; the pages are read as HTML and opened in Chromium.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import pytest
import shapely
from fastapi import FastAPI

from netgis.api.app import create_app
from netgis.engine.analysis import Analysis, scenario
from netgis.generate import generate_city
from netgis.maps import areas_map, build_map
from netgis.maps.criticality import FAILED_PANE, LOST_PANE
from netgis.storage import Repository
from tests.api.helpers import LiveServer, make_settings
from tests.maps.helpers import PageServer, page_layers, properties
from tests.maps.test_api_maps import analysis_of, page_features
from tests.maps.test_browser import assert_clean, load, screen_xy


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, FastAPI]]:
    """A client of uvicorn on a free loopback port serving a generated city (no base map)."""
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('maps-readable')) / 'city.db'}"
    repo = Repository.from_url(url)
    repo.init()
    repo.load_dataset(generate_city(premises=400, seed=1))
    repo.engine.dispose()
    # the module's pages (areas, boxes, scenarios) are many new renders from one anonymous
    # client: no limit on new work here (its tests are tests/api/test_analysis_limits.py)
    app = create_app(make_settings(url, analysis_rate_per_minute=0))
    with LiveServer(app) as srv, httpx.Client(base_url=srv.url, timeout=120) as client:
        yield client, app


def _worst(frame: gpd.GeoDataFrame, column: str, id_column: str, top: int) -> list[str]:
    """The ids of the ``top`` largest positive ``column`` values, ties by id (from the data)."""
    hit = frame[frame[column] > 0]
    ranked = sorted(zip(hit[column], hit[id_column], strict=True), key=lambda t: (-t[0], t[1]))
    return [i for _, i in ranked[:top]]


def _ids(html: str, prefix: str) -> set[str]:
    return {k for k in page_features(html) if k.startswith(prefix)}


def legend_rows(html: str) -> list[tuple[str, str, str]]:
    """(shape, style, label) of every swatch row of the page's legend."""
    start = html.index("div.innerHTML = ", html.index("netgis-legend")) + len("div.innerHTML = ")
    body, _ = json.JSONDecoder().raw_decode(html, start)
    return re.findall(r'<span class="sw (\w+)" style="([^"]*)"></span>([^<]*)</div>', body)


# ---- criticality: the worst N -----------------------------------------------------------

def test_criticality_page_draws_exactly_the_worst_n(
        served: tuple[httpx.Client, FastAPI]) -> None:
    client, app = served
    result = analysis_of(app)
    for top in (5, 200):
        layers = page_layers(client.get("/maps/criticality", params={"top": top}).text)
        spans, nodes = set(layers["netgis-span-spof"]), set(layers["netgis-node-spof"])
        assert spans == set(_worst(result.spans, "cut_units", "span_id", top))
        assert nodes == set(_worst(result.nodes, "failure_units", "node_id", top))
        # every other span is there, grey
        assert set(layers["netgis-span-safe"]) == set(result.spans["span_id"]) - spans
    # top 200 is more than this city has: every span and node that cuts anything is there
    assert len(spans) == int((result.spans["cut_units"] > 0).sum()) > 5
    assert len(nodes) == int((result.nodes["failure_units"] > 0).sum()) > 5
    bad = client.get("/maps/criticality", params={"top": 0})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "top"


def test_builder_draws_the_worst_n_and_the_rest_grey(city: Analysis) -> None:
    m = build_map("criticality", city, top=3)
    spof = [p["span_id"] for p in properties(m, "netgis-span-spof")]
    assert sorted(spof) == sorted(_worst(city.spans, "cut_units", "span_id", 3))
    other = [p["span_id"] for p in properties(m, "netgis-span-safe")]
    assert sorted(other + spof) == sorted(city.spans["span_id"])
    nodes = [p["node_id"] for p in properties(m, "netgis-node-spof")]
    assert sorted(nodes) == sorted(_worst(city.nodes, "failure_units", "node_id", 3))


# ---- repeated parameters, legend classes, outline ---------------------------------------

def test_repeated_cut_spans_all_count(served: tuple[httpx.Client, FastAPI]) -> None:
    client, app = served
    result = analysis_of(app)
    a, b = _worst(result.spans, "cut_units", "span_id", 3)[1:3]
    expected = scenario(result, spans=[a, b])
    alone = scenario(result, spans=[a])
    assert expected.premises > alone.premises  # b adds premises: both must count
    repeated = client.get(f"/maps/criticality?cut_spans={a}&cut_spans={b}")
    joined = client.get("/maps/criticality", params={"cut_spans": f"{b},{a}"})
    assert repeated.status_code == joined.status_code == 200
    for page in (repeated.text, joined.text):
        assert f"Scenario ({expected.premises} premises lost)" in page
        assert _ids(page, "p") >= set(expected.premise_ids)
    # the same scenario whatever the order: the same cached page
    assert repeated.headers["etag"] == joined.headers["etag"]
    # a scalar parameter given twice is still a 400 naming it
    twice = client.get("/maps/criticality?top=5&top=6")
    assert twice.status_code == 400 and twice.json()["errors"][0]["field"] == "top"


def _halves(result: Analysis) -> tuple[str, str]:
    west, south, east, north = result.premises.to_crs(4326).total_bounds
    mid = (west + east) / 2
    return f"{west},{south},{mid},{north}", f"{mid},{south},{east},{north}"


@pytest.mark.parametrize("kind", ["criticality", "gaps"])
def test_legend_classes_are_the_whole_networks(served: tuple[httpx.Client, FastAPI],
                                               kind: str) -> None:
    client, app = served
    left, right = (client.get(f"/maps/{kind}", params={"bbox": box}).text
                   for box in _halves(analysis_of(app)))
    whole = client.get(f"/maps/{kind}").text
    assert _ids(left, "s") != _ids(right, "s") or _ids(left, "p") != _ids(right, "p")

    def classes(page: str) -> list[tuple[str, str, str]]:
        return [r for r in legend_rows(page) if "units" in r[2]]

    assert len(classes(whole)) >= 3
    assert classes(left) == classes(right) == classes(whole)


def test_gaps_map_outlines_the_selected_area(served: tuple[httpx.Client, FastAPI]) -> None:
    client, app = served
    areas = analysis_of(app).dataset.areas
    area_id = str(areas["area_id"].iloc[1])
    features = page_features(client.get("/maps/gaps", params={"area_id": area_id}).text)
    outline = [f for f in features.values() if f["properties"].get("area_id") == area_id
               and f["geometry"]["type"] in ("Polygon", "MultiPolygon")]
    assert len(outline) == 1
    drawn = shapely.geometry.shape(outline[0]["geometry"])
    assert drawn.equals_exact(areas.to_crs(4326).geometry.iloc[1], 1e-5)


# ---- the page cache ---------------------------------------------------------------------

def test_map_pages_are_cached_with_an_etag(served: tuple[httpx.Client, FastAPI],
                                           monkeypatch: pytest.MonkeyPatch) -> None:

    client, app = served
    built: list[str] = []
    from netgis.maps import kinds

    real = kinds.build_map

    def counted(kind: str, *args: Any, **kwargs: Any) -> Any:
        built.append(kind)
        return real(kind, *args, **kwargs)

    monkeypatch.setattr(kinds, "build_map", counted)
    query = {"bbox": _halves(analysis_of(app))[0], "drop_m": 140}
    first = client.get("/maps/coverage", params=query)
    second = client.get("/maps/coverage", params=dict(reversed(list(query.items()))))
    assert first.status_code == second.status_code == 200
    assert built == ["coverage"]  # rendered once
    assert first.content == second.content and first.headers["etag"] == second.headers["etag"]
    assert first.headers["content-security-policy"] == second.headers["content-security-policy"]
    tag = first.headers["etag"]
    same = client.get("/maps/coverage", params=query, headers={"If-None-Match": tag})
    assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == tag
    stale = client.get("/maps/coverage", params=query, headers={"If-None-Match": '"old"'})
    assert stale.status_code == 200 and stale.content == first.content
    other = client.get("/maps/coverage", params={**query, "drop_m": 141})
    assert other.headers["etag"] != tag and built == ["coverage", "coverage"]
    assert len(app.state.services.pages.kept()) <= app.state.services.pages.size


# ---- in the browser ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def live_url(served: tuple[httpx.Client, FastAPI]) -> str:
    return str(served[0].base_url).rstrip("/")


@pytest.mark.browser
def test_threshold_control_changes_what_is_drawn(browser_context: Any, live_url: str,
                                                 served: tuple[httpx.Client, FastAPI]) -> None:
    result = analysis_of(served[1])
    page = load(browser_context, f"{live_url}/maps/criticality?top=5")
    assert_clean(page)
    assert page.count("path.netgis-span-spof") == 5
    assert page.count("path.netgis-node-spof") == 5
    assert page.page.locator(".netgis-top-select").input_value() == "5"
    with page.page.expect_navigation():
        page.page.select_option(".netgis-top-select", "10")
    page.page.wait_for_selector(".leaflet-control-layers")
    assert "top=10" in page.page.url
    drawn = page.page.evaluate("() => Array.from(document.querySelectorAll("
                               "'path.netgis-span-spof')).length")
    assert drawn == min(10, int((result.spans["cut_units"] > 0).sum())) == 10
    assert page.count("path.netgis-node-spof") == 10
    assert page.errors == []
    page.page.close()


@pytest.mark.browser
def test_scenario_is_drawn_above_everything(browser_context: Any, live_url: str,
                                            served: tuple[httpx.Client, FastAPI]) -> None:
    result = analysis_of(served[1])
    failed = _worst(result.spans, "cut_units", "span_id", 1)[0]
    sc = scenario(result, spans=[failed])
    page = load(browser_context, f"{live_url}/maps/criticality?cut_spans={failed}")
    assert_clean(page)
    in_pane = f".leaflet-{FAILED_PANE}-pane path.netgis-scenario-span"
    assert page.count(in_pane) == page.count("path.netgis-scenario-span") == 1
    lost = f".leaflet-{LOST_PANE}-pane path.netgis-scenario-premise"
    assert page.count(lost) == page.count("path.netgis-scenario-premise") == sc.premises > 0
    z = page.page.evaluate("""(names) => names.map(n => Number(getComputedStyle(
        document.querySelector('.leaflet-' + n + '-pane')).zIndex))""",
                           [FAILED_PANE, LOST_PANE, "overlay", "marker"])
    assert z[0] > z[1] > z[3] > z[2]
    # the failed span is on top where it runs: the point half-way along it hits it
    span = result.spans.loc[result.spans["span_id"] == failed].to_crs(4326)
    mid = gpd.GeoSeries(shapely.line_interpolate_point(span.geometry.values, 0.5,
                                                       normalized=True), crs=4326)
    x, y = screen_xy(page, mid)[0]
    hit = page.page.evaluate("([x, y]) => document.elementFromPoint(x, y)"
                             ".getAttribute('class')", [x, y])
    assert "netgis-scenario-span" in hit
    legend = page.page.locator(".netgis-legend").inner_text()
    assert "failed span" in legend and "premise off line" in legend
    page.page.close()


XSS = '<img src=x onerror="window.__xss=1">'


@pytest.mark.browser
def test_area_labels_are_shown_as_text(browser_context: Any, server: PageServer,
                                       city: Analysis) -> None:
    areas = city.dataset.areas.copy()
    areas.loc[areas.index[0], "name"] = XSS
    areas.loc[areas.index[1], "name"] = None  # no name: labelled by its id
    m = areas_map(areas, city.kpis["areas"])
    page = load(browser_context, server.write("areas-labels.html", m.get_root().render()))
    assert_clean(page)
    texts = page.page.evaluate("() => Array.from(document.querySelectorAll("
                               "'.netgis-area-label')).map(e => e.textContent)")
    expected = [XSS, str(areas["area_id"].iloc[1]), *map(str, areas["name"].iloc[2:])]
    assert sorted(texts) == sorted(expected)
    assert page.count(".netgis-area-label img") == 0
    assert page.page.evaluate("() => window.__xss") is None
    page.page.close()
