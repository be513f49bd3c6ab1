"""Vector tiles (Mapbox Vector Tiles, XYZ in Web Mercator) of the four layers.

The tile pyramid is the usual XYZ one (EPSG:3857, z 0-22, y from the north).
A tile of a layer holds, as one MVT layer named after the layer (extent
:data:`EXTENT`), every feature whose geometry intersects the tile, with the
layer's fields and its analysis columns (:data:`TILE_RESULT_COLUMNS`) as
properties; the id field (``premise_id``...) is a property too.

Thinning (docs/spec.md §3.10 allows it below z14): below :data:`THIN_BELOW_ZOOM`, the
nodes, spans and premises of a tile are thinned deterministically: the tile's
WGS84 box is cut into ``THIN_GRID x THIN_GRID`` cells and each cell keeps the
one feature with the lowest id (code point order) among those whose bounding
box starts (lower left corner) in it. Should the encoded tile still exceed
:data:`MAX_TILE_BYTES`, the grid is halved until it does not. Areas are never
thinned (a handful of polygons). From z14 up nothing is thinned.

Where the features come from is the repository's business
(:meth:`netgis.storage.Repository.vector_tile`, over each database's spatial
index); the rows of either database are encoded here by :func:`encode_features`,
a vectorised MVT writer (numpy). ``mapbox-vector-tile`` decodes its output in
the tests, but its own encoder takes ~0.6 s for 6,000 points and PostGIS's
``ST_AsMVT`` over rows joined with the analysis 2-3 times what this writer
takes (measured in docs/vector-tiles.md).

Examples
--------
>>> tile = TileAddress("premises", 14, 8580, 5541)
>>> [round(v, 4) for v in tile.bounds()]
[8.5254, 50.205, 8.5474, 50.2191]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import shapely

from netgis.errors import NotFoundError
from netgis.schema import LAYER_NAMES, LAYERS, RESULT_FIELDS

if TYPE_CHECKING:
    import geopandas as gpd

    from netgis.engine.analysis import Analysis

#: Extent (coordinate units across a tile) of every layer of every tile.
EXTENT = 4096
#: Units beyond the tile's edges kept when lines and polygons are clipped (MVT renderers
#: draw strokes that cross the edge without a seam).
BUFFER = 64
#: Highest zoom served (inclusive); the lowest is 0.
MAX_ZOOM = 22
#: From this zoom up every feature intersecting a tile is in it; below, tiles are thinned.
THIN_BELOW_ZOOM = 14
#: Cells per side of the thinning grid of a tile below :data:`THIN_BELOW_ZOOM`.
THIN_GRID = 64
#: No tile is larger than this (below :data:`THIN_BELOW_ZOOM` the grid is coarsened to fit).
MAX_TILE_BYTES = 500_000
#: The layers that are thinned below :data:`THIN_BELOW_ZOOM`.
THINNED_LAYERS = ("nodes", "spans", "premises")
#: Latitude limit of Web Mercator.
MAX_LATITUDE = 85.0511287798066
#: The analysis columns each layer's tiles carry (after the layer's own fields).
TILE_RESULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "premises": ("passed", "distance_m", "served_span_id", "span_protected", "node_protected",
                 "duct_protected", "loss_db", "margin_db", "in_budget"),
    "spans": ("lit", "cut_premises", "cut_units", "length_m"),
    "nodes": ("failure_premises", "failure_units"),
    "areas": (),
}
#: The layers whose tiles also carry each feature's ``place`` ("street, area", docs/spec.md
#: §2.12), found for the tile's own features when it is made.
PLACE_LAYERS = ("spans", "nodes")
#: MVT geometry types.
_POINT, _LINESTRING, _POLYGON = 1, 2, 3


@dataclass(frozen=True)
class TileAddress:
    """One tile of one layer: ``layer`` and XYZ ``z``/``x``/``y`` (checked by :meth:`of`)."""

    layer: str
    z: int
    x: int
    y: int

    @classmethod
    def of(cls, layer: str, z: int, x: int, y: int) -> TileAddress:
        """The address, or NotFoundError for an unknown layer or a tile outside the pyramid.

        Examples
        --------
        >>> TileAddress.of("spans", 0, 0, 0)
        TileAddress(layer='spans', z=0, x=0, y=0)
        >>> TileAddress.of("spans", 1, 2, 0)
        Traceback (most recent call last):
        ...
        netgis.errors.NotFoundError: tiles has no feature with id 'spans/1/2/0'
        """
        if layer not in LAYER_NAMES:
            raise NotFoundError("layers", str(layer))
        if not (0 <= z <= MAX_ZOOM and 0 <= x < 2 ** z and 0 <= y < 2 ** z):
            raise NotFoundError("tiles", f"{layer}/{z}/{x}/{y}")
        return cls(layer, int(z), int(x), int(y))

    def bounds(self) -> tuple[float, float, float, float]:
        """The tile's WGS84 box (west, south, east, north); Mercator tiles are lon/lat boxes."""
        n = 2 ** self.z
        west = self.x / n * 360.0 - 180.0
        east = (self.x + 1) / n * 360.0 - 180.0
        north = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * self.y / n))))
        south = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (self.y + 1) / n))))
        return west, south, east, north

    @property
    def thin_grid(self) -> int | None:
        """Cells per side of the thinning grid, None when every feature is kept."""
        if self.z >= THIN_BELOW_ZOOM or self.layer not in THINNED_LAYERS:
            return None
        return THIN_GRID


def tile_fields(layer: str) -> dict[str, str]:
    """Every property of ``layer``'s tiles and its type (``text``, ``int``, ``float``, ``bool``).

    Examples
    --------
    >>> list(tile_fields("nodes"))[:3], tile_fields("spans")["lit"]
    (['node_id', 'kind', 'status'], 'bool')
    """
    spec = LAYERS[layer]
    out: dict[str, str] = {f.name: f.type for f in spec.fields}
    results = {f.name: f.type for f in RESULT_FIELDS.get(layer, ())}
    for name in TILE_RESULT_COLUMNS[layer]:
        out[name] = results[name]
    if layer in PLACE_LAYERS:
        out["place"] = "text"
    return out


def check_layer(layer: str) -> str:
    """``layer`` when it is one of the four, else NotFoundError."""
    if layer not in LAYER_NAMES:
        raise NotFoundError("layers", str(layer))
    return layer


def render_tile(address: TileAddress,
                encode: Callable[[TileAddress, int | None], bytes]) -> bytes:
    """The tile ``encode(address, grid)`` makes, its thinning grid coarsened until it fits.

    ``encode`` returns the MVT bytes of the tile thinned on a ``grid`` x ``grid``
    grid (None: not thinned). Below :data:`THIN_BELOW_ZOOM` a tile over
    :data:`MAX_TILE_BYTES` is made again on a grid half as fine.
    """
    grid = address.thin_grid
    body = encode(address, grid)
    while grid is not None and len(body) > MAX_TILE_BYTES and grid > 1:
        grid //= 2
        body = encode(address, grid)
    return body


# ----------------------------------------------------------------------------- projection


def to_tile_coords(geoms: np.ndarray, address: TileAddress) -> np.ndarray:
    """WGS84 geometries in the tile's coordinates (0..EXTENT, y down), not rounded."""
    n = float(2 ** address.z)

    def project(xy: np.ndarray) -> np.ndarray:
        lon = xy[:, 0]
        lat = np.radians(np.clip(xy[:, 1], -MAX_LATITUDE, MAX_LATITUDE))
        px = ((lon + 180.0) / 360.0 * n - address.x) * EXTENT
        s = np.sin(lat)
        py = ((0.5 - np.log((1 + s) / (1 - s)) / (4 * np.pi)) * n - address.y) * EXTENT
        return np.column_stack([px, py])

    out: np.ndarray = shapely.transform(geoms, project)
    return out


# ------------------------------------------------------------------------------- encoding


def _varints(values: np.ndarray) -> np.ndarray:
    """Protocol-buffer varints of non-negative integers, concatenated (uint8)."""
    v = np.asarray(values, dtype=np.uint64)
    if v.size == 0:
        return np.zeros(0, dtype=np.uint8)
    nbytes = _varint_len(v)
    width = int(nbytes.max())
    shifts = np.arange(width, dtype=np.uint64) * np.uint64(7)
    groups = ((v[:, None] >> shifts[None, :]) & np.uint64(0x7F)).astype(np.uint8)
    col = np.arange(width)[None, :]
    groups |= np.where(col < (nbytes[:, None] - 1), 0x80, 0).astype(np.uint8)
    out: np.ndarray = groups[col < nbytes[:, None]]
    return out


def _varint_len(values: np.ndarray) -> np.ndarray:
    """Bytes of the varint of each value."""
    v = np.asarray(values, dtype=np.uint64)
    nbytes = np.ones(v.shape, dtype=np.int64)
    top = int(v.max()) if v.size else 0
    k = 1
    while k < 10 and top >= 1 << (7 * k):
        nbytes += v >= np.uint64(1 << (7 * k))
        k += 1
    return nbytes


def _varint(value: int) -> bytes:
    """One varint (plain Python: cheaper than numpy for a single value)."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _zigzag(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.int64)
    return ((v << 1) ^ (v >> 63)).astype(np.uint64)


def _field(tag: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return bytes([tag << 3 | 2]) + _varint(len(payload)) + payload


def _values_field(values: np.ndarray, kind: str) -> bytes:
    """The layer's ``values`` fields (MVT ``Value`` messages) of one property's distinct values."""
    if kind == "bool":
        return b"".join(bytes([0x22, 2, 0x38, 1 if bool(v) else 0]) for v in values)
    if kind == "int":
        return b"".join(_field(4, b"\x30" + _varint((int(v) << 1) ^ (int(v) >> 63)))
                        for v in values)
    if kind == "float":
        # [values field, length 9, double_value field, 8 bytes little endian] per value
        rows = np.zeros((len(values), 11), dtype=np.uint8)
        rows[:, :3] = (0x22, 9, 0x19)
        rows[:, 3:] = np.asarray(values, dtype="<f8").view(np.uint8).reshape(-1, 8)
        return rows.tobytes()
    out = []
    for v in values:
        text = str(v).encode("utf-8")
        n = len(text)
        out.append(bytes((0x22, n + 2, 0x0A, n)) + text if n < 126
                   else _field(4, _field(1, text)))
    return b"".join(out)


def _properties(columns: Mapping[str, np.ndarray], n: int, fields: dict[str, str]
                ) -> tuple[list[str], list[bytes], np.ndarray, np.ndarray]:
    """Keys, values and each feature's tags (flat tag values, their feature index)."""
    keys: list[str] = []
    values: list[bytes] = []
    n_values = 0
    key_idx, value_idx = [], []
    for name, kind in fields.items():
        if name not in columns:
            continue
        codes, uniques = pd.factorize(columns[name], use_na_sentinel=True)
        if len(uniques) == 0:
            continue
        key_idx.append(np.full(n, len(keys)))
        value_idx.append(np.where(codes >= 0, codes + n_values, -1))
        keys.append(name)
        values.append(_values_field(np.asarray(uniques), kind))
        n_values += len(uniques)
    if not keys:
        return keys, values, np.zeros(0, np.uint64), np.zeros(0, np.int64)
    k = np.column_stack(key_idx)
    v = np.column_stack(value_idx)
    present = v >= 0
    pairs = np.stack([k, v], axis=2)[present]  # row-major: by feature, then by key
    feature = np.repeat(np.arange(n), present.sum(axis=1))
    return keys, values, pairs.reshape(-1).astype(np.uint64), np.repeat(feature, 2)


def _point_commands(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MoveTo of each point: the flat command integers and their feature index."""
    n = len(xy)
    cmds = np.column_stack([np.full(n, 9, dtype=np.uint64), _zigzag(xy[:, 0]),
                            _zigzag(xy[:, 1])])
    return cmds.reshape(-1), np.repeat(np.arange(n), 3)


def _path_commands(geom: shapely.Geometry, polygon: bool) -> list[int]:
    """Command integers of one line or polygon feature (tile coordinates, rounded)."""
    out: list[int] = []
    cursor = np.zeros(2, dtype=np.int64)
    for part in shapely.get_parts(geom):
        rings = ([part.exterior, *part.interiors] if polygon else [part])
        for ring_no, ring in enumerate(rings):
            xy = np.rint(shapely.get_coordinates(ring)).astype(np.int64)
            keep = np.ones(len(xy), dtype=bool)
            keep[1:] = np.any(xy[1:] != xy[:-1], axis=1)
            xy = xy[keep]
            if polygon:
                if len(xy) > 1 and np.array_equal(xy[0], xy[-1]):
                    xy = xy[:-1]
                if len(xy) < 3:
                    continue
                nxt = np.roll(xy, -1, axis=0)
                area = float(np.sum(xy[:, 0] * nxt[:, 1] - nxt[:, 0] * xy[:, 1]))
                if area == 0:
                    continue
                # MVT: exterior rings have a positive area in tile coordinates, holes negative
                if (area < 0) == (ring_no == 0):
                    xy = xy[::-1]
            elif len(xy) < 2:
                continue
            deltas = np.diff(np.vstack([cursor, xy]), axis=0)
            cursor = xy[-1]
            zz = _zigzag(deltas).reshape(-1, 2)
            out += [9, int(zz[0, 0]), int(zz[0, 1])]
            out += [((len(xy) - 1) << 3) | 2, *(int(v) for v in zz[1:].reshape(-1))]
            if polygon:
                out.append(15)
    return out


def _geometry_commands(geoms: np.ndarray, address: TileAddress
                       ) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Geometry type, flat command integers, their feature index, and which features drew."""
    tile = to_tile_coords(geoms, address)
    kinds = set(shapely.get_type_id(tile).tolist())
    if kinds <= {0}:  # points: every one selected lies in the tile
        xy = np.rint(shapely.get_coordinates(tile)).astype(np.int64)
        cmds, feature = _point_commands(xy)
        return _POINT, cmds, feature, np.ones(len(tile), dtype=bool)
    polygon = bool(kinds & {3, 6})
    lo, hi = -BUFFER, EXTENT + BUFFER
    clipped = shapely.clip_by_rect(tile, lo, lo, hi, hi)
    per_feature = [_path_commands(g, polygon) if not shapely.is_empty(g) else []
                   for g in clipped]
    drawn = np.array([bool(c) for c in per_feature], dtype=bool)
    cmds = np.array([v for c in per_feature for v in c], dtype=np.uint64)
    counts = np.array([len(c) for c in per_feature if c], dtype=np.int64)
    feature = np.repeat(np.arange(len(counts)), counts)
    return (_POLYGON if polygon else _LINESTRING), cmds, feature, drawn


def encode_tile(frame: gpd.GeoDataFrame, address: TileAddress,
                fields: dict[str, str] | None = None) -> bytes:
    """The MVT of ``frame`` (WGS84 features of one layer) as tile ``address``.

    One layer named ``address.layer``, extent :data:`EXTENT`; properties are
    ``fields`` (default :func:`tile_fields`) that ``frame`` has, nulls left out.
    Lines and polygons are clipped to the tile plus :data:`BUFFER`; a feature
    that vanishes once rounded to the tile's grid is left out. No feature: ``b""``.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> pts = gpd.GeoDataFrame({"premise_id": ["p1"]}, geometry=[shapely.Point(8.53, 50.1)],
    ...                        crs=4326)
    >>> len(encode_tile(pts, TileAddress("premises", 14, 8580, 5541))) > 0
    True
    """
    columns = {c: _plain(frame[c]) for c in frame.columns if c != frame.geometry.name}
    return encode_features(np.asarray(frame.geometry.values), columns, address, fields)


def _plain(values: Any) -> np.ndarray:
    """A column as a numpy array whose nulls are None or NaN (what factorize drops)."""
    series = pd.Series(values)
    if pd.api.types.is_bool_dtype(series.dtype) and not series.hasnans:
        return series.to_numpy(dtype=bool)
    if pd.api.types.is_float_dtype(series.dtype):
        return series.to_numpy(dtype=float, na_value=np.nan)
    out: np.ndarray = series.astype(object).where(series.notna(), None).to_numpy(dtype=object)
    return out


def encode_features(geoms: np.ndarray, columns: Mapping[str, np.ndarray],
                    address: TileAddress, fields: dict[str, str] | None = None) -> bytes:
    """The MVT of WGS84 ``geoms`` with properties ``columns`` (arrays, nulls as None or NaN)
    as tile ``address``: :func:`encode_tile` without pandas, for the hot path."""
    if len(geoms) == 0:
        return b""
    kind, cmds, cmd_feature, drawn = _geometry_commands(geoms, address)
    if not drawn.any():
        return b""
    if not drawn.all():
        columns = {name: values[drawn] for name, values in columns.items()}
    n = int(drawn.sum())
    keys, values, tags, tag_feature = _properties(
        columns, n, fields if fields is not None else tile_fields(address.layer))
    nt = np.bincount(tag_feature, minlength=n)
    ng = np.bincount(cmd_feature, minlength=n)
    tag_bytes = np.bincount(tag_feature, weights=_varint_len(tags), minlength=n).astype(np.int64)
    geom_bytes = np.bincount(cmd_feature, weights=_varint_len(cmds),
                             minlength=n).astype(np.int64)
    # each feature: [features field, len, tags field, len, tags..., type field, type,
    # geometry field, len, commands...], all of them varints
    feature_len = (1 + _varint_len(tag_bytes) + tag_bytes + 2
                   + 1 + _varint_len(geom_bytes) + geom_bytes)
    size = 8 + nt + ng
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    seq = np.zeros(int(size.sum()), dtype=np.uint64)
    head = np.column_stack([np.full(n, 0x12), feature_len, np.full(n, 0x12), tag_bytes])
    seq[start[:, None] + np.arange(4)] = head
    if len(tags):
        first = np.concatenate([[0], np.cumsum(nt)[:-1]])
        rank = np.arange(len(tags)) - first[tag_feature]
        seq[start[tag_feature] + 4 + rank] = tags
    mid = np.column_stack([np.full(n, 0x18), np.full(n, kind), np.full(n, 0x22), geom_bytes])
    seq[(start + 4 + nt)[:, None] + np.arange(4)] = mid
    first_g = np.concatenate([[0], np.cumsum(ng)[:-1]])
    rank_g = np.arange(len(cmds)) - first_g[cmd_feature]
    seq[start[cmd_feature] + 8 + nt[cmd_feature] + rank_g] = cmds
    layer = b"".join([
        b"\x78\x02",  # version 2
        _field(1, address.layer.encode("utf-8")),
        _varints(seq).tobytes(),
        *(_field(3, k.encode("utf-8")) for k in keys),
        *values,
        b"\x28" + _varint(EXTENT),
    ])
    return _field(3, layer)


@dataclass(frozen=True)
class TileAttributes:
    """The analysis columns of one layer's tiles, looked up by feature id.

    Examples
    --------
    >>> att = TileAttributes(pd.Index(["a", "b"]), {"lit": np.array([True, False])})
    >>> att.lookup(np.array(["b", "x"], dtype=object))["lit"].tolist()
    [False, None]
    """

    index: pd.Index
    columns: dict[str, np.ndarray]

    def lookup(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        """Each column's values of ``ids`` (an id the analysis does not know: null)."""
        where = self.index.get_indexer(pd.Index(ids))
        missing = where < 0
        out: dict[str, np.ndarray] = {}
        for name, values in self.columns.items():
            taken = values[where]
            if missing.any():
                taken = taken.astype(float if values.dtype.kind == "f" else object)
                taken[missing] = np.nan if values.dtype.kind == "f" else None
            out[name] = taken
        return out


def tile_attributes(result: Analysis, layer: str,
                    reuse: TileAttributes | None = None) -> TileAttributes | None:
    """The analysis columns of ``layer``'s tiles from an analysis, by id (text).

    None for a layer without analysis columns (areas). ``reuse``: the attributes of an
    earlier state of the layer; its id index serves again when the ids are the same,
    in the same order (a live analysis after an edit), so a million ids are not
    hashed again.

    Examples
    --------
    >>> from netgis.engine.analysis import analyze
    >>> from netgis.io import read_dataset
    >>> dataset = read_dataset("tests/examples/ring_spur/dataset.gpkg")
    >>> list(tile_attributes(analyze(dataset), "spans").columns)
    ['lit', 'cut_premises', 'cut_units', 'length_m']
    """
    names = TILE_RESULT_COLUMNS[check_layer(layer)]
    if not names:
        return None
    frame = getattr(result, layer)
    ids = frame[LAYERS[layer].id_field].astype(str).to_numpy(dtype=object)
    if reuse is not None and len(reuse.index) == len(ids) and reuse.index.equals(pd.Index(ids)):
        index = reuse.index
    else:
        index = pd.Index(ids)
    return TileAttributes(index, {c: _plain(frame[c]) for c in names if c in frame.columns})


# ----------------------------------------------------------------------------- in memory


class LayerTiles:
    """Vector tiles of one layer held in memory (the features of a design plan, which are
    not rows of the database): the same features per tile and the same thinning as
    :meth:`netgis.storage.Repository.versioned_vector_tile`, from an STRtree.

    ``frame`` holds the layer's fields and, for the analysed layers, its analysis columns
    (a result frame of :class:`netgis.engine.analysis.Analysis`), in any CRS.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> pts = gpd.GeoDataFrame({"premise_id": ["p1", "p2"], "units": [1, 2]},
    ...                        geometry=[shapely.Point(8.53, 50.21), shapely.Point(0, 0)],
    ...                        crs=4326)
    >>> tiles = LayerTiles(pts, "premises")
    >>> len(tiles.tile(TileAddress("premises", 14, 8580, 5541))) > 0
    True
    >>> tiles.tile(TileAddress("premises", 14, 0, 0))
    b''
    """

    def __init__(self, frame: gpd.GeoDataFrame, layer: str,
                 places: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        wgs = frame if frame.crs is not None and frame.crs.to_epsg() == 4326 \
            else frame.to_crs(4326)
        self.layer = check_layer(layer)
        #: each WGS84 geometry's place, for the spans and nodes of a tile (as the
        #: repository's tiles carry it)
        self.places = places if layer in PLACE_LAYERS else None
        self.geoms = np.asarray(wgs.geometry.values, dtype=object)
        self.ids = wgs[LAYERS[layer].id_field].astype(str).to_numpy(dtype=object)
        self.columns = {c: _plain(wgs[c]) for c in tile_fields(layer) if c in wgs.columns}
        self.bounds = shapely.bounds(self.geoms).reshape(-1, 4)
        self.tree = shapely.STRtree(self.geoms)

    def tile(self, address: TileAddress) -> bytes:
        """The MVT of ``address`` (of this layer); ``b""`` when no feature is in it."""
        def encode(tile: TileAddress, grid: int | None) -> bytes:
            box = tile.bounds()
            # bounding boxes first, as the database's spatial index answers
            rows = np.sort(self.tree.query(shapely.box(*box)))
            if grid is not None and len(rows):
                rows = self._thinned(rows, box, grid)
            rows = rows[shapely.intersects(self.geoms[rows], shapely.box(*box))]
            if not len(rows):
                return b""
            columns = {c: v[rows] for c, v in self.columns.items()}
            if self.places is not None:
                columns["place"] = self.places(self.geoms[rows])
            return encode_features(self.geoms[rows], columns, tile)

        return render_tile(address, encode)

    def _thinned(self, rows: np.ndarray, box: tuple[float, float, float, float],
                 grid: int) -> np.ndarray:
        """Of ``rows``, the lowest id (code point order) of each cell of the ``grid`` x
        ``grid`` grid over ``box`` holding its bounding box's lower left corner (clamped
        into the box), as the repository's tiles keep."""
        west, south, east, north = box
        b = self.bounds[rows]
        cx = np.floor((np.maximum(b[:, 0], west) - west) * (grid / (east - west)))
        cy = np.floor((np.maximum(b[:, 1], south) - south) * (grid / (north - south)))
        ids = self.ids[rows].astype(str)  # numpy's text order is code point order
        order = np.lexsort((ids, cy, cx))
        first = np.ones(len(order), dtype=bool)
        first[1:] = (cx[order][1:] != cx[order][:-1]) | (cy[order][1:] != cy[order][:-1])
        return np.sort(rows[order[first]])


def tilejson(layer: str, frame: gpd.GeoDataFrame, tile_url: str) -> dict[str, Any]:
    """The TileJSON 3.0 document of ``layer``'s tiles at ``tile_url`` (a template with
    ``{z}``, ``{x}``, ``{y}``): zoom range, the bounds and center of ``frame`` (the layer's
    features), and the fields of its features.

    Examples
    --------
    >>> import geopandas as gpd
    >>> doc = tilejson("spans", gpd.GeoDataFrame(geometry=[], crs=4326), "t/{z}/{x}/{y}.mvt")
    >>> doc["tilejson"], doc["bounds"][0], doc["vector_layers"][0]["id"]
    ('3.0.0', -180.0, 'spans')
    """
    if len(frame) and not frame.geometry.is_empty.all():
        west, south, east, north = (float(v) for v in frame.to_crs(4326).total_bounds)
    else:
        west, south, east, north = -180.0, -MAX_LATITUDE, 180.0, MAX_LATITUDE
    span = max(east - west, north - south, 1e-9)
    zoom = int(min(MAX_ZOOM, max(0, math.floor(math.log2(360.0 / span)))))
    fields = {name: _TILEJSON_TYPES[kind] for name, kind in tile_fields(layer).items()}
    return {
        "tilejson": "3.0.0",
        "name": f"netgis {layer}",
        "description": f"The {layer} layer with its analysis columns; every feature from "
                       f"z{THIN_BELOW_ZOOM} up, thinned below.",
        "version": "1.0.0",
        "scheme": "xyz",
        "tiles": [tile_url],
        "minzoom": 0,
        "maxzoom": MAX_ZOOM,
        "bounds": [west, south, east, north],
        "center": [(west + east) / 2, (south + north) / 2, zoom],
        "vector_layers": [{"id": layer, "description": LAYERS[layer].description,
                           "minzoom": 0, "maxzoom": MAX_ZOOM, "fields": fields}],
    }


#: TileJSON names of the field types.
_TILEJSON_TYPES = {"text": "String", "int": "Number", "float": "Number", "bool": "Boolean"}
