"""The dashboard's numbers and summary (netgis.products.progress) and `netgis report` from a dataset
file and from a database with a KPI history."""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from netgis.engine.analysis import analyze
from netgis.errors import NotFoundError
from netgis.io import read_dataset
from netgis.products.feeds import Goal, pace_over_window
from netgis.products.progress import Dashboard, build_dashboard, chart_specs, summary
from netgis.storage import Repository
from tests.helpers import EXAMPLES_DIR

RING_SPUR = EXAMPLES_DIR / "ring_spur" / "dataset.gpkg"


def _board(history: list[dict[str, Any]], *, now: float = 93.5, gap: int = 65,
           pace: float | None = 1.2, projected: str | None = "2030-06-01",
           note: str | None = None, source: str = "database") -> Dashboard:
    return Dashboard(
        kpis={"coverage_pct": now, "units_passed": 935, "units_total": 1000}, areas=[],
        history=history, spofs=[], builds=[], as_of="2026-09-30", generated_at="",
        goal={"target_pct": 100.0, "target_date": "2027-12-31", "gap_units": gap,
              "pace_units_per_month": pace, "projected_date": projected,
              "pace_window_days": 365, "pace_note": note, "pace_snapshots": len(history)},
        history_source=source)


MARCH = [{"taken_at": "2026-03-02T10:00:00+00:00", "coverage_pct": 91.2},
         {"taken_at": "2026-09-01T10:00:00+00:00", "coverage_pct": 93.5}]


def test_summary_in_plain_words() -> None:
    assert summary(_board(MARCH)) == (
        "Coverage of the network rose from 91.2 % to 93.5 % since March 2026 (935 of 1000 "
        "units passed). At the pace of the last 365 days (1.2 units a month), 100 % is "
        "reached in 2030, 3 years after the goal (2027-12-31).")
    early = summary(_board(MARCH, projected="2026-12-01"))
    assert early.endswith("100 % is reached in 2026, one year before the goal (2027-12-31).")
    fell = summary(_board(MARCH, now=90.0, pace=-2.0, projected=None))
    assert "fell from 91.2 % to 90.0 %" in fell and fell.endswith("100 % is never reached.")
    assert summary(_board(MARCH, gap=0)).endswith("The target of 100 % is reached.")
    twice = [{**MARCH[1], "units_passed": 935}] * 2  # two snapshots of one moment
    note = pace_over_window(twice, as_of=date(2026, 9, 30)).note
    waiting = summary(_board(MARCH[:1], pace=None, projected=None, note=note))
    assert ("(935 of 1000 units passed). Not enough history yet to estimate a pace: needs 28 "
            "days of KPI snapshots, has less than a day. The goal is 100 % by 2027-12-31.") \
        in waiting


def test_summary_of_a_dataset_file_says_there_is_no_history() -> None:
    text = summary(_board([], pace=None, projected=None, source="none"))
    assert text.startswith("Coverage of the network is 93.5 % (935 of 1000 units passed).")
    assert "There is no KPI history: this report was made from a dataset file" in text


def test_board_of_an_area_has_that_area_only() -> None:
    result = analyze(read_dataset(RING_SPUR))
    area = result.kpis["areas"][0]
    board = build_dashboard(result, area_id=str(area["area_id"]), as_of=date(2026, 1, 1))
    assert board.kpis == area and board.areas == [area]
    assert board.goal["units_passed"] == area["units_passed"]
    whole = build_dashboard(result, as_of=date(2026, 1, 1))
    assert whole.kpis["coverage_pct"] == result.kpis["network"]["coverage_pct"]
    # the area's single points of failure are among the network's
    assert {(s["kind"], s["id"]) for s in board.spofs} <= {
        (s["kind"], s["id"]) for s in whole.spofs}
    spans = result.spans.set_index("span_id")
    for s in whole.spofs:
        if s["kind"] == "span":
            assert s["units"] == spans.loc[s["id"], "cut_units"]
    assert [s["units"] for s in whole.spofs] == sorted((s["units"] for s in whole.spofs),
                                                       reverse=True)
    with pytest.raises(NotFoundError):
        build_dashboard(result, area_id="nowhere")
    # every chart has a description for screen readers and Okabe-Ito colours only
    specs = chart_specs(whole)
    assert all(spec["description"] for spec in specs.values())
    assert all(spec["usermeta"]["embedOptions"]["actions"] is False for spec in specs.values())


def _netgis(*args: str, env: dict[str, str] | None = None) -> Any:
    from typer.testing import CliRunner

    from netgis.cli import app

    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def _values(html: str, table: str) -> list[list[float]]:
    body = re.search(rf'<table id="table-{table}">(.*?)</table>', html, re.S)
    assert body is not None
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body.group(1), re.S)
    return [[float(v) for v in re.findall(r'data-value="([^"]+)"', r)] for r in rows
            if "data-value" in r]


def test_cli_report_of_a_dataset_file(tmp_path: Path) -> None:
    out = tmp_path / "council" / "report.html"
    ran = _netgis("report", str(RING_SPUR), "--out", str(out))
    assert ran.exit_code == 0, ran.stderr
    told = json.loads(ran.stdout)
    assert told["out"] == str(out) and told["pdf"] is None and told["data_version"] is None
    html = out.read_text(encoding="utf-8")
    assert "There is no KPI history" in told["summary"] and told["summary"] in html
    kpis = analyze(read_dataset(RING_SPUR)).kpis
    assert _values(html, "areas") == [
        [a["coverage_pct"], a["units_passed"], a["units_total"], a["span_protected_pct"],
         a["node_protected_pct"], a["duct_protected_pct"]] for a in kpis["areas"]]
    assert "<script" not in html and html.count("<svg") >= 5


def test_cli_report_of_an_unknown_area_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from netgis.cli import main

    monkeypatch.setattr(sys, "argv", ["netgis", "report", str(RING_SPUR), "--out",
                                      str(tmp_path / "x.html"), "--area-id", "nowhere"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 2 and "nowhere" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cli_report_from_the_database_has_the_history(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'report.db'}"
    with Repository.from_url(url) as repo:
        repo.init()
        repo.load_dataset(read_dataset(RING_SPUR))
        kpis = analyze(repo.read_dataset()).kpis
        for days, fewer in ((200, 3), (100, 1)):
            past = {"network": {**kpis["network"],
                                "units_passed": kpis["network"]["units_passed"] - fewer,
                                "coverage_pct": 100.0 * (kpis["network"]["units_passed"] - fewer)
                                / kpis["network"]["units_total"]}, "areas": []}
            repo.save_kpi_snapshot(past, data_version=1,
                                   taken_at=datetime.now(UTC) - timedelta(days=days))
        repo.save_kpi_snapshot(kpis, data_version=1)
        history = repo.kpi_history()
    out = tmp_path / "report.html"
    ran = _netgis("report", "--db", "--out", str(out), "--goal-date", "2027-06-30",
                  env={"NETGIS_DATABASE_URL": url})
    assert ran.exit_code == 0, ran.stderr
    told = json.loads(ran.stdout)
    html = out.read_text(encoding="utf-8")
    assert told["data_version"] == 1
    assert [r[0] for r in _values(html, "coverage")] == [h["coverage_pct"] for h in history]
    goal = Goal(100.0, date(2027, 6, 30))
    board = build_dashboard(analyze(read_dataset(RING_SPUR)), history=history, goal=goal)
    assert told["summary"] == summary(board)
    assert "rose from" in told["summary"] and "units a month" in told["summary"]
