"""Formats netgis reads and writes, and the checks every input passes before GDAL sees it.

A path must be a plain file path (never a URL, an archive member or a driver's
connection string), its content must be the format its suffix names, and a GeoPackage
must hold tables only: :func:`gdal_path` hands GDAL nothing else. :func:`detect_format`
tells the format of a dataset from its path.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from netgis.errors import DatasetFormatError, Problem
from netgis.schema import LAYERS

#: Directory formats: layer file suffix per format name.
DIR_FORMATS: dict[str, str] = {"geojson": ".geojson", "fgb": ".fgb", "parquet": ".parquet"}
#: Format named by a file or directory suffix (lower case).
SUFFIX_FORMATS: dict[str, str] = {
    ".gpkg": "gpkg",
    ".geojson": "geojson",
    ".json": "geojson",
    ".fgb": "fgb",
    ".parquet": "parquet",
    ".geoparquet": "parquet",
}
#: Suffixes of GIS sources GDAL reads that are no dataset netgis reads directly: they go
#: through ``netgis import SOURCE --mapping MAPPING.toml`` (netgis.interop.mapping).
IMPORT_SUFFIXES = frozenset({".shp", ".kml", ".kmz", ".csv", ".tsv", ".gml", ".gpx", ".tab",
                             ".mif", ".dxf", ".sqlite", ".xlsx", ".ods", ".gdb", ".zip"})
#: Every format :func:`write_dataset` and :func:`netgis.generate.write_city` write.
FORMATS = ("gpkg", *DIR_FORMATS)
#: GDAL driver of each format pyogrio writes (GeoParquet is written by pyarrow).
OGR_DRIVERS: dict[str, str] = {"gpkg": "GPKG", "geojson": "GeoJSON", "fgb": "FlatGeobuf"}
#: Formats read through Arrow (typed columns); GeoJSON is read feature by feature.
_ARROW_FORMATS = frozenset({"gpkg", "fgb"})
#: Formats netgis reads, by file suffix: the dataset formats and the sources of a mapped
#: import (docs/interop.md). Nothing else is handed to GDAL.
READ_FORMATS: dict[str, str] = {
    **SUFFIX_FORMATS,
    ".csv": "csv",
    ".shp": "shp",
    ".kml": "kml",
    ".kmz": "kmz",
    ".gpx": "gpx",
}
#: What each format is called in a message.
FORMAT_NAMES: dict[str, str] = {"gpkg": "GeoPackage", "geojson": "GeoJSON", "fgb": "FlatGeobuf",
                                "parquet": "GeoParquet", "csv": "CSV", "shp": "Shapefile",
                                "kml": "KML", "kmz": "KMZ", "gpx": "GPX"}
#: Prefixes that hold GDAL to one driver whatever the content (the others are pinned by
#: their magic bytes, or by their root element and no other driver's marker).
_GDAL_PREFIX: dict[str, str] = {"gpkg": "GPKG:", "geojson": "GeoJSON:", "csv": "CSV:"}
#: Magic bytes at the start of the binary formats.
_MAGIC: dict[str, tuple[bytes, ...]] = {
    "fgb": (b"fgb\x03",),
    "shp": (b"\x00\x00\x27\x0a",),
    "parquet": (b"PAR1",),
    "kmz": (b"PK\x03\x04",),
}
_SQLITE_MAGIC = b"SQLite format 3\x00"
#: The application_id of a GeoPackage (bytes 68-71 of the file): 1.2 and later, 1.0, 1.1.
_GPKG_IDS = (b"GPKG", b"GP10", b"GP11")
#: Text that makes GDAL hand a file to a driver that opens other files or URLs (a vector
#: VRT, a WFS description, a GDAL pipeline), and XML that defines entities: never in a
#: KML or GPX file netgis reads (the formats GDAL has no driver prefix for).
_FOREIGN = re.compile(r"<OGRVRTDataSource|<OGRWFSDataSource|gdal_streamed_alg|<!DOCTYPE"
                      r"|<!ENTITY", re.IGNORECASE)
#: A path GDAL does not take for a file: a virtual file system (/vsicurl/, /vsizip/ ...), a
#: driver or connection prefix (CSV:, GPKG:, PG:, https:, ...), or XML/JSON text itself.
_NOT_A_FILE = re.compile(r"^\s*(?:/vsi|[A-Za-z][A-Za-z0-9_ .+-]*:|<|\{)", re.IGNORECASE)
#: How much of a file's start the content checks read.
_HEAD_BYTES = 64 * 1024
#: Prefix of every temporary netgis writes beside a target.
TEMP_PREFIX = ".netgis-"
#: Where Linux shows the process umask (read by :func:`_umask`).


# ---- formats --------------------------------------------------------------------------------

def detect_format(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """The format to write ``path`` in: ``fmt`` when given, else the one its suffix names.

    ``.gpkg`` is a GeoPackage; ``.geojson``/``.json``, ``.fgb`` and
    ``.parquet``/``.geoparquet`` are directories of layer files in that
    format; any other name is a directory of GeoJSON files. An unknown
    ``fmt`` raises :class:`~netgis.errors.DatasetFormatError`.

    Examples
    --------
    >>> detect_format("city.parquet"), detect_format("out/city"), detect_format("x.GPKG")
    ('parquet', 'geojson', 'gpkg')
    >>> detect_format("city.gpkg", fmt="fgb")
    'fgb'
    """
    if fmt is None:
        return SUFFIX_FORMATS.get(Path(path).suffix.lower(), "geojson")
    if fmt not in FORMATS:
        raise DatasetFormatError([Problem("dataset", None, None, f"unknown format {fmt!r}")])
    return fmt


def dataset_format(path: str | os.PathLike[str]) -> str:
    """How the dataset at ``path`` is stored: ``gpkg`` (one file) or ``dir`` (layer files).

    Examples
    --------
    >>> dataset_format("tests/examples/ring_spur/dataset.gpkg")
    'gpkg'
    """
    p = check_plain_path(path)
    if p.is_dir():
        return "dir"
    if not p.exists():
        raise DatasetFormatError([Problem("dataset", None, None, f"{str(p)!r} does not exist")])
    if detect_format(p) == "gpkg" or _is_sqlite(p):
        return "gpkg"
    raise DatasetFormatError(
        [Problem("dataset", None, None,
                 f"{str(p)!r} is neither a .gpkg file nor a directory of layer files"
                 + _import_hint([p]))]
    )


def check_plain_path(path: str | os.PathLike[str], subject: str = "dataset") -> Path:
    """``path`` as a :class:`~pathlib.Path` when it is a plain file path, else a
    :class:`~netgis.errors.DatasetFormatError`.

    GDAL reads ``/vsicurl/http://...`` from the network, ``/vsizip/...`` from an archive
    and ``CSV:/etc/passwd``, ``GPKG:...`` or ``PG:...`` with a driver or a database of
    its choice: a path that GDAL would read as anything but the file it names is refused.

    Examples
    --------
    >>> check_plain_path("data/sample.gpkg").name
    'sample.gpkg'
    >>> check_plain_path("/vsicurl/http://example.com/x.gpkg")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    netgis.errors.DatasetFormatError: 1 problem: dataset: '/vsicurl/http://...' is not a plain ...
    """
    text = os.fspath(path)
    if _NOT_A_FILE.match(text):
        raise DatasetFormatError([Problem(subject, None, None, f"{text!r} is not a plain file "
                                          "path: GDAL would read it as a URL, an archive member, "
                                          "a driver's connection string or inline data")])
    return Path(text)


def read_format(path: Path) -> str:
    """The format netgis reads ``path`` in: by its suffix (:data:`READ_FORMATS`); an SQLite
    file under another name is a GeoPackage; anything else raises DatasetFormatError.

    Examples
    --------
    >>> read_format(Path("tests/examples/ring_spur/dataset/nodes.geojson"))
    'geojson'
    """
    fmt = READ_FORMATS.get(path.suffix.lower())
    if fmt is not None:
        return fmt
    if _is_sqlite(path):
        return "gpkg"
    raise DatasetFormatError([Problem(path.stem, None, None, f"cannot read {path.name}: not a "
                                      "format netgis reads (" + ", ".join(sorted(READ_FORMATS))
                                      + ")")])


def gdal_path(path: str | os.PathLike[str], fmt: str, *, subject: str | None = None,
              shown: str | None = None) -> str:
    """What to hand GDAL to read ``path`` as ``fmt`` (see :data:`READ_FORMATS`), once the
    path and the content are checked: the absolute path, behind the prefix that holds GDAL
    to the format's driver where GDAL has one.

    Raises
    ------
    DatasetFormatError
        The path is not a plain file path, the content is not ``fmt`` (named without
        quoting it), or a GeoPackage layer is not a table.

    Examples
    --------
    >>> gdal_path("tests/examples/ring_spur/dataset.gpkg", "gpkg")  # doctest: +ELLIPSIS
    'GPKG:/.../tests/examples/ring_spur/dataset.gpkg'
    """
    p = check_plain_path(path, subject or Path(path).stem)
    subject = subject or p.stem
    shown = shown or p.name
    reason = _content_problem(p, fmt)
    if reason is not None:
        raise DatasetFormatError([Problem(subject, None, None, f"cannot read {shown}: {reason}")])
    if fmt == "gpkg":
        _check_gpkg_tables(p, shown)
    return _GDAL_PREFIX.get(fmt, "") + str(p.resolve())


def _content_problem(path: Path, fmt: str) -> str | None:
    """Why the content of ``path`` is not ``fmt`` (None: it is); never quotes the content."""
    name = FORMAT_NAMES[fmt]
    if path.is_dir():
        # a layer stored as a folder of GeoParquet files: pyarrow reads them, not GDAL
        return None if fmt == "parquet" and is_parquet_parts(path) else f"it is a folder, not " \
            f"a {name} file"
    try:
        with path.open("rb") as fh:
            head = fh.read(_HEAD_BYTES)
    except OSError as exc:
        return _reason(exc, path)
    if fmt == "gpkg":
        if not head.startswith(_SQLITE_MAGIC):
            return "it is not a GeoPackage (not an SQLite file)"
        if head[68:72] not in _GPKG_IDS:
            return "it is an SQLite file that does not declare itself a GeoPackage " \
                "(application_id)"
        return None
    if fmt in _MAGIC:
        return None if head.startswith(_MAGIC[fmt]) else f"it is not a {name} file"
    if b"\x00" in head:
        return f"it is not {name} text (it holds binary data)"
    text = head.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    if fmt not in _GDAL_PREFIX and _FOREIGN.search(text):
        # a format GDAL has no prefix for is told apart by content: nothing of another's
        return f"it is not a {name} file: it holds a GDAL virtual dataset or XML entity " \
            "declarations, which netgis does not read"
    if fmt == "geojson" and not text.startswith("{"):
        return "it is not GeoJSON (a JSON object)"
    if fmt == "csv" and text.startswith(("<", "{", "[")):
        return "it is not CSV text (it starts like XML or JSON)"
    if fmt in ("kml", "gpx") and not re.match(
            rf"(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:\w+:)?{fmt}[\s>]", text, re.DOTALL):
        return f"it is not {name} (its root element is not <{fmt}>)"
    return None


def _check_gpkg_tables(path: Path, shown: str) -> None:
    """Refuse a GeoPackage whose layers are not all plain tables.

    A layer of a GeoPackage may be a view (or a virtual table): reading it runs its SQL,
    which can read any other table of the file or never end (a recursive query). netgis
    reads tables only; the check reads the schema with SQLite itself, running nothing.
    """
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = con.execute(
                "SELECT c.table_name, m.type, m.sql FROM gpkg_contents AS c "
                "LEFT JOIN sqlite_master AS m ON lower(m.name) = lower(c.table_name)"
            ).fetchall()
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise DatasetFormatError(
            [Problem("dataset", None, None, f"cannot read {shown}: {_reason(exc, path)}")]
        ) from exc
    problems = []
    for name, kind, sql in rows:
        virtual = kind == "table" and str(sql or "").lstrip().upper().startswith("CREATE VIRTUAL")
        if kind != "table" or virtual:
            what = "a virtual table" if virtual else f"a {kind}" if kind else "missing"
            problems.append(Problem(str(name).lower() if str(name).lower() in LAYERS
                                    else str(name), None, None,
                                    f"{shown}: layer {name!r} is {what}, not a table: netgis "
                                    "reads only the tables of a GeoPackage (a view runs SQL "
                                    "that can read other tables or never end)"))
    if problems:
        raise DatasetFormatError(problems)


def _import_hint(files: Iterable[Path]) -> str:
    """A pointer to ``netgis import`` when ``files`` hold GIS sources of other formats."""
    sources = sorted(f.name for f in files if f.suffix.lower() in IMPORT_SUFFIXES)
    if not sources:
        return ""
    shown = ", ".join(sources[:5]) + (f" and {len(sources) - 5} more" if len(sources) > 5
                                      else "")
    return (f"; {shown}: netgis reads such files only through an import, `netgis import "
            "SOURCE --mapping MAPPING.toml --out DATASET.gpkg` (example mappings in "
            "data/mappings/, see docs/interop.md)")


def _is_sqlite(path: Path) -> bool:
    """A GeoPackage written under another name is still one (it is an SQLite file)."""
    try:
        with path.open("rb") as f:
            return f.read(16) == _SQLITE_MAGIC
    except OSError:
        return False


def layer_file_format(path: Path) -> str | None:
    """Format of a layer file in a dataset directory (None: not a layer file).

    Examples
    --------
    >>> layer_file_format(Path("premises.parquet")), layer_file_format(Path("notes.txt"))
    ('parquet', None)
    """
    suffix = path.suffix.lower()
    if suffix not in SUFFIX_FORMATS or SUFFIX_FORMATS[suffix] not in DIR_FORMATS:
        return None
    return SUFFIX_FORMATS[suffix]


def is_parquet_parts(path: Path) -> bool:
    """Is ``path`` a layer stored as a directory of GeoParquet files (``netgis partition``)?"""
    return path.is_dir() and path.suffix.lower() in (".parquet", ".geoparquet") \
        and any(path.glob("*.parquet"))


def _reason(exc: Exception, path: Path) -> str:
    """The reader's message with the file named by its name only.

    GDAL puts the full path into its messages; for an upload that is a temporary
    folder of the server, which is none of the client's business.
    """
    text = str(exc)
    for form in sorted({str(path), str(path.resolve()), path.as_posix()}, key=len,
                       reverse=True):
        for prefix in ("", *_GDAL_PREFIX.values()):
            text = text.replace(prefix + form, path.name)
    return text
