"""The dataset types: layers as read (:class:`RawLayer`) and a validated :class:`Dataset`.

This module sits below both reading (:mod:`netgis.io`) and checking
(:mod:`netgis.validate`): io reads files into raw layers, validate turns raw
layers into a Dataset, and neither needs the other's types from the other.

Examples
--------
>>> empty = empty_layer("areas", 4326)
>>> list(empty.columns), len(empty)
(['area_id', 'name', 'geometry'], 0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import pandas as pd
from pyproj import CRS

from netgis.errors import Problem
from netgis.schema import LAYERS

#: Formats whose files may lack a CRS; a layer read without one is an error. GeoJSON and
#: GeoParquet without one are WGS84, as their standards say.
CRS_REQUIRED_FORMATS = frozenset({"gpkg", "fgb"})


@dataclass
class RawLayer:
    """One layer as read from disk, before validation.

    ``source`` names where it came from (a path, or ``memory``); ``fmt`` is
    the format it was read from (``gpkg``, ``geojson``, ``fgb``, ``parquet``),
    which decides whether a missing CRS is an error (:data:`CRS_REQUIRED_FORMATS`).
    """

    name: str
    frame: gpd.GeoDataFrame
    source: str
    fmt: str


@dataclass
class Dataset:
    """A validated dataset: clean GeoDataFrames in one CRS.

    ``areas`` is always present (empty when the dataset has none).

    Examples
    --------
    >>> ds = Dataset(*(empty_layer(n, 32632) for n in ("nodes", "spans", "premises", "areas")))
    >>> ds.crs.to_epsg(), list(ds.layers())
    (32632, ['nodes', 'spans', 'premises', 'areas'])
    """

    nodes: gpd.GeoDataFrame
    spans: gpd.GeoDataFrame
    premises: gpd.GeoDataFrame
    areas: gpd.GeoDataFrame
    warnings: list[Problem] = field(default_factory=list)
    #: The strand layers (docs/strands.md), typed and checked; empty when the dataset has
    #: none. They are not among :meth:`layers`: everything that reads only the route
    #: layers sees the dataset exactly as before.
    strands: dict[str, pd.DataFrame] = field(default_factory=dict)
    #: The index of ``strands`` built when they were checked
    #: (:class:`netgis.strand_plant.StrandPlant`), kept so that it is built once.
    strand_index: Any = field(default=None, repr=False, compare=False)
    #: The optional ``streets`` context layer (docs/data-model.md): lines with a ``name``
    #: (None where unnamed), in the dataset's CRS, drawn by the maps under the plant and
    #: never analysed; None when the dataset has none. Not among :meth:`layers` either.
    streets: gpd.GeoDataFrame | None = field(default=None, repr=False, compare=False)

    @property
    def crs(self) -> CRS:
        """The dataset's CRS (all four layers share the nodes' CRS after validation)."""
        return CRS(self.nodes.crs)

    def layers(self) -> dict[str, gpd.GeoDataFrame]:
        """The four layers by name, in the order of the data model."""
        return {
            "nodes": self.nodes,
            "spans": self.spans,
            "premises": self.premises,
            "areas": self.areas,
        }


def empty_layer(name: str, crs: CRS | str | int | None = 4326) -> gpd.GeoDataFrame:
    """An empty GeoDataFrame with the contract's columns for layer ``name``.

    Examples
    --------
    >>> empty_layer("premises")["connected"].dtype
    dtype('bool')
    """
    cols = {f.name: pd.Series(dtype=_DTYPES[f.type]) for f in LAYERS[name].fields}
    return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=crs), crs=crs)


#: pandas dtypes of the contract's field types in clean frames.
_DTYPES: dict[str, str] = {"text": "object", "int": "Int64", "bool": "bool", "float": "float64"}
