"""Reading datasets: :func:`read_raw` reads the layers as they are; :func:`read_dataset`
reads and validates them (see :mod:`netgis.validate`) and returns a clean
:class:`~netgis.dataset.Dataset`, or raises :class:`~netgis.errors.ValidationError`
listing every problem; :func:`validate_path` reports instead of raising.
:func:`read_frame` reads one vector file and is the one place where pyogrio/GDAL and
GeoParquet errors become a :class:`~netgis.errors.DatasetFormatError` naming the file.
"""

from __future__ import annotations

import os
import sqlite3
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio  # imported before anything loads mod_spatialite (see storage)

from netgis.dataset import CRS_REQUIRED_FORMATS, Dataset, RawLayer
from netgis.errors import DatasetFormatError, Problem, ValidationError
from netgis.io.formats import (
    _ARROW_FORMATS,
    _import_hint,
    _reason,
    check_plain_path,
    dataset_format,
    gdal_path,
    is_parquet_parts,
    layer_file_format,
    read_format,
)
from netgis.io.strands import has_strand_tables, read_strand_tables
from netgis.io.streets import STREETS, check_streets
from netgis.schema import LAYER_NAMES, LAYERS, SNAP_TOLERANCE_M
from netgis.strand_plant import validate_strands
from netgis.validate import ValidationReport, validate_raw

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
    report = with_strands(path, validate_raw(read_raw(path), snap_tolerance_m=snap_tolerance_m))
    return with_streets(path, report).dataset_or_raise()


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
    try:
        report = with_strands(path, validate_raw(raw, snap_tolerance_m=snap_tolerance_m))
    except ValidationError as exc:
        return ValidationReport(errors=exc.problems)
    return with_streets(path, report)


def with_strands(path: str | os.PathLike[str], report: ValidationReport) -> ValidationReport:
    """``report`` with the strand layers at ``path`` checked (docs/strands.md): their
    errors and warnings added, and the typed layers set on the dataset as ``strands``.

    Nothing changes for a dataset without strand layers. Strand layers are checked only
    against valid route layers (they refer to them).
    """
    if report.dataset is None or report.errors or not has_strand_tables(path):
        return report
    tables = read_strand_tables(path)
    checked = validate_strands(report.dataset, tables)
    report.errors.extend(checked.errors)
    report.warnings.extend(checked.warnings)
    if checked.tables is not None:
        report.dataset.strands = checked.tables
        report.dataset.strand_index = checked.plant
    else:
        report.dataset = None
    return report




def with_streets(path: str | os.PathLike[str], report: ValidationReport) -> ValidationReport:
    """``report`` with the dataset's optional ``streets`` layer read and loosely checked
    (:mod:`netgis.io.streets`): its warnings added, never an error, and the lines set on the
    dataset as ``streets``. Nothing changes for a dataset without one, or with errors.

    Examples
    --------
    >>> report = with_streets("tests/examples/ring_spur/dataset.gpkg",
    ...                       validate_path("tests/examples/ring_spur/dataset.gpkg"))
    >>> report.dataset.streets is None, report.warnings
    (True, [])
    """
    if report.dataset is None or report.errors:
        return report
    found = _streets_source(Path(path))
    if found is None:
        return report
    file, layer, fmt = found
    try:
        frame = read_frame(file, layer=layer, subject=STREETS)
    except DatasetFormatError as exc:
        report.warnings.append(Problem(STREETS, None, None, "not used: "
                                       + "; ".join(p.reason for p in exc.problems)))
        return report
    if layer is not None and _gpkg_srs_id(file, layer) in (0, -1):
        frame = frame.set_crs(None, allow_override=True)  # type: ignore[call-overload]
    if frame.crs is None:
        if fmt in CRS_REQUIRED_FORMATS:
            report.warnings.append(Problem(STREETS, None, "geometry",
                                           "the layer has no CRS: not used"))
            return report
        frame = frame.set_crs(4326)  # GeoJSON and GeoParquet without one are WGS84
    report.dataset.streets, warnings = check_streets(frame, report.dataset.crs)
    report.warnings.extend(warnings)
    return report


def _streets_source(path: Path) -> tuple[Path, str | None, str] | None:
    """Where the dataset at ``path`` keeps its streets: (file, GeoPackage layer or None,
    format); None when it has none."""
    if dataset_format(path) == "gpkg":
        source = gdal_path(path, "gpkg", subject=STREETS)
        with _reading(path, STREETS, path.name):
            names = [str(row[0]) for row in pyogrio.list_layers(source)]
        found = sorted((n for n in names if n.lower() == STREETS), key=lambda n: n != STREETS)
        return (path, found[0], "gpkg") if found else None
    files = sorted(f for f in path.iterdir() if f.stem.lower() == STREETS and f.is_file()
                   and layer_file_format(f) is not None)
    fmt = layer_file_format(files[0]) if files else None
    return (files[0], None, fmt) if files and fmt is not None else None
