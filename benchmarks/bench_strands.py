"""The strand-level plant at scale: tracing every OLT port, capacity, and one premise's
upstream trace over the API.

A city of ``netgis generate --premises N --strands --seed 7`` (GeoParquet route layers,
CSV strand layers) is written; then, each in its own process and timed end to end:
``netgis validate`` (route and strand layers), ``netgis trace`` (every OLT port: the three
trace files), ``netgis capacity`` (which premises are passed, then the three capacity
files and KPIs). The same steps are timed inside one process too (reading and
checking, the walk alone, the files), so the figures say where the time goes. Last, the
city is loaded into a SpatiaLite file, ``netgis serve`` is started, and one client asks
``GET /trace?premise=ID`` for random connected premises: the first request builds the
trace of the data version, the others are what a user waits for (p50 and p99).

Run: ``.venv/bin/python -m benchmarks.bench_strands [PREMISES] [REQUESTS]`` (default
1,000,000 and 500). Figures go to benchmarks/RESULTS.md (section ``strands``).
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

import numpy as np

from benchmarks._record import peak_rss_mb, record

NETGIS = Path(sys.executable).with_name("netgis")
SEED = 7


def _timed(*args: str | Path, env: dict[str, str] | None = None) -> tuple[float, str]:
    t = time.perf_counter()
    done = subprocess.run([str(NETGIS), *map(str, args)], capture_output=True, text=True,
                          env=env, check=False)
    took = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"netgis {args[0]}: exit {done.returncode}\n{done.stderr[-3000:]}")
    return took, done.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _in_process(data: Path) -> dict[str, float]:
    """Where the time of a trace and of a capacity run goes, in one process."""
    from netgis.engine.analysis import passed_premises
    from netgis.engine.strands.outputs import run_capacity, run_trace, write_trace
    from netgis.engine.strands.trace import TraceOptions, trace_network
    from netgis.io import read_dataset
    from netgis.strand_plant import strand_plant

    out: dict[str, float] = {}
    t = time.perf_counter()
    ds = read_dataset(data)
    out["read and check route and strand layers"] = time.perf_counter() - t
    plant = strand_plant(ds, ds.strands)
    t = time.perf_counter()
    walked = trace_network(plant)
    out["walk from every OLT port"] = time.perf_counter() - t
    out["paths"] = len(walked)
    out["hop vertices"] = len(walked.parent)
    t = time.perf_counter()
    result = run_trace(plant, ds, TraceOptions())
    out["walk + the trace tables + warnings"] = time.perf_counter() - t
    out["hop rows"] = len(result.hops)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        write_trace(result, Path(tmp) / "trace")
        out["write the trace files"] = time.perf_counter() - t
    t = time.perf_counter()
    passed = passed_premises(ds)
    out["passed premises (lit spans and the nearest-span search)"] = time.perf_counter() - t
    t = time.perf_counter()
    run_capacity(plant, ds, passed, drop_m=150.0, options=TraceOptions())
    out["walk + capacity + warnings"] = time.perf_counter() - t
    return out


def _api(data: Path, tmp: Path, requests: int) -> dict[str, float]:
    """Load the city into SpatiaLite, serve it, and time GET /trace?premise=."""
    import httpx

    url = f"sqlite:///{tmp / 'strands.db'}"
    env = {**os.environ, "NETGIS_DATABASE_URL": url}
    figures: dict[str, float] = {}
    figures["db load (route + strand layers)"], _ = _timed("db", "load", data, env=env)
    drops = np.loadtxt(data / "drops.csv", delimiter=",", skiprows=1, usecols=1, dtype=str)
    rng = np.random.default_rng(0)
    chosen = rng.choice(np.unique(drops), size=requests + 1, replace=True)
    port = _free_port()
    server = subprocess.Popen([str(NETGIS), "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=900) as client:
            deadline = time.monotonic() + 300
            while True:
                try:
                    client.get("/health").raise_for_status()
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise
                    time.sleep(0.2)
            t = time.perf_counter()
            client.get("/trace", params={"premise": chosen[0]}).raise_for_status()
            figures["first /trace?premise= (builds the version's trace)"] = \
                time.perf_counter() - t
            # right after the start the server also stores its first analysis's results
            # in the background; once that is done it does nothing but answer
            for when in ("right after the start", "at rest"):
                if when == "at rest":
                    figures["seconds until the server was idle"] = _until_idle(server.pid)
                times = np.empty(requests)
                connected = 0
                for i, prem in enumerate(chosen[1:]):
                    t = time.perf_counter()
                    r = client.get("/trace", params={"premise": prem})
                    times[i] = time.perf_counter() - t
                    r.raise_for_status()
                    connected += any(p.get("end_type") == "premise"
                                     for p in r.json()["paths"])
                ms = times * 1000
                figures[f"p50 ms, {when}"] = float(np.percentile(ms, 50))
                figures[f"p99 ms, {when}"] = float(np.percentile(ms, 99))
                figures[f"max ms, {when}"] = float(ms.max())
            figures["answers with a path to the premise"] = connected
    finally:
        server.terminate()
        server.wait(timeout=60)
    return figures


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of process ``pid`` so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _until_idle(pid: int, *, window_s: float = 2.0, busy: float = 0.05,
                limit_s: float = 600.0) -> float:
    """Wait until process ``pid`` used under ``busy`` of a core over ``window_s``; the
    seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        before = _cpu_seconds(pid)
        time.sleep(window_s)
        if _cpu_seconds(pid) - before < busy * window_s:
            break
    return time.monotonic() - start


def main(premises: int = 1_000_000, requests: int = 500) -> None:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="netgis-bench-strands-") as name:
        tmp = Path(name)
        data = tmp / "city.parquet"
        gen_s, out = _timed("generate", "--premises", premises, "--strands", "--seed", SEED,
                            "--out", data)
        summary = json.loads(out)
        validate_s, report = _timed("validate", data)
        warnings = len(json.loads(report)["warnings"])
        trace_s, _ = _timed("trace", data, "--out", tmp / "trace")
        capacity_s, kpis = _timed("capacity", data, "--out", tmp / "capacity")
        inside = _in_process(data)
        api = _api(data, tmp, requests)
    rows = [
        f"| `netgis generate --premises {premises} --strands` | {gen_s:.1f} s |",
        f"| `netgis validate` (route and strand layers; {warnings} warnings) | "
        f"{validate_s:.1f} s |",
        f"| `netgis trace` (every OLT port, three files) | {trace_s:.1f} s |",
        f"| `netgis capacity` (passed premises, then capacity) | {capacity_s:.1f} s |",
        *(f"| in one process: {k} | " + (f"{v:,.0f} |" if k in ("paths", "hop vertices",
                                                                "hop rows")
                                         else f"{v:.1f} s |") for k, v in inside.items()),
        *(f"| API: {k} | " + (f"{v:.1f} s |" if k.startswith(("db", "first", "seconds"))
                              else f"{v:.1f} |" if "ms" in k else f"{v:,.0f} |")
          for k, v in api.items()),
        f"| peak RSS of this process (in-process steps) | {peak_rss_mb():,.0f} MiB |",
    ]
    counts = ", ".join(f"{summary[k]:,} {k}" for k in ("cables", "splitters", "olt_ports",
                                                       "connections", "drops"))
    record("strands", "\n".join([
        f"## strands: trace, capacity and the upstream trace API at {premises:,} premises",
        "",
        f"`python -m benchmarks.bench_strands {premises} {requests}`. City of seed {SEED} "
        f"with strands: {counts}. Capacity KPIs: `{kpis.strip().replace(chr(10), ' ')}`. "
        f"Machine: {os.cpu_count()} cores, load average {load_before:.1f} before the run and "
        f"{os.getloadavg()[0]:.1f} after. Commands timed end to end (start-up, reading "
        f"and checking included); the API figures are {requests} sequential "
        "`GET /trace?premise=` requests for random premises with a drop, one client, "
        "keep-alive, `netgis serve` on SpatiaLite: right after the first request (while the "
        "server still stores its first analysis's results in the background), then again "
        "once the server is idle.",
        "",
        "| step | figure |",
        "|---|---|",
        *rows,
    ]))


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
