"""The strand layers checked and indexed: :func:`validate_strands` turns raw attribute tables
into typed ones (every error and warning of docs/strands.md, "Validation", reported as
``Problem(layer, id, field, reason)``), and :class:`StrandPlant` indexes them for the trace:
cable paths, where each strand is cut into pieces, and what each terminal is joined to.

A terminal is a tuple: ``("strand", cable_id, strand, position, side)`` (``position`` is the
index of the node along the cable's path, ``side`` ``to`` or ``from``), ``("olt", port)``,
``("in", splitter, num)`` or ``("out", splitter, num)``.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from netgis.dataset import Dataset
from netgis.errors import Problem, ValidationError
from netgis.geodesy import geodesic_lengths_m, lonlat
from netgis.schema import (
    CORE,
    IN_SERVICE,
    SPLIT_RATIOS,
    SPLITTER,
    STRAND_KEYS,
    STRAND_LAYER_NAMES,
    STRAND_LAYERS,
    TIA598_COLOURS,
    Field,
)

_V = TypeVar("_V")

Terminal = tuple[Any, ...]


def _rows(frame: pd.DataFrame, *cols: str) -> Iterator[tuple[Any, ...]]:
    """The values of ``cols`` row by row, as plain Python values."""
    return zip(*(frame[c].tolist() for c in cols), strict=True)


def _records(frame: pd.DataFrame) -> Iterator[Any]:
    """The rows of ``frame`` as named tuples (fields typed Any)."""
    return frame.itertuples(index=False)


def terminal_text(t: Terminal) -> str:
    """A terminal as docs/strands.md writes it: ``strand:C7:12:to``, ``out:SP3:5``,
    ``olt:P1``."""
    if t[0] == "strand":
        return f"strand:{t[1]}:{t[2]}:{t[4]}"
    return ":".join(str(x) for x in t)


@dataclass
class StrandReport:
    """Errors and warnings of the strand layers, and their typed tables when valid."""

    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] | None = None
    #: the indexed plant, when there is no error
    plant: StrandPlant | None = None

    def raise_for_errors(self) -> dict[str, pd.DataFrame]:
        """The typed tables; ValidationError listing every error when there is one."""
        if self.errors or self.tables is None:
            raise ValidationError(self.errors, self.warnings)
        return self.tables


# ---- typing the raw tables ------------------------------------------------------------------

def _typed(name: str, raw: pd.DataFrame, errors: list[Problem]) -> pd.DataFrame:
    """The layer's contract columns, typed; defaults filled; rows with a bad value dropped
    (their problem reported)."""
    layer = STRAND_LAYERS[name]
    n = len(raw)
    cols: dict[str, npt.NDArray[np.object_]] = {}
    bad = np.zeros(n, dtype=bool)
    ids = _RowIds(name, raw)
    for f in layer.fields:
        values = raw[f.name].tolist() if f.name in raw.columns else [None] * n
        out, slow = _column(f, values)
        for i in slow:  # the values the fast path could not take as they are
            value, reason = _coerce(f, values[i])
            if reason is not None:
                errors.append(Problem(name, ids[i], f.name, reason))
                bad[i] = True
            out[i] = value
        cols[f.name] = out
    frame = pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in cols.items()})
    if name == "cables":
        frame["fibers_per_tube"] = [fc if fpt is None else fpt for fc, fpt in
                                    zip(frame["fiber_count"], frame["fibers_per_tube"],
                                        strict=True)]
    _layer_rules(name, frame, ids, bad, errors)
    # duplicate ids / keys
    _duplicates(name, frame, ids, bad, errors)
    return frame[~bad].reset_index(drop=True)


def _layer_rules(name: str, frame: pd.DataFrame, ids: _RowIds, bad: np.ndarray,
                 errors: list[Problem]) -> None:
    """Ranges beyond a field's minimum: split ratios, inputs, negative losses and lengths."""
    if name == "splitters":
        for i, r in enumerate(frame["ratio"].tolist()):
            if r is not None and r not in SPLIT_RATIOS:
                ratios = ", ".join(map(str, SPLIT_RATIOS))
                errors.append(Problem(name, ids[i], "ratio", f"{r} is not a split ratio "
                                      f"({ratios})"))
                bad[i] = True
        for i, k in enumerate(frame["inputs"].tolist()):
            if k not in (1, 2):
                errors.append(Problem(name, ids[i], "inputs", f"{k} is not 1 or 2"))
                bad[i] = True
    for col in ("loss_db", "length_m"):
        if col in frame.columns:
            for i, v in enumerate(frame[col].tolist()):
                if v is not None and v < 0:
                    errors.append(Problem(name, ids[i], col, f"{v} is negative"))
                    bad[i] = True


def _duplicates(name: str, frame: pd.DataFrame, ids: _RowIds, bad: np.ndarray,
                errors: list[Problem]) -> None:
    layer = STRAND_LAYERS[name]
    key = [layer.id_field] if layer.id_field else list(STRAND_KEYS[name])
    keyed = frame[key].astype(str)
    complete = frame[key].notna().all(axis=1).to_numpy()
    dup = keyed.duplicated(keep="first").to_numpy() & complete
    for i in np.flatnonzero(dup).tolist():
        errors.append(Problem(name, ids[i], key[-1], "duplicate id" if len(key) == 1
                              else f"duplicate ({', '.join(key)})"))
        bad[i] = True


class _RowIds:
    """The id of a row as a problem names it (``a:b`` for a layer keyed by two fields),
    made only for the rows that have a problem."""

    def __init__(self, name: str, raw: pd.DataFrame) -> None:
        layer = STRAND_LAYERS[name]
        key = (layer.id_field,) if layer.id_field else STRAND_KEYS[name]
        self.cols = [raw[k].tolist() for k in key] if all(k in raw.columns for k in key) \
            else None

    def __getitem__(self, i: int) -> str | None:
        if self.cols is None:
            return None
        row = [c[i] for c in self.cols]
        return None if any(v is None for v in row) else ":".join(str(v) for v in row)


_BREAKS = ("\r", "\n", "\u2028", "\u2029")


def _column(f: Field, values: list[Any]) -> tuple[npt.NDArray[np.object_], list[int]]:
    """A column typed the fast way, and the rows that need :func:`_coerce` (missing,
    malformed or out of range values): one vectorised pass for a million rows."""
    n = len(values)
    given = np.asarray(values, dtype=object) if n else np.zeros(0, dtype=object)
    kind = pd.api.types.infer_dtype(given, skipna=True) if n else "empty"
    if f.type == "text":
        if kind not in ("string", "empty"):
            text_rows = np.fromiter((type(v) is str for v in values), dtype=bool, count=n)
        else:  # text and missing values only
            text_rows = ~pd.isna(given)
        odd = ~text_rows
        if f.enum is not None:
            odd |= ~pd.Series(given, dtype=object).isin(list(f.enum)).to_numpy()
        text = given[text_rows]
        if any(b in "".join(text.tolist()) for b in _BREAKS):
            odd |= text_rows & np.fromiter(
                (type(v) is str and any(b in v for b in _BREAKS) for v in values),
                dtype=bool, count=n)
        return _defaults(f, given.copy(), odd, pd.isna(given))
    numbers = pd.to_numeric(pd.Series(given, dtype=object), errors="coerce").to_numpy(
        dtype=float, na_value=np.nan) if n else np.zeros(0)
    ok = np.isfinite(numbers)
    if kind not in ("string", "integer", "floating", "mixed-integer-float", "decimal",
                    "empty"):
        ok &= ~np.fromiter((type(v) is bool for v in values), dtype=bool, count=n)
    if f.type == "int":
        # whole numbers that a float holds exactly; larger ones go the slow way
        ok &= (np.floor(numbers) == numbers) & (np.abs(numbers) < 2.0**53)
        if f.minimum is not None:
            ok &= numbers >= f.minimum
        out = np.where(ok, numbers, 0).astype(np.int64).astype(object)
    else:
        out = numbers.astype(object)
    out[~ok] = None
    return _defaults(f, out, ~ok, pd.isna(given))


def _defaults(f: Field, out: npt.NDArray[np.object_], odd: npt.NDArray[np.bool_],
              missing: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.object_], list[int]]:
    """``out`` with the missing values of an optional field set to its default, and the
    rows left for :func:`_coerce` (``odd`` ones that are not such a missing value)."""
    if not f.required:
        out[missing] = f.default
        odd = odd & ~missing
    return out, np.flatnonzero(odd).tolist()


def _coerce(f: Field, v: Any) -> tuple[Any, str | None]:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        if f.required:
            return None, "required value is missing"
        return f.default, None
    if f.type == "text":
        text = str(v) if not isinstance(v, float) or not v.is_integer() else str(int(v))
        if any(c in text for c in "\r\n\u2028\u2029"):
            return None, "a line break is not allowed"
        if f.enum is not None and text not in f.enum:
            return None, f"{text!r} is not one of {', '.join(f.enum)}"
        return text, None
    if f.type == "int":
        try:
            number = float(v) if not isinstance(v, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None or not number.is_integer():
            return None, f"{v!r} is not a whole number"
        value = int(number)
        if f.minimum is not None and value < f.minimum:
            return None, f"{value} is below {f.minimum}"
        return value, None
    if f.type == "float":
        try:
            number = float(v)
        except (TypeError, ValueError):
            return None, f"{v!r} is not a number"
        if not math.isfinite(number):
            return None, f"{v!r} is not a finite number"
        return number, None
    return v, None


# ---- the indexed plant ----------------------------------------------------------------------

@dataclass
class Cable:
    """One cable: its path of nodes and spans, lengths, status and strand count."""

    cable_id: str
    nodes: list[str]
    spans: list[str]
    span_m: list[float]
    fiber_count: int
    fibers_per_tube: int
    status: str

    def __post_init__(self) -> None:
        self.pos = {n: i for i, n in enumerate(self.nodes)}
        self.cum_m = [0.0, *np.cumsum(self.span_m).tolist()]

    @property
    def last(self) -> int:
        """Position of the cable's to_node along its path."""
        return len(self.nodes) - 1

    def tube_colour(self, strand: int) -> tuple[int, str]:
        """Tube number and strand colour (TIA-598) of ``strand``."""
        f = self.fibers_per_tube
        tube = (strand - 1) // f + 1
        p = strand - (tube - 1) * f
        return tube, TIA598_COLOURS[(p - 1) % 12]


@dataclass
class StrandPlant:
    """The typed strand layers with the route data they refer to, indexed for tracing."""

    tables: dict[str, pd.DataFrame]
    node_status: dict[str, str]
    node_kind: dict[str, str]
    node_lonlat: dict[str, tuple[float, float]]
    span_status: dict[str, str]
    span_duct: dict[str, str | None]
    span_m: dict[str, float]
    span_ends: dict[str, tuple[str, str]]
    premise_lonlat: Mapping[str, tuple[float, float]]
    premise_units: Mapping[str, int]
    cables: dict[str, Cable] = field(default_factory=dict)
    #: terminal -> (connection row, the other terminal)
    conn_at: dict[Terminal, tuple[int, Terminal]] = field(default_factory=dict)
    #: terminal -> drop row
    drop_at: dict[Terminal, int] = field(default_factory=dict)
    #: (cable, strand) -> sorted positions where the strand is cut (0 and last included)
    cuts: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    splitter: dict[str, tuple[str, int, int, float | None]] = field(default_factory=dict)
    olt_node: dict[str, str] = field(default_factory=dict)
    state: dict[tuple[str, int], str] = field(default_factory=dict)
    warnings: list[Problem] = field(default_factory=list)
    #: the ids of cables, splitters and OLT ports as given (paths broken or not)
    ids: dict[str, set[str]] = field(default_factory=dict)

    def cut_positions(self, cable: str, strand: int) -> list[int]:
        """Positions along its cable where ``strand`` is cut (its ends included)."""
        got = self.cuts.get((cable, strand))
        if got is not None:
            return got
        return [0, self.cables[cable].last]

    def piece_of(self, t: Terminal) -> tuple[str, int, int, int] | None:
        """The piece (cable, strand, start position, end position) a strand terminal begins."""
        _, cable, strand, pos, side = t
        cuts = self.cut_positions(cable, strand)
        i = bisect.bisect_left(cuts, pos)
        if side == "to":
            if i + 1 >= len(cuts):
                return None
            return cable, strand, pos, cuts[i + 1]
        if i == 0:
            return None
        return cable, strand, cuts[i - 1], pos

    def pieces(self, cable: str, strand: int) -> Iterable[tuple[int, int]]:
        """(start, end) positions of each piece of ``strand``, in order."""
        cuts = self.cut_positions(cable, strand)
        return itertools.pairwise(cuts)


class RowValues(Mapping[str, _V]):
    """id -> value over one shared id -> row index and a per-row getter: a premise's units
    and position for a million premises without a dict and a tuple per value each."""

    def __init__(self, rows: dict[str, int], at: Callable[[int], _V],
                 array: npt.NDArray[Any] | None = None) -> None:
        self.rows, self.at = rows, at
        #: every value as one array (n, or n x 2 for positions), when the maker has one;
        #: then the i-th key is row i, and whole-column work needs no lookup per id
        self.array = array

    def __getitem__(self, key: str) -> _V:
        return self.at(self.rows[key])

    def __contains__(self, key: object) -> bool:
        return key in self.rows

    def __iter__(self) -> Iterator[str]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


def _route_maps(dataset: Dataset) -> dict[str, Any]:
    nodes, spans, prem = dataset.nodes, dataset.spans, dataset.premises
    nxy = lonlat(nodes.geometry.values, nodes.crs) \
        if len(nodes) and nodes.crs is not None else np.zeros((0, 2))
    pxy = lonlat(prem.geometry.values, prem.crs) \
        if len(prem) and prem.crs is not None else np.zeros((0, 2))
    span_m = geodesic_lengths_m(np.asarray(spans.geometry.values, dtype=object),
                                crs=spans.crs) if len(spans) else np.zeros(0)
    node_ids = nodes["node_id"].astype(str).tolist()
    span_ids = spans["span_id"].astype(str).tolist()
    prem_rows = dict(zip(prem["premise_id"].astype(str).tolist(), range(len(prem)),
                         strict=True))
    units = [int(u) for u in prem["units"].to_numpy(dtype=np.int64).tolist()]
    lon, lat = pxy[:, 0].tolist(), pxy[:, 1].tolist()
    return {
        "node_status": dict(zip(node_ids, nodes["status"].astype(str).tolist(), strict=True)),
        "node_kind": dict(zip(node_ids, nodes["kind"].astype(str).tolist(), strict=True)),
        "node_lonlat": dict(zip(node_ids, zip(nxy[:, 0].tolist(), nxy[:, 1].tolist(),
                                              strict=True), strict=True)),
        "span_status": dict(zip(span_ids, spans["status"].astype(str).tolist(), strict=True)),
        "span_duct": dict(zip(span_ids, [None if pd.isna(d) else str(d)
                                         for d in spans["duct_id"].tolist()], strict=True)),
        "span_m": dict(zip(span_ids, span_m.tolist(), strict=True)),
        "span_ends": dict(zip(span_ids, zip(spans["from_node"].astype(str).tolist(),
                                            spans["to_node"].astype(str).tolist(),
                                            strict=True), strict=True)),
        "premise_lonlat": RowValues(prem_rows, lambda i: (lon[i], lat[i]),
                                    np.asarray(pxy, dtype=float).reshape(-1, 2)),
        "premise_units": RowValues(prem_rows, units.__getitem__,
                                   np.asarray(units, dtype=np.int64)),
    }


def validate_strands(dataset: Dataset, tables: Mapping[str, pd.DataFrame]) -> StrandReport:
    """Check the strand layers against each other and the route ``dataset``.

    ``tables`` holds the raw layers present (missing ones count as empty). Returns every
    error and warning; ``tables`` of the report are the typed layers (all seven, in
    contract column order) when there is no error.
    """
    report = StrandReport()
    plant = build_plant(dataset, tables, report)
    if not report.errors:
        report.tables = plant.tables
        plant.warnings = list(report.warnings)
        report.plant = plant
    return report


def strand_plant(dataset: Dataset, tables: Mapping[str, pd.DataFrame]) -> StrandPlant:
    """The indexed plant; ValidationError listing every error when the layers are invalid.

    The plant's ``warnings`` are the structural warnings (those that need no trace). The
    index built when the dataset was read is reused when ``tables`` are its ``strands``.
    """
    if tables is dataset.strands and isinstance(dataset.strand_index, StrandPlant):
        return dataset.strand_index
    report = StrandReport()
    plant = build_plant(dataset, tables, report)
    if report.errors:
        raise ValidationError(report.errors, report.warnings)
    plant.warnings = report.warnings
    return plant


def build_plant(dataset: Dataset, raw: Mapping[str, pd.DataFrame],
                report: StrandReport) -> StrandPlant:
    """Type, check and index the strand layers; problems go into ``report``."""
    errors, warnings = report.errors, report.warnings
    for name in raw:
        if name not in STRAND_LAYERS:
            errors.append(Problem(name, None, None, "not a strand layer"))
    t = {name: _typed(name, raw[name] if name in raw else pd.DataFrame(), errors)
         for name in STRAND_LAYER_NAMES}
    if ("cables" in raw) != ("cable_spans" in raw) and (len(t["cables"]) or
                                                        len(t["cable_spans"])):
        missing = "cable_spans" if "cables" in raw else "cables"
        errors.append(Problem(missing, None, None,
                              "cables and cable_spans come together: this layer is missing"))
    plant = StrandPlant(tables=t, **_route_maps(dataset))
    # ids as given, rows with a bad value included: what refers to them is not "unknown"
    plant.ids = {name: {str(v) for v in raw[name][idf].tolist() if v is not None}
                 if name in raw and idf in raw[name].columns else set()
                 for name, idf in (("cables", "cable_id"), ("splitters", "splitter_id"),
                                   ("olt_ports", "olt_port_id"))}
    _cable_paths(plant, errors)
    _references(plant, errors, warnings)
    _terminals(plant, errors, warnings)
    if not errors:
        _loops(plant, errors)
    if not errors:
        _warnings(plant, warnings)
    return plant


def _cable_paths(plant: StrandPlant, errors: list[Problem]) -> None:
    cables, cs = plant.tables["cables"], plant.tables["cable_spans"]
    by_cable: dict[str, list[tuple[int, str]]] = defaultdict(list)
    known = plant.ids["cables"]
    for c, s, sp in _rows(cs, "cable_id", "seq", "span_id"):
        if c not in known:
            errors.append(Problem("cable_spans", f"{c}:{s}", "cable_id",
                                  f"unknown cable {c!r}"))
            continue
        by_cable[c].append((s, sp))
    for row in _records(cables):
        cid = row.cable_id
        steps = sorted(by_cable.get(cid, []))
        if not steps:
            errors.append(Problem("cables", cid, None, "the cable has no cable_spans rows"))
            continue
        if [s for s, _ in steps] != list(range(1, len(steps) + 1)):
            errors.append(Problem("cable_spans", cid, "seq",
                                  f"seq of cable {cid} is not 1..{len(steps)} without gaps"))
            continue
        if row.from_node not in plant.node_status:
            errors.append(Problem("cables", cid, "from_node", f"unknown node {row.from_node!r}"))
            continue
        if row.to_node not in plant.node_status:
            errors.append(Problem("cables", cid, "to_node", f"unknown node {row.to_node!r}"))
            continue
        nodes, spans, lengths = [row.from_node], [], []
        ok = True
        for s, sp in steps:
            ends = plant.span_ends.get(sp)
            if ends is None:
                errors.append(Problem("cable_spans", f"{cid}:{s}", "span_id",
                                      f"unknown span {sp!r}"))
                ok = False
                break
            prev = nodes[-1]
            if prev not in ends:
                errors.append(Problem("cable_spans", f"{cid}:{s}", "span_id",
                                      f"span {sp} does not touch node {prev}, where seq "
                                      f"{s - 1 if s > 1 else 'start'} of cable {cid} ends"))
                ok = False
                break
            nxt = ends[1] if ends[0] == prev else ends[0]
            if nxt in nodes:
                errors.append(Problem("cable_spans", f"{cid}:{s}", "span_id",
                                      f"cable {cid} visits node {nxt} twice"))
                ok = False
                break
            nodes.append(nxt)
            spans.append(sp)
            lengths.append(plant.span_m[sp])
        if not ok:
            continue
        if nodes[-1] != row.to_node:
            errors.append(Problem("cables", cid, "to_node",
                                  f"the path of cable {cid} ends at {nodes[-1]}, not at "
                                  f"to_node {row.to_node}"))
            continue
        plant.cables[cid] = Cable(cid, nodes, spans, lengths, int(row.fiber_count),
                                  int(row.fibers_per_tube), str(row.status))


def _references(plant: StrandPlant, errors: list[Problem],  # noqa: C901 (a list of checks)
                warnings: list[Problem]) -> None:
    t = plant.tables
    for name, idf in (("splitters", "splitter_id"), ("olt_ports", "olt_port_id")):
        for rid, node in _rows(t[name], idf, "node_id"):
            if node not in plant.node_status:
                errors.append(Problem(name, rid, "node_id", f"unknown node {node!r}"))
    for r in _records(t["splitters"]):
        if r.node_id in plant.node_status:
            plant.splitter[r.splitter_id] = (r.node_id, int(r.ratio), int(r.inputs),
                                             None if r.loss_db is None else float(r.loss_db))
    for r in _records(t["olt_ports"]):
        if r.node_id in plant.node_status:
            plant.olt_node[r.olt_port_id] = r.node_id
    known = plant.ids["cables"]
    for c, k, st in _rows(t["strand_state"], "cable_id", "strand", "state"):
        if c not in known:
            errors.append(Problem("strand_state", f"{c}:{k}", "cable_id", f"unknown cable {c!r}"))
            continue
        cab = plant.cables.get(c)
        if cab is None:
            continue  # its row or its path has a problem of its own
        fc = cab.fiber_count
        if not 1 <= k <= fc:
            errors.append(Problem("strand_state", f"{c}:{k}", "strand",
                                  f"strand {k} is outside 1..{fc} of cable {c}"))
            continue
        plant.state[(c, k)] = st
    for name in ("connections", "drops"):
        for rid, node in _rows(t[name], "drop_id" if name == "drops" else "connection_id",
                               "node_id"):
            if node not in plant.node_status:
                errors.append(Problem(name, rid, "node_id", f"unknown node {node!r}"))
    for rid, prem in _rows(t["drops"], "drop_id", "premise_id"):
        if prem not in plant.premise_units:
            errors.append(Problem("drops", rid, "premise_id", f"unknown premise {prem!r}"))


def _terminal(plant: StrandPlant, layer: str, rid: str, node: str, prefix: str,
              ttype: str, tid: str, num: Any, side: Any,
              errors: list[Problem]) -> Terminal | None:
    """The terminal a connection or drop names, or None (its problem reported)."""
    if ttype == "strand":
        return _strand_terminal(plant, layer, rid, node, prefix, tid, num, side, errors)
    return _device_terminal(plant, layer, rid, node, prefix, ttype, tid, num, errors)


def _strand_terminal(plant: StrandPlant, layer: str, rid: str, node: str, prefix: str,
                     tid: str, num: Any, side: Any, errors: list[Problem]) -> Terminal | None:
    f_id, f_num, f_side = f"{prefix}_id", f"{prefix}_num", f"{prefix}_side"
    if tid not in plant.ids["cables"]:
        errors.append(Problem(layer, rid, f_id, f"unknown cable {tid!r}"))
        return None
    cab = plant.cables.get(tid)
    if cab is None:
        return None  # its path is broken: reported there
    if num is None:
        errors.append(Problem(layer, rid, f_num, "required value is missing (the strand)"))
        return None
    if not 1 <= num <= cab.fiber_count:
        errors.append(Problem(layer, rid, f_num,
                              f"strand {num} is outside 1..{cab.fiber_count} of cable {tid}"))
        return None
    pos = cab.pos.get(node)
    if pos is None:
        errors.append(Problem(layer, rid, "node_id",
                              f"cable {tid} does not visit node {node}"))
        return None
    if pos == 0 and pos == cab.last:
        return None
    if side is None:
        if pos == 0:
            side = "to"
        elif pos == cab.last:
            side = "from"
        else:
            errors.append(Problem(layer, rid, f_side,
                                  f"node {node} is inside cable {tid}: say which side "
                                  "(to or from)"))
            return None
    if (pos == 0 and side == "from") or (pos == cab.last and side == "to"):
        errors.append(Problem(layer, rid, f_side,
                              f"strand {tid}:{num} has no {side} side at node {node}, "
                              f"where the cable {'starts' if pos == 0 else 'ends'}"))
        return None
    return ("strand", tid, int(num), pos, side)


def _device_terminal(plant: StrandPlant, layer: str, rid: str, node: str, prefix: str,
                     ttype: str, tid: str, num: Any, errors: list[Problem]) -> Terminal | None:
    f_id, f_num = f"{prefix}_id", f"{prefix}_num"
    if ttype == "olt":
        pnode = plant.olt_node.get(tid)
        if pnode is None:
            if tid not in plant.ids["olt_ports"]:
                errors.append(Problem(layer, rid, f_id, f"unknown OLT port {tid!r}"))
            return None
        if pnode != node:
            errors.append(Problem(layer, rid, f_id,
                                  f"OLT port {tid} stands at node {pnode}, not at {node}"))
            return None
        return ("olt", tid)
    # splitter input or output
    sp = plant.splitter.get(tid)
    if sp is None:
        if tid not in plant.ids["splitters"]:
            errors.append(Problem(layer, rid, f_id, f"unknown splitter {tid!r}"))
        return None
    if sp[0] != node:
        errors.append(Problem(layer, rid, f_id,
                              f"splitter {tid} stands at node {sp[0]}, not at {node}"))
        return None
    top = sp[2] if ttype == "in" else sp[1]
    if num is None:
        errors.append(Problem(layer, rid, f_num, f"required value is missing (the {ttype}put)"
                              if ttype == "out" else "required value is missing (the input)"))
        return None
    if not 1 <= num <= top:
        errors.append(Problem(layer, rid, f_num, f"{'input' if ttype == 'in' else 'output'} "
                              f"{num} is outside 1..{top} of splitter {tid}"))
        return None
    return (ttype, tid, int(num))


def _terminals(plant: StrandPlant, errors: list[Problem], warnings: list[Problem]) -> None:
    """Resolve the terminals of every connection and drop into ``plant`` (``conn_at``,
    ``drop_at``, ``cuts``), reporting each problem. Clean layers take the vectorised way;
    a layer with any problem the row by row way, which names every one."""
    if not _clean_terminals(plant, warnings):
        _terminals_by_row(plant, errors, warnings)


def _side_terminals(plant: StrandPlant, frame: pd.DataFrame, prefix: str,
                    pos_of: dict[tuple[str, str], int]) -> list[Terminal] | None:
    """The terminals one side of ``frame``'s rows names (``a``, ``b`` or ``src``), or None
    unless every row names a valid one (then :func:`_terminal` would report nothing)."""
    n = len(frame)
    kind = frame[f"{prefix}_type"].to_numpy(dtype=object)
    tid = frame[f"{prefix}_id"].to_numpy(dtype=object)
    num = pd.to_numeric(frame[f"{prefix}_num"], errors="coerce").to_numpy(dtype=float,
                                                                          na_value=np.nan)
    node = frame["node_id"].to_numpy(dtype=object)
    side = frame[f"{prefix}_side"].to_numpy(dtype=object) if f"{prefix}_side" in frame \
        else np.full(n, None, dtype=object)
    strand, olt = kind == "strand", kind == "olt"
    device = ~strand & ~olt
    ids = tid.tolist()
    # each distinct id is looked up once (a cable is named by thousands of rows)
    codes, distinct = pd.factorize(tid)
    distinct_ids = distinct.tolist()

    def per_row(values: Mapping[str, Any]) -> npt.NDArray[Any]:
        return np.asarray([*(values.get(x) for x in distinct_ids), None], dtype=object)[codes]

    def numbers(values: Mapping[str, Any]) -> npt.NDArray[np.float64]:
        return np.asarray([*(values.get(x, np.nan) for x in distinct_ids), np.nan],
                          dtype=float)[codes]

    # strands: a built cable that visits the node, a strand number it has, a side it has
    fibers = numbers({c: cab.fiber_count for c, cab in plant.cables.items()})
    last = numbers({c: cab.last for c, cab in plant.cables.items()})
    pos = np.asarray([pos_of.get(cv, np.nan) for cv in zip(ids, node.tolist(), strict=True)],
                     dtype=float)
    is_none = pd.isna(side)
    side = np.where(is_none & (pos == 0), "to", np.where(is_none & (pos == last), "from",
                                                         side)).astype(object)
    ok_strand = (~np.isnan(fibers) & (num >= 1) & (num <= fibers) & ~np.isnan(pos)
                 & ~((pos == 0) & (pos == last)) & ~pd.isna(side)
                 & ~((pos == 0) & (side == "from")) & ~((pos == last) & (side == "to")))
    # OLT ports and splitter ports: standing at the node, a port number the device has
    ok_olt = per_row(plant.olt_node) == node
    sp_node = per_row({k: v[0] for k, v in plant.splitter.items()})
    top = np.where(kind == "in", numbers({k: v[2] for k, v in plant.splitter.items()}),
                   numbers({k: v[1] for k, v in plant.splitter.items()}))
    ok_device = (sp_node == node) & (num >= 1) & (num <= top)
    ok = np.where(strand, ok_strand, np.where(olt, ok_olt, device & ok_device))
    if not ok.all():
        return None
    k = np.nan_to_num(num).astype(np.int64).tolist()
    p = np.nan_to_num(pos).astype(np.int64).tolist()
    return [("strand", c, x, i, sd) if ty == "strand" else ("olt", c) if ty == "olt"
            else (ty, c, x)
            for ty, c, x, i, sd in zip(kind.tolist(), ids, k, p, side.tolist(), strict=True)]


def _clean_terminals(plant: StrandPlant, warnings: list[Problem]) -> bool:
    """:func:`_terminals` for layers without a problem, column by column; False (and
    ``plant`` untouched) when some row has one."""
    t = plant.tables
    conns, drops = t["connections"], t["drops"]
    node_ok = plant.node_status
    if not (conns["node_id"].isin(list(node_ok)).all()
            and drops["node_id"].isin(list(node_ok)).all()):
        return False
    # a cable's position along its path of each node it visits
    pos_of = {(c, v): i for c, cab in plant.cables.items() for v, i in cab.pos.items()}
    a = _side_terminals(plant, conns, "a", pos_of)
    b = _side_terminals(plant, conns, "b", pos_of) if a is not None else None
    src = _side_terminals(plant, drops, "src", pos_of) if b is not None else None
    if a is None or b is None or src is None:
        return False
    every = [*a, *b, *src]
    if len(set(every)) != len(every):  # a terminal used twice, or joined to itself
        return False
    rows = range(len(a))
    plant.conn_at.update(zip(a, zip(rows, b, strict=True), strict=True))
    plant.conn_at.update(zip(b, zip(rows, a, strict=True), strict=True))
    plant.drop_at.update(zip(src, range(len(src)), strict=True))
    for cid, x, y in zip(conns["connection_id"].tolist(), a, b, strict=True):
        _same_cable(cid, x, y, warnings)
    _set_cuts(plant, every)
    return True


def _same_cable(cid: str, a: Terminal, b: Terminal, warnings: list[Problem]) -> None:
    """The warning for a connection that splices two strands of one cable."""
    if a[0] == "strand" and b[0] == "strand" and a[1] == b[1]:
        warnings.append(Problem("connections", cid, None,
                                f"a splice between two strands of one cable ({a[1]})"))


def _set_cuts(plant: StrandPlant, terminals: Iterable[Terminal]) -> None:
    """``plant.cuts``: where each strand the ``terminals`` name is cut (its ends too)."""
    named: dict[tuple[str, int], set[int]] = defaultdict(set)
    for term in terminals:
        if term[0] == "strand":
            named[(term[1], term[2])].add(term[3])
    for (c, k), positions in named.items():
        plant.cuts[(c, k)] = sorted({0, plant.cables[c].last, *positions})


def _terminals_by_row(plant: StrandPlant, errors: list[Problem],
                      warnings: list[Problem]) -> None:
    t = plant.tables
    used: dict[Terminal, tuple[str, str]] = {}
    resolved: list[Terminal] = []  # every terminal named, used twice or not
    node_ok = plant.node_status

    def taken(term: Terminal, layer: str, rid: str, fld: str) -> bool:
        """Whether ``term`` is already used (reported) or now used by this row."""
        who = used.setdefault(term, (layer, rid))
        if who == (layer, rid):
            return False
        errors.append(Problem(layer, rid, fld, f"terminal {terminal_text(term)} is already "
                              f"used by {who[0][:-1]} {who[1]}"))
        return True

    conns = t["connections"]
    cols = ("connection_id", "node_id", "a_type", "a_id", "a_num", "a_side", "b_type", "b_id",
            "b_num", "b_side")
    for i, (cid, node, at, aid, anum, aside, bt, bid, bnum, bside) in enumerate(
            _rows(conns, *cols)):
        if node not in node_ok:
            continue
        a = _terminal(plant, "connections", cid, node, "a", at, aid, anum, aside, errors)
        b = _terminal(plant, "connections", cid, node, "b", bt, bid, bnum, bside, errors)
        if a is None or b is None:
            continue
        if a == b:
            errors.append(Problem("connections", cid, "b_id",
                                  "a connection of a terminal to itself"))
            continue
        bad_a = taken(a, "connections", cid, "a_id")
        bad_b = taken(b, "connections", cid, "b_id")
        if not (bad_a or bad_b):
            plant.conn_at[a] = (i, b)
            plant.conn_at[b] = (i, a)
        resolved += (a, b)
        _same_cable(cid, a, b, warnings)
    dcols = ("drop_id", "node_id", "src_type", "src_id", "src_num", "src_side")
    for i, (did, node, st, sid, snum, sside) in enumerate(_rows(t["drops"], *dcols)):
        if node not in node_ok:
            continue
        src = _terminal(plant, "drops", did, node, "src", st, sid, snum, sside, errors)
        if src is None:
            continue
        if not taken(src, "drops", did, "src_id"):
            plant.drop_at[src] = i
        resolved.append(src)
    _set_cuts(plant, resolved)


def _loops(plant: StrandPlant, errors: list[Problem]) -> None:
    """Rule 8: a closed loop of glass, or a path that enters a splitter it has passed.

    Each terminal has at most one connection or drop and at most one piece, so the glass
    between splitters is a set of simple chains and rings: a ring is a closed loop. A chain
    from a splitter's output to a splitter's input is an edge of a directed graph of
    splitters, in which a cycle is a path entering a splitter it has passed.
    """
    ring = _first_ring(plant)
    if ring is not None:
        cable, strand, start = ring
        term = ("strand", cable, strand, start, "to")
        errors.append(Problem("connections", None, None,
                              f"a closed loop of glass through {terminal_text(term)} at node "
                              f"{plant.cables[cable].nodes[start]}"))
        return
    _splitter_cycles(plant, errors)


def _first_ring(plant: StrandPlant) -> tuple[str, int, int] | None:
    """The first piece (cable, strand, start position; cables in the layer's order, then
    strands and pieces in order) that lies on a ring of glass, None when none does.

    Pieces and connections are the vertices of a graph, and each end of a piece that a
    connection names joins the two. No piece has more than two joins (its two ends), no
    connection more than two (its two terminals), so each connected part is a chain or a
    ring, and it is a ring exactly when it has as many joins as vertices. One pass of
    connected components (scipy) over piece and connection numbers finds them all; only
    the connections' strand terminals are looked up, by (cable, strand) and position, never
    hashed whole.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rank = {c: i for i, c in enumerate(plant.cables)}
    strands = sorted(((c, k) for c, k in plant.cuts
                      if c in rank and 1 <= k <= plant.cables[c].fiber_count),
                     key=lambda ck: (rank[ck[0]], ck[1]))
    # the pieces of a strand are numbered in order from its first: base + cut index
    first: dict[tuple[str, int], int] = {}
    n_pieces = 0
    for ck in strands:
        first[ck] = n_pieces
        n_pieces += len(plant.cuts[ck]) - 1
    if not n_pieces:
        return None
    cuts, left = plant.cuts, bisect.bisect_left
    piece: list[int] = []
    row: list[int] = []
    for t, (i, _) in plant.conn_at.items():
        if t[0] != "strand":
            continue  # a splitter port or an OLT port ends its chain
        ck = (t[1], t[2])
        base = first.get(ck)
        if base is None:
            continue
        at = left(cuts[ck], t[3])
        # "to" begins the piece at this cut, "from" ends the one before it
        piece.append(base + at if t[4] == "to" else base + at - 1)
        row.append(i)
    n = n_pieces + (max(row) + 1 if row else 0)
    src = np.asarray(piece, dtype=np.int64)
    dst = n_pieces + np.asarray(row, dtype=np.int64)
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))
    parts, label = connected_components(graph, directed=False)
    vertices = np.bincount(label, minlength=parts)
    joins = np.bincount(label[src], minlength=parts)
    # connection numbers no strand terminal names are lone vertices: never a ring
    on_ring = (joins == vertices)[label[:n_pieces]] & (joins > 0)[label[:n_pieces]]
    found = np.flatnonzero(on_ring)
    if not len(found):
        return None
    at = int(found[0])
    for ck in strands:  # the strand of piece number ``at``, and which of its pieces
        if first[ck] <= at < first[ck] + len(cuts[ck]) - 1:
            return ck[0], ck[1], cuts[ck][at - first[ck]]
    return None


def _splitter_cycles(plant: StrandPlant, errors: list[Problem]) -> None:
    """A cycle of the splitters' digraph (out:X joined along the glass to in:Y)."""
    succ: dict[str, set[str]] = defaultdict(set)
    for sid, (_, ratio, _, _) in plant.splitter.items():
        for o in range(1, ratio + 1):
            end = _chain_end(plant, ("out", sid, o))
            if end is not None and end[0] == "in":
                succ[sid].add(end[1])
    state: dict[str, int] = {}
    for root in sorted(succ):
        if state.get(root):
            continue
        stack = [(root, iter(sorted(succ[root])))]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
                continue
            if state.get(nxt) == 1:
                errors.append(Problem("splitters", nxt, None,
                                      f"a path of glass enters splitter {nxt} after passing it"))
                return
            if not state.get(nxt):
                state[nxt] = 1
                stack.append((nxt, iter(sorted(succ.get(nxt, ())))))


def _other_end(plant: StrandPlant, t: Terminal) -> Terminal | None:
    if t[0] != "strand":
        return None
    piece = plant.piece_of(t)
    if piece is None:
        return None
    c, k, i0, i1 = piece
    return ("strand", c, k, i1, "from") if t[3] == i0 and t[4] == "to" \
        else ("strand", c, k, i0, "to")


def _chain_end(plant: StrandPlant, start: Terminal) -> Terminal | None:
    """The terminal a walk from ``start`` (leaving through its connection) ends at."""
    cur = start
    for _ in range(10_000_000):
        got = plant.conn_at.get(cur)
        if got is None:
            return None
        cur = got[1]
        if cur[0] != "strand":
            return cur
        nxt = _other_end(plant, cur)
        if nxt is None:
            return None
        cur = nxt
    return None


def _warnings(plant: StrandPlant, warnings: list[Problem]) -> None:  # noqa: C901 (a list)
    t = plant.tables
    for cab in plant.cables.values():
        for sp in cab.spans:
            if cab.status == IN_SERVICE and plant.span_status.get(sp) != IN_SERVICE:
                warnings.append(Problem("cables", cab.cable_id, "status",
                                        f"in service on span {sp}, which is "
                                        f"{plant.span_status.get(sp)} (the span's status wins)"))
    for sid, (node, _, _, _) in plant.splitter.items():
        if plant.node_kind.get(node) != SPLITTER:
            warnings.append(Problem("splitters", sid, "node_id",
                                    f"a splitter at node {node}, which is of kind "
                                    f"{plant.node_kind.get(node)}"))
    for port, node in plant.olt_node.items():
        if plant.node_kind.get(node) != CORE:
            warnings.append(Problem("olt_ports", port, "node_id",
                                    f"an OLT port at node {node}, which is not a core node"))
        if ("olt", port) not in plant.conn_at:
            warnings.append(Problem("olt_ports", port, None, "nothing is connected to it"))
    for sid, (_, _, inputs, _) in plant.splitter.items():
        for k in range(1, inputs + 1):
            if ("in", sid, k) not in plant.conn_at:
                warnings.append(Problem("splitters", sid, "inputs",
                                        f"nothing is connected to input {k}"))
    drops_per: dict[str, int] = defaultdict(int)
    for prem in t["drops"]["premise_id"].tolist():
        drops_per[prem] += 1
    for prem, n in sorted(drops_per.items()):
        units = plant.premise_units.get(prem)
        if units is not None and n > units:
            warnings.append(Problem("premises", prem, "units",
                                    f"premise {prem} has {n} drops but {units} units"))


def route_warnings(plant: StrandPlant, dataset: Dataset,
                   used_per_span: Mapping[str, int] | None) -> list[Problem]:
    """The warnings that compare the route's spans and nodes with the strands on them."""
    out: list[Problem] = []
    # a span any cable runs along is compared (a planned cable alone counts 0 strands); a
    # span with no cable at all is left alone: strand records may cover part of a network
    in_service: dict[str, int] = {s: 0 for cab in plant.cables.values() for s in cab.spans}
    for cab in plant.cables.values():
        if cab.status == IN_SERVICE:
            for s in cab.spans:
                in_service[s] += cab.fiber_count
    spans = dataset.spans
    for sid, fc, fu in _rows(spans, "span_id", "fiber_count", "fibers_used"):
        sid = str(sid)
        if sid not in in_service:
            continue
        if not pd.isna(fc) and int(fc) != in_service[sid]:
            out.append(Problem("spans", sid, "fiber_count",
                               f"{int(fc)}, but its in-service cables hold {in_service[sid]} "
                               "strands"))
        if used_per_span is not None and not pd.isna(fu) and sid in used_per_span \
                and int(fu) != used_per_span[sid]:
            out.append(Problem("spans", sid, "fibers_used",
                               f"{int(fu)}, but {used_per_span[sid]} of its strands are not free"))
    ratios: dict[str, set[int]] = defaultdict(set)
    for node, ratio, _, _ in plant.splitter.values():
        ratios[node].add(ratio)
    nodes = dataset.nodes
    for nid, kind, sr in _rows(nodes, "node_id", "kind", "split_ratio"):
        nid = str(nid)
        if kind == SPLITTER and not pd.isna(sr) and nid in ratios and int(sr) not in ratios[nid]:
            out.append(Problem("nodes", nid, "split_ratio",
                               f"{int(sr)} matches none of its splitters "
                               f"({', '.join(map(str, sorted(ratios[nid])))})"))
    return out
