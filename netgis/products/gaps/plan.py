"""Build plans: cluster the unpassed premises, route, price and rank a build for each.

:func:`plan_builds` groups the unpassed premises into gap clusters
(:mod:`netgis.products.gaps.clusters`), sketches the new route of each (its spanning
tree, leaves within the drop of their parent left to drops, plus a join to
the lit network, :mod:`netgis.products.gaps.joins`), prices the route by placement
(:data:`COST_PER_M`) and ranks the clusters by cost per unit.
:func:`apply_plan` adds the sketch to a dataset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import CRS

from netgis.dataset import Dataset, empty_layer
from netgis.engine.coverage import lonlat
from netgis.errors import Problem, ValidationError
from netgis.products.gaps.clusters import bounded_clusters, cluster_hulls, orient_forest
from netgis.products.gaps.joins import join_roots
from netgis.products.gaps.rollup import h3_cells
from netgis.products.gaps.sketch import sketch_layers
from netgis.schema import (
    DEFAULT_DROP_M,
    DEFAULT_H3_RES,
    DEFAULT_LINK_M,
    DEFAULT_MAX_CLUSTER_EXTENT_M,
    DEFAULT_MAX_CLUSTER_UNITS,
    DEFAULT_PLACEMENT,
    PLACEMENTS,
)

#: Default cost of new route per meter by placement, in currency units (order of magnitude of
#: US 2024 contractor prices: aerial strand and lash, plowed, directional bore, marine).
COST_PER_M: Mapping[str, float] = {
    "aerial": 25.0,
    "buried": 45.0,
    "underground": 85.0,
    "submarine": 400.0,
    "other": 85.0,
}
#: Default snap distance, meters, from a road vertex to a lit span for a road join.
DEFAULT_ROAD_SNAP_M = 30.0
#: A leaf of the sketch is left to a drop only within this share of drop_m of its parent,
#: so that re-analysis passes it despite chord/projection differences.
_PRUNE_SHARE = 0.9

CLUSTER_COLUMNS = (
    "rank", "cluster_id", "premises", "units", "min_distance_m", "median_distance_m",
    "join_span_id", "join_straight_m", "join_road_m", "join_m", "distribution_m", "route_m",
    "placement", "cost_per_m", "cost", "units_per_km", "cost_per_unit", "h3_cell",
)


@dataclass(frozen=True)
class GapParams:
    """How gap clusters are formed, sketched and priced: the settings of :func:`plan_builds`
    and :func:`~netgis.products.gaps.gap_analysis`, as ``netgis gaps``, ``GET
    /analysis/gaps`` and the API's plan cache (whose key it is) pass them.

    Parameters
    ----------
    link_m
        Premises within this many meters share a cluster.
    max_units, max_extent_m
        Bounds of a buildable cluster: a larger or wider one is cut at the longest edges
        of its spanning tree (:func:`netgis.products.gaps.clusters.split_clusters`), each
        piece priced on its own.
    placement
        Placement of the new route, priced from the cost table.
    cost_per_m
        Overrides of :data:`COST_PER_M` as ``(placement, cost per meter)`` pairs (a tuple,
        so that the parameters are hashable).
    road_snap_m
        Distance from a road vertex to a lit span for a join along the roads.
    h3_res
        Resolution of the H3 roll-up and of each cluster's ``h3_cell``.

    Examples
    --------
    >>> GapParams(link_m=250) == GapParams(), GapParams(placement="aerial").placement
    (True, 'aerial')
    """

    link_m: float = DEFAULT_LINK_M
    max_units: float = DEFAULT_MAX_CLUSTER_UNITS
    max_extent_m: float = DEFAULT_MAX_CLUSTER_EXTENT_M
    placement: str = DEFAULT_PLACEMENT
    cost_per_m: tuple[tuple[str, float], ...] = ()
    road_snap_m: float = DEFAULT_ROAD_SNAP_M
    h3_res: int = DEFAULT_H3_RES


@dataclass
class BuildPlan:
    """Ranked gap clusters and the sketch of their new routes.

    ``clusters`` (dataset CRS, geometry: the cluster's convex hull buffered by
    the drop) has ``CLUSTER_COLUMNS``; ``premise_cluster`` maps each unpassed
    premise_id to its cluster_id; ``nodes`` and ``spans`` are the sketch as
    layers of the data contract (dataset CRS).
    """

    clusters: gpd.GeoDataFrame
    premise_cluster: pd.DataFrame
    nodes: gpd.GeoDataFrame
    spans: gpd.GeoDataFrame


def _cost_table(cost_per_m: Mapping[str, float] | None) -> dict[str, float]:
    table = dict(COST_PER_M)
    problems = []
    for key, value in (cost_per_m or {}).items():
        if key not in PLACEMENTS:
            problems.append(Problem("parameters", None, "cost_per_m",
                                    f"unknown placement {key!r}; one of {', '.join(PLACEMENTS)}"))
        elif not np.isfinite(value) or value < 0:
            problems.append(Problem("parameters", None, "cost_per_m",
                                    f"{key}: must be a number >= 0, got {value}"))
        else:
            table[key] = float(value)
    if problems:
        raise ValidationError(problems)
    return table


def _empty_plan(crs: CRS) -> BuildPlan:
    clusters = gpd.GeoDataFrame({c: pd.Series(dtype=object) for c in CLUSTER_COLUMNS},
                                geometry=gpd.GeoSeries([], crs=crs), crs=crs)
    return BuildPlan(clusters, pd.DataFrame({"premise_id": pd.Series(dtype=object),
                                             "cluster_id": pd.Series(dtype=object)}),
                     empty_layer("nodes", crs), empty_layer("spans", crs))


def plan_builds(
    premises: gpd.GeoDataFrame,
    spans: gpd.GeoDataFrame,
    nodes: gpd.GeoDataFrame,
    *,
    drop_m: float = DEFAULT_DROP_M,
    params: GapParams | None = None,
    roads: gpd.GeoDataFrame | None = None,
    id_prefix: str = "plan-",
    status: str = "planned",
) -> BuildPlan:
    """Cluster the unpassed premises, sketch and price a build for each, rank them.

    Parameters
    ----------
    premises
        Analysed premises (``premise_id``, ``units``, ``passed``, ``distance_m``).
    spans
        Analysed spans (``span_id``, ``from_node``, ``to_node``, ``lit``).
    nodes
        The nodes layer (positions of the spans' end nodes).
    drop_m
        The drop length the analysis used (leaves of the sketch within
        0.9 * drop_m of their parent are left to drops).
    params
        Linkage, cluster bounds, placement and costs, road snap distance and the
        resolution of each cluster's ``h3_cell`` (:class:`GapParams`; None: its defaults,
        250 m, 512 units, 2,000 m, underground).
    roads
        Optional road centre lines (any CRS, junctions as shared vertices): the join
        to the network then follows the roads, from the road vertex nearest the
        cluster to a road vertex within ``params.road_snap_m`` of a lit span.
    id_prefix, status
        Id prefix and status of the sketched nodes and spans.

    Returns
    -------
    BuildPlan
        Clusters ranked by cost per unit (rank 1 first), most units first on
        ties; a cluster that cannot join (nothing lit) has no cost and ranks last.
        ``cluster_id`` is ``gap-`` plus the cluster's lowest premise_id.

    Examples
    --------
    >>> from netgis.engine.analysis import analyze
    >>> from netgis.io import read_dataset
    >>> r = analyze(read_dataset("tests/examples/ring_spur/dataset.gpkg"))
    >>> plan = plan_builds(r.premises, r.spans, r.nodes)
    >>> plan.clusters["cluster_id"].tolist()
    ['gap-p_far']
    """
    params = params or GapParams()
    placement = params.placement
    table = _cost_table(dict(params.cost_per_m))
    if placement not in PLACEMENTS:
        raise ValidationError([Problem("parameters", None, "placement",
                                       f"unknown placement {placement!r}")])
    crs = CRS(premises.crs)
    gap = premises[~premises["passed"].to_numpy(dtype=bool)]
    if len(gap) == 0:
        return _empty_plan(crs)
    ids = gap["premise_id"].to_numpy().astype(str)
    units = gap["units"].to_numpy(dtype=np.int64)
    dist = gap["distance_m"].to_numpy(dtype=float)
    labels, edges, _ = bounded_clusters(gap.geometry, units, link_m=params.link_m,
                                        max_units=params.max_units,
                                        max_extent_m=params.max_extent_m)
    k = int(labels.max()) + 1
    ll = lonlat(gap.geometry.to_numpy(), crs)

    # cluster id: its lowest premise_id; root: its premise nearest the lit network
    order = np.lexsort((ids, labels))
    first = order[np.r_[True, labels[order][1:] != labels[order][:-1]]]
    cluster_id = np.asarray([f"gap-{s}" for s in ids[first].tolist()], dtype=object)
    order = np.lexsort((ids, np.where(np.isnan(dist), np.inf, dist), labels))
    root = order[np.r_[True, labels[order][1:] != labels[order][:-1]]]
    is_root = np.zeros(len(gap), dtype=bool)
    is_root[root] = True

    parent, edge_m = orient_forest(len(gap), edges, root, ll)
    degree = np.bincount(edges.reshape(-1), minlength=len(gap))
    has_parent = parent >= 0
    safe_parent = np.where(has_parent, parent, 0)
    pruned = (has_parent & (degree == 1) & (edge_m <= _PRUNE_SHARE * drop_m)
              & ((degree[safe_parent] >= 2) | is_root[safe_parent]))
    kept_edge = has_parent & ~pruned
    distribution_m = np.bincount(labels[kept_edge], weights=edge_m[kept_edge], minlength=k)

    lit = spans[spans["lit"].to_numpy(dtype=bool)] if "lit" in spans else spans.iloc[:0]
    # types-geopandas types GeoSeries.iloc as a plain Series
    join = join_roots(cast("gpd.GeoSeries", gap.geometry.iloc[root]), lit, nodes, roads=roads,
                      road_snap_m=params.road_snap_m, drop_m=drop_m)
    join_m = np.where(np.isnan(join["road_m"]), join["straight_m"], join["road_m"])
    route_m = join_m + distribution_m
    unit_sum = np.bincount(labels, weights=units, minlength=k).astype(np.int64)
    gap_dist = pd.DataFrame({"label": labels, "d": dist}).groupby("label")["d"]
    cost = route_m * table[placement]
    with np.errstate(divide="ignore", invalid="ignore"):
        units_per_km = np.where(route_m > 0, unit_sum / (route_m / 1000.0), np.nan)
        cost_per_unit = cost / unit_sum

    clusters = pd.DataFrame({
        "cluster_id": cluster_id,
        "premises": np.bincount(labels, minlength=k).astype(np.int64),
        "units": unit_sum,
        "min_distance_m": gap_dist.min().to_numpy(),
        "median_distance_m": gap_dist.median().to_numpy(),
        "join_span_id": join["span_id"],
        "join_straight_m": join["straight_m"],
        "join_road_m": join["road_m"],
        "join_m": join_m,
        "distribution_m": distribution_m,
        "route_m": route_m,
        "placement": placement,
        "cost_per_m": table[placement],
        "cost": cost,
        "units_per_km": units_per_km,
        "cost_per_unit": cost_per_unit,
        "h3_cell": h3_cells(cast("gpd.GeoSeries", gap.geometry.iloc[first]), res=params.h3_res),
    })
    rank_order = np.lexsort((cluster_id.astype(str), -unit_sum,
                             np.where(np.isnan(cost_per_unit), np.inf, cost_per_unit)))
    rank = np.empty(k, dtype=np.int64)
    rank[rank_order] = np.arange(1, k + 1)
    clusters.insert(0, "rank", rank)
    hulls = cluster_hulls(gap.geometry, labels, k, drop_m)
    clusters_gdf = gpd.GeoDataFrame(clusters, geometry=gpd.GeoSeries(hulls, crs=crs), crs=crs)
    clusters_gdf = clusters_gdf.iloc[rank_order].reset_index(drop=True)

    plan_nodes, plan_spans = sketch_layers(gap, parent, kept_edge, pruned, root, labels, join,
                                     crs=crs, placement=placement, id_prefix=id_prefix,
                                     status=status)
    premise_cluster = pd.DataFrame({"premise_id": gap["premise_id"].to_numpy(),
                                    "cluster_id": cluster_id[labels]})
    return BuildPlan(clusters_gdf, premise_cluster, plan_nodes, plan_spans)


def _like(new: gpd.GeoDataFrame, old: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``new`` with ``old``'s columns and dtypes, so concatenation keeps nullable types.

    The dataset may carry columns beyond the contract: the sketch leaves them empty.
    """
    out = new.reindex(columns=old.columns)
    for col in old.columns:
        if col != old.geometry.name and out[col].dtype != old[col].dtype:
            out[col] = out[col].astype(old[col].dtype)
    return out


def apply_plan(dataset: Dataset, plan: BuildPlan, *, status: str = "in_service") -> Dataset:
    """``dataset`` with the plan's nodes and spans appended under ``status`` (a new Dataset).

    Examples
    --------
    >>> from netgis.engine.analysis import analyze
    >>> from netgis.io import read_dataset
    >>> ds = read_dataset("tests/examples/ring_spur/dataset.gpkg")
    >>> r = analyze(ds)
    >>> plan = plan_builds(r.premises, r.spans, r.nodes)
    >>> analyze(apply_plan(ds, plan)).kpis["network"]["coverage_pct"]
    100.0
    """
    crs = dataset.crs
    new_nodes = plan.nodes.to_crs(crs).assign(status=status)
    new_spans = plan.spans.to_crs(crs).assign(status=status)
    nodes = pd.concat([dataset.nodes, _like(new_nodes, dataset.nodes)], ignore_index=True)
    spans = pd.concat([dataset.spans, _like(new_spans, dataset.spans)], ignore_index=True)
    return Dataset(nodes=gpd.GeoDataFrame(nodes, geometry="geometry", crs=crs),
                   spans=gpd.GeoDataFrame(spans, geometry="geometry", crs=crs),
                   premises=dataset.premises, areas=dataset.areas,
                   warnings=list(dataset.warnings))


def chosen_clusters(plan: BuildPlan, cluster_ids: Sequence[str] = (),
                    top: int | None = None) -> list[str]:
    """The clusters named, then (with ``top``) the ``top`` best-ranked ones not named yet.

    Examples
    --------
    >>> from netgis.engine.analysis import analyze
    >>> from netgis.io import read_dataset
    >>> r = analyze(read_dataset("tests/examples/ring_spur/dataset.gpkg"))
    >>> chosen_clusters(plan_builds(r.premises, r.spans, r.nodes), top=3)
    ['gap-p_far']
    """
    ids = [str(c) for c in cluster_ids]
    if top is not None:
        ids += [c for c in plan.clusters["cluster_id"].astype(str).tolist()[:top]
                if c not in ids]
    return ids


def cluster_builds(plan: BuildPlan, cluster_ids: Sequence[str], *, id_prefix: str = "plan-",
                   status: str = "in_service") -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The sketched nodes and spans of the clusters ``cluster_ids`` under ``status``: what
    building those clusters adds (a design plan's gap builds).

    The sketch names its features after the premises they serve (``<prefix>n-<premise>``,
    ``<prefix>s-<premise>``), so a cluster's features are those of its premises.

    Raises
    ------
    ValidationError
        Naming every id that is not a cluster of the plan.

    Examples
    --------
    >>> from netgis.engine.analysis import analyze
    >>> from netgis.io import read_dataset
    >>> r = analyze(read_dataset("tests/examples/ring_spur/dataset.gpkg"))
    >>> nodes, spans = cluster_builds(plan_builds(r.premises, r.spans, r.nodes), ["gap-p_far"])
    >>> spans["span_id"].tolist(), spans["status"].tolist()
    (['plan-s-p_far'], ['in_service'])
    """
    known = set(plan.clusters["cluster_id"].astype(str))
    unknown = [c for c in cluster_ids if str(c) not in known]
    if unknown:
        raise ValidationError([Problem("builds", str(c), "cluster_id",
                                       "not a gap cluster of this analysis") for c in unknown])
    wanted = {str(c) for c in cluster_ids}
    members = plan.premise_cluster.loc[
        plan.premise_cluster["cluster_id"].astype(str).isin(wanted), "premise_id"].astype(str)
    node_ids = {f"{id_prefix}n-{p}" for p in members}
    span_ids = {f"{id_prefix}s-{p}" for p in members}
    nodes = plan.nodes[plan.nodes["node_id"].astype(str).isin(node_ids)]
    spans = plan.spans[plan.spans["span_id"].astype(str).isin(span_ids)]
    return (nodes.assign(status=status).reset_index(drop=True),
            spans.assign(status=status).reset_index(drop=True))
