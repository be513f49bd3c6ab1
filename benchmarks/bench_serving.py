"""Serving a large network from stored results in PostGIS: per-item latency over loopback.

``python -m benchmarks.bench_serving [PREMISES] [WORKERS] [ROUNDS]`` (default 10,000,000,
2 and 1,000).

The database ``netgis_bench_<N>`` (``netgis_bench_10m`` for 10 M, ``netgis_bench_1m``
for 1 M) on 127.0.0.1:5432 is kept between runs: the first run generates the city
(``netgis generate --seed 61``, GeoParquet in a temporary directory), loads it
(``netgis db load``, PostgreSQL COPY) and analyses it once with ``netgis analyze --db
--store``; later runs reuse it. Then ``netgis serve --workers WORKERS`` starts on it
and one client (keep-alive) sends sequential requests: a premise page
(``GET /analysis/premises/{id}`` of random premises), a serviceability lookup
(``GET /analysis/serviceability`` at random points near random premises) and ``GET
/kpis``. The server must answer all of them from the stored run: ``/health``'s
``analyses_computed`` is checked to stay 0. Heavy: run it under
``flock /tmp/netgis-heavy.lock``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import sqlalchemy

from benchmarks._record import record

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
N_REQUESTS = 1_000
SEED = 61


def _db_name(premises: int) -> str:
    if premises % 1_000_000 == 0:
        return f"netgis_bench_{premises // 1_000_000}m"
    return f"netgis_bench_{premises}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(*args: str, env: dict[str, str] | None = None) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "netgis.cli", *args], check=True,
                         capture_output=True, text=True, env={**os.environ, **(env or {})})
    return time.perf_counter() - t0, out.stdout + out.stderr


def _prepare(premises: int, url: str) -> dict[str, Any]:
    """Create, load and analyse the database unless a stored run is there already."""
    admin = sqlalchemy.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = sqlalchemy.make_url(url).database
    with admin.connect() as conn:
        exists = conn.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = %s",
                                      (name,)).first()
        if not exists:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')  # our generated name
    admin.dispose()
    steps: dict[str, Any] = {}
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            has_premises = conn.exec_driver_sql(
                "SELECT to_regclass('premises') IS NOT NULL").scalar() and \
                conn.exec_driver_sql("SELECT EXISTS (SELECT 1 FROM premises)").scalar()
    finally:
        engine.dispose()
    if not has_premises:
        with tempfile.TemporaryDirectory(prefix="netgis-bench-serving-") as tmp:
            city = Path(tmp) / "city.parquet"
            steps["generate_s"], _ = _cli("generate", "--premises", str(premises), "--seed",
                                          str(SEED), "--out", str(city))
            steps["load_s"], _ = _cli("db", "load", str(city), "--database-url", url)
    from netgis.storage import Repository

    with Repository.from_url(url) as repo:
        repo.init()  # the result tables (migration 0005) in a database loaded before them
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            stored = conn.exec_driver_sql(
                "SELECT run_id FROM analysis_runs r JOIN netgis_meta m "
                "ON m.key = 'data_version' AND r.data_version = m.value "
                "WHERE r.params_key IS NOT NULL").first()
    finally:
        engine.dispose()
    if stored is not None:
        return steps
    with tempfile.TemporaryDirectory(prefix="netgis-bench-serving-out-") as out:
        seconds, text = _cli("analyze", "--db", "--store", "--out", out,
                             env={"NETGIS_DATABASE_URL": url})
    steps["analyze_store_s"] = seconds
    steps["analyze_note"] = text.strip().splitlines()[-1] if text.strip() else ""
    return steps


def _sample(url: str, n: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    """``n`` random premise ids and their lon/lat (TABLESAMPLE: no full scan)."""
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            total = conn.exec_driver_sql("SELECT reltuples FROM pg_class "
                                         "WHERE relname = 'premises'").scalar() or 1
            pct = min(100.0, 100.0 * 3 * n / float(total))
            rows = conn.exec_driver_sql(
                f"SELECT premise_id, ST_X(geometry), ST_Y(geometry) FROM premises "
                f"TABLESAMPLE SYSTEM ({pct:.6f}) REPEATABLE ({SEED})").all()
    finally:
        engine.dispose()
    pick = rng.choice(len(rows), size=min(n, len(rows)), replace=False)
    chosen = [rows[i] for i in pick]
    return [str(r[0]) for r in chosen], np.asarray([(r[1], r[2]) for r in chosen])


def _timed(client: httpx.Client, path: str, params: dict[str, Any] | None = None
           ) -> tuple[float, httpx.Response]:
    t0 = time.perf_counter()
    r = client.get(path, params=params)
    return time.perf_counter() - t0, r


def _stats(times: list[float]) -> dict[str, float]:
    ms = np.asarray(times) * 1000
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
            "max": float(ms.max())}


def main() -> None:
    premises = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else N_REQUESTS
    url = sqlalchemy.make_url(ADMIN_URL).set(database=_db_name(premises)) \
        .render_as_string(hide_password=False)
    load_before = os.getloadavg()
    steps = _prepare(premises, url)
    print(json.dumps(steps), flush=True)
    rng = np.random.default_rng(SEED)
    ids, lonlat = _sample(url, rounds, rng)
    points = lonlat + rng.normal(0, 0.0005, lonlat.shape)  # ~50 m around a premise

    port = _free_port()
    env = {**os.environ, "NETGIS_DATABASE_URL": url}
    server = subprocess.Popen(
        [sys.executable, "-m", "netgis.cli", "serve", "--port", str(port), "--workers",
         str(workers)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    timings: dict[str, list[float]] = {"premise": [], "serviceability": [], "kpis": []}
    try:
        with httpx.Client(base_url=base, timeout=600) as client:
            t_start = time.perf_counter()
            deadline = time.monotonic() + 120
            while True:
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the server did not start")
                time.sleep(0.1)
            start_s = time.perf_counter() - t_start
            t_first, first = _timed(client, "/kpis")
            assert first.status_code == 200, first.text
            for i in range(len(ids)):
                t, r = _timed(client, f"/analysis/premises/{ids[i]}")
                assert r.status_code == 200, r.text
                timings["premise"].append(t)
                lon, lat = points[i]
                t, r = _timed(client, "/analysis/serviceability",
                              {"lon": float(lon), "lat": float(lat)})
                assert r.status_code == 200, r.text
                timings["serviceability"].append(t)
                t, r = _timed(client, "/kpis")
                assert r.status_code == 200, r.text
                timings["kpis"].append(t)
            computed = [client.get("/health").json()["analyses_computed"]
                        for _ in range(4 * workers)]
    finally:
        server.terminate()
        server.wait(timeout=60)
    if any(computed):
        raise RuntimeError(f"the server analysed instead of reading stored results: {computed}")
    load_after = os.getloadavg()
    stats = {k: _stats(v) for k, v in timings.items()}
    print(json.dumps(stats), flush=True)
    n_label = f"{premises / 1e6:g} M" if premises >= 1_000_000 else f"{premises:,}"
    lines = [
        "## serving: stored results in PostGIS (`python -m benchmarks.bench_serving`)",
        "",
        f"{n_label} premises (generated city, seed {SEED}), database `{_db_name(premises)}` "
        f"on 127.0.0.1:5432, analysed once by `netgis analyze --db --store`; `netgis serve "
        f"--workers {workers}` answers from the stored run (`/health` analyses_computed "
        f"stayed 0 in every worker asked). One keep-alive client on loopback, "
        f"{len(ids):,} sequential rounds of the three requests; random premises "
        "(TABLESAMPLE) and points about 50 m around them.",
        "",
        "| request | p50 | p99 | max |",
        "|---|---|---|---|",
    ]
    names = {"premise": "GET /analysis/premises/{id}",
             "serviceability": "GET /analysis/serviceability?lon&lat", "kpis": "GET /kpis"}
    for key, label in names.items():
        s = stats[key]
        lines.append(f"| `{label}` | {s['p50']:.1f} ms | {s['p99']:.1f} ms | "
                     f"{s['max']:.1f} ms |")
    prep = ", ".join(f"{k} {v:.0f} s" for k, v in steps.items() if k.endswith("_s"))
    lines += [
        "",
        f"Server start to first `/health`: {start_s:.1f} s; first `/kpis` {t_first * 1000:.0f} "
        f"ms (nothing is loaded at start). Preparation this run: {prep}.",
        f"Load average (1, 5, 15 min) before {tuple(round(x, 2) for x in load_before)}, after "
        f"{tuple(round(x, 2) for x in load_after)} on a shared 2-core machine. Command: "
        f"`.venv/bin/python -m benchmarks.bench_serving {premises} {workers} {rounds}` "
        "(the database prepared before, under `flock /tmp/netgis-heavy.lock`).",
    ]
    record("serving", "\n".join(lines))


if __name__ == "__main__":
    main()
