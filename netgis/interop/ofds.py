"""The Open Fibre Data Standard (OFDS 0.4) in and out, as docs/spec.md §3.8 says.

In: :func:`read_ofds` reads the JSON publication format (a network package
``{"networks": [...]}`` or one network object) and the GeoJSON publication
format (a nodes and a spans FeatureCollection, in any order: each feature is
told apart by ``properties.featureType``, else by its geometry type), maps
the fields into the data contract and validates the result with
:mod:`netgis.validate`. Every problem names the OFDS id; with
``skip_invalid`` the offending features are left out and listed instead.

Out: :func:`ofds_geojson` / :func:`write_ofds` write the two GeoJSON files of
the publication format in WGS84 (OFDS coordinates are CRS84), which the OFDS
reference validator (libcoveofds) accepts; importing them gives back the
same nodes and spans.

Examples
--------
>>> import tempfile
>>> from netgis.io import read_dataset
>>> ds = read_dataset("tests/examples/ring_spur/dataset.gpkg")
>>> out = write_ofds(ds, Path(tempfile.mkdtemp()) / "ofds")
>>> back = read_ofds(sorted(out.iterdir()), cores=["C"]).dataset
>>> sorted(back.spans["span_id"]) == sorted(ds.spans["span_id"])
True
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from netgis.dataset import Dataset, empty_layer
from netgis.errors import DatasetFormatError, Problem, ValidationError
from netgis.geodesy import WGS84, transform_geoms
from netgis.io import atomic_dir
from netgis.schema import CORE, IN_SERVICE
from netgis.validate import NO_CORE_WARNING, validate_frames

#: The schema every OFDS 0.4 network links to first (``links[0]``, rel ``describedby``).
OFDS_SCHEMA_URL = "https://standard.ofds.info/en/0__4__0/network-schema.json"
#: The one CRS of OFDS coordinates.
OFDS_CRS = {"name": "urn:ogc:def:crs:OGC::CRS84",
            "uri": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}
#: OFDS nodeStatus / spanStatus code -> netgis status (docs/spec.md §3.8).
STATUS_FROM_OFDS: dict[str, str] = {
    "operational": "in_service",
    "proposed": "planned",
    "planned": "planned",
    "underConstruction": "planned",
    "inactive": "planned",
    "decommissioned": "retired",
}
#: netgis status -> the OFDS code written on export (imported back to the same status).
STATUS_TO_OFDS: dict[str, str] = {"in_service": "operational", "planned": "planned",
                                  "retired": "decommissioned"}
#: netgis placement -> OFDS ``deployment``; other placements have no OFDS code and are omitted.
DEPLOYMENT_TO_OFDS: dict[str, list[str]] = {"underground": ["belowGround"],
                                            "buried": ["belowGround"],
                                            "aerial": ["aboveGround"]}
_PLACEMENT_FROM_OFDS: dict[tuple[str, ...], str] = {("belowGround",): "underground",
                                                    ("aboveGround",): "aerial"}
_NODE, _SPAN = "nodes", "spans"


@dataclass
class OfdsImport:
    """What :func:`read_ofds` made: the dataset, and the features left out (``skip_invalid``)."""

    dataset: Dataset
    skipped: list[Problem] = field(default_factory=list)


@dataclass
class _Record:
    """One OFDS node or span as read, before mapping."""

    layer: str
    id: str | None
    props: dict[str, Any]
    geometry: Any
    where: str


# ---- reading ----------------------------------------------------------------------------

def read_ofds(sources: Sequence[str | os.PathLike[str]], *, cores: Iterable[str] = (),
              skip_invalid: bool = False) -> OfdsImport:
    """Read OFDS files into a validated :class:`~netgis.dataset.Dataset` (WGS84).

    Parameters
    ----------
    sources
        A JSON network package or network, or the GeoJSON nodes and spans files
        (in any order), or a folder of such files (``netgis export ofds`` writes
        one); several files add up to one network, which needs nodes and spans.
    cores
        Node ids that become ``core`` nodes (OFDS has no core; without one nothing
        is lit, which is a warning).
    skip_invalid
        Leave out features that break the contract (listed in
        :attr:`OfdsImport.skipped`) instead of raising.

    Raises
    ------
    ValidationError
        Listing every problem, each naming the OFDS id (unless ``skip_invalid``).
    DatasetFormatError
        A file that is not JSON or not OFDS.

    Examples
    --------
    >>> read_ofds(["tests/interop/data/ofds/self_loop.json"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    netgis.errors.ValidationError: 1 problem: spans id=S2 field=to_node: span starts and ends ...
    """
    docs = [(f.name, _load_json(f)) for f in _files(sources)]
    return ofds_to_dataset(docs, cores=cores, skip_invalid=skip_invalid)


def _files(sources: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The files to read: each source, or the ``.geojson``/``.json`` files of a folder (the
    folder ``netgis export ofds`` writes, or one holding a JSON package)."""
    files: list[Path] = []
    for source in sources:
        p = Path(source)
        if not p.is_dir():
            files.append(p)
            continue
        found = sorted(f for f in p.iterdir()
                       if f.is_file() and f.suffix.lower() in (".geojson", ".json"))
        if not found:
            raise DatasetFormatError([Problem("ofds", None, None, f"{p.name} is a folder with "
                                              "no .geojson or .json file in it")])
        files += found
    return files


def ofds_to_dataset(docs: Sequence[tuple[str, Any]], *, cores: Iterable[str] = (),
                    skip_invalid: bool = False) -> OfdsImport:
    """:func:`read_ofds` on parsed JSON documents, each given with the name errors show.

    Examples
    --------
    >>> network = {"id": "n", "links": [], "nodes": [
    ...     {"id": "A", "location": {"type": "Point", "coordinates": [8.7, 50.1]}},
    ...     {"id": "B", "location": {"type": "Point", "coordinates": [8.701, 50.1]}}],
    ...     "spans": [{"id": "S1", "start": "A", "end": "B", "status": "planned"}]}
    >>> ds = ofds_to_dataset([("inline", network)], cores=["A"]).dataset
    >>> ds.spans[["span_id", "from_node", "to_node", "status"]].values.tolist()
    [['S1', 'A', 'B', 'planned']]
    """
    records: list[_Record] = []
    for shown, data in docs:
        records += _records_of(shown, data)
    _check_both_halves(records, [shown for shown, _ in docs])
    problems = _check_ids(records)
    nodes = [r for r in records if r.layer == _NODE]
    spans = [r for r in records if r.layer == _SPAN]
    node_frame, node_problems = _node_frame(nodes)
    span_frame, span_problems, warnings = _span_frame(spans, node_frame)
    problems += node_problems + span_problems
    core_ids = [c for c in cores if c]
    unknown = sorted(set(core_ids) - {r.id for r in nodes})
    if unknown:
        raise ValidationError([Problem(_NODE, c, "kind", "--cores names no node of the network")
                               for c in unknown])
    node_frame["kind"] = np.where(node_frame["node_id"].isin(core_ids), CORE, "other")
    if not core_ids:
        warnings.append(Problem(_NODE, None, "kind", "OFDS has no core and no --cores was "
                                "given: nothing is lit"))
    warnings += _status_warnings(node_frame, _NODE) + _status_warnings(span_frame, _SPAN)
    node_frame["status"] = node_frame["status"].map(_status)
    span_frame["status"] = span_frame["status"].map(_status)
    return _validated(node_frame, span_frame, problems, warnings, skip_invalid)


def _check_both_halves(records: list[_Record], shown: list[str]) -> None:
    """A network without nodes or without spans is half of one: most likely the other file
    of the GeoJSON publication format was not given."""
    problems = [Problem(layer, None, None, f"no {layer} in {', '.join(shown)}: give the "
                        f"{layer} too ({layer}.geojson of the GeoJSON publication format, "
                        "or the folder holding both files)")
                for layer in (_NODE, _SPAN) if not any(r.layer == layer for r in records)]
    if problems:
        raise ValidationError(problems)


def _load_json(path: Path) -> Any:
    try:
        with path.open("rb") as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        raise DatasetFormatError([Problem("ofds", None, None,
                                          f"cannot read {path.name}: {exc}")]) from exc
    except RecursionError:
        # arrays or objects nested thousands deep: no OFDS document is, and the JSON
        # reader gives up on them by exhausting the interpreter's recursion limit
        raise DatasetFormatError([Problem("ofds", None, None, f"cannot read {path.name}: "
                                          "it is nested too deep to be OFDS")]) from None


def _records_of(shown: str, data: Any) -> list[_Record]:
    """The nodes and spans of one parsed file, whichever OFDS form it has."""
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        return _geojson_records(shown, data.get("features"))
    if isinstance(data, dict) and isinstance(data.get("networks"), list):
        return [r for i, net in enumerate(data["networks"])
                for r in _network_records(f"{shown} networks[{i}]", net)]
    if isinstance(data, dict) and ({"nodes", "spans", "links"} & data.keys()):
        return _network_records(shown, data)
    raise DatasetFormatError([Problem("ofds", None, None, f"{shown} is neither an OFDS network "
                                      "package, a network nor a GeoJSON FeatureCollection")])


def _network_records(shown: str, network: Any) -> list[_Record]:
    if not isinstance(network, dict):
        raise DatasetFormatError([Problem("ofds", None, None, f"{shown} is not an object")])
    out: list[_Record] = []
    for layer, geometry_key in ((_NODE, "location"), (_SPAN, "route")):
        items = network.get(layer) or []
        if not isinstance(items, list):
            raise DatasetFormatError([Problem(layer, None, None,
                                              f"{shown}: {layer} is not an array")])
        for i, item in enumerate(items):
            props = item if isinstance(item, dict) else {}
            out.append(_Record(layer, _text_id(props.get("id")), props,
                               props.get(geometry_key), f"{shown} {layer}[{i}]"))
    return out


def _geojson_records(shown: str, features: Any) -> list[_Record]:
    if not isinstance(features, list):
        raise DatasetFormatError([Problem("ofds", None, None,
                                          f"{shown}: features is not an array")])
    kinds: list[str | None] = []
    for f in features:
        props = _props(f)
        kind = str(props.get("featureType", "")).lower()
        geometry = f.get("geometry") if isinstance(f, dict) else None
        gtype = geometry.get("type") if isinstance(geometry, dict) else None
        if kind in ("node", "span"):
            kinds.append(_NODE if kind == "node" else _SPAN)
        elif gtype in ("Point", "MultiPoint"):
            kinds.append(_NODE)
        elif gtype in ("LineString", "MultiLineString"):
            kinds.append(_SPAN)
        else:
            kinds.append(None)
    # a feature without featureType or geometry is what the rest of its file is
    usual = Counter(k for k in kinds if k is not None).most_common(1)
    out: list[_Record] = []
    for i, (f, told) in enumerate(zip(features, kinds, strict=True)):
        props = _props(f)
        layer = told or (usual[0][0] if usual else None)
        fid = _text_id(props.get("id"))
        if layer is None:
            raise DatasetFormatError([Problem("ofds", fid, "featureType",
                                              f"{shown} features[{i}]: cannot tell a node from "
                                              "a span (no featureType, no geometry)")])
        out.append(_Record(layer, fid, props, f.get("geometry") if isinstance(f, dict) else None,
                           f"{shown} features[{i}]"))
    return out


def _props(feature: Any) -> dict[str, Any]:
    props = feature.get("properties") if isinstance(feature, dict) else None
    return props if isinstance(props, dict) else {}


def _text_id(value: Any) -> str | None:
    """Ids are text; numbers become text (docs/spec.md §1.6); anything else is no id."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | str):
        text = str(value).strip()
        return text or None
    return None


def _end_id(value: Any) -> str | None:
    """A span end: a node id (JSON format) or a node object with an id (GeoJSON format)."""
    return _text_id(value.get("id")) if isinstance(value, dict) else _text_id(value)


def _check_ids(records: list[_Record]) -> list[Problem]:
    problems = [Problem(r.layer, None, "id", f"{r.where} has no id")
                for r in records if r.id is None]
    counts = Counter((r.layer, r.id) for r in records if r.id is not None)
    problems += [Problem(layer, fid, "id", f"duplicate id: {n} {layer} have it")
                 for (layer, fid), n in sorted(counts.items(), key=str) if n > 1]
    return problems


def _geometries(records: list[_Record]) -> tuple[np.ndarray[Any, Any], list[int]]:
    """Shapely geometries of the records (None where absent) and the rows whose geometry
    is present but no GeoJSON geometry."""
    text = np.array([json.dumps(r.geometry) if isinstance(r.geometry, dict) else None
                     for r in records], dtype=object)
    geoms = np.asarray(shapely.from_geojson(text, on_invalid="ignore"), dtype=object).reshape(-1)
    given = np.array([r.geometry is not None for r in records], dtype=bool)
    bad = np.flatnonzero(given & shapely.is_missing(geoms)).tolist()
    return geoms, bad


def _node_frame(nodes: list[_Record]) -> tuple[gpd.GeoDataFrame, list[Problem]]:
    geoms, bad = _geometries(nodes)
    problems = [Problem(_NODE, nodes[i].id, "location", "not a GeoJSON Point") for i in bad]
    problems += [Problem(_NODE, r.id, "location", "node has no location")
                 for r, g in zip(nodes, geoms, strict=True)
                 if r.geometry is None and g is None]
    frame = gpd.GeoDataFrame({
        "node_id": pd.Series([r.id for r in nodes], dtype=object),
        "status": pd.Series([r.props.get("status") for r in nodes], dtype=object),
        "name": pd.Series([_name(r.props.get("name")) for r in nodes], dtype=object),
    }, geometry=gpd.GeoSeries(geoms, crs=WGS84), crs=WGS84)
    return frame, problems


def _span_frame(spans: list[_Record], nodes: gpd.GeoDataFrame
                ) -> tuple[gpd.GeoDataFrame, list[Problem], list[Problem]]:
    geoms, bad = _geometries(spans)
    problems = [Problem(_SPAN, spans[i].id, "route", "not a GeoJSON LineString") for i in bad]
    warnings: list[Problem] = []
    multi = np.flatnonzero(shapely.get_type_id(geoms) == 5)
    if multi.size:
        merged = shapely.line_merge(geoms[multi])
        joined = shapely.get_type_id(merged) == 1
        geoms[multi[joined]] = merged[joined]
        problems += [Problem(_SPAN, spans[i].id, "route",
                             f"MultiLineString of {shapely.get_num_geometries(geoms[i])} parts "
                             "that do not join into one line") for i in multi[~joined]]
        geoms[multi[~joined]] = None
    starts = [_end_id(r.props.get("start")) for r in spans]
    ends = [_end_id(r.props.get("end")) for r in spans]
    # a span without route: a straight line between its nodes stands in (route is optional)
    located = nodes.dropna(subset=["node_id"]).drop_duplicates("node_id", keep=False)
    where = located.set_index("node_id").geometry
    for i in np.flatnonzero(shapely.is_missing(geoms)).tolist():
        if spans[i].geometry is not None:
            continue
        a, b = where.get(starts[i]), where.get(ends[i])
        if isinstance(a, shapely.Point) and isinstance(b, shapely.Point) and starts[i] != ends[i]:
            geoms[i] = shapely.LineString([a, b])
            warnings.append(Problem(_SPAN, spans[i].id, "route", "span has no route: a "
                                    "straight line from its start to its end node stands in"))
    frame = gpd.GeoDataFrame({
        "span_id": pd.Series([r.id for r in spans], dtype=object),
        "from_node": pd.Series(starts, dtype=object),
        "to_node": pd.Series(ends, dtype=object),
        "status": pd.Series([r.props.get("status") for r in spans], dtype=object),
        "fiber_count": pd.Series([r.props.get("fibreCount") for r in spans], dtype=object),
        "placement": pd.Series([_placement(r.props.get("deployment")) for r in spans],
                               dtype=object),
    }, geometry=gpd.GeoSeries(geoms, crs=WGS84), crs=WGS84)
    return frame, problems, warnings


def _name(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _placement(deployment: Any) -> str | None:
    """``deployment`` (an array): belowGround -> underground, aboveGround -> aerial, both or
    anything else -> other; absent -> no placement."""
    if deployment is None:
        return None
    if isinstance(deployment, list):
        return _PLACEMENT_FROM_OFDS.get(tuple(sorted(set(map(str, deployment)))), "other")
    return "other"


def _status(value: Any) -> str:
    return STATUS_FROM_OFDS.get(value, IN_SERVICE) if isinstance(value, str) else IN_SERVICE


def _status_warnings(frame: gpd.GeoDataFrame, layer: str) -> list[Problem]:
    odd = frame["status"].notna() & ~frame["status"].isin(list(STATUS_FROM_OFDS))
    return [Problem(layer, fid, "status", f"{value!r} is not in the OFDS status codelist: "
                    "taken as in_service")
            for fid, value in zip(frame.loc[odd, frame.columns[0]], frame.loc[odd, "status"],
                                  strict=True)]


def _validated(nodes: gpd.GeoDataFrame, spans: gpd.GeoDataFrame, problems: list[Problem],
               warnings: list[Problem], skip_invalid: bool) -> OfdsImport:
    """Validate by the contract; leave out what breaks it (``skip_invalid``) or raise."""
    skipped: list[Problem] = []
    dropped = {_NODE: _ids_of(problems, _NODE), _SPAN: _ids_of(problems, _SPAN)}
    if skip_invalid:
        skipped += problems
        problems = []
    while True:
        frames = {"nodes": nodes[~nodes["node_id"].isin(dropped[_NODE])],
                  "spans": spans[~spans["span_id"].isin(dropped[_SPAN])],
                  "premises": empty_layer("premises", WGS84)}
        # features without an id cannot be validated (nor named): they are already reported
        frames = {k: v[v.iloc[:, 0].notna()] if k != "premises" else v for k, v in frames.items()}
        report = validate_frames(frames)
        report.errors = _name_left_out_ends(report.errors, frames["spans"], dropped[_NODE])
        errors = problems + report.errors
        if not errors:
            assert report.dataset is not None
            report.dataset.warnings = warnings + _without_no_core(report.warnings, warnings)
            return OfdsImport(report.dataset, skipped)
        fixable = all(p.layer in dropped and p.id is not None for p in report.errors)
        if not skip_invalid or not fixable:
            raise ValidationError(errors, warnings + _without_no_core(report.warnings,
                                                                        warnings))
        skipped += report.errors
        for layer in dropped:
            dropped[layer] |= _ids_of(report.errors, layer)


def _without_no_core(found: list[Problem], own: list[Problem]) -> list[Problem]:
    """``found`` less the generic "no core" warning when ``own`` says it the OFDS way
    (naming --cores), so it is printed once."""
    if not any(p.layer == _NODE and p.field == "kind" and p.id is None for p in own):
        return found
    return [p for p in found if p != NO_CORE_WARNING]


def _name_left_out_ends(errors: list[Problem], spans: gpd.GeoDataFrame,
                        left_out: set[str]) -> list[Problem]:
    """A span whose end is a node with a problem of its own says so, not "no such node"."""
    ends = spans.set_index("span_id")[["from_node", "to_node"]]
    out = []
    for p in errors:
        end = (ends.at[p.id, p.field] if p.layer == _SPAN and p.field in ends.columns
               and p.id in ends.index and ends.index.is_unique else None)
        if isinstance(end, str) and end in left_out:
            p = Problem(p.layer, p.id, p.field, f"names node {end!r}, which is left out "
                        "(a problem of its own)")
        out.append(p)
    return out


def _ids_of(problems: list[Problem], layer: str) -> set[str]:
    return {p.id for p in problems if p.layer == layer and p.id is not None}


# ---- writing ----------------------------------------------------------------------------

def ofds_geojson(dataset: Dataset, *, network_name: str = "netgis network",
                 network_id: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The nodes and spans FeatureCollections of the OFDS GeoJSON publication format.

    Coordinates are WGS84 longitude/latitude (OFDS's CRS84), reprojected vertex
    by vertex. Nodes carry id, name and status; spans id, status, start and end
    (the node objects), fibreCount and deployment. Every feature carries the
    network (``network_id`` defaults to a UUID made from ``network_name``, so the
    same name gives the same id) and its ``featureType``.

    Examples
    --------
    >>> from netgis.io import read_dataset
    >>> nodes, spans = ofds_geojson(read_dataset("tests/examples/ring_spur/dataset.gpkg"))
    >>> spans["features"][0]["properties"]["featureType"], nodes["type"]
    ('span', 'FeatureCollection')
    """
    network = {"id": network_id or str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                  f"urn:netgis:network:{network_name}")),
               "name": network_name,
               "links": [{"rel": "describedby", "href": OFDS_SCHEMA_URL}],
               "crs": dict(OFDS_CRS)}
    node_objects = _node_objects(dataset.nodes)
    nodes = [{"type": "Feature", "geometry": obj["location"],
              "properties": {**{k: v for k, v in obj.items() if k != "location"},
                             "network": network, "featureType": "node"}}
             for obj in node_objects.values()]
    spans = _span_features(dataset.spans, node_objects, network)
    return ({"type": "FeatureCollection", "features": nodes},
            {"type": "FeatureCollection", "features": spans})


def _node_objects(frame: gpd.GeoDataFrame) -> dict[str, dict[str, Any]]:
    coords = shapely.get_coordinates(transform_geoms(frame.geometry.to_numpy(), CRS(frame.crs),
                                                     WGS84)).tolist()
    out: dict[str, dict[str, Any]] = {}
    for nid, name, status, xy in zip(frame["node_id"], frame["name"], frame["status"], coords,
                                     strict=True):
        obj: dict[str, Any] = {"id": str(nid)}
        if isinstance(name, str) and name:
            obj["name"] = name
        obj["status"] = STATUS_TO_OFDS[status]
        obj["location"] = {"type": "Point", "coordinates": xy}
        out[str(nid)] = obj
    return out


def _span_features(frame: gpd.GeoDataFrame, nodes: dict[str, dict[str, Any]],
                   network: dict[str, Any]) -> list[dict[str, Any]]:
    lines = transform_geoms(frame.geometry.to_numpy(), CRS(frame.crs), WGS84)
    coords, index = shapely.get_coordinates(lines, return_index=True)
    parts = np.split(coords, np.flatnonzero(np.diff(index)) + 1) if len(coords) else []
    features = []
    fibres = frame["fiber_count"].astype("Int64").astype(object).where(
        frame["fiber_count"].notna(), None)
    rows = zip(frame["span_id"], frame["status"], frame["from_node"], frame["to_node"], fibres,
               frame["placement"], parts, strict=True)
    for span_id, status, start, end, fibre_count, placement, xy in rows:
        props: dict[str, Any] = {"id": str(span_id), "status": STATUS_TO_OFDS[str(status)],
                                 "start": nodes[str(start)], "end": nodes[str(end)]}
        if fibre_count is not None:
            props["fibreCount"] = int(fibre_count)
        if isinstance(placement, str) and placement in DEPLOYMENT_TO_OFDS:
            props["deployment"] = DEPLOYMENT_TO_OFDS[placement]
        props.update(network=network, featureType="span")
        features.append({"type": "Feature",
                         "geometry": {"type": "LineString", "coordinates": xy.tolist()},
                         "properties": props})
    return features


def write_ofds(dataset: Dataset, out_dir: str | os.PathLike[str], *,
               network_name: str = "netgis network", network_id: str | None = None) -> Path:
    """Write ``out_dir/nodes.geojson`` and ``out_dir/spans.geojson`` (see :func:`ofds_geojson`).

    Both files are staged and renamed into ``out_dir`` only once both are complete;
    other files in ``out_dir`` stay.

    Examples
    --------
    >>> import tempfile
    >>> from netgis.io import read_dataset
    >>> out = write_ofds(read_dataset("tests/examples/ring_spur/dataset.gpkg"),
    ...                  Path(tempfile.mkdtemp()) / "ofds", network_name="Ring")
    >>> sorted(p.name for p in out.iterdir())
    ['nodes.geojson', 'spans.geojson']
    """
    nodes, spans = ofds_geojson(dataset, network_name=network_name, network_id=network_id)
    out = Path(out_dir)
    with atomic_dir(out, merge=True) as tmp:
        for name, collection in (("nodes", nodes), ("spans", spans)):
            with (tmp / f"{name}.geojson").open("w", encoding="utf-8") as fh:
                json.dump(collection, fh, ensure_ascii=False, allow_nan=False)
    return out
