"""The premises of a synthetic city, drawn in fixed blocks, each with its own random stream.

Premises sit along every street of the grid (a few meters to ~60 m off the
street), including the unfibered fringe; a share :data:`FAR_SHARE` lives on
the far hamlets' roads. ``connected`` is set only where the street (or
the hamlet's road) has working plant. Block ``b`` of :data:`BLOCK` records draws from the stream
``[seed, 1, b]``, so the data never depends on how it is batched: writing 10
million premises chunk by chunk gives the same records as generating them
at once, with memory bounded by the chunk size.

A batch of premises is a dict of columns (contract field -> Arrow or numpy
array) plus ``xy``, the positions in the output CRS.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from pyproj import CRS

from netgis.generate.city import FAR_SHARE, City, place_xy
from netgis.schema import LAYERS

FloatArray = npt.NDArray[np.float64]

#: Premises per random block; the data is the same whatever the write batch size.
BLOCK = 8192

_PREMISE_KINDS = pa.array(["residential", "business", "anchor"])
_ARROW_TYPES = {"text": pa.string(), "int": pa.int64(), "bool": pa.bool_()}


def premise_block(city: City, block: int) -> dict[str, Any]:
    """Columns of premises block ``block`` (its own random stream): the geometry is an array.

    Examples
    --------
    >>> from netgis.generate.city import DEFAULT_CENTER, DEFAULT_CRS, plan_city
    >>> city = plan_city(100, None, 1, DEFAULT_CRS, DEFAULT_CENTER)
    >>> premise_block(city, 0)["premise_id"][:2].to_pylist()
    ['p00', 'p01']
    """
    first = block * BLOCK
    count = min(BLOCK, city.premises - first)
    streets, hamlets = city.streets, city.hamlets
    # the draws keep this order: changing it changes every city
    rng = np.random.default_rng([city.seed, 1, block])
    far = rng.random(count) < FAR_SHARE
    edge = rng.integers(0, len(streets.start), count)
    along_edge = rng.uniform(0.06, 0.94, count)
    side = rng.integers(0, 2, count)
    offset = 4.0 + 56.0 * rng.beta(1.3, 3.0, count)
    start = streets.start[edge]
    edge_vec = streets.end[edge] - start
    length = np.hypot(edge_vec[:, 0], edge_vec[:, 1])[:, None]
    normal = np.column_stack([-edge_vec[:, 1], edge_vec[:, 0]]) / length
    sign = (2 * side - 1)[:, None]
    xy = start + along_edge[:, None] * edge_vec + sign * offset[:, None] * normal
    hamlet = rng.integers(0, len(hamlets.center), count)
    along_road = rng.uniform(-1.0, 1.0, count) * hamlets.half_length[hamlet]
    road_dir = hamlets.direction[hamlet]
    road_normal = np.column_stack([-road_dir[:, 1], road_dir[:, 0]])
    far_xy = (hamlets.center[hamlet] + along_road[:, None] * road_dir
              + sign * offset[:, None] * road_normal)
    xy = np.where(far[:, None], far_xy, xy)

    central = np.where(far, 0.0, 1.0 - streets.radius[edge])
    draw = rng.random(count)
    anchor = draw < 0.012
    business = ~anchor & (draw < 0.05 + 0.1 * central)
    mdu = ~anchor & ~far & (rng.random(count) < 0.03 + 0.17 * central**2)
    mdu_units = np.clip(np.round(rng.lognormal(np.log(6.0), 0.75, count)), 2, 40).astype(np.int64)
    biz_units = np.where(rng.random(count) < 0.2, rng.integers(2, 7, count), 1)
    units = np.where(mdu, mdu_units, np.where(business, biz_units, 1))
    take = np.where(anchor, 0.7, np.where(business, 0.3, 0.42))
    served = np.where(far, hamlets.served[hamlet], streets.served[edge])
    connected = served & (rng.random(count) < take)

    number = np.where(far, (np.abs(along_road) // 12).astype(np.int64) * 2 + 1,
                      streets.first_house[edge] + (along_edge * 20).astype(np.int64) * 2) + side
    # strings are built as Arrow arrays: far faster than numpy's, and what the writers take
    street = city.street_names.take(np.where(far, len(streets.names) + hamlet,
                                             streets.street[edge]))
    index = pa.array(np.arange(first, first + count))
    width = len(str(city.premises - 1))
    return {
        "premise_id": pc.binary_join_element_wise(
            "p", pc.utf8_lpad(pc.cast(index, pa.string()), width, "0"), ""),
        "units": units.astype(np.int64),
        "kind": _PREMISE_KINDS.take(np.where(anchor, 2, np.where(business, 1, 0))),
        "connected": connected,
        "address": pc.binary_join_element_wise(street, pc.cast(pa.array(number), pa.string()),
                                               " "),
        "location_id": pc.cast(pc.add(index, 1_100_000_000), pa.string()),
        "xy": place_xy(xy, city.affine, city.work_crs, city.crs),
    }


def premise_batches(city: City, chunk_size: int) -> Iterator[dict[str, Any]]:
    """Premises in batches of whole blocks (about ``chunk_size`` records each).

    Examples
    --------
    >>> from netgis.generate.city import DEFAULT_CENTER, DEFAULT_CRS, plan_city
    >>> city = plan_city(20_000, None, 1, DEFAULT_CRS, DEFAULT_CENTER)
    >>> [len(cols["units"]) for cols in premise_batches(city, 10_000)]
    [16384, 3616]
    """
    per_batch = max(1, -(-chunk_size // BLOCK))
    n_blocks = -(-city.premises // BLOCK)
    for start in range(0, n_blocks, per_batch):
        blocks = [premise_block(city, block)
                  for block in range(start, min(n_blocks, start + per_batch))]
        yield {key: pa.concat_arrays([cols[key] for cols in blocks])
               if isinstance(blocks[0][key], pa.Array)
               else np.concatenate([cols[key] for cols in blocks]) for key in blocks[0]}


def premise_frame(cols: dict[str, Any], crs: CRS) -> gpd.GeoDataFrame:
    """A batch of premises as a GeoDataFrame with the contract's dtypes.

    Examples
    --------
    >>> from netgis.generate.city import DEFAULT_CENTER, DEFAULT_CRS, plan_city
    >>> city = plan_city(100, None, 1, DEFAULT_CRS, DEFAULT_CENTER)
    >>> premise_frame(premise_block(city, 0), city.crs)["units"].dtype
    Int64Dtype()
    """
    data: dict[str, Any] = {}
    for field in LAYERS["premises"].fields:
        value = cols[field.name]
        if isinstance(value, pa.Array):
            data[field.name] = pd.Series(value.to_numpy(zero_copy_only=False), dtype="str")
        elif field.type == "int":
            data[field.name] = pd.array(value, dtype="Int64")
        else:
            data[field.name] = value
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(shapely.points(cols["xy"]), crs=crs),
                            crs=crs)


def premise_schema(crs: CRS, geo_metadata: bool) -> pa.Schema:
    """Arrow schema of premises batches: contract fields and WKB geometry.

    With ``geo_metadata`` the schema carries the GeoParquet ``geo`` metadata.

    Examples
    --------
    >>> premise_schema(CRS(4326), geo_metadata=False).names[-2:]
    ['location_id', 'geometry']
    """
    fields = [pa.field(f.name, _ARROW_TYPES[f.type]) for f in LAYERS["premises"].fields]
    fields.append(pa.field("geometry", pa.binary()))
    if not geo_metadata:
        return pa.schema(fields)
    geo = {"version": "1.0.0", "primary_column": "geometry",
           "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Point"],
                                    "crs": crs.to_json_dict()}}}
    return pa.schema(fields, metadata={b"geo": json.dumps(geo).encode()})


def premise_table(cols: dict[str, Any], schema: pa.Schema) -> pa.Table:
    """A batch of premises as an Arrow table of ``schema`` (see :func:`premise_schema`).

    Examples
    --------
    >>> from netgis.generate.city import DEFAULT_CENTER, DEFAULT_CRS, plan_city
    >>> city = plan_city(100, None, 1, DEFAULT_CRS, DEFAULT_CENTER)
    >>> premise_table(premise_block(city, 0), premise_schema(city.crs, False)).num_rows
    100
    """
    arrays = [cols[name] if isinstance(cols[name], pa.Array)
              else pa.array(cols[name], type=schema.field(name).type)
              for name in schema.names if name != "geometry"]
    arrays.append(point_wkb(cols["xy"]))
    return pa.Table.from_arrays(arrays, schema=schema)


def point_wkb(xy: FloatArray) -> pa.Array:
    """Little-endian WKB points straight from coordinates (no GEOS objects on the write path).

    Examples
    --------
    >>> shapely.from_wkb(point_wkb(np.array([[1.0, 2.0]]))[0].as_py()).wkt
    'POINT (1 2)'
    """
    count = len(xy)
    rec = np.zeros(count, dtype=[("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")])
    rec["order"], rec["type"], rec["x"], rec["y"] = 1, 1, xy[:, 0], xy[:, 1]
    offsets = pa.py_buffer((np.arange(count + 1, dtype=np.int32) * rec.itemsize).tobytes())
    return pa.Array.from_buffers(pa.binary(), count, [None, offsets, pa.py_buffer(rec.tobytes())])
