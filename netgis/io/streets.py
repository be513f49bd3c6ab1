"""The optional ``streets`` context layer: lines the maps draw under the plant.

A dataset may carry streets (a ``streets`` layer of its GeoPackage, or a
``streets.<ext>`` file beside the other layer files, in any supported format) so that a
map without a base map still shows where the plant runs. They are context, not data
the analysis reads, so they are checked loosely: every problem is a **warning** and
never stops a dataset from loading.

- a layer that cannot be read, or a GeoPackage / FlatGeobuf layer without a CRS, is left
  out (one warning);
- features whose geometry is missing, empty or not a line (LineString, MultiLineString)
  are left out (one warning counting them and naming the first few by row);
- ``name`` (any case) is optional; its values become text (None where missing).

A dataset without a streets layer reads exactly as before: ``Dataset.streets`` is None
and no warning is added.

Reading is :func:`netgis.io.read.with_streets`; this module checks what was read.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from netgis.errors import Problem

#: The layer's name in a GeoPackage and the stem of its file in a dataset directory.
STREETS = "streets"
#: Rows named in a warning about left-out features (the count says how many there are).
_SHOWN_ROWS = 5
#: shapely's type ids of LineString and MultiLineString.
_LINE_TYPE_IDS = (1, 5)


def check_streets(frame: gpd.GeoDataFrame, crs: CRS | int | str
                  ) -> tuple[gpd.GeoDataFrame, list[Problem]]:
    """The lines of a streets layer as read (columns ``name``, ``geometry``, in ``crs``), and
    a warning for what was left out. ``frame`` must have a CRS.

    Examples
    --------
    >>> lines = gpd.GeoDataFrame({"NAME": ["Hauptstraße", 12]},
    ...     geometry=[shapely.LineString([(8.7, 50.1), (8.71, 50.1)]), shapely.Point(8.7, 50.1)],
    ...     crs=4326)
    >>> frame, warnings = check_streets(lines, 32632)
    >>> frame["name"].tolist(), frame.crs.to_epsg()
    (['Hauptstraße'], 32632)
    >>> print(warnings[0])
    streets field=geometry: 1 feature is not a line (row 1): left out of the map
    """
    geoms = frame.geometry.to_numpy()
    kinds = np.asarray(shapely.get_type_id(geoms))
    lines = np.isin(kinds, _LINE_TYPE_IDS) & ~shapely.is_empty(geoms)
    warnings: list[Problem] = []
    if not lines.all():
        rows = np.flatnonzero(~lines)
        shown = ", ".join(str(r) for r in rows[:_SHOWN_ROWS])
        more = ", ..." if len(rows) > _SHOWN_ROWS else ""
        count = f"{len(rows)} feature{'s are' if len(rows) != 1 else ' is'}"
        warnings.append(Problem(
            STREETS, None, "geometry",
            f"{count} not a line (row{'s' if len(rows) != 1 else ''} {shown}{more}): "
            "left out of the map"))
    named = {c.lower(): c for c in frame.columns if c != "geometry"}
    names = frame[named["name"]] if "name" in named else pd.Series(None, index=frame.index)
    text = names.astype(object).where(names.notna(), None).map(
        lambda v: v if v is None or isinstance(v, str) else str(v))
    out = gpd.GeoDataFrame({"name": text.to_numpy(dtype=object)[lines]},
                           geometry=gpd.GeoSeries(geoms[lines], crs=frame.crs), crs=frame.crs)
    if not CRS(out.crs).equals(CRS(crs)):
        out = out.to_crs(crs)
    return out, warnings
