"""The generator's outputs: a :class:`~netgis.dataset.Dataset` in memory, or files.

:func:`generate_city` builds the whole city in memory; :func:`write_city`
streams the premises to a GeoPackage or a layer directory chunk by chunk
(Arrow batches to GDAL or to a GeoParquet writer), through the atomic
writers of :mod:`netgis.io`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio  # imported before anything loads mod_spatialite (see storage)
from pyproj import CRS

from netgis.dataset import Dataset
from netgis.generate.city import DEFAULT_CENTER, DEFAULT_CRS, City, plan_city
from netgis.generate.premises import premise_batches, premise_frame, premise_schema, premise_table
from netgis.io import (
    DIR_FORMATS,
    OGR_DRIVERS,
    atomic_dir,
    atomic_file,
    detect_format,
    write_layer_file,
)

#: Premises per written batch by default (bounds the memory of :func:`write_city`).
DEFAULT_CHUNK = 262_144


def generate_city(*, premises: int, spans: int | None = None, seed: int = 0,
                  crs: CRS | str | int = DEFAULT_CRS,
                  center: tuple[float, float] = DEFAULT_CENTER) -> Dataset:
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

    Returns
    -------
    Dataset
        Nodes, spans, premises and areas in ``crs``, with the contract's columns.

    Examples
    --------
    >>> ds = generate_city(premises=500, seed=3)
    >>> (len(ds.premises), ds.crs.to_epsg())
    (500, 32632)
    """
    city = plan_city(premises, spans, seed, crs, center)
    parts = [premise_frame(cols, city.crs) for cols in premise_batches(city, DEFAULT_CHUNK)]
    frame = parts[0] if len(parts) == 1 else gpd.GeoDataFrame(
        pd.concat(parts, ignore_index=True), crs=city.crs)
    return Dataset(nodes=city.nodes, spans=city.spans, premises=frame, areas=city.areas)


def write_city(path: str | os.PathLike[str], *, premises: int, spans: int | None = None,
               seed: int = 0, fmt: str | None = None, crs: CRS | str | int = DEFAULT_CRS,
               center: tuple[float, float] = DEFAULT_CENTER, chunk_size: int = DEFAULT_CHUNK,
               progress: Callable[[int], None] | None = None) -> dict[str, Any]:
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

    Returns
    -------
    dict
        Counts: ``nodes``, ``spans``, ``premises``, ``units``, ``areas``, and
        the ``format`` written.

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
    batches = premise_batches(city, chunk_size)
    counts = {"premises": 0, "units": 0}

    def counted() -> Iterator[dict[str, Any]]:
        for cols in batches:
            counts["premises"] += len(cols["units"])
            counts["units"] += int(cols["units"].sum())
            yield cols
            if progress is not None:
                progress(counts["premises"])

    if fmt == "gpkg":
        _write_gpkg(city, out, counted())
    else:
        _write_dir(city, out, fmt, counted())
    return {"out": str(out), "format": fmt, "nodes": len(city.nodes), "spans": len(city.spans),
            "premises": counts["premises"], "units": counts["units"], "areas": len(city.areas)}


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


def _write_gpkg(city: City, out: Path, batches: Iterator[dict[str, Any]]) -> None:
    with atomic_file(out, suffix=".gpkg") as tmp:
        pyogrio.write_dataframe(city.nodes, tmp, layer="nodes", driver="GPKG")
        pyogrio.write_dataframe(city.spans, tmp, layer="spans", driver="GPKG")
        _write_ogr_premises(city, tmp, "GPKG", batches)
        pyogrio.write_dataframe(city.areas, tmp, layer="areas", driver="GPKG")


def _write_dir(city: City, out: Path, fmt: str, batches: Iterator[dict[str, Any]]) -> None:
    ext = DIR_FORMATS[fmt]
    with atomic_dir(out) as tmp_dir:
        for name, frame in (("nodes", city.nodes), ("spans", city.spans), ("areas", city.areas)):
            write_layer_file(frame, tmp_dir / f"{name}{ext}", fmt)
        if fmt == "parquet":
            stream = _arrow_stream(city, batches, geo_metadata=True)
            with pq.ParquetWriter(tmp_dir / f"premises{ext}", stream.schema) as writer:
                for batch in stream:
                    writer.write_batch(batch)
        else:
            _write_ogr_premises(city, tmp_dir / f"premises{ext}", OGR_DRIVERS[fmt], batches)
