"""The optional ``streets`` context layer in the database (table ``streets``, revision 0011).

Streets are context, not plant (docs/data-model.md): a bulk load that brings streets
replaces the stored ones, a ``replace`` load without streets removes them, and any other
load keeps them. They are read whole, as a GeoDataFrame in EPSG:4326, or None when the
database holds none (a dataset without streets reads as it always did).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
import sqlalchemy
from sqlalchemy import delete, func, insert, select

from netgis.geodesy import WGS84, transform_geoms
from netgis.storage.models import STREETS


def replace_streets(conn: sqlalchemy.Connection, streets: gpd.GeoDataFrame | None) -> int:
    """Make the stored streets exactly ``streets`` (``name``, line geometry, any CRS);
    None stores none. Returns the lines stored."""
    conn.execute(delete(STREETS))
    if streets is None or not len(streets):
        return 0
    geoms = transform_geoms(streets.geometry.to_numpy(), streets.crs or WGS84, WGS84)
    names = streets["name"].astype(object).where(streets["name"].notna(), None).to_numpy()
    wkb = shapely.to_wkb(geoms)
    conn.execute(insert(STREETS), [{"name": n, "geometry": bytes(g)}
                                   for n, g in zip(names, wkb, strict=True)])
    return len(streets)


def read_streets(conn: sqlalchemy.Connection) -> gpd.GeoDataFrame | None:
    """The stored streets in the order they were loaded (EPSG:4326), None when there are
    none (or the database predates revision 0011)."""
    if not sqlalchemy.inspect(conn).has_table(STREETS.name):
        return None
    if not conn.execute(select(func.count()).select_from(STREETS)).scalar_one():
        return None
    rows = conn.execute(select(STREETS.c.name, STREETS.c.geometry)
                        .order_by(STREETS.c.street_id)).all()
    geoms = shapely.from_wkb(np.asarray([bytes(r.geometry) for r in rows], dtype=object))
    return gpd.GeoDataFrame({"name": np.asarray([r.name for r in rows], dtype=object)},
                            geometry=gpd.GeoSeries(geoms, crs=WGS84), crs=WGS84)
