"""OGC API - Features for real clients (issue 18): extents, limits, property and CQL2 filters.

A generated city in SpatiaLite and in PostGIS, served by uvicorn on a real
port, read by Debian's GDAL (``ogrinfo -so``, ``ogr2ogr`` with the
document's maximum page size and a server-side ``-where``) and by OWSLib;
every answer is checked against the dataset itself (pandas/shapely).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import geopandas as gpd
import httpx
import numpy as np
import pytest
import shapely

from netgis.api.app import create_app
from netgis.api.geojson import frame_to_features
from netgis.api.result_features import BEAD_COLLECTION, RESULT_COLLECTIONS
from netgis.dataset import Dataset
from netgis.generate import generate_city
from netgis.schema import LAYERS, STRAND_LAYER_NAMES
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
    # the four collections, the analysis results' (read-only; bead_classes is documented
    # always and served with the FCC files), the seven strand layers'
    # (docs/access-and-audit.md), and a design plan's (docs/plans.md)
    assert sorted(items) == sorted([*(f"/collections/{layer}/items" for layer in
                                      ("nodes", "spans", "premises", "areas",
                                       *RESULT_COLLECTIONS, BEAD_COLLECTION,
                                       *STRAND_LAYER_NAMES)),
                                    "/plans/{name}/collections/{layer}/items"])
    for path in items:
        limit = next(p for p in paths[path]["get"]["parameters"] if p["name"] == "limit")
        assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                                   "default": DEFAULT_LIMIT}
    assert _get(live, "/collections/nodes/items").json()["numberReturned"] == DEFAULT_LIMIT
    r = _get(live, "/collections/nodes/items", limit=MAX_LIMIT + 1)
    assert r.status_code == 400 and [e["field"] for e in r.json()["errors"]] == ["limit"]


def _walk(live: LiveServer, layer: str, rel: str = "next", url: str | None = None,
          **params: Any) -> list[dict[str, Any]]:
    """Every page from the first (or from ``url``), following the ``rel`` links."""
    pages: list[dict[str, Any]] = []
    query: dict[str, Any] | None = None if url else {"limit": MAX_LIMIT, **params}
    url = url or f"{live.url}/collections/{layer}/items"
    while url is not None:
        r = httpx.get(url, params=query, timeout=30)
        assert r.status_code == 200, r.text
        pages.append(r.json())
        url = next((link["href"] for link in pages[-1]["links"] if link["rel"] == rel), None)
        query = None
        assert len(pages) < 1000
    return pages


def _ids(live: LiveServer, layer: str, **params: Any) -> set[str]:
    """Every id the items endpoint answers for ``params``, following the next links."""
    pages = _walk(live, layer, **params)
    out = [f["id"] for page in pages for f in page["features"]]
    # the first page counts the matches; cursor pages only read on
    assert len(out) == len(set(out)) == pages[0]["numberMatched"]
    return set(out)


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
        # beyond what an SQL INTEGER holds: a 400, not a database error (found by schemathesis)
        ({"units": str(2**31)}, "units", "2147483647"),
        ({"units": "-20302297208932655104"}, "units", "-2147483648"),
        ({"filter": "units = 99999999999999999999999"}, "filter", "out of range"),
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


# ------------------------------------------------------------------- keyset paging

def _feature_ids(frame: gpd.GeoDataFrame) -> list[str]:
    return [str(v) for v in frame.iloc[:, 0]]


def test_cursor_pages_give_every_feature_once_in_id_order(live: LiveServer,
                                                          city: Dataset) -> None:
    for layer, frame in city.layers().items():
        size = 37 if len(frame) > 37 else 3
        pages = _walk(live, layer, limit=size)
        ids = [f["id"] for page in pages for f in page["features"]]
        # the ids are ASCII: code point order is both databases' order (binary, C.UTF-8)
        assert ids == sorted(_feature_ids(frame)), layer
        assert len(pages) == -(-len(frame) // size) > 1, layer
        assert [p["numberReturned"] for p in pages[:-1]] == [size] * (len(pages) - 1)
        assert pages[0]["numberMatched"] == len(frame)
        for page in pages[1:]:
            links = {link["rel"]: link["href"] for link in page["links"]}
            assert "cursor=" in links["self"] and "offset=" not in links["self"]
            assert "numberMatched" not in page and "prev" in links
        assert "prev" not in {link["rel"] for link in pages[0]["links"]}
        # back from the last page by the prev links: the same pages, in reverse
        last = next(link["href"] for link in pages[-1]["links"] if link["rel"] == "self")
        back = _walk(live, layer, rel="prev", url=last)
        assert [[f["id"] for f in p["features"]] for p in back] == \
            [[f["id"] for f in p["features"]] for p in reversed(pages)], layer
    # with filters: the matches only, each once, in order; the same as offset paging gives
    premises = city.premises
    mask = (premises["kind"] == "residential") & (premises["units"] <= 2)
    params = {"kind": "residential", "filter": "units <= 2", "limit": 29}
    pages = _walk(live, "premises", **params)
    ids = [f["id"] for page in pages for f in page["features"]]
    assert ids == sorted(premises.loc[mask, "premise_id"]) and len(pages) > 2
    by_offset = [f["id"] for offset in range(0, len(ids), 29)
                 for f in _get(live, "/collections/premises/items", offset=offset,
                               **params).json()["features"]]
    assert by_offset == ids


def test_the_cursor_is_documented_and_a_bad_one_is_a_400(live: LiveServer) -> None:
    document = _get(live, "/openapi.json").json()
    for layer in LAYERS:
        items = document["paths"][f"/collections/{layer}/items"]["get"]
        assert {"cursor", "offset", "limit"} <= {p["name"] for p in items["parameters"]}
        # a cursor page has no numberMatched: the document does not promise one
        page = items["responses"]["200"]["content"]["application/geo+json"]["schema"]["$ref"]
        required = document["components"]["schemas"][page.rsplit("/", 1)[1]]["required"]
        assert "numberMatched" not in required and "numberReturned" in required
    first = _get(live, "/collections/premises/items", limit=5).json()
    good = parse_qs(urlsplit(next(link["href"] for link in first["links"]
                                  if link["rel"] == "next")).query)["cursor"][0]
    assert _get(live, "/collections/premises/items", cursor=good).status_code == 200

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    cases = [
        ({"cursor": "not a cursor"}, "cursor"),
        ({"cursor": "!!!!"}, "cursor"),
        ({"cursor": ""}, "cursor"),
        ({"cursor": good + "=="}, "cursor"),  # padded: not the token a link carries
        ({"cursor": b64(b"x:p001")}, "cursor"),  # no such direction
        ({"cursor": b64(b"a:\xff\xfe")}, "cursor"),  # not UTF-8
        ({"cursor": b64(b"a:p\x00")}, "cursor"),  # NUL: no id holds one
        ({"cursor": "A" * 5000}, "cursor"),
        ({"cursor": good, "offset": 5}, "cursor"),
    ]
    for params, field in cases:
        r = _get(live, "/collections/premises/items", **params)
        assert r.status_code == 400, (params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert [e["field"] for e in r.json()["errors"]] == [field], (params, r.json())
    r = httpx.get(f"{live.url}/collections/premises/items?cursor={good}&cursor={good}",
                  timeout=30)
    assert r.status_code == 400 and [e["field"] for e in r.json()["errors"]] == ["cursor"]


def _post_premise(live: LiveServer, premise_id: str, at: tuple[float, float]) -> None:
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": list(at)},
               "properties": {"premise_id": premise_id}}
    r = httpx.post(f"{live.url}/collections/premises/items", json=feature,
                   headers={"X-API-Key": API_KEY}, timeout=30)
    assert r.status_code == 201, r.text


def _delete_premise(live: LiveServer, premise_id: str) -> int:
    return httpx.delete(f"{live.url}/collections/premises/items/{premise_id}",
                        headers={"X-API-Key": API_KEY}, timeout=30).status_code


def test_cursor_paging_during_writes(live: LiveServer, city: Dataset) -> None:
    # each page is one snapshot; between pages, writes land: a feature that exists all
    # along comes exactly once, one written behind the cursor is not read, one ahead is
    point = _wgs84(city.premises).geometry.iloc[0]
    at = (point.x, point.y)
    ours = ["zz-ahead-1", "zz-ahead-2", "a-behind", "zz-new"]
    try:
        _post_premise(live, "zz-ahead-1", at)
        _post_premise(live, "zz-ahead-2", at)
        r = _get(live, "/collections/premises/items", limit=100)
        first = r.json()
        assert first["numberMatched"] == len(city.premises) + 2
        nxt = next(link["href"] for link in first["links"] if link["rel"] == "next")
        _post_premise(live, "a-behind", at)
        _post_premise(live, "zz-new", at)
        assert _delete_premise(live, "zz-ahead-2") == 204
        rest = _walk(live, "premises", url=nxt)
        ids = [f["id"] for page in [first, *rest] for f in page["features"]]
        assert ids == sorted([*city.premises["premise_id"], "zz-ahead-1", "zz-new"])
        assert _get(live, "/collections/premises/items",
                    limit=1).json()["numberMatched"] == len(city.premises) + 3
    finally:
        for premise_id in ours:
            assert _delete_premise(live, premise_id) in (204, 404)


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


def test_ogr2ogr_follows_the_cursor_links_on_both_databases(live: LiveServer, city: Dataset,
                                                           tmp_path: Path) -> None:
    # a page size that does not divide the count: GDAL follows 10 cursor links to the end
    copy = tmp_path / "small-pages.gpkg"
    _gdal("ogr2ogr", "-f", "GPKG", str(copy), f"OAPIF:{live.url}", "premises",
          "-oo", "PAGE_SIZE=37")
    copied = gpd.read_file(copy, layer="premises")
    assert len(copied) == len(city.premises)
    assert sorted(copied["premise_id"]) == sorted(city.premises["premise_id"])


# ------------------------------------------------------------------------- OWSLib

def test_owslib_reads_collections_extent_and_filtered_items(live: LiveServer,
                                                            city: Dataset) -> None:
    _sqlite_only(live)
    from owslib.ogcapi.features import Features

    api = Features(live.url)
    assert {c["id"] for c in api.collections()["collections"]} == {*city.layers(),
                                                                  *RESULT_COLLECTIONS}
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
