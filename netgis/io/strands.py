"""Reading and writing the strand layers (docs/strands.md): seven attribute tables beside the
route layers of a dataset.

In a GeoPackage they are non-spatial tables named after the layer; in a dataset directory
``<layer>.csv`` or ``<layer>.parquet``. Values are read as they are (CSV cells as text, an
empty cell as missing); :mod:`netgis.engine.strands.validate` checks and types them. A
dataset without any of them reads as ``{}``, and nothing else changes.

Examples
--------
>>> read_strand_tables("tests/examples/ring_spur/dataset.gpkg")
{}
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio  # imported before anything loads mod_spatialite (see storage)

from netgis.errors import DatasetFormatError, Problem
from netgis.io.formats import _reason, check_plain_path, dataset_format, gdal_path
from netgis.io.write import atomic_dir, atomic_file
from netgis.schema import STRAND_LAYER_NAMES, STRAND_LAYERS

#: Suffixes of a strand layer's file in a dataset directory.
STRAND_SUFFIXES = (".csv", ".parquet")


def has_strand_tables(path: str | os.PathLike[str]) -> bool:
    """Whether the dataset at ``path`` holds any strand layer (cheap: names only)."""
    p = Path(path)
    if p.is_dir():
        return any(f.suffix.lower() in STRAND_SUFFIXES and f.stem.lower() in STRAND_LAYERS
                   for f in p.iterdir())
    if p.is_file() and dataset_format(p) == "gpkg":
        return bool(_gpkg_tables(p))
    return False


def read_strand_tables(path: str | os.PathLike[str]) -> dict[str, pd.DataFrame]:
    """The strand layers present at ``path`` (a GeoPackage or a dataset directory), by name.

    Raises
    ------
    DatasetFormatError
        A layer file that cannot be read, or two files for one layer; named.
    """
    p = check_plain_path(path)
    if p.is_dir():
        return _read_dir(p)
    if dataset_format(p) != "gpkg":
        return {}
    tables = _gpkg_tables(p)
    if not tables:
        return {}
    gdal_path(p, "gpkg", subject="dataset")  # the content checks every GeoPackage read gets
    out: dict[str, pd.DataFrame] = {}
    try:
        con = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True)
        try:
            for name, table in tables.items():
                frame = pd.read_sql_query(f'SELECT * FROM "{table}"', con)
                out[name] = _clean(frame.drop(columns=[c for c in frame.columns
                                                       if c.lower() == "fid"]))
        finally:
            con.close()
    except (sqlite3.Error, pd.errors.DatabaseError) as exc:
        raise DatasetFormatError([Problem("dataset", None, None,
                                          f"cannot read {p.name}: {_reason(exc, p)}")]) from exc
    return out


def _read_dir(p: Path) -> dict[str, pd.DataFrame]:
    out: dict[str, pd.DataFrame] = {}
    problems: list[Problem] = []
    for name in STRAND_LAYER_NAMES:
        found = sorted(f for f in p.iterdir()
                       if f.is_file() and f.stem.lower() == name
                       and f.suffix.lower() in STRAND_SUFFIXES)
        if len(found) > 1:
            problems.append(Problem(name, None, None, "two files for one layer: "
                                    + ", ".join(f.name for f in found)))
            continue
        if not found:
            continue
        f = found[0]
        try:
            if f.suffix.lower() == ".parquet":
                frame = pd.read_parquet(f)
            else:
                head = f.read_bytes()[:4096]
                if b"\x00" in head:
                    raise ValueError("it is not CSV text (it holds binary data)")
                frame = pd.read_csv(f, dtype=object, keep_default_na=False, encoding="utf-8-sig")
        except Exception as exc:  # pandas and pyarrow raise many unrelated classes
            problems.append(Problem(name, None, None, f"cannot read {f.name}: {_reason(exc, f)}"))
            continue
        out[name] = _clean(frame)
    if problems:
        raise DatasetFormatError(problems)
    return out


def _clean(frame: pd.DataFrame) -> pd.DataFrame:
    """Column names lower-cased and stripped; text stripped; empty or missing cells None.

    Every column is of dtype object (values as read: text from CSV, typed from Parquet
    and GeoPackage), which validation then checks and converts.
    """
    cols: dict[str, pd.Series] = {}
    for col in frame.columns:
        given = frame[col].to_numpy(dtype=object)
        if pd.api.types.infer_dtype(given, skipna=False) == "string":
            # text alone (every CSV column): stripped in one pass, blanks to None
            values = _STRIP(given)
            values[values == ""] = None
        else:
            values = np.asarray([None if _missing(v) else (v.strip() or None)
                                 if isinstance(v, str) else v for v in given], dtype=object)
        cols[str(col).strip().lower()] = pd.Series(values, dtype=object)
    return pd.DataFrame(cols, index=pd.RangeIndex(len(frame)))


#: str.strip over an object array of text, elementwise.
_STRIP = np.frompyfunc(str.strip, 1, 1)


def _missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and v != v) or v is pd.NA or v is pd.NaT


def _gpkg_tables(p: Path) -> dict[str, str]:
    """Strand layer name -> table name in the GeoPackage (matched case-insensitively)."""
    try:
        con = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True)
        try:
            names = [str(r[0]) for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")]
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise DatasetFormatError([Problem("dataset", None, None,
                                          f"cannot read {p.name}: {_reason(exc, p)}")]) from exc
    found: dict[str, str] = {}
    for n in names:
        if n.lower() in STRAND_LAYERS and (n.lower() not in found or n == n.lower()):
            found[n.lower()] = n
    return found


def strand_frame(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the columns of strand layer ``name`` in contract order (missing ones
    empty) and nothing else; the form every writer writes."""
    cols = STRAND_LAYERS[name].field_names
    frame = frame.reset_index(drop=True)  # the empty columns below have a range index
    out = pd.DataFrame({c: frame[c] if c in frame.columns else pd.Series([None] * len(frame),
                                                                        dtype=object)
                        for c in cols})
    return _numbers(name, out)


def write_strand_tables(tables: dict[str, pd.DataFrame], path: str | os.PathLike[str]) -> None:
    """Write strand layers beside a dataset's route layers.

    ``path`` is a GeoPackage (the tables are added to it as attribute tables, replacing any
    of the same name; the file is rewritten atomically) or a dataset directory (each layer
    becomes ``<layer>.csv``, replacing its namesake). Empty layers are written too: a layer
    that exists with no rows is a statement (no drops yet), not a missing layer.
    """
    p = Path(path)
    frames = {n: strand_frame(n, f) for n, f in tables.items() if n in STRAND_LAYERS}
    if p.is_dir() or p.suffix.lower() != ".gpkg":
        with atomic_dir(p, merge=True) as tmp:
            for name, frame in frames.items():
                frame.to_csv(tmp / f"{name}.csv", index=False, na_rep="")
        return
    with atomic_file(p, suffix=".gpkg") as tmp:
        if p.exists():
            tmp.write_bytes(p.read_bytes())
        for name, frame in frames.items():
            pyogrio.write_dataframe(frame, tmp, layer=name, driver="GPKG")


def _numbers(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Number fields as numbers: an integer field whose values are all whole numbers (as
    read back: objects, text from CSV, floats with NaN for missing) as nullable integers,
    so that GDAL writes INTEGER (not TEXT or REAL) and CSV ``12`` (not ``12.0``); a float
    field of numbers as floats. A column holding anything else is written as it is (and
    validation names the bad value)."""
    out = frame.copy()
    for f in STRAND_LAYERS[name].fields:
        if f.type not in ("int", "float"):
            continue
        values = out[f.name]
        if values.dtype == object:
            numbers = pd.to_numeric(values, errors="coerce")
            if not (numbers.notna() == values.notna()).all():
                continue
            values = numbers
        if f.type == "int" and values.dtype.kind == "f" \
                and values.dropna().map(float.is_integer).all():
            values = values.astype("Int64")
        out[f.name] = values
    return out
