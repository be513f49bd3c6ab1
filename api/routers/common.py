"""Small helpers shared by the routers: URLs, GeoJSON responses, paging links, bodies.

This module holds no routes; query parameters are in :mod:`api.params`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from netgis.api.errors import ApiError
from netgis.api.geojson import FeatureCollectionIn, FeatureIn
from netgis.api.params import Cursor, encode_cursor
from netgis.errors import NetgisError, Problem

GEOJSON = "application/geo+json"
M = TypeVar("M", bound=BaseModel)


class GeoJSONResponse(JSONResponse):
    """A JSON response sent as ``application/geo+json``."""

    media_type = GEOJSON


def url_for(request: Request, path: str, **params: object) -> str:
    """Absolute URL of ``path`` on this server (behind any root path), with query ``params``."""
    base = str(request.base_url).rstrip("/")
    url = base + path
    query = "&".join(f"{k}={v}" for k, v in params.items() if v is not None)
    return f"{url}?{query}" if query else url


def timestamp() -> str:
    """The time now in UTC as ISO 8601 to the second (``timeStamp`` of a feature page)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def paging_links(request: Request, offset: int, limit: int, returned: int,
                 matched: int, media_type: str = GEOJSON) -> list[dict[str, str]]:
    """self / next / prev links of one offset page of items (every paged list of the API).

    Parameters
    ----------
    request
        The request of the page: its URL with ``offset`` and ``limit`` replaced is each link.
    offset, limit
        Where the page starts and its size.
    returned, matched
        Items on this page and in all (there is a next page while items are left).
    media_type
        The ``type`` of each link.
    """
    def page(rel: str, off: int) -> dict[str, str]:
        url = request.url.include_query_params(offset=off, limit=limit)
        return {"href": str(url), "rel": rel, "type": media_type}

    links = [{"href": str(request.url), "rel": "self", "type": media_type}]
    if offset + returned < matched and returned > 0:
        links.append(page("next", offset + returned))
    if offset > 0:
        links.append(page("prev", max(0, offset - limit)))
    return links


def cursor_links(request: Request, limit: int,
                 cursors: Sequence[tuple[str, Cursor]]) -> list[dict[str, str]]:
    """The ``next`` / ``prev`` links of a keyset page: this request's URL with each cursor
    (and ``limit``) in place of its own cursor and offset."""
    base = request.url.remove_query_params(["cursor", "offset"])
    return [{"href": str(base.include_query_params(cursor=encode_cursor(position),
                                                   limit=limit)),
             "rel": rel, "type": GEOJSON}
            for rel, position in cursors]


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


async def feature_or_collection(request: Request) -> list[FeatureIn]:
    """The body as a list of features: one GeoJSON Feature, or a FeatureCollection's (a 422
    for an empty one)."""
    data = await json_body(request)
    is_collection = isinstance(data, dict) and data.get("type") == "FeatureCollection"
    features = fit(FeatureCollectionIn, data).features if is_collection else [fit(FeatureIn, data)]
    if not features:
        raise ApiError(422, "the FeatureCollection has no features",
                       [Problem("body", None, "features", "at least one feature is needed")])
    return features


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


def safe_filename(name: str | None, default: str) -> str:
    r"""The last part of a file name a client sent, cut to characters safe in a path.

    Examples
    --------
    >>> safe_filename("C:\\data\\My city.gpkg", "upload"), safe_filename("../..", "upload")
    ('My city.gpkg', 'upload')
    """
    base = PurePosixPath((name or "").replace("\\", "/")).name
    base = re.sub(r"[^\w.\- ]", "_", base)[:120].strip(" .")
    return base or default


class UploadNames:
    """Where uploads were saved on the server, and the names their client gave them.

    Messages about a saved upload (a dataset that cannot be read, a CSV with a bad
    line) name the server's temporary path; :meth:`client_errors` rewrites every
    error raised inside it so that it names the client's own file instead.

    Parameters
    ----------
    tmp
        The temporary folder of the request; any path inside it that is left over
        after the known uploads are renamed is shortened to its part inside.
    """

    def __init__(self, tmp: Path) -> None:
        self.tmp = str(tmp)
        self._pairs: list[tuple[str, str]] = []

    def add(self, saved: Path, client_name: str) -> None:
        """``saved`` holds the upload the client called ``client_name``."""
        self._pairs.append((str(saved), client_name))
        if saved.name != client_name:
            self._pairs.append((saved.name, client_name))

    def add_folder(self, folder: Path, shown_as: str) -> None:
        """Files under ``folder`` are shown as ``shown_as/<their path inside>``."""
        self._pairs.append((str(folder) + os.sep, shown_as.rstrip("/") + "/"))

    def text(self, message: str) -> str:
        """``message`` with every known server path replaced by what the client knows."""
        for server, client in sorted(self._pairs, key=lambda p: len(p[0]), reverse=True):
            message = message.replace(server, client)
        return message.replace(self.tmp + os.sep, "").replace(self.tmp, "")

    def _problem(self, p: Problem) -> Problem:
        def fix(value: str | None) -> str | None:
            return None if value is None else self.text(value)

        return dataclasses.replace(p, layer=fix(p.layer) or p.layer, id=fix(p.id),
                                   field=fix(p.field), reason=self.text(p.reason))

    def renamed(self, exc: NetgisError | ApiError) -> NetgisError | ApiError:
        """A copy of ``exc`` whose message and problems name the client's files."""
        # not copy.copy: exception classes here take other arguments than their args
        new = exc.__class__.__new__(exc.__class__)
        new.__dict__.update(exc.__dict__)
        new.args = tuple(self.text(a) if isinstance(a, str) else a for a in exc.args)
        for attr in ("problems", "warnings"):
            items = getattr(exc, attr, None)
            if isinstance(items, list):
                setattr(new, attr, [self._problem(p) if isinstance(p, Problem) else p
                                    for p in items])
        if isinstance(new, ApiError):
            new.detail = self.text(new.detail)
        return new

    @contextmanager
    def client_errors(self) -> Iterator[None]:
        """Raise the errors of the block with the client's file names in them."""
        try:
            yield
        except (NetgisError, ApiError) as exc:
            raise self.renamed(exc) from None
