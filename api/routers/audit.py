"""The audit log over HTTP: who changed which features, when, and how they were before and after.

It names the keys behind every change, so it always needs a key with the read
scope, also when reads are otherwise open (``NETGIS_OPEN_READS``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from api.deps import AuditAccess, RepoDep, SettingsDep
from api.errors import problem_responses
from api.geojson import Link
from netgis.schema import LAYER_NAMES
from netgis.storage.audit import Action

router = APIRouter(tags=["Audit"])

#: SQL engines take 64-bit offsets; anything beyond is certainly past the end.
MAX_OFFSET = 2**53
LayerName = Literal["nodes", "spans", "premises", "areas"]
if set(get_args(LayerName)) != set(LAYER_NAMES):  # spelled out for the type checker
    raise RuntimeError("api.routers.audit.LayerName differs from netgis.schema.LAYER_NAMES")


class AuditEntry(BaseModel):
    """One write: who made it, when, and what it changed."""

    id: int = Field(description="Grows with every entry.")
    time: datetime = Field(description="When the write committed its transaction (UTC).")
    actor: str = Field(description="The name of the API key that wrote; `cli` for the "
                       "command line, `local` for Python callers.")
    action: Action = Field(description="create, replace, patch, delete; import (upload "
                               "over HTTP) or load (command line) for bulk loads.")
    layer: LayerName
    feature_ids: list[str] = Field(description="The ids of the features written.")
    count: int = Field(description="How many features were written.")
    mode: Literal["insert", "upsert"] | None = Field(
        description="The mode of a bulk load; null for other writes.")
    data_version: int = Field(description="The data version the write gave the database "
                              "(the ETag of the features it wrote).")
    before: dict[str, Any] | None = Field(
        description="The changed features before the write, whole, as a GeoJSON "
                    "FeatureCollection (WGS84); null for a create and for bulk loads.")
    after: dict[str, Any] | None = Field(
        description="The features after the write, whole, as a GeoJSON FeatureCollection; "
                    "null for a delete and for bulk loads (their ids and count only).")


class AuditPage(BaseModel):
    """One page of the audit log, newest entry first."""

    entries: list[AuditEntry]
    numberMatched: int
    numberReturned: int
    links: list[Link]


def _links(request: Request, offset: int, limit: int, returned: int,
           matched: int) -> list[Link]:
    def page(rel: str, off: int) -> Link:
        url = request.url.include_query_params(offset=off, limit=limit)
        return Link(href=str(url), rel=rel, type="application/json")

    links = [Link(href=str(request.url), rel="self", type="application/json")]
    if returned > 0 and offset + returned < matched:
        links.append(page("next", offset + returned))
    if offset > 0:
        links.append(page("prev", max(0, offset - limit)))
    return links


@router.get(
    "/audit", response_model=AuditPage, dependencies=AuditAccess,
    responses=problem_responses(400, 401, 403, 503),
    summary="Who changed what: the log of every write",
)
def audit_log(
    request: Request, repo: RepoDep, settings: SettingsDep,
    layer: Annotated[LayerName | None, Query(description="Only writes of this layer.")] = None,
    feature_id: Annotated[str | None, Query(
        alias="id", description="Only writes of this feature id (bulk loads included).")] = None,
    since: Annotated[datetime | None, Query(
        description="Only writes at or after this time (ISO 8601; without an offset: UTC).",
        examples=["2026-12-01T00:00:00Z"])] = None,
    actor: Annotated[str | None, Query(description="Only writes by this key name.")] = None,
    action: Annotated[Action | None, Query(description="Only writes of this kind.")] = None,
    limit: Annotated[int | None, Query(ge=1, description=(
        "Entries per page; larger values are clamped to the server's maximum."))] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Entries to skip.")] = 0,
) -> AuditPage:
    """Entries of the audit log, newest first: each write of features (create, replace,
    patch, delete, import, load) with its time, the key's name, the layer, the ids and,
    for writes of single features, the features before and after.

    Needs a key with the read scope even when reads are open: the log says who
    changed what.
    """
    size = min(limit or settings.default_limit, settings.max_limit)
    entries, matched = repo.audit_log(layer=layer, feature_id=feature_id, since=since,
                                      actor=actor, action=action, limit=size, offset=offset)
    return AuditPage(
        entries=[AuditEntry.model_validate(e) for e in entries],
        numberMatched=matched,
        numberReturned=len(entries),
        links=_links(request, offset, size, len(entries), matched),
    )
