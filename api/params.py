"""Query parameters that several routers take, defined once so each is described alike.

FastAPI checks their types and bounds (a bad value is a 400 problem, see
:mod:`api.errors`); :func:`parse_bbox` checks what a type cannot express.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections import Counter
from collections.abc import Sequence
from types import UnionType
from typing import Annotated, Any, Literal, NamedTuple, Union, get_args, get_origin

from fastapi import Depends, Query, Request
from fastapi.routing import APIRoute

from netgis.engine.optics import LossBudget
from netgis.errors import ParameterError, Problem

FormatParam = Annotated[
    Literal["json", "geojson", "html"] | None,
    Query(description="Response format: JSON (GeoJSON for features) or an HTML page. Without "
          "it, an Accept header preferring text/html gets the page; JSON is the default."),
]
BboxParam = Annotated[
    str | None,
    Query(description="minLon,minLat,maxLon,maxLat in WGS84 (CRS84); a 6-number 3D box "
          "is accepted and its heights ignored.",
          examples=["-0.2,51.4,0.1,51.6"]),
]
CursorParam = Annotated[str | None, Query(
    max_length=4096,
    description="Where the page starts, as the `next` and `prev` links of a page give it: "
                "an opaque token (keyset paging on the id, so a deep page costs what the "
                "first does). Not with `offset`.")]
DropParam = Annotated[float | None, Query(
    gt=0, le=100_000, description="Maximum drop length in meters (default: the server's).")]


async def optics_params(
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
    """The optical parameters a request asks for; None keeps the server's (settings).
    A coroutine: only arithmetic, run in the event loop rather than in a worker thread."""
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


class Cursor(NamedTuple):
    """A keyset position: the page holds the features after (or before) ``key``, by id."""

    direction: Literal["after", "before"]
    key: str


_DIRECTIONS = {"after": "a", "before": "b"}
_MARKS: dict[str, Literal["after", "before"]] = {"a": "after", "b": "before"}


def encode_cursor(cursor: Cursor) -> str:
    """The opaque ``cursor`` query value of a keyset position (base64url, no padding).

    Examples
    --------
    >>> token = encode_cursor(Cursor("after", "p/17"))
    >>> token, parse_cursor(token)
    ('YTpwLzE3', Cursor(direction='after', key='p/17'))
    """
    raw = f"{_DIRECTIONS[cursor.direction]}:{cursor.key}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def parse_cursor(token: str | None) -> Cursor | None:
    """The keyset position of a ``cursor`` query value, or a :class:`ParameterError` naming
    ``cursor`` for anything that is not one this server wrote.

    Examples
    --------
    >>> parse_cursor("not a cursor")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    netgis.errors.ParameterError: invalid cursor: not a cursor of this server's paging links ...
    """
    if token is None:
        return None
    reason = ("not a cursor of this server's paging links (take the next or prev link of a "
              "page as it is)")
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
        mark, _, key = raw.decode("utf-8").partition(":")
    except (binascii.Error, ValueError):
        mark, key = "", ""
    direction = _MARKS.get(mark)
    # one spelling per position (no padding, no stray bits), and no NUL (no id holds one)
    if direction is None or "\x00" in key or encode_cursor(Cursor(direction, key)) != token:
        raise ParameterError([Problem("query", None, "cursor", reason)],
                             f"invalid cursor: {reason}")
    return Cursor(direction, key)


#: Per route (by ``id(route)``; routes live as long as the app): each query parameter it
#: declares, and whether it takes several values (a list).
_DECLARED: dict[int, dict[str, bool]] = {}


def _query_fields(route: APIRoute) -> dict[str, bool]:
    fields = _DECLARED.get(id(route))
    if fields is None:
        fields = _query_names(route.dependant)
        _DECLARED[id(route)] = fields
    return fields


def declared_query_parameters(route: APIRoute) -> frozenset[str]:
    """Every query parameter ``route`` declares: its own and its dependencies', by alias.

    Taken from the route's dependency tree, the same tree the OpenAPI document is
    made from, so what is accepted is exactly what is documented.
    """
    return frozenset(_query_fields(route))


def _query_names(dependant: Any) -> dict[str, bool]:
    names = {str(field.alias): _takes_many(field.field_info.annotation)
             for field in dependant.query_params}
    for sub in dependant.dependencies:
        names.update(_query_names(sub))
    return names


def _takes_many(annotation: Any) -> bool:
    """Whether a parameter of this type takes several values (``list[str] | None``...)."""
    if get_origin(annotation) in (Union, UnionType):
        return any(_takes_many(a) for a in get_args(annotation))
    return get_origin(annotation) in (list, tuple, set, frozenset, Sequence)


async def reject_unknown_query(request: Request) -> None:
    """400 naming each query parameter the route does not declare, and each one given more
    than once that takes one value (an application-wide dependency): a misspelt
    ``drop_mm=40`` must not quietly give the default's answer, nor ``limit=5&limit=500``
    one of the two. A value holding a NUL character is a 400 too (no value of netgis has
    one; PostgreSQL refuses it in text)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    fields = _query_fields(route)
    given = request.query_params.multi_items()
    unknown = sorted({name for name, _ in given} - set(fields))
    if unknown:
        raise ParameterError(
            [Problem("query", None, name, "unknown query parameter") for name in unknown],
            f"unknown query parameter{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}"
            f" (this endpoint takes: {', '.join(sorted(fields)) or 'none'})")
    counts = Counter(name for name, _ in given)
    repeated = sorted(name for name, n in counts.items() if n > 1 and not fields[name])
    if repeated:
        raise ParameterError(
            [Problem("query", None, name, f"given {counts[name]} times; it takes one value")
             for name in repeated],
            f"query parameter{'s' if len(repeated) > 1 else ''} given more than once: "
            f"{', '.join(repeated)}")
    # no id, name or filter holds a NUL character, and PostgreSQL cannot take one in text
    with_nul = sorted({name for name, value in given if "\x00" in value})
    if with_nul:
        raise ParameterError(
            [Problem("query", None, name, "holds a NUL character") for name in with_nul],
            f"query parameter{'s' if len(with_nul) > 1 else ''} holding a NUL character: "
            f"{', '.join(with_nul)}")
