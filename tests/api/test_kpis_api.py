"""KPI feeds over HTTP: /kpis, /kpis.csv with ETag and 304, /metrics read by prometheus_client,
/kpis/history around a write, /kpis/goal, and a real uvicorn server scraped on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from netgis.api.app import create_app
from netgis.engine.analysis import analyze
from netgis.io import read_dataset
from netgis.products.feeds import PROMETHEUS_KPIS, kpi_rows, read_kpis_csv
from netgis.schema import AREA_KPIS, KPI_BY_NAME, NETWORK_KPIS
from netgis.storage import Repository
from tests.api.helpers import API_KEY, LiveServer, make_settings
from tests.api.test_service_metrics import promtool_check
from tests.helpers import EXAMPLES_DIR

KEY = {"X-API-Key": API_KEY}


def families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def sample_value(fams: dict[str, Any], family: str, sample: str, **labels: str) -> float:
    hits = [s.value for s in fams[family].samples
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(hits) == 1, (family, sample, labels, hits)
    return float(hits[0])


def add_units(client: TestClient, premise_id: str, extra: int) -> None:
    current = client.get(f"/collections/premises/items/{premise_id}").json()
    units = int(current["properties"]["units"])
    done = client.patch(f"/collections/premises/items/{premise_id}", headers=KEY,
                        json={"properties": {"units": units + extra}})
    assert done.status_code == 200, done.text


@pytest.fixture
def eager_client(db_url: str) -> Iterator[tuple[TestClient, Repository]]:
    """A client of an app taking a KPI snapshot of every change it reflects
    (``kpi_snapshot_interval_s=0``), its database holding the ring_spur example."""
    app = create_app(make_settings(db_url, kpi_snapshot_interval_s=0))
    with TestClient(app) as c:
        repo: Repository = app.state.repo
        repo.load_dataset(read_dataset(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg"))
        yield c, repo


def test_kpis_json_matches_the_analysis(client: TestClient, repo: Repository) -> None:
    got = client.get("/kpis")
    assert got.status_code == 200
    body = got.json()
    want = kpi_rows(analyze(repo.read_dataset()).kpis)
    assert body["data"] == want
    assert body["data_version"] == repo.data_version() == 1
    assert body["drop_m"] == 150.0 and body["generated_at"].endswith("Z")
    # and the stored dataset gives the reference answers of the example
    reference = kpi_rows(analyze(read_dataset(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg")).kpis)
    for row, ref in zip(body["data"], reference, strict=True):
        assert row.keys() == ref.keys()
        for key, value in ref.items():
            assert row[key] == (pytest.approx(value, rel=1e-9)
                                if isinstance(value, float) else value), key


def test_csv_round_trip_equals_json(client: TestClient) -> None:
    as_json = client.get("/kpis", params={"drop_m": 60}).json()
    as_csv = client.get("/kpis.csv", params={"drop_m": 60})
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert read_kpis_csv(as_csv.text) == as_json["data"]
    assert as_json["drop_m"] == 60.0


def test_etag_and_304(client: TestClient) -> None:
    first = client.get("/kpis")
    tag = first.headers["etag"]
    assert tag.startswith('W/"') and str(first.json()["data_version"]) in tag
    again = client.get("/kpis", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    # weak comparison: the tag without W/, in a list, or *
    bare = tag.removeprefix("W/")
    assert client.get("/kpis", headers={"If-None-Match": f'"x", {bare}'}).status_code == 304
    assert client.get("/kpis", headers={"If-None-Match": "*"}).status_code == 304
    assert client.get("/kpis", headers={"If-None-Match": '"other"'}).status_code == 200

    csv_tag = client.get("/kpis.csv").headers["etag"]
    assert csv_tag != tag
    assert client.get("/kpis.csv", headers={"If-None-Match": csv_tag}).status_code == 304
    # another drop length is another representation
    other = client.get("/kpis", params={"drop_m": 10}, headers={"If-None-Match": tag})
    assert other.status_code == 200 and other.headers["etag"] != tag

    add_units(client, "p_end", 3)
    after = client.get("/kpis", headers={"If-None-Match": tag})
    assert after.status_code == 200 and after.headers["etag"] != tag
    assert after.json()["data"][0]["units_total"] == first.json()["data"][0]["units_total"] + 3
    assert client.get("/kpis.csv", headers={"If-None-Match": csv_tag}).status_code == 200


def test_metrics_parsed_by_prometheus_client(client: TestClient) -> None:
    rows = client.get("/kpis").json()["data"]
    client.get("/kpis")
    client.get("/collections/premises/items/nope")
    scrape = client.get("/metrics")
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain; version=0.0.4")
    fams = families(scrape.text)
    for row in rows:
        for key, name, scale in (("coverage_pct", "netgis_coverage_ratio", 0.01),
                                 ("units_passed", "netgis_units_passed", 1),
                                 ("cable_km", "netgis_cable_meters", 1000)):
            got = [s.value for s in fams[name].samples
                   if s.labels.get("area_id") == row["area_id"]]
            assert got == [pytest.approx(row[key] * scale)]
    assert [s.value for s in fams["netgis_units"].samples if not s.labels] == \
        [rows[0]["units_total"]]
    assert sample_value(fams, "netgis_data_version", "netgis_data_version") == 1
    assert sample_value(fams, "netgis_kpis_up", "netgis_kpis_up") == 1
    # the service's own metrics: route templates, not raw paths
    requests = "netgis_http_requests_total"
    assert sample_value(fams, "netgis_http_requests", requests, method="GET", route="/kpis",
                        status="200") == 2
    assert sample_value(fams, "netgis_http_requests", requests, method="GET",
                        route="/collections/premises/items/{featureId}", status="404") == 1
    hist = "netgis_http_request_duration_seconds"
    assert sample_value(fams, hist, hist + "_count", method="GET", route="/kpis") == 2
    assert sample_value(fams, hist, hist + "_bucket", method="GET", route="/kpis",
                        le="+Inf") == 2
    assert sample_value(fams, hist, hist + "_sum", method="GET", route="/kpis") > 0


def test_each_app_counts_its_own_requests(db_url: str) -> None:
    from netgis.api.app import create_app

    one, two = create_app(make_settings(db_url)), create_app(make_settings(db_url))
    with TestClient(one) as a, TestClient(two) as b:
        a.get("/health")
        a.get("/health")
        b.get("/health")
        fa, fb = families(a.get("/metrics").text), families(b.get("/metrics").text)
    name = "netgis_http_requests_total"
    assert sample_value(fa, "netgis_http_requests", name, route="/health") == 2
    assert sample_value(fb, "netgis_http_requests", name, route="/health") == 1
    # an empty database has no KPIs yet but the scrape still works
    assert "netgis_coverage_ratio" not in fa or not fa["netgis_coverage_ratio"].samples


def test_edits_take_no_snapshot_within_the_interval_and_a_load_does(
        client: TestClient, repo: Repository) -> None:
    """Default interval (an hour): the load was snapshotted once reflected; edits are not."""
    assert [h["data_version"] for h in repo.kpi_history()] == [1]
    for extra in (1, 2, 3):
        add_units(client, "p_end", extra)
    assert client.get("/kpis").json()["data_version"] == 4
    assert [h["data_version"] for h in repo.kpi_history()] == [1]
    loaded = repo.load_dataset(read_dataset(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg"),
                               mode="upsert")
    assert [h["data_version"] for h in repo.kpi_history()] == [1, loaded.data_version]


def test_history_before_and_after_a_write(eager_client: tuple[TestClient, Repository]) -> None:
    client, repo = eager_client
    assert client.get("/kpis/history").json()["data"][0]["data_version"] == 1
    before = analyze(repo.read_dataset()).kpis
    add_units(client, "p_end", 5)
    # the write itself stored the snapshot of the new data, with no KPI request in between
    stored = repo.kpi_history()
    assert [h["data_version"] for h in stored] == [1, 2]
    after = analyze(repo.read_dataset()).kpis

    series = client.get("/kpis/history")
    assert series.status_code == 200
    data = series.json()["data"]
    assert [h["data_version"] for h in data] == [1, 2]
    assert data[0]["taken_at"] <= data[1]["taken_at"]
    assert data[0]["snapshot_id"] < data[1]["snapshot_id"]
    for snap, kpis in zip(data, (before, after), strict=True):
        assert {k: snap[k] for k in NETWORK_KPIS} == pytest.approx(kpis["network"], rel=1e-12)
    assert data[1]["units_total"] - data[0]["units_total"] == 5

    area = before["areas"][0]["area_id"]
    per_area = client.get("/kpis/history", params={"area_id": area}).json()
    assert [h["area_id"] for h in per_area["data"]] == [area, area]
    assert {k: per_area["data"][1][k] for k in AREA_KPIS} == pytest.approx(
        {k: after["areas"][0][k] for k in AREA_KPIS}, rel=1e-12)
    assert client.get("/kpis/history", params={"area_id": "nowhere"}).json()["data"] == []
    since = client.get("/kpis/history", params={"since": data[1]["taken_at"]}).json()["data"]
    assert [h["snapshot_id"] for h in since] == [data[1]["snapshot_id"]]
    # a date is its first instant (UTC)
    day = data[0]["taken_at"][:10]
    from_day = client.get("/kpis/history", params={"since": day})
    assert from_day.status_code == 200 and from_day.json()["data"] == data
    assert from_day.json()["since"] == f"{day}T00:00:00+00:00"
    next_day = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    assert client.get("/kpis/history", params={"since": next_day}).json()["data"] == []
    for bad in ("5787", "20260105", "2026-13-01", "yesterday"):
        refused = client.get("/kpis/history", params={"since": bad})
        assert refused.status_code == 400, bad
        assert "since" in refused.text
    # reading KPIs again at the same data version stores nothing new
    client.get("/kpis")
    client.get("/metrics")
    assert len(client.get("/kpis/history").json()["data"]) == 2


def test_failed_write_stores_no_snapshot(client: TestClient, repo: Repository) -> None:
    client.get("/kpis")
    bad = client.patch("/collections/premises/items/p_end", headers=KEY,
                       json={"properties": {"units": 0}})
    assert bad.status_code in (400, 422)
    assert [h["data_version"] for h in repo.kpi_history()] == [1]


def test_goal_view(client: TestClient, repo: Repository) -> None:
    client.get("/kpis")
    add_units(client, "p_end", 2)
    got = client.get("/kpis/goal", params={"target_pct": 95, "target_date": "2030-12-31",
                                           "as_of": "2026-06-30"})
    assert got.status_code == 200
    body = got.json()
    assert (body["target_pct"], body["target_date"], body["as_of"]) == \
        (95.0, "2030-12-31", "2026-06-30")
    rows = client.get("/kpis").json()["data"]
    months = (date(2030, 12, 31) - date(2026, 6, 30)).days / (365.2425 / 12)
    for goal, row in zip(body["data"], rows, strict=True):
        assert (goal["scope"], goal["area_id"]) == (row["scope"], row["area_id"])
        target = -(-95 * row["units_total"] // 100)
        assert goal["gap_units"] == max(0, target - row["units_passed"])
        assert goal["months_left"] == pytest.approx(months)
        if goal["gap_units"]:
            assert goal["required_units_per_month"] == pytest.approx(goal["gap_units"] / months)
    bad = client.get("/kpis/goal", params={"target_pct": 0})
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("application/problem+json")


def test_goal_pace_over_a_window_of_history(
        eager_client: tuple[TestClient, Repository]) -> None:
    client, repo = eager_client
    client.get("/kpis")
    add_units(client, "p_end", 2)
    # two snapshots seconds apart: no pace, and the answer says why
    today = datetime.now(UTC).date()
    body = client.get("/kpis/goal", params={"target_pct": 100}).json()
    assert body["window_days"] == 365 and body["min_span_days"] == 28
    network = body["data"][0]
    assert network["history_points"] == 2 and network["pace_snapshots"] == 2
    assert network["pace_units_per_month"] is None and network["projected_date"] is None
    assert network["pace_note"].startswith("Not enough history yet to estimate a pace")
    # older snapshots with fewer units passed: a pace over 60 days of history
    now = repo.kpi_history()[-1]
    current = client.get("/kpis").json()["data"][0]["units_passed"]
    for days_ago, fewer in ((200, 3), (60, 2), (30, 1)):
        past = {"network": {**{k: now[k] for k in NETWORK_KPIS},
                            "units_passed": current - fewer}, "areas": []}
        repo.save_kpi_snapshot(past, data_version=0,
                               taken_at=datetime.now(UTC) - timedelta(days=days_ago))
    series = repo.kpi_history()
    in_window = [h for h in series if h["taken_at"] > datetime.now(UTC) - timedelta(days=90)]
    t = np.asarray([(h["taken_at"] - in_window[0]["taken_at"]).total_seconds()
                    for h in in_window]) / 86400 / (365.2425 / 12)
    slope = np.polyfit(t, [h["units_passed"] for h in in_window], 1)[0]
    got = client.get("/kpis/goal", params={"target_pct": 100, "window_days": 90}).json()
    network = got["data"][0]
    assert got["window_days"] == 90 and network["pace_window_days"] == 90
    assert network["pace_snapshots"] == 4 and network["pace_note"] is None
    assert network["pace_units_per_month"] == pytest.approx(slope, rel=1e-6)
    assert network["pace_window_end"].startswith((today + timedelta(days=1)).isoformat())
    if network["gap_units"]:
        ahead = date.fromisoformat(network["projected_date"]) - today
        assert ahead.days == pytest.approx(network["gap_units"] / slope * 365.2425 / 12, abs=1)
    # the default window (365 days) also sees the snapshot of 200 days ago
    assert client.get("/kpis/goal").json()["data"][0]["pace_snapshots"] == 5
    assert client.get("/kpis/goal", params={"window_days": 0}).status_code == 400


def test_scrape_a_running_server(app: FastAPI) -> None:
    with LiveServer(app) as server:
        repo: Repository = app.state.repo
        repo.load_dataset(read_dataset(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg"))
        with httpx.Client(base_url=server.url, timeout=120) as http:
            kpis = http.get("/kpis").json()
            scrape = http.get("/metrics")
    assert scrape.status_code == 200
    fams = families(scrape.text)
    # docs/spec.md §3.7: every KPI in base units, network samples without labels
    for kpi in PROMETHEUS_KPIS:
        samples = {s.labels.get("area_id"): s for s in fams[kpi.name].samples}
        for row in kpis["data"]:
            if row[kpi.key] is None:
                assert row["area_id"] not in samples
                continue
            sample = samples[row["area_id"]]
            want = {} if row["area_id"] is None else {"area_id": row["area_id"],
                                                      "area_name": row["name"]}
            assert sample.labels == want
            scale = {"%": 1 / 100, "km": 1000}.get(KPI_BY_NAME[kpi.key].unit, 1)
            assert sample.value == pytest.approx(row[kpi.key] * scale, rel=1e-12)
    assert fams["netgis_coverage_ratio"].type == "gauge"
    assert "netgis_premises" in fams and "netgis_premises_total" not in fams
    assert sample_value(fams, "netgis_http_requests", "netgis_http_requests_total",
                        method="GET", route="/kpis", status="200") == 1
    # Prometheus's own linter passes the whole scrape, KPIs and service metrics alike
    promtool_check(scrape.text)


def test_goal_defaults_come_from_the_settings(tmp_path: Path) -> None:
    from netgis.api.app import create_app

    url = f"sqlite:///{tmp_path / 'goal.db'}"
    settings = make_settings(url, goal_coverage_pct=95.0, goal_date="2029-06-30")
    with TestClient(create_app(settings)) as client:
        body = client.get("/kpis/goal", params={"as_of": "2026-01-01"}).json()
        assert (body["target_pct"], body["target_date"]) == (95.0, "2029-06-30")
        asked = client.get("/kpis/goal", params={"target_pct": 80, "as_of": "2026-01-01"})
        assert asked.json()["target_pct"] == 80.0
