"""Small helpers shared by the routers: URLs, GeoJSON responses, paging links, bodies.

This module holds no routes; query parameters are in :mod:`api.params`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from api.errors import ApiError
from netgis.errors import Problem

GEOJSON = "application/geo+json"
M = TypeVar("M", bound=BaseModel)


class GeoJSONResponse(JSONResponse):
    media_type = GEOJSON


def url_for(request: Request, path: str, **params: Any) -> str:
    """Absolute URL of ``path`` on this server (behind any root path), with query ``params``."""
    base = str(request.base_url).rstrip("/")
    url = base + path
    query = "&".join(f"{k}={v}" for k, v in params.items() if v is not None)
    return f"{url}?{query}" if query else url


def timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def paging_links(request: Request, offset: int, limit: int, returned: int,
                 matched: int) -> list[dict[str, Any]]:
    """self / next / prev links of one page of items."""
    def page(rel: str, off: int) -> dict[str, Any]:
        url = request.url.include_query_params(offset=off, limit=limit)
        return {"href": str(url), "rel": rel, "type": GEOJSON}

    links = [{"href": str(request.url), "rel": "self", "type": GEOJSON}]
    if offset + returned < matched and returned > 0:
        links.append(page("next", offset + returned))
    if offset > 0:
        links.append(page("prev", max(0, offset - limit)))
    return links


async def json_body(request: Request) -> Any:
    """The request body as JSON, or a 400 problem."""
    raw = await request.body()
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}",
                       [Problem("body", None, None, "not valid JSON")]) from None
    except RecursionError:
        # the parser recurses once per level of arrays/objects: ~1000 levels is its end
        raise ApiError(400, "the body is nested too deeply to read as JSON",
                       [Problem("body", None, None, "nested too deeply")]) from None


def fit(model: type[M], data: Any) -> M:
    """``data`` as ``model``, or a 422 problem naming each field that does not fit."""
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        problems = [Problem("body", None, ".".join(str(p) for p in e["loc"]) or None, e["msg"])
                    for e in exc.errors()]
        raise ApiError(422, "the body does not fit: " + "; ".join(str(p) for p in problems[:5]),
                       problems) from None


def body_of(model: type[M]) -> Callable[[Request], Any]:
    """A dependency parsing the (already size-checked) JSON body as ``model``."""

    async def parse(request: Request) -> M:
        return fit(model, await json_body(request))

    return parse


def request_body(schema_names: Sequence[str], media_types: Sequence[str]) -> dict[str, Any]:
    """``openapi_extra`` describing a JSON request body by component schema names."""
    refs = [{"$ref": f"#/components/schemas/{n}"} for n in schema_names]
    schema = refs[0] if len(refs) == 1 else {"oneOf": refs}
    return {"requestBody": {"required": True,
                            "content": {m: {"schema": schema} for m in media_types}}}
