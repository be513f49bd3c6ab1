"""Scale-out: spatially partitioned premises and the Dask engine of ``netgis analyze``.

:func:`partition_dataset` writes a dataset as a directory of GeoParquet layer
files whose premises layer is itself a directory of Hilbert-ordered,
spatially partitioned GeoParquet files (dask-geopandas ``spatial_shuffle``).
Every feature, attribute, coordinate and the CRS are kept; :mod:`netgis.io`
reads such a directory like any other dataset.

:func:`analyze_dask` runs the per-premise work over dask-geopandas partitions
on a dask.distributed cluster (a LocalCluster when no scheduler is named):

1. the client reads and validates nodes, spans and areas, and runs the graph
   analysis once (:func:`netgis.analysis.network_stage`), which is sent to
   every worker once;
2. pass one, per partition: validate the premises, and return the
   statistics that fix the working UTM zones (:class:`netgis.coverage.ZoneStats`),
   hashes of the ids (duplicates across partitions) and whether an id needs
   CSV quotes;
3. pass two, per partition: locate the premises against the lit spans within
   a drop_m halo of the partition (premises with none that near against the
   whole network), protect and price them, and return their CSV rows and the
   sums that add up to impacts and KPIs (:func:`netgis.analysis.premise_chunk`);
4. the client adds the sums up (:func:`netgis.analysis.finish_analysis`) and
   writes the same four files as the local engine.

Invalid input stops after pass one: nothing is written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import dask_geopandas
import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
from dask.delayed import delayed
from distributed import Client, LocalCluster
from pyproj import CRS

from netgis.analysis import (
    NODE_COLUMNS,
    PREMISE_COLUMNS,
    SPAN_COLUMNS,
    NetworkStage,
    finish_analysis,
    network_stage,
    premise_chunk,
)
from netgis.coverage import ZonePlan, ZoneStats, lonlat
from netgis.dataset import RawLayer
from netgis.errors import Problem, ValidationError
from netgis.io import atomic_dir, layer_parts, read_frame, read_raw, write_layer_file
from netgis.kpis import PREMISE_SUMS, AreaIndex, Kpis
from netgis.optics import LossBudget
from netgis.report import needs_quotes, result_table, write_csv, write_csv_tables
from netgis.schema import DEFAULT_DROP_M, LAYERS
from netgis.validate import validate_premise_chunk, validate_raw

#: Premises per partition that ``netgis partition`` aims at by default.
PARTITION_ROWS = 250_000

Progress = Callable[[str], None]


# ---- netgis partition -----------------------------------------------------------------------

def partition_dataset(path: str | os.PathLike[str], out: str | os.PathLike[str], *,
                      partitions: int | None = None) -> dict[str, Any]:
    """Write ``path`` as a partitioned dataset directory ``out`` (replaced atomically).

    The layers are written as read (every attribute and coordinate, the CRS),
    after checking that the dataset is valid (a ValidationError otherwise;
    nothing is written). Premises are ordered along a Hilbert curve over
    their extent and cut into ``partitions`` spatially compact GeoParquet
    files (default: about :data:`PARTITION_ROWS` premises each).

    Examples
    --------
    >>> import tempfile
    >>> summary = partition_dataset("tests/examples/ring_spur/dataset.gpkg",
    ...                             Path(tempfile.mkdtemp()) / "ring", partitions=2)
    >>> summary["partitions"], sorted(summary["layers"])
    (2, ['areas', 'nodes', 'premises', 'spans'])
    """
    raw = read_raw(path)
    validate_raw(raw).dataset_or_raise()
    premises = raw["premises"].frame.reset_index(drop=True)
    n = partitions or max(1, -(-len(premises) // PARTITION_ROWS))
    n = max(1, min(n, len(premises)))
    with atomic_dir(out) as tmp:
        for name, layer in raw.items():
            if name != "premises":
                write_layer_file(layer.frame, tmp / f"{name}.parquet", "parquet")
        ddf = dask_geopandas.from_geopandas(premises, npartitions=n)
        shuffled = ddf.spatial_shuffle(by="hilbert", npartitions=n)
        with dask.config.set(scheduler="synchronous"):
            shuffled.to_parquet(tmp / "premises.parquet", write_index=False)
    return {"out": str(out), "partitions": n,
            "layers": {name: len(layer.frame) for name, layer in raw.items()}}


# ---- netgis analyze --engine dask -----------------------------------------------------------

@dataclass(frozen=True)
class _Checked:
    """Pass one's answer for one partition."""

    errors: list[Problem]
    warnings: list[Problem]
    zones: ZoneStats
    id_hashes: npt.NDArray[np.uint64]
    quote: bool


@dataclass(frozen=True)
class _Rows:
    """Pass two's answer for one partition: CSV rows and sums (sparse per edge)."""

    table: pa.Table
    edges: npt.NDArray[np.int64]
    edge_premises: npt.NDArray[np.int64]
    edge_units: npt.NDArray[np.int64]
    sums: npt.NDArray[np.int64]
    area_sums: npt.NDArray[np.int64]


@dataclass(frozen=True)
class _Context:
    """What every partition task needs, sent to each worker once."""

    stage: NetworkStage
    areas: AreaIndex
    area_frame: gpd.GeoDataFrame
    crs: CRS


def _raw(part: pd.DataFrame) -> RawLayer:
    frame = gpd.GeoDataFrame(part) if not isinstance(part, gpd.GeoDataFrame) else part
    if frame.crs is None:
        frame = frame.set_crs(4326)  # GeoParquet without a CRS is WGS84
    return RawLayer("premises", frame.reset_index(drop=True), "partition", "parquet")


def _hashes(ids: pd.Series) -> npt.NDArray[np.uint64]:
    present = ids.dropna().to_numpy(dtype=object)
    return np.asarray(pd.util.hash_array(present), dtype=np.uint64)


def _check(part: pd.DataFrame, ctx: _Context) -> _Checked:
    frame, report = validate_premise_chunk(_raw(part), target_crs=ctx.crs,
                                           areas=ctx.area_frame)
    if frame is None or report.errors:
        return _Checked(report.errors, report.warnings, ZoneStats.of(np.zeros(0), np.zeros(0)),
                        np.zeros(0, dtype=np.uint64), False)
    ll = lonlat(frame.geometry.to_numpy(), CRS(frame.crs))
    ids = frame["premise_id"]
    quote = needs_quotes(pa.table({"premise_id": pa.array(ids.to_numpy(dtype=object),
                                                          type=pa.string())}))
    return _Checked(report.errors, report.warnings, ZoneStats.of(ll[:, 0], ll[:, 1]),
                    _hashes(ids), quote)


def _ids_with(part: pd.DataFrame, ctx: _Context, hashes: npt.NDArray[np.uint64]) -> list[str]:
    frame, _ = validate_premise_chunk(_raw(part), target_crs=ctx.crs)
    assert frame is not None
    ids = frame["premise_id"].dropna()
    hit = np.isin(np.asarray(pd.util.hash_array(ids.to_numpy(dtype=object)), dtype=np.uint64),
                  hashes)
    return [str(i) for i in ids.to_numpy()[hit]]


def _analyze_part(part: pd.DataFrame, ctx: _Context, zones: ZonePlan) -> _Rows:
    frame, _ = validate_premise_chunk(_raw(part), target_crs=ctx.crs)
    assert frame is not None
    chunk = premise_chunk(ctx.stage, frame, zones=zones, areas=ctx.areas,
                          halo_m=ctx.stage.drop_m)
    edges = np.flatnonzero(chunk.edge_premises)
    return _Rows(result_table(chunk.premises, PREMISE_COLUMNS), edges,
                 chunk.edge_premises[edges], chunk.edge_units[edges], chunk.sums,
                 chunk.area_sums)


@contextmanager
def dask_client(scheduler: str | None = None, *, workers: int | None = None) -> Iterator[Client]:
    """A client of the cluster at ``scheduler``, or of a new LocalCluster (closed at the end)."""
    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    n = workers or max(1, min(os.cpu_count() or 1, 4))
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


@dataclass(frozen=True)
class DaskResult:
    """What :func:`analyze_dask` did: the KPIs and the warnings of validation and analysis."""

    kpis: Kpis
    warnings: list[Problem]
    partitions: int


def _premise_partitions(path: Path) -> dask_geopandas.GeoDataFrame:
    parts = layer_parts(path, "premises")
    if parts is not None:
        return dask_geopandas.read_parquet([str(p) for p in parts])
    frame = read_raw(path)["premises"].frame.reset_index(drop=True)
    n = max(1, min(len(frame), -(-len(frame) // PARTITION_ROWS)))
    return dask_geopandas.from_geopandas(frame, npartitions=n)


def analyze_dask(path: str | os.PathLike[str], out: str | os.PathLike[str], *,
                 drop_m: float = DEFAULT_DROP_M, budget: LossBudget | None = None,
                 scheduler: str | None = None, workers: int | None = None,
                 progress: Progress | None = None) -> DaskResult:
    """``netgis analyze`` on Dask: the same four files in ``out`` as the local engine.

    Raises ValidationError (nothing written) for invalid input.
    """
    step = progress or (lambda _name: None)
    p = Path(path)
    step("read")
    base = validate_raw(_small_layers(p))
    ds = base.dataset_or_raise()
    stage = network_stage(ds.nodes, ds.spans, drop_m=drop_m, budget=budget, progress=step)
    areas = AreaIndex(ds.areas)
    ctx = _Context(stage, areas, ds.areas, ds.crs)
    ddf = _premise_partitions(p)
    parts = ddf.to_delayed()
    with dask_client(scheduler, workers=workers) as client:
        [ctx_f] = client.scatter([ctx], broadcast=True)
        step("validate premises")
        checked: list[_Checked] = client.gather(
            client.compute([delayed(_check)(part, ctx_f) for part in parts]))
        errors = list(base.errors) + [e for c in checked for e in c.errors]
        warnings = list(base.warnings) + [w for c in checked for w in c.warnings]
        errors += _duplicates(client, parts, ctx_f, checked)
        if errors:
            raise ValidationError(errors, warnings)
        stats = checked[0].zones
        for c in checked[1:]:
            stats = stats + c.zones
        plan = stats.plan()
        step("coverage")
        futures = client.compute([delayed(_analyze_part)(part, ctx_f, plan)
                                  for part in parts])
        totals = _Sums(stage.graph.n_edges, len(areas))
        kpis = _write(client, futures, totals, out, quote=any(c.quote for c in checked),
                      ds_nodes=ds.nodes, ds_spans=ds.spans, stage=stage, areas=areas,
                      home=plan.home, step=step)
    return DaskResult(kpis, warnings + list(stage.warnings), len(parts))


def _small_layers(path: Path) -> dict[str, RawLayer]:
    """Nodes, spans and areas as read, and an empty premises layer (validated per partition)."""
    parts = layer_parts(path, "premises")
    if parts is None:
        raw = read_raw(path)
        frame = raw["premises"].frame
        raw["premises"] = RawLayer("premises", frame.iloc[:0], raw["premises"].source,
                                   raw["premises"].fmt)
        return raw
    raw = {}
    for f in sorted(path.iterdir()):
        name = f.stem.lower()
        if name in LAYERS and name != "premises" and f.is_file():
            frame = read_frame(f, subject=name)
            raw[name] = RawLayer(name, frame.set_crs(4326) if frame.crs is None else frame,
                                 str(f), "parquet")
    first = read_frame(parts[0], subject="premises")
    raw["premises"] = RawLayer("premises", first.iloc[:0], str(parts[0]), "parquet")
    return raw


def _duplicates(client: Client, parts: list[Any], ctx_f: Any,
                checked: list[_Checked]) -> list[Problem]:
    """Ids that occur in two or more partitions (within one, pass one reported them)."""
    hashes = [c.id_hashes for c in checked]
    every = np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.uint64)
    uniq, counts = np.unique(every, return_counts=True)
    repeated = uniq[counts > 1]
    if not len(repeated):
        return []
    found = client.gather(client.compute([delayed(_ids_with)(part, ctx_f, repeated)
                                          for part in parts]))
    seen_in: dict[str, int] = {}
    for ids in found:
        for i in set(ids):
            seen_in[i] = seen_in.get(i, 0) + 1
    return [Problem("premises", i, "premise_id", "duplicate id")
            for i in sorted(seen_in) if seen_in[i] > 1]


class _Sums:
    """Partial sums of pass two, added up as partitions finish."""

    def __init__(self, n_edges: int, n_areas: int) -> None:
        self.edge_premises = np.zeros(n_edges, dtype=np.int64)
        self.edge_units = np.zeros(n_edges, dtype=np.int64)
        self.sums = np.zeros(len(PREMISE_SUMS), dtype=np.int64)
        self.area_sums = np.zeros((n_areas, len(PREMISE_SUMS)), dtype=np.int64)

    def add(self, rows: _Rows) -> None:
        np.add.at(self.edge_premises, rows.edges, rows.edge_premises)
        np.add.at(self.edge_units, rows.edges, rows.edge_units)
        self.sums += rows.sums
        self.area_sums += rows.area_sums


def _write(client: Client, futures: list[Any], totals: _Sums, out: str | os.PathLike[str], *,
           quote: bool, ds_nodes: gpd.GeoDataFrame, ds_spans: gpd.GeoDataFrame,
           stage: NetworkStage, areas: AreaIndex, home: int | None, step: Progress) -> Kpis:
    """Stream premises.csv from the partitions, then write the other three files."""
    lit_ids = pa.array(ds_spans.loc[stage.span_lit, "span_id"].to_numpy(dtype=object),
                       type=pa.string())
    # served_span_id holds lit span ids only: when none needs quotes, neither does that column
    quote_known = quote or not needs_quotes(pa.table({"span_id": lit_ids}))
    held: list[pa.Table] = []

    def tables() -> Iterator[pa.Table]:
        for future in futures:
            rows: _Rows = future.result()
            future.release()
            totals.add(rows)
            yield rows.table

    with atomic_dir(out, merge=True) as tmp:
        if quote_known:
            write_csv_tables(tables(), PREMISE_COLUMNS, tmp / "premises.csv", quote=quote)
        else:
            # a lit span id needs quotes: whether premises.csv does depends on which serve
            held = list(tables())
            write_csv_tables(held, PREMISE_COLUMNS, tmp / "premises.csv",
                             quote=any(needs_quotes(t) for t in held))
        step("kpis")
        result = finish_analysis(stage, ds_nodes, ds_spans, areas,
                                 edge_premises=totals.edge_premises,
                                 edge_units=totals.edge_units, sums=totals.sums,
                                 area_sums=totals.area_sums, home_zone=home)
        write_csv(result.spans, SPAN_COLUMNS, tmp / "spans.csv")
        write_csv(result.nodes, NODE_COLUMNS, tmp / "nodes.csv")
        (tmp / "kpis.json").write_text(json.dumps(result.kpis, indent=1, allow_nan=False) + "\n")
    return result.kpis

