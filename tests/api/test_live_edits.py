"""Live edits, small (issue 28): every edit shows in the analysis answers, and they stay right.

``netgis serve`` in its own process on a generated 2 k-premise city in SpatiaLite; 2
writers edit premise units and toggle a span each for ~8 s, each polling after every
write until the edit shows in ``/analysis/premises/{id}`` or ``/analysis/coverage``,
while 2 readers read ``/analysis/premises/{id}`` and ``/kpis``. Not a timing test:
an edit may take up to 15 s to show. ``benchmarks/bench_live.py`` is the big one.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.live import PREMISE, SPAN, final_check, plan_edits, run_live, serve
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
    print(final.summary())

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

    # one data version per write, every one of them in the data the final KPIs are of
    assert final.db_version == loaded_version + len(result.edits)
    assert final.kpis_diffs == [] and final.coverage_diffs == [], final.summary()
