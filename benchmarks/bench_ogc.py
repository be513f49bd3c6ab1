"""GDAL's OGC API driver against a 200 k-premise city (issue 18, "OGC API clients at scale").

A generated city of 200 k premises is loaded into SpatiaLite and into PostGIS;
``netgis serve`` runs in its own process on each (default settings: page size
100, maximum 10,000). Measured over loopback with Debian's gdal-bin:

- ``ogrinfo -so OAPIF:URL premises`` (count and extent; target under 5 s),
- ``ogr2ogr -oo PAGE_SIZE=<the document's maximum>`` of every premise to a
  GeoPackage (target under 15 s; the copy's feature count is checked),
- one items page of the maximum size at offsets 0, 100,000 and 190,000, the
  same pages by ``cursor`` (keyset paging, what the ``next`` links carry and
  GDAL follows), and a ``/collections`` request right after a load (the
  extent aggregate) and again (cached).

Run it through the shared lock: ``flock /tmp/netgis-heavy.lock python -m benchmarks.bench_ogc``.
``NETGIS_BENCH_OGC_PREMISES`` changes the size, ``NETGIS_BENCH_OGC_DBS=spatialite`` skips
PostGIS.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import sqlalchemy

from benchmarks._record import record
from netgis.api.params import Cursor, encode_cursor

N_PREMISES = int(os.environ.get("NETGIS_BENCH_OGC_PREMISES", "200000"))
DATABASES = os.environ.get("NETGIS_BENCH_OGC_DBS", "spatialite,postgis").split(",")
POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
#: Page depths measured: the start, the middle, the last page (0, 100,000, 190,000 at 200 k).
OFFSETS = (0, N_PREMISES // 2, N_PREMISES - N_PREMISES // 20)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _postgis_database() -> Iterator[str]:
    name = f"ogc_bench_{os.getpid()}"
    admin = sqlalchemy.create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def _server(url: str) -> Iterator[tuple[str, int]]:
    port = _free_port()
    env = {**os.environ, "NETGIS_DATABASE_URL": url}
    proc = subprocess.Popen([sys.executable, "-m", "netgis.cli", "serve", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("netgis serve did not start")
            time.sleep(0.2)
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _timed(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {done.stderr[-2000:]}")
    return elapsed, done.stdout


def _children_cpu_s() -> float:
    """CPU time (user + system) of this process's finished children."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _process_cpu_s(pid: int) -> float:
    """CPU time (user + system) used so far by the running process ``pid`` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(url: str, tmp: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    with _server(url) as (base, pid), httpx.Client(base_url=base, timeout=600) as client:
        t0 = time.perf_counter()
        assert client.get("/collections").status_code == 200
        out["collections_first_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        client.get("/collections")
        out["collections_cached_s"] = time.perf_counter() - t0
        paths = client.get("/openapi.json").json()["paths"]
        limit = next(p for p in paths["/collections/premises/items"]["get"]["parameters"]
                     if p["name"] == "limit")["schema"]
        maximum = int(limit["maximum"])
        out["page_max"] = maximum
        for offset in OFFSETS:
            t0 = time.perf_counter()
            r = client.get("/collections/premises/items",
                           params={"limit": maximum, "offset": offset})
            r.raise_for_status()
            out[f"page_at_{offset}_s"] = time.perf_counter() - t0
            # the same page by keyset: the cursor a next link would carry (after the id
            # before the page), as GDAL follows them
            before = client.get("/collections/premises/items",
                                params={"limit": 1, "offset": offset - 1}) if offset else None
            params: dict[str, object] = {"limit": maximum}
            if before is not None:
                last = before.json()["features"][0]["id"]
                params["cursor"] = encode_cursor(Cursor("after", last))
            t0 = time.perf_counter()
            r = client.get("/collections/premises/items", params=params)
            r.raise_for_status()
            out[f"cursor_at_{offset}_s"] = time.perf_counter() - t0
            assert [f["id"] for f in r.json()["features"]] == [
                f["id"] for f in client.get("/collections/premises/items", params={
                    "limit": maximum, "offset": offset}).json()["features"]]
        ogrinfo_s, info = _timed(["ogrinfo", "-so", f"OAPIF:{base}", "premises"])
        out["ogrinfo_s"] = ogrinfo_s
        count = re.search(r"Feature Count: (\d+)", info)
        out["ogrinfo_count"] = int(count.group(1)) if count else None
        out["ogrinfo_has_extent"] = "Extent: (" in info
        target = tmp / f"copy-{time.monotonic_ns()}.gpkg"
        gdal_cpu, server_cpu = _children_cpu_s(), _process_cpu_s(pid)
        ogr2ogr_s, _ = _timed(["ogr2ogr", "-f", "GPKG", str(target), f"OAPIF:{base}",
                               "premises", "-oo", f"PAGE_SIZE={maximum}"])
        out["ogr2ogr_s"] = ogr2ogr_s
        out["ogr2ogr_gdal_cpu_s"] = _children_cpu_s() - gdal_cpu
        out["ogr2ogr_server_cpu_s"] = _process_cpu_s(pid) - server_cpu
        _, copied = _timed(["ogrinfo", "-so", str(target), "premises"])
        found = re.search(r"Feature Count: (\d+)", copied)
        out["ogr2ogr_count"] = int(found.group(1)) if found else None
    return out


def main() -> None:
    from netgis.generate import generate_city
    from netgis.storage import Repository

    if shutil.which("ogrinfo") is None:
        raise SystemExit("gdal-bin is missing: run scripts/install-system.sh")
    version = subprocess.run(["ogrinfo", "--version"], capture_output=True, text=True,
                             check=True).stdout.strip()
    load_before = os.getloadavg()
    dataset = generate_city(premises=N_PREMISES, seed=1)
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="netgis-bench-ogc-") as tmp_name:
        tmp = Path(tmp_name)
        for db in DATABASES:
            with (_postgis_database() if db == "postgis"
                  else _nullcontext(f"sqlite:///{tmp / 'bench.db'}")) as url:
                repo = Repository.from_url(url)
                repo.init()
                t0 = time.perf_counter()
                repo.load_dataset(dataset)
                load_s = time.perf_counter() - t0
                repo.close()
                results[db] = {"load_s": load_s, **_measure(url, tmp)}
                print(db, results[db], flush=True)
    load = os.getloadavg()
    rows = [
        "| | " + " | ".join(results) + " |",
        "|---|" + "---|" * len(results),
    ]

    def row(label: str, key: str, fmt: str = "{:.2f}") -> None:
        rows.append(f"| {label} | " + " | ".join(
            fmt.format(results[db][key]) if results[db][key] is not None else "-"
            for db in results) + " |")

    row("`ogrinfo -so OAPIF:... premises` (s; target < 5)", "ogrinfo_s")
    row("feature count ogrinfo reports", "ogrinfo_count", "{}")
    row("extent in the ogrinfo summary", "ogrinfo_has_extent", "{}")
    row("`ogr2ogr -oo PAGE_SIZE=max` of every premise (s; target < 15)", "ogr2ogr_s")
    row("CPU time of ogr2ogr in that copy (GDAL reading pages, writing the GeoPackage) (s)",
        "ogr2ogr_gdal_cpu_s")
    row("CPU time of `netgis serve` in that copy (PostgreSQL's own not counted) (s)",
        "ogr2ogr_server_cpu_s")
    row("premises in the copy", "ogr2ogr_count", "{}")
    row("page size (the document's maximum of limit)", "page_max", "{}")
    for offset in OFFSETS:
        row(f"one page of the maximum size at offset {offset:,} (s)", f"page_at_{offset}_s")
    for offset in OFFSETS:
        row(f"the same page by cursor (keyset; what `next` links carry) at {offset:,} (s)",
            f"cursor_at_{offset}_s")
    row("/collections after a load (extent aggregate) (s)", "collections_first_s", "{:.3f}")
    row("/collections again (cached per data version) (s)", "collections_cached_s", "{:.3f}")
    row("loading the city into the database (s)", "load_s")
    record("ogc", f"""
## OGC API clients at scale (bench_ogc)

`python -m benchmarks.bench_ogc` (through `flock /tmp/netgis-heavy.lock`): a generated city
of {N_PREMISES:,} premises (`generate_city(seed=1)`), `netgis serve` with default settings,
{version}, over loopback. Load average (1 / 5 / 15 min) at the start: {_load(load_before)},
at the end: {_load(load)} (2 cores, shared with other jobs).

{chr(10).join(rows)}
""")


def _load(load: tuple[float, float, float]) -> str:
    return " / ".join(f"{v:.1f}" for v in load)


@contextmanager
def _nullcontext(value: str) -> Iterator[str]:
    yield value


if __name__ == "__main__":
    main()
