"""The dashboard and the report name spans and builds by street and area ("Lindenstraße,
Nordend: span s05"), the id still shown; a street name holding markup is shown as text,
in the HTML tables, the chart labels and the map popups, never run."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import pytest

from netgis.engine.analysis import analyze
from netgis.generate import generate_city
from netgis.maps.assets import static_dir
from netgis.maps.csp import secure_html
from netgis.maps.dashboard import dashboard_html, report_html
from netgis.maps.kinds import build_map
from netgis.products.names import place_names
from netgis.products.progress import Dashboard, build_dashboard, ranked_clusters
from tests.maps.helpers import PageServer, dashboard_marks

#: The name given to the street of the worst single point of failure.
EVIL = "<script>alert(1)</script>weg"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;weg"


@dataclass(frozen=True)
class Named:
    board: Dashboard
    span_id: str
    area: str
    analysis: Any
    clusters: Any


@pytest.fixture(scope="module")
def named() -> Named:
    """The dashboard of a generated city (300 premises, streets, areas) whose street of the
    worst span was renamed to markup."""
    city = generate_city(premises=300, seed=1)
    result = analyze(city)
    clusters = ranked_clusters(result)
    first = build_dashboard(result, as_of=date(2026, 1, 1), clusters=clusters)
    span_id = next(s["id"] for s in first.spofs if s["kind"] == "span")
    street, area = place_names(city).spans.loc[span_id, ["street", "area"]]
    assert street and area
    assert city.streets is not None
    streets = city.streets.copy()
    streets.loc[streets["name"] == street, "name"] = EVIL
    result = replace(result, dataset=replace(city, streets=streets))
    board = build_dashboard(result, as_of=date(2026, 1, 1), clusters=clusters)
    return Named(board, span_id, area, result, clusters)


def _table(html: str, name: str) -> str:
    found = re.search(rf'<table id="table-{name}">(.*?)</table>', html, re.S)
    assert found is not None, name
    return found.group(1)


def test_single_points_of_failure_and_builds_carry_their_place(named: Named) -> None:
    spof = next(s for s in named.board.spofs if s["id"] == named.span_id)
    assert spof["place"] == f"{EVIL}, {named.area}"
    names = place_names(named.analysis.dataset)
    for s in named.board.spofs:
        assert s.get("place") == names.place(s["kind"], s["id"])
    assert named.board.builds and all(b.get("place") for b in named.board.builds)


@pytest.mark.parametrize("render", [report_html, dashboard_html])
def test_pages_show_street_area_and_id_as_text(named: Named, render: Any) -> None:
    html = render(named.board)
    assert "<script>alert" not in html
    spof = _table(html, "spof")
    assert f"<th scope=\"row\">{ESCAPED}, {named.area}: span {named.span_id}</th>" in spof
    builds = _table(html, "builds")
    for b in named.board.builds:
        place = b["place"].replace("<", "&lt;").replace(">", "&gt;")
        assert f'<td class="text">{place}: {b["cluster_id"]}</td>' in builds
    if render is dashboard_html:
        block = re.search(r'<script type="application/json" id="netgis-charts">(.*?)</script>',
                          html, re.S)
        assert block is not None and "\\u003cscript\\u003ealert(1)" in block.group(1)


def test_map_popups_name_spans_and_builds(named: Named) -> None:
    html, _ = secure_html(build_map("gaps", named.analysis, ranking=named.clusters,
                                    tiles_url=None))
    for b in named.board.builds:   # the top builds, each a ranked cluster on the map
        assert f'"place": {_js(b["place"])}' in html
    html, _ = secure_html(build_map("criticality", named.analysis, tiles_url=None))
    assert "<script>alert" not in html and '"street, area"' in html
    assert f'"place": {_js(EVIL + ", " + named.area)}' in html


def _js(text: str) -> str:
    """``text`` as a JSON string the way the map pages embed it (markup as escapes)."""
    return json.dumps(text).replace("<", "\\u003c").replace(
        ">", "\\u003e").replace("&", "\\u0026")


@pytest.mark.browser
def test_the_dashboard_shows_the_markup_as_text_in_chromium(named: Named, server: PageServer,
                                                            browser_context: Any) -> None:
    static = server.root / "static"
    if not static.exists():
        os.symlink(static_dir(), static)
    url = server.write("names.html", dashboard_html(named.board, static_url="/static"))
    page = browser_context.new_page()
    dialogs: list[str] = []
    errors: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(url, wait_until="load")
        page.wait_for_selector("body[data-charts]", timeout=60_000)
        assert page.get_attribute("body", "data-charts") == "ready", errors
        label = f"{EVIL}, {named.area}: span {named.span_id}"
        rows = page.eval_on_selector_all("#table-spof th[scope=row]",
                                         "els => els.map(e => e.textContent)")
        assert label in rows
        marks = dashboard_marks(page)
        assert any(m.startswith(label + ": ") for m in marks["spof"]), marks["spof"]
        assert all(m.split(": #")[0] for m in marks["builds"])
        assert page.eval_on_selector_all("#table-spof script", "els => els.length") == 0
        assert dialogs == [] and errors == []
    finally:
        page.close()
