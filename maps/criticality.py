"""Criticality map: what a single cut or node failure takes down, and a scenario's damage."""

from __future__ import annotations

from typing import TYPE_CHECKING, Unpack

import folium
import geopandas as gpd
import pandas as pd
import shapely

from maps import _base as base
from maps.coverage import CORE_COLOR, premise_hexes
from netgis.schema import CORE, DEFAULT_HEX_RESOLUTION

if TYPE_CHECKING:
    from pyproj import CRS

    from netgis.analysis import ScenarioResult

SAFE_COLOR = "#9e9e9e"
#: Cut-impact classes of single-point-of-failure spans and nodes, light to dark.
IMPACT_COLORS = ("#fdae61", "#f46d43", "#d73027", "#a50026")
IMPACT_WEIGHTS = (3, 4.5, 6, 8)
SCENARIO_COLOR = "#6a3d9a"

CRIT_SPAN_POPUP = {"cut_premises": "cut premises", **base.SPAN_POPUP}
CRIT_NODE_POPUP = {**base.NODE_POPUP, "failure_premises": "failure premises"}


def _impact_classes(values: pd.Series) -> tuple[list[float], pd.Series, pd.Series]:
    """Quantile classes of positive impacts: edges, colour and weight per value."""
    edges = base.nice_edges(values, len(IMPACT_COLORS))
    n = len(edges) - 1
    colors = base.color_bins(values, edges, IMPACT_COLORS[-n:])
    weights = base.color_bins(values, edges, [str(w) for w in IMPACT_WEIGHTS[-n:]])
    return edges, colors, weights


def criticality_map(
    spans: gpd.GeoDataFrame,
    nodes: gpd.GeoDataFrame,
    *,
    premises: gpd.GeoDataFrame | None = None,
    scenario: ScenarioResult | None = None,
    scenario_area: shapely.Geometry | None = None,
    scenario_area_crs: CRS | str | int = 4326,
    hex_resolution: int = DEFAULT_HEX_RESOLUTION,
    **options: Unpack[base.MapOptions],
) -> folium.Map:
    """Spans coloured and weighted by cut units, single points of failure, a scenario overlay.

    Parameters
    ----------
    spans, nodes
        ``result.spans`` / ``result.nodes`` of :func:`netgis.analysis.analyze`
        (need ``cut_units`` and ``failure_units``).
    premises
        ``result.premises``; needed only to draw a scenario's lost premises.
    scenario
        What :func:`netgis.analysis.scenario` returns (``failed_spans``,
        ``failed_nodes``, ``premise_ids``, ``premises``, ``units``), drawn as
        an overlay.
    scenario_area, scenario_area_crs
        The scenario's area polygon and its CRS, outlined when given.
    hex_resolution
        H3 resolution of the hexagons of lost premises.
    **options
        :class:`maps._base.MapOptions`. Above ``max_features`` the spans
        without cut impact are merged into one line, only the ``max_features``
        worst single points of failure keep their own popup, and lost
        premises are rolled up into H3 hexagons.

    Returns
    -------
    folium.Map
        Safe spans in grey, single points of failure by impact class, cores,
        and the scenario (when given) in purple.

    Examples
    --------
    >>> r = analyze(dataset)  # doctest: +SKIP
    >>> sc = scenario(r, spans=["s5"])  # doctest: +SKIP
    >>> criticality_map(r.spans, r.nodes, premises=r.premises, scenario=sc)  # doctest: +SKIP
    """
    opts = base.Options.of(options, hex_resolution)
    max_features = opts.max_features
    base.require_columns(spans, "spans", ["span_id", "cut_units"])
    base.require_columns(nodes, "nodes", ["node_id", "kind", "failure_units"])
    big = len(spans) > max_features
    m = opts.start(prefer_canvas=big)
    s = base.to_wgs84(spans)
    n = base.to_wgs84(nodes)
    items: list[base.LegendItem] = [base.LegendItem("line", SAFE_COLOR, "no cut impact")]
    notes: list[str] = []

    spof = s["cut_units"].fillna(0).to_numpy(float) > 0
    safe = s[~spof]
    if not safe.empty:
        group = base.feature_group(m, f"Spans without cut impact ({len(safe)})")
        base.span_layer(group, safe, merge=big, label="no cut impact", name="safe",
                        css_class="netgis-span-safe",
                        style={"color": SAFE_COLOR, "weight": 2, "opacity": 0.8},
                        popup=CRIT_SPAN_POPUP)
    crit = s[spof].sort_values("cut_units", ascending=False)
    if not crit.empty:
        crit = base.first_rows(crit, max_features, notes, "critical spans")
        edges, colors, weights = _impact_classes(crit["cut_units"])
        group = base.feature_group(m, f"Single-point-of-failure spans ({int(spof.sum())})")
        cols, labels = base.popup_columns(crit, CRIT_SPAN_POPUP)
        key = colors + "|" + weights
        for k in pd.unique(key):
            color, weight = k.split("|")
            base.geojson_layer(crit[(key == k).to_numpy()], name="spof", id_field="span_id",
                               style={"color": color, "weight": float(weight), "opacity": 0.95},
                               css_class="netgis-span-spof", fields=cols, aliases=labels,
                               tooltip_fields=["span_id", "cut_units"]).add_to(group)
        items += base.class_legend("line", IMPACT_COLORS, edges, "cut units {}")

    items += base.plant_nodes(m, n, CORE, color=CORE_COLOR, radius=8, label="Cores",
                              popup=CRIT_NODE_POPUP)
    weak = n[n["failure_units"].fillna(0).to_numpy(float) > 0].sort_values(
        "failure_units", ascending=False)
    if not weak.empty:
        total = len(weak)
        weak = base.first_rows(weak, max_features, notes, "critical nodes")
        edges, colors, _ = _impact_classes(weak["failure_units"])
        cols, labels = base.popup_columns(n, CRIT_NODE_POPUP)
        base.add_by_color(
            base.feature_group(m, f"Single-point-of-failure nodes ({total})"), weak, colors,
            base_style={"color": "#000000", "weight": 1, "fillOpacity": 0.95},
            color_keys=("fillColor",), name="spof-nodes", id_field="node_id",
            css_class="netgis-node-spof", fields=cols, aliases=labels,
            tooltip_fields=["node_id", "failure_units"], point_radius=5,
        )
        items += base.class_legend("dot", IMPACT_COLORS, edges, "node failure units {}")

    frames = [s, n]
    if scenario is not None:
        frames += _scenario_overlay(m, scenario, s, n, premises, scenario_area, scenario_area_crs,
                                    max_features=max_features, hex_resolution=hex_resolution)
        items.append(base.LegendItem("line", SCENARIO_COLOR, "scenario: failed / lost"))
        notes.append(f"scenario: {scenario.premises} premises, "
                     f"{scenario.units} units lost")
    return base.finish_map(m, frames, base.Legend("Criticality", items, notes))


def _scenario_overlay(
    m: folium.Map,
    scenario: ScenarioResult,
    s: gpd.GeoDataFrame,
    n: gpd.GeoDataFrame,
    premises: gpd.GeoDataFrame | None,
    area: shapely.Geometry | None,
    area_crs: CRS | str | int,
    *,
    max_features: int,
    hex_resolution: int,
) -> list[gpd.GeoDataFrame]:
    """Failed spans and nodes, lost premises and the area outline, in one overlay group."""
    group = base.feature_group(m, f"Scenario ({scenario.premises} premises lost)")
    drawn: list[gpd.GeoDataFrame] = []
    failed_spans = s[s["span_id"].isin(scenario.failed_spans)]
    if not failed_spans.empty:
        cols, labels = base.popup_columns(failed_spans, CRIT_SPAN_POPUP)
        base.geojson_layer(failed_spans, name="failed-spans", id_field="span_id",
                           style={"color": SCENARIO_COLOR, "weight": 5, "dashArray": "8 6"},
                           css_class="netgis-scenario-span", fields=cols,
                           aliases=labels).add_to(group)
        drawn.append(failed_spans)
    failed_nodes = n[n["node_id"].isin(scenario.failed_nodes)]
    if not failed_nodes.empty:
        cols, labels = base.popup_columns(failed_nodes, CRIT_NODE_POPUP)
        base.geojson_layer(failed_nodes, name="failed-nodes", id_field="node_id",
                           style={"color": SCENARIO_COLOR, "weight": 3, "fillColor": "#ffffff",
                                  "fillOpacity": 1.0},
                           css_class="netgis-scenario-node", fields=cols, aliases=labels,
                           point_radius=7).add_to(group)
        drawn.append(failed_nodes)
    lost_ids = scenario.premise_ids
    if premises is not None and lost_ids:
        base.require_columns(premises, "premises", ["premise_id"])
        lost = base.to_wgs84(premises[premises["premise_id"].isin(lost_ids)])
        if len(lost) > max_features:
            hexes = premise_hexes(lost.assign(passed=True), hex_resolution)
            base.geojson_layer(hexes, name="lost-hexes", id_field="h3_cell",
                               style={"color": SCENARIO_COLOR, "fillColor": SCENARIO_COLOR,
                                      "weight": 0.5, "fillOpacity": 0.5},
                               css_class="netgis-scenario-hex",
                               fields=["h3_cell", "premises", "units"]).add_to(group)
        else:
            base.premise_points(group, lost, SCENARIO_COLOR, "netgis-scenario-premise", name="lost",
                                radius=3, fill_opacity=0.9)
        drawn.append(lost)
    if area is not None:
        outline = base.to_wgs84(gpd.GeoDataFrame({"layer": ["scenario area"]}, geometry=[area],
                                                 crs=area_crs))
        base.geojson_layer(outline, name="area", id_field=None, css_class="netgis-scenario-area",
                           style={"color": SCENARIO_COLOR, "weight": 2, "fillOpacity": 0.08,
                                  "dashArray": "4 4"}, fields=["layer"]).add_to(group)
        drawn.append(outline)
    return drawn

