"""``netgis analyze`` over chunks of premises: streamed on one machine, or on Dask.

Both engines run the same two passes over the premises, one chunk (a
GeoParquet row group batch, or a Dask partition) at a time, after the client
has validated nodes, spans and areas and run the graph analysis once
(:func:`netgis.engine.analysis.network_stage`):

1. per chunk: validate the premises and return the statistics that fix the
   working UTM zones (:class:`netgis.engine.coverage.ZoneStats`), the distinct ids
   (to find duplicates across chunks) and whether an id needs CSV quotes;
2. per chunk: locate the premises against the lit spans within a drop_m halo
   of the chunk (the rest against the whole network), protect and price them,
   and return their CSV rows and the sums that add up to impacts and KPIs
   (:func:`netgis.engine.analysis.premise_chunk`).

The client adds the sums up (:func:`netgis.engine.analysis.finish_analysis`) and
writes the same four files as :func:`netgis.engine.outputs.write_outputs`, streaming
premises.csv. Invalid input stops after pass one: nothing is written. Memory
is bounded by the network plus a chunk (per worker), not by the premises.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as pf
import pyarrow.parquet as pq
import shapely
from pyproj import CRS

from netgis.dataset import RawLayer
from netgis.engine.analysis import (
    NODE_COLUMNS,
    PREMISE_COLUMNS,
    SPAN_COLUMNS,
    NetworkStage,
    check_drop,
    finish_analysis,
    network_stage,
    premise_chunk,
)
from netgis.engine.coverage import ZonePlan, ZoneStats, lonlat
from netgis.engine.kpis import PREMISE_SUMS, AreaIndex, Kpis, LineZones
from netgis.engine.memory import release_free_memory
from netgis.engine.optics import LossBudget
from netgis.engine.outputs import needs_quotes, result_table, write_csv, write_csv_tables
from netgis.errors import DatasetFormatError, Problem, ValidationError
from netgis.io import atomic_dir, layer_file_format, layer_parts, read_frame, read_raw
from netgis.schema import DEFAULT_DROP_M, LAYERS
from netgis.validate import validate_premise_chunk, validate_raw

#: Premises per chunk of the streamed local engine (whole row groups make about as many).
CHUNK_ROWS = 500_000
#: ``netgis analyze`` streams GeoParquet premises beyond this many (fewer: all at once, which
#: is faster while they fit).
STREAM_ABOVE = 2_000_000
#: Chunks pass one of the local streamed engine validates at once: worker processes (when
#: the premises' row groups make chunks), else threads.
PASS_ONE_PROCESSES = 2
PASS_ONE_THREADS = 2
#: Chunks pass two of the local streamed engine analyses at once (threads), ahead of the one
#: whose rows are being written.
PASS_TWO_THREADS = 2

Progress = Callable[[str], None]
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Context:
    """What every chunk task needs (sent to each Dask worker once)."""

    stage: NetworkStage
    areas: AreaIndex
    area_frame: gpd.GeoDataFrame
    crs: CRS


@dataclass(frozen=True)
class Checking:
    """What pass one needs: the dataset's CRS and its areas (no network)."""

    crs: CRS
    area_frame: gpd.GeoDataFrame


@dataclass(frozen=True)
class Checked:
    """Pass one's answer for one chunk."""

    errors: list[Problem]
    warnings: list[Problem]
    zones: ZoneStats
    ids: pa.Array  #: the chunk's distinct premise ids (duplicates within it are errors)
    quote: bool


@dataclass(frozen=True)
class Rows:
    """Pass two's answer for one chunk: CSV rows and sums (sparse per edge)."""

    table: pa.Table
    edges: npt.NDArray[np.int64]
    edge_premises: npt.NDArray[np.int64]
    edge_units: npt.NDArray[np.int64]
    sums: npt.NDArray[np.int64]
    area_sums: npt.NDArray[np.int64]


class Runner(Protocol):
    """Runs a task on every chunk of premises: in this process, or on a Dask cluster."""

    def share(self, ctx: Context) -> Any:
        """``ctx`` as tasks receive it (on Dask: scattered to every worker once)."""

    def map(self, fn: Callable[..., Any], *args: Any) -> Iterator[Any]:
        """``fn(chunk, *args)`` for every chunk, results in chunk order, one at a time."""


@dataclass(frozen=True)
class ChunkedResult:
    """What an engine did: the KPIs, the warnings of validation and analysis, the chunks."""

    kpis: Kpis
    warnings: list[Problem]
    chunks: int


# ---- the tasks (plain functions of a chunk: Dask pickles them) ----------------------------

def _raw(part: pd.DataFrame) -> RawLayer:
    frame = part if isinstance(part, gpd.GeoDataFrame) else gpd.GeoDataFrame(part)
    if frame.crs is None:
        frame = frame.set_crs(4326)  # GeoParquet without a CRS is WGS84
    return RawLayer("premises", frame.reset_index(drop=True), "chunk", "parquet")


def check_chunk(part: pd.DataFrame, ctx: Context | Checking) -> Checked:
    """Pass one: validate, zone statistics, distinct ids, quoting."""
    return check_and_keep_chunk(part, ctx)[0]


def check_and_keep_chunk(part: pd.DataFrame, ctx: Context | Checking
                         ) -> tuple[Checked, gpd.GeoDataFrame | None, npt.NDArray[np.float64]]:
    """:func:`check_chunk`, and the validated rows with their WGS84 coordinates when they
    are all valid."""
    frame, report = validate_premise_chunk(_raw(part), target_crs=ctx.crs,
                                           areas=ctx.area_frame)
    ids = pa.array([], type=pa.string()) if frame is None else \
        pa.array(frame["premise_id"].to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    # the distinct ids even of a chunk with errors: an id it shares with another is named too
    distinct = pc.drop_null(pc.unique(ids))
    if frame is None or report.errors:
        return Checked(report.errors, report.warnings, ZoneStats.of(np.zeros(0), np.zeros(0)),
                       distinct, False), None, np.zeros((0, 2))
    ll = lonlat(frame.geometry.to_numpy(), CRS(frame.crs))
    return Checked(report.errors, report.warnings, ZoneStats.of(ll[:, 0], ll[:, 1]),
                   distinct, needs_quotes(pa.table({"premise_id": ids}))), frame, ll


def analyze_chunk(part: pd.DataFrame, ctx: Context, zones: ZonePlan) -> Rows:
    """Pass two: the CSV rows and sums of a (valid) chunk."""
    frame, _ = validate_premise_chunk(_raw(part), target_crs=ctx.crs)
    assert frame is not None
    return analyze_valid_chunk(frame, ctx, zones)


def analyze_valid_chunk(frame: gpd.GeoDataFrame, ctx: Context, zones: ZonePlan,
                        points_lonlat: npt.NDArray[np.float64] | None = None) -> Rows:
    """:func:`analyze_chunk` of a chunk as validation returned it (and its WGS84
    coordinates, when known)."""
    chunk = premise_chunk(ctx.stage, frame, zones=zones, areas=ctx.areas,
                          halo_m=ctx.stage.drop_m, points_lonlat=points_lonlat)
    edges = np.flatnonzero(chunk.edge_premises)
    return Rows(result_table(chunk.premises, PREMISE_COLUMNS), edges,
                chunk.edge_premises[edges], chunk.edge_units[edges], chunk.sums,
                chunk.area_sums)


# ---- the client side ------------------------------------------------------------------------

def small_layers(path: Path) -> dict[str, RawLayer]:
    """Nodes, spans and areas as read, and no premise (they are checked chunk by chunk).

    The premises layer keeps its columns with no row, so that validation sees
    its schema.
    """
    parts = premise_files(path)
    if parts is None:
        raw = read_raw(path)
        premises = raw["premises"]
        raw["premises"] = RawLayer("premises", premises.frame.iloc[:0], premises.source,
                                   premises.fmt)
        return raw
    raw = {}
    for f in sorted(path.iterdir()):
        name, fmt = f.stem.lower(), layer_file_format(f)
        if name in LAYERS and name != "premises" and f.is_file() and fmt is not None:
            frame = read_frame(f, subject=name)
            if frame.crs is None and fmt in ("geojson", "parquet"):
                frame = frame.set_crs(4326)  # as their standards say (see read_raw)
            raw[name] = RawLayer(name, frame, str(f), fmt)
    # one row tells the schema; an empty file is cheap to read whole
    first = next(read_parquet_chunks(parts[:1], rows=1), None)
    if first is None:
        first = read_frame(parts[0], subject="premises")
    raw["premises"] = RawLayer("premises", first.iloc[:0], str(parts[0]), "parquet")
    return raw


def premise_files(path: str | os.PathLike[str]) -> list[Path] | None:
    """The GeoParquet file(s) of the premises layer of a dataset directory, else None."""
    p = Path(path)
    parts = layer_parts(p, "premises")
    if parts is not None or not p.is_dir():
        return parts
    single = [f for f in p.iterdir() if f.is_file() and f.stem.lower() == "premises"
              and f.suffix.lower() in (".parquet", ".geoparquet")]
    return single or None


def premise_rows(path: str | os.PathLike[str]) -> int | None:
    """How many premises a dataset directory holds in GeoParquet (None: not GeoParquet).

    Examples
    --------
    >>> premise_rows("tests/examples/ring_spur/dataset.gpkg") is None
    True
    """
    files = premise_files(path)
    if files is None:
        return None
    try:
        return int(sum(pq.ParquetFile(f).metadata.num_rows for f in files))
    except (pa.ArrowException, OSError):
        return None  # not readable as Parquet: reading the dataset reports it properly


def read_parquet_chunks(files: list[Path], *, rows: int) -> Iterator[gpd.GeoDataFrame]:
    """GeoParquet files as GeoDataFrames of at most ``rows`` rows, read one at a time."""
    for f in files:
        pf, column, crs = _open_geoparquet(f)
        for batch in pf.iter_batches(batch_size=rows):
            yield _geoframe(batch, column, crs)


def read_row_groups(f: Path, groups: list[int]) -> gpd.GeoDataFrame:
    """Some row groups of a GeoParquet file as one GeoDataFrame."""
    pf, column, crs = _open_geoparquet(f)
    return _geoframe(pf.read_row_groups(groups), column, crs)


def _open_geoparquet(f: Path) -> tuple[pq.ParquetFile, str, CRS | None]:
    """The file, its geometry column and that column's CRS."""
    try:
        pf = pq.ParquetFile(f)
        geo = json.loads(pf.schema_arrow.metadata[b"geo"])
    except Exception as exc:  # pyarrow raises several classes for unreadable files
        raise DatasetFormatError([Problem("premises", None, None,
                                          f"cannot read {f.name} as GeoParquet: {exc}")]) \
            from exc
    column = geo["primary_column"]
    meta = geo["columns"][column]
    crs = CRS.from_json_dict(meta["crs"]) if meta.get("crs") is not None else None
    if "crs" not in meta:
        crs = CRS.from_epsg(4326)  # GeoParquet: a missing crs is OGC:CRS84
    return pf, column, crs


def _geoframe(data: pa.RecordBatch | pa.Table, column: str, crs: CRS | None
              ) -> gpd.GeoDataFrame:
    frame = data.to_pandas()
    geoms = shapely.from_wkb(frame.pop(column).to_numpy())
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=crs), crs=crs)


def row_group_chunks(files: list[Path], rows: int) -> list[tuple[Path, list[int]]] | None:
    """Chunks of about ``rows`` premises as runs of whole row groups, in file order.

    A chunk takes row groups until it holds ``rows`` or more. None when some row
    group alone holds more than twice ``rows`` (it is then read in batches instead).
    """
    chunks: list[tuple[Path, list[int]]] = []
    for f in files:
        meta = _open_geoparquet(f)[0].metadata
        groups: list[int] = []
        held = 0
        for i in range(meta.num_row_groups):
            n = meta.row_group(i).num_rows
            if n > 2 * rows:
                return None
            groups.append(i)
            held += n
            if held >= rows:
                chunks.append((f, groups))
                groups, held = [], 0
        if groups:
            chunks.append((f, groups))
    return chunks


def check_row_groups(f: Path, groups: list[int], ctx: Checking, keep: Path
                     ) -> tuple[Checked, Path | None]:
    """Pass one of a chunk of row groups in a worker process: the answer, and the path its
    validated rows were kept at (None when they were not valid)."""
    shapely.prepare(ctx.area_frame.geometry.to_numpy())
    return check_and_spill(read_row_groups(f, groups), ctx, keep)


def check_and_spill(part: pd.DataFrame, ctx: Checking, keep: Path
                    ) -> tuple[Checked, Path | None]:
    """Pass one of a chunk; its validated rows kept at ``keep`` (:func:`keep_chunk`) when
    they are all valid. The answer, and ``keep`` (None when nothing was kept)."""
    c, frame, ll = check_and_keep_chunk(part, ctx)
    if frame is None:
        return c, None
    keep_chunk(frame, ll, keep)
    return c, keep


def _kept_path(spill: Path, i: int) -> Path:
    return spill / f"chunk-{i:06d}.arrow"


class LocalRunner:
    """Chunks of a GeoParquet premises layer, read and processed one at a time here."""

    def __init__(self, files: list[Path], rows: int = CHUNK_ROWS) -> None:
        self.files = files
        self.rows = rows

    def share(self, ctx: Context) -> Any:
        """``ctx`` itself: the tasks run in this process."""
        return ctx

    def map(self, fn: Callable[..., Any], *args: Any) -> Iterator[Any]:
        """``fn(chunk, *args)`` for every chunk of ``rows`` premises, read as it is needed."""
        for part in read_parquet_chunks(self.files, rows=self.rows):
            yield fn(part, *args)

    def check_keeping(self, ctx: Checking, spill: Path) -> tuple[list[Checked], list[Path]]:
        """Pass one, each valid chunk's validated rows kept in ``spill`` (Arrow IPC, LZ4) for
        pass two: reading them back costs a fraction of validating them again."""
        groups = row_group_chunks(self.files, self.rows)
        if groups is not None:
            return self._check_in_processes(groups, ctx, spill)

        def one(i: int, part: pd.DataFrame) -> tuple[Checked, Path | None]:
            return check_and_spill(part, ctx, _kept_path(spill, i))

        checked: list[Checked] = []
        kept: list[Path] = []
        # row groups too large to make chunks of: batches read here, validated two at a time
        # on threads, in order. The areas the threads test premises against are prepared
        # here, once: GEOS's prepare writes into the shared geometry (transformer objects
        # are per thread in pyproj)
        shapely.prepare(ctx.area_frame.geometry.to_numpy())
        chunks = enumerate(read_parquet_chunks(self.files, rows=self.rows))
        for c, path in _in_order(lambda item: one(*item), chunks, workers=PASS_ONE_THREADS):
            checked.append(c)
            if path is not None:
                kept.append(path)
        return checked, kept

    def _check_in_processes(self, chunks: list[tuple[Path, list[int]]], ctx: Checking,
                            spill: Path) -> tuple[list[Checked], list[Path]]:
        """Pass one on worker processes (validation holds the GIL much of the time: threads
        would wait for each other), each reading its own row groups and keeping its rows."""
        checked: list[Checked] = []
        kept: list[Path] = []
        spawn = multiprocessing.get_context("spawn")  # no fork of a process with threads
        with ProcessPoolExecutor(max_workers=PASS_ONE_PROCESSES, mp_context=spawn) as pool:
            jobs = [pool.submit(check_row_groups, f, groups, ctx, _kept_path(spill, i))
                    for i, (f, groups) in enumerate(chunks)]
            try:
                for job in jobs:
                    c, path = job.result()
                    checked.append(c)
                    if path is not None:
                        kept.append(path)
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise
        return checked, kept


#: Columns of a kept chunk with its premises' coordinates in the dataset's CRS and in WGS84
#: (not contract names).
X, Y, LON, LAT = "__netgis_x", "__netgis_y", "__netgis_lon", "__netgis_lat"


def keep_chunk(frame: gpd.GeoDataFrame, points_lonlat: npt.NDArray[np.float64],
               path: Path) -> None:
    """Write validated premises and their WGS84 coordinates to ``path`` (Arrow IPC, LZ4).

    Valid premises are points: they are kept as coordinates, which write and read
    back in a fraction of the time of WKB (and give back the same doubles).
    """
    geoms = frame.geometry.to_numpy()
    xy = shapely.get_coordinates(geoms)
    if len(xy) != len(frame) or not (shapely.get_type_id(geoms) == 0).all():
        raise ValueError("a kept chunk holds points only (validation lets nothing else pass)")
    columns = [c for c in frame.columns if c != frame.geometry.name]
    table = pa.Table.from_pandas(pd.DataFrame(frame), columns=columns, preserve_index=False)
    for name, values in ((X, xy[:, 0]), (Y, xy[:, 1]), (LON, points_lonlat[:, 0]),
                         (LAT, points_lonlat[:, 1])):
        table = table.append_column(name, pa.array(values, type=pa.float64()))
    pf.write_feather(table, path, compression="lz4")


def read_kept_chunk(path: Path, crs: CRS) -> tuple[gpd.GeoDataFrame, npt.NDArray[np.float64]]:
    """A chunk :func:`keep_chunk` wrote: the premises (in ``crs``) and their WGS84
    coordinates."""
    table = pf.read_table(path)
    x, y, lon, lat = (table.column(c).to_numpy() for c in (X, Y, LON, LAT))
    frame = table.drop_columns([X, Y, LON, LAT]).to_pandas()
    points = gpd.GeoSeries(shapely.points(x, y), index=frame.index, crs=crs)
    return gpd.GeoDataFrame(frame, geometry=points, crs=crs), np.column_stack([lon, lat])


def analyze_kept_chunk(path: Path, ctx: Context, zones: ZonePlan) -> Rows:
    """Pass two of a chunk that :meth:`LocalRunner.check_keeping` kept."""
    frame, ll = read_kept_chunk(path, ctx.crs)
    return analyze_valid_chunk(frame, ctx, zones, points_lonlat=ll)


def analyze_chunked(path: str | os.PathLike[str], out: str | os.PathLike[str], *,
                    drop_m: float = DEFAULT_DROP_M, budget: LossBudget | None = None,
                    runner: Runner | None = None, chunk_rows: int = CHUNK_ROWS,
                    progress: Progress | None = None) -> ChunkedResult:
    """``netgis analyze`` with the premises in chunks: the same four files in ``out``.

    ``runner`` runs the chunk tasks (default: :class:`LocalRunner` over the
    dataset's GeoParquet premises, ``chunk_rows`` at a time). Raises
    ValidationError (nothing written) for invalid input.
    """
    step = progress or (lambda _name: None)
    p = Path(path)
    step("read")
    check_drop(drop_m)
    base = validate_raw(small_layers(p))
    ds = base.dataset_or_raise()
    areas = AreaIndex(ds.areas)
    if runner is None:
        files = premise_files(p)
        if files is None:
            raise DatasetFormatError([Problem("premises", None, None, "streaming needs the "
                                              "premises as GeoParquet")])
        runner = LocalRunner(files, chunk_rows)
    with ThreadPoolExecutor(max_workers=2) as pool, \
            tempfile.TemporaryDirectory(prefix="netgis-chunks-") as spill:
        # pass one needs no network: here it runs while the network stage does
        early = pool.submit(runner.check_keeping, Checking(ds.crs, ds.areas), Path(spill)) \
            if isinstance(runner, LocalRunner) else None
        stage = network_stage(ds.nodes, ds.spans, drop_m=drop_m, budget=budget, progress=step)
        if early is not None:
            # the lit spans' index in their zone, which pass two here starts with
            pool.submit(stage.span_index.warm)
        ctx = runner.share(Context(stage, areas, ds.areas, ds.crs))
        step("validate")
        kept: list[Path] | None = None
        if early is not None:
            checked, kept = early.result()
        else:
            checked = list(runner.map(check_chunk, ctx))
        errors = list(base.errors) + [e for c in checked for e in c.errors]
        warnings = list(base.warnings) + [w for c in checked for w in c.warnings]
        # an id repeated within a chunk and across chunks is named once
        errors += [d for d in _duplicates(checked) if d not in set(errors)]
        if errors:
            raise ValidationError(errors, warnings)
        stats = ZoneStats.of(np.zeros(0), np.zeros(0))
        for c in checked:
            stats = stats + c.zones
        plan = stats.plan()
        # the union of the lines for the km KPIs needs no premise: GEOS builds it (without
        # the GIL) while pass two runs, which leaves a core idle part of the time
        lines = LineZones(ds.spans)
        pool.submit(_warm, lines, areas)
        step("coverage")
        rows = runner.map(analyze_chunk, ctx, plan) if kept is None else \
            _in_order(lambda f: analyze_kept_chunk(f, ctx, plan), kept, workers=PASS_TWO_THREADS)
        kpis = _write(rows, out, stage=stage, areas=areas, nodes=ds.nodes, spans=ds.spans,
                      quote=any(c.quote for c in checked), home=plan.home, step=step,
                      line_zones=lines)
    return ChunkedResult(kpis, warnings + list(stage.warnings), len(checked))


def _warm(lines: LineZones, areas: AreaIndex) -> None:
    lines.warm(areas)
    release_free_memory()  # what GEOS's union of a million lines used on the way: gigabytes


def _in_order(fn: Callable[[T], R], items: Iterable[T], *, workers: int) -> Iterator[R]:
    """``fn`` over ``items`` on ``workers`` threads, the answers in order; the next items
    are taken and started before an answer is handed over, so ``workers`` items are computed
    while the caller uses the answer before them, and at most ``workers + 1`` items are
    taken but not answered."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _duplicates(checked: list[Checked]) -> list[Problem]:
    """Ids that occur in two or more chunks (within one, pass one reported them)."""
    every = pa.chunked_array([c.ids for c in checked], type=pa.string())
    counts = pc.value_counts(every)
    repeated = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    return [Problem("premises", i, "premise_id", "duplicate id")
            for i in sorted(repeated.to_pylist())]


def _write(rows: Iterator[Rows], out: str | os.PathLike[str], *, stage: NetworkStage,
           areas: AreaIndex, nodes: gpd.GeoDataFrame, spans: gpd.GeoDataFrame, quote: bool,
           home: int | None, step: Progress, line_zones: LineZones | None = None) -> Kpis:
    """Stream premises.csv from the chunks' rows, add their sums up, write the other files."""
    g = stage.graph
    edge_p = np.zeros(g.n_edges, dtype=np.int64)
    edge_u = np.zeros(g.n_edges, dtype=np.int64)
    sums = np.zeros(len(PREMISE_SUMS), dtype=np.int64)
    area_sums = np.zeros((len(areas), len(PREMISE_SUMS)), dtype=np.int64)

    def tables() -> Iterator[pa.Table]:
        nonlocal sums, area_sums
        for r in rows:
            np.add.at(edge_p, r.edges, r.edge_premises)
            np.add.at(edge_u, r.edges, r.edge_units)
            sums = sums + r.sums
            area_sums = area_sums + r.area_sums
            yield r.table

    lit_ids = pa.array(spans.loc[stage.span_lit, "span_id"].to_numpy(dtype=object),
                       type=pa.string())
    with atomic_dir(out, merge=True) as tmp:
        # served_span_id holds lit span ids: when none needs quotes, the ids decide alone
        if quote or not needs_quotes(pa.table({"span_id": lit_ids})):
            write_csv_tables(tables(), PREMISE_COLUMNS, tmp / "premises.csv", quote=quote)
        else:
            held = list(tables())
            write_csv_tables(held, PREMISE_COLUMNS, tmp / "premises.csv",
                             quote=any(needs_quotes(t) for t in held))
        step("kpis")
        result = finish_analysis(stage, nodes, spans, areas, edge_premises=edge_p,
                                 edge_units=edge_u, sums=sums, area_sums=area_sums,
                                 home_zone=home, line_zones=line_zones)
        write_csv(result.spans, SPAN_COLUMNS, tmp / "spans.csv")
        write_csv(result.nodes, NODE_COLUMNS, tmp / "nodes.csv")
        (tmp / "kpis.json").write_text(json.dumps(result.kpis, indent=1, allow_nan=False) + "\n")
    return result.kpis
