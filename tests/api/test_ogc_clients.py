"""OGC API - Features for real clients (issue 18): extents, limits, property and CQL2 filters.

A generated city in SpatiaLite and in PostGIS, served by uvicorn on a real
port, read by Debian's GDAL (``ogrinfo -so``, ``ogr2ogr`` with the
document's maximum page size and a server-side ``-where``) and by OWSLib;
every answer is checked against the dataset itself (pandas/shapely).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import numpy as np
import pytest
import shapely

from api.app import create_app
from api.geojson import frame_to_features
from netgis.dataset import Dataset
from netgis.generate import generate_city
from netgis.schema import LAYERS
from netgis.storage import Repository
from tests.api.helpers import API_KEY, LiveServer, make_settings
from tests.helpers import PostgresDatabases

#: The test server's page size: default and maximum (as the document must say).
DEFAULT_LIMIT, MAX_LIMIT = 10, 200


@pytest.fixture(scope="module")
def city() -> Dataset:
    return generate_city(premises=400, seed=18)


@pytest.fixture(scope="module",
                params=["spatialite", pytest.param("postgis", marks=pytest.mark.postgis)])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         city: Dataset) -> Iterator[LiveServer]:
    if request.param == "spatialite":
        url = f"sqlite:///{tmp_path_factory.mktemp('ogc') / 'ogc.db'}"
    else:
        dbs: PostgresDatabases = request.getfixturevalue("pg_databases")
        url = dbs.create(prefix="ogc_clients", template=request.getfixturevalue("postgis_server"))
    repo = Repository.from_url(url)
    repo.init()
    repo.load_dataset(city)
    repo.close()
    with LiveServer(create_app(make_settings(url, default_limit=DEFAULT_LIMIT,
                                             max_limit=MAX_LIMIT))) as server:
        server.database_url = url  # type: ignore[attr-defined]
        yield server


def _wgs84(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return frame.to_crs(4326)


def _get(live: LiveServer, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{live.url}{path}", params=params, timeout=30)


def test_every_collection_has_the_extent_of_its_data(live: LiveServer, city: Dataset) -> None:
    collections = {c["id"]: c for c in _get(live, "/collections").json()["collections"]}
    for name, frame in city.layers().items():
        extent = collections[name]["extent"]
        assert extent["spatial"]["crs"].endswith("/OGC/1.3/CRS84")
        np.testing.assert_allclose(extent["spatial"]["bbox"][0], _wgs84(frame).total_bounds,
                                   atol=1e-9)
        assert _get(live, f"/collections/{name}").json()["extent"] == extent
    years = city.spans["install_year"].dropna()
    assert collections["spans"]["extent"]["temporal"]["interval"] == [
        [f"{int(years.min())}-01-01T00:00:00Z", f"{int(years.max())}-12-31T23:59:59Z"]]
    assert "temporal" not in collections["premises"]["extent"]


def test_the_extent_follows_a_write(live: LiveServer, city: Dataset) -> None:
    minx, miny, maxx, maxy = _wgs84(city.premises).total_bounds
    feature = {"type": "Feature", "geometry": {"type": "Point",
                                               "coordinates": [maxx + 0.01, maxy + 0.01]},
               "properties": {"premise_id": "outside-the-box"}}
    created = httpx.post(f"{live.url}/collections/premises/items", json=feature,
                         headers={"X-API-Key": API_KEY}, timeout=30)
    assert created.status_code == 201, created.text
    try:
        bbox = _get(live, "/collections/premises").json()["extent"]["spatial"]["bbox"][0]
        np.testing.assert_allclose(bbox, [minx, miny, maxx + 0.01, maxy + 0.01], atol=1e-9)
    finally:
        deleted = httpx.delete(f"{live.url}/collections/premises/items/outside-the-box",
                               headers={"X-API-Key": API_KEY}, timeout=30)
        assert deleted.status_code == 204
    bbox = _get(live, "/collections/premises").json()["extent"]["spatial"]["bbox"][0]
    np.testing.assert_allclose(bbox, [minx, miny, maxx, maxy], atol=1e-9)


def test_pages_written_as_text_equal_the_features_as_dicts(live: LiveServer) -> None:
    # the items page is joined from JSON the database writes (api.geojson.features_json);
    # it must say exactly what the dict-based serialisation of the same rows says
    with Repository.from_url(live.database_url) as repo:  # type: ignore[attr-defined]
        for layer in LAYERS:
            page = _get(live, f"/collections/{layer}/items", limit=MAX_LIMIT).json()
            frame, _ = repo.query_items(layer, limit=MAX_LIMIT)
            expected = frame_to_features(frame, LAYERS[layer], LAYERS[layer].field_names,
                                         item_href=f"{live.url}/collections/{layer}/items")
            assert len(page["features"]) == len(expected) > 0, layer
            for got, want in zip(page["features"], expected, strict=True):
                got_geometry = shapely.from_geojson(json.dumps(got.pop("geometry")))
                want_geometry = shapely.from_geojson(json.dumps(want.pop("geometry")))
                assert got == want
                assert shapely.equals_exact(got_geometry, want_geometry, 1e-12)


def test_the_document_gives_limit_a_default_and_a_maximum(live: LiveServer) -> None:
    paths = _get(live, "/openapi.json").json()["paths"]
    items = [p for p in paths if p.endswith("/items")]
    assert len(items) == 4
    for path in items:
        limit = next(p for p in paths[path]["get"]["parameters"] if p["name"] == "limit")
        assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                                   "default": DEFAULT_LIMIT}
    assert _get(live, "/collections/nodes/items").json()["numberReturned"] == DEFAULT_LIMIT
    r = _get(live, "/collections/nodes/items", limit=MAX_LIMIT + 1)
    assert r.status_code == 400 and [e["field"] for e in r.json()["errors"]] == ["limit"]


def _ids(live: LiveServer, layer: str, **params: Any) -> set[str]:
    """Every id the items endpoint answers for ``params``, following the next links."""
    out: set[str] = set()
    url: str | None = f"{live.url}/collections/{layer}/items"
    query: dict[str, Any] | None = {**params, "limit": MAX_LIMIT}
    while url is not None:
        r = httpx.get(url, params=query, timeout=30)
        assert r.status_code == 200, r.text
        page = r.json()
        out |= {f["id"] for f in page["features"]}
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
        query = None
    assert len(out) == page["numberMatched"]
    return out


def test_property_filters_on_the_contract_fields(live: LiveServer, city: Dataset) -> None:
    premises = city.premises
    one = premises.iloc[7]
    cases = [
        ("premises", {"kind": "business"}, premises["kind"] == "business"),
        ("premises", {"units": 2}, premises["units"] == 2),
        ("premises", {"address": one["address"]}, premises["address"] == one["address"]),
        ("premises", {"location_id": one["location_id"]},
         premises["location_id"] == one["location_id"]),
        ("premises", {"kind": "residential", "units": 1},
         (premises["kind"] == "residential") & (premises["units"] == 1)),
        ("nodes", {"kind": "handhole", "status": "in_service"},
         (city.nodes["kind"] == "handhole") & (city.nodes["status"] == "in_service")),
        ("spans", {"status": "planned"}, city.spans["status"] == "planned"),
    ]
    for layer, params, mask in cases:
        frame = city.layers()[layer]
        expected = set(frame.loc[mask, frame.columns[0]].astype(str))
        assert expected, (layer, params)  # the city has such features: the test means something
        assert _ids(live, layer, **params) == expected, (layer, params)


def test_cql2_text_and_json_filters(live: LiveServer, city: Dataset) -> None:
    premises = _wgs84(city.premises)
    minx, miny, maxx, maxy = premises.total_bounds
    box = (minx, miny, (minx + maxx) / 2, (miny + maxy) / 2)
    in_box = shapely.intersects(premises.geometry.values, shapely.box(*box))
    # a street name that lower() in SQL treats like Python (SQLite's lower is ASCII only)
    street = next(str(a).rsplit(" ", 1)[0] for a in premises["address"] if str(a).isascii())
    cases = [
        ("kind = 'business' AND units >= 2",
         (premises["kind"] == "business") & (premises["units"] >= 2)),
        ("units BETWEEN 2 AND 4 OR kind IN ('anchor', 'other')",
         premises["units"].between(2, 4) | premises["kind"].isin(["anchor", "other"])),
        (f"address LIKE '{street} %'", premises["address"].str.startswith(street + " ")),
        (f"CASEI(address) LIKE CASEI('{street.upper()}%')",
         premises["address"].str.lower().str.startswith(street.lower())),
        ("S_INTERSECTS(geometry, BBOX({}, {}, {}, {}))".format(*box), in_box),
        ("NOT S_INTERSECTS(geometry, BBOX({}, {}, {}, {})) AND connected = true".format(*box),
         ~in_box & premises["connected"]),
    ]
    for text, mask in cases:
        expected = set(premises.loc[mask, "premise_id"])
        assert expected, text
        assert _ids(live, "premises", filter=text) == expected, text
    as_json = {"op": "and", "args": [
        {"op": "=", "args": [{"property": "kind"}, "residential"]},
        {"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": list(box)}]}]}
    expected = set(premises.loc[(premises["kind"] == "residential") & in_box, "premise_id"])
    assert expected
    assert _ids(live, "premises", **{"filter": json.dumps(as_json),
                                     "filter-lang": "cql2-json"}) == expected


def test_bad_filters_and_parameters_are_400s_naming_them(live: LiveServer) -> None:
    cases = [
        ({"filter": "kind = "}, "filter", "end of the filter"),
        ({"filter": "colour = 'red'"}, "filter", "colour"),
        ({"filter": "units = 'two'"}, "filter", "units"),
        ({"filter": "{\"op\": \"=\"", "filter-lang": "cql2-json"}, "filter", "JSON"),
        ({"filter": "kind = 'core'", "filter-lang": "ecql"}, "filter-lang", "cql2-text"),
        ({"units": "two"}, "units", "integer"),
        ({"kind": "castle"}, "kind", "residential"),
        ({"colour": "red"}, "colour", "unknown query parameter"),
    ]
    for params, field, mentions in cases:
        r = _get(live, "/collections/premises/items", **params)
        assert r.status_code == 400, (params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        body = r.json()
        assert [e["field"] for e in body["errors"]] == [field], (params, body)
        assert mentions in json.dumps(body), (params, body)


def test_queryables_and_conformance_name_what_is_implemented(live: LiveServer) -> None:
    conformance = set(_get(live, "/conformance").json()["conformsTo"])
    assert {"http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
            "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
            "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json"} <= conformance
    r = _get(live, "/collections/spans/queryables")
    assert r.headers["content-type"].startswith("application/schema+json")
    properties = r.json()["properties"]
    assert properties["install_year"]["type"] == "integer"
    assert properties["status"]["enum"] == ["in_service", "planned", "retired"]
    assert properties["geometry"]["format"] == "geometry-any"


# ------------------------------------------------------------------ GDAL (gdal-bin)

def _sqlite_only(live: LiveServer) -> None:
    """The clients run once (the test budget): what they read is tested on both databases."""
    if not live.database_url.startswith("sqlite"):  # type: ignore[attr-defined]
        pytest.skip("GDAL and OWSLib read the SpatiaLite server; the answers they rely on "
                    "are checked on PostGIS too")


def _gdal(*args: str) -> str:
    tool = shutil.which(args[0])
    if tool is None:
        pytest.fail(f"{args[0]} is missing: run scripts/install-system.sh (gdal-bin)")
    done = subprocess.run([tool, *args[1:]], capture_output=True, text=True, timeout=120,
                          env={"GDAL_HTTP_TIMEOUT": "60", "CPL_DEBUG": "OFF",
                               "PATH": "/usr/bin:/bin", "GDAL_DATA": "/usr/share/gdal"})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_ogrinfo_summary_reads_count_and_extent(live: LiveServer, city: Dataset) -> None:
    _sqlite_only(live)
    out = _gdal("ogrinfo", "-so", f"OAPIF:{live.url}", "premises")
    assert int(re.search(r"Feature Count: (\d+)", out).group(1)) == len(city.premises)  # type: ignore[union-attr]
    found = re.search(r"Extent: \(([-\d.]+), ([-\d.]+)\) - \(([-\d.]+), ([-\d.]+)\)", out)
    assert found is not None, out
    np.testing.assert_allclose([float(v) for v in found.groups()],
                               _wgs84(city.premises).total_bounds, atol=1e-6)


def test_ogr2ogr_copies_every_premise_and_a_filtered_copy(live: LiveServer, city: Dataset,
                                                          tmp_path: Path) -> None:
    _sqlite_only(live)
    everything = tmp_path / "all.gpkg"
    _gdal("ogr2ogr", "-f", "GPKG", str(everything), f"OAPIF:{live.url}", "premises",
          "-oo", f"PAGE_SIZE={MAX_LIMIT}")
    copied = gpd.read_file(everything, layer="premises")
    assert sorted(copied["premise_id"]) == sorted(city.premises["premise_id"])
    merged = copied.merge(_wgs84(city.premises), on="premise_id", suffixes=("", "_src"))
    assert (merged["units"] == merged["units_src"]).all()
    assert shapely.equals_exact(np.asarray(merged.geometry.values),
                                np.asarray(merged["geometry_src"].values), 1e-9).all()
    # GDAL 3.6 sends the equality as ?kind=business (from the queryables) and checks the rest
    business = tmp_path / "business.gpkg"
    _gdal("ogr2ogr", "-f", "GPKG", str(business), f"OAPIF:{live.url}", "premises",
          "-oo", f"PAGE_SIZE={MAX_LIMIT}", "-where", "kind = 'business' AND units >= 2")
    filtered = gpd.read_file(business, layer="premises")
    mask = (city.premises["kind"] == "business") & (city.premises["units"] >= 2)
    assert mask.any()
    assert sorted(filtered["premise_id"]) == sorted(city.premises.loc[mask, "premise_id"])


# ------------------------------------------------------------------------- OWSLib

def test_owslib_reads_collections_extent_and_filtered_items(live: LiveServer,
                                                            city: Dataset) -> None:
    _sqlite_only(live)
    from owslib.ogcapi.features import Features

    api = Features(live.url)
    assert {c["id"] for c in api.collections()["collections"]} == set(city.layers())
    premises = api.collection("premises")
    np.testing.assert_allclose(premises["extent"]["spatial"]["bbox"][0],
                               _wgs84(city.premises).total_bounds, atol=1e-9)
    assert "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text" in \
        api.conformance()["conformsTo"]
    assert "units" in api.collection_queryables("premises")["properties"]
    page = api.collection_items("premises", limit=MAX_LIMIT, kind="business")
    expected = int((city.premises["kind"] == "business").sum())
    assert page["numberMatched"] == expected
    assert {f["properties"]["kind"] for f in page["features"]} == {"business"}
    cql = api.collection_items("premises", limit=MAX_LIMIT, filter="units >= 3")
    assert cql["numberMatched"] == int((city.premises["units"] >= 3).sum())
