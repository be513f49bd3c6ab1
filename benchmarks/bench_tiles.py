"""Vector tiles on a 1 M-premise city, from SpatiaLite and from PostGIS, over loopback.

``python -m benchmarks.bench_tiles [DATASET]`` (default: ``netgis generate --premises
1000000 --seed 61``, written once to ``benchmarks/.data/city1m.gpkg``) loads the city into a
SpatiaLite file and a PostGIS database (``NETGIS_BENCH_POSTGRES``, default the local
server), runs ``netgis serve`` on each in its own process and, once the analysis is warm
(the first tile request computes it; its time is reported apart):

- z14 premises tiles: each of the ``N_Z14`` busiest z14 tiles of the city requested once
  (a cache miss: read through the spatial index, joined with the analysis, encoded), then
  once more (served from the tile cache): p50 / p99 / max latency of each pass;
- tile sizes: at each zoom 0-16 the ``N_PER_ZOOM`` busiest tiles (by premises) of the
  premises and spans layers; the largest body at each zoom;
- the coverage map page opened in headless Chromium, then taken to street zoom over the
  busiest z14 tile (the SpatiaLite one is the README's screenshot).

Heavy: run it through ``flock /tmp/netgis-heavy.lock`` on a shared machine.
"""

from __future__ import annotations

import math
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

N_PREMISES = 1_000_000
SEED = 61
N_Z14 = 200
N_PER_ZOOM = 2
ZOOMS = range(0, 17)
POSTGRES = os.environ.get("NETGIS_BENCH_POSTGRES",
                          "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
DATA = Path(__file__).with_name(".data")
#: The README's picture of the 1 M-premise city at street zoom (from the SpatiaLite server).
SCREENSHOT = Path(__file__).parents[1] / "docs" / "map-coverage-1m-street.png"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tile_of(lon: np.ndarray, lat: np.ndarray, z: int) -> np.ndarray:
    n = 2 ** z
    x = np.floor((lon + 180) / 360 * n).astype(np.int64)
    y = np.floor((1 - np.arcsinh(np.tan(np.radians(lat))) / math.pi) / 2 * n).astype(np.int64)
    return np.column_stack([x, y])


def _tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    n = 2 ** z
    lat = [math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * v / n)))) for v in (y + 1, y)]
    return x / n * 360 - 180, lat[0], (x + 1) / n * 360 - 180, lat[1]


def _busiest(lon: np.ndarray, lat: np.ndarray, z: int, k: int) -> list[tuple[int, int]]:
    tiles, counts = np.unique(_tile_of(lon, lat, z), axis=0, return_counts=True)
    order = np.argsort(-counts, kind="stable")[:k]
    return [(int(tiles[i, 0]), int(tiles[i, 1])) for i in order]


def _postgres_db(name: str) -> str:
    import sqlalchemy

    admin = sqlalchemy.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return str(sqlalchemy.make_url(POSTGRES).set(database=name))


def _drop_postgres_db(name: str) -> None:
    import sqlalchemy

    admin = sqlalchemy.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def _serve(url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "NETGIS_DATABASE_URL": url}
    server = subprocess.Popen([sys.executable, "-m", "netgis.cli", "serve", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.get(f"{base}/health", timeout=5).raise_for_status()
            return server, base
        except httpx.HTTPError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise
            time.sleep(0.2)


def _ms(values: list[float]) -> str:
    a = np.asarray(values) * 1000
    return (f"{np.percentile(a, 50):.1f} / {np.percentile(a, 99):.1f} / {a.max():.1f} ms"
            if a.size else "-")


def _measure(base: str, lon: np.ndarray, lat: np.ndarray) -> dict[str, object]:
    out: dict[str, object] = {}
    with httpx.Client(base_url=base, timeout=1800) as client:
        t0 = time.perf_counter()
        client.get("/tiles/premises/0/0/0.mvt").raise_for_status()  # computes the analysis
        out["warm_s"] = time.perf_counter() - t0
        z14 = _busiest(lon, lat, 14, N_Z14)
        for name in ("cold", "cached"):
            times, sizes = [], []
            for x, y in z14:
                t0 = time.perf_counter()
                r = client.get(f"/tiles/premises/14/{x}/{y}.mvt")
                times.append(time.perf_counter() - t0)
                r.raise_for_status()
                sizes.append(len(r.content))
            out[name] = times
            out["z14_bytes"] = sizes
        largest: dict[int, tuple[int, int, float]] = {}
        for z in ZOOMS:
            biggest = {"premises": 0, "spans": 0}
            slowest = 0.0
            for x, y in _busiest(lon, lat, z, N_PER_ZOOM):
                for layer in biggest:
                    t0 = time.perf_counter()
                    r = client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt")
                    slowest = max(slowest, time.perf_counter() - t0)
                    r.raise_for_status()
                    biggest[layer] = max(biggest[layer], len(r.content))
            largest[z] = (biggest["premises"], biggest["spans"], slowest)
        out["largest"] = largest
    return out


#: Waits until every vector-tile layer of a map page has loaded the tiles of a new view.
_SET_VIEW = """([lat, lng, zoom]) => new Promise((done) => {
    const map = window[document.querySelector('.folium-map').id];
    const grids = Object.keys(window).filter(n => n.startsWith('vector_tile_layer_'))
        .map(n => window[n]);
    let waiting = grids.length;
    if (waiting === 0) { done(false); return; }
    // a view whose tiles never all arrive is an answer too, not a hang
    setTimeout(() => done(false), 180000);
    grids.forEach(g => g.once('load', () => { if (--waiting === 0) done(true); }));
    map.setView([lat, lng], zoom, {animate: false});
})"""


def _map_page(base: str, lon: float, lat: float, shot: Path) -> tuple[float, float]:
    """Seconds to open /maps/coverage in Chromium (page and its tiles: network idle), then
    to show street zoom (z17) at ``lon``/``lat`` with every premise; a screenshot there."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                     args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        t0 = time.perf_counter()
        page.goto(f"{base}/maps/coverage", timeout=1_800_000)
        page.wait_for_load_state("networkidle", timeout=1_800_000)
        open_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        if not page.evaluate(_SET_VIEW, [lat, lon, 17]):
            raise RuntimeError("the street-zoom tiles did not all load")
        page.wait_for_load_state("networkidle")
        street_s = time.perf_counter() - t0
        page.screenshot(path=str(shot))
        browser.close()
    return open_s, street_s


def main(argv: list[str] | None = None) -> None:
    from netgis.io import read_dataset
    from netgis.storage import Repository

    args = sys.argv[1:] if argv is None else argv
    source = Path(args[0]) if args else DATA / "city1m.gpkg"
    if not source.exists():
        DATA.mkdir(exist_ok=True)
        subprocess.run([sys.executable, "-m", "netgis.cli", "generate", "--premises",
                        str(N_PREMISES), "--seed", str(SEED), "--out", str(source)], check=True)
    load = os.popen("uptime").read().strip()
    dataset = read_dataset(str(source))
    wgs = dataset.premises.to_crs(4326)
    lon, lat = wgs.geometry.x.to_numpy(), wgs.geometry.y.to_numpy()
    results: dict[str, dict[str, object]] = {}
    loads: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="netgis-bench-tiles-") as tmp:
        pg_name = "tiles_bench_city"
        for kind, url in (("SpatiaLite", f"sqlite:///{Path(tmp) / 'city.db'}"),
                          ("PostGIS", None)):
            url = url or _postgres_db(pg_name)
            t0 = time.perf_counter()
            repo = Repository.from_url(url)
            repo.init()
            repo.load_dataset(dataset)
            repo.engine.dispose()
            loads[kind] = time.perf_counter() - t0
            server, base = _serve(url)
            try:
                results[kind] = _measure(base, lon, lat)
                x, y = _busiest(lon, lat, 14, 1)[0]
                west, south, east, north = _tile_bounds(14, x, y)
                results[kind]["page"] = _map_page(
                    base, (west + east) / 2, (south + north) / 2,
                    SCREENSHOT if kind == "SpatiaLite" else Path(tmp) / "street.png")
            finally:
                server.terminate()
                server.wait(timeout=60)
            if kind == "PostGIS":
                _drop_postgres_db(pg_name)
            print(kind, "done", flush=True)
    lines = [
        f"Vector tiles, `python -m benchmarks.bench_tiles` on `{source.name}` "
        f"({len(dataset.premises):,} premises, {len(dataset.spans):,} spans); "
        f"`netgis serve` in its own process, one keep-alive client on loopback. "
        f"Load at start: `{load}`.",
        "",
        "| | SpatiaLite | PostGIS |",
        "|---|---|---|",
        "| load into the database | " + " | ".join(f"{loads[k]:.0f} s" for k in results) + " |",
        "| first tile (reads the data, computes the analysis) | "
        + " | ".join(f"{results[k]['warm_s']:.0f} s" for k in results) + " |",
        f"| z14 premises tile, first request, p50 / p99 / max ({N_Z14} busiest tiles) | "
        + " | ".join(_ms(results[k]["cold"]) for k in results) + " |",  # type: ignore[arg-type]
        "| the same tiles again (tile cache), p50 / p99 / max | "
        + " | ".join(_ms(results[k]["cached"]) for k in results) + " |",  # type: ignore[arg-type]
        "| /maps/coverage opened in Chromium (page and tiles, network idle) | "
        + " | ".join(f"{results[k]['page'][0]:.1f} s" for k in results)  # type: ignore[index]
        + " |",
        "| then street zoom (z17) with every premise drawn | "
        + " | ".join(f"{results[k]['page'][1]:.1f} s" for k in results)  # type: ignore[index]
        + " |",
        "| z14 premises tile, largest | "
        + " | ".join(f"{max(results[k]['z14_bytes']) / 1000:.0f} kB"  # type: ignore[call-overload]
                     for k in results) + " |",
        "",
        f"Largest tile per zoom ({N_PER_ZOOM} busiest tiles per zoom; premises / spans) and the "
        "slowest first request at that zoom:",
        "",
        "| zoom | SpatiaLite | PostGIS |",
        "|---|---|---|",
    ]
    for z in ZOOMS:
        cells = []
        for k in results:
            p, s, slow = results[k]["largest"][z]  # type: ignore[index]
            cells.append(f"{p / 1000:.0f} / {s / 1000:.0f} kB, {slow * 1000:.0f} ms")
        lines.append(f"| {z} | " + " | ".join(cells) + " |")
    lines += ["", f"Load at the end: `{os.popen('uptime').read().strip()}`."]
    record("tiles", "\n".join(lines))


if __name__ == "__main__":
    main()
