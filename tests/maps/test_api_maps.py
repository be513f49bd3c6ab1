"""The maps as the API serves them: /maps/{kind} pages, their filters and errors, and the
same pages loaded from a real uvicorn server in headless Chromium."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import shapely
from fastapi import FastAPI
from fastapi.testclient import TestClient

from netgis.api.app import create_app
from netgis.engine.analysis import Analysis
from netgis.generate import generate_city
from netgis.io import read_dataset
from netgis.maps.kinds import MAP_KINDS
from netgis.storage import Repository
from tests.api.helpers import LiveServer, make_settings
from tests.helpers import EXAMPLES_DIR
from tests.maps.helpers import PageServer
from tests.maps.test_browser import Loaded, assert_clean, click_premises, load, settled_xy

TILES = "http://127.0.0.1:9/tiles/{z}/{x}/{y}.png"


def page_features(html: str) -> dict[str, dict[str, Any]]:
    """Every GeoJSON feature a folium page embeds, by feature id."""
    decoder = json.JSONDecoder()
    out: dict[str, dict[str, Any]] = {}
    for match in re.finditer(r"_add\(", html):
        data, _ = decoder.raw_decode(html, match.end())
        for feature in data.get("features", []):
            out[str(feature["id"])] = feature
    return out


def analysis_of(app: FastAPI) -> Analysis:
    """The analysis the server itself serves (its cache, default drop)."""
    _, result = app.state.services.analysis()
    return result  # type: ignore[no-any-return]


@pytest.fixture
def app(db_url: str) -> FastAPI:
    return create_app(make_settings(db_url, tiles_url=TILES))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A client of an app whose database holds the ring_spur example."""
    with TestClient(app) as c:
        app.state.repo.load_dataset(read_dataset(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg"))
        yield c


@pytest.mark.parametrize("kind", MAP_KINDS)
def test_every_kind_is_an_html_page_on_local_assets(client: TestClient, kind: str) -> None:
    r = client.get(f"/maps/{kind}")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert '<script src="/static/vendor/leaflet/dist/leaflet.js"' in r.text
    assert "cdn" not in r.text.lower() and "unpkg" not in r.text.lower()
    assert TILES in r.text
    assert client.get("/static/vendor/leaflet/dist/leaflet.js").status_code == 200


def test_coverage_page_holds_the_whole_plant(client: TestClient) -> None:
    features = page_features(client.get("/maps/coverage").text)
    premises = {k: f for k, f in features.items() if k.startswith("p_")}
    assert set(premises) == {"p_north100", "p_ring", "p_spur1", "p_spur2", "p_end", "p_far"}
    assert premises["p_far"]["properties"]["passed"] is False
    assert premises["p_ring"]["properties"]["served_span_id"] == "s2"
    assert {f"s{i}" for i in range(1, 7)} <= set(features)
    assert {"C", "A", "B", "D"} <= set(features)  # the core and the cabinets


def test_criticality_page_ranks_the_single_points_of_failure(client: TestClient) -> None:
    features = page_features(client.get("/maps/criticality").text)
    cut = {k: f["properties"]["cut_units"] for k, f in features.items() if k.startswith("s")}
    assert cut == {"s1": 0, "s2": 0, "s3": 0, "s4": 0, "s5": 7, "s6": 6}
    assert features["B"]["properties"]["failure_units"] == 7


def test_criticality_page_overlays_a_scenario(client: TestClient) -> None:
    plain = client.get("/maps/criticality").text
    resp = client.get("/maps/criticality", params={"cut_spans": "s5"})
    assert resp.status_code == 200
    # cutting s5 loses p_spur1, p_spur2 and p_end (3 premises, 7 units): the overlay says so
    assert "Scenario (3 premises lost)" in resp.text and "Scenario" not in plain
    assert "p_spur2" in resp.text
    bad = client.get("/maps/criticality", params={"cut_spans": "nope"})
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert "nope" in bad.text
    # other pages take no scenario: the parameter is not theirs, a 400 naming it (docs/spec.md §3.5)
    other = client.get("/maps/coverage", params={"fail_nodes": "B"})
    assert other.status_code == 400 and other.json()["errors"][0]["field"] == "fail_nodes"


def test_gaps_page_shows_the_unpassed_premise_and_its_rank(client: TestClient) -> None:
    html = client.get("/maps/gaps").text
    features = page_features(html)
    assert {k for k in features if k.startswith("p_")} == {"p_far"}
    assert '"label": "1"' in html  # the build rank of the one gap cluster


def test_areas_page_has_both_areas_with_their_kpis(client: TestClient) -> None:
    features = page_features(client.get("/maps/areas").text)
    assert {"west", "east"} <= set(features)
    assert all(features[a]["properties"]["coverage_pct"] is not None for a in ("west", "east"))


def _premises_in(client: TestClient, app: FastAPI, area_id: str) -> tuple[set[str], set[str]]:
    result = analysis_of(app)
    areas = result.dataset.areas
    polygon = areas.loc[areas["area_id"] == area_id].geometry.iloc[0]
    inside = set(result.premises.loc[shapely.covers(polygon, result.premises.geometry.values),
                                     "premise_id"])
    shown = {k for k in page_features(client.get(f"/maps/coverage?area_id={area_id}").text)
             if k.startswith("p_")}
    return inside, shown


@pytest.mark.parametrize("area_id", ["west", "east"])
def test_area_filter_keeps_the_premises_of_that_area(client: TestClient, app: FastAPI,
                                                     area_id: str) -> None:
    inside, shown = _premises_in(client, app, area_id)
    assert 0 < len(shown) < 6
    assert shown == inside
    areas = page_features(client.get(f"/maps/areas?area_id={area_id}").text)
    assert {"west", "east"} & set(areas) == {area_id}


def test_bbox_filter_keeps_the_premises_inside(client: TestClient) -> None:
    # p_spur2 (8.689076, 50.112273) and p_end (8.690611, 50.112727) only
    r = client.get("/maps/coverage", params={"bbox": "8.688,50.112,8.691,50.113"})
    assert r.status_code == 200
    assert {k for k in page_features(r.text) if k.startswith("p_")} == {"p_spur2", "p_end"}
    both = client.get("/maps/coverage", params={"bbox": "8.688,50.112,8.691,50.113",
                                                "area_id": "west"})
    assert {k for k in page_features(both.text) if k.startswith("p_")} == set()


def test_drop_m_changes_what_is_passed(client: TestClient) -> None:
    far = page_features(client.get("/maps/coverage", params={"drop_m": 100_000}).text)
    assert far["p_far"]["properties"]["passed"] is True
    short = page_features(client.get("/maps/coverage", params={"drop_m": 1}).text)
    assert short["p_ring"]["properties"]["passed"] is False


@pytest.mark.parametrize(("query", "status", "field"), [
    ("area_id=nowhere", 404, None),
    ("bbox=1,2,3", 400, "bbox"),
    ("bbox=a,b,c,d", 400, "bbox"),
    ("bbox=8.69,50.11,8.68,50.12", 400, "bbox"),
    ("bbox=8.68,50.11,8.68,50.12", 400, "bbox"),  # no width
    ("drop_m=-5", 400, "drop_m"),
])
@pytest.mark.parametrize("kind", ["coverage", "gaps"])
def test_errors_are_problems(client: TestClient, kind: str, query: str, status: int,
                             field: str | None) -> None:
    r = client.get(f"/maps/{kind}?{query}")
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status
    if field is not None:
        assert field in {e["field"] for e in body["errors"]}
    else:
        assert body["errors"] == [{"layer": "areas", "id": "nowhere", "field": None,
                                   "reason": "no such feature"}]


def test_unknown_kind_is_a_404_problem(client: TestClient) -> None:
    r = client.get("/maps/roads")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


def test_openapi_and_landing_page_describe_the_maps(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    links = {link["href"] for link in client.get("/").json()["links"]
             if link["type"] == "text/html"}
    for kind in MAP_KINDS:
        get = doc["paths"][f"/maps/{kind}"]["get"]
        assert list(get["responses"]["200"]["content"]) == ["text/html"]
        assert {"400", "404"} <= set(get["responses"])
        scenario = ({"cut_spans", "fail_nodes", "fail_ducts", "top"} if kind == "criticality"
                    else set())
        assert {p["name"] for p in get["parameters"]} == {"area_id", "bbox", "drop_m",
                                                          "min_version"} | scenario
        assert f"http://testserver/maps/{kind}" in links
    assert not any(path.startswith("/static") for path in doc["paths"])


# ---- a real server, a real browser ---------------------------------------------------------

N_PREMISES = 400


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, server: PageServer
         ) -> Iterator[tuple[LiveServer, FastAPI]]:
    """uvicorn on a free loopback port serving a generated city; tiles from ``server``."""
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('maps-live')) / 'live.db'}"
    repo = Repository.from_url(url)
    repo.init()
    repo.load_dataset(generate_city(premises=N_PREMISES, seed=1))
    repo.engine.dispose()
    tiles = f"http://127.0.0.1:{server.port}/tiles/{{z}}/{{x}}/{{y}}.png"
    app = create_app(make_settings(url, tiles_url=tiles))
    with LiveServer(app) as srv:
        yield srv, app


def _open(browser_context: Any, live: tuple[LiveServer, FastAPI], path: str
          ) -> tuple[Loaded, Analysis]:
    """The page at ``path`` loaded cleanly, and the analysis the server drew it from."""
    srv, app = live
    page = load(browser_context, f"{srv.url}{path}")
    assert_clean(page)
    assert f"{srv.url}/static/vendor/leaflet/dist/leaflet.js" in page.requests
    assert any("/tiles/" in u for u in page.requests)  # the base map, from the local tiles
    return page, analysis_of(app)


def _screenshot(page: Loaded, path: Path) -> None:
    page.page.screenshot(path=path)
    assert path.stat().st_size > 5_000
    page.page.close()


def _click_shows(loaded: Loaded, points: gpd.GeoSeries, text: str) -> None:
    """Click where ``points`` (one point) is drawn; a popup naming ``text`` must open."""
    x, y = settled_xy(loaded, points)
    loaded.page.mouse.click(x, y)
    loaded.page.wait_for_function(
        """(t) => Array.from(document.querySelectorAll('.leaflet-popup-content'))
            .some(e => e.innerText.split(/\\s+/).includes(t))""",
        arg=text, polling=50, timeout=5000)


@pytest.mark.browser
def test_live_coverage_page(browser_context: Any, live: tuple[LiveServer, FastAPI],
                            tmp_path: Path) -> None:
    page, result = _open(browser_context, live, "/maps/coverage")
    p, s, n = result.premises, result.spans, result.nodes
    assert len(p) == N_PREMISES
    assert page.count("path.netgis-premise-passed") == int(p["passed"].sum()) > 0
    assert page.count("path.netgis-premise-unpassed") == int((~p["passed"]).sum()) > 0
    assert page.count("path.netgis-span-lit") == int(s["lit"].sum())
    assert page.count("path.leaflet-interactive") == (
        len(p) + len(s) + int(n["kind"].isin(["core", "cabinet"]).sum()))
    ids = p["premise_id"]
    assert click_premises(page, p, list(ids[p["passed"]]), "netgis-premise-passed") == 3
    _screenshot(page, tmp_path / "api-coverage.png")


@pytest.mark.browser
def test_live_criticality_page(browser_context: Any, live: tuple[LiveServer, FastAPI],
                               tmp_path: Path) -> None:
    page, result = _open(browser_context, live, "/maps/criticality")
    s, n = result.spans, result.nodes
    spof = int((s["cut_units"] > 0).sum())
    assert page.count("path.netgis-span-spof") == spof > 0
    assert page.count("path.netgis-span-safe") == len(s) - spof
    weak = n[n["failure_units"] > 0]
    assert page.count("path.netgis-node-spof") == len(weak) > 0
    assert page.count("path.netgis-core") == int((n["kind"] == "core").sum())
    core = n[n["kind"] == "core"]
    _click_shows(page, core.geometry.iloc[[0]], str(core["node_id"].iloc[0]))
    _screenshot(page, tmp_path / "api-criticality.png")


@pytest.mark.browser
def test_live_gaps_page(browser_context: Any, live: tuple[LiveServer, FastAPI],
                        tmp_path: Path) -> None:
    from netgis.products.gaps import rollup_h3

    page, result = _open(browser_context, live, "/maps/gaps")
    p = result.premises
    unpassed = p[~p["passed"]]
    assert page.count("path.netgis-premise-unpassed") == len(unpassed) > 0
    assert page.count("path.netgis-gap-hex") == len(rollup_h3(p, h3_res=8))
    assert page.count(".netgis-rank") >= 1
    ids = list(unpassed["premise_id"])
    assert click_premises(page, p, ids, "netgis-premise-unpassed", want=2) >= 1
    _screenshot(page, tmp_path / "api-gaps.png")


@pytest.mark.browser
def test_live_areas_page(browser_context: Any, live: tuple[LiveServer, FastAPI],
                         tmp_path: Path) -> None:
    page, result = _open(browser_context, live, "/maps/areas")
    areas = result.dataset.areas
    assert page.count("path.netgis-area-coverage") == len(areas) > 1
    first = areas.iloc[[0]]
    _click_shows(page, first.geometry.representative_point(), str(first["area_id"].iloc[0]))
    _screenshot(page, tmp_path / "api-areas.png")


@pytest.mark.browser
def test_live_area_filter(browser_context: Any, live: tuple[LiveServer, FastAPI]) -> None:
    areas = analysis_of(live[1]).dataset.areas
    area_id = str(areas["area_id"].iloc[0])
    page, result = _open(browser_context, live, f"/maps/coverage?area_id={area_id}")
    p = result.premises[shapely.covers(areas.geometry.iloc[0], result.premises.geometry.values)]
    assert 0 < len(p) < N_PREMISES
    assert page.count("path.netgis-premise-passed") == int(p["passed"].sum())
    assert page.count("path.netgis-premise-unpassed") == int((~p["passed"]).sum())
    assert page.count("path.netgis-area-coverage") == 0  # a coverage map draws no areas
    page.page.close()
