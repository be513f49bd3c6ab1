"""netgis.products.tiles without a database: tile math, the MVT writer read back by a
standard MVT reader (mapbox-vector-tile), and the size guard of thinned tiles."""

from __future__ import annotations

import math

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pytest
import shapely

from netgis.errors import NotFoundError
from netgis.products.tiles import (
    EXTENT,
    MAX_TILE_BYTES,
    THIN_GRID,
    TileAddress,
    encode_tile,
    render_tile,
    to_tile_coords,
)

TILE = TileAddress.of("spans", 14, 8580, 5541)


def decode(body: bytes) -> dict[str, object]:
    out: dict[str, object] = mapbox_vector_tile.decode(
        body, default_options={"y_coord_down": True})
    return out


def test_a_tile_is_the_mercator_box_its_points_fall_in() -> None:
    rng = np.random.default_rng(0)
    lon, lat = rng.uniform(-179, 179, 200), rng.uniform(-85, 85, 200)
    for z in (0, 3, 14, 22):
        n = 2 ** z
        x = np.floor((lon + 180) / 360 * n).astype(int)
        y = np.floor((1 - np.arcsinh(np.tan(np.radians(lat))) / math.pi) / 2 * n).astype(int)
        for i in range(0, 200, 20):
            west, south, east, north = TileAddress.of("premises", z, x[i], y[i]).bounds()
            assert west <= lon[i] <= east and south <= lat[i] <= north


@pytest.mark.parametrize(("layer", "z", "x", "y"), [
    ("roads", 1, 0, 0), ("premises", 23, 0, 0), ("premises", -1, 0, 0),
    ("premises", 3, 8, 0), ("premises", 3, 0, -1)])
def test_outside_the_pyramid_is_not_found(layer: str, z: int, x: int, y: int) -> None:
    with pytest.raises(NotFoundError):
        TileAddress.of(layer, z, x, y)


def test_thinned_below_z14_only_and_never_areas() -> None:
    assert TileAddress.of("premises", 13, 0, 0).thin_grid == THIN_GRID
    assert TileAddress.of("premises", 14, 0, 0).thin_grid is None
    assert TileAddress.of("areas", 3, 0, 0).thin_grid is None


def test_points_lines_and_polygons_read_back() -> None:
    west, south, east, north = TILE.bounds()
    dx, dy = east - west, north - south
    line = shapely.LineString([(west - dx, south + dy / 3), (east + dx, north - dy / 3)])
    kink = shapely.LineString([(west + dx / 10, south + dy / 10), (west + dx / 5, south + dy / 3),
                               (west + dx / 2, south + dy / 5)])
    spans = gpd.GeoDataFrame({"span_id": ["long", "kink"], "lit": [True, False],
                              "cut_units": [3, None], "length_m": [1.5, np.nan]},
                             geometry=[line, kink], crs=4326)
    layer = decode(encode_tile(spans, TILE))["spans"]
    assert layer["extent"] == EXTENT  # type: ignore[index]
    got = {f["properties"]["span_id"]: f for f in layer["features"]}  # type: ignore[index]
    assert got["long"]["properties"] == {"span_id": "long", "lit": True, "cut_units": 3,
                                         "length_m": 1.5}
    assert got["kink"]["properties"] == {"span_id": "kink", "lit": False}  # nulls left out
    # the long span clipped to the tile and its buffer, the kink kept vertex by vertex
    xs = [p[0] for p in got["long"]["geometry"]["coordinates"]]
    assert min(xs) == -64 and max(xs) == EXTENT + 64
    expected = np.rint(shapely.get_coordinates(to_tile_coords(np.array([kink]), TILE)))
    assert np.array_equal(np.array(got["kink"]["geometry"]["coordinates"]), expected)

    hole = shapely.box(west + dx / 3, south + dy / 3, west + dx / 2, south + dy / 2)
    poly = shapely.box(west + dx / 10, south + dy / 10, east - dx / 10, north - dy / 10)
    areas = gpd.GeoDataFrame({"area_id": ["a"], "name": ["<b>A</b>"]},
                             geometry=[poly.difference(hole)], crs=4326)
    area = TileAddress.of("areas", TILE.z, TILE.x, TILE.y)
    (feature,) = decode(encode_tile(areas, area))["areas"]["features"]  # type: ignore[index]
    assert feature["properties"] == {"area_id": "a", "name": "<b>A</b>"}
    decoded = shapely.geometry.shape(feature["geometry"])
    assert decoded.is_valid and len(decoded.interiors) == 1
    expected_area = shapely.area(to_tile_coords(np.array([poly.difference(hole)]), area))[0]
    assert decoded.area == pytest.approx(expected_area, rel=0.01)


def test_an_empty_tile_is_no_bytes() -> None:
    far = gpd.GeoDataFrame({"span_id": ["x"]},
                           geometry=[shapely.LineString([(0, 0), (0.001, 0.001)])], crs=4326)
    assert encode_tile(far, TILE) == b""
    assert encode_tile(far.iloc[:0], TILE) == b""


def test_a_thinned_tile_over_the_limit_is_made_again_on_a_coarser_grid() -> None:
    grids: list[int | None] = []

    def encode(_: TileAddress, grid: int | None) -> bytes:
        grids.append(grid)
        return b"x" * ((grid or 1) * 10_000)

    body = render_tile(TileAddress.of("premises", 10, 0, 0), encode)
    assert grids == [64, 32] and len(body) <= MAX_TILE_BYTES
    grids.clear()
    render_tile(TileAddress.of("premises", 14, 0, 0), encode)
    assert grids == [None]
