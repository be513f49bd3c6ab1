"""Base-map tile archives: a local MBTiles or PMTiles file, read tile by tile.

A city that runs netgis offline makes one file of base-map tiles from an
OpenStreetMap extract (docs/basemap.md) and the server hands its tiles out
(``NETGIS_BASEMAP``, ``GET /basemap/{z}/{x}/{y}.{ext}``). This module only reads:
:func:`open_basemap` checks the file once and returns a :class:`BasemapFile`
whose :class:`BasemapInfo` says what the tiles are (raster PNG / JPEG / WebP or
vector MVT), their zoom range, bounds and attribution, and whose
:meth:`BasemapFile.tile` returns one tile's bytes as stored (vector tiles are often
gzip-compressed: :func:`is_gzip` tells).

- MBTiles (https://github.com/mapbox/mbtiles-spec) is an SQLite file read with
  :mod:`sqlite3`, read-only. Its rows are addressed in TMS order: row
  ``2**z - 1 - y`` holds XYZ tile ``y``.
- PMTiles v3 is read with the ``pmtiles`` package's header, directory and
  tile-id functions; the directories it decodes are kept (a few dozen), as the
  package's own reader decodes the root directory again for every tile.

Examples
--------
>>> import sqlite3, tempfile
>>> path = f"{tempfile.mkdtemp()}/tiny.mbtiles"
>>> con = sqlite3.connect(path)
>>> _ = con.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
>>> _ = con.executemany("INSERT INTO metadata VALUES (?, ?)",
...                     [("format", "png"), ("attribution", "<a href='x'>&copy; Us</a>")])
>>> _ = con.execute("CREATE TABLE tiles (zoom_level INT, tile_column INT, tile_row INT,"
...                 " tile_data BLOB)")
>>> _ = con.execute("INSERT INTO tiles VALUES (1, 0, 1, ?)", (b"top-left",))
>>> con.commit(); con.close()
>>> base = open_basemap(path)
>>> base.info.ext, base.info.attribution, base.tile(1, 0, 0), base.tile(1, 0, 1)
('png', '© Us', b'top-left', None)
"""

from __future__ import annotations

import functools
import gzip
import html
import json
import mmap
import re
import sqlite3
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pmtiles.tile import (
    Compression,
    Entry,
    MagicNumberNotFound,
    SpecVersionUnsupported,
    TileType,
    deserialize_directory,
    deserialize_header,
    find_tile,
    zxy_to_tileid,
)

from netgis.errors import ConfigError

#: The deepest zoom a tile address may have (XYZ tiles of 2**30 per side are ~4 cm).
MAX_ZOOM = 30
#: Tile formats served, by their file extension, and their media types.
MEDIA_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "pbf": "application/vnd.mapbox-vector-tile",
}
#: What an MBTiles ``format`` value may say, as the extension served.
_MBTILES_FORMATS = {"png": "png", "jpg": "jpg", "jpeg": "jpg", "webp": "webp", "pbf": "pbf",
                    "mvt": "pbf"}
_PMTILES_TYPES = {TileType.PNG: "png", TileType.JPEG: "jpg", TileType.WEBP: "webp",
                  TileType.MVT: "pbf"}
_WEB_MERCATOR_LAT = 85.0511287798066
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


class BasemapError(ConfigError):
    """A base-map file netgis cannot serve: missing, unreadable, or of a kind not supported."""


def is_gzip(data: bytes) -> bool:
    """Whether ``data`` is gzip-compressed (starts with gzip's magic number).

    Examples
    --------
    >>> is_gzip(gzip.compress(b"tile")), is_gzip(b"tile")
    (True, False)
    """
    return data[:2] == b"\x1f\x8b"


def plain_text(markup: str) -> str:
    """The text of an attribution written as HTML: tags dropped, entities decoded.

    Attributions are shown as text (never parsed as HTML in a page).

    Examples
    --------
    >>> plain_text('<a href="https://osm.org/copyright">&copy; OpenStreetMap</a>  contributors')
    '© OpenStreetMap contributors'
    """
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", markup))).strip()


@dataclass(frozen=True)
class BasemapInfo:
    """What a base-map file holds.

    Attributes
    ----------
    kind
        ``mbtiles`` or ``pmtiles``.
    ext
        Tile format by its file extension: ``png``, ``jpg``, ``webp`` (raster) or
        ``pbf`` (Mapbox Vector Tiles).
    name, attribution
        From the file's metadata (the attribution as plain text, see :func:`plain_text`).
    min_zoom, max_zoom
        Zoom levels the file has tiles for; a map shows deeper zooms by enlarging
        ``max_zoom``'s tiles.
    bounds
        WGS84 box (west, south, east, north) the tiles cover.
    center
        (lon, lat, zoom) to open a map at.
    vector_layers
        Names of the layers of vector tiles (empty for raster tiles).
    """

    kind: str
    ext: str
    name: str
    attribution: str
    min_zoom: int
    max_zoom: int
    bounds: tuple[float, float, float, float]
    center: tuple[float, float, int]
    vector_layers: tuple[str, ...] = field(default_factory=tuple)

    @property
    def vector(self) -> bool:
        """Whether the tiles are vector tiles."""
        return self.ext == "pbf"

    @property
    def media_type(self) -> str:
        """The tiles' media type."""
        return MEDIA_TYPES[self.ext]


class BasemapFile:
    """An open base-map file: its :attr:`info` and its tiles (:meth:`tile`).

    Safe to use from several threads at once (each thread reads MBTiles through its own
    read-only connection; a PMTiles file is one read-only memory map).
    """

    def __init__(self, path: Path, info: BasemapInfo,
                 read: Callable[[int, int, int], bytes | None], close: Callable[[], None]
                 ) -> None:
        self.path = path
        self.info = info
        self._read = read
        # closed when dropped too: a server or test that never calls close leaks nothing
        self._close = weakref.finalize(self, close)

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        """The stored bytes of XYZ tile ``z/x/y``; None when the file has no such tile.

        Raises
        ------
        ValueError
            For an address outside the tile pyramid (``0 <= x, y < 2**z``, ``z <= 30``).
        """
        if not (0 <= z <= MAX_ZOOM and 0 <= x < 2 ** z and 0 <= y < 2 ** z):
            raise ValueError(f"no tile {z}/{x}/{y}: z must be 0..{MAX_ZOOM} and x, y "
                             f"0..2**z - 1")
        if z < self.info.min_zoom or z > self.info.max_zoom:
            return None
        return self._read(z, x, y)

    def close(self) -> None:
        """Release the file."""
        self._close()

    def __repr__(self) -> str:
        return f"BasemapFile({str(self.path)!r}, {self.info.kind}, {self.info.ext})"


def open_basemap(path: str | Path) -> BasemapFile:
    """Open an MBTiles (``.mbtiles``) or PMTiles (``.pmtiles``) file and check it.

    Raises
    ------
    BasemapError
        Naming the file and what is wrong: missing, not of its kind, a tile format or
        compression that cannot be served, no tiles.
    """
    p = Path(path)
    if not p.is_file():
        raise BasemapError(f"base map {p}: no such file")
    suffix = p.suffix.lower()
    if suffix == ".mbtiles":
        return _open_mbtiles(p)
    if suffix == ".pmtiles":
        return _open_pmtiles(p)
    raise BasemapError(f"base map {p}: must be an .mbtiles or .pmtiles file")


# ---- MBTiles ------------------------------------------------------------------------------

def write_mbtiles(path: str | Path, tiles: Mapping[tuple[int, int, int], bytes],
                  metadata: Mapping[str, str]) -> Path:
    """Write XYZ ``tiles`` (``(z, x, y)``: bytes) and ``metadata`` (``format``, ``bounds``,
    ``attribution``...) into a new MBTiles file at ``path`` (rows in TMS order).

    For small base maps made by a program (the tests' and the screenshots'); a city's
    comes from a tile tool (docs/basemap.md).

    Examples
    --------
    >>> import tempfile
    >>> path = write_mbtiles(f"{tempfile.mkdtemp()}/t.mbtiles", {(2, 1, 0): b"tile"},
    ...                      {"format": "png", "name": "t"})
    >>> base = open_basemap(path)
    >>> base.info.min_zoom, base.info.max_zoom, base.tile(2, 1, 0)
    (2, 2, b'tile')
    """
    p = Path(path)
    if p.exists():
        raise BasemapError(f"base map {p}: exists already")
    con = sqlite3.connect(p)
    try:
        with con:
            con.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
            con.execute("CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, "
                        "tile_row INTEGER, tile_data BLOB)")
            con.execute("CREATE UNIQUE INDEX tile_index ON tiles "
                        "(zoom_level, tile_column, tile_row)")
            con.executemany("INSERT INTO metadata VALUES (?, ?)", sorted(metadata.items()))
            con.executemany("INSERT INTO tiles VALUES (?, ?, ?, ?)",
                            [(z, x, (1 << z) - 1 - y, data)
                             for (z, x, y), data in sorted(tiles.items())])
    finally:
        con.close()
    return p


def _connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                          check_same_thread=False)
    con.execute("PRAGMA query_only = ON")
    return con


def _open_mbtiles(path: Path) -> BasemapFile:
    try:
        con = _connect(path)
        try:
            meta = {str(k): str(v) for k, v in
                    con.execute("SELECT name, value FROM metadata").fetchall()}
            zooms = con.execute("SELECT min(zoom_level), max(zoom_level) FROM tiles").fetchone()
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise BasemapError(f"base map {path}: not a readable MBTiles file ({exc})") from None
    if zooms is None or zooms[0] is None:
        raise BasemapError(f"base map {path}: the MBTiles file has no tiles")
    fmt = meta.get("format", "").strip().lower()
    if fmt not in _MBTILES_FORMATS:
        raise BasemapError(f"base map {path}: metadata format {fmt or '(missing)'!r} is not "
                           f"one of {', '.join(sorted(_MBTILES_FORMATS))}")
    ext = _MBTILES_FORMATS[fmt]
    info = BasemapInfo(
        kind="mbtiles", ext=ext, name=meta.get("name", path.stem),
        attribution=plain_text(meta.get("attribution", "")),
        min_zoom=_int(meta.get("minzoom"), int(zooms[0])),
        max_zoom=_int(meta.get("maxzoom"), int(zooms[1])),
        bounds=_bounds(meta.get("bounds")),
        center=_center(meta.get("center"), _bounds(meta.get("bounds")), int(zooms[0])),
        vector_layers=_layer_names(meta.get("json")) if ext == "pbf" else (),
    )
    local = threading.local()
    opened: list[sqlite3.Connection] = []
    lock = threading.Lock()

    def connection() -> sqlite3.Connection:
        con: sqlite3.Connection | None = getattr(local, "con", None)
        if con is None:
            con = _connect(path)
            local.con = con
            with lock:
                opened.append(con)
        return con

    def read(z: int, x: int, y: int) -> bytes | None:
        # MBTiles rows are TMS: row 0 is the southernmost
        row = connection().execute(
            "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? "
            "AND tile_row = ?", (z, x, (1 << z) - 1 - y)).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def close() -> None:
        with lock:
            for con in opened:
                con.close()
            opened.clear()

    return BasemapFile(path, info, read, close)


def _int(value: str | None, default: int) -> int:
    try:
        return int(float(value)) if value is not None else default
    except ValueError:
        return default


def _bounds(value: str | None) -> tuple[float, float, float, float]:
    """MBTiles ``bounds`` (``w,s,e,n``); the whole Web Mercator world when missing or bad."""
    world = (-180.0, -_WEB_MERCATOR_LAT, 180.0, _WEB_MERCATOR_LAT)
    try:
        w, s, e, n = (float(v) for v in (value or "").split(","))
    except ValueError:
        return world
    return (w, s, e, n) if w < e and s < n else world


def _center(value: str | None, bounds: tuple[float, float, float, float],
            zoom: int) -> tuple[float, float, int]:
    try:
        lon, lat, z = (float(v) for v in (value or "").split(","))
        return lon, lat, int(z)
    except ValueError:
        return (bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, zoom


def _layer_names(text: str | None) -> tuple[str, ...]:
    """The ``id`` of each of the ``vector_layers`` a metadata JSON lists."""
    try:
        doc = json.loads(text or "{}")
    except json.JSONDecodeError:
        return ()
    layers = doc.get("vector_layers", []) if isinstance(doc, dict) else []
    return tuple(str(layer["id"]) for layer in layers
                 if isinstance(layer, dict) and "id" in layer)


# ---- PMTiles ------------------------------------------------------------------------------

def _open_pmtiles(path: Path) -> BasemapFile:
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise BasemapError(f"base map {path}: cannot read it ({exc.strerror})") from None
    try:
        data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        header = deserialize_header(data[:127])
        info = _pmtiles_info(path, data, header)
    except (MagicNumberNotFound, SpecVersionUnsupported, ValueError, OSError) as exc:
        handle.close()
        raise BasemapError(f"base map {path}: not a PMTiles v3 file ({type(exc).__name__})"
                           ) from None
    except BasemapError:
        handle.close()
        raise

    @functools.lru_cache(maxsize=64)
    def directory(offset: int, length: int) -> list[Entry]:
        return deserialize_directory(data[offset:offset + length])

    def read(z: int, x: int, y: int) -> bytes | None:
        tile_id = zxy_to_tileid(z, x, y)
        offset, length = int(header["root_offset"]), int(header["root_length"])
        for _ in range(4):  # a root directory and at most three levels of leaves
            entry = find_tile(directory(offset, length), tile_id)
            if entry is None:
                return None
            if entry.run_length > 0:
                start = int(header["tile_data_offset"]) + entry.offset
                return bytes(data[start:start + entry.length])
            offset = int(header["leaf_directory_offset"]) + entry.offset
            length = entry.length
        return None

    def close() -> None:
        data.close()
        handle.close()

    return BasemapFile(path, info, read, close)


def _pmtiles_info(path: Path, data: mmap.mmap, header: Any) -> BasemapInfo:
    """What a PMTiles header and metadata say; BasemapError for what cannot be served."""
    if header["internal_compression"] != Compression.GZIP:
        raise BasemapError(f"base map {path}: PMTiles directories compressed with "
                           f"{header['internal_compression'].name} are not supported "
                           "(gzip only)")
    ext = _PMTILES_TYPES.get(header["tile_type"])
    if ext is None:
        raise BasemapError(f"base map {path}: tile type {header['tile_type'].name} cannot be "
                           "served (png, jpg, webp or mvt)")
    compression = header["tile_compression"]
    if compression not in (Compression.NONE, Compression.GZIP, Compression.UNKNOWN):
        raise BasemapError(f"base map {path}: tiles compressed with {compression.name} are not "
                           "supported (none or gzip; `pmtiles convert` can change it)")
    start, length = int(header["metadata_offset"]), int(header["metadata_length"])
    raw = data[start:start + length]
    try:
        meta = json.loads(gzip.decompress(raw) if is_gzip(raw) else raw) if raw else {}
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        meta = {}
    meta = meta if isinstance(meta, dict) else {}
    bounds = (header["min_lon_e7"] / 1e7, header["min_lat_e7"] / 1e7,
              header["max_lon_e7"] / 1e7, header["max_lat_e7"] / 1e7)
    if not (bounds[0] < bounds[2] and bounds[1] < bounds[3]):
        bounds = _bounds(None)
    return BasemapInfo(
        kind="pmtiles", ext=ext, name=str(meta.get("name", path.stem)),
        attribution=plain_text(str(meta.get("attribution", ""))),
        min_zoom=int(header["min_zoom"]), max_zoom=int(header["max_zoom"]), bounds=bounds,
        center=(header["center_lon_e7"] / 1e7, header["center_lat_e7"] / 1e7,
                int(header["center_zoom"])),
        vector_layers=_layer_names(json.dumps(meta)) if ext == "pbf" else (),
    )
