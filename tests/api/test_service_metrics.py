"""The service's own metrics on /metrics (api/routers/metrics.py) over a real port: requests by
route template and status, analyses and their durations, cache hits, the database pool,
writes and write conflicts; the scrape passes promtool; and the Grafana dashboard
(docs/grafana/netgis-dashboard.json) asks only for metrics the scrape has."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from netgis.api.app import create_app
from netgis.api.routers.metrics import write_of
from netgis.io import read_dataset
from netgis.storage import Repository
from tests.api.helpers import API_KEY, LiveServer, make_settings
from tests.helpers import EXAMPLES_DIR

KEY = {"X-API-Key": API_KEY}
DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "netgis-dashboard.json"


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample of a scrape by its name (``netgis_writes_total``, ``..._bucket``)."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
    return out


def value(found: dict[str, list[tuple[dict[str, str], float]]], name: str,
          **labels: str) -> float:
    hits = [v for got, v in found[name] if all(got.get(k) == w for k, w in labels.items())]
    assert len(hits) == 1, (name, labels, found.get(name))
    return hits[0]


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The web-mercator tile holding a point."""
    n = 2 ** z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return int((lon + 180) / 360 * n), int(y)


def promtool_check(text: str) -> None:
    """Prometheus's own linter finds nothing to say about ``text``."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: run scripts/install-system.sh (Debian: prometheus)")
    lint = subprocess.run([promtool, "check", "metrics"], input=text, text=True,
                          capture_output=True, timeout=60)
    assert lint.returncode == 0 and lint.stdout + lint.stderr == "", lint.stdout + lint.stderr


def test_writes_are_told_by_route_template_and_method() -> None:
    assert write_of("PUT", "/collections/nodes/items/{featureId}") == ("nodes", "replace")
    assert write_of("DELETE", "/collections/spans/items/{featureId}") == ("spans", "delete")
    assert write_of("POST", "/import") == ("dataset", "import")
    assert write_of("POST", "/plans/{name}/merge") == ("plans", "merge")
    # reads and other posts are no writes
    assert write_of("GET", "/collections/nodes/items/{featureId}") is None
    assert write_of("POST", "/scenarios") is None
    assert write_of("POST", "/plans/{name}/collections/nodes/items") is None


def test_service_metrics_of_a_running_server(db_url: str) -> None:
    # no stored results: a repeated request is answered by the analysis cache, not (once
    # the background store is done) by the database
    app = create_app(make_settings(db_url, stored_results=False))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=120) as http:
        # before anything happened, every series a dashboard draws is there at 0
        empty = samples(http.get("/metrics").text)
        assert value(empty, "netgis_writes_total", layer="premises", action="update") == 0
        assert value(empty, "netgis_write_conflicts_total", layer="premises",
                     status="412") == 0
        assert value(empty, "netgis_analyses_total", trigger="live", kind="premises") == 0
        assert value(empty, "netgis_cache_hits_total", cache="tiles") == 0
        repo: Repository = app.state.repo
        repo.load_dataset(read_dataset(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg"))
        assert http.get("/kpis").status_code == 200
        # another drop length: an analysis on request, the second time from the cache
        for _ in range(2):
            assert http.get("/kpis", params={"drop_m": 40}).status_code == 200
        end = http.get("/collections/premises/items/p_end").json()
        lon, lat = end["geometry"]["coordinates"]
        x, y = tile_of(lon, lat, 16)
        tiles = [http.get(f"/tiles/premises/16/{x}/{y}.mvt") for _ in range(2)]
        assert [t.status_code for t in tiles] == [200, 200]
        assert http.get("/collections/premises/items/nope").status_code == 404
        units = int(end["properties"]["units"])
        done = http.patch("/collections/premises/items/p_end", headers=KEY,
                          json={"properties": {"units": units + 1}})
        assert done.status_code == 200, done.text
        stale = http.patch("/collections/premises/items/p_end",
                           headers={**KEY, "If-Match": '"0"'},
                           json={"properties": {"units": units + 2}})
        assert stale.status_code == 412, stale.text
        scrape = http.get("/metrics")
    assert scrape.status_code == 200
    found = samples(scrape.text)
    requests = "netgis_http_requests_total"
    assert value(found, requests, method="GET", route="/kpis", status="200") == 3
    assert value(found, requests, method="GET",
                 route="/collections/premises/items/{featureId}", status="404") == 1
    assert value(found, requests, method="PATCH",
                 route="/collections/premises/items/{featureId}", status="412") == 1
    assert value(found, requests, method="GET", route="/tiles/{layer}/{z}/{x}/{y}.mvt",
                 status="200") == 2
    assert not [labels for labels, _ in found[requests] if "p_end" in labels["route"]]
    # the load was analysed from scratch by the live analysis, the edit applied to it
    assert value(found, "netgis_analyses_total", trigger="live", kind="full") >= 1
    edits = sum(value(found, "netgis_analyses_total", trigger="live", kind=kind)
                for kind in ("network", "areas", "premises"))
    assert edits >= 1
    assert value(found, "netgis_analyses_total", trigger="request", kind="full") == 1
    duration = "netgis_analysis_duration_seconds"
    assert value(found, duration + "_count", trigger="request", kind="full") == 1
    assert value(found, duration + "_sum", trigger="request", kind="full") > 0
    assert value(found, duration + "_bucket", trigger="live", kind="full", le="+Inf") >= 1
    # repeated requests were answered from the caches
    for cache in ("analysis", "tiles"):
        assert value(found, "netgis_cache_misses_total", cache=cache) >= 1
        assert value(found, "netgis_cache_hits_total", cache=cache) >= 1
        assert value(found, "netgis_cache_entries", cache=cache) >= 1
    assert value(found, "netgis_tile_cache_bytes") > 0
    # the pool as it is at the scrape: this request holds no connection when it is read
    assert value(found, "netgis_db_pool_size") >= 1
    assert value(found, "netgis_db_pool_checked_out") >= 0
    assert value(found, "netgis_db_pool_checked_in") >= 1
    assert value(found, "netgis_writes_total", layer="premises", action="update") == 1
    assert value(found, "netgis_writes_total", layer="nodes", action="create") == 0
    assert value(found, "netgis_write_conflicts_total", layer="premises", status="412") == 1
    assert value(found, "netgis_write_conflicts_total", layer="premises", status="409") == 0
    # Prometheus's own linter finds nothing to say about the whole scrape
    promtool_check(scrape.text)


# ------------------------------------------------------------------------- the dashboard

#: PromQL words that are not metric names.
_KEYWORDS = frozenset({"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
                       "group_right", "bool", "offset", "inf", "nan"})


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (functions, labels, keywords left out).

    >>> sorted(metric_names('sum by (le) (rate(a_b{x="y z"}[5m])) / on(job) c'))
    ['a_b', 'c']
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings (label values)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges ($__rate_interval, 5m)
    # label lists of aggregations and vector matching
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for found in re.finditer(r"(?<![\w:])[A-Za-z_:][\w:]*(?![\w:])(?!\s*\()", text):
        word = found.group(0)
        before = text[found.start() - 1] if found.start() else " "
        if word.lower() in _KEYWORDS or before.isdigit() or before in ".$":
            continue
        names.add(word)
    return names


def dashboard_exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) of every query of every panel, rows' panels included."""
    out = []
    panels = list(dashboard["panels"])
    while panels:
        panel = panels.pop(0)
        panels += panel.get("panels", [])
        out += [(panel["title"], t["expr"]) for t in panel.get("targets", [])]
    return out


@pytest.mark.parametrize("db_url", ["spatialite"], indirect=True)
def test_the_dashboard_asks_only_for_metrics_the_scrape_has(client: TestClient,
                                                            tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = dashboard_exprs(dashboard)
    assert len(exprs) >= 15
    client.get("/kpis")
    exposed = set(samples(client.get("/metrics").text))
    wanted: dict[str, set[str]] = {}
    for title, expr in exprs:
        names = metric_names(expr)
        assert names, (title, expr)
        for name in names:
            wanted.setdefault(name, set()).add(title)
    missing = {name: titles for name, titles in wanted.items() if name not in exposed}
    assert not missing, missing
    # every part of the brief has a panel: requests, errors, latency, analyses, caches,
    # the pool, writes, conflicts and the coverage KPIs
    for name in ("netgis_http_requests_total", "netgis_http_request_duration_seconds_bucket",
                 "netgis_analyses_total", "netgis_analysis_duration_seconds_bucket",
                 "netgis_cache_hits_total", "netgis_cache_misses_total",
                 "netgis_db_pool_checked_out", "netgis_writes_total",
                 "netgis_write_conflicts_total", "netgis_coverage_ratio"):
        assert name in wanted, name
    assert {q for _, e in exprs for q in re.findall(r"histogram_quantile\((0\.\d+)", e)} >= \
        {"0.5", "0.95", "0.99"}
    # an importable dashboard: its data source is asked for on import, panel ids are unique
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    # the expressions are valid PromQL: promtool parses them as recording rules
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"netgis:dashboard:{i}", "expr": expr.replace("$__rate_interval", "5m")
         .replace("$job", ".*")} for i, (_, expr) in enumerate(exprs)]}]}
    rules_file = tmp_path / "dashboard-rules.yml"
    rules_file.write_text(json.dumps(rules))  # JSON is YAML
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is missing: run scripts/install-system.sh"
    check = subprocess.run([promtool, "check", "rules", str(rules_file)], text=True,
                           capture_output=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
