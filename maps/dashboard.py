"""The coverage dashboard page and the printable council report, as HTML.

Both show the same :class:`netgis.products.progress.Dashboard`: the summary, the key
figures, five charts (Vega-Lite specifications from :func:`netgis.products.progress.chart_specs`)
each with its data as a table, and a link to the map that shows it.

- :func:`dashboard_html` is the live page (``GET /dashboard``): the charts are drawn
  in the browser by Vega, Vega-Lite and vega-embed, served by netgis itself under
  ``/static/vendor`` (no CDN), from specifications embedded as JSON data blocks.
- :func:`report_html` is one self-contained, printable file (``netgis report``,
  ``GET /report``): the charts are SVG rendered on the server (vl-convert), no script.
  :func:`report_pdf` prints it to PDF with WeasyPrint.

Every value put into the HTML is escaped (Jinja2 autoescaping; the JSON blocks escape
``<``, so no ``</script>`` can close them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from netgis.products.progress import (
    CHART_MAPS,
    CHART_TITLES,
    PROTECTIONS,
    Dashboard,
    chart_specs,
    summary,
)

#: Vendored scripts of the live page, in load order (paths under the static directory).
DASHBOARD_JS: tuple[str, ...] = (
    "vendor/vega/build/vega.min.js",
    "vendor/vega-lite/build/vega-lite.min.js",
    "vendor/vega-embed/build/vega-embed.min.js",
    "dashboard/dashboard.js",
)

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
    trim_blocks=True, lstrip_blocks=True,
)


def _json_block(value: Any) -> Markup:
    """JSON safe inside ``<script type="application/json">`` (``<`` escaped as ``\\u003c``,
    so no ``</script>`` ends it; U+2028 and U+2029, which end a line in older JavaScript,
    as ``\\u2028`` and ``\\u2029``)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e")
                  .replace("&", "\\u0026").replace("\u2028", "\\u2028")
                  .replace("\u2029", "\\u2029"))


def map_links(board: Dashboard, base_url: str) -> dict[str, str]:
    """Chart name -> URL of its map page (narrowed to the dashboard's area)."""
    query = f"?{urlencode({'area_id': board.area_id})}" if board.area_id is not None else ""
    return {name: f"{base_url.rstrip('/')}/maps/{kind}{query}"
            for name, kind in CHART_MAPS.items()}


def _context(board: Dashboard, links: Mapping[str, str] | None) -> dict[str, Any]:
    return {
        "board": board, "summary": summary(board), "titles": CHART_TITLES,
        "protections": PROTECTIONS, "links": dict(links or {}),
        "title": f"Coverage progress of {board.scope_name}",
    }


def dashboard_html(board: Dashboard, *, static_url: str = "/static", base_url: str = "",
                   areas: list[tuple[str, str]] | None = None) -> str:
    """The live dashboard page.

    Parameters
    ----------
    board
        What to show.
    static_url
        Where the server mounts :func:`maps.static_dir` (the vendored scripts).
    base_url
        Prefix of the links to the map pages and to the other areas' dashboards.
    areas
        ``(area_id, name)`` of every area, for the links narrowing the page to one.
    """
    specs = chart_specs(board)
    page = _ENV.get_template("dashboard.html.j2").render(
        **_context(board, map_links(board, base_url)), mode="page", specs=_json_block(specs),
        scripts=[f"{static_url.rstrip('/')}/{path}" for path in DASHBOARD_JS],
        area_links=[(aid, name, f"{base_url.rstrip('/')}/dashboard?"
                     f"{urlencode({'area_id': aid})}") for aid, name in (areas or [])],
        home=f"{base_url.rstrip('/')}/dashboard", report_url=_report_url(board, base_url),
    )
    return str(page)


def _report_url(board: Dashboard, base_url: str) -> str:
    query = f"?{urlencode({'area_id': board.area_id})}" if board.area_id is not None else ""
    return f"{base_url.rstrip('/')}/report{query}"


def report_html(board: Dashboard, *, base_url: str | None = None) -> str:
    """The self-contained, printable report (charts as inline SVG, no script, no link to
    any file: it opens offline and prints as it shows).

    ``base_url``: the server the map links point at; ``None`` (a report made from a
    file) names the ``netgis map`` command instead.
    """
    from netgis.products.progress import chart_svgs

    svgs = chart_svgs(chart_specs(board))
    page = _ENV.get_template("dashboard.html.j2").render(
        **_context(board, None if base_url is None else map_links(board, base_url)),
        mode="report", svgs={name: Markup(_strip_xml_header(svg)) for name, svg in svgs.items()},
        map_kinds=CHART_MAPS,
    )
    return str(page)


def _strip_xml_header(svg: str) -> str:
    # vl-convert's SVG is trusted output of our own specs (every label escaped by its renderer)
    return svg[svg.index("<svg"):] if "<svg" in svg else svg


def report_pdf(html: str) -> bytes:
    """The report printed to PDF (A4, WeasyPrint)."""
    from weasyprint import HTML

    pdf: bytes = HTML(string=html).write_pdf()
    return pdf
