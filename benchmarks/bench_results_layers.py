"""Analysis results as GIS layers at 200 k premises (issue 31, "GIS-ready results").

A city of 200 k premises from ``netgis generate`` (a GeoPackage). Measured with the real
command line and Debian's gdal-bin:

- ``netgis analyze`` of the city with ``--format csv``, ``gpkg`` and ``parquet``: the
  whole command and its ``write`` step (``--timings``), and the size of what it wrote;
- the city loaded into SpatiaLite (``netgis db load``), ``netgis serve`` in its own
  process: the first page of the ``premise_results`` collection (the layer made from the
  live analysis) and a second one (kept), then ``ogr2ogr -where "passed = 0" -oo
  PAGE_SIZE=10000`` of every unpassed premise to a GeoPackage; the copy must hold
  exactly the premises ``netgis analyze`` wrote ``passed=false`` for.

``python -m benchmarks.bench_results_layers`` (a few minutes; through the shared lock
``flock /tmp/netgis-heavy.lock`` when others measure too). ``NETGIS_BENCH_LAYERS_PREMISES``
changes the size.
"""

from __future__ import annotations

import csv
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

from benchmarks._record import record

N_PREMISES = int(os.environ.get("NETGIS_BENCH_LAYERS_PREMISES", "200000"))
PAGE_SIZE = 10_000


def _netgis(*args: str | Path, env: dict[str, str] | None = None) -> tuple[float, str, str]:
    """Run the command line; its wall time, stdout and stderr."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "netgis.cli", *map(str, args)],
                          capture_output=True, text=True, check=False,
                          env={**os.environ, **(env or {})})
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"netgis {args[0]} failed: {done.stderr[-2000:]}")
    return elapsed, done.stdout, done.stderr


def _step_s(stderr: str, step: str) -> float | None:
    """The seconds ``--timings`` printed for ``step``."""
    found = re.search(rf"^timing: {re.escape(step)} ([\d.]+) s$", stderr, re.MULTILINE)
    return float(found.group(1)) if found else None


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.iterdir()) / 1e6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _server(url: str) -> Iterator[tuple[str, int]]:
    port = _free_port()
    env = {**os.environ, "NETGIS_DATABASE_URL": url}
    proc = subprocess.Popen([sys.executable, "-m", "netgis.cli", "serve", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
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


def _process_cpu_s(pid: int) -> float:
    """CPU time (user + system) used so far by the running process ``pid`` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu_s() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _unpassed(premises_csv: Path) -> set[str]:
    with premises_csv.open(newline="") as fh:
        return {row["premise_id"] for row in csv.DictReader(fh) if row["passed"] == "false"}


def main() -> None:
    if shutil.which("ogr2ogr") is None:
        raise SystemExit("gdal-bin is missing: run scripts/install-system.sh")
    gdal = subprocess.run(["ogr2ogr", "--version"], capture_output=True, text=True,
                          check=True).stdout.strip()
    load_before = os.getloadavg()
    out: dict[str, float | int | str | None] = {}
    with tempfile.TemporaryDirectory(prefix="netgis-bench-layers-") as tmp_name:
        tmp = Path(tmp_name)
        city = tmp / "city.gpkg"
        out["generate_s"], _, _ = _netgis("generate", "--premises", str(N_PREMISES),
                                          "--seed", "31", "--out", city)
        for fmt in ("csv", "gpkg", "parquet"):
            folder = tmp / f"out-{fmt}"
            cpu = _children_cpu_s()
            seconds, _, stderr = _netgis("analyze", city, "--out", folder, "--format", fmt,
                                         "--timings")
            out[f"analyze_{fmt}_s"] = seconds
            out[f"cpu_{fmt}_s"] = _children_cpu_s() - cpu
            out[f"write_{fmt}_s"] = _step_s(stderr, "write")
            out[f"size_{fmt}_mb"] = _size_mb(folder)
        expected = _unpassed(tmp / "out-csv" / "premises.csv")
        out["unpassed"] = len(expected)

        url = f"sqlite:///{tmp / 'city.db'}"
        out["db_load_s"], _, _ = _netgis("db", "load", city, env={"NETGIS_DATABASE_URL": url})
        with _server(url) as (base, pid), httpx.Client(base_url=base, timeout=600) as client:
            items = "/collections/premise_results/items"
            # the first analysis of the data (a KPI feed waits for it), apart from the layer
            t0 = time.perf_counter()
            client.get("/kpis").raise_for_status()
            out["first_analysis_s"] = time.perf_counter() - t0
            for key in ("first_page", "page"):
                t0, cpu = time.perf_counter(), _process_cpu_s(pid)
                client.get(items, params={"limit": PAGE_SIZE,
                                          "passed": "false"}).raise_for_status()
                out[f"{key}_s"] = time.perf_counter() - t0
                out[f"{key}_cpu_s"] = _process_cpu_s(pid) - cpu
            target = tmp / "unpassed.gpkg"
            gdal_cpu, server_cpu = _children_cpu_s(), _process_cpu_s(pid)
            t0 = time.perf_counter()
            subprocess.run(["ogr2ogr", "-f", "GPKG", str(target), f"OAPIF:{base}",
                            "premise_results", "-where", "passed = 0",
                            "-oo", f"PAGE_SIZE={PAGE_SIZE}"], check=True,
                           capture_output=True)
            out["ogr2ogr_s"] = time.perf_counter() - t0
            out["ogr2ogr_gdal_cpu_s"] = _children_cpu_s() - gdal_cpu
            out["ogr2ogr_server_cpu_s"] = _process_cpu_s(pid) - server_cpu
        import pyogrio

        copied = pyogrio.read_dataframe(target, layer="premise_results", read_geometry=False,
                                        columns=["premise_id"])
        got = set(copied["premise_id"])
        out["copied"] = len(copied)
        out["copy_equals_analyze"] = str(got == expected and len(copied) == len(expected))
        if got != expected:
            raise SystemExit(f"the copy holds {len(copied)} premises, analyze wrote "
                             f"{len(expected)} unpassed")
    load = os.getloadavg()
    print(out, flush=True)

    def cell(key: str, pattern: str = "{:.1f}") -> str:
        value = out[key]
        return "-" if value is None else pattern.format(value)

    formats = ("csv", "gpkg", "parquet")
    analyze_rows = [
        "| `netgis analyze` | " + " | ".join(formats) + " |", "|---|---|---|---|",
        *(f"| {label} | " + " | ".join(cell(f"{key}_{f}_{unit}") for f in formats) + " |"
          for label, key, unit in (("whole command (s)", "analyze", "s"),
                                   ("its CPU time, user + system (s)", "cpu", "s"),
                                   ("its `write` step (`--timings`) (s)", "write", "s"),
                                   ("size of the output folder (MB)", "size", "mb")))]
    serve_rows = [
        "| the `premise_results` collection (SpatiaLite, `netgis serve`) | |", "|---|---|",
        f"| the server's first analysis, after its start (`GET /kpis`) (s) | "
        f"{cell('first_analysis_s', '{:.2f}')} |",
        f"| first page of {PAGE_SIZE:,} unpassed premises (makes the layer of the live "
        f"analysis) (s) | {cell('first_page_s', '{:.2f}')} |",
        f"| CPU of `netgis serve` for that page (s) | {cell('first_page_cpu_s', '{:.2f}')} |",
        f"| the same page again (s) | {cell('page_s', '{:.2f}')} |",
        f"| CPU of `netgis serve` for it (s) | {cell('page_cpu_s', '{:.2f}')} |",
        f"| `ogr2ogr -where \"passed = 0\" -oo PAGE_SIZE={PAGE_SIZE}` of every unpassed "
        f"premise (s) | {cell('ogr2ogr_s', '{:.2f}')} |",
        f"| CPU of ogr2ogr in that copy (s) | {cell('ogr2ogr_gdal_cpu_s', '{:.2f}')} |",
        f"| CPU of `netgis serve` in that copy (s) | {cell('ogr2ogr_server_cpu_s', '{:.2f}')} |",
        f"| premises copied / unpassed in analyze's premises.csv | {out['copied']} / "
        f"{out['unpassed']} (equal: {out['copy_equals_analyze']}) |",
        f"| `netgis generate` / `netgis db load` of the city (s) | {cell('generate_s')} / "
        f"{cell('db_load_s')} |"]
    record("results_layers", f"""
## Results as GIS layers (issue 31, `bench_results_layers`)

`python -m benchmarks.bench_results_layers`: `netgis generate --premises {N_PREMISES:,}
--seed 31` (GeoPackage), the real command line, {gdal}, over loopback. Load average
(1 / 5 / 15 min) at the start: {_load(load_before)}, at the end: {_load(load)} (2 cores,
shared with other jobs: under load the wall times wait for a core; the CPU times do not).

{chr(10).join(analyze_rows)}

{chr(10).join(serve_rows)}
""")


def _load(load: tuple[float, float, float]) -> str:
    return " / ".join(f"{v:.1f}" for v in load)


if __name__ == "__main__":
    main()
