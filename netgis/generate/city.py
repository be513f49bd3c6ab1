"""The layout of a synthetic city: street grid, far hamlets, districts, and where it lies.

:func:`plan_city` draws everything but the premises from the city's random
stream (``[seed, 0]``): the jittered street grid (blocks of about 120 m),
the plant on its inner part (:mod:`netgis.generate.plant`), the far hamlets
(short roads well beyond the plant's reach) and the district polygons, and
places them on the earth. About half of the hamlets (drawn from their own
stream ``[seed, 2]``, so the rest of the city does not change) are served
by a long rural run: a cable from the nearest working plant node to a
splitter at the hamlet, and one along its road. Behind the splitters
already on the way, that splitter often leaves the hamlet out of a class
B+ budget: the passed-but-not-serviceable case of docs/spec.md §2.10 (Optical reach).
The :class:`City` it returns holds what the premises
(:mod:`netgis.generate.premises`) need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError
from scipy.spatial import cKDTree

from netgis.errors import Problem, ValidationError
from netgis.generate.plant import SpanBatch, make_ids, plan_plant, span_frame
from netgis.geodesy import WGS84, transformer, utm_epsg

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
ObjArray = npt.NDArray[np.object_]
#: cos, sin, x0, y0: the rotation and offset from local meters to the work CRS.
Affine = tuple[float, float, float, float]

#: Where the city lies by default (lon, lat) and its CRS (the UTM zone there).
DEFAULT_CENTER = (8.7, 50.1)
DEFAULT_CRS = "EPSG:32632"
#: Share of premises in far hamlets (clusters beyond the city's plant).
FAR_SHARE = 0.04
#: Chance that a far hamlet is served by a long rural run.
RURAL_RUN_SHARE = 0.5
#: Span extras (feeder, planned, retired) per distribution span, used to size the grid.
_EXTRA_SPANS = 0.05

_STREET_BASES = (
    "Linden", "Eichen", "Birken", "Ahorn", "Buchen", "Kastanien", "Ulmen", "Erlen",
    "Tannen", "Fichten", "Kiefern", "Weiden", "Pappel", "Eschen", "Rosen", "Tulpen",
    "Nelken", "Lilien", "Veilchen", "Flieder", "Holunder", "Schiller", "Goethe", "Herder",
    "Lessing", "Kant", "Mozart", "Bach", "Händel", "Schubert", "Berg", "Tal", "Wiesen",
    "Feld", "Garten", "Mühlen", "Brunnen", "Kirch", "Schul", "Markt",
)
_PREFIXES = ("", "Obere ", "Untere ", "Neue ", "Alte ", "Hintere ", "Vordere ")
_DISTRICTS = (
    "Altstadt", "Nordend", "Westend", "Ostend", "Südviertel", "Bahnhofsviertel",
    "Gartenstadt", "Hafen", "Bergen", "Riedberg", "Niederrad", "Oberrad", "Bornheim",
    "Sachsenhausen", "Rödelheim", "Seckbach", "Eschersheim", "Ginnheim", "Praunheim",
    "Hausen", "Heddernheim", "Bockenheim", "Gallus", "Griesheim", "Nied", "Sossenheim",
)


class Streets(NamedTuple):
    """Every street segment (between two corners) of the grid, in local meters."""

    start: FloatArray  # (E, 2)
    end: FloatArray  # (E, 2)
    street: IntArray  # index into the street names
    first_house: IntArray  # first house number on the segment
    radius: FloatArray  # 0 at the city center, 1 at its rim
    served: BoolArray  # working plant along the segment
    names: list[str]  # the cy east-west streets, then the cx north-south ones


class Hamlets(NamedTuple):
    """Far hamlets: one short straight road each, in local meters."""

    center: FloatArray  # (K, 2)
    direction: FloatArray  # (K, 2) unit vectors
    half_length: FloatArray  # half the length of the road
    served: BoolArray  # reached by a long rural run (see :func:`plan_rural_runs`)


@dataclass(frozen=True)
class City:
    """Everything premises need, fixed before any premise is drawn."""

    premises: int
    seed: int
    crs: CRS
    work_crs: CRS
    affine: Affine
    nodes: gpd.GeoDataFrame
    spans: gpd.GeoDataFrame
    areas: gpd.GeoDataFrame
    streets: Streets
    hamlets: Hamlets
    street_names: pa.Array  # the streets, then one road name per far hamlet


def check_args(premises: int, spans: int | None, seed: int) -> None:
    """Raise ValidationError listing every argument of :func:`plan_city` out of range.

    Examples
    --------
    >>> check_args(0, 1, 0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    netgis.errors.ValidationError: 2 problems: premises field=premises: must be >= 1, got 0; ...
    """
    problems = []
    if premises < 1:
        problems.append(Problem("premises", None, "premises", f"must be >= 1, got {premises}"))
    if spans is not None and spans < 2:
        problems.append(Problem("spans", None, "spans", f"must be >= 2, got {spans}"))
    if seed < 0:
        problems.append(Problem("generate", None, "seed", f"must be >= 0, got {seed}"))
    if problems:
        raise ValidationError(problems)


def plan_city(premises: int, spans: int | None, seed: int, crs: CRS | str | int,
              center: tuple[float, float]) -> City:
    """Lay out streets, plant and areas; premises come later, block by block.

    Examples
    --------
    >>> city = plan_city(2000, None, 1, DEFAULT_CRS, DEFAULT_CENTER)
    >>> len(city.streets.start) > 0, city.crs.to_epsg()
    (True, 32632)
    """
    check_args(premises, spans, seed)
    rng = np.random.default_rng([seed, 0])
    n_spans = spans if spans is not None else max(2, round(premises / 10))
    target = max(4, round(n_spans / (1 + _EXTRA_SPANS)))
    tile_side = 8 if target >= 2000 else 6 if target >= 300 else 4 if target >= 48 else 2
    n_tiles = max(1, round(target / tile_side**2))
    tiles_x = max(1, round(np.sqrt(n_tiles)))
    tiles_y = max(1, round(n_tiles / tiles_x))
    plant_cols, plant_rows = tiles_x * tile_side, tiles_y * tile_side
    margin = max(1, round(0.05 * max(plant_cols, plant_rows)))
    grid_cols, grid_rows = plant_cols + 2 * margin, plant_rows + 2 * margin

    # streets: spacing 105..135 m, intersections jittered, centered on (0, 0)
    col_u = np.cumsum(rng.uniform(105.0, 135.0, grid_cols))
    row_v = np.cumsum(rng.uniform(105.0, 135.0, grid_rows))
    col_u -= col_u.mean()
    row_v -= row_v.mean()
    grid = np.empty((grid_rows, grid_cols, 2))
    grid[..., 0] = col_u[None, :]
    grid[..., 1] = row_v[:, None]
    grid += np.clip(rng.normal(0.0, 9.0, grid.shape), -20.0, 20.0)
    half_extent = max(col_u[-1] - col_u[0], row_v[-1] - row_v[0]) / 2 + 1.0

    plant = plan_plant(rng, grid, tile_side=tile_side, tiles_x=tiles_x, tiles_y=tiles_y,
                       margin=margin,
                       premises_per_node=premises * (1 - FAR_SHARE) / (grid_cols * grid_rows))
    streets = street_edges(grid, margin, plant_cols, plant_rows, tile_side, tiles_x,
                           plant.tile_planned, half_extent)
    hamlets = plan_hamlets(rng, grid, premises)
    # the rural runs draw from their own stream: the rest of the city stays as it was
    hamlets, rural_nodes, rural_spans = plan_rural_runs(np.random.default_rng([seed, 2]),
                                                        plant.nodes, hamlets)
    plant_nodes, plant_spans = plant.nodes, plant.spans
    if rural_nodes is not None and rural_spans is not None:
        plant_nodes = pd.concat([plant_nodes, rural_nodes], ignore_index=True)
        plant_spans = pd.concat([plant_spans, rural_spans], ignore_index=True)
    hamlet_roads = [f"Weiler {number + 1}" for number in range(len(hamlets.center))]
    angle = rng.uniform(-0.35, 0.35)

    try:
        out_crs = CRS(crs)
    except CRSError as exc:
        raise ValidationError([Problem("generate", None, "crs", f"unknown CRS: {exc}")]) from exc
    work = CRS.from_epsg(utm_epsg(*center))
    x0, y0 = transformer(WGS84, work).transform(*center)
    affine = (float(np.cos(angle)), float(np.sin(angle)), float(x0), float(y0))
    areas = plan_areas(rng, grid, hamlets)

    def place(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        geoms = to_output(frame.geometry.to_numpy(), affine, work, out_crs)
        return gpd.GeoDataFrame(frame.drop(columns="geometry"),
                                geometry=gpd.GeoSeries(geoms, crs=out_crs), crs=out_crs)

    return City(
        premises=premises, seed=seed, crs=out_crs, work_crs=work, affine=affine,
        nodes=place(plant_nodes), spans=place(plant_spans), areas=place(areas),
        streets=streets, hamlets=hamlets, street_names=pa.array(streets.names + hamlet_roads),
    )


def place_xy(xy: FloatArray, affine: Affine, work: CRS, out: CRS) -> FloatArray:
    """Local meters to the output CRS; rounded to 1 cm in the work CRS.

    Examples
    --------
    >>> place_xy(np.array([[10.0, 0.0]]), (0.0, 1.0, 500.0, 0.0), CRS(32632), CRS(32632))
    array([[500.,  10.]])
    """
    cos, sin, x0, y0 = affine
    u, v = xy[:, 0], xy[:, 1]
    placed: FloatArray = np.column_stack(
        [x0 + u * cos - v * sin, y0 + u * sin + v * cos]).round(2)
    if work == out:
        return placed
    x, y = transformer(work, out).transform(placed[:, 0], placed[:, 1])
    return np.column_stack([x, y]).astype(np.float64)


def to_output(geoms: ObjArray, affine: Affine, work: CRS, out: CRS) -> ObjArray:
    """Geometries from local meters to the output CRS (see :func:`place_xy`).

    Examples
    --------
    >>> to_output(np.array([shapely.Point(1, 2)]), (1.0, 0.0, 0.0, 0.0), CRS(32632),
    ...           CRS(32632))[0].wkt
    'POINT (1 2)'
    """
    return np.asarray(shapely.transform(geoms, lambda xy: place_xy(xy, affine, work, out)),
                      dtype=object)


def street_lines(city: City) -> gpd.GeoDataFrame:
    """The city's ``streets`` context layer, in its output CRS: one line per street of the
    grid (its segments joined, east-west streets first), then one per hamlet road, each
    with the ``name`` the premises' addresses use. Drawn from the layout alone: no random
    draw, so nothing else of the city changes.

    Examples
    --------
    >>> lines = street_lines(plan_city(2000, None, 1, DEFAULT_CRS, DEFAULT_CENTER))
    >>> lines["name"].iloc[0], sorted(set(lines.geom_type)), lines.crs.to_epsg()
    ('Lindenstraße', ['LineString'], 32632)
    """
    streets, hamlets = city.streets, city.hamlets
    order = np.argsort(streets.street, kind="stable")
    segments = np.asarray(shapely.linestrings(np.stack([streets.start, streets.end],
                                                        axis=1)[order]), dtype=object)
    grid = shapely.line_merge(shapely.multilinestrings(segments, indices=streets.street[order]))
    ends = np.stack([hamlets.center - hamlets.direction * hamlets.half_length[:, None],
                     hamlets.center + hamlets.direction * hamlets.half_length[:, None]], axis=1)
    roads = shapely.linestrings(ends) if len(ends) else np.empty(0, dtype=object)
    geoms = np.concatenate([np.asarray(grid, dtype=object), np.asarray(roads, dtype=object)])
    names = city.street_names.to_numpy(zero_copy_only=False).astype(object)
    return gpd.GeoDataFrame(
        {"name": names[:len(geoms)]},
        geometry=gpd.GeoSeries(to_output(geoms, city.affine, city.work_crs, city.crs),
                               crs=city.crs), crs=city.crs)


def street_edges(grid: FloatArray, margin: int, plant_cols: int, plant_rows: int, tile_side: int,
                 tiles_x: int, tile_planned: BoolArray, half_extent: float) -> Streets:
    """Every street segment of the city, with what premises along it need.

    Examples
    --------
    >>> grid = np.stack(np.meshgrid(np.arange(3) * 100.0, np.arange(3) * 100.0), axis=-1)
    >>> streets = street_edges(grid, 1, 1, 1, 1, 1, np.array([False]), 150.0)
    >>> len(streets.start), int(streets.served.sum()), streets.names[:2]
    (12, 0, ['Lindenstraße', 'Eichenstraße'])
    """
    grid_rows, grid_cols = grid.shape[:2]
    row, col = np.divmod(np.arange(grid_cols * grid_rows), grid_cols)
    right = col < grid_cols - 1
    up = row < grid_rows - 1
    start = np.concatenate([np.flatnonzero(right), np.flatnonzero(up)])
    end = np.concatenate([np.flatnonzero(right) + 1, np.flatnonzero(up) + grid_cols])
    horizontal = np.arange(len(start)) < right.sum()
    flat = grid.reshape(-1, 2)
    # a street is served when both ends are in working tiles of the plant
    plant_col, plant_row = col - margin, row - margin
    in_plant = (plant_col >= 0) & (plant_col < plant_cols) & (plant_row >= 0) & \
        (plant_row < plant_rows)
    tile = np.where(in_plant, (np.clip(plant_row, 0, plant_rows - 1) // tile_side) * tiles_x
                    + np.clip(plant_col, 0, plant_cols - 1) // tile_side, 0)
    working = in_plant & ~tile_planned[tile]
    mid = (flat[start] + flat[end]) / 2
    return Streets(
        start=flat[start], end=flat[end],
        street=np.where(horizontal, row[start], grid_rows + col[start]).astype(np.int64),
        first_house=np.where(horizontal, col[start], row[start]).astype(np.int64) * 40 + 1,
        radius=np.minimum(1.0, np.hypot(mid[:, 0], mid[:, 1]) / half_extent),
        served=working[start] & working[end],
        names=street_names(grid_cols, grid_rows),
    )


def street_names(grid_cols: int, grid_rows: int) -> list[str]:
    """Names for the east-west streets (one per grid row), then the north-south ones.

    Examples
    --------
    >>> street_names(1, 2)
    ['Lindenstraße', 'Eichenstraße', 'Lindenweg']
    """
    pool = [f"{prefix}{base}" for prefix in _PREFIXES for base in _STREET_BASES]

    def names(count: int, suffix: str) -> list[str]:
        return [f"{pool[i]}{suffix}" if i < len(pool) else f"Straße {i + 1}{suffix[:1]}"
                for i in range(count)]

    return names(grid_rows, "straße") + names(grid_cols, "weg")


def plan_hamlets(rng: np.random.Generator, grid: FloatArray, premises: int) -> Hamlets:
    """Far hamlets: short roads well beyond the plant's reach (at least 700 m off the grid).

    Examples
    --------
    >>> grid = np.stack(np.meshgrid(np.arange(3) * 100.0, np.arange(3) * 100.0), axis=-1)
    >>> hamlets = plan_hamlets(np.random.default_rng(0), grid, 6000)
    >>> len(hamlets.center), bool((np.abs(hamlets.center - 100) > 700).any(axis=1).all())
    (2, True)
    """
    count = max(1, round(premises * FAR_SHARE / 120))
    low, high = grid.reshape(-1, 2).min(axis=0), grid.reshape(-1, 2).max(axis=0)
    size = high - low
    gap = rng.uniform(700.0, 700.0 + min(0.15 * size.max(), 4000.0), count)
    # a point on the perimeter of the grid's box grown by `gap`
    width, height = size[0] + 2 * gap, size[1] + 2 * gap
    along = rng.uniform(0.0, 1.0, count) * 2 * (width + height)
    sides = [along < width, along < width + height, along < 2 * width + height]
    x = np.select(sides, [along, width, 2 * width + height - along], 0.0)
    y = np.select(sides, [0.0, along - width, height], 2 * (width + height) - along)
    centers = np.column_stack([low[0] - gap + x, low[1] - gap + y])
    theta = rng.uniform(0, np.pi, count)
    return Hamlets(
        center=centers,
        direction=np.column_stack([np.cos(theta), np.sin(theta)]),
        half_length=rng.uniform(80.0, 200.0, count),
        served=np.zeros(count, bool),
    )


def plan_rural_runs(rng: np.random.Generator, nodes: gpd.GeoDataFrame, hamlets: Hamlets,
                    ) -> tuple[Hamlets, gpd.GeoDataFrame | None, gpd.GeoDataFrame | None]:
    """Serve some hamlets by a long run from the plant; their new nodes and spans (None: none).

    A served hamlet gets a splitter (1:16 or 1:32) at the end of its road
    nearer the plant, a feeder cable from the nearest working plant node (not
    a core) to it, and a distribution cable along the road to a handhole at
    the other end. Ids are ``nw``/``sw`` + number, apart from the plant's.

    Examples
    --------
    >>> grid = np.stack(np.meshgrid(np.arange(3) * 100.0, np.arange(3) * 100.0), axis=-1)
    >>> hamlets = plan_hamlets(np.random.default_rng(0), grid, 24000)
    >>> plant = gpd.GeoDataFrame({"node_id": ["n0", "n1"], "kind": ["core", "splice"],
    ...                           "status": ["in_service"] * 2},
    ...                          geometry=shapely.points([[0, 0], [200, 200]]))
    >>> hamlets, new_nodes, new_spans = plan_rural_runs(np.random.default_rng(1), plant, hamlets)
    >>> int(hamlets.served.sum()) * 2 == len(new_nodes) == len(new_spans)
    True
    >>> sorted(set(new_spans["from_node"]) & {"n0", "n1"})
    ['n1']
    """
    count = len(hamlets.center)
    served = rng.random(count) < RURAL_RUN_SHARE
    ratio = rng.choice([16, 32], count)
    fibers = rng.choice([12, 24, 48], count)
    year = rng.integers(2015, 2025, count)
    aerial = rng.random(count) < 0.6
    pick = np.flatnonzero(served)
    hamlets = hamlets._replace(served=served)
    working = nodes.index[(nodes["status"] == "in_service") & (nodes["kind"] != "core")]
    if len(working) == 0 or len(pick) == 0:  # nothing to run from, or nothing to serve
        return hamlets._replace(served=np.zeros(count, bool)), None, None
    plant_xy = shapely.get_coordinates(nodes.geometry.to_numpy()[working])
    ends = np.stack([hamlets.center[pick] - hamlets.direction[pick] * hamlets.half_length[pick,
                                                                                         None],
                     hamlets.center[pick] + hamlets.direction[pick] * hamlets.half_length[pick,
                                                                                         None]],
                    axis=1)  # (k, 2 ends, 2)
    # the road's end nearer the plant takes the splitter, fed from the node nearest to it
    dist, nearest = cKDTree(plant_xy).query(ends.reshape(-1, 2))
    near_end = dist.reshape(-1, 2).argmin(axis=1)
    attach = nearest.reshape(-1, 2)[np.arange(len(pick)), near_end].astype(np.int64)
    splitter_xy = ends[np.arange(len(pick)), near_end]
    far_xy = ends[np.arange(len(pick)), 1 - near_end]
    k = len(pick)
    new_ids = make_ids("nw", 2 * k)
    new_nodes = gpd.GeoDataFrame(
        {
            "node_id": new_ids,
            "kind": np.array(["splitter"] * k + ["handhole"] * k, dtype=object),
            "status": np.full(2 * k, "in_service", dtype=object),
            "name": np.array([f"Weiler {number + 1}" for number in pick] + [None] * k,
                             dtype=object),
            "split_ratio": pd.array(np.concatenate([ratio[pick], np.full(k, np.nan)]),
                                    dtype="Int64"),
        },
        geometry=shapely.points(np.concatenate([splitter_xy, far_xy])),
    )
    # node indexes: the plant's working nodes first, then the new ones
    node_ids = np.concatenate([nodes["node_id"].to_numpy()[working], new_ids]).astype(object)
    n_work = len(working)
    feeder = SpanBatch(
        from_node=attach.astype(np.int64), to_node=n_work + np.arange(k),
        geometry=np.asarray(shapely.linestrings(np.stack([plant_xy[attach], splitter_xy], 1)),
                            dtype=object),
        status="in_service", fiber_count=fibers[pick], fibers_used=np.minimum(4, fibers[pick]),
        placement=np.where(aerial[pick], "aerial", "underground"), duct=None,
        owner="Stadtwerke Netz", install_year=year[pick])
    road = SpanBatch(
        from_node=n_work + np.arange(k), to_node=n_work + k + np.arange(k),
        geometry=np.asarray(shapely.linestrings(np.stack([splitter_xy, far_xy], 1)),
                            dtype=object),
        status="in_service", fiber_count=24, fibers_used=2,
        placement=np.where(aerial[pick], "aerial", "underground"), duct=None,
        owner="Stadtwerke Netz", install_year=year[pick])
    spans = span_frame([feeder, road], node_ids)
    spans["span_id"] = make_ids("sw", 2 * k)
    return hamlets, new_nodes, spans


def plan_areas(rng: np.random.Generator, grid: FloatArray, hamlets: Hamlets) -> gpd.GeoDataFrame:
    """District polygons: Voronoi cells of jittered seeds, clipped to a box around everything.

    Examples
    --------
    >>> grid = np.stack(np.meshgrid(np.arange(3) * 100.0, np.arange(3) * 100.0), axis=-1)
    >>> hamlets = plan_hamlets(np.random.default_rng(0), grid, 6000)
    >>> plan_areas(np.random.default_rng(0), grid, hamlets)["name"].tolist()
    ['Altstadt', 'Nordend', 'Westend', 'Ostend']
    """
    pts = np.concatenate([grid.reshape(-1, 2), hamlets.center])
    low, high = pts.min(axis=0) - 600.0, pts.max(axis=0) + 600.0
    grid_low, grid_high = grid.reshape(-1, 2).min(axis=0), grid.reshape(-1, 2).max(axis=0)
    seeds_x = int(np.clip(round(grid.shape[1] / 25), 2, 6))
    seeds_y = int(np.clip(round(grid.shape[0] / 25), 2, 6))
    frac_x, frac_y = np.meshgrid((np.arange(seeds_x) + 0.5) / seeds_x,
                                 (np.arange(seeds_y) + 0.5) / seeds_y)
    frac = np.column_stack([frac_x.ravel(), frac_y.ravel()])
    frac += rng.uniform(-0.2, 0.2, frac.shape) / np.array([seeds_x, seeds_y])
    seeds = grid_low + frac * (grid_high - grid_low)
    box = shapely.box(*low, *high)
    cells = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=box, ordered=True)
    polys = shapely.intersection(np.asarray(shapely.get_parts(cells), dtype=object), box)
    count = len(polys)
    names = [_DISTRICTS[i] if i < len(_DISTRICTS) else f"Bezirk {i + 1}" for i in range(count)]
    return gpd.GeoDataFrame({"area_id": make_ids("a", count),
                             "name": np.array(names, dtype=object)}, geometry=polys)
