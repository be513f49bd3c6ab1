"""KPI feeds: JSON and CSV rows, the stored history, and progress toward a coverage goal.

``/kpis`` and ``/kpis.csv`` carry an ETag made of the data version and the
drop length, so a poller that sends ``If-None-Match`` gets a 304 after one
cheap version query, without any analysis.

A KPI snapshot (at the server's drop length) is stored once per data
version: right after a successful write request through this API (the
response has already gone out by then), and otherwise on the first KPI read
that finds the data changed (for example after ``netgis db load``). The
snapshots are kept by :class:`api.services.Services`; this module serves them.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from netgis.api.deps import MIN_VERSION, RepoDep, ServicesDep, SettingsDep
from netgis.api.errors import problem_responses
from netgis.api.params import DropParam
from netgis.api.routers.common import timestamp
from netgis.products.feeds import Goal, goal_progress, kpi_rows, kpis_csv

if TYPE_CHECKING:
    pass

router = APIRouter(tags=["KPIs"], dependencies=[MIN_VERSION])
log = logging.getLogger("netgis.api.kpis")

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class KpiFeed(BaseModel):
    """Every KPI of docs/spec.md §2.9, one row per scope (the network first, then each area)."""

    data: list[dict[str, Any]] = Field(description="Rows with scope, area_id, name and the KPIs.")
    generated_at: str
    data_version: int
    drop_m: float


class KpiHistory(BaseModel):
    """Stored KPI snapshots of the network or one area, oldest first."""

    data: list[dict[str, Any]] = Field(
        description="Per snapshot: snapshot_id, taken_at, data_version and the KPIs; "
                    "\"estimated\": true for one estimated from the spans' install_year "
                    "(netgis kpis backfill), no such member for a measured one.")
    area_id: str | None
    since: str | None


class GoalView(BaseModel):
    """Progress of the network and every area toward a coverage target."""

    data: list[dict[str, Any]]
    target_pct: float
    target_date: str
    as_of: str
    window_days: int = Field(description="Days of history up to as_of the pace is measured "
                             "over.")
    min_span_days: float = Field(description="Least time the snapshots of the window must "
                                 "span for a pace to be given.")
    data_version: int
    drop_m: float


# ------------------------------------------------------------------------------ snapshots


def install(app: FastAPI) -> None:
    """Register the KPI routes."""
    app.include_router(router)


# ----------------------------------------------------------------------------- endpoints


def etag(version: int, drop_m: float, kind: str) -> str:
    """Weak ETag of a KPI representation: same data version and drop length, same KPIs."""
    return f'W/"kpis-{version}-{drop_m!r}-{kind}"'


def _matches(request: Request, tag: str) -> bool:
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    if header.strip() == "*":
        return True
    # If-None-Match compares weakly (RFC 9110 13.1.2): the W/ prefix does not matter
    wanted = tag.removeprefix("W/")
    return any(t.strip().removeprefix("W/") == wanted for t in header.split(","))


def _not_modified(tag: str) -> Response:
    return Response(status_code=304, headers={"ETag": tag, "Cache-Control": "no-cache"})


@router.get("/kpis", response_model=KpiFeed, summary="Every KPI, network-wide and per area",
            responses={304: {"description": "Not Modified (If-None-Match matched the ETag)"},
                       **problem_responses(400)})
async def kpis_json(request: Request, services: ServicesDep,
                    drop_m: DropParam = None) -> Response:
    """KPI rows as JSON with an ETag; 304 when ``If-None-Match`` names the current one."""
    published = services.live_default(drop_m)
    if published is not None and services.strand_states.known_absent(published.version):
        # the live analysis's own KPIs (no strand layers to add capacity from): memory
        # only, answered in the event loop
        drop = services.drop_m(drop_m)
        tag = etag(published.version, drop, "json")
        if _matches(request, tag):
            return _not_modified(tag)
        return _kpi_response(published.version, published.analysis.kpis, drop)
    return await run_in_threadpool(_kpis_read, request, services, drop_m)


def _kpi_response(version: int, kpis: Any, drop: float) -> Response:
    body = KpiFeed(data=kpi_rows(kpis), generated_at=timestamp(), data_version=version,
                   drop_m=drop)
    return Response(body.model_dump_json(), media_type="application/json",
                    headers={"ETag": etag(version, drop, "json"), "Cache-Control": "no-cache"})


def _kpis_read(request: Request, services: Any, drop_m: float | None) -> Response:
    """:func:`kpis_json` through the KPI feed (stored results, capacity KPIs): may query."""
    drop = services.drop_m(drop_m)
    known = etag(services.served_version(drop), drop, "json")
    if _matches(request, known):
        return _not_modified(known)
    version, kpis = services.kpi_feed(drop)
    return _kpi_response(version, kpis, drop)


@router.get("/kpis.csv", summary="Every KPI as CSV", response_class=Response,
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                             "description": "One row per scope; empty cell for null."},
                       304: {"description": "Not Modified (If-None-Match matched the ETag)"},
                       **problem_responses(400)})
def kpis_csv_feed(request: Request, services: ServicesDep,
                  drop_m: DropParam = None) -> Response:
    """The KPI rows as CSV (columns scope, area_id, name, then every KPI) with an ETag."""
    drop = services.drop_m(drop_m)
    known = etag(services.served_version(drop), drop, "csv")
    if _matches(request, known):
        return _not_modified(known)
    version, kpis = services.kpi_feed(drop)
    return Response(kpis_csv(kpis), media_type=CSV_MEDIA_TYPE,
                    headers={"ETag": etag(version, drop, "csv"), "Cache-Control": "no-cache",
                             "Content-Disposition": 'inline; filename="kpis.csv"',
                             "X-Data-Version": str(version)})


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


@router.get("/kpis/history", response_model=KpiHistory, summary="Stored KPI snapshots",
            responses=problem_responses(400))
def kpis_history(
    services: ServicesDep, repo: RepoDep,
    area_id: Annotated[str | None, Query(description="One area's series (default: network).")]
    = None,
    since_text: Annotated[str | None, Query(
        alias="since",
        description="Only snapshots taken at or after this instant: an ISO 8601 date-time "
                    "(UTC if no offset) or a date YYYY-MM-DD (its start, UTC).")] = None,
) -> KpiHistory:
    """The series of KPI snapshots, oldest first: one after each bulk load or import, and one
    per ``NETGIS_KPI_SNAPSHOT_INTERVAL_S`` (default an hour) of edits; before the first, the
    yearly points ``netgis kpis backfill`` estimated from the spans' ``install_year``
    (marked ``estimated``)."""
    since = _parse_instant(since_text)
    rows = repo.kpi_history(area_id=area_id, since=since)
    data = [{k: _iso(v) for k, v in row.items()} for row in rows]
    return KpiHistory(data=data, area_id=area_id, since=_iso(since))


@router.get("/kpis/goal", response_model=GoalView, summary="Progress toward a coverage goal",
            responses=problem_responses(400))
def kpis_goal(
    services: ServicesDep, repo: RepoDep, settings: SettingsDep,
    target_pct: Annotated[float | None, Query(gt=0, le=100, description="Target coverage, "
                                              "percent of units passed (default: "
                                              "NETGIS_GOAL_COVERAGE_PCT).")] = None,
    target_date: Annotated[date | None, Query(description="Day the target should be reached "
                                              "(default: NETGIS_GOAL_DATE).")] = None,
    as_of: Annotated[date | None, Query(description="Day to measure on (default: today, "
                                        "UTC).")] = None,
    window_days: Annotated[int | None, Query(ge=1, le=36_500, description=(
        "Days of KPI history the pace is measured over, up to as_of (default: "
        "NETGIS_GOAL_WINDOW_DAYS, 365)."))] = None,
) -> GoalView:
    """Per scope: gap to the target in units, units per month needed, the pace (least-squares
    slope of units passed over the snapshots of the last ``window_days`` days; null when
    they are fewer than two or span less than NETGIS_GOAL_MIN_SPAN_DAYS), the day the target
    is reached at that pace, and whether that pace is enough."""
    target_pct = settings.goal_coverage_pct if target_pct is None else target_pct
    target_date = settings.goal_date if target_date is None else target_date
    drop = float(settings.drop_m)
    version, kpis = services.kpi_feed(drop)
    history: dict[str | None, list[dict[str, Any]]] = {None: repo.kpi_history()}
    for area in kpis.get("areas") or []:
        history[str(area["area_id"])] = repo.kpi_history(area_id=str(area["area_id"]))
    day = as_of or datetime.now(UTC).date()
    window = settings.goal_window_days if window_days is None else window_days
    data = goal_progress(kpis, goal=Goal(target_pct, target_date), as_of=day, history=history,
                         window_days=window, min_span_days=settings.goal_min_span_days)
    return GoalView(data=data, target_pct=target_pct, target_date=target_date.isoformat(),
                    as_of=day.isoformat(), window_days=window,
                    min_span_days=settings.goal_min_span_days, data_version=version,
                    drop_m=drop)


def _parse_instant(text: str | None) -> datetime | None:
    """An ISO 8601 date-time (UTC when it has no offset) or a date (its 00:00 UTC).

    A bare number is neither: pydantic's lax parsing would read ``5787`` as a Unix
    timestamp, and ``datetime.fromisoformat`` would read ``20260105`` as a date.
    """
    if text is None:
        return None
    value: datetime | None = None
    try:
        if _ISO_DATE.fullmatch(text):
            value = datetime.combine(date.fromisoformat(text), datetime.min.time())
        elif "T" in text.upper():
            value = datetime.fromisoformat(text)
    except ValueError:
        value = None
    if value is None:
        raise RequestValidationError([{
            "type": "datetime_from_date_parsing", "loc": ("query", "since"),
            "msg": "not an ISO 8601 date (YYYY-MM-DD) or date-time", "input": text}])
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
