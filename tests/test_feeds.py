"""KPI feeds: rows, CSV round trip, Prometheus text read by prometheus_client, goal view,
and `netgis kpis` (including snapshots around a write in SpatiaLite and PostGIS)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from netgis.errors import ValidationError
from netgis.products.feeds import (
    PROMETHEUS_KPIS,
    ROW_COLUMNS,
    Goal,
    goal_progress,
    kpi_rows,
    kpis_csv,
    metric_name,
    pace_over_window,
    prometheus_text,
    read_kpis_csv,
)
from netgis.schema import AREA_KPIS, KPI_FIELDS, NETWORK_KPIS
from tests.helpers import EXAMPLES_DIR, PostgresDatabases

RING_SPUR = EXAMPLES_DIR / "ring_spur" / "dataset.gpkg"
EXPECTED = json.loads((EXAMPLES_DIR / "ring_spur" / "expected" / "kpis.json").read_text())
# ring_spur was drawn before optical reach; its reference has no budget KPIs: every one of
# its passed premises is within 28 dB (short spans, no splitter), so they equal units_passed
for _scope in (EXPECTED["network"], *EXPECTED["areas"]):
    _scope["units_in_budget"] = _scope["units_passed"]
    _scope["budget_coverage_pct"] = _scope["coverage_pct"]
REPO_ROOT = Path(__file__).parents[1]


def samples_by_name(text: str) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


# ---------------------------------------------------------------------------------- rows


def test_rows_follow_the_kpis_object() -> None:
    rows = kpi_rows(EXPECTED)
    assert [r["scope"] for r in rows] == ["network"] + ["area"] * len(EXPECTED["areas"])
    assert [r["area_id"] for r in rows] == [None] + [a["area_id"] for a in EXPECTED["areas"]]
    assert all(list(r) == list(ROW_COLUMNS) for r in rows)
    assert {k: rows[0][k] for k in NETWORK_KPIS} == EXPECTED["network"]
    for row, area in zip(rows[1:], EXPECTED["areas"], strict=True):
        assert row["name"] == area["name"]
        assert {k: row[k] for k in AREA_KPIS} == {k: area[k] for k in AREA_KPIS}
        assert row["spof_spans"] is None and row["spof_nodes"] is None


def test_rows_need_a_network() -> None:
    with pytest.raises(ValidationError) as err:
        kpi_rows({"areas": []})
    assert err.value.problems[0].field == "network"


# ----------------------------------------------------------------------------------- CSV


def test_csv_round_trip_of_the_reference_kpis() -> None:
    text = kpis_csv(EXPECTED)
    assert text.splitlines()[0] == ",".join(ROW_COLUMNS)
    assert len(text.splitlines()) == 1 + 1 + len(EXPECTED["areas"])
    assert read_kpis_csv(text) == kpi_rows(EXPECTED)


_floats = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False))
_ints = st.one_of(st.none(), st.integers(min_value=0, max_value=10**15))


def _kpi_values() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({f.name: _ints if f.type == "int" else _floats
                                  for f in KPI_FIELDS})


_text = st.text(st.characters(codec="utf-8"),
                min_size=1, max_size=12)


@st.composite
def kpi_objects(draw: st.DrawFn) -> dict[str, Any]:
    network = draw(_kpi_values())
    ids = draw(st.lists(_text, max_size=4, unique=True))
    areas = []
    for area_id in ids:
        values = draw(_kpi_values())
        areas.append({"area_id": area_id, "name": draw(st.one_of(st.none(), _text)),
                      **{k: values[k] for k in AREA_KPIS}})
    return {"network": network, "areas": areas}


@settings(max_examples=150, deadline=None)
@given(kpi_objects())
def test_csv_round_trip_keeps_every_value(kpis: dict[str, Any]) -> None:
    assert read_kpis_csv(kpis_csv(kpis)) == kpi_rows(kpis)


def test_csv_with_a_bad_number_names_the_cell() -> None:
    text = kpis_csv(EXPECTED).replace(",6,11,", ",6,eleven,", 1)
    with pytest.raises(ValidationError) as err:
        read_kpis_csv(text)
    assert [(p.id, p.field) for p in err.value.problems] == [("network", "units_total")]


def test_csv_without_a_column_is_refused() -> None:
    text = kpis_csv(EXPECTED).replace("coverage_pct,", "", 1)
    with pytest.raises(ValidationError) as err:
        read_kpis_csv(text)
    assert [p.field for p in err.value.problems] == ["coverage_pct"]


# ---------------------------------------------------------------------------- Prometheus


def test_prometheus_text_parsed_by_prometheus_client() -> None:
    text = prometheus_text(EXPECTED, data_version=7)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert set(families) == {p.name for p in PROMETHEUS_KPIS} | {"netgis_data_version"}
    # docs/spec.md §3.7: base units, counts without _total
    assert {"netgis_coverage_ratio", "netgis_route_meters", "netgis_premises", "netgis_units",
            "netgis_premises_passed", "netgis_spof_spans"} <= set(families)
    assert not any(name.endswith(("_pct", "_km", "_total")) for name in families)
    assert all(f.type == "gauge" for f in families.values())
    assert "coverage_pct" in families["netgis_coverage_ratio"].documentation
    cov = {s.labels.get("area_id"): s for s in families["netgis_coverage_ratio"].samples}
    # the network's sample has no label at all (no empty ones)
    assert cov[None].labels == {}
    assert cov[None].value == EXPECTED["network"]["coverage_pct"] / 100
    for area in EXPECTED["areas"]:
        sample = cov[area["area_id"]]
        assert sample.labels == {"area_id": area["area_id"], "area_name": area["name"]}
        assert sample.value == area["coverage_pct"] / 100
    route = {s.labels.get("area_id"): s.value for s in families["netgis_route_meters"].samples}
    assert route[None] == EXPECTED["network"]["route_km"] * 1000
    # spof KPIs exist for the network only
    assert [s.labels for s in families["netgis_spof_spans"].samples] == [{}]
    assert families["netgis_spof_spans"].samples[0].value == EXPECTED["network"]["spof_spans"]
    assert families["netgis_units"].samples[0].value == EXPECTED["network"]["units_total"]
    assert families["netgis_data_version"].samples[0].value == 7


def test_every_kpi_has_one_metric_derived_from_the_schema() -> None:
    assert [p.key for p in PROMETHEUS_KPIS] == list(NETWORK_KPIS)
    assert len({p.name for p in PROMETHEUS_KPIS}) == len(PROMETHEUS_KPIS)
    for field in KPI_FIELDS:
        name = metric_name(field.name)
        if field.unit == "%":
            assert name == "netgis_" + field.name.removesuffix("_pct") + "_ratio"
        elif field.unit == "km":
            assert name == "netgis_" + field.name.removesuffix("_km") + "_meters"
        else:
            assert name == "netgis_" + field.name.removesuffix("_total")


@settings(max_examples=150, deadline=None)
@given(kpi_objects())
def test_prometheus_values_and_labels_survive_parsing(kpis: dict[str, Any]) -> None:
    samples = samples_by_name(prometheus_text(kpis))
    for kpi in PROMETHEUS_KPIS:
        got = {(s.labels.get("area_id"), s.labels.get("area_name")): s.value
               for s in samples.get(kpi.name, [])}
        want = {(r["area_id"], None if r["scope"] == "network" else (r["name"] or "")):
                kpi.to_base(float(r[kpi.key])) for r in kpi_rows(kpis) if r[kpi.key] is not None}
        assert got == pytest.approx(want)
        # nulls are left out, never written as NaN
        assert not any(math.isnan(v) for v in got.values())


def test_null_kpis_give_no_sample() -> None:
    kpis = {"network": {"units_total": 0, "coverage_pct": None, "take_rate_pct": None}}
    samples = samples_by_name(prometheus_text(kpis))
    assert "netgis_coverage_ratio" not in samples and "netgis_take_rate_ratio" not in samples
    assert [s.value for s in samples["netgis_units"]] == [0]
    assert "NaN" not in prometheus_text(kpis)


def test_csv_writes_counts_as_integers() -> None:
    kpis = {"network": {"units_total": 12.0, "premises_total": 10, "coverage_pct": 50.0}}
    row = kpis_csv(kpis).splitlines()[1].split(",")
    cells = dict(zip(ROW_COLUMNS, row, strict=True))
    assert (cells["units_total"], cells["premises_total"], cells["coverage_pct"]) == \
        ("12", "10", "50.0")


# ----------------------------------------------------------------------------- goal view


def _hist(*points: tuple[str, int]) -> list[dict[str, Any]]:
    return [{"taken_at": f"{day}T00:00:00+00:00", "units_passed": u} for day, u in points]


def test_pace_is_the_least_squares_slope_per_month() -> None:
    # 0, 30, 60 units at day 0, 30.436875 and 60.87375 (exactly 0, 1 and 2 months apart)
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    month = timedelta(days=365.2425 / 12)
    day = date(2025, 3, 15)
    history = [{"taken_at": t0 + i * month, "units_passed": 30 * i} for i in range(3)]
    pace = pace_over_window(history, as_of=day)
    assert pace.units_per_month == pytest.approx(30.0, rel=1e-9)
    assert (pace.snapshots, pace.note, pace.window_days) == (3, None, 365)
    assert pace.span_days == pytest.approx(2 * 365.2425 / 12)
    assert pace.end == datetime(2025, 3, 16, tzinfo=UTC)
    assert pace.start == pace.end - timedelta(days=365)
    # a point off the line: slope of (0,0), (1,30), (2,30) is 15
    history[2]["units_passed"] = 30
    assert pace_over_window(history, as_of=day).units_per_month == pytest.approx(15.0, rel=1e-9)


def test_pace_needs_history_spread_over_time() -> None:
    t0 = datetime(2025, 6, 1, tzinfo=UTC)
    day = date(2025, 12, 1)
    one = pace_over_window([{"taken_at": t0, "units_passed": 1}], as_of=day)
    assert one.units_per_month is None
    assert one.note == ("Not enough history yet to estimate a pace: needs at least 2 KPI "
                        "snapshots in the 365 days up to 2025-12-01, has 1")
    # a load and a fix seconds apart: no pace, however steep the jump
    seconds = [{"taken_at": t0, "units_passed": 1},
               {"taken_at": t0 + timedelta(seconds=5), "units_passed": 500}]
    close = pace_over_window(seconds, as_of=day)
    assert close.units_per_month is None and close.snapshots == 2
    assert close.note == ("Not enough history yet to estimate a pace: needs 28 days of KPI "
                          "snapshots, has less than a day")
    twelve = pace_over_window([seconds[0], {"taken_at": t0 + timedelta(days=12, hours=3),
                                            "units_passed": 9}], as_of=day)
    assert twelve.note == ("Not enough history yet to estimate a pace: needs 28 days of KPI "
                           "snapshots, has 12 days")
    assert pace_over_window(seconds, as_of=day, min_span_days=0).units_per_month is not None
    # snapshots before the window, or after the day asked for, do not count
    old = [{"taken_at": t0 - timedelta(days=400), "units_passed": 0},
           {"taken_at": t0, "units_passed": 10}, {"taken_at": t0 + timedelta(days=60),
                                                   "units_passed": 20}]
    assert pace_over_window(old, as_of=day).snapshots == 2
    assert pace_over_window(old, as_of=day, window_days=600).snapshots == 3
    assert pace_over_window(old, as_of=date(2025, 7, 1)).snapshots == 1
    with pytest.raises(ValidationError, match="window_days"):
        pace_over_window(old, as_of=day, window_days=0)


def test_goal_progress_per_scope() -> None:
    kpis = {"network": {"units_total": 200, "units_passed": 150, "coverage_pct": 75.0},
            "areas": [{"area_id": "done", "name": "Done", "units_total": 50, "units_passed": 50,
                       "coverage_pct": 100.0},
                      {"area_id": "slow", "name": "Slow", "units_total": 100,
                       "units_passed": 40, "coverage_pct": 40.0},
                      {"area_id": "empty", "name": None, "units_total": 0, "units_passed": 0,
                       "coverage_pct": None}]}
    as_of = date(2026, 1, 1)
    goal = Goal(90.0, date(2027, 1, 1))   # 365 days = 11.992 months
    months = 365 / (365.2425 / 12)
    history = {None: _hist(("2025-01-01", 120), ("2026-01-01", 150)),
               "slow": _hist(("2025-01-01", 40), ("2026-01-01", 40))}
    out = {g["area_id"]: g for g in goal_progress(kpis, goal=goal, as_of=as_of,
                                                  history=history, window_days=366)}
    net = out[None]
    assert net["target_units"] == 180 and net["gap_units"] == 30
    assert net["months_left"] == pytest.approx(months)
    assert net["required_units_per_month"] == pytest.approx(30 / months)
    assert net["pace_units_per_month"] == pytest.approx(30 / months)
    assert net["on_track"] is True and net["history_points"] == 2
    assert net["projected_coverage_pct"] == pytest.approx(90.0)
    # 30 units to go at 30 units a year: a year after as_of
    assert net["projected_date"] == "2027-01-01"
    assert (net["pace_window_days"], net["pace_snapshots"]) == (366, 2)
    assert net["pace_window_end"] == "2026-01-02T00:00:00+00:00"
    assert out["done"]["gap_units"] == 0 and out["done"]["on_track"] is True
    assert out["done"]["required_units_per_month"] == 0.0
    assert out["done"]["pace_units_per_month"] is None
    slow = out["slow"]
    assert slow["gap_units"] == 50 and slow["pace_units_per_month"] == 0.0
    assert slow["on_track"] is False and slow["projected_coverage_pct"] == 40.0
    assert slow["projected_date"] is None
    assert out["empty"]["on_track"] is None and out["empty"]["gap_units"] == 0
    assert [g["scope"] for g in out.values()] == ["network", "area", "area", "area"]


def test_goal_without_history_or_after_the_deadline() -> None:
    kpis = {"network": {"units_total": 10, "units_passed": 3, "coverage_pct": 30.0}}
    fresh = goal_progress(kpis, goal=Goal(100.0, date(2030, 12, 31)), as_of=date(2026, 1, 1))[0]
    assert fresh["on_track"] is None and fresh["pace_units_per_month"] is None
    assert fresh["gap_units"] == 7 and fresh["target_date"] == "2030-12-31"
    late = goal_progress(kpis, goal=Goal(100.0, date(2025, 1, 1)), as_of=date(2026, 1, 1))[0]
    assert late["on_track"] is False and late["required_units_per_month"] is None


@pytest.mark.parametrize("pct", [0.0, -5.0, 100.5, float("nan")])
def test_goal_target_must_be_a_percentage(pct: float) -> None:
    with pytest.raises(ValidationError) as err:
        Goal(pct)
    assert err.value.problems[0].field == "target_pct"


# --------------------------------------------------------------------------- command line


class Ran:
    """What a command printed and returned."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def _netgis(*args: str, env: dict[str, str] | None = None) -> Ran:
    """The real typer app, run in this process (a fresh interpreter per call costs seconds)."""
    from typer.testing import CliRunner

    from netgis.cli import app

    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    return Ran(result.exit_code, result.stdout, result.stderr)


def test_entry_point_refuses_unknown_format() -> None:
    done = subprocess.run([sys.executable, "-m", "netgis.cli", "kpis", str(RING_SPUR),
                           "--format", "xml"], capture_output=True, text=True, cwd=REPO_ROOT,
                          env=dict(os.environ), timeout=300, check=False)
    assert done.returncode == 2 and "--format" in done.stderr and done.stdout == ""


@pytest.fixture(scope="module")
def ring_spur_kpis() -> dict[str, Any]:
    from netgis.engine.analysis import analyze
    from netgis.io import read_dataset

    kpis: dict[str, Any] = analyze(read_dataset(RING_SPUR)).kpis
    return kpis


def test_cli_formats_agree_with_the_analysis(ring_spur_kpis: dict[str, Any]) -> None:
    as_json = _netgis("kpis", str(RING_SPUR))
    assert as_json.returncode == 0, as_json.stderr
    body = json.loads(as_json.stdout)
    assert body["data"] == kpi_rows(ring_spur_kpis) and body["data_version"] is None
    as_csv = _netgis("kpis", str(RING_SPUR), "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    assert read_kpis_csv(as_csv.stdout) == kpi_rows(ring_spur_kpis)
    as_prom = _netgis("kpis", str(RING_SPUR), "--format", "prom", "--drop-m", "1")
    assert as_prom.returncode == 0, as_prom.stderr
    cov = samples_by_name(as_prom.stdout)["netgis_coverage_ratio"]
    # with a 1 m drop no premise of the example is passed
    assert [s.value for s in cov if not s.labels] == [0.0]


@pytest.fixture(params=["spatialite", pytest.param("postgis", marks=pytest.mark.postgis)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "spatialite":
        yield f"sqlite:///{tmp_path / 'feeds.db'}"
        return
    # PostgreSQL down is a failure, never a skip
    dbs: PostgresDatabases = request.getfixturevalue("pg_databases")
    url = dbs.create(prefix="netgis_feeds_test")
    try:
        yield url
    finally:
        dbs.drop(url)


def test_cli_snapshots_around_a_write(database_url: str) -> None:
    from netgis.engine.analysis import analyze
    from netgis.io import read_dataset
    from netgis.storage import Repository

    repo = Repository.from_url(database_url)
    try:
        repo.init()
        repo.load_dataset(read_dataset(RING_SPUR))
        env = {"NETGIS_DATABASE_URL": database_url}
        first = _netgis("kpis", "snapshot", env=env)
        assert first.returncode == 0, first.stderr
        before = analyze(repo.read_dataset()).kpis
        units = int(repo.get_item("premises", "p_end")["units"].iat[0])
        repo.patch_item("premises", "p_end", {"units": units + 4})
        second = _netgis("kpis", "snapshot", env=env)
        assert second.returncode == 0, second.stderr
        after = analyze(repo.read_dataset()).kpis

        history = repo.kpi_history()
        assert [h["snapshot_id"] for h in history] == [json.loads(first.stdout)["snapshot_id"],
                                                       json.loads(second.stdout)["snapshot_id"]]
        assert [h["data_version"] for h in history] == [1, 2]
        assert history[0]["taken_at"] <= history[1]["taken_at"]
        for snap, kpis in zip(history, (before, after), strict=True):
            assert {k: snap[k] for k in NETWORK_KPIS} == pytest.approx(kpis["network"])
        assert history[1]["units_total"] == history[0]["units_total"] + 4
        area = EXPECTED["areas"][0]["area_id"]
        area_history = repo.kpi_history(area_id=area)
        assert [h["area_id"] for h in area_history] == [area, area]
        assert {k: area_history[1][k] for k in AREA_KPIS} == pytest.approx(
            {k: next(a for a in after["areas"] if a["area_id"] == area)[k] for k in AREA_KPIS})
        from_db = _netgis("kpis", "--db", "--format", "csv", env=env)
        assert from_db.returncode == 0, from_db.stderr
        assert read_kpis_csv(from_db.stdout)[0]["units_total"] == history[1]["units_total"]
    finally:
        repo.engine.dispose()


def test_prometheus_help_states_the_formula_in_the_gauges_unit() -> None:
    """A _ratio gauge's HELP has no "100 *" nor percent, a _meters one no km: the text and
    the value (0.93, 1234.5) speak of one unit."""
    run = subprocess.run([sys.executable, "-m", "netgis.cli", "kpis",
                          str(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg"), "--format", "prom"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    helps = dict(line.removeprefix("# HELP ").split(" ", 1) for line in run.stdout.splitlines()
                 if line.startswith("# HELP "))
    values = {f.name: [s.value for s in f.samples]
              for f in text_string_to_metric_families(run.stdout)}
    ratios = [n for n in helps if n.endswith("_ratio")]
    meters = [n for n in helps if n.endswith("_meters")]
    assert len(ratios) == sum(f.unit == "%" for f in KPI_FIELDS) and len(meters) == 3
    for name in ratios:
        formula, unit = helps[name].split(" (KPI ")
        assert "100" not in formula and "%" not in formula, helps[name]
        assert "percent" not in formula.lower(), helps[name]
        assert unit.endswith("unit: ratio 0..1)."), helps[name]
        assert all(0.0 <= v <= 1.0 for v in values[name]), (name, values[name])
    for name in meters:
        formula, unit = helps[name].split(" (KPI ")
        assert " km" not in formula and "kilomet" not in formula, helps[name]
        assert unit.endswith("unit: meters)."), helps[name]
    assert helps["netgis_coverage_ratio"].startswith("Coverage: units passed / units total ")
