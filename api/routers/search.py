"""Address search (docs/spec.md §3.9): premises by address, premise_id or location_id.

Answered from the address index of the current data version, built once by
:meth:`api.services.Services.search` over the analysis at the server's defaults;
a search never starts an analysis of its own parameters, so it is never rate-limited.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from api.deps import ServicesDep
from api.errors import problem_responses
from api.routers.common import GeoJSONResponse
from netgis.errors import ParameterError, Problem
from netgis.schema import DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT
from netgis.search import MAX_QUERY_LENGTH

router = APIRouter(tags=["Search"])


class SearchHitProperties(BaseModel):
    """The premise's fields, its serviceability, and how it matched."""

    premise_id: str
    address: str | None
    location_id: str | None
    units: int | None
    kind: str | None
    connected: bool | None
    passed: bool
    distance_m: float | None = Field(description="Geodesic distance to the nearest lit span.")
    served_span_id: str | None
    span_protected: bool
    node_protected: bool
    duct_protected: bool
    loss_db: float | None
    margin_db: float | None
    in_budget: bool
    match: Literal["premise_id", "location_id", "address"]
    score: float = Field(description="2 for an exact id; else the street's similarity 0..1, "
                         "plus 0.15 when the house number exists exactly.")


class SearchHitGeometry(BaseModel):
    type: Literal["Point"]
    coordinates: list[float]


class SearchHit(BaseModel):
    type: Literal["Feature"]
    id: str = Field(description="The premise_id.")
    geometry: SearchHitGeometry
    properties: SearchHitProperties


class SearchResults(BaseModel):
    """Hits, best first; ``suggestions`` holds nearby spellings when nothing matched."""

    type: Literal["FeatureCollection"]
    features: list[SearchHit]
    numberReturned: int
    suggestions: list[str]
    data_version: int


def query_text(q: str) -> str:
    """``q`` stripped, or a 400 naming ``q`` when nothing is left."""
    text = q.strip()
    if not text:
        raise ParameterError([Problem("query", None, "q", "must not be blank")],
                             "invalid q: must not be blank")
    return text


QueryParam = Annotated[str, Query(
    min_length=1, max_length=MAX_QUERY_LENGTH,
    description="An address (typos, case, accents, punctuation and the order of street and "
                "house number do not matter), a premise_id or a location_id.",
    examples=["Lindenstraße 12"])]


@router.get("/search", response_model=SearchResults, response_class=GeoJSONResponse,
            responses=problem_responses(400), summary="Find premises by address or id")
def search(
    services: ServicesDep,
    q: QueryParam,
    limit: Annotated[int, Query(ge=1, le=MAX_SEARCH_LIMIT,
                                description="Most hits to return.")] = DEFAULT_SEARCH_LIMIT,
) -> Response:
    """Premises ranked by how well their address, premise_id or location_id match ``q``:
    exact ids first, then addresses. Each hit carries the premise's serviceability.
    No match: an empty collection and ``suggestions`` (nearby spellings)."""
    text = query_text(q)
    version, _, index = services.search()
    answer = index.search(text, limit=limit)
    answer["data_version"] = version
    return GeoJSONResponse(answer)
