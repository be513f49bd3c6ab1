"""The base map under a page, and the dataset's own streets when there is none.

A server with ``NETGIS_BASEMAP`` serves a local MBTiles or PMTiles file
(``/basemap/{z}/{x}/{y}.{ext}``, :mod:`netgis.io.basemap`); :class:`Basemap` describes
it to a page. One script, ``/static/basemap/basemap.js``, draws it on every page that
has one (the Folium maps through :class:`BasemapLayer`, the portal and the OGC HTML
pages from their configuration): raster tiles as a Leaflet tile layer, vector tiles with
Leaflet.VectorGrid (vendored) in a plain built-in style keyed on the layer names of the
common OpenStreetMap schemas (water, land use, buildings, roads, boundaries; no labels).
Tiles deeper than the file's ``max_zoom`` are its deepest tiles enlarged, and the
file's attribution is shown as text in the map's corner.

Without a base map, a page draws a dataset's optional ``streets`` layer
(docs/data-model.md) thinly under the plant, each street's name in its tooltip
(:func:`street_frame` says how a large one is merged; :func:`maps._base.start_map` draws it).

Examples
--------
>>> from netgis.io.basemap import BasemapInfo
>>> info = BasemapInfo("mbtiles", "png", "city", "© <OSM>", 10, 16, (8.6, 50.0, 8.8, 50.2),
...                    (8.7, 50.1, 14))
>>> Basemap.of(info).config()["attribution"]
'© &lt;OSM&gt;'
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import MacroElement
from jinja2 import Template

from netgis.maps.assets import VECTORGRID_JS, use_vector_grid

if TYPE_CHECKING:
    import folium

    from netgis.io.basemap import BasemapInfo

#: The script that draws a base map, under the static directory.
BASEMAP_JS = "basemap/basemap.js"
#: The names of the scripts a page with a base map loads (folium's ``default_js``).
BASEMAP_SCRIPTS = ("netgis_basemap", VECTORGRID_JS[0])
#: Where a netgis server serves its base map's tiles.
BASEMAP_URL = "/basemap/{z}/{x}/{y}.{ext}"
#: The map pane of the streets: above the base map's tiles (200), below the plant (400).
STREETS_PANE = "netgis-streets"
STREETS_PANE_Z = 350
#: Wide and white, as a base map draws streets: the plant runs on top of them.
STREET_STYLE = {"color": "#ffffff", "weight": 8, "opacity": 1.0, "lineCap": "round"}


@dataclass(frozen=True)
class Basemap:
    """A base map a page draws: its tile URL template and what its tiles are.

    Attributes
    ----------
    url
        Tile URL template with ``{z}``, ``{x}`` and ``{y}`` (a server's
        :data:`BASEMAP_URL`, relative to the page).
    vector
        Mapbox Vector Tiles (drawn with Leaflet.VectorGrid); raster images otherwise.
    attribution
        Plain text shown in the map's corner.
    min_zoom, max_zoom
        Zooms the file has: nothing is drawn below ``min_zoom``; above ``max_zoom``
        its deepest tiles are enlarged.
    bounds
        WGS84 box (west, south, east, north) outside which no tile is asked for.
    """

    url: str
    vector: bool = False
    attribution: str = ""
    min_zoom: int = 0
    max_zoom: int = 19
    bounds: tuple[float, float, float, float] | None = None

    @classmethod
    def of(cls, info: BasemapInfo, url: str = BASEMAP_URL) -> Basemap:
        """The base map a server serves from a file described by ``info``."""
        return cls(url=url.replace("{ext}", info.ext), vector=info.vector,
                   attribution=info.attribution, min_zoom=info.min_zoom,
                   max_zoom=info.max_zoom, bounds=info.bounds)

    def config(self) -> dict[str, Any]:
        """What basemap.js reads (the attribution escaped: Leaflet shows it as HTML)."""
        return {"url": self.url, "vector": self.vector,
                "attribution": html.escape(self.attribution), "minZoom": self.min_zoom,
                "maxNativeZoom": self.max_zoom,
                "bounds": list(self.bounds) if self.bounds is not None else None}


class BasemapLayer(MacroElement):
    """Draws a :class:`Basemap` on the map with basemap.js (config as JSON in the script)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        window.netgisBasemap({{ this._parent.get_name() }}, {{ this.config|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, basemap: Basemap) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "BasemapLayer"
        self.config = basemap.config()


def add_basemap(m: folium.Map, basemap: Basemap, *, base_url: str = "/static") -> None:
    """Draw ``basemap`` under everything on ``m`` (loads basemap.js, and Leaflet.VectorGrid
    for vector tiles).

    Examples
    --------
    >>> import folium
    >>> m = folium.Map(tiles=None)
    >>> add_basemap(m, Basemap("/basemap/{z}/{x}/{y}.png"))
    >>> [name for name, _ in m.default_js][-1]
    'netgis_basemap'
    """
    if basemap.vector:
        use_vector_grid(m, base_url=base_url)
    m.default_js = [*m.default_js, ("netgis_basemap", f"{base_url.rstrip('/')}/{BASEMAP_JS}")]
    BasemapLayer(basemap).add_to(m)


def street_frame(streets: gpd.GeoDataFrame, max_features: int) -> gpd.GeoDataFrame:
    """``streets`` (EPSG:4326) as drawn: one feature per street; above ``max_features``
    one line per name, and above that again one line for all (no names).

    Examples
    --------
    >>> lines = gpd.GeoDataFrame({"name": ["A", "A", None]},
    ...                          geometry=shapely.linestrings([[[0, 0], [1, 0]], [[1, 0], [2, 0]],
    ...                                                       [[0, 1], [1, 1]]]), crs=4326)
    >>> street_frame(lines, 2)["name"].fillna("(no name)").tolist()
    ['A', '(no name)']
    >>> len(street_frame(lines, 1))
    1
    """
    if len(streets) <= max_features:
        return streets
    names: list[str | None] = []
    geoms: list[shapely.Geometry] = []
    for name, part in streets.groupby("name", dropna=False, sort=True):
        names.append(None if pd.isna(name) else str(name))
        geoms.append(_joined(part.geometry.to_numpy()))
    merged = gpd.GeoDataFrame({"name": names}, geometry=np.array(geoms, dtype=object),
                              crs=streets.crs)
    if len(merged) <= max_features:
        return merged
    return gpd.GeoDataFrame({"name": [None]},
                            geometry=np.array([_joined(streets.geometry.to_numpy())]),
                            crs=streets.crs)


def _joined(lines: np.ndarray) -> shapely.Geometry:
    """Every line of ``lines`` (LineStrings and MultiLineStrings) as one MultiLineString."""
    return cast("shapely.Geometry",
                shapely.multilinestrings(np.asarray(shapely.get_parts(lines), dtype=object)))
