"""Scale (issue 17): `netgis analyze` from 100 k to 10 M premises, Dask vs local, 5 M-span graph.

Sets (generated with `netgis generate`, cached under benchmarks/.data/):

* the headline city: `--premises 1000000 --seed 61`, a GeoPackage;
* the growth curve: `--seed 62` GeoParquet at 100 k, 1 M and 10 M premises
  (about one span per ten premises). From 2 M premises up the local engine
  streams the premises in chunks of 1 M (netgis.engine.streamed).

Every run is a fresh `netgis analyze --timings` process; wall time, the step
breakdown it prints and the peak RSS summed over its process tree (psutil,
sampled every 50 ms: Dask workers included). Next to the 1 M GeoPackage and
the 100 k sets, a single-threaded shapely `STRtree.query_nearest` of all
premises against the lit spans in the working CRS, in file order and
Z-ordered, in this process.

Dask: the 1 M GeoParquet set partitioned (`netgis partition`, 4 partitions),
`netgis analyze --engine dask` (a LocalCluster of 2 worker processes), and its
four files compared with the local engine's (rows sorted, byte for byte).

Graph: a synthetic 5 M-span plant (a comb spanning tree over a grid plus 20 %
of the remaining grid edges, parallel spans included) timed through every
graph step of the analysis: the analysis graph from the layers, the DFS
(bridges, blocks), protection, impacts and the optical Dijkstra.

`python -m benchmarks.bench_scale [gpkg 1M dask graph 10M 100k]` (default: all, in
that order; the section "scale-run" of RESULTS.md is rewritten after each part, the
curated section "scale" is left alone).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import shapely
from pyproj import CRS

from benchmarks._record import record

DATA = Path(__file__).parent / ".data"
PY = [sys.executable, "-m", "netgis.cli"]
GRAPH_STEPS = ("analysis_graph", "structure", "protection", "impacts", "optics")


def _generate(path: Path, premises: int, seed: int) -> Path:
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        subprocess.run([*PY, "generate", "--premises", str(premises), "--seed", str(seed),
                        "--out", str(path)], check=True, stdout=subprocess.DEVNULL)
    return path


def _uptime() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def run_tree(cmd: list[str]) -> dict[str, object]:
    """Run ``cmd``; wall time, peak RSS over its process tree (MiB), stderr timings."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    root = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            rss = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
        except psutil.Error:
            rss = 0
        peak = max(peak, rss)
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    err = proc.stderr.read() if proc.stderr else ""
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err[-2000:]}")
    steps = {m.group(1): float(m.group(2))
             for m in re.finditer(r"^timing: (\S+) ([\d.]+) s$", err, re.M)}
    return {"wall": wall, "rss": peak / 2**20, "steps": steps, "load": _uptime()}


def strtree_baseline(path: Path) -> dict[str, float]:
    """Single-threaded STRtree.query_nearest of every premise against the lit spans."""
    from netgis.engine.coverage import _morton, working_zones, xy_lonlat
    from netgis.engine.graph import analysis_graph_from_gdfs
    from netgis.engine.redundancy import structure
    from netgis.geodesy import transform_geoms
    from netgis.io import read_dataset

    ds = read_dataset(path)
    g = analysis_graph_from_gdfs(ds.nodes, ds.spans)
    st = structure(g)
    lit = ds.spans[ds.spans["span_id"].isin(set(g.edge_span[st.lit].tolist()))]
    xy = shapely.get_coordinates(ds.premises.geometry.to_numpy())
    ll = xy_lonlat(xy, CRS(ds.crs))
    zone = int(working_zones(ll[:, 0], ll[:, 1])[0])
    pts = transform_geoms(ds.premises.geometry.to_numpy(), ds.crs, CRS.from_epsg(zone))
    lines = transform_geoms(lit.geometry.to_numpy(), ds.crs, CRS.from_epsg(zone))
    tree = shapely.STRtree(lines)
    t0 = time.perf_counter()
    tree.query_nearest(pts, all_matches=False)
    file_order = time.perf_counter() - t0
    sorted_pts = pts[np.argsort(_morton(shapely.get_coordinates(pts)), kind="stable")]
    t0 = time.perf_counter()
    tree.query_nearest(sorted_pts, all_matches=False)
    return {"file": file_order, "zorder": time.perf_counter() - t0, "lit": float(len(lit))}


def _sorted_rows(path: Path) -> list[str]:
    header, *rows = path.read_text().splitlines()
    return [header, *sorted(rows)]


def same_outputs(a: Path, b: Path) -> bool:
    files = ("premises.csv", "spans.csv", "nodes.csv")
    return all(_sorted_rows(a / f) == _sorted_rows(b / f) for f in files) and \
        (a / "kpis.json").read_bytes() == (b / "kpis.json").read_bytes()


def graph_5m(spans: int = 5_000_000, seed: int = 5) -> dict[str, float]:
    """Every graph step of the analysis on a synthetic plant of about ``spans`` spans."""
    from netgis.engine.graph import analysis_graph_from_gdfs
    from netgis.engine.optics import LossBudget, vertex_loss, vertex_nodes
    from netgis.engine.redundancy import impacts, protection, structure

    rng = np.random.default_rng(seed)
    n = int(np.sqrt(spans / 1.2)) + 1
    ids = np.arange(n * n).reshape(n, n)
    rows_a, rows_b = ids[:, :-1].ravel(), ids[:, 1:].ravel()          # every row: the comb
    col_a, col_b = ids[:-1, 0], ids[1:, 0]                             # its spine
    va, vb = ids[:-1, 1:].ravel(), ids[1:, 1:].ravel()                 # other vertical edges
    keep = rng.random(len(va)) < 0.2
    a = np.concatenate([rows_a, col_a, va[keep]])
    b = np.concatenate([rows_b, col_b, vb[keep]])
    dup = rng.choice(len(a), size=len(a) // 100, replace=False)        # 1 % parallel spans
    a, b = np.concatenate([a, a[dup]]), np.concatenate([b, b[dup]])
    node_id = pd.Series(ids.ravel()).astype(str).radd("n").to_numpy(dtype=object)
    kind = np.full(n * n, "splice", dtype=object)
    kind[ids[n // 2, 0]] = "core"
    nodes = pd.DataFrame({"node_id": node_id, "kind": kind, "status": "in_service"})
    span_frame = pd.DataFrame({"span_id": np.char.add("s", np.arange(len(a)).astype(str))
                               .astype(object), "from_node": node_id[a], "to_node": node_id[b],
                               "status": "in_service", "duct_id": None})
    length = rng.uniform(80, 160, len(a))
    out: dict[str, float] = {"spans": float(len(a)), "nodes": float(n * n)}
    t0 = time.perf_counter()
    g = analysis_graph_from_gdfs(nodes, span_frame)  # type: ignore[arg-type]
    out["analysis_graph"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    st = structure(g)
    out["structure"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    protection(g, st)
    out["protection"] = time.perf_counter() - t0
    served = rng.integers(0, g.n_edges, size=g.n_edges * 10 // 5)
    t0 = time.perf_counter()
    edge_p = np.bincount(served, minlength=g.n_edges).astype(np.int64)
    impacts(g, st, edge_p, edge_p)
    out["impacts"] = time.perf_counter() - t0
    budget = LossBudget()
    t0 = time.perf_counter()
    vertex_loss(g, length, vertex_nodes(g, nodes, budget), budget)  # type: ignore[arg-type]
    out["optics"] = time.perf_counter() - t0
    out["bridges"] = float(st.is_bridge.sum())
    out["rss"] = psutil.Process().memory_info().rss / 2**20
    return out


def main(argv: list[str]) -> None:
    want = set(argv) or {"gpkg", "100k", "1M", "10M", "dask", "graph"}
    rows: list[str] = []
    extra: list[str] = []

    def save() -> None:
        # recorded after every part: a long run that is stopped keeps what it measured
        lines = ["| set | wall | peak RSS (tree) | premises/s | steps (s) | STRtree 1 thread "
                 "(file order / Z-order) | load |", "|---|---|---|---|---|---|---|", *rows,
                 "", "Steps as `netgis analyze --timings` names them: read = reading and "
                 "validating the layers (the premises too unless streamed), graph, optics, "
                 "redundancy = the network stage, validate = the streamed premises' "
                 "validation pass, coverage = locating, protecting and pricing the premises "
                 "(streamed: and writing premises.csv), kpis, write."]
        # a section of its own: a run of some parts must not wipe the figures of the others,
        # which the section "scale" gathers (by hand) with the history of every change
        record("scale-run", "## Scale: the latest `bench_scale` run (written by it)\n\n"
               f"Parts run: {' '.join(sorted(want))}. Under `flock /tmp/netgis-heavy.lock` on "
               "the shared 2-core machine; *load* is the 1-minute load average when the "
               "figure was taken (times are inflated when it is above 2). The section "
               "\"Scale (issue 17)\" above keeps every run's figures.\n\n"
               + "\n".join(lines + extra))

    if "gpkg" in want:
        path = _generate(DATA / "city1m.gpkg", 1_000_000, 61)
        r = run_tree([*PY, "analyze", str(path), "--out", str(DATA / "out-1m-gpkg"),
                      "--timings"])
        rows.append(_row("1M GeoPackage (seed 61)", 1_000_000, r, strtree_baseline(path)))
        save()
    # most wanted first: a run stopped at a deadline keeps the headline figures
    if "1M" in want:
        rows.append(_growth("1M", 1_000_000, baseline=False))
        save()
    dask_run: dict[str, object] | None = None
    graph: dict[str, float] | None = None
    if "dask" in want:
        lines, dask_run = _dask_section()
        extra += ["", *lines]
        save()
    if "graph" in want:
        graph = graph_5m()
        extra += ["", *_graph_section(graph)]
        save()
    if dask_run is not None and graph is not None:
        extra += ["", *_estimate(dask_run, graph)]
        save()
    if "10M" in want:
        rows.append(_growth("10M", 10_000_000, baseline=False))
        save()
    if "100k" in want:
        rows.append(_growth("100k", 100_000, baseline=True))
        save()


def _growth(name: str, n: int, *, baseline: bool) -> str:
    path = _generate(DATA / f"growth-{name}.parquet", n, 62)
    r = run_tree([*PY, "analyze", str(path), "--out", str(DATA / f"out-{name}"), "--timings"])
    base = strtree_baseline(path) if baseline else None
    return _row(f"{name} GeoParquet (seed 62)", n, r, base)


def _row(label: str, n: int, r: dict[str, object], base: dict[str, float] | None) -> str:
    steps = r["steps"]
    assert isinstance(steps, dict)
    parts = ", ".join(f"{k} {v:.1f}" for k, v in steps.items())
    wall = float(r["wall"])  # type: ignore[arg-type]
    tree = f"{base['file']:.1f} s / {base['zorder']:.1f} s" if base else "not run"
    return (f"| {label} | {wall:.1f} s | {float(r['rss']):,.0f} MiB | "  # type: ignore[arg-type]
            f"{n / wall:,.0f} | {parts} | {tree} | {r['load']} |")


def _dask_section() -> tuple[list[str], dict[str, object]]:
    src = _generate(DATA / "growth-1M.parquet", 1_000_000, 62)
    parts = DATA / "growth-1M-partitioned"
    t0 = time.perf_counter()
    subprocess.run([*PY, "partition", str(src), "--out", str(parts), "--partitions",
                    str(DASK_PARTITIONS)], check=True, stdout=subprocess.DEVNULL)
    t_part = time.perf_counter() - t0
    local = DATA / "out-1M"
    if not (local / "kpis.json").exists():
        run_tree([*PY, "analyze", str(src), "--out", str(local)])
    r = run_tree([*PY, "analyze", str(parts), "--engine", "dask", "--out",
                  str(DATA / "out-1M-dask"), "--timings"])
    same = same_outputs(local, DATA / "out-1M-dask")
    steps = r["steps"]
    assert isinstance(steps, dict)
    return [
        "### Dask engine at 1 M premises",
        "",
        f"`netgis partition` of the 1 M GeoParquet set into {DASK_PARTITIONS} Hilbert "
        f"partitions: {t_part:.1f} s. `netgis analyze --engine dask` (LocalCluster, 2 worker "
        f"processes, cluster start included): {float(r['wall']):.1f} s, "  # type: ignore[arg-type]
        f"peak RSS over client and workers {float(r['rss']):,.0f} MiB, "  # type: ignore[arg-type]
        f"load {r['load']}; steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items())
        + ".",
        f"Outputs identical to the local engine (four files, rows sorted, byte for byte): "
        f"**{'yes' if same else 'NO'}**.",
    ], r


def _graph_section(g: dict[str, float]) -> list[str]:
    return [
        "### Graph step at 5 M spans",
        "",
        f"Synthetic plant: {g['spans']:,.0f} spans, {g['nodes']:,.0f} nodes "
        f"({g['bridges']:,.0f} bridges). Seconds: analysis graph from the layers "
        f"{g['analysis_graph']:.1f}, DFS (lit, bridges, blocks) {g['structure']:.1f}, "
        f"protection {g['protection']:.1f}, impacts {g['impacts']:.1f}, optical Dijkstra "
        f"{g['optics']:.1f}; total {sum(g[k] for k in GRAPH_STEPS):.1f} s, "
        f"RSS {g['rss']:,.0f} MiB, load {_uptime()}.",
    ]


#: The national case of docs/scale.md: FCC Fabric locations, spans of a national plant.
NATIONAL_PREMISES = 115_000_000
NATIONAL_SPANS = 5_000_000
DASK_PARTITIONS = 4
BUDGET_S = 15 * 60


def _estimate(r: dict[str, object], g: dict[str, float]) -> list[str]:
    """The national-scale arithmetic of docs/scale.md, from this run's figures."""
    steps = r["steps"]
    assert isinstance(steps, dict)
    workers = 2
    per_partition_s = (steps.get("validate", 0.0) + steps.get("coverage", 0.0)) * workers \
        / DASK_PARTITIONS
    rows = 1_000_000 / DASK_PARTITIONS
    partitions = -(-NATIONAL_PREMISES // int(rows))
    graph_s = sum(g[k] for k in GRAPH_STEPS) * NATIONAL_SPANS / g["spans"]
    # reading the spans and nodes grows with the spans; the graph, optics and redundancy
    # steps are the graph steps measured at 5 M spans (graph_s), not scaled again
    network_s = steps.get("read", 0.0) * NATIONAL_SPANS / 100_000 + graph_s
    worker_s = partitions * per_partition_s
    spare = BUDGET_S - network_s
    need = -(-int(worker_s) // int(spare)) if spare > 0 else None
    return [
        "### National estimate (arithmetic on the figures above)",
        "",
        f"Per partition of {rows:,.0f} premises, both passes, one worker: "
        f"{per_partition_s:.1f} s ({rows / per_partition_s:,.0f} premises/s per worker). "
        f"{NATIONAL_PREMISES / 1e6:.0f} M locations = {partitions} partitions = "
        f"{worker_s / 3600:.1f} worker-hours. Serial client part at "
        f"{NATIONAL_SPANS / 1e6:.0f} M spans (reading the network scaled linearly from "
        f"the 1 M run's 100 k spans, the graph steps from the 5 M-span run): about "
        f"{network_s / 60:.1f} min. Workers for a {BUDGET_S // 60}-minute run: "
        + (f"**{need}**" if need else "none: the serial part alone exceeds the budget")
        + " (each working on one partition at a time).",
    ]


if __name__ == "__main__":
    main(sys.argv[1:])
