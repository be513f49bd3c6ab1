"""Analysis endpoints: coverage KPIs, one premise, serviceability of any point, criticality
ranking and failure scenarios.

The per-item answers (coverage KPIs, one premise, serviceability) come from the
results stored in the database for the current data version when there are
(:mod:`netgis.storage.results`: indexed lookups, identical answers), so that
API workers need not each hold the analysis; otherwise, and for everything that
needs the whole analysis (criticality ranking, scenarios), from the
per-data-version cache of :class:`api.services.Services`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import geopandas as gpd
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from netgis.api.deps import MIN_VERSION, ServicesDep, SettingsDep, require_json_body
from netgis.api.errors import problem_responses
from netgis.api.geojson import (
    collection_model,
    feature_model,
    frame_to_features,
    properties_model,
    row_feature,
)
from netgis.api.params import DropParam, OpticsParam
from netgis.api.routers.common import (
    GeoJSONResponse,
    body_of,
    paging_links,
    request_body,
    timestamp,
)
from netgis.api.scenarios import ScenarioIn, ScenarioResult, run_scenario, scenario_area
from netgis.errors import NotFoundError
from netgis.jsonsafe import json_safe
from netgis.schema import LAYERS, RESULT_FIELDS

router = APIRouter(prefix="/analysis", tags=["Analysis"], dependencies=[MIN_VERSION])

_PY_TYPES: dict[str, Any] = {"text": str, "int": int, "float": float, "bool": bool}


def _result_types(layer: str) -> dict[str, Any]:
    """Python type of each analysis column of ``layer`` (netgis.schema.RESULT_FIELDS)."""
    return {f.name: _PY_TYPES[f.type] | None if f.nullable else _PY_TYPES[f.type]
            for f in RESULT_FIELDS[layer]}


#: Extra columns the analysis adds to each layer (see netgis.engine.analysis.Analysis).
PREMISE_RESULT = _result_types("premises")
SPAN_RESULT = _result_types("spans")
NODE_RESULT = _result_types("nodes")
#: How each layer is ranked by criticality (impact first, id as the tie breaker).
RANKING = {"spans": ("cut_units", "cut_premises"), "nodes": ("failure_units", "failure_premises")}

PremiseResult = feature_model(LAYERS["premises"], properties_model(
    LAYERS["premises"], {**PREMISE_RESULT, "loss": dict[str, Any] | None},
    "PremiseResultProperties"), "PremiseResult")
SpanImpact = feature_model(LAYERS["spans"], properties_model(
    LAYERS["spans"], SPAN_RESULT, "SpanImpactProperties"), "SpanImpact")
NodeImpact = feature_model(LAYERS["nodes"], properties_model(
    LAYERS["nodes"], NODE_RESULT, "NodeImpactProperties"), "NodeImpact")
Criticality = collection_model(SpanImpact | NodeImpact, "Criticality")  # type: ignore[arg-type]


class Coverage(BaseModel):
    """KPIs of the whole network and per area (docs/spec.md §2.9, KPIs)."""

    data_version: int
    drop_m: float
    network: dict[str, float | int | None]
    areas: list[dict[str, Any]]


class Serviceability(BaseModel):
    """Whether a location is passed, by which span, how far, and how well protected."""

    lon: float
    lat: float
    passed: bool
    distance_m: float | None = Field(description="Geodesic distance to the nearest lit span.")
    served_span_id: str | None
    nearest_span_id: str | None
    drop_m: float
    span_protected: bool
    node_protected: bool
    duct_protected: bool
    loss_db: float | None = Field(description="Optical loss from the core, dB (null when "
                                  "not passed).")
    margin_db: float | None = Field(description="budget_db - loss_db.")
    in_budget: bool
    budget_db: float
    loss: LossBreakdown | None = Field(description="Where the loss goes (null when not "
                                       "passed).")
    data_version: int
    warnings: list[PositionWarning] = Field(
        default_factory=list, description="About the position itself: far outside the plant "
        "(more than 10 km beyond the box of its nodes), and lon/lat that look swapped.")


class PositionWarning(BaseModel):
    """Something odd about the position asked about."""

    code: Literal["far_outside_plant", "swapped_coordinates"]
    message: str
    distance_m: float | None = Field(None, description="far_outside_plant: meters beyond "
                                     "the plant's extent.")
    lon: float | None = Field(None, description="swapped_coordinates: the suggested lon.")
    lat: float | None = Field(None, description="swapped_coordinates: the suggested lat.")


class SplitterLoss(BaseModel):
    """One splitter on the least-loss path."""

    node_id: str
    ratio: int
    loss_db: float


class LossBreakdown(BaseModel):
    """The parts of a location's optical loss; they add up to ``loss_db``."""

    fiber_km: float = Field(description="Fiber from the core, drop included.")
    fiber_db: float
    splices: int
    splice_db: float
    splitters: list[SplitterLoss]
    splitter_db: float
    fixed_db: float
    loss_db: float
    path: list[str] = Field(description="node_ids from the core's side to the served span.")


Serviceability.model_rebuild()


@router.get("/coverage", response_model=Coverage, summary="Coverage KPIs",
            responses=problem_responses(400))
def coverage(services: ServicesDep, optics: OpticsParam, drop_m: DropParam = None) -> Coverage:
    """Premises and units passed, take rate, protection, km and optical budget KPIs,
    network-wide and per area."""
    run = services.stored(drop_m, optics)
    if run is not None:
        return Coverage(data_version=run.data_version, drop_m=run.drop_m,
                        network=run.kpis["network"], areas=run.kpis["areas"])
    version, result = services.analysis(drop_m, optics)
    return Coverage.model_validate({"data_version": version, "drop_m": result.drop_m,
                                    **json_safe(result.kpis)})


def _premise_columns() -> list[str]:
    return [*LAYERS["premises"].field_names, *PREMISE_RESULT]


@router.get("/premises/{premise_id}", response_model=PremiseResult,
            response_class=GeoJSONResponse, responses=problem_responses(400, 404),
            summary="One premise's coverage")
async def premise(premise_id: str, services: ServicesDep, optics: OpticsParam,
                  drop_m: DropParam = None) -> Response:
    """Whether the premise is passed, by which span, how far, its protections, its optical
    loss and where that loss goes (``loss``)."""
    published = services.live_default(drop_m, optics)
    if published is not None:
        # the live analysis at the server's parameters: a row of memory, answered in the
        # event loop (a worker thread would be one more thread holding the live analysis's
        # interpreter back, docs/architecture.md)
        return _premise_of(published.analysis, premise_id)
    return await run_in_threadpool(_premise_read, premise_id, services, optics, drop_m)


def _premise_of(result: Any, premise_id: str) -> Response:
    """One premise's feature with its loss breakdown from the analysis ``result``."""
    from netgis.engine.analysis import premise_optics

    at = result.premise_position(premise_id)
    if at is None:
        raise NotFoundError("premises", premise_id)
    feature = row_feature(result.premises, at, LAYERS["premises"], _premise_columns())
    feature["properties"]["loss"] = json_safe(premise_optics(result, at)["loss"])
    return GeoJSONResponse(feature)


def _premise_read(premise_id: str, services: Any, optics: Any, drop_m: float | None
                  ) -> Response:
    """:func:`premise` from stored results or an analysis that may have to be made."""
    run = services.stored(drop_m, optics)
    stored = None if run is None else services.stored_premise(run, premise_id)
    if stored is not None:
        # the stored run of the current data: an indexed lookup, no analysis in memory
        frame, loss = stored
        if frame.empty:
            raise NotFoundError("premises", premise_id)
        feature = frame_to_features(frame, LAYERS["premises"], _premise_columns())[0]
        feature["properties"]["loss"] = json_safe(loss)
        return GeoJSONResponse(feature)
    _, result = services.analysis(drop_m, optics)
    return _premise_of(result, premise_id)


@router.get("/serviceability", response_model=Serviceability,
            responses=problem_responses(400), summary="Is this location served?")
def serviceability(
    services: ServicesDep,
    lon: Annotated[float, Query(ge=-180, le=180, description="WGS84 longitude.")],
    lat: Annotated[float, Query(ge=-90, le=90, description="WGS84 latitude.")],
    optics: OpticsParam,
    drop_m: DropParam = None,
) -> Serviceability:
    """The lookup a citizen portal or a sales planner calls for one address: passed,
    protected, and whether the light arrives within the optical budget."""
    from netgis.engine.analysis import serviceability as locate

    run = services.stored(drop_m, optics)
    answer = None if run is None else services.stored_serviceability(run, lon, lat)
    if run is not None and answer is not None:
        return Serviceability.model_validate({**json_safe(answer),
                                              "budget_db": run.budget.budget_db,
                                              "data_version": run.data_version})
    version, result = services.analysis(drop_m, optics)
    return Serviceability.model_validate({**json_safe(locate(result, lon, lat)),
                                          "budget_db": result.budget.budget_db,
                                          "data_version": version})


@router.get("/criticality", response_model=Criticality, response_class=GeoJSONResponse,
            responses=problem_responses(400), summary="Single points of failure, worst first")
def criticality(
    request: Request, services: ServicesDep, settings: SettingsDep,
    layer: Annotated[Literal["spans", "nodes"], Query(
        description="Rank spans by cut impact or nodes by failure impact.")] = "spans",
    limit: Annotated[int | None, Query(ge=1, description="Items per page (clamped).")] = None,
    offset: Annotated[int, Query(ge=0, le=2**53)] = 0,
    drop_m: DropParam = None,
) -> Response:
    """Spans (or nodes) whose failure disconnects passed premises, by units lost."""
    _, result = services.analysis(drop_m)
    frame: gpd.GeoDataFrame = result.spans if layer == "spans" else result.nodes
    units, premises = RANKING[layer]
    spof = frame[frame[premises] > 0]
    id_field = LAYERS[layer].id_field
    ranked = spof.sort_values([units, premises, id_field], ascending=[False, False, True],
                              kind="stable")
    size = min(limit or settings.default_limit, settings.max_limit)
    page = ranked.iloc[offset:offset + size].to_crs(4326)
    extra = SPAN_RESULT if layer == "spans" else NODE_RESULT
    features = frame_to_features(page, LAYERS[layer], [*LAYERS[layer].field_names, *extra])
    return GeoJSONResponse({
        "type": "FeatureCollection", "features": features,
        "numberMatched": len(ranked), "numberReturned": len(features),
        "timeStamp": timestamp(),
        "links": paging_links(request, offset, size, len(features), len(ranked)),
    })


@router.post(
    "/scenarios", response_model=ScenarioResult, summary="What if these fail?",
    dependencies=[Depends(require_json_body)],
    responses=problem_responses(400, 413, 415, 422),
    openapi_extra=request_body(["ScenarioIn"], ["application/json"]),
)
def scenarios(
    services: ServicesDep, settings: SettingsDep,
    body: Annotated[ScenarioIn, Depends(body_of(ScenarioIn))],
) -> ScenarioResult:
    """Fail spans, nodes (cores too), ducts and everything in an area at once; the premises
    that lose service, worst case."""
    area = scenario_area(body)
    version, result = services.analysis(body.drop_m)
    # a what-if is computed for each request, never kept: new work, charged as such
    services.admit()
    return run_scenario(result, version, body, area, page_limit=settings.max_limit)


