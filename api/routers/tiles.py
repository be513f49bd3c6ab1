"""Vector tiles of the four layers (Mapbox Vector Tiles) and their TileJSON documents.

``GET /tiles/{layer}/{z}/{x}/{y}.mvt`` (XYZ, Web Mercator, z 0-22) and
``GET /tiles/{layer}.json`` (TileJSON 3.0), so QGIS, MapLibre and the netgis
maps open a layer of any size by URL. Tiles carry the layer's fields and its
analysis columns (:mod:`netgis.products.tiles` says which, and how tiles below z14 are
thinned), are cached per data version and analysis parameters, answer 304 to
a matching ``If-None-Match`` and 204 when empty. A tile (or TileJSON) at analysis
parameters whose analysis is not kept starts it, and costs an anonymous client a token of
the limit on new work like any request that does; tiles of a kept analysis never do.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from netgis.api.deps import MIN_VERSION, ServicesDep
from netgis.api.errors import problem_responses
from netgis.api.params import DropParam, OpticsParam
from netgis.products.tiles import (
    EXTENT,
    TileAddress,
    check_layer,
)
from netgis.products.tiles import tilejson as tilejson_doc

router = APIRouter(prefix="/tiles", tags=["Tiles"], dependencies=[MIN_VERSION])

#: Media type of a Mapbox Vector Tile.
MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
#: Tiles change with every write: a client keeps them but asks again (a cheap 304).
CACHE_CONTROL = "no-cache"

_TILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "A Mapbox Vector Tile (one layer named after the layer, extent "
                         f"{EXTENT}).", "content": {MVT_MEDIA_TYPE: {}}},
    204: {"description": "No feature of the layer in this tile."},
    304: {"description": "Not modified: the tile named by If-None-Match is current."},
}


@router.get("/{layer}.json", summary="TileJSON of a layer's vector tiles",
            responses={200: {"description": "A TileJSON 3.0 document.",
                             "content": {"application/json": {}}},
                       **problem_responses(400, 404)})
def tilejson(request: Request, layer: str, services: ServicesDep, drop_m: DropParam = None,
             optics: OpticsParam = None) -> JSONResponse:
    """TileJSON 3.0 of ``layer``: the tile URL template (absolute, with this request's
    analysis parameters), zoom range, bounds, center and the fields of its features."""
    check_layer(layer)
    _, result = services.analysis_for_tiles(drop_m, optics)
    query = f"?{request.url.query}" if request.url.query else ""
    base = str(request.base_url).rstrip("/")
    doc = tilejson_doc(layer, getattr(result.dataset, layer),
                       f"{base}/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt{query}")
    return JSONResponse(doc, headers={"Cache-Control": CACHE_CONTROL})


@router.get("/{layer}/{z}/{x}/{y}.mvt", summary="A vector tile of a layer",
            response_class=Response,
            responses={**_TILE_RESPONSES, **problem_responses(400, 404)})
def tile(request: Request, layer: str, z: int, x: int, y: int, services: ServicesDep,
         drop_m: DropParam = None, optics: OpticsParam = None) -> Response:
    """Every feature of ``layer`` intersecting tile ``z/x/y`` (thinned below z14), with the
    layer's fields and analysis columns, as a Mapbox Vector Tile."""
    address = TileAddress.of(layer, z, x, y)
    answer = services.tile(address, drop_m, optics,
                           if_none_match=request.headers.get("if-none-match"))
    headers = {"ETag": answer.etag, "Cache-Control": CACHE_CONTROL}
    if answer.body is None:
        return Response(status_code=304, headers=headers)
    if not answer.body:
        return Response(status_code=204, headers=headers)
    return Response(answer.body, media_type=MVT_MEDIA_TYPE, headers=headers)
