"""Analysis results in the database: stored once per data version and parameters, read by id.

A *run* (a row of ``analysis_runs`` with a ``params_key``) is one analysis of
one data version with one set of parameters (drop length and optical loss
budget). Its rows in ``premise_results``, ``span_results`` and
``node_results`` carry the analysis columns of
:data:`netgis.schema.RESULT_FIELDS` and the few engine values the API needs to
answer a premise's loss breakdown and a serviceability lookup without the
in-memory analysis (:data:`netgis.storage.models.SERVING_COLUMNS`: the
least-loss tree of the optical paths, and the graph edge of each span).

Writes (:func:`store_analysis`) are bulk (PostgreSQL ``COPY`` of CSV made by
pandas; SQLite one ``executemany``) and atomic: the run and all its rows are
one transaction, so a reader sees a run complete or not at all. The run is
inserted first with ``ON CONFLICT DO NOTHING`` on the unique index
(data_version, params_key): of two processes storing the same analysis, the
second waits for the first's transaction and then stores nothing. Runs of
older data versions are pruned afterwards (those of the newest ``keep``
versions stay: only the current version's are ever served).

Reads (:class:`ResultReader`) are indexed lookups by (run_id, id); the
serviceability of an arbitrary point is a spatial-index search of the lit
spans near it in the database followed by the engine's own nearest-span
search over those few spans (:func:`netgis.engine.coverage.locate`).

Rows carry no geometry: they join the layer tables by id, e.g. for vector
tiles ``premises p JOIN premise_results r ON r.premise_id = p.premise_id AND
r.run_id = :run``.
"""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy
from sqlalchemy import Connection, LargeBinary, Table, delete, func, select, text

from netgis.errors import Problem, ValidationError
from netgis.jsonsafe import json_safe
from netgis.schema import LAYERS, RESULT_FIELDS
from netgis.storage import dialects
from netgis.storage.engine import begin_read, begin_write
from netgis.storage.models import (
    ANALYSIS_RUNS,
    LAYER_TABLES,
    RESULT_TABLES,
    SERVING_COLUMNS,
    SRID,
)

if TYPE_CHECKING:
    from netgis.engine.analysis import Analysis
    from netgis.engine.optics import LossBudget

#: Runs kept per parameters by default (the newest data versions).
DEFAULT_KEEP = 1
#: Rows per chunk of CSV fed to PostgreSQL's COPY.
_COPY_CHUNK = 200_000
#: Meters per degree of latitude, a lower bound (the equator's 110,574 m), for search boxes.
_M_PER_DEG = 110_000.0


def params_key(drop_m: float, budget: LossBudget) -> str:
    """The analysis parameters as one string: drop_m and :meth:`LossBudget.key`.

    Floats are written with ``repr`` (JSON), so equal parameters give equal keys.

    Examples
    --------
    >>> from netgis.engine.optics import LossBudget
    >>> params_key(150, LossBudget())[:20]
    '[150.0, 0.35, 0.1, 1'
    """
    return json.dumps([float(drop_m), *(float(x) for x in budget.key())])


@dataclass(frozen=True)
class StoredRun:
    """A stored analysis run: what serving its results needs besides the rows."""

    run_id: int
    data_version: int
    params_key: str
    drop_m: float
    budget: LossBudget
    home_zone: int | None
    kpis: dict[str, Any]      #: ``{"network": {...}, "areas": [...]}`` (kpis.json)
    ran_at: datetime
    #: WGS84 box of the nodes (:attr:`netgis.engine.analysis.Analysis.plant_extent`)
    plant_extent: tuple[float, float, float, float] | None = None


# ---------------------------------------------------------------------------------- writing


def _budget_params(budget: LossBudget) -> dict[str, Any]:
    return {"atten_db_per_km": budget.atten_db_per_km, "splice_db": budget.splice_db,
            "fixed_db": budget.fixed_db, "budget_db": budget.budget_db,
            "splitter_db": [[int(r), float(db)] for r, db in sorted(budget.splitter_db.items())]}


def _budget_of(params: Mapping[str, Any]) -> LossBudget:
    from netgis.engine.optics import LossBudget

    return LossBudget(atten_db_per_km=params["atten_db_per_km"], splice_db=params["splice_db"],
                      fixed_db=params["fixed_db"], budget_db=params["budget_db"],
                      splitter_db={int(r): float(db) for r, db in params["splitter_db"]})


def _finite_or_nan(values: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
    out = np.asarray(values, dtype=float).copy()
    out[~np.isfinite(out)] = np.nan
    return out


def result_frames(analysis: Analysis) -> dict[str, pd.DataFrame]:
    """The rows of the three result tables for ``analysis`` (no run id), vectorised.

    Reads the engine's arrays (graph, Dijkstra tree, protection); changes nothing.
    """
    g = analysis.graph
    optics = analysis.optics
    loss = optics.loss
    budget = optics.budget
    # node id of each vertex of G (None for the super-core S that stands for every core)
    vertex_node = np.full(g.n_vertices, None, dtype=object)
    non_core = ~g.is_core
    vertex_node[g.node_vertex[non_core]] = g.node_ids[non_core]
    dist = np.asarray(loss.dist_db, dtype=float)
    pred = np.asarray(loss.predecessor, dtype=np.int64)
    atten = budget.atten_db_per_km / 1000.0

    # premises: RESULT_FIELDS, and the end of the served span the least-loss path takes
    prem = analysis.premises
    frame = pd.DataFrame({"premise_id": prem["premise_id"].astype(str).to_numpy()})
    for f in RESULT_FIELDS["premises"]:
        frame[f.name] = _column(prem[f.name], f.type)
    served = np.asarray(analysis.served_edge, dtype=np.int64)
    loss_db = prem["loss_db"].to_numpy(dtype=float)
    has = (served >= 0) & np.isfinite(loss_db)
    e = served[has]
    length = optics.edge_length_m[e]
    frac = optics.frac_from[has]
    # as netgis.engine.optics.loss_breakdown chooses: the from end unless the to end costs less
    along_u = length * frac
    along_v = length * (1 - frac)
    from_end = dist[g.eu[e]] + atten * along_u <= dist[g.ev[e]] + atten * along_v
    end = np.where(from_end, g.eu[e], g.ev[e])
    loss_end = np.full(len(prem), None, dtype=object)
    loss_end[has] = vertex_node[end]
    along = np.full(len(prem), np.nan)
    along[has] = np.where(from_end, along_u, along_v)
    frame["loss_end"] = loss_end
    frame["loss_along_m"] = along

    # spans: RESULT_FIELDS, the edge of G and its protection
    spans = analysis.spans
    sframe = pd.DataFrame({"span_id": spans["span_id"].astype(str).to_numpy()})
    for f in RESULT_FIELDS["spans"]:
        sframe[f.name] = _column(spans[f.name], f.type)
    edge = analysis.edges_of(spans["span_id"].to_numpy())
    in_g = edge >= 0
    ge = edge[in_g]
    for name, values in (("eu_node", vertex_node[g.eu[ge]]), ("ev_node", vertex_node[g.ev[ge]])):
        col = np.full(len(spans), None, dtype=object)
        col[in_g] = values
        sframe[name] = col
    for name, values in (("eu_dist_db", dist[g.eu[ge]]), ("ev_dist_db", dist[g.ev[ge]])):
        fcol = np.full(len(spans), np.nan)
        fcol[in_g] = values
        sframe[name] = _finite_or_nan(fcol)
    prot = analysis.protection
    for name, per_edge in (("edge_reversed", optics.edge_reversed), ("span_protected", prot.span),
                           ("node_protected", prot.node), ("duct_protected", prot.duct)):
        bcol = pd.array([None] * len(spans), dtype="boolean")
        bcol[in_g] = np.asarray(per_edge, dtype=bool)[ge]
        sframe[name] = bcol

    # nodes: RESULT_FIELDS and the least-loss tree (non-core vertices only)
    nodes = analysis.nodes
    nframe = pd.DataFrame({"node_id": nodes["node_id"].astype(str).to_numpy()})
    for f in RESULT_FIELDS["nodes"]:
        nframe[f.name] = _column(nodes[f.name], f.type)
    at = pd.Index(g.node_ids.astype(object)).get_indexer(nodes["node_id"].to_numpy(dtype=object))
    ok = at >= 0
    ok[ok] = ~g.is_core[at[ok]]
    v = g.node_vertex[at[ok]]
    n = len(nodes)
    parent = np.full(n, None, dtype=object)
    p = pred[v] if len(pred) else np.zeros(0, dtype=np.int64)
    parent[np.flatnonzero(ok)[p > 0]] = vertex_node[p[p > 0]]
    nframe["tree_parent"] = parent
    dcol = np.full(n, np.nan)
    dcol[ok] = dist[v] if len(dist) else np.zeros(0)
    nframe["dist_db"] = _finite_or_nan(dcol)
    lcol = np.full(n, np.nan)
    lcol[ok] = loss.nodes.loss_db[v]
    nframe["node_loss_db"] = lcol
    scol = pd.array([None] * n, dtype="boolean")
    scol[ok] = loss.nodes.is_splice[v]
    nframe["is_splice"] = scol
    ratio = np.full(n, np.nan)
    ratio[ok] = loss.nodes.split_ratio[v]
    nframe["split_ratio"] = pd.array(np.where(np.isnan(ratio), 0, ratio).astype(np.int64),
                                     dtype="Int64")
    nframe.loc[np.isnan(ratio), "split_ratio"] = pd.NA
    nframe["tree_edge_m"] = _tree_edge_m(analysis, v, p, ok)
    return {"premises": frame, "spans": sframe, "nodes": nframe}


def _tree_edge_m(analysis: Analysis, v: np.ndarray[Any, Any], p: np.ndarray[Any, Any],
                 ok: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Per node row: the shortest edge between its vertex and its tree parent (meters)."""
    g = analysis.graph
    out = np.full(len(ok), np.nan)
    keep = g.eu != g.ev
    if not keep.any() or len(v) == 0:
        return out
    lo = np.minimum(g.eu[keep], g.ev[keep])
    hi = np.maximum(g.eu[keep], g.ev[keep])
    least = pd.Series(np.asarray(analysis.optics.edge_length_m, dtype=float)[keep]) \
        .groupby([lo, hi]).min()
    has = p >= 0
    keys = pd.MultiIndex.from_arrays([np.minimum(p[has], v[has]), np.maximum(p[has], v[has])])
    rows = np.flatnonzero(ok)[has]
    out[rows] = least.reindex(keys).to_numpy(dtype=float)
    return out


def _column(series: pd.Series, kind: str) -> Any:
    if kind == "float":
        return _finite_or_nan(series.to_numpy(dtype=float, na_value=np.nan))
    if kind == "int":
        return pd.array(series.to_numpy(), dtype="Int64")
    if kind == "bool":
        return pd.array(series.to_numpy(), dtype="boolean")
    values = series.to_numpy(dtype=object).copy()
    values[pd.isna(values)] = None
    return values


def store_analysis(engine: sqlalchemy.Engine, analysis: Analysis, *, data_version: int,
                   keep: int = DEFAULT_KEEP, duration_s: float | None = None) -> int | None:
    """Store ``analysis`` (of data version ``data_version``) unless that run exists.

    Returns the new run's id, or None when a run of this data version and these
    parameters was stored already (by this or another process). Then prunes the
    runs of older data versions, keeping those of the newest ``keep`` versions.
    """
    if keep < 1:
        raise ValidationError([Problem("parameters", None, "keep", "must be >= 1")])
    key = params_key(analysis.drop_m, analysis.budget)
    if find_run(engine, data_version, key) is not None:
        return None
    frames = result_frames(analysis)
    extent = analysis.plant_extent
    params = {"drop_m": float(analysis.drop_m), **_budget_params(analysis.budget),
              "home_zone": analysis.home_zone,
              "plant_extent": None if extent is None else [float(v) for v in extent]}
    kpis = json_safe(analysis.kpis)
    counts = {"premises": len(analysis.premises), "spans": len(analysis.spans),
              "nodes": len(analysis.nodes)}
    started = time.perf_counter()
    with begin_write(engine) as conn:
        insert = _dialect_insert(conn)(ANALYSIS_RUNS).values(
            ran_at=datetime.now(UTC), drop_m=float(analysis.drop_m),
            data_version=int(data_version), duration_s=duration_s, counts=counts,
            params_key=key, params=params, network_kpis=kpis["network"],
            area_kpis=kpis["areas"],
        ).on_conflict_do_nothing(index_elements=["data_version", "params_key"]) \
            .returning(ANALYSIS_RUNS.c.run_id)
        run_id = conn.execute(insert).scalar()
        if run_id is None:
            return None  # stored meanwhile by another process: nothing written
        for layer in ("nodes", "spans", "premises"):
            _bulk_insert(conn, RESULT_TABLES[layer], frames[layer], int(run_id))
    if duration_s is None:
        with begin_write(engine) as conn:
            conn.execute(ANALYSIS_RUNS.update().where(ANALYSIS_RUNS.c.run_id == run_id)
                         .values(duration_s=time.perf_counter() - started))
    prune_runs(engine, keep=keep)
    return int(run_id)


def changed_rows(before: pd.DataFrame, after: pd.DataFrame, id_field: str
                 ) -> tuple[pd.DataFrame, list[str]]:
    """The rows of ``after`` that are new or differ from ``before`` (missing equal to missing,
    floats bit for bit), and the ids of ``before`` that are gone.

    Examples
    --------
    >>> a = pd.DataFrame({"id": ["x", "y", "z"], "v": [1.0, np.nan, 3.0]})
    >>> b = pd.DataFrame({"id": ["y", "x", "w"], "v": [np.nan, 1.5, 9.0]})
    >>> rows, gone = changed_rows(a, b, "id")
    >>> rows["id"].tolist(), gone
    (['x', 'w'], ['z'])
    """
    old = before.set_index(id_field)
    new = after.set_index(id_field)
    gone = sorted(set(old.index) - set(new.index))
    common = new.index.isin(old.index)
    differs = ~common
    if common.any():
        mine = new[common]
        theirs = old.reindex(mine.index)
        same = np.ones(len(mine), dtype=bool)
        for col in new.columns:
            a = mine[col].astype(object).to_numpy()
            b = theirs[col].astype(object).to_numpy()
            missing_a, missing_b = pd.isna(a), pd.isna(b)
            both = ~missing_a & ~missing_b
            eq = np.zeros(len(a), dtype=bool)
            if both.any():
                eq[both] = np.asarray(a[both] == b[both], dtype=bool)
            same &= np.where(missing_a | missing_b, missing_a & missing_b, eq)
        differs[np.flatnonzero(common)] = ~same
    return after[differs], [str(g) for g in gone]


def update_run(engine: sqlalchemy.Engine, run_id: int, analysis: Analysis, *,
               from_version: int, data_version: int,
               before: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame] | None:
    """Bring the stored run ``run_id`` of data version ``from_version`` to ``analysis`` (of
    ``data_version``) by the rows that changed, in one transaction.

    ``before`` are the :func:`result_frames` the run holds (those of the analysis of
    ``from_version``). Only result rows that differ are deleted and written again;
    the run takes the new data version and KPIs. Returns the new frames (the next
    update's ``before``), or None when the run is no longer at ``from_version``
    (another process moved it on, or it was pruned): nothing is written then.
    """
    frames = result_frames(analysis)
    key = params_key(analysis.drop_m, analysis.budget)
    kpis = json_safe(analysis.kpis)
    counts = {"premises": len(analysis.premises), "spans": len(analysis.spans),
              "nodes": len(analysis.nodes)}
    started = time.perf_counter()
    with begin_write(engine) as conn:
        taken = conn.execute(
            ANALYSIS_RUNS.update().where(ANALYSIS_RUNS.c.run_id == int(run_id),
                                         ANALYSIS_RUNS.c.data_version == int(from_version),
                                         ANALYSIS_RUNS.c.params_key == key)
            .values(data_version=int(data_version), ran_at=datetime.now(UTC), counts=counts,
                    network_kpis=kpis["network"], area_kpis=kpis["areas"])).rowcount
        if taken != 1:
            return None
        for layer in ("nodes", "spans", "premises"):
            table = RESULT_TABLES[layer]
            id_field = LAYERS[layer].id_field
            rows, gone = changed_rows(before[layer], frames[layer], id_field)
            drop = gone + [str(v) for v in rows[id_field].tolist()]
            for start in range(0, len(drop), 500):
                conn.execute(delete(table).where(table.c.run_id == int(run_id),
                                                 table.c[id_field].in_(drop[start:start + 500])))
            _bulk_insert(conn, table, rows, int(run_id))
        conn.execute(ANALYSIS_RUNS.update().where(ANALYSIS_RUNS.c.run_id == int(run_id))
                     .values(duration_s=time.perf_counter() - started))
    return frames


def _dialect_insert(conn: Connection) -> Any:
    if dialects.dialect_name(conn.dialect) == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    return pg_insert


def _bulk_insert(conn: Connection, table: Table, frame: pd.DataFrame, run_id: int) -> None:
    """All rows of ``frame`` into ``table`` with ``run_id``, in the caller's transaction."""
    if frame.empty:
        return
    columns = ["run_id", *frame.columns]
    if dialects.dialect_name(conn.dialect) == "sqlite":
        data = frame.astype(object).where(frame.notna(), None)
        rows = [(run_id, *row) for row in data.itertuples(index=False, name=None)]
        stmt = table.insert().compile(dialect=conn.dialect, column_keys=columns)
        names = list(stmt.positiontup or [])
        order = [columns.index(c) for c in names]
        conn.exec_driver_sql(str(stmt), [tuple(r[i] for i in order) for r in rows])
        return
    prep = conn.dialect.identifier_preparer
    copy_sql = (f"COPY {prep.quote(table.name)} ({', '.join(prep.quote(c) for c in columns)}) "
                "FROM STDIN WITH (FORMAT csv)")
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    out = frame.copy()
    out.insert(0, "run_id", run_id)
    with dbapi.cursor() as cur, cur.copy(copy_sql) as copy:  # type: ignore[attr-defined]
        for start in range(0, len(out), _COPY_CHUNK):
            buf = io.StringIO()
            # repr-exact floats, empty (unquoted) cells for null
            out.iloc[start:start + _COPY_CHUNK].to_csv(buf, index=False, header=False)
            copy.write(buf.getvalue())
    conn.exec_driver_sql(f"ANALYZE {prep.quote(table.name)}")


def prune_runs(engine: sqlalchemy.Engine, *, keep: int = DEFAULT_KEEP) -> list[int]:
    """Delete the stored runs of all but the ``keep`` newest data versions; their ids.

    Only the current data version's runs are ever served, so runs of older data
    (of any parameters) are kept only as far as ``keep`` asks. Runs without
    stored results (no ``params_key``) are not touched.
    """
    table = ANALYSIS_RUNS
    stored = table.c.params_key.is_not(None)
    with begin_write(engine) as conn:
        versions = conn.execute(select(table.c.data_version).where(stored).distinct()
                                .order_by(table.c.data_version.desc())).scalars().all()
        if len(versions) <= keep:
            return []
        oldest_kept = int(versions[keep - 1])
        ids = [int(r) for r in conn.execute(select(table.c.run_id).where(
            stored, table.c.data_version < oldest_kept).order_by(table.c.run_id)).scalars()]
        if ids:
            for result in RESULT_TABLES.values():
                conn.execute(delete(result).where(result.c.run_id.in_(ids)))
            conn.execute(delete(table).where(table.c.run_id.in_(ids)))
    return ids


# ---------------------------------------------------------------------------------- reading


def _run_of(row: Any) -> StoredRun:
    params = row["params"]
    ran_at = row["ran_at"]
    return StoredRun(
        run_id=int(row["run_id"]), data_version=int(row["data_version"]),
        params_key=str(row["params_key"]), drop_m=float(params["drop_m"]),
        budget=_budget_of(params), home_zone=params.get("home_zone"),
        kpis={"network": row["network_kpis"], "areas": row["area_kpis"] or []},
        ran_at=ran_at.replace(tzinfo=UTC) if ran_at.tzinfo is None else ran_at,
        plant_extent=_extent(params.get("plant_extent")))


def _extent(values: Any) -> tuple[float, float, float, float] | None:
    if values is None:
        return None
    west, south, east, north = (float(v) for v in values)
    return west, south, east, north


def find_run(engine: sqlalchemy.Engine, data_version: int, key: str) -> StoredRun | None:
    """The stored run of ``data_version`` with parameters ``key``, or None."""
    table = ANALYSIS_RUNS
    with engine.connect() as conn:
        row = conn.execute(select(table).where(
            table.c.data_version == int(data_version), table.c.params_key == key)
        ).mappings().first()
    return None if row is None else _run_of(row)


def stored_runs(engine: sqlalchemy.Engine) -> list[StoredRun]:
    """Every run with stored results, newest first."""
    table = ANALYSIS_RUNS
    with engine.connect() as conn:
        rows = conn.execute(select(table).where(table.c.params_key.is_not(None)).order_by(
            table.c.data_version.desc(), table.c.run_id.desc())).mappings().all()
    return [_run_of(r) for r in rows]


def read_results(engine: sqlalchemy.Engine, run_id: int, layer: str) -> pd.DataFrame:
    """Every stored row of ``layer`` for ``run_id`` (id and RESULT_FIELDS), ordered by id."""
    table = RESULT_TABLES[layer]
    id_field = LAYERS[layer].id_field
    cols = [id_field, *(f.name for f in RESULT_FIELDS[layer])]
    with engine.connect() as conn:
        rows = conn.execute(select(*(table.c[c] for c in cols))
                            .where(table.c.run_id == int(run_id))
                            .order_by(table.c[id_field])).all()
    return _typed(layer, cols, rows)


def _typed(layer: str, cols: Sequence[str], rows: Sequence[Any]) -> pd.DataFrame:
    kinds: dict[str, str] = {f.name: f.type for f in RESULT_FIELDS[layer]}
    kinds.update(dict(SERVING_COLUMNS[layer]))
    data = list(zip(*rows, strict=True)) if rows else [() for _ in cols]
    out: dict[str, Any] = {}
    for c, values in zip(cols, data, strict=True):
        kind = kinds.get(c, "text")
        if kind == "float":
            out[c] = np.asarray([np.nan if x is None else x for x in values], dtype=float)
        elif kind == "bool":
            out[c] = np.asarray([bool(x) for x in values], dtype=bool)
        elif kind == "int":
            out[c] = np.asarray([0 if x is None else int(x) for x in values], dtype=np.int64)
        else:
            out[c] = np.asarray(values, dtype=object)
    return pd.DataFrame(out)


@dataclass(frozen=True)
class _Extent:
    """What :func:`netgis.engine.analysis.position_warnings` reads of an analysis: the
    plant's box."""

    plant_extent: tuple[float, float, float, float] | None


class ResultReader:
    """Per-item answers from a stored run: a premise, a serviceability lookup.

    Each call is a few indexed queries in one read transaction. ``version``
    guards against a write between finding the run and reading it: when the
    data version is no longer the run's, the call returns None and the caller
    falls back to the analysis of the new data.
    """

    def __init__(self, engine: sqlalchemy.Engine) -> None:
        self.engine = engine

    # ------------------------------------------------------------------ premises

    def premise(self, run: StoredRun, premise_id: str) -> tuple[gpd.GeoDataFrame,
                                                                dict[str, Any] | None] | None:
        """The premise row (layer fields, geometry, RESULT_FIELDS) and its loss breakdown.

        Returns None when the data changed since the run; an empty frame when there
        is no such premise.
        """
        from netgis.storage.repository import _read_version, _rows_to_frame

        layer = LAYERS["premises"]
        table = LAYER_TABLES["premises"]
        results = RESULT_TABLES["premises"]
        result_cols = [f.name for f in RESULT_FIELDS["premises"]]
        serving = [c for c, _ in SERVING_COLUMNS["premises"]]
        stmt = select(*(table.c[f.name] for f in layer.fields),
                      *(results.c[c] for c in [*result_cols, *serving]),
                      func.ST_AsBinary(table.c.geometry, type_=LargeBinary)) \
            .join(results, (results.c.premise_id == table.c.premise_id)
                  & (results.c.run_id == run.run_id)) \
            .where(table.c.premise_id == str(premise_id))
        with begin_read(self.engine) as conn:
            if _read_version(conn) != run.data_version:
                return None
            rows = conn.execute(stmt).all()
            if not rows:
                from netgis.dataset import empty_layer

                return empty_layer("premises", SRID), None
            row = rows[0]
            n_fields = len(layer.fields)
            frame = _rows_to_frame("premises", list(layer.fields),
                                   [(*row[:n_fields], row[-1])])
            res = _typed("premises", [*result_cols, *serving], [row[n_fields:-1]])
            for c in result_cols:
                frame[c] = res[c].to_numpy()
            served = row[n_fields + result_cols.index("served_span_id")]
            frame["served_span_id"] = pd.Series([served], dtype=object)
            loss_db = row[n_fields + result_cols.index("loss_db")]
            breakdown = None
            if loss_db is not None:
                values = dict(zip([*result_cols, *serving], row[n_fields:-1], strict=True))
                breakdown = self._breakdown(conn, run, end=values["loss_end"],
                                            along_m=float(values["loss_along_m"]),
                                            distance_m=float(values["distance_m"]))
        return frame, breakdown

    def _breakdown(self, conn: Connection, run: StoredRun, *, end: str | None, along_m: float,
                   distance_m: float) -> dict[str, Any]:
        """:func:`netgis.engine.optics.loss_breakdown` from the stored least-loss tree."""
        budget = run.budget
        atten = budget.atten_db_per_km / 1000.0
        path = self._path(conn, run, end) if end is not None else []
        ids = [p[0] for p in path]
        node_loss = np.asarray([p[2] for p in path], dtype=float)
        splice = np.asarray([bool(p[3]) for p in path], dtype=bool)
        ratio = np.asarray([np.nan if p[4] is None else float(p[4]) for p in path], dtype=float)
        end_dist = path[-1][1] if path else 0.0
        end_dist = np.inf if end_dist is None else end_dist
        path_fiber_db = float(np.float64(end_dist) - node_loss.sum()) if path else 0.0
        split_at = ~np.isnan(ratio)
        splitters = [{"node_id": ids[i], "ratio": int(ratio[i]), "loss_db": float(node_loss[i])}
                     for i in np.flatnonzero(split_at)]
        fiber_db = path_fiber_db + atten * (along_m + distance_m)
        splice_db = float(node_loss[splice].sum())
        splitter_db = float(node_loss[split_at].sum())
        if budget.atten_db_per_km:
            fiber_km = fiber_db / budget.atten_db_per_km
        else:
            total = 0.0
            for p in path:
                total += float(p[5]) / 1000.0
            fiber_km = (along_m + distance_m) / 1000.0 + total
        return {
            "fiber_km": fiber_km, "fiber_db": fiber_db, "splices": int(splice.sum()),
            "splice_db": splice_db, "splitters": splitters, "splitter_db": splitter_db,
            "fixed_db": budget.fixed_db,
            "loss_db": budget.fixed_db + fiber_db + splice_db + splitter_db,
            "path": ids,
        }

    def _path(self, conn: Connection, run: StoredRun, end: str) -> list[tuple[Any, ...]]:
        """The least-loss path from the cores to node ``end`` (core side first).

        One recursive query up the stored tree (an index lookup per node).
        """
        rows = conn.execute(text(
            "WITH RECURSIVE up(node_id, parent, depth) AS ("
            " SELECT node_id, tree_parent, 0 FROM node_results"
            " WHERE run_id = :run AND node_id = :end"
            " UNION ALL"
            " SELECT n.node_id, n.tree_parent, up.depth + 1 FROM node_results n"
            " JOIN up ON n.run_id = :run AND n.node_id = up.parent)"
            " SELECT n.node_id, n.dist_db, n.node_loss_db, n.is_splice, n.split_ratio,"
            " n.tree_edge_m FROM up JOIN node_results n"
            " ON n.run_id = :run AND n.node_id = up.node_id ORDER BY up.depth DESC"),
            {"run": run.run_id, "end": end}).all()
        return [tuple(r) for r in rows]

    # ----------------------------------------------------------- serviceability

    def serviceability(self, run: StoredRun, lon: float, lat: float) -> dict[str, Any] | None:
        """:func:`netgis.engine.analysis.serviceability` from the stored run (None: data changed).

        The lit spans near the point come from the database's spatial index: a
        box grown until it holds one, then a box sure to hold every span as near
        as that one (and the engine's tie window); the engine's nearest-span
        search runs over those few spans, sorted by id as the whole-network index
        sorts them.
        """
        from netgis.engine.analysis import position_warnings
        from netgis.engine.coverage import SpanIndex, locate, zones_near
        from netgis.storage.repository import _read_version

        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise ValidationError([Problem("parameters", None, "lon/lat",
                                           f"not a WGS84 position: {lon}, {lat}")])
        drop_m = run.drop_m
        pts = gpd.GeoSeries([shapely.Point(lon, lat)], crs=SRID)
        zones = zones_near(np.array([lon]), np.array([lat]), run.home_zone)
        # the point is WGS84 already: its lon/lat are the input (as the engine reads them)
        lonlat = np.array([[float(lon), float(lat)]])
        with begin_read(self.engine) as conn:
            if _read_version(conn) != run.data_version:
                return None
            # a box that holds, for any point passed (distance <= drop_m), every span the
            # engine's search could pick: then one query and one search suffice
            radius = max(2.2 * drop_m + 60.0, 250.0)
            found = self._lit_near(conn, run, lon, lat, radius)
            while found.empty and radius < 4.1e7:
                radius *= 2.0
                found = self._lit_near(conn, run, lon, lat, radius)
            row = None
            if not found.empty:
                row = locate(pts, SpanIndex(found), drop_m=drop_m, zones=zones,
                             points_lonlat=lonlat).iloc[0]
                # every span as near as the one found, with room for the working zone's
                # scale error and the engine's tie window
                reach = float(row["distance_m"]) * 1.05 + drop_m * 1.01 + 50.0
                if reach > radius:
                    found = self._lit_near(conn, run, lon, lat, reach)
                    row = locate(pts, SpanIndex(found), drop_m=drop_m, zones=zones,
                                 points_lonlat=lonlat).iloc[0]
            served = None if row is None else row["served_span_id"]
            flags = {"span_protected": False, "node_protected": False, "duct_protected": False}
            optical: dict[str, Any] = {"loss_db": None, "margin_db": None, "in_budget": False,
                                       "loss": None}
            if row is not None and served is not None:
                span = found.loc[found["span_id"] == served].iloc[0]
                flags = {k: bool(span[k]) for k in flags}
                frac = float(row["attach_frac"])
                frac_from = 1.0 - frac if bool(span["edge_reversed"]) else frac
                optical = self._reach(conn, run, span, frac_from=frac_from,
                                      distance_m=float(row["distance_m"]))
        dist = np.nan if row is None else row["distance_m"]
        return {
            "lon": lon, "lat": lat, "passed": False if row is None else bool(row["passed"]),
            "distance_m": None if pd.isna(dist) else float(dist),
            "served_span_id": served,
            "nearest_span_id": None if row is None else row["nearest_span_id"],
            "drop_m": drop_m, **flags, **optical,
            "warnings": position_warnings(cast("Analysis", _Extent(run.plant_extent)), lon, lat),
        }

    def _reach(self, conn: Connection, run: StoredRun, span: pd.Series, *, frac_from: float,
               distance_m: float) -> dict[str, Any]:
        """:func:`netgis.engine.analysis.optical_reach` from the stored span and tree."""
        budget = run.budget
        atten = budget.atten_db_per_km / 1000.0
        length = float(span["length_m"])
        d_u = np.float64(np.inf if pd.isna(span["eu_dist_db"]) else span["eu_dist_db"])
        d_v = np.float64(np.inf if pd.isna(span["ev_dist_db"]) else span["ev_dist_db"])
        # as netgis.engine.optics.premise_loss_db computes it for one attachment
        along = np.float64(length) * np.float64(frac_from)
        via_from = d_u + atten * along
        via_to = d_v + atten * (np.float64(length) - along)
        loss_db = float(budget.fixed_db + atten * np.float64(distance_m)
                        + np.minimum(via_from, via_to))
        if not np.isfinite(loss_db):
            return {"loss_db": None, "margin_db": None, "in_budget": False, "loss": None}
        margin = float(budget.budget_db - loss_db)
        in_budget = bool(loss_db <= budget.budget_db)
        # as netgis.engine.optics.loss_breakdown picks the end
        ends = ((span["eu_node"], d_u, length * frac_from),
                (span["ev_node"], d_v, length * (1 - frac_from)))
        end, _, along_m = min(ends, key=lambda t: t[1] + atten * t[2])
        breakdown = self._breakdown(conn, run, end=None if pd.isna(end) else str(end),
                                    along_m=float(along_m), distance_m=distance_m)
        return {"loss_db": loss_db, "margin_db": margin, "in_budget": in_budget,
                "loss": breakdown}

    def _lit_near(self, conn: Connection, run: StoredRun, lon: float, lat: float,
                  radius_m: float) -> gpd.GeoDataFrame:
        """Lit spans of ``run`` whose geometry meets a box of ``radius_m`` around lon/lat."""
        dlat = radius_m / _M_PER_DEG
        cos = math.cos(math.radians(min(89.9, abs(lat) + dlat)))
        dlon = radius_m / (_M_PER_DEG * cos)
        if dlon >= 180 or dlat >= 90:
            bbox = (-180.0, -90.0, 180.0, 90.0)
        else:
            bbox = (max(-180.0, lon - dlon), max(-90.0, lat - dlat),
                    min(180.0, lon + dlon), min(90.0, lat + dlat))
            if lon - dlon < -180 or lon + dlon > 180:
                bbox = (-180.0, bbox[1], 180.0, bbox[3])  # across the antimeridian: all lons
        spans = LAYER_TABLES["spans"]
        results = RESULT_TABLES["spans"]
        cols = ["length_m", "eu_node", "ev_node", "eu_dist_db", "ev_dist_db", "edge_reversed",
                "span_protected", "node_protected", "duct_protected"]
        stmt = select(spans.c.span_id, *(results.c[c] for c in cols),
                      func.ST_AsBinary(spans.c.geometry, type_=LargeBinary)) \
            .join(results, (results.c.span_id == spans.c.span_id)
                  & (results.c.run_id == run.run_id)) \
            .where(results.c.lit.is_(True), dialects.bbox_filter(conn.dialect, spans, bbox))
        rows = conn.execute(stmt).all()
        frame = _typed("spans", ["span_id", *cols], [r[:-1] for r in rows])
        frame["eu_node"] = [r[2] for r in rows] if rows else []
        frame["ev_node"] = [r[3] for r in rows] if rows else []
        geoms = shapely.from_wkb(np.asarray([bytes(r[-1]) for r in rows], dtype=object)) \
            if rows else np.zeros(0, dtype=object)
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=SRID), crs=SRID)
