"""The page a map sits in (a module of its own so that assets and csp both use it)."""

from __future__ import annotations

import folium
from branca.element import Figure
from jinja2 import Template


def figure_of(m: folium.Map) -> Figure:
    """The page (branca Figure) holding ``m``."""
    root = m.get_root()
    if not isinstance(root, Figure):
        raise TypeError("a folium.Map always sits in a Figure")
    return root


#: The page of :func:`accessible_page`: branca's, with a language, a title, the map inside a
#: ``main`` landmark under a heading, and a viewport that lets the reader zoom the page.
_ACCESSIBLE_PAGE = Template(
    "<!DOCTYPE html>\n"
    '<html lang="en">\n'
    "<head>\n"
    "<title>{{ this.title|e }}</title>\n"
    "    {{ this.header.render(**kwargs)"
    "|replace(', maximum-scale=1.0, user-scalable=no', '') }}\n"
    "<style>main { height: 100%; } .netgis-sr-only { position: absolute; width: 1px; "
    "height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }</style>\n"
    "</head>\n"
    "<body>\n"
    "<main>\n"
    '<h1 class="netgis-sr-only">{{ this.title|e }}</h1>\n'
    "    {{ this.html.render(**kwargs) }}\n"
    "</main>\n"
    "</body>\n"
    "<script>\n"
    "    {{ this.script.render(**kwargs) }}\n"
    "</script>\n"
    "</html>\n"
)


def accessible_page(m: folium.Map, title: str) -> folium.Map:
    """``m`` in a page that assistive technology can read: its language (English), ``title`` as the
    page title and as a (visually hidden) first heading, the map and its controls inside
    the page's ``main`` landmark, and zooming allowed (folium's viewport forbids it).

    Examples
    --------
    >>> page = figure_of(accessible_page(folium.Map(tiles=None), "A <b>map</b>")).render()
    >>> '<html lang="en">' in page, "<title>A &lt;b&gt;map&lt;/b&gt;</title>" in page
    (True, True)
    >>> "user-scalable=no" in page
    False
    """
    figure = figure_of(m)
    figure.title = title
    figure._template = _ACCESSIBLE_PAGE
    return m
