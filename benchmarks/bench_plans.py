"""Design plans on a big city: how fast a plan's answers follow its edits, and that a plan of
the top gap builds has exactly the KPIs of a fresh analysis of main plus those builds.

A synthetic city (``generate_city``, seed 61) is loaded into a new SpatiaLite file. An
API process's plan analyses (``api.plan_states.PlanStates``, what ``/plans/{name}/kpis``
answers from) are timed: the plan's first analysis (main's analysis with the plan's
edits, from scratch), then edits of the plan, each timed from the write to the plan's
KPIs that reflect it: premise patches (``units``), and span status changes (a span of
main taken out of service in the plan); then premise patches of main, each timed from
main's new state to the plan's analysis following it (main's change feed). Then
``netgis plan build --top 5``'s work (the gap builds of the plan's data written to it)
and the check: the plan's KPIs against
``analyze`` of the plan's exported dataset (counts exact, floats to 1e-9 relative).

Run: ``.venv/bin/python -m benchmarks.bench_plans [PREMISES] [EDITS]``
(default 1,000,000 premises, 20 edits of each kind).
"""

from __future__ import annotations

import math
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._record import peak_rss_mb, record
from netgis.api.plan_states import PlanStates
from netgis.engine.analysis import analyze
from netgis.engine.live import Changes, LiveAnalysis
from netgis.generate import generate_city
from netgis.products.gaps.plan import cluster_builds
from netgis.products.gaps.result import gap_analysis
from netgis.schema import DEFAULT_DROP_M
from netgis.storage import Repository
from netgis.storage.plans import Plans

SEED = 61


class _Live:
    """What PlanStates needs of the API's live analysis: main's published state."""

    def __init__(self, repo: Repository) -> None:
        version, data = repo.read_consistent()
        self.drop_m = DEFAULT_DROP_M
        self.budget = None
        self._live = LiveAnalysis(data, drop_m=self.drop_m)
        self._published = _Published(version, self._live.analysis)

    def current(self) -> Any:
        return self._published

    def advance(self, repo: Repository) -> None:
        """Main's live analysis brought to the database's version by its change feed, as
        the API's live thread does."""
        changes = repo.changes_since(self._published.version)
        assert changes is not None and not changes.bulk
        self._live.apply(Changes(changes.rows, changes.deleted))
        self._published = _Published(changes.version, self._live.analysis)


class _Published:
    def __init__(self, version: int, analysis: Any) -> None:
        self.version = version
        self.analysis = analysis


class _Services:
    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.live = _Live(repo)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def main(premises: int = 1_000_000, edits: int = 20) -> None:
    """Time plan edits to reflected KPIs on a ``premises`` city; check the top-5 plan."""
    rng = random.Random(SEED)
    with tempfile.TemporaryDirectory() as tmp:
        repo = Repository.from_url(f"sqlite:///{Path(tmp) / 'plans.db'}")
        repo.init()
        city = generate_city(premises=premises, seed=SEED)
        t = time.perf_counter()
        repo.load_dataset(city)
        load_s = time.perf_counter() - t
        states = PlanStates(_Services(repo))  # type: ignore[arg-type]
        plans = Plans(repo)
        plans.create("bench")
        t = time.perf_counter()
        states.state("bench")
        first_s = time.perf_counter() - t

        ids = city.premises["premise_id"].to_numpy()
        span_ids = city.spans.loc[city.spans["status"] == "in_service", "span_id"].to_numpy()
        times: dict[str, list[float]] = {"premise patch": [], "span out of service": [],
                                         "main's premise patch, plan follows": []}
        for _ in range(edits):
            row = repo.get_item("premises", str(ids[rng.randrange(len(ids))]))
            row["units"] = int(row["units"].to_numpy()[0]) + 1
            t = time.perf_counter()
            plans.write("bench", "premises", row)
            states.state("bench")
            times["premise patch"].append(time.perf_counter() - t)
        for _ in range(edits):
            span = repo.get_item("spans", str(span_ids[rng.randrange(len(span_ids))]))
            span["status"] = "planned"
            t = time.perf_counter()
            plans.write("bench", "spans", span)
            states.state("bench")
            times["span out of service"].append(time.perf_counter() - t)

        services = states.services
        for _ in range(edits):
            # main edited (its live analysis advanced as the server's would), then the plan's
            # analysis brought along by main's change feed
            pid = str(ids[rng.randrange(len(ids))])
            units = int(repo.get_item("premises", pid)["units"].to_numpy()[0])
            repo.patch_item("premises", pid, {"units": units + 2})
            services.live.advance(repo)  # type: ignore[attr-defined]
            t = time.perf_counter()
            state = states.state("bench")
            times["main's premise patch, plan follows"].append(time.perf_counter() - t)
            assert state.path.startswith("main+"), state.path

        # the top-5 gap builds, in a plan of their own
        plans.create("top5")
        t = time.perf_counter()
        gaps = gap_analysis(states.state("top5").analysis)
        top = gaps.plan.clusters["cluster_id"].astype(str).tolist()[:5]
        nodes, spans = cluster_builds(gaps.plan, top)
        plans.write_layers("top5", {"nodes": nodes, "spans": spans}, mode="insert")
        kpis = states.state("top5").analysis.kpis
        build_s = time.perf_counter() - t
        _, exported = plans.dataset("top5")
        reference = analyze(exported).kpis
        bad = [k for k, v in reference["network"].items()
               if not _same(kpis["network"][k], v)]  # type: ignore[literal-required]
        assert not bad, bad
        for x, y in zip(kpis["areas"], reference["areas"], strict=True):
            assert all(_same(x[k], y[k]) for k in y), (x, y)  # type: ignore[literal-required]
        repo.close()

    lines = [f"Plans on a {premises:,}-premise city (SpatiaLite): load {load_s:.1f} s; a new "
             f"plan's first analysis {first_s:.1f} s (main's state with the plan's edits, from "
             "scratch); then each plan edit timed from the write to the plan's KPIs reflecting it:",
             "| edit | n | p50 | p95 | max |", "|---|---|---|---|---|"]
    for kind, values in times.items():
        arr = np.asarray(values)
        lines.append(f"| {kind} | {len(arr)} | {statistics.median(values) * 1000:.0f} ms | "
                     f"{np.percentile(arr, 95) * 1000:.0f} ms | {arr.max() * 1000:.0f} ms |")
    lines.append(f"Top-5 gap builds into a plan (gap analysis of the plan, sketch written, "
                 f"plan analysed): {build_s:.1f} s; the plan's KPIs equal `analyze` of its "
                 f"exported dataset (counts exact, floats to 1e-9 relative).")
    lines.append(f"peak RSS {peak_rss_mb():.0f} MB")
    lines.append(f"\nCommand: `.venv/bin/python -m benchmarks.bench_plans {premises} {edits}`")
    # the 1 M run is the section "plans"; other sizes keep sections of their own
    record("plans" if premises == 1_000_000 else f"plans_{premises}", "\n".join(lines))


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
