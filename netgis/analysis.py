"""One call from a validated dataset to every answer of SPEC section 2.

:func:`analyze` builds the graph, finds lit spans, locates every premise,
computes protection, cut and failure impact and the KPIs, and returns an
:class:`Analysis` holding new frames (the inputs are never changed).
:func:`scenario` and :func:`serviceability` answer questions against it.

Examples
--------
>>> from netgis.io import read_dataset
>>> result = analyze(read_dataset("tests/examples/ring_spur/dataset.gpkg"))  # doctest: +SKIP
>>> result.kpis["network"]["spof_spans"]  # doctest: +SKIP
2
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from pyproj import CRS

from netgis.coverage import SpanIndex, locate, lonlat, working_zones, zones_near
from netgis.dataset import Dataset
from netgis.errors import Problem, ValidationError
from netgis.geodesy import WGS84, transform_geoms, utm_epsg
from netgis.kpis import compute_kpis
from netgis.network import AnalysisGraph, analysis_graph, network_from_gdfs, span_lengths_m
from netgis.redundancy import Protection, Structure, impacts, protection, scenario_lost, structure
from netgis.schema import DEFAULT_DROP_M

Progress = Callable[[str], None]

PREMISE_COLUMNS = ("premise_id", "passed", "distance_m", "served_span_id", "span_protected",
                   "node_protected", "duct_protected")
SPAN_COLUMNS = ("span_id", "lit", "cut_premises", "cut_units")
NODE_COLUMNS = ("node_id", "failure_premises", "failure_units")


@dataclass
class Analysis:
    """The result of :func:`analyze`.

    ``premises``, ``spans`` and ``nodes`` are the dataset's layers with the
    analysis columns added (see ``PREMISE_COLUMNS`` etc.); ``kpis`` is the
    ``kpis.json`` object.
    """

    dataset: Dataset
    drop_m: float
    premises: gpd.GeoDataFrame
    spans: gpd.GeoDataFrame
    nodes: gpd.GeoDataFrame
    kpis: dict[str, Any]
    network: nx.MultiGraph
    graph: AnalysisGraph
    structure: Structure
    protection: Protection
    served_edge: npt.NDArray[np.int64]
    edge_of: dict[str, int]  #: span_id -> edge index in ``graph`` for the spans of G
    span_index: SpanIndex
    home_zone: int | None = None
    warnings: list[Problem] = field(default_factory=list)

    @property
    def lit_spans(self) -> gpd.GeoDataFrame:
        return self.spans[self.spans["lit"]]



def analyze(dataset: Dataset, *, drop_m: float = DEFAULT_DROP_M,
            progress: Progress | None = None) -> Analysis:
    """Coverage, redundancy and KPIs of ``dataset`` (SPEC section 2).

    Parameters
    ----------
    dataset
        A validated dataset (:func:`netgis.io.read_dataset`).
    drop_m
        Maximum drop length, meters (default 150).
    progress
        Called with a step name as each step starts (for progress bars).
    """
    if not np.isfinite(drop_m) or drop_m < 0:
        raise ValidationError([Problem("parameters", None, "drop_m",
                                       f"must be a finite number >= 0, got {drop_m}")])
    step = progress or (lambda _name: None)
    warnings: list[Problem] = []
    step("graph")
    lengths = span_lengths_m(dataset.spans)
    G = network_from_gdfs(dataset.nodes, dataset.spans, lengths_m=lengths)
    g = analysis_graph(G)
    st = structure(g)
    if not g.has_core:
        warnings.append(Problem("nodes", None, "kind",
                                "no in-service core node: nothing is lit"))
    edge_of = {sid: i for i, sid in enumerate(g.edge_span.tolist())}
    span_edge = np.asarray([edge_of.get(s, -1) for s in dataset.spans["span_id"].tolist()],
                           dtype=np.int64)
    span_lit = np.zeros(len(span_edge), dtype=bool)
    span_lit[span_edge >= 0] = st.lit[span_edge[span_edge >= 0]]

    step("coverage")
    span_index = SpanIndex(dataset.spans.loc[span_lit, ["span_id", "geometry"]])
    prem_ll = lonlat(dataset.premises.geometry.to_numpy(), dataset.crs)
    zones = working_zones(prem_ll[:, 0], prem_ll[:, 1])
    home_zone = int(zones[0]) if len(zones) and (zones == zones[0]).all() else None
    located = locate(dataset.premises.geometry, span_index, drop_m=drop_m, zones=zones,
                     points_lonlat=prem_ll)
    served = located["served_span_id"].to_numpy(dtype=object)
    served_edge = np.asarray([edge_of[s] if s is not None else -1 for s in served.tolist()],
                             dtype=np.int64)

    step("redundancy")
    prot = protection(g, st)
    has = served_edge >= 0
    premises = dataset.premises.copy()
    premises["passed"] = located["passed"].to_numpy()
    premises["distance_m"] = located["distance_m"].to_numpy()
    premises["served_span_id"] = pd.Series(served, index=premises.index, dtype=object)
    for name, flags in (("span_protected", prot.span), ("node_protected", prot.node),
                        ("duct_protected", prot.duct)):
        col = np.zeros(len(premises), dtype=bool)
        col[has] = flags[served_edge[has]]
        premises[name] = col
    units = premises["units"].to_numpy(dtype=np.int64)
    edge_p = np.bincount(served_edge[has], minlength=g.n_edges).astype(np.int64)
    edge_u = np.bincount(served_edge[has], weights=units[has], minlength=g.n_edges).astype(
        np.int64)
    imp = impacts(g, st, edge_p, edge_u)

    spans = dataset.spans.copy()
    spans["lit"] = span_lit
    spans["length_m"] = lengths
    for name, per_edge in (("cut_premises", imp.cut_premises), ("cut_units", imp.cut_units)):
        col = np.zeros(len(spans), dtype=np.int64)
        col[span_edge >= 0] = per_edge[span_edge[span_edge >= 0]]
        spans[name] = col

    nodes = dataset.nodes.copy()
    vertex = g.vertex_of()
    core_ids = set(g.node_ids[g.is_core].tolist())
    node_vertex = np.asarray([-1 if n in core_ids else vertex.get(n, -1)
                              for n in nodes["node_id"].tolist()], dtype=np.int64)
    for name, per_vertex in (("failure_premises", imp.failure_premises),
                             ("failure_units", imp.failure_units)):
        col = np.zeros(len(nodes), dtype=np.int64)
        col[node_vertex >= 0] = per_vertex[node_vertex[node_vertex >= 0]]
        nodes[name] = col

    step("kpis")
    kpis = compute_kpis(premises, dataset.spans, dataset.areas, span_lengths_m=lengths,
                        home_zone=home_zone,
                        spof_spans=int((spans["cut_premises"] > 0).sum()),
                        spof_nodes=int((nodes["failure_premises"] > 0).sum()))
    return Analysis(
        dataset=dataset, drop_m=drop_m, premises=premises, spans=spans, nodes=nodes, kpis=kpis,
        network=G, graph=g, structure=st, protection=prot, served_edge=served_edge,
        edge_of=edge_of, span_index=span_index, home_zone=home_zone, warnings=warnings,
    )


def scenario(
    analysis: Analysis,
    *,
    spans: Iterable[str] = (),
    nodes: Iterable[str] = (),
    ducts: Iterable[str] = (),
    area: shapely.Geometry | None = None,
    area_crs: CRS | str | int = 4326,
) -> dict[str, Any]:
    """Premises passed before the scenario that lose every path to a working core.

    Any set of spans, nodes (cores included) and ducts fail at once; every
    span intersecting ``area`` is cut and every node in it (boundary included)
    fails. Unknown ids are an error naming them.

    Returns
    -------
    dict
        ``premises`` and ``units`` lost, ``premise_ids`` (sorted), and the
        failed ``spans`` / ``nodes`` after expanding ducts and the area.
    """
    ds = analysis.dataset
    span_ids = list(dict.fromkeys(spans))
    node_ids = list(dict.fromkeys(nodes))
    duct_ids = list(dict.fromkeys(ducts))
    known_spans, known_nodes = set(ds.spans["span_id"]), set(ds.nodes["node_id"])
    problems = [Problem("spans", s, "span_id", "no such span")
                for s in span_ids if s not in known_spans]
    problems += [Problem("nodes", n, "node_id", "no such node")
                 for n in node_ids if n not in known_nodes]
    known_ducts = set(ds.spans["duct_id"].dropna())
    problems += [Problem("spans", None, "duct_id", f"no span has duct_id {d!r}")
                 for d in duct_ids if d not in known_ducts]
    if problems:
        raise ValidationError(problems)
    failed_spans = set(span_ids)
    failed_spans |= set(ds.spans.loc[ds.spans["duct_id"].isin(duct_ids), "span_id"])
    failed_nodes = set(node_ids)
    if area is not None:
        hit_spans, hit_nodes = _in_area(ds, area, CRS(area_crs))
        failed_spans |= hit_spans
        failed_nodes |= hit_nodes
    g = analysis.graph
    cut_edges = [i for i, s in enumerate(g.edge_span.tolist()) if s in failed_spans]
    lost = scenario_lost(g, analysis.served_edge, cut_edges=cut_edges, failed_nodes=failed_nodes)
    prem = analysis.premises
    lost_ids = sorted(prem["premise_id"].to_numpy()[lost].tolist())
    return {
        "premises": int(lost.sum()),
        "units": int(prem["units"].to_numpy()[lost].sum()),
        "premise_ids": lost_ids,
        "failed_spans": sorted(failed_spans),
        "failed_nodes": sorted(failed_nodes),
        "lost": lost,
    }


def _in_area(ds: Dataset, area: shapely.Geometry, area_crs: CRS) -> tuple[set[str], set[str]]:
    """Spans intersecting and nodes covered by ``area``, tested in the area's UTM zone."""
    centroid = transform_geoms(np.asarray([shapely.centroid(area)], dtype=object), area_crs,
                               WGS84)[0]
    w = CRS.from_epsg(utm_epsg(centroid.x, centroid.y))
    poly = transform_geoms(np.asarray([area], dtype=object), area_crs, w)[0]
    lines = transform_geoms(ds.spans.geometry.to_numpy(), ds.crs, w)
    pts = transform_geoms(ds.nodes.geometry.to_numpy(), ds.crs, w)
    spans = set(ds.spans["span_id"].to_numpy()[shapely.intersects(lines, poly)].tolist())
    nodes = set(ds.nodes["node_id"].to_numpy()[shapely.covers(poly, pts)].tolist())
    return spans, nodes


def serviceability(analysis: Analysis, lon: float, lat: float) -> dict[str, Any]:
    """Is the location ``lon``/``lat`` (WGS84) passed, by which span, how far, how protected."""
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValidationError([Problem("parameters", None, "lon/lat",
                                       f"not a WGS84 position: {lon}, {lat}")])
    pts = gpd.GeoSeries([shapely.Point(lon, lat)], crs=WGS84)
    zones = zones_near(np.array([lon]), np.array([lat]), analysis.home_zone)
    row = locate(pts, analysis.span_index, drop_m=analysis.drop_m, zones=zones).iloc[0]
    served = row["served_span_id"]
    flags = {"span_protected": False, "node_protected": False, "duct_protected": False}
    if served is not None:
        e = analysis.edge_of[served]
        flags = {"span_protected": bool(analysis.protection.span[e]),
                 "node_protected": bool(analysis.protection.node[e]),
                 "duct_protected": bool(analysis.protection.duct[e])}
    dist = row["distance_m"]
    return {
        "lon": lon, "lat": lat, "passed": bool(row["passed"]),
        "distance_m": None if pd.isna(dist) else float(dist),
        "served_span_id": served, "nearest_span_id": row["nearest_span_id"],
        "drop_m": analysis.drop_m, **flags,
    }
