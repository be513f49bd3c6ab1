"""The coverage dashboard and the council report as a real server serves them: every chart
drawn in headless Chromium with the feeds' numbers (read back from the marks' ARIA labels),
no console error, no request leaving the machine, no axe-core violation; the report's
numbers equal the feeds', and its PDF has the expected pages."""

from __future__ import annotations

import copy
import io
import json
import re
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from netgis.api.app import create_app
from netgis.generate import generate_city
from netgis.maps import static_dir
from netgis.products.names import PlaceNames, place_names
from netgis.storage import Repository
from tests.api.helpers import LiveServer, make_settings
from tests.maps.helpers import dashboard_marks, run_axe

#: Past snapshots: days ago and the share of today's units passed they had.
PAST = ((300, 0.90), (200, 0.93), (100, 0.96))
CHARTS = ("coverage", "areas", "protection", "spof", "builds")


def _scaled(kpis: dict[str, Any], share: float) -> dict[str, Any]:
    """The KPIs as they were with ``share`` of today's units passed."""
    past = copy.deepcopy(kpis)
    for scope in (past["network"], *past["areas"]):
        scope["units_passed"] = int(scope["units_passed"] * share)
        if scope["coverage_pct"] is not None:
            scope["coverage_pct"] = 100.0 * scope["units_passed"] / scope["units_total"]
    return past


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[str, PlaceNames]]:
    """A live server whose database holds a generated city of 400 premises and a KPI
    history of a year (three past snapshots, then today's); and the street and area of
    the plant the database holds."""
    folder = Path(tempfile.mkdtemp(prefix="netgis-dashboard-"))
    app = create_app(make_settings(f"sqlite:///{folder / 'dash.db'}", goal_date="2028-12-31"))
    with LiveServer(app) as server:
        repo: Repository = app.state.repo
        repo.load_dataset(generate_city(premises=400, seed=1))
        with httpx.Client(base_url=server.url, timeout=120) as http:
            rows = http.get("/kpis").json()["data"]   # stores today's snapshot
        today = {"network": {k: v for k, v in rows[0].items() if k not in ("scope", "name")},
                 "areas": [{k: v for k, v in r.items() if k != "scope"} for r in rows[1:]]}
        for days, share in PAST:
            repo.save_kpi_snapshot(_scaled(today, share), data_version=0,
                                   taken_at=datetime.now(UTC) - timedelta(days=days))
        # the database keeps the city's streets: the server names by them too
        yield server.url, place_names(repo.read_dataset())


@pytest.fixture(scope="module")
def served(stack: tuple[str, PlaceNames]) -> str:
    return stack[0]


def _get(url: str, path: str, **params: str) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=120) as http:
        return http.get(path, params=params)


def _pct(value: float) -> str:
    return f"{value:.1f} %"


def _load(browser_context: Any, url: str) -> tuple[Any, list[str], list[str]]:
    page = browser_context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400
            else None)
    page.goto(url, wait_until="load")
    page.wait_for_selector("body[data-charts]", timeout=60_000)
    return page, requests, errors


@pytest.mark.browser
def test_dashboard_draws_every_chart_with_the_feeds(stack: tuple[str, PlaceNames],
                                                    browser_context: Any) -> None:
    url, names = stack
    kpis = _get(url, "/kpis").json()["data"]
    history = _get(url, "/kpis/history").json()["data"]
    goal = _get(url, "/kpis/goal").json()["data"][0]
    page, requests, errors = _load(browser_context, f"{url}/dashboard")
    try:
        assert page.get_attribute("body", "data-charts") == "ready"
        marks = dashboard_marks(page)
        assert set(marks) == set(CHARTS) and all(marks[c] for c in CHARTS), marks
        network, areas = kpis[0], kpis[1:]
        # coverage over time: every snapshot of /kpis/history, the goal and its projection
        for snap in history:
            day = datetime.fromisoformat(snap["taken_at"]).astimezone(UTC).date()
            assert f"Coverage on {day}: {_pct(snap['coverage_pct'])}" in marks["coverage"]
        assert len(history) == len(PAST) + 1
        assert f"Goal: {goal['target_pct']:g} % by {goal['target_date']}" in marks["coverage"]
        assert goal["projected_date"] is not None and goal["pace_note"] is None
        assert (f"Projected at the pace of the last {goal['pace_window_days']} days: "
                f"{_pct(goal['target_pct'])} on {goal['projected_date']}") in marks["coverage"]
        # coverage and protection per area, sorted by coverage (lowest first)
        for area in areas:
            assert f"{area['name']}: Coverage (of all units) {_pct(area['coverage_pct'])}" \
                in marks["areas"]
            assert (f"{area['name']}: Protected against a span cut (of passed) "
                    f"{_pct(area['span_protected_pct'])}") in marks["areas"]
        y_axis = page.get_attribute("#chart-areas [aria-label^='Y-axis']", "aria-label")
        order = ", ".join(a["name"] for a in sorted(areas, key=lambda a: a["coverage_pct"]))
        assert y_axis.endswith(f"values: {order}"), y_axis
        for key, what in (("span_protected_pct", "a span cut"),
                          ("node_protected_pct", "a node failure"),
                          ("duct_protected_pct", "a duct failure")):
            assert (f"Protected against {what}: {_pct(network[key])} of passed units"
                    in marks["protection"])
        # the single points of failure of the criticality feed (spans and nodes), most
        # units first, then most premises, nodes before spans, then by id
        ranked_spof = []
        for layer, kind, units in (("spans", "span", "cut_units"),
                                   ("nodes", "node", "failure_units")):
            for f in _get(url, "/analysis/criticality", layer=layer, limit="10").json()[
                    "features"]:
                p = f["properties"]
                premises = p["cut_premises"] if kind == "span" else p["failure_premises"]
                ranked_spof.append((-p[units], -premises, kind, f["id"]))
        # each named by its street and area (the database keeps streets and areas)
        want = [f"{names.label(kind, fid)}: {-u} units ({-n} premises) cut off"
                for u, n, kind, fid in sorted(ranked_spof)[:10]]
        places = [w.split(": ")[0].split(", ") for w in want]
        assert all(len(p) == 2 and p[1] in {a["name"] for a in areas} for p in places), want
        assert marks["spof"] == want

        # the top 10 builds of the gap ranking, with their cost per unit
        ranked = _get(url, "/analysis/gaps", view="clusters", limit="10").json()["features"]
        builds = [f"#{f['properties']['rank']} {f['properties']['cluster_id']}: "
                  f"{f['properties']['cost_per_unit']:,.0f} per unit" for f in ranked]
        shown = [m[m.index(": #") + 2:] for m in marks["builds"]]
        assert [m.split(", ")[0] for m in shown] == [b.split(", ")[0] for b in builds]
        assert {m[:m.index(": #")].split(", ")[-1] for m in marks["builds"]} <= {
            a["name"] for a in areas}
        # each chart links to its map, and the maps exist
        links = page.eval_on_selector_all(".maplink a", "els => els.map(e => e.href)")
        assert [urlsplit(u).path for u in links] == [
            "/maps/coverage", "/maps/areas", "/maps/criticality", "/maps/criticality",
            "/maps/gaps"]
        assert all(_get(url, urlsplit(u).path).status_code == 200 for u in set(links))
        assert errors == []
        assert {urlsplit(u).hostname for u in requests} == {"127.0.0.1"}
        assert run_axe(page, f"{url}/static/vendor/axe-core/axe.min.js") == []
    finally:
        page.close()


@pytest.mark.browser
def test_dashboard_narrowed_to_one_area(served: str,
                                        browser_context: Any) -> None:
    url = served
    kpis = _get(url, "/kpis").json()["data"]
    area = kpis[1]
    history = _get(url, "/kpis/history", area_id=area["area_id"]).json()["data"]
    page, _, errors = _load(browser_context,
                            f"{url}/dashboard?area_id={area['area_id']}")
    try:
        marks = dashboard_marks(page)
        assert [m for m in marks["areas"] if "Coverage (of all" in m] == [
            f"{area['name']}: Coverage (of all units) {_pct(area['coverage_pct'])}"]
        for snap in history:
            day = datetime.fromisoformat(snap["taken_at"]).astimezone(UTC).date()
            assert f"Coverage on {day}: {_pct(snap['coverage_pct'])}" in marks["coverage"]
        assert page.get_attribute("a[aria-current=page]", "href").endswith(area["area_id"])
        links = page.eval_on_selector_all(".maplink a", "els => els.map(e => e.href)")
        assert all(u.endswith(f"?area_id={area['area_id']}") for u in links)
        assert errors == []
    finally:
        page.close()


def test_unknown_area_and_parameters(served: str) -> None:
    url = served
    for path in ("/dashboard", "/report"):
        missing = _get(url, path, area_id="nowhere")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
        assert "nowhere" in missing.text
        assert _get(url, path, colour="red").status_code == 400
    assert _get(url, "/report", format="docx").status_code == 400


def test_dashboard_page_loads_only_vendored_scripts(served: str) -> None:
    url = served
    page = _get(url, "/dashboard")
    assert page.status_code == 200 and "script-src 'self'" in page.headers[
        "content-security-policy"]
    scripts = re.findall(r'<script src="([^"]+)"', page.text)
    assert scripts and all(s.startswith("/static/") for s in scripts)
    for src in scripts:
        assert (static_dir() / src.removeprefix("/static/")).is_file()
    for vendored in ("vega", "vega-lite", "vega-embed", "axe-core"):
        assert (static_dir() / "vendor" / vendored / "LICENSE").is_file()
    specs = json.loads(re.search(  # type: ignore[union-attr]
        r'<script type="application/json" id="netgis-charts">(.*?)</script>', page.text,
        re.S).group(1))
    assert set(specs) == set(CHARTS)


def _cells(html: str, table: str) -> list[list[str]]:
    body = re.search(rf'<table id="table-{table}">(.*?)</table>', html, re.S)
    assert body is not None, table
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body.group(1), re.S)
    return [re.findall(r'data-value="([^"]*)"', r) for r in rows if "data-value" in r]


def test_report_numbers_equal_the_feeds(served: str) -> None:
    url = served
    kpis = _get(url, "/kpis").json()["data"]
    history = _get(url, "/kpis/history").json()["data"]
    goal = _get(url, "/kpis/goal").json()["data"][0]
    got = _get(url, "/report")
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/html")
    html = got.text
    # self-contained: no script, no file or page it needs to load
    assert "<script" not in html and 'src="' not in html
    assert html.count("<svg") >= len(CHARTS)
    network = kpis[0]
    figure = re.search(r'data-kpi="coverage_pct" data-value="([^"]*)"', html)
    assert figure is not None and float(figure.group(1)) == network["coverage_pct"]
    assert [float(r[0]) for r in _cells(html, "coverage")] == \
        [h["coverage_pct"] for h in history]
    areas = _cells(html, "areas")
    assert [[float(v) for v in r] for r in areas] == [
        [a["coverage_pct"], a["units_passed"], a["units_total"], a["span_protected_pct"],
         a["node_protected_pct"], a["duct_protected_pct"]] for a in kpis[1:]]
    assert [float(r[0]) for r in _cells(html, "protection")] == [
        network["span_protected_pct"], network["node_protected_pct"],
        network["duct_protected_pct"]]
    ranked = _get(url, "/analysis/gaps", view="clusters", limit="10").json()["features"]
    assert [float(r[-1]) for r in _cells(html, "builds")] == [
        f["properties"]["cost_per_unit"] for f in ranked]
    pace = re.search(r'data-goal="pace_units_per_month" data-value="([^"]*)"', html)
    assert pace is not None and float(pace.group(1)) == goal["pace_units_per_month"]
    summary = re.search(r'<p class="summary" id="summary">(.*?)</p>', html, re.S)
    assert summary is not None
    first = history[0]
    month = datetime.fromisoformat(first["taken_at"]).strftime("%B %Y")
    assert (f"rose from {_pct(first['coverage_pct'])} to {_pct(network['coverage_pct'])} "
            f"since {month}") in summary.group(1)
    year = goal["projected_date"][:4]
    assert f"100 % is reached in {year}" in summary.group(1)


def test_report_pdf_has_the_expected_pages(served: str) -> None:
    from pypdf import PdfReader

    url = served
    network = _get(url, "/kpis").json()["data"][0]
    got = _get(url, "/report", format="pdf")
    assert got.status_code == 200 and got.headers["content-type"] == "application/pdf"
    pages = [p.extract_text() for p in PdfReader(io.BytesIO(got.content)).pages]
    assert len(pages) >= 3
    total = len(pages)
    first = pages[0]
    assert first.startswith("Coverage progress of the network")
    assert "Summary" in first and _pct(network["coverage_pct"]) in first
    assert f"page 1 of {total}" in first
    # the areas and the risks start pages of their own
    starts = {p.lstrip().splitlines()[0]: i for i, p in enumerate(pages)}
    assert starts["Coverage and protection per area"] > 0
    assert starts["Top single points of failure"] > starts["Coverage and protection per area"]
    text = "\n".join(pages)
    for title in ("Coverage over time and the goal",
                  "Passed units protected against single failures",
                  "Top builds of the gap ranking"):
        assert title in text
