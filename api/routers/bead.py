"""BEAD eligibility: upload FCC BDC availability and locations files, get classes and the
plant join back (docs/spec.md §2.11 and §3.4: the same rules as ``netgis bead``). The
answer is made by :mod:`netgis.api.bead_pages`, which a design plan's twin shares."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from netgis.api.bead_pages import UPLOAD_BODY, BeadResult, ReachParam, bead_answer
from netgis.api.deps import MIN_VERSION, ServicesDep, SettingsDep, check_upload_length
from netgis.api.errors import problem_responses
from netgis.api.params import DropParam
from netgis.schema import DEFAULT_REACH_M

router = APIRouter(prefix="/analysis", tags=["Analysis"], dependencies=[MIN_VERSION])


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
