"""Criticality map: what a single cut or node failure takes down, and a scenario's damage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Unpack

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, MacroElement
from folium.map import CustomPane
from jinja2 import Template

from netgis.errors import ConfigError
from netgis.maps import _base as base
from netgis.maps.coverage import CORE_COLOR, premise_hexes
from netgis.maps.figure import figure_of
from netgis.schema import CORE, DEFAULT_CRITICAL_TOP, DEFAULT_HEX_RESOLUTION

if TYPE_CHECKING:
    from pyproj import CRS

    from netgis.engine.analysis import ScenarioResult

SAFE_COLOR = "#9e9e9e"
#: Cut-impact classes of single-point-of-failure spans and nodes, light to dark.
IMPACT_COLORS = ("#fdae61", "#f46d43", "#d73027", "#a50026")
IMPACT_WEIGHTS = (3, 4.5, 6, 8)
#: A scenario's failed spans and nodes: thick, in a colour no class uses, above everything.
SCENARIO_COLOR = "#7b00d4"
#: The premises a scenario takes off line: bright fill, dark ring, just below the failures.
LOST_COLOR = "#ff2bd6"
LOST_RING = "#2d004b"
#: Map panes (z-index above Leaflet's overlay pane, 400, and marker pane, 600).
FAILED_PANE, FAILED_Z = "netgis-failed", 640
LOST_PANE, LOST_Z = "netgis-lost", 630
#: Thresholds the page's "worst N" control offers (and the current one).
TOP_CHOICES = (10, 25, 50, 100, 200, 500, 1000, 2000, 5000)

CRIT_SPAN_POPUP = {"cut_premises": "cut premises", **base.SPAN_POPUP}
CRIT_NODE_POPUP = {**base.NODE_POPUP, "failure_premises": "failure premises"}


def _impacts(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame[column].fillna(0).astype(float)


def worst(frame: base.FrameT, column: str, id_column: str, top: int) -> base.FrameT:
    """The ``top`` rows of ``frame`` with the largest positive ``column`` (ties: lower id first).

    Examples
    --------
    >>> f = pd.DataFrame({"span_id": ["a", "b", "c", "d"], "cut_units": [5, 0, 9, 5]})
    >>> worst(f, "cut_units", "span_id", 2)["span_id"].tolist()
    ['c', 'a']
    """
    impact = _impacts(frame, column)
    hit = frame[impact.to_numpy() > 0]
    order = np.lexsort((hit[id_column].astype(str).to_numpy(), -impact[hit.index].to_numpy()))
    return hit.iloc[order[:top]]


def impact_edges(values: pd.Series, top: int = DEFAULT_CRITICAL_TOP) -> list[float]:
    """Class edges of positive impacts: quantiles of the ``top`` largest; the first class
    reaches down to the smallest positive impact, so that every element has a class.

    Computed once over the whole network (:func:`criticality_classes`), they give
    every view of it (any bbox, any area) the same legend.

    Examples
    --------
    >>> impact_edges(pd.Series([1, 2, 3, 50, 60, 70, 80, 90]), top=4)
    [1.0, 68.0, 75.0, 83.0, 91.0]
    """
    v = values.fillna(0).astype(float)
    v = v[v > 0]
    if v.empty:
        return [1.0, 2.0]
    edges = base.nice_edges(v.nlargest(top), len(IMPACT_COLORS))
    edges[0] = min(edges[0], float(np.floor(v.min())))
    return edges


def criticality_classes(spans: pd.DataFrame, nodes: pd.DataFrame,
                        top: int = DEFAULT_CRITICAL_TOP) -> tuple[list[float], list[float]]:
    """Class edges of span cut units and node failure units of a whole network.

    Examples
    --------
    >>> from netgis.engine.analysis import analyze
    >>> from netgis.io import read_dataset
    >>> dataset = read_dataset("tests/examples/ring_spur/dataset.gpkg")
    >>> r = analyze(dataset)
    >>> span_edges, node_edges = criticality_classes(r.spans, r.nodes)
    >>> span_edges, node_edges
    ([6.0, 8.0], [6.0, 8.0])
    """
    return impact_edges(spans["cut_units"], top), impact_edges(nodes["failure_units"], top)


def _classes(values: pd.Series, edges: list[float]) -> tuple[pd.Series, pd.Series]:
    """Colour and line weight of each value in the classes of ``edges``."""
    n = len(edges) - 1
    colors = base.color_bins(values, edges, IMPACT_COLORS[-n:])
    weights = base.color_bins(values, edges, [str(w) for w in IMPACT_WEIGHTS[-n:]])
    return colors, weights


class TopControl(MacroElement):
    """A control (top left) choosing how many of the worst spans and nodes the page shows.

    Choosing reloads the page with ``top=N`` in its query, which the API's
    criticality page reads; nothing leaves the page's own server.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.control({position: "topleft"});
        {{ this.get_name() }}.onAdd = function () {
            var div = L.DomUtil.create("div", "netgis-top leaflet-bar");
            var label = L.DomUtil.create("label", "", div);
            label.textContent = "Worst ";
            var select = L.DomUtil.create("select", "netgis-top-select", label);
            {{ this.choices|tojson }}.forEach(function (n) {
                var option = L.DomUtil.create("option", "", select);
                option.value = String(n);
                option.textContent = String(n);
                option.selected = n === {{ this.top|tojson }};
            });
            label.appendChild(document.createTextNode(" spans and nodes"));
            select.addEventListener("change", function () {
                var url = new URL(window.location.href);
                url.searchParams.set("top", select.value);
                window.location.assign(url.toString());
            });
            L.DomEvent.disableClickPropagation(div);
            return div;
        };
        {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    css = """<style>
    .netgis-top { background: rgba(255,255,255,0.92); padding: 4px 8px; font: 12px/1.4
      sans-serif; }
    .netgis-top select { font: inherit; }
    </style>"""

    def __init__(self, top: int) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "TopControl"
        self.top = int(top)
        self.choices = sorted({*TOP_CHOICES, self.top})


def criticality_map(
    spans: gpd.GeoDataFrame,
    nodes: gpd.GeoDataFrame,
    *,
    premises: gpd.GeoDataFrame | None = None,
    scenario: ScenarioResult | None = None,
    scenario_area: shapely.Geometry | None = None,
    scenario_area_crs: CRS | str | int = 4326,
    hex_resolution: int = DEFAULT_HEX_RESOLUTION,
    top: int = DEFAULT_CRITICAL_TOP,
    span_edges: Sequence[float] | None = None,
    node_edges: Sequence[float] | None = None,
    top_control: bool = False,
    **options: Unpack[base.MapOptions],
) -> folium.Map:
    """The worst spans and nodes by cut / failure units, and a scenario's damage on top.

    Parameters
    ----------
    spans, nodes
        ``result.spans`` / ``result.nodes`` of :func:`netgis.engine.analysis.analyze`
        (need ``cut_units`` and ``failure_units``).
    premises
        ``result.premises``; needed only to draw a scenario's lost premises.
    scenario
        What :func:`netgis.engine.analysis.scenario` returns (``failed_spans``,
        ``failed_nodes``, ``premise_ids``, ``premises``, ``units``): its failed
        spans and nodes are drawn thick in their own pane above everything
        else, and the premises it takes off line highlighted below them.
    scenario_area, scenario_area_crs
        The scenario's area polygon and its CRS, outlined when given.
    hex_resolution
        H3 resolution of the hexagons of lost premises.
    top
        How many of the worst single-point-of-failure spans, and of nodes, to
        draw by impact class (ties: lower id first; at most ``max_features``);
        every other span is drawn thin and grey for orientation.
    span_edges, node_edges
        Class edges of cut units and failure units; by default
        :func:`impact_edges` of what is drawn. Pass :func:`criticality_classes`
        of the whole network so that views of parts of it share one legend.
    top_control
        Add a control that reloads the page with another ``top=`` (for pages
        served by the API; a saved file keeps its ``top``).
    **options
        :class:`maps._base.MapOptions`. Above ``max_features`` the other spans
        are merged into one line and lost premises are rolled up into H3 hexagons.

    Returns
    -------
    folium.Map
        Other spans in grey, the worst spans and nodes by impact class, cores,
        and the scenario (when given).

    Examples
    --------
    >>> from netgis.engine.analysis import analyze, scenario
    >>> from netgis.io import read_dataset
    >>> r = analyze(read_dataset("tests/examples/ring_spur/dataset.gpkg"))
    >>> sc = scenario(r, spans=["s5"])
    >>> m = criticality_map(r.spans, r.nodes, premises=r.premises, scenario=sc)
    >>> type(m).__name__
    'Map'
    """
    opts = base.Options.of(options, hex_resolution)
    if top < 1:
        raise ConfigError(f"top must be >= 1, got {top}")
    max_features = opts.max_features
    shown = min(top, max_features)
    base.require_columns(spans, "spans", ["span_id", "cut_units"])
    base.require_columns(nodes, "nodes", ["node_id", "kind", "failure_units"])
    # few features are drawn one by one (the rest is one merged line): SVG, so that the
    # scenario's panes stack above the rest and stay clickable
    m = opts.start()
    s = base.to_wgs84(spans)
    n = base.to_wgs84(nodes)
    items: list[base.LegendItem] = [base.LegendItem("line", SAFE_COLOR, "other span")]
    notes: list[str] = []

    crit = worst(s, "cut_units", "span_id", shown)
    other = s[~s.index.isin(crit.index)]
    safe_style = {"color": SAFE_COLOR, "weight": 1.5, "opacity": 0.7,
                  "className": "netgis-span-safe"}
    if len(other) > max_features and opts.vector_tiles:
        # every span from the server's tiles (the worst are drawn again above them), each
        # with its own popup, instead of one merged line without any
        group = base.feature_group(m, f"Other spans ({len(other)}, vector tiles)")
        base.vector_tile_layer(m, opts, group, "spans", "span_id",
                               [base.TileClass(safe_style, items[0])], CRIT_SPAN_POPUP)
        notes.append(f"{len(other)} other spans > {max_features}: drawn from vector tiles")
    elif not other.empty:
        group = base.feature_group(m, f"Other spans ({len(other)})")
        base.span_layer(group, other, merge=len(other) > max_features, label="other spans",
                        name="other", css_class="netgis-span-safe",
                        style={k: v for k, v in safe_style.items() if k != "className"},
                        popup=CRIT_SPAN_POPUP)
    n_spof = int((_impacts(s, "cut_units") > 0).sum())
    if not crit.empty:
        edges = list(span_edges) if span_edges is not None else impact_edges(crit["cut_units"],
                                                                             top)
        colors, weights = _classes(crit["cut_units"], edges)
        group = base.feature_group(m, f"Worst {len(crit)} of {n_spof} single-point-of-failure "
                                   "spans")
        cols, labels = base.popup_columns(crit, CRIT_SPAN_POPUP)
        key = colors + "|" + weights
        for k in pd.unique(key):
            color, weight = k.split("|")
            base.geojson_layer(crit[(key == k).to_numpy()], name="spof", id_field="span_id",
                               style={"color": color, "weight": float(weight), "opacity": 0.95},
                               css_class="netgis-span-spof", fields=cols, aliases=labels,
                               tooltip_fields=["span_id", "cut_units"]).add_to(group)
        items += base.class_legend("line", IMPACT_COLORS, edges, "cut units {}")
        notes.append(f"worst {len(crit)} of {n_spof} critical spans")

    items += base.plant_nodes(m, n, CORE, color=CORE_COLOR, radius=8, label="Cores",
                              popup=CRIT_NODE_POPUP)
    weak = worst(n, "failure_units", "node_id", shown)
    if not weak.empty:
        n_weak = int((_impacts(n, "failure_units") > 0).sum())
        edges = list(node_edges) if node_edges is not None else impact_edges(
            weak["failure_units"], top)
        colors, _ = _classes(weak["failure_units"], edges)
        cols, labels = base.popup_columns(n, CRIT_NODE_POPUP)
        base.add_by_color(
            base.feature_group(m, f"Worst {len(weak)} of {n_weak} single-point-of-failure "
                               "nodes"), weak, colors,
            base_style={"color": "#000000", "weight": 1, "fillOpacity": 0.95},
            color_keys=("fillColor",), name="spof-nodes", id_field="node_id",
            css_class="netgis-node-spof", fields=cols, aliases=labels,
            tooltip_fields=["node_id", "failure_units"], point_radius=5,
        )
        items += base.class_legend("dot", IMPACT_COLORS, edges, "node failure units {}")
        notes.append(f"worst {len(weak)} of {n_weak} critical nodes")

    frames = [s, n]
    if scenario is not None:
        frames += _scenario_overlay(m, scenario, s, n, premises, scenario_area, scenario_area_crs,
                                    max_features=max_features, hex_resolution=hex_resolution)
        items += [base.LegendItem("line", SCENARIO_COLOR, "scenario: failed span / node"),
                  base.LegendItem("dot", LOST_COLOR, "scenario: premise off line")]
        notes.append(f"scenario: {scenario.premises} premises, "
                     f"{scenario.units} units lost")
    if top_control:
        TopControl(top).add_to(m)
        figure_of(m).header.add_child(Element(TopControl.css), name="netgis_top_css")
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
    """Failed spans and nodes (their own top pane), lost premises (the pane below it) and
    the area outline, in one overlay group."""
    CustomPane(LOST_PANE, z_index=LOST_Z).add_to(m)
    CustomPane(FAILED_PANE, z_index=FAILED_Z).add_to(m)
    group = base.feature_group(m, f"Scenario ({scenario.premises} premises lost)")
    drawn: list[gpd.GeoDataFrame] = []
    failed_spans = s[s["span_id"].isin(scenario.failed_spans)]
    if not failed_spans.empty:
        cols, labels = base.popup_columns(failed_spans, CRIT_SPAN_POPUP)
        base.geojson_layer(failed_spans, name="failed-spans", id_field="span_id",
                           style={"color": SCENARIO_COLOR, "weight": 9, "opacity": 1.0,
                                  "lineCap": "round"},
                           css_class="netgis-scenario-span", fields=cols,
                           aliases=labels, pane=FAILED_PANE).add_to(group)
        drawn.append(failed_spans)
    failed_nodes = n[n["node_id"].isin(scenario.failed_nodes)]
    if not failed_nodes.empty:
        cols, labels = base.popup_columns(failed_nodes, CRIT_NODE_POPUP)
        base.geojson_layer(failed_nodes, name="failed-nodes", id_field="node_id",
                           style={"color": SCENARIO_COLOR, "weight": 4, "fillColor": "#ffffff",
                                  "fillOpacity": 1.0},
                           css_class="netgis-scenario-node", fields=cols, aliases=labels,
                           point_radius=9, pane=FAILED_PANE).add_to(group)
        drawn.append(failed_nodes)
    lost_ids = scenario.premise_ids
    if premises is not None and lost_ids:
        base.require_columns(premises, "premises", ["premise_id"])
        lost = base.to_wgs84(premises[premises["premise_id"].isin(lost_ids)])
        if len(lost) > max_features:
            hexes = premise_hexes(lost.assign(passed=True), hex_resolution)
            base.geojson_layer(hexes, name="lost-hexes", id_field="h3_cell",
                               style={"color": LOST_RING, "fillColor": LOST_COLOR,
                                      "weight": 1, "fillOpacity": 0.6},
                               css_class="netgis-scenario-hex",
                               fields=["h3_cell", "premises", "units"],
                               pane=LOST_PANE).add_to(group)
        else:
            base.premise_points(group, lost, LOST_COLOR, "netgis-scenario-premise", name="lost",
                                radius=5, fill_opacity=1.0, outline=LOST_RING, pane=LOST_PANE)
        drawn.append(lost)
    if area is not None:
        outline = base.to_wgs84(gpd.GeoDataFrame({"layer": ["scenario area"]}, geometry=[area],
                                                 crs=area_crs))
        base.geojson_layer(outline, name="area", id_field=None, css_class="netgis-scenario-area",
                           style={"color": SCENARIO_COLOR, "weight": 2, "fillOpacity": 0.08,
                                  "dashArray": "4 4"}, fields=["layer"]).add_to(group)
        drawn.append(outline)
    return drawn

