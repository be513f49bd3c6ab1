"""One call from a validated dataset to every answer of docs/spec.md §2 (Definitions).

:func:`analyze` builds the graph, finds lit spans, locates every premise,
computes protection, cut and failure impact and the KPIs, and returns an
:class:`Analysis` holding new frames (the inputs are never changed).
:func:`scenario` and :func:`serviceability` answer questions against it.

Examples
--------
>>> from netgis.io import read_dataset
>>> result = analyze(read_dataset("tests/examples/ring_spur/dataset.gpkg"))
>>> result.kpis["network"]["spof_spans"]
2
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from typing import Any, cast

import geopandas as gpd
import networkx as nx
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from pyproj import CRS

from netgis.dataset import Dataset
from netgis.engine.coverage import (
    SpanIndex,
    ZonePlan,
    locate,
    locate_arrays,
    lonlat,
    working_zones,
    zones_near,
)
from netgis.engine.graph import (
    AnalysisGraph,
    analysis_graph_from_gdfs,
    built_from_nodes,
    id_index,
    network_from_gdfs,
    node_entries,
    span_edges,
    span_lengths_m,
)
from netgis.engine.kpis import AreaIndex, Kpis, LineZones, assemble_kpis, line_kpis, premise_sums
from netgis.engine.optics import (
    LossBudget,
    VertexLoss,
    entry_end,
    loss_breakdown,
    on_paths,
    premise_loss_db,
    vertex_loss,
    vertex_nodes,
)
from netgis.engine.redundancy import (
    DuctMemo,
    Impact,
    Protection,
    S,
    Structure,
    impacts,
    protection,
    scenario_lost,
    structure,
)
from netgis.errors import Problem, ValidationError
from netgis.geodesy import WGS84, distance_to_box_m, transform_geoms, utm_epsg
from netgis.schema import DEFAULT_DROP_M, FAR_OUTSIDE_M, result_columns
from netgis.validate import NO_CORE_WARNING

Progress = Callable[[str], None]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

#: Columns of ``premises.csv`` / ``spans.csv`` / ``nodes.csv`` (docs/spec.md §3.1), from the schema.
PREMISE_COLUMNS = result_columns("premises", contract_only=True)
SPAN_COLUMNS = result_columns("spans", contract_only=True)
NODE_COLUMNS = result_columns("nodes", contract_only=True)


@dataclass
class Analysis:
    """The result of :func:`analyze`.

    ``premises``, ``spans`` and ``nodes`` are the dataset's layers with the
    analysis columns of :data:`netgis.schema.RESULT_FIELDS` added; ``kpis`` is
    the ``kpis.json`` object.
    """

    dataset: Dataset
    drop_m: float
    premises: gpd.GeoDataFrame
    spans: gpd.GeoDataFrame
    nodes: gpd.GeoDataFrame
    kpis: Kpis
    graph: AnalysisGraph
    structure: Structure
    protection: Protection
    served_edge: IntArray      #: edge of G serving each premise, -1 when not passed
    span_index: SpanIndex      #: the lit spans, indexed for nearest searches
    optics: Optics             #: loss parameters, dist(v) and what each premise needs
    home_zone: int | None = None
    warnings: list[Problem] = field(default_factory=list)
    #: premise id -> row of ``premises``, when the maker keeps one (a live analysis); rows
    #: it names are checked before use, so a newer state's lookup may be shared
    premise_rows: Mapping[str, int] | None = None

    def premise_position(self, premise_id: str) -> int | None:
        """Row of the premise ``premise_id`` in ``premises`` (None when there is none).

        Examples
        --------
        >>> from netgis.io import read_dataset
        >>> result = analyze(read_dataset("tests/examples/ring_spur/dataset.gpkg"))
        >>> pos = result.premise_position("p_far")
        >>> result.premises["premise_id"].iloc[pos], result.premise_position("nope")
        ('p_far', None)
        """
        ids = self.premises["premise_id"]
        rows = self.premise_rows
        if rows is not None:
            pos = rows.get(premise_id)
            if pos is not None and pos < len(ids) and ids.iat[pos] == premise_id:
                return int(pos)
        if rows is None:
            rows = self._premise_index
            pos = rows.get(premise_id)
            return None if pos is None else int(pos)
        at = np.flatnonzero((ids == premise_id).to_numpy())
        return int(at[0]) if len(at) else None

    @cached_property
    def _premise_index(self) -> dict[str, int]:
        """premise id -> row, built on first use."""
        return {str(k): i for i, k in enumerate(self.premises["premise_id"].tolist())}

    @cached_property
    def network(self) -> nx.MultiGraph[str]:
        """The plant graph (:func:`netgis.engine.graph.network_from_gdfs`), built on first use."""
        return network_from_gdfs(self.dataset.nodes, self.dataset.spans,
                                 lengths_m=self.spans["length_m"].to_numpy(dtype=float))

    @property
    def budget(self) -> LossBudget:
        """The loss budget the optical reach was computed with."""
        return self.optics.budget

    @cached_property
    def plant_extent(self) -> tuple[float, float, float, float] | None:
        """WGS84 box (min lon, min lat, max lon, max lat) of the nodes; None without nodes."""
        nodes = self.dataset.nodes
        if nodes.empty:
            return None
        ll = lonlat(nodes.geometry.to_numpy(), self.dataset.crs)
        return (float(ll[:, 0].min()), float(ll[:, 1].min()), float(ll[:, 0].max()),
                float(ll[:, 1].max()))

    @property
    def lit_spans(self) -> gpd.GeoDataFrame:
        """The spans in the component of G that holds a core: the spans that can serve."""
        return self.spans[self.spans["lit"]]

    def edges_of(self, span_ids: npt.ArrayLike) -> IntArray:
        """Edge index in ``graph`` of each span id; -1 for spans not in G (or None)."""
        return _positions(self.graph.edge_span, span_ids)


@dataclass(frozen=True)
class Optics:
    """The optical reach of an analysis: parameters, ``dist(v)`` and per-premise inputs.

    ``frac_from`` is where each premise attaches along its served span, as a
    fraction from the span's ``from_node`` (NaN when not passed);
    ``edge_length_m`` the geodesic length of each edge of G.
    """

    budget: LossBudget
    loss: VertexLoss
    edge_length_m: npt.NDArray[np.float64]
    edge_reversed: BoolArray   #: the span's geometry starts at its to_node
    frac_from: npt.NDArray[np.float64]


@dataclass(frozen=True)
class ScenarioResult:
    """What a scenario takes off line (:func:`scenario`).

    ``lost`` flags, per row of ``analysis.premises``, the passed premises that
    lose every path to a working core; ``premise_ids`` are their ids, sorted.
    """

    premises: int
    units: int
    premise_ids: list[str]
    failed_spans: list[str]
    failed_nodes: list[str]
    lost: BoolArray

    def summary(self) -> dict[str, int | list[str]]:
        """The JSON-ready part: counts, lost premise ids and the failed elements."""
        return {"premises": self.premises, "units": self.units, "premise_ids": self.premise_ids,
                "failed_spans": self.failed_spans, "failed_nodes": self.failed_nodes}


def _positions(keys: npt.ArrayLike, values: npt.ArrayLike) -> IntArray:
    """Position of each of ``values`` in the unique ``keys``; -1 where absent."""
    found: IntArray = id_index(keys).get_indexer(id_index(values)).astype(np.int64)
    return found


def check_drop(drop_m: float) -> None:
    """Refuse a drop length that is not a finite number of meters >= 0.

    Raises
    ------
    ValidationError
        One ``parameters`` problem naming ``drop_m`` and the value given.
    """
    if not np.isfinite(drop_m) or drop_m < 0:
        raise ValidationError([Problem("parameters", None, "drop_m",
                                       f"must be a finite number >= 0, got {drop_m}")])


def _scatter(index: IntArray, per_item: npt.NDArray[Any], dtype: type) -> npt.NDArray[Any]:
    """``per_item[index]`` where ``index >= 0``, else zero/false."""
    out: npt.NDArray[Any] = np.zeros(len(index), dtype=dtype)
    ok = index >= 0
    out[ok] = per_item[index[ok]]
    return out


def _lit(spans: gpd.GeoDataFrame, g: AnalysisGraph, st: Structure) -> tuple[IntArray, BoolArray]:
    """Edge of G per span row (-1 when the span is not in G) and whether it is lit."""
    span_edge = span_edges(g, spans["span_id"].to_numpy(dtype=object))
    return span_edge, _scatter(span_edge, st.lit, bool)


@dataclass(frozen=True)
class NetworkStage:
    """What an analysis computes once, before and apart from the premises.

    The graph, its structure and protection, lit spans and their index, span
    lengths and the optical ``dist(v)``: premises can then be located in
    chunks (:func:`premise_chunk`), in this process or on Dask workers, and
    :func:`finish_analysis` adds the chunks up.
    """

    graph: AnalysisGraph
    structure: Structure
    protection: Protection
    span_edge: IntArray          #: edge of G per span row, -1 when not in G
    span_lit: BoolArray
    lengths_m: npt.NDArray[np.float64]
    optics: Optics               #: with no premise yet (``frac_from`` empty)
    span_index: SpanIndex
    lit_edge: IntArray           #: edge of G of each span of ``span_index``, in its order
    drop_m: float
    warnings: list[Problem]


def network_stage(nodes: gpd.GeoDataFrame, spans: gpd.GeoDataFrame, *,
                  drop_m: float = DEFAULT_DROP_M, budget: LossBudget | None = None,
                  progress: Progress | None = None,
                  lengths_m: npt.NDArray[np.float64] | None = None,
                  starts: npt.NDArray[np.object_] | None = None,
                  memo: DuctMemo | None = None,
                  previous: SpanIndex | None = None,
                  end_rows: tuple[IntArray, IntArray] | None = None,
                  by_id: IntArray | None = None,
                  previous_rows: IntArray | None = None) -> NetworkStage:
    """The premise-free part of :func:`analyze` of validated ``nodes`` and ``spans``.

    ``lengths_m`` and ``starts``: the geodesic length and the first vertex of each span
    row when already known (:func:`netgis.engine.graph.span_lengths_m`; a live analysis
    keeps them). ``memo``: duct protection kept from the stage before (see
    :class:`netgis.engine.redundancy.DuctMemo`). ``previous``: the lit-span index of the
    state before an edit, whose projected spans the new index takes where unchanged.
    ``end_rows``: the nodes row of each span's ends, when known
    (:func:`netgis.engine.graph.analysis_graph_from_gdfs`). ``by_id``: the span rows
    sorted by span_id (as text), when known. ``previous_rows``: the row of each span row
    in the spans ``previous`` was made of (-1: new), so that the two indexes are matched
    by row, not by id.
    """
    check_drop(drop_m)
    step = progress or (lambda _name: None)
    step("graph")
    warnings: list[Problem] = []
    lengths = span_lengths_m(spans) if lengths_m is None else lengths_m
    g = analysis_graph_from_gdfs(nodes, spans, end_rows=end_rows)
    st = structure(g)
    if not g.has_core:
        # the validation's warning too: nodes built in memory may not have been validated
        warnings.append(NO_CORE_WARNING)
    span_edge, span_lit = _lit(spans, g, st)
    lit_rows = np.flatnonzero(span_lit)
    order = None
    if by_id is not None:
        # the lit rows in span_id order, as positions among the lit rows
        order = (np.cumsum(span_lit) - 1)[by_id[span_lit[by_id]]]
    span_index = SpanIndex(spans.iloc[lit_rows][["span_id", "geometry"]], order=order,
                           rows=lit_rows)
    if previous is not None:
        span_index.adopt(previous, at=_entries_before(span_index, previous, previous_rows))
    step("optics")
    budget = budget or LossBudget()
    edge_length_m = np.zeros(g.n_edges)
    in_g = span_edge >= 0
    edge_length_m[span_edge[in_g]] = lengths[in_g]
    loss = vertex_loss(g, edge_length_m, vertex_nodes(g, nodes, budget), budget)
    optics = Optics(budget, loss, edge_length_m,
                    _edge_reversed(nodes, spans, g, span_edge, starts), np.zeros(0))
    step("redundancy")
    return NetworkStage(graph=g, structure=st, protection=protection(g, st, memo=memo),
                        span_edge=span_edge, span_lit=span_lit, lengths_m=lengths,
                        optics=optics, span_index=span_index,
                        lit_edge=span_edge[lit_rows][span_index.order], drop_m=drop_m,
                        warnings=warnings)


def _entries_before(index: SpanIndex, previous: SpanIndex, previous_rows: IntArray | None
                    ) -> IntArray | None:
    """The entry of ``previous`` holding each span of ``index`` (-1: none), by span row;
    None when the rows are not known (the ids are looked up then)."""
    rows, before = index.source_rows, getattr(previous, "source_rows", None)
    if previous_rows is None or rows is None or before is None:
        return None
    old_row = previous_rows[rows]
    size = max(int(before.max(initial=-1)), int(old_row.max(initial=-1))) + 1
    entry_of_row = np.full(size + 1, -1, dtype=np.int64)  # the last entry: -1 for "new"
    entry_of_row[before] = np.arange(len(before), dtype=np.int64)
    out: IntArray = entry_of_row[old_row]
    return out


@dataclass(frozen=True)
class PremiseChunk:
    """The analysis of some premises (:func:`premise_chunk`): rows and sums that add up.

    ``edge_premises``/``edge_units`` count the passed premises and units per
    edge of G; ``sums`` and ``area_sums`` are :func:`netgis.engine.kpis.premise_sums`
    of the chunk and of its premises in each area.
    """

    premises: gpd.GeoDataFrame
    served_edge: IntArray
    frac_from: npt.NDArray[np.float64]
    edge_premises: IntArray
    edge_units: IntArray
    sums: IntArray
    area_sums: IntArray
    home_zone: int | None    #: the one working zone of all these premises, if any
    #: the nearest lit span of each premise (None when nothing is lit), passed or not
    nearest_span_id: npt.NDArray[np.object_] | None = None


def premise_chunk(stage: NetworkStage, premises: gpd.GeoDataFrame, *,
                  zones: ZonePlan | None = None, areas: AreaIndex | None = None,
                  halo_m: float | None = None,
                  points_lonlat: npt.NDArray[np.float64] | None = None) -> PremiseChunk:
    """Locate, protect and price some premises against ``stage``.

    ``zones`` is the working-zone choice for all premises of the dataset
    (:class:`netgis.engine.coverage.ZoneStats`); by default these premises' own.
    ``halo_m``: search the spans near these premises first (see
    :func:`netgis.engine.coverage.locate`); the answers are the same.
    ``points_lonlat``: the premises' WGS84 coordinates when already computed
    (:func:`netgis.engine.coverage.lonlat` of their geometry), an ``(n, 2)`` array.
    """
    g = stage.graph
    prem_ll = lonlat(premises.geometry.to_numpy(), CRS(premises.crs)) \
        if points_lonlat is None else points_lonlat
    zone_of = zones.zones(prem_ll[:, 0]) if zones is not None \
        else working_zones(prem_ll[:, 0], prem_ll[:, 1])
    lit = stage.span_index
    found = locate_arrays(premises.geometry, lit, drop_m=stage.drop_m, zones=zone_of,
                          points_lonlat=prem_ll, halo_m=halo_m)
    # every lit span is an edge of G: the served edge by the span's position in the index
    served = np.full(len(found.nearest), -1, dtype=np.int64)
    served[found.passed] = stage.lit_edge[found.nearest[found.passed]]
    frac = found.frac
    # _scatter, not a plain take: a network with no edge in G (no span in service) has
    # an empty edge_reversed, and nothing is served
    frac_from = np.where(_scatter(served, stage.optics.edge_reversed, bool), 1.0 - frac, frac)
    frac_from[served < 0] = np.nan
    distance = found.distance_m
    loss = _loss_columns(replace(stage.optics, frac_from=frac_from), g, served, distance)
    out = premises.copy()
    out["passed"] = found.passed
    out["distance_m"] = distance
    served_id = np.full(len(served), None, dtype=object)
    served_id[found.passed] = lit.span_ids[found.nearest[found.passed]]
    out["served_span_id"] = pd.Series(served_id, index=out.index, dtype=object)
    prot = stage.protection
    for name, per_edge in (("span_protected", prot.span), ("node_protected", prot.node),
                           ("duct_protected", prot.duct)):
        out[name] = _scatter(served, per_edge, bool)
    for name, values in loss.items():
        out[name] = values
    units = out["units"].to_numpy(dtype=np.int64)
    has = served >= 0
    edge_p = np.bincount(served[has], minlength=g.n_edges).astype(np.int64)
    edge_u = np.bincount(served[has], weights=units[has], minlength=g.n_edges).astype(np.int64)
    index = areas if areas is not None else _no_areas()
    nearest_id = np.full(len(served), None, dtype=object)
    has_nearest = found.nearest >= 0
    nearest_id[has_nearest] = lit.span_ids[found.nearest[has_nearest]]
    return PremiseChunk(premises=out, served_edge=served, frac_from=frac_from,
                        nearest_span_id=nearest_id,
                        edge_premises=edge_p, edge_units=edge_u, sums=premise_sums(out),
                        area_sums=index.premise_sums(out),
                        home_zone=int(zone_of[0]) if len(zone_of) and (zone_of == zone_of[0]).all()
                        else None)


@cache
def _no_areas() -> AreaIndex:
    """The index of no areas (made once: it is asked for by every chunk without areas)."""
    return AreaIndex(None)


@dataclass(frozen=True)
class Totals:
    """The layer results and KPIs of an analysis, from the sums of all its premise chunks."""

    spans: gpd.GeoDataFrame
    nodes: gpd.GeoDataFrame
    kpis: Kpis


def finish_analysis(stage: NetworkStage, nodes: gpd.GeoDataFrame, spans: gpd.GeoDataFrame,
                    areas: AreaIndex, *, edge_premises: IntArray, edge_units: IntArray,
                    sums: IntArray, area_sums: IntArray, home_zone: int | None,
                    line_zones: LineZones | None = None) -> Totals:
    """Cut and failure impacts, the span and node results and the KPIs of all premises.

    ``line_zones``: the projected and unioned in-service ``spans`` when already
    (being) built (:class:`netgis.engine.kpis.LineZones`).
    """
    imp = impacts(stage.graph, stage.structure, edge_premises, edge_units)
    span_out = _span_results(spans, stage.span_edge, stage.span_lit, stage.lengths_m, imp)
    node_out = _node_results(nodes, stage.graph, imp)
    lines = line_kpis(spans, areas, span_lengths_m=stage.lengths_m, home_zone=home_zone,
                      zones=line_zones)
    kpis = assemble_kpis(sums, area_sums, lines, areas,
                         spof_spans=int((span_out["cut_premises"] > 0).sum()),
                         spof_nodes=int((node_out["failure_premises"] > 0).sum()))
    return Totals(span_out, node_out, kpis)


def _edge_reversed(nodes: gpd.GeoDataFrame, spans: gpd.GeoDataFrame, g: AnalysisGraph,
                   span_edge: IntArray, starts: npt.NDArray[np.object_] | None = None
                   ) -> BoolArray:
    """Per edge of G: does its span's geometry start at its ``to_node``?

    docs/spec.md §2.10 does not fix a span's drawing direction; the end nearer its first
    vertex decides (compared in the dataset's CRS). ``starts``: the first vertex of every
    span row when already known (a live analysis keeps them).
    """
    in_g = span_edge >= 0
    if starts is None:
        start = shapely.get_point(spans.geometry.to_numpy()[in_g], 0)
    else:
        start = starts[in_g]
    out = np.zeros(g.n_edges, dtype=bool)
    if g.from_rows is not None and g.to_rows is not None and g.node_rows is not None \
            and built_from_nodes(g, nodes["node_id"].to_numpy(dtype=object)):
        # the graph keeps its edges' end rows in this nodes frame: no lookup by id
        node_geom = nodes.geometry.to_numpy()
        edges = span_edge[in_g]
        from_pt, to_pt = node_geom[g.from_rows[edges]], node_geom[g.to_rows[edges]]
    else:
        where = pd.Series(nodes.geometry.to_numpy(), index=id_index(nodes["node_id"]))
        from_pt = where.reindex(id_index(spans["from_node"].to_numpy()[in_g])).to_numpy()
        to_pt = where.reindex(id_index(spans["to_node"].to_numpy()[in_g])).to_numpy()
    out[span_edge[in_g]] = shapely.distance(start, to_pt) < shapely.distance(start, from_pt)
    return out


def _loss_columns(optics: Optics, g: AnalysisGraph, served_edge: IntArray,
                  distance_m: npt.NDArray[np.float64]) -> dict[str, npt.NDArray[Any]]:
    """``loss_db``, ``in_budget``, ``margin_db`` and the loss parts per premise."""
    parts = premise_loss_db(optics.loss, g, optics.budget, served_edge=served_edge,
                            frac_from=optics.frac_from, distance_m=distance_m,
                            edge_length_m=optics.edge_length_m)
    loss_db = parts["loss_db"]
    margin = optics.budget.budget_db - loss_db
    # no finite loss (no core reaches the span's ends) is no light at all: out of budget
    in_budget = np.isfinite(loss_db) & (loss_db <= optics.budget.budget_db)
    return {"loss_db": loss_db, "in_budget": in_budget, "margin_db": margin,
            "loss_fiber_km": parts["fiber_km"], "loss_splitter_db": parts["splitter_db"],
            "loss_splice_db": parts["splice_db"]}


def _span_results(spans: gpd.GeoDataFrame, span_edge: IntArray, span_lit: BoolArray,
                  lengths_m: npt.NDArray[np.float64], imp: Impact) -> gpd.GeoDataFrame:
    # the input columns shared, not copied (results are never changed in place)
    data: dict[str, Any] = {col: spans[col] for col in spans.columns}
    data["lit"] = np.asarray(span_lit, dtype=bool)
    data["length_m"] = np.asarray(lengths_m, dtype=float)
    data["cut_premises"] = _scatter(span_edge, imp.cut_premises, np.int64)
    data["cut_units"] = _scatter(span_edge, imp.cut_units, np.int64)
    return gpd.GeoDataFrame(data, geometry=spans.geometry.name, crs=spans.crs, copy=False)


def _node_results(nodes: gpd.GeoDataFrame, g: AnalysisGraph, imp: Impact) -> gpd.GeoDataFrame:
    """Failure impact per node; cores and nodes out of service cannot fail (0)."""
    at = node_entries(g, nodes["node_id"].to_numpy(dtype=object))
    non_core = (at >= 0) & ~_scatter(at, g.is_core, bool)
    vertex = np.where(non_core, _scatter(at, g.node_vertex, np.int64), -1)
    out = nodes.copy()
    out["failure_premises"] = _scatter(vertex, imp.failure_premises, np.int64)
    out["failure_units"] = _scatter(vertex, imp.failure_units, np.int64)
    return out


def analyze(dataset: Dataset, *, drop_m: float = DEFAULT_DROP_M,
            budget: LossBudget | None = None, progress: Progress | None = None) -> Analysis:
    """Coverage, redundancy and KPIs of ``dataset`` (docs/spec.md §2, Definitions).

    A pipeline of named steps: the network (:func:`network_stage`: graph,
    structure, lit spans, optics, protection), the premises in one chunk
    (:func:`premise_chunk`: located, protected, priced) and the totals
    (:func:`finish_analysis`: impacts, result layers, KPIs).

    Parameters
    ----------
    dataset
        A validated dataset (:func:`netgis.io.read_dataset`).
    drop_m
        Maximum drop length, meters (default 150).
    budget
        Optical loss parameters (default: :class:`netgis.engine.optics.LossBudget`'s,
        GPON class B+).
    progress
        Called with a step name as each step starts (for progress bars).

    A dataset with strand layers (docs/strands.md) also gets the capacity KPIs
    (``units_connectable``, ``ports_free``, ``strands_free_km``) in ``kpis["network"]``;
    without them the KPIs are exactly as before.
    """
    result = analyze_parts(dataset, drop_m=drop_m, budget=budget, progress=progress)[0]
    if dataset.strands:
        add_capacity_kpis(result, dataset, drop_m=drop_m, budget=budget)
    return result


def add_capacity_kpis(result: Analysis, dataset: Dataset, *, drop_m: float,
                      budget: LossBudget | None) -> None:
    """Put the capacity KPIs of ``dataset``'s strand layers into ``result.kpis["network"]``."""
    from netgis.engine.strands.capacity import capacity
    from netgis.engine.strands.trace import TraceOptions
    from netgis.strand_plant import strand_plant

    plant = strand_plant(dataset, dataset.strands)
    passed = result.premises.set_index("premise_id")["passed"]
    options = TraceOptions(budget=budget or LossBudget())
    cap = capacity(plant, passed, drop_m=drop_m, options=options)
    network = cast(dict[str, Any], result.kpis["network"])
    network.update(cap.kpis)


def passed_premises(dataset: Dataset, *, drop_m: float = DEFAULT_DROP_M) -> pd.Series:
    """Whether each premise is passed (docs/spec.md, passed), and nothing else.

    The same ``passed`` as :func:`analyze` gives, without the redundancy, optics and
    KPIs: the lit spans are the in-service spans reachable from a core (a breadth-first
    search of G from the super-core), and each premise's nearest lit span is found as
    :func:`analyze` finds it. What the capacity of the strand plant needs.

    Returns
    -------
    pandas.Series
        Booleans indexed by premise_id, in the dataset's premise order.

    Examples
    --------
    >>> from netgis.io import read_dataset
    >>> ds = read_dataset("tests/examples/ring_spur/dataset.gpkg")
    >>> bool((passed_premises(ds) == analyze(ds).premises.set_index("premise_id")["passed"]).all())
    True
    """
    from scipy.sparse import coo_array
    from scipy.sparse.csgraph import breadth_first_order

    check_drop(drop_m)
    nodes, spans, premises = dataset.nodes, dataset.spans, dataset.premises
    g = analysis_graph_from_gdfs(nodes, spans)
    reached = np.zeros(g.n_vertices, dtype=bool)
    if g.has_core and g.n_edges:
        adjacency = coo_array((np.ones(g.n_edges), (g.eu, g.ev)),
                              shape=(g.n_vertices, g.n_vertices)).tocsr()
        reached[breadth_first_order(adjacency, S, directed=False,
                                    return_predecessors=False)] = True
    elif g.has_core:
        reached[S] = True
    span_edge = span_edges(g, spans["span_id"].to_numpy(dtype=object))
    lit_rows = np.flatnonzero(_scatter(span_edge, reached[g.eu] if g.n_edges
                                       else np.zeros(0, dtype=bool), bool))
    index = SpanIndex(spans.iloc[lit_rows][["span_id", "geometry"]])
    prem_ll = lonlat(premises.geometry.to_numpy(), CRS(premises.crs))
    found = locate_arrays(premises.geometry, index, drop_m=drop_m,
                          zones=working_zones(prem_ll[:, 0], prem_ll[:, 1]),
                          points_lonlat=prem_ll)
    return pd.Series(np.asarray(found.passed, dtype=bool),
                     index=pd.Index(premises["premise_id"].to_numpy(dtype=object),
                                    name="premise_id"), name="passed")


def analyze_parts(dataset: Dataset, *, drop_m: float = DEFAULT_DROP_M,
                  budget: LossBudget | None = None, progress: Progress | None = None
                  ) -> tuple[Analysis, NetworkStage, PremiseChunk]:
    """:func:`analyze`, with the network stage and the premise chunk it was made of.

    What a live analysis (:mod:`netgis.engine.live`) keeps to apply edits later.
    """
    step = progress or (lambda _name: None)
    check_drop(drop_m)
    areas = AreaIndex(dataset.areas)
    lines = LineZones(dataset.spans)
    with ThreadPoolExecutor(max_workers=1) as pool:
        # the union of the lines for the km KPIs needs no premise: GEOS builds it meanwhile
        pool.submit(lines.warm, areas)
        stage = network_stage(dataset.nodes, dataset.spans, drop_m=drop_m, budget=budget,
                              progress=step)
        # and the lit spans' KD-tree while the premises are converted and sorted
        pool.submit(stage.span_index.warm)
        step("coverage")
        chunk = premise_chunk(stage, dataset.premises, areas=areas)
        home_zone = chunk.home_zone
        step("kpis")
        totals = finish_analysis(stage, dataset.nodes, dataset.spans, areas,
                                 edge_premises=chunk.edge_premises, edge_units=chunk.edge_units,
                                 sums=chunk.sums, area_sums=chunk.area_sums,
                                 home_zone=home_zone, line_zones=lines)
    result = Analysis(
        dataset=dataset, drop_m=drop_m, premises=chunk.premises, spans=totals.spans,
        nodes=totals.nodes, kpis=totals.kpis, graph=stage.graph, structure=stage.structure,
        protection=stage.protection, served_edge=chunk.served_edge,
        span_index=stage.span_index, optics=replace(stage.optics, frac_from=chunk.frac_from),
        home_zone=home_zone, warnings=list(stage.warnings),
    )
    return result, stage, chunk


def scenario(
    analysis: Analysis,
    *,
    spans: Iterable[str] = (),
    nodes: Iterable[str] = (),
    ducts: Iterable[str] = (),
    area: shapely.Geometry | None = None,
    area_crs: CRS | str | int = 4326,
) -> ScenarioResult:
    """Premises passed before the scenario that lose every path to a working core.

    Any set of spans, nodes (cores included) and ducts fail at once; every
    span intersecting ``area`` is cut and every node in it (boundary included)
    fails. Unknown ids are an error naming them.

    Returns
    -------
    ScenarioResult
        ``premises`` and ``units`` lost, ``premise_ids`` (sorted), the failed
        ``failed_spans`` / ``failed_nodes`` after expanding ducts and the area,
        and the ``lost`` flags per premise row.
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
    cut_edges = analysis.edges_of(sorted(failed_spans))
    lost = scenario_lost(analysis.graph, analysis.served_edge,
                         cut_edges=cut_edges[cut_edges >= 0], failed_nodes=failed_nodes)
    prem = analysis.premises
    return ScenarioResult(
        premises=int(lost.sum()),
        units=int(prem["units"].to_numpy()[lost].sum()),
        premise_ids=sorted(prem["premise_id"].to_numpy()[lost].tolist()),
        failed_spans=sorted(failed_spans),
        failed_nodes=sorted(failed_nodes),
        lost=lost,
    )


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
        e = int(analysis.edges_of([served])[0])
        flags = {"span_protected": bool(analysis.protection.span[e]),
                 "node_protected": bool(analysis.protection.node[e]),
                 "duct_protected": bool(analysis.protection.duct[e])}
    dist = row["distance_m"]
    optical = {"loss_db": None, "margin_db": None, "in_budget": False, "loss": None}
    if served is not None:
        frac = float(row["attach_frac"])
        optical = optical_reach(analysis, edge=e, distance_m=float(dist),
                                frac_from=1.0 - frac if analysis.optics.edge_reversed[e]
                                else frac)
    return {
        "lon": lon, "lat": lat, "passed": bool(row["passed"]),
        "distance_m": None if pd.isna(dist) else float(dist),
        "served_span_id": served, "nearest_span_id": row["nearest_span_id"],
        "drop_m": analysis.drop_m, **flags, **optical,
        "warnings": position_warnings(analysis, lon, lat),
    }


def outside_extent_m(extent: tuple[float, float, float, float], lon: float, lat: float) -> float:
    """Geodesic distance in meters from ``lon``/``lat`` to the box ``extent`` (0 inside).

    Examples
    --------
    >>> outside_extent_m((8.0, 50.0, 9.0, 51.0), 8.5, 50.5)
    0.0
    >>> round(outside_extent_m((8.0, 50.0, 9.0, 51.0), 8.5, 49.0) / 1000)
    111
    """
    return float(distance_to_box_m([lon], [lat], extent)[0])


def position_warnings(analysis: Analysis, lon: float, lat: float, *,
                      far_m: float = FAR_OUTSIDE_M) -> list[dict[str, Any]]:
    """Warnings about a WGS84 position asked about: far outside the plant, swapped axes.

    *Far* means more than ``far_m`` (default 10 km) beyond the box of the plant's
    nodes. When the position is far and the swapped one (``lon=lat, lat=lon``) is
    not, a second warning suggests the swap: a latitude given as longitude is the
    commonest way to ask about a point 6,000 km away.

    Examples
    --------
    >>> from netgis.generate import generate_city
    >>> result = analyze(generate_city(premises=100, seed=1))
    >>> [w["code"] for w in position_warnings(result, 50.1, 8.7)]
    ['far_outside_plant', 'swapped_coordinates']
    >>> position_warnings(result, 8.7, 50.1)
    []
    """
    extent = analysis.plant_extent
    if extent is None:
        return []
    away = outside_extent_m(extent, lon, lat)
    if away <= far_m:
        return []
    box = ", ".join(f"{v:.4f}" for v in extent)
    out: list[dict[str, Any]] = [{
        "code": "far_outside_plant", "distance_m": round(away, 1),
        "message": f"the point lies {away / 1000:,.0f} km outside the network's extent "
                   f"(lon/lat box {box}); check the coordinates",
    }]
    if -90 <= lon <= 90 and outside_extent_m(extent, lat, lon) <= far_m:
        out.append({
            "code": "swapped_coordinates", "lon": lat, "lat": lon,
            "message": f"lon={lat}, lat={lon} (the two swapped) lies within the network: "
                       "were longitude and latitude given the wrong way round?",
        })
    return out


def lit_spans_near(analysis: Analysis, lon: float, lat: float,
                   radius_m: float) -> npt.NDArray[np.object_]:
    """The lit spans within ``radius_m`` of ``lon``/``lat``, as WGS84 line geometries.

    Examples
    --------
    >>> from netgis.generate import generate_city
    >>> result = analyze(generate_city(premises=100, seed=1))
    >>> west, south, east, north = result.plant_extent
    >>> len(lit_spans_near(result, (west + east) / 2, (south + north) / 2, 2000)) > 0
    True
    """
    zone = int(zones_near(np.array([lon]), np.array([lat]), analysis.home_zone)[0])
    tree = analysis.span_index.in_zone(zone).tree
    point = transform_geoms(np.asarray([shapely.Point(lon, lat)], dtype=object), WGS84,
                            CRS.from_epsg(zone))[0]
    hits = tree.query(point, predicate="dwithin", distance=radius_m)
    index = analysis.span_index
    out: npt.NDArray[np.object_] = transform_geoms(index.geoms[np.sort(hits)], index.crs, WGS84)
    return out


def optical_reach(analysis: Analysis, *, edge: int, distance_m: float,
                  frac_from: float) -> dict[str, Any]:
    """``loss_db``, ``margin_db``, ``in_budget`` and the loss breakdown of one attachment.

    ``edge`` is the served edge of G, ``frac_from`` where the location attaches
    along it (from its from_node), ``distance_m`` its drop.
    """
    optics = analysis.optics
    cols = _loss_columns(replace(optics, frac_from=np.asarray([frac_from])), analysis.graph,
                         np.asarray([edge], dtype=np.int64), np.asarray([distance_m]))
    loss_db = float(cols["loss_db"][0])
    if not np.isfinite(loss_db):
        return {"loss_db": None, "margin_db": None, "in_budget": False, "loss": None}
    breakdown = loss_breakdown(optics.loss, analysis.graph, optics.budget, edge=edge,
                               frac_from=frac_from, distance_m=distance_m,
                               edge_length_m=optics.edge_length_m)
    return {"loss_db": loss_db, "margin_db": float(cols["margin_db"][0]),
            "in_budget": bool(cols["in_budget"][0]), "loss": breakdown}


def premise_optics(analysis: Analysis, position: int) -> dict[str, Any]:
    """:func:`optical_reach` of the premise in row ``position`` of ``analysis.premises``."""
    edge = int(analysis.served_edge[position])
    if edge < 0:
        return {"loss_db": None, "margin_db": None, "in_budget": False, "loss": None}
    return optical_reach(analysis, edge=edge,
                         distance_m=float(analysis.premises["distance_m"].iloc[position]),
                         frac_from=float(analysis.optics.frac_from[position]))


@dataclass(frozen=True)
class BudgetScenarioResult:
    """Premises that enter or leave the budget under other loss parameters or split ratios."""

    budget: LossBudget
    split_ratios: dict[str, int]
    entering: list[str]       #: premise ids in budget now that were not before (sorted)
    leaving: list[str]        #: premise ids no longer in budget (sorted)
    units_entering: int
    units_leaving: int
    units_in_budget_before: int
    units_in_budget_after: int
    in_budget: BoolArray      #: per premise row, under the new parameters
    #: a named splitter that no passed premise's light passes (its ratio changes nothing)
    warnings: list[Problem] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The JSON-ready part."""
        return {"budget_db": self.budget.budget_db, "split_ratios": self.split_ratios,
                "units_in_budget_before": self.units_in_budget_before,
                "units_in_budget_after": self.units_in_budget_after,
                "units_entering": self.units_entering, "units_leaving": self.units_leaving,
                "entering": self.entering, "leaving": self.leaving}


def budget_scenario(analysis: Analysis, *, budget: LossBudget | None = None,
                    split_ratios: Mapping[str, int] | None = None) -> BudgetScenarioResult:
    """What-if on the optical parameters without editing data.

    ``budget`` replaces the analysis's loss parameters (e.g. a class C+
    budget); ``split_ratios`` sets the ratio of some splitters (``{"n7": 64}``
    makes splitter n7 a 1:64 one). Passed premises and their attachment stay.
    A node that does not exist or is not a splitter is an error naming it; a
    splitter that serves no passed premise is a warning naming it.
    """
    new = budget or analysis.optics.budget
    ratios = dict(split_ratios or {})
    g = analysis.graph
    loss = vertex_loss(g, analysis.optics.edge_length_m,
                       vertex_nodes(g, analysis.dataset.nodes, new, split_ratios=ratios), new)
    idle = sorted(set(ratios) - _serving_nodes(analysis))
    optics = replace(analysis.optics, budget=new, loss=loss)
    prem = analysis.premises
    after = _loss_columns(optics, g, analysis.served_edge,
                          prem["distance_m"].to_numpy(dtype=float))["in_budget"]
    before = prem["in_budget"].to_numpy(dtype=bool)
    ids = prem["premise_id"].to_numpy()
    units = prem["units"].to_numpy(dtype=np.int64)
    entering, leaving = after & ~before, before & ~after
    return BudgetScenarioResult(
        budget=new, split_ratios=ratios,
        entering=sorted(ids[entering].tolist()), leaving=sorted(ids[leaving].tolist()),
        units_entering=int(units[entering].sum()), units_leaving=int(units[leaving].sum()),
        units_in_budget_before=int(units[before].sum()),
        units_in_budget_after=int(units[after].sum()), in_budget=after,
        warnings=[Problem("nodes", n, "split_ratio", "the splitter serves no passed premise: "
                          "its split ratio changes nothing") for n in idle])


def _serving_nodes(analysis: Analysis) -> set[str]:
    """Ids of the nodes on the least-loss path of some passed premise (cores excluded)."""
    g, optics = analysis.graph, analysis.optics
    has = analysis.served_edge >= 0
    ends, _ = entry_end(optics.loss, g, optics.budget, edge=analysis.served_edge[has],
                        frac_from=optics.frac_from[has], edge_length_m=optics.edge_length_m)
    lit = on_paths(optics.loss, ends)
    non_core = ~g.is_core
    return set(g.node_ids[non_core][lit[g.node_vertex[non_core]]].tolist())
