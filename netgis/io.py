"""Files in and out: datasets (a GeoPackage, or a directory of GeoJSON / FlatGeobuf /
GeoParquet layer files) and every output file netgis writes.

Reading: :func:`read_raw` reads the layers as they are; :func:`read_dataset`
reads and validates them (see :mod:`netgis.validate`) and returns a clean
:class:`~netgis.dataset.Dataset`, or raises
:class:`~netgis.errors.ValidationError` listing every problem;
:func:`validate_path` reports instead of raising. :func:`read_frame` reads one
vector file and is the one place where pyogrio/GDAL and GeoParquet errors
become a :class:`~netgis.errors.DatasetFormatError` naming the file.
:func:`detect_format` tells the format from a path.

Files are untrusted: they come from third parties and over HTTP. GDAL picks
a driver by a file's content, not its name, and some drivers read other
files or URLs that a file names (a GDAL virtual dataset, VRT, can name any
file of the server or ``/vsicurl/http://...``). So every file is checked
before GDAL opens it (:func:`gdal_path`): its path must be a plain file path
(:func:`check_plain_path`: no ``/vsi...`` prefix, no ``CSV:``/``PG:``-like
connection prefix); its content must be what its suffix says (magic bytes of
GeoPackage, FlatGeobuf, Shapefile, GeoParquet, KMZ; the first characters of
GeoJSON, CSV, KML, GPX); GDAL is held to the one driver of the format where
it has a prefix for that (``GPKG:``, ``GeoJSON:``, ``CSV:``); and a
GeoPackage layer must be a table (a view can read other tables or run
without end). docs/interop.md lists the formats.

Writing: every output goes through :func:`atomic_file` (one file) or
:func:`atomic_dir` (a directory, or a set of files in a directory). The
content is written to a temporary beside the target, made durable (fsync)
and renamed into place only once it is complete; on any error the temporary
is removed and the target is left as it was. Outputs get the usual modes:
files ``0o666`` and directories ``0o777`` less the process umask (0644 and
0755 under umask 022).
"""

from __future__ import annotations

import glob
import os
import re
import secrets
import shutil
import sqlite3
import stat
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio  # imported before anything loads mod_spatialite (see storage)

from netgis.dataset import Dataset, RawLayer
from netgis.errors import DatasetFormatError, Problem, ValidationError
from netgis.schema import LAYER_NAMES, LAYERS, SNAP_TOLERANCE_M
from netgis.validate import ValidationReport, validate_raw

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
_PROC_STATUS = "/proc/self/status"


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


# ---- reading --------------------------------------------------------------------------------

@contextmanager
def _reading(path: Path, subject: str, shown: str, how: str = "") -> Iterator[None]:
    """Turn whatever a reader raises into a DatasetFormatError naming the file.

    pyogrio, GDAL and pyarrow raise several unrelated classes for unreadable
    files, so everything is caught here, once.
    """
    try:
        with warnings.catch_warnings():
            # GDAL notes (a GeoPackage named without .gpkg, measured geometries) are no problem
            warnings.simplefilter("ignore", RuntimeWarning)
            # GeoJSON properties of mixed JSON types arrive as text, which validation coerces
            warnings.filterwarnings("ignore", "Could not parse column", UserWarning)
            yield
    except Exception as exc:
        raise DatasetFormatError(
            [Problem(subject, None, None, f"cannot read {shown}{how}: {_reason(exc, path)}")]
        ) from exc


def read_frame(
    path: str | os.PathLike[str],
    *,
    layer: str | None = None,
    subject: str | None = None,
    shown: str | None = None,
    fid_as_index: bool = False,
) -> gpd.GeoDataFrame:
    """Read one layer of a vector file: GeoParquet by its suffix, anything else through GDAL.

    Values are not changed; the geometry column is called ``geometry`` (a
    table without geometry gets an empty one). A missing CRS stays missing.

    Parameters
    ----------
    path
        The file.
    layer
        Layer to read from a multi-layer file (GeoPackage); the first by default.
    subject, shown
        How an error names what was read (the layer of its
        :class:`~netgis.errors.Problem`; default ``layer`` or the file's stem)
        and the file (default its name).
    fid_as_index
        Index the rows by the feature ids GDAL gives them (the source's own FIDs).

    Raises
    ------
    DatasetFormatError
        When the file cannot be read, whatever the reader raised.

    Examples
    --------
    >>> nodes = read_frame("tests/examples/ring_spur/dataset.gpkg", layer="nodes")
    >>> nodes.geometry.name, nodes.crs.to_epsg()
    ('geometry', 32632)
    >>> read_frame("nowhere.fgb")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    netgis.errors.DatasetFormatError: 1 problem: nowhere: cannot read nowhere.fgb: ...
    """
    p = check_plain_path(path, subject or layer or Path(path).stem)
    subject = subject or layer or p.stem
    shown = shown or p.name
    fmt = read_format(p)
    source = gdal_path(p, fmt, subject=subject, shown=shown)
    if fmt == "parquet":
        with _reading(p, subject, shown, " as GeoParquet"):
            frame = gpd.read_parquet(p)
    else:
        with _reading(p, subject, shown):
            # Arrow reads typed formats ~4x faster; GeoJSON properties of mixed JSON types
            # need GDAL's own (per-feature) conversion, which validation then coerces
            frame = pyogrio.read_dataframe(source, layer=layer, fid_as_index=fid_as_index,
                                           use_arrow=fmt in _ARROW_FORMATS)
    return _as_geoframe(frame)


def _as_geoframe(frame: pd.DataFrame) -> gpd.GeoDataFrame:
    if not isinstance(frame, gpd.GeoDataFrame):
        # types-geopandas leaves missing geometries (None) out of the GeoSeries data
        missing = gpd.GeoSeries([None] * len(frame), index=frame.index)  # type: ignore[arg-type]
        return gpd.GeoDataFrame(frame, geometry=missing)
    if frame.geometry.name != "geometry":
        frame = frame.rename_geometry("geometry")
    return frame


def read_raw(path: str | os.PathLike[str]) -> dict[str, RawLayer]:
    """Read every layer present at ``path`` without changing any value.

    GeoJSON and GeoParquet layers without a CRS are WGS84, as their standards
    say; GeoPackage and FlatGeobuf layers without one keep ``crs=None`` so
    that validation reports it.

    Examples
    --------
    >>> sorted(read_raw("tests/examples/ring_spur/dataset"))
    ['areas', 'nodes', 'premises', 'spans']
    """
    p = Path(path)
    layers: dict[str, RawLayer] = {}
    if dataset_format(p) == "gpkg":
        present = _gpkg_layers(p)
        for name in LAYER_NAMES:
            if name in present:
                frame = read_frame(p, layer=present[name])
                if _gpkg_srs_id(p, present[name]) in (0, -1):
                    # the GeoPackage "undefined" SRSs: GDAL invents a CRS, the data has none
                    # types-geopandas: set_crs(None, allow_override=True) clears the CRS at runtime
                    frame = frame.set_crs(None, allow_override=True)  # type: ignore[call-overload]
                layers[name] = RawLayer(name, frame, str(p), "gpkg")
        return layers
    problems: list[Problem] = []
    for name in LAYER_NAMES:
        found = sorted(
            f for f in p.iterdir()
            if f.stem.lower() == name and layer_file_format(f) is not None
            and (f.is_file() or is_parquet_parts(f))
        )
        if len(found) > 1:
            problems.append(Problem(name, None, None,
                                    "two files for one layer: " + ", ".join(f.name for f in found)))
            continue
        if found:
            f = found[0]
            fmt = layer_file_format(f)
            assert fmt is not None
            # an unreadable GeoParquet file is reported under the contract's layer name
            frame = read_frame(f, subject=name) if fmt == "parquet" else read_frame(f)
            if fmt in ("geojson", "parquet") and frame.crs is None:
                frame = frame.set_crs(4326)
            layers[name] = RawLayer(name, frame, str(f), fmt)
    missing = [n for n in LAYER_NAMES if LAYERS[n].required and n not in layers]
    hint = _import_hint(p.iterdir()) if missing else ""
    if hint:
        # validation would say only "required layer is missing": say where the data is
        problems += [Problem(n, None, None, "required layer is missing") for n in missing]
        problems.append(Problem("dataset", None, None, f"the layer files of {p.name} are "
                                f"<layer>.geojson, .fgb or .parquet{hint}"))
    if problems:
        raise DatasetFormatError(problems)
    return layers


def is_parquet_parts(path: Path) -> bool:
    """Is ``path`` a layer stored as a directory of GeoParquet files (``netgis partition``)?"""
    return path.is_dir() and path.suffix.lower() in (".parquet", ".geoparquet") \
        and any(path.glob("*.parquet"))


def layer_parts(path: str | os.PathLike[str], layer: str) -> list[Path] | None:
    """The GeoParquet files of ``layer`` when the dataset stores it as a directory of them.

    None when the layer is one file (or the dataset a GeoPackage).
    """
    p = Path(path)
    if not p.is_dir():
        return None
    for f in sorted(p.iterdir()):
        if f.stem.lower() == layer and is_parquet_parts(f):
            return sorted(f.glob("*.parquet"))
    return None


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


def _gpkg_layers(path: Path) -> dict[str, str]:
    """Contract layer name -> layer name in the file (matched case-insensitively)."""
    source = gdal_path(path, "gpkg", subject="dataset")
    with _reading(path, "dataset", path.name):
        names = [str(row[0]) for row in pyogrio.list_layers(source)]
    found: dict[str, str] = {}
    for n in names:
        if n.lower() in LAYERS and (n.lower() not in found or n == n.lower()):
            found[n.lower()] = n
    return found


def _gpkg_srs_id(path: Path, layer: str) -> int | None:
    """The srs_id a GeoPackage declares for ``layer`` (None when not declared)."""
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = con.execute(
                "SELECT srs_id FROM gpkg_geometry_columns WHERE lower(table_name) = lower(?)",
                (layer,),
            ).fetchone()
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise DatasetFormatError(
            [Problem(layer, None, None, f"cannot read {path.name}: {_reason(exc, path)}")]
        ) from exc
    return None if row is None or row[0] is None else int(row[0])


def read_dataset(
    path: str | os.PathLike[str], *, snap_tolerance_m: float = SNAP_TOLERANCE_M
) -> Dataset:
    """Read and validate a dataset; raise ``ValidationError`` listing every problem.

    Examples
    --------
    >>> ds = read_dataset("tests/examples/ring_spur/dataset.gpkg")
    >>> len(ds.premises) > 0
    True
    """
    report = validate_raw(read_raw(path), snap_tolerance_m=snap_tolerance_m)
    return report.dataset_or_raise()


def validate_path(
    path: str | os.PathLike[str], *, snap_tolerance_m: float = SNAP_TOLERANCE_M
) -> ValidationReport:
    """Validate the dataset at ``path`` (errors reading it become problems too).

    Examples
    --------
    >>> validate_path("tests/examples/ring_spur/dataset.gpkg").as_dict()
    {'errors': [], 'warnings': []}
    """
    try:
        raw = read_raw(path)
    except ValidationError as exc:
        return ValidationReport(errors=exc.problems)
    return validate_raw(raw, snap_tolerance_m=snap_tolerance_m)


# ---- writing --------------------------------------------------------------------------------

def _umask(probe_dir: Path) -> int:
    """The process umask, read without changing it.

    ``os.umask`` reads the mask only by setting another, and a thread that
    creates a file in between (the API server writes uploads) would get the
    wrong mode. Linux shows the mask in /proc/self/status; elsewhere a probe
    file created with mode 0o777 shows it.
    """
    try:
        with open(_PROC_STATUS, encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    probe = probe_dir / f"{TEMP_PREFIX}{secrets.token_hex(6)}.umask"
    fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o777)
    try:
        return 0o777 & ~stat.S_IMODE(os.fstat(fd).st_mode)
    finally:
        os.close(fd)
        probe.unlink()


def _temp_name(parent: Path, suffix: str = "") -> Path:
    """A name in ``parent`` that nothing uses: the writer creates the file or directory."""
    while True:
        candidate = parent / f"{TEMP_PREFIX}{secrets.token_hex(6)}{suffix}"
        if not os.path.lexists(candidate):
            return candidate


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory; the rename is still atomic
    finally:
        os.close(fd)


def _settle(path: Path, umask: int) -> None:
    """Give ``path`` (a file, or a directory tree) the usual modes and flush it to disk.

    The writers (GDAL, pyarrow, pandas) create files with the usual modes,
    but a library that stages through ``mkstemp`` would leave 0600: the
    modes are set here, once, for every output.
    """
    file_mode, dir_mode = 0o666 & ~umask, 0o777 & ~umask
    if path.is_dir() and not path.is_symlink():
        for root, _dirs, files in os.walk(path):
            for name in files:
                os.chmod(Path(root) / name, file_mode)
                _fsync(Path(root) / name)
            os.chmod(root, dir_mode)
            _fsync(Path(root))
    else:
        os.chmod(path, file_mode)
        _fsync(path)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        path.unlink(missing_ok=True)


def _remove_temp(tmp: Path) -> None:
    """Remove a temporary and whatever a writer left beside it (``-journal``, ``.aux.xml``)."""
    for leftover in tmp.parent.glob(f"{glob.escape(tmp.name)}*"):
        _remove(leftover)


@contextmanager
def atomic_file(path: str | os.PathLike[str], *, suffix: str | None = None) -> Iterator[Path]:
    """Write one file atomically: yield a temporary path beside ``path`` to write to.

    The temporary does not exist yet (GDAL and pyarrow create their files);
    it ends in ``suffix`` (default: the suffix of ``path``) so that writers
    that look at the name see the right one. When the block ends without an
    error the file gets the usual mode, is flushed to disk and renamed onto
    ``path``, replacing any file there; on any error it is removed and
    ``path`` is left as it was. Missing parent directories are created.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "hello.txt"
    >>> with atomic_file(target) as tmp:
    ...     _ = tmp.write_text("hello")
    >>> target.read_text(), oct(target.stat().st_mode & 0o777)  # under umask 022
    ('hello', '0o644')
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(out.parent, out.suffix if suffix is None else suffix)
    try:
        yield tmp
        _settle(tmp, _umask(out.parent))
        os.replace(tmp, out)
        _fsync(out.parent)
    finally:
        _remove_temp(tmp)


@contextmanager
def atomic_dir(path: str | os.PathLike[str], *, merge: bool = False) -> Iterator[Path]:
    """Write a directory atomically: yield an empty staging directory to write into.

    When the block ends without an error every file and directory in it gets
    the usual mode and is flushed to disk, then:

    - ``merge=False``: the staging directory replaces ``path`` whole (a
      dataset directory: no layer file of an earlier write survives). A
      directory cannot replace another in one rename, so an existing
      ``path`` is first moved aside and put back should the rename fail.
    - ``merge=True``: each file written replaces its namesake in ``path``
      (created when missing) and other files there stay: the output
      directory that ``analyze``, ``gaps`` and ``bead`` share. The staging
      directory lies inside ``path``, so every rename stays on one file system.

    On any error the staging directory is removed and ``path`` is left as it
    was (a ``path`` this call created is removed again).

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "out"
    >>> with atomic_dir(target) as tmp:
    ...     _ = (tmp / "a.csv").write_text("x\\n1\\n")
    >>> sorted(p.name for p in target.iterdir()), oct(target.stat().st_mode & 0o777)
    (['a.csv'], '0o755')
    """
    out = Path(path)
    created = False
    if merge:
        created = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
        parent = out
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        parent = out.parent
    tmp = _temp_name(parent)
    tmp.mkdir()
    try:
        yield tmp
        _settle(tmp, _umask(parent))
        if merge:
            entries = sorted(tmp.iterdir())
            # a file cannot replace a directory: refuse before the first rename, not halfway
            for entry in entries:
                if (out / entry.name).is_dir() and not entry.is_dir():
                    raise IsADirectoryError(f"cannot write {out / entry.name}: it is a directory")
            for entry in entries:
                os.replace(entry, out / entry.name)
        else:
            _replace_dir(tmp, out)
        _fsync(out if merge else out.parent)
    except BaseException:
        _remove(tmp)
        if created and not any(out.iterdir()):
            out.rmdir()
        raise
    finally:
        _remove(tmp)


def _replace_dir(tmp: Path, out: Path) -> None:
    """Rename directory ``tmp`` onto ``out``, which may exist (a directory or a file)."""
    if not os.path.lexists(out):
        os.replace(tmp, out)
        return
    # a directory cannot replace another in one rename: move the old one aside first
    backup = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
    try:
        os.replace(out, backup / "old")
        try:
            os.replace(tmp, out)
        except OSError:
            os.replace(backup / "old", out)
            raise
    finally:
        _remove(backup)


def write_dataset(
    dataset: Dataset, path: str | os.PathLike[str], *, fmt: str | None = None
) -> Path:
    """Write ``dataset`` to ``path`` atomically.

    ``fmt`` is ``gpkg``, ``geojson``, ``fgb`` or ``parquet``; by default it
    comes from ``path`` (see :func:`detect_format`): ``.gpkg`` writes one
    GeoPackage; ``.geojson``, ``.fgb`` or ``.parquet`` (or no suffix: GeoJSON)
    writes a directory of ``<layer>.<ext>`` files, replacing any there.

    Examples
    --------
    >>> import tempfile
    >>> ds = read_dataset("tests/examples/ring_spur/dataset.gpkg")
    >>> out = write_dataset(ds, Path(tempfile.mkdtemp()) / "ring.parquet")
    >>> sorted(p.name for p in out.iterdir())
    ['areas.parquet', 'nodes.parquet', 'premises.parquet', 'spans.parquet']
    """
    out = Path(path)
    fmt = detect_format(out, fmt)
    # an empty optional layer is left out: GeoJSON cannot keep the schema of an empty layer
    layers = {n: f for n, f in dataset.layers().items() if LAYERS[n].required or len(f)}
    if fmt == "gpkg":
        with atomic_file(out, suffix=".gpkg") as tmp:
            for name, frame in layers.items():
                pyogrio.write_dataframe(frame, tmp, layer=name, driver="GPKG")
        return out
    with atomic_dir(out) as tmp_dir:
        for name, frame in layers.items():
            write_layer_file(frame, tmp_dir / f"{name}{DIR_FORMATS[fmt]}", fmt)
    return out


def write_layer_file(frame: gpd.GeoDataFrame, target: Path, fmt: str) -> None:
    """Write one layer file of a dataset directory (not atomic: inside :func:`atomic_dir`)."""
    if fmt == "parquet":
        frame.to_parquet(target, index=False)
    else:
        pyogrio.write_dataframe(frame, target, driver=OGR_DRIVERS[fmt])
