"""The base map: tiles of a local MBTiles or PMTiles file (``NETGIS_BASEMAP``), served offline.

``GET /basemap.json`` is its TileJSON 3.0 document (tile URL template, format, zoom range,
bounds, center, attribution as plain text, vector layer names) and
``GET /basemap/{z}/{x}/{y}.{ext}`` one XYZ tile (``ext`` the file's format: ``png``,
``jpg``, ``webp``, or ``pbf`` / ``mvt`` for vector tiles), as the maps, the portal, the
HTML item pages and any TileJSON client (QGIS, MapLibre) use them. docs/basemap.md says
how a city makes such a file from an OpenStreetMap extract.

- A tile the file does not have is a **404** (a problem document), as is every path here
  when no base map is configured, and a tile asked for with another extension than the
  file's. A z/x/y that is not a tile address (not whole numbers, z above 30, x or y
  outside 0..2**z-1) is a **400**.
- Tiles carry a strong ``ETag`` (a digest of their bytes) and
  ``Cache-Control: public, max-age=86400``: a browser keeps them for a day, then asks
  again with ``If-None-Match`` and gets a 304 while the file is unchanged.
- Vector tiles stored gzip-compressed are sent so (``Content-Encoding: gzip``) to a client
  that accepts it, decompressed for one that does not.
- The routes are public (no key even with ``NETGIS_OPEN_READS=false``): a base map is
  public data and the residents' portal draws it.
"""

from __future__ import annotations

import gzip
import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Request, Response
from fastapi.responses import JSONResponse

from netgis.api.errors import ApiError, problem_responses
from netgis.api.settings import Settings
from netgis.errors import ParameterError, Problem
from netgis.io.basemap import MAX_ZOOM, BasemapFile, BasemapInfo, is_gzip, open_basemap

router = APIRouter(tags=["Base map"])

#: A day in the browser's cache, then a revalidation (304 while the file is unchanged).
CACHE_CONTROL = "public, max-age=86400"
#: The paths of the base map, for :data:`netgis.api.deps.PUBLIC_PATHS`.
PATHS = ("/basemap.json", "/basemap/{z}/{x}/{y}.{ext}")
#: Extensions a client may ask vector tiles by.
_VECTOR_EXTS = ("pbf", "mvt")


def install(app: FastAPI, settings: Settings) -> None:
    """Open ``settings.basemap`` (a bad file stops the start: :class:`BasemapError`) and add
    the routes to ``app``; without the setting the routes answer 404."""
    app.state.basemap = open_basemap(settings.basemap) if settings.basemap else None
    app.include_router(router)


def get_basemap(request: Request) -> BasemapFile:
    """The open base-map file; a 404 naming the setting when there is none."""
    basemap: BasemapFile | None = request.app.state.basemap
    if basemap is None:
        raise ApiError(404, "no base map: this server has none (set NETGIS_BASEMAP to an "
                            "MBTiles or PMTiles file, docs/basemap.md)")
    return basemap


BasemapDep = Annotated[BasemapFile, Depends(get_basemap)]
IfNoneMatch = Annotated[str | None, Header(include_in_schema=False)]
AcceptEncoding = Annotated[str | None, Header(include_in_schema=False)]


def tilejson(info: BasemapInfo, base_url: str) -> dict[str, Any]:
    """TileJSON 3.0 of a base map whose routes are under ``base_url``.

    Examples
    --------
    >>> info = BasemapInfo("mbtiles", "png", "city", "© OpenStreetMap contributors", 10, 16,
    ...                    (8.6, 50.0, 8.8, 50.2), (8.7, 50.1, 14))
    >>> doc = tilejson(info, "http://127.0.0.1:8000")
    >>> doc["tiles"], doc["maxzoom"], doc["format"]
    (['http://127.0.0.1:8000/basemap/{z}/{x}/{y}.png'], 16, 'png')
    """
    doc: dict[str, Any] = {
        "tilejson": "3.0.0",
        "name": info.name,
        "scheme": "xyz",
        "format": info.ext,
        "tiles": [f"{base_url}/basemap/{{z}}/{{x}}/{{y}}.{info.ext}"],
        "attribution": info.attribution,
        "minzoom": info.min_zoom,
        "maxzoom": info.max_zoom,
        "bounds": list(info.bounds),
        "center": list(info.center),
    }
    if info.vector:
        doc["vector_layers"] = [{"id": name, "fields": {}} for name in info.vector_layers]
    return doc


@router.get("/basemap.json", summary="TileJSON of the base map",
            responses={200: {"description": "A TileJSON 3.0 document.",
                             "content": {"application/json": {}}},
                       **problem_responses(404)})
def basemap_tilejson(request: Request, basemap: BasemapDep) -> JSONResponse:
    """The base map (``NETGIS_BASEMAP``) as TileJSON 3.0: the absolute tile URL template,
    ``format`` (png, jpg, webp or pbf), ``minzoom``/``maxzoom`` (deeper zooms enlarge the
    ``maxzoom`` tiles), ``bounds``, ``center``, ``attribution`` (plain text, to be shown with
    the map) and, for vector tiles, ``vector_layers``."""
    base = str(request.base_url).rstrip("/")
    return JSONResponse(tilejson(basemap.info, base), headers={"Cache-Control": "no-cache"})


def _address(z: str, x: str, y: str) -> tuple[int, int, int]:
    """Whole numbers of a tile address in the pyramid; ParameterError (400) naming each
    that is not."""
    problems: list[Problem] = []
    values: dict[str, int] = {}
    for name, text in (("z", z), ("x", x), ("y", y)):
        if text.isascii() and text.isdigit() and len(text) <= 12:
            values[name] = int(text)
        else:
            problems.append(Problem("path", None, name, f"must be a whole number >= 0, "
                                                        f"not {text[:20]!r}"))
    if not problems:
        zoom = values["z"]
        if zoom > MAX_ZOOM:
            problems.append(Problem("path", None, "z", f"must be 0..{MAX_ZOOM}, not {zoom}"))
        else:
            problems += [Problem("path", None, name, f"must be 0..{2 ** zoom - 1} at zoom "
                                                     f"{zoom}, not {values[name]}")
                         for name in ("x", "y") if values[name] >= 2 ** zoom]
    if problems:
        raise ParameterError(problems, "not a tile address: "
                             + "; ".join(f"{p.field} {p.reason}" for p in problems))
    return values["z"], values["x"], values["y"]


@router.get("/basemap/{z}/{x}/{y}.{ext}", summary="A base-map tile", response_class=Response,
            responses={200: {"description": "The tile as stored in the file (an image, or a "
                                            "Mapbox Vector Tile).",
                             "content": {"image/png": {}, "image/jpeg": {}, "image/webp": {},
                                         "application/vnd.mapbox-vector-tile": {}}},
                       304: {"description": "Not modified: the tile named by If-None-Match."},
                       **problem_responses(400, 404)})
def basemap_tile(z: str, x: str, y: str, ext: str, basemap: BasemapDep,
                 if_none_match: IfNoneMatch = None,
                 accept_encoding: AcceptEncoding = None) -> Response:
    """XYZ tile ``z/x/y`` of the base map in its format (``ext``: what ``/basemap.json``
    says; ``mvt`` too for vector tiles); 404 when the file has no such tile."""
    zxy = _address(z, x, y)
    info = basemap.info
    if ext != info.ext and not (info.vector and ext in _VECTOR_EXTS):
        raise ApiError(404, f"this base map has {info.ext} tiles, not {ext[:20]!r}: ask for "
                            f"/basemap/{{z}}/{{x}}/{{y}}.{info.ext}")
    data = basemap.tile(*zxy)
    headers = {"Cache-Control": CACHE_CONTROL}
    if data is None:
        raise ApiError(404, f"the base map has no tile {zxy[0]}/{zxy[1]}/{zxy[2]} (it has "
                            f"zooms {info.min_zoom}..{info.max_zoom} within "
                            f"{', '.join(f'{v:g}' for v in info.bounds)})", headers=headers)
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    # a gzip-compressed vector tile goes out compressed or not: two representations
    unzip = info.vector and is_gzip(data) and "gzip" not in (accept_encoding or "").lower()
    if info.vector and is_gzip(data):
        headers["Vary"] = "Accept-Encoding"
        if not unzip:
            headers["Content-Encoding"] = "gzip"
    headers["ETag"] = f'"{digest}-identity"' if unzip else f'"{digest}"'
    if if_none_match is not None and \
            headers["ETag"] in (t.strip() for t in if_none_match.split(",")):
        return Response(status_code=304, headers=headers)
    return Response(gzip.decompress(data) if unzip else data, media_type=info.media_type,
                    headers=headers)
