"""Where a span, node or build lies, in words: its street and its area.

People read "Lindenstraße, Nordend: span s00228", not "span s00228". This module finds
those words for the plant, once per dataset, with one spatial query for all features:

- **street**: a span's own ``street`` (or ``name``) attribute when its frame carries one;
  else the nearest *named* line of the dataset's optional ``streets`` context layer
  (:attr:`netgis.dataset.Dataset.streets`) within :data:`DEFAULT_STREET_TOLERANCE_M` of
  the feature's anchor point; else none.
- **area**: the ``areas`` polygon that covers the anchor point (its ``name``, else its
  ``area_id``; of several, the first in the layer's order); else none.

The anchor point of a line is its middle (half its length along it), of a polygon its
centroid, of a point the point itself: at its ends a span touches the cross streets, at
its middle it lies on its own. Distances are measured in metres, in the dataset's CRS
when it is projected in metres, else in the UTM zone of the data's middle.

When nothing is known, a label is the bare id, as before names existed
(:func:`place_label`).

Examples
--------
>>> from netgis.generate import generate_city
>>> city = generate_city(premises=300, seed=1)
>>> names = place_names(city)
>>> names.span_label("s05")
'Birkenstraße, Nordend: span s05'
>>> place_label(None, None, "span s05")
'span s05'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from pyproj import CRS

from netgis.errors import Problem, ValidationError
from netgis.geodesy import lonlat, transform_geoms, working_crs_for
from netgis.products.gaps.rollup import area_members

if TYPE_CHECKING:
    from netgis.dataset import Dataset

ObjArray = npt.NDArray[np.object_]

#: Farthest a feature's anchor point may be from a street for the street to name it, metres.
DEFAULT_STREET_TOLERANCE_M = 60.0
#: Columns of a span frame that name its street, the first present and non-empty wins.
OWN_STREET_COLUMNS = ("street", "name")
#: The columns of every table of places.
PLACE_COLUMNS = ("street", "area")


def place_label(street: str | None, area: str | None, what: str) -> str:
    """``what`` (e.g. ``"span s00228"``) with its street and area in front, as far as known.

    Examples
    --------
    >>> place_label("Lindenstraße", "Nordend", "span s00228")
    'Lindenstraße, Nordend: span s00228'
    >>> place_label(None, "Nordend", "#1 gap-p033003")
    'Nordend: #1 gap-p033003'
    >>> place_label(None, None, "node n12")
    'node n12'
    """
    where = ", ".join(p for p in (street, area) if p)
    return f"{where}: {what}" if where else what


def anchor_points(geoms: npt.ArrayLike) -> ObjArray:
    """The point each geometry is named by: the middle of a line (half-way along it), the
    centroid of a polygon, a point itself; missing or empty geometries give None.

    Examples
    --------
    >>> line = shapely.LineString([(0, 0), (10, 0), (10, 30)])
    >>> [p.wkt for p in anchor_points([line, shapely.box(0, 0, 2, 2)])]
    ['POINT (10 10)', 'POINT (1 1)']
    """
    arr = np.asarray(geoms, dtype=object)
    out = np.full(len(arr), None, dtype=object)
    usable = ~(shapely.is_missing(arr) | shapely.is_empty(arr))
    dim = np.full(len(arr), -1)
    dim[usable] = shapely.get_dimensions(arr[usable])
    lines, other = usable & (dim == 1), usable & (dim != 1)
    out[lines] = shapely.line_interpolate_point(arr[lines], 0.5, normalized=True)
    out[other] = shapely.centroid(arr[other])
    return out


def _segments(lines: ObjArray) -> tuple[ObjArray, npt.NDArray[np.int64]]:
    """Every straight piece (two vertices) of ``lines`` (LineString or MultiLineString) and
    the row of the line each comes from.

    Examples
    --------
    >>> pieces, rows = _segments(np.array([shapely.LineString([(0, 0), (1, 0), (1, 1)]),
    ...                                    shapely.LineString([(5, 5), (6, 6)])]))
    >>> [p.wkt for p in pieces], rows.tolist()
    (['LINESTRING (0 0, 1 0)', 'LINESTRING (1 0, 1 1)', 'LINESTRING (5 5, 6 6)'], [0, 0, 1])
    """
    parts, part_row = shapely.get_parts(lines, return_index=True)
    coords, owner = shapely.get_coordinates(parts, return_index=True)
    # a piece joins two consecutive vertices of the same part
    joined = np.flatnonzero(owner[1:] == owner[:-1])
    pieces = shapely.linestrings(np.stack([coords[joined], coords[joined + 1]], axis=1))
    return (np.asarray(pieces, dtype=object).reshape(-1),
            np.asarray(part_row[owner[joined]], dtype=np.int64))


def _metric_crs(crs: CRS, points: ObjArray) -> CRS:
    """``crs`` when it is projected in metres, else the UTM zone of the points' middle."""
    if crs.is_projected and all(a.unit_name in ("metre", "meter") for a in crs.axis_info):
        return crs
    present = points[~shapely.is_missing(points)] if len(points) else points
    ll = lonlat(present, crs) if len(present) else np.zeros((0, 2))
    return working_crs_for(ll[:, 0], ll[:, 1])


@dataclass(frozen=True)
class PlaceIndex:
    """The named streets and the areas of one dataset, indexed once for :meth:`places`.

    Build it with :meth:`of`. ``tree`` is the STRtree of the named street lines in
    ``work`` (a metric CRS; None without any named street), cut into their straight pieces:
    a whole street's box would hold half the city, and every point would be measured
    against it; ``names`` is each piece's street name; ``areas`` the dataset's areas with
    ``label`` (name, else id).
    """

    crs: CRS
    work: CRS
    names: ObjArray
    tree: shapely.STRtree | None
    areas: gpd.GeoDataFrame
    #: the row (among the named streets) of each piece of the tree
    street: npt.NDArray[np.int64]
    tolerance_m: float

    @classmethod
    def of(cls, dataset: Dataset, *, tolerance_m: float = DEFAULT_STREET_TOLERANCE_M
           ) -> PlaceIndex:
        """Index ``dataset``'s streets and areas.

        Examples
        --------
        >>> from netgis.generate import generate_city
        >>> index = PlaceIndex.of(generate_city(premises=300, seed=1))
        >>> len(index.names) > 0, index.work.to_epsg()
        (True, 32632)
        """
        if not (np.isfinite(tolerance_m) and tolerance_m >= 0):
            raise ValidationError([Problem("parameters", None, "tolerance_m",
                                           f"must be a finite number >= 0, got {tolerance_m}")])
        crs = dataset.crs
        streets = dataset.streets
        named = (np.zeros(0, dtype=object), np.zeros(0, dtype=object))
        if streets is not None and len(streets):
            text = _text(streets["name"])
            keep = text.notna().to_numpy()
            named = (text.to_numpy(dtype=object)[keep], streets.geometry.to_numpy()[keep])
        sample = np.concatenate([shapely.get_point(named[1], 0) if len(named[1]) else
                                 np.zeros(0, dtype=object),
                                 np.asarray(dataset.nodes.geometry.to_numpy(), dtype=object)])
        work = _metric_crs(crs, sample)
        pieces, street = _segments(transform_geoms(named[1], crs, work))
        tree = shapely.STRtree(pieces) if len(pieces) else None
        areas = dataset.areas
        label = (areas["name"].where(areas["name"].notna() & (areas["name"].astype(str) != ""),
                                     areas["area_id"]) if "name" in areas else areas["area_id"])
        indexed = gpd.GeoDataFrame({"label": label.astype(object)}, geometry=areas.geometry,
                                   crs=areas.crs)
        return cls(crs=crs, work=work, names=named[0][street], tree=tree, areas=indexed,
                   street=street, tolerance_m=float(tolerance_m))

    def places(self, geoms: npt.ArrayLike, *, own: pd.Series | None = None) -> pd.DataFrame:
        """The street and area of each geometry (given in the dataset's CRS).

        ``own`` is each feature's own street (None where it has none), which wins over
        the streets layer. The answer has one row per geometry, in order, with
        :data:`PLACE_COLUMNS` (None where unknown).
        """
        anchors = anchor_points(geoms)
        n = len(anchors)
        street = np.full(n, None, dtype=object)
        if self.tree is not None and n:
            usable = np.flatnonzero(~shapely.is_missing(anchors))
            pts = np.asarray(transform_geoms(anchors[usable], self.crs, self.work))
            # every piece within the tolerance, then the nearest (a range query and one
            # distance per pair: faster here than a nearest-neighbour search)
            hit, piece = self.tree.query(pts, predicate="dwithin", distance=self.tolerance_m)
            gap = shapely.distance(pts[hit], self.tree.geometries[piece])
            # equally near streets: the first in the layer's order, for a stable answer
            order = np.lexsort((self.street[piece], gap, hit))
            hit, piece = hit[order], piece[order]
            first = np.r_[True, hit[1:] != hit[:-1]] if len(hit) else np.zeros(0, dtype=bool)
            street[usable[hit[first]]] = self.names[piece[first]]
        if own is not None:
            mine = _text(own)
            given = mine.notna().to_numpy()
            street[given] = mine.to_numpy(dtype=object)[given]
        area = np.full(n, None, dtype=object)
        if len(self.areas) and n:
            usable = np.flatnonzero(~shapely.is_missing(anchors))
            points = gpd.GeoDataFrame(geometry=gpd.GeoSeries(anchors[usable], crs=self.crs),
                                      crs=self.crs)
            a_idx, p_idx = area_members(points, self.areas)
            # a point in several areas: the first area of the layer (area_members sorts by area)
            order = np.lexsort((a_idx, p_idx))
            a_idx, p_idx = a_idx[order], p_idx[order]
            first = np.r_[True, p_idx[1:] != p_idx[:-1]] if len(p_idx) else np.zeros(0, bool)
            labels = self.areas["label"].astype(str).to_numpy(dtype=object)
            area[usable[p_idx[first]]] = labels[a_idx[first]]
        return pd.DataFrame({"street": street, "area": area})


def own_streets(spans: pd.DataFrame) -> pd.Series | None:
    """Each span's own street from the first of :data:`OWN_STREET_COLUMNS` it carries
    (None without any such column)."""
    for column in OWN_STREET_COLUMNS:
        if column in spans.columns:
            return spans[column]
    return None


@dataclass(frozen=True)
class PlaceNames:
    """The street and area of every span and node of one dataset, and the index to name
    other features (builds) by the same rules.

    ``spans`` and ``nodes`` are indexed by id, with :data:`PLACE_COLUMNS`.
    """

    index: PlaceIndex
    spans: pd.DataFrame
    nodes: pd.DataFrame

    @staticmethod
    def _of(table: pd.DataFrame, key: str) -> tuple[str | None, str | None]:
        if key not in table.index:
            return None, None
        street, area = table.at[key, "street"], table.at[key, "area"]
        return (street if isinstance(street, str) else None,
                area if isinstance(area, str) else None)

    def span_label(self, span_id: str) -> str:
        """``"street, area: span ID"`` (as far as known)."""
        return place_label(*self._of(self.spans, span_id), f"span {span_id}")

    def label(self, kind: str, item_id: str) -> str:
        """The label of a ``span`` or ``node`` (by id): ``"street, area: kind ID"``."""
        table = self.spans if kind == "span" else self.nodes
        return place_label(*self._of(table, item_id), f"{kind} {item_id}")

    def place(self, kind: str, item_id: str) -> str | None:
        """``"street, area"`` of a ``span`` or ``node`` (by id), None when neither is known."""
        street, area = self._of(self.spans if kind == "span" else self.nodes, item_id)
        return ", ".join(p for p in (street, area) if p) or None

    def places(self, geoms: npt.ArrayLike) -> pd.DataFrame:
        """The street and area of other geometries of the dataset (e.g. build hulls)."""
        return self.index.places(geoms)


def place_names(dataset: Dataset, *, spans: pd.DataFrame | None = None,
                tolerance_m: float = DEFAULT_STREET_TOLERANCE_M) -> PlaceNames:
    """The street and area of every span and node of ``dataset``.

    Parameters
    ----------
    dataset
        The dataset: its spans and nodes are named, by its ``streets`` and ``areas``.
    spans
        The span frame to name instead of ``dataset.spans`` (one that carries a
        ``street`` or ``name`` column, say); same CRS.
    tolerance_m
        Farthest a street may be from a feature's anchor point, metres.

    Examples
    --------
    >>> from netgis.generate import generate_city
    >>> names = place_names(generate_city(premises=300, seed=1))
    >>> names.spans.loc["s05"].tolist(), names.label("node", "n00")
    (['Birkenstraße', 'Nordend'], 'Eichenstraße, Altstadt: node n00')
    """
    index = PlaceIndex.of(dataset, tolerance_m=tolerance_m)
    frame = dataset.spans if spans is None else spans
    span_places = index.places(frame.geometry.to_numpy(), own=own_streets(frame))
    span_places.index = pd.Index(frame["span_id"].astype(str).to_numpy(), name="span_id")
    nodes = dataset.nodes
    node_places = index.places(nodes.geometry.to_numpy())
    node_places.index = pd.Index(nodes["node_id"].astype(str).to_numpy(), name="node_id")
    return PlaceNames(index=index, spans=span_places, nodes=node_places)


def with_places(frame: gpd.GeoDataFrame, names: PlaceNames, *, id_field: str | None = None,
                column: str = "place") -> gpd.GeoDataFrame:
    """``frame`` with a ``place`` column ("street, area", None where neither is known):
    looked up by ``id_field`` in ``names`` (``span_id``, ``node_id``), or, without one,
    found for the frame's own geometries (builds). Not a copy when nothing is known.

    Examples
    --------
    >>> from netgis.generate import generate_city
    >>> city = generate_city(premises=300, seed=1)
    >>> with_places(city.spans, place_names(city), id_field="span_id")["place"].iloc[5]
    'Birkenstraße, Nordend'
    """
    if id_field == "span_id":
        table = names.spans.reindex(frame[id_field].astype(str).to_numpy())
    elif id_field == "node_id":
        table = names.nodes.reindex(frame[id_field].astype(str).to_numpy())
    else:
        table = names.places(frame.geometry.to_numpy())
    text = places_text(table)
    if not any(text):
        return frame
    out = frame.copy()
    out[column] = pd.Series(text, index=frame.index, dtype=object)
    return out


def places_text(table: pd.DataFrame) -> list[str | None]:
    """``"street, area"`` of each row of a table of places (None where neither is known).

    Examples
    --------
    >>> places_text(pd.DataFrame({"street": ["Ringweg", None, None], "area": ["Ost", "Ost", None]}))
    ['Ringweg, Ost', 'Ost', None]
    """
    street = pd.Series(table["street"].to_numpy(dtype=object), dtype=object)
    area = pd.Series(table["area"].to_numpy(dtype=object), dtype=object)
    text = street.where(street.notna(), area)
    both = street.notna() & area.notna()
    text[both] = street[both] + ", " + area[both]
    return list(text.astype(object).where(text.notna(), None))


def _text(values: pd.Series) -> pd.Series:
    """``values`` as stripped text (objects), None where missing or blank."""
    text = values.astype(object).where(values.notna(), None).map(
        lambda v: None if v is None else str(v).strip() or None)
    return text.astype(object)
