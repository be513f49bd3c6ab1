"""Design plans over HTTP (docs/plans.md): create, list, show, discard; edit a plan's
features with OGC API - Features items under ``/plans/{name}/collections``; add gap builds;
read its KPIs and its comparison with main; merge it into main or rebase it."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import geopandas as gpd
import shapely
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from netgis.api.bead_pages import UPLOAD_BODY, BeadResult, ReachParam, bead_answer
from netgis.api.deps import (
    JSON_MEDIA_TYPES,
    AuditAccess,
    BasemapPageDep,
    JsonWrite,
    SettingsDep,
    WriteAccess,
    WriterDep,
    check_upload_length,
    require_json_body,
)
from netgis.api.errors import problem_responses
from netgis.api.geojson import FeatureIn, FeaturePatch, features_to_frame, frame_to_features
from netgis.api.live import note_version
from netgis.api.params import DropParam, OpticsParam
from netgis.api.plan_states import PlanStates
from netgis.api.routers.common import (
    GEOJSON,
    GeoJSONResponse,
    body_of,
    feature_or_collection,
    request_body,
    url_for,
)
from netgis.api.scenarios import ScenarioIn, ScenarioResult, run_scenario, scenario_area
from netgis.api.services import MapPage
from netgis.errors import NotFoundError, ParameterError, Problem, ValidationError
from netgis.jsonsafe import json_safe
from netgis.schema import (
    DEFAULT_H3_RES,
    DEFAULT_LINK_M,
    DEFAULT_PLACEMENT,
    DEFAULT_REACH_M,
    LAYERS,
    RESULT_FIELDS,
    STRAND_LAYERS,
    Placement,
)
from netgis.storage.plans import PLAN_NAME, PlanInfo, check_plan_name

router = APIRouter(tags=["Plans"])


def _not_strands(value: Any) -> Any:
    """Refuse a strand layer by name: plans edit the route layers only
    (docs/access-and-audit.md, "The strand layers")."""
    if value in STRAND_LAYERS:
        raise ValueError(f"strand layers are not part of design plans: edit {value} on main "
                         f"(/collections/{value}); a plan's merge keeps main's strand plant "
                         "valid")
    return value


LayerPath = Annotated[Literal["nodes", "spans", "premises", "areas"],
                      BeforeValidator(_not_strands)]
_ETAG = re.compile(r'\s*(W/)?"([^"]*)"\s*(?:,|$)')


class PlanCreate(BaseModel):
    """A new plan."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="1 to 64 letters, digits, '_', '.' or '-'.")
    description: str | None = Field(default=None, description="What the plan is for.")


class SwitchOnIn(BaseModel):
    """Spans and nodes to put in service in a plan."""

    model_config = ConfigDict(extra="forbid")

    span_ids: list[str] = Field(default_factory=list)
    node_ids: list[str] = Field(default_factory=list)
    all_planned: bool = Field(default=False, description=(
        "Every span and node of the plan's data whose status is planned."))


class BuildsIn(BaseModel):
    """Gap clusters to build in a plan."""

    model_config = ConfigDict(extra="forbid")

    cluster_ids: list[str] = Field(default_factory=list, description=(
        "Gap clusters of the plan's data (ids as /gaps names them)."))
    top: int | None = Field(default=None, ge=1, le=10_000, description=(
        "Also build the N best-ranked clusters (lowest cost per unit)."))


def _states(request: Request) -> PlanStates:
    states: PlanStates = request.app.state.plan_states
    return states


StatesDep = Annotated[PlanStates, Depends(_states)]
NamePath = Annotated[str, Path(pattern=f"^{PLAN_NAME.pattern}$", description=(
    "The plan's name."))]


def _info(request: Request, info: PlanInfo) -> dict[str, Any]:
    base = url_for(request, f"/plans/{info.name}")
    return {**info.as_dict(), "links": [
        {"href": base, "rel": "self", "type": "application/json"},
        {"href": f"{base}/kpis", "rel": "kpis", "type": "application/json"},
        {"href": f"{base}/compare", "rel": "compare", "type": "application/json"},
        *({"href": f"{base}/collections/{layer}/items", "rel": "items", "type": GEOJSON,
           "title": layer} for layer in LAYERS)]}


@router.get("/plans", summary="Every design plan", responses=problem_responses(400))
def list_plans(request: Request, states: StatesDep) -> dict[str, Any]:
    """Every plan, with what it edits per layer."""
    return {"plans": [_info(request, p) for p in states.plans().all()]}


_JSON = list(JSON_MEDIA_TYPES[:2])
_WRITES = problem_responses(400, 401, 403, 404, 409, 413, 415, 422)


@router.post("/plans", status_code=201, dependencies=JsonWrite, summary="Start a plan",
             responses=problem_responses(400, 401, 403, 409, 413, 415, 422),
             openapi_extra=request_body(["PlanCreate"], _JSON))
def create_plan(request: Request, response: Response, states: StatesDep, writer: WriterDep,
                body: Annotated[PlanCreate, Depends(body_of(PlanCreate))]) -> dict[str, Any]:
    """Start a plan at the data as it is now (its edits go under /plans/{name}/collections)."""
    info = states.plans().create(check_plan_name(body.name), actor=writer.name,
                                 description=body.description)
    response.headers["Location"] = url_for(request, f"/plans/{info.name}")
    return _info(request, info)


@router.get("/plans/{name}", summary="One plan", responses=problem_responses(400, 404))
def show_plan(request: Request, name: NamePath, states: StatesDep) -> dict[str, Any]:
    """The plan, what it edits, and the features main changed since it touched them."""
    plans = states.plans()
    out = _info(request, plans.get(name))
    out["conflicts"] = [c.__dict__ for c in plans.conflicts(name)]
    return out


@router.delete("/plans/{name}", status_code=204, dependencies=WriteAccess,
               summary="Discard a plan", response_class=Response,
               responses=problem_responses(400, 401, 403, 404))
def discard_plan(name: NamePath, states: StatesDep) -> Response:
    """Delete the plan and its edits; main is not touched."""
    states.plans().discard(name)
    states.forget(name)
    return Response(status_code=204)


# ------------------------------------------------------------------ features


def _etags(header: str | None) -> frozenset[str] | None:
    """The ETags an If-Match header accepts (``p<n>``, ``m<n>``); None: no condition.

    Read as main's items read it (:func:`netgis.api.routers.collections.if_match_versions`):
    ``*`` is no condition, weak tags never match (If-Match compares strongly), and a rest
    that is not a list of entity tags matches nothing: 412, not 400.
    """
    if header is None or header.strip() == "*":
        return None
    tags: set[str] = set()
    pos = 0
    while pos < len(header):
        m = _ETAG.match(header, pos)
        if m is None or m.end() == pos:
            break
        if not m.group(1):
            tags.add(m.group(2))
        pos = m.end()
    return frozenset(tags)


IfMatch = Annotated[str | None, Header(alias="If-Match", description=(
    "Write only if the feature still has this ETag (p<n>: the plan's version of it; m<n>: "
    "main's, untouched by the plan); 412 if not."))]


def _feature(request: Request, name: str, layer: str, frame: gpd.GeoDataFrame,
             etag: str, status_code: int = 200) -> GeoJSONResponse:
    spec = LAYERS[layer]
    feature = frame_to_features(frame, spec, [*spec.field_names])[0]
    base = url_for(request, f"/plans/{name}/collections/{layer}")
    feature["links"] = [{"href": f"{base}/items/{feature['id']}", "rel": "self",
                         "type": GEOJSON}]
    return GeoJSONResponse(feature, status_code=status_code, headers={"ETag": f'"{etag}"'})


@router.get("/plans/{name}/collections/{layer}/items", response_class=GeoJSONResponse,
            summary="A page of a plan's features", responses=problem_responses(400, 404))
def plan_items(
    request: Request, name: NamePath, layer: LayerPath, states: StatesDep,
    settings: SettingsDep,
    limit: Annotated[int | None, Query(ge=1, description=(
        "Items per page (the document gives the default and the maximum; a larger value is "
        "a 400)."))] = None,
    offset: Annotated[int, Query(ge=0, le=2**53)] = 0,
    edited: Annotated[bool, Query(description=(
        "Only the features the plan writes (not main's untouched ones)."))] = False,
) -> GeoJSONResponse:
    """The plan's features of a layer (main's with the plan's edits), by id, a page at a time."""
    if limit is not None and limit > settings.max_limit:
        raise ParameterError(
            [Problem("query", None, "limit", f"at most {settings.max_limit}")],
            f"limit {limit} is above this server's maximum of {settings.max_limit}")
    limit = limit or settings.default_limit
    spec = LAYERS[layer]
    if edited:
        frame = states.plans().edits(name).rows[layer]
    else:
        frame = states.state(name).analysis.dataset.layers()[layer].to_crs(4326)
    frame = frame.sort_values(spec.id_field, kind="stable")[[*spec.field_names, "geometry"]]
    page = frame.iloc[offset:offset + limit]
    base = url_for(request, f"/plans/{name}/collections/{layer}/items")
    features = frame_to_features(page, spec, [*spec.field_names], item_href=base)
    links = [{"href": str(request.url), "rel": "self", "type": GEOJSON}]
    if offset + limit < len(frame):
        links.append({"href": f"{base}?limit={limit}&offset={offset + limit}"
                      + ("&edited=true" if edited else ""), "rel": "next", "type": GEOJSON})
    return GeoJSONResponse({"type": "FeatureCollection", "features": features,
                            "numberMatched": len(frame), "numberReturned": len(features),
                            "links": links})


@router.get("/plans/{name}/collections/{layer}/items/{featureId}",
            response_class=GeoJSONResponse, summary="One of a plan's features",
            responses=problem_responses(404))
def plan_item(request: Request, name: NamePath, layer: LayerPath, featureId: str,
              states: StatesDep) -> GeoJSONResponse:
    """The feature as the plan has it, with its ETag (``p<n>`` or ``m<n>``)."""
    frame, etag = states.plans().item(name, layer, featureId)
    return _feature(request, name, layer, frame, etag)


@router.post("/plans/{name}/collections/{layer}/items", status_code=201,
             dependencies=JsonWrite, summary="Add features to a plan", responses=_WRITES,
             openapi_extra=request_body(["FeatureIn", "FeatureCollectionIn"], _JSON))
def plan_create_items(request: Request, response: Response, name: NamePath, layer: LayerPath,
                      states: StatesDep, writer: WriterDep,
                      features: Annotated[list[FeatureIn], Depends(feature_or_collection)]
                      ) -> dict[str, Any]:
    """Insert one Feature or a FeatureCollection (WGS84) into the plan; ids must be new in
    the plan's data."""
    frame = features_to_frame(LAYERS[layer], features)
    version = states.plans().write(name, layer, frame, mode="insert", actor=writer.name)
    ids = [str(v) for v in frame[LAYERS[layer].id_field].tolist()]
    if len(ids) == 1:
        response.headers["Location"] = url_for(
            request, f"/plans/{name}/collections/{layer}/items/{ids[0]}")
    return {"layer": layer, "ids": ids, "count": len(ids), "plan_version": version}


@router.put("/plans/{name}/collections/{layer}/items/{featureId}",
            response_class=GeoJSONResponse, dependencies=JsonWrite,
            summary="Replace one of a plan's features",
            responses={**_WRITES, **problem_responses(412)},
            openapi_extra=request_body(["FeatureIn"], _JSON))
def plan_replace_item(request: Request, name: NamePath, layer: LayerPath, featureId: str,
                      states: StatesDep, writer: WriterDep,
                      body: Annotated[FeatureIn, Depends(body_of(FeatureIn))],
                      if_match: IfMatch = None) -> GeoJSONResponse:
    """Replace every field and the geometry of one feature in the plan (main untouched)."""
    frame = features_to_frame(LAYERS[layer], [body], path_id=featureId)
    plans = states.plans()
    plans.write_item(name, layer, featureId, frame, if_match=_etags(if_match),
                     actor=writer.name)
    stored, etag = plans.item(name, layer, featureId)
    return _feature(request, name, layer, stored, etag)


@router.patch("/plans/{name}/collections/{layer}/items/{featureId}",
              response_class=GeoJSONResponse, dependencies=JsonWrite,
              summary="Change one of a plan's features",
              responses={**_WRITES, **problem_responses(412)},
              openapi_extra=request_body(["FeaturePatch"], list(JSON_MEDIA_TYPES)))
def plan_patch_item(request: Request, name: NamePath, layer: LayerPath, featureId: str,
                    states: StatesDep, writer: WriterDep,
                    body: Annotated[FeaturePatch, Depends(body_of(FeaturePatch))],
                    if_match: IfMatch = None) -> GeoJSONResponse:
    """Change the given properties (and the geometry, if sent) of one feature in the plan."""
    spec = LAYERS[layer]
    plans = states.plans()
    current, etag = plans.item(name, layer, featureId)
    unknown = [k for k in body.properties if k not in spec.field_names]
    if unknown:
        raise ValidationError([Problem(layer, featureId, k, "not a field of this layer")
                               for k in unknown])
    if spec.id_field in body.properties and str(body.properties[spec.id_field]) != featureId:
        raise ValidationError([Problem(layer, featureId, spec.id_field,
                                       "an id cannot be changed; delete and insert instead")])
    row = current.copy()
    for key, value in body.properties.items():
        row[key] = [value]
    if body.geometry is not None:
        geom = shapely.from_geojson(body.geometry.model_dump_json(exclude_none=True))
        row = row.set_geometry(gpd.GeoSeries([geom], index=row.index, crs=4326))
    wanted = _etags(if_match)
    # the feature read above is what the patch applies to: it must still be the one written
    plans.write_item(name, layer, featureId, row,
                     if_match=frozenset({etag}) if wanted is None else wanted & {etag},
                     actor=writer.name)
    stored, new = plans.item(name, layer, featureId)
    return _feature(request, name, layer, stored, new)


@router.delete("/plans/{name}/collections/{layer}/items/{featureId}", status_code=204,
               dependencies=WriteAccess, summary="Delete one of a plan's features",
               response_class=Response, responses=problem_responses(400, 401, 403, 404, 409))
def plan_delete_item(name: NamePath, layer: LayerPath, featureId: str, states: StatesDep,
                     writer: WriterDep) -> Response:
    """Delete a feature from the plan's data (main keeps it until the plan is merged)."""
    states.plans().delete(name, layer, [featureId], actor=writer.name)
    return Response(status_code=204)


# ------------------------------------------------------------------ builds, reads


@router.post("/plans/{name}/builds", dependencies=JsonWrite, summary="Add gap builds",
             responses=_WRITES, openapi_extra=request_body(["BuildsIn"], _JSON))
def plan_builds(name: NamePath, states: StatesDep, writer: WriterDep,
                body: Annotated[BuildsIn, Depends(body_of(BuildsIn))]) -> dict[str, Any]:
    """Add the sketched routes of gap clusters of the plan's data, in service."""
    from netgis.products.gaps.plan import chosen_clusters, cluster_builds
    from netgis.products.gaps.result import gap_analysis

    if not body.cluster_ids and body.top is None:
        raise ValidationError([Problem("body", None, "cluster_ids",
                                       "name clusters or give top")])
    gaps = gap_analysis(states.state(name).analysis)
    ids = chosen_clusters(gaps.plan, body.cluster_ids, body.top)
    nodes, spans = cluster_builds(gaps.plan, ids)
    version = states.plans().write_layers(name, {"nodes": nodes, "spans": spans},
                                          mode="insert", actor=writer.name, action="build")
    return {"plan": name, "plan_version": version, "clusters": ids,
            "nodes": len(nodes), "spans": len(spans)}


@router.post("/plans/{name}/switch-on", dependencies=JsonWrite,
             summary="Put planned spans and nodes in service",
             responses=_WRITES, openapi_extra=request_body(["SwitchOnIn"], _JSON))
def plan_switch_on(name: NamePath, states: StatesDep, writer: WriterDep,
                   body: Annotated[SwitchOnIn, Depends(body_of(SwitchOnIn))]
                   ) -> dict[str, Any]:
    """Set the status of the named spans and nodes (or of every planned one) to in_service
    in the plan, in one write."""
    if not body.span_ids and not body.node_ids and not body.all_planned:
        raise ValidationError([Problem("body", None, "span_ids",
                                       "name spans or nodes, or set all_planned")])
    version, switched = states.plans().switch_on(
        name, spans=body.span_ids, nodes=body.node_ids, all_planned=body.all_planned,
        actor=writer.name)
    return {"plan": name, "plan_version": version, "switched": switched}


@router.get("/plans/{name}/kpis", summary="A plan's KPIs",
            responses=problem_responses(400, 404))
def plan_kpis(name: NamePath, states: StatesDep) -> dict[str, Any]:
    """The KPIs (kpis.json's shape) of main with the plan's edits, with the plan's version
    and main's data version they reflect."""
    state = states.state(name)
    note_version(state.main_version)
    return {"plan": name, "plan_version": state.plan_version,
            "data_version": state.main_version, **state.analysis.kpis}


@router.get("/plans/{name}/compare", summary="What a plan changes",
            responses={**problem_responses(400, 404),
                       200: {"content": {"application/json": {}, "text/csv": {}}}})
def plan_compare(name: NamePath, states: StatesDep,
                 f: Annotated[Literal["json", "csv"], Query(
                     description="json (default) or csv.")] = "json") -> Any:
    """Against main: KPIs, premises newly passed and in budget, single points of failure
    gained and lost, cost by placement and a bill of materials."""
    from netgis.products.plan_compare import compare_analyses, compare_csv

    state = states.state(name)
    note_version(state.main_version)
    result = compare_analyses(state.main, state.analysis)
    if f == "csv":
        return Response(compare_csv(result), media_type="text/csv; charset=utf-8")
    return {"plan": name, "plan_version": state.plan_version,
            "data_version": state.main_version, **result}


# ------------------------------------------------------------------ merge, rebase


@router.post("/plans/{name}/merge", dependencies=WriteAccess, summary="Merge a plan",
             responses=problem_responses(400, 401, 403, 404, 409))
def merge_plan(name: NamePath, states: StatesDep, writer: WriterDep) -> dict[str, Any]:
    """Apply the plan's edits to main in one transaction and one audit entry; 409 naming
    every feature main changed since the plan touched it (nothing merged)."""
    counts = states.plans().merge(name, actor=writer.name)
    states.forget(name)
    return {"merged": name, "data_version": counts.data_version, "written": dict(counts)}


@router.post("/plans/{name}/rebase", dependencies=WriteAccess, summary="Rebase a plan",
             responses=problem_responses(400, 401, 403, 404))
def rebase_plan(request: Request, name: NamePath, states: StatesDep,
                writer: WriterDep) -> dict[str, Any]:
    """Take main as it is now as the plan's starting point (after settling conflicts)."""
    return _info(request, states.plans().rebase(name, actor=writer.name))


@router.get("/plans/{name}/audit", dependencies=AuditAccess, summary="A plan's log",
            responses=problem_responses(400, 401, 403, 404))
def plan_audit(name: NamePath, states: StatesDep,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100,
               offset: Annotated[int, Query(ge=0, le=2**53)] = 0) -> dict[str, Any]:
    """Who wrote what in the plan, newest first: each write with its action (create, write,
    replace, delete, build, switch_on, rebase), layer, ids and the plan's version after it.
    Main's /audit never shows a plan's writes (only the ``merge`` of a plan)."""
    entries, total = states.plans().audit(name, limit=limit, offset=offset)
    return {"plan": name, "entries": entries, "numberMatched": total,
            "numberReturned": len(entries)}



# ------------------------------------------------------------------ programme


@router.get("/program", summary="A build programme to the coverage goal",
            responses=problem_responses(400, 422))
def build_program(
    states: StatesDep,
    budget_per_year: Annotated[float | None, Query(ge=0, description=(
        "Money per year for gap builds (the gap planner's cost units). Without it, "
        "goal_year asks for the least budget per year that reaches the goal."))] = None,
    goal_year: Annotated[int | None, Query(ge=1900, le=2200, description=(
        "Reach the goal by the end of this year."))] = None,
    start_year: Annotated[int | None, Query(ge=1900, le=2200, description=(
        "First year of building (default: next year)."))] = None,
    goal_pct: Annotated[float, Query(gt=0, le=100, description=(
        "The goal: coverage (units) in percent."))] = 100.0,
) -> dict[str, Any]:
    """Gap builds chosen year by year (greedy by cost per unit within each year's budget) on
    the current data: each year's clusters, cost, units passed and coverage, and the year
    the goal is reached, or the budget per year that reaches it by ``goal_year``."""
    import datetime

    from netgis.products.program import program_to_goal

    if budget_per_year is None and goal_year is None:
        raise ParameterError([Problem("query", None, "budget_per_year",
                                      "give budget_per_year, goal_year or both")],
                             "give budget_per_year, goal_year or both")
    first = start_year if start_year is not None else datetime.date.today().year + 1
    published = states.services.live.current()
    note_version(published.version)
    data = published.analysis.dataset
    drop = states.services.live.drop_m
    optics = states.services.live.budget
    prog, needed = program_to_goal(data, start_year=first, budget_per_year=budget_per_year,
                                   goal_year=goal_year, goal_pct=goal_pct, drop_m=drop,
                                   budget=optics)
    out = {"data_version": published.version, **prog.as_dict()}
    if goal_year is not None:
        out["goal_met_by_date"] = prog.goal_year is not None and prog.goal_year <= goal_year
    if budget_per_year is None:
        out["budget_per_year_needed"] = needed
    return out


# ------------------------------------------------------------------ maps

_MAP_PAGE: dict[int | str, dict[str, Any]] = {
    200: {"description": "An interactive map (HTML page, Leaflet served from /static).",
          "content": {"text/html": {}}},
    **problem_responses(400, 404)}


@router.get("/plans/{name}/gaps", response_class=GeoJSONResponse,
            responses=problem_responses(400, 404), summary="Where premises are not passed, "
            "in a plan")
def plan_gaps(
    request: Request, name: NamePath, states: StatesDep, settings: SettingsDep,
    view: Annotated[Literal["hexagons", "clusters"], Query(
        description="hexagons: unpassed premises/units per H3 cell; clusters: ranked build "
                    "list (cost per unit, lowest first).")] = "hexagons",
    h3_res: Annotated[int, Query(ge=0, le=15, description="H3 resolution of the hexagons.")] = \
        DEFAULT_H3_RES,
    area_id: Annotated[str | None, Query(description="Only premises this area covers.")] = None,
    h3_cell: Annotated[str | None, Query(description="Only premises in this H3 cell (any "
                                         "resolution).")] = None,
    link_m: Annotated[float, Query(gt=0, le=10_000, description="Cluster linkage (m).")] = \
        DEFAULT_LINK_M,
    max_units: Annotated[float | None, Query(
        gt=0, le=1e9, description="Largest cluster in units (default: the server's).")] = None,
    max_extent_m: Annotated[float | None, Query(
        gt=0, le=1e7, description="Widest cluster, meters (default: the server's).")] = None,
    placement: Annotated[Placement, Query(
        description="Placement that prices new route.")] = DEFAULT_PLACEMENT,
    limit: Annotated[int | None, Query(ge=1, description="Items per page (clamped).")] = None,
    offset: Annotated[int, Query(ge=0, le=2**53)] = 0,
    drop_m: DropParam = None,
) -> GeoJSONResponse:
    """As ``/analysis/gaps``, for main with the plan's edits: what is still not passed once
    the plan is built, and the ranked builds that would pass it."""
    from netgis.api.gap_pages import gap_page

    state, result = states.analysis(name, drop_m, None)
    note_version(state.main_version)
    params = states.services.gap_params(link_m=link_m, placement=placement,
                                        max_units=max_units, max_extent_m=max_extent_m)
    size = min(limit or settings.default_limit, settings.max_limit)
    page = gap_page(request, result, state.main_version,
                    lambda: states.build_plan(state, result, params), view=view,
                    h3_res=h3_res, area_id=area_id, h3_cell=h3_cell, limit=size, offset=offset)
    return GeoJSONResponse({**page, "plan": name, "plan_version": state.plan_version})


@router.post("/plans/{name}/scenarios", response_model=ScenarioResult,
             summary="What if these fail, in a plan?",
             dependencies=[Depends(require_json_body)],
             responses=problem_responses(400, 404, 413, 415, 422),
             openapi_extra=request_body(["ScenarioIn"], _JSON))
def plan_scenarios(name: NamePath, states: StatesDep, settings: SettingsDep,
                   body: Annotated[ScenarioIn, Depends(body_of(ScenarioIn))]) -> ScenarioResult:
    """As ``/analysis/scenarios``, for main with the plan's edits: does the plan's new
    route survive these failures?"""
    area = scenario_area(body)
    state, result = states.analysis(name, body.drop_m, None)
    note_version(state.main_version)
    # a what-if is computed for each request, never kept: new work, charged as such
    states.services.admit()
    return run_scenario(result, state.main_version, body, area, page_limit=settings.max_limit)


@router.post("/plans/{name}/analysis/bead", response_model=BeadResult,
             summary="BEAD classes of FCC locations, in a plan",
             dependencies=[Depends(check_upload_length)],
             responses=problem_responses(400, 404, 413, 415, 422), openapi_extra=UPLOAD_BODY)
async def plan_bead(request: Request, name: NamePath, states: StatesDep, settings: SettingsDep,
                    drop_m: DropParam = None, reach_m: ReachParam = DEFAULT_REACH_M
                    ) -> BeadResult:
    """As ``/analysis/bead``, joined with the plan's plant: which locations the plan passes
    or brings within reach."""
    from starlette.concurrency import run_in_threadpool

    await run_in_threadpool(states.plans().version, name)  # 404 before reading any upload

    def analysis_of(drop: float) -> tuple[int, Any]:
        state, result = states.analysis(name, drop, None)
        note_version(state.main_version)
        return state.main_version, result

    return await bead_answer(request, settings, states.services.drop_m(drop_m), reach_m,
                             analysis_of, states.services.admit)


# ------------------------------------------------------------------ vector tiles

#: Media type of a Mapbox Vector Tile.
_MVT = "application/vnd.mapbox-vector-tile"
_PLAN_TILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "A Mapbox Vector Tile of the plan's layer (as main's tiles).",
          "content": {_MVT: {}}},
    204: {"description": "No feature of the plan's layer in this tile."},
    304: {"description": "Not modified: the tile named by If-None-Match is current."},
}


@router.get("/plans/{name}/tiles/{layer}.json", summary="TileJSON of a plan's vector tiles",
            responses={200: {"description": "A TileJSON 3.0 document.",
                             "content": {"application/json": {}}},
                       **problem_responses(400, 404)})
def plan_tilejson(request: Request, name: NamePath, layer: str,
                  states: StatesDep) -> Response:
    """TileJSON 3.0 of the plan's ``layer``: its tile URL template, bounds and fields."""
    from fastapi.responses import JSONResponse

    from netgis.products.tiles import check_layer, tilejson

    check_layer(layer)  # 404 for another layer, as main's tiles
    state = states.state(name)
    note_version(state.main_version)
    url = url_for(request, f"/plans/{name}/tiles/{layer}") + "/{z}/{x}/{y}.mvt"
    doc = tilejson(layer, state.analysis.dataset.layers()[layer], url)
    return JSONResponse(doc, headers={"Cache-Control": "no-cache"})


@router.get("/plans/{name}/tiles/{layer}/{z}/{x}/{y}.mvt", summary="A vector tile of a plan",
            response_class=Response,
            responses={**_PLAN_TILE_RESPONSES, **problem_responses(400, 404)})
def plan_tile(request: Request, name: NamePath, layer: str, z: int, x: int, y: int,
              states: StatesDep) -> Response:
    """Every feature of the plan's ``layer`` (main's with the plan's edits) in tile
    ``z/x/y``, with the plan's analysis columns, thinned below z14 as main's tiles are.
    The ETag is the tile's content hash."""
    import hashlib

    from netgis.api.services import etag_matches
    from netgis.products.tiles import TileAddress

    address = TileAddress.of(layer, z, x, y)
    state, tiles = states.tiles(name, layer)
    note_version(state.main_version)
    body = tiles.tile(address)
    tag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": tag, "Cache-Control": "no-cache"}
    if etag_matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=headers)
    if not body:
        return Response(status_code=204, headers=headers)
    return Response(body, media_type=_MVT, headers=headers)


@router.get("/plans/{name}/maps/{kind}", response_class=HTMLResponse, responses=_MAP_PAGE,
            summary="A map of a plan")
def plan_map(name: NamePath, kind: Literal["coverage", "criticality", "areas", "gaps",
                                           "compare"],
             states: StatesDep, settings: SettingsDep,
             basemap: BasemapPageDep) -> HTMLResponse:
    """The coverage, criticality, areas or gaps map of main with the plan's edits, or the
    compare map: spans the plan adds, removes and changes, premises it newly passes (or no
    longer passes), nodes it adds."""
    from netgis.maps.csp import secure_html
    from netgis.maps.kinds import build_map
    from netgis.maps.plan import compare_map
    from netgis.products.plan_compare import compare_analyses

    state = states.state(name)
    note_version(state.main_version)
    options: dict[str, Any] = {"tiles_url": settings.tiles_url or None, "base_url": "/static",
                               "basemap": basemap}
    if kind == "compare":
        m = compare_map(state.main, state.analysis,
                        compare_analyses(state.main, state.analysis), **options)
    else:
        extra: dict[str, Any] = {}
        if kind == "gaps":
            from netgis.products.gaps.result import gap_analysis

            extra["ranking"] = gap_analysis(state.analysis).plan.clusters
        m = build_map(kind, state.analysis, **options, **extra)
    page = MapPage.of(*secure_html(m))
    return HTMLResponse(page.body, headers={"ETag": page.etag, "Cache-Control": "no-cache",
                                            "Content-Security-Policy": page.policy})


# ------------------------------------------------------------------ analysis twins


def _result_names(layer: str) -> list[str]:
    return [*LAYERS[layer].field_names, *(f.name for f in RESULT_FIELDS[layer])]


@router.get("/plans/{name}/analysis/coverage", summary="A plan's coverage KPIs",
            responses=problem_responses(400, 404))
def plan_coverage(name: NamePath, states: StatesDep, optics: OpticsParam,
                  drop_m: DropParam = None) -> dict[str, Any]:
    """As ``/analysis/coverage``, for main with the plan's edits (the server's parameters
    unless ``drop_m`` or optics are given)."""
    state, result = states.analysis(name, drop_m, optics)
    note_version(state.main_version)
    return {"plan": name, "plan_version": state.plan_version,
            "data_version": state.main_version, "drop_m": result.drop_m,
            **json_safe(result.kpis)}


@router.get("/plans/{name}/analysis/premises/{premise_id}", response_class=GeoJSONResponse,
            summary="One premise in a plan", responses=problem_responses(400, 404))
def plan_premise(name: NamePath, premise_id: str, states: StatesDep, optics: OpticsParam,
                 drop_m: DropParam = None) -> GeoJSONResponse:
    """As ``/analysis/premises/{id}``: passed, by which span, protections, optical loss."""
    from netgis.engine.analysis import premise_optics

    state, result = states.analysis(name, drop_m, optics)
    note_version(state.main_version)
    at = result.premise_position(premise_id)
    if at is None:
        raise NotFoundError("premises", premise_id)
    rows = result.premises.iloc[[at]].to_crs(4326)
    feature = frame_to_features(rows, LAYERS["premises"], _result_names("premises"))[0]
    feature["properties"]["loss"] = json_safe(premise_optics(result, at)["loss"])
    return GeoJSONResponse(feature)


@router.get("/plans/{name}/analysis/serviceability", summary="Is a location served, in a plan",
            responses=problem_responses(400, 404))
def plan_serviceability(
    name: NamePath, states: StatesDep,
    lon: Annotated[float, Query(ge=-180, le=180, description="WGS84 longitude.")],
    lat: Annotated[float, Query(ge=-90, le=90, description="WGS84 latitude.")],
    optics: OpticsParam,
    drop_m: DropParam = None,
) -> dict[str, Any]:
    """As ``/analysis/serviceability``, for main with the plan's edits."""
    from netgis.engine.analysis import serviceability

    state, result = states.analysis(name, drop_m, optics)
    note_version(state.main_version)
    return {**json_safe(serviceability(result, lon, lat)),
            "budget_db": result.budget.budget_db, "plan": name,
            "plan_version": state.plan_version, "data_version": state.main_version}


@router.get("/plans/{name}/analysis/criticality", response_class=GeoJSONResponse,
            summary="Single points of failure in a plan", responses=problem_responses(400, 404))
def plan_criticality(
    name: NamePath, states: StatesDep, optics: OpticsParam,
    layer: Annotated[Literal["spans", "nodes"], Query(
        description="Rank spans by cut impact or nodes by failure impact.")] = "spans",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**53)] = 0,
    drop_m: DropParam = None,
) -> GeoJSONResponse:
    """As ``/analysis/criticality``: the plan's spans (or nodes) whose failure disconnects
    passed premises, by units lost."""
    state, result = states.analysis(name, drop_m, optics)
    note_version(state.main_version)
    frame = result.spans if layer == "spans" else result.nodes
    units, premises = (("cut_units", "cut_premises") if layer == "spans"
                       else ("failure_units", "failure_premises"))
    id_field = LAYERS[layer].id_field
    ranked = frame[frame[premises] > 0].sort_values([units, premises, id_field],
                                                    ascending=[False, False, True],
                                                    kind="stable")
    page = ranked.iloc[offset:offset + limit].to_crs(4326)
    features = frame_to_features(page, LAYERS[layer], _result_names(layer))
    return GeoJSONResponse({"type": "FeatureCollection", "features": features,
                            "numberMatched": len(ranked), "numberReturned": len(features)})
