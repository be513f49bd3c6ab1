"""A QGIS project as data, written as the XML QGIS reads: layers, their symbols, renderers and
labels, a layer tree of groups, the project's CRS and its first view.

The pieces are frozen dataclasses (:class:`Symbol`, the renderers, the layer kinds,
:class:`Group`, :class:`Project`); :func:`project_xml` writes the ``.qgs`` text and
:func:`write_qgz` the zipped project QGIS opens by default. Only what netgis projects use is
modelled: simple markers, lines and fills (sized in screen pixels, as the web maps' Leaflet
styles are), single-symbol, categorized and graduated renderers, simple labels, OGC API -
Features layers (QGIS provider ``OAPIF``), vector tile layers (``vectortile``, with the
basic renderer) and XYZ raster tiles (``wms`` with ``type=xyz``).

The XML follows what QGIS 3.22 itself writes and is read by QGIS 3.22 and later
(``tests/maps/test_qgis_project.py`` opens it with PyQGIS). The writer needs no QGIS:
the project is made where netgis runs (a server, a CI job) and opened elsewhere.
Output is deterministic: the same project gives the same bytes.

Examples
--------
>>> layer = FeatureLayer("premises", "Premises", oapif_source("http://127.0.0.1:8000",
...                      "premises"), "Point", SingleSymbol(Symbol("marker", "#1a9850")))
>>> text = project_xml(Project("city", (Group("Plant", (layer,)),)))
>>> text.startswith(b"<!DOCTYPE qgis")
True
>>> b"typename='premises'" in text
True
"""

from __future__ import annotations

import functools
import math
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote
from xml.etree import ElementTree as ET

from pyproj import CRS
from pyproj.exceptions import CRSError

from netgis.errors import ConfigError
from netgis.io import atomic_file

SymbolKind = Literal["marker", "line", "fill"]
#: QGIS's name of the geometry each symbol kind draws (a layer's ``geometry`` attribute).
GEOMETRY_OF: dict[SymbolKind, str] = {"marker": "Point", "line": "Line", "fill": "Polygon"}
#: The vector tile renderer's geometry numbers (QgsWkbTypes::GeometryType).
_TILE_GEOMETRY: dict[SymbolKind, str] = {"marker": "0", "line": "1", "fill": "2"}
#: The QGIS version the XML follows; newer versions read it as they read their own.
QGIS_VERSION = "3.22.0"
#: The fixed time stamp of the zip entry: the same project gives the same bytes.
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)
#: A bound above any value a graduated class will meet (QGIS ranges are closed intervals).
OPEN_TOP = 1e15


def rgba(color: str, opacity: float = 1.0) -> str:
    """A ``#rrggbb`` colour with an opacity (0-1) as QGIS writes colours: ``r,g,b,a``.

    Examples
    --------
    >>> rgba("#1a9850"), rgba("#ffffff", 0.5)
    ('26,152,80,255', '255,255,255,128')
    """
    text = color.lstrip("#")
    if len(text) != 6 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise ConfigError(f"colour must be #rrggbb, not {color!r}")
    if not 0.0 <= opacity <= 1.0:
        raise ConfigError(f"opacity must be within 0-1, not {opacity!r}")
    r, g, b = (int(text[i:i + 2], 16) for i in (0, 2, 4))
    return f"{r},{g},{b},{round(opacity * 255)}"


def _number(value: float) -> str:
    """A number as QGIS reads it back unchanged (``2``, ``1.5``, ``4.999999999999999``)."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(value)


@dataclass(frozen=True)
class Symbol:
    """One QGIS symbol: a circle marker, a line or a polygon fill, sized in screen pixels.

    Attributes
    ----------
    kind
        ``marker`` (points), ``line`` (lines) or ``fill`` (polygons).
    color, opacity
        Fill of a marker or polygon, colour of a line (``#rrggbb``, 0-1).
    stroke, stroke_opacity, width_px
        Outline of a marker or polygon (None: none); a line's width is ``width_px``.
    size_px
        A marker's diameter.
    dash_px
        Dash and gap lengths of a line or polygon outline (empty: solid).
    filled
        Whether a polygon is filled (else only its outline is drawn).
    """

    kind: SymbolKind
    color: str
    opacity: float = 1.0
    stroke: str | None = None
    stroke_opacity: float = 1.0
    width_px: float = 1.0
    size_px: float = 7.0
    dash_px: tuple[float, ...] = ()
    filled: bool = True

    @classmethod
    def of_leaflet(cls, kind: SymbolKind, style: dict[str, object]) -> Symbol:
        """The symbol drawing what a Leaflet path style draws (the web maps' styles:
        ``color``, ``weight``, ``opacity``, ``fillColor``, ``fillOpacity``, ``fill``,
        ``radius``, ``dashArray``; Leaflet's defaults for the rest).

        Examples
        --------
        >>> Symbol.of_leaflet("line", {"color": "#8c8c8c", "weight": 2, "dashArray": "2 5"})
        Symbol(kind='line', color='#8c8c8c', opacity=1.0, stroke=None, stroke_opacity=1.0, \
width_px=2.0, size_px=7.0, dash_px=(2.0, 5.0), filled=True)
        """
        color = str(style.get("color", "#3388ff"))
        weight = float(str(style.get("weight", 3)))
        opacity = float(str(style.get("opacity", 1.0)))
        dash = tuple(float(v) for v in str(style.get("dashArray") or "").replace(",", " ").split())
        if kind == "line":
            return cls("line", color, opacity, width_px=weight, dash_px=dash)
        stroke = None if style.get("stroke") is False or weight == 0 else color
        filled = bool(style.get("fill", True))
        fill_color = str(style.get("fillColor", color))
        fill_opacity = float(str(style.get("fillOpacity", 0.2)))
        return cls(kind, fill_color, fill_opacity if filled else 0.0, stroke, opacity,
                   width_px=weight, size_px=2 * float(str(style.get("radius", 10))),
                   dash_px=dash, filled=filled)


@dataclass(frozen=True)
class SingleSymbol:
    """Every feature drawn with one symbol."""

    symbol: Symbol


@dataclass(frozen=True)
class Category:
    """One class of a :class:`Categorized` renderer: the features whose expression gives
    ``value``."""

    value: str
    label: str
    symbol: Symbol


@dataclass(frozen=True)
class Categorized:
    """Features classed by the value of a QGIS expression (or a field name)."""

    expression: str
    categories: tuple[Category, ...]


@dataclass(frozen=True)
class Range:
    """One class of a :class:`Graduated` renderer: ``lower <= value <= upper`` (QGIS's
    ranges are closed; the first that holds a value draws it)."""

    lower: float
    upper: float
    label: str
    symbol: Symbol


@dataclass(frozen=True)
class Graduated:
    """Features classed by ranges of a numeric field."""

    field: str
    ranges: tuple[Range, ...]


Renderer = SingleSymbol | Categorized | Graduated


@dataclass(frozen=True)
class Labels:
    """A label per feature: the text of ``expression`` (no label where it is null), in
    ``color`` on a box of ``background``."""

    expression: str
    color: str = "#ffffff"
    background: str = "#1d1d1d"
    size_pt: float = 9.0
    bold: bool = True


@dataclass(frozen=True)
class FeatureLayer:
    """A vector layer read through a QGIS data provider (here ``OAPIF``)."""

    id: str
    name: str
    source: str
    geometry: str
    renderer: Renderer
    labels: Labels | None = None
    visible: bool = True
    provider: str = "OAPIF"


@dataclass(frozen=True)
class TileStyle:
    """One style of a vector tile layer: the features of tile layer ``layer`` with that
    geometry matching ``expression`` (empty: all), drawn between two zoom levels (-1: no
    bound)."""

    name: str
    layer: str
    symbol: Symbol
    expression: str = ""
    min_zoom: int = -1
    max_zoom: int = -1


@dataclass(frozen=True)
class VectorTileLayer:
    """Mapbox Vector Tiles from an XYZ URL, drawn with the basic renderer's styles (each
    matching feature is drawn by every style that matches it)."""

    id: str
    name: str
    source: str
    styles: tuple[TileStyle, ...]
    visible: bool = True


@dataclass(frozen=True)
class RasterTileLayer:
    """Raster tiles from an XYZ URL."""

    id: str
    name: str
    source: str
    visible: bool = True


Layer = FeatureLayer | VectorTileLayer | RasterTileLayer


@dataclass(frozen=True)
class Group:
    """A group of the layer tree: layers and groups, drawn top first."""

    name: str
    children: tuple[Layer | Group, ...]
    visible: bool = True


@dataclass(frozen=True)
class Project:
    """A QGIS project: its title, layer tree, CRS and first view.

    ``extent`` is ``(xmin, ymin, xmax, ymax)`` in ``crs`` (an ``AUTH:CODE``), or None to
    leave the first view to QGIS.
    """

    title: str
    tree: tuple[Group, ...]
    crs: str = "EPSG:3857"
    extent: tuple[float, float, float, float] | None = None

    def layers(self) -> Iterator[Layer]:
        """Every layer of the tree, top first."""
        def walk(node: Layer | Group) -> Iterator[Layer]:
            if isinstance(node, Group):
                for child in node.children:
                    yield from walk(child)
            else:
                yield node

        for group in self.tree:
            yield from walk(group)


def _uri_value(value: str) -> str:
    """A value of a QGIS key='value' data source (QgsDataSourceUri escapes ``\\`` and ``'``)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def oapif_source(url: str, collection: str, *, subset: str | None = None,
                 authcfg: str | None = None, page_size: int | None = None,
                 view_only: bool = True) -> str:
    """The data source of an OGC API - Features collection for QGIS's ``OAPIF`` provider:
    the landing page ``url``, the collection id, a QGIS expression filtering its features
    (``subset``), the id of a QGIS authentication configuration (``authcfg``), the
    number of features QGIS asks for per page (``page_size``; QGIS's choice when None),
    and whether QGIS asks only for the features in view (``view_only``; else it downloads
    the whole collection the first time it draws the layer, wherever the view is).

    Examples
    --------
    >>> oapif_source("http://127.0.0.1:8000", "premises", page_size=10000)
    "url='http://127.0.0.1:8000' typename='premises' restrictToRequestBBOX='1' pageSize='10000'"
    """
    parts = [f"url={_uri_value(url)}", f"typename={_uri_value(collection)}"]
    if view_only:
        parts.append("restrictToRequestBBOX='1'")
    if subset:
        parts.append(f"filter={_uri_value(subset)}")
    if authcfg:
        parts.append(f"authcfg={_uri_value(authcfg)}")
    if page_size:
        parts.append(f"pageSize={_uri_value(str(int(page_size)))}")
    return " ".join(parts)


def xyz_source(template: str, min_zoom: int, max_zoom: int, *,
               authcfg: str | None = None) -> str:
    """The data source of XYZ tiles (raster for the ``wms`` provider, vector for
    ``vectortile``): the URL template with ``{z}``, ``{x}`` and ``{y}`` and its zooms.

    Examples
    --------
    >>> xyz_source("http://127.0.0.1:8000/tiles/spans/{z}/{x}/{y}.mvt", 0, 22)
    'type=xyz&url=http://127.0.0.1:8000/tiles/spans/%7Bz%7D/%7Bx%7D/%7By%7D.mvt&zmax=22&zmin=0'
    """
    if not all(part in template for part in ("{z}", "{x}", "{y}")):
        raise ConfigError(f"a tile URL template needs {{z}}, {{x}} and {{y}}: {template!r}")
    # the URL is one value of a query string: everything that would end it is escaped
    url = quote(template, safe=":/?=,;@!$'()*+-._~")
    source = f"type=xyz&url={url}&zmax={int(max_zoom)}&zmin={int(min_zoom)}"
    return source + (f"&authcfg={quote(authcfg, safe='')}" if authcfg else "")


# ---- symbols -------------------------------------------------------------------------------

def _props(parent: ET.Element, props: dict[str, str]) -> None:
    """A symbol layer's properties, both ways QGIS writes them (an Option map, read by 3.22
    and later, and the prop list older versions read)."""
    option = ET.SubElement(parent, "Option", type="Map")
    for key in sorted(props):
        ET.SubElement(option, "Option", name=key, type="QString", value=props[key])
    for key in sorted(props):
        ET.SubElement(parent, "prop", k=key, v=props[key])


def _line_props(color: str, opacity: float, width_px: float, dash_px: Sequence[float]
                ) -> dict[str, str]:
    props = {"line_color": rgba(color, opacity), "line_width": _number(width_px),
             "line_width_unit": "Pixel", "line_style": "solid", "capstyle": "round",
             "joinstyle": "round"}
    if dash_px:
        props.update(use_custom_dash="1", customdash=";".join(_number(v) for v in dash_px),
                     customdash_unit="Pixel", capstyle="flat")
    return props


def _symbol_layers(symbol: Symbol) -> list[tuple[str, dict[str, str]]]:
    """The (QGIS class, properties) of each symbol layer drawing ``symbol``, bottom first."""
    if symbol.kind == "line":
        return [("SimpleLine", _line_props(symbol.color, symbol.opacity, symbol.width_px,
                                           symbol.dash_px))]
    if symbol.kind == "marker":
        props = {"name": "circle", "color": rgba(symbol.color, symbol.opacity),
                 "size": _number(symbol.size_px), "size_unit": "Pixel",
                 "outline_style": "solid" if symbol.stroke else "no",
                 "outline_color": rgba(symbol.stroke or symbol.color, symbol.stroke_opacity),
                 "outline_width": _number(symbol.width_px if symbol.stroke else 0),
                 "outline_width_unit": "Pixel", "scale_method": "diameter"}
        return [("SimpleMarker", props)]
    layers = [("SimpleFill", {"color": rgba(symbol.color, symbol.opacity),
                              "style": "solid" if symbol.filled else "no",
                              "outline_style": "no", "outline_width": "0",
                              "outline_width_unit": "Pixel"})]
    if symbol.stroke:
        # an outline as a line layer: QGIS fills take no custom dash pattern of their own
        layers.append(("SimpleLine", _line_props(symbol.stroke, symbol.stroke_opacity,
                                                 symbol.width_px, symbol.dash_px)))
    return layers


def _symbol(parent: ET.Element, symbol: Symbol, name: str) -> None:
    element = ET.SubElement(parent, "symbol", type=symbol.kind, name=name, alpha="1",
                            clip_to_extent="1", force_rhr="0")
    for cls, props in _symbol_layers(symbol):
        layer = ET.SubElement(element, "layer", {"class": cls, "enabled": "1", "locked": "0",
                                                 "pass": "0"})
        _props(layer, props)


def _renderer(parent: ET.Element, renderer: Renderer) -> None:
    common = {"symbollevels": "0", "forceraster": "0", "enableorderby": "0",
              "referencescale": "-1"}
    if isinstance(renderer, SingleSymbol):
        element = ET.SubElement(parent, "renderer-v2", {**common, "type": "singleSymbol"})
        _symbol(ET.SubElement(element, "symbols"), renderer.symbol, "0")
        return
    if isinstance(renderer, Categorized):
        element = ET.SubElement(parent, "renderer-v2", {**common, "type": "categorizedSymbol",
                                                         "attr": renderer.expression})
        classes = ET.SubElement(element, "categories")
        for i, cat in enumerate(renderer.categories):
            ET.SubElement(classes, "category", value=cat.value, symbol=str(i), label=cat.label,
                          render="true")
        symbols = ET.SubElement(element, "symbols")
        for i, cat in enumerate(renderer.categories):
            _symbol(symbols, cat.symbol, str(i))
        return
    element = ET.SubElement(parent, "renderer-v2", {
        **common, "type": "graduatedSymbol", "attr": renderer.field,
        "graduatedMethod": "GraduatedColor"})
    ranges = ET.SubElement(element, "ranges")
    for i, r in enumerate(renderer.ranges):
        ET.SubElement(ranges, "range", lower=_number(r.lower), upper=_number(r.upper),
                      symbol=str(i), label=r.label, render="true")
    symbols = ET.SubElement(element, "symbols")
    for i, r in enumerate(renderer.ranges):
        _symbol(symbols, r.symbol, str(i))


def _labeling(parent: ET.Element, labels: Labels) -> None:
    settings = ET.SubElement(ET.SubElement(parent, "labeling", type="simple"), "settings")
    style = ET.SubElement(settings, "text-style", fieldName=labels.expression, isExpression="1",
                          fontFamily="DejaVu Sans", fontSize=_number(labels.size_pt),
                          fontSizeUnit="Point", fontWeight="75" if labels.bold else "50",
                          textColor=rgba(labels.color), textOpacity="1")
    ET.SubElement(style, "background", shapeDraw="1", shapeType="0", shapeSizeType="0",
                  shapeSizeX="1", shapeSizeY="0.5", shapeSizeUnit="MM",
                  shapeFillColor=rgba(labels.background), shapeBorderColor=rgba("#ffffff"),
                  shapeBorderWidth="0.4", shapeBorderWidthUnit="MM", shapeOpacity="1")
    # over the polygon's centre, as the web map's rank labels sit on their cluster
    ET.SubElement(settings, "placement", placement="1", centroidInside="1", centroidWhole="0",
                  priority="9")
    ET.SubElement(settings, "rendering", drawLabels="1", obstacle="0", displayAll="1")


# ---- layers --------------------------------------------------------------------------------

def _srs(parent: ET.Element, authid: str) -> None:
    """A CRS as QGIS reads it without its own CRS database ids: its WKT (which QGIS
    prefers, being lossless) and its authority id."""
    srs = ET.SubElement(parent, "spatialrefsys")
    ET.SubElement(srs, "wkt").text = _wkt(authid)
    ET.SubElement(srs, "authid").text = authid


@functools.cache
def _wkt(authid: str) -> str:
    try:
        return str(CRS.from_user_input(authid).to_wkt())
    except CRSError as exc:
        raise ConfigError(f"unknown CRS {authid!r}: {exc}") from None


def _maplayer(parent: ET.Element, layer: Layer) -> None:
    if isinstance(layer, FeatureLayer):
        element = ET.SubElement(parent, "maplayer", type="vector", geometry=layer.geometry,
                                labelsEnabled="1" if layer.labels else "0", readOnly="1")
    elif isinstance(layer, VectorTileLayer):
        element = ET.SubElement(parent, "maplayer", type="vector-tile")
    else:
        element = ET.SubElement(parent, "maplayer", type="raster")
    ET.SubElement(element, "id").text = layer.id
    ET.SubElement(element, "datasource").text = layer.source
    ET.SubElement(element, "layername").text = layer.name
    # OGC API - Features serve CRS84 (lon, lat); tiles are Web Mercator
    _srs(ET.SubElement(element, "srs"),
         "EPSG:4326" if isinstance(layer, FeatureLayer) else "EPSG:3857")
    if isinstance(layer, FeatureLayer):
        ET.SubElement(element, "provider", encoding="").text = layer.provider
        _renderer(element, layer.renderer)
        if layer.labels is not None:
            _labeling(element, layer.labels)
    elif isinstance(layer, VectorTileLayer):
        ET.SubElement(element, "provider").text = "vectortile"
        styles = ET.SubElement(ET.SubElement(element, "renderer", type="basic"), "styles")
        for style in layer.styles:
            item = ET.SubElement(styles, "style", {
                "name": style.name, "layer": style.layer, "enabled": "1",
                "geometry": _TILE_GEOMETRY[style.symbol.kind], "expression": style.expression,
                "min-zoom": str(style.min_zoom), "max-zoom": str(style.max_zoom)})
            _symbol(ET.SubElement(item, "symbols"), style.symbol, "0")
    else:
        ET.SubElement(element, "provider").text = "wms"
        pipe = ET.SubElement(element, "pipe")
        ET.SubElement(pipe, "rasterrenderer", type="singlebandcolordata", band="1",
                      opacity="1", alphaBand="-1")
        # tiles shown between their zooms are resampled smoothly, not as blocks
        ET.SubElement(ET.SubElement(pipe, "provider"), "resampling", enabled="true",
                      zoomedInResamplingMethod="bilinear",
                      zoomedOutResamplingMethod="bilinear", maxOversampling="2")


def _checked(visible: bool) -> str:
    return "Qt::Checked" if visible else "Qt::Unchecked"


def _tree(parent: ET.Element, node: Layer | Group) -> None:
    if isinstance(node, Group):
        element = ET.SubElement(parent, "layer-tree-group", name=node.name,
                                checked=_checked(node.visible), expanded="1")
        for child in node.children:
            _tree(element, child)
        return
    provider = ("vectortile" if isinstance(node, VectorTileLayer) else
                "wms" if isinstance(node, RasterTileLayer) else node.provider)
    ET.SubElement(parent, "layer-tree-layer", id=node.id, name=node.name, source=node.source,
                  providerKey=provider, checked=_checked(node.visible), expanded="0")


def _extent(parent: ET.Element, extent: tuple[float, float, float, float]) -> None:
    for key, value in zip(("xmin", "ymin", "xmax", "ymax"), extent, strict=True):
        ET.SubElement(parent, key).text = repr(float(value))


def project_xml(project: Project) -> bytes:
    """The ``.qgs`` XML of ``project`` (UTF-8).

    Examples
    --------
    >>> xml = project_xml(Project("empty", (), extent=(0.0, 0.0, 10.0, 10.0)))
    >>> b"<authid>EPSG:3857</authid>" in xml, b"DefaultViewExtent" in xml
    (True, True)
    """
    ids = [layer.id for layer in project.layers()]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"layer ids must be unique: {ids}")
    if project.extent is not None and not all(math.isfinite(v) for v in project.extent):
        raise ConfigError(f"the extent must be finite: {project.extent}")
    root = ET.Element("qgis", version=QGIS_VERSION, projectname=project.title)
    ET.SubElement(root, "title").text = project.title
    _srs(ET.SubElement(root, "projectCrs"), project.crs)
    # QGIS reads the project's CRS only when "projections" are on (always, since 3.0)
    properties = ET.SubElement(ET.SubElement(root, "properties"), "SpatialRefSys")
    ET.SubElement(properties, "ProjectionsEnabled", type="int").text = "1"
    tree = ET.SubElement(root, "layer-tree-group")
    for group in project.tree:
        _tree(tree, group)
    layers = ET.SubElement(root, "projectlayers")
    for layer in project.layers():
        _maplayer(layers, layer)
    if project.extent is not None:
        xmin, ymin, xmax, ymax = (repr(float(v)) for v in project.extent)
        view = ET.SubElement(root, "ProjectViewSettings", UseProjectScales="0", rotation="0")
        ET.SubElement(view, "Scales")
        default = ET.SubElement(view, "DefaultViewExtent", xmin=xmin, ymin=ymin, xmax=xmax,
                                ymax=ymax)
        _srs(default, project.crs)
        # the canvas QGIS (the desktop) opens the project on
        canvas = ET.SubElement(root, "mapcanvas", name="theMapCanvas", annotationsVisible="1")
        ET.SubElement(canvas, "units").text = "meters" if project.crs == "EPSG:3857" else "degrees"
        _extent(ET.SubElement(canvas, "extent"), project.extent)
        _srs(ET.SubElement(canvas, "destinationsrs"), project.crs)
    ET.indent(root, space=" ")
    body = ET.tostring(root, encoding="unicode")
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + body + "\n").encode()


def write_qgz(project: Project, path: str | Path) -> Path:
    """Write ``project`` as a ``.qgz`` (a zip holding the ``.qgs`` of the same stem), atomically.

    Examples
    --------
    >>> import tempfile, zipfile
    >>> out = write_qgz(Project("empty", ()), Path(tempfile.mkdtemp()) / "city.qgz")
    >>> zipfile.ZipFile(out).namelist()
    ['city.qgs']
    """
    out = Path(path)
    if out.suffix.lower() != ".qgz":
        raise ConfigError(f"a QGIS project file ends in .qgz: {out}")
    entry = zipfile.ZipInfo(out.with_suffix(".qgs").name, date_time=_ZIP_TIME)
    entry.compress_type = zipfile.ZIP_DEFLATED
    entry.external_attr = 0o644 << 16
    with atomic_file(out) as tmp, zipfile.ZipFile(tmp, "w") as archive:
        archive.writestr(entry, project_xml(project))
    return out
