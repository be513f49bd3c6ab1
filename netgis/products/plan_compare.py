"""What a design plan changes, against main: KPIs, premises, single points of failure,
cost and a bill of materials (docs/plans.md).

Pure functions over two analyses (main's and the plan's, from
:func:`netgis.engine.analysis.analyze` or a live analysis) and the features the plan
writes. Spans and nodes are told apart by id: a plan feature whose id main does not
have is *added*; one main has is *changed*; ids only main has that the plan lacks are
*removed*.

The cost is that of the route the plan adds or re-routes: each added span's geodesic
length times the cost per meter of its placement (:data:`~netgis.products.gaps.plan.COST_PER_M`,
the gap planner's table; spans without a placement count as underground), plus the
change in length of each changed span priced the same way when it grew. The bill of
materials counts what the added spans and nodes are: cable meters by fiber count,
splitters by ratio, closures (splice nodes), cabinets and handholes, and one drop per
premise the plan newly passes.

Examples
--------
>>> from netgis.engine.analysis import analyze
>>> from netgis.io import read_dataset
>>> from netgis.products.gaps.plan import apply_plan, plan_builds
>>> ds = read_dataset("tests/examples/ring_spur/dataset.gpkg")
>>> main = analyze(ds)
>>> after = analyze(apply_plan(ds, plan_builds(main.premises, main.spans, main.nodes)))
>>> out = compare_analyses(main, after)
>>> out["premises"]["newly_passed"], out["kpis"]["coverage_pct"]["delta"]
(1, 9.090909091)
>>> out["cost"]["total"] > 0, out["bill_of_materials"]["drops"]
(True, 1)
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from netgis.engine.analysis import Analysis
from netgis.products.gaps.plan import COST_PER_M
from netgis.schema import DEFAULT_PLACEMENT


def compare_analyses(main: Analysis, plan: Analysis, *,
                     cost_per_m: Mapping[str, float] | None = None,
                     eligible: set[str] | None = None) -> dict[str, Any]:
    """The differences of ``plan`` from ``main`` (see the module), JSON-ready.

    ``eligible``: the premise ids that are BEAD-eligible locations (unserved or
    underserved in an FCC availability file: :func:`netgis.products.program.eligible_premises`);
    without it the BEAD part counts every location (premise with a ``location_id``).
    """
    costs = {**COST_PER_M, **(cost_per_m or {})}
    kpis = _kpi_deltas(main.kpis["network"], plan.kpis["network"])
    prem = _premises(main, plan)
    spans = _diff_ids(main.spans, plan.spans, "span_id")
    nodes = _diff_ids(main.nodes, plan.nodes, "node_id")
    cost, bom = _cost_and_bom(main, plan, spans, nodes, costs, prem["newly_passed"])
    return {
        "kpis": kpis,
        "premises": prem,
        "spans": {"added": spans["added"], "removed": spans["removed"],
                  "changed": spans["changed"],
                  **_spof_change(main.spans, plan.spans, "span_id", "cut_premises")},
        "nodes": {"added": nodes["added"], "removed": nodes["removed"],
                  "changed": nodes["changed"],
                  **_spof_change(main.nodes, plan.nodes, "node_id", "failure_premises")},
        "cost": cost,
        "bill_of_materials": bom,
        "bead": _bead(main, plan, eligible),
    }


def _bead(main: Analysis, plan: Analysis, eligible: set[str] | None) -> dict[str, Any]:
    """BEAD locations (premises with an FCC ``location_id``) the plan newly serves (passes):
    all of them, and those BEAD-eligible when ``eligible`` is known."""
    before = main.premises.loc[main.premises["passed"].to_numpy(bool), "premise_id"]
    prem = plan.premises
    has = prem["location_id"].notna().to_numpy() if "location_id" in prem.columns \
        else np.zeros(len(prem), dtype=bool)
    served = prem.loc[has & prem["passed"].to_numpy(bool)]
    newly = served[~served["premise_id"].astype(str).isin(set(before.astype(str)))]
    locations = sorted(set(newly["location_id"].astype(str)))
    out: dict[str, Any] = {"locations_newly_served": len(locations),
                           "location_ids": locations[:1000],
                           "availability": eligible is not None,
                           "eligible_newly_served": None, "eligible_location_ids": None}
    if eligible is not None:
        chosen = newly[newly["premise_id"].astype(str).isin(eligible)]
        ids = sorted(set(chosen["location_id"].astype(str)))
        out["eligible_newly_served"] = len(ids)
        out["eligible_location_ids"] = ids[:1000]
    return out


def compare_csv(result: Mapping[str, Any]) -> str:
    """The KPI part of :func:`compare_analyses` as CSV (``kpi,main,plan,delta``), then the
    cost and bill of materials as ``item,quantity,unit`` rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["kpi", "main", "plan", "delta"])
    for key, row in result["kpis"].items():
        writer.writerow([key, row["main"], row["plan"], row["delta"]])
    writer.writerow([])
    writer.writerow(["item", "quantity", "unit"])
    for key, value in result["cost"]["by_placement"].items():
        writer.writerow([f"cost {key}", value, "currency"])
    writer.writerow(["cost total", result["cost"]["total"], "currency"])
    bom = result["bill_of_materials"]
    for fibers, meters in bom["cable_m_by_fiber_count"].items():
        writer.writerow([f"cable {fibers} fibers", meters, "m"])
    for ratio, n in bom["splitters_by_ratio"].items():
        writer.writerow([f"splitter 1:{ratio}", n, "pieces"])
    for key in ("closures", "cabinets", "handholes", "drops"):
        writer.writerow([key, bom[key], "pieces"])
    bead = result.get("bead")
    if bead is not None:
        writer.writerow(["BEAD locations newly served", bead["locations_newly_served"],
                         "locations"])
        if bead["eligible_newly_served"] is not None:
            writer.writerow(["BEAD-eligible locations newly served",
                             bead["eligible_newly_served"], "locations"])
    return out.getvalue()


def _kpi_deltas(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, before in a.items():
        after = b.get(key)
        if isinstance(before, bool) or not isinstance(before, int | float) \
                or not isinstance(after, int | float):
            out[key] = {"main": before, "plan": after, "delta": None}
            continue
        delta = after - before
        out[key] = {"main": before, "plan": after,
                    "delta": round(delta, 9) if isinstance(delta, float) else delta}
    return out


def _premises(main: Analysis, plan: Analysis) -> dict[str, Any]:
    """Premises and units newly passed (and no longer passed), newly in budget."""
    a = main.premises.set_index("premise_id")
    b = plan.premises.set_index("premise_id")
    common = a.index.intersection(b.index)
    pa, pb = a.loc[common, "passed"].to_numpy(bool), b.loc[common, "passed"].to_numpy(bool)
    ba, bb = a.loc[common, "in_budget"].to_numpy(bool), b.loc[common, "in_budget"].to_numpy(bool)
    units = b.loc[common, "units"].to_numpy(np.int64)
    new_ids = b.index.difference(a.index)
    new_passed = b.loc[new_ids, "passed"].to_numpy(bool)
    gained = ~pa & pb
    lost = pa & ~pb
    return {
        "newly_passed": int(gained.sum() + new_passed.sum()),
        "units_newly_passed": int(units[gained].sum()
                                  + b.loc[new_ids, "units"].to_numpy(np.int64)[new_passed].sum()),
        "no_longer_passed": int(lost.sum()),
        "units_no_longer_passed": int(units[lost].sum()),
        "newly_in_budget": int((~ba & bb).sum()),
        "units_newly_in_budget": int(units[~ba & bb].sum()),
        "newly_passed_ids": sorted(map(str, common[gained].tolist()))[:1000],
    }


def _diff_ids(a: pd.DataFrame, b: pd.DataFrame, id_field: str) -> dict[str, Any]:
    ia = set(a[id_field].astype(str))
    ib = set(b[id_field].astype(str))
    common = sorted(ia & ib)
    cols = [c for c in a.columns if c in b.columns and c != id_field and c not in (
        "lit", "length_m", "cut_premises", "cut_units", "failure_premises", "failure_units")]
    x = a.set_index(a[id_field].astype(str)).loc[common]
    y = b.set_index(b[id_field].astype(str)).loc[common]
    differs = np.zeros(len(common), dtype=bool)
    for col in cols:
        differs |= ~_same_values(x[col], y[col])
    return {"added": sorted(ib - ia), "removed": sorted(ia - ib),
            "changed": [common[i] for i in np.flatnonzero(differs)]}


def _same_values(u: pd.Series, v: pd.Series) -> npt.NDArray[np.bool_]:
    """Per row: the same value (missing on both sides counts as the same; geometries the
    same shape, point for point in any order of drawing)."""
    if isinstance(u.dtype, gpd.array.GeometryDtype):
        ga, gb = u.to_numpy(), v.to_numpy()
        empty_a, empty_b = shapely.is_empty(ga), shapely.is_empty(gb)
        return np.where(empty_a, empty_b, ~empty_b & shapely.equals(ga, gb))
    na_u, na_v = u.isna().to_numpy(), v.isna().to_numpy()
    both = ~na_u & ~na_v
    out = na_u & na_v
    ua, va = u.to_numpy(dtype=object), v.to_numpy(dtype=object)
    out[both] = [bool(p == q) for p, q in zip(ua[both], va[both], strict=True)]
    return out


def _spof_change(a: pd.DataFrame, b: pd.DataFrame, id_field: str, col: str) -> dict[str, Any]:
    sa = set(a.loc[a[col] > 0, id_field].astype(str))
    sb = set(b.loc[b[col] > 0, id_field].astype(str))
    return {"became_spof": sorted(sb - sa), "no_longer_spof": sorted(sa - sb)}


def _cost_and_bom(main: Analysis, plan: Analysis, spans: Mapping[str, Any],
                  nodes: Mapping[str, Any], costs: Mapping[str, float],
                  drops: int) -> tuple[dict[str, Any], dict[str, Any]]:
    by_placement: dict[str, float] = {}
    cable: dict[str, float] = {}
    ps = plan.spans.set_index("span_id")
    ms = main.spans.set_index("span_id")

    def add(placement: Any, fibers: Any, meters: float) -> None:
        kind = str(placement) if isinstance(placement, str) and placement in costs \
            else DEFAULT_PLACEMENT
        by_placement[kind] = by_placement.get(kind, 0.0) + meters * float(costs[kind])
        key = "unknown" if fibers is None or pd.isna(fibers) else str(int(fibers))
        cable[key] = cable.get(key, 0.0) + meters

    for sid in spans["added"]:
        row = ps.loc[sid]
        add(row["placement"], row["fiber_count"], float(row["length_m"]))
    for sid in spans["changed"]:
        grown = float(ps.loc[sid, "length_m"]) - float(ms.loc[sid, "length_m"])
        if grown > 0:
            row = ps.loc[sid]
            add(row["placement"], row["fiber_count"], grown)
    pn = plan.nodes.set_index("node_id")
    added_nodes = pn.loc[nodes["added"]] if nodes["added"] else pn.iloc[0:0]
    kinds = added_nodes["kind"].astype(str)
    splitters = added_nodes.loc[kinds == "splitter"]
    ratios: dict[str, int] = {}
    if "split_ratio" in splitters.columns:
        for r in splitters["split_ratio"].tolist():
            key = "unknown" if r is None or pd.isna(r) else str(int(r))
            ratios[key] = ratios.get(key, 0) + 1
    cost = {"by_placement": {k: round(v, 2) for k, v in sorted(by_placement.items())},
            "total": round(sum(by_placement.values()), 2),
            "route_m_added": round(sum(cable.values()), 3),
            "cost_per_m": dict(sorted(costs.items()))}
    bom = {"cable_m_by_fiber_count": {k: round(v, 3) for k, v in sorted(cable.items())},
           "splitters_by_ratio": dict(sorted(ratios.items())),
           "closures": int((kinds == "splice").sum()),
           "cabinets": int((kinds == "cabinet").sum()),
           "handholes": int((kinds == "handhole").sum()),
           "drops": int(drops)}
    return cost, bom
