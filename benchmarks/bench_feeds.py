"""KPI feeds: latency of /kpis (first, cached, 304), /kpis.csv and /metrics on a real
uvicorn server over loopback, and the cost of formatting many areas.

A generated city of 50 k premises is loaded into a SpatiaLite file and served
by uvicorn in a thread of this process; one keep-alive client sends the
requests sequentially. The first /kpis computes the analysis and stores a
KPI snapshot; later requests use the cached analysis.
"""

from __future__ import annotations

import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from benchmarks._record import peak_rss_mb, record

N_PREMISES = 50_000
N_REPEAT = 50
N_AREAS = 10_000


def _median_ms(client: httpx.Client, path: str, n: int, **kwargs: Any) -> tuple[float, int]:
    times, status = [], 0
    for _ in range(n):
        t0 = time.perf_counter()
        response = client.get(path, **kwargs)
        times.append(time.perf_counter() - t0)
        status = response.status_code
    return 1000.0 * statistics.median(times), status


def _formatting() -> tuple[float, float, float]:
    from netgis.products.feeds import INT_KEYS, kpis_csv, prometheus_text, read_kpis_csv
    from netgis.schema import AREA_KPIS, NETWORK_KPIS

    def value(key: str, i: int) -> float:
        return i if key in INT_KEYS else i / 3

    network = {k: value(k, 10**6) for k in NETWORK_KPIS}
    areas = [{"area_id": f"a{i}", "name": f"Area {i}", **{k: value(k, i) for k in AREA_KPIS}}
             for i in range(N_AREAS)]
    kpis = {"network": network, "areas": areas}
    t0 = time.perf_counter()
    text = kpis_csv(kpis)
    t1 = time.perf_counter()
    read_kpis_csv(text)
    t2 = time.perf_counter()
    prometheus_text(kpis)
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2


def main() -> None:
    from netgis.api.app import create_app
    from netgis.api.settings import Settings
    from netgis.generate import generate_city
    from netgis.storage import Repository

    with tempfile.TemporaryDirectory(prefix="netgis-bench-feeds-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        dataset = generate_city(premises=N_PREMISES, seed=3)
        repo = Repository.from_url(url)
        repo.init()
        repo.load_dataset(dataset)
        repo.engine.dispose()
        n_areas = len(dataset.areas)

        app = create_app(Settings(database_url=url))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
                t0 = time.perf_counter()
                first = client.get("/kpis")
                first_s = time.perf_counter() - t0
                tag = first.headers["etag"]
                cached_ms, _ = _median_ms(client, "/kpis", N_REPEAT)
                not_modified_ms, status_304 = _median_ms(client, "/kpis", N_REPEAT,
                                                         headers={"If-None-Match": tag})
                csv_ms, _ = _median_ms(client, "/kpis.csv", N_REPEAT)
                metrics_ms, _ = _median_ms(client, "/metrics", N_REPEAT)
                history_ms, _ = _median_ms(client, "/kpis/history", N_REPEAT)
                health_ms, _ = _median_ms(client, "/health", N_REPEAT)
        finally:
            server.should_exit = True
            thread.join(timeout=30)
            sock.close()
    assert status_304 == 304
    csv_s, read_s, prom_s = _formatting()
    record("feeds", f"""
## KPI feeds (`python -m benchmarks.bench_feeds`)

Generated city, {N_PREMISES:,} premises, {n_areas} areas, SpatiaLite, uvicorn in a thread,
one keep-alive client on loopback; medians of {N_REPEAT} sequential requests.

| request | time |
|---|---|
| first GET /kpis (analysis + snapshot) | {first_s:.2f} s |
| GET /kpis, cached analysis | {cached_ms:.1f} ms |
| GET /kpis with matching If-None-Match (304) | {not_modified_ms:.1f} ms |
| GET /kpis.csv, cached | {csv_ms:.1f} ms |
| GET /metrics (KPIs + request metrics), cached | {metrics_ms:.1f} ms |
| GET /kpis/history (1 snapshot) | {history_ms:.1f} ms |
| GET /health (baseline: one version query, small body) | {health_ms:.1f} ms |

Formatting {N_AREAS:,} areas: CSV {1000 * csv_s:.0f} ms, CSV read back {1000 * read_s:.0f} ms,
Prometheus text {1000 * prom_s:.0f} ms. Peak RSS {peak_rss_mb():.0f} MiB.
""")


if __name__ == "__main__":
    main()
