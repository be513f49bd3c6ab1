"""Check a dataset against the contract of :mod:`netgis.schema` and report every problem.

Reading is forgiving where nothing is lost (numeric ids become text, 1/0 are
booleans, an empty enum cell takes the default, a one-part Multi* geometry is
its part, Z/M values are dropped with a warning); everything else that breaks
a rule is an error. The checks are vectorized: a million premises validate in
seconds.

Examples
--------
>>> import geopandas as gpd
>>> from shapely import Point
>>> from netgis.dataset import RawLayer
>>> nodes = gpd.GeoDataFrame({"node_id": ["a"]}, geometry=[Point(8, 50)], crs=4326)
>>> report = validate_raw({"nodes": RawLayer("nodes", nodes, "mem", "geojson")})
>>> sorted({p.layer for p in report.errors})
['premises', 'spans']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from pyproj import CRS

from netgis.dataset import CRS_REQUIRED_FORMATS, Dataset, RawLayer, empty_layer
from netgis.errors import Problem, ValidationError, encodable
from netgis.geodesy import (
    WGS84,
    PointsCover,
    distance_to_box_m,
    geodesic_distance_m,
    transform_geoms,
    transformer,
)
from netgis.schema import (
    CORE,
    IN_SERVICE,
    LAYER_NAMES,
    LAYERS,
    SNAP_TOLERANCE_M,
    SPLIT_RATIOS,
    SPLITTER,
    Field,
    Layer,
)

#: GEOS geometry type names by shapely type id.
_TYPE_NAMES = ("Point", "LineString", "LinearRing", "Polygon", "MultiPoint", "MultiLineString",
               "MultiPolygon", "GeometryCollection")
_TRUE = {"true", "1", "t", "yes", "y"}
_FALSE = {"false", "0", "f", "no", "n"}
#: A coordinate more than this many degrees beyond the area of use of its CRS is an error,
#: one beyond it by less a warning (docs/spec.md §1.8).
AREA_OF_USE_MARGIN_DEG = 5.0
#: A feature whose every vertex lies farther than this from the plant's extent (the box
#: of the nodes and spans), but within :data:`SWAP_NEAR_M` of it once x and y are
#: swapped, has its coordinates swapped: (lat, lon) given as (lon, lat).
SWAP_FAR_M = 50_000.0
#: See :data:`SWAP_FAR_M`: with x and y swapped, the feature lies this close to the plant.
SWAP_NEAR_M = 20_000.0
#: A box: (west, south, east, north), or (min x, min y, max x, max y) in a CRS.
Bounds = tuple[float, float, float, float]
#: A projected coordinate must come back from WGS84 this close (in CRS units, m or ft):
#: further off, it lies where the projection has no inverse (or wraps around the globe).
_ROUND_TRIP_TOLERANCE = 0.01
#: Control characters (C0, DEL, C1) and the line and paragraph separators (Unicode Cc, Zl,
#: Zp): an id holding one cannot travel in a URL path or an HTTP header (CR/LF end a header
#: line), so the API could store it but never answer; U+2028 and U+2029 end a line in
#: JavaScript and Vega expressions, where charts put ids.
_CONTROL_RE = "[\\x00-\\x1f\\x7f-\\x9f\u2028\u2029]"
#: A dataset without an in-service core is valid, but nothing in it is lit.
NO_CORE_WARNING = Problem("nodes", None, "kind", "no in-service core node: nothing is lit")


@dataclass
class ValidationReport:
    """Errors and warnings of one validation, and the clean dataset when there is no error."""

    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    dataset: Dataset | None = None

    @property
    def ok(self) -> bool:
        """Whether the data has no errors (warnings allowed)."""
        return not self.errors

    def as_dict(self) -> dict[str, list[dict[str, Any]]]:
        """The report as JSON-ready ``{"errors": [...], "warnings": [...]}``."""
        return {
            "errors": [p.as_dict() for p in self.errors],
            "warnings": [p.as_dict() for p in self.warnings],
        }

    def dataset_or_raise(self) -> Dataset:
        """The validated dataset.

        Raises
        ------
        ValidationError
            With every error and warning, when the data has errors.
        """
        if self.errors or self.dataset is None:
            raise ValidationError(self.errors, self.warnings)
        return self.dataset


def validate_frames(
    frames: dict[str, gpd.GeoDataFrame], *, snap_tolerance_m: float = SNAP_TOLERANCE_M,
    crs_required: bool = True, plant_bounds: Bounds | None = None,
) -> ValidationReport:
    """Validate in-memory layers (as the storage and the API hold them).

    ``plant_bounds``: see :func:`validate_raw`.
    """
    fmt = "gpkg" if crs_required else "geojson"
    raw = {name: RawLayer(name, frame, "memory", fmt) for name, frame in frames.items()}
    return validate_raw(raw, snap_tolerance_m=snap_tolerance_m, plant_bounds=plant_bounds)


def validate_raw(
    raw: dict[str, RawLayer], *, snap_tolerance_m: float = SNAP_TOLERANCE_M,
    plant_bounds: Bounds | None = None,
) -> ValidationReport:
    """Validate raw layers; the report holds the clean dataset when there is no error.

    Parameters
    ----------
    raw
        The layers as read.
    snap_tolerance_m
        How far a span's end may lie from its node without a warning.
    plant_bounds
        The WGS84 box (west, south, east, north) of a plant stored elsewhere, for
        features written on their own (the API's item writes): every layer is
        checked against it for swapped coordinates. None: the premises and areas
        are checked against the box of ``raw``'s own nodes and spans.
    """
    report = ValidationReport()
    clean: dict[str, gpd.GeoDataFrame] = {}
    target_crs: CRS | None = None
    plant = None if plant_bounds is None else _Plant(plant_bounds)
    for name in LAYER_NAMES:
        layer = LAYERS[name]
        if name not in raw:
            if layer.required:
                report.errors.append(Problem(name, None, None, "required layer is missing"))
            continue
        frame = _clean_layer(layer, raw[name], report)
        if frame is None:
            continue
        if plant_bounds is not None or name in ("premises", "areas"):
            plant = plant or _Plant.of(clean, target_crs)
            if plant is not None:
                frame = _check_swapped(layer, frame, plant, report)
        # the dataset's CRS is the first layer's (nodes, when it has a usable CRS)
        if frame.crs is not None:
            if target_crs is None:
                target_crs = CRS(frame.crs)
            else:
                frame = _to_crs(layer, frame, target_crs, report)
        clean[name] = frame
    if "nodes" in clean and not _has_core(clean["nodes"]):
        report.warnings.append(NO_CORE_WARNING)
    if "nodes" in clean and "spans" in clean:
        _check_references(clean["nodes"], clean["spans"], report, snap_tolerance_m)
    if "areas" in clean and "premises" in clean and len(clean["areas"]):
        _check_area_cover(clean["premises"], clean["areas"], report)
    if not report.errors and target_crs is not None:
        areas = clean.get("areas")
        if areas is None:
            areas = empty_layer("areas", target_crs)
        report.dataset = Dataset(
            nodes=clean["nodes"], spans=clean["spans"], premises=clean["premises"],
            areas=areas, warnings=list(report.warnings),
        )
    return report


def _has_core(nodes: gpd.GeoDataFrame) -> bool:
    """Is some node an in-service core (where light starts)?"""
    return bool(((nodes["kind"] == CORE) & (nodes["status"] == IN_SERVICE)).any())


def _to_crs(layer: Layer, frame: gpd.GeoDataFrame, target_crs: CRS,
            report: ValidationReport) -> gpd.GeoDataFrame:
    """``frame`` in the dataset's CRS; the layer was fine in its own, the target must hold it."""
    if CRS(frame.crs) == target_crs:
        return frame
    frame = _reproject(frame, target_crs)
    labels = _row_labels(frame[layer.id_field])
    checked = _check_coordinates(layer.name, frame.geometry.to_numpy(), target_crs,
                                 labels, report, reprojected=True)
    return frame.set_geometry(gpd.GeoSeries(checked, index=frame.index, crs=target_crs),
                              crs=target_crs)


def validate_premise_chunk(raw: RawLayer, *, target_crs: CRS,
                           areas: gpd.GeoDataFrame | None = None
                           ) -> tuple[gpd.GeoDataFrame | None, ValidationReport]:
    """Validate some rows of the premises layer (a chunk, or a Dask partition) on their own.

    The checks of :func:`validate_raw` for these rows: fields, values,
    geometry, the dataset's CRS ``target_crs`` and the ``areas`` cover.
    Duplicate ids are found within the chunk only: across chunks the caller
    compares them. Returns the clean rows (None when they cannot be used) and
    the report.
    """
    report = ValidationReport()
    frame = _clean_layer(LAYERS["premises"], raw, report)
    if frame is not None and frame.crs is not None:
        frame = _to_crs(LAYERS["premises"], frame, target_crs, report)
        if areas is not None and len(areas):
            _check_area_cover(frame, areas, report)
    return frame, report


def validate_rows(layer_name: str, frame: gpd.GeoDataFrame, *, target_crs: CRS,
                  plant_bounds: Bounds | None = None
                  ) -> tuple[gpd.GeoDataFrame | None, ValidationReport]:
    """Validate some rows of one layer on their own (the rows of a change set).

    The checks of :func:`validate_raw` that need no other row: fields, values,
    geometry, coordinates, the dataset's CRS ``target_crs``, and (with
    ``plant_bounds``, WGS84) swapped coordinates. References between layers and
    duplicate ids across rows already stored are the writer's checks. Returns the
    clean rows (None when they cannot be used) and the report.
    """
    layer = LAYERS[layer_name]
    report = ValidationReport()
    clean = _clean_layer(layer, RawLayer(layer_name, frame, "memory", "gpkg"), report)
    if clean is None:
        return None, report
    if plant_bounds is not None:
        clean = _check_swapped(layer, clean, _Plant(plant_bounds), report)
    if clean.crs is not None:
        clean = _to_crs(layer, clean, target_crs, report)
    return clean, report


def _reproject(frame: gpd.GeoDataFrame, crs: CRS) -> gpd.GeoDataFrame:
    """``frame`` in ``crs``; geometries that cannot be transformed stay as they are (checked
    later) so that one bad feature does not hide the others."""
    geoms = frame.geometry.to_numpy()
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    out = geoms.copy()
    out[ok] = transform_geoms(geoms[ok], CRS(frame.crs), crs)
    return frame.set_geometry(gpd.GeoSeries(out, index=frame.index, crs=crs), crs=crs)


def _clean_layer(layer: Layer, raw: RawLayer, report: ValidationReport) -> gpd.GeoDataFrame | None:
    """Coerce one layer to the contract; record problems; None when it cannot be used."""
    frame = _match_columns(layer, raw.frame.reset_index(drop=True))
    name = layer.name
    missing = [f.name for f in layer.fields if f.required and f.name not in frame.columns]
    if len(frame) == 0:
        # formats such as GeoJSON keep no schema for a layer without features; nothing is lost
        missing = []
    for miss in missing:
        report.errors.append(Problem(name, None, miss, "required field is missing"))
    if missing:
        return None
    extra = [c for c in frame.columns if c not in layer.field_names and c != "geometry"]
    for ext in extra:
        report.warnings.append(Problem(name, None, ext, "field is not in the contract; ignored"))
    crs = _layer_crs(raw, report)
    frame, broken_text = _scrub_text(layer, frame)

    id_col = frame[layer.id_field] if layer.id_field in frame.columns else _nulls(len(frame))
    ids, ids_arrow = _as_text_arrow(id_col)
    id_missing = ids.isna().to_numpy()
    row_label = _row_labels(ids)
    if id_missing.any():
        for i in np.flatnonzero(id_missing):
            report.errors.append(Problem(name, None, layer.id_field,
                                         f"required value is missing (row {i})"))
    for fname, rows in broken_text.items():
        for i in rows:
            report.errors.append(Problem(name, str(row_label[i]), fname,
                                         "text is not valid Unicode (a lone surrogate, e.g. "
                                         "from bytes that are not UTF-8)"))
    _check_controls(name, layer.id_field, ids, row_label, report, ids_arrow)
    dup = ids[~id_missing & ids.duplicated(keep="first").to_numpy()].unique()
    for d in dup:
        report.errors.append(Problem(name, str(d), layer.id_field, "duplicate id"))

    out: dict[str, Any] = {layer.id_field: ids}
    for f in layer.fields:
        if f.name == layer.id_field:
            continue
        col = frame[f.name] if f.name in frame.columns else _nulls(len(frame))
        out[f.name] = _coerce_field(name, f, col, row_label, report)
    if name == "spans":
        _check_fibers(out, row_label, report)
    if name == "nodes":
        _check_split_ratio(out, row_label, report)
    geoms = _clean_geometry(layer, frame.geometry, crs, row_label, report)
    return gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(geoms, crs=crs), crs=crs)


def _nulls(n: int) -> pd.Series:
    return pd.Series([None] * n, dtype=object)


def _row_labels(ids: pd.Series) -> npt.NDArray[np.object_]:
    """The id of each row as problems name it; ``#<row>`` where the id is missing."""
    label = np.asarray(ids.to_numpy(dtype=object), dtype=object).copy()
    missing = ids.isna().to_numpy()
    label[missing] = [f"#{i}" for i in np.flatnonzero(missing)]
    return label


def _scrub_text(layer: Layer, frame: gpd.GeoDataFrame
                ) -> tuple[gpd.GeoDataFrame, dict[str, npt.NDArray[np.intp]]]:
    """``frame`` with text that is not valid Unicode made valid, and where that was.

    Python strings can hold lone surrogates (a JSON ``"\\ud800"`` escape, or file
    bytes decoded with ``surrogateescape``) that no UTF-8 codec, Arrow or database
    accepts; they would crash the checks below and the storage.
    """
    broken: dict[str, npt.NDArray[np.intp]] = {}
    for f in layer.fields:
        if f.name not in frame.columns or frame[f.name].dtype != object:
            continue
        col = frame[f.name]
        try:
            _arrow_text(col)
            continue  # the common case: one C-speed conversion, nothing to repair
        except UnicodeEncodeError:
            pass
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass  # mixed types (numbers among strings): check value by value
        bad = np.fromiter((isinstance(v, str) and not encodable(v) for v in col),
                          dtype=bool, count=len(col))
        if not bad.any():
            continue
        if not broken:
            frame = frame.copy()
        values = col.to_numpy(dtype=object).copy()
        values[bad] = [v.encode("utf-8", "replace").decode("utf-8") for v in values[bad]]
        frame[f.name] = pd.Series(values, index=col.index, dtype=object)
        broken[f.name] = np.flatnonzero(bad)
    return frame, broken


def _check_controls(layer: str, field_name: str, text: pd.Series, row_label: npt.NDArray[Any],
                    report: ValidationReport, arrow: pa.Array | None = None) -> None:
    """An id with a control character (NUL, CR, LF, tab, ...) is an error.

    ``arrow`` is ``text`` as an Arrow array, when at hand.
    """
    if not len(text):
        return
    # missing ids (null) have errors of their own
    hit = pc.fill_null(pc.match_substring_regex(
        _arrow_text(text) if arrow is None else arrow, _CONTROL_RE), False)
    for i in np.flatnonzero(hit.to_numpy(zero_copy_only=False)):
        value = str(text.iat[int(i)])
        found = re.search(_CONTROL_RE, value)
        at = found.start() if found else 0
        report.errors.append(Problem(layer, str(row_label[i]), field_name,
                                     f"contains the control character {value[at]!r} at "
                                     f"position {at}: ids must be printable text (no NUL, "
                                     "line break, line or paragraph separator, or tab)"))


def _check_nul(layer: str, field_name: str, text: pd.Series, row_label: npt.NDArray[Any],
               report: ValidationReport, arrow: pa.Array | None = None) -> None:
    """Text with a NUL character is an error: PostgreSQL cannot store it.

    ``arrow`` is ``text`` as an Arrow array, when at hand.
    """
    if not len(text):
        return
    hit = pc.fill_null(pc.match_substring(_arrow_text(text) if arrow is None else arrow,
                                          "\x00"), False)
    for i in np.flatnonzero(hit.to_numpy(zero_copy_only=False)):
        report.errors.append(Problem(layer, str(row_label[i]), field_name,
                                     "text contains a NUL character (\\x00)"))


def _match_columns(layer: Layer, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Take a column whose name differs from a contract field only in case as that field."""
    present = set(frame.columns)
    rename: dict[str, str] = {}
    for f in layer.fields:
        if f.name in present:
            continue
        hits = [c for c in frame.columns if isinstance(c, str) and c.lower() == f.name]
        if len(hits) == 1:
            rename[hits[0]] = f.name
    return frame.rename(columns=rename) if rename else frame


def _layer_crs(raw: RawLayer, report: ValidationReport) -> CRS | None:
    """The layer's CRS; a missing or unusable one is an error (None is returned then)."""
    name = raw.name
    if raw.frame.crs is None:
        if raw.fmt not in CRS_REQUIRED_FORMATS:
            return WGS84  # GeoJSON (RFC 7946) and GeoParquet default to WGS84 lon/lat
        report.errors.append(Problem(name, None, "geometry",
                                     f"layer has no CRS ({raw.fmt} needs one)"))
        return None
    crs = CRS(raw.frame.crs)
    if crs.is_engineering or crs.name.lower().startswith("undefined"):
        report.errors.append(Problem(name, None, "geometry",
                                     f"layer has an undefined or local CRS ({crs.name!r}) that "
                                     "cannot be related to the earth"))
        return None
    return crs


def _as_text(col: pd.Series) -> pd.Series:
    """Ids and text as str; integral floats lose their '.0'; blank strings are missing.

    Vectorized per dtype; only object columns that mix strings with other
    values fall back to a per-value conversion.
    """
    return _as_text_arrow(col)[0]


def _as_text_arrow(col: pd.Series) -> tuple[pd.Series, pa.Array | None]:
    """:func:`_as_text`, and the same text as an Arrow array when the column held strings.

    The string checks then run on that array instead of converting the
    Python strings back (a million premises: one conversion per column).
    """
    n = len(col)
    out: npt.NDArray[np.object_]
    if n == 0:
        return pd.Series([], index=col.index, dtype=object), None
    missing = col.isna().to_numpy()
    if pd.api.types.is_bool_dtype(col.dtype):
        out = np.where(col.to_numpy(dtype=bool, na_value=False), "true", "false").astype(object)
    elif pd.api.types.is_integer_dtype(col.dtype):
        out = col.astype("string").to_numpy(dtype=object)
    elif pd.api.types.is_float_dtype(col.dtype):
        out = _floats_as_text(col.to_numpy(dtype=float, na_value=np.nan))
    else:
        kind = pd.api.types.infer_dtype(col, skipna=True)
        if kind in ("string", "empty"):
            text = pc.utf8_trim_whitespace(_arrow_text(col))
            text = pc.if_else(pc.equal(text, ""), pa.scalar(None, text.type), text)
            # missing (None, NaN) is null already and blanks are now: nothing left to clear
            out = np.array(text.to_numpy(zero_copy_only=False), dtype=object)
            return pd.Series(out, index=col.index, dtype=object), text
        out = np.array([_value_as_text(v) for v in col.to_numpy(dtype=object)] + [None],
                       dtype=object)[:-1]
    out = np.array(out, dtype=object)  # pandas may hand out read-only views
    out[missing] = None
    out[out == ""] = None
    return pd.Series(out, index=col.index, dtype=object), None


#: Public name of :func:`_as_text`: the mapped import (netgis.interop) reads source values
#: the same way.
as_text = _as_text


def _arrow_text(values: pd.Series | npt.NDArray[np.object_]) -> pa.Array:
    """Strings (None or NaN for missing) as an Arrow array, for C-speed string functions."""
    return pa.array(values, type=pa.large_string(), from_pandas=True)


def _lower(text: pd.Series, arrow: pa.Array | None = None) -> pd.Series:
    """Case-folded copy of a text column from :func:`_as_text` (None stays None).

    ``arrow`` is the same text as an Arrow array, when at hand.
    """
    out = pc.utf8_lower(_arrow_text(text) if arrow is None else arrow).to_numpy(
        zero_copy_only=False)
    return pd.Series(out, index=text.index, dtype=object)


def _floats_as_text(v: npt.NDArray[np.float64]) -> npt.NDArray[np.object_]:
    out = v.astype(str).astype(object)
    integral = np.isfinite(v) & (np.floor(v) == v) & (np.abs(v) < 2.0**63)
    out[integral] = v[integral].astype(np.int64).astype(str)
    return out


def _value_as_text(v: Any) -> str | None:
    if v is None or v is pd.NA or (isinstance(v, float | np.floating) and np.isnan(v)):
        return None
    if isinstance(v, bool | np.bool_):
        return "true" if v else "false"
    if isinstance(v, float | np.floating):
        return str(_floats_as_text(np.array([v], dtype=float))[0])
    if isinstance(v, bytes):
        return v.decode(errors="replace").strip()
    return str(v).strip()


def _coerce_field(layer: str, f: Field, col: pd.Series, row_label: npt.NDArray[Any],
                  report: ValidationReport) -> pd.Series:
    if f.type == "text":
        text, arrow = _as_text_arrow(col)
        if f.enum is None:
            _check_nul(layer, f.name, text, row_label, report, arrow)
            return text
        present = text.notna().to_numpy()
        folded_col = _lower(text, arrow)
        bad = present & ~folded_col.isin(f.enum).to_numpy()
        folded = folded_col.to_numpy(dtype=object).copy()
        for i in np.flatnonzero(bad):
            report.errors.append(Problem(layer, str(row_label[i]), f.name,
                                         f"unknown value {text.iat[int(i)]!r}; expected one of "
                                         + ", ".join(f.enum)))
        folded[~present] = f.default
        return pd.Series(folded, index=col.index, dtype=object)
    if f.type == "bool":
        return _coerce_bool(layer, f, col, row_label, report)
    return _coerce_int(layer, f, col, row_label, report)


def _coerce_bool(layer: str, f: Field, col: pd.Series, row_label: npt.NDArray[Any],
                 report: ValidationReport) -> pd.Series:
    default = bool(f.default)
    if pd.api.types.is_bool_dtype(col.dtype):
        return pd.Series(col.to_numpy(dtype=bool, na_value=default), index=col.index)
    text = _lower(*_as_text_arrow(col))
    is_true = text.isin(_TRUE).to_numpy().copy()
    is_false = text.isin(_FALSE).to_numpy().copy()
    bad = text.notna().to_numpy() & ~is_true & ~is_false
    if bad.any():
        # numbers written as text ("1.0" from a mixed-type GeoJSON property) are 1/0 too
        num = pd.to_numeric(text[bad], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        where = np.flatnonzero(bad)
        is_true[where[num == 1]] = True
        is_false[where[num == 0]] = True
        bad[where[(num == 1) | (num == 0)]] = False
    for i in np.flatnonzero(bad):
        report.errors.append(Problem(layer, str(row_label[i]), f.name,
                                     f"not a boolean: {col.iat[int(i)]!r} (use true/false or 1/0)"))
    out = np.where(is_true, True, np.where(is_false, False, default))
    return pd.Series(out.astype(bool), index=col.index)


def _coerce_int(layer: str, f: Field, col: pd.Series, row_label: npt.NDArray[Any],
                report: ValidationReport) -> pd.Series:
    if pd.api.types.is_bool_dtype(col.dtype) or not pd.api.types.is_numeric_dtype(col.dtype):
        source = _as_text(col)  # text cells: blanks are missing, the rest must parse
    else:
        source = col
    num = pd.to_numeric(source, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    given = source.notna().to_numpy()
    integral = np.isfinite(num) & (np.floor(num) == num) & (np.abs(num) < 2.0**53)
    for i in np.flatnonzero(given & ~integral):
        report.errors.append(Problem(layer, str(row_label[i]), f.name,
                                     f"not an integer: {col.iat[int(i)]!r}"))
    values = np.where(integral, num, 0).astype(np.int64)
    mask = ~integral
    if f.default is not None:
        values[mask] = int(f.default)
        mask = np.zeros(len(values), dtype=bool)
    if f.minimum is not None:
        low = ~mask & (values < f.minimum)
        for i in np.flatnonzero(low):
            report.errors.append(Problem(layer, str(row_label[i]), f.name,
                                         f"must be >= {f.minimum}, got {values[i]}"))
    return pd.Series(pd.arrays.IntegerArray(values, mask), index=col.index)


def _check_split_ratio(out: dict[str, Any], row_label: npt.NDArray[Any],
                       report: ValidationReport) -> None:
    """docs/spec.md §1.2: a ratio only on splitters, from the list; a splitter without one is a
    warning."""
    ratio, kind = out["split_ratio"], out["kind"]
    has = ratio.notna().to_numpy()
    splitter = (kind == SPLITTER).to_numpy(dtype=bool, na_value=False)
    listed = ratio.isin(SPLIT_RATIOS).to_numpy(dtype=bool, na_value=False)
    choices = ", ".join(map(str, SPLIT_RATIOS))
    for i in np.flatnonzero(has & ~splitter):
        report.errors.append(Problem("nodes", str(row_label[i]), "split_ratio",
                                     f"only splitter nodes carry a split_ratio (kind is "
                                     f"{kind.iat[i]})"))
    for i in np.flatnonzero(has & splitter & ~listed):
        report.errors.append(Problem("nodes", str(row_label[i]), "split_ratio",
                                     f"must be one of {choices}, got {ratio.iat[i]}"))
    for i in np.flatnonzero(~has & splitter):
        report.warnings.append(Problem("nodes", str(row_label[i]), "split_ratio",
                                       "splitter without split_ratio: it adds no loss"))


def _check_fibers(out: dict[str, Any], row_label: npt.NDArray[Any],
                  report: ValidationReport) -> None:
    count, used = out["fiber_count"], out["fibers_used"]
    over = (count.notna() & used.notna() & (used > count)).to_numpy(dtype=bool, na_value=False)
    for i in np.flatnonzero(over):
        report.errors.append(Problem("spans", str(row_label[i]), "fibers_used",
                                     f"fibers_used {used.iat[i]} exceeds fiber_count "
                                     f"{count.iat[i]}"))


def _clean_geometry(layer: Layer, geoms: gpd.GeoSeries, crs: CRS | None,
                    row_label: npt.NDArray[Any],
                    report: ValidationReport) -> npt.NDArray[np.object_]:
    arr = np.asarray(geoms.array, dtype=object) if len(geoms) else np.empty(0, dtype=object)
    name = layer.name
    missing = shapely.is_missing(arr) | shapely.is_empty(arr)
    for i in np.flatnonzero(missing):
        report.errors.append(Problem(name, str(row_label[i]), "geometry",
                                     "geometry is missing or empty"))
    types = np.asarray(shapely.get_type_id(arr))
    # a Multi* (type ids 4..6) of one part is taken as that part
    single = (types >= 4) & (types <= 6) & (shapely.get_num_geometries(arr) == 1)
    if single.any():
        arr = arr.copy()
        arr[single] = shapely.get_geometry(arr[single], 0)
        types = types.copy()
        types[single] = shapely.get_type_id(arr[single])
    allowed = [_TYPE_NAMES.index(t) for t in layer.geometry_types]
    wrong = ~missing & ~np.isin(types, allowed)
    for i in np.flatnonzero(wrong):
        report.errors.append(Problem(name, str(row_label[i]), "geometry",
                                     f"wrong geometry type {_TYPE_NAMES[types[i]]}; expected "
                                     + " or ".join(layer.geometry_types)))
    usable = ~missing & ~wrong
    has_zm = usable & (shapely.has_z(arr) | shapely.has_m(arr))
    if has_zm.any():
        first = str(row_label[np.flatnonzero(has_zm)[0]])
        report.warnings.append(Problem(name, first, "geometry",
                                       f"Z/M values dropped from {int(has_zm.sum())} "
                                       f"geometries (first: {first})"))
        arr = arr.copy()
        arr[has_zm] = shapely.force_2d(arr[has_zm])
    # before any GEOS predicate: a NaN or an infinity makes every later step meaningless
    arr = _check_coordinates(name, arr, crs, row_label, report)
    usable &= ~shapely.is_missing(arr)
    invalid = usable & ~shapely.is_valid(arr)
    for i in np.flatnonzero(invalid):
        report.errors.append(Problem(name, str(row_label[i]), "geometry",
                                     f"invalid geometry: {shapely.is_valid_reason(arr[i])}"))
    if name == "spans":
        short = usable & ~invalid & (shapely.get_num_coordinates(arr) < 2)
        for i in np.flatnonzero(short):
            report.errors.append(Problem(name, str(row_label[i]), "geometry",
                                         "line has fewer than two points"))
    return arr


def _check_coordinates(name: str, arr: npt.NDArray[np.object_], crs: CRS | None,
                       row_label: npt.NDArray[Any], report: ValidationReport, *,
                       reprojected: bool = False) -> npt.NDArray[np.object_]:
    """Check every vertex of every geometry; geometries with an error become None.

    A coordinate that is not finite, that lies outside +-180 / +-90 once in
    WGS84, or more than :data:`AREA_OF_USE_MARGIN_DEG` beyond the area of use of
    ``crs`` is an error (one per feature, naming its worst vertex); beyond the
    area of use by less is one warning for the layer. A projected layer whose
    coordinates all look like degrees is one error naming the likely cause.

    Parameters
    ----------
    name
        The layer, as problems name it.
    arr
        The layer's geometries (2D) in ``crs``; missing and empty ones are skipped.
    crs
        The layer's CRS; None checks finiteness only (the missing CRS is an error
        of its own).
    row_label
        The id of each row as problems name it.
    reprojected
        ``arr`` was reprojected from the layer's own CRS into ``crs``, the
        dataset's CRS: the reasons say so, and there is no degree check.

    Returns
    -------
    numpy.ndarray
        ``arr`` with every geometry that has an error replaced by None, so
        that no later check (GEOS, pyproj, geodesics) sees it.
    """
    present = np.flatnonzero(~(shapely.is_missing(arr) | shapely.is_empty(arr)))
    if not len(present):
        return arr
    coords, part = shapely.get_coordinates(arr[present], return_index=True)
    feat = present[part]  # the row of each vertex
    bad = np.zeros(len(arr), dtype=bool)
    crs_text = "" if crs is None else _crs_text(crs)
    into = f" when reprojected to the dataset's CRS {crs_text}" if reprojected else ""

    finite = np.asarray(np.isfinite(coords).all(axis=1), dtype=bool)
    if not finite.all():
        for row, k in _first_per_row(feat, ~finite):
            report.errors.append(Problem(name, str(row_label[row]), "geometry",
                                         f"coordinate {_xy(coords[k])} is not finite (NaN or "
                                         f"infinity){into}"))
            bad[row] = True
    if crs is None:
        return _drop(arr, bad)

    keep = ~bad[feat]
    x, y, rows = coords[keep, 0], coords[keep, 1], feat[keep]
    if not len(rows):
        return _drop(arr, bad)
    if not reprojected and _looks_like_degrees(crs, x, y):
        first = str(row_label[rows[0]])
        report.errors.append(Problem(
            name, None, "geometry",
            f"every coordinate lies within +-180 / +-90 although the layer declares the "
            f"projected CRS {crs_text}, whose units are {_unit(crs)}: the data looks like "
            "longitude/latitude degrees with a wrong CRS (declare EPSG:4326 or reproject "
            f"it; {len(np.unique(rows))} features, first: {first})"))
        bad[rows] = True
        return _drop(arr, bad)

    lon, lat, why = _to_wgs84(crs, x, y)
    beyond = np.zeros(len(x))
    area = crs.area_of_use
    if area is not None:
        beyond = _degrees_beyond(lon, lat, area.bounds)
    wrong = (why != "") | (beyond > AREA_OF_USE_MARGIN_DEG)
    swapped = np.zeros(len(arr), dtype=bool) if reprojected else \
        _fixed_by_swap(crs, x, y, rows, wrong, len(arr))
    # the worst vertex of each feature: errors of the world first, then the largest excess
    worst = np.where(why != "", np.inf, beyond)
    for row, k in _first_per_row(rows, wrong, -worst):
        where = _xy((x[k], y[k]))
        if why[k]:
            reason = f"coordinate {where} {why[k]}"
        else:
            assert area is not None
            reason = (f"coordinate {where} lies {beyond[k]:.1f} degrees beyond the area of use "
                      f"of {crs_text} ({_bounds(area.bounds)}; allowed up to "
                      f"{AREA_OF_USE_MARGIN_DEG:g}): wrong coordinates or wrong CRS")
        if swapped[row]:
            reason = f"{_swapped_text(crs)} ({reason})"
        report.errors.append(Problem(name, str(row_label[row]), "geometry", reason + into))
        bad[row] = True
    if not reprojected and crs.is_geographic and bad[rows].all() and len(np.unique(rows)) > 1 \
            and not swapped.any():
        report.errors.append(Problem(
            name, None, "geometry",
            f"no coordinate of the layer is valid in the geographic CRS {crs_text}: "
            "projected coordinates (meters or feet) with a wrong CRS?"))
    near = ~wrong & (beyond > 0) & ~bad[rows]
    if near.any():
        hit = np.unique(rows[near])
        first = str(row_label[hit[0]])
        assert area is not None
        report.warnings.append(Problem(
            name, first, "geometry",
            f"{len(hit)} feature(s) lie up to {beyond[near].max():.1f} degrees beyond the area "
            f"of use of {crs_text} ({_bounds(area.bounds)}){into} (first: {first}); results "
            "there are less accurate"))
    return _drop(arr, bad)


def _swapped_text(crs: CRS) -> str:
    order = "lat, lon" if crs.is_geographic else "northing, easting"
    return f"coordinates look swapped ({order}): swap x and y"


def _every(rows: npt.NDArray[np.intp], ok: npt.NDArray[np.bool_], n: int
           ) -> npt.NDArray[np.bool_]:
    """Per row of ``n``: it has a vertex and ``ok`` holds for each (``rows``: each vertex's)."""
    total = np.bincount(rows, minlength=n)
    return np.asarray((total > 0) & (np.bincount(rows, weights=ok, minlength=n) == total))


def _fixed_by_swap(crs: CRS, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64],
                   rows: npt.NDArray[np.intp], wrong: npt.NDArray[np.bool_], n: int
                   ) -> npt.NDArray[np.bool_]:
    """The rows with a ``wrong`` vertex whose every vertex, x and y exchanged, is fine in
    WGS84 and lies within the area of use of ``crs``: their coordinates look swapped."""
    hit = np.zeros(n, dtype=bool)
    hit[rows[wrong]] = True
    sel = hit[rows]
    if not sel.any():
        return hit
    lon, lat, why = _to_wgs84(crs, y[sel], x[sel])
    ok = why == ""
    area = crs.area_of_use
    if area is not None:
        ok &= _degrees_beyond(lon, lat, area.bounds) == 0
    return hit & _every(rows[sel], ok, n)


@dataclass(frozen=True)
class _Plant:
    """The box of the plant (nodes and spans) in WGS84 and, when known, in the dataset's CRS.

    What premises and areas far from it are compared with (:func:`_check_swapped`).
    """

    lonlat: Bounds
    crs: CRS | None = None
    box: Bounds | None = None

    @classmethod
    def of(cls, clean: dict[str, gpd.GeoDataFrame], crs: CRS | None) -> _Plant | None:
        """The box of the clean nodes and spans, in ``crs`` (the dataset's); None without
        a usable geometry."""
        geoms = [clean[n].geometry.to_numpy() for n in ("nodes", "spans") if n in clean]
        if crs is None or not geoms:
            return None
        arr = np.concatenate(geoms)
        arr = arr[~(shapely.is_missing(arr) | shapely.is_empty(arr))]
        if not len(arr):
            return None
        b = shapely.bounds(arr)
        box = (float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()),
               float(b[:, 3].max()))
        lonlat = box if _in_degrees(crs) else \
            transformer(crs, WGS84).transform_bounds(*box, densify_pts=21)
        if not np.isfinite(lonlat).all():
            return None
        w, s, e, n = (float(v) for v in lonlat)
        return cls((w, s, e, n), crs, box)


def _check_swapped(layer: Layer, frame: gpd.GeoDataFrame, plant: _Plant,
                   report: ValidationReport) -> gpd.GeoDataFrame:
    """One error for each feature whose coordinates look swapped; its geometry dropped.

    Such a feature lies, every vertex, more than :data:`SWAP_FAR_M` from the
    plant's box and, x and y exchanged in its own CRS, within :data:`SWAP_NEAR_M`
    of it: (lat, lon) written as (lon, lat). Both conditions together keep a
    premise just outside the plant, or far off but not mirrored onto it, clean.
    ``frame`` is the layer, checked on its own, in its own CRS.
    """
    if frame.crs is None or not len(frame):
        return frame
    crs, arr, n = CRS(frame.crs), frame.geometry.to_numpy(), len(frame)
    present = np.flatnonzero(~(shapely.is_missing(arr) | shapely.is_empty(arr)))
    coords, part = shapely.get_coordinates(arr[present], return_index=True)
    rows = present[part]
    # no transformation for what lies in the plant's box in the same CRS (most features)
    maybe = np.ones(n, dtype=bool)
    if plant.box is not None and crs == plant.crs:
        west, south, east, north = plant.box
        maybe[rows[(coords[:, 0] >= west) & (coords[:, 0] <= east)
                   & (coords[:, 1] >= south) & (coords[:, 1] <= north)]] = False
    sel = maybe[rows]
    x, y, rows = coords[sel, 0], coords[sel, 1], rows[sel]
    lon, lat, why = _to_wgs84(crs, x, y)
    dist = np.full(len(rows), np.nan)
    fine = why == ""
    dist[fine] = distance_to_box_m(lon[fine], lat[fine], plant.lonlat)
    sel = _every(rows, dist > SWAP_FAR_M, n)[rows]
    x, y, rows, dist = x[sel], y[sel], rows[sel], dist[sel]
    lon, lat, why = _to_wgs84(crs, y, x)
    fine = why == ""
    back = np.full(len(rows), np.inf)
    back[fine] = distance_to_box_m(lon[fine], lat[fine], plant.lonlat)
    swapped = _every(rows, back <= SWAP_NEAR_M, n)
    if not swapped.any():
        return frame
    nearest = np.full(n, np.inf)
    np.minimum.at(nearest, rows, dist)
    labels = _row_labels(frame[layer.id_field])
    for i in np.flatnonzero(swapped).tolist():
        report.errors.append(Problem(
            layer.name, str(labels[i]), "geometry",
            f"{_swapped_text(crs)} (the feature lies {nearest[i] / 1000:,.0f} km from the "
            f"plant, the box of the nodes and spans; with x and y swapped it lies within "
            f"{SWAP_NEAR_M / 1000:g} km of it)"))
    return frame.set_geometry(gpd.GeoSeries(_drop(arr, swapped), index=frame.index, crs=crs),
                              crs=crs)


def _drop(arr: npt.NDArray[np.object_], bad: npt.NDArray[np.bool_]) -> npt.NDArray[np.object_]:
    if not bad.any():
        return arr
    out = arr.copy()
    out[bad] = None
    return out


def _first_per_row(rows: npt.NDArray[np.intp], mask: npt.NDArray[np.bool_],
                   order: npt.NDArray[np.float64] | None = None
                   ) -> list[tuple[int, int]]:
    """``(row, vertex index)`` of the first masked vertex of each row (lowest ``order`` first).

    Vectorized: one sort, not one scan per feature (a million bad premises stay fast).
    """
    idx = np.flatnonzero(mask)
    if not len(idx):
        return []
    key = np.zeros(len(idx)) if order is None else order[idx]
    idx = idx[np.lexsort((key, rows[idx]))]
    first = np.ones(len(idx), dtype=bool)
    first[1:] = rows[idx][1:] != rows[idx][:-1]
    return [(int(rows[k]), int(k)) for k in idx[first]]


def _looks_like_degrees(crs: CRS, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
                        ) -> bool:
    """A projected layer whose coordinates all fit +-180 / +-90: lon/lat with a wrong CRS.

    In any real projected CRS such a layer would have to sit within a few hundred
    meters of the false origin, which is (by design of false eastings and northings)
    nowhere near the area the CRS is made for.
    """
    return bool(crs.is_projected and (np.abs(x) <= 180).all() and (np.abs(y) <= 90).all())


def _to_wgs84(crs: CRS, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
              ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.str_]]:
    """WGS84 lon/lat of each vertex and, per vertex, why it has none ("" when fine)."""
    why = np.full(len(x), "", dtype=object)
    if _in_degrees(crs):
        # lon/lat already (a datum shift is meters, far below what is checked here); no
        # transformation, which would wrap 500 E round to 140 E
        lon, lat = x, y
    else:
        lon, lat = (np.asarray(v, dtype=float) for v in transformer(crs, WGS84).transform(x, y))
        back_x, back_y = transformer(WGS84, crs).transform(lon, lat)
        ok = np.isfinite(lon) & np.isfinite(lat)
        # the inverse of a projection is defined beyond the map's edge for some
        # projections only by wrapping round the globe: only a round trip tells
        ok &= np.isclose(back_x, x, rtol=1e-9, atol=_ROUND_TRIP_TOLERANCE)
        ok &= np.isclose(back_y, y, rtol=1e-9, atol=_ROUND_TRIP_TOLERANCE)
        why[~ok] = f"cannot be transformed to WGS84: it lies outside the domain of {_crs_text(crs)}"
    outside = (why == "") & ((np.abs(lon) > 180) | (np.abs(lat) > 90))
    if outside.any():
        shown = [_xy((a, b)) for a, b in zip(lon[outside], lat[outside], strict=True)]
        extra = [""] * len(shown) if _in_degrees(crs) else [f" (WGS84 {t})" for t in shown]
        why[outside] = [f"lies outside longitude -180..180 / latitude -90..90{e}"
                        for e in extra]
    return lon, lat, why.astype(str)


def _in_degrees(crs: CRS) -> bool:
    """A geographic CRS in degrees from Greenwich: x, y are lon/lat as they stand."""
    units = {a.unit_name for a in crs.axis_info[:2]}
    meridian = crs.prime_meridian
    return bool(crs.is_geographic and units == {"degree"}
                and (meridian is None or meridian.longitude == 0))


def _degrees_beyond(lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64],
                    bounds: tuple[float, float, float, float]) -> npt.NDArray[np.float64]:
    """How many degrees each lon/lat lies beyond a (west, south, east, north) box.

    The box may cross the antimeridian (west > east), as areas of use in the
    Pacific do. Non-finite inputs give NaN (they are errors of their own).

    Examples
    --------
    >>> _degrees_beyond(np.array([14.0, 8.0]), np.array([50.0, -1.0]), (6, 0, 12, 84)).tolist()
    [2.0, 1.0]
    >>> _degrees_beyond(np.array([-175.0]), np.array([-40.0]), (160.6, -56, -171.2, -26))
    array([0.])
    """
    west, south, east, north = bounds
    with np.errstate(invalid="ignore"):
        dlat = np.maximum(np.maximum(south - lat, lat - north), 0.0)
        if east - west >= 360.0 or (west, east) == (-180.0, 180.0):
            dlon = np.zeros_like(lon)
        else:
            width = (east - west) % 360.0
            off = (lon - west) % 360.0
            dlon = np.where(off <= width, 0.0, np.minimum(off - width, 360.0 - off))
    return np.asarray(np.maximum(dlon, dlat), dtype=float)


def _crs_text(crs: CRS) -> str:
    """``EPSG:32632 (WGS 84 / UTM zone 32N)``, or the CRS's name when it has no code."""
    code = crs.to_authority(min_confidence=90)
    return f"{code[0]}:{code[1]} ({crs.name})" if code else repr(crs.name)


def _unit(crs: CRS) -> str:
    units = sorted({a.unit_name for a in crs.axis_info[:2]})
    return " / ".join(units) or "unknown"


def _bounds(b: tuple[float, float, float, float]) -> str:
    return f"lon {b[0]:g}..{b[2]:g}, lat {b[1]:g}..{b[3]:g}"


def _xy(xy: Any) -> str:
    return f"({float(xy[0]):.10g}, {float(xy[1]):.10g})"


def _check_references(nodes: gpd.GeoDataFrame, spans: gpd.GeoDataFrame,
                      report: ValidationReport, snap_tolerance_m: float) -> None:
    # one factorization of every node id and span end: the checks below compare integer codes
    # (-1: missing) instead of looking strings up again and again
    n, m = len(nodes), len(spans)
    codes, uniques = pd.factorize(pd.concat([nodes["node_id"], spans["from_node"],
                                             spans["to_node"]], ignore_index=True))
    node_code, from_code, to_code = codes[:n], codes[n:n + m], codes[n + m:]
    is_node = np.zeros(len(uniques), dtype=bool)
    is_node[node_code[node_code >= 0]] = True
    labels = _LazyLabels(spans["span_id"])
    for end, code in (("from_node", from_code), ("to_node", to_code)):
        for i in np.flatnonzero(code < 0).tolist():
            report.errors.append(Problem("spans", labels[i], end, "required value is missing"))
        for i in np.flatnonzero((code >= 0) & ~is_node[np.maximum(code, 0)]).tolist():
            report.errors.append(Problem("spans", labels[i], end,
                                         f"names no existing node: {spans[end].iat[i]!r}"))
    for i in np.flatnonzero((from_code >= 0) & (from_code == to_code)).tolist():
        report.errors.append(Problem("spans", labels[i], "to_node",
                                     "span starts and ends at the same node (self-loop)"))
    used = np.zeros(len(uniques), dtype=bool)
    used[from_code[from_code >= 0]] = True
    used[to_code[to_code >= 0]] = True
    for i in np.flatnonzero((node_code >= 0) & ~used[np.maximum(node_code, 0)]).tolist():
        report.warnings.append(Problem("nodes", str(uniques[node_code[i]]), None,
                                       "node has no spans"))
    _check_snap(nodes, spans, (len(uniques), node_code, from_code, to_code), report,
                snap_tolerance_m)


class _LazyLabels:
    """A span's label in a problem (its id, ``?`` when it has none), built on first use."""

    def __init__(self, ids: pd.Series) -> None:
        self._ids = ids
        self._labels: npt.NDArray[np.object_] | None = None

    def __getitem__(self, i: int) -> str:
        if self._labels is None:
            self._labels = self._ids.fillna("?").astype(str).to_numpy()
        return str(self._labels[i])


def _check_snap(nodes: gpd.GeoDataFrame, spans: gpd.GeoDataFrame,
                ids: tuple[int, npt.NDArray[np.intp], npt.NDArray[np.intp],
                           npt.NDArray[np.intp]],
                report: ValidationReport, snap_tolerance_m: float) -> None:
    """Warn of span ends farther than the snap tolerance from their node.

    ``ids``: how many distinct node ids there are and the code of each node's id, each
    span's from_node and to_node (one factorization of all three; -1 is missing). A node
    id's position is its first row's; only usable points take part (other node geometries
    have errors of their own).
    """
    if nodes.crs is None or spans.crs is None or not len(spans):
        return
    n_ids, node_code, from_code, to_code = ids
    codes, first_row = np.unique(node_code, return_index=True)
    first_row, codes = first_row[codes >= 0], codes[codes >= 0]
    pts = nodes.geometry.to_numpy()[first_row]
    usable = (shapely.get_type_id(pts) == 0) & ~shapely.is_empty(pts)
    has_point = np.zeros(n_ids, dtype=bool)
    has_point[codes[usable]] = True
    geoms = spans.geometry.to_numpy()
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    ok &= shapely.get_type_id(geoms) == 1
    ok &= (from_code >= 0) & has_point[np.maximum(from_code, 0)]
    ok &= (to_code >= 0) & has_point[np.maximum(to_code, 0)]
    if not ok.any():
        return
    idx = np.flatnonzero(ok)
    # each node's position once, in WGS84 (the same doubles as one transform per span end)
    node_ll = np.full((n_ids, 2), np.nan)
    node_ll[codes[usable]] = _xy_wgs84(shapely.get_coordinates(pts[usable]), CRS(nodes.crs))
    # the end vertices alone, transformed as transform_geoms would transform them
    coords, line = shapely.get_coordinates(geoms[idx], return_index=True)
    last = np.flatnonzero(np.append(line[1:] != line[:-1], True))
    first = np.append(0, last[:-1] + 1)
    starts = _xy_wgs84(coords[first], CRS(spans.crs))
    ends = _xy_wgs84(coords[last], CRS(spans.crs))
    for coords, code, end in ((starts, from_code[idx], "from_node"),
                              (ends, to_code[idx], "to_node")):
        node_xy = node_ll[code]
        d = geodesic_distance_m(coords[:, 0], coords[:, 1], node_xy[:, 0], node_xy[:, 1])
        for j in np.flatnonzero(d > snap_tolerance_m).tolist():
            row = int(idx[j])
            report.warnings.append(Problem(
                "spans", str(spans["span_id"].iat[row]), "geometry",
                f"{end} end lies {d[j]:.1f} m from node {spans[end].iat[row]} "
                f"(snap tolerance {snap_tolerance_m:g} m)"))


def _xy_wgs84(xy: npt.NDArray[np.float64], crs: CRS) -> npt.NDArray[np.float64]:
    """Coordinates (n x 2) in ``crs`` as WGS84 lon/lat; no geometry is built."""
    if crs == WGS84:
        return xy
    lon, lat = transformer(crs, WGS84).transform(xy[:, 0], xy[:, 1])
    return np.column_stack([lon, lat])


def _check_area_cover(premises: gpd.GeoDataFrame, areas: gpd.GeoDataFrame,
                      report: ValidationReport) -> None:
    if premises.crs is None or areas.crs is None:
        return
    polys = areas.geometry.to_numpy()
    polys = polys[~(shapely.is_missing(polys) | shapely.is_empty(polys))]
    polys = polys[shapely.is_valid(polys)]
    if not len(polys):
        return  # the areas' own errors say enough
    if CRS(premises.crs) != CRS(areas.crs):
        polys = transform_geoms(polys, CRS(areas.crs), CRS(premises.crs))
    pts = premises.geometry.to_numpy()
    outside = ~(shapely.is_missing(pts) | shapely.is_empty(pts))
    outside &= shapely.get_type_id(pts) == 0
    _mark_covered(pts, polys, outside)
    ids = premises["premise_id"].to_numpy()
    for i in np.flatnonzero(outside):
        report.warnings.append(Problem("premises", str(ids[i]), "geometry",
                                       "premise lies outside every area"))


def _mark_covered(pts: npt.NDArray[np.object_], polys: npt.NDArray[np.object_],
                  outside: npt.NDArray[np.bool_]) -> None:
    """Clear ``outside`` for every point covered by some polygon (boundary included).

    One prepared polygon at a time tests only the points in its bounding box
    that no earlier polygon covered (:class:`netgis.geodesy.PointsCover`): a
    few dozen areas over a million premises take a fraction of a second.
    """
    xy = np.full((len(pts), 2), np.nan)
    xy[outside] = shapely.get_coordinates(pts[outside])
    cover = PointsCover(xy[:, 0], xy[:, 1])
    for poly in polys:
        outside[cover.covered(poly, among=outside)] = False
