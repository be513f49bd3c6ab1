"""What optical reach adds to `netgis analyze` (issue 13).

On a generated city of 1 M premises (seed 61, the scale issue's data; GeoParquet
so reading stays cheap), one analysis in this process with the step timer of
:func:`netgis.engine.analysis.analyze`: the ``optics`` step is everything the loss
budget adds after the nearest search (span orientation, one Dijkstra over G,
the per-premise loss and its parts). The attachment fraction the loss needs is
computed inside the nearest search; its cost is measured on its own here
(``shapely.line_locate_point`` over every passed premise's served span).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import shapely

from benchmarks._record import peak_rss_mb, record
from netgis.engine.analysis import analyze, budget_scenario
from netgis.engine.coverage import _CHUNK
from netgis.engine.optics import LossBudget
from netgis.io import read_dataset

DATA = Path(__file__).parent / ".data"
PREMISES = 1_000_000


def _dataset() -> Path:
    path = DATA / "optics-1M.parquet"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "netgis.cli", "generate", "--premises",
                        str(PREMISES), "--seed", "61", "--out", str(path)], check=True,
                       stdout=subprocess.DEVNULL)
    return path


def main() -> None:
    ds = read_dataset(_dataset())
    marks: list[tuple[str, float]] = []
    result = analyze(ds, progress=lambda name: marks.append((name, time.perf_counter())))
    end = time.perf_counter()
    steps = {name: (marks[i + 1][1] if i + 1 < len(marks) else end) - t
             for i, (name, t) in enumerate(marks)}
    passed = result.premises["passed"].to_numpy(bool)
    spans = result.spans.set_index("span_id").geometry
    lines = spans.reindex(result.premises["served_span_id"][passed]).to_numpy()
    pts = result.premises.geometry.to_numpy()[passed]
    # inside the nearest search the fraction runs per chunk on a thread per core: time it so
    chunks = [slice(a, a + _CHUNK) for a in range(0, len(pts), _CHUNK)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(lambda c: shapely.line_locate_point(lines[c], pts[c], normalized=True),
                      chunks))
    t_frac = time.perf_counter() - t0
    t0 = time.perf_counter()
    what_if = budget_scenario(result, budget=LossBudget.preset("gpon-c+"))
    t_what_if = time.perf_counter() - t0
    n = result.kpis["network"]
    loss = result.premises["loss_db"].to_numpy(dtype=float)
    md = "\n".join([
        "## Optical reach (issue 13)",
        "",
        "`.venv/bin/python -m benchmarks.bench_optics`: `netgis generate --premises 1000000 "
        "--seed 61` (GeoParquet), one `analyze()` in process, steps timed by its progress "
        "callback. Target: the loss computation adds under 1 s.",
        "",
        "| step | seconds |",
        "|---|---|",
        *(f"| {name} | {sec:.2f} |" for name, sec in steps.items()),
        f"| attachment fraction (inside coverage: line_locate_point on {int(passed.sum()):,} "
        f"passed premises, chunks on {os.cpu_count()} threads as there) | {t_frac:.2f} |",
        f"| what-if: GPON C+ budget (`budget_scenario`) | {t_what_if:.2f} |",
        "",
        f"Loss added by optical reach: **{steps.get('optics', float('nan')) + t_frac:.2f} s** "
        f"(optics step + attachment fraction). Peak RSS {peak_rss_mb():,.0f} MiB.",
        f"Result: {n['units_in_budget']:,} of {n['units_passed']:,} passed units in a B+ "
        f"budget ({n['budget_coverage_pct']:.1f} % budget coverage); loss_db median "
        f"{np.nanmedian(loss):.1f} dB, max {np.nanmax(loss):.1f} dB; a C+ budget brings "
        f"{what_if.units_entering:,} units in.",
    ])
    record("optics", md)


if __name__ == "__main__":
    main()
