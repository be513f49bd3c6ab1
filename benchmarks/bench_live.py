"""Live edits (issue 28): how long until an edit shows in every analysis answer, under load.

The city of ``netgis generate --premises N --seed 61`` (:func:`netgis.generate.generate_city`,
in process) is loaded into a new SpatiaLite file (or a new PostGIS database) and
served by ``netgis serve`` in its own process over loopback (PostGIS: ``--workers 2``).
Once the first analysis is ready (GET /kpis answers 200), 4 writers edit for S
seconds, one edit each every 0.25 s: a PATCH of a premise's units, and every 10th
a PATCH of the writer's span's status (in_service <-> planned; spans chosen by a
local analysis, large cut_units, disjoint impacts). After each write the writer
polls (every 20 ms) ``/analysis/premises/{id}`` or ``/analysis/coverage`` until the
edit shows: *edit-to-visible*, from sending the write. Meanwhile 4 readers
alternate ``/analysis/premises/{random id}`` and ``/kpis`` as fast as they answer.
Afterwards every versioned answer is checked against the writes
(:meth:`benchmarks.live.LiveResult.consistency`), and once ``/kpis`` reflects the
database's data version its KPIs are compared with ``netgis analyze --db`` of the same
database. How it all works: :mod:`benchmarks.live`; the small version is
``tests/api/test_live_edits.py``.

Run: ``.venv/bin/python -m benchmarks.bench_live [--premises 1000000] [--seconds 60]
[--db spatialite|postgis] [--visible-timeout 300]`` (the defaults shown).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy

from benchmarks._record import peak_rss_mb, record
from benchmarks.live import (
    PREMISE,
    SPAN,
    Consistency,
    FinalCheck,
    LivePlan,
    LiveResult,
    Served,
    final_check,
    plan_edits,
    run_live,
    serve,
)
from benchmarks.loadgen import percentile

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
KEY = "bench-live-key"
SEED = 61
WRITERS = 4
READERS = 4


@contextmanager
def _database(kind: str, folder: Path) -> Iterator[str]:
    """The URL of a new, empty database of ``kind`` (a PostGIS one is dropped after)."""
    if kind == "spatialite":
        yield f"sqlite:///{folder / 'live.db'}"
        return
    admin = sqlalchemy.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"netgis_bench_live_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')  # generated name, not user input
    try:
        yield admin.url.set(database=name).render_as_string(False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _log_notes(log: Path) -> str:
    """What the server logged beyond its requests: warnings, errors, tracebacks."""
    text = log.read_text(errors="replace") if log.exists() else ""
    found = [line for line in text.splitlines()
             if any(w in line for w in ("WARNING", "ERROR", "Traceback", "warning:"))]
    if not found:
        return "nothing beyond the access log"
    distinct = list(dict.fromkeys(line.strip()[:160] for line in found))
    return f"{len(found)} warning/error lines, e.g. " + " / ".join(distinct[:3])


def live_steps(url: str, key: str) -> dict[str, tuple[int, float]]:
    """Per path of the live analysis (premises, network, ...): steps applied and their mean
    seconds, from the server's ``netgis_analysis_duration_seconds`` (one process's)."""
    import httpx

    text = httpx.get(f"{url}/metrics", headers={"X-API-Key": key}, timeout=30).text
    found: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        m = re.match(r'netgis_analysis_duration_seconds_(sum|count)\{kind="(\w+)",'
                     r'trigger="live"\} (\S+)', line)
        if m:
            found.setdefault(m.group(2), {})[m.group(1)] = float(m.group(3))
    return {kind: (int(v.get("count", 0)), v.get("sum", 0.0) / v["count"])
            for kind, v in found.items() if v.get("count")}


def _ms(values: list[float], q: float) -> str:
    value = percentile(values, q)
    return "n/a" if value != value else f"{value * 1000:,.0f} ms"


def _markdown(args: argparse.Namespace, timings: dict[str, float], plan: LivePlan,
              served: Served, result: LiveResult, consistency: Consistency,
              final: FinalCheck, workers: int, notes: str,
              steps: dict[str, tuple[int, float]]) -> str:
    spans = ", ".join(f"{s.span_id} (cut {s.cut_units:,}, out of service {s.effect_units:,})"
                      for s in plan.spans)
    lines = [
        f"## Live edits (issue 28): {args.premises:,} premises, {args.db}",
        "",
        f"`netgis serve` ({workers} worker process{'es' if workers > 1 else ''}, loopback) "
        f"on the city of `netgis generate --premises {args.premises} --seed {SEED}`; "
        f"{WRITERS} writers x {args.seconds:.0f} s, one edit each every 0.25 s (premise "
        "units; every 10th the writer's span in_service <-> planned), each polling "
        f"(20 ms) until its edit shows; {READERS} readers alternating "
        "`/analysis/premises/{random id}` and `/kpis`. Edit-to-visible: from sending the "
        "write to the first poll that shows it (premise: `/analysis/premises/{id}` with "
        "the new units; span: `/analysis/coverage` at the write's data version or later, "
        "units_passed moved as expected).",
        "",
        f"Spans toggled: {spans}.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| generate / plan (local analysis) / load | {timings['generate']:.1f} s / "
        f"{timings['plan']:.1f} s / {timings['load']:.1f} s |",
        f"| server listening / first `/kpis` 200 | {served.listening_s:.1f} s / "
        f"{served.first_kpis_s:.1f} s |",
    ]
    paced = int(WRITERS * args.seconds / 0.25)
    lines.append(f"| edits made / at the full pace | {len(result.edits)} / {paced} (a writer "
                 "waits for its edit to show before the next) |")
    for kind, label in ((PREMISE, "premise edits"), (SPAN, "span edits")):
        seen = result.visible(kind)
        count = sum(e.kind == kind for e in result.edits)
        lines.append(f"| {label}: count / edit-to-visible p50 / p95 / max / never visible "
                     f"| {count} / {_ms(seen, 50)} / {_ms(seen, 95)} / "
                     f"{_ms(seen, 100)} / {len(result.unseen(kind))} |")
    checked = sum(e.checked is True for e in result.edits)
    lines.append(f"| span edits whose units_passed direction was checked (no other span "
                 f"edit in between) | {checked} |")
    for kind, label in (("read premise", "`GET /analysis/premises/{id}`"),
                        ("read kpis", "`GET /kpis`"),
                        ("write premise", "PATCH premise (writers)"),
                        ("write span", "PATCH span (writers)")):
        values = result.latencies(kind)
        lines.append(f"| {label}: count / p50 / p99 | {len(values):,} / {_ms(values, 50)} / "
                     f"{_ms(values, 99)} |")
    lines += [
        "| live analysis steps applied (one process's `/metrics`): count / mean by path | "
        + ("; ".join(f"{kind} {n} / {mean * 1000:,.0f} ms" for kind, (n, mean)
                     in sorted(steps.items())) or "n/a") + " |",
        f"| errors (5xx or no answer) / 4xx | {len(result.errors)} / {len(result.refused)} |",
        f"| answers at the write's version without the span edit | "
        f"{result.span_mismatches} |",
        f"| answers vs their data version | {consistency.summary()} |",
        f"| final KPIs vs `netgis analyze --db` | {final.summary()} |",
        f"| server log | {notes} |",
        "",
        f"Wall {result.wall_s:.1f} s for the edits and reads. Peak RSS of the benchmark "
        f"process {peak_rss_mb():,.0f} MiB. Load average at the end "
        f"{os.getloadavg()[0]:.1f} (1 min) on {os.cpu_count()} cores shared with other jobs.",
        f"Command: `.venv/bin/python -m benchmarks.bench_live --premises {args.premises} "
        f"--seconds {args.seconds:g} --db {args.db} --visible-timeout "
        f"{args.visible_timeout:g}`.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from netgis.generate import generate_city
    from netgis.storage import Repository

    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_live",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--premises", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--db", choices=("spatialite", "postgis"), default="spatialite")
    parser.add_argument("--visible-timeout", type=float, default=300.0,
                        help="Seconds an edit may take to show before it counts as never "
                             "visible (default 300: today's server takes long at 1 M).")
    parser.add_argument("--keep-log", type=Path, default=None,
                        help="Copy the server's log here (what the live thread did, when).")
    args = parser.parse_args(argv)
    # serve --workers exists: PostGIS serves from two processes (SpatiaLite from one)
    workers = 2 if args.db == "postgis" else 1

    timings: dict[str, float] = {}
    t0 = time.monotonic()
    dataset = generate_city(premises=args.premises, seed=SEED)
    timings["generate"] = time.monotonic() - t0
    t0 = time.monotonic()
    plan = plan_edits(dataset, WRITERS)
    timings["plan"] = time.monotonic() - t0
    print(f"spans toggled: {plan.spans}", flush=True)
    with tempfile.TemporaryDirectory(prefix="netgis-bench-live-") as tmp, \
            _database(args.db, Path(tmp)) as url:
        t0 = time.monotonic()
        repo = Repository.from_url(url)
        repo.init()
        repo.load_dataset(dataset)
        repo.close()
        timings["load"] = time.monotonic() - t0
        del dataset
        print(f"loaded in {timings['load']:.1f} s; starting netgis serve", flush=True)
        with serve(url, KEY, Path(tmp) / "serve.log", workers=workers) as served:
            print(f"first /kpis after {served.first_kpis_s:.1f} s", flush=True)
            result = run_live(served.url, plan, key=KEY, writers=WRITERS, readers=READERS,
                              seconds=args.seconds, visible_timeout_s=args.visible_timeout)
            print(result.summary(), flush=True)
            consistency = result.consistency(plan)
            steps = live_steps(served.url, KEY)
            final = final_check(served.url, url, Path(tmp) / "analyze-out")
        notes = _log_notes(Path(tmp) / "serve.log")
        if args.keep_log is not None:
            shutil.copyfile(Path(tmp) / "serve.log", args.keep_log)
        print(consistency.summary(), final.summary(), f"server log: {notes}", sep="\n",
              flush=True)
    record(f"live_{args.db}", _markdown(args, timings, plan, served, result, consistency,
                                        final, workers, notes, steps))


if __name__ == "__main__":
    main(sys.argv[1:])
