"""GeoJSON in and out: GeoDataFrames to features, request bodies to GeoDataFrames, and the
pydantic models that document both in the OpenAPI document.

Responses are built as plain dicts (fast for 10 k features) and only described by
the models; request bodies are checked against the data contract by
:mod:`netgis.validate` inside the repository, so that an HTTP write and a file load
report the same problems.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from netgis.errors import Problem, ValidationError, encodable
from netgis.jsonsafe import json_safe
from netgis.schema import Field as SchemaField
from netgis.schema import Layer


class Link(BaseModel):
    """A link of an OGC API resource."""

    href: str
    rel: str
    type: str | None = None
    title: str | None = None


#: Arrays in GeoJSON coordinates: a MultiPolygon is polygons of rings of positions.
MAX_COORDINATE_DEPTH = 4
#: GeoJSON's own optional members (RFC 7946), accepted wherever the standard allows them.
BboxMember = Field(None, description="The extent (RFC 7946 section 5); not used.")
LinksMember = Field(None, description="Links, as the API serves them; not used.")


class Geometry(BaseModel):
    """A GeoJSON geometry in WGS84 longitude/latitude."""

    # an unknown member is a 422 naming it (docs/spec.md §3.5): it may be a misspelt one
    model_config = ConfigDict(extra="forbid")

    type: Literal["Point", "LineString", "Polygon", "MultiPoint", "MultiLineString",
                  "MultiPolygon"]
    coordinates: list[Any]
    bbox: list[float] | None = BboxMember

    @field_validator("coordinates")
    @classmethod
    def _geojson_depth(cls, value: list[Any]) -> list[Any]:
        # GeoJSON nests positions at most 4 deep (MultiPolygon); deeper input would only
        # burden every reader after this one (the checks are iterative, not recursive)
        stack: list[tuple[list[Any], int]] = [(value, 1)]
        while stack:
            items, depth = stack.pop()
            if depth > MAX_COORDINATE_DEPTH:
                raise ValueError(f"nested deeper than GeoJSON coordinates are "
                                 f"({MAX_COORDINATE_DEPTH} levels)")
            stack.extend((item, depth + 1) for item in items if isinstance(item, list))
        return value


def _python_type(f: SchemaField) -> Any:
    if f.enum:
        return Literal.__getitem__(f.enum)
    return {"text": str, "int": int, "bool": bool, "float": float}[f.type]


def properties_model(layer: Layer, extra: Mapping[str, Any] | None = None,
                     name: str | None = None) -> type[BaseModel]:
    """A pydantic model of a layer's properties, from :mod:`netgis.schema` (plus ``extra``)."""
    fields: dict[str, Any] = {}
    for f in layer.fields:
        typ = _python_type(f)
        if f.required or f.default is not None:
            fields[f.name] = (typ, Field(description=f.description or None))
        else:
            fields[f.name] = (typ | None, Field(None, description=f.description or None))
    for key, typ in (extra or {}).items():
        fields[key] = (typ, ...)
    model_name = name or f"{layer.name.capitalize()}Properties"
    return create_model(model_name, __config__=ConfigDict(extra="allow"), **fields)


_FEATURE: Any = Literal["Feature"]
_FEATURE_COLLECTION: Any = Literal["FeatureCollection"]


def feature_model(layer: Layer, props: type[BaseModel], name: str) -> type[BaseModel]:
    """A GeoJSON Feature model whose properties follow ``props``."""
    return create_model(
        name,
        type=(_FEATURE, ...),
        id=(str, Field(description=f"The {layer.id_field}.")),
        geometry=(Geometry, ...),
        properties=(props, ...),
        links=(list[Link], Field(default_factory=list)),
    )


def collection_model(feature: type[BaseModel], name: str, paged: bool = True,
                     counted: bool = True) -> type[BaseModel]:
    """A GeoJSON FeatureCollection model of ``feature`` items (OGC API paging members).

    ``counted=False``: ``numberMatched`` is optional (keyset pages leave it out).
    """
    fields: dict[str, Any] = {
        "type": (_FEATURE_COLLECTION, ...),
        "features": (list[feature], ...),  # type: ignore[valid-type]
        "links": (list[Link], Field(default_factory=list)),
    }
    if paged:
        fields["numberMatched"] = (int, ...) if counted else (int | None, Field(
            default=None, description="How many features match in all: on the first page "
                                      "and on offset pages, not on cursor pages."))
        fields["numberReturned"] = (int, ...)
        fields["timeStamp"] = (str, ...)
    return create_model(name, **fields)


#: Names of WGS84 longitude/latitude in the legacy GeoJSON ``crs`` member (GDAL writes it).
WGS84_NAMES = ("urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:OGC::CRS84",
               "http://www.opengis.net/def/crs/OGC/1.3/CRS84", "urn:ogc:def:crs:EPSG::4326",
               "EPSG:4326")


class LegacyCrs(BaseModel):
    """The ``crs`` member of GeoJSON 2008 files: only WGS84 longitude/latitude is accepted."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["name"]
    properties: dict[str, str]

    @field_validator("properties")
    @classmethod
    def _wgs84(cls, value: dict[str, str]) -> dict[str, str]:
        if value.get("name") not in WGS84_NAMES:
            raise ValueError("coordinates must be WGS84 longitude/latitude (CRS84)")
        return value


class FeatureIn(BaseModel):
    """A GeoJSON Feature sent to the API (WGS84); properties follow the layer's contract.

    The members a Feature served by this API carries (``links``) may be sent back;
    any other member is a 422 naming it.
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["Feature"]
    id: str | int | None = None
    geometry: Geometry
    properties: dict[str, Any] | None = None
    bbox: list[float] | None = BboxMember
    links: list[dict[str, Any]] | None = LinksMember


class FeatureCollectionIn(BaseModel):
    """A GeoJSON FeatureCollection sent to the API (WGS84).

    Besides ``features``, the members GDAL writes (``name``, ``crs`` naming CRS84)
    and those of a page this API serves are accepted and not used.
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["FeatureCollection"]
    features: list[FeatureIn]
    bbox: list[float] | None = BboxMember
    links: list[dict[str, Any]] | None = LinksMember
    name: str | None = Field(None, description="A layer name (GDAL writes it); not used.")
    crs: LegacyCrs | None = Field(None, description="GeoJSON 2008 crs; CRS84 only.")
    numberMatched: int | None = None
    numberReturned: int | None = None
    timeStamp: str | None = None


class FeaturePatch(BaseModel):
    """A partial Feature: the properties to change and, optionally, a new geometry."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["Feature"] | None = None
    geometry: Geometry | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


def frame_to_features(
    frame: gpd.GeoDataFrame, layer: Layer, columns: Sequence[str],
    item_href: str | None = None,
) -> list[dict[str, Any]]:
    """GeoJSON features of ``frame`` (already in WGS84), properties limited to ``columns``.

    ``item_href`` (a URL prefix) adds a ``self`` link per feature.

    Examples
    --------
    >>> from shapely import Point
    >>> from netgis.schema import LAYERS
    >>> f = gpd.GeoDataFrame({"node_id": ["a"], "kind": ["core"]}, geometry=[Point(1, 2)])
    >>> frame_to_features(f, LAYERS["nodes"], ["node_id", "kind"])[0]["geometry"]
    {'type': 'Point', 'coordinates': [1.0, 2.0]}
    """
    n = len(frame)
    cols = [c for c in columns if c in frame.columns]
    values = {c: [json_safe(v) for v in frame[c].astype(object).tolist()] for c in cols}
    geoms = shapely.to_geojson(np.asarray(frame.geometry.values, dtype=object))
    ids = [str(v) for v in frame[layer.id_field].tolist()]
    features = []
    for i in range(n):
        feature: dict[str, Any] = {
            "type": "Feature",
            "id": ids[i],
            "geometry": json.loads(geoms[i]) if geoms[i] is not None else None,
            "properties": {c: values[c][i] for c in cols},
        }
        if item_href is not None:
            feature["links"] = [{"href": f"{item_href}/{quote(ids[i], safe='')}", "rel": "self",
                                 "type": "application/geo+json"}]
        features.append(feature)
    return features


def row_feature(frame: gpd.GeoDataFrame, at: int, layer: Layer, columns: Sequence[str]
                ) -> dict[str, Any]:
    """:func:`frame_to_features` of row ``at`` of ``frame`` (any CRS; its geometry is
    taken to WGS84), without making a one-row frame: the same feature, ~20 times faster
    on a frame of a million rows (``/analysis/premises/{id}``, between a live
    analysis's steps, takes its row of the current state this way).

    Examples
    --------
    >>> from shapely import Point
    >>> from netgis.schema import LAYERS
    >>> f = gpd.GeoDataFrame({"node_id": ["a", "b"], "kind": ["core", None]},
    ...                      geometry=[Point(1, 2), Point(3, 4)], crs=4326)
    >>> row_feature(f, 1, LAYERS["nodes"], ["node_id", "kind"]) == \\
    ...     frame_to_features(f.iloc[[1]], LAYERS["nodes"], ["node_id", "kind"])[0]
    True
    """
    from netgis.geodesy import WGS84, transform_geoms

    cols = [c for c in columns if c in frame.columns]
    props = {c: json_safe(frame[c].array[at]) for c in cols}
    geom = frame.geometry.array[at]
    if geom is not None and frame.crs is not None:
        geom = transform_geoms([geom], frame.crs, WGS84)[0]
    text = shapely.to_geojson(geom) if geom is not None else None
    return {"type": "Feature", "id": str(frame[layer.id_field].array[at]),
            "geometry": json.loads(text) if text is not None else None, "properties": props}


def features_json(rows: Sequence[tuple[str, str | None, str]], item_href: str) -> str:
    """The text of a JSON array of GeoJSON features from ``(id, geometry, properties)`` rows
    whose geometry and properties are JSON text already (as
    :meth:`netgis.storage.Repository.query_items_json` reads them), each with its ``self``
    link under ``item_href``: what :func:`frame_to_features` gives, serialised, without
    building a dict per feature (a 10,000-feature page is most of a bulk copy's time).

    Examples
    --------
    >>> rows = [("a/1", '{"type":"Point","coordinates":[1,2]}', '{"node_id":"a/1"}')]
    >>> json.loads(features_json(rows, "/n"))[0]["links"]
    [{'href': '/n/a%2F1', 'rel': 'self', 'type': 'application/geo+json'}]
    """
    dumps = json.dumps
    parts = [
        f'{{"type":"Feature","id":{dumps(str(fid))},"geometry":{geom or "null"},'
        f'"properties":{props},"links":[{{"href":'
        f'{dumps(item_href + "/" + quote(str(fid), safe=""))},'
        f'"rel":"self","type":"application/geo+json"}}]}}'
        for fid, geom, props in rows
    ]
    return "[" + ",".join(parts) + "]"


def _unicode_problems(layer: Layer, index: int, fid: Any,
                      props: Mapping[str, Any]) -> list[Problem]:
    """A problem per property holding text that is not valid Unicode.

    JSON may escape lone surrogates (``"\\ud800"``); Python's parser takes them,
    but no column store, database or response encoder does: found here, they
    are a 422 naming the field instead of a crash.
    """
    out: list[Problem] = []
    for key, value in props.items():
        if not encodable(str(key)) or (isinstance(value, str) and not encodable(value)):
            out.append(Problem(layer.name, None if fid is None else str(fid), str(key),
                               f"feature {index}: text is not valid Unicode (a lone surrogate "
                               "such as \\ud800)"))
    return out


def features_to_frame(layer: Layer, features: Sequence[FeatureIn],
                      path_id: str | None = None) -> gpd.GeoDataFrame:
    """A WGS84 GeoDataFrame of ``features`` for ``layer`` (not yet validated by the contract).

    The feature id is taken from the id field of the properties, else from the
    Feature's ``id``; ``path_id`` (PUT) must agree with both where they are given.
    """
    problems: list[Problem] = []
    rows: list[dict[str, Any]] = []
    geoms: list[Any] = []
    known = set(layer.field_names)
    for i, feat in enumerate(features):
        props = dict(feat.properties or {})
        fid = props.get(layer.id_field)
        # as PATCH does: a property the layer does not have is named, not dropped
        # (docs/spec.md §3.5)
        problems += [Problem(layer.name, None if fid is None else str(fid), name,
                             "not a field of this layer") for name in props if name not in known]
        if fid is None and feat.id is not None:
            fid = str(feat.id)
        if path_id is not None:
            if fid is not None and str(fid) != path_id:
                problems.append(Problem(layer.name, str(fid), layer.id_field,
                                        f"does not match the id in the path ({path_id!r})"))
            fid = path_id
        if fid is not None:
            props[layer.id_field] = fid
        problems += _unicode_problems(layer, i, fid, props)
        try:
            geom = shapely.from_geojson(json.dumps(feat.geometry.model_dump(exclude_none=True)))
        except shapely.errors.GEOSException as exc:
            problems.append(Problem(layer.name, None if fid is None else str(fid), "geometry",
                                    f"feature {i}: not a valid GeoJSON geometry ({exc})"))
            geom = None
        rows.append(props)
        geoms.append(geom)
    if problems:
        raise ValidationError(problems)
    frame = pd.DataFrame(rows, columns=sorted({k for r in rows for k in r}) or None)
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=4326), crs=4326)
