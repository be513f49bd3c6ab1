"""Mapped import: any GIS layer GDAL reads, mapped into the data contract by a TOML file.

A mapping file names, per target layer (``nodes``, ``spans``, ``premises``,
``areas``), the source layer to read and a rule per target field: a source
field, a template of source fields, or a constant, then optionally a regular
expression that extracts part of the value, a table of code values and a
default. Nothing in a mapping file is ever evaluated as code. Spans without
node ids get them by snapping their ends to nodes within a tolerance in
meters (new nodes where none is near). The result is validated by
:mod:`netgis.validate`; every problem names the source layer, the source
feature and the source field. docs/interop.md documents the format.

Examples
--------
>>> m = parse_mapping('''
... [nodes]
... layer = "poles"
... fields = { node_id = "POLE_NO", kind = { value = "pole" } }
... [spans]
... layer = "cables"
... ''')
>>> m.nodes.layer, m.nodes.rules()["kind"].value
('poles', 'pole')
>>> parse_mapping('[spans]\\nlayer = "x"\\ncolour = "red"')  # doctest: +ELLIPSIS
Traceback (most recent call last):
netgis.errors.ValidationError: 1 problem: mapping field=spans.colour: Extra inputs are not ...
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import pydantic
import pyogrio
import re2
import shapely
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pyproj import CRS
from pyproj.exceptions import CRSError
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from netgis.dataset import Dataset, empty_layer
from netgis.errors import DatasetFormatError, Problem, ValidationError
from netgis.geodesy import WGS84, transform_geoms, working_crs_for
from netgis.io import check_plain_path, gdal_path, read_format, read_frame
from netgis.schema import LAYER_NAMES, LAYERS, NODE_KINDS, SNAP_TOLERANCE_M
from netgis.validate import as_text, validate_frames

#: File suffixes read as GIS sources: given one by one, or found in a folder (or an uploaded
#: zip). Formats whose files can name other files for GDAL to read (GML schemas, MapInfo
#: seamless tables, SQLite databases) are not among them.
SOURCE_SUFFIXES = frozenset({".shp", ".gpkg", ".geojson", ".json", ".kml", ".kmz", ".csv",
                             ".fgb", ".gpx", ".parquet"})
#: Placeholders of a template: ``{FIELD}``; ``{fid}`` is the source's feature id.
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
#: What RE2 cannot run, told by its error message (a backtracking engine would need it).
_RE2_UNSUPPORTED = ((re.compile(r"invalid escape sequence: \\[1-9]"), "a backreference"),
                    (re.compile(r"invalid perl operator: \(\?<?[=!]"), "a lookaround"))
Scalar = str | int | float | bool
NodeKind = Literal["core", "cabinet", "splice", "splitter", "handhole", "pole", "other"]
assert set(NodeKind.__args__) == set(NODE_KINDS)  # type: ignore[attr-defined]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldRule(_Strict):
    """How one target field gets its value (exactly one of field, template, value).

    Then, in this order: the text is trimmed (empty is no value), ``regex``
    keeps the first group of its first match (or the whole match), ``map``
    replaces a code by its value (codes compare trimmed and case-insensitively),
    and ``default`` fills what is still empty, including codes not in ``map``
    (without a default such a code is an error, as is text ``regex`` does not
    match).
    """

    field: str | None = None
    template: str | None = None
    value: Scalar | None = None
    regex: str | None = None
    map: dict[str, Scalar] | None = None
    default: Scalar | None = None

    @field_validator("regex")
    @classmethod
    def _runs_in_linear_time(cls, regex: str | None) -> str | None:
        if regex is not None:
            compile_regex(regex)
        return regex

    @model_validator(mode="after")
    def _one_source(self) -> FieldRule:
        given = [n for n in ("field", "template", "value") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of field, template, value")
        if self.template is not None and not _PLACEHOLDER.search(self.template):
            raise ValueError("a template names at least one {FIELD}")
        return self

    def source_fields(self) -> list[str]:
        """The source fields the rule reads (for error messages)."""
        if self.field is not None:
            return [self.field]
        if self.template is not None:
            return _PLACEHOLDER.findall(self.template)
        return []


def compile_regex(pattern: str) -> Any:
    """Compile a mapping's ``regex`` with RE2, which runs in time linear in the text.

    A backtracking engine (Python's ``re``) can take minutes on one value for a pattern
    like ``(a|aa)+$``, holding the interpreter's lock all along; RE2 cannot, and for that
    it has no backreferences and no lookarounds. A pattern RE2 refuses raises
    ``ValueError`` saying why.

    Examples
    --------
    >>> compile_regex(r"^(\\d+)F$").search("144F").group(1)
    '144'
    >>> compile_regex(r"(a)\\1")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: a backreference is not supported: ...
    """
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        detail = exc.args[0].decode("utf-8", "replace") if exc.args and \
            isinstance(exc.args[0], bytes) else str(exc)
    what = next((name for test, name in _RE2_UNSUPPORTED if test.search(detail)), None)
    if what is not None:
        raise ValueError(f"{what} is not supported: a regex is RE2 syntax, which runs in "
                         f"linear time ({detail})")
    raise ValueError(f"regex is not valid RE2 syntax: {detail}")


def _re2_options() -> Any:
    options = re2.Options()
    options.log_errors = False  # the reason reaches the user as a problem, not on stderr
    return options


_RE2_OPTIONS = _re2_options()


class GeometryRule(_Strict):
    """Geometry from attribute columns: WKT text, or x/y (lon/lat) numbers."""

    wkt: str | None = None
    x: str | None = None
    y: str | None = None

    @model_validator(mode="after")
    def _wkt_or_xy(self) -> GeometryRule:
        if (self.wkt is None) == (self.x is None and self.y is None) or \
                (self.x is None) != (self.y is None):
            raise ValueError("give either wkt, or both x and y")
        return self

    def source_field(self) -> str:
        """The source column(s) the geometry comes from, as named in a problem."""
        return self.wkt if self.wkt is not None else f"{self.x},{self.y}"


class SnapRule(_Strict):
    """Spans without from_node/to_node: their ends snap to the nearest node within
    ``tolerance_m`` meters, else to a new node of ``new_node_kind`` (ends closer than the
    tolerance to each other share one) named ``new_node_prefix`` + a number."""

    tolerance_m: float = Field(SNAP_TOLERANCE_M, gt=0)
    new_node_kind: NodeKind = "splice"
    new_node_prefix: str = Field("snap-", min_length=1)


class LayerRule(_Strict):
    """One target layer: its source layer, CRS, geometry and field rules."""

    layer: str = Field(min_length=1)
    crs: str | None = None
    geometry: GeometryRule | None = None
    fields: dict[str, FieldRule] = Field(default_factory=dict)
    snap: SnapRule | None = None

    @field_validator("fields", mode="before")
    @classmethod
    def _shorthand(cls, fields: Any) -> Any:
        """``target = "SOURCE_FIELD"`` is ``target = { field = "SOURCE_FIELD" }`` (spelled
        out before validation, so that a mistake is named by its key alone)."""
        if isinstance(fields, dict):
            return {k: {"field": v} if isinstance(v, str) else v for k, v in fields.items()}
        return fields

    def rules(self) -> dict[str, FieldRule]:
        """The field rules, per target field."""
        return dict(self.fields)


class Mapping(_Strict):
    """A mapping file: one :class:`LayerRule` per target layer (spans required).

    :func:`parse_mapping` checks the structure and :meth:`problems`.
    """

    nodes: LayerRule | None = None
    spans: LayerRule
    premises: LayerRule | None = None
    areas: LayerRule | None = None

    def layers(self) -> dict[str, LayerRule]:
        """The rules of the layers the file maps, by target layer, in data-model order."""
        return {n: r for n in LAYER_NAMES if (r := getattr(self, n)) is not None}

    def problems(self) -> list[Problem]:
        """What the file's structure allows but the data model does not: target fields
        that do not exist, snapping outside spans, CRSs pyproj does not know."""
        out: list[Problem] = []
        for name, rule in self.layers().items():
            known = LAYERS[name].field_names
            out += [Problem("mapping", None, f"{name}.fields.{f}", "no such field in the data "
                            f"model's {name} (fields: {', '.join(known)})")
                    for f in rule.fields if f not in known]
            if rule.snap is not None and name != "spans":
                out.append(Problem("mapping", None, f"{name}.snap", "snap is for spans only"))
            if rule.crs is not None:
                try:
                    CRS(rule.crs)
                except CRSError as exc:
                    out.append(Problem("mapping", None, f"{name}.crs",
                                       f"{rule.crs!r} is not a CRS: {exc}"))
        return out


def parse_mapping(text: str) -> Mapping:
    """Parse and check a mapping file's text; a :class:`ValidationError` names each mistake.

    Problems have layer ``mapping`` and the dotted key as field.

    Examples
    --------
    >>> parse_mapping('[spans]\\nlayer = "c"\\nfields = { length = "L" }')  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    netgis.errors.ValidationError: 1 problem: mapping field=spans.fields.length: no such field ...
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError([Problem("mapping", None, None, f"not TOML: {exc}")]) from None
    try:
        mapping = Mapping.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationError([
            Problem("mapping", None, ".".join(str(p) for p in e["loc"]) or None,
                    e["msg"].removeprefix("Value error, "))
            for e in exc.errors()]) from None
    problems = mapping.problems()
    if problems:
        raise ValidationError(problems)
    return mapping


def read_mapping(path: str | os.PathLike[str]) -> Mapping:
    """:func:`parse_mapping` of a file.

    Examples
    --------
    >>> read_mapping("data/mappings/csv-wkt-lonlat.toml").spans.snap.new_node_kind
    'handhole'
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError([Problem("mapping", None, None,
                                       f"cannot read {Path(path).name}: {exc}")]) from None
    return parse_mapping(text)


# ---- importing ----------------------------------------------------------------------------

def import_mapped(sources: Sequence[str | os.PathLike[str]],
                  mapping: Mapping | str | os.PathLike[str]) -> Dataset:
    """Read the mapped layers of ``sources`` into a validated dataset.

    Parameters
    ----------
    sources
        Files GDAL reads (or GeoParquet), or folders of them; a layer is found by
        the name GDAL gives it (a shapefile's or CSV's is its file name without suffix).
    mapping
        A :class:`Mapping`, or the path of a mapping file.

    Raises
    ------
    ValidationError
        Every problem, each naming the source layer, feature and field.

    Examples
    --------
    >>> ds = import_mapped(["data/mappings/sources/utility"],
    ...                    "data/mappings/utility-shapefile.toml")
    >>> sorted(set(ds.nodes["kind"]))[:2], int(ds.spans["fiber_count"].max())
    (['cabinet', 'core'], 288)
    """
    rules = mapping if isinstance(mapping, Mapping) else read_mapping(mapping)
    if rules.problems():
        raise ValidationError(rules.problems())
    found = _source_layers(sources)
    mapped = {name: _map_layer(name, rule, found) for name, rule in rules.layers().items()}
    problems = [p for m in mapped.values() for p in m.problems]
    if problems:
        raise ValidationError(problems)
    crs = CRS(next(m.frame.crs for m in mapped.values()))
    frames = {name: m.frame.to_crs(crs) for name, m in mapped.items()}
    frames.setdefault("nodes", empty_layer("nodes", crs))
    frames.setdefault("premises", empty_layer("premises", crs))
    snap = rules.spans.snap
    snapped: dict[str, str] = {}
    if snap is not None:
        frames["nodes"], frames["spans"], snapped = _snap(frames["nodes"], frames["spans"], snap)
    report = validate_frames(frames)
    if report.errors or report.dataset is None:
        raise ValidationError([_in_source_terms(p, mapped, rules, snapped)
                               for p in report.errors],
                              [_in_source_terms(p, mapped, rules, snapped)
                               for p in report.warnings])
    report.dataset.warnings = [_in_source_terms(p, mapped, rules, snapped)
                               for p in report.warnings]
    return report.dataset


def _source_layers(sources: Sequence[str | os.PathLike[str]]) -> dict[str, tuple[Path, str]]:
    """Layer name -> (file, layer in the file) over every source file."""
    files: list[Path] = []
    for s in sources:
        p = check_plain_path(s, "source")
        if p.is_dir():
            files += sorted(f for f in p.rglob("*")
                            if f.is_file() and f.suffix.lower() in SOURCE_SUFFIXES)
        elif not p.exists():
            raise DatasetFormatError([Problem("source", None, None, f"{p.name} does not exist")])
        elif p.suffix.lower() not in SOURCE_SUFFIXES:
            raise DatasetFormatError([Problem("source", None, None, f"cannot read {p.name}: "
                                              "not a source format (" +
                                              ", ".join(sorted(SOURCE_SUFFIXES)) + ")")])
        else:
            files.append(p)
    found: dict[str, tuple[Path, str]] = {}
    for f in files:
        source = gdal_path(f, read_format(f), subject="source")
        if f.suffix.lower() == ".parquet":
            names = [f.stem]
        else:
            try:
                names = [str(row[0]) for row in pyogrio.list_layers(source)]
            except Exception as exc:  # pyogrio raises several unrelated classes
                raise DatasetFormatError([Problem("source", None, None,
                                                  f"cannot read {f.name}: {exc}")]) from exc
        for name in names:
            if name in found:
                raise DatasetFormatError([Problem(name, None, None, "two sources have this "
                                                  f"layer: {found[name][0].name}, {f.name}")])
            found[name] = (f, name)
    return found


@dataclass
class _Mapped:
    """A target layer built from its source: the frame, its source feature ids, problems."""

    frame: gpd.GeoDataFrame
    source_ids: dict[str, str]
    row_ids: list[str]
    problems: list[Problem]


def _map_layer(target: str, rule: LayerRule, found: dict[str, tuple[Path, str]]) -> _Mapped:
    if rule.layer not in found:
        known = ", ".join(sorted(found)) or "none"
        raise ValidationError([Problem(rule.layer, None, None, f"{target}: no such source layer "
                                       f"(layers: {known})")])
    path, layer = found[rule.layer]
    src = read_frame(path, layer=None if path.suffix.lower() == ".parquet" else layer,
                     subject=rule.layer, shown=path.name, fid_as_index=True)
    fids = pd.Series(src.index.astype(str), index=src.index)
    id_field = LAYERS[target].id_field
    rules = rule.rules()
    id_rule = rules.get(id_field)
    row_ids = (_text(src[id_rule.field]).fillna("fid " + fids).tolist()
               if id_rule is not None and id_rule.field in src.columns
               else ("fid " + fids).tolist())
    problems: list[Problem] = []
    out: dict[str, pd.Series] = {}
    for name, field_rule in rules.items():
        values, bad = _apply(field_rule, src, fids, rule.layer, row_ids, f"{target}.{name}")
        out[name] = values
        problems += bad
    if id_rule is None:
        out[id_field] = f"{rule.layer}-" + fids
    geometry, bad = _geometry(rule, src, row_ids)
    problems += bad
    frame = gpd.GeoDataFrame(pd.DataFrame(out, index=src.index), geometry=geometry,
                             crs=geometry.crs)
    if frame.crs is None and not problems:
        problems.append(Problem(rule.layer, None, "geometry", f"{target}: the source has no "
                                "CRS: give crs in the mapping"))
    ids = frame[id_field].astype(object).where(frame[id_field].notna(), None)
    source_ids = {str(c): r for c, r in zip(ids, row_ids, strict=True) if c is not None}
    return _Mapped(frame.reset_index(drop=True), source_ids, row_ids, problems)


def _text(col: pd.Series) -> pd.Series:
    """Values as trimmed text the way the validator reads them (whole numbers without
    ``.0``, vectorized per dtype); empty -> NA."""
    return as_text(col).astype("string")


def _apply(rule: FieldRule, src: gpd.GeoDataFrame, fids: pd.Series, layer: str,
           row_ids: list[str], target: str) -> tuple[pd.Series, list[Problem]]:
    """One field rule over every feature of the source, vectorized."""
    if rule.value is not None:
        return pd.Series([rule.value] * len(src), index=src.index, dtype=object), []
    missing = [f for f in rule.source_fields() if f != "fid" and f not in src.columns]
    if missing:
        fields = ", ".join(str(c) for c in src.columns if c != "geometry")
        return (pd.Series([None] * len(src), index=src.index, dtype=object),
                [Problem(layer, None, f, f"{target}: no such source field (fields: {fields})")
                 for f in missing])
    if rule.field is not None:
        text = _text(src[rule.field])
    else:
        assert rule.template is not None
        parts = _PLACEHOLDER.split(rule.template)
        text = pd.Series([""] * len(src), index=src.index, dtype="string")
        for i, part in enumerate(parts):
            # odd parts are placeholders: a field (or fid); a missing value leaves no text
            if i % 2:
                value = fids.astype("string") if part == "fid" else _text(src[part])
                text = text + value.fillna("")
            else:
                text = text + part
        text = text.where(text.str.strip() != "", pd.NA)
    shown = "+".join(rule.source_fields())
    problems: list[Problem] = []
    values: pd.Series = text.astype(object).where(text.notna(), None)
    if rule.regex is not None:
        pattern = compile_regex(rule.regex)
        got = pd.Series([_extract(pattern, v) for v in text.astype(object)], index=text.index,
                        dtype=object)
        miss = text.notna() & got.isna()
        if rule.default is None:
            problems += [Problem(layer, row_ids[i], shown, f"{target}: {text.iat[int(i)]!r} "
                                 f"does not match {rule.regex!r}")
                         for i in np.flatnonzero(miss)]
        values = got.astype(object).where(got.notna(), None)
    if rule.map is not None:
        table = {str(k).strip().casefold(): v for k, v in rule.map.items()}
        keys = pd.Series(values, dtype="string").str.casefold()
        mapped = keys.astype(object).map(table)
        unmapped = keys.notna() & mapped.isna()
        if rule.default is None:
            problems += [Problem(layer, row_ids[i], shown, f"{target}: code {values.iat[int(i)]!r} "
                                 f"is not in the map ({', '.join(map(str, rule.map))})")
                         for i in np.flatnonzero(unmapped)]
        values = mapped.astype(object).where(mapped.notna(), None)
    if rule.default is not None:
        values = values.where(values.notna(), rule.default)
    return values.set_axis(src.index), problems


def _extract(pattern: Any, value: object) -> str | None:
    """The first group of the pattern's first match when it has a group, else the whole
    match; None for no value, no match, or a group that took no part in the match."""
    if not isinstance(value, str):
        return None
    found = pattern.search(value)
    if found is None:
        return None
    group: str | None = found.group(1) if pattern.groups else found.group(0)
    return group


def _geometry(rule: LayerRule, src: gpd.GeoDataFrame, row_ids: list[str]
              ) -> tuple[gpd.GeoSeries, list[Problem]]:
    crs = CRS(rule.crs) if rule.crs is not None else src.crs
    g = rule.geometry
    if g is None:
        return gpd.GeoSeries(src.geometry.to_numpy(), index=src.index, crs=crs), []
    missing = [c for c in ((g.wkt,) if g.wkt else (g.x, g.y)) if c not in src.columns]
    if missing:
        nothing = np.asarray([None] * len(src), dtype=object)
        return (gpd.GeoSeries(nothing, index=src.index, crs=crs),
                [Problem(rule.layer, None, c, "no such source field for the geometry")
                 for c in missing if c is not None])
    if g.wkt is not None:
        text = _text(src[g.wkt])
        geoms = shapely.from_wkt(text.astype(object).where(text.notna(), None).to_numpy(),
                                 on_invalid="ignore")
        bad = text.notna().to_numpy() & shapely.is_missing(geoms)
        reason = "not WKT"
    else:
        assert g.x is not None and g.y is not None
        x = pd.to_numeric(src[g.x], errors="coerce").to_numpy(dtype=float)
        y = pd.to_numeric(src[g.y], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(x) & np.isfinite(y)
        geoms = np.asarray([None] * len(src), dtype=object)
        geoms[ok] = shapely.points(x[ok], y[ok])
        bad = ~ok & (src[g.x].notna() | src[g.y].notna()).to_numpy()
        reason = "not a number"
    problems = [Problem(rule.layer, row_ids[i], g.source_field(), f"geometry: {reason}")
                for i in np.flatnonzero(bad)]
    return gpd.GeoSeries(geoms, index=src.index, crs=crs), problems


def _snap(nodes: gpd.GeoDataFrame, spans: gpd.GeoDataFrame, rule: SnapRule
          ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, dict[str, str]]:
    """Give spans without from_node/to_node the node their end lies on (within the
    tolerance, in meters of the data's UTM zone), or new nodes.

    Returns the nodes (new ones appended), the spans and, per new node, the span whose end
    made it (for messages).
    """
    spans = spans.copy()
    for end in ("from_node", "to_node"):
        if end not in spans.columns:
            spans[end] = None
    lines = spans.geometry.to_numpy()
    usable = shapely.get_type_id(lines) == 1
    todo: list[tuple[str, npt.NDArray[np.intp]]] = []
    for end in ("from_node", "to_node"):
        rows = np.flatnonzero(spans[end].isna().to_numpy() & usable)
        todo.append((end, rows))
    ends = np.concatenate([shapely.get_point(lines[rows], 0 if end == "from_node" else -1)
                           for end, rows in todo]) if todo else np.array([], dtype=object)
    if not len(ends):
        return nodes, spans, {}
    crs = CRS(spans.crs)
    lonlat = shapely.get_coordinates(transform_geoms(ends, crs, WGS84))
    work = working_crs_for(lonlat[:, 0], lonlat[:, 1])
    end_pts = transform_geoms(ends, crs, work)
    node_pts = transform_geoms(nodes.geometry.to_numpy(), CRS(nodes.crs), work)
    assigned = np.asarray([None] * len(ends), dtype=object)
    if len(nodes):
        tree = shapely.STRtree(node_pts)
        (i_end, i_node), _ = tree.query_nearest(end_pts, max_distance=rule.tolerance_m,
                                                return_distance=True)
        assigned[i_end] = nodes["node_id"].to_numpy()[i_node]
    free = np.flatnonzero(pd.isna(assigned))
    new_nodes = empty_layer("nodes", crs)
    made_by: dict[str, str] = {}
    if free.size:
        # ends near each other share one new node: components of the "within tolerance" graph
        pairs = shapely.STRtree(end_pts[free]).query(end_pts[free], predicate="dwithin",
                                                    distance=rule.tolerance_m)
        graph = coo_matrix((np.ones(pairs.shape[1]), (pairs[0], pairs[1])),
                           shape=(free.size, free.size))
        _, label = connected_components(graph, directed=False)
        first = pd.Series(np.arange(free.size)).groupby(label).first()
        taken = set(nodes["node_id"].astype(str))
        names = [f"{rule.new_node_prefix}{k + 1}" for k in range(len(first))]
        clash = sorted(taken.intersection(names))
        if clash:
            raise ValidationError([Problem("nodes", clash[0], "node_id", "a snapped node would "
                                           "take this id: change snap.new_node_prefix")])
        assigned[free] = np.asarray(names, dtype=object)[label]
        new_nodes = gpd.GeoDataFrame(
            {"node_id": names, "kind": rule.new_node_kind},
            geometry=gpd.GeoSeries(ends[free[first.to_numpy()]], crs=crs), crs=crs)
        span_rows = np.concatenate([rows for _, rows in todo])
        made_by = {name: str(spans["span_id"].iat[int(span_rows[free[i]])])
                   for name, i in zip(names, first.to_numpy(), strict=True)}
    start = 0
    for end, rows in todo:
        spans.loc[spans.index[rows], end] = assigned[start:start + rows.size]
        start += rows.size
    if len(new_nodes):
        both = pd.concat([nodes, new_nodes.to_crs(CRS(nodes.crs))], ignore_index=True)
        nodes = gpd.GeoDataFrame(both, geometry="geometry", crs=nodes.crs)
    return nodes, spans, made_by


def _in_source_terms(p: Problem, mapped: dict[str, _Mapped], rules: Mapping,
                     snapped: dict[str, str]) -> Problem:
    """A validator's problem named by source layer, source feature and source field."""
    if p.layer not in mapped and not (p.layer == "nodes" and p.id in snapped):
        return p
    if p.layer == "nodes" and p.id in snapped:
        span_rule = rules.spans
        source = mapped["spans"].source_ids.get(snapped[p.id], snapped[p.id])
        return Problem(span_rule.layer, source, "geometry",
                       f"nodes.{p.field or 'node'} of snapped node {p.id}: {p.reason}")
    rule = rules.layers()[p.layer]
    m = mapped[p.layer]
    source_id = p.id
    if p.id is not None and p.id.startswith("#") and p.id[1:].isdigit():
        row = int(p.id[1:])
        source_id = m.row_ids[row] if row < len(m.row_ids) else p.id
    elif p.id is not None:
        source_id = m.source_ids.get(p.id, p.id)
    field = p.field
    field_rule = rule.rules().get(p.field or "")
    if p.field == "geometry" and rule.geometry is not None:
        field = rule.geometry.source_field()
    elif field_rule is not None and field_rule.source_fields():
        field = "+".join(field_rule.source_fields())
    return Problem(rule.layer, source_id, field, f"{p.layer}.{p.field or '*'}: {p.reason}")
