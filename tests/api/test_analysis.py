"""Analysis endpoints against the ring_spur example, whose answers are drawn in its README."""

from __future__ import annotations

import csv
import json
import math
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from netgis.storage import Repository
from tests.api.helpers import API_KEY, make_settings
from tests.helpers import EXAMPLES_DIR, PostgresDatabases

EXPECTED = EXAMPLES_DIR / "ring_spur" / "expected"


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float | int) and isinstance(b, float | int):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    return bool(a == b)


def test_coverage_matches_the_expected_kpis(client: TestClient) -> None:
    expected = json.loads((EXPECTED / "kpis.json").read_text())
    body = client.get("/analysis/coverage").json()
    assert body["drop_m"] == 150.0
    for key, value in expected["network"].items():
        assert _close(body["network"][key], value), key
    assert [a["area_id"] for a in body["areas"]] == [a["area_id"] for a in expected["areas"]]
    wide = client.get("/analysis/coverage", params={"drop_m": 400}).json()
    assert wide["network"]["premises_passed"] == 6


def test_premise_results_match_the_expected_rows(client: TestClient) -> None:
    with (EXPECTED / "premises.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        r = client.get(f"/analysis/premises/{row['premise_id']}")
        assert r.status_code == 200
        props = r.json()["properties"]
        assert props["passed"] == (row["passed"] == "true")
        assert props["distance_m"] == pytest.approx(float(row["distance_m"]), abs=1e-3)
        assert (props["served_span_id"] or "") == row["served_span_id"]
        for flag in ("span_protected", "node_protected", "duct_protected"):
            assert props[flag] == (row[flag] == "true"), (row["premise_id"], flag)
    assert client.get("/analysis/premises/nope").status_code == 404


def test_serviceability_of_a_premise_location(client: TestClient) -> None:
    feature = client.get("/collections/premises/items/p_spur2").json()
    lon, lat = feature["geometry"]["coordinates"]
    s = client.get("/analysis/serviceability", params={"lon": lon, "lat": lat}).json()
    assert s["passed"] is True and s["served_span_id"] == "s6"
    assert s["distance_m"] == pytest.approx(50.0197, abs=1e-3)
    assert not s["span_protected"]
    ring = client.get("/collections/premises/items/p_ring").json()["geometry"]["coordinates"]
    s2 = client.get("/analysis/serviceability", params={"lon": ring[0], "lat": ring[1]}).json()
    assert (s2["served_span_id"], s2["node_protected"]) == ("s2", True)
    short = client.get("/analysis/serviceability",
                       params={"lon": lon, "lat": lat, "drop_m": 10}).json()
    assert short["passed"] is False and short["served_span_id"] is None
    for params in ({"lon": 200, "lat": 0}, {"lon": 0}, {"lon": 0, "lat": 0, "drop_m": -1}):
        assert client.get("/analysis/serviceability", params=params).status_code == 400


def test_criticality_ranks_spans_and_nodes(client: TestClient) -> None:
    spans = client.get("/analysis/criticality").json()
    assert [(f["id"], f["properties"]["cut_units"]) for f in spans["features"]] == \
        [("s5", 7), ("s6", 6)]
    assert spans["numberMatched"] == 2
    nodes = client.get("/analysis/criticality", params={"layer": "nodes", "limit": 1}).json()
    assert [f["id"] for f in nodes["features"]] == ["B"]
    nxt = next(link["href"] for link in nodes["links"] if link["rel"] == "next")
    assert [f["id"] for f in client.get(nxt).json()["features"]] == ["E"]


def test_scenarios(client: TestClient) -> None:
    r = client.post("/analysis/scenarios", json={"spans": ["s5"]})
    assert r.status_code == 200
    body = r.json()
    assert (body["impacted_premises"], body["impacted_units"]) == (3, 7)
    ids = sorted(f["id"] for f in body["premises"]["features"])
    assert ids == ["p_end", "p_spur1", "p_spur2"]
    ring = client.post("/analysis/scenarios", json={"spans": ["s1", "s3"]}).json()
    assert ring["impacted_premises"] >= 1
    core = client.post("/analysis/scenarios", json={"nodes": ["C"]}).json()
    assert core["impacted_premises"] == 5
    e = client.get("/collections/nodes/items/E").json()["geometry"]["coordinates"]
    d = 0.0002
    square = [[e[0] - d, e[1] - d], [e[0] + d, e[1] - d], [e[0] + d, e[1] + d],
              [e[0] - d, e[1] + d], [e[0] - d, e[1] - d]]
    area = client.post("/analysis/scenarios",
                       json={"area": {"type": "Polygon", "coordinates": [square]}}).json()
    assert "E" in area["failed_nodes"]
    assert area["impacted_units"] >= 6
    unknown = client.post("/analysis/scenarios", json={"spans": ["nope"]})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["id"] == "nope"
    point = client.post("/analysis/scenarios",
                        json={"area": {"type": "Point", "coordinates": [0, 0]}})
    assert point.status_code == 422 and point.json()["errors"][0]["field"] == "area"


def test_cached_results_follow_writes(client: TestClient, repo: Repository) -> None:
    first = client.get("/analysis/coverage").json()
    assert client.get("/analysis/coverage").json() == first
    far = client.get("/collections/premises/items/p_far").json()
    lon, lat = far["geometry"]["coordinates"]
    r = client.post("/collections/premises/items", headers={"X-API-Key": API_KEY}, json={
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"premise_id": "p_new", "units": 4}})
    assert r.status_code == 201
    after = client.get("/analysis/coverage").json()
    assert after["data_version"] > first["data_version"]
    assert after["network"]["units_total"] == first["network"]["units_total"] + 4
    assert client.get("/analysis/premises/p_new").json()["properties"]["passed"] is False


def test_health(client: TestClient, repo: Repository) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["data_version"] == repo.data_version()


def test_unexpected_errors_are_plain_500_problems(db_url: str) -> None:
    from netgis.api.app import create_app

    app: FastAPI = create_app(make_settings(db_url))

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail")

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/boom")
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["status"] == 500
    assert "secret" not in r.text and "Traceback" not in r.text


@pytest.mark.postgis
def test_lost_database_is_a_503_problem(pg_databases: PostgresDatabases,
                                        postgis_server: str) -> None:
    from netgis.api.app import create_app

    url = pg_databases.create(prefix="netgis_api_test", template=postgis_server)
    try:
        app = create_app(make_settings(url))
        with TestClient(app) as c:
            assert c.get("/health").status_code == 200
            pg_databases.drop(url)
            r = c.get("/health")
            assert r.status_code == 503
            assert r.headers["content-type"].startswith("application/problem+json")
            assert "postgres@" not in r.text
    finally:
        pg_databases.drop(url)
