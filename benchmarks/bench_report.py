"""Time to build the council report (``netgis report --db``) of a 1 M-premise database.

A generated city (``netgis.generate.generate_city``: areas, lit, unlit and
planned spans, gaps) is loaded into a new SpatiaLite file; after the first
analysis a year of monthly KPI snapshots is stored (the KPIs scaled down
month by month), so the report has a history and a pace to show. Then each
step of ``netgis report --db --pdf`` is timed as the command runs it: read the
data, analyse, read the history, rank the gap clusters, gather the numbers,
render the five charts to SVG and the HTML, print the PDF.

Run: ``flock /tmp/netgis-heavy.lock .venv/bin/python -m benchmarks.bench_report [PREMISES]``
"""

from __future__ import annotations

import copy
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from benchmarks._record import peak_rss_mb, record
from netgis.engine.analysis import analyze
from netgis.generate import generate_city
from netgis.maps.dashboard import report_html, report_pdf
from netgis.products.progress import build_dashboard, ranked_clusters
from netgis.storage import Repository

T = TypeVar("T")


def _timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def _monthly_history(repo: Repository, kpis: dict[str, Any], version: int) -> None:
    """Twelve past monthly snapshots, 0.5 % fewer units passed per month back."""
    for month in range(12, 0, -1):
        past = copy.deepcopy(kpis)
        share = 1.0 - 0.005 * month
        for scope in (past["network"], *past["areas"]):
            scope["units_passed"] = int(scope["units_passed"] * share)
            if scope["units_total"]:
                scope["coverage_pct"] = 100.0 * scope["units_passed"] / scope["units_total"]
        repo.save_kpi_snapshot(past, data_version=version,
                               taken_at=datetime.now(UTC) - timedelta(days=30.4 * month))
    repo.save_kpi_snapshot(kpis, data_version=version)


def main() -> None:
    premises = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    t_gen, data = _timed(lambda: generate_city(premises=premises, seed=7))
    print(f"generated {premises} premises, {len(data.spans)} spans, {len(data.areas)} areas "
          f"in {t_gen:.1f} s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.html"
        with Repository.from_url(f"sqlite:///{Path(tmp) / 'bench.db'}") as repo:
            repo.init()
            t_load, _ = _timed(lambda: repo.load_dataset(data))
            print(f"loaded into SpatiaLite in {t_load:.1f} s", flush=True)
            steps: dict[str, float] = {}
            steps["read"], (version, ds) = _timed(repo.read_consistent)
            steps["analyze"], result = _timed(lambda: analyze(ds))
            _monthly_history(repo, result.kpis, version)
            steps["history"], history = _timed(lambda: repo.kpi_history())
        steps["gap ranking"], clusters = _timed(lambda: ranked_clusters(result))
        steps["numbers"], board = _timed(lambda: build_dashboard(
            result, history=history, clusters=clusters, data_version=version))
        steps["charts + HTML"], html = _timed(lambda: report_html(board))
        steps["PDF"], pdf = _timed(lambda: report_pdf(html))
        out.write_text(html, encoding="utf-8")
        html_kib, pdf_kib = len(html.encode()) / 1024, len(pdf) / 1024
    total = sum(steps.values())
    rows = "\n".join(f"| {name} | {seconds:.1f} s |" for name, seconds in steps.items())
    load = os.getloadavg()
    record("report", f"""
## report: `netgis report --db --pdf` of a 1 M-premise database (issue 16)

`python -m benchmarks.bench_report {premises}` (under `flock /tmp/netgis-heavy.lock`):
a generated city of {premises:,} premises, {len(data.spans):,} spans and {len(data.areas)}
areas loaded into SpatiaLite ({t_load:.0f} s, not counted), a year of monthly KPI
snapshots. Each step as the command runs it:

| step | time |
|---|---|
{rows}
| **total** | **{total:.1f} s** |

HTML {html_kib:.0f} KiB (self-contained, charts as SVG), PDF {pdf_kib:.0f} KiB.
Peak RSS {peak_rss_mb():.0f} MiB. Load average when it ended: {load[0]:.1f} / {load[1]:.1f} /
{load[2]:.1f} (2 cores shared with other jobs: the times are noisy). `GET /report` reuses
the server's cached analysis and gap ranking: it costs the last three steps.
""")


if __name__ == "__main__":
    main()
