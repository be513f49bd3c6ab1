"""A QGIS project of a netgis server: its layers over OGC API - Features and vector tiles, its
base map, and the styles of the web maps (``netgis qgis``, docs/qgis.md).

:func:`read_server` asks a running server what it has (the landing page, the collections and
their extents, the TileJSON of each tile layer, the base map's TileJSON) and the figures the
web maps' classes are computed from (the worst cut and failure impacts, the unpassed units
per H3 cell, the optical budget); :func:`qgis_project` turns that into a
:class:`maps.qgis_xml.Project`, styled with the classes and colours the web maps draw:

- coverage: premises by optical margin (:func:`maps.coverage.premise_classes`), spans lit,
  planned or unlit (:func:`maps.coverage.span_classes`), cores and cabinets;
- criticality: spans by cut units and nodes by failure units, in the classes of
  :func:`maps.criticality.impact_edges` and its colours and line weights;
- gaps: H3 cells by units not passed (:data:`maps.gaps.GAP_COLORS` over the same quantile
  edges) and the build clusters' hulls labelled with their rank.

The project's groups are the coverage map from vector tiles (shown), the result collections
(each one check box away), the plant's four layers and the base map when the server has one.

Examples
--------
>>> catalog = ServerCatalog(url="http://127.0.0.1:8000", title="netgis",
...                         collections=(Collection("spans", "Spans", (8.6, 50.0, 8.8, 50.2)),))
>>> [layer.name for layer in qgis_project(catalog).layers()]
['Spans']
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd
from pyproj import Transformer

from netgis.errors import ConfigError
from netgis.maps import _base as base
from netgis.maps.coverage import (
    CABINET_COLOR,
    CORE_COLOR,
    premise_classes,
    span_classes,
)
from netgis.maps.criticality import IMPACT_COLORS, IMPACT_WEIGHTS, SAFE_COLOR, impact_edges
from netgis.maps.gaps import GAP_COLORS
from netgis.maps.qgis_xml import (
    OPEN_TOP,
    Categorized,
    Category,
    FeatureLayer,
    Graduated,
    Group,
    Labels,
    Project,
    Range,
    RasterTileLayer,
    Renderer,
    SingleSymbol,
    Symbol,
    SymbolKind,
    TileStyle,
    VectorTileLayer,
    oapif_source,
    xyz_source,
)
from netgis.products.result_layers import RESULT_LAYERS
from netgis.products.tiles import THIN_BELOW_ZOOM
from netgis.schema import CORE, DEFAULT_CRITICAL_TOP, LAYERS

if TYPE_CHECKING:
    import httpx

#: The plant's layers, in the order of the layer tree (top first: drawn above the others).
PLANT = ("nodes", "spans", "premises", "areas")
#: The result collections the project shows, in the order of the layer tree.
RESULTS = ("premise_results", "span_results", "node_results", "gap_clusters", "h3_gaps")
#: Build clusters labelled with their rank: the best ones, as the gaps map labels them.
RANK_LABELS = 20
#: The web maps' node dots: white ring, the kind's colour (maps._base.plant_nodes), the
#: radius the coverage map gives cores and cabinets.
NODE_DOTS = {CORE: (CORE_COLOR, 8.0), "cabinet": (CABINET_COLOR, 6.0)}
#: Other plant nodes, and premises, drawn small and grey in the plant layers.
OTHER_NODE = {"color": "#ffffff", "weight": 1, "fillColor": "#636363", "fillOpacity": 1.0,
              "radius": 3}
PLANT_PREMISE = {"color": "#525252", "weight": 1, "fillColor": "#969696", "fillOpacity": 0.85,
                 "radius": 3}
#: Plant spans by status: in service dark grey, planned as the coverage map's planned spans.
IN_SERVICE_SPAN = {"color": "#525252", "weight": 2}
RETIRED_SPAN = {"color": "#bdbdbd", "weight": 1.5, "dashArray": "1 4"}
#: Areas: outlines only, so that what lies inside stays visible (the gaps map's area outline).
AREA_OUTLINE = {"color": "#08306b", "weight": 2, "fill": False}
#: The criticality map's other spans and its single-point-of-failure nodes.
SAFE_SPAN = {"color": SAFE_COLOR, "weight": 1.5, "opacity": 0.7}
SPOF_NODE = {"color": "#000000", "weight": 1, "fillOpacity": 0.95, "radius": 5}
#: The gaps map's H3 cells (fill by class) and cluster hulls (dashed outlines).
GAP_CELL = {"color": "#7f2704", "weight": 0.7, "fillOpacity": 0.6}
CLUSTER_HULL = {"color": "#1d1d1d", "weight": 1.5, "dashArray": "5 4", "fill": False}
#: Vector base maps: a style per tile layer, chosen by its name as the web maps' base map
#: script does (maps/static/basemap/basemap.js): first match wins, others are not drawn.
BASEMAP_VECTOR_STYLES: tuple[tuple[str, SymbolKind, dict[str, Any]], ...] = (
    ("water|ocean|lake|sea|river|dam", "fill",
     {"fill": True, "fillColor": "#aacbe4", "fillOpacity": 1, "color": "#9cc0de", "weight": 1}),
    ("building", "fill",
     {"fill": True, "fillColor": "#dcd5cb", "fillOpacity": 1, "color": "#c9c0b3",
      "weight": 0.5}),
    ("park|green|wood|forest|landcover|landuse|land|natural|earth|aeroway|pier", "fill",
     {"fill": True, "fillColor": "#e6eddc", "fillOpacity": 1, "stroke": False, "weight": 0}),
    ("transport|road|street|highway|bridge|tunnel|rail|path", "line",
     {"color": "#ffffff", "weight": 2, "opacity": 1}),
    ("boundar|admin", "line", {"color": "#a09cb0", "weight": 1, "dashArray": "4 3",
                               "fill": False}),
)
_TO_MERCATOR = Transformer.from_crs(4326, 3857, always_xy=True)
#: Web Mercator's latitude limit: boxes are clamped to it before they are projected.
_MAX_LAT = 85.05112878


@dataclass(frozen=True)
class Collection:
    """One OGC API - Features collection: its id, title, WGS84 box (None: empty) and the
    largest page its items may be asked for in (None: unknown)."""

    id: str
    title: str
    bbox: tuple[float, float, float, float] | None
    page_size: int | None = None


@dataclass(frozen=True)
class TileSource:
    """XYZ tiles as their TileJSON describes them: URL template and zooms."""

    url: str
    min_zoom: int
    max_zoom: int
    name: str = ""
    vector: bool = True
    layers: tuple[str, ...] = ()
    attribution: str = ""


@dataclass(frozen=True)
class Classes:
    """The figures the web maps' classes are computed from, read from the server.

    Attributes
    ----------
    span_impacts, node_impacts
        The largest ``top`` positive cut units of spans (failure units of nodes) and the
        smallest positive one: all :func:`maps.criticality.impact_edges` reads.
    gap_units
        Units not passed of every H3 cell of ``h3_gaps``.
    budget_db
        The optical budget of the server's analysis (a premise's margin is the budget less
        its loss); None when the server has no premise to ask about.
    """

    span_impacts: tuple[int, ...] = ()
    node_impacts: tuple[int, ...] = ()
    gap_units: tuple[int, ...] = ()
    budget_db: float | None = None


@dataclass(frozen=True)
class ServerCatalog:
    """What a netgis server offers a QGIS project (what :func:`read_server` finds)."""

    url: str
    title: str
    collections: tuple[Collection, ...] = ()
    tiles: Mapping[str, TileSource] = field(default_factory=dict)
    basemap: TileSource | None = None
    classes: Classes = Classes()

    def collection(self, name: str) -> Collection | None:
        """The collection ``name``, or None when the server has none of that id."""
        return next((c for c in self.collections if c.id == name), None)


# ---- reading the server --------------------------------------------------------------------

def _get(client: httpx.Client, url: str, *, missing_ok: bool = False,
         params: Mapping[str, Any] | None = None) -> Any:
    """The JSON answer of GET ``url`` (None for a 404 when ``missing_ok``); a ConfigError
    naming the URL and what went wrong otherwise."""
    import httpx

    try:
        answer = client.get(url, params=params, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise ConfigError(f"cannot read {url}: {exc or type(exc).__name__}") from None
    if missing_ok and answer.status_code == 404:
        return None
    if answer.status_code in (401, 403):
        raise ConfigError(f"{url} answered {answer.status_code}: the server wants a key with "
                          "read access (--api-key-env NAME names the variable holding it)")
    if answer.status_code != 200:
        raise ConfigError(f"{url} answered {answer.status_code} {answer.reason_phrase}"
                          + _detail(answer))
    try:
        return answer.json()
    except ValueError:
        raise ConfigError(f"{url} did not answer JSON: is it a netgis server?") from None


def _detail(answer: httpx.Response) -> str:
    """``: DETAIL`` of a problem document (RFC 9457), shown on a terminal: quoted with
    escapes when it holds a control character; empty for any other answer."""
    try:
        doc = answer.json()
    except ValueError:
        return ""
    detail = str(doc.get("detail") or "")[:300] if isinstance(doc, dict) else ""
    return f": {detail if detail.isprintable() else repr(detail)}" if detail else ""


def _bbox(collection: Mapping[str, Any]) -> tuple[float, float, float, float] | None:
    boxes = collection.get("extent", {}).get("spatial", {}).get("bbox") or []
    if not boxes or len(boxes[0]) != 4:
        return None
    west, south, east, north = (float(v) for v in boxes[0])
    return west, south, east, north


def _page_sizes(client: httpx.Client, landing: Mapping[str, Any]) -> dict[str, int]:
    """The largest ``limit`` of each collection's items, from the API definition the landing
    page links to (``service-desc``). QGIS 3.22 pages by the documented default (100), so
    a project names the maximum: a city's premises in 20 pages, not 2,000."""
    link = next((link.get("href") for link in landing.get("links", [])
                 if link.get("rel") == "service-desc"), None)
    api = _get(client, str(link), missing_ok=True) if link else None
    sizes: dict[str, int] = {}
    for path, item in ((api or {}).get("paths") or {}).items():
        found = re.fullmatch(r"/collections/([^/{}]+)/items", path)
        if found is None:
            continue
        for parameter in (item.get("get") or {}).get("parameters", []):
            maximum = (parameter.get("schema") or {}).get("maximum")
            if parameter.get("name") == "limit" and isinstance(maximum, int) and maximum > 0:
                sizes[found.group(1)] = maximum
    return sizes


def _tilejson(doc: Mapping[str, Any], url: str) -> TileSource:
    tiles = doc.get("tiles") or []
    if not tiles or not isinstance(tiles[0], str):
        raise ConfigError(f"{url}: a TileJSON without a tile URL")
    return TileSource(tiles[0], int(doc.get("minzoom", 0)), int(doc.get("maxzoom", 22)),
                      name=str(doc.get("name", "")),
                      vector=doc.get("format", "pbf") == "pbf",
                      layers=tuple(str(v["id"]) for v in doc.get("vector_layers", [])),
                      attribution=str(doc.get("attribution", "")))


def _ranked_impacts(client: httpx.Client, root: str, layer: str, column: str,
                    top: int) -> tuple[int, ...]:
    """The ``top`` largest positive impacts of ``layer`` and its smallest positive one, from
    the server's criticality ranking (worst first)."""
    url = f"{root}/analysis/criticality"
    values: list[int] = []
    matched = None
    while len(values) < top:
        page = _get(client, url, params={"layer": layer, "offset": len(values),
                                         "limit": top - len(values)})
        matched = int(page["numberMatched"])
        values += [int(f["properties"][column]) for f in page["features"]]
        if not page["features"] or len(values) >= matched:
            break
    if matched is not None and matched > len(values):
        last = _get(client, url, params={"layer": layer, "offset": matched - 1, "limit": 1})
        values += [int(f["properties"][column]) for f in last["features"]]
    return tuple(v for v in values if v > 0)


def _all_features(client: httpx.Client, url: str) -> Iterator[dict[str, Any]]:
    """Every feature of a collection's items, page after page by the ``next`` links."""
    next_url: str | None = url
    while next_url is not None:
        page = _get(client, next_url)
        yield from page["features"]
        next_url = next((link["href"] for link in page.get("links", [])
                         if link.get("rel") == "next"), None)


def read_server(client: httpx.Client, url: str, *, top: int = DEFAULT_CRITICAL_TOP
                ) -> ServerCatalog:
    """What the netgis server at ``url`` (its landing page) offers, read over ``client``
    (which carries any ``X-API-Key``).

    Parameters
    ----------
    client
        An :class:`httpx.Client`.
    url
        The server's landing page, e.g. ``http://127.0.0.1:8000``.
    top
        How many of the worst spans and nodes the criticality classes are made of (as the
        criticality map's ``top``).

    Examples
    --------
    >>> import httpx
    >>> answers = {"/": {"links": [{"rel": "data", "href": "/collections"}]},
    ...            "/collections": {"collections": []}}
    >>> def serve(request):
    ...     found = answers.get(request.url.path)
    ...     return httpx.Response(200 if found else 404, json=found or {})
    >>> with httpx.Client(transport=httpx.MockTransport(serve)) as client:
    ...     read_server(client, "http://netgis.test/")
    ServerCatalog(url='http://netgis.test', title='netgis', collections=(), tiles={}, \
basemap=None, classes=Classes(span_impacts=(), node_impacts=(), gap_units=(), budget_db=None))
    """
    if not re.match(r"^https?://[^/?#\s]+", url):
        raise ConfigError(f"--url must be the server's http(s) address, not {url!r}")
    root = url.rstrip("/")
    landing = _get(client, f"{root}/")
    if not isinstance(landing, dict) or not any(
            link.get("rel") == "data" for link in landing.get("links", [])):
        raise ConfigError(f"{root}/ is not an OGC API landing page (no 'data' link)")
    listed = _get(client, f"{root}/collections").get("collections", [])
    known = {*PLANT, *RESULTS}
    limits = _page_sizes(client, landing)
    collections = tuple(Collection(str(c["id"]), str(c.get("title") or c["id"]), _bbox(c),
                                   limits.get(str(c["id"])))
                        for c in listed if c.get("id") in known)
    present = {c.id for c in collections}
    tiles = {}
    for layer in PLANT:
        if layer in present:
            doc = _get(client, f"{root}/tiles/{layer}.json", missing_ok=True)
            if doc is not None:
                tiles[layer] = _tilejson(doc, f"{root}/tiles/{layer}.json")
    basemap_doc = _get(client, f"{root}/basemap.json", missing_ok=True)
    basemap = None if basemap_doc is None else _tilejson(basemap_doc, f"{root}/basemap.json")
    return ServerCatalog(root, str(landing.get("title") or "netgis"), collections, tiles,
                         basemap, _read_classes(client, root, present, collections, top))


def _read_classes(client: httpx.Client, root: str, present: set[str],
                  collections: Sequence[Collection], top: int) -> Classes:
    span_impacts = (_ranked_impacts(client, root, "spans", "cut_units", top)
                    if "span_results" in present else ())
    node_impacts = (_ranked_impacts(client, root, "nodes", "failure_units", top)
                    if "node_results" in present else ())
    gap_units = (tuple(int(f["properties"]["units"]) for f in _all_features(
        client, f"{root}/collections/h3_gaps/items")) if "h3_gaps" in present else ())
    premises = next((c for c in collections if c.id == "premises"), None)
    budget = None
    if premises is not None and premises.bbox is not None:
        west, south, east, north = premises.bbox
        answer = _get(client, f"{root}/analysis/serviceability",
                      params={"lon": (west + east) / 2, "lat": (south + north) / 2})
        budget = float(answer["budget_db"])
    return Classes(span_impacts, node_impacts, gap_units, budget)


# ---- styles: the web maps' classes as QGIS renderers ---------------------------------------

def _literal(value: Any) -> str:
    """``value`` as a QGIS expression literal."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _field(name: str, columns: Mapping[str, str]) -> str:
    return columns.get(name, '"' + name.replace('"', '""') + '"')


def class_expression(cls: base.TileClass, columns: Mapping[str, str] | None = None) -> str:
    """The QGIS expression true where ``cls`` matches a feature, as the web map decides it:
    equal values (a true or false one as the field itself or its negation, so that a null
    matches neither), numbers at least / below bounds; TRUE for a class matching all.

    ``columns`` replaces a field by an expression (e.g. ``margin_db`` computed from
    ``loss_db`` on a layer that has no margin).

    Examples
    --------
    >>> print(class_expression(premise_classes(True)[1]))
    "passed" AND "margin_db" >= 0.0 AND "margin_db" < 3.0
    >>> print(class_expression(span_classes()[1]))
    "status" = 'planned'
    """
    cols = columns or {}
    terms = []
    for name, value in cls.equal.items():
        if value is True or value is False:
            terms.append(_field(name, cols) if value else f"NOT {_field(name, cols)}")
        else:
            terms.append(f"{_field(name, cols)} = {_literal(value)}")
    terms += [f"{_field(name, cols)} >= {_literal(lo)}" for name, lo in cls.at_least.items()]
    terms += [f"{_field(name, cols)} < {_literal(hi)}" for name, hi in cls.below.items()]
    return " AND ".join(terms) or "TRUE"


def first_match(classes: Sequence[base.TileClass], columns: Mapping[str, str] | None = None
                ) -> str:
    """One expression giving each feature the key (``className``) of the first of
    ``classes`` it matches, null where none does.

    Examples
    --------
    >>> print(first_match(span_classes()))
    CASE WHEN "lit" THEN 'netgis-span-lit' WHEN "status" = 'planned' THEN 'netgis-span-planned' \
WHEN TRUE THEN 'netgis-span-unlit' END
    """
    whens = " ".join(f"WHEN {class_expression(c, columns)} THEN {_literal(_key(c))}"
                     for c in classes)
    return f"CASE {whens} END"


def _key(cls: base.TileClass) -> str:
    return str(cls.style["className"])


def _matches_all(cls: base.TileClass) -> bool:
    return not (cls.equal or cls.at_least or cls.below)


def categorized(classes: Sequence[base.TileClass], kind: SymbolKind,
                columns: Mapping[str, str] | None = None) -> Categorized:
    """A categorized renderer drawing each feature as the first of ``classes`` it matches.

    A last class matching every feature becomes QGIS's default category (value ``""``,
    which also takes a null): with one, QGIS asks its data provider for every feature and
    classes them itself, rather than sending the provider the classes as a filter (the
    OGC API - Features provider of QGIS 3.22 evaluates such a filter on its cache, where it
    holds booleans as text: ``"passed"`` would match no feature there).

    Examples
    --------
    >>> renderer = categorized(span_classes(), "line")
    >>> print(renderer.expression)
    CASE WHEN "lit" THEN 'netgis-span-lit' WHEN "status" = 'planned' THEN 'netgis-span-planned' END
    >>> [c.value for c in renderer.categories]
    ['netgis-span-lit', 'netgis-span-planned', '']
    """
    listed = classes[:-1] if classes and _matches_all(classes[-1]) else classes
    return Categorized(first_match(listed, columns), tuple(
        Category(_key(c) if c in listed else "", c.legend.label, Symbol.of_leaflet(kind, c.style))
        for c in classes))


def tile_styles(classes: Sequence[base.TileClass], kind: SymbolKind, layer: str, *,
                min_zoom: int = -1) -> tuple[TileStyle, ...]:
    """The vector tile styles drawing ``layer``'s features as the first of ``classes`` they
    match (a tile renderer draws every style that matches: each tests the one class)."""
    which = first_match(classes)
    return tuple(TileStyle(c.legend.label, layer, Symbol.of_leaflet(kind, c.style),
                           f"{which} = {_literal(_key(c))}", min_zoom=min_zoom)
                 for c in classes)


def _node_classes() -> list[base.TileClass]:
    """Cores and cabinets as the coverage map draws them."""
    return [base.TileClass({"color": "#ffffff", "weight": 2, "fillColor": color,
                            "fillOpacity": 1.0, "radius": radius, "className": f"netgis-{kind}"},
                           base.LegendItem("dot", color, kind), equal={"kind": kind})
            for kind, (color, radius) in NODE_DOTS.items()]


def _plant_classes(layer: str) -> tuple[SymbolKind, list[base.TileClass]]:
    """How each plant layer is drawn by its own fields (no analysis columns)."""
    def one(style: dict[str, Any], key: str, label: str, **equal: Any) -> base.TileClass:
        return base.TileClass({**style, "className": key},
                              base.LegendItem("dot", str(style["color"]), label), equal=equal)

    if layer == "nodes":
        return "marker", [*_node_classes(), one(OTHER_NODE, "netgis-node", "other node")]
    if layer == "spans":
        planned = next(c for c in span_classes() if c.equal.get("status") == "planned")
        return "line", [one(IN_SERVICE_SPAN, "netgis-span-in-service", "in service",
                            status="in_service"),
                        one({**planned.style}, "netgis-span-planned", "planned",
                            status="planned"),
                        one(RETIRED_SPAN, "netgis-span-retired", "retired or other")]
    if layer == "premises":
        return "marker", [one(PLANT_PREMISE, "netgis-premise", "premise")]
    return "fill", [one(AREA_OUTLINE, "netgis-area", "area")]


def impact_ranges(values: Sequence[int], kind: SymbolKind, label: str, *,
                  top: int = DEFAULT_CRITICAL_TOP, other: dict[str, Any] | None = None
                  ) -> tuple[Range, ...]:
    """The criticality map's impact classes as graduated ranges: the edges of
    :func:`maps.criticality.impact_edges`, its colours (and, for lines, weights); a value
    above the last edge takes the last class, as on the map; ``other`` draws the zero
    impacts (None: not drawn, as the map draws no node without one).

    Examples
    --------
    >>> [(r.lower, r.label) for r in impact_ranges([1, 2, 3, 50, 60, 70, 80, 90], "line",
    ...                                             "cut units {}", top=4)]
    [(1.0, 'cut units 1-67'), (68.0, 'cut units 68-74'), (75.0, 'cut units 75-82'), \
(83.0, 'cut units 83-90')]
    """
    edges = impact_edges(pd.Series(values, dtype=float), top)
    n = len(edges) - 1
    colors, weights = IMPACT_COLORS[-n:], IMPACT_WEIGHTS[-n:]
    ranges = []
    if other is not None:
        ranges.append(Range(0.0, math.nextafter(edges[0], -math.inf), "no impact",
                            Symbol.of_leaflet(kind, other)))
    for i, item in enumerate(base.class_legend("dot", IMPACT_COLORS, edges, label)):
        style: dict[str, Any] = (
            {"color": colors[i], "weight": weights[i], "opacity": 0.95} if kind == "line"
            else {**SPOF_NODE, "fillColor": colors[i]})
        upper = OPEN_TOP if i == n - 1 else math.nextafter(edges[i + 1], -math.inf)
        ranges.append(Range(edges[i], upper, item.label, Symbol.of_leaflet(kind, style)))
    return tuple(ranges)


def gap_ranges(units: Sequence[int]) -> tuple[Range, ...]:
    """The gaps map's classes of units not passed per H3 cell as graduated ranges (its
    colours over :func:`maps._base.nice_edges` of the cells' units).

    Examples
    --------
    >>> [r.label for r in gap_ranges([1, 1, 2, 3, 5, 8, 13])]
    ['1 units not passed', '2 units not passed', '3-4 units not passed', \
'5-7 units not passed', '8-13 units not passed']
    """
    edges = base.nice_edges(pd.Series(units, dtype=float), len(GAP_COLORS))
    n = len(edges) - 1
    items = base.class_legend("fill", GAP_COLORS, edges, "{} units not passed")
    return tuple(Range(edges[i], OPEN_TOP if i == n - 1 else math.nextafter(edges[i + 1],
                                                                           -math.inf),
                       item.label, Symbol.of_leaflet("fill", {**GAP_CELL,
                                                              "fillColor": item.color}))
                 for i, item in enumerate(items))


# ---- the project ---------------------------------------------------------------------------

def _kind(collection: str) -> SymbolKind:
    layer = LAYERS.get(collection) or RESULT_LAYERS[collection]
    first = layer.geometry_types[0]
    return "marker" if first == "Point" else "line" if first == "LineString" else "fill"


def _margin_columns(budget_db: float | None) -> dict[str, str] | None:
    """``margin_db`` of a layer holding only ``loss_db`` (the result collections)."""
    return None if budget_db is None else {"margin_db": f'({budget_db!r} - "loss_db")'}


def _result_layers(catalog: ServerCatalog, source: Any) -> list[FeatureLayer]:
    """The result collections, each styled as the web map that shows it."""
    classes = catalog.classes
    present = {c.id for c in catalog.collections}
    out: list[FeatureLayer] = []

    def add(name: str, collection: str, renderer: Renderer, labels: Labels | None = None,
            subset: str | None = None, layer_id: str | None = None) -> None:
        if collection in present:
            out.append(FeatureLayer(layer_id or f"netgis_{collection}", name,
                                    source(collection, subset), _kind(collection), renderer,
                                    labels, visible=False))

    margin = _margin_columns(classes.budget_db)
    add("Coverage: premises by optical margin", "premise_results",
        categorized(premise_classes(margin is not None), "marker", margin))
    unpassed = premise_classes(False)[-1]
    add("Premises not passed", "premise_results",
        SingleSymbol(Symbol.of_leaflet("marker", unpassed.style)),
        subset='NOT "passed"', layer_id="netgis_premise_results_not_passed")
    add("Criticality: spans by cut units", "span_results",
        Graduated("cut_units", impact_ranges(classes.span_impacts, "line", "cut units {}",
                                             other=SAFE_SPAN)))
    add("Criticality: nodes by failure units", "node_results",
        Graduated("failure_units", impact_ranges(classes.node_impacts, "marker",
                                                 "node failure units {}")))
    add("Gaps: build clusters by rank", "gap_clusters",
        SingleSymbol(Symbol.of_leaflet("fill", CLUSTER_HULL)),
        Labels(f'CASE WHEN "rank" <= {RANK_LABELS} THEN "rank" END'))
    add("Gaps: units not passed per H3 cell", "h3_gaps",
        Graduated("units", gap_ranges(classes.gap_units)))
    return out


def _tile_layers(catalog: ServerCatalog, authcfg: str | None) -> list[VectorTileLayer]:
    """The coverage map drawn from the vector tiles (premises only from the zoom where the
    tiles hold every premise, as on the web map)."""
    planned: dict[str, tuple[str, tuple[TileStyle, ...]]] = {
        "nodes": ("Cores and cabinets", tile_styles(_node_classes(), "marker", "nodes")),
        "premises": (f"Premises by optical margin (from zoom {THIN_BELOW_ZOOM})",
                     tile_styles(premise_classes(True), "marker", "premises",
                                 min_zoom=THIN_BELOW_ZOOM)),
        "spans": ("Spans: lit, planned, unlit", tile_styles(span_classes(), "line", "spans")),
        "areas": ("Areas", tile_styles(_plant_classes("areas")[1], "fill", "areas")),
    }
    return [VectorTileLayer(f"netgis_tiles_{layer}", name,
                            xyz_source(tiles.url, tiles.min_zoom, tiles.max_zoom,
                                       authcfg=authcfg), styles)
            for layer, (name, styles) in planned.items()
            if (tiles := catalog.tiles.get(layer)) is not None]


def _basemap_layer(basemap: TileSource) -> RasterTileLayer | VectorTileLayer:
    # the base map is public on every netgis server: no authentication
    source = xyz_source(basemap.url, basemap.min_zoom, basemap.max_zoom)
    name = basemap.name or "Base map"
    if not basemap.vector:
        return RasterTileLayer("netgis_basemap", name, source)
    styles = []
    for layer in basemap.layers:
        match = next(((kind, style) for pattern, kind, style in BASEMAP_VECTOR_STYLES
                      if re.search(pattern, layer, re.IGNORECASE)), None)
        if match is not None:
            styles.append(TileStyle(layer, layer, Symbol.of_leaflet(*match)))
    return VectorTileLayer("netgis_basemap", name, source, tuple(styles))


def _extent(catalog: ServerCatalog) -> tuple[float, float, float, float] | None:
    """The plant's box (its nodes, spans and premises; else its areas) in Web Mercator, with a
    margin of 5% on each side."""
    def boxes_of(names: Sequence[str]) -> list[tuple[float, float, float, float]]:
        return [c.bbox for c in catalog.collections if c.id in names and c.bbox is not None]

    boxes = boxes_of(("nodes", "spans", "premises")) or boxes_of(("areas",))
    if not boxes:
        return None
    west, south = min(b[0] for b in boxes), max(min(b[1] for b in boxes), -_MAX_LAT)
    east, north = max(b[2] for b in boxes), min(max(b[3] for b in boxes), _MAX_LAT)
    (x0, x1), (y0, y1) = _TO_MERCATOR.transform([west, east], [south, north])
    pad = 0.05 * max(x1 - x0, y1 - y0, 200.0)
    return x0 - pad, y0 - pad, x1 + pad, y1 + pad


def qgis_project(catalog: ServerCatalog, *, authcfg: str | None = None) -> Project:
    """The QGIS project of a server: groups ``Coverage map (vector tiles)``, ``Results``,
    ``Plant`` and ``Base map`` (each only with what the server has), in Web Mercator
    (EPSG:3857, the CRS of the tiles), opening on the plant's extent.

    ``authcfg`` names a QGIS authentication configuration that every layer but the base
    map (always public) uses: the project then holds its id, never a key.

    Examples
    --------
    >>> catalog = ServerCatalog(url="http://127.0.0.1:8000", title="netgis", collections=(
    ...     Collection("premise_results", "Premise results", (8.6, 50.0, 8.8, 50.2)),))
    >>> project = qgis_project(catalog)
    >>> [(group.name, [layer.name for layer in group.children]) for group in project.tree]
    [('Results', ['Coverage: premises by optical margin', 'Premises not passed'])]
    """
    def source(collection: str, subset: str | None = None) -> str:
        found = catalog.collection(collection)
        return oapif_source(catalog.url, collection, subset=subset, authcfg=authcfg,
                            page_size=None if found is None else found.page_size)

    plant = []
    for layer in PLANT:
        found = catalog.collection(layer)
        if found is not None:
            kind, classes = _plant_classes(layer)
            plant.append(FeatureLayer(f"netgis_{layer}", found.title, source(layer), _kind(layer),
                                      categorized(classes, kind), visible=False))
    groups = [Group("Coverage map (vector tiles)", tuple(_tile_layers(catalog, authcfg))),
              Group("Results", tuple(_result_layers(catalog, source))),
              Group("Plant", tuple(plant)),
              Group("Base map", () if catalog.basemap is None
                    else (_basemap_layer(catalog.basemap),))]
    return Project(f"{catalog.title} ({catalog.url})",
                   tuple(g for g in groups if g.children), extent=_extent(catalog))
