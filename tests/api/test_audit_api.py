"""The audit log over HTTP (issue 19): every write leaves its entry, named by the key's name.

Each kind of write leaves exactly one entry (an import one per layer) with the
features before and after; a write that fails leaves none; ``GET /audit``
always needs a key with the read scope. On SpatiaLite and PostGIS.
"""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from netgis.io import read_dataset
from netgis.storage import Repository
from tests.api.helpers import make_settings
from tests.helpers import EXAMPLES_DIR

EDITOR = {"X-API-Key": "editor-secret"}
VIEWER = {"X-API-Key": "viewer-secret"}


@pytest.fixture
def app(db_url: str) -> FastAPI:
    """The API with a named read-write and a named read-only key (reads open)."""
    return create_app(make_settings(
        db_url, api_keys="editor:write:editor-secret, viewer:read:viewer-secret"))


def node(node_id: str, kind: str = "cabinet", lon: float = 8.69,
         lat: float = 50.12) -> dict[str, Any]:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"node_id": node_id, "kind": kind}}


def audit(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    r = client.get("/audit", params={"limit": 1000, **params}, headers=VIEWER)
    assert r.status_code == 200, r.text
    entries: list[dict[str, Any]] = r.json()["entries"]
    return entries


def one_feature(fc: dict[str, Any] | None) -> dict[str, Any]:
    assert fc is not None and fc["type"] == "FeatureCollection" and len(fc["features"]) == 1
    feature: dict[str, Any] = fc["features"][0]
    return feature


def test_each_write_leaves_one_entry_with_before_and_after(client: TestClient) -> None:
    loaded = audit(client)
    # the fixture's load through Python: one entry per layer, ids and counts only
    assert {(e["actor"], e["action"], e["mode"]) for e in loaded} == {("local", "load",
                                                                       "insert")}
    assert sorted(e["layer"] for e in loaded) == ["areas", "nodes", "premises", "spans"]

    def newest(expect: int) -> dict[str, Any]:
        entries = audit(client)
        assert len(entries) == len(loaded) + expect
        return entries[0]

    assert client.post("/collections/nodes/items", json=node("X1"),
                       headers=EDITOR).status_code == 201
    created = newest(1)
    assert (created["actor"], created["action"], created["layer"], created["feature_ids"],
            created["count"], created["before"], created["mode"]) == \
        ("editor", "create", "nodes", ["X1"], 1, None, None)
    stored = client.get("/collections/nodes/items/X1")
    assert one_feature(created["after"])["geometry"] == stored.json()["geometry"]
    assert one_feature(created["after"])["properties"]["kind"] == "cabinet"
    assert created["data_version"] == int(stored.headers["etag"].strip('"'))
    assert datetime.fromisoformat(created["time"]) > datetime.now(UTC) - timedelta(minutes=5)

    body = {"type": "FeatureCollection", "features": [node("X2"), node("X3")]}
    assert client.post("/collections/nodes/items", json=body, headers=EDITOR).status_code == 201
    both = newest(2)
    assert both["feature_ids"] == ["X2", "X3"] and len(both["after"]["features"]) == 2

    assert client.put("/collections/nodes/items/X1", json=node("X1", kind="splice", lon=8.7),
                      headers=EDITOR).status_code == 200
    replaced = newest(3)
    assert replaced["action"] == "replace"
    assert one_feature(replaced["before"]) == one_feature(created["after"])
    assert one_feature(replaced["after"])["properties"]["kind"] == "splice"
    assert one_feature(replaced["after"])["geometry"]["coordinates"] == [8.7, 50.12]

    assert client.patch("/collections/nodes/items/X1", json={"properties": {"name": "n"}},
                        headers=EDITOR).status_code == 200
    patched = newest(4)
    assert patched["action"] == "patch"
    assert one_feature(patched["before"]) == one_feature(replaced["after"])
    assert one_feature(patched["after"])["properties"] == {
        **one_feature(replaced["after"])["properties"], "name": "n"}

    assert client.delete("/collections/nodes/items/X1", headers=EDITOR).status_code == 204
    deleted = newest(5)
    assert (deleted["action"], deleted["feature_ids"], deleted["after"]) == \
        ("delete", ["X1"], None)
    assert one_feature(deleted["before"]) == one_feature(patched["after"])

    # the history of one feature, newest first
    assert [e["action"] for e in audit(client, id="X1")] == ["delete", "patch", "replace",
                                                             "create"]


def test_an_import_leaves_one_entry_per_layer_with_ids(client: TestClient) -> None:
    before = len(audit(client))
    gpkg = (EXAMPLES_DIR / "duct_ring" / "dataset.gpkg").read_bytes()
    r = client.post("/import", params={"mode": "upsert"}, files={"file": ("d.gpkg", gpkg)},
                    headers=EDITOR)
    assert r.status_code == 200, r.text
    entries = audit(client, action="import")
    assert len(audit(client)) == before + 4 == before + len(entries)
    counts = r.json()["counts"]
    data = read_dataset(EXAMPLES_DIR / "duct_ring" / "dataset.gpkg")
    for e in entries:
        assert (e["actor"], e["mode"], e["before"], e["after"]) == ("editor", "upsert", None,
                                                                    None)
        assert e["count"] == counts[e["layer"]] == len(e["feature_ids"])
        assert e["data_version"] == r.json()["data_version"]
    spans = next(e for e in entries if e["layer"] == "spans")
    assert sorted(spans["feature_ids"]) == sorted(str(s) for s in data.spans["span_id"])


def test_failed_writes_leave_no_entry(client: TestClient, repo: Repository) -> None:
    before = audit(client)
    _, etag = repo.get_item_versioned("nodes", "A")
    bad_zip = io.BytesIO()
    with zipfile.ZipFile(bad_zip, "w") as z:
        z.writestr("../escape.gpkg", b"x")
    gpkg = (EXAMPLES_DIR / "ring_spur" / "dataset.gpkg").read_bytes()
    failures = [
        (422, client.post("/collections/nodes/items", json=node("bad", kind="castle"),
                          headers=EDITOR)),
        (422, client.post("/collections/nodes/items",
                          json={"type": "FeatureCollection",
                                "features": [node("ok"), node("bad", kind="castle")]},
                          headers=EDITOR)),
        (409, client.post("/collections/nodes/items", json=node("A"), headers=EDITOR)),
        (409, client.delete("/collections/nodes/items/A", headers=EDITOR)),
        (404, client.delete("/collections/nodes/items/ghost", headers=EDITOR)),
        (412, client.put("/collections/nodes/items/A", json=node("A"),
                         headers={**EDITOR, "If-Match": f'"{etag + 1}"'})),
        (412, client.patch("/collections/nodes/items/A", json={"properties": {"name": "x"}},
                           headers={**EDITOR, "If-Match": '"0"'})),
        (422, client.patch("/collections/nodes/items/A", json={"properties": {"kind": "x"}},
                           headers=EDITOR)),
        (409, client.post("/import", files={"file": ("d.gpkg", gpkg)}, headers=EDITOR)),
        (422, client.post("/import", files={"file": ("d.zip", bad_zip.getvalue())},
                          headers=EDITOR)),
        (403, client.delete("/collections/premises/items/p_far", headers=VIEWER)),
        (401, client.delete("/collections/premises/items/p_far")),
    ]
    for status, r in failures:
        assert r.status_code == status, (r.request.method, r.request.url, r.text)
    assert audit(client) == before


def test_the_audit_log_needs_a_key_even_with_open_reads(client: TestClient) -> None:
    missing = client.get("/audit")
    assert missing.status_code == 401
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert client.get("/audit", headers={"X-API-Key": "nope"}).status_code == 403
    assert client.get("/audit", headers=EDITOR).status_code == 200
    assert client.get("/audit", headers=VIEWER).status_code == 200


def test_filters_and_paging(client: TestClient) -> None:
    for i in range(3):
        assert client.post("/collections/premises/items", headers=EDITOR, json={
            "type": "Feature", "geometry": {"type": "Point", "coordinates": [8.69, 50.12]},
            "properties": {"premise_id": f"new{i}", "units": 1}}).status_code == 201
    everything = audit(client)
    assert len(everything) == 7
    assert {e["layer"] for e in audit(client, layer="premises")} == {"premises"}
    assert len(audit(client, layer="premises")) == 4
    assert [e["feature_ids"] for e in audit(client, id="new1")] == [["new1"]]
    assert len(audit(client, actor="editor")) == 3 and audit(client, actor="nobody") == []
    assert len(audit(client, since="2000-01-01T00:00:00Z")) == 7
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert audit(client, since=future) == []

    r = client.get("/audit", params={"limit": 2, "offset": 2}, headers=VIEWER)
    page = r.json()
    assert (page["numberMatched"], page["numberReturned"]) == (7, 2)
    assert [e["id"] for e in page["entries"]] == [e["id"] for e in everything[2:4]]
    rels = {link["rel"]: link["href"] for link in page["links"]}
    assert {"self", "next", "prev"} <= set(rels) and "offset=4" in rels["next"]
    for bad in ({"layer": "ducts"}, {"since": "yesterday"}, {"limit": 0}, {"offset": -1},
                {"action": "drop"}):
        r = client.get("/audit", params=bad, headers=VIEWER)
        assert r.status_code == 400, bad
        assert r.headers["content-type"].startswith("application/problem+json")
