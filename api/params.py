"""Query parameters that several routers take, defined once so each is described alike.

FastAPI checks their types and bounds (a bad value is a 400 problem, see
:mod:`api.errors`); :func:`parse_bbox` checks what a type cannot express.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from fastapi import Query, Request
from fastapi.routing import APIRoute

from netgis.errors import ParameterError, Problem

FormatParam = Annotated[
    Literal["json", "geojson"] | None,
    Query(description="Response format; only JSON / GeoJSON is offered."),
]
BboxParam = Annotated[
    str | None,
    Query(description="minLon,minLat,maxLon,maxLat in WGS84 (CRS84); a 6-number 3D box "
          "is accepted and its heights ignored.",
          examples=["-0.2,51.4,0.1,51.6"]),
]
DropParam = Annotated[float | None, Query(
    gt=0, le=100_000, description="Maximum drop length in meters (default: the server's).")]


def parse_bbox(bbox: str | None) -> tuple[float, float, float, float] | None:
    """``minx,miny,maxx,maxy`` as floats, or a :class:`ParameterError` naming the bbox.

    Examples
    --------
    >>> parse_bbox("8.6,50.0,0,8.8,50.2,100")
    (8.6, 50.0, 8.8, 50.2)
    """
    if bbox is None:
        return None

    def bad(reason: str) -> ParameterError:
        return ParameterError([Problem("query", None, "bbox", reason)], f"invalid bbox: {reason}")

    try:
        values = [float(v) for v in bbox.split(",")]
    except ValueError:
        raise bad("expected 4 (or 6) comma separated numbers") from None
    if len(values) == 6:
        values = [values[0], values[1], values[3], values[4]]
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise bad("expected 4 (or 6) comma separated finite numbers")
    minx, miny, maxx, maxy = values
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise bad("longitudes must lie in [-180, 180], latitudes in [-90, 90], miny <= maxy")
    if minx > maxx:
        raise bad("minx > maxx (boxes across the antimeridian are not supported)")
    return minx, miny, maxx, maxy


#: Query parameter names each route declares, by ``id(route)`` (routes live as long as the app).
_DECLARED: dict[int, frozenset[str]] = {}


def declared_query_parameters(route: APIRoute) -> frozenset[str]:
    """Every query parameter ``route`` declares: its own and its dependencies', by alias.

    Taken from the route's dependency tree, the same tree the OpenAPI document is
    made from, so what is accepted is exactly what is documented.
    """
    names = _DECLARED.get(id(route))
    if names is None:
        names = frozenset(_query_names(route.dependant))
        _DECLARED[id(route)] = names
    return names


def _query_names(dependant: Any) -> set[str]:
    names = {str(field.alias) for field in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def reject_unknown_query(request: Request) -> None:
    """400 naming each query parameter the route does not declare (an application-wide
    dependency): a misspelt ``drop_mm=40`` must not quietly give the default's answer."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    declared = declared_query_parameters(route)
    unknown = sorted(set(request.query_params.keys()) - declared)
    if unknown:
        raise ParameterError(
            [Problem("query", None, name, "unknown query parameter") for name in unknown],
            f"unknown query parameter{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}"
            f" (this endpoint takes: {', '.join(sorted(declared)) or 'none'})")
