"""The seven strand layers as OGC API - Features collections, over a real port, on SpatiaLite
and PostGIS: rows as features without geometry, every layer edited with ETags and If-Match,
the whole strand plant kept valid (422 naming each problem, nothing changed), the audit log,
keys, design plans refusing them, and GDAL and OWSLib reading them beside the route layers.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from netgis.api.app import create_app
from netgis.api.result_features import RESULT_COLLECTIONS
from netgis.schema import LAYER_NAMES, STRAND_LAYER_NAMES
from netgis.storage import Repository
from tests.api.helpers import API_KEY, LiveServer, make_settings
from tests.storage.strand_helpers import IDS, route, strand_tables

READER = "strand-reader-secret"
WRITE = {"X-API-Key": API_KEY}


@pytest.fixture
def live(db_url: str) -> Iterator[LiveServer]:
    """A server on a database holding the chain of tests/storage/strand_helpers.py and its
    strand plant (data version 1)."""
    repo = Repository.from_url(db_url)
    repo.init()
    repo.load_dataset(route(), strands=strand_tables())
    repo.close()
    settings = make_settings(db_url, api_keys=f"{API_KEY},reader:read:{READER}")
    with LiveServer(create_app(settings)) as server:
        server.database_url = db_url  # type: ignore[attr-defined]
        yield server


def _client(live: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=live.url, timeout=60)


def _etag(response: httpx.Response) -> str:
    return response.headers["ETag"]


def _audit(http: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    found = http.get("/audit", params=params, headers=WRITE)
    assert found.status_code == 200, found.text
    entries: list[dict[str, Any]] = found.json()["entries"]
    return entries


def test_collections_of_rows_without_geometry(live: LiveServer) -> None:
    with _client(live) as http:
        listed = [c["id"] for c in http.get("/collections").json()["collections"]]
        assert listed == [*LAYER_NAMES, *RESULT_COLLECTIONS, *STRAND_LAYER_NAMES]
        cables = http.get("/collections/cables").json()
        assert "extent" not in cables and cables["itemType"] == "feature"
        queryables = http.get("/collections/drops/queryables").json()["properties"]
        assert "geometry" not in queryables and queryables["length_m"]["type"] == "number"
        for layer, ids in IDS.items():
            page = http.get(f"/collections/{layer}/items").json()
            assert [f["id"] for f in page["features"]] == ids, layer
            assert {f["geometry"] is None for f in page["features"]} == {True}
            assert page["numberMatched"] == len(ids)
        item = http.get("/collections/cable_spans/items/C1:2")
        assert item.status_code == 200 and _etag(item) == '"1"'
        assert item.json()["properties"] == {"cable_id": "C1", "seq": 2, "span_id": "s1"}
        assert http.get("/collections/cable_spans/items/C1:9").status_code == 404
        assert http.get("/collections/cable_spans/items/C1").status_code == 404
        # pages by cursor, filters on the fields, CQL2, and a bbox that no row meets
        first = http.get("/collections/cable_spans/items", params={"limit": 2}).json()
        after = next(link["href"] for link in first["links"] if link["rel"] == "next")
        assert [f["id"] for f in http.get(after).json()["features"]] == ["C1:3"]
        assert http.get("/collections/drops/items",
                        params={"src_num": 2}).json()["numberMatched"] == 1
        assert http.get("/collections/drops/items",
                        params={"filter": "length_m >= 40"}).json()["numberMatched"] == 1
        assert http.get("/collections/drops/items",
                        params={"bbox": "-180,-90,180,90"}).json()["numberMatched"] == 0
        bad = http.get("/collections/drops/items", params={"filter": "S_INTERSECTS(geometry, "
                                                           "BBOX(0,0,1,1))"})
        assert bad.status_code == 400
        html = http.get("/collections/cables/items", params={"f": "html"})
        assert html.status_code == 200 and "C1" in html.text


def test_every_layer_is_edited_with_etags_and_audited(live: LiveServer) -> None:
    with _client(live) as http:
        # cables: a change of one field, conditional on the ETag
        done = http.patch("/collections/cables/items/C1", json={"properties": {"name": "x"}},
                          headers={**WRITE, "If-Match": '"1"'})
        assert done.status_code == 200 and _etag(done) == '"2"', done.text
        assert done.json()["properties"]["name"] == "x" and done.json()["geometry"] is None
        stale = http.patch("/collections/cables/items/C1", json={"properties": {"name": "y"}},
                           headers={**WRITE, "If-Match": '"1"'})
        assert stale.status_code == 412
        # cable_spans: the same span again, replaced whole
        done = http.put("/collections/cable_spans/items/C1:3",
                        json={"type": "Feature", "geometry": None,
                              "properties": {"span_id": "s2"}}, headers=WRITE)
        assert done.status_code == 200 and _etag(done) == '"3"', done.text
        # splitters: a larger ratio
        done = http.put("/collections/splitters/items/SP1",
                        json={"type": "Feature", "geometry": None,
                              "properties": {"splitter_id": "SP1", "node_id": "n2",
                                             "ratio": 16}}, headers=WRITE)
        assert done.status_code == 200 and done.json()["properties"]["ratio"] == 16
        # olt_ports: added, then removed while unchanged
        done = http.post("/collections/olt_ports/items",
                         json={"type": "Feature", "geometry": None,
                               "properties": {"olt_port_id": "P2", "node_id": "n0"}},
                         headers=WRITE)
        assert done.status_code == 201, done.text
        assert done.headers["Location"].endswith("/collections/olt_ports/items/P2")
        tag = _etag(http.get("/collections/olt_ports/items/P2"))
        assert http.delete("/collections/olt_ports/items/P2",
                           headers={**WRITE, "If-Match": '"1"'}).status_code == 412
        assert http.delete("/collections/olt_ports/items/P2",
                           headers={**WRITE, "If-Match": tag}).status_code == 204
        # connections: a measured splice loss
        done = http.patch("/collections/connections/items/K2",
                          json={"properties": {"loss_db": 0.08}}, headers=WRITE)
        assert done.status_code == 200 and done.json()["properties"]["loss_db"] == 0.08
        # drops: a third drop from the splitter, changed, removed
        done = http.post("/collections/drops/items", headers=WRITE, json={
            "type": "FeatureCollection", "features": [{
                "type": "Feature", "id": "D3", "geometry": None,
                "properties": {"premise_id": "p0", "node_id": "n2", "src_type": "out",
                               "src_id": "SP1", "src_num": 3}}]})
        assert done.status_code == 201 and done.json()["ids"] == ["D3"], done.text
        assert http.patch("/collections/drops/items/D3", json={"properties": {"length_m": 25}},
                          headers=WRITE).json()["properties"]["length_m"] == 25.0
        assert http.delete("/collections/drops/items/D3", headers=WRITE).status_code == 204
        # strand_state: keyed by cable_id:strand
        done = http.post("/collections/strand_state/items", headers=WRITE, json={
            "type": "Feature", "id": "C1:11", "geometry": None,
            "properties": {"state": "broken"}})
        assert done.status_code == 201 and done.json()["ids"] == ["C1:11"], done.text
        done = http.put("/collections/strand_state/items/C1:11", headers=WRITE, json={
            "type": "Feature", "geometry": None, "properties": {"state": "reserved"}})
        assert done.json()["properties"] == {"cable_id": "C1", "strand": 11, "state": "reserved"}
        assert http.delete("/collections/strand_state/items/C1:11",
                           headers=WRITE).status_code == 204
        # a new cable comes with its cable_spans: one batch, one data version
        batch = http.post("/strand-edits", headers=WRITE, json={"edits": [
            {"layer": "cables", "op": "create",
             "properties": {"cable_id": "C2", "from_node": "n0", "to_node": "n2",
                            "fiber_count": 24}},
            {"layer": "cable_spans", "op": "create", "id": "C2:1",
             "properties": {"span_id": "s0"}},
            {"layer": "cable_spans", "op": "create", "id": "C2:2",
             "properties": {"span_id": "s1"}}]})
        assert batch.status_code == 200, batch.text
        version = batch.json()["data_version"]
        assert [e["id"] for e in batch.json()["edits"]] == ["C2", "C2:1", "C2:2"]
        assert _etag(http.get("/collections/cable_spans/items/C2:2")) == f'"{version}"'
        # every write has its entry, by the key's name, the rows before and after
        entries = _audit(http, layer="strand_state")
        assert [(e["action"], e["actor"]) for e in entries[:3]] == [
            ("delete", "key1"), ("replace", "key1"), ("create", "key1")]
        assert entries[0]["before"]["features"][0]["id"] == "C1:11"
        assert {e["layer"] for e in _audit(http, limit=50) if e["action"] != "load"} == set(
            STRAND_LAYER_NAMES)
        ids = http.get(f"/audit/{_audit(http, layer='cables')[0]['id']}/ids",
                       headers=WRITE).json()["ids"]
        assert ids == [{"layer": "cables", "id": "C2", "action": "insert", "before": None}]


def test_an_edit_that_breaks_the_plant_is_a_422_and_changes_nothing(live: LiveServer) -> None:
    with _client(live) as http:
        version = http.get("/health").headers.get("X-Data-Version")
        logged = len(_audit(http))
        tag = _etag(http.get("/collections/cable_spans/items/C1:2"))
        cases = [
            ("patch", "/collections/cable_spans/items/C1:2", {"properties": {"span_id": "s2"}},
             ("cable_spans", "C1:2", "span_id")),
            ("delete", "/collections/olt_ports/items/P1", None, ("connections", "K1", "a_id")),
            ("post", "/collections/strand_state/items",
             {"type": "Feature", "geometry": None,
              "properties": {"cable_id": "C1", "strand": 13, "state": "broken"}},
             ("strand_state", "C1:13", "strand")),
            ("post", "/collections/cables/items",
             {"type": "Feature", "geometry": None,
              "properties": {"cable_id": "C2", "from_node": "n0", "to_node": "n1",
                             "fiber_count": 4}}, ("cables", "C2", None)),
        ]
        for method, path, body, (layer, fid, field) in cases:
            kwargs: dict[str, Any] = {"headers": WRITE}
            if body is not None:
                kwargs["json"] = body
            answer = http.request(method.upper(), path, **kwargs)
            assert answer.status_code == 422, (path, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json")
            problems = [(e["layer"], e["id"], e["field"]) for e in answer.json()["errors"]]
            assert (layer, fid, field) in problems, (path, problems)
        # unknown fields and a geometry are refused by name, as for the route layers
        answer = http.patch("/collections/drops/items/D1", json={"properties": {"colour": 1}},
                            headers=WRITE)
        assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "colour"
        answer = http.post("/collections/drops/items", headers=WRITE, json={
            "type": "Feature", "geometry": {"type": "Point", "coordinates": [8.6, 50.1]},
            "properties": {"drop_id": "D7"}})
        assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "geometry"
        # nothing changed: the ETag, the data version, the log
        assert _etag(http.get("/collections/cable_spans/items/C1:2")) == tag
        assert http.get("/health").headers.get("X-Data-Version") == version
        assert len(_audit(http)) == logged
        # a route write that would leave a strand row dangling is a 409 naming it
        answer = http.delete("/collections/spans/items/s1", headers=WRITE)
        assert answer.status_code == 409
        assert "cable_spans C1:2" in answer.json()["errors"][0]["reason"]


def test_keys_and_plans(live: LiveServer) -> None:
    with _client(live) as http:
        body = {"type": "Feature", "geometry": None,
                "properties": {"cable_id": "C1", "strand": 10, "state": "broken"}}
        assert http.post("/collections/strand_state/items", json=body).status_code == 401
        assert http.post("/collections/strand_state/items", json=body,
                         headers={"X-API-Key": READER}).status_code == 403
        assert http.post("/strand-edits", json={"edits": [
            {"layer": "strand_state", "op": "delete", "id": "C1:12"}]}).status_code == 401
        assert http.get("/collections/strand_state/items/C1:12").status_code == 200
        # design plans edit the route layers only: a strand layer there is a clear 400
        assert http.post("/plans", json={"name": "p1"}, headers=WRITE).status_code == 201
        refused = http.get("/plans/p1/collections/cables/items")
        assert refused.status_code == 400
        assert "not part of design plans" in refused.json()["detail"]


def test_without_strand_rows_the_collections_are_the_four(db_url: str) -> None:
    repo = Repository.from_url(db_url)
    repo.init()
    repo.load_dataset(route())
    repo.close()
    with LiveServer(create_app(make_settings(db_url))) as server, _client(server) as http:
        listed = [c["id"] for c in http.get("/collections").json()["collections"]]
        # (and the analysis results, always: docs/ogc-api.md)
        assert listed == [*LAYER_NAMES, *RESULT_COLLECTIONS]
        # the paths answer, empty, so the first row can be written
        assert http.get("/collections/cables/items").json()["numberMatched"] == 0
        assert http.get("/collections/cables").status_code == 200


# ------------------------------------------------------------------ GDAL and OWSLib

def _gdal(*args: str) -> str:
    tool = shutil.which(args[0])
    if tool is None:
        pytest.fail(f"{args[0]} is missing: run scripts/install-system.sh (gdal-bin)")
    done = subprocess.run([tool, *args[1:]], capture_output=True, text=True, timeout=120,
                          env={"GDAL_HTTP_TIMEOUT": "60", "CPL_DEBUG": "OFF",
                               "PATH": "/usr/bin:/bin", "GDAL_DATA": "/usr/share/gdal"})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_gdal_and_owslib_read_them_beside_the_route_layers(live: LiveServer,
                                                          tmp_path: Path) -> None:
    if not live.database_url.startswith("sqlite"):  # type: ignore[attr-defined]
        pytest.skip("the clients read the SpatiaLite server; the answers they rely on are "
                    "checked on PostGIS too")
    listing = _gdal("ogrinfo", "-ro", "-q", f"OAPIF:{live.url}")
    for name in (*LAYER_NAMES, *STRAND_LAYER_NAMES):
        assert re.search(rf"^\d+: {name}\b", listing, re.MULTILINE), listing
    # the route layers read as before, with the strand collections listed beside them
    summary = _gdal("ogrinfo", "-so", f"OAPIF:{live.url}", "premises")
    assert "Feature Count: 3" in summary
    copy = tmp_path / "spans.csv"
    _gdal("ogr2ogr", "-f", "CSV", str(copy), f"OAPIF:{live.url}", "cable_spans")
    lines = copy.read_text().splitlines()
    assert len(lines) == 4 and "span_id" in lines[0] and "s1" in lines[2]
    from owslib.ogcapi.features import Features

    api = Features(live.url)
    assert {c["id"] for c in api.collections()["collections"]} == {
        *LAYER_NAMES, *RESULT_COLLECTIONS, *STRAND_LAYER_NAMES}
    drops = api.collection_items("drops", limit=10)
    assert [f["id"] for f in drops["features"]] == ["D1", "D2"]
