"""Gap analysis: unpassed premises per H3 hexagon, or ranked build clusters, as GeoJSON.

Both views come from the cached analysis of the current data version; build
plans are cached per data version and parameters (see :class:`api.services.Services`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from netgis.api.deps import MIN_VERSION, ServicesDep, SettingsDep
from netgis.api.errors import problem_responses
from netgis.api.gap_pages import GapCollection, gap_page
from netgis.api.params import DropParam
from netgis.api.routers.common import GeoJSONResponse
from netgis.schema import DEFAULT_H3_RES, DEFAULT_LINK_M, DEFAULT_PLACEMENT, Placement

router = APIRouter(prefix="/analysis", tags=["Analysis"], dependencies=[MIN_VERSION])


@router.get("/gaps", response_model=GapCollection, response_class=GeoJSONResponse,
            responses=problem_responses(400, 404), summary="Where premises are not passed")
def gaps(
    request: Request, services: ServicesDep, settings: SettingsDep,
    view: Annotated[Literal["hexagons", "clusters"], Query(
        description="hexagons: unpassed premises/units per H3 cell; clusters: ranked build "
                    "list (cost per unit, lowest first).")] = "hexagons",
    h3_res: Annotated[int, Query(ge=0, le=15, description="H3 resolution of the hexagons.")] = \
        DEFAULT_H3_RES,
    area_id: Annotated[str | None, Query(description="Only premises this area covers.")] = None,
    h3_cell: Annotated[str | None, Query(description="Only premises in this H3 cell (any "
                                         "resolution).")] = None,
    link_m: Annotated[float, Query(gt=0, le=10_000, description="Cluster linkage (m).")] = \
        DEFAULT_LINK_M,
    max_units: Annotated[float | None, Query(
        gt=0, le=1e9, description="Largest cluster in units; a larger one is split at its "
                                  "natural breaks (default: the server's, 512).")] = None,
    max_extent_m: Annotated[float | None, Query(
        gt=0, le=1e7, description="Widest cluster, meters (bounding box diagonal); a wider "
                                  "one is split (default: the server's, 2000).")] = None,
    placement: Annotated[Placement, Query(
        description="Placement that prices new route.")] = DEFAULT_PLACEMENT,
    limit: Annotated[int | None, Query(ge=1, description="Items per page (clamped).")] = None,
    offset: Annotated[int, Query(ge=0, le=2**53)] = 0,
    drop_m: DropParam = None,
) -> Response:
    """Unpassed premises rolled up by H3 cell, or gap clusters with their build estimate."""
    version, result = services.analysis(drop_m)
    params = services.gap_params(link_m=link_m, placement=placement, max_units=max_units,
                                 max_extent_m=max_extent_m)
    size = min(limit or settings.default_limit, settings.max_limit)
    return GeoJSONResponse(gap_page(
        request, result, version, lambda: services.plan(version, result, params), view=view,
        h3_res=h3_res, area_id=area_id, h3_cell=h3_cell, limit=size, offset=offset))
