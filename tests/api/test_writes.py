"""Writes behind X-API-Key: status codes, problem bodies and all-or-nothing behaviour."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from netgis.storage import Repository
from tests.api.helpers import API_KEY
from tests.helpers import EXAMPLES_DIR

KEY = {"X-API-Key": API_KEY}


def node(node_id: str, kind: str = "cabinet", lon: float = 8.69,
         lat: float = 50.12) -> dict[str, Any]:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"node_id": node_id, "kind": kind}}


def snapshot(repo: Repository) -> tuple[int, dict[str, int]]:
    return repo.data_version(), {name: repo.count(name) for name in
                                 ("nodes", "spans", "premises", "areas")}


def test_writes_without_a_key_get_401_and_change_nothing(client: TestClient,
                                                          repo: Repository) -> None:
    before = snapshot(repo)
    gpkg = (EXAMPLES_DIR / "duct_ring" / "dataset.gpkg").read_bytes()
    attempts = [
        client.post("/collections/nodes/items", json=node("x")),
        client.put("/collections/nodes/items/A", json=node("A")),
        client.patch("/collections/nodes/items/A", json={"properties": {"status": "retired"}}),
        client.delete("/collections/premises/items/p_far"),
        client.post("/import", files={"file": ("d.gpkg", gpkg)}),
        # malformed bodies still meet the key check first
        client.post("/collections/nodes/items", content=b"{not json",
                    headers={"content-type": "application/json"}),
    ]
    for r in attempts:
        assert r.status_code == 401, r.request.url
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "X-API-Key" in r.json()["detail"]
    wrong = client.delete("/collections/premises/items/p_far", headers={"X-API-Key": "nope"})
    assert wrong.status_code == 403
    assert snapshot(repo) == before


def test_create_replace_patch_delete(client: TestClient, repo: Repository) -> None:
    r = client.post("/collections/nodes/items", json=node("X1"), headers=KEY)
    assert r.status_code == 201
    assert r.headers["location"].endswith("/collections/nodes/items/X1")
    assert r.json() == {"layer": "nodes", "ids": ["X1"], "count": 1}
    v1 = repo.data_version()
    put = client.put("/collections/nodes/items/X1", json=node("X1", kind="splice", lon=8.7),
                     headers={**KEY, "content-type": "application/geo+json"})
    assert put.status_code == 200
    assert put.json()["properties"]["kind"] == "splice"
    assert put.json()["geometry"]["coordinates"] == [8.7, 50.12]
    assert repo.data_version() > v1
    patch = client.patch("/collections/nodes/items/X1", headers=KEY,
                         json={"properties": {"status": "planned", "name": "new cabinet"}})
    assert patch.status_code == 200
    props = patch.json()["properties"]
    assert (props["status"], props["name"], props["kind"]) == ("planned", "new cabinet", "splice")
    assert client.delete("/collections/nodes/items/X1", headers=KEY).status_code == 204
    assert client.get("/collections/nodes/items/X1").status_code == 404
    assert client.delete("/collections/nodes/items/X1", headers=KEY).status_code == 404


def test_feature_collection_is_all_or_nothing(client: TestClient, repo: Repository) -> None:
    before = snapshot(repo)
    body = {"type": "FeatureCollection",
            "features": [node("ok1"), node("bad", kind="castle"), node("ok2")]}
    r = client.post("/collections/nodes/items", json=body, headers=KEY)
    assert r.status_code == 422
    problems = r.json()["errors"]
    assert {(p["layer"], p["id"], p["field"]) for p in problems} == {("nodes", "bad", "kind")}
    assert snapshot(repo) == before
    good = {"type": "FeatureCollection", "features": [node("ok1"), node("ok2")]}
    assert client.post("/collections/nodes/items", json=good, headers=KEY).status_code == 201
    assert repo.count("nodes") == before[1]["nodes"] + 2


def test_conflicts_references_and_field_errors(client: TestClient, repo: Repository) -> None:
    dup = client.post("/collections/nodes/items", json=node("A"), headers=KEY)
    assert dup.status_code == 409
    assert dup.json()["errors"][0]["field"] == "node_id"
    span = {"type": "Feature",
            "geometry": {"type": "LineString", "coordinates": [[8.68, 50.11], [8.69, 50.11]]},
            "properties": {"span_id": "s_new", "from_node": "C", "to_node": "GHOST"}}
    r = client.post("/collections/spans/items", json=span, headers=KEY)
    assert r.status_code in (409, 422)
    assert any(p["field"] == "to_node" for p in r.json()["errors"])
    used = client.delete("/collections/nodes/items/A", headers=KEY)
    assert used.status_code == 409
    units = client.patch("/collections/premises/items/p_far", headers=KEY,
                         json={"properties": {"units": 0}})
    assert units.status_code == 422
    assert units.json()["errors"][0]["field"] == "units"
    wrong_geom = client.put("/collections/premises/items/p_far", headers=KEY, json={
        "type": "Feature", "properties": {"premise_id": "p_far"},
        "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}})
    assert wrong_geom.status_code == 422
    assert wrong_geom.json()["errors"][0]["field"] == "geometry"
    other_id = client.put("/collections/premises/items/p_far", headers=KEY, json={
        "type": "Feature", "properties": {"premise_id": "p_other"},
        "geometry": {"type": "Point", "coordinates": [8.68, 50.11]}})
    assert other_id.status_code == 422
    assert other_id.json()["errors"][0]["field"] == "premise_id"
    missing = client.put("/collections/premises/items/nope", headers=KEY, json={
        "type": "Feature", "properties": {},
        "geometry": {"type": "Point", "coordinates": [8.68, 50.11]}})
    assert missing.status_code == 404


def test_media_type_size_and_json_errors(client: TestClient, repo: Repository) -> None:
    before = snapshot(repo)
    text = client.post("/collections/nodes/items", content=json.dumps(node("t")),
                       headers={**KEY, "content-type": "text/plain"})
    assert text.status_code == 415
    big = {"type": "FeatureCollection", "features": [node(f"n{i}") for i in range(3000)]}
    assert client.post("/collections/nodes/items", json=big, headers=KEY).status_code == 413
    broken = client.post("/collections/nodes/items", content=b"{oops",
                         headers={**KEY, "content-type": "application/json"})
    assert broken.status_code == 400
    shape = client.post("/collections/nodes/items", json={"type": "Feature"}, headers=KEY)
    assert shape.status_code == 422
    assert shape.json()["errors"][0]["field"] == "geometry"
    empty = client.post("/collections/nodes/items", headers=KEY,
                        json={"type": "FeatureCollection", "features": []})
    assert empty.status_code == 422
    assert snapshot(repo) == before


def _zip_dir(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for f in sorted(folder.iterdir()):
            z.write(f, f"dataset/{f.name}")
    return buf.getvalue()


def test_import_gpkg_and_zip(client: TestClient, repo: Repository) -> None:
    gpkg = (EXAMPLES_DIR / "ring_spur" / "dataset.gpkg").read_bytes()
    again = client.post("/import", files={"file": ("ring.gpkg", gpkg)}, headers=KEY)
    assert again.status_code == 409
    before = snapshot(repo)
    up = client.post("/import?mode=upsert", files={"file": ("ring.gpkg", gpkg)}, headers=KEY)
    assert up.status_code == 200
    assert up.json()["counts"]["spans"] == before[1]["spans"]
    assert repo.data_version() > before[0]
    zipped = _zip_dir(EXAMPLES_DIR / "duct_ring" / "dataset")
    r = client.post("/import", files={"file": ("duct.zip", zipped)}, headers=KEY)
    assert r.status_code in (200, 409)
    if r.status_code == 200:
        assert repo.count("spans") > before[1]["spans"]


def test_import_rejects_bad_files_and_changes_nothing(client: TestClient,
                                                      repo: Repository) -> None:
    before = snapshot(repo)
    nonsense = client.post("/import", files={"file": ("x.txt", b"hello")}, headers=KEY)
    assert nonsense.status_code == 415
    form = client.post("/import", data={"mode": "insert"}, headers=KEY)
    assert form.status_code in (415, 422)
    raw = client.post("/import", content=b"abc", headers={**KEY, "content-type": "text/csv"})
    assert raw.status_code == 415
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("nodes.geojson", json.dumps({"type": "FeatureCollection", "features": [
            node("only", kind="castle")]}))
    invalid = client.post("/import", files={"file": ("bad.zip", buf.getvalue())}, headers=KEY)
    assert invalid.status_code == 422
    layers = {p["layer"] for p in invalid.json()["errors"]}
    assert {"spans", "premises"} <= layers  # required layers are missing
    assert ("nodes", "kind") in {(p["layer"], p["field"]) for p in invalid.json()["errors"]}
    huge = client.post("/import", files={"file": ("big.gpkg", b"\0" * 6_000_000)}, headers=KEY)
    assert huge.status_code == 413
    assert snapshot(repo) == before
