"""Areas map: choropleths of coverage % and protected % per area."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Unpack

import folium
import geopandas as gpd
import pandas as pd
import shapely
from branca.element import Element, MacroElement
from jinja2 import Template

from netgis.errors import ConfigError
from netgis.maps import _base as base
from netgis.maps.figure import figure_of

if TYPE_CHECKING:
    from netgis.engine.kpis import AreaKpis

#: Percentage classes, red (low) to green (high); null (no premises) is grey.
PCT_EDGES = (0.0, 25.0, 50.0, 75.0, 90.0, 100.001)
PCT_COLORS = ("#d7191c", "#fdae61", "#ffffbf", "#a6d96a", "#1a9641")
NULL_COLOR = "#bdbdbd"
PROTECTED_KPIS = ("span_protected_pct", "node_protected_pct", "duct_protected_pct")

AREA_POPUP = {
    "area_id": "area",
    "name": "name",
    "premises_total": "premises",
    "units_total": "units",
    "units_passed": "units passed",
    "coverage_pct": "coverage %",
    "take_rate_pct": "take rate %",
    "span_protected_pct": "span protected %",
    "node_protected_pct": "node protected %",
    "duct_protected_pct": "duct protected %",
    "cable_km": "cable km",
    "utilization_pct": "utilization %",
}


class AreaLabels(MacroElement):
    """One label per area (its name), written as text: a name is never parsed as HTML."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        {{ this.labels|tojson }}.forEach(function (d) {
            var div = document.createElement("div");
            div.className = "netgis-area-label";
            div.textContent = d.text;
            L.marker([d.lat, d.lng], {interactive: false, keyboard: false,
                icon: L.divIcon({html: div, className: "netgis-area-label-icon",
                                 iconSize: null})})
             .addTo({{ this._parent.get_name() }});
        });
        {% endmacro %}
        """
    )

    css = """<style>
    .netgis-area-label-icon { background: none; border: none; }
    .netgis-area-label { transform: translate(-50%, -50%); white-space: nowrap; font: bold 12px/1.2
      sans-serif; color: #1d1d1d; text-shadow: 0 0 3px #fff, 0 0 3px #fff, 0 0 2px #fff; }
    </style>"""

    def __init__(self, labels: list[dict[str, Any]]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "AreaLabels"
        self.labels = labels


def _area_labels(m: folium.Map, areas: gpd.GeoDataFrame) -> None:
    """Label each area (WGS84) at a point inside it with its name, else its area_id."""
    names = areas["name"] if "name" in areas.columns else pd.Series(None, index=areas.index)
    text = names.astype(object).where(names.notna() & (names.astype(str) != ""),
                                      areas["area_id"]).astype(str)
    pts = shapely.point_on_surface(areas.geometry.values)
    labels = [{"lat": round(float(y), 6), "lng": round(float(x), 6), "text": t}
              for x, y, t in zip(shapely.get_x(pts), shapely.get_y(pts), text, strict=True)]
    AreaLabels(labels).add_to(base.feature_group(m, f"Area names ({len(labels)})"))
    figure_of(m).header.add_child(Element(AreaLabels.css), name="netgis_area_label_css")


def _pct_colors(values: pd.Series) -> pd.Series:
    colors = base.color_bins(values.fillna(0.0), PCT_EDGES, PCT_COLORS)
    return colors.where(values.notna(), NULL_COLOR)


def areas_map(
    areas: gpd.GeoDataFrame,
    area_kpis: Sequence[AreaKpis] | pd.DataFrame,
    *,
    protected: str = "node_protected_pct",
    **options: Unpack[base.MapOptions],
) -> folium.Map:
    """Choropleth of coverage % (shown) and protected % (a second layer) per area.

    Parameters
    ----------
    areas
        The dataset's areas (``area_id``, ``name``, polygons; any CRS).
    area_kpis
        ``result.kpis["areas"]`` of :func:`netgis.engine.analysis.analyze` (a list of
        dicts keyed by ``area_id``) or the same as a DataFrame.
    protected
        Which protection to map: ``span_protected_pct``,
        ``node_protected_pct`` (default) or ``duct_protected_pct``.
    **options
        :class:`maps._base.MapOptions`. More areas than ``max_features`` are
        an error: a choropleth of more polygons than that does not open in a
        browser, map a coarser area layer.

    Returns
    -------
    folium.Map
        The coverage % layer (shown), the protected % layer (listed, hidden),
        and each area's name (else its id) as a label.

    Examples
    --------
    >>> from netgis.engine.analysis import analyze
    >>> from netgis.io import read_dataset
    >>> dataset = read_dataset("tests/examples/ring_spur/dataset.gpkg")
    >>> r = analyze(dataset)
    >>> type(areas_map(dataset.areas, r.kpis["areas"])).__name__
    'Map'
    """
    if protected not in PROTECTED_KPIS:
        raise ConfigError(f"protected must be one of {', '.join(PROTECTED_KPIS)}: {protected!r}")
    opts = base.Options.of(options)
    if len(areas) > opts.max_features:
        raise ConfigError(f"{len(areas)} areas > max_features={opts.max_features}")
    base.require_columns(areas, "areas", ["area_id"])
    kpis = pd.DataFrame(list(area_kpis)) if not isinstance(area_kpis, pd.DataFrame) else area_kpis
    if kpis.empty:
        kpis = pd.DataFrame(columns=["area_id", "coverage_pct", protected])
    base.require_columns(kpis, "areas", ["area_id", "coverage_pct", protected])
    m = opts.start()
    a = base.to_wgs84(areas)
    extra = [c for c in kpis.columns if c not in a.columns or c == "area_id"]
    joined = a.merge(kpis[extra], on="area_id", how="left")
    for col in [c for c in AREA_POPUP if c.endswith(("_pct", "_km"))]:
        if col in joined:
            joined[col] = pd.to_numeric(joined[col], errors="coerce").round(1)
    cols, labels = base.popup_columns(joined, AREA_POPUP)
    for kpi, title, show, css in (
        ("coverage_pct", "Coverage %", True, "netgis-area-coverage"),
        (protected, protected.removesuffix("_pct").replace("_", " ").capitalize() + " %",
         False, "netgis-area-protected"),
    ):
        if joined.empty:
            continue
        base.add_by_color(
            base.feature_group(m, f"{title} ({len(joined)} areas)", show=show), joined,
            _pct_colors(joined[kpi]),
            base_style={"color": "#333333", "weight": 1.5, "fillOpacity": 0.55},
            color_keys=("fillColor",), name=kpi, id_field="area_id", css_class=css,
            fields=cols, aliases=labels,
            tooltip_fields=[c for c in ("name", kpi) if c in cols],
        )
    if not joined.empty:
        _area_labels(m, joined)
    labels_pct = ("< 25 %", "25-50 %", "50-75 %", "75-90 %", ">= 90 %")
    items = [base.LegendItem("fill", c, lab) for c, lab in zip(PCT_COLORS, labels_pct, strict=True)]
    items.append(base.LegendItem("fill", NULL_COLOR, "no premises"))
    notes = ["Coverage % shown; switch to protected % in the layer list",
             "units weighted; protected = of passed units"]
    return base.finish_map(m, [a], base.Legend("Areas", items, notes))
