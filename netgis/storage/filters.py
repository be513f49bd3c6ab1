"""CQL2 filters (OGC API - Features Part 3) as SQLAlchemy conditions on a layer's table,
or as row masks of a frame in memory (:func:`frame_mask`, the analysis result collections).

The text and JSON encodings are parsed by pygeofilter; its syntax tree is
translated here, node by node, into SQLAlchemy expressions with bound
parameters (never SQL text), checked against the layer's fields so that an
unknown property, a value of the wrong type or an operator netgis does not
offer is a :class:`ParameterError` naming the ``filter`` parameter.

What is offered (the conformance classes the API declares, see
:data:`CQL2_CONFORMANCE`): comparisons (``= <> < <= > >=``), ``AND``/``OR``/
``NOT``, ``LIKE`` (``%`` any text, ``_`` one character, ``\\`` escapes;
case-sensitive on both databases), ``BETWEEN``, ``IN``, ``IS NULL``,
``CASEI()`` (lower case), and the spatial functions ``S_INTERSECTS``,
``S_DISJOINT``, ``S_CONTAINS``, ``S_WITHIN``, ``S_TOUCHES``, ``S_CROSSES``,
``S_OVERLAPS``, ``S_EQUALS`` between the ``geometry`` property and a WGS84
geometry or ``BBOX`` literal. Property-to-property comparisons are allowed.

Examples
--------
>>> from sqlalchemy.dialects import sqlite
>>> from netgis.storage.models import LAYER_TABLES
>>> node = parse_filter("kind = 'business' AND units >= 2", "cql2-text")
>>> cond = filter_condition(node, "premises", LAYER_TABLES["premises"], sqlite.dialect())
>>> print(cond.compile(dialect=sqlite.dialect()))
premises.kind = ? AND premises.units >= ?
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
import shapely.geometry
from lark.exceptions import LarkError
from pygeofilter import ast, values
from pygeofilter.backends.evaluator import Evaluator, handle
from pygeofilter.parsers.cql2_json import parse as parse_cql2_json
from pygeofilter.parsers.cql2_text import parse as parse_cql2_text
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Boolean, ColumnElement, Dialect, Table, and_, false, not_, or_, true
from sqlalchemy import func as sql_func

from netgis.errors import ParameterError, Problem
from netgis.schema import LAYERS, STRAND_LAYERS, Layer
from netgis.storage import dialects
from netgis.storage.models import INT_MAX, INT_MIN

FilterLang = Literal["cql2-text", "cql2-json"]
FILTER_LANGS: tuple[FilterLang, ...] = ("cql2-text", "cql2-json")
#: The geometry property's name in filters (as in the queryables).
GEOMETRY = "geometry"

#: What the translation implements, as OGC conformance class URIs (OGC API - Features
#: Part 3 and CQL2 1.0). CASEI is accepted but its class is not declared: SpatiaLite's
#: lower() folds ASCII letters only.
CQL2_CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/property-property",
]

_SPATIAL = {
    ast.SpatialComparisonOp.INTERSECTS: "ST_Intersects",
    ast.SpatialComparisonOp.DISJOINT: "ST_Disjoint",
    ast.SpatialComparisonOp.CONTAINS: "ST_Contains",
    ast.SpatialComparisonOp.WITHIN: "ST_Within",
    ast.SpatialComparisonOp.TOUCHES: "ST_Touches",
    ast.SpatialComparisonOp.CROSSES: "ST_Crosses",
    ast.SpatialComparisonOp.OVERLAPS: "ST_Overlaps",
    ast.SpatialComparisonOp.EQUALS: "ST_Equals",
}
#: The geometry arguments swap when the property is on the right: A contains B = B within A.
_SWAPPED = {"ST_Contains": "ST_Within", "ST_Within": "ST_Contains"}
_NUMERIC = ("int", "float")
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq, "<>": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}
_F = TypeVar("_F", bound=Callable[..., Any])


def _handles(*classes: Any, subclasses: bool = False) -> Callable[[_F], _F]:
    """pygeofilter's ``handle`` decorator, typed: it only marks the method."""
    return cast(Callable[[_F], _F], handle(*classes, subclasses=subclasses))


def _bad(reason: str) -> ParameterError:
    return ParameterError([Problem("query", None, "filter", reason)], f"invalid filter: {reason}")


@dataclass(frozen=True)
class ParsedFilter:
    """A CQL2 filter parsed (not yet tied to a layer): the syntax tree and its source."""

    node: Any
    lang: FilterLang
    source: str


def _bbox_as_polygon(node: Any) -> Any:
    """CQL2 JSON with each ``{"bbox": [...]}`` literal as the equivalent GeoJSON polygon.

    pygeofilter 0.4 reads a JSON bbox into an envelope with its numbers in the
    wrong slots (minx, miny, maxx, maxy taken as x1, x2, y1, y2).
    """
    if isinstance(node, list):
        return [_bbox_as_polygon(v) for v in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"bbox"} and isinstance(node["bbox"], list):
        box = node["bbox"]
        if len(box) == 6:
            box = [box[0], box[1], box[3], box[4]]
        if len(box) != 4 or not all(isinstance(v, int | float) and not isinstance(v, bool)
                                    for v in box):
            raise _bad("a bbox is 4 (or 6) numbers")
        return shapely.geometry.mapping(shapely.box(*box))
    return {k: _bbox_as_polygon(v) for k, v in node.items()}


def parse_filter(text: str, lang: str | None = None) -> ParsedFilter:
    """Parse a CQL2 filter in ``lang`` (``cql2-text``, the default, or ``cql2-json``).

    Raises
    ------
    ParameterError
        Naming ``filter`` (a syntax error, with where it is) or ``filter-lang``.

    Examples
    --------
    >>> parse_filter('{"op": "=", "args": [{"property": "kind"}, "core"]}', "cql2-json").lang
    'cql2-json'
    >>> parse_filter("kind = ", "cql2-text")
    Traceback (most recent call last):
    ...
    netgis.errors.ParameterError: invalid filter: not valid CQL2 text: unexpected end of the \
filter at column 6
    """
    chosen = lang or "cql2-text"
    if chosen not in FILTER_LANGS:
        raise ParameterError(
            [Problem("query", None, "filter-lang", f"must be one of {', '.join(FILTER_LANGS)}")],
            f"invalid filter-lang {chosen!r}: use {' or '.join(FILTER_LANGS)}")
    if not text.strip():
        raise _bad("the filter is empty")
    if chosen == "cql2-text":
        try:
            node = parse_cql2_text(text)
        except LarkError as exc:
            raise _bad(f"not valid CQL2 text: {_lark_reason(exc)}") from None
        return ParsedFilter(node, "cql2-text", text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _bad(f"not valid JSON: {exc}") from None
    try:
        node = parse_cql2_json(_bbox_as_polygon(data))
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise _bad(f"not valid CQL2 JSON: {exc}") from None
    return ParsedFilter(node, "cql2-json", text)


def _lark_reason(exc: LarkError) -> str:
    column = getattr(exc, "column", None)
    token = getattr(exc, "token", None)
    if token is not None and getattr(token, "type", None) == "$END":
        return f"unexpected end of the filter at column {column}"
    if token is not None:
        return f"unexpected {str(token)!r} at column {column}"
    char = getattr(exc, "char", None)
    if char is not None:
        return f"unexpected {char!r} at column {column}"
    return str(exc).splitlines()[0]


@dataclass(frozen=True)
class _Operand:
    """A translated operand: a SQL expression and what it holds, or a Python literal."""

    kind: str  # text, int, float, bool, geometry, null
    expr: Any = None
    literal: Any = None
    is_literal: bool = False
    name: str | None = None  # the property, when one


def filter_condition(parsed: ParsedFilter, layer: str, table: Table,
                     dialect: Dialect) -> ColumnElement[bool]:
    """The WHERE condition of ``parsed`` on ``table`` (the stored ``layer``).

    Raises
    ------
    ParameterError
        Naming ``filter``: an unknown property (the queryables are listed), a
        value of the wrong type, an operator or function netgis does not offer.
    """
    result = _Translator(layer, table, dialect).evaluate(parsed.node)
    if isinstance(result, _Operand):
        raise _bad("the filter is a value, not a condition")
    return result  # type: ignore[no-any-return]


class _Translator(Evaluator):  # type: ignore[misc]
    """Evaluates a pygeofilter syntax tree bottom-up into SQLAlchemy expressions."""

    def __init__(self, layer: str, table: Table, dialect: Dialect) -> None:
        # a strand layer (no geometry) filters on its fields alone
        self.layer = LAYERS[layer] if layer in LAYERS else STRAND_LAYERS[layer]
        self.table = table
        self.dialect = dialect

    # ------------------------------------------------------------ logic

    @_handles(ast.Not)
    def _not(self, node: Any, sub: Any) -> Any:
        return not_(self._condition(sub))

    @_handles(ast.And, ast.Or)
    def _combination(self, node: Any, lhs: Any, rhs: Any) -> Any:
        combine = and_ if isinstance(node, ast.And) else or_
        return combine(self._condition(lhs), self._condition(rhs))

    @_handles(ast.Include)
    def _include(self, node: Any) -> Any:
        return false() if node.not_ else true()

    # ------------------------------------------------------- predicates

    @_handles(ast.Comparison, subclasses=True)
    def _comparison(self, node: Any, lhs: Any, rhs: Any) -> Any:
        left, right = self._pair(lhs, rhs, node.op.value)
        return _COMPARE[node.op.value](left, right)

    @_handles(ast.Between)
    def _between(self, node: Any, lhs: Any, low: Any, high: Any) -> Any:
        subject = self._operand(lhs)
        if subject.kind not in _NUMERIC:
            raise _bad(f"BETWEEN needs a number property; {self._what(subject)} is not one")
        lo, hi = (self._value_for(subject, self._operand(v), "BETWEEN") for v in (low, high))
        cond = subject.expr.between(lo, hi)
        return not_(cond) if node.not_ else cond

    @_handles(ast.Like)
    def _like(self, node: Any, lhs: Any) -> Any:
        subject = self._operand(lhs)
        pattern = self._operand(self.evaluate(node.pattern, False))
        if subject.kind != "text" or subject.is_literal:
            raise _bad(f"LIKE needs a text property; {self._what(subject)} is not one")
        if not (pattern.is_literal and pattern.kind == "text"):
            raise _bad("the pattern of LIKE must be a text literal")
        cond = dialects.like(self.dialect, subject.expr, pattern.literal)
        return not_(cond) if node.not_ else cond

    @_handles(ast.In)
    def _in(self, node: Any, lhs: Any, *options: Any) -> Any:
        subject = self._operand(lhs)
        if subject.is_literal:
            raise _bad("IN needs a property on its left")
        wanted = [self._value_for(subject, self._operand(o), "IN") for o in options]
        cond = subject.expr.in_(wanted)
        return not_(cond) if node.not_ else cond

    @_handles(ast.IsNull)
    def _is_null(self, node: Any, lhs: Any) -> Any:
        subject = self._operand(lhs)
        if subject.is_literal:
            raise _bad("IS NULL needs a property")
        return subject.expr.is_not(None) if node.not_ else subject.expr.is_(None)

    @_handles(ast.SpatialComparisonPredicate, subclasses=True)
    def _spatial(self, node: Any, lhs: Any, rhs: Any) -> Any:
        name = _SPATIAL[node.op]
        left, right = self._operand(lhs), self._operand(rhs)
        if left.kind != "geometry" or right.kind != "geometry":
            raise _bad(f"{node.op.value.upper()} compares geometries: use the {GEOMETRY} "
                       "property and a geometry or BBOX literal")
        if left.is_literal and not right.is_literal:
            left, right, name = right, left, _SWAPPED.get(name, name)
        fn = getattr(sql_func, name)
        # SpatiaLite answers 1/0 (-1 on error); PostGIS a boolean
        if self.dialect.name == "sqlite":
            return fn(left.expr, right.expr) == 1
        return fn(left.expr, right.expr, type_=Boolean)

    @_handles(ast.BBox)
    def _bbox_predicate(self, node: Any, lhs: Any) -> Any:
        box = self._geometry(shapely.box(node.minx, node.miny, node.maxx, node.maxy))
        return self._spatial(ast.GeometryIntersects(node.lhs, None), lhs, box)

    # ----------------------------------------------------------- values

    @_handles(ast.Attribute)
    def _attribute(self, node: Any) -> _Operand:
        name = str(node.name)
        if name == GEOMETRY and GEOMETRY in self.table.c:
            return _Operand("geometry", self.table.c.geometry, name=name)
        if name not in self.layer.field_names:
            raise ParameterError(
                [Problem("query", None, "filter", f"unknown property {name!r}")],
                f"invalid filter: {self.layer.name} has no property {name!r} (queryables: "
                f"{', '.join([*self.layer.field_names, *self._geometry_names()])})")
        return _Operand(self.layer.field(name).type, self.table.c[name], name=name)

    @_handles(*values.LITERALS)
    def _literal(self, node: Any) -> _Operand:
        if isinstance(node, bool):
            return _Operand("bool", literal=node, is_literal=True)
        if isinstance(node, int):
            if not INT_MIN <= node <= INT_MAX:
                # no stored integer is that large (and no database would take it as one)
                raise _bad(f"the integer {node} is out of range ({INT_MIN} to {INT_MAX})")
            return _Operand("int", literal=node, is_literal=True)
        if isinstance(node, float):
            return _Operand("float", literal=node, is_literal=True)
        if isinstance(node, str):
            return _Operand("text", literal=node, is_literal=True)
        raise _bad(f"{type(node).__name__} values are not offered (no property holds one)")

    @_handles(values.Geometry, values.Envelope)
    def _geometry_literal(self, node: Any) -> _Operand:
        try:
            geom = shapely.geometry.shape(node.__geo_interface__)
        except (ValueError, TypeError, KeyError, AttributeError, shapely.errors.ShapelyError) \
                as exc:
            raise _bad(f"not a valid geometry: {exc}") from None
        return self._geometry(geom)

    @_handles(ast.Function)
    def _function(self, node: Any, *arguments: Any) -> _Operand:
        name = str(node.name).lower()
        args = [self._operand(a) for a in arguments]
        if name == "lower" and len(args) == 1 and args[0].kind == "text":
            arg = args[0]
            if arg.is_literal:
                return _Operand("text", literal=str(arg.literal).lower(), is_literal=True)
            return _Operand("text", sql_func.lower(arg.expr), name=arg.name)
        if name == "bbox" and len(args) in (4, 6) and all(
                a.is_literal and a.kind in _NUMERIC for a in args):
            numbers = [float(a.literal) for a in args]
            if len(numbers) == 6:
                numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
            minx, miny, maxx, maxy = numbers
            return self._geometry(shapely.box(minx, miny, maxx, maxy))
        shown = "CASEI" if name == "lower" else node.name
        raise _bad(f"function {shown}() with these arguments is not offered")

    def adopt(self, node: Any, *sub_args: Any) -> Any:
        if isinstance(node, values.Interval | ast.TemporalPredicate):
            raise _bad("temporal filters are not offered (no property is a date or time)")
        if isinstance(node, ast.Arithmetic):
            raise _bad("arithmetic is not offered")
        if isinstance(node, ast.ArrayPredicate):
            raise _bad("array functions are not offered")
        if isinstance(node, ast.SpatialDistancePredicate):
            raise _bad("distance functions are not part of CQL2")
        raise _bad(f"{type(node).__name__} is not offered")

    # ---------------------------------------------------------- helpers

    def _geometry_names(self) -> list[str]:
        return [GEOMETRY] if GEOMETRY in self.table.c else []

    def _geometry(self, geom: BaseGeometry) -> _Operand:
        if geom.is_empty or not geom.is_valid:
            raise _bad("the geometry literal is empty or not valid")
        minx, miny, maxx, maxy = geom.bounds
        if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
            raise _bad("geometry literals are WGS84 longitude/latitude (CRS84)")
        return _Operand("geometry", dialects.geometry_literal(self.dialect, shapely.to_wkb(geom)),
                        is_literal=True)

    def _operand(self, value: Any) -> _Operand:
        if isinstance(value, _Operand):
            return value
        if value is None:
            return _Operand("null", literal=None, is_literal=True)
        raise _bad("a condition stands where a value is expected")

    @staticmethod
    def _condition(value: Any) -> Any:
        if isinstance(value, _Operand):
            raise _bad("a value stands where a condition is expected")
        return value

    @staticmethod
    def _what(operand: _Operand) -> str:
        if operand.name is not None:
            return f"{operand.name} ({operand.kind})"
        return repr(operand.literal) if operand.is_literal else operand.kind

    def _value_for(self, subject: _Operand, value: _Operand, op: str) -> Any:
        """``value`` as it can be compared with ``subject``, or a 400 naming the mismatch."""
        if not value.is_literal:
            if value.kind != subject.kind and not (value.kind in _NUMERIC
                                                   and subject.kind in _NUMERIC):
                raise _bad(f"{op} compares {self._what(subject)} with {self._what(value)}")
            return value.expr
        fits = (value.kind == subject.kind
                or (value.kind in _NUMERIC and subject.kind in _NUMERIC))
        if not fits:
            hint = " (quote text: 'value')" if subject.kind == "text" else ""
            raise _bad(f"{op}: {self._what(subject)} cannot be compared with "
                       f"{value.literal!r}{hint}")
        return value.literal

    def _pair(self, lhs: Any, rhs: Any, op: str) -> tuple[Any, Any]:
        left, right = self._operand(lhs), self._operand(rhs)
        if left.kind == "geometry" or right.kind == "geometry":
            raise _bad(f"{op} does not compare geometries: use S_EQUALS or S_INTERSECTS")
        if left.is_literal and right.is_literal:
            raise _bad(f"{op} compares two literals; name a property")
        if left.is_literal:
            return self._value_for(right, left, op), right.expr
        return left.expr, self._value_for(left, right, op)


# ------------------------------------------------------------------ in-memory frames

#: The shapely predicate of each CQL2 spatial function (the property on the left).
_SHAPELY = {
    "ST_Intersects": shapely.intersects, "ST_Disjoint": shapely.disjoint,
    "ST_Contains": shapely.contains, "ST_Within": shapely.within,
    "ST_Touches": shapely.touches, "ST_Crosses": shapely.crosses,
    "ST_Overlaps": shapely.overlaps, "ST_Equals": shapely.equals,
}


def frame_mask(parsed: ParsedFilter, layer: Layer, frame: pd.DataFrame,
               geometry: Any = None) -> npt.NDArray[np.bool_]:
    """Which rows of ``frame`` match ``parsed``: the same CQL2 as :func:`filter_condition`,
    with the same checks, on columns in memory (the API's analysis result collections).

    ``frame`` holds ``layer``'s fields as pandas nullable columns (``boolean``, ``Int64``,
    ``Float64``, ``string``), so that nulls behave as in SQL: a comparison with a null is
    unknown, NOT of unknown is unknown, and a row matches only where the filter is true.
    ``geometry`` is the rows' WGS84 geometries (shapely), or None for a layer without.
    ``LIKE`` is case-sensitive and ``CASEI`` folds all of Unicode.

    Raises
    ------
    ParameterError
        Naming ``filter``, exactly as :func:`filter_condition` would.

    Examples
    --------
    >>> import pandas as pd
    >>> from netgis.schema import Field, Layer
    >>> layer = Layer("results", "id", (Field("id", "text"), Field("loss_db", "float")), ())
    >>> rows = pd.DataFrame({"id": ["a", "b", "c"], "loss_db": [3.5, None, 20.0]}).astype(
    ...     {"id": "string", "loss_db": "Float64"})
    >>> frame_mask(parse_filter("NOT loss_db > 10"), layer, rows).tolist()
    [True, False, False]
    """
    result = _FrameTranslator(layer, frame, geometry).evaluate(parsed.node)
    if isinstance(result, _Operand):
        raise _bad("the filter is a value, not a condition")
    return np.asarray(pd.array(result, dtype="boolean").fillna(False), dtype=bool)


def _like_regex(pattern: str) -> str:
    """A LIKE pattern (``%``, ``_``, ``\\`` escapes) as an anchored regular expression."""
    out: list[str] = []
    chars = iter(pattern)
    for c in chars:
        if c == "\\":
            out.append(re.escape(next(chars, "\\")))
        elif c == "%":
            out.append(".*")
        elif c == "_":
            out.append(".")
        else:
            out.append(re.escape(c))
    return "".join(out)


class _FrameTranslator(_Translator):
    """:class:`_Translator`'s checks, with pandas columns for SQL columns: each condition is
    a nullable boolean array (Kleene logic, as SQL's). Comparisons are the base class's
    (Python's operators work on pandas columns as on SQL ones); the handlers here are those
    whose SQL has no pandas operator, or whose nulls differ (pandas' ``isin`` says false
    where SQL's IN says unknown)."""

    def __init__(self, layer: Layer, frame: pd.DataFrame, geometry: Any) -> None:
        self.layer = layer
        self.frame = frame
        self.geometry = geometry

    def _truth(self, value: bool) -> Any:
        return pd.array(np.full(len(self.frame), value), dtype="boolean")

    @_handles(ast.Not)
    def _not(self, node: Any, sub: Any) -> Any:
        return ~self._condition(sub)

    @_handles(ast.And, ast.Or)
    def _combination(self, node: Any, lhs: Any, rhs: Any) -> Any:
        left, right = self._condition(lhs), self._condition(rhs)
        return left & right if isinstance(node, ast.And) else left | right

    @_handles(ast.Include)
    def _include(self, node: Any) -> Any:
        return self._truth(not node.not_)

    @_handles(ast.Between)
    def _between(self, node: Any, lhs: Any, low: Any, high: Any) -> Any:
        subject = self._operand(lhs)
        if subject.kind not in _NUMERIC:
            raise _bad(f"BETWEEN needs a number property; {self._what(subject)} is not one")
        lo, hi = (self._value_for(subject, self._operand(v), "BETWEEN") for v in (low, high))
        cond = (subject.expr >= lo) & (subject.expr <= hi)
        return ~cond if node.not_ else cond

    @_handles(ast.In)
    def _in(self, node: Any, lhs: Any, *options: Any) -> Any:
        subject = self._operand(lhs)
        if subject.is_literal:
            raise _bad("IN needs a property on its left")
        wanted = [self._value_for(subject, self._operand(o), "IN") for o in options]
        if any(not np.isscalar(w) for w in wanted):
            raise _bad("IN takes literal values")
        cond = pd.array(subject.expr.isin(wanted), dtype="boolean")
        cond[np.asarray(subject.expr.isna())] = pd.NA
        return ~cond if node.not_ else cond

    @_handles(ast.Like)
    def _like(self, node: Any, lhs: Any) -> Any:
        subject = self._operand(lhs)
        pattern = self._operand(self.evaluate(node.pattern, False))
        if subject.kind != "text" or subject.is_literal:
            raise _bad(f"LIKE needs a text property; {self._what(subject)} is not one")
        if not (pattern.is_literal and pattern.kind == "text"):
            raise _bad("the pattern of LIKE must be a text literal")
        cond = subject.expr.str.fullmatch(_like_regex(pattern.literal), flags=re.DOTALL)
        return ~cond if node.not_ else cond

    @_handles(ast.IsNull)
    def _is_null(self, node: Any, lhs: Any) -> Any:
        subject = self._operand(lhs)
        if subject.is_literal:
            raise _bad("IS NULL needs a property")
        missing = pd.array(np.asarray(subject.expr.isna()), dtype="boolean")
        return ~missing if node.not_ else missing

    @_handles(ast.SpatialComparisonPredicate, subclasses=True)
    def _spatial(self, node: Any, lhs: Any, rhs: Any) -> Any:
        name = _SPATIAL[node.op]
        left, right = self._operand(lhs), self._operand(rhs)
        if left.kind != "geometry" or right.kind != "geometry":
            raise _bad(f"{node.op.value.upper()} compares geometries: use the {GEOMETRY} "
                       "property and a geometry or BBOX literal")
        if left.is_literal and not right.is_literal:
            left, right, name = right, left, _SWAPPED.get(name, name)
        return pd.array(np.asarray(_SHAPELY[name](left.expr, right.expr), dtype=bool),
                        dtype="boolean")

    @_handles(ast.Attribute)
    def _attribute(self, node: Any) -> _Operand:
        name = str(node.name)
        if name == GEOMETRY and self.geometry is not None:
            return _Operand("geometry", np.asarray(self.geometry, dtype=object), name=name)
        if name not in self.layer.field_names:
            raise ParameterError(
                [Problem("query", None, "filter", f"unknown property {name!r}")],
                f"invalid filter: {self.layer.name} has no property {name!r} (queryables: "
                f"{', '.join([*self.layer.field_names, *self._geometry_names()])})")
        return _Operand(self.layer.field(name).type, self.frame[name], name=name)

    @_handles(ast.Function)
    def _function(self, node: Any, *arguments: Any) -> _Operand:
        args = [self._operand(a) for a in arguments]
        if str(node.name).lower() == "lower" and len(args) == 1 and args[0].kind == "text" \
                and not args[0].is_literal:
            return _Operand("text", args[0].expr.str.lower(), name=args[0].name)
        return super()._function(node, *arguments)

    def _geometry_names(self) -> list[str]:
        return [GEOMETRY] if self.geometry is not None else []

    def _geometry(self, geom: BaseGeometry) -> _Operand:
        if geom.is_empty or not geom.is_valid:
            raise _bad("the geometry literal is empty or not valid")
        minx, miny, maxx, maxy = geom.bounds
        if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
            raise _bad("geometry literals are WGS84 longitude/latitude (CRS84)")
        shapely.prepare(geom)
        return _Operand("geometry", geom, is_literal=True)
