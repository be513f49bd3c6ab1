"""``GET /metrics``: the coverage KPIs and the service's own metrics for Prometheus.

The service's metrics are kept by prometheus_client in a registry of the
application (not the process-wide default), so two apps in one process, as in
the tests, count separately. Every label takes few values: requests are
labelled with the route template (``/collections/{layer}/items``), never the
raw path; writes with the layer and action of their route. What the process
holds (cache entries, database connections) is read when scraped
(:class:`ServiceState`). Names and meanings: docs/feeds.md.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.routing import iter_route_contexts
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.pool import QueuePool
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from netgis.api.deps import MIN_VERSION, ServicesDep
from netgis.api.request_log import route_template
from netgis.api.services import CacheStats, Services
from netgis.errors import NetgisError
from netgis.products.feeds import prometheus_text

router = APIRouter(tags=["KPIs"], dependencies=[MIN_VERSION])
log = logging.getLogger("netgis.api.metrics")

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Latency buckets in seconds; analyses of large plant take tens of seconds.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
#: Analysis buckets in seconds: an edit applied to the live analysis takes milliseconds, a
#: whole city from scratch minutes.
_ANALYSIS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                     60.0, 120.0, 300.0, 600.0)
#: How an analysis was made: from scratch, or an edit applied to the live analysis by the
#: part it touched (netgis.engine.live: network, areas or premises).
ANALYSIS_KINDS = ("full", "network", "areas", "premises")
#: Answers to a write that mean it conflicts with the data: 409 (a duplicate id, a feature
#: still referred to, a plan that no longer merges), 412 (If-Match names an older version).
CONFLICT_STATUSES = ("409", "412")
_ITEMS = re.compile(r"^/collections/(?P<layer>[A-Za-z0-9_-]+)/items(?P<item>/\{featureId\})?$")
_ITEM_ACTIONS = {"PUT": "replace", "PATCH": "update", "DELETE": "delete"}
#: Writes outside /collections: route template and method -> (layer, action).
_OTHER_WRITES = {("POST", "/import"): ("dataset", "import"),
                 ("POST", "/strand-edits"): ("strands", "batch"),
                 ("POST", "/plans/{name}/merge"): ("plans", "merge")}


def write_of(method: str, route: str) -> tuple[str, str] | None:
    """The layer and action of a write to the data by its method and route template.

    Examples
    --------
    >>> write_of("PATCH", "/collections/premises/items/{featureId}")
    ('premises', 'update')
    >>> write_of("POST", "/collections/spans/items"), write_of("GET", "/collections/spans/items")
    (('spans', 'create'), None)
    """
    found = _ITEMS.match(route)
    if found is None:
        return _OTHER_WRITES.get((method, route))
    if found.group("item"):
        action = _ITEM_ACTIONS.get(method)
    else:
        action = "create" if method == "POST" else None
    return None if action is None else (found.group("layer"), action)


class ServiceMetrics:
    """The service metrics of one application, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "netgis_http_requests", "HTTP requests answered, by method, route and status.",
            ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram(
            "netgis_http_request_duration_seconds",
            "Time from request to the end of the response, by method and route.",
            ["method", "route"], buckets=_BUCKETS, registry=self.registry)
        self.in_progress = Gauge(
            "netgis_http_requests_in_progress", "HTTP requests being answered now.",
            registry=self.registry)
        self.kpis_up = Gauge(
            "netgis_kpis_up", "1 when the KPIs in this scrape are current, 0 when the stored "
            "data could not be analysed.", registry=self.registry)
        self.analyses = Counter(
            "netgis_analyses", "Analyses made by this process, by trigger (live: the server's "
            "analysis kept current edit by edit; request: other parameters, on demand) and "
            "kind (full, or the incremental network, areas, premises).",
            ["trigger", "kind"], registry=self.registry)
        self.analysis_duration = Histogram(
            "netgis_analysis_duration_seconds", "Time an analysis took, by trigger and kind.",
            ["trigger", "kind"], buckets=_ANALYSIS_BUCKETS, registry=self.registry)
        self.writes = Counter(
            "netgis_writes", "Writes to the data answered with success, by layer and action.",
            ["layer", "action"], registry=self.registry)
        self.write_conflicts = Counter(
            "netgis_write_conflicts", "Writes refused as conflicting with the data (409) or "
            "with an older version than the current one (412), by layer and status.",
            ["layer", "status"], registry=self.registry)
        for kind in ANALYSIS_KINDS:
            self._start_analyses("live", kind)
        self._start_analyses("request", "full")
        #: (method, route template) -> (layer, action) of every write route of the app
        self.write_routes: dict[tuple[str, str], tuple[str, str]] = {}

    def _start_analyses(self, trigger: str, kind: str) -> None:
        # a series that exists from the start: a dashboard shows 0, not "no data"
        self.analyses.labels(trigger, kind)
        self.analysis_duration.labels(trigger, kind)

    def analysed(self, trigger: str, kind: str, seconds: float) -> None:
        """Count an analysis and its duration."""
        kind = kind if kind in ANALYSIS_KINDS else "full"
        self.analyses.labels(trigger, kind).inc()
        self.analysis_duration.labels(trigger, kind).observe(seconds)

    def know_writes(self, routes: Sequence[BaseRoute]) -> None:
        """Learn the write routes of an app (its routers' included) and start their series
        at 0."""
        for route in iter_route_contexts(routes):
            path = route.path
            if path is None or not getattr(route, "include_in_schema", True):
                continue  # the result collections' read-only answers (405) are no writes
            for method in route.methods or ():
                found = write_of(method, path)
                if found is not None:
                    self.write_routes[method, path] = found
        for layer, action in self.write_routes.values():
            self.writes.labels(layer, action)
            for status in CONFLICT_STATUSES:
                self.write_conflicts.labels(layer, status)

    def answered(self, method: str, route: str, status: int) -> None:
        """Count a write or a write conflict, when the request was one."""
        found = self.write_routes.get((method, route))
        if found is None:
            return
        if 200 <= status < 300:
            self.writes.labels(*found).inc()
        elif str(status) in CONFLICT_STATUSES:
            self.write_conflicts.labels(found[0], str(status)).inc()


class ServiceState(Collector):
    """What the application holds, read at each scrape: its caches and its database pool."""

    def __init__(self, app: FastAPI, services: Services) -> None:
        self.app = app
        self.services = services

    def caches(self) -> dict[str, CacheStats]:
        """The statistics of every cache by its label."""
        services = self.services
        return {"analysis": services.analyses.stats(), "tiles": services.tiles.stats(),
                "pages": services.pages.stats(), "plans": services.plans.stats()}

    def collect(self) -> Iterator[Metric]:
        """The cache and pool metrics as they are now."""
        hits = CounterMetricFamily("netgis_cache_hits", "Lookups answered from a cache "
                                   "(or from a computation under way), by cache.",
                                   labels=["cache"])
        misses = CounterMetricFamily("netgis_cache_misses", "Lookups that had to compute "
                                     "(or read) the value, by cache.", labels=["cache"])
        entries = GaugeMetricFamily("netgis_cache_entries", "Values a cache holds now.",
                                    labels=["cache"])
        for name, stats in self.caches().items():
            hits.add_metric([name], stats.hits)
            misses.add_metric([name], stats.misses)
            entries.add_metric([name], stats.entries)
        yield from (hits, misses, entries)
        yield GaugeMetricFamily("netgis_tile_cache_bytes", "Bytes of encoded vector tiles "
                                "kept.", value=self.services.tiles.size_bytes)
        yield from self.pool()

    def pool(self) -> Iterator[Metric]:
        """The database connection pool's gauges (none before the database is opened, or
        for a pool that does not count, as SQLite in memory's)."""
        repo = getattr(self.app.state, "repo", None)
        pool = getattr(getattr(repo, "engine", None), "pool", None)
        if not isinstance(pool, QueuePool):
            return
        size = pool.size()
        yield GaugeMetricFamily("netgis_db_pool_size", "Connections the database pool keeps "
                                "open.", value=size)
        yield GaugeMetricFamily("netgis_db_pool_max_overflow", "Connections the pool may open "
                                "beyond its size.",
                                value=max(0, int(getattr(pool, "_max_overflow", 0))))
        yield GaugeMetricFamily("netgis_db_pool_checked_out", "Connections in use now.",
                                value=pool.checkedout())
        yield GaugeMetricFamily("netgis_db_pool_checked_in", "Open connections idle in the "
                                "pool now.", value=pool.checkedin())
        yield GaugeMetricFamily("netgis_db_pool_overflow", "Connections open now beyond the "
                                "pool's size.", value=max(0, pool.overflow()))


def _route_label(scope: Scope) -> str:
    return route_template(scope) or "unmatched"


class RequestMetrics:
    """ASGI middleware counting every HTTP request (and write) and timing it to its last
    body byte."""

    def __init__(self, app: ASGIApp, *, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the request, counting it by route and status and timing it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def remember_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        self.metrics.in_progress.inc()
        try:
            await self.app(scope, receive, remember_status)
        finally:
            self.metrics.in_progress.dec()
            method = scope["method"] if scope["method"] in _METHODS else "other"
            route = _route_label(scope)
            self.metrics.requests.labels(method, route, str(status[0])).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
            self.metrics.answered(method, route, status[0])


def install(app: FastAPI) -> None:
    """Register ``/metrics``, the request-metrics middleware and the hooks counting analyses
    on ``app`` (made by :func:`api.app.create_app`, its services on its state)."""
    metrics = ServiceMetrics()
    services: Services = app.state.services
    app.state.service_metrics = metrics
    app.include_router(router)
    # every route is there by now (create_app installs this after the routers)
    metrics.know_writes(app.router.routes)
    metrics.registry.register(ServiceState(app, services))
    services.live.on_analysed = lambda kind, seconds: metrics.analysed("live", kind, seconds)
    services.analyses.on_analysed = lambda seconds: metrics.analysed("request", "full", seconds)
    app.add_middleware(RequestMetrics, metrics=metrics)


def _metrics_of(app: FastAPI) -> ServiceMetrics:
    metrics: ServiceMetrics = app.state.service_metrics
    return metrics


@router.get("/metrics", summary="KPIs and service metrics in the Prometheus text format",
            response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "Prometheus text exposition format 0.0.4."}})
def metrics_feed(request: Request, services: ServicesDep) -> Response:
    """Every KPI as a gauge in base units (``netgis_coverage_ratio``, ``netgis_cable_meters``,
    ``netgis_premises``; per-area samples labelled ``area_id`` and ``area_name``, the
    network's unlabelled; at the server's drop length), the data version, and this
    process's own metrics: requests and their latencies, analyses and their durations,
    caches, database pool, writes and write conflicts. Names: docs/feeds.md."""
    metrics = _metrics_of(request.app)
    kpi_text = ""
    try:
        version, kpis = services.kpi_feed()
        kpi_text = prometheus_text(kpis, data_version=version)
        metrics.kpis_up.set(1)
    except NetgisError as exc:
        # a scrape must still deliver the service metrics when the data cannot be analysed
        log.warning("KPIs left out of /metrics: %s", exc)
        metrics.kpis_up.set(0)
    body = generate_latest(metrics.registry).decode() + kpi_text
    return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)
