"""Requests are read strictly (issue 19): what a client gets wrong is named, never ignored.

docs/spec.md §3.5: an unknown query parameter is a 400 naming it on every endpoint; an
unknown JSON key in a body is a 422 naming it. JSON nested too deeply to parse is
a 400 (not a 500), and errors about an uploaded file name the client's file, not
the server's temporary path. What OGC API clients send (``f``, ``limit``,
``offset``, ``bbox``, the enum filters) keeps working.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from netgis.api.app import create_app
from netgis.api.params import declared_query_parameters
from netgis.io import read_dataset
from tests.api.helpers import API_KEY, make_settings
from tests.helpers import EXAMPLES_DIR

KEY = {"X-API-Key": API_KEY}
NODE = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [0.001, 0.001]},
        "properties": {"node_id": "n-strict", "kind": "splice", "status": "in_service"}}


def api_routes(routes: list[Any]) -> list[APIRoute]:
    """Every APIRoute, also those of included routers (FastAPI keeps those apart, each
    under an object holding its ``original_router``)."""
    out: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            out.append(route)
        elif hasattr(route, "original_router"):
            out.extend(api_routes(route.original_router.routes))
    return out


def _routes(app: FastAPI) -> list[tuple[str, str, APIRoute]]:
    """(method, concrete path, route) of every API route, ids filled with existing ones."""
    ids = {"premise_id": "p_far"}
    out = []
    for route in api_routes(app.routes):
        path = re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), "x"), route.path)
        if path.startswith("/collections/") and "/items/" in path:
            layer = path.split("/")[2]
            # the strand collections are empty here: any id does (the parameter is refused
            # before the item is looked up)
            path = path.rsplit("/", 1)[0] + "/" + {"nodes": "A", "spans": "s1",
                                                   "premises": "p_far",
                                                   "areas": "west"}.get(layer, "x")
        out.extend((method, path, route) for method in sorted(route.methods))
    return out


def test_every_endpoint_names_an_unknown_query_parameter(app: FastAPI,
                                                         client: TestClient) -> None:
    routes = _routes(app)
    assert len(routes) >= 30
    for method, path, _ in routes:
        r = client.request(method, path, params={"drop_mm": "40"}, headers=KEY)
        assert r.status_code == 400, (method, path, r.status_code, r.text[:300])
        problem = r.json()
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "drop_mm" in problem["detail"]
        assert problem["errors"] == [{"layer": "query", "id": None, "field": "drop_mm",
                                      "reason": "unknown query parameter"}]


def test_a_parameter_given_twice_is_a_400_naming_it(client: TestClient) -> None:
    for path, name in (("/collections/spans/items", "limit"), ("/analysis/coverage", "drop_m"),
                       ("/audit", "actor")):
        r = client.get(f"{path}?{name}=5&{name}=6", headers=KEY)
        assert r.status_code == 400, (path, r.text[:300])
        assert r.json()["errors"] == [{"layer": "query", "id": None, "field": name,
                                       "reason": "given 2 times; it takes one value"}]


def test_a_nul_character_in_a_query_value_is_a_400_naming_it(client: TestClient) -> None:
    # found by schemathesis on PostGIS: /audit?actor=... with a NUL was a 500
    for path, name in (("/audit", "actor"), ("/audit", "id"), ("/search", "q"),
                       ("/collections/premises/items", "address")):
        r = client.get(path, params={name: "a\x00b"}, headers=KEY)
        assert r.status_code == 400, (path, r.text[:300])
        assert r.json()["errors"] == [{"layer": "query", "id": None, "field": name,
                                       "reason": "holds a NUL character"}]


def test_accepted_query_parameters_are_the_documented_ones(app: FastAPI,
                                                           client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    for method, _, route in _routes(app):
        if not route.include_in_schema:
            continue  # /docs and /redoc: pages about the document, not in it
        operation = document["paths"][route.path_format][method.lower()]
        documented = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        assert declared_query_parameters(route) == documented, (method, route.path)


def test_what_ogc_clients_send_still_works(client: TestClient) -> None:
    for path in ("/", "/conformance", "/collections", "/collections/spans",
                 "/collections/spans/items/s1"):
        assert client.get(path, params={"f": "json"}).status_code == 200, path
    r = client.get("/collections/spans/items", params={
        "f": "json", "limit": 2, "offset": 1, "bbox": "-180,-90,180,90", "status": "in_service"})
    assert r.status_code == 200 and r.json()["numberReturned"] == 2
    # paging links carry only declared parameters, so following them works
    nxt = next(link["href"] for link in r.json()["links"] if link["rel"] == "next")
    assert client.get(nxt).status_code == 200


def test_an_unknown_body_key_is_a_422_naming_it(client: TestClient) -> None:
    # before: {"span": [...]} answered 200 with no impact at all
    r = client.post("/analysis/scenarios", json={"span": ["s1"]})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["span"]
    assert client.post("/analysis/scenarios", json={"spans": ["s1"]}).status_code == 200
    # features: a misspelt member, in the feature and in its geometry
    assert_unknown(client.post("/collections/nodes/items", headers=KEY,
                               json={**NODE, "propertes": {}}), "propertes")
    bad_geometry = {**NODE, "geometry": {**NODE["geometry"], "coordinate": [0, 0]}}
    assert_unknown(client.post("/collections/nodes/items", headers=KEY, json=bad_geometry),
                   "geometry.coordinate")
    collection = {"type": "FeatureCollection", "features": [NODE], "feature": []}
    assert_unknown(client.post("/collections/nodes/items", headers=KEY, json=collection),
                   "feature")
    assert_unknown(client.put("/collections/nodes/items/A", headers=KEY,
                              json={**NODE, "propertys": {}}), "propertys")
    assert_unknown(client.patch("/collections/nodes/items/A", headers=KEY,
                                json={"props": {"status": "planned"}}), "props")
    # a property the layer does not have: named on every write, as PATCH always did
    extra = {**NODE, "properties": {**NODE["properties"], "colour": "red"}}
    assert_unknown(client.post("/collections/nodes/items", headers=KEY, json=extra), "colour")
    assert_unknown(client.put("/collections/nodes/items/A", headers=KEY,
                              json={**extra, "properties": {**extra["properties"],
                                                            "node_id": "A"}}), "colour")
    assert_unknown(client.patch("/collections/nodes/items/A", headers=KEY,
                                json={"properties": {"colour": "red"}}), "colour")


def assert_unknown(r: Any, field: str) -> None:
    assert r.status_code == 422, r.text[:300]
    assert field in [e["field"] for e in r.json()["errors"]], r.json()


def test_geojson_members_clients_send_back_are_accepted(client: TestClient) -> None:
    # a feature as GET served it (with its links), edited and PUT back
    served = client.get("/collections/nodes/items/A").json()
    served["properties"]["name"] = "renamed"
    assert client.put("/collections/nodes/items/A", headers=KEY, json=served).status_code == 200
    # a FeatureCollection as ogr2ogr writes it: name, a CRS84 crs, bbox
    gdal = {"type": "FeatureCollection", "name": "nodes", "bbox": [0, 0, 0.01, 0.01],
            "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
            "features": [{**NODE, "bbox": [0.001, 0.001, 0.001, 0.001]}]}
    assert client.post("/collections/nodes/items", headers=KEY, json=gdal).status_code == 201
    # another CRS cannot be honoured: named, not ignored
    other = {**gdal, "crs": {"type": "name", "properties": {"name": "EPSG:3857"}}}
    r = client.post("/collections/nodes/items", headers=KEY, json=other)
    assert r.status_code == 422 and "crs.properties" in [e["field"] for e in r.json()["errors"]]


@pytest.fixture
def roomy(tmp_path: Path) -> Iterator[TestClient]:
    """A client of an app whose body limit lets a 100,000 deep document through."""
    with TestClient(create_app(make_settings(f"sqlite:///{tmp_path / 'deep.db'}",
                                             max_body_bytes=1_000_000))) as c:
        c.app.state.repo.load_dataset(read_dataset(EXAMPLES_DIR / "ring_spur" /  # type: ignore[attr-defined]
                                                   "dataset.gpkg"))
        yield c


@pytest.mark.parametrize("depth", [100_000, 5_000])
def test_deeply_nested_json_is_a_400_naming_the_body(roomy: TestClient, depth: int) -> None:
    client = roomy
    deep = "[" * depth + "]" * depth
    for method, path in (("POST", "/analysis/scenarios"), ("POST", "/collections/nodes/items"),
                         ("PUT", "/collections/nodes/items/A"),
                         ("PATCH", "/collections/nodes/items/A")):
        r = client.request(method, path, content=deep, headers={
            **KEY, "Content-Type": "application/json"})
        assert r.status_code == 400, (path, r.status_code, r.text[:200])
        assert r.json()["errors"][0]["layer"] == "body"
        inside = '{"spans": ' + deep + "}"
        r = client.request(method, path, content=inside, headers={
            **KEY, "Content-Type": "application/json"})
        assert r.status_code == 400, (path, r.status_code, r.text[:200])


def test_moderately_nested_json_is_refused_without_a_500(client: TestClient) -> None:
    nested: Any = [0.0, 0.0]
    for _ in range(500):
        nested = [nested]
    point = {**NODE, "geometry": {"type": "Point", "coordinates": nested}}
    assert client.post("/collections/nodes/items", headers=KEY, json=point).status_code == 422
    area = {"area": {"type": "Polygon", "coordinates": nested}}
    assert client.post("/analysis/scenarios", json=area).status_code == 422


# ------------------------------------------------------------------- upload file names


def _no_server_path(problem: dict[str, Any], name: str) -> None:
    text = str(problem)
    assert name in problem["detail"], problem
    assert "/tmp" not in text and "netgis-" not in text, text
    assert "upload" not in text.replace(name, ""), text


def test_import_errors_name_the_uploaded_file(client: TestClient) -> None:
    junk = b"SQLite format 3\x00" + b"junk" * 100
    r = client.post("/import", files={"file": ("my city.gpkg", junk)}, headers=KEY)
    assert r.status_code == 422
    _no_server_path(r.json(), "my city.gpkg")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("city/nodes.geojson", "{not json")
        z.writestr("city/spans.geojson", "{not json")
    r = client.post("/import", files={"file": ("city.zip", archive.getvalue())}, headers=KEY)
    assert r.status_code == 422
    # the member of the archive is named by its own file name, never by a server path
    _no_server_path(r.json(), "nodes.geojson")


def test_bead_errors_name_the_uploaded_file(client: TestClient) -> None:
    r = client.post("/analysis/bead", files={
        "availability": ("avail.csv", b"location_id,technology\n1,50\n"),
        "locations": ("fabric.csv", b"a,b\n1,2\n")})
    assert r.status_code == 422
    _no_server_path(r.json(), "fabric.csv")
    r = client.post("/analysis/bead", files={
        "availability": ("avail.csv", b"location_id,technology\n1,50\n"),
        "locations": ("../../etc/fabric.gpkg", b"SQLite format 3\x00junk")})
    assert r.status_code == 422
    _no_server_path(r.json(), "fabric.gpkg")
