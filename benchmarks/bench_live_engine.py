"""The live analysis engine alone: random edits applied to a big city, then compared.

:class:`netgis.engine.live.LiveAnalysis` of ``generate_city(premises=N, seed=61)`` takes
EDITS random edits of every kind (the edit kinds of ``tests/test_live_analysis.py``:
premises patched, moved, inserted and deleted; span statuses, ducts, moves, inserts,
parallel cables and deletes; node statuses, moves and deletes; areas moved and
deleted), most of them premise edits as in a working day. Each edit's time is
recorded by the path it took (premises, network, areas, full); at the end the live
state is compared with :func:`netgis.engine.analysis.analyze` of the same data:
every result column of every premise, span and node, and every KPI.

Run: ``.venv/bin/python -m benchmarks.bench_live_engine [PREMISES] [EDITS]``
(default 1000000 and 1000).
"""

from __future__ import annotations

import random
import sys
import time
from collections import defaultdict

import numpy as np

from benchmarks._record import peak_rss_mb, record
from netgis.engine.analysis import analyze
from netgis.engine.live import LiveAnalysis
from netgis.generate import generate_city
from tests.test_live_analysis import KINDS, _edit, apply_plain, assert_same_analysis

#: Share of network and area edits among the random ones (the rest edit premises).
NETWORK_SHARE = 0.05


def main(premises: int = 1_000_000, edits: int = 1000, seed: int = 61) -> None:
    """Apply ``edits`` random edits to the live analysis of the city, time them, compare."""
    rng = random.Random(seed)
    ds = generate_city(premises=premises, seed=seed)
    started = time.perf_counter()
    live = LiveAnalysis(ds)
    first_s = time.perf_counter() - started
    premise_kinds = [k for k in KINDS if k.startswith("premise")]
    other_kinds = [k for k in KINDS if not k.startswith("premise")]
    times: dict[str, list[float]] = defaultdict(list)
    by_kind: dict[str, int] = defaultdict(int)
    for _ in range(edits):
        kinds = other_kinds if rng.random() < NETWORK_SHARE else premise_kinds
        kind = rng.choice(kinds)
        changes = _edit(ds, kind, rng.randrange(10**9), rng.randrange(10**9))
        if changes.empty:
            continue
        ds = apply_plain(ds, changes)
        t = time.perf_counter()
        live.apply(changes)
        times[live.last_path].append(time.perf_counter() - t)
        by_kind[kind] += 1
    t = time.perf_counter()
    reference = analyze(ds)
    scratch_s = time.perf_counter() - t
    assert_same_analysis(live.analysis, reference)
    lines = [f"LiveAnalysis of a {premises:,}-premise city: first analysis {first_s:.1f} s; "
             f"{sum(by_kind.values())} edits; from-scratch analysis of the result "
             f"{scratch_s:.1f} s; live state equal to it: every column and KPI",
             "| path | edits | p50 | p95 | max |", "|---|---|---|---|---|"]
    for path, values in sorted(times.items()):
        arr = np.asarray(values)
        lines.append(f"| {path} | {len(arr)} | {np.percentile(arr, 50) * 1000:.0f} ms | "
                     f"{np.percentile(arr, 95) * 1000:.0f} ms | {arr.max() * 1000:.0f} ms |")
    lines.append("edits by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(by_kind.items())))
    lines.append(f"peak RSS {peak_rss_mb():.0f} MB")
    lines.append(f"\nCommand: `.venv/bin/python -m benchmarks.bench_live_engine {premises} "
                 f"{edits}`")
    record("live_engine", "\n".join(lines))


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
