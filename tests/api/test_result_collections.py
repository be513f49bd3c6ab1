"""The analysis results as read-only OGC API - Features collections, over a real port.

A generated city in SpatiaLite and in PostGIS; what the collections serve is checked
against ``netgis analyze --db`` of the same database (its CSVs), and against the gap
analysis of the same data; GDAL's ``ogr2ogr`` copies every unpassed premise through the
server's paging, with the ``-where`` it sends as a query parameter.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyogrio
import pytest
import shapely

from netgis.api.app import create_app
from netgis.api.result_features import RESULT_COLLECTIONS
from netgis.dataset import Dataset
from netgis.engine.analysis import analyze
from netgis.engine.outputs import write_outputs
from netgis.generate import generate_city
from netgis.products.gaps import GapParams, gap_analysis
from netgis.products.result_layers import RESULT_LAYERS
from netgis.storage import Repository
from tests.api.helpers import API_KEY, LiveServer, make_settings
from tests.helpers import PostgresDatabases
from tests.layer_checks import csv_frame, typed

MAX_LIMIT = 200
ANALYSIS_CSVS = {"premise_results": "premises.csv", "span_results": "spans.csv",
                 "node_results": "nodes.csv"}


class Server(LiveServer):
    """The app on a real port, its database's URL, and one HTTP client (connections kept)."""

    def __init__(self, app: Any, database_url: str) -> None:
        super().__init__(app)
        self.database_url = database_url
        self.client = httpx.Client(timeout=60)


@pytest.fixture(scope="module")
def city() -> Dataset:
    return generate_city(premises=1200, seed=44)


@pytest.fixture(scope="module",
                params=["spatialite", pytest.param("postgis", marks=pytest.mark.postgis)])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         city: Dataset) -> Iterator[Server]:
    if request.param == "spatialite":
        url = f"sqlite:///{tmp_path_factory.mktemp('results') / 'results.db'}"
    else:
        dbs: PostgresDatabases = request.getfixturevalue("pg_databases")
        url = dbs.create(prefix="result_collections",
                         template=request.getfixturevalue("postgis_server"))
    with Repository.from_url(url) as repo:
        repo.init()
        repo.load_dataset(city)
    server = Server(create_app(make_settings(url, default_limit=25, max_limit=MAX_LIMIT)), url)
    with server, server.client:
        yield server


@pytest.fixture(scope="module")
def csvs(live: Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What ``netgis analyze --db`` writes for the served database (its read and its
    writer, in this process): the CSVs the collections must equal."""
    out = tmp_path_factory.mktemp("analyze")
    with Repository.from_url(live.database_url) as repo:
        _, ds = repo.read_consistent()
    write_outputs(analyze(ds), out)
    return out


def _sqlite_only(live: Server) -> None:
    """What does not depend on the database runs once (the test budget): the collections
    are made from the analysis in memory; reading and paging are checked on both."""
    if not live.database_url.startswith("sqlite"):
        pytest.skip("checked on SpatiaLite; the results are the analysis's, in memory")


def _get(live: Server, path: str, **params: Any) -> httpx.Response:
    return live.client.get(f"{live.url}{path}", params=params)


def _walk(live: Server, name: str, rel: str = "next", url: str | None = None,
          **params: Any) -> list[dict[str, Any]]:
    """Every page from the first (or from ``url``), following the ``rel`` links."""
    pages: list[dict[str, Any]] = []
    query: dict[str, Any] | None = None if url else {"limit": MAX_LIMIT, **params}
    url = url or f"{live.url}/collections/{name}/items"
    while url is not None:
        r = live.client.get(url, params=query)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/geo+json")
        pages.append(r.json())
        url = next((link["href"] for link in pages[-1]["links"] if link["rel"] == rel), None)
        query = None
        assert len(pages) < 500
    return pages


def _features(live: Server, name: str, **params: Any) -> list[dict[str, Any]]:
    pages = _walk(live, name, **params)
    features = [f for page in pages for f in page["features"]]
    assert pages[0]["numberMatched"] == len(features)
    return features


def _frame(features: list[dict[str, Any]], name: str) -> pd.DataFrame:
    rows = pd.DataFrame([f["properties"] for f in features],
                        columns=RESULT_LAYERS[name].field_names)
    return typed(rows, name)


def _ids(live: Server, name: str, **params: Any) -> list[str]:
    ids = [str(f["id"]) for f in _features(live, name, **params)]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    return ids


def test_the_collections_are_listed_described_and_queryable(live: Server) -> None:
    _sqlite_only(live)
    listed = {c["id"]: c for c in _get(live, "/collections").json()["collections"]}
    assert set(RESULT_COLLECTIONS) <= set(listed)
    plant = {"premise_results": "premises", "span_results": "spans",
             "node_results": "nodes"}
    for name, layer in plant.items():
        assert listed[name]["extent"]["spatial"]["bbox"] == \
            listed[layer]["extent"]["spatial"]["bbox"]
    for name in RESULT_COLLECTIONS:
        one = _get(live, f"/collections/{name}").json()
        assert one["id"] == name and "read-only" in one["description"].lower()
        assert {link["rel"] for link in one["links"]} >= {"self", "items"}
        box = one["extent"]["spatial"]["bbox"][0]
        assert -180 <= box[0] <= box[2] <= 180 and -90 <= box[1] <= box[3] <= 90
        queryables = _get(live, f"/collections/{name}/queryables")
        assert queryables.headers["content-type"].startswith("application/schema+json")
        properties = queryables.json()["properties"]
        assert list(properties) == [*RESULT_LAYERS[name].field_names, "geometry"]
    premises = _get(live, "/collections/premise_results/queryables").json()["properties"]
    assert premises["passed"]["type"] == "boolean"
    assert premises["distance_m"]["type"] == "number"
    assert _get(live, "/collections/gap_clusters/queryables").json()["properties"][
        "placement"]["enum"] == ["aerial", "underground", "buried", "submarine", "other"]
    # a page's answer names the data version it reflects
    r = _get(live, "/collections/premise_results/items", limit=1)
    assert int(r.headers["X-Data-Version"]) == _get(live, "/health").json()["data_version"]


def test_every_page_equals_the_csvs_of_analyze(live: Server, csvs: Path,
                                                city: Dataset) -> None:
    for name, csv_name in ANALYSIS_CSVS.items():
        features = _features(live, name)
        served = _frame(features, name)
        expected = csv_frame(csvs / csv_name, name)
        pd.testing.assert_frame_equal(served[list(expected.columns)], expected)
    # geometry: the plant's own, in WGS84; address and area as the data has them
    premises = {str(f["id"]): f for f in _features(live, "premise_results")}
    wgs84 = city.premises.to_crs(4326).set_index("premise_id")
    for pid, feature in list(premises.items())[::37]:
        point = shapely.from_geojson(json.dumps(feature["geometry"]))
        assert shapely.equals_exact(point, wgs84.geometry[pid], 1e-9)
        assert feature["properties"]["address"] == wgs84.loc[pid, "address"]
        if feature["properties"]["area_id"] is not None:
            area = city.areas.to_crs(4326).set_index("area_id").loc[
                feature["properties"]["area_id"]]
            assert shapely.covers(area.geometry, wgs84.geometry[pid])
            assert feature["properties"]["area_name"] == area["name"]


def test_the_gap_collections_equal_the_gap_analysis(live: Server) -> None:
    _sqlite_only(live)
    with Repository.from_url(live.database_url) as repo:
        _, ds = repo.read_consistent()
    settings = make_settings("sqlite://")
    found = gap_analysis(analyze(ds), GapParams(max_units=float(settings.gap_max_units),
                                                max_extent_m=float(settings.gap_max_extent_m)))
    for name, frame, id_field in (("gap_clusters", found.plan.clusters, "cluster_id"),
                                  ("h3_gaps", found.hexes, "h3_cell")):
        features = _features(live, name)
        assert len(features) == len(frame) > 0, name
        pd.testing.assert_frame_equal(_frame(features, name), typed(frame, name))
        hulls = frame.to_crs(4326).set_index(id_field).geometry
        for feature in features[::7]:
            shape = shapely.from_geojson(json.dumps(feature["geometry"]))
            assert shapely.equals_exact(shape, hulls[feature["id"]], 1e-9)


def test_property_and_cql2_filters(live: Server, csvs: Path) -> None:
    _sqlite_only(live)
    prem = csv_frame(csvs / "premises.csv", "premise_results")
    spans = csv_frame(csvs / "spans.csv", "span_results")
    loss = prem["loss_db"]
    cases: list[tuple[str, dict[str, Any], Any]] = [
        ("premise_results", {"passed": "false"}, ~prem["passed"]),
        ("premise_results", {"passed": "0"}, ~prem["passed"]),
        ("premise_results", {"passed": "true", "node_protected": "false"},
         prem["passed"] & ~prem["node_protected"]),
        ("premise_results", {"filter": "passed = false AND distance_m > 200"},
         ~prem["passed"] & (prem["distance_m"] > 200)),
        # a null is neither > 10 nor NOT > 10 (SQL's three values)
        ("premise_results", {"filter": "NOT loss_db > 10"}, (loss <= 10).fillna(False)),
        ("premise_results", {"filter": "served_span_id IS NULL"}, prem["served_span_id"].isna()),
        ("premise_results", {"filter": json.dumps(
            {"op": "and", "args": [{"op": "=", "args": [{"property": "in_budget"}, True]},
                                   {"op": "<", "args": [{"property": "loss_db"}, 15]}]}),
                             "filter-lang": "cql2-json"},
         prem["in_budget"] & (loss < 15).fillna(False)),
        ("span_results", {"lit": "true", "filter": "cut_units >= 3"},
         spans["lit"] & (spans["cut_units"] >= 3)),
    ]
    for name, params, mask in cases:
        frame = prem if name == "premise_results" else spans
        id_field = RESULT_LAYERS[name].id_field
        expected = sorted(frame.loc[mask.to_numpy(dtype=bool), id_field])
        assert expected, params  # the city has such features: the case means something
        assert _ids(live, name, **params) == expected, params
    # a box: the premises in the western half of the data
    box = _get(live, "/collections/premise_results").json()["extent"]["spatial"]["bbox"][0]
    west = (box[0], box[1], (box[0] + box[2]) / 2, box[3])
    every = _features(live, "premise_results")
    inside = sorted(str(f["id"]) for f in every if shapely.intersects(
        shapely.from_geojson(json.dumps(f["geometry"])), shapely.box(*west)))
    assert 0 < len(inside) < len(every)
    assert _ids(live, "premise_results", bbox=",".join(map(str, west))) == inside
    assert _ids(live, "premise_results",
                filter="S_INTERSECTS(geometry, BBOX({}, {}, {}, {}))".format(*west)) == inside


def test_cursor_and_offset_pages_give_every_match_once(live: Server, csvs: Path) -> None:
    prem = csv_frame(csvs / "premises.csv", "premise_results")
    expected = sorted(prem.loc[prem["passed"].to_numpy(dtype=bool), "premise_id"])
    pages = _walk(live, "premise_results", passed="true", limit=97)
    ids = [f["id"] for page in pages for f in page["features"]]
    assert ids == expected and len(pages) == -(-len(expected) // 97) > 2
    assert all("numberMatched" not in page for page in pages[1:])
    last = next(link["href"] for link in pages[-1]["links"] if link["rel"] == "self")
    back = _walk(live, "premise_results", rel="prev", url=last)
    assert [f["id"] for page in reversed(back) for f in page["features"]] == ids
    by_offset = [f["id"] for offset in range(0, len(ids), 97)
                 for f in _get(live, "/collections/premise_results/items", passed="true",
                               offset=offset, limit=97).json()["features"]]
    assert by_offset == ids
    one = _get(live, f"/collections/premise_results/items/{ids[5]}")
    assert one.status_code == 200 and one.json()["id"] == ids[5]
    assert one.headers["content-type"].startswith("application/geo+json")


def test_bad_requests_are_400s_naming_them(live: Server) -> None:
    _sqlite_only(live)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"colour": "red"}, "colour"),
        ({"passed": "maybe"}, "passed"),
        ({"cut_units": "3"}, "cut_units"),  # not a premise_results column
        ({"filter": "colour = 'red'"}, "filter"),
        ({"filter": "passed = 'yes'"}, "filter"),
        ({"filter": "distance_m >"}, "filter"),
        ({"limit": MAX_LIMIT + 1}, "limit"),
        ({"cursor": "not a cursor"}, "cursor"),
        ({"bbox": "1,2,3"}, "bbox"),
    ]
    for params, field in cases:
        r = _get(live, "/collections/premise_results/items", **params)
        assert r.status_code == 400, (params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert field in [e["field"] for e in r.json()["errors"]], (params, r.json())
    missing = _get(live, "/collections/premise_results/items/no-such-premise")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


def test_writes_are_405s(live: Server) -> None:
    _sqlite_only(live)
    pid = _get(live, "/collections/premise_results/items", limit=1).json()["features"][0]["id"]
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [0, 0]},
               "properties": {"premise_id": "x"}}
    keyed: list[dict[str, str]] = [{}, {"X-API-Key": API_KEY}]
    asked = [("POST", f"{live.url}/collections/{name}/items", headers)
             for name in RESULT_COLLECTIONS for headers in keyed]
    one = f"{live.url}/collections/premise_results/items/{pid}"
    asked += [(method, one, headers) for method in ("PUT", "PATCH", "DELETE")
              for headers in keyed]
    for method, url, headers in asked:
        r = live.client.request(method, url, json=None if method == "DELETE" else feature,
                            headers=headers)
        assert r.status_code == 405, (method, url, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.headers["allow"] == "GET"
        assert "read-only" in r.json()["detail"]


def test_the_collections_follow_a_write(live: Server, city: Dataset) -> None:
    # a premise far outside the plant: unpassed in the results of the version it made
    minx, miny, _, _ = city.premises.to_crs(4326).total_bounds
    feature = {"type": "Feature",
               "geometry": {"type": "Point", "coordinates": [minx - 0.05, miny - 0.05]},
               "properties": {"premise_id": "zz-far-away", "address": "1 Remote Road"}}
    made = live.client.post(f"{live.url}/collections/premises/items", json=feature,
                        headers={"X-API-Key": API_KEY})
    assert made.status_code == 201, made.text
    version = int(made.headers["X-Data-Version"])
    try:
        r = _get(live, "/collections/premise_results/items/zz-far-away", min_version=version)
        assert r.status_code == 200 and int(r.headers["X-Data-Version"]) >= version
        props = r.json()["properties"]
        assert props["passed"] is False and props["distance_m"] > 3000
        assert props["address"] == "1 Remote Road" and props["area_id"] is None
        assert "zz-far-away" in _ids(live, "premise_results", passed="false",
                                     min_version=version)
    finally:
        gone = live.client.delete(f"{live.url}/collections/premises/items/zz-far-away",
                              headers={"X-API-Key": API_KEY})
        assert gone.status_code == 204
    version = int(gone.headers["X-Data-Version"])
    r = _get(live, "/collections/premise_results/items/zz-far-away", min_version=version)
    assert r.status_code == 404


def test_html_pages_of_the_results(live: Server) -> None:
    _sqlite_only(live)
    for path in ("/collections/premise_results", "/collections/premise_results/items",
                 "/collections/h3_gaps/queryables"):
        r = _get(live, path, f="html")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "premise" in r.text or "h3_cell" in r.text


def test_ogr2ogr_copies_every_unpassed_premise(live: Server, csvs: Path,
                                               tmp_path: Path) -> None:
    tool = shutil.which("ogr2ogr")
    if tool is None:
        pytest.fail("ogr2ogr is missing: run scripts/install-system.sh (gdal-bin)")
    target = tmp_path / "unpassed.gpkg"
    # a page size that does not divide the count: GDAL follows the next links to the end;
    # GDAL 3.6 sends the equality as ?passed=0 (a parameter of the items in the document)
    done = subprocess.run(
        [tool, "-f", "GPKG", str(target), f"OAPIF:{live.url}", "premise_results",
         "-where", "passed = 0", "-oo", "PAGE_SIZE=53"],
        capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "GDAL_DATA": "/usr/share/gdal", "GDAL_HTTP_TIMEOUT": "60"})
    assert done.returncode == 0, done.stderr
    copied = pyogrio.read_dataframe(target, layer="premise_results")
    expected = csv_frame(csvs / "premises.csv", "premise_results")
    unpassed = expected[~expected["passed"].to_numpy(dtype=bool)].reset_index(drop=True)
    assert len(unpassed) > 53
    assert len(copied) == len(unpassed)
    got = typed(copied, "premise_results", list(unpassed.columns))
    pd.testing.assert_frame_equal(got, unpassed)
