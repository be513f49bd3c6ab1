"""The compare map of a design plan: what it adds, removes and changes, and whom it newly
serves (docs/plans.md).

Drawn from main's analysis, the plan's, and :func:`netgis.products.plan_compare.compare_analyses`
of the two: spans the plan adds (green), removes (red) and changes (orange), the rest of the
plan's lit network faint for context, premises the plan newly passes (blue) and those it
no longer passes (red), nodes it adds. Every layer is a plain GeoJSON layer (a plan changes
few features); the context spans are merged into one line per class above the feature limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Unpack

import geopandas as gpd

from netgis.maps import _base as base

if TYPE_CHECKING:
    import folium

    from netgis.engine.analysis import Analysis

ADDED_COLOR = "#1a9850"
REMOVED_COLOR = "#d73027"
CHANGED_COLOR = "#fc8d59"
CONTEXT_COLOR = "#9e9e9e"
NEWLY_PASSED_COLOR = "#2166ac"
LOST_COLOR = "#b2182b"


def compare_map(main: Analysis, plan: Analysis, diff: Mapping[str, Any],
                **options: Unpack[base.MapOptions]) -> folium.Map:
    """The compare map (see the module).

    Examples
    --------
    >>> from netgis.engine.analysis import analyze
    >>> from netgis.io import read_dataset
    >>> from netgis.products.gaps.plan import apply_plan, plan_builds
    >>> from netgis.products.plan_compare import compare_analyses
    >>> ds = read_dataset("tests/examples/ring_spur/dataset.gpkg")
    >>> a = analyze(ds)
    >>> b = analyze(apply_plan(ds, plan_builds(a.premises, a.spans, a.nodes)))
    >>> type(compare_map(a, b, compare_analyses(a, b))).__name__
    'Map'
    """
    opts = base.Options.of(options)
    m = opts.start()
    ps = base.to_wgs84(plan.spans)
    ms = base.to_wgs84(main.spans)
    added = ps[ps["span_id"].isin(diff["spans"]["added"])]
    changed = ps[ps["span_id"].isin(diff["spans"]["changed"])]
    removed = ms[ms["span_id"].isin(diff["spans"]["removed"])]
    context = ps[ps["lit"].astype(bool) & ~ps["span_id"].isin(
        set(diff["spans"]["added"]) | set(diff["spans"]["changed"]))]
    fields = ["span_id", "status", "placement", "fiber_count", "length_m", "cut_units"]
    items: list[base.LegendItem] = []
    notes: list[str] = []
    group = base.feature_group(m, f"Plan's lit network ({len(context)} spans)")
    if len(context) > opts.max_features:
        context = base.merged_lines(context, "lit")
        notes.append(f"{len(ps)} spans > {opts.max_features}: the context is one line")
    base.geojson_layer(context, name="context", id_field=None,
                       style={"color": CONTEXT_COLOR, "weight": 1.5, "opacity": 0.6},
                       css_class="netgis-plan-context").add_to(group)
    items.append(base.LegendItem("line", CONTEXT_COLOR, "lit span (unchanged)"))
    for frame, label, color, css in ((added, "added", ADDED_COLOR, "netgis-plan-added"),
                                     (changed, "changed", CHANGED_COLOR, "netgis-plan-changed"),
                                     (removed, "removed", REMOVED_COLOR, "netgis-plan-removed")):
        g = base.feature_group(m, f"Spans {label} ({len(frame)})")
        base.geojson_layer(frame, name=f"spans {label}", id_field="span_id",
                           style={"color": color, "weight": 4, "opacity": 0.95},
                           css_class=css, fields=[f for f in fields if f in frame.columns]
                           ).add_to(g)
        items.append(base.LegendItem("line", color, f"span {label}"))
    pp = base.to_wgs84(plan.premises)
    mp = base.to_wgs84(main.premises).set_index("premise_id")
    was = mp["passed"].reindex(pp["premise_id"]).fillna(False).to_numpy(dtype=bool)
    now = pp["passed"].to_numpy(dtype=bool)
    for mask, label, color, css in ((now & ~was, "newly passed", NEWLY_PASSED_COLOR,
                                     "netgis-plan-newly-passed"),
                                    (~now & was, "no longer passed", LOST_COLOR,
                                     "netgis-plan-lost")):
        frame = gpd.GeoDataFrame(pp[mask], geometry="geometry", crs=pp.crs)
        g = base.feature_group(m, f"Premises {label} ({len(frame)})")
        base.geojson_layer(frame, name=f"premises {label}", id_field="premise_id",
                           style={"color": color, "fillColor": color, "weight": 1,
                                  "fillOpacity": 0.85},
                           css_class=css, fields=["premise_id", "units", "address"],
                           point_radius=4).add_to(g)
        items.append(base.LegendItem("dot", color, f"premise {label}"))
    pn = base.to_wgs84(plan.nodes)
    new_nodes = pn[pn["node_id"].isin(diff["nodes"]["added"])]
    g = base.feature_group(m, f"Nodes added ({len(new_nodes)})")
    base.geojson_layer(new_nodes, name="nodes added", id_field="node_id",
                       style={"color": ADDED_COLOR, "fillColor": "#ffffff", "weight": 2,
                              "fillOpacity": 1.0},
                       css_class="netgis-plan-node-added", fields=["node_id", "kind"],
                       point_radius=3).add_to(g)
    items.append(base.LegendItem("dot", ADDED_COLOR, "node added"))
    cost = diff["cost"]["total"]
    notes.append(f"cost {cost:,.0f}; {diff['premises']['newly_passed']} premises newly passed")
    frames = [f for f in (added, changed, removed, new_nodes) if len(f)] or [ps]
    return base.finish_map(m, frames, base.Legend("Plan against main", items, notes))
