"""The strand layers as OGC API - Features collections without geometry: request bodies in,
features out, and the pydantic models that describe both in the OpenAPI document.

A row of a strand layer is a GeoJSON Feature with ``"geometry": null``; its ``id`` is its
feature id: the id field, or ``cable_id:seq`` (``cable_spans``) and ``cable_id:strand``
(``strand_state``), split at the last colon (docs/access-and-audit.md). Bodies are checked against
the contract by the strand validation inside the repository, as for a file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, get_args
from urllib.parse import quote

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model

from netgis.api.geojson import BboxMember, LegacyCrs, Link, LinksMember, properties_model
from netgis.errors import Problem, ValidationError, encodable
from netgis.jsonsafe import json_safe
from netgis.schema import STRAND_KEYS, STRAND_LAYER_NAMES, Layer
from netgis.storage.strands import feature_id, row_keys


def key_fields(layer: Layer) -> tuple[str, ...]:
    """The fields whose values make a row's feature id."""
    return STRAND_KEYS.get(layer.name, (layer.id_field,))


def id_description(layer: Layer) -> str:
    """How the feature id of ``layer`` is made, for the OpenAPI document."""
    key = key_fields(layer)
    if len(key) == 1:
        return f"The {key[0]}."
    return f"{key[0]}:{key[1]} (split at the last colon), e.g. C7:3."


#: A geometry that is always null, spelled for OpenAPI 3.0 (which has no null type).
NullGeometry = Annotated[None, WithJsonSchema({
    "nullable": True, "enum": [None],
    "description": "Always null: strand layers have no geometry."})]


class StrandFeatureIn(BaseModel):
    """A row of a strand layer sent as a GeoJSON Feature: its fields as properties, the
    geometry null (or left out). Any other member is a 422 naming it."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["Feature"]
    id: str | int | None = Field(None, description="The feature id (checked against the "
                                                     "properties when both are given).")
    geometry: NullGeometry = None
    properties: dict[str, Any] | None = None
    bbox: list[float] | None = BboxMember
    links: list[dict[str, Any]] | None = LinksMember


class StrandFeatureCollectionIn(BaseModel):
    """Rows of a strand layer sent as a GeoJSON FeatureCollection."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["FeatureCollection"]
    features: list[StrandFeatureIn]
    bbox: list[float] | None = BboxMember
    links: list[dict[str, Any]] | None = LinksMember
    name: str | None = Field(None, description="A layer name (GDAL writes it); not used.")
    crs: LegacyCrs | None = Field(None, description="GeoJSON 2008 crs; CRS84 only; not used.")
    numberMatched: int | None = None
    numberReturned: int | None = None
    timeStamp: str | None = None


#: The strand layers by name, spelled out for the OpenAPI document and the type checker.
StrandLayerName = Literal["cables", "cable_spans", "splitters", "olt_ports", "connections",
                          "drops", "strand_state"]
if set(get_args(StrandLayerName)) != set(STRAND_LAYER_NAMES):
    raise RuntimeError("netgis.api.strand_features.StrandLayerName differs from "
                       "netgis.schema.STRAND_LAYER_NAMES")


class StrandEditIn(BaseModel):
    """One write of one strand row in a batch (``POST /strand-edits``)."""

    model_config = ConfigDict(extra="forbid")

    layer: StrandLayerName
    op: Literal["create", "replace", "patch", "delete"] = Field(description=(
        "create (properties; the key fields among them or from id), replace (id and every "
        "field), patch (id and the fields to change) or delete (id)."))
    id: str | None = Field(None, description="The row's feature id (the id field, or "
                                             "cable_id:seq / cable_id:strand).")
    properties: dict[str, Any] | None = None
    etag: str | None = Field(None, description=(
        "Write only if the row still has this ETag (as GET gave it, quoted or not); 412 "
        "otherwise. Replace, patch and delete."))


class StrandEditsIn(BaseModel):
    """Writes of strand rows across layers, applied together: one transaction, one data
    version, the strand plant validated once on the result."""

    model_config = ConfigDict(extra="forbid")

    edits: list[StrandEditIn] = Field(min_length=1, max_length=10_000)


class StrandEditOut(BaseModel):
    """What one edit of a batch wrote."""

    layer: str
    op: str
    id: str


class StrandEditsOut(BaseModel):
    """What a batch wrote, and the data version it gave the database (every row written
    has it as its ETag)."""

    data_version: int
    edits: list[StrandEditOut]


class StrandFeaturePatch(BaseModel):
    """A partial row: the properties to change (the geometry, if sent, must be null)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["Feature"] | None = None
    geometry: NullGeometry = None
    properties: dict[str, Any] = Field(default_factory=dict)


_FEATURE: Any = Literal["Feature"]


#: The request bodies of the strand collections, as components of the OpenAPI document.
BODY_SCHEMAS: dict[str, type[BaseModel]] = {
    "StrandFeatureIn": StrandFeatureIn, "StrandFeatureCollectionIn": StrandFeatureCollectionIn,
    "StrandFeaturePatch": StrandFeaturePatch, "StrandEditsIn": StrandEditsIn}


def feature_model(layer: Layer) -> type[BaseModel]:
    """The response model of one row of ``layer`` (a Feature with null geometry)."""
    title = _title(layer)
    props = properties_model(layer, name=f"{title}Properties")
    return create_model(
        f"{title}Feature",
        type=(_FEATURE, ...),
        id=(str, Field(description=id_description(layer))),
        geometry=(NullGeometry, ...),
        properties=(props, ...),
        links=(list[Link], Field(default_factory=list)),
    )


def _title(layer: Layer) -> str:
    return "".join(part.capitalize() for part in layer.name.split("_"))


def rows_to_features(layer: Layer, frame: pd.DataFrame,
                     item_href: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """``(feature id, Feature)`` of each row of a stored frame, in order; ``item_href`` (a
    URL prefix) adds each one's ``self`` link."""
    names = layer.field_names
    ids = [feature_id(layer.name, k) if k is not None else "" for k in row_keys(layer.name,
                                                                                 frame)]
    out: list[tuple[str, dict[str, Any]]] = []
    for fid, row in zip(ids, frame[names].itertuples(index=False, name=None), strict=True):
        feature: dict[str, Any] = {
            "type": "Feature", "id": fid, "geometry": None,
            "properties": {n: json_safe(v) for n, v in zip(names, row, strict=True)}}
        if item_href is not None:
            feature["links"] = [{"href": f"{item_href}/{quote(fid, safe='')}", "rel": "self",
                                 "type": "application/geo+json"}]
        out.append((fid, feature))
    return out


def features_to_rows(layer: Layer, features: Sequence[StrandFeatureIn],
                     path_id: str | None = None) -> pd.DataFrame:
    """The rows of ``features`` as a frame of ``layer``'s fields (as sent; validation types
    them). A property that is not a field is named (422); a Feature ``id`` (or the path's
    id, for PUT) fills the key fields left out and must agree with those given."""
    problems: list[Problem] = []
    rows: list[dict[str, Any]] = []
    known = set(layer.field_names)
    key = key_fields(layer)
    for i, feat in enumerate(features):
        props = dict(feat.properties or {})
        given_id = path_id if path_id is not None else (
            None if feat.id is None else str(feat.id))
        shown = given_id or _shown_id(key, props)
        problems += [Problem(layer.name, shown, str(name), "not a field of this layer")
                     for name in props if name not in known]
        problems += [Problem(layer.name, shown, str(name), f"feature {i}: text is not valid "
                             "Unicode (a lone surrogate such as \\ud800)")
                     for name, value in props.items()
                     if not encodable(str(name))
                     or (isinstance(value, str) and not encodable(value))]
        if given_id is not None:
            parts = _split_id(key, given_id)
            if parts is None:
                problems.append(Problem(layer.name, given_id, key[-1],
                                        f"not a feature id of {layer.name} "
                                        f"({id_description(layer)})"))
            else:
                for name, value in zip(key, parts, strict=True):
                    sent = props.get(name)
                    if sent is not None and str(sent) != value:
                        problems.append(Problem(layer.name, given_id, name,
                                                f"{sent!r} differs from the feature id"))
                    props.setdefault(name, value)
                    if props[name] is None:
                        props[name] = value
        rows.append(props)
    if problems:
        raise ValidationError(problems)
    return pd.DataFrame({n: pd.Series([r.get(n) for r in rows], dtype=object)
                         for n in layer.field_names if any(n in r for r in rows)},
                        index=pd.RangeIndex(len(rows)))


def _shown_id(key: Sequence[str], props: Mapping[str, Any]) -> str | None:
    values = [props.get(k) for k in key]
    return None if any(v is None for v in values) else ":".join(str(v) for v in values)


def _split_id(key: Sequence[str], fid: str) -> tuple[str, ...] | None:
    """The key values a feature id names, as text (None when it cannot be one)."""
    if len(key) == 1:
        return (fid,)
    head, sep, tail = fid.rpartition(":")
    if not sep or not head or not tail.lstrip("-").isdigit():
        return None
    return (head, tail)
