"""The public "fiber at my address?" portal: its page and the two endpoints its script calls.

What a resident may see and nothing more: an address, whether fiber passes it, how
far away the network is, its protection in words, the build ranking of its gap
cluster, and the lit cables near it. No premise, span or cluster id, no key-protected
field. These routes answer without a key even when reads are closed
(:data:`api.deps.PUBLIC_PATHS`). Answers come from the address index and the analysis
at the server's defaults, cached per data version: never rate-limited.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import numpy.typing as npt
import shapely
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from netgis.api.deps import MIN_VERSION, BasemapPageDep, ServicesDep, SettingsDep
from netgis.api.errors import problem_responses
from netgis.api.routers.common import GeoJSONResponse
from netgis.products.search import MAX_QUERY_LENGTH

if TYPE_CHECKING:
    from netgis.api.services import Services
    from netgis.engine.analysis import Analysis
    from netgis.products.search import PremiseSearch

router = APIRouter(prefix="/portal", tags=["Portal"], dependencies=[MIN_VERSION])

#: Addresses the type-ahead offers at most.
PORTAL_OPTIONS = 8
#: Lit cables within this many meters of the address are drawn on the portal's map.
PLANT_RADIUS_M = 600.0


class Protection(BaseModel):
    """Which single failures the address's service survives."""

    span: bool = Field(description="Survives any single cable cut.")
    node: bool = Field(description="Survives any single cable cut or equipment failure.")
    duct: bool = Field(description="Survives the loss of any one shared duct or pole line.")


class BuildRank(BaseModel):
    """Where an address without fiber stands in the gap plan."""

    rank: int = Field(description="Rank of the address's build area among the areas without "
                      "fiber, by estimated cost per unit (1: cheapest); not a building plan.")
    total: int = Field(description="Build areas in the plan.")


class PortalAddress(BaseModel):
    """One address and its answer in plain figures."""

    address: str
    lon: float
    lat: float
    passed: bool
    distance_m: int | None = Field(description="Meters to the nearest fiber (rounded).")
    in_budget: bool
    protection: Protection
    build: BuildRank | None = Field(description="Not passed: where its build area ranks.")


class MissingNumber(BaseModel):
    """The house number asked for is not on the street the text names best."""

    street: str
    number: str = Field(description="The house number asked for.")
    nearest: list[PortalAddress] = Field(
        description="The street's addresses with the numbers next below and above it.")


class PortalAnswer(BaseModel):
    """The portal's answer to a query: the matching addresses, or suggestions."""

    addresses: list[PortalAddress]
    suggestions: list[str]
    number_not_found: MissingNumber | None = Field(
        default=None, description="Set when the best address lacks the number asked for: "
        "it is then not the answer.")


@router.get("", response_class=HTMLResponse, summary="Fiber at my address? (public page)",
            responses={200: {"content": {"text/html": {}}, "description": "The portal page."}})
def portal(request: Request, settings: SettingsDep, basemap: BasemapPageDep) -> HTMLResponse:
    """One search box with type-ahead, the answer in plain words and a small map."""
    from netgis.maps.portal import portal_page

    page, policy = portal_page(request.app.state.portal_messages,
                               tiles_url=settings.tiles_url, base_url="/static",
                               basemap=basemap)
    return HTMLResponse(page, headers={"Content-Security-Policy": policy})


def _distance(value: Any) -> int | None:
    return None if value is None or not np.isfinite(value) else round(float(value))


def _answers(services: Services, version: int, result: Analysis, search: PremiseSearch,
             positions: npt.NDArray[np.int64]) -> list[PortalAddress]:
    """The portal's answer for each premise row at ``positions`` of ``search`` (the index
    of ``result``, the analysis of data ``version``)."""
    rows = result.premises.iloc[positions]
    lonlat = search.lonlat[positions]
    ranks: dict[str, tuple[int, int]] = {}
    if not rows["passed"].all():
        plan = services.plan(version, result)
        total = len(plan.clusters)
        member = plan.premise_cluster[plan.premise_cluster["premise_id"].isin(
            rows["premise_id"])]
        rank_of = dict(zip(plan.clusters["cluster_id"], plan.clusters["rank"], strict=True))
        ranks = {str(p): (int(rank_of[c]), total)
                 for p, c in zip(member["premise_id"], member["cluster_id"], strict=True)}
    out = []
    for (_, row), (lon, lat) in zip(rows.iterrows(), lonlat, strict=True):
        passed = bool(row["passed"])
        rank = ranks.get(str(row["premise_id"])) if not passed else None
        out.append(PortalAddress(
            address=str(row["address"]), lon=round(float(lon), 6), lat=round(float(lat), 6),
            passed=passed, distance_m=_distance(row["distance_m"]),
            in_budget=bool(row["in_budget"]),
            protection=Protection(span=bool(row["span_protected"]),
                                  node=bool(row["node_protected"]),
                                  duct=bool(row["duct_protected"])),
            build=BuildRank(rank=rank[0], total=rank[1]) if rank else None))
    return out


@router.get("/addresses", response_model=PortalAnswer, responses=problem_responses(400),
            summary="Addresses matching a text, with their answer (no ids)")
def addresses(
    services: ServicesDep,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_LENGTH,
                            description="Part of an address, typos allowed.")],
    limit: Annotated[int, Query(ge=1, le=PORTAL_OPTIONS)] = PORTAL_OPTIONS,
) -> PortalAnswer:
    """What the portal's type-ahead lists: one entry per distinct address, best first.

    When the best address lacks the house number asked for, ``number_not_found``
    names the street, the number and the street's nearest numbers with their answers.
    """
    text = q.strip()
    if not text:
        return PortalAnswer(addresses=[], suggestions=[])
    version, result, search = services.search()
    found = search.index.search(text, limit=limit * 3)
    rows = result.premises.iloc[found.positions]
    keep = rows["address"].notna().to_numpy() & ~rows["address"].duplicated().to_numpy()
    listed = found.positions[keep][:limit]
    missing = found.number_not_found
    nearest = np.zeros(0, dtype=np.int64) if missing is None else missing.positions
    # one pass for both: the build plan is looked up once
    answers = _answers(services, version, result, search, np.concatenate([listed, nearest]))
    return PortalAnswer(
        addresses=answers[:len(listed)], suggestions=found.suggestions,
        number_not_found=None if missing is None else MissingNumber(
            street=missing.street, number=missing.number, nearest=answers[len(listed):]))


@router.get("/plant", response_class=GeoJSONResponse, responses=problem_responses(400),
            summary="Lit cables near a position (geometry only)")
def plant(
    services: ServicesDep,
    lon: Annotated[float, Query(ge=-180, le=180, description="WGS84 longitude.")],
    lat: Annotated[float, Query(ge=-90, le=90, description="WGS84 latitude.")],
) -> GeoJSONResponse:
    """The lit spans within 600 m, as bare WGS84 lines for the portal's map."""
    from netgis.engine.analysis import lit_spans_near

    _, result = services.analysis()
    lines = lit_spans_near(result, lon, lat, PLANT_RADIUS_M)
    geometries: list[str] = (shapely.to_geojson(shapely.set_precision(lines, 1e-6)).tolist()
                             if len(lines) else [])
    features = [{"type": "Feature", "properties": {}, "geometry": json.loads(g)}
                for g in geometries]
    return GeoJSONResponse({"type": "FeatureCollection", "features": features})
