"""The BEAD answer (``POST /analysis/bead`` and a design plan's ``POST
/plans/{name}/analysis/bead``): FCC BDC availability and locations uploads classed and
joined with an analysis's plant (docs/spec.md §2.11 and §3.4: the same rules as
``netgis bead``), as JSON or drawn on a map (``POST /maps/bead``). Shared by the routers
(routers never import each other)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Annotated, Any, cast

from fastapi import Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from netgis.api.errors import ApiError
from netgis.api.routers.common import UploadNames, safe_filename
from netgis.errors import Problem

if TYPE_CHECKING:
    from netgis.api.settings import Settings
    from netgis.engine.analysis import Analysis
    from netgis.maps.basemap import Basemap
    from netgis.products.bead import BeadResult as BeadJoin


_CHUNK = 1024 * 1024
_LOCATION_SUFFIXES = (".csv", ".txt", ".gpkg", ".geojson", ".json", ".fgb", ".parquet")

#: The OpenAPI request body of a BEAD route (multipart: availability and locations).
UPLOAD_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {
        "type": "object",
        "required": ["availability", "locations"],
        "properties": {
            "availability": {"type": "string", "format": "binary", "description":
                             "FCC BDC public availability CSV (location_id, technology, "
                             "max_advertised_download_speed, max_advertised_upload_speed, "
                             "low_latency, ...); the part may repeat."},
            "locations": {"type": "string", "format": "binary", "description":
                          "Fabric-style CSV (location_id, latitude, longitude, ...) or a point "
                          "layer (.gpkg, .geojson, .fgb, .parquet) with location_id."},
        },
    }}}}}


class PlantJoin(BaseModel):
    """Locations of one class that the plant passes, could reach, or not."""

    passed: int
    reachable: int
    beyond: int


class BeadLocation(BaseModel):
    """One location of the upload: its BEAD class and whether the plant passes it."""

    location_id: str
    bead_class: str
    passed: bool
    distance_m: float | None
    plant: str


class BeadResult(BaseModel):
    """Counts per BEAD class, the join with the plant, and the classified locations."""

    data_version: int
    served: int
    underserved: int
    unserved: int
    locations_total: int = Field(description="Locations in the locations file.")
    drop_m: float
    reach_m: float
    plant: dict[str, PlantJoin]
    availability_rows: int
    counted_rows: int
    availability_locations_not_in_locations: int
    locations: list[BeadLocation] = Field(description="At most the server's page limit, in "
                                          "location_id order; numberMatched tells all.")
    numberMatched: int
    numberReturned: int


async def _save(upload: UploadFile, target: Path, budget: list[int]) -> None:
    with target.open("wb") as out:
        while chunk := await upload.read(_CHUNK):
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise ApiError(413, "the uploads are larger than allowed")
            out.write(chunk)


ReachParam = Annotated[float, Query(ge=0, le=1_000_000, description=(
    "Unpassed locations within this many meters count as reachable."))]


async def bead_join_of(request: Request, settings: Settings, drop: float, reach_m: float,
                       analysis_of: Callable[[float], tuple[int, Analysis]],
                       admit: Callable[[], None]) -> tuple[int, Analysis, BeadJoin]:
    """Read the uploads of ``request``, class the locations and join them with the plant of
    ``analysis_of(drop)``; ``admit`` charges the new work. The data version, the analysis
    and the join."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "multipart/form-data":
        raise ApiError(415, f"unsupported media type {media_type or '(none)'!r}; send "
                       "multipart/form-data with 'availability' and 'locations' parts")
    budget = [settings.max_upload_bytes]
    with tempfile.TemporaryDirectory(prefix="netgis-bead-") as tmp:
        avail_paths: list[Path] = []
        async with request.form(max_files=50, max_fields=10) as form:
            parts = [p for p in form.getlist("availability") if isinstance(p, UploadFile)]
            loc = form.get("locations")
            missing = [Problem("body", None, name, "a file part is required")
                       for name, ok in (("availability", bool(parts)),
                                        ("locations", isinstance(loc, UploadFile))) if not ok]
            if missing:
                raise ApiError(422, "the form needs 'availability' and 'locations' file parts",
                               missing)
            assert isinstance(loc, UploadFile)
            # each part in a folder of its own under the client's name, so that messages
            # about a file name the client's file (two parts may share a name)
            names = UploadNames(Path(tmp))
            for i, part in enumerate(parts):
                client_name = safe_filename(part.filename, "availability.csv")
                target = _folder(tmp, f"availability-{i}") / client_name
                names.add(target, client_name)
                await _save(part, target, budget)
                avail_paths.append(target)
            client_name = safe_filename(loc.filename, "locations.csv")
            suffix = PurePath(client_name).suffix.lower()
            # the reader goes by the suffix: an unknown one is read as CSV
            loc_path = _folder(tmp, "locations") / (
                client_name if suffix in _LOCATION_SUFFIXES else client_name + ".csv")
            names.add(loc_path, client_name)
            await _save(loc, loc_path, budget)
        version, result = await run_in_threadpool(analysis_of, drop)
        # the join is computed for each request, never kept: new work, charged as such
        admit()
        with names.client_errors():
            answer = await run_in_threadpool(_run, result, avail_paths, loc_path, drop,
                                             reach_m)
    return version, result, answer


async def bead_answer(request: Request, settings: Settings, drop: float, reach_m: float,
                      analysis_of: Callable[[float], tuple[int, Analysis]],
                      admit: Callable[[], None]) -> BeadResult:
    """The JSON answer of the uploads of ``request`` (see :func:`bead_join_of`)."""
    version, _, answer = await bead_join_of(request, settings, drop, reach_m, analysis_of,
                                            admit)
    rows = answer.locations.sort_values("location_id", kind="stable")
    shown = rows.iloc[:settings.max_limit]
    s = answer.summary
    return BeadResult(
        data_version=version, served=s["served"], underserved=s["underserved"],
        unserved=s["unserved"], locations_total=s["locations"], drop_m=s["drop_m"],
        reach_m=s["reach_m"], plant={k: PlantJoin(**v) for k, v in s["plant"].items()},
        availability_rows=s["availability_rows"], counted_rows=s["counted_rows"],
        availability_locations_not_in_locations=s["availability_locations_not_in_locations"],
        locations=[BeadLocation(location_id=r.location_id, bead_class=r.bead_class,
                                passed=bool(r.passed),
                                distance_m=None if r.distance_m != r.distance_m
                                else float(r.distance_m), plant=r.plant)
                   # pandas-stubs cannot know the column types of a row
                   for r in cast("Iterator[Any]", shown.itertuples(index=False))],
        numberMatched=len(rows), numberReturned=len(shown),
    )




def _folder(tmp: str, name: str) -> Path:
    folder = Path(tmp) / name
    folder.mkdir()
    return folder


def bead_map_page(settings: Settings, result: Analysis, answer: BeadJoin,
                  basemap: Basemap | None = None) -> tuple[str, str]:
    """The BEAD map of ``answer`` over the lit spans of ``result`` (the server's base map,
    assets from ``/static``): the page and its Content-Security-Policy."""
    from netgis.maps.bead import bead_map
    from netgis.maps.csp import secure_html

    return secure_html(bead_map(answer, spans=result.spans, basemap=basemap,
                                tiles_url=settings.tiles_url or None, base_url="/static"))


def _run(result: Analysis, availability: list[Path], locations: Path, drop_m: float,
         reach_m: float) -> BeadJoin:
    from netgis.products.bead import bead as run_bead

    return run_bead(result.lit_spans, availability, locations, drop_m=drop_m, reach_m=reach_m)
