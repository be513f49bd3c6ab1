"""Read back what a map builder put into a folium.Map."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import folium
from branca.element import Element


def walk(element: Element) -> Iterator[Element]:
    """Every element below ``element`` (depth first, in render order)."""
    for child in element._children.values():
        yield child
        yield from walk(child)


def geojson_layers(m: folium.Map) -> list[folium.GeoJson]:
    return [e for e in walk(m) if isinstance(e, folium.GeoJson)]


def css_class(layer: folium.GeoJson) -> str:
    """The CSS class every path of ``layer`` gets (its style's className)."""
    style = layer.style_function(layer.data["features"][0])
    return str(style["className"])


def features_by_class(m: folium.Map) -> Counter[str]:
    """Number of GeoJSON features per CSS class in ``m``."""
    out: Counter[str] = Counter()
    for layer in geojson_layers(m):
        if layer.data["features"]:
            out[css_class(layer)] += len(layer.data["features"])
    return out


def properties(m: folium.Map, cls: str) -> list[dict[str, Any]]:
    """The properties of every feature with CSS class ``cls``."""
    return [f["properties"] | {"_id": f.get("id")} for layer in geojson_layers(m)
            if layer.data["features"] and css_class(layer) == cls
            for f in layer.data["features"]]


def overlay_names(m: folium.Map) -> list[str]:
    return [e.layer_name for e in walk(m) if isinstance(e, folium.FeatureGroup)]


def asset_urls(html: str) -> list[str]:
    """The URL of every <script src=...> and <link href=...> tag of a rendered page."""
    urls = re.findall(r'<(?:script[^>]*\ssrc|link[^>]*\shref)="([^"]*)"', html)
    return [u for u in urls if not u.startswith("data:")]
