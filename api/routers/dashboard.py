"""``GET /dashboard`` (coverage progress at a glance) and ``GET /report`` (the same as a
printable, self-contained HTML page or PDF for a council meeting).

Both show the KPIs of ``/kpis`` (the cached analysis at the server's drop length), the
history of ``/kpis/history``, the goal view of ``/kpis/goal`` (goal and pace window from
the settings), the single points of failure of the analysis and the top builds of the gap
ranking (the plan ``/analysis/gaps?view=clusters`` ranks). ``?area_id=`` narrows them to
one area. The data and charts are made by :mod:`netgis.products.progress`, the pages by
:mod:`maps.dashboard`. Rendered pages are kept (:class:`RenderedReports`); rendering the
page of an area again costs an anonymous client a token of the limit on new work.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from netgis.api.deps import MIN_VERSION, RepoDep, ServicesDep, SettingsDep
from netgis.api.errors import problem_responses
from netgis.api.services import SingleFlight
from netgis.jsonsafe import json_safe
from netgis.products.program import MAX_YEARS, Program, run_program

if TYPE_CHECKING:
    from netgis.api.services import Services
    from netgis.api.settings import Settings
    from netgis.products.progress import Dashboard
    from netgis.storage import Repository

router = APIRouter(tags=["Dashboard"], dependencies=[MIN_VERSION])

AreaParam = Annotated[str | None, Query(description="Narrow the page to this area (district).")]

#: Vega compiles its expressions with the Function constructor ('unsafe-eval'); every script
#: still comes from this server: no inline script, no other origin.
DASHBOARD_CSP = "; ".join([
    "default-src 'none'", "script-src 'self' 'unsafe-eval'", "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:", "connect-src 'self'", "base-uri 'none'", "form-action 'none'",
    "object-src 'none'",
])
#: The report runs no script and loads nothing: its charts are inline SVG.
REPORT_CSP = "; ".join([
    "default-src 'none'", "style-src 'unsafe-inline'", "img-src data:", "base-uri 'none'",
    "form-action 'none'", "object-src 'none'",
])


class ReportFormat(StrEnum):
    """The formats the progress report is rendered in."""

    html = "html"
    pdf = "pdf"


def board_of(services: Services, settings: Settings, repo: Repository,
             area_id: str | None) -> Dashboard:
    """The dashboard's numbers for the current data (network, or the area ``area_id``)."""
    from netgis.products.feeds import Goal
    from netgis.products.progress import build_dashboard

    # with strand layers, the capacity KPIs of the same data version (docs/strands.md)
    version, result, capacity = services.capacity_kpis(services.kpis)
    plan = services.plan(version, result)
    today = datetime.now(UTC).date()
    program = None
    if settings.program_budget_per_year is not None and area_id is None:
        program = _programs.get(
            (version, settings.program_budget_per_year, today.year),
            lambda: run_program(result.dataset, budget_per_year=settings.program_budget_per_year
                                or 0.0, start_year=today.year + 1,
                                goal_pct=settings.goal_coverage_pct, drop_m=result.drop_m,
                                max_years=min(MAX_YEARS, max(1, settings.goal_date.year
                                                             - today.year + 5))))
    board = build_dashboard(
        result, history=repo.kpi_history(area_id=area_id),
        goal=Goal(settings.goal_coverage_pct, settings.goal_date),
        as_of=today, area_id=area_id, clusters=plan.clusters,
        window_days=settings.goal_window_days, min_span_days=settings.goal_min_span_days,
        data_version=version, program=program, names=services.names(version, result.dataset))
    if capacity is not None and area_id is None:
        # network-wide KPIs: shown as tiles beside the coverage figures
        board = replace(board, kpis={**board.kpis, **json_safe(capacity)})
    return board


#: Build programmes of the dashboard, per data version, budget and year (a few analyses each).
_programs: SingleFlight[tuple[int, float, int], Program] = SingleFlight(4)


class RenderedReports:
    """The last few reports and dashboards rendered, by format and content, so that a page
    asked for again (the same data, history, goal and day) is not drawn and printed again;
    a page asked for while it is being rendered is rendered once, the others waiting."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._kept: SingleFlight[tuple[str, str], bytes] = SingleFlight(size)

    @staticmethod
    def key(fmt: str, board: Dashboard, base_url: str) -> tuple[str, str]:
        """The key of a rendered page: its format and a digest of what it shows (the
        dashboard's content and the server's base URL, not the time it was generated)."""
        content = {**asdict(board), "generated_at": None, "base_url": base_url}
        digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode())
        return fmt, digest.hexdigest()

    def get(self, key: tuple[str, str], render: Callable[[], bytes],
            admit: Callable[[], None] | None = None) -> bytes:
        """The page of ``key``, rendered by ``render()`` when not kept; ``admit`` is called
        before this request renders it (it may refuse)."""
        return self._kept.get(key, render, admit)


def _reports_of(request: Request) -> RenderedReports:
    reports = getattr(request.app.state, "rendered_reports", None)
    if reports is None:
        reports = request.app.state.rendered_reports = RenderedReports()
    return reports


def _admit(services: Services, area_id: str | None) -> Callable[[], None] | None:
    """What rendering a page costs: the network's pages are the same for every client and
    cost nothing; a page of one area costs an anonymous client a token (429 when none
    is left), as any request that starts new work."""
    return None if area_id is None else services.admit


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


_HTML: dict[int | str, dict[str, Any]] = {200: {
    "description": "An HTML page.", "content": {"text/html": {}}}}


@router.get("/dashboard", response_class=HTMLResponse, summary="Coverage progress dashboard",
            responses={**_HTML, **problem_responses(400, 404)})
def dashboard(request: Request, services: ServicesDep, settings: SettingsDep, repo: RepoDep,
              area_id: AreaParam = None) -> HTMLResponse:
    """Coverage over time against the goal (with the projected date and its window),
    coverage and protection per area, protection against single failures, the top single
    points of failure and the top 10 builds, each chart linked to its map. Charts are
    Vega-Lite, drawn by scripts this server serves (no CDN)."""
    from netgis.maps.dashboard import dashboard_html

    board = board_of(services, settings, repo, area_id)
    _, result = services.kpis()
    areas = [(str(a["area_id"]), str(a.get("name") or a["area_id"]))
             for a in result.kpis.get("areas") or []]
    page = _reports_of(request).get(
        RenderedReports.key("dashboard", board, ""),
        lambda: dashboard_html(board, static_url="/static", base_url="",
                               areas=areas).encode("utf-8"),
        _admit(services, area_id))
    return HTMLResponse(page, headers={"Content-Security-Policy": DASHBOARD_CSP,
                                       "Cache-Control": "no-cache"})


@router.get("/report", summary="Printable coverage progress report (HTML or PDF)",
            response_class=Response,
            responses={200: {"description": "The report.",
                             "content": {"text/html": {}, "application/pdf": {}}},
                       **problem_responses(400, 404)})
def report(request: Request, services: ServicesDep, settings: SettingsDep, repo: RepoDep,
           area_id: AreaParam = None,
           format: Annotated[ReportFormat, Query(
               description="html (self-contained page, charts as SVG) or pdf.")]
           = ReportFormat.html) -> Response:
    """The dashboard as one self-contained printable document with a plain-words summary."""
    from netgis.maps.dashboard import report_html, report_pdf

    board = board_of(services, settings, repo, area_id)
    base = _base_url(request)
    reports = _reports_of(request)
    admit = _admit(services, area_id)
    html = reports.get(RenderedReports.key("html", board, base),
                       lambda: report_html(board, base_url=base).encode("utf-8"), admit)
    if format is ReportFormat.pdf:
        pdf = reports.get(RenderedReports.key("pdf", board, base),
                          lambda: report_pdf(html.decode("utf-8")), admit)
        name = "netgis-report" + (f"-{area_id}" if area_id else "")
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
        return Response(pdf, media_type="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="{safe}.pdf"'})
    return HTMLResponse(html, headers={"Content-Security-Policy": REPORT_CSP,
                                       "Cache-Control": "no-cache"})
