"""The files of ``netgis trace`` and ``netgis capacity`` (docs/strands.md, "Contracts"),
and the one call each command makes: :func:`run_trace` and :func:`run_capacity`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from netgis.dataset import Dataset
from netgis.engine.outputs import write_csv
from netgis.engine.strands.capacity import Capacity, capacity
from netgis.engine.strands.trace import (
    CutSet,
    Trace,
    TraceOptions,
    best_paths,
    cut_frame,
    dark_splitters,
    hop_rows,
    path_frame,
    path_losses,
    ports_per_premise,
    trace_network,
    upstream_frame,
)
from netgis.errors import Problem, ValidationError
from netgis.io import atomic_dir
from netgis.jsonsafe import json_safe
from netgis.strand_plant import StrandPlant, route_warnings

PATH_COLUMNS = ("olt_port_id", "path_id", "end_type", "end_id", "drop_id", "premise_id",
                "n_splices", "n_connectors", "splitter_ids", "fiber_m", "drop_m", "loss_db",
                "margin_db", "in_budget")
HOP_COLUMNS = ("path_id", "seq", "hop_type", "ref_id", "cable_id", "strand", "tube", "colour",
               "node_from", "node_to", "span_ids", "length_m", "loss_db", "cum_loss_db")
UPSTREAM_COLUMNS = ("premise_id", "drop_id", "status", "olt_port_id", "path_id", "loss_db",
                    "in_budget")
CUT_COLUMNS = ("premise_id", "units", "status", "olt_port_before", "olt_port_after",
               "loss_before_db", "loss_after_db")
SPAN_CAPACITY_COLUMNS = ("span_id", "cables", "strands_total", "lit", "assigned", "reserved",
                         "broken", "free")
SPLITTER_COLUMNS = ("splitter_id", "node_id", "ratio", "ports_used", "ports_free", "live",
                    "input_loss_db")
PREMISE_CAPACITY_COLUMNS = ("premise_id", "units", "passed", "connected", "loss_db",
                            "in_budget", "connectable", "nearest_splitter_id")


@dataclass
class TraceResult:
    """What ``netgis trace`` computed: the paths (after the cut, when there is one)."""

    trace: Trace
    paths: pd.DataFrame
    hops: pd.DataFrame
    upstream: pd.DataFrame
    cut: pd.DataFrame | None
    summary: dict[str, Any]
    warnings: list[Problem]


def parse_cut_strands(values: Sequence[str]) -> frozenset[tuple[str, int, str | None]]:
    """``C:k`` or ``C:k@S`` as (cable, strand, span or None); a ValidationError naming a
    malformed one."""
    out = set()
    for v in values:
        body, _, span = v.partition("@")
        cable, _, num = body.rpartition(":")
        if not cable or not num.isdigit() or (("@" in v) and not span):
            raise ValidationError([Problem("parameters", None, "cut-strands",
                                           f"expected CABLE:STRAND or CABLE:STRAND@SPAN, got "
                                           f"{v!r}")])
        out.add((cable, int(num), span or None))
    return frozenset(out)


def check_cut(plant: StrandPlant, cut: CutSet) -> None:
    """Every id a cut names exists; else a ValidationError naming each unknown one."""
    problems = [Problem("parameters", s, "cut-spans", "no such span")
                for s in sorted(cut.spans) if s not in plant.span_status]
    problems += [Problem("parameters", n, "fail-nodes", "no such node")
                 for n in sorted(cut.nodes) if n not in plant.node_status]
    ducts = {d for d in plant.span_duct.values() if d is not None}
    problems += [Problem("parameters", d, "fail-ducts", "no span lies in this duct")
                 for d in sorted(cut.ducts) if d not in ducts]
    for c, k, s in sorted(cut.strands, key=str):
        cab = plant.cables.get(c)
        if cab is None:
            problems.append(Problem("parameters", f"{c}:{k}", "cut-strands", "no such cable"))
        elif not 1 <= k <= cab.fiber_count:
            problems.append(Problem("parameters", f"{c}:{k}", "cut-strands",
                                    f"strand {k} is outside 1..{cab.fiber_count}"))
        elif s is not None and s not in cab.spans:
            problems.append(Problem("parameters", f"{c}:{k}@{s}", "cut-strands",
                                    f"cable {c} does not run along span {s}"))
    if problems:
        raise ValidationError(problems)


def trace_warnings(plant: StrandPlant, dataset: Dataset, trace: Trace,
                   used_per_span: dict[str, int] | None) -> list[Problem]:
    """Warnings that need a trace: lit strand ends with nothing connected, premises fed from
    two OLT ports, and the route/strand cross-checks."""
    out = list(plant.warnings)
    leaf = np.asarray(trace.path_leaf, dtype=np.int64)
    if len(leaf):
        ends = np.asarray(trace.end_type, dtype=object)
        after_piece = np.asarray(trace.hop_type, dtype=object)[leaf] == "piece"
        for p in np.flatnonzero((ends == "open") & after_piece).tolist():
            out.append(Problem("connections", None, None,
                               f"lit strand end {trace.end_id[p]} at node "
                               f"{trace.node_to[trace.path_leaf[p]]} has nothing connected"))
    for prem, ports in sorted(ports_per_premise(trace).items()):
        if len(ports) > 1:
            out.append(Problem("premises", prem, None,
                               f"premise {prem} is fed from {len(ports)} OLT ports "
                               f"({', '.join(sorted(ports))})"))
    out += route_warnings(plant, dataset, used_per_span)
    return list(dict.fromkeys(out))


def run_trace(plant: StrandPlant, dataset: Dataset, options: TraceOptions, *,
              ports: Sequence[str] = (), premises: Sequence[str] = (),
              cut: CutSet | None = None) -> TraceResult:
    """Trace the plant (after ``cut``) and build the trace files' frames."""
    problems = [Problem("parameters", p, "olt-port", "no such OLT port")
                for p in ports if p not in plant.olt_node]
    problems += [Problem("parameters", p, "premise", "no such premise")
                 for p in premises if p not in plant.premise_units]
    if problems:
        raise ValidationError(problems)
    cut = cut or CutSet()
    check_cut(plant, cut)
    plain = trace_network(plant, options)
    after = trace_network(plant, options, cut) if cut else plain
    losses = path_losses(after, options)
    best = best_paths(after, losses)
    keep = np.ones(len(after), dtype=bool)
    if ports:
        keep &= np.isin(np.asarray(after.path_port, dtype=object), list(ports))
    if premises:
        walker = after.walker
        wanted = set(premises)
        keep &= np.array([d >= 0 and walker.drop_premise[d] in wanted for d in after.drop_row],
                         dtype=bool)
    paths = path_frame(after, options, keep)
    hops = hop_rows(after, np.flatnonzero(keep), arrow=True)
    upstream = upstream_frame(after, options, best, set(premises) if premises else None)
    cut_rows = None
    summary: dict[str, Any] = {"paths": int(keep.sum()),
                               "olt_ports": len(set(paths["olt_port_id"])),
                               "drops_connected": int((upstream["status"] == "connected").sum()),
                               "drops_open": int((upstream["status"] == "open").sum())}
    if cut:
        b0 = best_paths(plain, path_losses(plain, options))
        cut_rows = cut_frame(plain, after, options, b0, best, plant.premise_units)
        lost = cut_rows[cut_rows["status"] == "lost"]
        rer = cut_rows[cut_rows["status"] == "rerouted"]
        summary.update({"premises_lost": len(lost), "units_lost": int(lost["units"].sum()),
                        "premises_rerouted": len(rer),
                        "units_rerouted": int(rer["units"].sum()),
                        "splitters_dark": dark_splitters(plain, after)})
    warnings = trace_warnings(plant, dataset, plain, None)
    return TraceResult(after, paths, hops, upstream, cut_rows, summary, warnings)


def write_trace(result: TraceResult, out_dir: str | os.PathLike[str]) -> Path:
    """Write trace_paths.csv, trace_hops.csv, upstream.csv (and cut_premises.csv)."""
    out = Path(out_dir)
    with atomic_dir(out, merge=True) as tmp:
        write_csv(result.paths, PATH_COLUMNS, tmp / "trace_paths.csv")
        write_csv(result.hops, HOP_COLUMNS, tmp / "trace_hops.csv")
        write_csv(result.upstream, UPSTREAM_COLUMNS, tmp / "upstream.csv")
        if result.cut is not None:
            write_csv(result.cut, CUT_COLUMNS, tmp / "cut_premises.csv")
    if result.cut is None and (out / "cut_premises.csv").exists():
        (out / "cut_premises.csv").unlink()  # a file of an earlier cut would mislead
    return out


def run_capacity(plant: StrandPlant, dataset: Dataset, passed: pd.Series, *, drop_m: float,
                 options: TraceOptions) -> tuple[Capacity, list[Problem]]:
    """Capacity of the plant, and every warning (the cross-checks need its strand counts)."""
    trace = trace_network(plant, options)
    cap = capacity(plant, passed, drop_m=drop_m, options=options, trace=trace)
    return cap, trace_warnings(plant, dataset, trace, cap.used_per_span)


def write_capacity(cap: Capacity, out_dir: str | os.PathLike[str]) -> Path:
    """Write span_capacity.csv, splitter_ports.csv, premise_capacity.csv, capacity.json."""
    out = Path(out_dir)
    with atomic_dir(out, merge=True) as tmp:
        write_csv(cap.spans, SPAN_CAPACITY_COLUMNS, tmp / "span_capacity.csv")
        write_csv(cap.splitters, SPLITTER_COLUMNS, tmp / "splitter_ports.csv")
        write_csv(cap.premises, PREMISE_CAPACITY_COLUMNS, tmp / "premise_capacity.csv")
        (tmp / "capacity.json").write_text(json.dumps(json_safe(cap.kpis), indent=1,
                                                      allow_nan=False) + "\n")
    return out


def traced_warnings(dataset: Dataset) -> list[Problem]:
    """The warnings of ``dataset``'s strand layers that need a trace (lit strand ends with
    nothing connected, premises fed from two OLT ports) or strand counts (span
    ``fiber_count``/``fibers_used`` against the cables on it); [] without strand layers."""
    from netgis.engine.strands.capacity import strand_states, used_per_span
    from netgis.strand_plant import strand_plant

    if not dataset.strands:
        return []
    plant = strand_plant(dataset, dataset.strands)
    trace = trace_network(plant)
    found = trace_warnings(plant, dataset, trace, used_per_span(strand_states(plant, trace)))
    known = set(plant.warnings)
    return [w for w in found if w not in known]
