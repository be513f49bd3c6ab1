"""The gap analysis answer (``/analysis/gaps`` and a design plan's ``/plans/{name}/gaps``):
unpassed premises per H3 hexagon, or the ranked build clusters, as a GeoJSON page.

Shared by the two routers (routers never import each other); the analysis and the build
plan come from the caller (main's cached ones, or a plan's).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import geopandas as gpd
import numpy as np
from fastapi import Request
from pydantic import BaseModel, Field

from netgis.api.routers.common import paging_links, timestamp
from netgis.errors import ParameterError, ValidationError

if TYPE_CHECKING:
    from netgis.engine.analysis import Analysis
    from netgis.products.gaps import BuildPlan


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


def gap_page(request: Request, result: Analysis, version: int,
             build_plan: Callable[[], BuildPlan], *, view: str, h3_res: int,
             area_id: str | None, h3_cell: str | None, limit: int, offset: int
             ) -> dict[str, Any]:
    """The page of hexagons or clusters of ``result`` (the analysis of data version
    ``version``) among the premises of ``area_id`` and ``h3_cell``; ``build_plan`` makes
    (or finds) the build plan of ``result`` for the clusters view."""
    from netgis.products.gaps import in_area, in_cell, rollup_h3

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
        plan = build_plan()
        chosen = premises.loc[keep & ~premises["passed"].to_numpy(dtype=bool), "premise_id"]
        wanted = set(plan.premise_cluster.loc[
            plan.premise_cluster["premise_id"].isin(chosen), "cluster_id"])
        frame = plan.clusters[plan.clusters["cluster_id"].isin(wanted)]
        id_column = "cluster_id"
    page = frame.iloc[offset:offset + limit]
    features = _features(page, id_column)
    return {
        "type": "FeatureCollection", "features": features,
        "numberMatched": len(frame), "numberReturned": len(features),
        "timeStamp": timestamp(),
        "links": paging_links(request, offset, limit, len(features), len(frame)),
        "data_version": version, "drop_m": result.drop_m, "view": view,
    }
