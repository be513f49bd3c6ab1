"""Gaps: premises that are not passed, where they are, and what it costs to pass them.

Pure functions over the frames of :func:`netgis.engine.analysis.analyze`, in steps:

- :mod:`~netgis.products.gaps.rollup`: :func:`rollup_h3` and :func:`rollup_areas`
  count the unpassed premises and units per H3 cell (resolution
  :data:`~netgis.schema.DEFAULT_H3_RES` by default, from WGS84 coordinates)
  and per area, with the least and the median ``distance_m``;
- :mod:`~netgis.products.gaps.clusters`: :func:`cluster_labels` groups unpassed
  premises into *gap clusters* (single linkage: two premises within
  ``link_m`` meters are in one cluster) with a minimum spanning tree each,
  and :func:`split_clusters` cuts those too large or too wide at the longest
  edges of their trees;
- :mod:`~netgis.products.gaps.joins`: the join of each cluster to the nearest lit
  span, straight or along an optional ``roads`` layer;
- :mod:`~netgis.products.gaps.sketch`: the new routes as planned ``nodes`` and
  ``spans`` layers in the data contract's shape;
- :mod:`~netgis.products.gaps.plan`: :func:`plan_builds` runs the three above, prices
  each route by placement and ranks the clusters by cost per unit;
  :func:`apply_plan` appends the sketch to the dataset (status
  ``in_service``), so that :func:`~netgis.engine.analysis.analyze` shows the
  coverage after the build;
- :mod:`~netgis.products.gaps.result`: :func:`gap_analysis` runs roll-ups and plan on
  an :class:`~netgis.engine.analysis.Analysis`; :mod:`~netgis.products.gaps.output`:
  :func:`write_gaps` writes the files of ``netgis gaps``.

Distances between premises are 3-D chords between their WGS84 ellipsoid
positions (EPSG:4978), which agree with the geodesic to far better than 0.1 %
at the few-hundred-meter scale of a cluster and need no UTM zone; reported
lengths are WGS84 geodesic.

Examples
--------
>>> from netgis.engine.analysis import analyze
>>> from netgis.io import read_dataset
>>> result = analyze(read_dataset("tests/examples/ring_spur/dataset.gpkg"))
>>> gaps = gap_analysis(result)
>>> gaps.plan.clusters[["cluster_id", "units", "route_m"]].round(1).to_dict("records")
[{'cluster_id': 'gap-p_far', 'units': 1, 'route_m': 300.1}]
"""

from __future__ import annotations

from netgis.products.gaps.clusters import bounded_clusters, cluster_labels, split_clusters
from netgis.products.gaps.output import write_gaps
from netgis.products.gaps.plan import (
    CLUSTER_COLUMNS,
    COST_PER_M,
    DEFAULT_ROAD_SNAP_M,
    BuildPlan,
    GapParams,
    apply_plan,
    plan_builds,
)
from netgis.products.gaps.result import Gaps, gap_analysis
from netgis.products.gaps.rollup import (
    area_members,
    h3_cells,
    in_area,
    in_cell,
    rollup_areas,
    rollup_h3,
)
from netgis.schema import (
    DEFAULT_H3_RES,
    DEFAULT_LINK_M,
    DEFAULT_MAX_CLUSTER_EXTENT_M,
    DEFAULT_MAX_CLUSTER_UNITS,
    DEFAULT_PLACEMENT,
    GAP_FILES,
)

__all__ = [
    "CLUSTER_COLUMNS",
    "COST_PER_M",
    "DEFAULT_H3_RES",
    "DEFAULT_LINK_M",
    "DEFAULT_MAX_CLUSTER_EXTENT_M",
    "DEFAULT_MAX_CLUSTER_UNITS",
    "DEFAULT_PLACEMENT",
    "DEFAULT_ROAD_SNAP_M",
    "GAP_FILES",
    "BuildPlan",
    "GapParams",
    "Gaps",
    "apply_plan",
    "area_members",
    "bounded_clusters",
    "cluster_labels",
    "gap_analysis",
    "h3_cells",
    "in_area",
    "in_cell",
    "plan_builds",
    "rollup_areas",
    "rollup_h3",
    "split_clusters",
    "write_gaps",
]
