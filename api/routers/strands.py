"""The strand-level plant over HTTP (docs/strands.md): traces down from an OLT port and up
from a premise, cuts, capacity, diversity, and the splice diagram of a node.

Every answer comes from the strand state of the current data version
(:meth:`api.services.Services.strands`: the plant, its plain trace, best paths and
capacity, each computed once per data version and loss parameters) and carries that
version (``data_version`` and the ``X-Data-Version`` header). A database without strand
layers answers 409, saying so. The values are those of ``netgis trace``, ``netgis
capacity`` and ``netgis diversity`` on the same data: the columns of their files, with the
lists of a cell (``span_ids``, ``splitter_ids``) as JSON lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from netgis.api.deps import MIN_VERSION, ServicesDep, SettingsDep, require_json_body
from netgis.api.errors import problem_responses
from netgis.api.geojson import Link
from netgis.api.live import VERSION_HEADER, note_version
from netgis.api.params import DropParam, OpticsParam
from netgis.api.routers.common import GEOJSON, body_of, paging_links, request_body
from netgis.api.services import MapPage
from netgis.errors import NotFoundError, ParameterError, Problem
from netgis.jsonsafe import json_safe

if TYPE_CHECKING:
    from netgis.api.services import Services
    from netgis.api.strand_states import StrandState
    from netgis.engine.optics import LossBudget
    from netgis.engine.strands.capacity import Capacity

router = APIRouter(tags=["Strands"], dependencies=[MIN_VERSION])

#: SQL-like offsets beyond this are certainly past the end.
MAX_OFFSET = 2**53
#: Coordinates of the trace's GeoJSON, decimals (~1 cm).
COORD_DECIMALS = 7

ConnectorParam = Annotated[float | None, Query(
    ge=0, le=10, description="Loss of a connector that records none, dB (default 0.5).")]
PlannedParam = Annotated[bool, Query(
    description="Planned cables, spans and nodes take part too.")]
LimitParam = Annotated[int | None, Query(
    ge=1, description="Rows per page; larger values are clamped to the server's maximum.")]
OffsetParam = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip.")]
IdText = Annotated[str, Query(min_length=1, max_length=1000)]


# ------------------------------------------------------------------------------ models

class TraceHop(BaseModel):
    """One hop of a path (a ``trace_hops.csv`` row without its path_id)."""

    seq: int = Field(description="1-based position in the path.")
    hop_type: Literal["connection", "piece", "splitter", "drop"]
    ref_id: str = Field(description="connection_id, cable_id, splitter_id or drop_id.")
    cable_id: str | None
    strand: int | None
    tube: int | None
    colour: str | None = Field(description="TIA-598 colour of the strand.")
    node_from: str
    node_to: str
    span_ids: list[str] | None = Field(description="The spans a piece covers, sorted.")
    length_m: float | None
    loss_db: float
    cum_loss_db: float = Field(description="Sum of the hop losses so far, without fixed_db.")


class TracePath(BaseModel):
    """One path of the glass (a ``trace_paths.csv`` row) with its hops."""

    olt_port_id: str
    path_id: str = Field(description="olt_port_id/position in depth-first order.")
    end_type: Literal["premise", "open", "olt", "reversed_splitter"]
    end_id: str
    drop_id: str | None
    premise_id: str | None
    n_splices: int
    n_connectors: int
    splitter_ids: list[str]
    fiber_m: float
    drop_m: float | None
    loss_db: float = Field(description="fixed_db + the sum of the hop losses.")
    margin_db: float
    in_budget: bool
    hops: list[TraceHop]


class UpstreamRow(BaseModel):
    """One drop of the premise traced up (an ``upstream.csv`` row)."""

    premise_id: str
    drop_id: str
    status: Literal["connected", "open"]
    olt_port_id: str | None
    path_id: str | None
    loss_db: float | None
    in_budget: bool | None


class TraceAnswer(BaseModel):
    """The paths down from an OLT port (depth-first order), or the paths ending at a
    premise's drops (best first) with one upstream row per drop."""

    data_version: int
    olt_port_id: str | None
    premise_id: str | None
    budget_db: float
    paths: list[TracePath]
    upstream: list[UpstreamRow] | None = Field(description="premise only.")


class CutIn(BaseModel):
    """What fails at once: spans cut, strands cut (``C:k`` everywhere, ``C:k@S`` on span
    S), nodes and ducts failed."""

    model_config = ConfigDict(extra="forbid")

    spans: list[str] = Field(default_factory=list)
    strands: list[str] = Field(default_factory=list, examples=[["K1:1", "K2:3@s5"]])
    nodes: list[str] = Field(default_factory=list)
    ducts: list[str] = Field(default_factory=list)
    include_planned: bool = False


class CutSummary(BaseModel):
    """Premises and units lost and rerouted by the cut, and the splitters left dark."""

    premises_lost: int
    units_lost: int
    premises_rerouted: int
    units_rerouted: int
    splitters_dark: list[str]


class CutPremise(BaseModel):
    """A premise the cut takes down or reroutes (a ``cut_premises.csv`` row)."""

    premise_id: str
    units: int
    status: Literal["lost", "rerouted"]
    olt_port_before: str
    olt_port_after: str | None
    loss_before_db: float
    loss_after_db: float | None


class CutAnswer(BaseModel):
    """The effect of a cut on the plain trace."""

    data_version: int
    summary: CutSummary
    cut_premises: list[CutPremise]


class CapacityKpis(BaseModel):
    """The three capacity KPIs (``capacity.json``)."""

    units_connectable: int
    ports_free: int
    strands_free_km: float


class CapacityAnswer(BaseModel):
    """The capacity KPIs of the current data."""

    data_version: int
    drop_m: float
    kpis: CapacityKpis


class SpanCapacity(BaseModel):
    """Strands of one span in service by state (a ``span_capacity.csv`` row)."""

    span_id: str
    cables: int
    strands_total: int
    lit: int
    assigned: int
    reserved: int
    broken: int
    free: int


class SplitterPorts(BaseModel):
    """One splitter's ports (a ``splitter_ports.csv`` row)."""

    splitter_id: str
    node_id: str
    ratio: int
    ports_used: int
    ports_free: int
    live: bool
    input_loss_db: float | None


class PremiseCapacity(BaseModel):
    """One premise: passed, connected (with its best path's loss), connectable (a
    ``premise_capacity.csv`` row)."""

    premise_id: str
    units: int
    passed: bool
    connected: bool
    loss_db: float | None
    in_budget: bool
    connectable: bool
    nearest_splitter_id: str | None


class PremiseCapacityAnswer(PremiseCapacity):
    """One premise's capacity row and the data version."""

    data_version: int


class SpanCapacityPage(BaseModel):
    """One page of span_capacity rows, by span_id."""

    data_version: int
    drop_m: float
    items: list[SpanCapacity]
    numberMatched: int
    numberReturned: int
    links: list[Link]


class SplitterPortsPage(BaseModel):
    """One page of splitter_ports rows, by splitter_id."""

    data_version: int
    drop_m: float
    items: list[SplitterPorts]
    numberMatched: int
    numberReturned: int
    links: list[Link]


class PremiseCapacityPage(BaseModel):
    """One page of premise_capacity rows, by premise_id."""

    data_version: int
    drop_m: float
    items: list[PremiseCapacity]
    numberMatched: int
    numberReturned: int
    links: list[Link]


class DiversityAnswer(BaseModel):
    """What the best paths of two premises (or drops) share."""

    data_version: int
    a: str
    b: str
    path_a: str
    path_b: str
    loss_a_db: float
    loss_b_db: float
    diverse_span: bool = Field(description="No shared span.")
    diverse_duct: bool = Field(description="And no shared duct.")
    diverse_node: bool = Field(description="And no shared node.")
    shared_spans: list[str]
    shared_ducts: list[str]
    shared_nodes: list[str]


# ------------------------------------------------------------------------------ helpers

def _answer(body: Any, version: int, media_type: str = "application/json") -> JSONResponse:
    """``body`` as JSON carrying the data version in its header too."""
    note_version(version)
    return JSONResponse(json_safe(body), media_type=media_type,
                        headers={VERSION_HEADER: str(version)})


def _traced(services: Services, budget: LossBudget | None, connector_db: float | None,
            include_planned: bool = False) -> tuple[int, StrandState]:
    states = services.strand_states
    return services.strands(states.options(budget, connector_db, include_planned))


def _split(cell: Any) -> list[str] | None:
    if cell is None or (isinstance(cell, float) and np.isnan(cell)):
        return None
    return [s for s in str(cell).split(";") if s]


def _records(frame: pd.DataFrame, columns: Sequence[str]) -> list[dict[str, Any]]:
    rows = frame[list(columns)].to_dict("records")
    return [json_safe({str(k): v for k, v in row.items()}) for row in rows]


def path_records(state: StrandState, numbers: np.ndarray) -> list[dict[str, Any]]:
    """The paths numbered ``numbers`` (in that order) as ``trace_paths.csv`` rows, each
    with its hops (``trace_hops.csv`` rows)."""
    from netgis.engine.strands.outputs import HOP_COLUMNS, PATH_COLUMNS
    from netgis.engine.strands.trace import hop_rows

    if not len(numbers):
        return []
    paths = _records(state.paths.iloc[numbers], PATH_COLUMNS)
    hops = _records(hop_rows(state.trace, numbers), HOP_COLUMNS)
    by_path: dict[str, list[dict[str, Any]]] = {}
    for hop in hops:
        path_id = hop.pop("path_id")
        hop["span_ids"] = _split(hop["span_ids"])
        by_path.setdefault(path_id, []).append(hop)
    for path in paths:
        path["splitter_ids"] = _split(path["splitter_ids"]) or []
        path["hops"] = by_path.get(path["path_id"], [])
    return paths


def _rounded(xy: np.ndarray) -> list[list[float]]:
    return np.round(np.asarray(xy, dtype=float), COORD_DECIMALS).tolist()  # type: ignore[no-any-return]


def _piece_line(state: StrandState, hop: dict[str, Any]) -> list[list[float]]:
    """The piece's spans joined in the direction travelled (node_from to node_to)."""
    plant = state.plant
    cab = plant.cables[hop["cable_id"]]
    a, b = cab.pos[hop["node_from"]], cab.pos[hop["node_to"]]
    step = 1 if b >= a else -1
    line: list[np.ndarray] = []
    for i in range(a, b, step):
        span = cab.spans[i if step > 0 else i - 1]
        xy = state.base.span_coords(span)
        at = np.asarray(plant.node_lonlat[cab.nodes[i]], dtype=float)
        # each span drawn from the node the glass comes from (its line may run either way)
        if np.hypot(*(xy[-1] - at)) < np.hypot(*(xy[0] - at)):
            xy = xy[::-1]
        if line and np.allclose(line[-1][-1], xy[0]):
            xy = xy[1:]
        line.append(xy)
    return _rounded(np.vstack(line)) if line else []


def trace_features(state: StrandState, paths: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each hop of ``paths`` as a GeoJSON feature: a piece as the line of its spans in the
    direction travelled, a drop as a line from its node to the premise, a connection or
    splitter as a point at its node."""
    plant = state.plant
    features = []
    for path in paths:
        for hop in path["hops"]:
            kind = hop["hop_type"]
            if kind == "piece":
                geometry = {"type": "LineString", "coordinates": _piece_line(state, hop)}
            elif kind == "drop":
                ends = [plant.node_lonlat[hop["node_from"]],
                        plant.premise_lonlat[path["premise_id"]]]
                geometry = {"type": "LineString", "coordinates": _rounded(np.asarray(ends))}
            else:
                point = np.asarray(plant.node_lonlat[hop["node_from"]], dtype=float)
                geometry = {"type": "Point", "coordinates": _rounded(point)}
            features.append({
                "type": "Feature", "id": f"{path['path_id']}#{hop['seq']}",
                "geometry": geometry,
                "properties": {"path_id": path["path_id"], **hop},
            })
    return features


def _wants_geojson(f: str | None, accept: str | None) -> bool:
    if f is not None:
        return f == "geojson"
    return GEOJSON in (accept or "").lower()


def _page(request: Request, settings: Any, frame: pd.DataFrame, columns: Sequence[str],
          limit: int | None, offset: int) -> dict[str, Any]:
    size = min(limit or settings.default_limit, settings.max_limit)
    rows = _records(frame.iloc[offset:offset + size], columns)
    links = paging_links(request, offset, size, len(rows), len(frame),
                         media_type="application/json")
    return {"items": rows, "numberMatched": len(frame), "numberReturned": len(rows),
            "links": links}


def _capacity(services: Services, budget: LossBudget | None, connector_db: float | None,
              drop_m: float | None) -> tuple[int, float, Capacity]:
    version, state = _traced(services, budget, connector_db)
    drop = services.drop_m(drop_m)
    return version, drop, services.strand_states.capacity(state, drop)


# ------------------------------------------------------------------------------ trace

_GEOJSON_200: dict[int | str, dict[str, Any]] = {200: {
    "description": "JSON (default), or with f=geojson (or Accept: application/geo+json) a "
                   "GeoJSON FeatureCollection: each hop a feature (properties: path_id and "
                   "the hop's columns), and the answer's data_version, budget_db, paths "
                   "(without hops) and upstream as members of the collection.",
    "content": {GEOJSON: {"schema": {"type": "object"}}}}}


@router.get("/trace", response_model=TraceAnswer, summary="Follow the glass",
            responses={**_GEOJSON_200, **problem_responses(400, 404, 409)})
def trace(
    services: ServicesDep, optics: OpticsParam,
    olt_port: Annotated[str | None, Query(
        min_length=1, max_length=1000, description="Paths down from this OLT port.")] = None,
    premise: Annotated[str | None, Query(
        min_length=1, max_length=1000,
        description="Paths up from this premise: every path ending at its drops, best "
                    "first, and one upstream row per drop.")] = None,
    connector_db: ConnectorParam = None, include_planned: PlannedParam = False,
    f: Annotated[Literal["json", "geojson"] | None, Query(
        description="json (default) or geojson (each hop a feature).")] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """Exactly one of ``olt_port`` and ``premise``. The paths are the rows of
    ``trace_paths.csv`` (``netgis trace``) with their hops (``trace_hops.csv``: the loss
    of each hop and the sum so far); ``upstream`` the rows of ``upstream.csv``."""
    from netgis.engine.strands.outputs import UPSTREAM_COLUMNS
    from netgis.engine.strands.trace import upstream_frame

    if (olt_port is None) == (premise is None):
        raise ParameterError([Problem("query", None, "olt_port",
                                      "give exactly one of olt_port and premise")],
                             "give exactly one of olt_port and premise")
    version, state = _traced(services, optics, connector_db, include_planned)
    upstream = None
    if olt_port is not None:
        if olt_port not in state.plant.olt_node:
            raise NotFoundError("olt_ports", olt_port)
        numbers = state.paths_of_port(olt_port)
    else:
        assert premise is not None
        if premise not in state.plant.premise_units:
            raise NotFoundError("premises", premise)
        numbers = state.paths_of_premise(premise)
        upstream = _records(upstream_frame(state.trace, state.options, state.best, {premise}),
                            UPSTREAM_COLUMNS)
    paths = path_records(state, numbers)
    head = {"data_version": version, "olt_port_id": olt_port, "premise_id": premise,
            "budget_db": state.options.budget.budget_db}
    if _wants_geojson(f, accept):
        return _answer({"type": "FeatureCollection", **head,
                        "paths": [{k: v for k, v in p.items() if k != "hops"} for p in paths],
                        "upstream": upstream,
                        "features": trace_features(state, paths)}, version, GEOJSON)
    return _answer({**head, "paths": paths, "upstream": upstream}, version)


@router.post("/trace/cuts", response_model=CutAnswer, summary="What if these are cut?",
             dependencies=[Depends(require_json_body)],
             responses=problem_responses(400, 409, 413, 415, 422),
             openapi_extra=request_body(["CutIn"], ["application/json"]))
def trace_cuts(
    services: ServicesDep, optics: OpticsParam,
    body: Annotated[CutIn, Depends(body_of(CutIn))],
    connector_db: ConnectorParam = None,
) -> Response:
    """Cut spans and strands and fail nodes and ducts at once: the premises lost (a path
    from an OLT port before, none after) and rerouted (best port or loss changed by more
    than 0.02 dB), their units, and the splitters left dark, against the plain trace
    (``cut_premises.csv`` of ``netgis trace`` with the same cut). Ids that do not exist
    are a 422 naming each."""
    from netgis.engine.strands.outputs import CUT_COLUMNS, check_cut, parse_cut_strands
    from netgis.engine.strands.trace import (
        CutSet,
        best_paths,
        cut_frame,
        dark_splitters,
        path_losses,
        trace_network,
    )

    cut = CutSet(spans=frozenset(body.spans), strands=parse_cut_strands(body.strands),
                 nodes=frozenset(body.nodes), ducts=frozenset(body.ducts))
    version, state = _traced(services, optics, connector_db, body.include_planned)
    check_cut(state.plant, cut)
    # a cut is traced for each request, never kept: new work, charged as such
    services.admit()
    after = trace_network(state.plant, state.options, cut)
    best_after = best_paths(after, path_losses(after, state.options))
    rows = cut_frame(state.trace, after, state.options, state.best, best_after,
                     state.plant.premise_units)
    lost = rows[rows["status"] == "lost"]
    rerouted = rows[rows["status"] == "rerouted"]
    summary = {"premises_lost": len(lost), "units_lost": int(lost["units"].sum()),
               "premises_rerouted": len(rerouted),
               "units_rerouted": int(rerouted["units"].sum()),
               "splitters_dark": dark_splitters(state.trace, after)}
    return _answer({"data_version": version, "summary": summary,
                    "cut_premises": _records(rows, CUT_COLUMNS)}, version)


# ------------------------------------------------------------------------------ capacity

@router.get("/capacity", response_model=CapacityAnswer, summary="Capacity KPIs",
            responses=problem_responses(400, 409))
def capacity_kpis(services: ServicesDep, optics: OpticsParam,
                  connector_db: ConnectorParam = None, drop_m: DropParam = None) -> Response:
    """Units a free port of a live splitter could connect, free splitter ports, and km of
    free strands (``capacity.json`` of ``netgis capacity``)."""
    version, drop, cap = _capacity(services, optics, connector_db, drop_m)
    return _answer({"data_version": version, "drop_m": drop, "kpis": cap.kpis}, version)


@router.get("/capacity/spans", response_model=SpanCapacityPage,
            summary="Strands per span by state", responses=problem_responses(400, 409))
def capacity_spans(request: Request, services: ServicesDep, settings: SettingsDep,
                   optics: OpticsParam, connector_db: ConnectorParam = None,
                   drop_m: DropParam = None, limit: LimitParam = None,
                   offset: OffsetParam = 0) -> Response:
    """Per span in service: cables, strands, and strands lit, assigned, reserved, broken
    and free (``span_capacity.csv``), by span_id."""
    from netgis.engine.strands.outputs import SPAN_CAPACITY_COLUMNS

    version, drop, cap = _capacity(services, optics, connector_db, drop_m)
    page = _page(request, settings, cap.spans, SPAN_CAPACITY_COLUMNS, limit, offset)
    return _answer({"data_version": version, "drop_m": drop, **page}, version)


@router.get("/capacity/splitters", response_model=SplitterPortsPage,
            summary="Splitter ports", responses=problem_responses(400, 409))
def capacity_splitters(request: Request, services: ServicesDep, settings: SettingsDep,
                       optics: OpticsParam, connector_db: ConnectorParam = None,
                       drop_m: DropParam = None, limit: LimitParam = None,
                       offset: OffsetParam = 0) -> Response:
    """Per splitter: outputs used and free, whether it is live and the least loss to its
    inputs (``splitter_ports.csv``), by splitter_id."""
    from netgis.engine.strands.outputs import SPLITTER_COLUMNS

    version, drop, cap = _capacity(services, optics, connector_db, drop_m)
    page = _page(request, settings, cap.splitters, SPLITTER_COLUMNS, limit, offset)
    return _answer({"data_version": version, "drop_m": drop, **page}, version)


@router.get("/capacity/premises", response_model=PremiseCapacityPage,
            summary="Connected and connectable premises", responses=problem_responses(400, 409))
def capacity_premises(
    request: Request, services: ServicesDep, settings: SettingsDep, optics: OpticsParam,
    connector_db: ConnectorParam = None, drop_m: DropParam = None,
    connected: Annotated[bool | None, Query(description="Only premises that are (true) or "
                                            "are not (false) connected.")] = None,
    connectable: Annotated[bool | None, Query(description="Only premises that are (true) or "
                                              "are not (false) connectable.")] = None,
    limit: LimitParam = None, offset: OffsetParam = 0,
) -> Response:
    """Per premise: passed, connected with its best path's loss, connectable and the
    nearest splitter that could serve it (``premise_capacity.csv``), by premise_id."""
    from netgis.engine.strands.outputs import PREMISE_CAPACITY_COLUMNS

    version, drop, cap = _capacity(services, optics, connector_db, drop_m)
    rows = cap.premises
    if connected is not None:
        rows = rows[rows["connected"] == connected]
    if connectable is not None:
        rows = rows[rows["connectable"] == connectable]
    page = _page(request, settings, rows, PREMISE_CAPACITY_COLUMNS, limit, offset)
    return _answer({"data_version": version, "drop_m": drop, **page}, version)


@router.get("/capacity/premises/{premise_id}", response_model=PremiseCapacityAnswer,
            summary="One premise's capacity", responses=problem_responses(400, 404, 409))
def capacity_premise(
    services: ServicesDep, optics: OpticsParam,
    premise_id: Annotated[str, Path(description="The premise's id.")],
    connector_db: ConnectorParam = None, drop_m: DropParam = None,
) -> Response:
    """One row of ``premise_capacity.csv``; 404 for no such premise."""
    from netgis.engine.strands.outputs import PREMISE_CAPACITY_COLUMNS

    version, _, cap = _capacity(services, optics, connector_db, drop_m)
    hit = cap.premises[cap.premises["premise_id"] == premise_id]
    if hit.empty:
        raise NotFoundError("premises", premise_id)
    return _answer({**_records(hit, PREMISE_CAPACITY_COLUMNS)[0], "data_version": version},
                   version)


# ------------------------------------------------------------------------------ diversity

@router.get("/diversity", response_model=DiversityAnswer,
            summary="Do two premises share spans, ducts or nodes?",
            responses=problem_responses(400, 409, 422))
def diversity(
    services: ServicesDep, optics: OpticsParam,
    a: Annotated[str, Query(min_length=1, max_length=1000,
                            description="A premise (or drop) id.")],
    b: Annotated[str, Query(min_length=1, max_length=1000,
                            description="Another premise (or drop) id.")],
    connector_db: ConnectorParam = None, include_planned: PlannedParam = False,
) -> Response:
    """Compare the best paths of two premises (or drops): the spans, ducts and nodes they
    share (``netgis diversity``). One that does not exist or is not connected is a 422
    naming it."""
    from netgis.engine.strands.diversity import diversity as compare

    version, state = _traced(services, optics, connector_db, include_planned)
    found = compare(state.plant, state.trace, a, b, state.options, state.best)
    return _answer({"data_version": version, **found}, version)


# ------------------------------------------------------------------------------ splices

_HTML: dict[int | str, dict[str, Any]] = {200: {
    "description": "An HTML page: the node's cables, tubes and strands and what each strand "
                   "end is joined to; its splitters and OLT ports.",
    "content": {"text/html": {}}}}


@router.get("/maps/splices/{node_id}", response_class=HTMLResponse, tags=["Maps"],
            summary="Splice diagram of a node",
            responses={**_HTML, **problem_responses(400, 404, 409)})
def splice_diagram(
    services: ServicesDep,
    node_id: Annotated[str, Path(description="The node's id.")],
) -> Response:
    """The cables at the node (arriving, leaving or passing through), their tubes and
    strands in TIA-598 colours (named), and what each strand end at the node is spliced,
    connected or dropped to; express strands marked as passing through; the splitters and
    OLT ports at the node with their ports. 404 for no such node."""
    from netgis.maps.splices import splice_page

    states = services.strand_states
    base = states.base()
    plant = base.require_plant()
    if node_id not in plant.node_status:
        raise NotFoundError("nodes", node_id)
    nodes = base.dataset.nodes
    row = nodes[nodes["node_id"].astype(str) == node_id].iloc[0]
    info = {k: json_safe(row[k]) for k in ("kind", "status", "name") if k in row.index}
    version = base.version
    page = services.map_page(
        (version, "splices", node_id),
        lambda: MapPage.of(*splice_page(plant, node_id, node=info, base_url="/static")),
        shared=True)
    note_version(version)
    return HTMLResponse(page.body, headers={"Content-Security-Policy": page.policy,
                                            "ETag": page.etag, "Cache-Control": "no-cache",
                                            VERSION_HEADER: str(version)})
