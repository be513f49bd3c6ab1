"""Interactive maps (HTML pages) of the current data: coverage, criticality, gaps, areas.

Each page is a Folium map of the cached analysis of the current data version,
optionally cut down to an area and/or a WGS84 box. Its scripts and styles come
from this server (``/static``, see :func:`maps.assets.static_dir`), never from a
CDN; the base map tiles come from ``NETGIS_TILES_URL`` (empty: no base map). Every
page carries a Content-Security-Policy (:mod:`maps.csp`), as a header and in the page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from api.deps import ServicesDep, SettingsDep
from api.errors import problem_responses
from api.params import BboxParam, DropParam, parse_bbox
from netgis.errors import ParameterError, ValidationError

if TYPE_CHECKING:
    from api.services import Services
    from api.settings import Settings

router = APIRouter(prefix="/maps", tags=["Maps"])

#: Map kind -> (summary, description) as the OpenAPI document shows them.
PAGES = {
    "coverage": ("Coverage map", "Premises passed / not passed, lit, unlit and planned spans, "
                 "cores and cabinets."),
    "criticality": ("Criticality map", "Spans coloured and weighted by the units a cut takes "
                    "down; single-point-of-failure spans and nodes."),
    "gaps": ("Gaps map", "H3 hexagons coloured by units not passed, with the build ranking "
             "of the gap clusters."),
    "areas": ("Areas map", "Choropleth of coverage % and protected % per area."),
}

AreaParam = Annotated[str | None, Query(
    description="Only what lies in this area (premises and nodes inside, spans crossing it).")]

FailParam = Annotated[str | None, Query(
    description="Comma-separated ids failed together, drawn as a scenario overlay.")]


def _ids(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


_HTML_PAGE: dict[int | str, dict[str, Any]] = {200: {
    "description": "An interactive map (HTML page, Leaflet served from /static).",
    "content": {"text/html": {}},
}}


def _render(kind: str, services: Services, settings: Settings, area_id: str | None,
            bbox: str | None, drop_m: float | None,
            failed: tuple[list[str], list[str], list[str]] = ([], [], [])) -> HTMLResponse:
    """Build the ``kind`` page of the cached analysis (with a scenario overlay when given)."""
    from maps.csp import secure_html
    from maps.kinds import build_map
    from netgis.analysis import scenario

    box = parse_bbox(bbox)
    version, result = services.analysis(drop_m)
    extra: dict[str, Any] = {}
    if any(failed):
        extra["scenario"] = scenario(result, spans=failed[0], nodes=failed[1],
                                     ducts=failed[2])
    if kind == "gaps":
        # the same cached plan GET /analysis/gaps?view=clusters ranks
        from netgis.gaps import DEFAULT_LINK_M, DEFAULT_PLACEMENT

        extra["ranking"] = services.plan(version, result, DEFAULT_LINK_M,
                                         DEFAULT_PLACEMENT).clusters
    # layers above the page's feature limit are drawn from /tiles, at the same drop length
    query = f"?{urlencode({'drop_m': drop_m})}" if drop_m is not None else ""
    try:
        m = build_map(kind, result, bbox=box, area_id=area_id,
                      tiles_url=settings.tiles_url or None, base_url="/static",
                      vector_tiles=f"/tiles/{{layer}}/{{z}}/{{x}}/{{y}}.mvt{query}", **extra)
    except ValidationError as exc:
        # a box with no area is a bad query parameter (400), as parse_bbox's checks
        if any(p.field == "bbox" for p in exc.problems):
            raise ParameterError(exc.problems, f"invalid bbox: {exc}") from None
        raise
    # the policy twice: the header governs this response, the <meta> a saved copy
    page, policy = secure_html(m)
    return HTMLResponse(page, headers={"Content-Security-Policy": policy})


def _page(kind: str) -> Callable[..., HTMLResponse]:
    """The handler of ``/maps/{kind}``; only the criticality page takes a scenario."""

    def handler(services: ServicesDep, settings: SettingsDep,
                area_id: AreaParam = None, bbox: BboxParam = None,
                drop_m: DropParam = None) -> HTMLResponse:
        return _render(kind, services, settings, area_id, bbox, drop_m)

    def criticality(services: ServicesDep, settings: SettingsDep,
                    area_id: AreaParam = None, bbox: BboxParam = None,
                    drop_m: DropParam = None, cut_spans: FailParam = None,
                    fail_nodes: FailParam = None, fail_ducts: FailParam = None) -> HTMLResponse:
        failed = (_ids(cut_spans), _ids(fail_nodes), _ids(fail_ducts))
        return _render(kind, services, settings, area_id, bbox, drop_m, failed)

    chosen = criticality if kind == "criticality" else handler
    chosen.__name__ = f"{kind}_map"
    chosen.__doc__ = PAGES[kind][1]
    return chosen


for _kind, (_summary, _) in PAGES.items():
    router.add_api_route(
        f"/{_kind}", _page(_kind), methods=["GET"], response_class=HTMLResponse,
        summary=_summary, responses={**_HTML_PAGE, **problem_responses(400, 404, 422)},
    )
