"""Query parameters that several routers take, defined once so each is described alike.

FastAPI checks their types and bounds (a bad value is a 400 problem, see
:mod:`api.errors`); :func:`parse_bbox` checks what a type cannot express.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request
from fastapi.routing import APIRoute

from netgis.errors import ParameterError, Problem
from netgis.optics import LossBudget

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


def optics_params(
    budget_db: Annotated[float | None, Query(
        ge=0, le=100, description="Optical budget in dB (default: the server's).")] = None,
    pon_class: Annotated[Literal["gpon-b+", "gpon-c+", "xgs-pon-n1", "xgs-pon-n2"] | None, Query(
        description="Budget of a named PON class; budget_db overrides it.")] = None,
    atten_db_per_km: Annotated[float | None, Query(
        ge=0, le=10, description="Fiber attenuation in dB/km (default 0.35).")] = None,
    splice_db: Annotated[float | None, Query(
        ge=0, le=10, description="Loss per splice node in dB (default 0.1).")] = None,
    fixed_db: Annotated[float | None, Query(
        ge=0, le=50, description="Connector loss at both ends in dB (default 1.0).")] = None,
) -> LossBudget | None:
    """The optical parameters a request asks for; None keeps the server's (settings)."""
    if pon_class is None and all(v is None for v in (budget_db, atten_db_per_km, splice_db,
                                                     fixed_db)):
        return None
    base = LossBudget.preset(pon_class) if pon_class else LossBudget()
    return base.with_(budget_db=budget_db, atten_db_per_km=atten_db_per_km,
                      splice_db=splice_db, fixed_db=fixed_db)


#: Optical loss parameters of a request (None: the server's).
OpticsParam = Annotated[LossBudget | None, Depends(optics_params)]


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
