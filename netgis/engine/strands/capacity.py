"""Capacity (docs/strands.md, "Capacity"): the state of every strand on every span, the
ports of every splitter, and whether each premise is connected or connectable.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from netgis.engine.strands.trace import (
    DECIMALS,
    Trace,
    TraceOptions,
    best_paths,
    path_losses,
    trace_network,
)
from netgis.geodesy import geodesic_distance_m
from netgis.schema import IN_SERVICE
from netgis.strand_plant import RowValues, StrandPlant

#: Mean earth radius for the candidate search (a sphere); the test is geodesic.
_R = 6_371_008.8
#: The sphere's chord may be this much shorter than the WGS84 geodesic distance.
_SLACK = 1.01


@dataclass
class Capacity:
    """The three files of ``netgis capacity`` and its KPIs."""

    spans: pd.DataFrame
    splitters: pd.DataFrame
    premises: pd.DataFrame
    kpis: dict[str, float | int]
    #: span -> strands not free on it (for the fibers_used cross-check)
    used_per_span: dict[str, int]


#: Columns of a span's counts: cables, lit, assigned, reserved, broken, free, strands.
_LIT, _ASSIGNED, _RESERVED, _BROKEN, _FREE, _TOTAL = 1, 2, 3, 4, 5, 6


def strand_states(plant: StrandPlant, trace: Trace) -> pd.DataFrame:
    """Per span in service: cables on it and its strands by state."""
    counts: dict[str, list[int]] = {}
    named_of: dict[str, list[int]] = defaultdict(list)
    for c, k in plant.cuts:
        named_of[c].append(k)
    states_of: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for (c, k), st in plant.state.items():
        states_of[c].append((k, st))
    for c, cab in plant.cables.items():
        if cab.status != IN_SERVICE:
            continue
        named = named_of.get(c, [])
        whole = _unnamed(cab.fiber_count, set(named), states_of.get(c, []))
        for sp in cab.spans:
            row = counts.setdefault(sp, [0] * 7)
            row[0] += 1
            for j in (_RESERVED, _BROKEN, _FREE, _TOTAL):
                row[j] += whole[j]
        for k in named:
            state = plant.state.get((c, k))
            for i0, i1 in plant.pieces(c, k):
                kind = _piece_state(plant, trace, state, (c, k, i0, i1))
                for sp in cab.spans[i0:i1]:
                    row = counts[sp]
                    row[kind] += 1
                    row[_TOTAL] += 1
    rows = []
    # every span in service, those without a cable too (all zero)
    for s in sorted(sid for sid, st in plant.span_status.items() if st == IN_SERVICE):
        n_cab, lit, assigned, reserved, broken, free, total = counts.get(s, [0] * 7)
        rows.append((s, n_cab, total, lit, assigned, reserved, broken, free))
    frame = pd.DataFrame(rows, columns=["span_id", "cables", "strands_total", "lit",
                                        "assigned", "reserved", "broken", "free"])
    for col in frame.columns[1:]:
        frame[col] = frame[col].astype(np.int64)
    return frame


def used_per_span(states: pd.DataFrame) -> dict[str, int]:
    """Strands not free on each span of :func:`strand_states` (what ``fibers_used`` should
    say)."""
    return {s: int(t - f) for s, t, f in zip(states["span_id"], states["strands_total"],
                                             states["free"], strict=True)}


def _unnamed(fiber_count: int, named: set[int], states: list[tuple[int, str]]) -> list[int]:
    """Counts of a cable's strands that no connection or drop names: each is one piece
    from end to end with nothing at its ends, never lit nor assigned, so broken, reserved
    or free on every span of the cable."""
    whole = [0] * 7
    whole[_TOTAL] = fiber_count - len(named)
    for k, st in states:
        if k not in named:
            whole[_BROKEN if st == "broken" else _RESERVED] += 1
    whole[_FREE] = whole[_TOTAL] - whole[_RESERVED] - whole[_BROKEN]
    return whole


def _piece_state(plant: StrandPlant, trace: Trace, state: str | None,
                 piece: tuple[str, int, int, int]) -> int:
    """The first of broken, lit, assigned, reserved, free that applies to a piece."""
    if state == "broken":
        return _BROKEN
    if piece in trace.lit_pieces:
        return _LIT
    if _assigned(plant, *piece):
        return _ASSIGNED
    return _RESERVED if state == "reserved" else _FREE


def _assigned(plant: StrandPlant, c: str, k: int, i0: int, i1: int) -> bool:
    for t in (("strand", c, k, i0, "to"), ("strand", c, k, i1, "from")):
        if t in plant.conn_at or t in plant.drop_at:
            return True
    return False


def capacity(plant: StrandPlant, passed: pd.Series, *, drop_m: float,
             options: TraceOptions | None = None, trace: Trace | None = None) -> Capacity:
    """Span, splitter and premise capacity; ``passed`` is the route analysis's ``passed``
    indexed by premise_id."""
    options = options or TraceOptions()
    if trace is None:
        trace = trace_network(plant, options)
    walker = trace.walker
    spans = strand_states(plant, trace)
    # splitters
    used_out: dict[str, int] = {}
    for t in (*plant.conn_at, *plant.drop_at):
        if t[0] == "out":
            used_out[t[1]] = used_out.get(t[1], 0) + 1
    srows = []
    for sid in sorted(plant.splitter):
        node, ratio, _, _ = plant.splitter[sid]
        used = used_out.get(sid, 0)
        live = sid in trace.input_loss
        srows.append((sid, node, ratio, used, ratio - used, live,
                      round(trace.input_loss[sid], DECIMALS) if live else np.nan))
    splitters = pd.DataFrame(srows, columns=["splitter_id", "node_id", "ratio", "ports_used",
                                             "ports_free", "live", "input_loss_db"])
    splitters["input_loss_db"] = splitters["input_loss_db"].astype(float)
    # premises
    losses = path_losses(trace, options)
    best = best_paths(trace, losses)
    prem_ids = list(plant.premise_units)
    rows = _premise_rows(plant)
    # the premises reached, by row: their best path's loss
    reached = np.fromiter((rows[p] for p in best.premise_path), dtype=np.int64,
                          count=len(best.premise_path))
    connected = np.zeros(len(prem_ids), dtype=bool)
    connected[reached] = True
    loss = np.full(len(prem_ids), np.nan)
    loss[reached] = np.asarray(losses, dtype=float)[
        np.fromiter(best.premise_path.values(), dtype=np.int64, count=len(reached))]
    budget = options.budget
    connectable, nearest = _connectable(plant, walker, trace, prem_ids, connected, splitters,
                                        drop_m=drop_m, options=options)
    premises = pd.DataFrame({
        "premise_id": pd.Series(prem_ids, dtype=object),
        "units": _in_row_order(plant.premise_units, prem_ids, np.int64),
        "passed": passed.reindex(prem_ids).fillna(False).astype(bool).to_numpy(),
        "connected": connected,
        "loss_db": np.round(loss, DECIMALS),
        "in_budget": connected & (loss <= budget.budget_db),
        "connectable": connectable,
        "nearest_splitter_id": pd.Series(nearest, dtype=object),
    })
    premises = premises.sort_values("premise_id", kind="stable").reset_index(drop=True)
    in_service = splitters["node_id"].map(lambda n: plant.node_status.get(n) == IN_SERVICE)
    free_km = 0.0
    for s, free in zip(spans["span_id"], spans["free"], strict=True):
        free_km += free * plant.span_m[s] / 1000.0
    kpis: dict[str, float | int] = {
        "units_connectable": int(premises.loc[premises["connectable"], "units"].sum()),
        "ports_free": int(splitters.loc[in_service.astype(bool), "ports_free"].sum()),
        "strands_free_km": free_km,
    }
    return Capacity(spans, splitters, premises, kpis, used_per_span(spans))


def _premise_rows(plant: StrandPlant) -> Mapping[str, int]:
    """premise id -> its position in ``plant.premise_units`` (the premises' order)."""
    units = plant.premise_units
    if isinstance(units, RowValues) and units.array is not None:
        return units.rows  # with an array, the i-th key is row i
    return {p: i for i, p in enumerate(units)}


def _in_row_order(values: Mapping[str, Any], ids: list[str], dtype: Any) -> np.ndarray:
    """The values of ``ids`` (every key of ``values``, in its order) as one array."""
    if isinstance(values, RowValues) and values.array is not None:
        return np.asarray(values.array, dtype=dtype)
    return np.array([values[p] for p in ids], dtype=dtype)


def _xyz(lonlat: np.ndarray) -> np.ndarray:
    lon, lat = np.radians(lonlat[:, 0]), np.radians(lonlat[:, 1])
    return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon),
                            np.sin(lat)]) * _R


def _connectable(plant: StrandPlant, walker: object, trace: Trace, prem_ids: list[str],
                 connected: np.ndarray, splitters: pd.DataFrame, *, drop_m: float,
                 options: TraceOptions) -> tuple[np.ndarray, list[str | None]]:
    n = len(prem_ids)
    ok = np.zeros(n, dtype=bool)
    nearest: list[str | None] = [None] * n
    cand = splitters[splitters["live"] & (splitters["ports_free"] > 0)]
    todo = np.flatnonzero(~connected)
    if not len(cand) or not len(todo):
        return ok, nearest
    split_loss = walker.split_loss  # type: ignore[attr-defined]
    sid = cand["splitter_id"].tolist()
    node_ll = np.array([plant.node_lonlat[x] for x in cand["node_id"]], dtype=float)
    base = np.array([trace.input_loss[s] + split_loss[s] for s in sid], dtype=float)
    prem_ll = _in_row_order(plant.premise_lonlat, prem_ids, float).reshape(-1, 2)[todo]
    tree = cKDTree(_xyz(node_ll))
    hits = tree.query_ball_point(_xyz(prem_ll), r=drop_m * _SLACK)
    pi = np.repeat(np.arange(len(todo)), [len(h) for h in hits])
    si = np.fromiter((j for h in hits for j in h), dtype=np.int64, count=len(pi))
    if not len(pi):
        return ok, nearest
    dist = geodesic_distance_m(prem_ll[pi, 0], prem_ll[pi, 1], node_ll[si, 0], node_ll[si, 1])
    budget = options.budget
    good = (dist <= drop_m) & (base[si] + budget.atten_db_per_km * dist / 1000.0
                               + budget.fixed_db <= budget.budget_db)
    pi, si, dist = pi[good], si[good], dist[good]
    names = np.asarray(sid, dtype=object)
    order = np.lexsort((names[si].astype(str), dist, pi))
    pi, si = pi[order], si[order]
    first = np.ones(len(pi), dtype=bool)
    first[1:] = pi[1:] != pi[:-1]
    for p, s in zip(pi[first].tolist(), si[first].tolist(), strict=True):
        ok[todo[p]] = True
        nearest[todo[p]] = sid[s]
    return ok, nearest
