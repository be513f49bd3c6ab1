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
from netgis.errors import Problem, ValidationError
from netgis.geodesy import WGS84, geodesic_distance_m, transform_geoms
from netgis.schema import (
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


@dataclass
class ValidationReport:
    """Errors and warnings of one validation, and the clean dataset when there is no error."""

    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    dataset: Dataset | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, list[dict[str, Any]]]:
        return {
            "errors": [p.as_dict() for p in self.errors],
            "warnings": [p.as_dict() for p in self.warnings],
        }

    def dataset_or_raise(self) -> Dataset:
        if self.errors or self.dataset is None:
            raise ValidationError(self.errors, self.warnings)
        return self.dataset


def validate_frames(
    frames: dict[str, gpd.GeoDataFrame], *, snap_tolerance_m: float = SNAP_TOLERANCE_M,
    crs_required: bool = True,
) -> ValidationReport:
    """Validate in-memory layers (as the storage and the API hold them)."""
    fmt = "gpkg" if crs_required else "geojson"
    raw = {name: RawLayer(name, frame, "memory", fmt) for name, frame in frames.items()}
    return validate_raw(raw, snap_tolerance_m=snap_tolerance_m)


def validate_raw(
    raw: dict[str, RawLayer], *, snap_tolerance_m: float = SNAP_TOLERANCE_M
) -> ValidationReport:
    """Validate raw layers; the report holds the clean dataset when there is no error."""
    report = ValidationReport()
    clean: dict[str, gpd.GeoDataFrame] = {}
    target_crs: CRS | None = None
    for name in LAYER_NAMES:
        layer = LAYERS[name]
        if name not in raw:
            if layer.required:
                report.errors.append(Problem(name, None, None, "required layer is missing"))
            continue
        frame = _clean_layer(layer, raw[name], report)
        if frame is None:
            continue
        # the dataset's CRS is the first layer's (nodes, when it has a usable CRS)
        if frame.crs is not None:
            if target_crs is None:
                target_crs = CRS(frame.crs)
            elif CRS(frame.crs) != target_crs:
                frame = _reproject(frame, target_crs)
        clean[name] = frame
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

    id_col = frame[layer.id_field] if layer.id_field in frame.columns else _nulls(len(frame))
    ids = _as_text(id_col)
    id_missing = ids.isna().to_numpy()
    row_label = ids.to_numpy(dtype=object).copy()
    if id_missing.any():
        where = np.flatnonzero(id_missing)
        row_label[where] = [f"#{i}" for i in where]
        for i in where:
            report.errors.append(Problem(name, None, layer.id_field,
                                         f"required value is missing (row {i})"))
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
    geoms = _clean_geometry(layer, frame.geometry, row_label, report)
    return gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(geoms, crs=crs), crs=crs)


def _nulls(n: int) -> pd.Series:
    return pd.Series([None] * n, dtype=object)


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
    n = len(col)
    out: npt.NDArray[np.object_]
    if n == 0:
        return pd.Series([], index=col.index, dtype=object)
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
            out = pc.utf8_trim_whitespace(_arrow_text(col)).to_numpy(zero_copy_only=False)
        else:
            out = np.array([_value_as_text(v) for v in col.to_numpy(dtype=object)] + [None],
                           dtype=object)[:-1]
    out = np.array(out, dtype=object)  # pandas may hand out read-only views
    out[missing] = None
    out[out == ""] = None
    return pd.Series(out, index=col.index, dtype=object)


def _arrow_text(values: pd.Series | npt.NDArray[np.object_]) -> pa.Array:
    """Strings (None or NaN for missing) as an Arrow array, for C-speed string functions."""
    return pa.array(values, type=pa.large_string(), from_pandas=True)


def _lower(text: pd.Series) -> pd.Series:
    """Case-folded copy of a text column from :func:`_as_text` (None stays None)."""
    out = pc.utf8_lower(_arrow_text(text)).to_numpy(zero_copy_only=False)
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
        text = _as_text(col)
        if f.enum is None:
            return text
        present = text.notna().to_numpy()
        folded_col = _lower(text)
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
    text = _lower(_as_text(col))
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
    """SPEC: a ratio only on splitters, from the list; a splitter without one is a warning."""
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


def _clean_geometry(layer: Layer, geoms: gpd.GeoSeries, row_label: npt.NDArray[Any],
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


def _check_references(nodes: gpd.GeoDataFrame, spans: gpd.GeoDataFrame,
                      report: ValidationReport, snap_tolerance_m: float) -> None:
    node_ids = pd.Index(nodes["node_id"].dropna())
    label = spans["span_id"].fillna("?").astype(str).to_numpy()
    for end in ("from_node", "to_node"):
        col = spans[end]
        for i in np.flatnonzero(col.isna().to_numpy()):
            report.errors.append(Problem("spans", label[i], end, "required value is missing"))
        dangling = col.notna() & ~col.isin(node_ids)
        for i in np.flatnonzero(dangling.to_numpy()):
            report.errors.append(Problem("spans", label[i], end,
                                         f"names no existing node: {col.iat[int(i)]!r}"))
    loop = spans["from_node"].notna() & (spans["from_node"] == spans["to_node"])
    for i in np.flatnonzero(loop.to_numpy()):
        report.errors.append(Problem("spans", label[i], "to_node",
                                     "span starts and ends at the same node (self-loop)"))
    used = pd.Index(pd.concat([spans["from_node"], spans["to_node"]]).dropna().unique())
    for nid in node_ids[~node_ids.isin(used)]:
        report.warnings.append(Problem("nodes", str(nid), None, "node has no spans"))
    _check_snap(nodes, spans, report, snap_tolerance_m)


def _check_snap(nodes: gpd.GeoDataFrame, spans: gpd.GeoDataFrame, report: ValidationReport,
                snap_tolerance_m: float) -> None:
    if nodes.crs is None or spans.crs is None or not len(spans):
        return
    pts = nodes.drop_duplicates("node_id").set_index("node_id").geometry
    # only usable points take part; other node geometries have errors of their own
    pts = pts[shapely.get_type_id(pts.to_numpy()) == 0]
    pts = pts[~shapely.is_empty(pts.to_numpy())]
    geoms = spans.geometry.to_numpy()
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    ok &= shapely.get_type_id(geoms) == 1
    ok &= spans["from_node"].isin(pts.index).to_numpy()
    ok &= spans["to_node"].isin(pts.index).to_numpy()
    ok &= ~shapely.is_missing(pts.reindex(spans["from_node"]).to_numpy())
    ok &= ~shapely.is_missing(pts.reindex(spans["to_node"]).to_numpy())
    if not ok.any():
        return
    idx = np.flatnonzero(ok)
    lines = transform_geoms(geoms[idx], CRS(spans.crs), WGS84)
    starts = shapely.get_coordinates(shapely.get_point(lines, 0))
    ends = shapely.get_coordinates(shapely.get_point(lines, -1))
    sub = spans.iloc[idx]
    pt_from = shapely.get_coordinates(transform_geoms(
        pts.reindex(sub["from_node"]).to_numpy(), CRS(nodes.crs), WGS84))
    pt_to = shapely.get_coordinates(transform_geoms(
        pts.reindex(sub["to_node"]).to_numpy(), CRS(nodes.crs), WGS84))
    for coords, node_xy, end in ((starts, pt_from, "from_node"), (ends, pt_to, "to_node")):
        d = geodesic_distance_m(coords[:, 0], coords[:, 1], node_xy[:, 0], node_xy[:, 1])
        for j in np.flatnonzero(d > snap_tolerance_m).tolist():
            report.warnings.append(Problem(
                "spans", str(sub["span_id"].iat[j]), "geometry",
                f"{end} end lies {d[j]:.1f} m from node {sub[end].iat[j]} "
                f"(snap tolerance {snap_tolerance_m:g} m)"))


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


#: Above this many areas candidates come from an STRtree of the premises, below from a
#: bounding-box test over all remaining premises (cheaper for a few large districts).
_TREE_AREAS = 64


def _mark_covered(pts: npt.NDArray[np.object_], polys: npt.NDArray[np.object_],
                  outside: npt.NDArray[np.bool_]) -> None:
    """Clear ``outside`` for every point covered by some polygon (boundary included).

    One prepared polygon at a time tests only the points in its bounding box
    that no earlier polygon covered: a few areas over a million premises take
    well under a second.
    """
    xy = np.full((len(pts), 2), np.nan)
    xy[outside] = shapely.get_coordinates(pts[outside])
    tree = shapely.STRtree(pts[outside]) if len(polys) > _TREE_AREAS else None
    where = np.flatnonzero(outside)
    for poly in polys:
        x0, y0, x1, y1 = shapely.bounds(poly)
        if tree is not None:
            cand = where[tree.query(poly)]
            cand = cand[outside[cand]]
        else:
            cand = np.flatnonzero(outside & (xy[:, 0] >= x0) & (xy[:, 0] <= x1)
                                  & (xy[:, 1] >= y0) & (xy[:, 1] <= y1))
        if not len(cand):
            continue
        shapely.prepare(poly)
        outside[cand[shapely.covers(poly, pts[cand])]] = False
