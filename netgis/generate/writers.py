"""The generator's outputs: a :class:`~netgis.dataset.Dataset` in memory, or files.

:func:`generate_city` builds the whole city in memory; :func:`write_city`
streams the premises to a GeoPackage or a layer directory chunk by chunk
(Arrow batches to GDAL or to a GeoParquet writer), through the atomic
writers of :mod:`netgis.io`. Both give the city's ``streets`` context layer too (one
line per named street, :func:`~netgis.generate.city.street_lines`), written after
the other layers. With ``strands`` both also lay the strand-level
plant (:mod:`netgis.generate.strands`) and make the spans' ``fiber_count`` and
``fibers_used`` agree with it; without, nothing of it is made and the output
is what it always was.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio  # imported before anything loads mod_spatialite (see storage)
import shapely
from pyproj import CRS

from netgis.dataset import Dataset
from netgis.generate.city import DEFAULT_CENTER, DEFAULT_CRS, City, plan_city, street_lines
from netgis.generate.premises import premise_batches, premise_frame, premise_schema, premise_table
from netgis.generate.strands import strand_plant, with_strand_counts
from netgis.io import (
    DIR_FORMATS,
    OGR_DRIVERS,
    atomic_dir,
    atomic_file,
    detect_format,
    write_layer_file,
)
from netgis.io.strands import write_strand_tables

#: Premises per written batch by default (bounds the memory of :func:`write_city`).
DEFAULT_CHUNK = 262_144


def generate_city(*, premises: int, spans: int | None = None, seed: int = 0,
                  crs: CRS | str | int = DEFAULT_CRS,
                  center: tuple[float, float] = DEFAULT_CENTER, strands: bool = False) -> Dataset:
    """Generate a synthetic city fiber plant in memory.

    Parameters
    ----------
    premises
        Number of premises (exact).
    spans
        About how many spans; by default one per ten premises.
    seed
        Same seed, same city.
    crs
        CRS of the result; the default is the UTM zone of ``center``.
    center
        (lon, lat) of the city center.
    strands
        Also lay the strand-level plant (``Dataset.strands``, the seven layers
        of :func:`~netgis.generate.strands.strand_plant`) and set the spans'
        ``fiber_count`` and ``fibers_used`` from it.

    Returns
    -------
    Dataset
        Nodes, spans, premises and areas in ``crs``, with the contract's columns, and
        the ``streets`` context layer (:func:`~netgis.generate.city.street_lines`).

    Examples
    --------
    >>> ds = generate_city(premises=500, seed=3)
    >>> (len(ds.premises), ds.crs.to_epsg(), ds.strands)
    (500, 32632, {})
    >>> len(generate_city(premises=500, seed=3, strands=True).strands["drops"]) > 0
    True
    """
    city = plan_city(premises, spans, seed, crs, center)
    parts = [premise_frame(cols, city.crs) for cols in premise_batches(city, DEFAULT_CHUNK)]
    frame = parts[0] if len(parts) == 1 else gpd.GeoDataFrame(
        pd.concat(parts, ignore_index=True), crs=city.crs)
    streets = street_lines(city)
    if not strands:
        return Dataset(nodes=city.nodes, spans=city.spans, premises=frame, areas=city.areas,
                       streets=streets)
    tables = strand_plant(city.nodes, city.spans, frame, seed=seed)
    return Dataset(nodes=city.nodes, spans=with_strand_counts(city.spans, tables),
                   premises=frame, areas=city.areas, strands=tables, streets=streets)


def write_city(path: str | os.PathLike[str], *, premises: int, spans: int | None = None,
               seed: int = 0, fmt: str | None = None, crs: CRS | str | int = DEFAULT_CRS,
               center: tuple[float, float] = DEFAULT_CENTER, chunk_size: int = DEFAULT_CHUNK,
               progress: Callable[[int], None] | None = None,
               strands: bool = False) -> dict[str, Any]:
    """Generate a city and write it to ``path`` atomically, premises chunk by chunk.

    The format comes from ``fmt`` or from ``path`` (:func:`netgis.io.detect_format`):
    ``.gpkg`` is one GeoPackage; ``.geojson``, ``.fgb`` or ``.parquet`` is a
    directory of ``<layer>.<ext>`` files. Only ``chunk_size`` premises are in
    memory at a time; the records are the same as those of
    :func:`generate_city` with the same arguments.

    Parameters
    ----------
    progress
        Called with the number of premises written so far after each chunk.
    strands
        Also write the strand-level plant (:mod:`netgis.generate.strands`) into
        the same output (attribute tables of the GeoPackage, or ``<layer>.csv``
        files of the directory), with the spans' ``fiber_count`` and
        ``fibers_used`` agreeing with it. A first pass over the premises
        (chunk by chunk) finds the connected ones.

    Returns
    -------
    dict
        Counts: ``nodes``, ``spans``, ``premises``, ``units``, ``areas``, ``streets``
        (the context layer, written after the others), and the ``format`` written;
        with ``strands`` also the rows of each strand layer (``cables``,
        ``cable_spans``, ...).

    Examples
    --------
    >>> import tempfile
    >>> summary = write_city(f"{tempfile.mkdtemp()}/city.gpkg", premises=1000, seed=2)
    >>> summary["premises"], summary["format"]
    (1000, 'gpkg')
    """
    out = Path(path)
    fmt = detect_format(out, fmt)
    city = plan_city(premises, spans, seed, crs, center)
    tables: dict[str, pd.DataFrame] = {}
    if strands:
        tables = strand_plant(city.nodes, city.spans, _connected(city, chunk_size), seed=seed)
        city = dataclasses.replace(city, spans=with_strand_counts(city.spans, tables))
    batches = premise_batches(city, chunk_size)
    counts = {"premises": 0, "units": 0}

    def counted() -> Iterator[dict[str, Any]]:
        for cols in batches:
            counts["premises"] += len(cols["units"])
            counts["units"] += int(cols["units"].sum())
            yield cols
            if progress is not None:
                progress(counts["premises"])

    streets = street_lines(city)
    if fmt == "gpkg":
        _write_gpkg(city, out, counted(), tables, streets)
    else:
        _write_dir(city, out, fmt, counted(), tables, streets)
    summary: dict[str, Any] = {
        "out": str(out), "format": fmt, "nodes": len(city.nodes), "spans": len(city.spans),
        "premises": counts["premises"], "units": counts["units"], "areas": len(city.areas),
        "streets": len(streets)}
    summary.update({name: len(frame) for name, frame in tables.items()})
    return summary


def _connected(city: City, chunk_size: int) -> gpd.GeoDataFrame:
    """The connected premises (``premise_id``, ``connected``, points), chunk by chunk."""
    ids, xy = [], []
    for cols in premise_batches(city, chunk_size):
        pick = cols["connected"]
        ids.append(cols["premise_id"].filter(pa.array(pick)).to_numpy(zero_copy_only=False))
        xy.append(cols["xy"][pick])
    points = np.concatenate(xy) if xy else np.zeros((0, 2))
    return gpd.GeoDataFrame(
        {"premise_id": np.concatenate(ids).astype(object) if ids else np.zeros(0, object),
         "connected": np.ones(len(points), bool)},
        geometry=gpd.GeoSeries(shapely.points(points), crs=city.crs), crs=city.crs)


def _arrow_stream(city: City, batches: Iterator[dict[str, Any]],
                  geo_metadata: bool) -> pa.RecordBatchReader:
    schema = premise_schema(city.crs, geo_metadata)
    gen = (batch for cols in batches for batch in premise_table(cols, schema).to_batches())
    return pa.RecordBatchReader.from_batches(schema, gen)


def _write_ogr_premises(city: City, target: Path, driver: str,
                        batches: Iterator[dict[str, Any]]) -> None:
    pyogrio.write_arrow(_arrow_stream(city, batches, geo_metadata=False), target,
                        layer="premises", driver=driver, geometry_name="geometry",
                        geometry_type="Point", crs=city.crs.to_wkt())


def _write_gpkg(city: City, out: Path, batches: Iterator[dict[str, Any]],
                tables: dict[str, pd.DataFrame], streets: gpd.GeoDataFrame) -> None:
    with atomic_file(out, suffix=".gpkg") as tmp:
        pyogrio.write_dataframe(city.nodes, tmp, layer="nodes", driver="GPKG")
        pyogrio.write_dataframe(city.spans, tmp, layer="spans", driver="GPKG")
        _write_ogr_premises(city, tmp, "GPKG", batches)
        pyogrio.write_dataframe(city.areas, tmp, layer="areas", driver="GPKG")
        if tables:
            write_strand_tables(tables, tmp)
        pyogrio.write_dataframe(streets, tmp, layer="streets", driver="GPKG")


def _write_dir(city: City, out: Path, fmt: str, batches: Iterator[dict[str, Any]],
               tables: dict[str, pd.DataFrame], streets: gpd.GeoDataFrame) -> None:
    ext = DIR_FORMATS[fmt]
    with atomic_dir(out) as tmp_dir:
        if tables:
            write_strand_tables(tables, tmp_dir)
        for name, frame in (("nodes", city.nodes), ("spans", city.spans), ("areas", city.areas)):
            write_layer_file(frame, tmp_dir / f"{name}{ext}", fmt)
        if fmt == "parquet":
            stream = _arrow_stream(city, batches, geo_metadata=True)
            with pq.ParquetWriter(tmp_dir / f"premises{ext}", stream.schema) as writer:
                for batch in stream:
                    writer.write_batch(batch)
        else:
            _write_ogr_premises(city, tmp_dir / f"premises{ext}", OGR_DRIVERS[fmt], batches)
        write_layer_file(streets, tmp_dir / f"streets{ext}", fmt)
