"""BEAD eligibility from FCC Broadband Data Collection availability, joined to the plant.

The rules (docs/gaps.md): per location, only availability records with technology in
{10, 40, 50, 71, 72} and ``low_latency = 1`` count. Each counted record is
classed on its own (``served`` at >= 100/20 Mbps, ``underserved`` at >= 25/3,
else ``unserved``); the highest class of a location's records wins, and a
location with no counted record is ``unserved``.

The availability CSV is streamed in blocks (pyarrow), so memory grows with
the number of distinct locations, not of rows. Every malformed row (wrong
number of fields, missing location_id, non-numeric or negative speed,
technology not a whole number, low_latency other than 0/1) is reported with
its line number and the whole read fails: nothing is skipped silently.

Examples
--------
>>> import pandas as pd
>>> records = pd.DataFrame({"location_id": ["1", "1", "2"], "technology": [50, 70, 10],
...     "max_advertised_download_speed": [200, 1000, 30],
...     "max_advertised_upload_speed": [2, 1000, 5], "low_latency": [1, 1, 1]})
>>> classify(records).to_dict("records")
[{'location_id': '1', 'bead_class': 'unserved'}, {'location_id': '2', 'bead_class': 'underserved'}]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import shapely

from netgis.engine.coverage import locate
from netgis.errors import Problem, ValidationError
from netgis.geodesy import WGS84
from netgis.io import atomic_file, read_frame
from netgis.schema import BEAD_FILE, DEFAULT_DROP_M, DEFAULT_REACH_M

#: Technology codes that count for BEAD: copper, cable, fiber, licensed and licensed-by-rule
#: fixed wireless.
COUNTED_TECHNOLOGIES = (10, 40, 50, 71, 72)
#: Classes, lowest first; codes are their positions.
CLASSES = ("unserved", "underserved", "served")
SERVED_MBPS = (100.0, 20.0)
UNDERSERVED_MBPS = (25.0, 3.0)
#: Columns of the FCC public availability CSV; the first five are needed.
AVAILABILITY_COLUMNS = (
    "location_id", "technology", "max_advertised_download_speed",
    "max_advertised_upload_speed", "low_latency", "provider_id", "brand_name",
    "business_residential_code", "state_usps", "block_geoid", "h3_res8_id",
)
REQUIRED_COLUMNS = AVAILABILITY_COLUMNS[:5]
#: At most this many malformed rows are listed one by one (all are counted).
MAX_LISTED_PROBLEMS = 1000
_BLOCK_BYTES = 8 << 20
_NUMERIC = REQUIRED_COLUMNS[1:]


def class_codes(technology: npt.ArrayLike, download: npt.ArrayLike, upload: npt.ArrayLike,
                low_latency: npt.ArrayLike) -> npt.NDArray[np.int8]:
    """Class code of each record on its own: 2 served, 1 underserved, 0 unserved or not counted.

    Examples
    --------
    >>> class_codes([50, 50, 50, 60], [100, 99.9, 25, 500], [20, 20, 3, 500], [1, 1, 1, 1]).tolist()
    [2, 1, 1, 0]
    """
    tech = np.asarray(technology)
    down = np.asarray(download, dtype=float)
    up = np.asarray(upload, dtype=float)
    counted = np.isin(tech, COUNTED_TECHNOLOGIES) & (np.asarray(low_latency) == 1)
    served = (down >= SERVED_MBPS[0]) & (up >= SERVED_MBPS[1])
    under = (down >= UNDERSERVED_MBPS[0]) & (up >= UNDERSERVED_MBPS[1])
    return np.where(counted, np.where(served, 2, np.where(under, 1, 0)), 0).astype(np.int8)


def classify(records: pd.DataFrame, locations: Iterable[str] | None = None) -> pd.DataFrame:
    """BEAD class per location of in-memory availability records.

    Parameters
    ----------
    records
        Availability records with the columns of :data:`REQUIRED_COLUMNS`
        (already numeric).
    locations
        Location ids to classify (default: those in ``records``); one without
        any record is ``unserved``.

    Returns
    -------
    pandas.DataFrame
        ``location_id``, ``bead_class``, in location_id order.
    """
    codes = class_codes(records["technology"], records["max_advertised_download_speed"],
                        records["max_advertised_upload_speed"], records["low_latency"])
    best = pd.Series(codes, index=records["location_id"].astype(str).to_numpy()).groupby(
        level=0).max()
    ids = sorted(set(best.index) if locations is None else {str(x) for x in locations})
    code = best.reindex(ids).fillna(0).to_numpy(dtype=np.int64)
    return pd.DataFrame({"location_id": ids, "bead_class": np.asarray(CLASSES, dtype=object)[code]})


@dataclass
class Availability:
    """Best class code per location_id of one or more availability files."""

    best: pd.Series
    rows: int = 0
    counted_rows: int = 0
    files: list[str] = field(default_factory=list)


def read_availability(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *,
                      block_bytes: int = _BLOCK_BYTES) -> Availability:
    """Stream FCC availability CSVs and keep each location's best class code.

    Parameters
    ----------
    paths
        One CSV path or several (e.g. one per state and technology).
    block_bytes
        Bytes read per block; memory use is a few times this plus one entry
        per distinct location.

    Raises
    ------
    ValidationError
        Listing every malformed row (layer ``availability``, the row's
        location_id, the field, and ``line N`` of which file); nothing is
        returned then.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.csv"
    >>> _ = p.write_text("location_id,technology,max_advertised_download_speed,"
    ...     "max_advertised_upload_speed,low_latency\\n7,50,100,20,1\\n")
    >>> read_availability(p).best.to_dict()
    {'7': 2}
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    problems: list[Problem] = []
    counts = {"bad": 0}
    parts: list[pa.Table] = []
    held = 0
    rows = counted = 0
    names: list[str] = []
    for path in paths:
        names.append(str(path))
        for table, n_rows, n_counted in _blocks(Path(path), block_bytes, problems, counts):
            rows += n_rows
            counted += n_counted
            parts.append(table)
            held += table.num_rows
            if held > 4_000_000:  # fold the partial maxima so memory follows locations, not rows
                parts = [_fold(parts)]
                held = parts[0].num_rows
    if counts["bad"]:
        if counts["bad"] > len(problems):
            problems.append(Problem("availability", None, None,
                                    f"and {counts['bad'] - len(problems)} more malformed rows"))
        raise ValidationError(problems)
    folded = _fold(parts) if parts else pa.table({"location_id": pa.array([], pa.string()),
                                                  "code": pa.array([], pa.int8())})
    best = pd.Series(folded["code"].to_numpy(zero_copy_only=False).astype(np.int8),
                     index=folded["location_id"].to_numpy(zero_copy_only=False).astype(object),
                     name="code")
    return Availability(best=best, rows=rows, counted_rows=counted, files=names)


def _fold(parts: list[pa.Table]) -> pa.Table:
    return _max_by_location(pa.concat_tables(parts))


def _max_by_location(table: pa.Table) -> pa.Table:
    out = table.group_by("location_id").aggregate([("code", "max")])
    return pa.table({"location_id": out["location_id"], "code": out["code_max"]})


def _blocks(path: Path, block_bytes: int, problems: list[Problem], counts: dict[str, int]
            ) -> Iterable[tuple[pa.Table, int, int]]:
    """Per block: (location_id, best code) of its rows, its row count and counted rows."""
    bad_lines: list[int] = []

    def on_invalid(row: Any) -> str:
        counts["bad"] += 1
        bad_lines.append(int(row.number) if row.number is not None else -1)
        if len(problems) < MAX_LISTED_PROBLEMS:
            problems.append(Problem("availability", None, None,
                                    f"{path.name} line {row.number}: {row.expected_columns} "
                                    f"fields expected, {row.actual_columns} found"))
        return "skip"

    try:
        header = _header(path)
    except OSError as exc:
        raise ValidationError([Problem("availability", None, None,
                                       f"cannot read {path}: {exc}")]) from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ValidationError([Problem("availability", None, c,
                                       f"{path.name}: missing column") for c in missing])
    try:
        yield from _read_blocks(path, block_bytes, problems, counts, on_invalid, bad_lines)
    except pa.ArrowInvalid as exc:  # e.g. an unterminated quote: the file cannot be parsed on
        raise ValidationError([Problem("availability", None, None,
                                       f"{path.name}: cannot parse: {exc}")]) from exc


def _read_blocks(path: Path, block_bytes: int, problems: list[Problem], counts: dict[str, int],
                 on_invalid: Callable[[Any], str], bad_lines: list[int]
                 ) -> Iterable[tuple[pa.Table, int, int]]:
    reader = pacsv.open_csv(
        path,
        # serial reading is what makes pyarrow report the line number of a malformed row
        read_options=pacsv.ReadOptions(block_size=block_bytes, use_threads=False),
        parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid,
                                         ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            include_columns=list(REQUIRED_COLUMNS),
            column_types={c: pa.string() for c in REQUIRED_COLUMNS},
            strings_can_be_null=False, quoted_strings_can_be_null=False),
    )
    first_row = 0
    for batch in reader:
        n = batch.num_rows
        if n == 0:
            continue
        loc = pc.utf8_trim_whitespace(batch.column("location_id"))
        values, bad = _numbers(batch)
        empty_id = np.asarray(pc.equal(pc.utf8_length(loc), 0).to_numpy(zero_copy_only=False),
                              dtype=bool)
        bad["location_id"] = empty_id
        any_bad = np.zeros(n, dtype=bool)
        for col, mask in bad.items():
            any_bad |= mask
            for i in np.flatnonzero(mask).tolist():
                if len(problems) < MAX_LISTED_PROBLEMS:
                    line = _line_number(first_row + i, bad_lines)
                    raw = batch.column(col)[i].as_py()
                    problems.append(Problem("availability", loc[i].as_py() or None, col,
                                            f"{path.name} line {line}: {_reason(col, raw)}"))
        counts["bad"] += int(any_bad.sum())
        first_row += n
        if counts["bad"]:
            continue  # the read fails; keep scanning only to report every problem
        codes = class_codes(values["technology"], values["max_advertised_download_speed"],
                            values["max_advertised_upload_speed"], values["low_latency"])
        n_counted = int((np.isin(values["technology"], COUNTED_TECHNOLOGIES)
                         & (values["low_latency"] == 1)).sum())
        table = pa.table({"location_id": loc, "code": pa.array(codes, pa.int8())})
        yield _max_by_location(table), n, n_counted


def _header(path: Path) -> list[str]:
    with path.open("r", encoding="utf-8-sig", newline="") as f:
        line = f.readline()
    return [c.strip().strip('"') for c in line.rstrip("\r\n").split(",")]


def _numbers(batch: pa.RecordBatch) -> tuple[dict[str, npt.NDArray[np.float64]],
                                             dict[str, npt.NDArray[np.bool_]]]:
    """Numeric values of the four number columns and, per column, which rows are malformed."""
    values: dict[str, npt.NDArray[np.float64]] = {}
    bad: dict[str, npt.NDArray[np.bool_]] = {}
    for col in _NUMERIC:
        text = batch.column(col)
        try:
            arr = pc.cast(pc.utf8_trim_whitespace(text), pa.float64()).to_numpy(
                zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            # slow path only for a block that holds a bad value: find which rows
            arr = pd.to_numeric(pd.Series(text.to_numpy(zero_copy_only=False)).str.strip(),
                                errors="coerce").to_numpy(dtype=float)
        arr = np.asarray(arr, dtype=float)
        if col == "technology":
            wrong = ~np.isfinite(arr) | (arr < 0) | (arr != np.round(arr))
        elif col == "low_latency":
            wrong = ~np.isin(arr, (0.0, 1.0))
        else:
            wrong = ~np.isfinite(arr) | (arr < 0)
        values[col] = arr
        bad[col] = wrong
    return values, bad


def _reason(col: str, raw: object) -> str:
    what = {"location_id": "location_id is empty",
            "technology": "technology must be a whole number",
            "low_latency": "low_latency must be 0 or 1"}.get(col, "speed must be a number >= 0")
    return f"{what} (got {raw!r})"


def _line_number(row: int, bad_lines: list[int]) -> int:
    """File line of well-formed row ``row`` (0-based), given the lines skipped as malformed."""
    line = row + 2  # the header is line 1
    for skipped in sorted(bad_lines):
        if 0 <= skipped <= line:
            line += 1
    return line


def read_locations(path: str | os.PathLike[str]) -> gpd.GeoDataFrame:
    """Locations as WGS84 points with ``location_id``.

    ``path`` is a Fabric-style CSV (``location_id, latitude, longitude, ...``)
    or any point layer GDAL or GeoParquet can read with a ``location_id``
    column. Missing ids, duplicate ids and positions that are not WGS84
    coordinates are errors naming the line (CSV) or id.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "fabric.csv"
    >>> _ = p.write_text("location_id,latitude,longitude\\n7,50.1,8.6\\n")
    >>> read_locations(p)["location_id"].tolist()
    ['7']
    """
    p = Path(path)
    problems: list[Problem] = []
    if p.suffix.lower() in (".csv", ".txt"):
        try:
            table = pacsv.read_csv(p, convert_options=pacsv.ConvertOptions(
                include_columns=["location_id", "latitude", "longitude"],
                column_types={c: pa.string() for c in ("location_id", "latitude", "longitude")},
                strings_can_be_null=False))
        except (pa.ArrowInvalid, OSError, KeyError) as exc:
            raise ValidationError([Problem("locations", None, None,
                                           f"cannot read {p}: {exc}")]) from exc
        frame = table.to_pandas()
        ids = frame["location_id"].str.strip()
        lat = pd.to_numeric(frame["latitude"].str.strip(), errors="coerce").to_numpy(dtype=float)
        lon = pd.to_numeric(frame["longitude"].str.strip(), errors="coerce").to_numpy(dtype=float)
        where = [f"{p.name} line {i + 2}" for i in range(len(frame))]
    else:
        layer = read_frame(p, subject="locations", shown=str(p))
        if "location_id" not in layer:
            raise ValidationError([Problem("locations", None, "location_id", "missing column")])
        if layer.crs is None:
            raise ValidationError([Problem("locations", None, "geometry", "the layer has no CRS")])
        pts = layer.geometry.to_crs(WGS84)
        not_point = ~pts.geom_type.isin(["Point"]).to_numpy()
        xy = np.full((len(pts), 2), np.nan)
        ok = ~not_point & ~pts.is_empty.to_numpy()
        xy[ok] = shapely.get_coordinates(pts.to_numpy()[ok])
        lon, lat = xy[:, 0], xy[:, 1]
        ids = layer["location_id"].astype("string").str.strip().fillna("")
        where = [f"feature {i + 1}" for i in range(len(layer))]
    ids_arr = ids.fillna("").astype(str).to_numpy()
    bad_pos = ~(np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180))
    for i in np.flatnonzero(ids_arr == "").tolist():
        problems.append(Problem("locations", None, "location_id", f"{where[i]}: empty"))
    for i in np.flatnonzero(bad_pos).tolist():
        problems.append(Problem("locations", ids_arr[i] or None, "latitude/longitude",
                                f"{where[i]}: not a WGS84 position"))
    dup = pd.Series(ids_arr).duplicated(keep="first").to_numpy() & (ids_arr != "")
    for i in np.flatnonzero(dup).tolist():
        problems.append(Problem("locations", ids_arr[i], "location_id",
                                f"{where[i]}: duplicate location_id"))
    if problems:
        raise ValidationError(problems)
    return gpd.GeoDataFrame({"location_id": ids_arr.astype(object)},
                            geometry=gpd.GeoSeries(shapely.points(lon, lat), crs=WGS84),
                            crs=WGS84)


@dataclass
class BeadResult:
    """Per-location answers (``locations``), the summary JSON object (``summary``) and where
    each location stands (``positions``: its point, row by row, in the locations' CRS)."""

    locations: pd.DataFrame
    summary: dict[str, Any]
    positions: gpd.GeoSeries | None = None


def bead_join(locations: gpd.GeoDataFrame, best: pd.Series, lit_spans: gpd.GeoDataFrame, *,
              drop_m: float = DEFAULT_DROP_M, reach_m: float = DEFAULT_REACH_M,
              rows: int | None = None, counted_rows: int | None = None) -> BeadResult:
    """Class each location and join it to the plant.

    Parameters
    ----------
    locations
        Points with ``location_id`` (:func:`read_locations`).
    best
        Best class code per location_id (:attr:`Availability.best`); a
        location without an entry is unserved.
    lit_spans
        The lit spans (``span_id``, geometry), e.g. ``Analysis.lit_spans``.
    drop_m
        A location within ``drop_m`` of a lit span is passed (the premise rule).
    reach_m
        An unpassed location within ``reach_m`` is ``reachable``, else ``beyond``.

    Returns
    -------
    BeadResult
        ``locations``: location_id, bead_class, passed, distance_m, plant
        (``passed`` / ``reachable`` / ``beyond``); ``summary``: counts per
        class, and per class the counts per plant answer.

    Examples
    --------
    >>> from shapely import LineString, Point
    >>> spans = gpd.GeoDataFrame({"span_id": ["s1"]}, geometry=[LineString([(0, 0), (1000, 0)])],
    ...     crs=32632)
    >>> locs = gpd.GeoDataFrame({"location_id": ["a", "b"]}, geometry=[Point(10, 100),
    ...     Point(10, 400)], crs=32632)
    >>> r = bead_join(locs, pd.Series({"a": 2}), spans)
    >>> r.summary["served"], r.summary["plant"]["unserved"]
    (1, {'passed': 0, 'reachable': 1, 'beyond': 0})
    """
    if not np.isfinite(reach_m) or reach_m < 0:
        raise ValidationError([Problem("parameters", None, "reach_m",
                                       f"must be a number >= 0, got {reach_m}")])
    ids = locations["location_id"].astype(str).to_numpy()
    code = best.reindex(ids).fillna(0).to_numpy(dtype=np.int64)
    where = locate(locations.geometry, lit_spans, drop_m=drop_m)
    dist = where["distance_m"].to_numpy(dtype=float)
    passed = where["passed"].to_numpy(dtype=bool)
    reach = np.where(passed, "passed",
                     np.where(np.nan_to_num(dist, nan=np.inf) <= reach_m, "reachable", "beyond"))
    out = pd.DataFrame({"location_id": ids,
                        "bead_class": np.asarray(CLASSES, dtype=object)[code],
                        "passed": passed, "distance_m": dist, "plant": reach})
    counts = np.bincount(code, minlength=3)
    plant: dict[str, dict[str, int]] = {}
    for c, name in enumerate(CLASSES):
        sel = code == c
        plant[name] = {k: int((reach[sel] == k).sum()) for k in ("passed", "reachable", "beyond")}
    summary: dict[str, Any] = {
        "served": int(counts[2]), "underserved": int(counts[1]), "unserved": int(counts[0]),
        "locations": len(out), "drop_m": float(drop_m), "reach_m": float(reach_m),
        "plant": plant,
        "availability_locations_not_in_locations": int((~best.index.isin(ids)).sum()),
    }
    if rows is not None:
        summary["availability_rows"] = int(rows)
    if counted_rows is not None:
        summary["counted_rows"] = int(counted_rows)
    return BeadResult(out, summary, positions=gpd.GeoSeries(locations.geometry.to_numpy(),
                                                           crs=locations.crs))


def bead(lit_spans: gpd.GeoDataFrame, availability: str | os.PathLike[str] | Iterable[
        str | os.PathLike[str]], locations: str | os.PathLike[str], *,
         drop_m: float = DEFAULT_DROP_M, reach_m: float = DEFAULT_REACH_M) -> BeadResult:
    """Read the files, classify every location and join it to the plant (see :func:`bead_join`).

    Examples
    --------
    >>> from netgis.engine.analysis import analyze
    >>> from netgis.io import read_dataset
    >>> r = analyze(read_dataset("data/sample.gpkg"))
    >>> s = bead(r.lit_spans, "data/bead/availability.csv", "data/bead/fabric.csv").summary
    >>> s["served"], s["underserved"], s["unserved"], s["locations"]
    (11, 10, 15, 36)
    """
    locs = read_locations(locations)
    avail = read_availability(availability)
    return bead_join(locs, avail.best, lit_spans, drop_m=drop_m, reach_m=reach_m,
                     rows=avail.rows, counted_rows=avail.counted_rows)


def premises_at_locations(premises: pd.DataFrame) -> pd.DataFrame:
    """The premises that carry an FCC Fabric ``location_id``, with that id as text.

    This is how a Fabric location meets a premise: by equal ``location_id`` (spaces
    around it ignored); premises without one (null or blank) are left out. Several
    premises may share a location (the units of one building).

    Examples
    --------
    >>> prem = pd.DataFrame({"premise_id": ["p1", "p2", "p3"],
    ...                      "location_id": [" 1100000007", None, ""]})
    >>> premises_at_locations(prem).to_dict("records")
    [{'premise_id': 'p1', 'location_id': '1100000007'}]
    """
    if "location_id" not in premises.columns:
        return premises.iloc[:0].assign(location_id=pd.Series(dtype=object))
    ids = premises["location_id"].astype("string").str.strip()
    keep = ids.notna() & (ids != "")
    out = premises.loc[keep.to_numpy(bool)].copy()
    out["location_id"] = ids[keep].astype(object).to_numpy()
    return out


def write_bead(result: BeadResult, out_dir: str | os.PathLike[str]) -> Path:
    """Write ``bead.csv`` (location_id, bead_class, passed, distance_m, plant) atomically.

    Booleans are ``true``/``false``; an unknown distance (nothing lit) is an empty cell.
    """
    target = Path(out_dir) / BEAD_FILE
    frame = result.locations.copy()
    frame["passed"] = np.where(frame["passed"].to_numpy(dtype=bool), "true", "false")
    frame["distance_m"] = frame["distance_m"].round(4)
    with atomic_file(target) as tmp:
        frame.to_csv(tmp, index=False)
    return target
