"""``GET /metrics``: the coverage KPIs and the service's own request metrics for Prometheus.

Request counts and latencies are kept by prometheus_client in a registry of
the application (not the process-wide default), so two apps in one process,
as in the tests, count separately. Requests are labelled with the route
template (``/collections/{layer}/items``), never the raw path, so the number
of series stays bounded.
"""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from netgis.api.deps import MIN_VERSION, ServicesDep
from netgis.errors import NetgisError
from netgis.products.feeds import prometheus_text

router = APIRouter(tags=["KPIs"], dependencies=[MIN_VERSION])
log = logging.getLogger("netgis.api.metrics")

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Latency buckets in seconds; analyses of large plant take tens of seconds.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class ServiceMetrics:
    """The request metrics of one application, in their own registry."""

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


def _route_label(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class RequestMetrics:
    """ASGI middleware counting every HTTP request and timing it to its last body byte."""

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


def install(app: FastAPI) -> None:
    """Register ``/metrics`` and the request-metrics middleware on ``app``."""
    metrics = ServiceMetrics()
    app.state.service_metrics = metrics
    app.include_router(router)
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
    network's unlabelled; at the server's drop length), the data version, and request
    counts and latencies of this process. Names: docs/feeds.md."""
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
