"""Coverage map: which premises the lit plant passes, and the plant itself."""

from __future__ import annotations

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from maps._base import (
    DEFAULT_HEX_RESOLUTION,
    DEFAULT_MAX_FEATURES,
    Legend,
    LegendItem,
    add_by_color,
    check_options,
    color_bins,
    feature_group,
    finish_map,
    geojson_layer,
    hex_frame,
    merged_lines,
    popup_columns,
    require_columns,
    start_map,
    to_wgs84,
)
from netgis.gaps import h3_cells
from netgis.schema import CORE, LAYERS

PASSED_COLOR = "#1a9850"
NOT_PASSED_COLOR = "#d73027"
LIT_COLOR = "#2166ac"
UNLIT_COLOR = "#f4a582"
PLANNED_COLOR = "#8c8c8c"
CORE_COLOR = "#40004b"
CABINET_COLOR = "#35978f"
#: Coverage % classes of aggregated hexagons, red (none passed) to green (all passed).
COVERAGE_EDGES = (0.0, 25.0, 50.0, 75.0, 95.0, 100.001)
COVERAGE_COLORS = ("#d73027", "#fc8d59", "#fee08b", "#91cf60", "#1a9850")

PREMISE_POPUP = {
    "premise_id": "premise",
    "units": "units",
    "kind": "kind",
    "passed": "passed",
    "distance_m": "distance m",
    "served_span_id": "served span",
    "span_protected": "span protected",
    "node_protected": "node protected",
    "duct_protected": "duct protected",
    "connected": "connected",
    "address": "address",
}
SPAN_POPUP = {
    "span_id": "span",
    "status": "status",
    "lit": "lit",
    "from_node": "from",
    "to_node": "to",
    "length_m": "length m",
    "fiber_count": "fibers",
    "fibers_used": "fibers used",
    "cut_units": "cut units",
    "duct_id": "duct",
}
NODE_POPUP = {
    "node_id": "node",
    "kind": "kind",
    "status": "status",
    "name": "name",
    "failure_units": "failure units",
}


def premise_points(
    group: folium.FeatureGroup, premises: gpd.GeoDataFrame, color: str, css_class: str
) -> None:
    """Premises (WGS84) as circle markers with id tooltip and full popup."""
    cols, labels = popup_columns(premises, PREMISE_POPUP)
    geojson_layer(
        premises,
        name=css_class,
        id_field=LAYERS["premises"].id_field,
        style={"color": color, "fillColor": color, "fillOpacity": 0.85, "weight": 1},
        css_class=css_class,
        fields=cols,
        aliases=labels,
        point_radius=3.5,
    ).add_to(group)


def premise_hexes(premises: gpd.GeoDataFrame, resolution: int) -> gpd.GeoDataFrame:
    """Premises (WGS84) rolled up by H3 cell: premises, units, passed units, coverage %."""
    units = premises["units"].to_numpy(float) if "units" in premises else np.ones(len(premises))
    passed = premises["passed"].to_numpy(bool)
    table = (
        pd.DataFrame(
            {
                "h3_cell": h3_cells(premises.geometry, res=resolution),
                "premises": 1,
                "premises_passed": passed.astype(int),
                "units": units,
                "units_passed": np.where(passed, units, 0.0),
            }
        )
        .groupby("h3_cell", sort=True)
        .sum()
        .reset_index()
    )
    table["coverage_pct"] = (100.0 * table["units_passed"] / table["units"]).round(1)
    for col in ("units", "units_passed"):
        table[col] = table[col].astype(int)
    return hex_frame(table)


def span_lines(
    m: folium.Map,
    spans: gpd.GeoDataFrame,
    classes: list[tuple[str, str, np.ndarray, dict[str, object], bool]],
    *,
    max_features: int,
) -> list[str]:
    """Spans (WGS84) split into (label, css class, mask, style, show) groups.

    Above ``max_features`` spans each group is drawn as one merged line (no
    per-span popup); the notes returned say so for the legend.
    """
    notes = []
    merge = len(spans) > max_features
    cols, labels = popup_columns(spans, SPAN_POPUP)
    for label, css_class, mask, style, show in classes:
        part = spans[mask]
        if part.empty:
            continue
        group = feature_group(m, f"{label} ({len(part)})", show=show)
        if merge:
            geojson_layer(merged_lines(part, label), name=css_class, id_field=None, style=style,
                          css_class=css_class, fields=["layer", "features"]).add_to(group)
        else:
            geojson_layer(part, name=css_class, id_field=LAYERS["spans"].id_field, style=style,
                          css_class=css_class, fields=cols, aliases=labels).add_to(group)
    if merge:
        notes.append(f"{len(spans)} spans > {max_features}: drawn merged, no per-span popup")
    return notes


def coverage_map(
    premises: gpd.GeoDataFrame,
    spans: gpd.GeoDataFrame,
    nodes: gpd.GeoDataFrame,
    *,
    m: folium.Map | None = None,
    tiles_url: str | None = None,
    tiles_attribution: str = "",
    base_url: str = "/static",
    max_features: int = DEFAULT_MAX_FEATURES,
    hex_resolution: int = DEFAULT_HEX_RESOLUTION,
) -> folium.Map:
    """Premises passed / not passed, lit / unlit / planned spans, cores and cabinets.

    Parameters
    ----------
    premises, spans, nodes
        ``result.premises``, ``result.spans``, ``result.nodes`` of
        :func:`netgis.analysis.analyze` (any CRS; needs ``passed`` and ``lit``).
    m
        An existing map to draw on (its base map is kept); a new one by default.
    tiles_url
        XYZ tile URL of the base map (``{z}/{x}/{y}``); None draws no base map.
    tiles_attribution
        Attribution shown for the tiles.
    base_url
        Where the page finds the vendored assets (:func:`maps.static_dir`).
    max_features
        Above this many premises they are rolled up into H3 hexagons; above
        this many spans each span class is drawn as one merged line.
    hex_resolution
        H3 resolution of the premise hexagons.

    Returns
    -------
    folium.Map

    Examples
    --------
    >>> from netgis.analysis import analyze  # doctest: +SKIP
    >>> r = analyze(dataset)  # doctest: +SKIP
    >>> coverage_map(r.premises, r.spans, r.nodes).save("coverage.html")  # doctest: +SKIP
    """
    check_options(max_features, hex_resolution)
    require_columns(premises, "premises", ["premise_id", "passed"])
    require_columns(spans, "spans", ["span_id", "status", "lit"])
    require_columns(nodes, "nodes", ["node_id", "kind"])
    aggregate = len(premises) > max_features
    m = start_map(m, tiles_url=tiles_url, tiles_attribution=tiles_attribution, base_url=base_url,
                  prefer_canvas=aggregate or len(spans) > max_features)
    p = to_wgs84(premises)
    s = to_wgs84(spans)
    n = to_wgs84(nodes)

    notes: list[str] = []
    passed = p["passed"].fillna(False).to_numpy(bool)
    items: list[LegendItem] = [
        LegendItem("line", LIT_COLOR, "lit span"),
        LegendItem("line", UNLIT_COLOR, "unlit span"),
        LegendItem("line", PLANNED_COLOR, "planned span"),
    ]
    if aggregate:
        hexes = premise_hexes(p, hex_resolution)
        group = feature_group(m, f"Premises by H3 cell ({len(p)} premises)")
        cols = ["h3_cell", "premises", "premises_passed", "units", "units_passed", "coverage_pct"]
        add_by_color(
            group, hexes, color_bins(hexes["coverage_pct"], COVERAGE_EDGES, COVERAGE_COLORS),
            base_style={"weight": 0.5, "fillOpacity": 0.6}, color_keys=("color", "fillColor"),
            name="hexes", id_field="h3_cell", css_class="netgis-hex", fields=cols,
            tooltip_fields=["coverage_pct"],
        )
        items += [LegendItem("fill", c, f"units passed {lab}") for c, lab in
                  zip(COVERAGE_COLORS, ("< 25 %", "25-50 %", "50-75 %", "75-95 %", ">= 95 %"),
                      strict=True)]
        notes.append(f"{len(p)} premises > {max_features}: rolled up to H3 res {hex_resolution}")
    else:
        premise_points(feature_group(m, f"Premises passed ({int(passed.sum())})"),
                       p[passed], PASSED_COLOR, "netgis-premise-passed")
        premise_points(feature_group(m, f"Premises not passed ({int((~passed).sum())})"),
                       p[~passed], NOT_PASSED_COLOR, "netgis-premise-unpassed")
        items += [LegendItem("dot", PASSED_COLOR, "premise passed"),
                  LegendItem("dot", NOT_PASSED_COLOR, "premise not passed")]

    lit = s["lit"].fillna(False).to_numpy(bool)
    planned = (s["status"] == "planned").to_numpy()
    # drawn over the premises: the plant stays visible in dense streets
    notes += span_lines(
        m,
        s,
        [
            ("Lit spans", "netgis-span-lit", lit,
             {"color": LIT_COLOR, "weight": 3, "opacity": 0.9}, True),
            ("Unlit spans", "netgis-span-unlit", ~lit & ~planned,
             {"color": UNLIT_COLOR, "weight": 3, "opacity": 0.9, "dashArray": "6 4"}, True),
            ("Planned spans", "netgis-span-planned", planned & ~lit,
             {"color": PLANNED_COLOR, "weight": 2, "opacity": 0.9, "dashArray": "2 5"}, True),
        ],
        max_features=max_features,
    )

    cols, labels = popup_columns(n, NODE_POPUP)
    for kind, color, radius, label in ((CORE, CORE_COLOR, 8, "Cores"),
                                       ("cabinet", CABINET_COLOR, 6, "Cabinets")):
        part = n[n["kind"] == kind]
        if part.empty:
            continue
        geojson_layer(
            part, name=kind, id_field="node_id", css_class=f"netgis-{kind}",
            style={"color": "#ffffff", "weight": 2, "fillColor": color, "fillOpacity": 1.0},
            fields=cols, aliases=labels, point_radius=radius,
        ).add_to(feature_group(m, f"{label} ({len(part)})"))
        items.append(LegendItem("dot", color, label.lower()[:-1]))
    return finish_map(m, [p, s, n], Legend("Coverage", items, notes))
