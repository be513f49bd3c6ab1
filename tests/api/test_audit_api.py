"""The audit log over HTTP (issue 19): every write leaves its entry, named by the key's name.

Each kind of write leaves exactly one entry (an import one for all its layers,
with counts; its ids paged at ``/audit/{id}/ids``) with the features before and
after; a write that fails leaves none; ``GET /audit``
always needs a key with the read scope. On SpatiaLite and PostGIS.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from netgis.api.app import create_app
from netgis.io import read_dataset
from netgis.schema import LAYERS
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
    # the fixture's load through Python: one entry, counts per layer, no ids inline
    assert [(e["actor"], e["action"], e["mode"], e["layer"], e["feature_ids"])
            for e in loaded] == [("local", "load", "insert", None, None)]
    assert sorted(loaded[0]["counts"]) == ["areas", "nodes", "premises", "spans"]

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


def all_ids(client: TestClient, entry: dict[str, Any], **params: Any) -> list[dict[str, Any]]:
    """Every id of an entry, following its ``ids`` link and then the pages' ``next`` links."""
    [link] = [link for link in entry["links"] if link["rel"] == "ids"]
    url: str | None = link["href"]
    found: list[dict[str, Any]] = []
    first = True
    while url is not None:
        r = client.get(url, params=params if first else None, headers=VIEWER)
        first = False
        assert r.status_code == 200, r.text
        page = r.json()
        assert page["entry_id"] == entry["id"]
        found += page["ids"]
        url = next((x["href"] for x in page["links"] if x["rel"] == "next"), None)
    assert len(found) == page["numberMatched"]
    return found


def test_an_import_is_one_entry_and_keeps_what_it_replaced(client: TestClient,
                                                           repo: Repository) -> None:
    before = len(audit(client))
    old_a = repo.get_item("nodes", "A")
    gpkg = (EXAMPLES_DIR / "duct_ring" / "dataset.gpkg").read_bytes()
    r = client.post("/import", params={"mode": "upsert"}, files={"file": ("d.gpkg", gpkg)},
                    headers=EDITOR)
    assert r.status_code == 200, r.text
    [entry] = audit(client, action="import")
    assert len(audit(client)) == before + 1
    counts = r.json()["counts"]
    data = read_dataset(EXAMPLES_DIR / "duct_ring" / "dataset.gpkg")
    assert (entry["actor"], entry["mode"], entry["layer"], entry["feature_ids"]) == \
        ("editor", "upsert", None, None)
    assert (entry["before"], entry["after"]) == (None, None)
    assert entry["data_version"] == r.json()["data_version"]
    assert {n: sum(c.values()) for n, c in entry["counts"].items()} == counts
    ids = all_ids(client, entry, limit=7)
    assert sorted(i["id"] for i in ids if i["layer"] == "spans") == \
        sorted(str(s) for s in data.spans["span_id"])
    # a node the import replaced keeps its earlier state, as a PATCH would
    replaced = {i["id"]: i for i in ids if i["layer"] == "nodes" and i["action"] == "replace"}
    assert "A" in replaced and entry["counts"]["nodes"]["replaced"] == len(replaced)
    feature = replaced["A"]["before"]
    assert feature["properties"]["node_id"] == "A"
    assert feature["properties"]["kind"] == old_a["kind"].iat[0]
    assert feature["geometry"]["type"] == "Point"
    assert all(i["before"] is None for i in ids if i["action"] == "insert")
    # the ids of one layer, and the errors of the endpoint
    nodes = all_ids(client, entry, layer="nodes")
    assert {i["layer"] for i in nodes} == {"nodes"} and len(nodes) == counts["nodes"]
    for missing in (entry["id"] + 1000, 2**40):
        assert client.get(f"/audit/{missing}/ids", headers=VIEWER).status_code == 404
    assert client.get(f"/audit/{entry['id']}/ids").status_code in (401, 403)
    assert client.get(f"/audit/{entry['id']}/ids", params={"layer": "ducts"},
                      headers=VIEWER).status_code == 400


def test_an_import_can_replace_the_stored_dataset(client: TestClient,
                                                  repo: Repository) -> None:
    """mode=replace swaps the stored dataset for the file's in one audited change and
    answers with the data version that change made."""
    gpkg = (EXAMPLES_DIR / "duct_ring" / "dataset.gpkg").read_bytes()
    r = client.post("/import", params={"mode": "replace"}, files={"file": ("d.gpkg", gpkg)},
                    headers=EDITOR)
    assert r.status_code == 200, r.text
    data = read_dataset(EXAMPLES_DIR / "duct_ring" / "dataset.gpkg")
    for layer, frame in data.layers().items():
        assert repo.count(layer) == len(frame), layer
    [entry] = audit(client, action="import")
    assert entry["mode"] == "replace"
    assert r.json()["data_version"] == entry["data_version"] == repo.data_version()


def test_a_large_load_is_a_small_entry_with_paged_ids(
        app: FastAPI, db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "city.gpkg"
    env = {k: v for k, v in os.environ.items() if k != "NETGIS_DATABASE_URL"}

    def netgis(*args: str) -> subprocess.CompletedProcess[str]:
        run = subprocess.run([sys.executable, "-m", "netgis.cli", *args], capture_output=True,
                             text=True, env=env, timeout=600, check=False)
        assert run.returncode == 0, run.stderr
        return run

    netgis("generate", "--premises", "3000", "--seed", "5", "--out", str(out))
    netgis("db", "load", str(out), "--database-url", db_url)
    data = read_dataset(out)
    with TestClient(app) as client:
        r = client.get("/audit", params={"limit": 3}, headers=VIEWER)
        assert r.status_code == 200, r.text
        [entry] = r.json()["entries"]
        # counts, no ids: a few hundred bytes, not one id of the load
        assert len(r.content) < 4000
        assert str(data.premises["premise_id"].iat[0]) not in r.text
        assert entry["counts"]["premises"] == {"inserted": 3000, "replaced": 0, "deleted": 0}
        assert entry["count"] == sum(len(f) for f in data.layers().values())
        ids = all_ids(client, entry, limit=50)
        wanted = sorted((name, str(i)) for name, frame in data.layers().items()
                        for i in frame[LAYERS[name].id_field])
        # every id exactly once
        assert sorted((i["layer"], i["id"]) for i in ids) == wanted
        premise = str(data.premises["premise_id"].iat[-1])
        assert [e["id"] for e in audit(client, id=premise)] == [entry["id"]]
    run = netgis("db", "history", "--id", premise, "--database-url", db_url)
    [line] = run.stdout.splitlines()
    found = json.loads(line)
    assert (found["id"], found["feature_ids"]) == (entry["id"], None)
    assert found["counts"]["premises"]["inserted"] == 3000
    assert len(line) < 2000


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
    assert len(everything) == 4
    # the load names no layer; it wrote premises
    assert [e["layer"] for e in audit(client, layer="premises")] == ["premises"] * 3 + [None]
    assert [e["feature_ids"] for e in audit(client, id="new1")] == [["new1"]]
    assert len(audit(client, actor="editor")) == 3 and audit(client, actor="nobody") == []
    assert len(audit(client, since="2000-01-01T00:00:00Z")) == 4
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert audit(client, since=future) == []

    r = client.get("/audit", params={"limit": 1, "offset": 1}, headers=VIEWER)
    page = r.json()
    assert (page["numberMatched"], page["numberReturned"]) == (4, 1)
    assert [e["id"] for e in page["entries"]] == [e["id"] for e in everything[1:2]]
    rels = {link["rel"]: link["href"] for link in page["links"]}
    assert {"self", "next", "prev"} <= set(rels) and "offset=2" in rels["next"]
    for bad in ({"layer": "ducts"}, {"since": "yesterday"}, {"limit": 0}, {"offset": -1},
                {"action": "drop"}):
        r = client.get("/audit", params=bad, headers=VIEWER)
        assert r.status_code == 400, bad
        assert r.headers["content-type"].startswith("application/problem+json")
