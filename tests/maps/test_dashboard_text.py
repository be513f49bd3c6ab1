"""Text that ends a line in JavaScript (U+2028, U+2029) or any control character in a chart
never breaks the dashboard or the report.

An id holding U+2028 (stored before ids were refused for it) made ``/report`` answer 500
(vl-convert: "Unexpected token ILLEGAL") and the dashboard's chart fail in the browser:
Vega-Lite compiles the order of a bar chart's labels into an expression, whose parser
takes U+2028 for the end of a line inside a string. Area names are free text and may hold
anything, ``</script>`` included.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from netgis.engine.analysis import analyze
from netgis.generate import generate_city
from netgis.maps.assets import static_dir
from netgis.maps.dashboard import dashboard_html, report_html
from netgis.products.progress import Dashboard, build_dashboard, chart_specs
from tests.maps.helpers import PageServer, dashboard_marks

SEPARATORS = "\u2028\u2029\x85\x1b"
AREA_NAME = "North\u2028End </script><b>x</b>\u2029 & co"


@pytest.fixture(scope="module")
def board() -> Dashboard:
    """The dashboard of a generated city whose span ids end in a line separator (as a
    database could hold them) and whose first area's name holds separators and markup."""
    city = generate_city(premises=300, seed=1)
    spans = city.spans.copy()
    spans["span_id"] = spans["span_id"] + "\u2028x"
    areas = city.areas.copy()
    areas.loc[areas.index[0], "name"] = AREA_NAME
    result = analyze(replace(city, spans=spans, areas=areas))
    made = build_dashboard(result, as_of=date(2026, 1, 1))
    assert any("\u2028" in str(s["id"]) for s in made.spofs), made.spofs
    return made


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def test_chart_specs_hold_no_separator_or_control_character(board: Dashboard) -> None:
    strings = _strings(chart_specs(board))
    assert not [s for s in strings if any(c in s for c in SEPARATORS + "\n\r\t")]
    # the text itself is kept, its separators shown as spaces
    assert any("North End </script><b>x</b>  & co" in s for s in strings)


def test_the_report_renders_its_charts(board: Dashboard) -> None:
    html = report_html(board)
    assert html.count("<svg") >= 5
    assert "<b>x</b>" not in html and "&lt;/script&gt;" in html


def test_the_dashboard_embeds_its_charts_safely(board: Dashboard) -> None:
    html = dashboard_html(board)
    block = re.search(r'<script type="application/json" id="netgis-charts">(.*?)</script>',
                      html, re.S)
    assert block is not None
    text = block.group(1)
    assert "\u2028" not in text and "\u2029" not in text and "</" not in text
    assert json.loads(text) == chart_specs(board)


@pytest.mark.browser
def test_the_dashboard_draws_every_chart_in_chromium(board: Dashboard, server: PageServer,
                                                     browser_context: Any) -> None:
    static = server.root / "static"
    if not static.exists():
        os.symlink(static_dir(), static)
    url = server.write("separators.html", dashboard_html(board, static_url="/static"))
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        page.goto(url, wait_until="load")
        page.wait_for_selector("body[data-charts]", timeout=60_000)
        assert page.get_attribute("body", "data-charts") == "ready", errors
        marks = dashboard_marks(page)
        # the spans are named by street and area, their ids (ending in U+2028) as spaces
        assert any(": span " in m and " x: " in m for m in marks["spof"]), marks["spof"]
        assert any(m.startswith("North End </script><b>x</b>  & co: ")
                   for m in marks["areas"]), marks["areas"]
        assert errors == []
    finally:
        page.close()
