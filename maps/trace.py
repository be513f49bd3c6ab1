"""The "Trace to OLT" action of the coverage map served with strand data (docs/strands.md).

:func:`add_trace_action` loads ``/static/trace/trace.js`` (plain JavaScript served by
netgis, no CDN) into a map page and attaches it to the map: a premise's popup gets a
"Trace to OLT" button that fetches ``<trace_url>?premise=ID&f=geojson`` and draws the best
path (pieces in their strands' colours, per-hop loss in tooltips, the loss, budget and
margin in a panel), and a node's popup a link to its splice diagram. Only pages served
by a server with strand data get it: a saved page has no server to ask.

Examples
--------
>>> import folium
>>> m = folium.Map(tiles=None)
>>> add_trace_action(m, trace_url="/trace", splices_url="/maps/splices/")
>>> [name for name, _ in m.default_js][-1]
'netgis_trace'
"""

from __future__ import annotations

import folium
from branca.element import MacroElement
from jinja2 import Template

from netgis.maps.splices import COLOUR_HEX

#: The script and style sheet of the action, under the static directory.
TRACE_JS = "trace/trace.js"
TRACE_CSS = "trace/trace.css"


class TraceAction(MacroElement):
    """Attaches trace.js to the map (its configuration as JSON in the page's script)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        window.netgisTrace.attach({{ this._parent.get_name() }}, {{ this.config|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, trace_url: str, splices_url: str | None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "TraceAction"
        self.config = {"traceUrl": trace_url, "splicesUrl": splices_url,
                       "colours": COLOUR_HEX}


def add_trace_action(m: folium.Map, *, trace_url: str, splices_url: str | None = None,
                     base_url: str = "/static") -> None:
    """Give ``m``'s premises a "Trace to OLT" action asking ``trace_url``, and its nodes a
    link to ``splices_url`` + node id (none when None)."""
    root = base_url.rstrip("/")
    m.default_js = [*m.default_js, ("netgis_trace", f"{root}/{TRACE_JS}")]
    m.default_css = [*m.default_css, ("netgis_trace_css", f"{root}/{TRACE_CSS}")]
    TraceAction(trace_url, splices_url).add_to(m)
