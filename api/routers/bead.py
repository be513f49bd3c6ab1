"""BEAD eligibility: upload FCC BDC availability and locations files, get classes and the
plant join back (docs/spec.md §2.11 and §3.4: the same rules as ``netgis bead``), as JSON
(``POST /analysis/bead``) or as a map (``/maps/bead``: a form, and the map of what it
sends). The answer is made by :mod:`netgis.api.bead_pages`, which a design plan's twin
shares."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from netgis.api.bead_pages import (
    UPLOAD_BODY,
    BeadResult,
    ReachParam,
    bead_answer,
    bead_join_of,
    bead_map_page,
)
from netgis.api.deps import (
    MIN_VERSION,
    BasemapPageDep,
    ServicesDep,
    SettingsDep,
    check_upload_length,
)
from netgis.api.errors import problem_responses
from netgis.api.params import DropParam
from netgis.schema import DEFAULT_REACH_M

router = APIRouter(prefix="/analysis", tags=["Analysis"], dependencies=[MIN_VERSION])
#: The BEAD map: its own router, as the map pages live under /maps.
pages = APIRouter(prefix="/maps", tags=["Maps"], dependencies=[MIN_VERSION])

_HTML: dict[int | str, dict[str, Any]] = {200: {"content": {"text/html": {}}}}


@router.post(
    "/bead", response_model=BeadResult, summary="BEAD classes of FCC locations",
    dependencies=[Depends(check_upload_length)],
    responses=problem_responses(400, 413, 415, 422),
    openapi_extra=UPLOAD_BODY,
)
async def bead(
    request: Request, services: ServicesDep, settings: SettingsDep,
    drop_m: DropParam = None, reach_m: ReachParam = DEFAULT_REACH_M,
) -> BeadResult:
    """Class every location (served / underserved / unserved) from its availability records and
    join it with the plant: passed, reachable within ``reach_m``, or beyond."""
    return await bead_answer(request, settings, services.drop_m(drop_m), reach_m,
                             services.analysis, services.admit)


@pages.get(
    "/bead", response_class=HTMLResponse, summary="BEAD map: choose the files",
    responses={200: {"description": "A form for the availability and locations files; it "
                     "sends them to POST /maps/bead with this page's parameters.",
                     **_HTML[200]}, **problem_responses(400, 422)},
)
def bead_map_form(drop_m: DropParam = None, reach_m: ReachParam = DEFAULT_REACH_M
                  ) -> HTMLResponse:
    """A page (no script) that asks for the FCC availability and locations files and sends
    them, with ``drop_m`` and ``reach_m``, to draw the BEAD map."""
    from netgis.maps.bead import upload_page

    query = {k: f"{v:g}" for k, v in (("drop_m", drop_m), ("reach_m", reach_m))
             if v is not None and not (k == "reach_m" and v == DEFAULT_REACH_M)}
    action = "/maps/bead" + (f"?{urlencode(query)}" if query else "")
    page, policy = upload_page(action, reach_m=reach_m)
    return HTMLResponse(page, headers={"Content-Security-Policy": policy})


@pages.post(
    "/bead", response_class=HTMLResponse, summary="BEAD map of FCC locations",
    dependencies=[Depends(check_upload_length)],
    responses={200: {"description": "An interactive map (HTML page, Leaflet served from "
                     "/static).", **_HTML[200]}, **problem_responses(400, 413, 415, 422)},
    openapi_extra=UPLOAD_BODY,
)
async def bead_map(
    request: Request, services: ServicesDep, settings: SettingsDep, basemap: BasemapPageDep,
    drop_m: DropParam = None, reach_m: ReachParam = DEFAULT_REACH_M,
) -> HTMLResponse:
    """Each location of the upload in the colour of its BEAD class and the shape of what the
    plant does for it (passed, reachable within ``reach_m``, beyond), over the lit spans;
    the same join as ``POST /analysis/bead``. Made for each request, never kept."""
    _, result, answer = await bead_join_of(request, settings, services.drop_m(drop_m),
                                           reach_m, services.analysis, services.admit)
    page, policy = await run_in_threadpool(bead_map_page, settings, result, answer, basemap)
    return HTMLResponse(page, headers={"Content-Security-Policy": policy,
                                       "Cache-Control": "no-store"})
