"""Optical reach over the API on the optical_ring example (its README has the answers)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from netgis.api.app import create_app
from netgis.geodesy import WGS84, transform_geoms
from netgis.io import read_dataset
from netgis.storage import Repository
from tests.api.helpers import API_KEY, make_settings
from tests.helpers import EXAMPLES_DIR

OPTICAL = EXAMPLES_DIR / "optical_ring"


@pytest.fixture
def optical(db_url: str) -> Iterator[TestClient]:
    app: FastAPI = create_app(make_settings(db_url))
    with TestClient(app) as c:
        repo: Repository = app.state.repo
        repo.load_dataset(read_dataset(OPTICAL / "dataset.gpkg"))
        yield c


def _expected() -> dict[str, dict[str, str]]:
    with (OPTICAL / "expected" / "premises.csv").open() as fh:
        return {r["premise_id"]: r for r in csv.DictReader(fh)}


def test_premise_endpoint_carries_loss_and_its_breakdown(optical: TestClient) -> None:
    for pid, row in _expected().items():
        body = optical.get(f"/analysis/premises/{pid}").json()
        props = body["properties"]
        assert props["loss_db"] == pytest.approx(float(row["loss_db"]), abs=0.02), pid
        assert props["in_budget"] == (row["in_budget"] == "true")
        assert props["margin_db"] == pytest.approx(28.0 - props["loss_db"])
        loss = props["loss"]
        assert loss["fixed_db"] + loss["fiber_db"] + loss["splice_db"] + loss["splitter_db"] \
            == pytest.approx(props["loss_db"], abs=1e-6)
    behind = optical.get("/analysis/premises/p_behind_1x16").json()["properties"]["loss"]
    # the longer way C-F-D skips the 1:4 at A: only the 1:16 at D on the path
    assert [s["node_id"] for s in behind["splitters"]] == ["D"] and behind["path"] == ["F", "D"]


def test_serviceability_answers_with_optics(optical: TestClient) -> None:
    prem = read_dataset(OPTICAL / "dataset.gpkg").premises
    at = prem[prem["premise_id"] == "p_too_far"]
    lon, lat = transform_geoms(at.geometry.to_numpy(), at.crs, WGS84)[0].coords[0]
    body = optical.get("/analysis/serviceability", params={"lon": lon, "lat": lat}).json()
    assert body["passed"] and not body["in_budget"] and body["budget_db"] == 28.0
    assert body["loss_db"] == pytest.approx(28.5824, abs=0.02) and body["margin_db"] < 0
    assert body["loss"]["splitters"][0]["ratio"] == 16
    cplus = optical.get("/analysis/serviceability",
                        params={"lon": lon, "lat": lat, "pon_class": "gpon-c+"}).json()
    assert cplus["in_budget"] and cplus["budget_db"] == 32.0
    bad = optical.get("/analysis/serviceability",
                      params={"lon": lon, "lat": lat, "pon_class": "gpon-z"})
    assert bad.status_code == 400 and "pon_class" in bad.text


def test_coverage_kpis_follow_the_parameters(optical: TestClient) -> None:
    base = optical.get("/analysis/coverage").json()["network"]
    assert base["units_in_budget"] == 5 and base["budget_coverage_pct"] == pytest.approx(83.333,
                                                                                        abs=0.01)
    loose = optical.get("/analysis/coverage", params={"budget_db": 29}).json()["network"]
    assert loose["units_in_budget"] == 6


def test_scenario_what_if_on_optics(optical: TestClient) -> None:
    out = optical.post("/analysis/scenarios",
                       json={"optics": {"pon_class": "gpon-c+", "split_ratios": {"D": 64}}})
    assert out.status_code == 200, out.text
    optics = out.json()["optics"]
    # D from 1:16 to 1:64 adds 6.8 dB: p_tight (27.88 dB) leaves even a C+ budget (32 dB)
    assert optics["leaving"] == ["p_tight"] and optics["budget_db"] == 32.0
    assert (optics["units_in_budget_before"], optics["units_in_budget_after"]) == (5, 4)
    assert optics["warnings"] == []
    bad = optical.post("/analysis/scenarios", json={"optics": {"split_ratios": {"D": 3}}})
    assert bad.status_code == 422 and "split_ratio" in bad.text


@pytest.mark.parametrize(("node", "reason"), [("G", "not a splitter (kind cabinet)"),
                                              ("B", "not a splitter (kind splice)"),
                                              ("nope", "no such node")])
def test_scenario_split_of_a_node_that_is_no_splitter(optical: TestClient, node: str,
                                                      reason: str) -> None:
    bad = optical.post("/analysis/scenarios", json={"optics": {"split_ratios": {node: 4}}})
    assert bad.status_code == 422, bad.text
    assert bad.headers["content-type"] == "application/problem+json"
    assert [(e["id"], e["reason"].startswith(reason)) for e in bad.json()["errors"]] == [
        (node, True)]


def test_scenario_split_of_a_splitter_serving_nobody_warns(optical: TestClient) -> None:
    # a new splitter with no span: nobody's light passes it
    added = optical.post("/collections/nodes/items", headers={"X-API-Key": API_KEY}, json={
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [8.7, 50.1]},
        "properties": {"node_id": "X", "kind": "splitter", "split_ratio": 8}})
    assert added.status_code == 201, added.text
    out = optical.post("/analysis/scenarios", json={"optics": {"split_ratios": {"X": 64,
                                                                                "A": 8}}})
    assert out.status_code == 200, out.text
    optics = out.json()["optics"]
    assert [(w["id"], w["field"]) for w in optics["warnings"]] == [("X", "split_ratio")]
    assert "serves no passed premise" in optics["warnings"][0]["reason"]
    unknown = optical.post("/analysis/scenarios", json={"optics": {"budget": 30}})
    assert unknown.status_code == 422 and "budget" in unknown.text


def test_feeds_carry_the_budget_kpis(optical: TestClient) -> None:
    kpis = optical.get("/kpis").json()
    assert json.dumps(kpis).count("units_in_budget") >= 1
    text = optical.get("/metrics").text
    names = {f.name for f in text_string_to_metric_families(text)}
    assert any("in_budget" in n for n in names) and any("budget_coverage" in n for n in names)


def test_split_ratio_through_the_collections(optical: TestClient) -> None:
    node = optical.get("/collections/nodes/items/D").json()
    assert node["properties"]["split_ratio"] == 16
    new = {"type": "Feature", "id": "X1", "geometry": node["geometry"],
           "properties": {"node_id": "X1", "kind": "splitter", "split_ratio": 32}}
    made = optical.post("/collections/nodes/items", json=new, headers={"X-API-Key": API_KEY})
    assert made.status_code == 201, made.text
    assert optical.get("/collections/nodes/items/X1").json()["properties"]["split_ratio"] == 32
    wrong = {**new, "id": "X2", "properties": {"node_id": "X2", "kind": "cabinet",
                                                "split_ratio": 8}}
    refused = optical.post("/collections/nodes/items", json=wrong,
                           headers={"X-API-Key": API_KEY})
    assert refused.status_code == 422 and "split_ratio" in refused.text
