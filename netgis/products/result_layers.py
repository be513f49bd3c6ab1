"""Analysis results as GIS layers: the CSV tables with their geometry, for GeoPackage,
GeoParquet and the API's result collections.

``netgis analyze --format gpkg|parquet`` writes :func:`analysis_layers`
(``premise_results``, ``span_results``, ``node_results``), ``netgis gaps`` the
:func:`gap_layers` (``gap_clusters``, ``h3_gaps``, ``gap_areas``, ``gap_premises``) and
``netgis bead`` the :func:`bead_layer` (``bead_classes``); the file names are
:data:`netgis.schema.RESULT_LAYER_FILES`. Each layer holds the columns of the CSV it
stands for, with the same names and the same values (rounded as the CSV rounds them, nulls
as nulls), plus its geometry; premises also carry their ``address`` and the area that
covers them (``area_id``, ``area_name``). The API serves the same frames, in WGS84, as
read-only OGC API - Features collections (docs/ogc-api.md, "Result collections").

Columns are pandas' nullable types (``boolean``, ``Int64``, ``Float64``, ``string``):
a null stays a null in every format, and filters compare the way SQL does (a comparison
with a null is unknown, never true).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
from pandas.api.extensions import ExtensionDtype

from netgis.engine.analysis import NODE_COLUMNS, PREMISE_COLUMNS, SPAN_COLUMNS, Analysis
from netgis.engine.outputs import kpis_json, result_table
from netgis.errors import ConfigError
from netgis.geodesy import WGS84
from netgis.io import atomic_dir
from netgis.products.bead import CLASSES, BeadResult
from netgis.products.gaps.output import write_sketch
from netgis.products.gaps.plan import CLUSTER_COLUMNS, BuildPlan
from netgis.products.gaps.result import Gaps
from netgis.products.gaps.rollup import area_members
from netgis.schema import (
    LAYERS,
    PLACEMENTS,
    RESULT_FIELDS,
    RESULT_FORMATS,
    RESULT_LAYER_FILES,
    Field,
    FieldType,
    Layer,
)

#: GeoPackage version written: 1.3, which every GDAL since 2.x reads without a warning
#: (GDAL 3.12 would write 1.4, which Debian 12's GDAL 3.6 only "partially supports").
GPKG_VERSION = "1.3"

_NULLABLE = {pa.bool_(): pd.BooleanDtype(), pa.int64(): pd.Int64Dtype(),
             pa.float64(): pd.Float64Dtype(), pa.string(): pd.StringDtype()}
_DTYPES: dict[str, ExtensionDtype] = {"bool": pd.BooleanDtype(), "int": pd.Int64Dtype(),
                                      "float": pd.Float64Dtype(), "text": pd.StringDtype()}


def _fields(*specs: tuple[str, FieldType, str]) -> tuple[Field, ...]:
    return tuple(Field(name, kind, description=text) for name, kind, text in specs)


def _result_fields(layer: str) -> tuple[Field, ...]:
    """The id field and the CSV columns of ``layer`` (docs/spec.md §3.1), described."""
    id_field = LAYERS[layer].field(LAYERS[layer].id_field)
    return (id_field, *(Field(f.name, f.type, description=f.description
                              + (f" Unit: {f.unit}." if f.unit else ""))
                        for f in RESULT_FIELDS[layer] if f.contract))


#: The type of each column of the ranked build list (``gaps_clusters.csv``).
_CLUSTER_TYPES: dict[str, FieldType] = {
    "rank": "int", "cluster_id": "text", "premises": "int", "units": "int",
    "join_span_id": "text", "placement": "text", "h3_cell": "text"}
_ROLLUP: tuple[tuple[str, FieldType, str], ...] = (
    ("premises", "int", "Premises not passed."),
    ("units", "int", "Their units."),
    ("min_distance_m", "float", "Least distance_m of those premises (null: nothing lit)."),
    ("median_distance_m", "float", "Median distance_m of those premises."),
    ("premises_total", "int", "Every premise, passed or not."),
    ("units_total", "int", "Their units."),
)

#: Every result layer: its id field, columns (in order, without geometry) and geometry type.
RESULT_LAYERS: dict[str, Layer] = {layer.name: layer for layer in (
    Layer("premise_results", "premise_id", (
        *_result_fields("premises"),
        *_fields(("address", "text", "The premise's address."),
                 ("area_id", "text", "The area that covers the premise (boundary included; "
                                     "of several, the lowest area_id; null: none)."),
                 ("area_name", "text", "That area's name."))),
        ("Point",), description="Every premise with its coverage, protection and optical "
                                "reach (premises.csv) and its address and area."),
    Layer("span_results", "span_id", _result_fields("spans"), ("LineString",),
          description="Every span: lit or not and what its cut cuts off (spans.csv)."),
    Layer("node_results", "node_id", _result_fields("nodes"), ("Point",),
          description="Every node: what its failure cuts off (nodes.csv)."),
    Layer("gap_clusters", "cluster_id", tuple(
        Field(c, _CLUSTER_TYPES.get(c, "float"), enum=PLACEMENTS if c == "placement" else None)
        for c in CLUSTER_COLUMNS), ("Polygon",),
          description="Gap clusters: unpassed premises built together, ranked by cost per "
                      "unit (gaps_clusters.csv; docs/gaps.md)."),
    Layer("h3_gaps", "h3_cell", (Field("h3_cell", "text", description="H3 cell id."),
                                 *_fields(*_ROLLUP)), ("Polygon",),
          description="Unpassed premises and units per H3 cell (gaps_h3.csv)."),
    Layer("gap_areas", "area_id", (*_fields(("area_id", "text", "Area id."),
                                            ("name", "text", "Area name.")),
                                   *_fields(*_ROLLUP)), ("Polygon", "MultiPolygon"),
          description="Unpassed premises and units per area (gaps_areas.csv)."),
    Layer("gap_premises", "premise_id", _fields(
        ("premise_id", "text", "An unpassed premise."),
        ("cluster_id", "text", "Its gap cluster.")), ("Point",),
          description="The gap cluster of each unpassed premise (gaps_premises.csv)."),
    Layer("bead_classes", "location_id", (
        Field("location_id", "text", description="FCC Fabric location id."),
        Field("bead_class", "text", enum=CLASSES, description="BEAD class (docs/spec.md §2.11)."),
        Field("passed", "bool", description="Within drop_m of a lit span."),
        Field("distance_m", "float", description="Distance to the nearest lit span, m."),
        Field("plant", "text", enum=("passed", "reachable", "beyond"),
              description="passed, reachable within reach_m, or beyond.")), ("Point",),
          description="BEAD class of every FCC location and its plant answer (bead.csv)."),
)}


def _typed(frame: pd.DataFrame, layer: Layer) -> pd.DataFrame:
    """``frame``'s columns of ``layer``, in order, as nullable pandas types."""
    return pd.DataFrame({f.name: frame[f.name].astype(_DTYPES[f.type]) for f in layer.fields},
                        index=pd.RangeIndex(len(frame)))


def _layer(frame: pd.DataFrame, geometry: Any, crs: Any) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometry, crs=crs,
                                                          index=frame.index), crs=crs)


def _csv_cells(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """The cells of ``columns`` exactly as ``netgis analyze`` writes them to its CSVs
    (rounded, typed), as nullable pandas columns."""
    return cast(pd.DataFrame,
                result_table(frame, columns).to_pandas(types_mapper=_NULLABLE.get))


def premise_areas(premises: gpd.GeoDataFrame, areas: gpd.GeoDataFrame | None
                  ) -> tuple[pd.Series, pd.Series]:
    """``area_id`` and ``name`` of the area covering each premise (boundary included), null
    where none does; of several areas covering one premise, the lowest ``area_id``.

    Examples
    --------
    >>> from shapely import Point, box
    >>> prem = gpd.GeoDataFrame(geometry=[Point(5, 5), Point(50, 50)], crs=32632)
    >>> areas = gpd.GeoDataFrame({"area_id": ["b", "a"], "name": ["B", "A"]},
    ...     geometry=[box(0, 0, 10, 10), box(0, 0, 20, 20)], crs=32632)
    >>> [s.tolist() for s in premise_areas(prem, areas)]
    [['a', <NA>], ['A', <NA>]]
    """
    n = len(premises)
    ids = pd.array([None] * n, dtype="string")
    names = pd.array([None] * n, dtype="string")
    if areas is not None and len(areas):
        ordered = areas.sort_values("area_id", kind="stable")
        a_idx, p_idx = area_members(premises, ordered)
        lowest = np.full(n, len(ordered), dtype=np.int64)
        np.minimum.at(lowest, p_idx, a_idx)
        hit = lowest < len(ordered)
        ids[hit] = ordered["area_id"].astype(str).to_numpy()[lowest[hit]]
        if "name" in ordered:
            named = ordered["name"].astype("string").to_numpy()[lowest[hit]]
            names[hit] = named
    return pd.Series(ids, name="area_id"), pd.Series(names, name="area_name")


def premise_results(analysis: Analysis) -> gpd.GeoDataFrame:
    """The ``premise_results`` layer: premises.csv's rows, address, area and point.

    Examples
    --------
    >>> from netgis.engine.analysis import analyze
    >>> from netgis.io import read_dataset
    >>> layer = premise_results(analyze(read_dataset("data/sample.gpkg")))
    >>> layer.columns.tolist()[-4:], str(layer["passed"].dtype)
    (['address', 'area_id', 'area_name', 'geometry'], 'boolean')
    """
    prem = analysis.premises
    frame = _csv_cells(prem, PREMISE_COLUMNS)
    frame["address"] = prem["address"].to_numpy() if "address" in prem else None
    area_id, area_name = premise_areas(prem, analysis.dataset.areas)
    frame["area_id"], frame["area_name"] = area_id.array, area_name.array
    return _layer(_typed(frame, RESULT_LAYERS["premise_results"]), prem.geometry.to_numpy(),
                  prem.crs)


def span_results(analysis: Analysis) -> gpd.GeoDataFrame:
    """The ``span_results`` layer: spans.csv's rows with each span's line."""
    spans = analysis.spans
    return _layer(_typed(_csv_cells(spans, SPAN_COLUMNS), RESULT_LAYERS["span_results"]),
                  spans.geometry.to_numpy(), spans.crs)


def node_results(analysis: Analysis) -> gpd.GeoDataFrame:
    """The ``node_results`` layer: nodes.csv's rows with each node's point."""
    nodes = analysis.nodes
    return _layer(_typed(_csv_cells(nodes, NODE_COLUMNS), RESULT_LAYERS["node_results"]),
                  nodes.geometry.to_numpy(), nodes.crs)


def analysis_layers(analysis: Analysis) -> dict[str, gpd.GeoDataFrame]:
    """The layers of ``netgis analyze --format gpkg|parquet``, by name, in the dataset's CRS.

    Examples
    --------
    >>> from netgis.engine.analysis import analyze
    >>> from netgis.io import read_dataset
    >>> result = analyze(read_dataset("tests/examples/ring_spur/dataset.gpkg"))
    >>> {name: len(layer) for name, layer in analysis_layers(result).items()}
    {'premise_results': 6, 'span_results': 6, 'node_results': 6}
    """
    return {"premise_results": premise_results(analysis), "span_results": span_results(analysis),
            "node_results": node_results(analysis)}


def gap_clusters(plan: BuildPlan) -> gpd.GeoDataFrame:
    """The ``gap_clusters`` layer: gaps_clusters.csv's rows with each build's hull."""
    clusters = plan.clusters
    return _layer(_typed(clusters, RESULT_LAYERS["gap_clusters"]),
                  clusters.geometry.to_numpy(), clusters.crs)


def h3_gaps(hexes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The ``h3_gaps`` layer: gaps_h3.csv's rows with each H3 cell's hexagon (WGS84).

    Examples
    --------
    >>> from netgis.engine.analysis import analyze
    >>> from netgis.io import read_dataset
    >>> from netgis.products.gaps import rollup_h3
    >>> result = analyze(read_dataset("tests/examples/ring_spur/dataset.gpkg"))
    >>> h3_gaps(rollup_h3(result.premises))[["h3_cell", "premises"]].values.tolist()
    [['881faeaa9bfffff', 1]]
    """
    return _layer(_typed(hexes, RESULT_LAYERS["h3_gaps"]), hexes.geometry.to_numpy(),
                  hexes.crs if hexes.crs is not None else WGS84)


def gap_layers(gaps: Gaps, analysis: Analysis) -> dict[str, gpd.GeoDataFrame]:
    """The layers of ``netgis gaps --format gpkg|parquet``: the tables of its CSVs with
    geometry (clusters: the build's hull, dataset CRS; H3 cells: their hexagons, WGS84;
    areas: their polygons; premises: their points).

    Examples
    --------
    >>> from netgis.engine.analysis import analyze
    >>> from netgis.io import read_dataset
    >>> from netgis.products.gaps import gap_analysis
    >>> result = analyze(read_dataset("tests/examples/ring_spur/dataset.gpkg"))
    >>> layers = gap_layers(gap_analysis(result), result)
    >>> layers["gap_clusters"]["cluster_id"].tolist(), len(layers["h3_gaps"])
    (['gap-p_far'], 1)
    """
    areas = analysis.dataset.areas
    ordered = (areas.sort_values("area_id", kind="stable") if areas is not None and len(areas)
               else gpd.GeoDataFrame({"area_id": []}, geometry=[], crs=analysis.dataset.crs))
    members = gaps.plan.premise_cluster
    prem = analysis.premises
    at = pd.Index(prem["premise_id"].astype(str)).get_indexer(
        pd.Index(members["premise_id"].astype(str)))
    return {
        "gap_clusters": gap_clusters(gaps.plan),
        "h3_gaps": h3_gaps(gaps.hexes),
        "gap_areas": _layer(_typed(gaps.areas, RESULT_LAYERS["gap_areas"]),
                            ordered.geometry.to_numpy(), ordered.crs),
        "gap_premises": _layer(_typed(members, RESULT_LAYERS["gap_premises"]),
                               prem.geometry.to_numpy()[at], prem.crs),
    }


def bead_layer(result: BeadResult, locations: gpd.GeoDataFrame) -> dict[str, gpd.GeoDataFrame]:
    """The layer of ``netgis bead --format gpkg|parquet``: bead.csv's rows (distance_m
    rounded as there) with each location's point (WGS84).

    ``locations`` are the points :func:`netgis.products.bead.read_locations` read, the
    rows ``result`` was made from, in the same order.

    Examples
    --------
    >>> from netgis.engine.analysis import analyze
    >>> from netgis.io import read_dataset
    >>> from netgis.products.bead import bead, read_locations
    >>> r = analyze(read_dataset("data/sample.gpkg"))
    >>> answer = bead(r.lit_spans, "data/bead/availability.csv", "data/bead/fabric.csv")
    >>> points = read_locations("data/bead/fabric.csv")
    >>> layer = bead_layer(answer, points)["bead_classes"]
    >>> len(layer) == len(points), layer.crs.to_epsg()
    (True, 4326)
    """
    rows = result.locations
    if len(rows) != len(locations) or not np.array_equal(
            rows["location_id"].astype(str).to_numpy(),
            locations["location_id"].astype(str).to_numpy()):
        raise ConfigError("the BEAD answer and the locations differ: give the locations "
                          "the answer was made from")
    frame = rows.assign(distance_m=rows["distance_m"].round(4))
    return {"bead_classes": _layer(_typed(frame, RESULT_LAYERS["bead_classes"]),
                                   locations.geometry.to_numpy(), locations.crs)}


def layer_files(command: str, fmt: str) -> list[str]:
    """The files ``command`` (``analyze``, ``gaps``, ``bead``) writes its layers to in
    ``fmt`` (``gpkg`` or ``parquet``).

    Examples
    --------
    >>> layer_files("analyze", "gpkg"), layer_files("bead", "parquet")
    (['results.gpkg'], ['bead_classes.parquet'])
    """
    gpkg, names = RESULT_LAYER_FILES[command]
    return [gpkg] if fmt == "gpkg" else [f"{name}.parquet" for name in names]


def write_layers(layers: Mapping[str, gpd.GeoDataFrame], folder: str | os.PathLike[str], *,
                 fmt: str, gpkg_name: str) -> list[str]:
    """Write ``layers`` into ``folder`` (a staging folder: nothing is made atomic here):
    one GeoPackage ``gpkg_name`` holding every layer, or one GeoParquet file per layer.

    Returns the names of the files written. An empty layer is written too (no features),
    so a file always has every layer.
    """
    if fmt not in RESULT_FORMATS[1:]:
        raise ConfigError(f"layers are written as gpkg or parquet, not {fmt!r}")
    out = Path(folder)
    if fmt == "parquet":
        for name, frame in layers.items():
            frame.to_parquet(out / f"{name}.parquet", index=False)
        return [f"{name}.parquet" for name in layers]
    for i, (name, frame) in enumerate(layers.items()):
        pyogrio.write_dataframe(frame, out / gpkg_name, layer=name, driver="GPKG",
                                append=i > 0, use_arrow=True,
                                dataset_options={"VERSION": GPKG_VERSION} if i == 0 else None)
    return [gpkg_name]


def write_analysis_layers(analysis: Analysis, out_dir: str | os.PathLike[str], *,
                          fmt: str) -> list[str]:
    """``netgis analyze --format gpkg|parquet``: the :func:`analysis_layers` and
    ``kpis.json`` into ``out_dir``, all or nothing; the names of the files written.

    Other files in ``out_dir`` stay (those of ``gaps``, ``bead``, or another format).

    Examples
    --------
    >>> import tempfile
    >>> from netgis.engine.analysis import analyze
    >>> from netgis.io import read_dataset
    >>> result = analyze(read_dataset("tests/examples/ring_spur/dataset.gpkg"))
    >>> write_analysis_layers(result, tempfile.mkdtemp(), fmt="gpkg")
    ['results.gpkg', 'kpis.json']
    """
    with atomic_dir(Path(out_dir), merge=True) as tmp:
        written = write_layers(analysis_layers(analysis), tmp, fmt=fmt,
                               gpkg_name=RESULT_LAYER_FILES["analyze"][0])
        (tmp / "kpis.json").write_text(kpis_json(analysis.kpis))
    return [*written, "kpis.json"]


def write_gap_layers(gaps: Gaps, analysis: Analysis, out_dir: str | os.PathLike[str], *,
                     fmt: str) -> list[str]:
    """``netgis gaps --format gpkg|parquet``: the :func:`gap_layers` and the sketch
    (``gaps_plan.gpkg``, as with CSV) into ``out_dir``, all or nothing; the files written.

    Examples
    --------
    >>> import tempfile
    >>> from netgis.engine.analysis import analyze
    >>> from netgis.io import read_dataset
    >>> from netgis.products.gaps import gap_analysis
    >>> result = analyze(read_dataset("tests/examples/ring_spur/dataset.gpkg"))
    >>> write_gap_layers(gap_analysis(result), result, tempfile.mkdtemp(), fmt="parquet")[:2]
    ['gap_clusters.parquet', 'h3_gaps.parquet']
    """
    with atomic_dir(Path(out_dir), merge=True) as tmp:
        written = write_layers(gap_layers(gaps, analysis), tmp, fmt=fmt,
                               gpkg_name=RESULT_LAYER_FILES["gaps"][0])
        write_sketch(gaps.plan, tmp / "gaps_plan.gpkg")
    return [*written, "gaps_plan.gpkg"]


def write_bead_layer(result: BeadResult, locations: gpd.GeoDataFrame,
                     out_dir: str | os.PathLike[str], *, fmt: str) -> list[str]:
    """``netgis bead --format gpkg|parquet``: the :func:`bead_layer` into ``out_dir``,
    all or nothing; the files written."""
    with atomic_dir(Path(out_dir), merge=True) as tmp:
        return write_layers(bead_layer(result, locations), tmp, fmt=fmt,
                            gpkg_name=RESULT_LAYER_FILES["bead"][0])
