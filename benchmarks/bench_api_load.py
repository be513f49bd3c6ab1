"""Mixed HTTP load with concurrent writers on ``netgis serve``, over loopback, per database.

A generated city (10 k premises) is loaded into a new SpatiaLite file and into a
new PostGIS database; ``netgis serve`` runs in its own process on each; then
:func:`benchmarks.loadgen.run_load` runs 8 writers (each adds a premise, then
alternates PATCHes of it and POSTs of new nodes) and 8 readers (feature pages,
/kpis, /analysis/coverage, /health) with a time cap. Recorded: requests, errors
(5xx or no answer), refused (4xx), p50/p99 latency, concurrent writers and lost
writes (acknowledged, but not in the data read back). The small version of this
run is ``tests/api/test_load.py``.

Run: ``.venv/bin/python -m benchmarks.bench_api_load [PREMISES]``
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import sqlalchemy

from benchmarks._record import record
from benchmarks.loadgen import LoadResult, run_load

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
KEY = "bench-key"
WRITERS = 8
WRITES_EACH = 50
READERS = 8
READS_EACH = 100
TIME_CAP_S = 900.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve_and_load(url: str, near: tuple[float, float], log: Path) -> LoadResult:
    port = _free_port()
    env = {**os.environ, "NETGIS_DATABASE_URL": url, "NETGIS_API_KEYS": KEY}
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "netgis.cli", "serve", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                # also computes the default analysis once, as a running service would have
                if httpx.get(f"{base}/kpis", timeout=600).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("netgis serve did not start:\n" + log.read_text())
            time.sleep(0.2)
        return run_load(base, near=near, key=KEY, writers=WRITERS, writes_each=WRITES_EACH,
                        readers=READERS, reads_each=READS_EACH, time_cap_s=TIME_CAP_S,
                        timeout_s=300)
    finally:
        server.terminate()
        server.wait(60)


def main() -> None:
    from netgis.generate import generate_city
    from netgis.storage import Repository, create_engine

    premises = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    dataset = generate_city(premises=premises, seed=5)
    lon, lat = dataset.premises.to_crs(4326).geometry.iloc[0].coords[0]
    results: list[tuple[str, LoadResult]] = []
    with tempfile.TemporaryDirectory(prefix="netgis-bench-load-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        repo = Repository.from_url(url)
        repo.init()
        repo.load_dataset(dataset)
        repo.close()
        results.append(("SpatiaLite", _serve_and_load(url, (lon, lat), Path(tmp) / "sl.log")))
        print("SpatiaLite:", results[-1][1].summary(), flush=True)

        admin = sqlalchemy.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
        db = f"netgis_bench_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{db}"')  # generated name, not user input
        try:
            pg_url = admin.url.set(database=db).render_as_string(False)
            repo = Repository(create_engine(pg_url))
            repo.init()
            repo.load_dataset(dataset)
            repo.close()
            results.append(("PostGIS", _serve_and_load(pg_url, (lon, lat),
                                                       Path(tmp) / "pg.log")))
            print("PostGIS:", results[-1][1].summary(), flush=True)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            admin.dispose()

    lines = [
        "## api_load",
        "",
        f"`benchmarks.loadgen.run_load` against `netgis serve` (own process, loopback) on a "
        f"generated city of {premises:,} premises: {WRITERS} concurrent writers x "
        f"{WRITES_EACH} writes (add a premise, then alternate PATCH of its units and POST "
        f"of a new node), {READERS} readers x {READS_EACH} reads (feature pages, /kpis, "
        "/analysis/coverage, /health), time cap "
        f"{TIME_CAP_S:.0f} s. Errors: 5xx or no answer; refused: 4xx; lost: acknowledged "
        "writes missing from the data read back afterwards. Every write also triggers the "
        "KPI snapshot of the new data (after its response).",
        "",
        "| database | requests | errors | refused | concurrent writers | lost writes | p50 | "
        "p99 | writes p99 | wall |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results:
        lines.append(
            f"| {name} | {r.requests} | {len(r.errors)} | {len(r.refused)} | {r.writers} | "
            f"{r.lost_writes} | {r.latency(50) * 1000:.0f} ms | {r.latency(99) * 1000:.0f} ms | "
            f"{r.latency(99, 'write') * 1000:.0f} ms | {r.wall_s:.1f} s"
            + (" (capped)" if r.capped else "") + " |")
    load_1m, load_5m, _ = os.getloadavg()
    lines += ["", f"Load average at the end {load_1m:.1f} (1 min), {load_5m:.1f} (5 min) on "
              f"{os.cpu_count()} cores shared with other jobs (absolute "
              "latencies are noisy; each write's snapshot analyses the whole city).",
              f"Command: `.venv/bin/python -m benchmarks.bench_api_load {premises}`."]
    record("api_load", "\n".join(lines))


if __name__ == "__main__":
    main()
