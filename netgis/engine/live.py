"""A live analysis: the answers of :func:`netgis.engine.analysis.analyze` kept current edit by edit.

:class:`LiveAnalysis` holds the analysis of a dataset and applies
:class:`Changes` (features inserted, replaced or deleted in any layer) by what
they touch instead of analysing everything again. docs/architecture.md
("Live analysis") explains the data structures; the result after any sequence
of changes equals a from-scratch :func:`~netgis.engine.analysis.analyze` of the
same data (``tests/test_live_analysis.py`` checks it on random edit sequences).

How a change is applied:

- **Premises only.** The changed premises are located, protected and priced
  (one :func:`~netgis.engine.analysis.premise_chunk` of those rows); the edge
  counts, KPI sums and per-area sums follow by differences; cut and failure
  impacts are one linear pass over G. The working-zone choice is checked again
  only when positions changed; when it changes, everything is analysed again.
- **Spans or nodes.** The network stage (graph, lit spans, 2-edge- and
  biconnected structure, protection, optical ``dist(v)``) is derived again,
  each part one linear pass, with the geodesic lengths of unchanged spans
  kept. Only premises whose nearest lit span went away or changed, and those
  near enough to a newly lit (or moved) span to prefer it, are located again;
  every other premise keeps its attachment, and its protection flags and loss
  follow from the new graph by vectorized lookups.
- **Areas.** The area index and per-area sums are computed again (areas are few).
- The km KPIs follow span by span (:class:`netgis.engine.lines.LineTotals`).

Examples
--------
>>> from netgis.io import read_dataset
>>> live = LiveAnalysis(read_dataset("tests/examples/ring_spur/dataset.gpkg"))
>>> before = live.analysis.kpis["network"]["units_total"]
>>> row = live.dataset.premises.iloc[[0]].copy()
>>> row["units"] = row["units"] + 5
>>> live.apply(Changes.of(rows={"premises": row})).kpis["network"]["units_total"] - before
5
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from pyproj import CRS

from netgis.dataset import Dataset
from netgis.engine.analysis import (
    Analysis,
    NetworkStage,
    _loss_columns,
    _positions,
    _scatter,
    _span_results,
    analyze_parts,
    network_stage,
    premise_chunk,
)
from netgis.engine.coverage import ZoneStats, lonlat
from netgis.engine.graph import (
    AnalysisGraph,
    id_index,
    node_entries,
    span_edges,
    span_lengths_m,
)
from netgis.engine.kpis import AreaIndex, LineKpis, assemble_kpis, premise_sums
from netgis.engine.lines import LineTotals
from netgis.engine.optics import LossBudget
from netgis.engine.redundancy import DuctMemo, Impact, S, impacts
from netgis.geodesy import WGS84, transform_geoms, transformer
from netgis.schema import DEFAULT_DROP_M, LAYERS

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Side of the square cells premises are bucketed in (working CRS meters) to find those
#: a newly lit span may come nearest to.
CELL_M = 100.0
#: Margin (meters, and relative) by which a premise's bounding-box distance to a new lit
#: span may exceed its current distance and still be located again: far above the
#: working CRS's scale error (< 0.1 %) and the tie limit of the nearest search.
NEAR_SLACK_M = 2.0
NEAR_SLACK_REL = 0.01
#: Meters around the premises an edit locates again within which lit spans are searched
#: first (then 8 times that, then all: :func:`netgis.engine.coverage.locate`'s halo).
LOCATE_HALO_M = 250.0
_FLAGS = ("span_protected", "node_protected", "duct_protected")
#: The premise columns that follow from the served edge (protections and optical loss): a
#: network step sets them for every premise whose edge changed, located again or not.
_PER_EDGE = frozenset((*_FLAGS, "loss_db", "in_budget", "margin_db", "loss_fiber_km",
                       "loss_splitter_db", "loss_splice_db"))
#: The km KPIs and utilization (:func:`netgis.engine.kpis.line_kpis`), by scope.
_LINE_KEYS = ("cable_km", "route_km", "fiber_km", "utilization_pct")


@dataclass(frozen=True)
class Changes:
    """Features written or deleted since an analysis: per layer, rows as they are now and
    the ids deleted.

    ``rows`` holds validated rows (any CRS; they are reprojected to the dataset's).
    An id in both is written (deleted, then written again).
    """

    rows: Mapping[str, gpd.GeoDataFrame] = field(default_factory=dict)
    deleted: Mapping[str, Sequence[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: Mapping[str, gpd.GeoDataFrame] | None = None,
           deleted: Mapping[str, Sequence[str]] | None = None) -> Changes:
        """Changes of the layers named (the others unchanged)."""
        return cls(dict(rows or {}), dict(deleted or {}))

    def touches(self, layer: str) -> bool:
        """Whether any row of ``layer`` is written or deleted."""
        rows = self.rows.get(layer)
        return bool((rows is not None and len(rows)) or len(self.deleted.get(layer, ())))

    @property
    def empty(self) -> bool:
        """No layer is touched."""
        return not any(self.touches(layer) for layer in LAYERS)


def _ids(frame: pd.DataFrame, layer: str) -> npt.NDArray[np.object_]:
    return np.asarray(frame[LAYERS[layer].id_field].to_numpy(), dtype=object)


def _merge_small(frame: gpd.GeoDataFrame, layer: str, rows: gpd.GeoDataFrame | None,
                 deleted: Sequence[str]) -> gpd.GeoDataFrame:
    """A small layer (nodes, spans, areas) with rows replaced in place, new ones appended
    and deleted ones removed."""
    ids = _ids(frame, layer)
    gone = set(deleted)
    out = frame
    if rows is not None and len(rows):
        rows = rows.reset_index(drop=True)
        pos = _positions(ids, _ids(rows, layer))
        old = pos >= 0
        gone -= set(_ids(rows, layer).tolist())
        out = _set_rows(frame, pos[old], rows.iloc[np.flatnonzero(old)])
        if (~old).any():
            out = _concat(out, rows.iloc[np.flatnonzero(~old)])
    if gone:
        keep = ~id_index(_ids(out, layer)).isin(list(gone))
        out = out.iloc[np.flatnonzero(keep)].reset_index(drop=True)
    return out


def _same_column(a: pd.DataFrame, b: pd.DataFrame, col: str) -> bool:
    """Whether two frames hold column ``col`` in the same memory (:func:`_set_rows` shares
    a column whose values it does not change): then they hold the same values."""
    if len(a) != len(b):
        return False
    x, y = a[col].array, b[col].array
    if x is y:
        return True
    xs, ys = getattr(x, "_pa_array", None), getattr(y, "_pa_array", None)
    if xs is not None and ys is not None:
        return bool(xs is ys)
    xa, ya = getattr(x, "_ndarray", None), getattr(y, "_ndarray", None)
    return xa is not None and ya is not None and (xa is ya or (
        xa.shape == ya.shape and xa.ctypes.data == ya.ctypes.data
        and xa.strides == ya.strides and xa.dtype == ya.dtype))


def _set_rows(frame: gpd.GeoDataFrame, pos: IntArray, rows: pd.DataFrame,
              columns: Sequence[str] | None = None) -> gpd.GeoDataFrame:
    """A new frame: ``frame`` with rows ``pos`` taken from ``rows`` (same columns).

    Columns whose values at ``pos`` do not change are shared with ``frame``, not
    copied (frames are never changed in place here, so sharing is safe): a patch of
    one field of one premise copies that one column of a million rows.
    """
    data: dict[str, Any] = {}
    cols = list(frame.columns)
    wanted = set(columns if columns is not None else cols)
    geom = frame.geometry.name
    for col in cols:
        current = frame[col].array
        if col in wanted and len(pos):
            given = rows[col].array
            if not _same_values(current[pos], given, geometry=col == geom):
                current = current.copy()
                current[pos] = given
        data[col] = current
    return _frame(data, frame)


def _frame(data: dict[str, Any], like: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A frame of the column arrays ``data``, each keeping its dtype and memory.

    Arrays are wrapped as series of their own dtype first: handed to the constructor
    as they are, object arrays of strings would be inferred and converted to Arrow
    strings (about 70 ms per million rows, each time).
    """
    columns = {col: pd.Series(arr, copy=False, dtype=arr.dtype) for col, arr in data.items()}
    return gpd.GeoDataFrame(columns, geometry=like.geometry.name, crs=like.crs, copy=False)


def _python_strings(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` with its text columns held as Python strings (object dtype)."""
    text = [c for c in frame.columns if isinstance(frame[c].dtype, pd.StringDtype)]
    if not text:
        return frame
    return frame.astype(dict.fromkeys(text, object))


def _one_chunk(frame: gpd.GeoDataFrame, *, most: int = 1) -> gpd.GeoDataFrame:
    """``frame`` with each Arrow column held in one chunk (when it has more than ``most``).

    Taking a few rows of a chunked Arrow string array concatenates its chunks first
    (~1.5 ms per column of a million rows, each time); of one chunk it costs
    microseconds. A read in batches, or rows appended, leave several chunks.
    """
    data: dict[str, Any] = {}
    changed = False
    for col in frame.columns:
        arr = frame[col].array
        chunked = getattr(arr, "_pa_array", None)
        if chunked is not None and getattr(chunked, "num_chunks", 1) > most:
            arr = type(arr)(chunked.combine_chunks())
            changed = True
        data[col] = arr
    return _frame(data, frame) if changed else frame


def _same_values(a: Any, b: Any, *, geometry: bool) -> bool:
    """Whether two arrays hold the same values (missing equal to missing; geometries
    identical, coordinates bit for bit)."""
    if len(a) != len(b):
        return False
    if geometry:
        return bool(shapely.equals_identical(np.asarray(a, dtype=object),
                                             np.asarray(b, dtype=object)).all())
    if len(a) <= _FEW:
        # a few values (an edit's rows): compared one by one, without building series
        for u, v in zip(list(a), list(b), strict=True):
            missing_u, missing_v = _missing(u), _missing(v)
            if missing_u or missing_v:
                if missing_u != missing_v:
                    return False
            elif not bool(u == v):
                return False
        return True
    x, y = pd.Series(a), pd.Series(b)
    missing_x, missing_y = x.isna().to_numpy(), y.isna().to_numpy()
    if not np.array_equal(missing_x, missing_y):
        return False
    both = ~missing_x
    try:
        equal = (x[both].reset_index(drop=True) == y[both].reset_index(drop=True)).to_numpy(
            dtype=bool, na_value=False)
    except (TypeError, ValueError):
        return bool(all(u == v for u, v in zip(x[both].tolist(), y[both].tolist(),
                                                strict=True)))
    return bool(equal.all())


#: Chunks an Arrow column of the live frames may gather from inserts before they are
#: joined (:func:`_one_chunk`).
_MOST_CHUNKS = 8
#: Up to this many values, :func:`_same_values` compares them one by one.
_FEW = 64


def _missing(value: Any) -> bool:
    """Whether a scalar is a missing value (None, NaN, pd.NA, NaT)."""
    return value is None or value is pd.NA or value is pd.NaT or (
        isinstance(value, float) and value != value)


def _concat(frame: gpd.GeoDataFrame, more: pd.DataFrame) -> gpd.GeoDataFrame:
    """``frame`` with the rows of ``more`` appended (same columns and dtypes)."""
    more = more[list(frame.columns)]
    data = {col: pd.concat([frame[col], more[col]], ignore_index=True).array
            for col in frame.columns}
    # an insert adds a chunk; they are joined once there are a few (joining copies
    # every string of the column, which each insert would otherwise pay)
    return _one_chunk(_frame(data, frame), most=_MOST_CHUNKS)


def _take(frame: gpd.GeoDataFrame, keep: BoolArray) -> gpd.GeoDataFrame:
    return frame.iloc[np.flatnonzero(keep)].reset_index(drop=True)


@dataclass
class _PremiseRows:
    """Per premise row: what an increment needs beyond the result frame."""

    served_edge: IntArray
    frac_from: FloatArray
    #: the nearest lit span, as its code in :class:`_SpanCodes` (-1: none)
    nearest: IntArray
    lonlat: FloatArray


class _SpanCodes:
    """A number for each span id ever seen, never reused.

    The nearest lit span of a million premises is kept as these numbers: which premises
    a span that stops being lit was nearest to is then a test of integers (~2 ms), not of
    a million strings, and the arrays copy without touching a Python object.
    """

    def __init__(self) -> None:
        self._code: dict[str, int] = {}

    def of(self, ids: npt.ArrayLike) -> IntArray:
        """The code of each id (-1 for None), giving new ids the next numbers."""
        code = self._code
        out = np.empty(len(ids), dtype=np.int64)  # type: ignore[arg-type]
        for i, k in enumerate(np.asarray(ids, dtype=object).tolist()):
            if k is None:
                out[i] = -1
                continue
            key = str(k)
            c = code.get(key)
            if c is None:
                c = code[key] = len(code)
            out[i] = c
        return out

    def known(self, ids: Iterable[str]) -> IntArray:
        """The codes of those of ``ids`` that have one."""
        code = self._code
        return np.asarray([code[k] for k in ids if k in code], dtype=np.int64)


class LiveAnalysis:
    """The analysis of a dataset, kept current by :meth:`apply`.

    Parameters
    ----------
    dataset
        A validated dataset.
    drop_m, budget
        As for :func:`netgis.engine.analysis.analyze`.

    Notes
    -----
    :meth:`apply` builds a new :class:`~netgis.engine.analysis.Analysis` (new
    frames) and never changes the one returned before: a reader holding it
    keeps a complete, consistent state while the next change is applied.
    """

    def __init__(self, dataset: Dataset, *, drop_m: float = DEFAULT_DROP_M,
                 budget: LossBudget | None = None) -> None:
        self.drop_m = float(drop_m)
        self.budget = budget
        #: how the last :meth:`apply` was done: "premises", "network", "areas", "full", "none"
        self.last_path = "full"
        self._full(dataset)

    # ------------------------------------------------------------------ state

    @property
    def dataset(self) -> Dataset:
        """The current dataset."""
        return self.analysis.dataset

    def _full(self, dataset: Dataset) -> None:
        """Analyse ``dataset`` from scratch and keep what increments need."""
        # the network layers' text as Python strings: every span or node edit reads their
        # ids and statuses many times, and Arrow strings are converted each time
        dataset = Dataset(_python_strings(dataset.nodes), _python_strings(dataset.spans),
                          _one_chunk(dataset.premises), dataset.areas,
                          warnings=list(dataset.warnings))
        a, stage, chunk = analyze_parts(dataset, drop_m=self.drop_m, budget=self.budget)
        if a.premises is not (one := _one_chunk(a.premises)):
            a = replace(a, premises=one)
        self.analysis = a
        self._areas = AreaIndex(dataset.areas)
        self._stage = stage
        ll = lonlat(dataset.premises.geometry.to_numpy(), dataset.crs) if len(dataset.premises) \
            else np.zeros((0, 2))
        self._plan = ZoneStats.of(ll[:, 0], ll[:, 1]).plan()
        # the nearest lit span of every premise, passed or not: a span that stops being
        # lit sends exactly the premises it was nearest to back to the search
        self._codes = _SpanCodes()
        nearest = self._codes.of(chunk.nearest_span_id) if chunk.nearest_span_id is not None \
            else np.full(len(dataset.premises), -1, dtype=np.int64)
        self._rows = _PremiseRows(served_edge=a.served_edge, frac_from=a.optics.frac_from,
                                  nearest=nearest, lonlat=ll)
        # premise id -> row, made now (~0.4 s at 1 M) rather than by the first edit
        self._pos: dict[str, int] | None = {
            str(k): i for i, k in enumerate(_ids(dataset.premises, "premises").tolist())}
        self._duct_memo = DuctMemo()
        self._starts: tuple[gpd.GeoDataFrame, npt.NDArray[np.object_]] | None = None
        #: the nodes frame and spans frame of the last network step, with the nodes row of
        #: each span's ends (:meth:`_end_rows`), and node id -> row of a nodes frame
        self._ends: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, IntArray, IntArray] | None = None
        self._node_rows: tuple[gpd.GeoDataFrame, dict[str, int]] | None = None
        #: a spans frame and its rows sorted by span_id (:meth:`_by_id_of`)
        self._by_id: tuple[gpd.GeoDataFrame, IntArray] | None = None
        #: the graph of the last network step and its edges' :func:`_edge_signature`
        self._edge_sig: tuple[AnalysisGraph, FloatArray] | None = None
        self._next_starts: tuple[gpd.GeoDataFrame, npt.NDArray[np.object_]] | None = None
        self._lines: LineKpis = _line_kpis_of(a)
        self._totals = LineTotals(dataset.spans, stage.lengths_m, self._areas, a.home_zone)
        self._area_sums = chunk.area_sums
        self._edge_p, self._edge_u = chunk.edge_premises, chunk.edge_units
        self._sums = chunk.sums
        self._impact = impacts(a.graph, a.structure, chunk.edge_premises, chunk.edge_units)
        self._edge_index: pd.Index | None = None
        self._node_vertex: tuple[gpd.GeoDataFrame, Any, IntArray] | None = None
        self._cell_cache: tuple[FloatArray, tuple[IntArray, IntArray, IntArray,
                                                  IntArray]] | None = None

    def _positions_of(self, ids: npt.NDArray[np.object_]) -> IntArray:
        """Row of each premise id in the current premises (-1 when absent)."""
        if self._pos is None:
            self._pos = {k: i for i, k in enumerate(_ids(self.dataset.premises,
                                                         "premises").tolist())}
        pos = self._pos
        return np.asarray([pos.get(str(k), -1) for k in ids.tolist()], dtype=np.int64)

    # ------------------------------------------------------------------ apply

    def apply(self, changes: Changes) -> Analysis:
        """Apply ``changes`` and return the new analysis (also kept as :attr:`analysis`)."""
        if changes.empty:
            self.last_path = "none"
            return self.analysis
        ds = self.dataset
        crs = ds.crs
        rows = {k: (v.to_crs(crs) if v is not None and len(v) and CRS(v.crs) != crs else v)
                for k, v in changes.rows.items()}
        network = changes.touches("nodes") or changes.touches("spans")
        area_change = changes.touches("areas")
        nodes = _merge_small(ds.nodes, "nodes", rows.get("nodes"),
                             changes.deleted.get("nodes", ())) \
            if changes.touches("nodes") else ds.nodes
        spans = _merge_small(ds.spans, "spans", rows.get("spans"),
                             changes.deleted.get("spans", ())) \
            if changes.touches("spans") else ds.spans
        areas = _merge_small(ds.areas, "areas", rows.get("areas"),
                             changes.deleted.get("areas", ())) if area_change else ds.areas
        edit = self._premise_edit(rows.get("premises"), changes.deleted.get("premises", ()))
        if edit is not None and edit.moved:
            plan = ZoneStats.of(edit.lonlat[:, 0], edit.lonlat[:, 1]).plan()
            if plan != self._plan:
                # the working zones changed: every distance may, so analyse it all
                self._full(Dataset(nodes, spans, edit.premises, areas))
                self.last_path = "full"
                return self.analysis
        new_premises = edit.premises if edit is not None else ds.premises
        dataset = Dataset(nodes, spans, new_premises, areas, warnings=list(ds.warnings))
        if area_change:
            self._areas = AreaIndex(areas)
        if network:
            result = self._apply_network(dataset, spans, edit)
            self.last_path = "network"
        else:
            result = self._apply_premises(dataset, edit)
            self.last_path = "areas" if area_change else "premises"
        if area_change:
            self._totals = LineTotals(spans, result.stage.lengths_m, self._areas,
                                      self._home(result.state))
            self._lines = self._totals.kpis(spans, result.stage.lengths_m)
        elif changes.touches("spans"):
            written = rows.get("spans")
            changed = set(map(str, changes.deleted.get("spans", ())))
            if written is not None:
                changed |= set(_ids(written, "spans").tolist())
            self._totals.update(spans, result.stage.lengths_m, changed)
            self._lines = self._totals.kpis(spans, result.stage.lengths_m)
        self.analysis = self._finish(dataset, result, area_change)
        if network:
            self._starts, self._next_starts = self._next_starts, None
        return self.analysis

    # -------------------------------------------------------------- premises

    def _premise_edit(self, rows: gpd.GeoDataFrame | None,
                      deleted: Sequence[str]) -> _PremiseEdit | None:
        """The premises layer and per-row arrays after the premise rows of a change."""
        if (rows is None or not len(rows)) and not len(deleted):
            return None
        a, state = self.analysis, self._rows
        rows = rows.reset_index(drop=True) if rows is not None else \
            self.dataset.premises.iloc[0:0]
        written = _ids(rows, "premises")
        pos = self._positions_of(written)
        gone_ids = np.asarray(sorted(set(map(str, deleted)) - set(map(str, written))),
                              dtype=object)
        gone = self._positions_of(gone_ids)
        gone = gone[gone >= 0]
        old = pos >= 0
        prem = _set_rows(self.dataset.premises, pos[old], rows.iloc[np.flatnonzero(old)])
        res = a.premises
        ll_rows = lonlat(rows.geometry.to_numpy(), self.dataset.crs) if len(rows) \
            else np.zeros((0, 2))
        moved = bool(len(gone)) or bool((~old).any())
        # rows written at the place they were: their analysis stays, only their fields change
        same_place = np.zeros(len(rows), dtype=bool)
        if old.any():
            same_place[old] = shapely.equals_identical(
                self.dataset.premises.geometry.to_numpy()[pos[old]],
                rows.geometry.to_numpy()[old])
        ll = state.lonlat
        if old.any() and not np.array_equal(ll[pos[old]], ll_rows[old]):
            # positions changed: a new array (the old state keeps its own)
            ll = ll.copy()
            ll[pos[old]] = ll_rows[old]
            moved = True
        new = np.flatnonzero(~old)
        keep = np.ones(len(prem), dtype=bool)
        keep[gone] = False
        served_edge = state.served_edge.copy()
        frac_from = state.frac_from.copy()
        nearest = state.nearest.copy()
        changed_old = np.concatenate([pos[old], gone]).astype(np.int64)
        old_rows = res.iloc[changed_old]
        if len(new):
            prem = _concat(prem, rows.iloc[new])
            ll = np.vstack([ll, ll_rows[new]])
            res = _concat(res, _blank_results(res, rows.iloc[new]))
            served_edge = np.concatenate([served_edge, np.full(len(new), -1, dtype=np.int64)])
            frac_from = np.concatenate([frac_from, np.full(len(new), np.nan)])
            nearest = np.concatenate([nearest, np.full(len(new), -1, dtype=np.int64)])
        n_before = len(a.premises)
        # rows to locate: the written ones, at their new positions
        located = np.concatenate([pos[old], n_before + np.arange(len(new))]).astype(np.int64)
        unmoved = np.concatenate([same_place[old], np.zeros(len(new), dtype=bool)])
        if len(gone):
            full_keep = np.concatenate([keep, np.ones(len(new), dtype=bool)])
            remap = np.cumsum(full_keep) - 1
            prem, res = _take(prem, full_keep), _take(res, full_keep)
            ll = ll[full_keep]
            served_edge, frac_from = served_edge[full_keep], frac_from[full_keep]
            nearest = nearest[full_keep]
            located = remap[located]
            self._pos = None
        elif len(new) and self._pos is not None:
            for i, k in enumerate(written[new].tolist()):
                self._pos[str(k)] = n_before + i
        return _PremiseEdit(premises=prem, results=res, lonlat=ll, located=located,
                            old_rows=old_rows, moved=moved, served_edge=served_edge,
                            frac_from=frac_from, nearest=nearest, unmoved=unmoved)

    def _locate(self, stage: NetworkStage, premises: gpd.GeoDataFrame, rows: IntArray,
                ll: FloatArray) -> Any:
        # a few premises: the lit spans near them only (the index of all lit spans, ~0.4 s
        # to build at 1 M premises, is built when a point needs it or many are located)
        halo = LOCATE_HALO_M if len(rows) < len(ll) // 10 else None
        return premise_chunk(stage, premises.iloc[rows], zones=self._plan,
                             points_lonlat=ll[rows], halo_m=halo)

    def _apply_premises(self, dataset: Dataset, edit: _PremiseEdit | None) -> _Result:
        """Premise changes against an unchanged network."""
        if edit is None:
            # areas only
            return _Result(self._stage, self.analysis.premises, self._rows, np.zeros(0, np.int64),
                           self.analysis.premises.iloc[0:0], self.analysis.premises.iloc[0:0])
        stage = self._stage
        res = edit.results
        rows = edit.located
        # a premise's analysis follows from its place and the network alone: rows written
        # where they were keep theirs and take the fields written (units, connected, ...)
        move, stay = rows[~edit.unmoved], rows[edit.unmoved]
        if len(move):
            chunk = self._locate(stage, edit.premises, move, edit.lonlat)
            res = _set_rows(res, move, chunk.premises, columns=list(chunk.premises.columns))
            edit.served_edge[move] = chunk.served_edge
            edit.frac_from[move] = chunk.frac_from
            edit.nearest[move] = self._codes.of(chunk.nearest_span_id)
        if len(stay):
            res = _set_rows(res, stay, edit.premises.iloc[stay],
                            columns=list(edit.premises.columns))
        state = _PremiseRows(edit.served_edge, edit.frac_from, edit.nearest, edit.lonlat)
        return _Result(stage, res, state, rows, edit.old_rows, res.iloc[rows])

    # --------------------------------------------------------------- network

    def _apply_network(self, dataset: Dataset, spans: gpd.GeoDataFrame,
                       edit: _PremiseEdit | None) -> _Result:
        """Span or node changes (and any premise changes with them)."""
        old = self.analysis
        old_spans = self.dataset.spans
        # geodesic lengths of unchanged spans are kept
        known = old.spans["length_m"].to_numpy(dtype=float)
        new_ids = _ids(spans, "spans")
        # the old row of each span row: the rows themselves when the ids column is the old
        # one (spans only written in place share it), else by id
        in_place = _same_column(spans, old_spans, "span_id")
        at = np.arange(len(spans), dtype=np.int64) if in_place \
            else id_index(_ids(old_spans, "spans")).get_indexer(id_index(new_ids))
        same = at >= 0
        same[same] = shapely.equals_identical(old_spans.geometry.to_numpy()[at[same]],
                                              spans.geometry.to_numpy()[same])
        lengths = np.empty(len(spans))
        lengths[same] = known[at[same]]
        if (~same).any():
            lengths[~same] = span_lengths_m(spans.iloc[np.flatnonzero(~same)])
        # first vertices of unchanged spans are kept too (the direction test of the optics)
        starts = np.empty(len(spans), dtype=object)
        todo = ~same
        kept_starts = self._starts
        if kept_starts is not None and kept_starts[0] is old_spans:
            starts[same] = kept_starts[1][at[same]]
        else:
            todo = np.ones(len(spans), dtype=bool)
        starts[todo] = shapely.get_point(spans.geometry.to_numpy()[todo], 0)
        ends_changed = np.zeros(len(spans), dtype=bool)
        if len(old_spans):
            ok = at >= 0
            for col in ("from_node", "to_node"):
                ends_changed[ok] |= (old_spans[col].to_numpy(dtype=object)[at[ok]]
                                     != spans[col].to_numpy(dtype=object)[ok])
        stage = network_stage(dataset.nodes, spans, drop_m=self.drop_m, budget=self.budget,
                              lengths_m=lengths, starts=starts, memo=self._duct_memo,
                              previous=old.span_index,
                              end_rows=self._end_rows(dataset.nodes, spans, old_spans, at,
                                                      ends_changed),
                              by_id=self._by_id_of(spans, old_spans, in_place, new_ids),
                              previous_rows=at)
        self._next_starts = (spans, starts)
        # spans whose lit geometry or end nodes changed: gone from the old index, new in the new
        touched_rows = ~same | ends_changed
        changed_nodes = self._changed_nodes(dataset.nodes)
        if changed_nodes:
            touched_rows |= (spans["from_node"].isin(changed_nodes)
                             | spans["to_node"].isin(changed_nodes)).to_numpy()
        # by span row, not by id (sets of ~100 k lit span ids cost ~20 ms each step):
        # removed, the spans lit before that are gone, unlit or touched; added, the spans
        # lit now that were not lit before or are touched
        lit_old = old.spans["lit"].to_numpy(dtype=bool)
        lit_new = np.asarray(stage.span_lit, dtype=bool)
        lit_then = np.zeros(len(spans), dtype=bool)
        has_old = at >= 0
        lit_then[has_old] = lit_old[at[has_old]]
        added_rows = lit_new & (~lit_then | touched_rows)
        going = lit_then & (~lit_new | touched_rows)
        gone_old = lit_old.copy()  # old rows lit whose span is gone or leaves the lit set
        gone_old[at[has_old]] &= going[has_old]
        removed = set(_ids(old_spans, "spans")[gone_old].tolist())
        if edit is not None:
            prem, res, ll = edit.premises, edit.results, edit.lonlat
            state = _PremiseRows(edit.served_edge, edit.frac_from, edit.nearest, ll)
            forced = edit.located
        else:
            prem, res = dataset.premises, old.premises
            state = _PremiseRows(self._rows.served_edge.copy(), self._rows.frac_from.copy(),
                                 self._rows.nearest.copy(), self._rows.lonlat)
            forced = np.zeros(0, np.int64)
        dist = res["distance_m"].to_numpy(dtype=float)
        again = np.zeros(len(prem), dtype=bool)
        again[forced] = True
        if removed:
            again |= np.isin(state.nearest, self._codes.known(removed))
        if added_rows.any():
            again |= self._near_added(stage, added_rows, dist, state)
        rows = np.flatnonzero(again)
        before_rows = res  # the flags before, for the per-area differences
        # every premise not located again keeps its span: its edge in the new G
        edge_map = self._edge_map(old.graph, old_spans, at, stage.span_edge)
        served = np.full(len(res), -1, dtype=np.int64)
        kept = state.served_edge >= 0
        served[kept] = edge_map[state.served_edge[kept]]
        if len(rows):
            chunk = self._locate(stage, prem, rows, state.lonlat)
            # the flags and loss columns are set below for every row located (and others):
            # copied once there, not here as well
            res = _set_rows(res, rows, chunk.premises,
                            columns=[c for c in chunk.premises.columns if c not in _PER_EDGE])
            state.frac_from[rows] = chunk.frac_from
            state.nearest[rows] = self._codes.of(chunk.nearest_span_id)
            served[rows] = chunk.served_edge
        # a premise's protections and loss follow from its served edge alone: one not located
        # again whose edge kept its flags, its length and the loss at its ends keeps them
        before_edge = state.served_edge
        stable = self._stable_edges(old, stage, edge_map, touched_rows)
        keep = np.zeros(len(res), dtype=bool)
        was_served = before_edge >= 0
        keep[was_served] = (served[was_served] >= 0) & stable[np.maximum(served[was_served], 0)]
        keep |= ~was_served & (served < 0)  # unserved before and after: nothing to take
        keep[rows] = False
        redo = np.flatnonzero(~keep)
        state.served_edge = served
        cols: dict[str, Any] = {}
        prot = stage.protection
        for name, per_edge in zip(_FLAGS, (prot.span, prot.node, prot.duct), strict=True):
            cols[name] = _patched(res[name], redo, _scatter(served[redo], per_edge, bool))
        optics = replace(stage.optics, frac_from=state.frac_from[redo])
        loss = _loss_columns(optics, stage.graph, served[redo],
                             res["distance_m"].to_numpy(dtype=float)[redo])
        cols.update({name: _patched(res[name], redo, values) for name, values in loss.items()})
        res = _frame({**{c: res[c].array for c in res.columns}, **cols}, res)
        # the rows whose KPI inputs changed, for the per-area sums by difference
        changed, was, now = self._kpi_changes(before_rows, res, edit)
        return _Result(stage, res, state, changed, was, now)

    def _by_id_of(self, spans: gpd.GeoDataFrame, old_spans: gpd.GeoDataFrame, in_place: bool,
                  ids: npt.NDArray[np.object_]) -> IntArray:
        """The rows of ``spans`` sorted by span_id (as text), kept while the span ids stay
        in their rows (``in_place``: spans only written in place, an edit of their fields or
        geometry): sorting ~200 k ids as text took ~20 ms each step."""
        kept = self._by_id
        if in_place and kept is not None and kept[0] is old_spans:
            by_id = kept[1]
        else:
            by_id = np.argsort(ids.astype(str), kind="stable").astype(np.int64)
        self._by_id = (spans, by_id)
        return by_id

    def _end_rows(self, nodes: gpd.GeoDataFrame, spans: gpd.GeoDataFrame,
                  old_spans: gpd.GeoDataFrame, at: IntArray, ends_changed: BoolArray
                  ) -> tuple[IntArray, IntArray]:
        """The nodes row of each span's from_node and to_node (-1: none), kept between
        edits: spans that were there with the same ends, in the same nodes frame, keep
        theirs; the others are looked up (a lookup of every end hashed ~200 k ids)."""
        n = len(spans)
        ends = (np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64))
        todo = np.ones(n, dtype=bool)
        kept = self._ends
        if kept is not None and kept[0] is nodes and kept[1] is old_spans:
            same = (at >= 0) & ~ends_changed
            for out, before in zip(ends, kept[2:], strict=True):
                out[same] = before[at[same]]
            todo = ~same
        if todo.any():
            if self._node_rows is None or self._node_rows[0] is not nodes:
                self._node_rows = (nodes, {str(k): i for i, k in enumerate(
                    nodes["node_id"].to_numpy(dtype=object).tolist())})
            row_of = self._node_rows[1]
            for out, col in zip(ends, ("from_node", "to_node"), strict=True):
                ids = spans[col].to_numpy(dtype=object)[todo].tolist()
                out[todo] = [row_of.get(str(k), -1) if k is not None else -1 for k in ids]
        self._ends = (nodes, spans, ends[0], ends[1])
        return ends

    def _stable_edges(self, old: Analysis, stage: NetworkStage, edge_map: IntArray,
                      touched_rows: BoolArray) -> BoolArray:
        """Per edge of the new G: whether it is an old edge (of a span not touched) with the
        same flags, length and least loss, splices and splitters at both ends."""
        stable = np.zeros(stage.graph.n_edges, dtype=bool)
        ok = np.flatnonzero(edge_map >= 0)
        if not len(ok):
            return stable
        # the new stage's signature is the old one of the next step: made once per stage
        kept = self._edge_sig
        before = kept[1] if kept is not None and kept[0] is old.graph else \
            _edge_signature(old.optics, old.protection, old.graph)
        now = _edge_signature(stage.optics, stage.protection, stage.graph)
        self._edge_sig = (stage.graph, now)
        same = (before[ok] == now[edge_map[ok]]).all(axis=1)
        stable[edge_map[ok][same]] = True
        # the edges of spans written, or whose ends changed, by row (no lookup by id)
        edges = stage.span_edge[touched_rows]
        stable[edges[edges >= 0]] = False
        return stable

    @staticmethod
    def _edge_map(old_g: AnalysisGraph, old_spans: gpd.GeoDataFrame, at: IntArray,
                  span_edge: IntArray) -> IntArray:
        """The new edge of every old edge of G (-1 when its span left G), by span rows:
        ``at`` is the old row of each new span row, ``span_edge`` the new edge of each."""
        old_edge = span_edges(old_g, _ids(old_spans, "spans"))
        in_old = np.flatnonzero(old_edge >= 0)
        row_of_old_edge = np.full(old_g.n_edges, -1, dtype=np.int64)
        row_of_old_edge[old_edge[in_old]] = in_old
        new_row = np.full(len(old_spans) + 1, -1, dtype=np.int64)  # the last one: "none"
        has = np.flatnonzero(at >= 0)
        new_row[at[has]] = has
        rows = new_row[row_of_old_edge]  # -1 picks the "none" entry
        out = np.full(old_g.n_edges, -1, dtype=np.int64)
        ok = rows >= 0
        out[ok] = span_edge[rows[ok]]
        return out

    def _changed_nodes(self, nodes: gpd.GeoDataFrame) -> set[str]:
        """Ids of nodes written, removed or added (their spans' ends may have moved)."""
        old = self.dataset.nodes
        if nodes is old:
            return set()
        a = old.set_index("node_id")
        b = nodes.set_index("node_id")
        out = set(a.index.symmetric_difference(b.index).tolist())
        common = a.index.intersection(b.index)
        if len(common):
            ga = a.loc[common].geometry.to_numpy()
            gb = b.loc[common].geometry.to_numpy()
            moved = ~shapely.equals_identical(ga, gb)
            out |= set(common[moved].tolist())
        return out

    def _near_added(self, stage: NetworkStage, added_rows: BoolArray, dist: FloatArray,
                    state: _PremiseRows) -> BoolArray:
        """Premises a newly lit span (``added_rows``: by span row) may be nearest to (a
        superset, never missing one)."""
        n = len(dist)
        if n == 0:
            return np.zeros(0, dtype=bool)
        if not self._plan.single or not np.isfinite(dist).all():
            return np.ones(n, dtype=bool)
        crs = CRS.from_epsg(self._plan.epsg)
        index = stage.span_index
        rows = index.source_rows
        assert rows is not None, "network_stage gives every index its span rows"
        pick = added_rows[rows]
        lines = transform_geoms(index.geoms[pick], index.crs, crs)
        keys, inverse, kx, ky = self._cells(state.lonlat, crs)
        reach = dist * (1 + NEAR_SLACK_REL) + NEAR_SLACK_M
        cell_reach = np.zeros(len(keys))
        np.maximum.at(cell_reach, inverse, reach)
        # first the cells whose grown box meets the new spans' common box (numpy), then the
        # spans themselves (STRtree) for those
        x0, y0, x1, y1 = shapely.total_bounds(lines)
        lo_x, lo_y = kx * CELL_M - cell_reach, ky * CELL_M - cell_reach
        hi_x, hi_y = (kx + 1) * CELL_M + cell_reach, (ky + 1) * CELL_M + cell_reach
        maybe = np.flatnonzero((lo_x <= x1) & (hi_x >= x0) & (lo_y <= y1) & (hi_y >= y0))
        boxes = shapely.box(lo_x[maybe], lo_y[maybe], hi_x[maybe], hi_y[maybe])
        tree = shapely.STRtree(lines)
        hit_cells = maybe[np.unique(tree.query(boxes, predicate="intersects")[0])]
        near = np.zeros(len(keys), dtype=bool)
        near[hit_cells] = True
        out: BoolArray = near[inverse]
        return out

    def _cells(self, ll: FloatArray, crs: CRS) -> tuple[IntArray, IntArray, IntArray, IntArray]:
        """The 100 m cells of the premises at lon/lat ``ll`` in ``crs``: cell keys, the cell of
        each premise, and each cell's x and y (in cells); kept while the positions are."""
        kept = self._cell_cache
        if kept is not None and kept[0] is ll:
            return kept[1]
        x, y = transformer(WGS84, crs).transform(ll[:, 0], ll[:, 1])
        cx = np.floor(np.asarray(x) / CELL_M).astype(np.int64)
        cy = np.floor(np.asarray(y) / CELL_M).astype(np.int64)
        x0, y0 = int(cx.min()), int(cy.min())
        height = int(cy.max()) - y0 + 1
        keys, inverse = np.unique((cx - x0) * height + (cy - y0), return_inverse=True)
        cells = (keys, inverse.astype(np.int64), keys // height + x0, keys % height + y0)
        self._cell_cache = (ll, cells)
        return cells

    @staticmethod
    def _kpi_changes(before: gpd.GeoDataFrame, after: gpd.GeoDataFrame,
                     edit: _PremiseEdit | None
                     ) -> tuple[IntArray, gpd.GeoDataFrame, gpd.GeoDataFrame]:
        """The rows whose KPI inputs changed in a network step (new numbering), with
        those rows as they were and as they are, for the per-area sums by difference.

        ``before`` holds the results before the step in the rows of ``after``: the rows
        a premise edit wrote hold their old results there, but their old fields and
        places are in ``edit.old_rows`` (with the rows it deleted), which stand for
        them instead.
        """
        diff = np.zeros(len(after), dtype=bool)
        for col in ("passed", *_FLAGS, "in_budget"):
            diff |= before[col].to_numpy(dtype=bool) != after[col].to_numpy(dtype=bool)
        if edit is None:
            rows = np.flatnonzero(diff)
            return rows, before.iloc[rows], after.iloc[rows]
        written = np.zeros(len(after), dtype=bool)
        written[edit.located] = True
        rows = np.flatnonzero(diff | written)
        others = before.iloc[np.flatnonzero(diff & ~written)]
        was = pd.concat([edit.old_rows, others], ignore_index=True) if len(others) \
            else edit.old_rows
        return rows, was, after.iloc[rows]

    # ---------------------------------------------------------------- finish

    def _finish(self, dataset: Dataset, r: _Result, area_change: bool) -> Analysis:
        stage, res, state = r.stage, r.results, r.state
        g = stage.graph
        same_network = stage is self._stage
        if same_network and not area_change and len(r.changed) < len(res):
            # premises only: counts, sums and impacts by differences
            edge_p, edge_u = self._edge_p.copy(), self._edge_u.copy()
            imp = Impact(self._impact.cut_premises.copy(), self._impact.cut_units.copy(),
                         self._impact.failure_premises.copy(),
                         self._impact.failure_units.copy())
            for rows, sign in ((r.before, -1), (r.after, 1)):
                self._add_premises(stage, imp, edge_p, edge_u, rows, sign)
            sums = self._sums + premise_sums(r.after) - premise_sums(r.before)
            area_sums = np.asarray(self._area_sums, dtype=np.int64) \
                + self._areas.premise_sums(r.after) - self._areas.premise_sums(r.before)
        else:
            units = res["units"].to_numpy(dtype=np.int64)
            has = state.served_edge >= 0
            edge_p = np.bincount(state.served_edge[has], minlength=g.n_edges).astype(np.int64)
            edge_u = np.bincount(state.served_edge[has], weights=units[has],
                                 minlength=g.n_edges).astype(np.int64)
            if area_change or len(r.changed) == len(res):
                sums = premise_sums(res)
                area_sums = self._areas.premise_sums(res)
            else:
                # integer sums: by the rows whose KPI inputs changed, exactly
                sums = self._sums + premise_sums(r.after) - premise_sums(r.before)
                area_sums = np.asarray(self._area_sums, dtype=np.int64) \
                    + self._areas.premise_sums(r.after) - self._areas.premise_sums(r.before)
            imp = impacts(g, stage.structure, edge_p, edge_u)
        span_out = _span_results(dataset.spans, stage.span_edge, stage.span_lit,
                                 stage.lengths_m, imp)
        node_out = self._node_results(dataset.nodes, stage, imp)
        home = self._home(state)
        kpis = assemble_kpis(sums, area_sums, self._lines, self._areas,
                             spof_spans=int((span_out["cut_premises"] > 0).sum()),
                             spof_nodes=int((node_out["failure_premises"] > 0).sum()))
        if not same_network:
            self._edge_index = None
        self._stage, self._rows, self._area_sums = stage, state, area_sums
        self._edge_p, self._edge_u, self._impact, self._sums = edge_p, edge_u, imp, sums
        if self._pos is None:
            self._pos = {str(k): i for i, k in enumerate(_ids(res, "premises").tolist())}
        before = self.analysis
        out = Analysis(
            dataset=dataset, drop_m=self.drop_m, premises=res, spans=span_out, nodes=node_out,
            kpis=kpis, graph=g, structure=stage.structure, protection=stage.protection,
            served_edge=state.served_edge, span_index=stage.span_index,
            optics=replace(stage.optics, frac_from=state.frac_from), home_zone=home,
            warnings=list(stage.warnings), premise_rows=self._pos)
        if dataset.nodes is before.dataset.nodes:
            # the same nodes, the same box (a pass over every node otherwise, each edit)
            out.__dict__["plant_extent"] = before.plant_extent
        return out

    def _home(self, state: _PremiseRows) -> int | None:
        """The one working zone of all premises, if any (``home_zone`` of the analysis)."""
        zones = self._plan.zones(state.lonlat[:, 0]) if len(state.lonlat) else \
            np.zeros(0, np.int64)
        return int(zones[0]) if len(zones) and (zones == zones[0]).all() else None

    def _node_results(self, nodes: gpd.GeoDataFrame, stage: NetworkStage,
                      imp: Impact) -> gpd.GeoDataFrame:
        """:func:`netgis.engine.analysis._node_results`, with each node's vertex kept while the
        nodes and the graph stay the same."""
        kept = self._node_vertex
        if kept is None or kept[0] is not nodes or kept[1] is not stage.graph:
            g = stage.graph
            at = node_entries(g, nodes["node_id"].to_numpy(dtype=object))
            non_core = (at >= 0) & ~_scatter(at, g.is_core, bool)
            kept = (nodes, g, np.where(non_core, _scatter(at, g.node_vertex, np.int64), -1))
            self._node_vertex = kept
        vertex = kept[2]
        data = {col: nodes[col].array for col in nodes.columns}
        data["failure_premises"] = _scatter(vertex, imp.failure_premises, np.int64)
        data["failure_units"] = _scatter(vertex, imp.failure_units, np.int64)
        return _frame(data, nodes)

    def _add_premises(self, stage: NetworkStage, imp: Impact, edge_p: IntArray,
                      edge_u: IntArray, rows: pd.DataFrame, sign: int) -> None:
        """Add (``sign`` 1) or take away (-1) the passed premises ``rows`` from the per-edge
        counts and the impacts, walking up the DFS tree from each one's edge.

        A premise on edge ``e`` weighs on the deeper end of ``e`` and on every ancestor
        of it: the bridges on that path lose it when cut, and each ancestor ``w`` that
        the path's child ``x`` depends on (``low[x] >= disc[w]``) loses it when it fails
        (the rule of :func:`netgis.engine.redundancy.impacts`).
        """
        served = rows["served_span_id"].to_numpy(dtype=object)
        has = pd.notna(served)
        if not has.any():
            return
        if self._edge_index is None:
            self._edge_index = id_index(stage.graph.edge_span)
        edges = self._edge_index.get_indexer(id_index(served[has]))
        units = rows["units"].to_numpy(dtype=np.int64)[has]
        st = stage.structure
        parent, low, disc = st.parent, st.low, st.disc
        parent_edge, is_bridge = st.parent_edge, st.is_bridge
        for e, u in zip(edges.tolist(), units.tolist(), strict=True):
            edge_p[e] += sign
            edge_u[e] += sign * u
            if not st.lit[e]:
                continue
            x = int(st.deeper[e])
            while True:
                w = int(parent[x])
                if w < 0:
                    break
                b = int(parent_edge[x])
                if is_bridge[b]:
                    imp.cut_premises[b] += sign
                    imp.cut_units[b] += sign * u
                if w != S and low[x] >= disc[w]:
                    imp.failure_premises[w] += sign
                    imp.failure_units[w] += sign * u
                x = w

@dataclass
class _PremiseEdit:
    premises: gpd.GeoDataFrame
    results: gpd.GeoDataFrame
    lonlat: FloatArray
    located: IntArray          #: rows written (to locate again), in the new numbering
    old_rows: gpd.GeoDataFrame     #: results of the rows written or deleted, as they were
    moved: bool                #: positions changed, rows added or removed
    served_edge: IntArray
    frac_from: FloatArray
    nearest: IntArray
    #: per entry of ``located``: written at the place it had (its analysis stays)
    unmoved: BoolArray


@dataclass
class _Result:
    stage: NetworkStage
    results: gpd.GeoDataFrame
    state: _PremiseRows
    changed: IntArray
    before: gpd.GeoDataFrame
    after: gpd.GeoDataFrame


def _edge_signature(optics: Any, prot: Any, g: AnalysisGraph) -> FloatArray:
    """Per edge of ``g``: what a premise's protections and loss on it follow from (its
    flags, its length, and the least loss, splices and splitters at its two ends)."""
    loss = optics.loss
    splice, split = loss.path_losses
    eu, ev = g.eu, g.ev
    out: FloatArray = np.column_stack([
        loss.dist_db[eu], loss.dist_db[ev], splice[eu], split[eu], splice[ev], split[ev],
        np.asarray(optics.edge_length_m, dtype=float), prot.span, prot.node, prot.duct,
    ]).astype(float) if len(eu) else np.zeros((0, 10))
    return out


def _patched(column: pd.Series, rows: IntArray, values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """A copy of ``column``'s values with ``rows`` set to ``values``."""
    out: npt.NDArray[Any] = column.to_numpy(copy=True)
    out[rows] = values
    return out


def _blank_results(like: gpd.GeoDataFrame, rows: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """New premise rows with empty analysis columns, in the columns and dtypes of ``like``."""
    out = rows.copy()
    for col in like.columns:
        if col not in out.columns:
            out[col] = pd.Series([like[col].iloc[0] if len(like) else None] * len(rows),
                                 index=out.index).astype(like[col].dtype)
    return out[list(like.columns)]


def _line_kpis_of(a: Analysis) -> LineKpis:
    """The :func:`~netgis.engine.kpis.line_kpis` part of an analysis's KPIs."""
    network = {k: a.kpis["network"][k] for k in _LINE_KEYS}  # type: ignore[literal-required]
    areas = [{k: row[k] for k in _LINE_KEYS} for row in a.kpis["areas"]]  # type: ignore[literal-required]
    return network, areas
