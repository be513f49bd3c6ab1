"""The FastAPI application factory.

Examples
--------
>>> from netgis.api.app import create_app
>>> from netgis.api.settings import Settings
>>> app = create_app(Settings(database_url="sqlite:///:memory:"))
>>> app.title
'netgis'
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from netgis.api.deps import PUBLIC_PATHS, identify_client, read_access
from netgis.api.errors import ProblemDetail, install_error_handlers
from netgis.api.geojson import FeatureCollectionIn, FeatureIn, FeaturePatch
from netgis.api.html import STATIC_DIR as API_STATIC_DIR
from netgis.api.html import STATIC_URL as API_STATIC_URL
from netgis.api.limits import BodyLimit
from netgis.api.live import LiveVersions
from netgis.api.openapi import install_openapi
from netgis.api.params import reject_unknown_query
from netgis.api.plan_states import PlanStates
from netgis.api.request_log import RequestLog
from netgis.api.routers import analysis, audit, collections, docs, health, imports, landing
from netgis.api.routers import basemap as base_map
from netgis.api.routers import bead as bead_router
from netgis.api.routers import dashboard as dashboard_pages
from netgis.api.routers import gaps as gaps_router
from netgis.api.routers import kpis as kpi_feeds
from netgis.api.routers import maps as map_pages
from netgis.api.routers import metrics as service_metrics
from netgis.api.routers import plans as plan_routes
from netgis.api.routers import portal as citizen_portal
from netgis.api.routers import search as address_search
from netgis.api.routers import strands as strand_plant
from netgis.api.routers import tiles as vector_tiles
from netgis.api.routers.plans import BuildsIn, PlanCreate, SwitchOnIn
from netgis.api.routers.strands import CutIn
from netgis.api.scenarios import ScenarioIn
from netgis.api.security import PublicOrigin, SecurityHeaders
from netgis.api.services import Services
from netgis.api.settings import Settings
from netgis.api.strand_features import BODY_SCHEMAS as STRAND_BODY_SCHEMAS
from netgis.api.transport import Transport
from netgis.errors import StorageError
from netgis.maps.assets import static_dir
from netgis.maps.portal import load_messages
from netgis.storage import Repository

#: Seconds between attempts to reach a database that was down when the server started.
PREPARE_RETRY_S = 2.0
log = logging.getLogger("netgis.api")


def _prepare_database(repo: Repository, *, create: bool, first: bool) -> bool:
    """Create the file if allowed and bring the schema up to date; False if unavailable."""
    try:
        if create:
            repo.create_file()
        repo.init()
    except StorageError as exc:
        # the first failure is news; the retries every few seconds are not
        log.log(logging.WARNING if first else logging.DEBUG,
                "database not available (%s): answering 503 until it is", exc)
        return False
    if not first:
        log.warning("database available again")
    return True


async def _prepare_when_back(repo: Repository, services: Services) -> None:
    """Retry until the database can be prepared (it came back or its file appeared)."""
    # never creates a file: that is for the start only (NETGIS_CREATE_DATABASE)
    while not await run_in_threadpool(_prepare_database, repo, create=False, first=False):
        await asyncio.sleep(PREPARE_RETRY_S)
    services.live.start()


#: Threads that may wait for a data version at once (per server process).
WAIT_THREADS = 256


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API for ``settings`` (default: read from the ``NETGIS_`` environment).

    The database is opened (and its schema brought up to date) when the
    application starts, not when it is built. A database that is down then
    does not stop the start: requests answer 503 and the server retries every
    :data:`PREPARE_RETRY_S` seconds until it can prepare the database.
    """
    settings = settings or Settings()
    services = Services(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # the live analysis waits for the interpreter lock after every call that freed it
        sys.setswitchinterval(settings.thread_switch_ms / 1000.0)
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.request_threads
        # waits for a data version (min_version, a write until it shows) take tokens of
        # their own: they never hold a request thread's
        services.waiters = anyio.CapacityLimiter(WAIT_THREADS)
        # upload folders a killed server left behind (never those of a running one)
        await asyncio.to_thread(imports.sweep_abandoned_uploads)
        with services.opened() as repo:
            # also on the state, for tools and tests that load data directly
            app.state.repo = repo
            retry: asyncio.Task[None] | None = None
            if _prepare_database(repo, create=settings.create_database, first=True):
                # the live analysis starts on a database that is there
                services.live.start()
            else:
                # start anyway: requests answer 503 until the database is there
                retry = asyncio.create_task(_prepare_when_back(repo, services))
            try:
                yield
            finally:
                if retry is not None:
                    retry.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await retry

    app = FastAPI(
        title=settings.title,
        version="0.1.0",
        description=(
            "Fiber plant as OGC API - Features (nodes, spans, premises, areas), coverage, "
            "serviceability, criticality and failure scenarios. Errors are "
            "application/problem+json."
        ),
        lifespan=lifespan,
        # /docs and /redoc come from api.routers.docs: the vendored assets, no CDN
        docs_url=None, redoc_url=None,
        # every route: unknown query parameters are a 400; who asks, for the analysis limits;
        # NETGIS_OPEN_READS=false: every route but PUBLIC_PATHS needs a key with the read scope
        dependencies=[Depends(reject_unknown_query), Depends(identify_client),
                      *read_access(settings)],
    )
    app.state.settings = settings
    app.state.services = services
    # checked now: a city's translation with a missing or misspelt key stops the start
    app.state.portal_messages = load_messages(settings.portal_messages)
    install_error_handlers(app)
    for module in (landing, collections, imports, analysis, health, audit):
        app.include_router(module.router)
    app.include_router(gaps_router.router)
    app.include_router(bead_router.router)
    app.include_router(bead_router.pages)
    app.include_router(map_pages.router)
    app.include_router(dashboard_pages.router)
    app.include_router(address_search.router)
    app.include_router(citizen_portal.router)
    app.include_router(vector_tiles.router)
    # opened now: a base-map file that cannot be served stops the start
    base_map.install(app, settings)
    app.include_router(strand_plant.router)
    app.include_router(plan_routes.router)
    app.state.plan_states = PlanStates(services)
    app.include_router(docs.router)
    # the HTML pages' own script and style; mounted first, as /static would match it too
    app.mount(API_STATIC_URL, StaticFiles(directory=API_STATIC_DIR), name="api-static")
    # the maps' Leaflet files: every page loads its scripts from this server, no CDN
    app.mount("/static", StaticFiles(directory=static_dir()), name="static")
    # innermost: the metrics and snapshot middlewares see its 413 like any other answer
    app.add_middleware(BodyLimit, limit_of=lambda scope: body_limit(settings, scope),
                       read_timeout_s=settings.body_timeout_s)
    # metrics middleware inside the version one: a write's latency excludes the wait until
    # the live analysis reflects it
    service_metrics.install(app)
    kpi_feeds.install(app)
    app.add_middleware(LiveVersions, services=services)
    install_openapi(app, extra_schemas={
        "ProblemDetail": ProblemDetail, "FeatureIn": FeatureIn,
        "FeatureCollectionIn": FeatureCollectionIn, "FeaturePatch": FeaturePatch,
        "ScenarioIn": ScenarioIn, "PlanCreate": PlanCreate, "BuildsIn": BuildsIn,
        "SwitchOnIn": SwitchOnIn, "CutIn": CutIn,
        **STRAND_BODY_SCHEMAS,
    }, public_paths=PUBLIC_PATHS, item_limits=(settings.default_limit, settings.max_limit))
    # the request id (X-Request-ID) of every answer; with JSON logs, a line per request
    # (inside PublicOrigin, which hands on a copy of the scope: this one sees the route)
    app.add_middleware(RequestLog, log_requests=settings.log_format == "json")
    # outermost: every answer gets the headers, and nothing sees the client's Host header
    app.add_middleware(PublicOrigin, public_url=settings.public_url)
    app.add_middleware(SecurityHeaders)
    # before everything: the client, scheme and host a trusted reverse proxy forwards, and
    # Strict-Transport-Security over https (api/transport.py)
    app.add_middleware(Transport, trusted=settings.forwarded_allow_ips,
                       hsts_max_age=settings.hsts_max_age)
    build_route_models(app)
    return app


def build_route_models(app: FastAPI) -> None:
    """Build the parameter models of every route now, not when a request first matches it.

    FastAPI builds the routes of an included router (a pydantic model per parameter) on
    the first request, inside ``warnings.catch_warnings`` to hush a pydantic warning about
    the ``alias`` it gives every parameter. That is not thread safe: another thread leaving
    its own ``catch_warnings`` meanwhile brings the warning back, and under ``-W error``
    the request answered 500. Built here, in the thread that makes the app, no request
    builds a model.
    """
    for _ in iter_route_contexts(app.router.routes):
        pass


def takes_upload(route: APIRoute) -> bool:
    """Whether ``route`` takes a multipart file upload (so its documented request body says)."""
    body = (route.openapi_extra or {}).get("requestBody", {})
    return "multipart/form-data" in body.get("content", {})


def body_limit(settings: Settings, scope: Scope) -> int:
    """The largest request body for ``scope``'s route (put there by the router): uploads
    ``max_upload_bytes``, any other body (JSON) ``max_body_bytes``."""
    route = scope.get("route")
    if isinstance(route, APIRoute) and takes_upload(route):
        return settings.max_upload_bytes
    return settings.max_body_bytes
