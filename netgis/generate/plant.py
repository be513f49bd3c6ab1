"""The plant of a synthetic city: cabinet districts, distribution trees, feeder rings.

The plant covers the inner part of the street grid, cut into square tiles of
``tile_side`` x ``tile_side`` street corners (cabinet districts). A tile's
root corner holds its cabinet, or a core (central office) in some tiles.
Distribution trees span each tile's streets; feeder rings run from each core
through its cabinets and back; spurs feed the planned tiles. Everything is
in local meters (the grid's coordinates); :mod:`netgis.generate.city` places
it on the earth.

Plant corners are numbered row by row: corner ``row * plant_cols + col``
lies at ``grid[row + margin, col + margin]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, minimum_spanning_tree

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
ObjArray = npt.NDArray[np.object_]
#: A column of a span batch: one value per span, or one value for all of them.
IntColumn = npt.NDArray[Any] | int
TextColumn = npt.NDArray[Any] | str

_FIBER_SIZES = np.array([12, 24, 48, 72, 96, 144, 192, 288, 432])
_OWNERS = np.array(["Stadtwerke Netz", "RegioFaser", "Telekom IRU"], dtype=object)
_OWNER_P = [0.85, 0.1, 0.05]
_CORE_NAMES = ("Mitte", "Nord", "Süd", "Ost", "West", "Nordost", "Nordwest", "Südost", "Südwest")


@dataclass(frozen=True)
class SpanBatch:
    """Spans of one kind (feeder, tree, mesh, retired...), column by column.

    ``from_node`` and ``to_node`` are plant corner numbers (poles follow the
    corners); ``duct`` numbers the batch's ducts from 0 (None: no ducts);
    ``install_year`` -1 means unknown.
    """

    from_node: IntArray
    to_node: IntArray
    geometry: ObjArray
    status: TextColumn
    fiber_count: IntColumn
    fibers_used: IntColumn
    placement: TextColumn
    duct: IntArray | None
    owner: TextColumn
    install_year: IntColumn


class Plant(NamedTuple):
    """The plant in local meters, and which tiles are planned (their streets get no service)."""

    nodes: gpd.GeoDataFrame
    spans: gpd.GeoDataFrame
    tile_planned: BoolArray


def plan_plant(rng: np.random.Generator, grid: FloatArray, *, tile_side: int, tiles_x: int,
               tiles_y: int, margin: int, premises_per_node: float) -> Plant:
    """Nodes and spans of the plant, in local meters.

    Parameters
    ----------
    rng
        The city's random stream (the draws happen in a fixed order).
    grid
        Street corners, (rows, cols, 2) local meters.
    tile_side, tiles_x, tiles_y
        Corners per tile side and tiles across and up the plant.
    margin
        Rows and columns of the grid around the plant (its unfibered fringe).
    premises_per_node
        Expected premises per street corner, to size the cables.

    Examples
    --------
    >>> grid = np.stack(np.meshgrid(np.arange(6) * 120.0, np.arange(6) * 120.0), axis=-1)
    >>> plant = plan_plant(np.random.default_rng(0), grid, tile_side=2, tiles_x=2, tiles_y=2,
    ...                    margin=1, premises_per_node=3.0)
    >>> sorted(set(plant.nodes["kind"]) & {"core", "cabinet"})
    ['cabinet', 'core']
    """
    plant_cols, plant_rows = tiles_x * tile_side, tiles_y * tile_side
    n_plant = plant_cols * plant_rows
    node_row, node_col = np.divmod(np.arange(n_plant), plant_cols)
    xy = grid[node_row + margin, node_col + margin]
    tile = (node_row // tile_side) * tiles_x + node_col // tile_side
    n_tiles = tiles_x * tiles_y
    tile_col, tile_row = np.arange(n_tiles) % tiles_x, np.arange(n_tiles) // tiles_x
    centre = tile_side // 2
    root = (tile_row * tile_side + centre) * plant_cols + tile_col * tile_side + centre
    tile_uv = np.column_stack([tile_col + 0.5 - tiles_x / 2, tile_row + 0.5 - tiles_y / 2])
    tile_r = np.hypot(*tile_uv.T) / max(1.0, np.hypot(tiles_x, tiles_y) / 2)

    # cores spread over the city, planned tiles on its border
    n_cores = max(1, round(n_tiles / 120))
    core_cols = min(tiles_x, max(1, round(np.sqrt(n_cores * tiles_x / tiles_y))))
    core_rows = min(tiles_y, max(1, -(-n_cores // core_cols)))
    core_col = ((np.arange(core_cols) + 0.5) * tiles_x / core_cols).astype(int)
    core_row = ((np.arange(core_rows) + 0.5) * tiles_y / core_rows).astype(int)
    core_tiles = np.unique((core_row[:, None] * tiles_x + core_col[None, :]).ravel())
    is_core_tile = np.zeros(n_tiles, bool)
    is_core_tile[core_tiles] = True
    border = (tile_col == 0) | (tile_col == tiles_x - 1) | (tile_row == 0) | \
        (tile_row == tiles_y - 1)
    candidates = np.flatnonzero(border & ~is_core_tile)
    tile_planned = np.zeros(n_tiles, bool)
    if n_tiles >= 3 and len(candidates):
        n_planned = max(1, round(0.1 * len(candidates)))
        tile_planned[rng.choice(candidates, n_planned, replace=False)] = True
    tile_year = np.minimum(2024, 2006 + rng.binomial(18, 0.45, n_tiles))
    tile_aerial = np.clip(0.85 * tile_r - 0.15 + rng.normal(0, 0.1, n_tiles), 0.0, 0.85)
    tile_owner = rng.choice(len(_OWNERS), n_tiles, p=_OWNER_P)

    # distribution trees: a spanning tree per tile, cheap trunk row, costly cross streets
    right = (node_col < plant_cols - 1) & ((node_col + 1) // tile_side == node_col // tile_side)
    up = (node_row < plant_rows - 1) & ((node_row + 1) // tile_side == node_row // tile_side)
    edge_from = np.concatenate([np.flatnonzero(right), np.flatnonzero(up)])
    edge_to = np.concatenate([np.flatnonzero(right) + 1, np.flatnonzero(up) + plant_cols])
    horizontal = np.arange(len(edge_from)) < right.sum()
    cross_street = horizontal & (node_row[edge_from] % tile_side != centre)
    weight = rng.uniform(1.0, 2.0, len(edge_from)) + 0.8 * cross_street
    mst = minimum_spanning_tree(coo_matrix((weight, (edge_from, edge_to)),
                                           shape=(n_plant, n_plant))).tocoo()
    in_tree = np.zeros(len(edge_from), bool)
    tree_key = np.minimum(mst.row, mst.col).astype(np.int64) * n_plant + np.maximum(mst.row,
                                                                                   mst.col)
    in_tree[np.isin(edge_from.astype(np.int64) * n_plant + edge_to, tree_key)] = True
    super_root = n_plant  # a virtual root joining all tile roots, for one search
    rows = np.concatenate([mst.row, np.full(n_tiles, super_root)])
    cols = np.concatenate([mst.col, root])
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_plant + 1, n_plant + 1))
    _, pred = breadth_first_order(graph.tocsr(), super_root, directed=False,
                                  return_predecessors=True)
    parent = pred[:n_plant].astype(np.int64)
    is_root = parent == super_root
    depth, subtree = depth_and_subtree(parent, is_root)
    children = np.bincount(parent[~is_root], minlength=n_plant)

    # feeder first: lower span ids win ties where a ring shares a street with a tree span
    batches = plan_feeder(rng, grid, margin=margin, plant_cols=plant_cols, root=root,
                          tile_uv=tile_uv, is_core_tile=is_core_tile, tile_planned=tile_planned)
    node_status = np.where(tile_planned[tile], "planned", "in_service").astype(object)

    # tree spans, parent -> child
    child = np.flatnonzero(~is_root)
    child_tile = tile[child]
    aerial = rng.random(len(child)) < tile_aerial[child_tile]
    placement = np.where(aerial, "aerial",
                         np.where(rng.random(len(child)) < 0.08, "buried", "underground"))
    demand = np.ceil(subtree[child] * premises_per_node * 1.3)
    fiber_count = _FIBER_SIZES[np.minimum(np.searchsorted(_FIBER_SIZES, demand),
                                          len(_FIBER_SIZES) - 1)]
    # binomial before integers: the draws keep their order
    fibers_used = np.minimum(fiber_count, rng.binomial(
        np.ceil(subtree[child] * premises_per_node).astype(np.int64), 0.35)
        + rng.integers(0, 3, len(child)))
    planned = tile_planned[child_tile]
    # keyword arguments are evaluated in the order written: it is the order of the draws
    batches.append(SpanBatch(
        from_node=parent[child], to_node=child,
        geometry=_lines(np.stack([xy[parent[child]], xy[child]], axis=1)),
        status=np.where(planned, "planned", "in_service"), fiber_count=fiber_count,
        fibers_used=np.where(planned, 0, fibers_used), placement=placement, duct=None,
        owner=_OWNERS[tile_owner[child_tile]],
        install_year=np.where(planned, -1, np.minimum(
            2025, tile_year[child_tile] + rng.integers(0, 3, len(child)))),
    ))

    # street links that close loops in the distribution layer: densely meshed downtown,
    # a few in the suburbs (in service), planned elsewhere
    spare = np.flatnonzero(~in_tree & ~tile_planned[tile[edge_from]])
    spare_r = tile_r[tile[edge_from[spare]]]
    mesh_share = np.where(spare_r < 0.35, 0.3, np.where(spare_r < 0.7, 0.1, 0.02))
    mesh = spare[rng.random(len(spare)) < mesh_share]
    rest = np.setdiff1d(spare, mesh)
    to_plan = rng.choice(rest, min(len(rest), max(1, round(0.015 * len(spare)))), replace=False)
    for pick, status in ((mesh, "in_service"), (np.sort(to_plan), "planned")):
        n_links = len(pick)
        batches.append(SpanBatch(
            from_node=edge_from[pick], to_node=edge_to[pick],
            geometry=_lines(np.stack([xy[edge_from[pick]], xy[edge_to[pick]]], axis=1)),
            status=status, fiber_count=rng.choice([24, 48, 96], n_links),
            fibers_used=0 if status == "planned" else rng.integers(0, 12, n_links),
            placement="underground", duct=None, owner=_OWNERS[0],
            install_year=-1 if status == "planned" else rng.integers(2012, 2025, n_links),
        ))

    # retired aerial detours: an old pole beside a working tree span, with its two spans
    working = np.flatnonzero(~planned)
    pick = np.sort(rng.choice(working, max(1, round(0.005 * len(working))), replace=False))
    upper, lower = parent[child[pick]], child[pick]
    along = xy[lower] - xy[upper]
    normal = np.column_stack([-along[:, 1], along[:, 0]]) / np.hypot(along[:, 0],
                                                                     along[:, 1])[:, None]
    pole_xy = (xy[upper] + xy[lower]) / 2 + 4.0 * normal
    pole = n_plant + np.arange(len(pick))
    n_poles = len(pick)
    for (start, end), line in (((upper, pole), np.stack([xy[upper], pole_xy], axis=1)),
                               ((pole, lower), np.stack([pole_xy, xy[lower]], axis=1))):
        batches.append(SpanBatch(
            from_node=start, to_node=end, geometry=_lines(line), status="retired",
            fiber_count=rng.choice([12, 24], n_poles), fibers_used=0, placement="aerial",
            duct=None, owner=_OWNERS[0], install_year=rng.integers(1986, 2004, n_poles),
        ))

    # node kinds: cabinets and cores at tile roots, splices where the tree branches
    in_aerial = np.zeros(n_plant, bool)
    in_aerial[child] = aerial
    kind = np.where(children >= 2, "splice", np.where(in_aerial, "pole", "handhole")).astype(object)
    # splitter cascades: a first split near the cabinet (1:4; 1:8 in the rural outskirts)
    # and a second one deeper in the tree (1:8; 1:32 in the outskirts, where a long
    # run behind both leaves some premises out of a class B+ budget)
    branch = kind == "splice"
    # one tree level each, so that no path from the cabinet passes more than two splitters
    first = branch & (depth == 1) & (rng.random(n_plant) < 0.9)
    second = branch & (depth == 3) & (rng.random(n_plant) < 0.6)
    rural = tile_r[tile] > 0.7
    split_ratio = np.full(n_plant, np.nan)
    split_ratio[first] = np.where(rural[first], 8, 4)
    split_ratio[second] = np.where(rural[second], rng.choice([16, 32], n_plant)[second], 8)
    kind[first | second] = "splitter"
    kind[root] = np.where(is_core_tile, "core", "cabinet")
    name = np.full(n_plant, None, dtype=object)
    name[root] = [f"CAB-{number + 1:04d}" for number in range(n_tiles)]
    name[root[core_tiles]] = [
        f"CO {_CORE_NAMES[number]}" if number < len(_CORE_NAMES) else f"CO {number + 1}"
        for number in range(len(core_tiles))
    ]
    nodes = gpd.GeoDataFrame(
        {
            "node_id": make_ids("n", n_plant + n_poles),
            "kind": np.concatenate([kind, np.full(n_poles, "pole", dtype=object)]),
            "status": np.concatenate([node_status, np.full(n_poles, "retired", dtype=object)]),
            "name": np.concatenate([name, np.full(n_poles, None, dtype=object)]),
            "split_ratio": pd.array(np.concatenate([split_ratio, np.full(n_poles, np.nan)]),
                                    dtype="Int64"),
        },
        geometry=shapely.points(np.concatenate([xy, pole_xy])),
    )
    return Plant(nodes, span_frame(batches, nodes["node_id"].to_numpy()), tile_planned)


def _lines(coords: FloatArray) -> ObjArray:
    """One two-point line per row of ``coords`` (n, 2, 2)."""
    return np.asarray(shapely.linestrings(coords), dtype=object)


def depth_and_subtree(parent: IntArray, is_root: BoolArray) -> tuple[IntArray, FloatArray]:
    """Depth below the tile root and size of the subtree of every tree node, level by level.

    Examples
    --------
    >>> depth, subtree = depth_and_subtree(np.array([9, 0, 1, 0]),
    ...                                    np.array([True, False, False, False]))
    >>> depth.tolist(), subtree.tolist()
    ([0, 1, 2, 1], [4.0, 2.0, 1.0, 1.0])
    """
    n_nodes = len(parent)
    depth = np.where(is_root, 0, -1)
    level = 0
    while (depth < 0).any():
        below = (depth < 0) & (depth[np.where(is_root, 0, parent)] == level)
        below &= ~is_root
        if not below.any():
            break
        level += 1
        depth[below] = level
    subtree = np.ones(n_nodes)
    for at_depth in range(level, 0, -1):
        at = np.flatnonzero(depth == at_depth)
        subtree += np.bincount(parent[at], weights=subtree[at], minlength=n_nodes)[:n_nodes]
    return depth, subtree


def plan_feeder(rng: np.random.Generator, grid: FloatArray, *, margin: int, plant_cols: int,
                root: IntArray, tile_uv: FloatArray, is_core_tile: BoolArray,
                tile_planned: BoolArray) -> list[SpanBatch]:
    """Feeder rings from each core through its cabinets and back; spurs to planned tiles.

    Cabinets join the ring of their nearest core, in angle order around it
    (about six per ring). Some rings are still open (their closing span is
    planned); some consecutive spans, and some pairs of ring exits at a
    core, share one duct so that they fail together.

    Examples
    --------
    >>> grid = np.stack(np.meshgrid(np.arange(6) * 120.0, np.arange(6) * 120.0), axis=-1)
    >>> uv = np.array([[-0.5, -0.5], [0.5, -0.5], [-0.5, 0.5], [0.5, 0.5]])
    >>> rings = plan_feeder(np.random.default_rng(0), grid, margin=1, plant_cols=4,
    ...                     root=np.array([5, 7, 13, 15]), tile_uv=uv,
    ...                     is_core_tile=np.array([True, False, False, False]),
    ...                     tile_planned=np.zeros(4, bool))
    >>> rings[0].from_node.tolist(), rings[0].to_node.tolist()
    ([5, 7, 15, 13], [7, 15, 13, 5])
    """
    cores = np.flatnonzero(is_core_tile)
    cabinets = np.flatnonzero(~is_core_tile & ~tile_planned)
    out: list[SpanBatch] = []
    if len(cabinets):
        distance = np.hypot(*(tile_uv[cabinets, None, :] - tile_uv[None, cores, :])
                            .transpose(2, 0, 1))
        home = np.argmin(distance, axis=1)
        offset = tile_uv[cabinets] - tile_uv[cores[home]]
        angle = np.arctan2(offset[:, 1], offset[:, 0])
        order = np.lexsort((angle, home))
        cabinets, home = cabinets[order], home[order]
        per_core = np.bincount(home, minlength=len(cores))
        n_rings = np.maximum(1, np.round(per_core / 6)).astype(int)
        start = np.concatenate([[0], np.cumsum(per_core)[:-1]])
        rank = np.arange(len(cabinets)) - start[home]
        ring_base = np.concatenate([[0], np.cumsum(n_rings)[:-1]])
        ring = ring_base[home] + rank * n_rings[home] // per_core[home]
        first = np.r_[True, ring[1:] != ring[:-1]]
        last = np.r_[ring[1:] != ring[:-1], True]
        ring_core = cores[home[first]]
        # spans into each cabinet (from the core or the previous cabinet), then the closing ones
        source_tile = np.where(first, cores[home], np.r_[0, cabinets[:-1]])
        from_tile = np.concatenate([source_tile, cabinets[last]])
        to_tile = np.concatenate([cabinets, ring_core])
        closing = np.r_[np.zeros(len(cabinets), bool), np.ones(last.sum(), bool)]
        span_ring = np.concatenate([ring, ring[last]])
        ring_size = np.bincount(ring)
        open_ring = (ring_size >= 2) & (rng.random(len(ring_size)) < 0.15)
        if not open_ring.any() and (ring_size >= 2).sum() >= 2:
            open_ring[np.flatnonzero(ring_size >= 2)[-1]] = True
        status = np.where(closing & open_ring[span_ring], "planned", "in_service")
        # ducts: one per span, some shared by consecutive spans or by both exits of a core
        n_spans = len(from_tile)
        shares_previous = ~first & (rng.random(len(cabinets)) < 0.15)
        duct = np.concatenate([np.cumsum(~shares_previous) - 1,
                               (~shares_previous).sum() + np.arange(last.sum())])
        shared_exit = rng.random(last.sum()) < 0.3
        if not shared_exit.any() and not shares_previous.any():  # keep at least one shared duct
            shared_exit[0] = True
        duct[len(cabinets) + np.flatnonzero(shared_exit)] = duct[np.flatnonzero(first)[shared_exit]]
        out.append(SpanBatch(
            from_node=root[from_tile], to_node=root[to_tile],
            geometry=street_paths(grid, margin, plant_cols, root[from_tile], root[to_tile],
                                  closing),
            status=status, fiber_count=rng.choice([144, 288, 432], n_spans, p=[0.5, 0.35, 0.15]),
            fibers_used=np.where(status == "planned", 0, rng.integers(20, 144, n_spans)),
            placement=np.where(rng.random(n_spans) < 0.1, "buried", "underground"),
            duct=duct, owner=_OWNERS[0],
            install_year=np.where(status == "planned", -1, rng.integers(1998, 2016, n_spans)),
        ))
    spurs = np.flatnonzero(tile_planned)
    if len(spurs):
        live = np.flatnonzero(~tile_planned)
        distance = np.hypot(*(tile_uv[spurs, None, :] - tile_uv[None, live, :]).transpose(2, 0, 1))
        source = live[np.argmin(distance, axis=1)]
        out.append(SpanBatch(
            from_node=root[source], to_node=root[spurs],
            geometry=street_paths(grid, margin, plant_cols, root[source], root[spurs],
                                  np.zeros(len(spurs), bool)),
            status="planned", fiber_count=144, fibers_used=0, placement="underground",
            duct=None, owner=_OWNERS[0], install_year=-1,
        ))
    return out


def street_paths(grid: FloatArray, margin: int, plant_cols: int, start: IntArray, end: IntArray,
                 vertical_first: BoolArray) -> ObjArray:
    """Lines along the streets from plant corner ``start`` to ``end``: one leg per direction.

    Each path runs along its start's row, then up or down its end's column
    (or the other way round where ``vertical_first``), through every corner.

    Examples
    --------
    >>> grid = np.stack(np.meshgrid(np.arange(4) * 100.0, np.arange(4) * 100.0), axis=-1)
    >>> street_paths(grid, 0, 4, np.array([0]), np.array([5]), np.array([False]))[0].wkt
    'LINESTRING (0 0, 100 0, 100 100)'
    """
    row_a, col_a = np.divmod(start, plant_cols)
    row_b, col_b = np.divmod(end, plant_cols)
    steps_col, steps_row = np.abs(col_b - col_a), np.abs(row_b - row_a)
    size = steps_col + steps_row + 1  # corners on each path
    path = np.repeat(np.arange(len(start)), size)  # the path of every corner
    pos = np.arange(size.sum()) - np.repeat(np.cumsum(size) - size, size)  # place on its path
    dir_col, dir_row = np.sign(col_b - col_a)[path], np.sign(row_b - row_a)[path]
    col_a, row_a, col_b, row_b = col_a[path], row_a[path], col_b[path], row_b[path]
    steps_col, steps_row = steps_col[path], steps_row[path]
    # along the start's row first, then the end's column
    h_col = np.where(pos <= steps_col, col_a + dir_col * pos, col_b)
    h_row = np.where(pos <= steps_col, row_a, row_a + dir_row * (pos - steps_col))
    # along the start's column first, then the end's row
    v_col = np.where(pos <= steps_row, col_a, col_a + dir_col * (pos - steps_row))
    v_row = np.where(pos <= steps_row, row_a + dir_row * pos, row_b)
    vertical = vertical_first[path]
    col, row = np.where(vertical, v_col, h_col), np.where(vertical, v_row, h_row)
    return np.asarray(shapely.linestrings(grid[row + margin, col + margin], indices=path),
                      dtype=object)


def span_frame(batches: list[SpanBatch], node_ids: ObjArray) -> gpd.GeoDataFrame:
    """One spans frame from the batches, with contract dtypes (-1 year means unknown).

    Span ids follow the batches' order; duct ids number the batches' ducts in turn.

    Examples
    --------
    >>> line = shapely.linestrings([[[0, 0], [1, 0]]])
    >>> batch = SpanBatch(np.array([0]), np.array([1]), line, "in_service", 12, 0,
    ...                   "aerial", np.array([0]), "me", -1)
    >>> frame = span_frame([batch], np.array(["n0", "n1"], dtype=object))
    >>> frame[["span_id", "from_node", "duct_id", "install_year"]].values.tolist()
    [['s0', 'n0', 'd0', <NA>]]
    """
    sizes = [len(batch.from_node) for batch in batches]
    total = sum(sizes)

    def column(field: str) -> npt.NDArray[Any]:
        return np.concatenate([np.broadcast_to(np.asarray(getattr(batch, field), dtype=object),
                                               (size,))
                               for batch, size in zip(batches, sizes, strict=True)])

    duct = np.full(total, None, dtype=object)
    offset, pos = 0, 0
    for batch, size in zip(batches, sizes, strict=True):
        if batch.duct is not None:
            number = np.asarray(batch.duct, dtype=np.int64) + offset
            duct[pos:pos + size] = make_ids("d", int(number.max()) + 1)[number]
            offset = int(number.max()) + 1
        pos += size
    year = column("install_year").astype(np.int64)
    install_year = pd.array(year, dtype="Int64")
    install_year[year < 0] = pd.NA
    return gpd.GeoDataFrame(
        {
            "span_id": make_ids("s", total),
            "from_node": node_ids[column("from_node").astype(np.int64)],
            "to_node": node_ids[column("to_node").astype(np.int64)],
            "status": column("status"),
            "fiber_count": pd.array(column("fiber_count").astype(np.int64), dtype="Int64"),
            "fibers_used": pd.array(column("fibers_used").astype(np.int64), dtype="Int64"),
            "placement": column("placement"),
            "duct_id": duct,
            "owner": column("owner"),
            "install_year": install_year,
        },
        geometry=np.concatenate([np.asarray(batch.geometry, dtype=object) for batch in batches]),
    )


def make_ids(prefix: str, count: int, first: int = 0, total: int | None = None) -> ObjArray:
    """Ids ``prefix`` + zero-padded number, so that text order is creation order.

    Examples
    --------
    >>> make_ids("n", 11)[[0, 10]].tolist()
    ['n00', 'n10']
    """
    width = len(str(max(0, (count if total is None else total) - 1)))
    return np.char.add(prefix, np.char.zfill(np.arange(first, first + count).astype(str), width)
                       ).astype(object)
