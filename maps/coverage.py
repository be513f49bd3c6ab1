"""Coverage map: which premises the lit plant passes, and the plant itself."""

from __future__ import annotations

from typing import Any, Unpack

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from netgis.maps import _base as base
from netgis.products.gaps import h3_cells
from netgis.products.tiles import THIN_BELOW_ZOOM
from netgis.schema import CORE, DEFAULT_HEX_RESOLUTION

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
#: A passed premise whose optical margin is below this many dB is drawn as "tight".
TIGHT_MARGIN_DB = 3.0
TIGHT_COLOR = "#fdae61"
OUT_OF_BUDGET_COLOR = "#7b3294"
#: The coverage popup adds the optical reach and where its loss goes.
COVERAGE_POPUP = {**base.PREMISE_POPUP, "loss_db": "optical loss dB", "margin_db": "margin dB",
                  "in_budget": "in budget", "loss_fiber_km": "loss: fiber km",
                  "loss_splitter_db": "loss: splitters dB", "loss_splice_db": "loss: splices dB"}


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
    return base.hex_frame(table)


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
    merge = len(spans) > max_features
    for label, css_class, mask, style, show in classes:
        part = spans[mask]
        if not part.empty:
            group = base.feature_group(m, f"{label} ({len(part)})", show=show)
            base.span_layer(group, part, merge=merge, label=label, name=css_class,
                            css_class=css_class, style=style, popup=base.SPAN_POPUP)
    if merge:
        return [f"{len(spans)} spans > {max_features}: drawn merged, no per-span popup"]
    return []


#: Premises drawn as dots: radius and fill of every class.
_DOT = {"radius": 3.5, "weight": 1, "fill": True, "fillOpacity": 0.85}


def _dot_class(color: str, css_class: str, label: str, **match: Any) -> base.TileClass:
    style = {**_DOT, "color": color, "fillColor": color, "className": css_class}
    return base.TileClass(style, base.LegendItem("dot", color, label), **match)


def premise_classes(with_margin: bool) -> list[base.TileClass]:
    """The premise classes of the coverage map, first match wins: passed premises by optical
    margin (``with_margin``: when the analysis has it), then the unpassed."""
    if with_margin:
        classes = [
            _dot_class(PASSED_COLOR, "netgis-premise-passed",
                       f"passed, in budget (margin {TIGHT_MARGIN_DB:g} dB or more)",
                       equal={"passed": True}, at_least={"margin_db": TIGHT_MARGIN_DB}),
            _dot_class(TIGHT_COLOR, "netgis-premise-tight",
                       f"passed, tight (margin under {TIGHT_MARGIN_DB:g} dB)",
                       equal={"passed": True}, at_least={"margin_db": 0.0},
                       below={"margin_db": TIGHT_MARGIN_DB}),
            _dot_class(OUT_OF_BUDGET_COLOR, "netgis-premise-out-of-budget",
                       "passed, out of optical budget", equal={"passed": True}),
        ]
    else:
        classes = [_dot_class(PASSED_COLOR, "netgis-premise-passed", "passed",
                              equal={"passed": True})]
    classes.append(_dot_class(NOT_PASSED_COLOR, "netgis-premise-unpassed", "not passed"))
    return classes


def span_classes() -> list[base.TileClass]:
    """The span classes of the coverage map, first match wins: lit, planned, unlit."""
    def line(color: str, css_class: str, label: str, dash: str | None, weight: float,
             **match: Any) -> base.TileClass:
        style: dict[str, Any] = {"color": color, "weight": weight, "opacity": 0.9,
                                 "className": css_class}
        if dash:
            style["dashArray"] = dash
        return base.TileClass(style, base.LegendItem("line", color, label), **match)

    return [line(LIT_COLOR, "netgis-span-lit", "lit span", None, 3, equal={"lit": True}),
            line(PLANNED_COLOR, "netgis-span-planned", "planned span", "2 5", 2,
                 equal={"status": "planned"}),
            line(UNLIT_COLOR, "netgis-span-unlit", "unlit span", "6 4", 3)]


def _premise_classes(m: folium.Map, p: gpd.GeoDataFrame) -> list[base.LegendItem]:
    """Passed premises by optical margin (when the analysis has it), then the unpassed."""
    classes = premise_classes("margin_db" in p.columns)
    items = []
    for cls, mask in zip(classes, base.class_masks(p, classes), strict=True):
        count = int(mask.sum())
        base.premise_points(base.feature_group(m, f"Premises {cls.legend.label} ({count})"),
                            p[mask], cls.legend.color, cls.style["className"],
                            popup=COVERAGE_POPUP)
        items.append(cls.legend)
    return items


def _premise_tiles(m: folium.Map, opts: base.Options, p: gpd.GeoDataFrame
                   ) -> list[base.LegendItem]:
    """Every premise from the server's vector tiles from zoom :data:`THIN_BELOW_ZOOM` up, in
    the classes of :func:`premise_classes` (below it the tiles are thinned: the page shows
    its H3 roll-up there instead)."""
    group = base.feature_group(m, f"Premises ({len(p)}, from zoom {THIN_BELOW_ZOOM})")
    return base.vector_tile_layer(m, opts, group, "premises", "premise_id",
                                  premise_classes("margin_db" in p.columns), COVERAGE_POPUP,
                                  min_zoom=THIN_BELOW_ZOOM)


def coverage_map(
    premises: gpd.GeoDataFrame,
    spans: gpd.GeoDataFrame,
    nodes: gpd.GeoDataFrame,
    *,
    hex_resolution: int = DEFAULT_HEX_RESOLUTION,
    trace_url: str | None = None,
    splices_url: str | None = None,
    **options: Unpack[base.MapOptions],
) -> folium.Map:
    """Premises passed / not passed, lit / unlit / planned spans, cores and cabinets.

    Parameters
    ----------
    premises, spans, nodes
        ``result.premises``, ``result.spans``, ``result.nodes`` of
        :func:`netgis.engine.analysis.analyze` (any CRS; needs ``passed`` and ``lit``).
    hex_resolution
        H3 resolution of the premise hexagons.
    trace_url, splices_url
        A server's strand endpoints (docs/strands.md): with ``trace_url`` a premise's
        popup gets a "Trace to OLT" action drawing its path (:mod:`maps.trace`), and with
        ``splices_url`` a node's popup a link to ``splices_url`` + its id. None (the
        default, a page without a server to ask) draws neither.
    **options
        :class:`maps._base.MapOptions`. Above ``max_features`` premises they
        are rolled up into H3 hexagons; above ``max_features`` spans each span
        class is drawn as one merged line.

    Returns
    -------
    folium.Map
        Two premise overlays (or one of hexagons), three span classes, cores
        and cabinets.

    Examples
    --------
    >>> from netgis.engine.analysis import analyze
    >>> from netgis.io import read_dataset
    >>> dataset = read_dataset("tests/examples/ring_spur/dataset.gpkg")
    >>> r = analyze(dataset)
    >>> type(coverage_map(r.premises, r.spans, r.nodes)).__name__
    'Map'
    """
    opts = base.Options.of(options, hex_resolution)
    max_features = opts.max_features
    base.require_columns(premises, "premises", ["premise_id", "passed"])
    base.require_columns(spans, "spans", ["span_id", "status", "lit"])
    base.require_columns(nodes, "nodes", ["node_id", "kind"])
    aggregate = len(premises) > max_features
    # a canvas for big GeoJSON layers; none with vector tiles (it would take their clicks)
    m = opts.start(prefer_canvas=not opts.vector_tiles
                   and (aggregate or len(spans) > max_features))
    p = base.to_wgs84(premises)
    s = base.to_wgs84(spans)
    n = base.to_wgs84(nodes)

    notes: list[str] = []
    items: list[base.LegendItem] = [
        base.LegendItem("line", LIT_COLOR, "lit span"),
        base.LegendItem("line", UNLIT_COLOR, "unlit span"),
        base.LegendItem("line", PLANNED_COLOR, "planned span"),
    ]
    if aggregate:
        hexes = premise_hexes(p, hex_resolution)
        group = base.feature_group(m, f"Premises by H3 cell ({len(p)} premises)")
        cols = ["h3_cell", "premises", "premises_passed", "units", "units_passed", "coverage_pct"]
        base.add_by_color(
            group, hexes, base.color_bins(hexes["coverage_pct"], COVERAGE_EDGES, COVERAGE_COLORS),
            base_style={"weight": 0.5, "fillOpacity": 0.6}, color_keys=("color", "fillColor"),
            name="hexes", id_field="h3_cell", css_class="netgis-hex", fields=cols,
            tooltip_fields=["coverage_pct"],
        )
        items += [base.LegendItem("fill", c, f"units passed {lab}") for c, lab in
                  zip(COVERAGE_COLORS, ("< 25 %", "25-50 %", "50-75 %", "75-95 %", ">= 95 %"),
                      strict=True)]
        if opts.vector_tiles:
            base.BelowZoom(group, THIN_BELOW_ZOOM).add_to(m)
            items += _premise_tiles(m, opts, p)
            notes.append(f"{len(p)} premises > {max_features}: rolled up to H3 res "
                         f"{hex_resolution} below zoom {THIN_BELOW_ZOOM}, every premise from "
                         "vector tiles from there")
        else:
            notes.append(f"{len(p)} premises > {max_features}: rolled up to H3 res "
                         f"{hex_resolution}")
    else:
        items += _premise_classes(m, p)

    # drawn over the premises: the plant stays visible in dense streets
    classes = span_classes()
    if len(s) > max_features and opts.vector_tiles:
        group = base.feature_group(m, f"Spans ({len(s)}, vector tiles)")
        base.vector_tile_layer(m, opts, group, "spans", "span_id", classes, base.SPAN_POPUP)
        notes.append(f"{len(s)} spans > {max_features}: drawn from vector tiles")
    else:
        overlays = {"netgis-span-lit": "Lit spans", "netgis-span-planned": "Planned spans",
                    "netgis-span-unlit": "Unlit spans"}
        groups = [(overlays[c.style["className"]], c.style["className"], mask, c.style, True)
                  for c, mask in zip(classes, base.class_masks(s, classes), strict=True)]
        # the overlays in their usual order: lit, unlit, planned
        notes += span_lines(m, s, [groups[0], groups[2], groups[1]], max_features=max_features)

    items += base.plant_nodes(m, n, CORE, color=CORE_COLOR, radius=8, label="Cores",
                              popup=base.NODE_POPUP)
    items += base.plant_nodes(m, n, "cabinet", color=CABINET_COLOR, radius=6, label="Cabinets",
                              popup=base.NODE_POPUP)
    if trace_url is not None:
        from netgis.maps.trace import add_trace_action

        add_trace_action(m, trace_url=trace_url, splices_url=splices_url,
                         base_url=opts.base_url)
        notes.append("a premise's popup: Trace to OLT draws its path")
    return base.finish_map(m, [p, s, n], base.Legend("Coverage", items, notes))
