"""OGC API - Features collections: the four layers of the plant, read and (with a key) written,
and the seven strand layers (attribute tables: features with ``geometry: null``).

Each layer gets its own paths, so the OpenAPI document names each layer's
properties and filters (the contract's fields, e.g. ``?status=planned`` or
``?units=2``). Items also take a CQL2 ``filter`` (text or JSON, OGC API -
Features Part 3; see :mod:`netgis.storage.filters`). Every collection has its
spatial extent (and spans their years) from the database's extent aggregate,
cached per data version. Every read answers JSON, or an HTML page for
``f=html`` or a browser's Accept header (:mod:`api.html`).

The strand layers (cables, cable_spans, splitters, olt_ports, connections, drops,
strand_state; docs/access-and-audit.md) have the same routes, keys and ETags; every
write of one keeps the whole strand plant valid on the stored route layers (422 naming
each problem otherwise); ``POST /strand-edits`` writes several rows of them as one.
``/collections`` lists them while the database holds any strand row; their paths answer
always.
"""

import dataclasses
import functools
import inspect
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast
from urllib.parse import quote

import numpy as np
import shapely
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from netgis.api.auth import Principal
from netgis.api.deps import (
    JSON_MEDIA_TYPES,
    MIN_VERSION,
    JsonWrite,
    RepoDep,
    ServicesDep,
    SettingsDep,
    WriteAccess,
    WriterDep,
)
from netgis.api.errors import ApiError, problem_responses
from netgis.api.geojson import (
    FeatureIn,
    FeaturePatch,
    Link,
    collection_model,
    feature_model,
    features_json,
    features_to_frame,
    frame_to_features,
    properties_model,
)
from netgis.api.html import HTML_RESPONSE, page_url, render, wants_html
from netgis.api.params import (
    BboxParam,
    Cursor,
    CursorParam,
    FormatParam,
    parse_bbox,
    parse_cursor,
)
from netgis.api.result_features import (
    BEAD_COLLECTION,
    PLANT_LAYER,
    RESULT_COLLECTIONS,
    ResultLayer,
)
from netgis.api.routers.common import (
    GEOJSON,
    GeoJSONResponse,
    body_of,
    cursor_links,
    feature_or_collection,
    fit,
    json_body,
    paging_links,
    request_body,
    timestamp,
    url_for,
)
from netgis.api.settings import Settings
from netgis.api.strand_features import (
    StrandEditOut,
    StrandEditsIn,
    StrandEditsOut,
    StrandFeatureCollectionIn,
    StrandFeatureIn,
    StrandFeaturePatch,
    features_to_rows,
    id_description,
    rows_to_features,
)
from netgis.api.strand_features import feature_model as strand_feature_model
from netgis.errors import ParameterError, Problem, ValidationError
from netgis.products.result_layers import RESULT_LAYERS
from netgis.schema import LAYER_NAMES, LAYERS, STRAND_LAYER_NAMES, STRAND_LAYERS, Layer
from netgis.storage.filters import GEOMETRY, parse_filter
from netgis.storage.models import INT_MAX, INT_MIN
from netgis.storage.repository import LayerExtent, Repository
from netgis.storage.strand_store import StrandEdit, StrandStore

if TYPE_CHECKING:
    import geopandas as gpd

router = APIRouter(tags=["Features"])

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
#: Per layer, the integer year field that gives it a temporal extent (docs/spec.md §1.3,
#: Spans: the only time in the data model is a span's install_year).
YEAR_FIELDS = {"spans": "install_year"}
#: The contract's fields offered as query parameters where a layer has them (besides
#: every enum field): equality, like the enum filters.
PROPERTY_FILTERS = ("address", "location_id", "kind", "status", "units")
#: SQL engines take 64-bit offsets; anything beyond is certainly past the end.
MAX_OFFSET = 2**53


class SpatialExtent(BaseModel):
    """Where a collection's features lie: bounding boxes in CRS84 (OGC API - Features)."""

    bbox: list[list[float]]
    crs: str = CRS84


class TemporalExtent(BaseModel):
    """When a collection's features were installed: year intervals, Gregorian."""

    interval: list[list[str | None]]
    trs: str = GREGORIAN


class Extent(BaseModel):
    """A collection's extent in space and time."""

    spatial: SpatialExtent | None = None
    temporal: TemporalExtent | None = None


class Collection(BaseModel):
    """One layer as an OGC API - Features collection."""

    id: str
    title: str
    description: str
    extent: Extent | None = None
    itemType: str = "feature"
    crs: list[str] = [CRS84]
    links: list[Link]


class Collections(BaseModel):
    """Every collection of the server, with links."""

    links: list[Link]
    collections: list[Collection]


FilterParam = Annotated[str | None, Query(
    alias="filter",
    description="A CQL2 filter on the queryables (see /collections/{layer}/queryables), in "
                "the filter-lang encoding: comparisons, AND/OR/NOT, LIKE, BETWEEN, IN, IS NULL, "
                "CASEI, and S_INTERSECTS etc. on geometry with WGS84 literals.",
    examples=["kind = 'business' AND units >= 2"])]
FilterLangParam = Annotated[Literal["cql2-text", "cql2-json"] | None, Query(
    alias="filter-lang", description="The encoding of filter (default cql2-text).")]
FilterCrsParam = Annotated[Literal["http://www.opengis.net/def/crs/OGC/1.3/CRS84"] | None, Query(
    alias="filter-crs", description="The CRS of geometries in filter: only CRS84.")]


class WriteResult(BaseModel):
    """What a write stored."""

    layer: str
    ids: list[str]
    count: int


def _extent(found: LayerExtent) -> Extent | None:
    """The OGC extent object of a layer (None for an empty one: clients then read no box)."""
    if found.bbox is None:
        return None
    temporal = None
    if found.years is not None:
        first, last = found.years
        temporal = TemporalExtent(interval=[[f"{first:04d}-01-01T00:00:00Z",
                                             f"{last:04d}-12-31T23:59:59Z"]])
    return Extent(spatial=SpatialExtent(bbox=[list(found.bbox)]), temporal=temporal)


def _collection(request: Request, layer: Layer, found: LayerExtent | None) -> Collection:
    base = url_for(request, f"/collections/{layer.name}")
    return Collection(
        id=layer.name,
        title=layer.name.capitalize(),
        description=layer.description,
        extent=None if found is None else _extent(found),
        links=[
            Link(href=base, rel="self", type="application/json", title=layer.name),
            Link(href=page_url(base), rel="alternate", type="text/html",
                 title=f"{layer.name} as HTML"),
            Link(href=f"{base}/items", rel="items", type=GEOJSON, title=f"{layer.name} items"),
            Link(href=f"{base}/queryables", rel="http://www.opengis.net/def/rel/ogc/1.0/queryables",
                 type="application/schema+json", title=f"what {layer.name} can be filtered on"),
        ],
    )


def _crumbs(request: Request, *parts: tuple[str, str]) -> list[tuple[str, str]]:
    """Breadcrumbs of a page: the landing page, then (title, path) pairs, as HTML links."""
    return [("netgis", page_url(url_for(request, "/"))),
            *((title, page_url(url_for(request, path))) for title, path in parts)]


@router.get("/collections", response_model=Collections, response_model_exclude_none=True,
            responses=HTML_RESPONSE, summary="The layers of the plant")
def collections(request: Request, services: ServicesDep, f: FormatParam = None) -> Any:
    """nodes, spans, premises and areas as OGC API feature collections, with their extents;
    the analysis results (read-only: premise_results, span_results, node_results,
    gap_clusters, h3_gaps, and bead_classes on a server given the FCC files); and the
    strand layers (features without geometry) while the
    database holds any strand row."""
    found = services.extents(YEAR_FIELDS)
    strands = [_collection(request, STRAND_LAYERS[name], None) for name in STRAND_LAYER_NAMES] \
        if StrandStore.of(services.repo).present() else []
    results = [_result_collection(request, name, _listed_extent(services, name, found))
               for name in services.result_states.names]
    result = Collections(
        links=[Link(href=url_for(request, "/collections"), rel="self", type="application/json"),
               Link(href=page_url(url_for(request, "/collections")), rel="alternate",
                    type="text/html", title="This document as HTML")],
        collections=[*(_collection(request, LAYERS[name], found[name]) for name in LAYER_NAMES),
                     *results, *strands],
    )
    if wants_html(request, f):
        rows = [{**c.model_dump(), "href": url_for(request, f"/collections/{c.id}")}
                for c in result.collections]
        return render(request, "collections.html", title="Collections",
                      json_url=page_url(str(request.url), "json"),
                      crumbs=_crumbs(request), collections=rows)
    return result


def _filter_fields(layer: Layer) -> list[Any]:
    """The fields of ``layer`` offered as query parameters: its enums and the contract's
    :data:`PROPERTY_FILTERS`."""
    return [f for f in layer.fields if f.enum or f.name in PROPERTY_FILTERS]


def _filter_dependency(layer: Layer, fields: list[Any] | None = None) -> Any:
    """A dependency taking one optional query parameter per filterable field of ``layer``
    (``fields``; default: :func:`_filter_fields`)."""

    def filters(**kwargs: Any) -> dict[str, str]:
        return {k: str(v) for k, v in kwargs.items() if v is not None}

    def annotation(field: Any) -> Any:
        if field.enum:
            return cast(Any, Literal.__getitem__(field.enum)) | None
        return {"int": int | None, "float": float | None}.get(field.type, str | None)

    def query(field: Any) -> Any:
        description = f"Only {layer.name} whose {field.name} is this value (exactly)."
        if field.type == "int":  # the stored range: a value beyond it is a 400, not a 5xx
            return Query(None, ge=INT_MIN, le=INT_MAX, description=description)
        return Query(None, description=description)

    filters.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=query(f),
                          annotation=annotation(f))
        for f in (_filter_fields(layer) if fields is None else fields)
    ])
    return filters


_JSON_TYPES = {"int": "integer", "float": "number", "bool": "boolean", "text": "string"}


def queryables_schema(request: Request, layer: Layer) -> dict[str, Any]:
    """The JSON Schema of what ``layer``'s items can be filtered on (OGC API - Features Part 3)."""
    properties: dict[str, Any] = {}
    for field in layer.fields:
        spec: dict[str, Any] = {"title": field.name, "type": _JSON_TYPES[field.type]}
        if field.enum:
            spec["enum"] = list(field.enum)
        if field.description:
            spec["description"] = field.description
        properties[field.name] = spec
    if layer.geometry_types:
        properties[GEOMETRY] = {"title": GEOMETRY, "format": "geometry-any",
                                "description": "The feature's geometry (WGS84 "
                                               "longitude/latitude)."}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": url_for(request, f"/collections/{layer.name}/queryables"),
        "type": "object",
        "title": f"{layer.name.capitalize()} queryables",
        "properties": properties,
        "additionalProperties": False,
    }


def _columns(layer: Layer) -> list[str]:
    return layer.field_names


def _quoted(item_id: str) -> str:
    """``item_id`` as one URL path segment (percent-encoded UTF-8, "/" included)."""
    return quote(str(item_id), safe="")


def _feature_response(request: Request, layer: Layer, frame: "gpd.GeoDataFrame",
                      status_code: int = 200, version: int | None = None) -> GeoJSONResponse:
    feature = frame_to_features(frame, layer, _columns(layer))[0]
    base = url_for(request, f"/collections/{layer.name}")
    feature["links"] = [
        {"href": f"{base}/items/{_quoted(feature['id'])}", "rel": "self", "type": GEOJSON},
        {"href": base, "rel": "collection", "type": "application/json"},
    ]
    headers = None if version is None else {"ETag": f'"{version}"'}
    return GeoJSONResponse(feature, status_code=status_code, headers=headers)


IfMatchHeader = Annotated[str | None, Header(
    alias="If-Match",
    description="Write only if the feature still has this ETag (from GET, PUT or PATCH); "
                "412 if it changed since. `*` or no header: unconditional.")]
#: A strong entity tag at the head of an If-Match list (RFC 9110: DQUOTE *etagc DQUOTE).
_ETAG = re.compile(r'\s*(W/)?"([^"]*)"\s*(?:,|$)')
_ETAG_HEADERS: dict[str, Any] = {"ETag": {
    "description": "The feature's version; send it back in If-Match to write only if "
                   "nobody changed the feature meanwhile.",
    "schema": {"type": "string"}}}


def if_match_versions(header: str | None) -> frozenset[int] | None:
    """The versions an ``If-Match`` header accepts; None for no condition.

    ``*`` is no condition (the feature must exist, which PUT and PATCH require
    anyway). Weak tags never match (If-Match compares strongly), and neither
    does a tag that is not one of ours, so they leave the set empty: 412.

    Examples
    --------
    >>> sorted(if_match_versions('"3", W/"4", "x", "5"'))
    [3, 5]
    >>> if_match_versions("*") is None, if_match_versions(None) is None
    (True, True)
    """
    if header is None or header.strip() == "*":
        return None
    versions: set[int] = set()
    pos = 0
    while pos < len(header):
        match = _ETAG.match(header, pos)
        if match is None or match.end() == pos:
            break  # the rest is not a list of entity tags: it matches nothing
        weak, tag = match.group(1), match.group(2)
        if not weak and tag.isdigit():
            versions.add(int(tag))
        pos = match.end()
    return frozenset(versions)


def _rows(rows: Any, part: slice) -> Any:
    """``part`` of a page's rows: a list of rows or a frame."""
    return rows[part] if isinstance(rows, list) else rows.iloc[part]


def _row_ids(rows: Any, layer: Layer) -> list[str]:
    """The ids of a page's rows, in order: ``(id, ...)`` tuples or a frame."""
    if isinstance(rows, list):
        return [str(row[0]) for row in rows]
    return [str(v) for v in rows[layer.id_field].tolist()]


@dataclasses.dataclass(frozen=True)
class _Page:
    """Where one page of items starts and how many it holds.

    An ``offset`` page is counted and linked by offsets; any other page is a keyset
    page: read from the id index after (or before) ``position``, one row longer than
    the page, the extra row telling whether there is a page beyond it.
    """

    request: Request
    size: int
    offset: int
    position: Cursor | None

    @classmethod
    def of(cls, request: Request, settings: Settings, limit: int | None, offset: int,
           cursor: str | None) -> "_Page":
        """The page a request asks for; a 400 for a limit above the server's maximum or for
        a cursor given with an offset."""
        if limit is not None and limit > settings.max_limit:
            raise ParameterError(
                [Problem("query", None, "limit", f"at most {settings.max_limit}")],
                f"limit {limit} is above this server's maximum of {settings.max_limit}")
        position = parse_cursor(cursor)
        if position is not None and offset:
            raise ParameterError(
                [Problem("query", None, "cursor", "not with offset")],
                "cursor and offset both say where the page starts: give one of them")
        return cls(request, limit or settings.default_limit, offset, position)

    def window(self) -> dict[str, Any]:
        """The repository's paging arguments of this page."""
        if self.offset:
            return {"limit": self.size, "offset": self.offset}
        window: dict[str, Any] = {"limit": self.size + 1, "offset": self.offset}
        if self.position is not None:
            window[self.position.direction] = self.position.key
        return window

    def cut(self, rows: Any, layer: Layer, matched: int) -> tuple[Any, list[dict[str, Any]]]:
        """This page's rows (a list or a frame) of those read, and its self/next/prev links
        (``matched``, the count of all matches, serves offset pages only)."""
        if self.offset:
            return rows, paging_links(self.request, self.offset, self.size, len(rows), matched)
        rows, cursors = self._keyset(rows, layer)
        return rows, [{"href": str(self.request.url), "rel": "self", "type": GEOJSON},
                      *cursor_links(self.request, self.size, cursors)]

    def _keyset(self, rows: Any, layer: Layer) -> tuple[Any, list[tuple[str, Cursor]]]:
        """A keyset page's rows without the extra one, and the cursors of its neighbours."""
        beyond = len(rows) > self.size
        if self.position is not None and self.position.direction == "before":
            # the extra row is the lowest id: there is a page before this one
            rows = _rows(rows, slice(1, None) if beyond else slice(None))
            more_before, more_after = beyond, True
        else:
            rows = _rows(rows, slice(self.size))
            more_before, more_after = self.position is not None, beyond
        ids = _row_ids(rows, layer)
        cursors: list[tuple[str, Cursor]] = []
        if ids and more_after:
            cursors.append(("next", Cursor("after", ids[-1])))
        if ids and more_before:
            cursors.append(("prev", Cursor("before", ids[0])))
        return rows, cursors


_QUERYABLES_RESPONSES: dict[int | str, dict[str, Any]] = {200: {
    "content": {"application/schema+json": {"schema": {"type": "object"}},
                **HTML_RESPONSE[200]["content"]},
    "description": "A JSON Schema of the properties"}}
_ITEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"headers": _ETAG_HEADERS, **HTML_RESPONSE[200]}, **problem_responses(404)}
_WRITE_ERRORS = problem_responses(400, 401, 403, 409, 413, 415, 422)
_CONDITIONAL_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"headers": _ETAG_HEADERS}, **_WRITE_ERRORS, **problem_responses(404, 412)}
#: What POST and PUT take (PATCH takes merge-patch besides).
_BODY_TYPES = list(JSON_MEDIA_TYPES[:2])
_PAGING_LABELS = {"prev": "« previous page", "next": "next page »"}


@dataclasses.dataclass
class LayerEndpoints:
    """The routes of one layer's collection: its description, queryables, pages of items,
    one item, and (with a key) writes.

    An endpoint factory: the dataclass holds the router and the layer, and
    :meth:`register_routes` adds each route from the method of the same name.

    Parameters
    ----------
    router
        The router the routes are added to.
    layer
        The contract's layer the collection serves.
    """

    router: APIRouter
    layer: Layer
    name: str = dataclasses.field(init=False)
    title: str = dataclasses.field(init=False)
    #: The layer's GeoJSON Feature model, and that of one page of them.
    feature: type[BaseModel] = dataclasses.field(init=False)
    page: type[BaseModel] = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.name = self.layer.name
        self.title = self.name.capitalize()
        props = properties_model(self.layer)
        self.feature = feature_model(self.layer, props, f"{self.title}Feature")
        self.page = collection_model(self.feature, f"{self.title}FeatureCollection",
                                     counted=False)
        self.register_routes()

    @property
    def path(self) -> str:
        """The collection's path; its items are below it."""
        return f"/collections/{self.name}"

    def register_routes(self) -> None:
        """Add the layer's routes to the router: its reads, then its writes."""
        name, title, path = self.name, self.title, self.path
        item_path = f"{path}/items/{{featureId}}"
        add = self.router.add_api_route
        add(path, self.collection, methods=["GET"], response_model=Collection,
            response_model_exclude_none=True, responses=HTML_RESPONSE,
            summary=f"The {name} collection", name=f"{name}_collection")
        add(f"{path}/queryables", self.queryables, methods=["GET"], response_class=JSONResponse,
            responses=_QUERYABLES_RESPONSES, summary=f"What {name} can be filtered on",
            name=f"{name}_queryables")
        add(f"{path}/items", self._items_endpoint(), methods=["GET"], response_model=self.page,
            response_class=GeoJSONResponse, responses={**HTML_RESPONSE, **problem_responses(400)},
            summary=f"{title}, one page", name=f"{name}_items")
        add(item_path, self.item, methods=["GET"], response_model=self.feature,
            response_class=GeoJSONResponse, responses=_ITEM_RESPONSES,
            summary=f"One of the {name}", name=f"{name}_item")
        add(f"{path}/items", self.create, methods=["POST"], status_code=201,
            response_model=WriteResult, dependencies=JsonWrite, responses=_WRITE_ERRORS,
            summary=f"Add {name}", name=f"{name}_create",
            openapi_extra=request_body(["FeatureIn", "FeatureCollectionIn"], _BODY_TYPES))
        add(item_path, self.replace, methods=["PUT"], response_model=self.feature,
            response_class=GeoJSONResponse, dependencies=JsonWrite, responses=_CONDITIONAL_ERRORS,
            summary=f"Replace one of the {name}", name=f"{name}_replace",
            openapi_extra=request_body(["FeatureIn"], _BODY_TYPES))
        add(item_path, self.patch, methods=["PATCH"], response_model=self.feature,
            response_class=GeoJSONResponse, dependencies=JsonWrite, responses=_CONDITIONAL_ERRORS,
            summary=f"Change one of the {name}", name=f"{name}_patch",
            openapi_extra=request_body(["FeaturePatch"], list(JSON_MEDIA_TYPES)))
        add(item_path, self.delete, methods=["DELETE"], status_code=204,
            dependencies=WriteAccess, responses=problem_responses(401, 403, 404, 409),
            summary=f"Delete one of the {name}", name=f"{name}_delete", response_class=Response)

    # collection and item have no docstring: FastAPI would publish it as their description

    def collection(self, request: Request, services: ServicesDep, f: FormatParam = None) -> Any:
        result = _collection(request, self.layer, services.extents(YEAR_FIELDS)[self.name])
        if not wants_html(request, f):
            return result
        return render(request, "collection.html", title=self.title,
                      json_url=page_url(str(request.url), "json"),
                      crumbs=_crumbs(request, ("Collections", "/collections")),
                      collection=result.model_dump(),
                      extent=result.extent.model_dump() if result.extent else None,
                      href=url_for(request, self.path))

    def queryables(self, request: Request, f: FormatParam = None) -> Response:
        """The properties of the items, as a JSON Schema, for ``filter`` and query parameters."""
        schema = queryables_schema(request, self.layer)
        if not wants_html(request, f):
            return JSONResponse(schema, media_type="application/schema+json")
        return render(request, "queryables.html", title=f"{self.title} queryables",
                      json_url=page_url(str(request.url), "json"),
                      crumbs=self._crumbs(request), layer=self.name,
                      properties=schema["properties"])

    def items(
        self, request: Request, repo: RepoDep, settings: SettingsDep,
        filters: dict[str, str],
        bbox: BboxParam = None,
        limit: Annotated[int | None, Query(ge=1, description=(
            "Items per page (the document gives the default and the maximum; a larger "
            "value is a 400)."))] = None,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description=(
            "Items to skip (the `next` links page by `cursor` instead, which costs the same "
            "at any depth)."))] = 0,
        cursor: CursorParam = None,
        filter_: FilterParam = None,
        filter_lang: FilterLangParam = None,
        filter_crs: FilterCrsParam = None,
        f: FormatParam = None,
    ) -> Response:
        """One page of features, optionally within a WGS84 ``bbox``, with property filters and
        a CQL2 ``filter`` (all must hold).

        Pages follow each other by id: without ``offset``, the ``next`` and ``prev`` links
        carry a ``cursor`` (the last or first id of the page), and the next page is read from
        the id index on (keyset paging).
        """
        page = _Page.of(request, settings, limit, offset, cursor)
        query: dict[str, Any] = {
            "bbox": parse_bbox(bbox), "filters": filters or None,
            "cql2": None if filter_ is None else parse_filter(filter_, filter_lang),
            **page.window()}
        if wants_html(request, f):
            return self._items_html(request, repo, page, query)
        return self._items_json(request, repo, page, query)

    def _items_endpoint(self) -> Callable[..., Response]:
        """:meth:`items` with this layer's filter dependency as its ``filters``.

        Each layer filters on its own fields, so its items route takes its own query
        parameters (and names them in the OpenAPI document); a method's signature is the
        class's, so the route gets a function whose signature names them.
        """
        signature = inspect.signature(self.items)
        filters = Annotated[dict[str, str], Depends(_filter_dependency(self.layer))]

        @functools.wraps(self.items)
        def endpoint(*args: Any, **kwargs: Any) -> Response:
            return self.items(*args, **kwargs)

        endpoint.__signature__ = signature.replace(parameters=[  # type: ignore[attr-defined]
            p.replace(annotation=filters) if p.name == "filters" else p
            for p in signature.parameters.values()])
        return endpoint

    def _items_json(self, request: Request, repo: Repository, page: _Page,
                    query: dict[str, Any]) -> Response:
        """A page of items as GeoJSON, joined as text.

        The database writes each feature's geometry and properties as JSON
        (api.geojson.features_json): no geometry object nor dict per feature, since pages
        of 10,000 are the whole of a bulk copy's time. numberMatched (optional in OGC API -
        Features) is on the first page and offset pages: a cursor page reads only the next
        rows of the id index, no count of all.
        """
        found, count = repo.query_items_json(self.name, **query, count=page.position is None)
        rows, links = page.cut(found, self.layer, count or 0)
        links.append({"href": url_for(request, self.path), "rel": "collection",
                      "type": "application/json"})
        counts = {} if count is None else {"numberMatched": int(count)}
        tail = json.dumps({**counts, "numberReturned": len(rows), "timeStamp": timestamp(),
                           "links": links})[1:]
        features = features_json(rows, url_for(request, f"{self.path}/items"))
        return Response(f'{{"type":"FeatureCollection","features":{features},{tail}',
                        media_type=GEOJSON)

    def _items_html(self, request: Request, repo: Repository, page: _Page,
                    query: dict[str, Any]) -> Response:
        """A page of items as an HTML table, with links to the pages beside it."""
        found, matched = repo.query_items(self.name, **query)
        frame, links = page.cut(found, self.layer, int(matched))
        features = frame_to_features(frame, self.layer, _columns(self.layer),
                                     item_href=url_for(request, f"{self.path}/items"))
        paging = [(link["rel"], _PAGING_LABELS[link["rel"]], page_url(link["href"]))
                  for link in links if link["rel"] in _PAGING_LABELS]
        return render(request, "items.html", title=f"{self.title} items",
                      json_url=page_url(str(request.url), "json"),
                      crumbs=self._crumbs(request), layer=self.name, features=features,
                      columns=_columns(self.layer), matched=int(matched),
                      returned=len(features),
                      # where a cursor page starts is not known (it is not counted)
                      offset=None if page.position is not None else page.offset,
                      paging=paging, geojson_url=page_url(str(request.url), "json"))

    def item(self, request: Request, repo: RepoDep, featureId: str,
             f: FormatParam = None) -> Response:
        frame, version = repo.get_item_versioned(self.name, featureId)
        if not wants_html(request, f):
            return _feature_response(request, self.layer, frame, version=version)
        feature = frame_to_features(frame, self.layer, _columns(self.layer))[0]
        return render(request, "item.html", title=f"{self.title} {feature['id']}",
                      json_url=page_url(str(request.url), "json"),
                      crumbs=self._crumbs(request, ("Items", f"{self.path}/items")),
                      feature=feature, geojson_url=page_url(str(request.url), "json"))

    def create(
        self, request: Request, response: Response, repo: RepoDep, writer: WriterDep,
        features: Annotated[list[FeatureIn], Depends(feature_or_collection)],
    ) -> WriteResult:
        """Insert one Feature or a FeatureCollection (WGS84), all or nothing; ids must be new."""
        frame = features_to_frame(self.layer, features)
        repo.insert_items(self.name, frame, actor=writer.name)
        ids = [str(v) for v in frame[self.layer.id_field].tolist()]
        if len(ids) == 1:
            # quoted: an id may hold "/", "?" or letters an HTTP header cannot carry raw
            response.headers["Location"] = url_for(
                request, f"{self.path}/items/{_quoted(ids[0])}")
        return WriteResult(layer=self.name, ids=ids, count=len(ids))

    def replace(
        self, request: Request, repo: RepoDep, writer: WriterDep, featureId: str,
        body: Annotated[FeatureIn, Depends(body_of(FeatureIn))],
        if_match: IfMatchHeader = None,
    ) -> Response:
        """Replace every field and the geometry of one feature (If-Match: only if unchanged)."""
        frame = features_to_frame(self.layer, [body], path_id=featureId)
        return self._write(request, repo, repo.replace_item, featureId, frame, if_match,
                           writer)

    def patch(
        self, request: Request, repo: RepoDep, writer: WriterDep, featureId: str,
        body: Annotated[FeaturePatch, Depends(body_of(FeaturePatch))],
        if_match: IfMatchHeader = None,
    ) -> Response:
        """Change the given properties (and the geometry, if one is sent) of one feature.

        Only the fields sent are written; a concurrent change of other fields stays.
        """
        changes = self._changes(featureId, body)
        return self._write(request, repo, repo.patch_item, featureId, changes, if_match,
                           writer)

    def delete(self, repo: RepoDep, writer: WriterDep, featureId: str) -> Response:
        """Delete one feature (409 if other features still refer to it)."""
        repo.delete_item(self.name, featureId, actor=writer.name)
        return Response(status_code=204)

    def _write(self, request: Request, repo: Repository, write: Callable[..., int],
               feature_id: str, value: Any, if_match: str | None,
               writer: Principal) -> Response:
        """``write`` one feature if its version is one ``if_match`` names (412 if not), then
        answer with the feature as stored and its new ETag."""
        write(self.name, feature_id, value, if_match=if_match_versions(if_match),
              actor=writer.name)
        stored, version = repo.get_item_versioned(self.name, feature_id)
        return _feature_response(request, self.layer, stored, version=version)

    def _changes(self, feature_id: str, body: FeaturePatch) -> dict[str, Any]:
        """The fields a PATCH writes: its properties but the id (which cannot change), and its
        geometry if it has one."""
        id_field = self.layer.id_field
        changes: dict[str, Any] = dict(body.properties)
        if id_field in changes and str(changes[id_field]) != feature_id:
            raise ValidationError([Problem(self.name, feature_id, id_field,
                                           "an id cannot be changed; delete and insert instead")])
        changes.pop(id_field, None)
        if body.geometry is not None:
            try:
                changes["geometry"] = shapely.from_geojson(body.geometry.model_dump_json(
                    exclude_none=True))
            except shapely.errors.GEOSException as exc:
                raise ValidationError([Problem(self.name, feature_id, "geometry",
                                               f"not a valid GeoJSON geometry ({exc})")]) from None
        return changes

    def _crumbs(self, request: Request, *parts: tuple[str, str]) -> list[tuple[str, str]]:
        """Breadcrumbs of a page below the collection: collections, this one, then ``parts``."""
        return _crumbs(request, ("Collections", "/collections"), (self.title, self.path), *parts)


for _name in LAYER_NAMES:
    LayerEndpoints(router, LAYERS[_name])


# ----------------------------------------------------------------------------- strand layers


async def strand_features(request: Request) -> list[StrandFeatureIn]:
    """The body as rows of a strand layer: one Feature, or a FeatureCollection's (a 422 for
    an empty one)."""
    data = await json_body(request)
    is_collection = isinstance(data, dict) and data.get("type") == "FeatureCollection"
    features = (fit(StrandFeatureCollectionIn, data).features if is_collection
                else [fit(StrandFeatureIn, data)])
    if not features:
        raise ApiError(422, "the FeatureCollection has no features",
                       [Problem("body", None, "features", "at least one feature is needed")])
    return features


@dataclasses.dataclass
class StrandEndpoints:
    """The routes of one strand layer's collection: as :class:`LayerEndpoints`, for rows
    without geometry.

    Items are Features with ``geometry: null`` whose id is the row's feature id (the id
    field, or ``cable_id:seq`` / ``cable_id:strand``). Every field is a query parameter
    (equality), and ``filter`` takes CQL2 on the fields; a ``bbox`` matches nothing. Writes
    keep the whole strand plant valid (422 listing each problem otherwise), and carry
    ETags, If-Match (DELETE too) and audit entries as the route layers do.
    """

    router: APIRouter
    layer: Layer
    name: str = dataclasses.field(init=False)
    title: str = dataclasses.field(init=False)
    feature: type[BaseModel] = dataclasses.field(init=False)
    page: type[BaseModel] = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.name = self.layer.name
        self.title = self.name.replace("_", " ").capitalize()
        self.feature = strand_feature_model(self.layer)
        self.page = collection_model(self.feature, f"{self.feature.__name__}Collection",
                                     counted=False)
        self.register_routes()

    @property
    def path(self) -> str:
        """The collection's path; its items are below it."""
        return f"/collections/{self.name}"

    def register_routes(self) -> None:
        """Add the layer's routes to the router: its reads, then its writes."""
        name, path = self.name, self.path
        item_path = f"{path}/items/{{featureId}}"
        add = self.router.add_api_route
        add(path, self.collection, methods=["GET"], response_model=Collection,
            response_model_exclude_none=True, responses=HTML_RESPONSE,
            summary=f"The {name} collection (no geometry)", name=f"{name}_collection")
        add(f"{path}/queryables", self.queryables, methods=["GET"], response_class=JSONResponse,
            responses=_QUERYABLES_RESPONSES, summary=f"What {name} can be filtered on",
            name=f"{name}_queryables")
        add(f"{path}/items", self._items_endpoint(), methods=["GET"], response_model=self.page,
            response_class=GeoJSONResponse, responses={**HTML_RESPONSE, **problem_responses(400)},
            summary=f"{self.title}, one page", name=f"{name}_items")
        add(item_path, self.item, methods=["GET"], response_model=self.feature,
            response_class=GeoJSONResponse, responses=_ITEM_RESPONSES,
            summary=f"One of the {name} (featureId: {id_description(self.layer)})",
            name=f"{name}_item")
        add(f"{path}/items", self.create, methods=["POST"], status_code=201,
            response_model=WriteResult, dependencies=JsonWrite, responses=_WRITE_ERRORS,
            summary=f"Add {name}", name=f"{name}_create",
            openapi_extra=request_body(["StrandFeatureIn", "StrandFeatureCollectionIn"],
                                       _BODY_TYPES))
        add(item_path, self.replace, methods=["PUT"], response_model=self.feature,
            response_class=GeoJSONResponse, dependencies=JsonWrite, responses=_CONDITIONAL_ERRORS,
            summary=f"Replace one of the {name}", name=f"{name}_replace",
            openapi_extra=request_body(["StrandFeatureIn"], _BODY_TYPES))
        add(item_path, self.patch, methods=["PATCH"], response_model=self.feature,
            response_class=GeoJSONResponse, dependencies=JsonWrite, responses=_CONDITIONAL_ERRORS,
            summary=f"Change one of the {name}", name=f"{name}_patch",
            openapi_extra=request_body(["StrandFeaturePatch"], list(JSON_MEDIA_TYPES)))
        add(item_path, self.delete, methods=["DELETE"], status_code=204,
            dependencies=WriteAccess, responses=problem_responses(401, 403, 404, 409, 412, 422),
            summary=f"Delete one of the {name}", name=f"{name}_delete", response_class=Response)

    # collection and item have no docstring: FastAPI would publish it as their description

    def collection(self, request: Request, f: FormatParam = None) -> Any:
        result = _collection(request, self.layer, None)
        if not wants_html(request, f):
            return result
        return render(request, "collection.html", title=self.title,
                      json_url=page_url(str(request.url), "json"),
                      crumbs=_crumbs(request, ("Collections", "/collections")),
                      collection=result.model_dump(), extent=None,
                      href=url_for(request, self.path))

    def queryables(self, request: Request, f: FormatParam = None) -> Response:
        """The fields of the rows, as a JSON Schema, for ``filter`` and query parameters."""
        schema = queryables_schema(request, self.layer)
        if not wants_html(request, f):
            return JSONResponse(schema, media_type="application/schema+json")
        return render(request, "queryables.html", title=f"{self.title} queryables",
                      json_url=page_url(str(request.url), "json"),
                      crumbs=self._crumbs(request), layer=self.name,
                      properties=schema["properties"])

    def items(
        self, request: Request, repo: RepoDep, settings: SettingsDep,
        filters: dict[str, str],
        bbox: BboxParam = None,
        limit: Annotated[int | None, Query(ge=1, description=(
            "Items per page (the document gives the default and the maximum; a larger "
            "value is a 400)."))] = None,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")] = 0,
        cursor: CursorParam = None,
        filter_: FilterParam = None,
        filter_lang: FilterLangParam = None,
        filter_crs: FilterCrsParam = None,
        f: FormatParam = None,
    ) -> Response:
        """One page of rows in key order, with property filters and a CQL2 ``filter`` on the
        fields (all must hold). Rows have no geometry: a ``bbox`` matches none."""
        page = _Page.of(request, settings, limit, offset, cursor)
        spatial = parse_bbox(bbox) is not None
        cql2 = None if filter_ is None else parse_filter(filter_, filter_lang)
        found, count = StrandStore.of(repo).page(
            self.name, filters=filters or None, cql2=cql2, spatial=spatial,
            count=page.position is None or wants_html(request, f), **page.window())
        href = url_for(request, f"{self.path}/items")
        rows, links = page.cut(rows_to_features(self.layer, found, href), self.layer,
                               count or 0)
        features = [feature for _, feature in rows]
        if wants_html(request, f):
            paging = [(link["rel"], _PAGING_LABELS[link["rel"]], page_url(link["href"]))
                      for link in links if link["rel"] in _PAGING_LABELS]
            return render(request, "items.html", title=f"{self.title} items",
                          json_url=page_url(str(request.url), "json"),
                          crumbs=self._crumbs(request), layer=self.name, features=features,
                          columns=self.layer.field_names, matched=int(count or 0),
                          returned=len(features),
                          offset=None if page.position is not None else page.offset,
                          paging=paging, geojson_url=page_url(str(request.url), "json"))
        links.append({"href": url_for(request, self.path), "rel": "collection",
                      "type": "application/json"})
        counts = {} if count is None else {"numberMatched": int(count)}
        return GeoJSONResponse({"type": "FeatureCollection", "features": features, **counts,
                                "numberReturned": len(features), "timeStamp": timestamp(),
                                "links": links})

    def _items_endpoint(self) -> Callable[..., Response]:
        """:meth:`items` with a filter parameter per field of the layer."""
        signature = inspect.signature(self.items)
        filters = Annotated[dict[str, str], Depends(
            _filter_dependency(self.layer, list(self.layer.fields)))]

        @functools.wraps(self.items)
        def endpoint(*args: Any, **kwargs: Any) -> Response:
            return self.items(*args, **kwargs)

        endpoint.__signature__ = signature.replace(parameters=[  # type: ignore[attr-defined]
            p.replace(annotation=filters) if p.name == "filters" else p
            for p in signature.parameters.values()])
        return endpoint

    def item(self, request: Request, repo: RepoDep, featureId: str,
             f: FormatParam = None) -> Response:
        frame, version = StrandStore.of(repo).get(self.name, featureId)
        if not wants_html(request, f):
            return self._feature_response(request, frame, version)
        feature = rows_to_features(self.layer, frame)[0][1]
        return render(request, "item.html", title=f"{self.title} {feature['id']}",
                      json_url=page_url(str(request.url), "json"),
                      crumbs=self._crumbs(request, ("Items", f"{self.path}/items")),
                      feature=feature, geojson_url=page_url(str(request.url), "json"))

    def create(
        self, request: Request, response: Response, repo: RepoDep, writer: WriterDep,
        features: Annotated[list[StrandFeatureIn], Depends(strand_features)],
    ) -> WriteResult:
        """Add one row (a Feature with null geometry) or a FeatureCollection of them, all or
        nothing; ids must be new and the strand plant must stay valid."""
        rows = features_to_rows(self.layer, features)
        ids = StrandStore.of(repo).insert(self.name, rows, actor=writer.name)
        if len(ids) == 1:
            response.headers["Location"] = url_for(
                request, f"{self.path}/items/{_quoted(ids[0])}")
        return WriteResult(layer=self.name, ids=ids, count=len(ids))

    def replace(
        self, request: Request, repo: RepoDep, writer: WriterDep, featureId: str,
        body: Annotated[StrandFeatureIn, Depends(body_of(StrandFeatureIn))],
        if_match: IfMatchHeader = None,
    ) -> Response:
        """Replace every field of one row (If-Match: only if unchanged); the strand plant
        must stay valid."""
        rows = features_to_rows(self.layer, [body], path_id=featureId)
        row = {k: rows[k].iat[0] for k in rows.columns}
        StrandStore.of(repo).replace(self.name, featureId, row,
                                     if_match=if_match_versions(if_match), actor=writer.name)
        return self._feature_response(request, *StrandStore.of(repo).get(self.name, featureId))

    def patch(
        self, request: Request, repo: RepoDep, writer: WriterDep, featureId: str,
        body: Annotated[StrandFeaturePatch, Depends(body_of(StrandFeaturePatch))],
        if_match: IfMatchHeader = None,
    ) -> Response:
        """Change the given fields of one row; the strand plant must stay valid."""
        StrandStore.of(repo).patch(self.name, featureId, dict(body.properties),
                                   if_match=if_match_versions(if_match), actor=writer.name)
        return self._feature_response(request, *StrandStore.of(repo).get(self.name, featureId))

    def delete(self, repo: RepoDep, writer: WriterDep, featureId: str,
               if_match: IfMatchHeader = None) -> Response:
        """Delete one row (If-Match: only if unchanged); the strand plant must stay valid
        without it."""
        StrandStore.of(repo).delete(self.name, featureId,
                                    if_match=if_match_versions(if_match), actor=writer.name)
        return Response(status_code=204)

    def _feature_response(self, request: Request, frame: Any, version: int) -> GeoJSONResponse:
        fid, feature = rows_to_features(self.layer, frame)[0]
        base = url_for(request, self.path)
        feature["links"] = [
            {"href": f"{base}/items/{_quoted(fid)}", "rel": "self", "type": GEOJSON},
            {"href": base, "rel": "collection", "type": "application/json"},
        ]
        return GeoJSONResponse(feature, headers={"ETag": f'"{version}"'})

    def _crumbs(self, request: Request, *parts: tuple[str, str]) -> list[tuple[str, str]]:
        return _crumbs(request, ("Collections", "/collections"), (self.title, self.path), *parts)


for _name in STRAND_LAYER_NAMES:
    StrandEndpoints(router, STRAND_LAYERS[_name])


@router.post("/strand-edits", response_model=StrandEditsOut, dependencies=JsonWrite,
             responses={**_WRITE_ERRORS, **problem_responses(404, 412)},
             summary="Several writes of strand rows as one",
             openapi_extra=request_body(["StrandEditsIn"], _BODY_TYPES))
def strand_edits(repo: RepoDep, writer: WriterDep,
                 body: Annotated[StrandEditsIn, Depends(body_of(StrandEditsIn))]
                 ) -> StrandEditsOut:
    """Create, replace, patch and delete rows of the strand layers together: one transaction
    and one data version, the whole strand plant validated once on the result (422 listing
    every problem, nothing written). What single-row writes cannot do alone: a new cable
    with its cable_spans, or a cable deleted with everything that names it. A row may be
    edited once per batch; ``etag`` makes an edit conditional (412). The audit log gets one
    entry per layer and kind of edit."""
    edits = [StrandEdit(e.layer, e.op, e.id, e.properties,
                        None if e.etag is None else if_match_versions(
                            e.etag if e.etag.lstrip().startswith(("\"", "W/")) else f'"{e.etag}"'))
             for e in body.edits]
    ids, version = StrandStore.of(repo).apply(edits, actor=writer.name)
    return StrandEditsOut(data_version=version, edits=[
        StrandEditOut(layer=e.layer, op=e.op, id=i) for e, i in zip(body.edits, ids, strict=True)])


# ------------------------------------------------------------------- analysis results


def _result_collection(request: Request, name: str,
                       bbox: tuple[float, float, float, float] | None) -> Collection:
    """The description of the result collection ``name`` (``bbox``: its WGS84 extent, when
    known)."""
    layer = RESULT_LAYERS[name]
    base = url_for(request, f"/collections/{name}")
    title = name.replace("_", " ").capitalize()
    return Collection(
        id=name, title=title,
        description=f"{layer.description} Read-only: the live analysis of the current data.",
        extent=None if bbox is None else Extent(spatial=SpatialExtent(bbox=[list(bbox)])),
        links=[
            Link(href=base, rel="self", type="application/json", title=name),
            Link(href=page_url(base), rel="alternate", type="text/html",
                 title=f"{name} as HTML"),
            Link(href=f"{base}/items", rel="items", type=GEOJSON, title=f"{name} items"),
            Link(href=f"{base}/queryables", rel="http://www.opengis.net/def/rel/ogc/1.0/queryables",
                 type="application/schema+json", title=f"what {name} can be filtered on"),
        ],
    )


def _listed_extent(services: Any, name: str, found: dict[str, LayerExtent]
                   ) -> tuple[float, float, float, float] | None:
    """The extent /collections shows for a result collection without making it: that of the
    plant layer it has a row per feature of, or of the collection if it is made already."""
    if name in PLANT_LAYER:
        return found[PLANT_LAYER[name]].bbox
    bead = services.result_states.bead
    if name == BEAD_COLLECTION and bead is not None:
        return bead.bbox  # type: ignore[no-any-return]
    kept = services.result_states.kept(name)
    return None if kept is None else kept.bbox


def _result_filters(layer: Layer) -> Any:
    """A dependency taking one optional query parameter per field of the result ``layer``,
    typed as the field (``passed=false``, ``passed=0``, ``cut_units=3``), and giving the
    values asked for by field."""

    def filters(**kwargs: Any) -> dict[str, Any]:
        return {k: v for k, v in kwargs.items() if v is not None}

    def annotation(field: Any) -> Any:
        if field.enum:
            return cast(Any, Literal.__getitem__(field.enum)) | None
        return {"int": int | None, "float": float | None, "bool": bool | None}.get(
            field.type, str | None)

    def query(field: Any) -> Any:
        description = f"Only {layer.name} whose {field.name} is this value (exactly)."
        if field.type == "int":
            return Query(None, ge=INT_MIN, le=INT_MAX, description=description)
        return Query(None, description=description)

    filters.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=query(f),
                          annotation=annotation(f))
        for f in layer.fields])
    return filters


@dataclasses.dataclass
class ResultEndpoints:
    """The routes of one analysis result collection (:mod:`netgis.api.result_features`):
    read-only, following the live analysis of the current data version.

    Its description, queryables (every column), pages of items with a property filter
    per column, ``bbox`` and CQL2 ``filter`` (as the plant layers'), keyset or offset paging
    with ``next`` links, and one item. Writes to its paths are a 405 problem.
    """

    router: APIRouter
    name: str
    layer: Layer = dataclasses.field(init=False)
    title: str = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.layer = RESULT_LAYERS[self.name]
        self.title = self.name.replace("_", " ").capitalize()
        self.register_routes()

    @property
    def path(self) -> str:
        """The collection's path; its items are below it."""
        return f"/collections/{self.name}"

    def register_routes(self) -> None:
        """Add the collection's routes: the reads, and a 405 for every write."""
        name, path = self.name, self.path
        item_path = f"{path}/items/{{featureId}}"
        add = self.router.add_api_route
        reads = [MIN_VERSION]
        # bead_classes is a 404 on a server without the FCC files
        absent = problem_responses(404) if name == BEAD_COLLECTION else {}
        add(path, self.collection, methods=["GET"], response_model=Collection,
            response_model_exclude_none=True, responses={**HTML_RESPONSE, **absent},
            dependencies=reads,
            summary=f"The {name} collection (analysis results, read-only)",
            name=f"{name}_collection")
        add(f"{path}/queryables", self.queryables, methods=["GET"], response_class=JSONResponse,
            responses={**_QUERYABLES_RESPONSES, **absent},
            summary=f"What {name} can be filtered on", name=f"{name}_queryables")
        add(f"{path}/items", self._items_endpoint(), methods=["GET"],
            response_class=GeoJSONResponse, dependencies=reads,
            responses={200: {"content": {GEOJSON: {"schema": {"type": "object"}}},
                             "description": "A FeatureCollection"},
                       **HTML_RESPONSE, **problem_responses(400, 503), **absent},
            summary=f"{self.title}, one page", name=f"{name}_items")
        add(item_path, self.item, methods=["GET"], response_class=GeoJSONResponse,
            dependencies=reads, responses={**HTML_RESPONSE, **problem_responses(404)},
            summary=f"One of the {name}", name=f"{name}_item")
        add(f"{path}/items", self.read_only, methods=["POST"], include_in_schema=False,
            name=f"{name}_create")
        add(item_path, self.read_only, methods=["PUT", "PATCH", "DELETE"],
            include_in_schema=False, name=f"{name}_write")

    def _layer(self, services: Any) -> ResultLayer:
        made: ResultLayer = services.result_states.layer(self.name)
        return made

    # collection and item have no docstring: FastAPI would publish it as their description

    def collection(self, request: Request, services: ServicesDep, f: FormatParam = None) -> Any:
        result = _result_collection(request, self.name, self._layer(services).bbox)
        if not wants_html(request, f):
            return result
        return render(request, "collection.html", title=self.title,
                      json_url=page_url(str(request.url), "json"),
                      crumbs=_crumbs(request, ("Collections", "/collections")),
                      collection=result.model_dump(),
                      extent=result.extent.model_dump() if result.extent else None,
                      href=url_for(request, self.path))

    def queryables(self, request: Request, f: FormatParam = None) -> Response:
        """The columns of the results, as a JSON Schema, for ``filter`` and query
        parameters."""
        request.app.state.services.result_states.check_served(self.name)
        schema = queryables_schema(request, self.layer)
        if not wants_html(request, f):
            return JSONResponse(schema, media_type="application/schema+json")
        return render(request, "queryables.html", title=f"{self.title} queryables",
                      json_url=page_url(str(request.url), "json"),
                      crumbs=self._crumbs(request), layer=self.name,
                      properties=schema["properties"])

    def items(
        self, request: Request, services: ServicesDep, settings: SettingsDep,
        filters: dict[str, Any],
        bbox: BboxParam = None,
        limit: Annotated[int | None, Query(ge=1, description=(
            "Items per page (the document gives the default and the maximum; a larger "
            "value is a 400)."))] = None,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description=(
            "Items to skip (the `next` links page by `cursor` instead).")) ] = 0,
        cursor: CursorParam = None,
        filter_: FilterParam = None,
        filter_lang: FilterLangParam = None,
        filter_crs: FilterCrsParam = None,
        f: FormatParam = None,
    ) -> Response:
        """One page of the results in id order, optionally within a WGS84 ``bbox``, with a
        property filter per column and a CQL2 ``filter`` (all must hold); every page of one
        walk comes from the analysis of the data version its answer names
        (``X-Data-Version``)."""
        page = _Page.of(request, settings, limit, offset, cursor)
        cql2 = None if filter_ is None else parse_filter(filter_, filter_lang)
        results = self._layer(services)
        matches = results.matches(filters, parse_bbox(bbox), cql2)
        window = page.window()
        rows, links = page.cut(results.window(matches, **window), self.layer, len(matches))
        positions = np.asarray([p for _, p in rows], dtype=np.int64)
        counted = page.position is None
        if wants_html(request, f):
            features = results.features(positions, url_for(request, f"{self.path}/items"))
            paging = [(link["rel"], _PAGING_LABELS[link["rel"]], page_url(link["href"]))
                      for link in links if link["rel"] in _PAGING_LABELS]
            return render(request, "items.html", title=f"{self.title} items",
                          json_url=page_url(str(request.url), "json"),
                          crumbs=self._crumbs(request), layer=self.name, features=features,
                          columns=self.layer.field_names, matched=len(matches),
                          returned=len(features),
                          offset=None if page.position is not None else page.offset,
                          paging=paging, geojson_url=page_url(str(request.url), "json"))
        links.append({"href": url_for(request, self.path), "rel": "collection",
                      "type": "application/json"})
        counts = {"numberMatched": len(matches)} if counted else {}
        tail = json.dumps({**counts, "numberReturned": len(rows), "timeStamp": timestamp(),
                           "links": links})[1:]
        return Response(f'{{"type":"FeatureCollection","features":'
                        f'{results.features_json(positions)},{tail}', media_type=GEOJSON)

    def _items_endpoint(self) -> Callable[..., Response]:
        """:meth:`items` with a typed filter parameter per column of the results."""
        signature = inspect.signature(self.items)
        filters = Annotated[dict[str, Any], Depends(_result_filters(self.layer))]

        @functools.wraps(self.items)
        def endpoint(*args: Any, **kwargs: Any) -> Response:
            return self.items(*args, **kwargs)

        endpoint.__signature__ = signature.replace(parameters=[  # type: ignore[attr-defined]
            p.replace(annotation=filters) if p.name == "filters" else p
            for p in signature.parameters.values()])
        return endpoint

    def item(self, request: Request, services: ServicesDep, featureId: str,
             f: FormatParam = None) -> Response:
        results = self._layer(services)
        at = np.asarray([results.position(featureId)], dtype=np.int64)
        base = url_for(request, self.path)
        feature = results.features(at, f"{base}/items")[0]
        if wants_html(request, f):
            return render(request, "item.html", title=f"{self.title} {feature['id']}",
                          json_url=page_url(str(request.url), "json"),
                          crumbs=self._crumbs(request, ("Items", f"{self.path}/items")),
                          feature=feature, geojson_url=page_url(str(request.url), "json"))
        feature["links"].append({"href": base, "rel": "collection", "type": "application/json"})
        return GeoJSONResponse(feature)

    def read_only(self) -> Response:
        """Every write: a 405 problem saying why and what to write instead."""
        raise ApiError(405, f"{self.name} is read-only: the results follow the live analysis "
                            "of the data; change the data (nodes, spans, premises, areas) "
                            "instead", [Problem(self.name, None, None, "read-only collection")],
                       headers={"Allow": "GET"})

    def _crumbs(self, request: Request, *parts: tuple[str, str]) -> list[tuple[str, str]]:
        return _crumbs(request, ("Collections", "/collections"), (self.title, self.path), *parts)


for _name in (*RESULT_COLLECTIONS, BEAD_COLLECTION):
    ResultEndpoints(router, _name)
