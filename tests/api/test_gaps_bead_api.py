"""GET /analysis/gaps and POST /analysis/bead against the ring_spur example (SpatiaLite and
PostGIS), and BEAD over a real server.

ring_spur: only p_far (1 unit, 300 m beyond F) is not passed; it lies in area ``east``
only. The BEAD files put one served location next to p_spur2 (passed) and one
underserved location at p_far (300 m: reachable within 500 m, beyond 200 m).
"""

from __future__ import annotations

from typing import Any

import h3
import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from netgis.products.bead import AVAILABILITY_COLUMNS
from tests.api.helpers import LiveServer, make_settings


def _lonlat(client: TestClient, premise_id: str) -> tuple[float, float]:
    lon, lat = client.get(f"/collections/premises/items/{premise_id}").json()["geometry"][
        "coordinates"]
    return float(lon), float(lat)


def test_hexagons(client: TestClient) -> None:
    r = client.get("/analysis/gaps")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    assert body["view"] == "hexagons" and body["numberMatched"] == 1
    (feature,) = body["features"]
    lon, lat = _lonlat(client, "p_far")
    assert feature["id"] == h3.latlng_to_cell(lat, lon, 8)
    props = feature["properties"]
    assert (props["premises"], props["units"]) == (1, 1)
    assert props["min_distance_m"] == pytest.approx(300.118, abs=0.01)
    assert feature["geometry"]["type"] == "Polygon"
    res9 = client.get("/analysis/gaps", params={"h3_res": 9}).json()
    assert res9["features"][0]["id"] == h3.latlng_to_cell(lat, lon, 9)


def test_area_and_cell_filters(client: TestClient) -> None:
    assert client.get("/analysis/gaps", params={"area_id": "east"}).json()["numberMatched"] == 1
    assert client.get("/analysis/gaps", params={"area_id": "west"}).json()["numberMatched"] == 0
    lon, lat = _lonlat(client, "p_far")
    cell = h3.latlng_to_cell(lat, lon, 6)
    inside = client.get("/analysis/gaps", params={"h3_cell": cell, "view": "clusters"}).json()
    assert [f["id"] for f in inside["features"]] == ["gap-p_far"]
    far_cell = h3.latlng_to_cell(-lat, lon, 6)
    assert client.get("/analysis/gaps", params={"h3_cell": far_cell}).json()[
        "numberMatched"] == 0
    nope = client.get("/analysis/gaps", params={"area_id": "nope"})
    assert nope.status_code == 404 and nope.headers["content-type"] == "application/problem+json"
    bad = client.get("/analysis/gaps", params={"h3_cell": "zz"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "h3_cell"


def test_clusters(client: TestClient) -> None:
    body = client.get("/analysis/gaps", params={"view": "clusters"}).json()
    (feature,) = body["features"]
    p = feature["properties"]
    assert (feature["id"], p["rank"], p["units"], p["join_span_id"]) == ("gap-p_far", 1, 1, "s6")
    assert p["route_m"] == pytest.approx(300.118, abs=0.01)
    assert p["cost"] == pytest.approx(300.118 * 85, rel=1e-4)
    aerial = client.get("/analysis/gaps", params={"view": "clusters", "placement": "aerial"})
    assert aerial.json()["features"][0]["properties"]["cost"] == pytest.approx(300.118 * 25,
                                                                                rel=1e-4)
    wide = client.get("/analysis/gaps", params={"view": "clusters", "drop_m": 400}).json()
    assert wide["numberMatched"] == 0
    for name in ("max_units", "max_extent_m"):
        bad = client.get("/analysis/gaps", params={"view": "clusters", name: 0})
        assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == name


def _files(client: TestClient, extra: str = "") -> dict[str, Any]:
    spur = _lonlat(client, "p_spur2")
    far = _lonlat(client, "p_far")
    head = ",".join(AVAILABILITY_COLUMNS)
    avail = (f"{head}\n"
             "A,50,1000,1000,1,1,Fiber Co,R,NY,360010001001000,882a100d2dfffff\n"
             "B,50,200,2,1,1,Fiber Co,R,NY,360010001001000,882a100d2dfffff\n"
             "B,72,30,5,1,2,Air Co,R,NY,360010001001000,882a100d2dfffff\n" + extra)
    locs = (f"location_id,latitude,longitude\nA,{spur[1]},{spur[0]}\nB,{far[1]},{far[0]}\n"
            f"C,{far[1]},{far[0]}\n")
    return {"availability": ("bdc.csv", avail, "text/csv"),
            "locations": ("fabric.csv", locs, "text/csv")}


def test_bead_upload(client: TestClient) -> None:
    r = client.post("/analysis/bead", files=_files(client), params={"reach_m": 500})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["served"], body["underserved"], body["unserved"]) == (1, 1, 1)
    assert body["plant"]["served"] == {"passed": 1, "reachable": 0, "beyond": 0}
    assert body["plant"]["underserved"] == {"passed": 0, "reachable": 1, "beyond": 0}
    assert body["plant"]["unserved"] == {"passed": 0, "reachable": 1, "beyond": 0}
    assert body["availability_rows"] == 3 and body["numberMatched"] == 3
    rows = {x["location_id"]: x for x in body["locations"]}
    assert rows["A"]["passed"] is True and rows["B"]["distance_m"] == pytest.approx(300.118,
                                                                                     abs=0.01)
    near = client.post("/analysis/bead", files=_files(client), params={"reach_m": 200}).json()
    assert near["plant"]["underserved"] == {"passed": 0, "reachable": 0, "beyond": 1}


def test_bead_errors(client: TestClient) -> None:
    bad = client.post("/analysis/bead", files=_files(client, "C,50,fast,3,1,,,,,,\n"))
    assert bad.status_code == 422
    (err,) = bad.json()["errors"]
    assert err["field"] == "max_advertised_download_speed" and "line 5" in err["reason"]
    missing = client.post("/analysis/bead", files={"locations": _files(client)["locations"]})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "availability"
    wrong = client.post("/analysis/bead", content=b"{}",
                        headers={"content-type": "application/json"})
    assert wrong.status_code == 415


def test_bead_over_a_real_server(app: FastAPI, client: TestClient) -> None:
    files = _files(client)
    with LiveServer(app) as live:
        r = httpx.post(f"{live.url}/analysis/bead", files=files, timeout=60)
    assert r.status_code == 200 and r.json()["served"] == 1


def test_upload_limit(db_url: str) -> None:
    from netgis.api.app import create_app
    from netgis.io import read_dataset
    from tests.helpers import EXAMPLES_DIR

    small = create_app(make_settings(db_url, max_upload_bytes=300))
    with TestClient(small) as c:
        small.state.repo.load_dataset(read_dataset(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg"))
        r = c.post("/analysis/bead", files=_files(c))
        assert r.status_code == 413
