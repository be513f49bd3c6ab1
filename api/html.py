"""HTML views of the OGC API resources, chosen by ``f=html`` or an Accept header.

JSON stays the default: a client that sends no Accept header, ``*/*`` or a
JSON type gets JSON. HTML is served when ``f=html`` is asked for, or when the
Accept header gives ``text/html`` a higher quality than any JSON type (a
browser's ``text/html,...,*/*;q=0.8``), as pygeoapi and tipg do. ``f=json``
(or ``geojson``) always wins over the header.

Pages are Jinja2 templates (``api/templates``) with autoescaping on, so every
value from the data is text, never markup. They load their script and style
from this server only; the Content-Security-Policy (:func:`maps.csp.content_security_policy`)
allows scripts from the page's own origin and no inline script at all.

Examples
--------
>>> accepts_html("text/html,application/xhtml+xml,*/*;q=0.8")
True
>>> accepts_html("*/*"), accepts_html("application/json, text/html;q=0.5"), accepts_html("")
(False, False, False)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from netgis.maps.basemap import BASEMAP_JS, Basemap
from netgis.maps.csp import content_security_policy

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
#: Where :data:`STATIC_DIR` is served (mounted before the maps' ``/static``).
STATIC_URL = "/static/api"
HTML = "text/html"
_JSON_TYPES = ("application/json", "application/geo+json", "application/schema+json",
               "application/problem+json")

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
    autoescape=True,  # every template, whatever its name: all values are escaped
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)



def _cell(value: Any) -> Any:
    """A property as a table cell shows it: booleans as in JSON, nothing for null."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


_env.filters["cell"] = _cell

#: The 200 answer's extra media type, for the ``responses`` of a route that has a page.
HTML_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {HTML: {"schema": {"type": "string"}}},
          "description": "The resource (JSON, or an HTML page with f=html or Accept: text/html)"}}


def _quality(accept: str) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for part in accept.split(","):
        fields = [p.strip() for p in part.split(";")]
        media = fields[0].lower()
        if not media:
            continue
        q = 1.0
        for param in fields[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        out.append((media, q))
    return out


def accepts_html(accept: str | None) -> bool:
    """Whether an Accept header prefers ``text/html`` to every JSON type (strictly)."""
    if not accept:
        return False
    entries = _quality(accept)

    def best(types: tuple[str, ...]) -> float:
        exact = [q for m, q in entries if m in types]
        if exact:
            return max(exact)
        ranges = [q for m, q in entries
                  if m == "*/*" or any(m == t.split("/")[0] + "/*" for t in types)]
        return max(ranges, default=0.0)

    html_q = best((HTML,))
    return html_q > 0 and html_q > best(_JSON_TYPES)


def wants_html(request: Request, f: str | None) -> bool:
    """Whether ``request`` asks for the HTML page: ``f=html``, or no ``f`` and an Accept
    header that prefers HTML."""
    if f is not None:
        return f == "html"
    return accepts_html(request.headers.get("accept"))


def page_url(url: str, fmt: str = "html") -> str:
    """``url`` with ``f=fmt`` (any ``f`` it had replaced), for links between pages."""
    from starlette.datastructures import URL

    return str(URL(url).include_query_params(f=fmt))


def render(request: Request, template: str, *, title: str, json_url: str,
           crumbs: list[tuple[str, str]], **context: Any) -> HTMLResponse:
    """The page ``template`` with its CSP; ``crumbs`` are (title, URL) from the landing page,
    ``json_url`` the same resource as JSON."""
    base = str(request.base_url).rstrip("/")
    # the server's base map (NETGIS_BASEMAP) under the pages' maps: its configuration for
    # basemap.js, in a data attribute (the pages run no inline script)
    opened = getattr(request.app.state, "basemap", None)
    basemap = None if opened is None else Basemap.of(opened.info)
    body = _env.get_template(template).render(
        title=title, json_url=json_url, crumbs=crumbs, static=base + STATIC_URL,
        vendor=base + "/static/vendor", page_url=page_url,
        basemap=None if basemap is None else basemap.config(),
        basemap_js=f"{base}/static/{BASEMAP_JS}", **context)
    return HTMLResponse(body, headers={
        "Content-Security-Policy": content_security_policy(body),
        "X-Content-Type-Options": "nosniff",
        "Vary": "Accept",
    })
