"""Map pages per scale: build time, HTML size and time to open in headless Chromium.

``python -m benchmarks.bench_maps [N ...]`` (default 1k, 20k, 100k, 1M premises)
builds the coverage, criticality, gaps and areas maps on a synthetic analysed
city (frames with the columns ``netgis.engine.analysis.analyze`` adds, made directly
so that the figures are the maps' own), renders each page self-contained and
opens it in /usr/bin/chromium.

``python -m benchmarks.bench_maps --api [N]`` (default 200k premises) serves a
generated city (``netgis generate --seed 61``) from SpatiaLite with ``netgis
serve`` and times each ``/maps/{kind}`` page over loopback: the first call
(the coverage page's includes the analysis), a second identical call (the page
cache) and a call with ``If-None-Match`` (304); it records the page sizes and
the circles of the criticality page.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from benchmarks._record import peak_rss_mb, record
from netgis.maps import areas_map, coverage_map, criticality_map, gaps_map, inline_html
from netgis.schema import DEFAULT_DROP_M

CRS = 32632  # UTM 32N, around Frankfurt
X0, Y0 = 470_000.0, 5_550_000.0
BLOCK_M = 120.0
SCALES = (1_000, 20_000, 100_000, 1_000_000)


def synthetic(n_premises: int, seed: int = 0) -> dict[str, Any]:
    """An analysed grid city: one span per ten premises, premises along the spans."""
    rng = np.random.default_rng(seed)
    n_spans = max(2, n_premises // 10)
    side = int(np.ceil(np.sqrt(n_spans))) + 1
    ii, jj = np.meshgrid(np.arange(side), np.arange(side))
    nx_, ny_ = X0 + ii.ravel() * BLOCK_M, Y0 + jj.ravel() * BLOCK_M
    node_ids = np.array([f"n{k}" for k in range(side * side)], dtype=object)
    kind = np.where(np.arange(side * side) % 50 == 0, "cabinet", "splice").astype(object)
    kind[(side // 2) * side + side // 2] = "core"
    nodes = gpd.GeoDataFrame({
        "node_id": node_ids, "kind": kind, "status": "in_service",
        "failure_units": np.where(rng.random(side * side) < 0.2,
                                  rng.integers(1, 500, side * side), 0),
    }, geometry=shapely.points(nx_, ny_), crs=CRS)
    # horizontal spans (node k to k+1 in a row)
    starts = np.flatnonzero((np.arange(side * side) % side) < side - 1)[:n_spans]
    a = np.column_stack([nx_[starts], ny_[starts]])
    b = a + np.array([BLOCK_M, 0.0])
    status = rng.choice(np.array(["in_service", "planned"], dtype=object), n_spans, p=[0.93, 0.07])
    lit = (status == "in_service") & (rng.random(n_spans) < 0.97)
    spans = gpd.GeoDataFrame({
        "span_id": np.array([f"s{k}" for k in range(n_spans)], dtype=object),
        "from_node": node_ids[starts], "to_node": node_ids[starts + 1], "status": status,
        "lit": lit,
        "cut_units": np.where(lit & (rng.random(n_spans) < 0.3), rng.integers(1, 300, n_spans), 0),
        "cut_premises": 0,
    }, geometry=shapely.linestrings(np.stack([a, b], axis=1)), crs=CRS)
    on = rng.integers(0, n_spans, n_premises)
    offset = rng.normal(0, 90, n_premises)
    px = a[on, 0] + rng.random(n_premises) * BLOCK_M
    py = a[on, 1] + offset
    passed = (np.abs(offset) <= DEFAULT_DROP_M) & lit[on]
    premises = gpd.GeoDataFrame({
        "premise_id": np.array([f"p{k}" for k in range(n_premises)], dtype=object),
        "units": rng.integers(1, 4, n_premises),
        "passed": passed,
        "distance_m": np.abs(offset),
        "served_span_id": np.where(passed, spans["span_id"].to_numpy()[on], None),
        "span_protected": passed & (rng.random(n_premises) < 0.5),
    }, geometry=shapely.points(px, py), crs=CRS)
    minx, miny, maxx, maxy = premises.total_bounds
    mx, my = (minx + maxx) / 2, (miny + maxy) / 2
    quads = [shapely.box(minx, miny, mx, my), shapely.box(mx, miny, maxx, my),
             shapely.box(minx, my, mx, maxy), shapely.box(mx, my, maxx, maxy)]
    areas = gpd.GeoDataFrame({"area_id": ["sw", "se", "nw", "ne"],
                              "name": ["SW", "SE", "NW", "NE"]}, geometry=quads, crs=CRS)
    area_kpis = [{"area_id": q, "coverage_pct": float(rng.uniform(40, 100)),
                  "node_protected_pct": float(rng.uniform(0, 60))} for q in areas["area_id"]]
    return {"premises": premises, "spans": spans, "nodes": nodes, "areas": areas,
            "area_kpis": area_kpis}


def builders(city: dict[str, Any]) -> dict[str, Any]:
    return {
        "coverage": lambda: coverage_map(city["premises"], city["spans"], city["nodes"]),
        "criticality": lambda: criticality_map(city["spans"], city["nodes"]),
        "gaps": lambda: gaps_map(city["premises"], spans=city["spans"]),
        "areas": lambda: areas_map(city["areas"], city["area_kpis"]),
    }


def open_seconds(context: Any, page_file: Path) -> float:
    """Seconds from navigation until the map and all its layers are on screen."""
    page = context.new_page()
    t = time.perf_counter()
    page.goto(page_file.as_uri(), wait_until="load", timeout=300_000)
    page.wait_for_selector(".leaflet-control-layers", timeout=300_000)
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => r(0)))")
    took = time.perf_counter() - t
    page.close()
    return took


def main(argv: list[str] | None = None) -> int:
    from playwright.sync_api import sync_playwright

    scales = [int(a) for a in (argv or [])] or list(SCALES)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(Path(tmp) / "profile"), executable_path="/usr/bin/chromium", headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"],
            viewport={"width": 1200, "height": 800})
        for n in scales:
            city = synthetic(n)
            for kind, build in builders(city).items():
                t = time.perf_counter()
                m = build()
                t_build = time.perf_counter() - t
                t = time.perf_counter()
                html = inline_html(m)
                t_render = time.perf_counter() - t
                page_file = Path(tmp) / f"{kind}-{n}.html"
                page_file.write_text(html, encoding="utf-8")
                t_open = open_seconds(ctx, page_file)
                rows.append((n, len(city["spans"]), kind, t_build, t_render,
                             len(html.encode()) / 2**20, t_open))
                print(rows[-1], flush=True)
                page_file.unlink()
        ctx.close()
    lines = [
        "## maps: Folium pages per scale",
        "",
        "`.venv/bin/python -m benchmarks.bench_maps`: a synthetic analysed grid city (one span",
        "per ten premises, ~7 % planned spans, ~30 % of lit spans with cut impact), each page",
        "self-contained (Leaflet inlined, ~150 KiB of it), default `max_features` 20,000 (above",
        "it premises become H3 res-9 hexagons, spans of a class one merged line, critical",
        "spans/nodes the 20,000 worst). *open* = headless Chromium from navigation until the",
        "map and its layers are drawn (file://, 1200x800).",
        "",
        "| premises | spans | map | build | render | HTML | open |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, ns, kind, tb, tr, mb, to in rows:
        lines.append(f"| {n:,} | {ns:,} | {kind} | {tb:.2f} s | {tr:.2f} s | {mb:.1f} MiB | "
                     f"{to:.2f} s |")
    lines += ["", f"Peak RSS of the run {peak_rss_mb():,.0f} MiB."]
    record("maps", "\n".join(lines))
    return 0


API_PREMISES = 200_000
API_SEED = 61


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api_main(n_premises: int = API_PREMISES) -> int:
    """Time the API's map pages (first, cached, 304) on a generated city; record them."""
    import os
    import re
    import subprocess

    import httpx

    from netgis.generate import generate_city
    from netgis.storage import Repository

    rows = []
    with tempfile.TemporaryDirectory(prefix="netgis-bench-maps-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'city.db'}"
        t = time.perf_counter()
        dataset = generate_city(premises=n_premises, seed=API_SEED)
        repo = Repository.from_url(url)
        repo.init()
        repo.load_dataset(dataset)
        repo.engine.dispose()
        load_s = time.perf_counter() - t
        n_spans, n_nodes = len(dataset.spans), len(dataset.nodes)
        del dataset
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "netgis.cli", "serve", "--port", str(port)],
            env={**os.environ, "NETGIS_DATABASE_URL": url},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=1200) as client:
                deadline = time.monotonic() + 120
                while True:
                    try:
                        client.get("/health").raise_for_status()
                        break
                    except httpx.TransportError:
                        if time.monotonic() > deadline or server.poll() is not None:
                            raise
                        time.sleep(0.2)
                for kind in ("coverage", "criticality", "gaps", "areas"):
                    times, pages = [], []
                    for _ in range(3):
                        t = time.perf_counter()
                        r = client.get(f"/maps/{kind}")
                        times.append(time.perf_counter() - t)
                        r.raise_for_status()
                        pages.append(r.content)
                    t = time.perf_counter()
                    again = client.get(f"/maps/{kind}",
                                       headers={"If-None-Match": r.headers["etag"]})
                    t_304 = time.perf_counter() - t
                    assert again.status_code == 304, again.status_code
                    assert pages[0] == pages[1] == pages[2]
                    html = pages[0].decode()
                    points = len(re.findall(r'"type": "Point"', html))
                    rows.append((kind, times[0], min(times[1:]), t_304, len(pages[0]) / 2**20,
                                 points))
                    print(rows[-1], flush=True)
        finally:
            server.terminate()
            server.wait(timeout=60)
    load = os.getloadavg()
    lines = [
        "## maps_api: map pages of the API, first call and cached (issue 14)",
        "",
        f"`.venv/bin/python -m benchmarks.bench_maps --api {n_premises}` (run through",
        "`flock /tmp/netgis-heavy.lock`): `generate_city(premises="
        f"{n_premises:,}, seed={API_SEED})` ({n_spans:,} spans, {n_nodes:,} nodes) in a "
        "SpatiaLite file, `netgis serve` in its own process, one client over loopback. *first* "
        "= the first request of the page (the coverage page, asked first, includes reading the "
        "data and the analysis; the gaps page its build plan); *cached* = the best of two "
        "identical requests after it (page cache per data version and parameters); *304* = "
        "the same request with `If-None-Match`. *points* = GeoJSON points (circles) on the "
        "page. Before this change (issue 14): first /maps/coverage 9.7 s, every later call "
        "1.2-1.4 s; the criticality page 9.3 MB with 12,436 node circles.",
        "",
        "| map | first | cached | 304 | HTML | points |",
        "|---|---|---|---|---|---|",
    ]
    for kind, first, cached, t304, mb, points in rows:
        lines.append(f"| {kind} | {first:.2f} s | {cached * 1000:.0f} ms | {t304 * 1000:.0f} ms "
                     f"| {mb:.1f} MiB | {points:,} |")
    lines += ["", f"Generate + load {load_s:.1f} s. Load average at the end "
              f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min) on "
              f"{os.cpu_count()} cores, other helpers' jobs running."]
    record("maps_api", "\n".join(lines))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--api"]:
        sys.exit(api_main(*(int(a) for a in sys.argv[2:3])))
    sys.exit(main(sys.argv[1:]))
