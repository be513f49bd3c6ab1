"""Estimated KPI snapshots (``netgis kpis backfill``) in the history store, on SpatiaLite
and PostGIS: marked estimated, written idempotently, never over a measured snapshot, and
invisible to the check that decides whether the current data has its snapshot."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from netgis.storage import Repository


def _kpis(units_passed: int, *, areas: bool = True) -> dict[str, Any]:
    network = {"units_total": 100, "units_passed": units_passed,
               "coverage_pct": float(units_passed)}
    return {"network": network,
            "areas": [{"area_id": "a1", "name": "Nordend", **network}] if areas else [],
            "drop_m": 150.0}


def _year(y: int) -> datetime:
    return datetime(y, 12, 31, tzinfo=UTC)


def test_estimates_are_marked_and_measured_snapshots_are_not(repo: Repository) -> None:
    measured = repo.save_kpi_snapshot(_kpis(70), data_version=3,
                                      taken_at=datetime(2024, 3, 1, tzinfo=UTC))
    counts = repo.save_kpi_estimates([(_year(2021), _kpis(20)), (_year(2022), _kpis(50))],
                                     data_version=3)
    assert counts == {"inserted": 2, "updated": 0, "unchanged": 0, "removed": 0, "skipped": 0}
    history = repo.kpi_history()
    assert [(h["taken_at"], h["units_passed"], h.get("estimated")) for h in history] == [
        (_year(2021), 20, True), (_year(2022), 50, True),
        (datetime(2024, 3, 1, tzinfo=UTC), 70, None)]
    # a measured snapshot reads exactly as before: no estimated key at all
    assert "estimated" not in history[-1] and history[-1]["snapshot_id"] == measured
    area = repo.kpi_history(area_id="a1")
    assert [h.get("estimated") for h in area] == [True, True, None]
    assert area[0]["name"] == "Nordend"


def test_writing_the_same_estimates_twice_changes_nothing(repo: Repository) -> None:
    points = [(_year(y), _kpis(10 * (y - 2015))) for y in range(2016, 2021)]
    assert repo.save_kpi_estimates(points, data_version=1)["inserted"] == 5
    first = repo.kpi_history()
    again = repo.save_kpi_estimates(points, data_version=1)
    assert again == {"inserted": 0, "updated": 0, "unchanged": 5, "removed": 0, "skipped": 0}
    assert repo.kpi_history() == first


def test_estimates_never_reach_or_overwrite_measured_history(repo: Repository) -> None:
    repo.save_kpi_snapshot(_kpis(40), data_version=2, taken_at=_year(2019))
    repo.save_kpi_snapshot(_kpis(60), data_version=5, taken_at=datetime(2021, 5, 1, tzinfo=UTC))
    before = repo.kpi_history()
    counts = repo.save_kpi_estimates(
        [(_year(2018), _kpis(30)), (_year(2019), _kpis(99)), (_year(2020), _kpis(99))],
        data_version=5)
    # 2019's end is the first measured snapshot's instant, 2020 after it: neither is stored
    assert counts["inserted"] == 1 and counts["skipped"] == 2
    after = repo.kpi_history()
    assert [h for h in after if not h.get("estimated")] == before
    assert [(h["taken_at"], h["units_passed"]) for h in after if h.get("estimated")] == [
        (_year(2018), 30)]


def test_a_new_estimate_replaces_the_old_series(repo: Repository) -> None:
    repo.save_kpi_estimates([(_year(2010), _kpis(5)), (_year(2011), _kpis(8))],
                            data_version=1)
    ids = {h["taken_at"]: h["snapshot_id"] for h in repo.kpi_history()}
    counts = repo.save_kpi_estimates([(_year(2011), _kpis(9)), (_year(2012), _kpis(12))],
                                     data_version=2)
    assert counts == {"inserted": 1, "updated": 1, "unchanged": 0, "removed": 1, "skipped": 0}
    history = repo.kpi_history()
    assert [(h["taken_at"], h["units_passed"], h["data_version"]) for h in history] == [
        (_year(2011), 9, 2), (_year(2012), 12, 2)]
    # replaced in place: the same snapshot id
    assert history[0]["snapshot_id"] == ids[_year(2011)]


def test_an_estimate_does_not_count_as_the_data_versions_snapshot(repo: Repository) -> None:
    repo.save_kpi_estimates([(_year(2015), _kpis(5))], data_version=4)
    assert not repo.has_kpi_snapshot(4)
    repo.save_kpi_snapshot(_kpis(80), data_version=4)
    assert repo.has_kpi_snapshot(4)
