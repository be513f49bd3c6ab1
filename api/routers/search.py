"""Address search: premises by address, premise_id or location_id.

Answered from the address index of the current data version, built once by
:meth:`api.services.Services.search` over the analysis at the server's defaults;
a search never starts an analysis of its own parameters, so it is never rate-limited.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from netgis.api.deps import MIN_VERSION, ServicesDep
from netgis.api.errors import problem_responses
from netgis.api.routers.common import GeoJSONResponse
from netgis.errors import ParameterError, Problem
from netgis.products.search import MAX_QUERY_LENGTH
from netgis.schema import DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT

router = APIRouter(tags=["Search"], dependencies=[MIN_VERSION])


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
    house_number_match: bool | None = Field(
        description="Whether the hit has the house number asked for (a street's numbers that "
                    "begin with it are listed too); null when none was asked for or an id "
                    "matched.")


class SearchHitGeometry(BaseModel):
    """Where a matched premise is (a GeoJSON point, longitude and latitude)."""

    type: Literal["Point"]
    coordinates: list[float]


class SearchHit(BaseModel):
    """One matching premise as a GeoJSON feature."""

    type: Literal["Feature"]
    id: str = Field(description="The premise_id.")
    geometry: SearchHitGeometry
    properties: SearchHitProperties


class HouseNumberNotFound(BaseModel):
    """The house number asked for is not on the street the query names best."""

    street: str
    number: str = Field(description="The house number asked for.")
    nearest: list[str] = Field(
        description="Addresses with the street's numbers next below and above it.")


class SearchResults(BaseModel):
    """Hits, best first; ``suggestions`` holds nearby spellings when nothing matched."""

    type: Literal["FeatureCollection"]
    features: list[SearchHit]
    numberReturned: int
    suggestions: list[str]
    house_number_not_found: HouseNumberNotFound | None = Field(
        description="Set when the best hit lacks the house number asked for (or no number of "
                    "the street matched): the hits are then other numbers, not that address.")
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
    No match: an empty collection and ``suggestions`` (nearby spellings). A house number
    the street lacks: ``house_number_not_found`` with the nearest numbers it has."""
    text = query_text(q)
    version, _, index = services.search()
    answer = index.search(text, limit=limit)
    answer["data_version"] = version
    return GeoJSONResponse(answer)
