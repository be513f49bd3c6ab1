"""The analysis results as read-only OGC API - Features collections: the layers of
:mod:`netgis.products.result_layers` of the live analysis, held in memory per data version.

The collections (:data:`RESULT_COLLECTIONS`) are ``premise_results``, ``span_results``
and ``node_results`` (the rows of ``netgis analyze``'s CSVs with geometry, premises with
address and area) and ``gap_clusters`` and ``h3_gaps`` (those of ``netgis gaps`` at the
server's gap parameters); with the FCC files set (``NETGIS_BEAD_AVAILABILITY`` and
``NETGIS_BEAD_LOCATIONS``, read once when the app is made) also ``bead_classes`` (the rows
of ``netgis bead``: each Fabric location's class and whether the lit plant passes it).
Each is made once per data version the live analysis
publishes, on first use, in WGS84 and in id order; a page is a selection of row
positions: property equalities, a ``bbox`` and CQL2 (:func:`netgis.storage.filters.frame_mask`,
the same language and checks as the stored layers) give a row mask, keyset paging a
binary search of the ids. Pages are written as text: each geometry by GEOS
(:func:`shapely.to_geojson`), each row's properties by :func:`json.dumps` (floats as
Python writes them: the CSV's values exactly).

The routes are :class:`netgis.api.routers.collections.ResultEndpoints`; docs/ogc-api.md,
"Result collections", says what clients get.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely

from netgis.api.errors import ApiError
from netgis.api.live import note_version
from netgis.errors import NotFoundError
from netgis.products.bead import bead_join, read_availability, read_locations
from netgis.products.gaps import rollup_h3
from netgis.products.result_layers import (
    RESULT_LAYERS,
    bead_layer,
    gap_clusters,
    h3_gaps,
    node_results,
    premise_results,
    span_results,
)
from netgis.storage.filters import ParsedFilter, frame_mask

if TYPE_CHECKING:
    import pandas as pd

    from netgis.api.services import Services, SingleFlight
    from netgis.api.settings import Settings
    from netgis.engine.analysis import Analysis
    from netgis.schema import Layer

IntArray = npt.NDArray[np.int64]

#: The analysis result collections the API serves, in the order /collections lists them.
RESULT_COLLECTIONS = ("premise_results", "span_results", "node_results", "gap_clusters",
                      "h3_gaps")
#: The BEAD classes of the FCC locations: a result collection only on a server given the
#: FCC files (:class:`BeadInputs`), listed after :data:`RESULT_COLLECTIONS` then.
BEAD_COLLECTION = "bead_classes"
#: The plant layer whose features each result collection has one row of (its extent too).
PLANT_LAYER = {"premise_results": "premises", "span_results": "spans",
               "node_results": "nodes"}
#: How each of those is made from an analysis.
_OF_ANALYSIS: dict[str, Callable[[Analysis], gpd.GeoDataFrame]] = {
    "premise_results": premise_results, "span_results": span_results,
    "node_results": node_results}


@dataclass(frozen=True)
class ResultLayer:
    """One result collection of one data version: its rows in id order, in WGS84.

    ``frame`` holds the layer's fields (pandas nullable types) and its geometry;
    ``ids`` are the id column as Python strings, ascending in code point order (the
    order of the plant layers' pages on both databases).

    Examples
    --------
    >>> from netgis.engine.analysis import analyze
    >>> from netgis.io import read_dataset
    >>> from netgis.products.result_layers import premise_results
    >>> result = analyze(read_dataset("tests/examples/ring_spur/dataset.gpkg"))
    >>> layer = ResultLayer.of(RESULT_LAYERS["premise_results"], 1, premise_results(result))
    >>> unpassed = layer.matches({"passed": False})
    >>> [fid for fid, _ in layer.window(unpassed, limit=10)]
    ['p_far']
    >>> layer.features_json(unpassed)[:59]
    '[{"type":"Feature","id":"p_far","geometry":{"type":"Point",'
    """

    layer: Layer
    version: int
    frame: gpd.GeoDataFrame
    ids: npt.NDArray[np.object_]
    geometry: npt.NDArray[np.object_]

    @classmethod
    def of(cls, layer: Layer, version: int, frame: gpd.GeoDataFrame) -> ResultLayer:
        """The collection of ``frame`` (any CRS, any order) as data version ``version``."""
        wgs84 = frame.to_crs(4326) if frame.crs is not None and frame.crs.to_epsg() != 4326 \
            else frame
        ordered = wgs84.sort_values(layer.id_field, kind="stable").reset_index(drop=True)
        ids = _objects(ordered[layer.id_field])
        return cls(layer, int(version), ordered, ids,
                   np.asarray(ordered.geometry.to_numpy(), dtype=object))

    @property
    def bbox(self) -> tuple[float, float, float, float] | None:
        """The WGS84 box of every feature; None for an empty collection."""
        if not len(self.frame):
            return None
        minx, miny, maxx, maxy = (float(v) for v in shapely.total_bounds(self.geometry))
        return minx, miny, maxx, maxy

    def matches(self, filters: Mapping[str, Any],
                bbox: tuple[float, float, float, float] | None = None,
                cql2: ParsedFilter | None = None) -> IntArray:
        """Positions (ascending: id order) of the rows whose fields equal ``filters``, that
        intersect ``bbox`` (WGS84) and match ``cql2`` (all must hold)."""
        keep = np.ones(len(self.frame), dtype=bool)
        for name, value in filters.items():
            equal = (self.frame[name] == value).fillna(False)
            keep &= np.asarray(equal, dtype=bool)
        if bbox is not None:
            keep &= np.asarray(shapely.intersects(self.geometry, shapely.box(*bbox)),
                               dtype=bool)
        if cql2 is not None:
            keep &= frame_mask(cql2, self.layer, self.frame, self.geometry)
        return np.flatnonzero(keep).astype(np.int64)

    def window(self, matches: IntArray, *, limit: int, offset: int = 0,
               after: str | None = None, before: str | None = None) -> list[tuple[str, int]]:
        """``(id, position)`` of the page of ``matches``: ``limit`` of them from ``offset``,
        or the first ``limit`` after the id ``after``, or the last ``limit`` before
        ``before`` (ascending either way), as the repository pages the plant layers."""
        if after is not None:
            start = int(np.searchsorted(matches, np.searchsorted(self.ids, after, "right")))
            chosen = matches[start:start + limit]
        elif before is not None:
            end = int(np.searchsorted(matches, np.searchsorted(self.ids, before, "left")))
            chosen = matches[max(0, end - limit):end]
        else:
            chosen = matches[offset:offset + limit]
        return [(str(self.ids[p]), int(p)) for p in chosen]

    def position(self, feature_id: str) -> int:
        """The row of ``feature_id``; a NotFoundError for an id the collection lacks."""
        at = int(np.searchsorted(self.ids, feature_id))
        if at >= len(self.ids) or self.ids[at] != feature_id:
            raise NotFoundError(self.layer.name, feature_id)
        return at

    def _columns(self, positions: IntArray) -> list[npt.NDArray[np.object_]]:
        """Each field's values at ``positions`` as Python objects (None for a null)."""
        return [_objects(self.frame[f.name].iloc[positions]) for f in self.layer.fields]

    def features_json(self, positions: IntArray) -> str:
        """The GeoJSON Features at ``positions`` as one JSON array (text)."""
        names = self.layer.field_names
        columns = self._columns(positions)
        geometries = shapely.to_geojson(self.geometry[positions])
        dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
        parts = [f'{{"type":"Feature","id":{dumps(fid)},"geometry":{geometry},'
                 f'"properties":{dumps(dict(zip(names, row, strict=True)))}}}'
                 for fid, row, geometry in zip(self.ids[positions].tolist(),
                                               zip(*columns, strict=True),
                                               geometries.tolist(), strict=True)]
        return "[" + ",".join(parts) + "]"

    def features(self, positions: IntArray, item_href: str | None = None
                 ) -> list[dict[str, Any]]:
        """The GeoJSON Features at ``positions`` as dicts (an HTML page's, one item's), each
        with its ``self`` link below ``item_href`` when given."""
        from urllib.parse import quote

        found: list[dict[str, Any]] = json.loads(self.features_json(positions))
        if item_href is not None:
            for feature in found:
                feature["links"] = [{"href": f"{item_href}/{quote(str(feature['id']), safe='')}",
                                     "rel": "self", "type": "application/geo+json"}]
        return found


def _objects(column: Any) -> npt.NDArray[np.object_]:
    """A column's values as Python objects (bool, int, float, str), None for a null."""
    values: npt.NDArray[np.object_] = column.to_numpy(dtype=object, na_value=None)
    return values


@dataclass(frozen=True)
class BeadInputs:
    """The FCC files of the ``bead_classes`` collection, read once: the Fabric locations
    (points) and the best BEAD class code of each location in the availability files.

    Examples
    --------
    >>> from netgis.api.settings import Settings
    >>> inputs = BeadInputs.of_settings(Settings(
    ...     bead_availability="data/bead/availability.csv",
    ...     bead_locations="data/bead/fabric.csv"))
    >>> len(inputs.locations), inputs.bbox is not None
    (36, True)
    >>> BeadInputs.of_settings(Settings()) is None
    True
    """

    locations: gpd.GeoDataFrame
    best: pd.Series
    reach_m: float
    bbox: tuple[float, float, float, float] | None

    @classmethod
    def of_settings(cls, settings: Settings) -> BeadInputs | None:
        """The files ``settings`` name, read and checked (a ValidationError naming every
        malformed row, as ``netgis bead``); None when they name none."""
        if settings.bead_locations is None or not settings.bead_availability:
            return None
        locations = read_locations(settings.bead_locations).to_crs(4326)
        best = read_availability(settings.bead_availability).best
        bbox = None
        if len(locations):
            minx, miny, maxx, maxy = (float(v) for v in locations.total_bounds)
            bbox = (minx, miny, maxx, maxy)
        return cls(locations, best, float(settings.bead_reach_m), bbox)

    def layer(self, analysis: Analysis) -> gpd.GeoDataFrame:
        """Every location's class and plant answer against ``analysis``'s lit spans (the
        rows ``netgis bead`` writes at the analysis's drop length)."""
        joined = bead_join(self.locations, self.best, analysis.lit_spans,
                           drop_m=analysis.drop_m, reach_m=self.reach_m)
        return bead_layer(joined, self.locations)[BEAD_COLLECTION]


class ResultStates:
    """The result collections of the live analysis (the server's default parameters), each
    made once per data version on first use.

    Parameters
    ----------
    services
        The application's services: the live analysis and its build plan.
    cache
        Where the made collections are kept, keyed by (data version, collection).
    bead
        The FCC files of ``bead_classes``; None: the server serves no such collection.
    """

    def __init__(self, services: Services,
                 cache: SingleFlight[tuple[int, str], ResultLayer],
                 bead: BeadInputs | None = None) -> None:
        self.services = services
        self.cache = cache
        self.bead = bead

    @property
    def names(self) -> tuple[str, ...]:
        """The result collections this server serves, in the order /collections lists them."""
        return RESULT_COLLECTIONS if self.bead is None else (*RESULT_COLLECTIONS,
                                                              BEAD_COLLECTION)

    def check_served(self, name: str) -> None:
        """A 404 problem for ``bead_classes`` on a server without the FCC files."""
        if name == BEAD_COLLECTION and self.bead is None:
            raise ApiError(404, "this server has no BEAD files: bead_classes is served when "
                                "NETGIS_BEAD_AVAILABILITY and NETGIS_BEAD_LOCATIONS are set "
                                "(docs/ogc-api.md, Result collections)")

    def layer(self, name: str) -> ResultLayer:
        """The collection ``name`` of the data version the live analysis reflects now (its
        version noted for the ``X-Data-Version`` header)."""
        self.check_served(name)
        published = self.services.live.current()
        version, analysis = published.version, published.analysis

        def make() -> ResultLayer:
            if name == BEAD_COLLECTION and self.bead is not None:
                frame = self.bead.layer(analysis)
            elif name == "gap_clusters":
                frame = gap_clusters(self.services.plan(version, analysis))
            elif name == "h3_gaps":
                frame = h3_gaps(rollup_h3(analysis.premises,
                                          h3_res=self.services.gap_params().h3_res))
            else:
                frame = _OF_ANALYSIS[name](analysis)
            # a newer version's layer replaces the older ones (a million rows each)
            self.cache.keep_only(lambda key: key[0] >= version)
            return ResultLayer.of(RESULT_LAYERS[name], version, frame)

        made = self.cache.get((version, name), make)
        note_version(made.version)
        return made

    def kept(self, name: str) -> ResultLayer | None:
        """The collection ``name`` if it is made for the current data version, else None
        (what the listing of every collection may show without making any)."""
        published = self.services.live.published
        if published is None:
            return None
        return self.cache.peek((published.version, name))
