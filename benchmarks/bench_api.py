"""Latency of GET /analysis/serviceability on a real uvicorn server over loopback.

A generated city of 100 k premises is loaded into a SpatiaLite file; ``netgis
serve`` runs in its own process; one client sends 1,000 sequential requests at
random points inside the city (keep-alive connection) after one warm-up
request, which computes and caches the analysis.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from benchmarks._record import record

N_PREMISES = 100_000
N_REQUESTS = 1_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    from netgis.generate import generate_city
    from netgis.storage import Repository

    with tempfile.TemporaryDirectory(prefix="netgis-bench-api-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        t0 = time.perf_counter()
        dataset = generate_city(premises=N_PREMISES, seed=1)
        repo = Repository.from_url(url)
        repo.init()
        repo.load_dataset(dataset)
        repo.engine.dispose()
        load_s = time.perf_counter() - t0
        wgs = dataset.premises.to_crs(4326).total_bounds
        n_spans = len(dataset.spans)

        port = _free_port()
        env = {**os.environ, "NETGIS_DATABASE_URL": url}
        server = subprocess.Popen(
            [sys.executable, "-m", "netgis.cli", "serve", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, timeout=600) as client:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        client.get("/health").raise_for_status()
                        break
                    except httpx.TransportError:
                        if time.monotonic() > deadline or server.poll() is not None:
                            raise
                        time.sleep(0.1)
                rng = np.random.default_rng(0)
                lon = rng.uniform(wgs[0], wgs[2], N_REQUESTS)
                lat = rng.uniform(wgs[1], wgs[3], N_REQUESTS)
                t0 = time.perf_counter()
                client.get("/analysis/serviceability",
                           params={"lon": lon[0], "lat": lat[0]}).raise_for_status()
                cold_s = time.perf_counter() - t0
                times = np.empty(N_REQUESTS)
                passed = 0
                for i in range(N_REQUESTS):
                    t0 = time.perf_counter()
                    r = client.get("/analysis/serviceability",
                                   params={"lon": lon[i], "lat": lat[i]})
                    times[i] = time.perf_counter() - t0
                    r.raise_for_status()
                    passed += bool(r.json()["passed"])
        finally:
            server.terminate()
            server.wait(timeout=30)
    ms = times * 1000
    record("api", "\n".join([
        "## api: `GET /analysis/serviceability` over loopback",
        "",
        f"Generated city: {N_PREMISES:,} premises, {n_spans:,} spans, SpatiaLite file; "
        "`netgis serve` (uvicorn, 1 worker) in its own process; one client, keep-alive, "
        f"{N_REQUESTS:,} sequential requests at random points in the city "
        f"({passed} of them passed).",
        "",
        "| figure | value |",
        "|---|---|",
        f"| p50 latency | {np.percentile(ms, 50):.2f} ms |",
        f"| p99 latency | {np.percentile(ms, 99):.2f} ms |",
        f"| mean latency | {ms.mean():.2f} ms |",
        f"| max latency | {ms.max():.2f} ms |",
        f"| throughput (sequential) | {N_REQUESTS / times.sum():.0f} req/s |",
        f"| first request (reads the db, runs the analysis, caches it) | {cold_s:.1f} s |",
        f"| generate + load into SpatiaLite | {load_s:.1f} s |",
        "",
        "Command: `.venv/bin/python -m benchmarks.bench_api`",
    ]))


if __name__ == "__main__":
    main()
