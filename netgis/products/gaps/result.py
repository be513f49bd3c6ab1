"""All of the gap analysis of one :class:`~netgis.engine.analysis.Analysis`: roll-ups and plan."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import pandas as pd

from netgis.engine.analysis import Analysis
from netgis.products.gaps.plan import BuildPlan, GapParams, plan_builds
from netgis.products.gaps.rollup import rollup_areas, rollup_h3


@dataclass
class Gaps:
    """The result of :func:`gap_analysis`."""

    hexes: gpd.GeoDataFrame
    areas: pd.DataFrame
    plan: BuildPlan


def gap_analysis(
    analysis: Analysis,
    params: GapParams | None = None,
    *,
    roads: gpd.GeoDataFrame | None = None,
) -> Gaps:
    """H3 and area roll-ups of the gaps and the ranked build plan of an analysis.

    Parameters
    ----------
    analysis
        A :class:`netgis.engine.analysis.Analysis`.
    params
        How clusters are formed and priced, and the H3 resolution of the roll-up
        (:class:`~netgis.products.gaps.plan.GapParams`; None: its defaults).
    roads
        See :func:`~netgis.products.gaps.plan.plan_builds`.

    Examples
    --------
    >>> from netgis.engine.analysis import analyze
    >>> from netgis.io import read_dataset
    >>> gaps = gap_analysis(analyze(read_dataset("tests/examples/ring_spur/dataset.gpkg")))
    >>> gaps.hexes["units"].sum(), gaps.plan.clusters["cluster_id"].tolist()
    (np.int64(1), ['gap-p_far'])
    """
    params = params or GapParams()
    premises = analysis.premises
    plan = plan_builds(premises, analysis.spans, analysis.nodes, drop_m=analysis.drop_m,
                       params=params, roads=roads)
    return Gaps(hexes=rollup_h3(premises, h3_res=params.h3_res),
                areas=rollup_areas(premises, analysis.dataset.areas), plan=plan)
