"""Cost of the change feed (``Repository.changes_since``) on a large database, against a
whole read (``read_consistent``).

A synthetic city (``generate_city``, the data of ``netgis generate``) is loaded
into a new SpatiaLite file, and into a PostgreSQL database with a unique name on
127.0.0.1:5432 (dropped afterwards; ``--no-postgis`` skips it). Then small
writes, each followed by ``changes_since`` of the version before it: the median
(and slowest) of ``ROUNDS`` rounds.

Run: ``.venv/bin/python -m benchmarks.bench_changes [PREMISES] [--no-postgis]``
(default 200,000 premises, seed 61).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import shapely
import sqlalchemy

from benchmarks._record import record
from netgis.dataset import Dataset
from netgis.generate import generate_city
from netgis.storage import Repository, create_engine
from netgis.storage.changes import _deleted_ids, _rows

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
SEED = 61
ROUNDS = 30


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _premises(ids: list[str], near: shapely.Point) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"premise_id": ids, "units": 1, "kind": "residential",
                             "connected": False},
                            geometry=[near] * len(ids), crs=4326)


def _rounds(repo: Repository, write: Callable[[int], object], rows: int) -> list[float]:
    """Milliseconds of ``changes_since`` after each of ROUNDS writes (checked: ``rows``)."""
    times = []
    for k in range(ROUNDS):
        since = repo.data_version()
        write(k)
        t0 = time.perf_counter()
        change = repo.changes_since(since, max_rows=10_000)
        times.append((time.perf_counter() - t0) * 1000)
        assert change is not None and change.count == rows, change
    return times


def _plans(repo: Repository) -> list[str]:
    """The query plans of the change's statements on this database."""
    out = []
    with repo.engine.connect() as conn:
        explain = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "
        for stmt in (_rows("premises").params(since=5),
                     _deleted_ids("premises").params(entries=[5, 7])):
            sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
            out.append(" / ".join(str(r[-1]).strip() for r in conn.exec_driver_sql(
                explain + sql)))
    return out


def _measure(name: str, repo: Repository, data: Dataset) -> dict[str, Any]:
    repo.init()
    t_load, _ = _timed(lambda: repo.load_dataset(data))
    t_read, _ = _timed(repo.read_consistent)
    first = data.premises.to_crs(4326)
    pid = str(first["premise_id"].iat[0])
    near = shapely.Point(first.geometry.get_coordinates().to_numpy()[0])
    out: dict[str, Any] = {"db": name, "load": t_load, "read": t_read}
    version = repo.data_version()
    out["none"] = statistics.median(
        _timed(lambda: repo.changes_since(version))[0] * 1000 for _ in range(ROUNDS))
    out["patch"] = _rounds(repo, lambda k: repo.patch_item("premises", pid, {"units": k % 4 + 1}),
                           1)
    out["insert10"] = _rounds(repo, lambda k: repo.insert_items(
        "premises", _premises([f"bench{k}_{i}" for i in range(10)], near)), 10)
    out["delete"] = _rounds(repo, lambda k: repo.delete_item("premises", f"bench{k}_0"), 1)
    # the load itself is the change since 0: refused after counting max_rows + 1
    out["refused"], refused = _timed(lambda: repo.changes_since(0, max_rows=1000))
    assert refused is None
    out["plans"] = _plans(repo)
    return out


def _ms(times: list[float]) -> str:
    return f"{statistics.median(times):.1f} ms ({max(times):.1f})"


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    premises = int(args[0]) if args else 200_000
    t_gen, data = _timed(lambda: generate_city(premises=premises, seed=SEED))
    print(f"generated {premises:,} premises in {t_gen:.1f} s", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        repo = Repository.from_url(f"sqlite:///{Path(tmp) / 'bench.db'}")
        results.append(_measure("SpatiaLite", repo, data))
        repo.close()
        print(results[-1], flush=True)
    if "--no-postgis" not in sys.argv:
        admin = sqlalchemy.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
        db = f"netgis_bench_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{db}"')  # generated name, not user input
        try:
            repo = Repository(create_engine(admin.url.set(database=db).render_as_string(False)))
            results.append(_measure("PostGIS", repo, data))
            repo.close()
            print(results[-1], flush=True)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            admin.dispose()
    lines = [
        "## changes",
        "",
        f"`Repository.changes_since(v, max_rows=10000)` right after small writes, on a "
        f"database holding a generated city (`generate_city(premises={premises:,}, "
        f"seed={SEED})`: {len(data.nodes):,} nodes, {len(data.spans):,} spans, "
        f"{len(data.areas):,} areas), against one `read_consistent()` of everything. "
        f"Median (slowest) of {ROUNDS} rounds; each includes the one read transaction, "
        "the counts, the rows and the frames.",
        "",
        "| database | load | read_consistent | no change | 1 row patched | 10 rows inserted "
        "| 1 id deleted | refused (the load, max_rows=1000) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(f"| {r['db']} | {r['load']:.1f} s | {r['read']:.2f} s | "
                     f"{r['none']:.2f} ms | {_ms(r['patch'])} | {_ms(r['insert10'])} | "
                     f"{_ms(r['delete'])} | {r['refused'] * 1000:.1f} ms |")
    lines.append("")
    for r in results:
        lines.append(f"{r['db']} plans: rows `{r['plans'][0]}`; deleted ids "
                     f"`{r['plans'][1]}`.")
        lines.append("")
    lines.append(f"Command: `.venv/bin/python -m benchmarks.bench_changes {premises}`.")
    record("changes", "\n".join(lines))


if __name__ == "__main__":
    main()
