"""Item writes and imports refuse what the analysis cannot use (issue 19, defect 3).

Before the fix a premise POSTed at [500, 95] was stored with 201 and every
/analysis, /kpis, /metrics and /maps request answered 500 until it was
deleted; an id with CR/LF was stored and its Location header broke the
response. Now each is a 422 naming layer, id and field, and nothing changes.
"""

from __future__ import annotations

import io
import time
from typing import Any

import geopandas as gpd
import pyogrio
import pytest
from fastapi.testclient import TestClient
from shapely import Point

from netgis.io import read_dataset
from netgis.storage import Repository
from tests.api.helpers import API_KEY
from tests.helpers import EXAMPLES_DIR

KEY = {"X-API-Key": API_KEY}
BAD_XY = [[500, 95], [1e308, 1e308], [-180.5, 10], [8.7, 90.01]]


def premise(pid: str, xy: list[float]) -> dict[str, Any]:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": xy},
            "properties": {"premise_id": pid, "units": 1}}


def state(repo: Repository) -> tuple[int, dict[str, int]]:
    return repo.data_version(), {n: repo.count(n) for n in ("nodes", "spans", "premises",
                                                            "areas")}


def assert_problem(r: Any, layer: str, id: str | None, field: str, reason: str) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    hits = [e for e in r.json()["errors"] if (e["layer"], e["id"], e["field"]) ==
            (layer, id, field) and reason in e["reason"]]
    assert hits, r.json()


def assert_analysis_still_served(client: TestClient) -> None:
    for path in ("/analysis/coverage", "/kpis", "/metrics", "/maps/areas"):
        assert client.get(path).status_code == 200, path


@pytest.mark.parametrize("xy", BAD_XY)
def test_post_premise_out_of_range_is_422_and_analysis_survives(
        xy: list[float], client: TestClient, repo: Repository) -> None:
    before = state(repo)
    r = client.post("/collections/premises/items", json=premise("bad", xy), headers=KEY)
    assert_problem(r, "premises", "bad", "geometry", "outside")
    assert state(repo) == before
    assert_analysis_still_served(client)


def test_put_and_patch_out_of_range_are_422(client: TestClient, repo: Repository) -> None:
    before = state(repo)
    put = client.put("/collections/premises/items/p_far", json=premise("p_far", [500, 95]),
                     headers=KEY)
    assert_problem(put, "premises", "p_far", "geometry", "outside")
    patch = client.patch("/collections/premises/items/p_far", headers=KEY,
                         json={"geometry": {"type": "Point", "coordinates": [1e308, 1e308]}})
    assert_problem(patch, "premises", "p_far", "geometry", "outside")
    assert state(repo) == before
    assert_analysis_still_served(client)


def test_span_and_area_vertices_count(client: TestClient, repo: Repository) -> None:
    before = state(repo)
    nodes = client.get("/collections/nodes/items", params={"limit": 2}).json()["features"]
    a, b = (f["geometry"]["coordinates"] for f in nodes)
    span = {"type": "Feature", "properties": {"span_id": "sx", "from_node": nodes[0]["id"],
                                              "to_node": nodes[1]["id"]},
            "geometry": {"type": "LineString", "coordinates": [a, [a[0], 95.0], b]}}
    assert_problem(client.post("/collections/spans/items", json=span, headers=KEY),
                   "spans", "sx", "geometry", "outside")
    ring = [[8.6, 50.0], [8.8, 50.0], [188.0, 50.2], [8.6, 50.0]]
    area = {"type": "Feature", "properties": {"area_id": "ax", "name": "x"},
            "geometry": {"type": "Polygon", "coordinates": [ring]}}
    assert_problem(client.post("/collections/areas/items", json=area, headers=KEY),
                   "areas", "ax", "geometry", "outside")
    assert state(repo) == before


@pytest.mark.parametrize("bad_id", ["p\r\nX-Evil: 1", "p\n1", "p\x001", "p\t1"])
def test_ids_with_control_characters_are_422(bad_id: str, client: TestClient,
                                             repo: Repository) -> None:
    before = state(repo)
    r = client.post("/collections/premises/items", json=premise(bad_id, [8.69, 50.12]),
                    headers=KEY)
    assert_problem(r, "premises", bad_id, "premise_id", "control character")
    assert state(repo) == before


def test_location_of_a_non_latin1_id_is_percent_encoded(client: TestClient) -> None:
    """An id the HTTP header encoding cannot carry raw must not break the 201 response."""
    r = client.post("/collections/premises/items", json=premise("p€/1", [8.69, 50.12]),
                    headers=KEY)
    assert r.status_code == 201, r.text
    assert r.headers["location"].endswith("/collections/premises/items/p%E2%82%AC%2F1")


def test_import_of_a_bad_coordinate_is_422(client: TestClient, repo: Repository,
                                           tmp_path: Any) -> None:
    before = state(repo)
    ds = read_dataset(EXAMPLES_DIR / "duct_ring" / "dataset.gpkg")
    premises = ds.premises.to_crs(4326)
    geoms = premises.geometry.to_numpy().copy()
    geoms[0] = Point(500, 95)
    premises = premises.set_geometry(gpd.GeoSeries(geoms, crs=4326))
    path = tmp_path / "bad.gpkg"
    for name, frame in (("nodes", ds.nodes), ("spans", ds.spans), ("premises", premises)):
        pyogrio.write_dataframe(frame, path, layer=name, driver="GPKG")
    r = client.post("/import", files={"file": ("bad.gpkg", io.BytesIO(path.read_bytes()))},
                    headers=KEY)
    assert_problem(r, "premises", str(premises["premise_id"].iat[0]), "geometry", "outside")
    assert state(repo) == before


def _store_unchecked(repo: Repository, item_id: str, geom: Any) -> None:
    """A premise written past the validator, as rows stored before the fix may be."""
    from netgis.dataset import empty_layer
    from netgis.storage import repository as storage

    frame = empty_layer("premises", 4326)
    frame = gpd.GeoDataFrame({**{c: [None] for c in frame.columns if c != "geometry"},
                              "premise_id": [item_id], "units": [1], "kind": ["residential"],
                              "connected": [False]}, geometry=[geom], crs=4326)
    with repo.engine.begin() as conn:
        repo._write(conn, "premises", frame, upsert=False,
                    version=storage._next_version(conn))


def test_a_bad_stored_row_is_named_not_a_500(client: TestClient, repo: Repository,
                                            db_url: str) -> None:
    """Reading the store validates it: a server starting on it names the row to fix."""
    from netgis.api.app import create_app
    from tests.api.helpers import make_settings

    _store_unchecked(repo, "legacy", Point(500, 95))
    with TestClient(create_app(make_settings(db_url))) as fresh:
        r = fresh.get("/analysis/coverage")
        assert r.status_code == 422, r.text
        assert any((e["layer"], e["id"], e["field"]) == ("premises", "legacy", "geometry")
                   for e in r.json()["errors"])
        assert fresh.get("/health").status_code == 200
        assert fresh.delete("/collections/premises/items/legacy",
                            headers=KEY).status_code == 204
        assert_analysis_still_served(fresh)


def _stale_health(client: TestClient, timeout_s: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        analysis = client.get("/health").json()["analysis"]
        if analysis is not None or time.monotonic() > deadline:
            assert analysis is not None, "the failed analysis was never reported by /health"
            return dict(analysis)
        time.sleep(0.1)


def test_a_bad_stored_row_keeps_the_last_good_analysis(client: TestClient,
                                                       repo: Repository) -> None:
    good = client.get("/analysis/coverage")
    assert good.status_code == 200
    _store_unchecked(repo, "legacy", Point(500, 95))
    for path in ("/analysis/coverage", "/kpis", "/metrics", "/maps/areas"):
        assert client.get(path).status_code == 200, path
    again = client.get("/analysis/coverage")
    assert again.json()["network"] == good.json()["network"]
    # the live analysis takes up the row written past the API on its own thread: wait
    # for it to report the failure (reads meanwhile serve the last good analysis)
    health = _stale_health(client)
    assert health["status"] == "stale" and health["failed_version"] > health["served_version"]
    assert "legacy" in health["error"]
    # once the row is fixed (deleted), the newest data is analysed again and nothing is stale
    assert client.delete("/collections/premises/items/legacy", headers=KEY).status_code == 204
    assert client.get("/analysis/coverage").status_code == 200
    assert client.get("/health").json()["analysis"] is None


def test_an_unreadable_upload_names_no_server_path(client: TestClient) -> None:
    """GDAL's message names the file it could not read: only its name reaches the client."""
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("dataset/dataset.gpkg", b"\x89not a geopackage\x00" * 64)
    r = client.post("/import", files={"file": ("d.zip", buf.getvalue())}, headers=KEY)
    assert r.status_code == 422, r.text
    assert "dataset.gpkg" in r.json()["detail"]
    assert "netgis-import-" not in r.text and "/tmp" not in r.text


SWAPPED = "coordinates look swapped (lat, lon): swap x and y"


def first_id(client: TestClient, layer: str) -> str:
    r = client.get(f"/collections/{layer}/items", params={"limit": 1})
    assert r.status_code == 200, r.text
    return str(r.json()["features"][0]["id"])


def test_writes_with_swapped_coordinates_are_422(client: TestClient, repo: Repository) -> None:
    """(lat, lon) sent as (lon, lat): before, a PATCH answered 200 and the portal told the
    resident that the nearest fiber was 5949007 m away."""
    lon, lat = 8.684, 50.111  # a place in the ring_spur example's plant
    pid = first_id(client, "premises")
    before = state(repo)
    r = client.patch(f"/collections/premises/items/{pid}", headers=KEY,
                     json={"geometry": {"type": "Point", "coordinates": [lat, lon]}})
    assert_problem(r, "premises", pid, "geometry", SWAPPED)
    r = client.post("/collections/premises/items", json=premise("new", [lat, lon]), headers=KEY)
    assert_problem(r, "premises", "new", "geometry", SWAPPED)
    r = client.put(f"/collections/premises/items/{pid}", json=premise(pid, [lat, lon]),
                   headers=KEY)
    assert_problem(r, "premises", pid, "geometry", SWAPPED)
    node = first_id(client, "nodes")
    r = client.patch(f"/collections/nodes/items/{node}", headers=KEY,
                     json={"geometry": {"type": "Point", "coordinates": [lat, lon]}})
    assert_problem(r, "nodes", node, "geometry", SWAPPED)
    assert state(repo) == before
    # the right way round, and a premise a few km outside the plant, are written
    assert client.patch(f"/collections/premises/items/{pid}", headers=KEY, json={
        "geometry": {"type": "Point", "coordinates": [lon, lat]}}).status_code == 200
    assert client.post("/collections/premises/items", json=premise("outside", [lon + 0.05, lat]),
                       headers=KEY).status_code == 201
