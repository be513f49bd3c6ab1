"""Offline assets: every script and style sheet a netgis map loads comes from netgis itself.

Folium points its pages at CDNs by default (Leaflet, jQuery, Bootstrap,
awesome-markers, Font Awesome). The builders in :mod:`maps` use nothing but
Leaflet (circle markers, their own legend HTML, H3 hexagons instead of marker
clusters), so a page needs exactly the files listed in :data:`VENDOR_JS` and
:data:`VENDOR_CSS`, vendored from the npm release under ``maps/static/vendor``
by ``scripts/vendor-assets.sh``.

Two ways to ship them:

- :func:`use_local_assets` points a map at ``<base_url>/vendor/...`` (a server
  mounts :func:`static_dir` at ``base_url``, by default ``/static``);
- :func:`inline_html` renders a self-contained page with the files inlined,
  the form ``netgis map --out FILE.html`` writes.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import folium

from netgis.maps.figure import figure_of

#: Script files a page loads, as (folium link name, path under the static directory).
VENDOR_JS: tuple[tuple[str, str], ...] = (("leaflet", "vendor/leaflet/dist/leaflet.js"),)
#: Style sheets a page loads, as (folium link name, path under the static directory).
VENDOR_CSS: tuple[tuple[str, str], ...] = (("leaflet_css", "vendor/leaflet/dist/leaflet.css"),)
#: Leaflet.VectorGrid (bundled with pbf and vector-tile): loaded only by a page that draws a
#: layer from the server's vector tiles (:class:`maps._base.VectorTileLayer`).
VECTORGRID_JS = ("leaflet_vectorgrid",
                 "vendor/leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.min.js")

_SOURCE_MAP = re.compile(r"^\s*//# sourceMappingURL=.*$", re.M)
_CSS_URL = re.compile(r"url\((['\"]?)([^)'\"]+)\1\)")


def static_dir() -> Path:
    """Directory to serve at the maps' ``base_url`` (default ``/static``).

    Examples
    --------
    >>> (static_dir() / "vendor" / "leaflet" / "LICENSE").is_file()
    True
    """
    return Path(__file__).with_name("static")


def use_local_assets(m: folium.Map, *, base_url: str = "/static") -> folium.Map:
    """Point ``m`` at the vendored assets under ``base_url`` instead of folium's CDNs.

    The lists are replaced on the instance: folium's class-level lists are
    shared by every map in the process and must stay untouched.

    Examples
    --------
    >>> m = use_local_assets(folium.Map(tiles=None), base_url="/static")
    >>> m.default_js
    [('leaflet', '/static/vendor/leaflet/dist/leaflet.js')]
    """
    root = base_url.rstrip("/")
    m.default_js = [(name, f"{root}/{path}") for name, path in VENDOR_JS]
    m.default_css = [(name, f"{root}/{path}") for name, path in VENDOR_CSS]
    return m


def use_vector_grid(m: folium.Map, *, base_url: str = "/static") -> None:
    """Load Leaflet.VectorGrid (after Leaflet) in ``m``'s page, once."""
    name, path = VECTORGRID_JS
    if all(n != name for n, _ in m.default_js):
        m.default_js = [*m.default_js, (name, f"{base_url.rstrip('/')}/{path}")]


def _data_uri(path: Path) -> str:
    mime = {".png": "image/png", ".svg": "image/svg+xml", ".gif": "image/gif"}.get(
        path.suffix.lower(), "application/octet-stream"
    )
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _inline_css(path: Path) -> str:
    """The style sheet with its relative ``url(...)`` references embedded as data URIs."""

    def embed(match: re.Match[str]) -> str:
        ref = match.group(2)
        if ref.startswith(("data:", "#")) or "://" in ref:
            return match.group(0)
        return f'url("{_data_uri((path.parent / ref).resolve())}")'

    return _CSS_URL.sub(embed, path.read_text(encoding="utf-8"))


def inline_html(m: folium.Map) -> str:
    """Render ``m`` as one self-contained HTML page: no request leaves the file.

    The page carries its Content-Security-Policy (:mod:`maps.csp`) in a
    ``<meta http-equiv>`` element.

    Examples
    --------
    >>> html = inline_html(folium.Map(tiles=None))
    >>> "<script src=" in html
    False
    """
    root = static_dir()
    m.default_js = []
    m.default_css = []
    header = figure_of(m).header
    for name, path in VENDOR_CSS:
        css = _inline_css(root / path)
        header.add_child(folium.Element(f"<style>{css}</style>"), name=f"inline_{name}")
    for name, path in VENDOR_JS:
        # the source map comment would make dev tools fetch a file that is not there
        js = _SOURCE_MAP.sub("", (root / path).read_text(encoding="utf-8"))
        header.add_child(folium.Element(f"<script>{js}</script>"), name=f"inline_{name}")
    from netgis.maps.csp import secure_html

    # a saved page keeps its Content-Security-Policy: only its own scripts run
    html, _ = secure_html(m)
    return html
