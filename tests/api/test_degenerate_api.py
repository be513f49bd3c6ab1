"""Networks that light nothing (or serve nobody) through every analysis endpoint.

The cases and their answers by the rule are in :mod:`tests.degenerate`; each is
loaded into a real SpatiaLite and PostGIS database (``db_url``) and asked
through the real app: /analysis/coverage, premises/{id}, serviceability,
criticality, scenarios and gaps, /kpis, /kpis.csv, /metrics, the maps and the
vector tiles. Every answer is a 200 (a 204 for an empty tile), never a 500.
"""

from __future__ import annotations

import math
from typing import Any

import mapbox_vector_tile
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pyproj import Transformer

from netgis.api.app import create_app
from netgis.products.feeds import PROMETHEUS_KPIS, read_kpis_csv
from netgis.schema import MAP_KINDS
from tests.api.helpers import API_KEY, make_settings
from tests.degenerate import CASE_IDS, CASES, FAR, NEAR_S1, Degenerate, close
from tests.netbuild import ORIGIN, UTM

TO_WGS84 = Transformer.from_crs(UTM, 4326, always_xy=True)
#: What every premise of these networks gets: nothing of them is passed (tests.degenerate).
UNSERVED = {"passed": False, "distance_m": None, "served_span_id": None,
            "span_protected": False, "node_protected": False, "duct_protected": False,
            "loss_db": None, "in_budget": False}


def lonlat(x: float, y: float) -> tuple[float, float]:
    lon, lat = TO_WGS84.transform(x + ORIGIN[0], y + ORIGIN[1])
    return float(lon), float(lat)


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    return (int((lon + 180) / 360 * n),
            int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n))


@pytest.fixture(params=CASES, ids=CASE_IDS)
def case(request: pytest.FixtureRequest) -> Degenerate:
    value: Degenerate = request.param
    return value


@pytest.fixture
def client(db_url: str, case: Degenerate) -> Any:
    app: FastAPI = create_app(make_settings(db_url))
    with TestClient(app) as c:
        app.state.repo.load_dataset(case.dataset())
        yield c


def same_kpis(got: dict[str, Any], want: dict[str, Any]) -> None:
    for key, value in want.items():
        assert close(key, got[key], value), (key, got[key], value)


def test_coverage_and_kpi_feeds(client: TestClient, case: Degenerate) -> None:
    body = client.get("/analysis/coverage").json()
    same_kpis(body["network"], case.network_kpis())
    assert len(body["areas"]) == len(case.area_kpis())
    for got, want in zip(body["areas"], case.area_kpis(), strict=True):
        same_kpis(got, want)
    feed = client.get("/kpis")
    assert feed.status_code == 200
    same_kpis(feed.json()["data"][0], case.network_kpis())
    table = client.get("/kpis.csv")
    assert table.status_code == 200
    row = read_kpis_csv(table.text)[0]
    for key, value in case.network_kpis().items():
        got = float(row[key]) if isinstance(value, float) and row[key] is not None else row[key]
        assert close(key, got, value), (key, row[key], value)
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    samples = dict(line.rsplit(" ", 1) for line in metrics.text.splitlines()
                   if line.startswith("netgis_") and "{" not in line)
    for kpi in PROMETHEUS_KPIS:
        value = case.network_kpis()[kpi.key]
        if value is None:  # a null KPI has no sample (never NaN)
            assert kpi.name not in samples, kpi.name
        else:
            assert float(samples[kpi.name]) == pytest.approx(kpi.to_base(value), rel=0.01)


def test_each_premise_and_a_location_beside_the_plant(client: TestClient,
                                                      case: Degenerate) -> None:
    for premise_id in case.units():
        response = client.get(f"/analysis/premises/{premise_id}")
        assert response.status_code == 200, response.text
        props = response.json()["properties"]
        assert {k: props[k] for k in UNSERVED} == UNSERVED
    near = client.get("/analysis/serviceability", params=dict(zip(
        ("lon", "lat"), lonlat(*NEAR_S1), strict=True)))
    assert near.status_code == 200, near.text
    answer = near.json()
    assert answer["passed"] is ("s1" in case.lit)
    # no lit span at all: no distance to tell, no loss
    assert (answer["distance_m"] is None) is (not case.lit)
    assert answer["in_budget"] is ("s1" in case.lit)
    far = client.get("/analysis/serviceability", params=dict(zip(
        ("lon", "lat"), lonlat(*FAR), strict=True))).json()
    assert far["passed"] is False and far["loss_db"] is None


def test_criticality_scenarios_and_gaps(client: TestClient, case: Degenerate) -> None:
    for layer in ("spans", "nodes"):
        ranked = client.get("/analysis/criticality", params={"layer": layer})
        assert ranked.status_code == 200, ranked.text
        assert ranked.json()["numberMatched"] == 0  # no cut or failure costs anybody
    spans = [s[0] for s in case.spans]
    what_if = client.post("/analysis/scenarios", headers={"X-API-Key": API_KEY}, json={
        "spans": spans, "nodes": ["B"], "optics": {"pon_class": "gpon-c+"}})
    assert what_if.status_code == 200, what_if.text
    body = what_if.json()
    assert (body["impacted_premises"], body["impacted_units"]) == (0, 0)
    assert (body["failed_spans"], body["failed_nodes"]) == (sorted(spans), ["B"])
    optics = body["optics"]
    assert (optics["units_in_budget_before"], optics["units_in_budget_after"],
            optics["entering"], optics["leaving"]) == (0, 0, [], [])
    hexagons = client.get("/analysis/gaps")
    assert hexagons.status_code == 200, hexagons.text
    units = case.units()
    cells = [f["properties"] for f in hexagons.json()["features"]]
    assert sum(c["units"] for c in cells) == sum(units.values())
    assert sum(c["premises"] for c in cells) == len(units)
    clusters = client.get("/analysis/gaps", params={"view": "clusters"})
    assert clusters.status_code == 200, clusters.text
    assert all(f["properties"]["join_span_id"] is None
               for f in clusters.json()["features"])


def test_maps_and_tiles(client: TestClient, case: Degenerate) -> None:
    for kind in MAP_KINDS:
        page = client.get(f"/maps/{kind}")
        assert page.status_code == 200, (kind, page.text[:500])
        assert page.headers["content-type"].startswith("text/html")
    for layer in ("nodes", "spans", "premises"):
        assert client.get(f"/tiles/{layer}.json").status_code == 200
    x, y = tile_of(*lonlat(*NEAR_S1), 14)
    for layer, rows in (("premises", {str(p[0]) for p in case.premises}),
                        ("spans", {str(s[0]) for s in case.spans})):
        tile = client.get(f"/tiles/{layer}/14/{x}/{y}.mvt")
        if not rows:
            assert tile.status_code == 204
            continue
        assert tile.status_code == 200, tile.text
        features = mapbox_vector_tile.decode(tile.content)[layer]["features"]
        props = {f["properties"]["premise_id" if layer == "premises" else "span_id"]:
                 f["properties"] for f in features}
        # the tile holds the drawing near s1: every span, and every premise but the far one
        if layer == "spans":
            assert {s: p["lit"] for s, p in props.items()} == {s: s in case.lit for s in rows}
        else:
            assert set(props) == rows - {p for p in rows if _is_far(case, p)}
            assert all(p["passed"] is False for p in props.values())


def _is_far(case: Degenerate, premise_id: str) -> bool:
    return any(p[0] == premise_id and (p[1], p[2]) == FAR for p in case.premises)
