"""BEAD map: each FCC location's BEAD class, and whether the plant reaches it.

The colour of a location is its class (:data:`CLASS_COLORS`: unserved, underserved,
served; docs/gaps.md gives the rules), its shape what the plant does for it
(:data:`PLANT_STYLES`): a filled dot when the plant passes it, a ring when a lit span is
within the reach but beyond the drop, a dashed ring beyond the reach. So the two answers
read apart, also without telling colours apart: the legend names both, and each dot's
tooltip and popup say them in words. Lit spans are drawn thin for orientation.

Examples
--------
>>> from netgis.engine.analysis import analyze
>>> from netgis.io import read_dataset
>>> from netgis.products.bead import bead
>>> r = analyze(read_dataset("data/sample.gpkg"))
>>> answer = bead(r.lit_spans, "data/bead/availability.csv", "data/bead/fabric.csv")
>>> type(bead_map(answer, spans=r.spans)).__name__
'Map'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Unpack

import folium
import geopandas as gpd
import numpy as np
from branca.element import Element
from jinja2 import Environment, FileSystemLoader, select_autoescape

from netgis.errors import Problem, ValidationError
from netgis.maps import _base as base
from netgis.maps.csp import content_security_policy
from netgis.maps.figure import accessible_page, figure_of
from netgis.products.bead import CLASSES, BeadResult

#: Colour of each BEAD class (a diverging scheme that colour-blind readers tell apart).
CLASS_COLORS = {"unserved": "#b2182b", "underserved": "#f4a582", "served": "#2166ac"}
#: How each plant answer is drawn: (legend shape, legend label, Leaflet path style, radius).
PLANT_STYLES: dict[str, tuple[str, str, dict[str, Any], float]] = {
    "passed": ("dot", "filled: the plant passes it",
               {"color": "#1d1d1d", "weight": 1.5, "fillOpacity": 0.95}, 6.0),
    "reachable": ("ring", "ring: not passed, a lit span within {reach} m",
                  {"weight": 3, "fillColor": "#ffffff", "fillOpacity": 0.9}, 6.0),
    "beyond": ("dashed", "dashed ring: no lit span within {reach} m",
               {"weight": 2, "dashArray": "3 3", "fillColor": "#ffffff", "fillOpacity": 0.6},
               5.0),
}
#: Popup rows of a location.
#: Lit spans, drawn thin and grey: orientation, not a class.
SPAN_COLOR = "#7f7f7f"
BEAD_POPUP = {"location_id": "location", "bead_class": "BEAD class", "plant": "plant",
              "distance_m": "lit span at m"}
_SWATCH_CSS = """<style>
.netgis-legend .sw.ring, .netgis-legend .sw.dashed { width: 10px; border-radius: 50%;
  border: 2px solid #1d1d1d; box-sizing: border-box; }
.netgis-legend .sw.dashed { border-style: dashed; }
</style>"""


def _frame(result: BeadResult) -> gpd.GeoDataFrame:
    """The classed locations with their points, in WGS84, unserved and passed first."""
    if result.positions is None or len(result.positions) != len(result.locations):
        raise ValidationError([Problem("map", None, "positions",
                                       "the BEAD result carries no point per location")])
    base.require_columns(result.locations, "locations",
                         ["location_id", "bead_class", "plant", "distance_m"])
    frame = gpd.GeoDataFrame(result.locations.reset_index(drop=True),
                             geometry=result.positions.to_numpy(), crs=result.positions.crs)
    # above the feature limit the first rows are drawn: those a planner looks at first
    rank = (frame["bead_class"].map({c: i for i, c in enumerate(CLASSES)}).to_numpy(float) * 3
            + frame["plant"].map({p: i for i, p in enumerate(PLANT_STYLES)}).to_numpy(float))
    order = np.lexsort((frame["location_id"].astype(str).to_numpy(), rank))
    return base.to_wgs84(frame.iloc[order].reset_index(drop=True))


def bead_map(
    result: BeadResult,
    *,
    spans: gpd.GeoDataFrame | None = None,
    **options: Unpack[base.MapOptions],
) -> folium.Map:
    """Each location of a BEAD join, coloured by class and shaped by what the plant does.

    Parameters
    ----------
    result
        :func:`netgis.products.bead.bead` or :func:`~netgis.products.bead.bead_join`
        (its ``positions`` give the points).
    spans
        ``result.spans`` of :func:`netgis.engine.analysis.analyze`; the lit ones are
        drawn thin for orientation when given.
    **options
        :class:`maps._base.MapOptions`. Above ``max_features`` locations the first are
        drawn, unserved before underserved before served, passed before reachable before
        beyond; the legend says how many were left out.

    Returns
    -------
    folium.Map
        One overlay per class (its locations, by plant answer), the lit spans and a
        legend of both the classes and the plant answers. Every location's path has
        the CSS classes ``netgis-bead``, ``netgis-bead-<class>`` and
        ``netgis-bead-<plant>``.
    """
    opts = base.Options.of(options)
    points = _frame(result)
    reach = f"{float(result.summary.get('reach_m', 0)):g}"
    m = opts.start()
    frames = [points]
    items: list[base.LegendItem] = []
    notes: list[str] = []
    if spans is not None:
        base.require_columns(spans, "spans", ["span_id", "lit"])
        lit = base.to_wgs84(spans[spans["lit"].fillna(False).to_numpy(bool)])
        if not lit.empty:
            base.span_layer(base.feature_group(m, f"Lit spans ({len(lit)})"), lit,
                            merge=len(lit) > opts.max_features, label="lit spans",
                            name="lit", css_class="netgis-span-lit",
                            style={"color": SPAN_COLOR, "weight": 1.5, "opacity": 0.6},
                            popup={"span_id": "span_id"})
            items.append(base.LegendItem("line", SPAN_COLOR, "lit span"))
            frames.append(lit)
    shown = base.first_rows(points, opts.max_features, notes, "locations",
                            "most in need of service")
    counts = points["bead_class"].value_counts()
    for name in CLASSES:
        color = CLASS_COLORS[name]
        items.append(base.LegendItem("dot", color, f"{name} ({int(counts.get(name, 0))})"))
        part = shown[shown["bead_class"] == name]
        if part.empty:
            continue
        group = base.feature_group(m, f"{name.capitalize()} ({len(part)})")
        for plant, (_, _, style, radius) in PLANT_STYLES.items():
            these = part[part["plant"] == plant]
            if these.empty:
                continue
            cols, labels = base.popup_columns(these, BEAD_POPUP)
            base.geojson_layer(
                these, name=f"bead-{name}-{plant}", id_field="location_id",
                style={"color": color, "fillColor": color, **style},
                css_class=f"netgis-bead netgis-bead-{name} netgis-bead-{plant}",
                fields=cols, aliases=labels, tooltip_fields=["location_id", "bead_class",
                                                             "plant"],
                point_radius=radius,
            ).add_to(group)
    items += [base.LegendItem(shape, "#1d1d1d" if shape == "dot" else "#ffffff",
                              label.format(reach=reach))
              for shape, label, _, _ in PLANT_STYLES.values()]
    figure_of(m).header.add_child(Element(_SWATCH_CSS), name="netgis_bead_swatches")
    accessible_page(m, "BEAD map: classes of FCC locations and what the plant does for them")
    return base.finish_map(m, frames, base.Legend("BEAD class and plant", items, notes))


_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
    trim_blocks=True, lstrip_blocks=True,
)


def upload_page(action: str, *, reach_m: float) -> tuple[str, str]:
    """The page that asks for the two files of a BEAD map and sends them to ``action``
    (a POST of ``multipart/form-data``), and its Content-Security-Policy (no script; the
    form may go to the page's own origin only).

    Examples
    --------
    >>> page, policy = upload_page("/maps/bead?reach_m=800", reach_m=800)
    >>> 'action="/maps/bead?reach_m=800"' in page, "form-action 'self'" in policy
    (True, True)
    """
    page = _ENV.get_template("bead_upload.html.j2").render(action=action,
                                                           reach_m=f"{float(reach_m):g}")
    return page, content_security_policy(page, forms=True)
