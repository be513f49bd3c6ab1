"""A new installation backfills its coverage history (``netgis kpis backfill``, the real
command in a subprocess) and its server shows it: the KPI history feed marks the estimated
points, and the dashboard, in headless Chromium, draws them as a dashed segment before the
measured snapshot, with "Estimated from install_year" in the legend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from netgis.api.app import create_app
from netgis.generate import generate_city
from netgis.storage import Repository
from tests.api.helpers import LiveServer, make_settings
from tests.maps.helpers import dashboard_marks


@dataclass(frozen=True)
class Installed:
    url: str
    first: dict[str, Any]    # what the first backfill printed
    second: dict[str, Any]   # ... and the second
    measured_before: list[dict[str, Any]]   # the history before the backfill


def _backfill(db_url: str) -> dict[str, Any]:
    """``netgis kpis backfill`` in a subprocess: the real entry point."""
    env = {**os.environ, "NETGIS_DATABASE_URL": db_url}
    done = subprocess.run([sys.executable, "-m", "netgis.cli", "kpis", "backfill"],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def _backfill_again(db_url: str) -> dict[str, Any]:
    """The same command run in this process (no interpreter to start)."""
    from typer.testing import CliRunner

    from netgis.cli import app

    done = CliRunner().invoke(app, ["kpis", "backfill"], env={"NETGIS_DATABASE_URL": db_url},
                              catch_exceptions=False)
    assert done.exit_code == 0, done.output
    out: dict[str, Any] = json.loads(done.stdout)
    return out


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    """A server on a database freshly loaded with a generated city of 250 premises, its
    first KPI snapshot taken by a read of /kpis, then backfilled twice."""
    folder = Path(tempfile.mkdtemp(prefix="netgis-backfill-"))
    db_url = f"sqlite:///{folder / 'new.db'}"
    app = create_app(make_settings(db_url))
    with LiveServer(app) as server:
        repo: Repository = app.state.repo
        repo.load_dataset(generate_city(premises=250, seed=1))
        with httpx.Client(base_url=server.url, timeout=120) as http:
            assert http.get("/kpis").status_code == 200   # stores the first snapshot
            before = http.get("/kpis/history").json()["data"]
        first, second = _backfill(db_url), _backfill_again(db_url)
        yield Installed(server.url, first, second, before)


def _get(url: str, path: str, **params: str) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=120) as http:
        return http.get(path, params=params)


def test_backfill_writes_one_point_per_year_once(installed: Installed) -> None:
    first, second = installed.first, installed.second
    assert len(installed.measured_before) == 1
    measured_at = datetime.fromisoformat(installed.measured_before[0]["taken_at"])
    assert first["first_measured"] == measured_at.isoformat()
    years = first["years"]
    assert years == list(range(years[0], measured_at.year)) and len(years) > 5
    assert first["stored"] and first["inserted"] == len(years) and first["skipped"] == 0
    # again: nothing new, nothing duplicated
    assert second["years"] == years
    assert (second["inserted"], second["updated"], second["unchanged"]) == (0, 0, len(years))


def test_the_history_feed_marks_estimated_points(installed: Installed) -> None:
    history = _get(installed.url, "/kpis/history").json()["data"]
    estimated = [h for h in history if h.get("estimated")]
    measured = [h for h in history if "estimated" not in h]
    assert [h["taken_at"] for h in estimated] == [
        datetime(y, 12, 31, tzinfo=UTC).isoformat() for y in installed.first["years"]]
    # the measured snapshot is kept, and reads exactly as it did before the backfill
    assert measured == installed.measured_before
    assert all(h["estimated"] is True for h in estimated)
    assert [h["coverage_pct"] for h in estimated] == [
        installed.first["coverage_pct"][str(y)] for y in installed.first["years"]]
    area = _get(installed.url, "/kpis").json()["data"][1]["area_id"]
    per_area = _get(installed.url, "/kpis/history", area_id=area).json()["data"]
    assert [bool(h.get("estimated")) for h in per_area] == \
        [bool(h.get("estimated")) for h in history]
    goal = _get(installed.url, "/kpis/goal").json()["data"][0]
    assert goal["history_points"] == len(history)


@pytest.mark.browser
def test_the_dashboard_draws_the_estimated_segment_dashed(installed: Installed,
                                                          browser_context: Any) -> None:
    history = _get(installed.url, "/kpis/history").json()["data"]
    estimated = [h for h in history if h.get("estimated")]
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        page.goto(f"{installed.url}/dashboard", wait_until="load")
        page.wait_for_selector("body[data-charts]", timeout=60_000)
        assert page.get_attribute("body", "data-charts") == "ready", errors
        marks = dashboard_marks(page)["coverage"]
        for h in estimated:
            day = h["taken_at"][:10]
            assert (f"Estimated from install_year: coverage on {day}: "
                    f"{h['coverage_pct']:.1f} %") in marks
        assert sum(m.startswith("Coverage on ") for m in marks) == len(history) - len(estimated)
        # two lines: the measured one solid, the estimated one dashed
        dashes = page.eval_on_selector_all(
            "#chart-coverage .mark-line path",
            "els => els.map(e => e.getAttribute('stroke-dasharray'))")
        assert sorted(dashes) == ["1,0", "6,4"], dashes
        legend = page.eval_on_selector("#chart-coverage .role-legend", "e => e.textContent")
        assert "Estimated from install_year" in legend and "Measured (KPI snapshots)" in legend
        rows = page.eval_on_selector_all("#table-coverage tr[data-estimated='true'] th",
                                         "els => els.map(e => e.textContent)")
        assert len(rows) == len(estimated)
        assert all(r.endswith("(estimated from install_year)") for r in rows)
        assert page.is_visible("#estimated-note")
        assert errors == []
    finally:
        page.close()
