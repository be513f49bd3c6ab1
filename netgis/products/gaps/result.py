"""All of the gap analysis of one :class:`~netgis.engine.analysis.Analysis`: roll-ups and plan."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import geopandas as gpd
import pandas as pd

from netgis.engine.analysis import Analysis
from netgis.products.gaps.plan import DEFAULT_ROAD_SNAP_M, BuildPlan, plan_builds
from netgis.products.gaps.rollup import rollup_areas, rollup_h3
from netgis.schema import (
    DEFAULT_H3_RES,
    DEFAULT_LINK_M,
    DEFAULT_MAX_CLUSTER_EXTENT_M,
    DEFAULT_MAX_CLUSTER_UNITS,
    DEFAULT_PLACEMENT,
)


@dataclass
class Gaps:
    """The result of :func:`gap_analysis`."""

    hexes: gpd.GeoDataFrame
    areas: pd.DataFrame
    plan: BuildPlan


def gap_analysis(
    analysis: Analysis,
    *,
    h3_res: int = DEFAULT_H3_RES,
    link_m: float = DEFAULT_LINK_M,
    max_units: float = DEFAULT_MAX_CLUSTER_UNITS,
    max_extent_m: float = DEFAULT_MAX_CLUSTER_EXTENT_M,
    placement: str = DEFAULT_PLACEMENT,
    cost_per_m: Mapping[str, float] | None = None,
    roads: gpd.GeoDataFrame | None = None,
    road_snap_m: float = DEFAULT_ROAD_SNAP_M,
) -> Gaps:
    """H3 and area roll-ups of the gaps and the ranked build plan of an analysis.

    Parameters
    ----------
    analysis
        A :class:`netgis.engine.analysis.Analysis`.
    h3_res, link_m, max_units, max_extent_m, placement, cost_per_m, roads, road_snap_m
        See :func:`rollup_h3` and :func:`plan_builds`.

    Examples
    --------
    >>> from netgis.engine.analysis import analyze
    >>> from netgis.io import read_dataset
    >>> gaps = gap_analysis(analyze(read_dataset("tests/examples/ring_spur/dataset.gpkg")))
    >>> gaps.hexes["units"].sum(), gaps.plan.clusters["cluster_id"].tolist()
    (np.int64(1), ['gap-p_far'])
    """
    premises = analysis.premises
    plan = plan_builds(premises, analysis.spans, analysis.nodes, drop_m=analysis.drop_m,
                       link_m=link_m, max_units=max_units, max_extent_m=max_extent_m,
                       placement=placement, cost_per_m=cost_per_m, roads=roads,
                       road_snap_m=road_snap_m, h3_res=h3_res)
    return Gaps(hexes=rollup_h3(premises, h3_res=h3_res),
                areas=rollup_areas(premises, analysis.dataset.areas), plan=plan)
