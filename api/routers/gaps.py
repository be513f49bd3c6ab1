"""Gap analysis: unpassed premises per H3 hexagon, or ranked build clusters, as GeoJSON.

Both views come from the cached analysis of the current data version; build
plans are cached per data version and parameters (see :class:`api.services.Services`).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import geopandas as gpd
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from netgis.api.deps import MIN_VERSION, ServicesDep, SettingsDep
from netgis.api.errors import problem_responses
from netgis.api.params import DropParam
from netgis.api.routers.common import GeoJSONResponse, paging_links, timestamp
from netgis.errors import ParameterError, ValidationError
from netgis.schema import DEFAULT_H3_RES, DEFAULT_LINK_M, DEFAULT_PLACEMENT, Placement

router = APIRouter(prefix="/analysis", tags=["Analysis"], dependencies=[MIN_VERSION])


class GapFeature(BaseModel):
    """One hexagon or one cluster (WGS84 polygon) and its figures."""

    type: Literal["Feature"] = "Feature"
    id: str
    geometry: dict[str, Any]
    properties: dict[str, Any]


class GapCollection(BaseModel):
    """Hexagons (``view=hexagons``) or ranked clusters (``view=clusters``)."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[GapFeature]
    numberMatched: int
    numberReturned: int
    timeStamp: str
    links: list[dict[str, Any]] = Field(default_factory=list)
    data_version: int
    drop_m: float
    view: str


def _features(frame: gpd.GeoDataFrame, id_column: str) -> list[dict[str, Any]]:
    features: list[dict[str, Any]] = json.loads(
        frame.to_crs(4326).to_json(na="null", drop_id=True))["features"]
    for feature, ident in zip(features, frame[id_column].tolist(), strict=True):
        feature["id"] = str(ident)
    return features


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
    import numpy as np

    from netgis.products.gaps import in_area, in_cell, rollup_h3

    version, result = services.analysis(drop_m)
    premises = result.premises
    keep = np.ones(len(premises), dtype=bool)
    if area_id is not None:
        keep &= in_area(premises, result.dataset.areas, area_id)
    if h3_cell is not None:
        try:
            keep &= in_cell(premises.geometry, h3_cell)
        except ValidationError as exc:  # netgis.products.gaps cannot know the cell is a parameter
            raise ParameterError(exc.problems) from None
    if view == "hexagons":
        frame = rollup_h3(premises[keep], h3_res=h3_res)
        id_column = "h3_cell"
    else:
        plan = services.plan(version, result, services.gap_params(
            link_m=link_m, placement=placement, max_units=max_units, max_extent_m=max_extent_m))
        chosen = premises.loc[keep & ~premises["passed"].to_numpy(dtype=bool), "premise_id"]
        wanted = set(plan.premise_cluster.loc[
            plan.premise_cluster["premise_id"].isin(chosen), "cluster_id"])
        frame = plan.clusters[plan.clusters["cluster_id"].isin(wanted)]
        id_column = "cluster_id"
    size = min(limit or settings.default_limit, settings.max_limit)
    page = frame.iloc[offset:offset + size]
    features = _features(page, id_column)
    return GeoJSONResponse({
        "type": "FeatureCollection", "features": features,
        "numberMatched": len(frame), "numberReturned": len(features),
        "timeStamp": timestamp(),
        "links": paging_links(request, offset, size, len(features), len(frame)),
        "data_version": version, "drop_m": result.drop_m, "view": view,
    })
