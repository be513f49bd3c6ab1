"""Live edits, small (issue 28): every edit shows in the analysis answers, and they stay right.

``netgis serve`` in its own process on a generated 2 k-premise city in SpatiaLite; 2
writers edit premise units and toggle a span each for ~8 s, each polling after every
write until the edit shows in ``/analysis/premises/{id}`` or ``/analysis/coverage``,
while 2 readers read ``/analysis/premises/{id}`` and ``/kpis``. Not a timing test:
an edit may take up to 15 s to show. ``benchmarks/bench_live.py`` is the big one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.bench_live import live_steps
from benchmarks.live import (
    PREMISE,
    SPAN,
    Edit,
    KpiAnswer,
    LivePlan,
    LiveResult,
    PremiseAnswer,
    compare_kpis,
    final_check,
    plan_edits,
    run_live,
    serve,
)
from netgis.generate import generate_city
from netgis.storage import Repository

KEY = "live-edits-key"
WRITERS = 2
VISIBLE_WITHIN_S = 15.0


def test_every_edit_shows_and_the_served_kpis_match_the_database(tmp_path: Path) -> None:
    dataset = generate_city(premises=2000, seed=61)
    plan = plan_edits(dataset, WRITERS)
    assert len(plan.spans) == WRITERS and all(s.effect_units > 0 for s in plan.spans)
    url = f"sqlite:///{tmp_path / 'live.db'}"
    repo = Repository.from_url(url)
    repo.init()
    repo.load_dataset(dataset)
    loaded_version = repo.data_version()
    repo.close()

    with serve(url, KEY, tmp_path / "serve.log", ready_timeout_s=300) as served:
        result = run_live(served.url, plan, key=KEY, writers=WRITERS, readers=2, seconds=8,
                          span_every=4, visible_timeout_s=120, timeout_s=120)
        print(result.summary())
        final = final_check(served.url, url, tmp_path / "analyze-out", timeout_s=300)
        steps = live_steps(served.url, KEY)
    print(final.summary(), steps)

    assert result.errors == [] and result.refused == [], result.summary()
    acknowledged = [e for e in result.edits if 200 <= e.status < 300 and e.version is not None]
    assert len(acknowledged) == len(result.edits)
    kinds = [e.kind for e in result.edits]
    assert kinds.count(SPAN) >= WRITERS and kinds.count(PREMISE) >= WRITERS, kinds
    # each span was put back in service: its edits come in pairs
    assert kinds.count(SPAN) % 2 == 0
    assert result.unseen() == [], result.summary()
    assert max(e.visible_s or 0.0 for e in result.edits) < VISIBLE_WITHIN_S, result.summary()
    assert result.span_mismatches == 0
    assert result.count("read premise") > 0 and result.count("read kpis") > 0

    consistency = result.consistency(plan)
    assert not consistency.skipped
    assert consistency.kpi_checked > 0
    assert consistency.kpi_wrong == [] and consistency.premise_wrong == [], (
        consistency.summary())

    # a new data version per write, the last one is the data the final KPIs are of
    versions = sorted(e.version or 0 for e in result.edits)
    assert len(set(versions)) == len(versions) and versions[0] > loaded_version
    assert final.db_version == versions[-1]
    assert final.kpis_diffs == [] and final.coverage_diffs == [], final.summary()
    # the live analysis applied the edits step by step (a burst may be one step), never
    # analysing everything again after the start
    assert steps["full"][0] == 1, steps
    applied = sum(n for kind, (n, _) in steps.items() if kind != "full")
    assert 0 < applied <= len(result.edits), steps
    assert steps["network"][0] >= 1 and steps["premises"][0] >= 1, steps


def _plan() -> LivePlan:
    return LivePlan(units={"p1": 1, "p2": 3}, pools=[["p1", "p2"]], spans=[], units_total=4,
                    premise_ids=["p1", "p2"])


def test_the_consistency_check_flags_answers_that_disagree_with_their_version() -> None:
    result = LiveResult(writers=1, readers=0, seconds=1)
    # loaded at version 10; p1 -> 2 at version 11, a span at 12, p2 -> 4 at 13
    result.edits = [Edit(0, PREMISE, "p1", 2, version=11, status=200),
                    Edit(0, SPAN, "s1", "planned", version=12, status=200),
                    Edit(0, PREMISE, "p2", 4, version=13, status=200)]
    good = [KpiAnswer("kpis", 10, 4, 3), KpiAnswer("kpis", 12, 5, 1),
            KpiAnswer("coverage", 13, 6, 1)]
    stale = KpiAnswer("coverage", 13, 5, 1)  # claims 13 but lacks the edit of p2
    result.kpi_answers = [*good, stale]
    result.premise_answers = [PremiseAnswer("p1", 10, 1), PremiseAnswer("p1", 12, 2),
                              PremiseAnswer("p2", 12, 3), PremiseAnswer("p2", None, 4),
                              PremiseAnswer("p2", 13, 3)]
    check = result.consistency(_plan())
    assert check.kpi_checked == 4 and check.kpi_wrong == [stale]
    assert check.premise_checked == 4 and check.premise_unversioned == 1
    assert check.premise_wrong == [PremiseAnswer("p2", 13, 3)]

    # a write whose outcome is unknown (no answer) leaves nothing to check against
    result.edits.append(Edit(0, PREMISE, "p1", 3, version=None, status=0))
    assert result.consistency(_plan()).skipped


def test_compare_kpis_names_the_values_that_differ() -> None:
    analyzed: dict[str, Any] = {
        "network": {"units_total": 10, "coverage_pct": 50.0, "spof_spans": 2},
        "areas": [{"area_id": "a", "name": "A", "units_total": 4, "coverage_pct": 25.0}]}
    rows: dict[str, list[dict[str, Any]]] = {"data": [
        {"scope": "network", "area_id": None, "name": None, "units_total": 10,
         "coverage_pct": 50.0 * (1 + 1e-12), "spof_spans": 2},
        {"scope": "area", "area_id": "a", "name": "A", "units_total": 4,
         "coverage_pct": 25.0, "spof_spans": None}]}
    assert compare_kpis(rows, analyzed) == []
    rows["data"][0]["units_total"] = 11
    rows["data"][1]["coverage_pct"] = 25.0 * (1 + 1e-8)
    assert compare_kpis(rows, analyzed) == ["network.units_total", "area a.coverage_pct"]
    coverage = {"network": dict(analyzed["network"]), "areas": list[Any]()}
    assert compare_kpis(coverage, analyzed) == ["area a (only one side has it)"]
