"""Interactive Folium maps of a netgis analysis: GeoDataFrames in, ``folium.Map`` out.

Every builder takes the frames :func:`netgis.engine.analysis.analyze` returns (any
CRS), draws them with a legend, tooltips, popups and a layer control, fits
the view, and loads only assets netgis serves itself (:func:`static_dir`).
Large layers are rolled up into H3 hexagons so that a city of a million
premises still opens.

Examples
--------
>>> from netgis.engine.analysis import analyze
>>> from netgis.io import read_dataset
>>> from netgis.maps import coverage_map, inline_html
>>> r = analyze(read_dataset("tests/examples/ring_spur/dataset.gpkg"))
>>> html = inline_html(coverage_map(r.premises, r.spans, r.nodes))
>>> html.startswith("<!DOCTYPE html>")
True
"""

from __future__ import annotations

from netgis.maps.areas import areas_map
from netgis.maps.assets import inline_html, static_dir, use_local_assets
from netgis.maps.coverage import coverage_map
from netgis.maps.criticality import criticality_map
from netgis.maps.gaps import gaps_map
from netgis.maps.kinds import build_map, clip
from netgis.schema import DEFAULT_HEX_RESOLUTION, DEFAULT_MAX_FEATURES, MAP_KINDS

__all__ = [
    "DEFAULT_HEX_RESOLUTION",
    "DEFAULT_MAX_FEATURES",
    "MAP_KINDS",
    "areas_map",
    "build_map",
    "clip",
    "coverage_map",
    "criticality_map",
    "gaps_map",
    "inline_html",
    "static_dir",
    "use_local_assets",
]
