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
import shapely
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from netgis.api.deps import MIN_VERSION, ServicesDep, SettingsDep, require_json_body
from netgis.api.errors import ProblemItem, problem_responses
from netgis.api.geojson import (
    Geometry,
    collection_model,
    feature_model,
    frame_to_features,
    properties_model,
)
from netgis.api.params import DropParam, OpticsParam
from netgis.api.routers.common import (
    GeoJSONResponse,
    body_of,
    paging_links,
    request_body,
    timestamp,
)
from netgis.errors import NotFoundError, Problem, ValidationError
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


class OpticsWhatIf(BaseModel):
    """Other optical parameters, or split ratios at some nodes, without editing data."""

    model_config = ConfigDict(extra="forbid")

    pon_class: Literal["gpon-b+", "gpon-c+", "xgs-pon-n1", "xgs-pon-n2"] | None = None
    budget_db: float | None = Field(None, ge=0, le=100)
    atten_db_per_km: float | None = Field(None, ge=0, le=10)
    splice_db: float | None = Field(None, ge=0, le=10)
    fixed_db: float | None = Field(None, ge=0, le=50)
    split_ratios: dict[str, int] = Field(
        default_factory=dict, description="node_id -> N: the splitter becomes a 1:N one (a "
                                          "node that is not a splitter is a 422).")


class ScenarioIn(BaseModel):
    """Everything that fails at once: spans, nodes, ducts and an area (WGS84 polygon);
    and what-ifs on the optical parameters."""

    model_config = ConfigDict(extra="forbid")  # {"span": [...]} is a 422, not "no impact"

    spans: list[str] = Field(default_factory=list)
    nodes: list[str] = Field(default_factory=list)
    ducts: list[str] = Field(default_factory=list)
    area: Geometry | None = Field(None, description="A Polygon or MultiPolygon (WGS84).")
    drop_m: float | None = Field(None, gt=0, le=100_000)
    optics: OpticsWhatIf | None = Field(
        None, description="Premises that enter or leave the budget under these parameters.")


class BudgetChange(BaseModel):
    """Premises that enter or leave the optical budget under a what-if."""

    budget_db: float
    split_ratios: dict[str, int]
    units_in_budget_before: int
    units_in_budget_after: int
    units_entering: int
    units_leaving: int
    entering: list[str]
    leaving: list[str]
    warnings: list[ProblemItem] = Field(
        default_factory=list, description="Named splitters that serve no passed premise: "
                                          "their split ratio changes nothing.")


class ScenarioResult(BaseModel):
    """The premises passed before the scenario that lose every path to a working core."""

    data_version: int
    drop_m: float
    impacted_premises: int
    impacted_units: int
    failed_spans: list[str]
    failed_nodes: list[str]
    premises: Any = Field(description="The impacted premises as a GeoJSON FeatureCollection "
                          "(at most the server's page limit; numberMatched tells all).")
    optics: BudgetChange | None = None


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
def premise(premise_id: str, services: ServicesDep, optics: OpticsParam,
            drop_m: DropParam = None) -> Response:
    """Whether the premise is passed, by which span, how far, its protections, its optical
    loss and where that loss goes (``loss``)."""
    from netgis.engine.analysis import premise_optics

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
    at = result.premise_position(premise_id)
    if at is None:
        raise NotFoundError("premises", premise_id)
    rows = result.premises.iloc[[at]]
    feature = frame_to_features(rows.to_crs(4326), LAYERS["premises"], _premise_columns())[0]
    feature["properties"]["loss"] = json_safe(premise_optics(result, at)["loss"])
    return GeoJSONResponse(feature)


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
    from netgis.engine.analysis import budget_scenario, scenario
    from netgis.engine.optics import LossBudget

    area = None
    if body.area is not None:
        if body.area.type not in ("Polygon", "MultiPolygon"):
            raise ValidationError([Problem("scenario", None, "area",
                                           "must be a Polygon or MultiPolygon")])
        try:
            area = shapely.from_geojson(body.area.model_dump_json(exclude_none=True))
        except shapely.errors.GEOSException as exc:
            raise ValidationError([Problem("scenario", None, "area",
                                           f"not a valid GeoJSON geometry ({exc})")]) from None
        if area.is_empty or not area.is_valid:
            raise ValidationError([Problem("scenario", None, "area",
                                           "the polygon is empty or not valid")])
    version, result = services.analysis(body.drop_m)
    # a what-if is computed for each request, never kept: new work, charged as such
    services.admit()
    out = scenario(result, spans=body.spans, nodes=body.nodes, ducts=body.ducts, area=area,
                   area_crs=4326)
    change = None
    if body.optics is not None:
        what_if = body.optics
        base = LossBudget.preset(what_if.pon_class) if what_if.pon_class else result.budget
        budget = base.with_(budget_db=what_if.budget_db, atten_db_per_km=what_if.atten_db_per_km,
                            splice_db=what_if.splice_db, fixed_db=what_if.fixed_db)
        what = budget_scenario(result, budget=budget, split_ratios=what_if.split_ratios)
        change = BudgetChange(**what.summary(),
                              warnings=[ProblemItem(**w.as_dict()) for w in what.warnings])
    lost = result.premises[out.lost]
    shown = lost.sort_values("premise_id").iloc[:settings.max_limit].to_crs(4326)
    features = frame_to_features(shown, LAYERS["premises"], _premise_columns())
    return ScenarioResult(
        data_version=version, drop_m=result.drop_m,
        impacted_premises=out.premises, impacted_units=out.units,
        failed_spans=out.failed_spans, failed_nodes=out.failed_nodes,
        premises={"type": "FeatureCollection", "features": features,
                  "numberMatched": len(lost), "numberReturned": len(features),
                  "timeStamp": timestamp(), "links": []},
        optics=change,
    )


