"""Pieces every map builder shares: the map itself, GeoJSON layers, legend, H3 roll-ups."""

from __future__ import annotations

import html
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar, cast

import folium
import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, MacroElement
from folium.template import Template as FoliumTemplate
from jinja2 import Template

from netgis.errors import ConfigError, Problem, ValidationError
from netgis.maps.assets import use_local_assets, use_vector_grid
from netgis.maps.basemap import (
    BASEMAP_SCRIPTS,
    STREET_STYLE,
    STREETS_PANE,
    STREETS_PANE_Z,
    Basemap,
    add_basemap,
    street_frame,
)
from netgis.maps.figure import figure_of
from netgis.schema import DEFAULT_HEX_RESOLUTION, DEFAULT_MAX_FEATURES

if TYPE_CHECKING:
    from shapely import MultiLineString

#: Coordinates are rounded to 1e-6 degree (~0.1 m): invisible on screen, half the HTML.
_DECIMALS = 6

Style = dict[str, Any]
FrameT = TypeVar("FrameT", bound=pd.DataFrame)


@dataclass(frozen=True)
class LegendItem:
    """One legend row: a swatch of ``shape`` (``line``, ``dot``, ``fill``) and a label."""

    shape: str
    color: str
    label: str


def require_columns(frame: pd.DataFrame, layer: str, columns: Sequence[str]) -> None:
    """Raise a ValidationError naming every column of ``columns`` that ``frame`` lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValidationError(
            [
                Problem(layer, None, c,
                        "missing: pass the output of netgis.engine.analysis.analyze")
                for c in missing
            ]
        )


def to_wgs84(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` in EPSG:4326 with coordinates rounded for display."""
    if frame.crs is None:
        raise ValidationError([Problem("map", None, "geometry", "layer has no CRS")])
    out = frame.to_crs(4326) if not frame.crs.equals("EPSG:4326") else frame.copy()
    return round_coords(out)


def round_coords(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` (EPSG:4326, modified in place) with coordinates rounded for display."""
    frame.geometry = shapely.transform(frame.geometry.values, lambda xy: np.round(xy, _DECIMALS))
    return frame


class MapOptions(TypedDict, total=False):
    """The keyword options every builder takes.

    Attributes
    ----------
    m
        An existing map to draw on (its base map is kept); a new one by default.
    basemap
        The base map a netgis server serves (:class:`maps.basemap.Basemap`,
        ``NETGIS_BASEMAP``); it wins over ``tiles_url``. None by default.
    tiles_url
        XYZ tile URL of the base map (``{z}/{x}/{y}``); None (default) draws no base map.
    tiles_attribution
        Attribution shown for the tiles.
    streets
        The dataset's optional ``streets`` layer (lines, an optional ``name``), drawn
        thinly under the plant with the names as tooltips when the map has no base map
        (neither ``basemap`` nor ``tiles_url``); None (default) draws none.
    base_url
        Where the page finds the vendored assets (:func:`maps.static_dir`),
        ``/static`` by default.
    max_features
        Above this many features a layer is rolled up into H3 hexagons, merged
        into one line or cut to its worst items (each builder says which);
        :data:`DEFAULT_MAX_FEATURES` by default.
    vector_tiles
        URL template of the server's vector tiles of a layer, with ``{layer}``,
        ``{z}``, ``{x}`` and ``{y}`` (e.g. ``/tiles/{layer}/{z}/{x}/{y}.mvt``).
        When given, a layer above ``max_features`` is drawn from these tiles
        (every feature at street zoom) instead of being rolled up; None (the
        default, a self-contained page) rolls it up.
    """

    m: folium.Map | None
    basemap: Basemap | None
    tiles_url: str | None
    tiles_attribution: str
    streets: gpd.GeoDataFrame | None
    base_url: str
    max_features: int
    vector_tiles: str | None


@dataclass(frozen=True)
class Options:
    """:class:`MapOptions` checked and with their defaults filled in."""

    m: folium.Map | None = None
    basemap: Basemap | None = None
    tiles_url: str | None = None
    tiles_attribution: str = ""
    streets: gpd.GeoDataFrame | None = None
    base_url: str = "/static"
    max_features: int = DEFAULT_MAX_FEATURES
    vector_tiles: str | None = None

    @classmethod
    def of(cls, options: MapOptions, hex_resolution: int = DEFAULT_HEX_RESOLUTION) -> Options:
        """Check ``options`` (and an H3 resolution); TypeError for an unknown name.

        Examples
        --------
        >>> Options.of({"max_features": 10}).max_features
        10
        """
        unknown = sorted(set(options) - set(MapOptions.__annotations__))
        if unknown:
            raise TypeError(f"unexpected keyword argument(s): {', '.join(unknown)}")
        out = cls(**options)
        check_options(out.max_features, hex_resolution)
        return out

    def start(self, *, prefer_canvas: bool = False) -> folium.Map:
        """The map to draw on (see :func:`start_map`)."""
        return start_map(self.m, tiles_url=self.tiles_url,
                         tiles_attribution=self.tiles_attribution, base_url=self.base_url,
                         prefer_canvas=prefer_canvas, basemap=self.basemap,
                         streets=self.streets, max_features=self.max_features)


def start_map(
    m: folium.Map | None,
    *,
    tiles_url: str | None,
    tiles_attribution: str,
    base_url: str,
    prefer_canvas: bool = False,
    basemap: Basemap | None = None,
    streets: gpd.GeoDataFrame | None = None,
    max_features: int = DEFAULT_MAX_FEATURES,
) -> folium.Map:
    """A new map (or ``m``) with the base map chosen and local assets.

    The base map is ``basemap`` (a netgis server's), else ``tiles_url``; without either,
    ``streets`` are drawn (see :func:`street_lines`). A map given as ``m`` keeps what it has.
    """
    new = m is None
    if m is None:
        m = folium.Map(tiles=None, prefer_canvas=prefer_canvas, control_scale=True)
    # the scripts of a base map drawn before on a given map stay (the list is reset below)
    kept = [] if new else [js for js in m.default_js if js[0] in BASEMAP_SCRIPTS]
    # an inline icon: otherwise the browser asks the server for /favicon.ico
    figure_of(m).header.add_child(Element('<link rel="icon" href="data:,">'),
                                  name="netgis_favicon")
    m = use_local_assets(m, base_url=base_url)
    m.default_js = [*m.default_js, *kept]
    if not new:
        return m
    if basemap is not None:
        add_basemap(m, basemap, base_url=base_url)
    elif tiles_url:
        folium.TileLayer(
            tiles=tiles_url,
            attr=tiles_attribution or "base map",
            name="Base map",
            overlay=False,
            control=True,
            max_zoom=22,
            max_native_zoom=19,
        ).add_to(m)
    elif streets is not None and len(streets):
        street_lines(m, streets, max_features=max_features)
    return m


def street_lines(m: folium.Map, streets: gpd.GeoDataFrame, *, max_features: int) -> None:
    """The dataset's streets (any CRS) as white lines in their own pane under the plant,
    each street's ``name`` in its tooltip (merged per name, then into one line, above
    ``max_features``: :func:`maps.basemap.street_frame`); listed in the layer control."""
    folium.map.CustomPane(STREETS_PANE, z_index=STREETS_PANE_Z).add_to(m)
    lines = street_frame(to_wgs84(streets[["name", "geometry"]]), max_features)
    group = feature_group(m, f"Streets ({len(streets)})")
    geojson_layer(lines, name="streets", id_field=None, style=STREET_STYLE,
                  css_class="netgis-street", fields=["name"], aliases=["street"],
                  pane=STREETS_PANE, popup=False).add_to(group)


def check_options(max_features: int, hex_resolution: int) -> None:
    """Raise ConfigError for a feature cap or H3 resolution that cannot work."""
    if max_features < 1:
        raise ConfigError(f"max_features must be >= 1, got {max_features}")
    if not 0 <= hex_resolution <= 15:
        raise ConfigError(f"hex_resolution must be 0..15, got {hex_resolution}")


def _jsonable(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Columns GeoJSON can carry: numpy scalars and NaN become plain values and null."""
    out = frame.copy()
    for col in out.columns:
        if col == "geometry":
            continue
        s = out[col]
        if pd.api.types.is_float_dtype(s):
            out[col] = s.round(2)
        elif not (pd.api.types.is_bool_dtype(s) or pd.api.types.is_integer_dtype(s)):
            out[col] = s.astype(object).where(s.notna(), None)
    return out


def feature_collection(frame: gpd.GeoDataFrame, id_field: str | None) -> dict[str, Any]:
    """GeoJSON of ``frame`` (EPSG:4326); feature ids from ``id_field`` when given."""
    data = _jsonable(frame)
    if id_field is not None:
        data = data.set_index(data[id_field].astype(str))
        data.index.name = None
    fc: dict[str, Any] = json.loads(data.to_json(drop_id=id_field is None))
    if id_field is None:
        for i, feat in enumerate(fc["features"]):
            feat["id"] = str(i)
    return fc


#: The body of a popup / tooltip of GeoJSON properties, built from DOM text nodes.
#:
#: folium's GeoJsonPopup / GeoJsonTooltip join the property values into an HTML
#: string and assign it to ``innerHTML``: a name such as ``<img src=x onerror=...>``
#: runs as script. Here every label and value goes in through ``textContent``, so
#: data is always shown as the text it is (same table, same CSS class, same
#: number formatting as folium's).
_SAFE_DETAIL = """function (layer) {
    var div = L.DomUtil.create("div");
    var fields = {{ this.fields|tojson }};
    var aliases = {{ this.aliases|tojson }};
    var text = function (value) {
        if (value === null || value === undefined) { return ""; }
        if (typeof value === "object") { return JSON.stringify(value); }
        return {% if this.localize %}value.toLocaleString(){% else %}String(value){% endif %};
    };
    var table = L.DomUtil.create("table", "", div);
    fields.forEach(function (field, i) {
        var row = L.DomUtil.create("tr", "", table);
        {%- if this.labels %}
        L.DomUtil.create("th", "", row).textContent = String(aliases[i]);
        {%- endif %}
        L.DomUtil.create("td", "", row).textContent = text(layer.feature.properties[field]);
    });
    return div;
}"""


class SafeGeoJsonPopup(folium.GeoJsonPopup):
    """folium's GeoJsonPopup with values shown as text, never parsed as HTML."""

    _template = FoliumTemplate(
        "{% macro script(this, kwargs) %}\n{{ this._parent.get_name() }}.bindPopup("
        + _SAFE_DETAIL + ", {{ this.popup_options|tojavascript }});\n{% endmacro %}"
    )


class SafeGeoJsonTooltip(folium.GeoJsonTooltip):
    """folium's GeoJsonTooltip with values shown as text, never parsed as HTML."""

    _template = FoliumTemplate(
        "{% macro script(this, kwargs) %}\n{{ this._parent.get_name() }}.bindTooltip("
        + _SAFE_DETAIL + ", {{ this.tooltip_options|tojavascript }});\n{% endmacro %}"
    )


def geojson_layer(
    frame: gpd.GeoDataFrame,
    *,
    name: str,
    id_field: str | None,
    style: Style,
    css_class: str,
    fields: Sequence[str] = (),
    aliases: Sequence[str] | None = None,
    tooltip_fields: Sequence[str] | None = None,
    point_radius: float | None = None,
    pane: str | None = None,
    popup: bool = True,
) -> folium.GeoJson:
    """One GeoJSON layer drawn in one style, with tooltip and popup over ``fields``
    (no popup when ``popup`` is false).

    Every path gets the CSS class ``css_class`` (Leaflet's ``className``), which
    is how tests and users find the features of a layer in the page. ``pane``
    names a map pane (:class:`folium.map.CustomPane`) to draw it in, above or
    below Leaflet's overlay pane.
    """
    cols = [c for c in fields if c in frame.columns]
    keep = gpd.GeoDataFrame(frame[[*cols, "geometry"]], geometry="geometry", crs=frame.crs)
    fc = feature_collection(keep, id_field)
    full_style = {**style, "className": css_class}
    labels = list(aliases) if aliases is not None else list(cols)
    label_of = dict(zip(fields, labels, strict=False))
    tip_cols = [c for c in (tooltip_fields or cols[:1]) if c in cols]
    kwargs: dict[str, Any] = {}
    if cols and len(keep) and popup:  # folium checks the fields against the first feature
        kwargs["popup"] = SafeGeoJsonPopup(
            fields=cols, aliases=[label_of.get(c, c) for c in cols], localize=True
        )
    if cols and len(keep):
        kwargs["tooltip"] = SafeGeoJsonTooltip(
            fields=tip_cols, aliases=[label_of.get(c, c) for c in tip_cols], sticky=False
        )
    if pane is not None:
        kwargs["pane"] = pane  # lines and polygons take the GeoJSON layer's options
    if point_radius is not None:
        marker = folium.CircleMarker(radius=point_radius, **_marker_style(full_style))
        if pane is not None:
            marker.options["pane"] = pane  # folium's path options drop the name
        kwargs["marker"] = marker
    return folium.GeoJson(
        fc,
        name=name,
        style_function=lambda _feature: full_style,
        control=False,
        zoom_on_click=False,
        **kwargs,
    )


@dataclass(frozen=True)
class TileClass:
    """One style class of a vector-tile layer: the features whose properties match, how they
    are drawn (Leaflet path options, with ``className``), and their legend row.

    A feature matches when each ``equal`` property has that value and each ``at_least`` /
    ``below`` property is a number in that range; the first matching class wins.
    """

    style: Style
    legend: LegendItem
    equal: Mapping[str, Any] = field(default_factory=dict)
    at_least: Mapping[str, float] = field(default_factory=dict)
    below: Mapping[str, float] = field(default_factory=dict)

    def rule(self) -> dict[str, Any]:
        """The class as the page's style function reads it."""
        return {"equal": dict(self.equal), "at_least": dict(self.at_least),
                "below": dict(self.below), "style": self.style}

    def matches(self, frame: pd.DataFrame) -> np.ndarray:
        """Which rows of ``frame`` match, as the page decides it (a missing column: none)."""
        out = np.ones(len(frame), dtype=bool)
        for name, value in self.equal.items():
            col = frame[name] if name in frame.columns else pd.Series(pd.NA, index=frame.index)
            out &= (col == value).fillna(False).to_numpy(bool)
        for name, lo in self.at_least.items():
            out &= _numbers(frame, name) >= lo
        for name, hi in self.below.items():
            out &= _numbers(frame, name) < hi
        return out


def _numbers(frame: pd.DataFrame, name: str) -> np.ndarray:
    """Column ``name`` as floats (NaN where missing: no comparison holds)."""
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return frame[name].to_numpy(dtype=float, na_value=np.nan)


def class_masks(frame: pd.DataFrame, classes: Sequence[TileClass]) -> list[np.ndarray]:
    """Each row in the first of ``classes`` it matches (one mask per class)."""
    left = np.ones(len(frame), dtype=bool)
    masks = []
    for c in classes:
        mask = left & c.matches(frame)
        left &= ~mask
        masks.append(mask)
    return masks


class VectorTileLayer(MacroElement):
    """A layer drawn from the server's vector tiles (Leaflet.VectorGrid, vendored, SVG).

    Each feature is styled by the first of ``classes`` its tile properties
    match (features matching none are not drawn); a click opens a popup of
    ``popup`` rows built from DOM text nodes (values are never parsed as HTML).
    The layer object is ``window[<name>]`` and keeps the features of its
    loaded tiles by id (VectorGrid's ``getFeatureId``), for tools and tests.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = (function () {
            var rules = {{ this.rules|tojson }};
            var fields = {{ this.fields|tojson }};
            var labels = {{ this.labels|tojson }};
            var idField = {{ this.id_field|tojson }};
            var number = function (v) { return typeof v === "number" && isFinite(v); };
            var matches = function (rule, p) {
                var k;
                for (k in rule.equal) {
                    if (p[k] !== rule.equal[k]) { return false; }
                }
                for (k in rule.at_least) {
                    if (!number(p[k]) || p[k] < rule.at_least[k]) { return false; }
                }
                for (k in rule.below) {
                    if (!number(p[k]) || p[k] >= rule.below[k]) { return false; }
                }
                return true;
            };
            var styles = {};
            styles[{{ this.layer|tojson }}] = function (p) {
                for (var i = 0; i < rules.length; i++) {
                    if (matches(rules[i], p)) { return rules[i].style; }
                }
                return [];
            };
            var grid = L.vectorGrid.protobuf({{ this.url|tojson }}, {
                rendererFactory: L.svg.tile,
                vectorTileLayerStyles: styles,
                interactive: true,
                minZoom: {{ this.min_zoom }},
                maxNativeZoom: {{ this.max_zoom }},
                maxZoom: {{ this.max_zoom }},
                getFeatureId: function (f) { return f.properties[idField]; }
            });
            // Leaflet 1.9 places an event on a small circle by its getLatLng(), which a
            // tile's point (VectorGrid 1.3) inherits without having a position: the event
            // is placed at the mouse instead
            var createLayer = grid._createLayer;
            grid._createLayer = function (feat, pxPerExtent) {
                var featureLayer = createLayer.call(this, feat, pxPerExtent);
                featureLayer.getLatLng = undefined;
                return featureLayer;
            };
            grid.on("click", function (e) {
                var p = e.layer.properties || {};
                var div = L.DomUtil.create("div");
                var table = L.DomUtil.create("table", "", div);
                fields.forEach(function (name, i) {
                    var v = p[name];
                    if (v === undefined || v === null) { return; }
                    var row = L.DomUtil.create("tr", "", table);
                    L.DomUtil.create("th", "", row).textContent = String(labels[i]);
                    L.DomUtil.create("td", "", row).textContent =
                        typeof v === "number" ? v.toLocaleString() : String(v);
                });
                // a tile's SVG events carry no position: the map reads it from the mouse
                var at = e.latlng || grid._map.mouseEventToLatLng(e.originalEvent);
                // the feature's properties go with the popup (for actions added on open)
                L.popup({netgisProperties: p}).setLatLng(at).setContent(div).openOn(grid._map);
            });
            grid.addTo({{ this._parent.get_name() }});
            return grid;
        })();
        {% endmacro %}
        """
    )

    def __init__(self, url: str, layer: str, id_field: str, classes: Sequence[TileClass],
                 popup: Mapping[str, str], min_zoom: int = 0, max_zoom: int = 22) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "VectorTileLayer"
        self.url = url.replace("{layer}", layer)
        self.layer = layer
        self.id_field = id_field
        self.rules = [c.rule() for c in classes]
        self.fields = list(popup)
        self.labels = list(popup.values())
        self.min_zoom = int(min_zoom)
        self.max_zoom = int(max_zoom)


def vector_tile_layer(m: folium.Map, opts: Options, group: folium.FeatureGroup, layer: str,
                      id_field: str, classes: Sequence[TileClass],
                      popup: Mapping[str, str], *, min_zoom: int = 0) -> list[LegendItem]:
    """Draw ``layer`` from ``opts.vector_tiles`` into ``group`` (from ``min_zoom`` up); the
    legend rows of its classes."""
    if opts.vector_tiles is None:
        raise ConfigError("vector_tile_layer needs the vector_tiles option")
    use_vector_grid(m, base_url=opts.base_url)
    # a dot near a tile's edge overflows it: drawn whole, not cut at the tile's SVG
    figure_of(m).header.add_child(
        Element("<style>svg.leaflet-tile { overflow: visible; }</style>"),
        name="netgis_vector_tile_css")
    VectorTileLayer(opts.vector_tiles, layer, id_field, classes, popup,
                    min_zoom=min_zoom).add_to(group)
    return [c.legend for c in classes]


class BelowZoom(MacroElement):
    """Shows a layer of the map only below ``zoom`` (e.g. a roll-up that vector tiles replace
    from that zoom up)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            var map = {{ this._parent.get_name() }};
            var layer = {{ this.layer_name }};
            var sync = function () {
                var wanted = map.getZoom() < {{ this.zoom }};
                if (wanted !== map.hasLayer(layer)) {
                    if (wanted) { map.addLayer(layer); } else { map.removeLayer(layer); }
                }
            };
            map.on("zoomend", sync);
            map.whenReady(sync);
        })();
        {% endmacro %}
        """
    )

    def __init__(self, layer: folium.FeatureGroup, zoom: int) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "BelowZoom"
        self.layer_name = layer.get_name()
        self.zoom = int(zoom)


def _marker_style(style: Style) -> Style:
    # folium's CircleMarker takes Leaflet path options with snake_case names
    names = {"fillColor": "fill_color", "fillOpacity": "fill_opacity"}
    return {names.get(k, k): v for k, v in style.items() if k in {"color", "weight", "fill",
                                                                   "fillColor", "fillOpacity",
                                                                   "opacity"}}


def feature_group(m: folium.Map, name: str, *, show: bool = True) -> folium.FeatureGroup:
    """An overlay listed in the layer control (Leaflet shows its name as HTML: escaped)."""
    group = folium.FeatureGroup(name=html.escape(name), show=show)
    group.add_to(m)
    return group


def merged_lines(frame: gpd.GeoDataFrame, label: str) -> gpd.GeoDataFrame:
    """All of ``frame``'s lines as one MultiLineString feature (no per-span tooltip)."""
    # types-shapely: a flat array of lines without indices gives one MultiLineString
    geom = cast("MultiLineString",
                shapely.multilinestrings(shapely.get_parts(frame.geometry.values)))
    return gpd.GeoDataFrame(
        {"layer": [label], "features": [len(frame)]}, geometry=[geom], crs=frame.crs
    )


#: Popup rows (column: label) of premises, spans and nodes, in every map that draws them.
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
    "place": "street, area",
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
    "place": "street, area",
    "kind": "kind",
    "status": "status",
    "name": "name",
    "failure_units": "failure units",
}


def premise_points(
    group: folium.FeatureGroup,
    premises: gpd.GeoDataFrame,
    color: str,
    css_class: str,
    *,
    name: str | None = None,
    radius: float = 3.5,
    fill_opacity: float = 0.85,
    popup: Mapping[str, str] = PREMISE_POPUP,
    outline: str | None = None,
    pane: str | None = None,
) -> None:
    """Premises (WGS84) as circle markers with id tooltip and full popup.

    ``outline`` draws a ring of that colour around each (else the fill colour);
    ``pane`` is the map pane to draw them in (see :func:`geojson_layer`).
    """
    cols, labels = popup_columns(premises, popup)
    geojson_layer(
        premises,
        name=name or css_class,
        id_field="premise_id",
        style={"color": outline or color, "fillColor": color, "fillOpacity": fill_opacity,
               "weight": 2 if outline else 1},
        css_class=css_class,
        fields=cols,
        aliases=labels,
        point_radius=radius,
        pane=pane,
    ).add_to(group)


def plant_nodes(
    m: folium.Map,
    nodes: gpd.GeoDataFrame,
    kind: str,
    *,
    color: str,
    radius: float,
    label: str,
    popup: Mapping[str, str],
) -> list[LegendItem]:
    """The ``kind`` nodes (WGS84) as white-ringed dots in an overlay ``label``; their legend."""
    part = nodes[nodes["kind"] == kind]
    if part.empty:
        return []
    cols, labels = popup_columns(part, popup)
    geojson_layer(
        part, name=kind, id_field="node_id", css_class=f"netgis-{kind}",
        style={"color": "#ffffff", "weight": 2, "fillColor": color, "fillOpacity": 1.0},
        fields=cols, aliases=labels, point_radius=radius,
    ).add_to(feature_group(m, f"{label} ({len(part)})"))
    return [LegendItem("dot", color, kind)]


def span_layer(
    group: folium.FeatureGroup,
    spans: gpd.GeoDataFrame,
    *,
    merge: bool,
    label: str,
    name: str,
    css_class: str,
    style: Style,
    popup: Mapping[str, str],
) -> None:
    """Spans (WGS84) one by one with their ``popup`` rows, or (``merge``) as one line."""
    if merge:
        geojson_layer(merged_lines(spans, label), name=name, id_field=None, style=style,
                      css_class=css_class, fields=["layer", "features"]).add_to(group)
        return
    cols, labels = popup_columns(spans, popup)
    geojson_layer(spans, name=name, id_field="span_id", style=style, css_class=css_class,
                  fields=cols, aliases=labels).add_to(group)


def first_rows(frame: FrameT, limit: int, notes: list[str], what: str,
               which: str = "worst") -> FrameT:
    """The first ``limit`` rows; above that a legend note says what was left out."""
    if len(frame) <= limit:
        return frame
    notes.append(f"{len(frame)} {what}: the {limit} {which} shown")
    return frame.head(limit)


def hex_frame(table: pd.DataFrame, cell_col: str = "h3_cell") -> gpd.GeoDataFrame:
    """``table`` with a polygon (EPSG:4326) for the H3 cell in ``cell_col``."""
    polys = [
        shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)])
        for c in table[cell_col]
    ]
    return round_coords(gpd.GeoDataFrame(table.reset_index(drop=True), geometry=polys, crs=4326))


def color_bins(values: pd.Series, edges: Sequence[float], colors: Sequence[str]) -> pd.Series:
    """Colour of each value: ``colors[i]`` for ``edges[i] <= value < edges[i+1]``."""
    if len(colors) != len(edges) - 1:
        raise ConfigError("color_bins needs one colour per interval")
    idx = np.clip(np.searchsorted(np.asarray(edges), values.to_numpy(float), "right") - 1,
                  0, len(colors) - 1)
    return pd.Series(np.asarray(colors, dtype=object)[idx], index=values.index)


def nice_edges(values: pd.Series, n: int) -> list[float]:
    """``n`` intervals over ``values`` on rounded quantiles (at least one interval)."""
    v = values.dropna().to_numpy(float)
    if v.size == 0:
        return [0.0, 1.0]
    qs = np.unique(np.ceil(np.quantile(v, np.linspace(0, 1, n + 1))))
    if qs.size < 2:
        qs = np.array([qs[0], qs[0] + 1])
    else:
        qs[-1] += 1  # the top value belongs to the last interval
    return [float(q) for q in qs]


def interval_labels(edges: Sequence[float]) -> list[str]:
    """``lo-hi`` labels of integer intervals ``[edges[i], edges[i+1])`` (``lo`` when one value).

    Examples
    --------
    >>> interval_labels([1.0, 2.0, 5.0])
    ['1', '2-4']
    """
    out = []
    for lo, hi in itertools.pairwise(edges):
        top = int(hi) - 1
        out.append(f"{int(lo)}" if top <= lo else f"{int(lo)}-{top}")
    return out


def class_legend(shape: str, colors: Sequence[str], edges: Sequence[float],
                 label: str) -> list[LegendItem]:
    """One legend row per interval of ``edges`` (the last colours when there are fewer)."""
    n = len(edges) - 1
    return [LegendItem(shape, c, label.format(lab))
            for c, lab in zip(colors[-n:], interval_labels(edges), strict=True)]


def add_by_color(
    group: folium.FeatureGroup,
    frame: gpd.GeoDataFrame,
    colors: pd.Series,
    *,
    base_style: Style,
    color_keys: Sequence[str],
    **layer_kwargs: Any,
) -> None:
    """One GeoJSON layer per distinct colour: each layer has one constant style.

    folium writes a per-feature style switch otherwise, which grows the page by
    one line per feature.
    """
    for color in pd.unique(colors):
        part = frame[colors.to_numpy() == color]
        if part.empty:
            continue
        style = {**base_style, **dict.fromkeys(color_keys, color)}
        geojson_layer(part, style=style, **layer_kwargs).add_to(group)


class Legend(MacroElement):
    """A Leaflet control (bottom right) with a title and coloured swatches."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.control({position: "bottomright"});
        {{ this.get_name() }}.onAdd = function () {
            var div = L.DomUtil.create("div", "netgis-legend");
            div.innerHTML = {{ this.body|tojson }};
            L.DomEvent.disableClickPropagation(div);
            return div;
        };
        {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    css = """<style>
    .netgis-legend { background: rgba(255,255,255,0.92); padding: 6px 9px; font: 12px/1.35
      sans-serif; border-radius: 4px; box-shadow: 0 1px 4px rgba(0,0,0,0.35); max-width: 260px; }
    .netgis-legend b { display: block; margin-bottom: 3px; }
    .netgis-legend .sw { display: inline-block; width: 14px; height: 10px; margin-right: 6px;
      vertical-align: middle; }
    .netgis-legend .sw.line { height: 0; border-top: 3px solid; }
    .netgis-legend .sw.dot { width: 10px; border-radius: 50%; }
    .netgis-legend .note { color: #555; margin-top: 3px; }
    .leaflet-control-layers { font: 13px/1.4 sans-serif; }
    </style>"""

    def __init__(self, title: str, items: Sequence[LegendItem], notes: Sequence[str] = ()) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "Legend"
        rows = []
        for it in items:
            c = html.escape(it.color)
            css = f"border-color:{c}" if it.shape == "line" else f"background:{c}"
            rows.append(
                f'<div><span class="sw {html.escape(it.shape)}" style="{css}"></span>'
                f"{html.escape(it.label)}</div>"
            )
        notes_html = "".join(f'<div class="note">{html.escape(n)}</div>' for n in notes)
        self.body = f"<b>{html.escape(title)}</b>{''.join(rows)}{notes_html}"


def finish_map(
    m: folium.Map,
    bounds_frames: Sequence[gpd.GeoDataFrame],
    legend: Legend,
) -> folium.Map:
    """Add the legend and one layer control (kept last) and fit the view to the data."""
    legend.add_to(m)
    figure_of(m).header.add_child(Element(Legend.css), name="netgis_legend_css")
    for key, child in list(m._children.items()):
        # the control lists the layers rendered before it, so it must come last
        if isinstance(child, folium.LayerControl):
            del m._children[key]
            m.add_child(child, name=key)
            break
    else:
        folium.LayerControl(collapsed=False).add_to(m)
    boxes = [f.total_bounds for f in bounds_frames if len(f) and not f.geometry.is_empty.all()]
    for key, child in list(m._children.items()):
        # a map drawn on before keeps its extent: one fit over both
        if isinstance(child, folium.FitBounds):
            (south, west), (north, east) = child.bounds
            boxes.append(np.array([west, south, east, north], dtype=float))
            del m._children[key]
    if boxes:
        b = np.vstack(boxes)
        minx, miny = np.nanmin(b[:, 0]), np.nanmin(b[:, 1])
        maxx, maxy = np.nanmax(b[:, 2]), np.nanmax(b[:, 3])
        m.fit_bounds([[float(miny), float(minx)], [float(maxy), float(maxx)]])
    return m


def popup_columns(frame: pd.DataFrame, preferred: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """The ``preferred`` columns ``frame`` has, and their labels."""
    cols = [c for c in preferred if c in frame.columns]
    return cols, [preferred[c] for c in cols]
