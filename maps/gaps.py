"""Gaps map: where the premises the plant does not pass are, and where to build first."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any, Unpack

import folium
import geopandas as gpd
import h3
import pandas as pd
import shapely
from branca.element import MacroElement
from jinja2 import Template

from netgis.maps import _base as base
from netgis.maps.coverage import LIT_COLOR, NOT_PASSED_COLOR
from netgis.maps.figure import figure_of
from netgis.products.gaps import rollup_h3
from netgis.schema import DEFAULT_H3_RES

#: Unserved-unit classes, light to dark.
GAP_COLORS = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
RANK_CSS = """<style>
.netgis-rank { background: #1d1d1d; color: #fff; border: 2px solid #fff; border-radius: 12px;
  font: bold 12px/20px sans-serif; text-align: center; width: 24px; height: 20px;
  box-shadow: 0 1px 3px rgba(0,0,0,0.5); }
</style>"""


def _rank_points(ranking: pd.DataFrame) -> gpd.GeoDataFrame:
    """One WGS84 point per ranked gap: from its geometry, or from its ``h3_cell``."""
    if isinstance(ranking, gpd.GeoDataFrame) and ranking.geometry.name in ranking:
        pts = base.to_wgs84(ranking)
        pts.geometry = shapely.point_on_surface(pts.geometry.values)
        return pts
    base.require_columns(ranking, "ranking", ["h3_cell"])
    lat_lng = [h3.cell_to_latlng(c) for c in ranking["h3_cell"]]
    geom = shapely.points([(lng, lat) for lat, lng in lat_lng])
    return gpd.GeoDataFrame(ranking.copy(), geometry=geom, crs=4326)


class RankLabels(MacroElement):
    """Numbered labels with a popup each, written as plain Leaflet (folium's Popup needs jQuery)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        {{ this.labels|tojson }}.forEach(function (d) {
            L.marker([d.lat, d.lng], {icon: L.divIcon({
                html: '<div class="netgis-rank">' + d.label + '</div>',
                className: "netgis-rank-icon", iconSize: [24, 20], iconAnchor: [12, 10]})})
             .bindTooltip("build rank " + d.label)
             .bindPopup(d.popup, {maxWidth: 320})
             .addTo({{ this._parent.get_name() }});
        });
        {% endmacro %}
        """
    )

    def __init__(self, labels: list[dict[str, Any]]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "RankLabels"
        self.labels = labels


def _cell_text(value: Any) -> str:
    return "" if value is None or value is pd.NA or value != value else html.escape(str(value))


def _rank_labels(m: folium.Map, ranking: pd.DataFrame, max_labels: int) -> gpd.GeoDataFrame:
    base.require_columns(ranking, "ranking", ["rank"])
    top = ranking.sort_values("rank").head(max_labels)
    pts = _rank_points(top)
    group = base.feature_group(m, f"Build ranking (top {len(pts)})")
    if isinstance(top, gpd.GeoDataFrame) and top.geometry.name in top:
        hulls = base.to_wgs84(top[top.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()])
        if not hulls.empty:
            # outlines only: a click inside a cluster still reaches the hexagon below
            base.geojson_layer(hulls, name="clusters", id_field=None,
                               css_class="netgis-gap-cluster",
                               style={"color": "#1d1d1d", "weight": 1.5, "dashArray": "5 4",
                                      "fill": False},
                               fields=[c for c in ("rank", "cluster_id", "place", "units",
                                                    "cost_per_unit")
                                       if c in hulls.columns]).add_to(group)
    figure_of(m).header.add_child(folium.Element(RANK_CSS), name="netgis_rank_css")
    fields = [c for c in pts.columns if c != pts.geometry.name]
    table = pd.DataFrame({c: (pts[c].round(2) if pd.api.types.is_float_dtype(pts[c]) else pts[c])
                          .map(_cell_text) for c in fields})
    rows = pd.Series("", index=pts.index)
    for c in fields:  # one pass per column, not per label
        rows = rows + f"<tr><th>{html.escape(str(c))}</th><td>" + table[c] + "</td></tr>"
    labels = [
        {"lat": float(y), "lng": float(x), "label": html.escape(str(rank)),
         "popup": f'<table class="netgis-rank-popup">{body}</table>'}
        for x, y, rank, body in zip(shapely.get_x(pts.geometry.values),
                                    shapely.get_y(pts.geometry.values), pts["rank"], rows,
                                    strict=True)
    ]
    RankLabels(labels).add_to(group)
    return pts


def gap_edges(premises: gpd.GeoDataFrame, resolution: int = DEFAULT_H3_RES) -> list[float]:
    """Class edges of units not passed per H3 cell over ``premises`` (a whole network).

    Passed to :func:`gaps_map` as ``unit_edges``, they give every view of the
    network the same legend.

    Examples
    --------
    >>> from netgis.engine.analysis import analyze
    >>> from netgis.io import read_dataset
    >>> dataset = read_dataset("tests/examples/ring_spur/dataset.gpkg")
    >>> gap_edges(analyze(dataset).premises)
    [1.0, 2.0]
    """
    base.require_columns(premises, "premises", ["premise_id", "passed", "units", "distance_m"])
    return base.nice_edges(rollup_h3(premises, h3_res=resolution)["units"], len(GAP_COLORS))


def _outline(m: folium.Map, outline: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The selected area drawn as a thick dashed outline (no fill: clicks reach the cells)."""
    area = base.to_wgs84(outline)
    fields = [c for c in ("area_id", "name") if c in area.columns]
    base.geojson_layer(area, name="selected-area", id_field=None, css_class="netgis-area-outline",
                       style={"color": "#08306b", "weight": 3, "dashArray": "10 6",
                              "fill": False},
                       fields=fields).add_to(base.feature_group(m, "Selected area"))
    return area


def gaps_map(
    premises: gpd.GeoDataFrame,
    *,
    spans: gpd.GeoDataFrame | None = None,
    ranking: pd.DataFrame | None = None,
    resolution: int = DEFAULT_H3_RES,
    max_rank_labels: int = 20,
    unit_edges: Sequence[float] | None = None,
    outline: gpd.GeoDataFrame | None = None,
    **options: Unpack[base.MapOptions],
) -> folium.Map:
    """H3 hexagons coloured by units not passed, with build-rank labels.

    Parameters
    ----------
    premises
        ``result.premises`` of :func:`netgis.engine.analysis.analyze` (``passed``,
        ``units``, ``distance_m``).
    spans
        ``result.spans``; lit spans are drawn thin for orientation when given.
    ranking
        Ranked gaps (e.g. build clusters): a ``rank`` column (1 = build first)
        and either a geometry (any CRS; labelled at a point on it) or an
        ``h3_cell`` column. Every other column shows in the label's popup.
    resolution
        H3 resolution of the hexagons (default 8, as the gap KPIs).
    max_rank_labels
        Label only the best ranks.
    unit_edges
        Class edges of units not passed per cell; by default those of the cells
        drawn. Pass :func:`gap_edges` of the whole network so that views of parts
        of it share one legend.
    outline
        Polygons (any CRS; e.g. the area the map is cut to) drawn as an outline.
    **options
        :class:`maps._base.MapOptions`. The premises not passed are drawn one
        by one (hidden at first) only up to ``max_features``, and at most
        ``max_features`` cells, those with most units.

    Returns
    -------
    folium.Map
        Gap hexagons by units not passed, lit spans, the premises not passed
        and the build-rank labels.

    Examples
    --------
    >>> from netgis.engine.analysis import analyze
    >>> from netgis.io import read_dataset
    >>> r = analyze(read_dataset("tests/examples/ring_spur/dataset.gpkg"))
    >>> type(gaps_map(r.premises, spans=r.spans)).__name__
    'Map'
    """
    opts = base.Options.of(options, resolution)
    max_features = opts.max_features
    base.require_columns(premises, "premises", ["premise_id", "passed"])
    m = opts.start()
    p = base.to_wgs84(premises)
    frames = [p]
    items: list[base.LegendItem] = []
    notes: list[str] = []
    if spans is not None:
        base.require_columns(spans, "spans", ["span_id", "lit"])
        lit = base.to_wgs84(spans[spans["lit"].fillna(False).to_numpy(bool)])
        if not lit.empty:
            base.span_layer(base.feature_group(m, f"Lit spans ({len(lit)})"), lit,
                            merge=len(lit) > max_features, label="lit spans", name="lit",
                            css_class="netgis-span-lit",
                            style={"color": LIT_COLOR, "weight": 2, "opacity": 0.7},
                            popup={"span_id": "span_id"})
            items.append(base.LegendItem("line", LIT_COLOR, "lit span"))
            frames.append(lit)

    base.require_columns(premises, "premises", ["units", "distance_m"])
    hexes = rollup_h3(premises, h3_res=resolution).sort_values("units", ascending=False)
    hexes = base.first_rows(base.round_coords(hexes), max_features, notes, "gap cells",
                            "with most units")
    if not hexes.empty:
        edges = (list(unit_edges) if unit_edges is not None
                 else base.nice_edges(hexes["units"], len(GAP_COLORS)))
        base.add_by_color(
            base.feature_group(m, f"Units not passed by H3 cell ({len(hexes)})"), hexes,
            base.color_bins(hexes["units"], edges, GAP_COLORS[-(len(edges) - 1):]),
            base_style={"color": "#7f2704", "weight": 0.7, "fillOpacity": 0.6},
            color_keys=("fillColor",), name="gap-hexes", id_field="h3_cell",
            css_class="netgis-gap-hex",
            fields=["h3_cell", "premises", "units", "min_distance_m", "median_distance_m"],
            aliases=["H3 cell", "premises not passed", "units not passed", "min distance m",
                     "median distance m"],
            tooltip_fields=["units"],
        )
        items += base.class_legend("fill", GAP_COLORS, edges, "{} units not passed")
    unpassed = p[~p["passed"].fillna(False).to_numpy(bool)]
    if 0 < len(unpassed) <= max_features:
        group = base.feature_group(m, f"Premises not passed ({len(unpassed)})")
        base.premise_points(group, unpassed, NOT_PASSED_COLOR, "netgis-premise-unpassed",
                            name="unpassed", radius=3)
        items.append(base.LegendItem("dot", NOT_PASSED_COLOR, "premise not passed"))
    if ranking is not None and len(ranking):
        frames.append(_rank_labels(m, ranking, max_rank_labels))
        items.append(base.LegendItem("dot", "#1d1d1d", "build rank (1 = first)"))
    if outline is not None and len(outline):
        frames.append(_outline(m, outline))
        items.append(base.LegendItem("line", "#08306b", "selected area"))
    return base.finish_map(m, frames, base.Legend("Gaps", items, notes))
