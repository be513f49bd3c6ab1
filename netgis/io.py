"""Read and write datasets: a GeoPackage, or a directory of GeoJSON / FlatGeobuf / GeoParquet.

:func:`read_raw` reads the layers as they are; :func:`read_dataset` reads and
validates them (see :mod:`netgis.validate`) and returns a clean
:class:`Dataset`, or raises :class:`~netgis.errors.ValidationError` listing
every problem. Writes are atomic: a temporary file or directory is renamed
into place only once it is complete.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio  # imported before anything loads mod_spatialite (see storage)
from pyproj import CRS

from netgis.errors import DatasetFormatError, Problem
from netgis.schema import LAYER_NAMES, LAYERS, SNAP_TOLERANCE_M

#: Directory formats: file suffix per format name.
DIR_FORMATS: dict[str, str] = {"geojson": ".geojson", "fgb": ".fgb", "parquet": ".parquet"}
_SUFFIX_FORMAT: dict[str, str] = {
    ".geojson": "geojson",
    ".json": "geojson",
    ".fgb": "fgb",
    ".parquet": "parquet",
    ".geoparquet": "parquet",
}
#: Formats whose files may lack a CRS; a layer read without one is an error. GeoJSON and
#: GeoParquet without one are WGS84, as their standards say.
CRS_REQUIRED_FORMATS = frozenset({"gpkg", "fgb"})


@dataclass
class RawLayer:
    """One layer as read from disk, before validation."""

    name: str
    frame: gpd.GeoDataFrame
    source: str
    fmt: str


@dataclass
class Dataset:
    """A validated dataset: clean GeoDataFrames in one CRS.

    ``areas`` is always present (empty when the dataset has none).
    """

    nodes: gpd.GeoDataFrame
    spans: gpd.GeoDataFrame
    premises: gpd.GeoDataFrame
    areas: gpd.GeoDataFrame
    warnings: list[Problem] = field(default_factory=list)

    @property
    def crs(self) -> CRS:
        return CRS(self.nodes.crs)

    def layers(self) -> dict[str, gpd.GeoDataFrame]:
        return {
            "nodes": self.nodes,
            "spans": self.spans,
            "premises": self.premises,
            "areas": self.areas,
        }


def dataset_format(path: str | os.PathLike[str]) -> str:
    """``gpkg`` for a GeoPackage file, ``dir`` for a directory of layer files.

    Examples
    --------
    >>> dataset_format("tests/examples/ring_spur/dataset.gpkg")
    'gpkg'
    """
    p = Path(path)
    if p.is_dir():
        return "dir"
    if not p.exists():
        raise DatasetFormatError([Problem("dataset", None, None, f"{str(p)!r} does not exist")])
    if p.suffix.lower() == ".gpkg" or _is_sqlite(p):
        return "gpkg"
    raise DatasetFormatError(
        [Problem("dataset", None, None,
                 f"{str(p)!r} is neither a .gpkg file nor a directory of layer files")]
    )


def _is_sqlite(path: Path) -> bool:
    """A GeoPackage written under another name is still one (it is an SQLite file)."""
    try:
        with path.open("rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def read_raw(path: str | os.PathLike[str]) -> dict[str, RawLayer]:
    """Read every layer present at ``path`` without changing any value.

    GeoJSON and GeoParquet layers without a CRS are WGS84, as their standards
    say; GeoPackage and FlatGeobuf layers without one keep ``crs=None`` so
    that validation reports it.
    """
    p = Path(path)
    fmt = dataset_format(p)
    layers: dict[str, RawLayer] = {}
    if fmt == "gpkg":
        present = _gpkg_layers(p)
        for name in LAYER_NAMES:
            if name in present:
                frame = _read_ogr(p, layer=present[name])
                if _gpkg_srs_id(p, present[name]) in (0, -1):
                    # the GeoPackage "undefined" SRSs: GDAL invents a CRS, the data has none
                    frame = frame.set_crs(None, allow_override=True)
                layers[name] = RawLayer(name, frame, str(p), "gpkg")
        return layers
    problems: list[Problem] = []
    for name in LAYER_NAMES:
        found = sorted(
            f for f in p.iterdir()
            if f.is_file() and f.stem.lower() == name and f.suffix.lower() in _SUFFIX_FORMAT
        )
        if len(found) > 1:
            problems.append(Problem(name, None, None,
                                    "two files for one layer: " + ", ".join(f.name for f in found)))
            continue
        if found:
            f = found[0]
            lfmt = _SUFFIX_FORMAT[f.suffix.lower()]
            if lfmt == "parquet":
                frame = _read_parquet(f, name)
            else:
                frame = _read_ogr(f)
                if lfmt == "geojson" and frame.crs is None:
                    frame = frame.set_crs(4326)
            layers[name] = RawLayer(name, frame, str(f), lfmt)
    if problems:
        raise DatasetFormatError(problems)
    return layers


def _reason(exc: Exception, path: Path) -> str:
    """The reader's message with the file named by its name only.

    GDAL puts the full path into its messages; for an upload that is a temporary
    folder of the server, which is none of the client's business.
    """
    text = str(exc)
    for form in {str(path), str(path.resolve()), path.as_posix()}:
        text = text.replace(form, path.name)
    return text


def _gpkg_layers(path: Path) -> dict[str, str]:
    """Contract layer name -> layer name in the file (matched case-insensitively)."""
    try:
        with warnings.catch_warnings():
            # GDAL notes a GeoPackage named without .gpkg; it reads it all the same
            warnings.simplefilter("ignore", RuntimeWarning)
            names = [str(row[0]) for row in pyogrio.list_layers(path)]
    except Exception as exc:  # pyogrio raises several unrelated classes for unreadable files
        raise DatasetFormatError(
            [Problem("dataset", None, None, f"cannot read {path.name}: {_reason(exc, path)}")]
        ) from exc
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


def _read_ogr(path: Path, layer: str | None = None) -> gpd.GeoDataFrame:
    try:
        with warnings.catch_warnings():
            # GDAL notes about layer options (e.g. measured geometries) are not problems here.
            warnings.simplefilter("ignore", RuntimeWarning)
            # GeoJSON properties of mixed JSON types arrive as text, which validation coerces
            warnings.filterwarnings("ignore", "Could not parse column", UserWarning)
            frame = pyogrio.read_dataframe(path, layer=layer)
    except Exception as exc:  # pyogrio raises several unrelated classes for unreadable files
        raise DatasetFormatError(
            [Problem(layer or path.stem, None, None,
                     f"cannot read {path.name}: {_reason(exc, path)}")]
        ) from exc
    return _as_geoframe(frame)


def _read_parquet(path: Path, name: str) -> gpd.GeoDataFrame:
    try:
        frame = gpd.read_parquet(path)
    except (ValueError, OSError) as exc:
        raise DatasetFormatError(
            [Problem(name, None, None,
                     f"cannot read {path.name} as GeoParquet: {_reason(exc, path)}")]
        ) from exc
    if frame.crs is None:
        frame = frame.set_crs(4326)
    return _as_geoframe(frame)


def _as_geoframe(frame: pd.DataFrame) -> gpd.GeoDataFrame:
    if not isinstance(frame, gpd.GeoDataFrame):
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([None] * len(frame)))
    if frame.geometry.name != "geometry":
        frame = frame.rename_geometry("geometry")
    return frame


def read_dataset(
    path: str | os.PathLike[str], *, snap_tolerance_m: float = SNAP_TOLERANCE_M
) -> Dataset:
    """Read and validate a dataset; raise ``ValidationError`` listing every problem.

    Examples
    --------
    >>> from netgis.io import read_dataset
    >>> ds = read_dataset("data/sample.gpkg")  # doctest: +SKIP
    >>> len(ds.premises) > 0  # doctest: +SKIP
    True
    """
    from netgis.validate import validate_raw

    report = validate_raw(read_raw(path), snap_tolerance_m=snap_tolerance_m)
    return report.dataset_or_raise()


def write_dataset(
    dataset: Dataset, path: str | os.PathLike[str], *, fmt: str | None = None
) -> Path:
    """Write ``dataset`` to ``path`` atomically.

    ``fmt`` is ``gpkg``, ``geojson``, ``fgb`` or ``parquet``. By default it
    comes from the suffix of ``path``: ``.gpkg`` writes one GeoPackage;
    ``.geojson``, ``.fgb`` or ``.parquet`` (or no suffix: GeoJSON) writes a
    directory of ``<layer>.<ext>`` files.
    """
    out = Path(path)
    fmt = fmt or _format_from_suffix(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # an empty optional layer is left out: GeoJSON cannot keep the schema of an empty layer
    layers = {n: f for n, f in dataset.layers().items() if LAYERS[n].required or len(f)}
    if fmt == "gpkg":
        fd, tmp_name = tempfile.mkstemp(suffix=".gpkg", dir=out.parent, prefix=".netgis-")
        os.close(fd)
        tmp = Path(tmp_name)
        tmp.unlink()
        try:
            for name, frame in layers.items():
                pyogrio.write_dataframe(frame, tmp, layer=name, driver="GPKG")
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
        return out
    if fmt not in DIR_FORMATS:
        raise DatasetFormatError([Problem("dataset", None, None, f"unknown format {fmt!r}")])
    tmp_dir = Path(tempfile.mkdtemp(dir=out.parent, prefix=".netgis-"))
    try:
        for name, frame in layers.items():
            target = tmp_dir / f"{name}{DIR_FORMATS[fmt]}"
            if fmt == "parquet":
                frame.to_parquet(target, index=False)
            else:
                driver = "GeoJSON" if fmt == "geojson" else "FlatGeobuf"
                pyogrio.write_dataframe(frame, target, driver=driver)
        if out.exists():
            # a directory cannot replace another in one rename: move the old one aside first
            backup = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
            os.replace(out, backup / "old")
            try:
                os.replace(tmp_dir, out)
            except OSError:
                os.replace(backup / "old", out)
                raise
            finally:
                _remove(backup)
        else:
            os.replace(tmp_dir, out)
    finally:
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir)
    return out


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _format_from_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".gpkg":
        return "gpkg"
    return _SUFFIX_FORMAT.get(suffix, "geojson")


def empty_layer(name: str, crs: CRS | str | int | None = 4326) -> gpd.GeoDataFrame:
    """An empty GeoDataFrame with the contract's columns for layer ``name``."""
    cols = {f.name: pd.Series(dtype=_DTYPES[f.type]) for f in LAYERS[name].fields}
    return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=crs), crs=crs)


#: pandas dtypes of the contract's field types in clean frames.
_DTYPES: dict[str, str] = {"text": "object", "int": "Int64", "bool": "bool"}
