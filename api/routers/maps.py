"""Interactive maps (HTML pages) of the current data: coverage, criticality, gaps, areas.

Each page is a Folium map of the cached analysis of the current data version,
optionally cut down to an area and/or a WGS84 box. Its scripts and styles come
from this server (``/static``, see :func:`maps.assets.static_dir`), never from a
CDN; the base map is this server's own (``NETGIS_BASEMAP``, ``/basemap``), else tiles
from ``NETGIS_TILES_URL`` (empty: no base map, the dataset's streets if any). Every
page carries a Content-Security-Policy (:mod:`maps.csp`), as a header and in the page.

Pages are cached per data version and normalised parameters (the order and
repetition of ids do not matter), with a strong ETag: a request whose
``If-None-Match`` names it gets a 304 and no body. An anonymous client's request
that would render a page not kept, other than a kind's page at the server's
defaults, costs it a token of the limit on new work (429 when none is left).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import HTMLResponse

from netgis.api.deps import MIN_VERSION, BasemapPageDep, ServicesDep, SettingsDep
from netgis.api.errors import problem_responses
from netgis.api.params import BboxParam, DropParam, parse_bbox
from netgis.api.services import MapPage
from netgis.errors import ParameterError, StorageError, ValidationError
from netgis.schema import DEFAULT_CRITICAL_TOP

if TYPE_CHECKING:
    from netgis.api.services import Services
    from netgis.api.settings import Settings
    from netgis.maps.basemap import Basemap

router = APIRouter(prefix="/maps", tags=["Maps"], dependencies=[MIN_VERSION])

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

FailParam = Annotated[list[str] | None, Query(
    description="Ids failed together, drawn as a scenario overlay: repeat the parameter "
                "and/or separate ids by commas; every one counts.")]
TopParam = Annotated[int, Query(
    ge=1, le=100_000, description="How many of the worst spans, and of the worst nodes, "
                                  "to draw by impact (the page has a control for it).")]
IfNoneMatch = Annotated[str | None, Header(include_in_schema=False)]


def _ids(values: list[str] | None) -> tuple[str, ...]:
    """Every id of a repeated, comma-separated parameter, once each, sorted (the key of a
    scenario: the order and repetition of ids do not change it)."""
    return tuple(sorted({t.strip() for v in values or () for t in v.split(",") if t.strip()}))


_HTML_PAGE: dict[int | str, dict[str, Any]] = {
    200: {"description": "An interactive map (HTML page, Leaflet served from /static).",
          "content": {"text/html": {}}},
    304: {"description": "Not modified: the page named by If-None-Match is current."},
}


def _build(kind: str, services: Services, settings: Settings, version: int, result: Any,
           area_id: str | None, box: tuple[float, float, float, float] | None,
           failed: tuple[tuple[str, ...], ...], top: int, drop_m: float | None,
           strands: bool = False, basemap: Basemap | None = None) -> MapPage:
    """Render the ``kind`` page of ``result`` (with a scenario overlay when given)."""
    from netgis.engine.analysis import scenario
    from netgis.maps.csp import secure_html
    from netgis.maps.kinds import build_map

    extra: dict[str, Any] = {}
    if kind == "criticality":
        extra.update(top=top, top_control=True)
        if any(failed):
            extra["scenario"] = scenario(result, spans=list(failed[0]), nodes=list(failed[1]),
                                         ducts=list(failed[2]))
    if kind == "gaps":
        # the same cached plan GET /analysis/gaps?view=clusters ranks
        extra["ranking"] = services.plan(version, result).clusters
    if strands:
        # the strand plant is there: premises trace to their OLT port, nodes show splices
        extra.update(trace_url="/trace", splices_url="/maps/splices/")
    # layers above the page's feature limit are drawn from /tiles, at the same drop length
    query = f"?{urlencode({'drop_m': drop_m})}" if drop_m is not None else ""
    try:
        m = build_map(kind, result, bbox=box, area_id=area_id, basemap=basemap,
                      names=services.names(version, result.dataset),
                      tiles_url=settings.tiles_url or None, base_url="/static",
                      vector_tiles=f"/tiles/{{layer}}/{{z}}/{{x}}/{{y}}.mvt{query}", **extra)
    except ValidationError as exc:
        # a box with no area is a bad query parameter (400), as parse_bbox's checks
        if any(p.field == "bbox" for p in exc.problems):
            raise ParameterError(exc.problems, f"invalid bbox: {exc}") from None
        raise
    # the policy twice: the header governs this response, the <meta> a saved copy
    return MapPage.of(*secure_html(m))


def _has_strands(services: Services, version: int) -> bool:
    """Whether data version ``version`` has strand layers (the coverage page then traces
    premises to their OLT port); False while the database cannot say (the page is served
    from the live analysis meanwhile, without the trace)."""
    try:
        return services.strand_states.present(version)
    except StorageError:
        return False


def _render(kind: str, services: Services, settings: Settings, area_id: str | None,
            bbox: str | None, drop_m: float | None, if_none_match: str | None,
            failed: tuple[tuple[str, ...], ...] = ((), (), ()),
            top: int = DEFAULT_CRITICAL_TOP, basemap: Basemap | None = None) -> Response:
    """The ``kind`` page of the cached analysis, from the page cache when it is there."""
    box = parse_bbox(bbox)
    version, result = services.analysis(drop_m)
    key: tuple[Any, ...] = (version, kind, float(result.drop_m), area_id, box, failed,
                            top if kind == "criticality" else None)
    strands = kind == "coverage" and _has_strands(services, version)
    if strands:
        key = (*key, "strands")
    # the page of a kind at the server's defaults is the same for every client: rendering
    # it is never charged; any other page not kept is (api.services.Services.admit)
    shared = (area_id is None and box is None and not any(failed)
              and (kind != "criticality" or top == DEFAULT_CRITICAL_TOP)
              and float(result.drop_m) == float(settings.drop_m))
    page = services.map_page(key, lambda: _build(kind, services, settings, version, result,
                                                 area_id, box, failed, top, drop_m, strands,
                                                 basemap),
                             shared=shared)
    # no-cache: a browser may keep the page but asks again (with If-None-Match) every time
    headers = {"ETag": page.etag, "Cache-Control": "no-cache"}
    if page.matches(if_none_match):
        return Response(status_code=304, headers=headers)
    return HTMLResponse(page.body, headers={**headers, "Content-Security-Policy": page.policy})


def _page(kind: str) -> Callable[..., Response]:
    """The handler of ``/maps/{kind}``; only the criticality page takes a scenario and top."""

    def handler(services: ServicesDep, settings: SettingsDep, basemap: BasemapPageDep,
                area_id: AreaParam = None, bbox: BboxParam = None,
                drop_m: DropParam = None, if_none_match: IfNoneMatch = None) -> Response:
        return _render(kind, services, settings, area_id, bbox, drop_m, if_none_match,
                       basemap=basemap)

    def criticality(services: ServicesDep, settings: SettingsDep, basemap: BasemapPageDep,
                    area_id: AreaParam = None, bbox: BboxParam = None,
                    drop_m: DropParam = None, cut_spans: FailParam = None,
                    fail_nodes: FailParam = None, fail_ducts: FailParam = None,
                    top: TopParam = DEFAULT_CRITICAL_TOP,
                    if_none_match: IfNoneMatch = None) -> Response:
        failed = (_ids(cut_spans), _ids(fail_nodes), _ids(fail_ducts))
        return _render(kind, services, settings, area_id, bbox, drop_m, if_none_match,
                       failed, top, basemap)

    chosen = criticality if kind == "criticality" else handler
    chosen.__name__ = f"{kind}_map"
    chosen.__doc__ = PAGES[kind][1]
    return chosen


for _kind, (_summary, _) in PAGES.items():
    router.add_api_route(
        f"/{_kind}", _page(_kind), methods=["GET"], response_class=HTMLResponse,
        summary=_summary, responses={**_HTML_PAGE, **problem_responses(400, 404, 422)},
    )
