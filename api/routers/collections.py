"""OGC API - Features collections: the four layers of the plant, read and (with a key) written.

Each layer gets its own paths, so the OpenAPI document names each layer's
properties and filters (the contract's enum fields, e.g. ``?status=planned``).
"""

import inspect
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast
from urllib.parse import quote

import shapely
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel

from api.deps import JSON_MEDIA_TYPES, JsonWrite, RepoDep, SettingsDep, WriteAccess, WriterDep
from api.errors import ApiError, problem_responses
from api.geojson import (
    FeatureCollectionIn,
    FeatureIn,
    FeaturePatch,
    Link,
    collection_model,
    feature_model,
    features_to_frame,
    frame_to_features,
    properties_model,
)
from api.params import BboxParam, FormatParam, parse_bbox
from api.routers.common import (
    GEOJSON,
    GeoJSONResponse,
    body_of,
    fit,
    json_body,
    paging_links,
    request_body,
    timestamp,
    url_for,
)
from netgis.errors import Problem, ValidationError
from netgis.schema import LAYER_NAMES, LAYERS, Layer

if TYPE_CHECKING:
    import geopandas as gpd

router = APIRouter(tags=["Features"])

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
#: SQL engines take 64-bit offsets; anything beyond is certainly past the end.
MAX_OFFSET = 2**53


class Collection(BaseModel):
    id: str
    title: str
    description: str
    itemType: str = "feature"
    crs: list[str] = [CRS84]
    links: list[Link]


class Collections(BaseModel):
    links: list[Link]
    collections: list[Collection]


class WriteResult(BaseModel):
    """What a write stored."""

    layer: str
    ids: list[str]
    count: int


def _collection(request: Request, layer: Layer) -> Collection:
    base = url_for(request, f"/collections/{layer.name}")
    return Collection(
        id=layer.name,
        title=layer.name.capitalize(),
        description=layer.description,
        links=[
            Link(href=base, rel="self", type="application/json", title=layer.name),
            Link(href=f"{base}/items", rel="items", type=GEOJSON, title=f"{layer.name} items"),
        ],
    )


@router.get("/collections", response_model=Collections, summary="The layers of the plant")
def collections(request: Request, f: FormatParam = None) -> Collections:
    """nodes, spans, premises and areas as OGC API feature collections."""
    return Collections(
        links=[Link(href=url_for(request, "/collections"), rel="self", type="application/json")],
        collections=[_collection(request, LAYERS[name]) for name in LAYER_NAMES],
    )


def _filter_dependency(layer: Layer) -> Any:
    """A dependency taking one optional query parameter per enum field of ``layer``."""
    enum_fields = [f for f in layer.fields if f.enum]

    def filters(**kwargs: str | None) -> dict[str, str]:
        return {k: v for k, v in kwargs.items() if v is not None}

    filters.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter(
            f.name, inspect.Parameter.KEYWORD_ONLY,
            default=Query(None, description=f"Only {layer.name} whose {f.name} is this value."),
            annotation=cast(Any, Literal.__getitem__(f.enum)) | None,
        )
        for f in enum_fields
    ])
    return filters


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


def _add_layer(layer: Layer) -> None:
    name = layer.name
    title = name.capitalize()
    props = properties_model(layer)
    feature = feature_model(layer, props, f"{title}Feature")
    page = collection_model(feature, f"{title}FeatureCollection")
    item_path = f"/collections/{name}/items/{{featureId}}"

    @router.get(f"/collections/{name}", response_model=Collection,
                summary=f"The {name} collection", name=f"{name}_collection")
    def collection(request: Request, f: FormatParam = None) -> Collection:
        return _collection(request, layer)

    @router.get(
        f"/collections/{name}/items", response_model=page, response_class=GeoJSONResponse,
        responses=problem_responses(400), summary=f"{title}, one page",
        name=f"{name}_items",
    )
    def items(
        request: Request, repo: RepoDep, settings: SettingsDep,
        filters: Annotated[dict[str, str], Depends(_filter_dependency(layer))],
        bbox: BboxParam = None,
        limit: Annotated[int | None, Query(ge=1, description=(
            "Items per page; larger values are clamped to the server's maximum."))] = None,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")] = 0,
        f: FormatParam = None,
    ) -> Response:
        """One page of features, optionally within a WGS84 ``bbox`` and filtered by enum fields."""
        box = parse_bbox(bbox)
        size = min(limit or settings.default_limit, settings.max_limit)
        frame, matched = repo.query_items(name, bbox=box, filters=filters or None,
                                          limit=size, offset=offset)
        features = frame_to_features(frame, layer, _columns(layer),
                                     item_href=url_for(request, f"/collections/{name}/items"))
        links = paging_links(request, offset, size, len(features), int(matched))
        links.append({"href": url_for(request, f"/collections/{name}"), "rel": "collection",
                      "type": "application/json"})
        return GeoJSONResponse({
            "type": "FeatureCollection",
            "features": features,
            "numberMatched": int(matched),
            "numberReturned": len(features),
            "timeStamp": timestamp(),
            "links": links,
        })

    @router.get(item_path, response_model=feature, response_class=GeoJSONResponse,
                responses={200: {"headers": _ETAG_HEADERS}, **problem_responses(404)},
                summary=f"One of the {name}", name=f"{name}_item")
    def item(request: Request, repo: RepoDep, featureId: str, f: FormatParam = None) -> Response:
        frame, version = repo.get_item_versioned(name, featureId)
        return _feature_response(request, layer, frame, version=version)

    write_errors = problem_responses(400, 401, 403, 409, 413, 415, 422)
    conditional_errors = {200: {"headers": _ETAG_HEADERS}, **write_errors,
                          **problem_responses(404, 412)}
    body_types = list(JSON_MEDIA_TYPES[:2])

    @router.post(
        f"/collections/{name}/items", status_code=201, response_model=WriteResult,
        dependencies=JsonWrite, responses=write_errors, summary=f"Add {name}",
        name=f"{name}_create",
        openapi_extra=request_body(["FeatureIn", "FeatureCollectionIn"], body_types),
    )
    def create(
        request: Request, response: Response, repo: RepoDep, writer: WriterDep,
        features: Annotated[list[FeatureIn], Depends(_feature_or_collection)],
    ) -> WriteResult:
        """Insert one Feature or a FeatureCollection (WGS84), all or nothing; ids must be new."""
        frame = features_to_frame(layer, features)
        repo.insert_items(name, frame, actor=writer.name)
        ids = [str(v) for v in frame[layer.id_field].tolist()]
        if len(ids) == 1:
            # quoted: an id may hold "/", "?" or letters an HTTP header cannot carry raw
            response.headers["Location"] = url_for(
                request, f"/collections/{name}/items/{_quoted(ids[0])}")
        return WriteResult(layer=name, ids=ids, count=len(ids))

    @router.put(
        item_path, response_model=feature, response_class=GeoJSONResponse, dependencies=JsonWrite,
        responses=conditional_errors, summary=f"Replace one of the {name}",
        name=f"{name}_replace", openapi_extra=request_body(["FeatureIn"], body_types),
    )
    def replace(
        request: Request, repo: RepoDep, writer: WriterDep, featureId: str,
        body: Annotated[FeatureIn, Depends(body_of(FeatureIn))],
        if_match: IfMatchHeader = None,
    ) -> Response:
        """Replace every field and the geometry of one feature (If-Match: only if unchanged)."""
        frame = features_to_frame(layer, [body], path_id=featureId)
        repo.replace_item(name, featureId, frame, if_match=if_match_versions(if_match),
                          actor=writer.name)
        stored, version = repo.get_item_versioned(name, featureId)
        return _feature_response(request, layer, stored, version=version)

    @router.patch(
        item_path, response_model=feature, response_class=GeoJSONResponse, dependencies=JsonWrite,
        responses=conditional_errors, summary=f"Change one of the {name}",
        name=f"{name}_patch",
        openapi_extra=request_body(["FeaturePatch"], list(JSON_MEDIA_TYPES)),
    )
    def patch(
        request: Request, repo: RepoDep, writer: WriterDep, featureId: str,
        body: Annotated[FeaturePatch, Depends(body_of(FeaturePatch))],
        if_match: IfMatchHeader = None,
    ) -> Response:
        """Change the given properties (and the geometry, if one is sent) of one feature.

        Only the fields sent are written; a concurrent change of other fields stays.
        """
        changes: dict[str, Any] = dict(body.properties)
        if layer.id_field in changes and str(changes[layer.id_field]) != featureId:
            raise ValidationError([Problem(name, featureId, layer.id_field,
                                           "an id cannot be changed; delete and insert instead")])
        changes.pop(layer.id_field, None)
        if body.geometry is not None:
            try:
                changes["geometry"] = shapely.from_geojson(body.geometry.model_dump_json(
                    exclude_none=True))
            except shapely.errors.GEOSException as exc:
                raise ValidationError([Problem(name, featureId, "geometry",
                                               f"not a valid GeoJSON geometry ({exc})")]) from None
        repo.patch_item(name, featureId, changes, if_match=if_match_versions(if_match),
                        actor=writer.name)
        stored, version = repo.get_item_versioned(name, featureId)
        return _feature_response(request, layer, stored, version=version)

    @router.delete(
        item_path, status_code=204, dependencies=WriteAccess,
        responses={**problem_responses(401, 403, 404, 409)}, summary=f"Delete one of the {name}",
        name=f"{name}_delete", response_class=Response,
    )
    def delete(repo: RepoDep, writer: WriterDep, featureId: str) -> Response:
        """Delete one feature (409 if other features still refer to it)."""
        repo.delete_item(name, featureId, actor=writer.name)
        return Response(status_code=204)


async def _feature_or_collection(request: Request) -> list[FeatureIn]:
    data = await json_body(request)
    is_collection = isinstance(data, dict) and data.get("type") == "FeatureCollection"
    features = fit(FeatureCollectionIn, data).features if is_collection else [fit(FeatureIn, data)]
    if not features:
        raise ApiError(422, "the FeatureCollection has no features",
                       [Problem("body", None, "features", "at least one feature is needed")])
    return features


for _name in LAYER_NAMES:
    _add_layer(LAYERS[_name])
