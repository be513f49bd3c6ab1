"""The audit log over HTTP: who changed which features, when, and how they were before and after.

It names the keys behind every change, so it always needs a key with the read
scope, also when reads are otherwise open (``NETGIS_OPEN_READS``). A bulk load
is listed with its counts per layer; its ids are paged at ``/audit/{id}/ids``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from netgis.api.deps import AuditAccess, RepoDep, SettingsDep
from netgis.api.errors import problem_responses
from netgis.api.geojson import Link
from netgis.api.routers.common import paging_links
from netgis.schema import LAYER_NAMES, STRAND_LAYER_NAMES
from netgis.storage.audit import Action

router = APIRouter(tags=["Audit"])

#: SQL engines take 64-bit offsets; anything beyond is certainly past the end.
MAX_OFFSET = 2**53
#: The route layers and the strand layers (docs/access-and-audit.md), whose writes are logged alike.
LayerName = Literal["nodes", "spans", "premises", "areas", "cables", "cable_spans", "splitters",
                    "olt_ports", "connections", "drops", "strand_state"]
if set(get_args(LayerName)) != {*LAYER_NAMES, *STRAND_LAYER_NAMES}:  # spelled out for mypy
    raise RuntimeError("netgis.api.routers.audit.LayerName differs from netgis.schema's "
                       "LAYER_NAMES and STRAND_LAYER_NAMES")


class LayerCounts(BaseModel):
    """What a bulk load did to one layer."""

    inserted: int = Field(description="Features that were not there before.")
    replaced: int = Field(description="Stored features written again (their earlier state is "
                          "kept: see the entry's ids).")
    deleted: int = Field(description="Stored features removed (mode replace).")


class AuditEntry(BaseModel):
    """One write: who made it, when, and what it changed."""

    id: int = Field(description="Grows with every entry.")
    time: datetime = Field(description="When the write committed its transaction (UTC).")
    actor: str = Field(description="The name of the API key that wrote, or `oidc:` and the "
                       "subject of its bearer token; `cli` for the command line, `local` for "
                       "Python callers.")
    action: Action = Field(description="create, replace, patch, delete; import (upload "
                               "over HTTP) or load (command line) for bulk loads; merge "
                               "for a design plan applied to the data (see plan).")
    layer: LayerName | None = Field(description="The layer written; null for a bulk load, "
                                    "which writes every layer (see counts).")
    feature_ids: list[str] | None = Field(
        description="The ids of the features written; null for a bulk load (its ids are "
                    "paged at the `ids` link).")
    count: int = Field(description="How many features were written (and, for a bulk load, "
                       "deleted).")
    counts: dict[LayerName, LayerCounts] | None = Field(
        description="Per layer, the features a bulk load inserted, replaced and deleted; null "
                    "for other writes (and for upsert loads logged before these counts were "
                    "kept).")
    mode: Literal["insert", "upsert", "replace"] | None = Field(
        description="The mode of a bulk load; null for other writes.")
    plan: str | None = Field(
        default=None, description="The design plan a `merge` applied to the data; null for "
                                  "other writes.")
    data_version: int = Field(description="The data version the write gave the database "
                              "(the ETag of the features it wrote).")
    before: dict[str, Any] | None = Field(
        description="The changed features before the write, whole, as a GeoJSON "
                    "FeatureCollection (WGS84); null for a create and for bulk loads (their "
                    "replaced and deleted features are kept with their ids).")
    after: dict[str, Any] | None = Field(
        description="The features after the write, whole, as a GeoJSON FeatureCollection; "
                    "null for a delete and for bulk loads.")
    links: list[Link] = Field(description="`ids`: every feature the write wrote or deleted, "
                              "paged.")


class AuditPage(BaseModel):
    """One page of the audit log, newest entry first."""

    entries: list[AuditEntry]
    numberMatched: int
    numberReturned: int
    links: list[Link]


class AuditId(BaseModel):
    """One feature an audit entry wrote or deleted."""

    layer: LayerName
    id: str
    action: Literal["insert", "replace", "patch", "delete", "upsert"] = Field(
        description="What the write did to it (upsert: a load logged before it was recorded "
                    "whether the id was there).")
    before: dict[str, Any] | None = Field(
        description="The feature as it was before a bulk load replaced or deleted it (a "
                    "GeoJSON Feature, WGS84); null otherwise (writes of single features keep "
                    "it in the entry's `before`).")


class AuditIdPage(BaseModel):
    """One page of the features of an audit entry, ordered by layer and id."""

    entry_id: int
    ids: list[AuditId]
    numberMatched: int
    numberReturned: int
    links: list[Link]


def _links(request: Request, offset: int, limit: int, returned: int,
           matched: int) -> list[Link]:
    return [Link(**link) for link in paging_links(request, offset, limit, returned, matched,
                                                   media_type="application/json")]


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
    actor: Annotated[str | None, Query(description=(
        "Only writes by this key name (or oidc:<subject>)."))] = None,
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
        entries=[AuditEntry.model_validate({**e, "links": [Link(
            href=str(request.url_for("audit_entry_ids", entry_id=e["id"])), rel="ids",
            type="application/json")]}) for e in entries],
        numberMatched=matched,
        numberReturned=len(entries),
        links=_links(request, offset, size, len(entries), matched),
    )


@router.get(
    "/audit/{entry_id}/ids", response_model=AuditIdPage, dependencies=AuditAccess,
    responses=problem_responses(400, 401, 403, 404, 503),
    summary="The features one write of the audit log wrote or deleted",
)
def audit_entry_ids(
    request: Request, repo: RepoDep, settings: SettingsDep,
    entry_id: Annotated[int, Path(ge=1, le=MAX_OFFSET, description="The entry's id.")],
    layer: Annotated[LayerName | None, Query(description="Only features of this layer.")]
    = None,
    limit: Annotated[int | None, Query(ge=1, description=(
        "Ids per page; larger values are clamped to the server's maximum."))] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Ids to skip.")] = 0,
) -> AuditIdPage:
    """The features of one entry, ordered by layer and id: what the write did to each and,
    for a bulk load, each replaced or deleted feature as it was. 404 for no such entry."""
    size = min(limit or settings.default_limit, settings.max_limit)
    rows, matched = repo.audit_entry_ids(entry_id, layer=layer, limit=size, offset=offset)
    return AuditIdPage(
        entry_id=entry_id,
        ids=[AuditId.model_validate(r) for r in rows],
        numberMatched=matched,
        numberReturned=len(rows),
        links=_links(request, offset, size, len(rows), matched),
    )
