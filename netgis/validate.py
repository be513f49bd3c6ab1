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
>>> from netgis.io import RawLayer
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
import shapely
from pyproj import CRS

from netgis.errors import Problem, ValidationError
from netgis.geodesy import WGS84, geodesic_distance_m, transform_geoms
from netgis.io import Dataset, RawLayer, empty_layer
from netgis.schema import LAYER_NAMES, LAYERS, SNAP_TOLERANCE_M, Field, Layer

_MULTI = {"MultiPoint": "Point", "MultiLineString": "LineString", "MultiPolygon": "Polygon"}
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


def validate_path(path: str, *, snap_tolerance_m: float = SNAP_TOLERANCE_M) -> ValidationReport:
    """Validate the dataset at ``path`` (errors reading it become problems too)."""
    from netgis.io import read_raw

    try:
        raw = read_raw(path)
    except ValidationError as exc:
        return ValidationReport(errors=exc.problems)
    return validate_raw(raw, snap_tolerance_m=snap_tolerance_m)


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
        if frame.crs is not None:
            if target_crs is None:
                target_crs = CRS(frame.crs)
            elif CRS(frame.crs) != target_crs:
                frame = frame.to_crs(target_crs)
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


def _clean_layer(layer: Layer, raw: RawLayer, report: ValidationReport) -> gpd.GeoDataFrame | None:
    """Coerce one layer to the contract; record problems; None when it cannot be used."""
    frame = raw.frame.reset_index(drop=True)
    name = layer.name
    missing = [f.name for f in layer.fields if f.required and f.name not in frame.columns]
    for col in missing:
        report.errors.append(Problem(name, None, col, "required field is missing"))
    if missing:
        return None
    extra = [c for c in frame.columns if c not in layer.field_names and c != "geometry"]
    for col in extra:
        report.warnings.append(Problem(name, None, col, "field is not in the contract; ignored"))
    if raw.frame.crs is None and raw.fmt in ("gpkg", "fgb"):
        report.errors.append(Problem(name, None, "geometry",
                                     f"layer has no CRS ({raw.fmt} needs one)"))

    ids = _as_text(frame[layer.id_field])
    labels = ids.where(ids.notna(), None)
    row_label = np.where(ids.isna(), [f"#{i}" for i in range(len(ids))], ids.astype(object))
    for i in np.flatnonzero(ids.isna().to_numpy()):
        report.errors.append(Problem(name, None, layer.id_field,
                                     f"required value is missing (row {i})"))
    dup = ids[ids.notna() & ids.duplicated(keep="first")].unique()
    for d in dup:
        report.errors.append(Problem(name, str(d), layer.id_field, "duplicate id"))

    out: dict[str, Any] = {layer.id_field: labels}
    for f in layer.fields:
        if f.name == layer.id_field:
            continue
        col = frame[f.name] if f.name in frame.columns else pd.Series([None] * len(frame))
        out[f.name] = _coerce_field(name, f, col, row_label, report)
    if name == "spans":
        _check_fibers(out, row_label, report)
    geoms = _clean_geometry(layer, frame.geometry, row_label, report)
    crs = raw.frame.crs
    return gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(geoms, crs=crs), crs=crs)


def _as_text(col: pd.Series) -> pd.Series:
    """Ids and text as str; integral floats lose their '.0'; empty strings are missing."""
    values = col.to_numpy(dtype=object)
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            out[i] = None
        elif isinstance(v, float | np.floating) and float(v).is_integer():
            out[i] = str(int(v))
        elif isinstance(v, bytes):
            out[i] = v.decode()
        else:
            s = str(v).strip()
            out[i] = s if s else None
    return pd.Series(out, index=col.index, dtype=object)


def _coerce_field(layer: str, f: Field, col: pd.Series, row_label: npt.NDArray[Any],
                  report: ValidationReport) -> pd.Series:
    if f.type == "text":
        text = _as_text(col)
        if f.enum is None:
            return text
        text = text.str.lower()
        bad = text.notna() & ~text.isin(f.enum)
        for i in np.flatnonzero(bad.to_numpy()):
            report.errors.append(Problem(layer, str(row_label[i]), f.name,
                                         f"unknown value {text.iat[i]!r}; expected one of "
                                         + ", ".join(f.enum)))
        return text.where(text.notna(), f.default)
    if f.type == "bool":
        return _coerce_bool(layer, f, col, row_label, report)
    return _coerce_int(layer, f, col, row_label, report)


def _coerce_bool(layer: str, f: Field, col: pd.Series, row_label: npt.NDArray[Any],
                 report: ValidationReport) -> pd.Series:
    values = col.to_numpy(dtype=object)
    out = np.full(len(values), bool(f.default), dtype=bool)
    for i, v in enumerate(values):
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            continue
        if isinstance(v, bool | np.bool_):
            out[i] = bool(v)
            continue
        s = str(int(v) if isinstance(v, float) and float(v).is_integer() else v).strip().lower()
        if s in _TRUE:
            out[i] = True
        elif s in _FALSE:
            out[i] = False
        elif s == "":
            continue
        else:
            report.errors.append(Problem(layer, str(row_label[i]), f.name,
                                         f"not a boolean: {v!r} (use true/false or 1/0)"))
    return pd.Series(out, index=col.index)


def _coerce_int(layer: str, f: Field, col: pd.Series, row_label: npt.NDArray[Any],
                report: ValidationReport) -> pd.Series:
    num = pd.to_numeric(col, errors="coerce")
    raw_missing = col.isna() | (col.astype(str).str.strip() == "")
    not_number = num.isna() & ~raw_missing
    not_integral = num.notna() & (num != np.floor(num.fillna(0)))
    for i in np.flatnonzero((not_number | not_integral).to_numpy()):
        report.errors.append(Problem(layer, str(row_label[i]), f.name,
                                     f"not an integer: {col.iat[i]!r}"))
    ok = num.notna() & ~not_integral
    result = pd.Series(pd.array([pd.NA] * len(col), dtype="Int64"), index=col.index)
    result[ok] = num[ok].astype("int64")
    if f.default is not None:
        result = result.fillna(int(f.default))
    if f.minimum is not None:
        low = result.notna() & (result < f.minimum)
        for i in np.flatnonzero(low.to_numpy(dtype=bool, na_value=False)):
            report.errors.append(Problem(layer, str(row_label[i]), f.name,
                                         f"must be >= {f.minimum}, got {result.iat[i]}"))
    return result


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
    type_names = np.array(["Point", "LineString", "LinearRing", "Polygon", "MultiPoint",
                           "MultiLineString", "MultiPolygon", "GeometryCollection"])
    names = np.where(types >= 0, type_names[np.clip(types, 0, 7)], "")
    single = np.isin(names, list(_MULTI)) & (shapely.get_num_geometries(arr) == 1)
    if single.any():
        arr = arr.copy()
        arr[single] = shapely.get_geometry(arr[single], 0)
        names = names.copy()
        names[single] = [_MULTI[n] for n in names[single]]
    wrong = ~missing & ~np.isin(names, layer.geometry_types)
    for i in np.flatnonzero(wrong):
        report.errors.append(Problem(name, str(row_label[i]), "geometry",
                                     f"wrong geometry type {names[i]}; expected "
                                     + " or ".join(layer.geometry_types)))
    usable = ~missing & ~wrong
    has_z = usable & shapely.has_z(arr)
    if has_z.any():
        report.warnings.append(Problem(name, None, "geometry",
                                       f"Z values dropped from {int(has_z.sum())} geometries"))
        arr[has_z] = shapely.force_2d(arr[has_z])
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
                                         f"names no existing node: {col.iat[i]!r}"))
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
    geoms = spans.geometry.to_numpy()
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    ok &= shapely.get_type_id(geoms) == 1
    ok &= spans["from_node"].isin(pts.index).to_numpy() & spans["to_node"].isin(pts.index).to_numpy()
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
        for j in np.flatnonzero(d > snap_tolerance_m):
            report.warnings.append(Problem(
                "spans", str(sub["span_id"].iat[j]), "geometry",
                f"{end} end lies {d[j]:.1f} m from node {sub[end].iat[j]} "
                f"(snap tolerance {snap_tolerance_m:g} m)"))


def _check_area_cover(premises: gpd.GeoDataFrame, areas: gpd.GeoDataFrame,
                      report: ValidationReport) -> None:
    if premises.crs is None or areas.crs is None:
        return
    good = areas.geometry.notna() & ~areas.geometry.is_empty & areas.geometry.is_valid
    polys = areas.geometry[good]
    if premises.crs != areas.crs:
        polys = polys.to_crs(premises.crs)
    pts = premises.geometry.to_numpy()
    usable = ~(shapely.is_missing(pts) | shapely.is_empty(pts))
    tree = shapely.STRtree(polys.to_numpy())
    hit = np.zeros(len(pts), dtype=bool)
    pi, _ = tree.query(pts[usable], predicate="covered_by")
    hit[np.flatnonzero(usable)[pi]] = True
    outside = usable & ~hit
    for i in np.flatnonzero(outside):
        report.warnings.append(Problem("premises", str(premises["premise_id"].iat[i]), "geometry",
                                       "premise lies outside every area"))
