"""A synthetic city fiber plant, deterministic by seed, for tests, demos and benchmarks.

The city is a jittered street grid (blocks of about 120 m) in a UTM CRS. The
plant covers the inner part of the grid, cut into cabinet districts (tiles):

- one or more *core* sites (central offices) sit at the root of some tiles;
- *feeder rings* run along the streets from each core through its cabinets
  and back, so every cabinet is 2-edge connected to a core, except where a
  ring is still open (its closing span is ``planned``);
- *distribution trees* run from each cabinet or core along the tile's streets
  (a trunk with laterals); branch points are splices (some splitters), other
  points poles (aerial spans) or handholes;
- feeder spans carry duct ids; some consecutive spans and some pairs of ring
  exits at a core share one duct, so they fail together;
- a few border tiles are ``planned`` (cabinet, tree and the spur that will
  feed it), some street links that would close loops are ``planned``, and a
  few old aerial detours with their poles are ``retired``.

Premises sit along every street of the grid (a few meters to ~60 m off the
street), including an unfibered fringe; a few percent form far clusters
(hamlets more than 150 m from any span). District polygons cover
everything. ``connected`` is set only where the street has working plant.

Premises are produced in fixed blocks of :data:`BLOCK` records, each with its
own random stream, so the data never depends on how it is batched: writing 10
million premises chunk by chunk gives the same records as generating them at
once, with memory bounded by the chunk size.

Examples
--------
>>> from netgis.generate import generate_city
>>> ds = generate_city(premises=2000, seed=1)
>>> len(ds.premises)
2000
>>> int((ds.nodes["kind"] == "core").sum())
1
>>> sorted(set(ds.spans["status"]))
['in_service', 'planned', 'retired']
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pyogrio  # imported before anything loads mod_spatialite (see storage)
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, minimum_spanning_tree

from netgis.dataset import Dataset
from netgis.errors import Problem, ValidationError
from netgis.geodesy import WGS84, transformer, utm_epsg
from netgis.io import (
    DIR_FORMATS,
    OGR_DRIVERS,
    atomic_dir,
    atomic_file,
    detect_format,
    write_layer_file,
)
from netgis.schema import LAYERS

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
ObjArray = npt.NDArray[np.object_]

#: Premises per random block; the data is the same whatever the write batch size.
BLOCK = 8192
#: Premises per written batch by default (bounds the memory of :func:`write_city`).
DEFAULT_CHUNK = 262_144
#: Where the city lies by default (lon, lat) and its CRS (the UTM zone there).
DEFAULT_CENTER = (8.7, 50.1)
DEFAULT_CRS = "EPSG:32632"
#: Share of premises in far unserved clusters.
FAR_SHARE = 0.04
#: Span extras (feeder, planned, retired) per distribution span, used to size the grid.
_EXTRA_SPANS = 0.05

_FIBER_SIZES = np.array([12, 24, 48, 72, 96, 144, 192, 288, 432])
_OWNERS = np.array(["Stadtwerke Netz", "RegioFaser", "Telekom IRU"], dtype=object)
_OWNER_P = [0.85, 0.1, 0.05]
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
_PREMISE_KINDS = pa.array(["residential", "business", "anchor"])
_CORE_NAMES = ("Mitte", "Nord", "Süd", "Ost", "West", "Nordost", "Nordwest", "Südost", "Südwest")


@dataclass(frozen=True)
class _City:
    """Everything premises need, fixed before any premise is drawn."""

    premises: int
    seed: int
    crs: CRS
    work_crs: CRS
    affine: tuple[float, float, float, float]  # cos, sin, x0, y0 from local to work CRS
    nodes: gpd.GeoDataFrame
    spans: gpd.GeoDataFrame
    areas: gpd.GeoDataFrame
    edge_a: FloatArray  # (E, 2) local street edge start
    edge_b: FloatArray
    edge_street: IntArray  # index into street_names
    edge_house0: IntArray  # first house number on the edge
    edge_r: FloatArray  # 0 at the city center, 1 at its rim
    edge_served: BoolArray  # working plant along this street
    street_names: pa.Array  # the streets, then one road name per far hamlet
    n_streets: int
    cluster_center: FloatArray  # (K, 2) local
    cluster_dir: FloatArray  # (K, 2) unit vectors
    cluster_half: FloatArray  # half length of the hamlet's road


def _check_args(premises: int, spans: int | None, seed: int) -> None:
    problems = []
    if premises < 1:
        problems.append(Problem("premises", None, "premises", f"must be >= 1, got {premises}"))
    if spans is not None and spans < 2:
        problems.append(Problem("spans", None, "spans", f"must be >= 2, got {spans}"))
    if seed < 0:
        problems.append(Problem("generate", None, "seed", f"must be >= 0, got {seed}"))
    if problems:
        raise ValidationError(problems)


def _plan(premises: int, spans: int | None, seed: int, crs: CRS | str | int,
          center: tuple[float, float]) -> _City:
    """Lay out streets, plant and areas; premises come later, block by block."""
    _check_args(premises, spans, seed)
    rng = np.random.default_rng([seed, 0])
    n_spans = spans if spans is not None else max(2, round(premises / 10))
    target = max(4, round(n_spans / (1 + _EXTRA_SPANS)))
    k = 8 if target >= 2000 else 6 if target >= 300 else 4 if target >= 48 else 2
    n_tiles = max(1, round(target / k**2))
    tx = max(1, round(np.sqrt(n_tiles)))
    ty = max(1, round(n_tiles / tx))
    px, py = tx * k, ty * k
    margin = max(1, round(0.05 * max(px, py)))
    cx, cy = px + 2 * margin, py + 2 * margin

    # streets: spacing 105..135 m, intersections jittered, centered on (0, 0)
    col_u = np.cumsum(rng.uniform(105.0, 135.0, cx))
    row_v = np.cumsum(rng.uniform(105.0, 135.0, cy))
    col_u -= col_u.mean()
    row_v -= row_v.mean()
    grid = np.empty((cy, cx, 2))
    grid[..., 0] = col_u[None, :]
    grid[..., 1] = row_v[:, None]
    grid += np.clip(rng.normal(0.0, 9.0, grid.shape), -20.0, 20.0)
    half_extent = max(col_u[-1] - col_u[0], row_v[-1] - row_v[0]) / 2 + 1.0

    plant = _plan_plant(rng, grid, k=k, tx=tx, ty=ty, margin=margin,
                        premises_per_node=premises * (1 - FAR_SHARE) / (cx * cy))
    edges = _street_edges(grid, margin, px, py, k, tx, plant["tile_planned"], half_extent)
    clusters = _plan_clusters(rng, grid, premises)
    n_streets = len(edges["street_names"])
    hamlets = [f"Weiler {c + 1}" for c in range(len(clusters["cluster_center"]))]
    edges["street_names"] = pa.array(edges["street_names"] + hamlets)
    angle = rng.uniform(-0.35, 0.35)

    try:
        out_crs = CRS(crs)
    except CRSError as exc:
        raise ValidationError([Problem("generate", None, "crs", f"unknown CRS: {exc}")]) from exc
    work = CRS.from_epsg(utm_epsg(*center))
    x0, y0 = transformer(WGS84, work).transform(*center)
    affine = (float(np.cos(angle)), float(np.sin(angle)), float(x0), float(y0))
    areas = _plan_areas(rng, grid, clusters)

    def place(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        geoms = _to_output(frame.geometry.to_numpy(), affine, work, out_crs)
        return gpd.GeoDataFrame(frame.drop(columns="geometry"),
                                geometry=gpd.GeoSeries(geoms, crs=out_crs), crs=out_crs)

    nodes, span_frame, area_frame = place(plant["nodes"]), place(plant["spans"]), place(areas)
    return _City(
        premises=premises, seed=seed, crs=out_crs, work_crs=work, affine=affine,
        nodes=nodes, spans=span_frame, areas=area_frame, n_streets=n_streets, **edges, **clusters,
    )


def _place_xy(xy: FloatArray, affine: tuple[float, float, float, float], work: CRS,
              out: CRS) -> FloatArray:
    """Local meters to the output CRS; rounded to 1 cm in the work CRS."""
    cos, sin, x0, y0 = affine
    u, v = xy[:, 0], xy[:, 1]
    placed: FloatArray = np.column_stack(
        [x0 + u * cos - v * sin, y0 + u * sin + v * cos]).round(2)
    if work == out:
        return placed
    x, y = transformer(work, out).transform(placed[:, 0], placed[:, 1])
    return np.column_stack([x, y]).astype(np.float64)


def _to_output(geoms: ObjArray, affine: tuple[float, float, float, float], work: CRS,
               out: CRS) -> ObjArray:
    """Geometries from local meters to the output CRS (see :func:`_place_xy`)."""
    return np.asarray(shapely.transform(geoms, lambda xy: _place_xy(xy, affine, work, out)),
                      dtype=object)


def _plan_plant(rng: np.random.Generator, grid: FloatArray, *, k: int, tx: int, ty: int,
                margin: int, premises_per_node: float) -> dict[str, Any]:
    """Nodes and spans of the plant, in local meters."""
    px, py = tx * k, ty * k
    n_plant = px * py
    jj, ii = np.divmod(np.arange(n_plant), px)  # plant node p = j * px + i
    xy = grid[jj + margin, ii + margin]
    tile = (jj // k) * tx + ii // k
    n_tiles = tx * ty
    ta, tb = np.arange(n_tiles) % tx, np.arange(n_tiles) // tx
    root = (tb * k + k // 2) * px + ta * k + k // 2
    tile_uv = np.column_stack([ta + 0.5 - tx / 2, tb + 0.5 - ty / 2])
    tile_r = np.hypot(*tile_uv.T) / max(1.0, np.hypot(tx, ty) / 2)

    # cores spread over the city, planned tiles on its border
    n_cores = max(1, round(n_tiles / 120))
    kx = min(tx, max(1, round(np.sqrt(n_cores * tx / ty))))
    ky = min(ty, max(1, -(-n_cores // kx)))
    core_a = ((np.arange(kx) + 0.5) * tx / kx).astype(int)
    core_b = ((np.arange(ky) + 0.5) * ty / ky).astype(int)
    core_tiles = np.unique((core_b[:, None] * tx + core_a[None, :]).ravel())
    is_core_tile = np.zeros(n_tiles, bool)
    is_core_tile[core_tiles] = True
    border = (ta == 0) | (ta == tx - 1) | (tb == 0) | (tb == ty - 1)
    candidates = np.flatnonzero(border & ~is_core_tile)
    tile_planned = np.zeros(n_tiles, bool)
    if n_tiles >= 3 and len(candidates):
        n_planned = max(1, round(0.1 * len(candidates)))
        tile_planned[rng.choice(candidates, n_planned, replace=False)] = True
    tile_year = np.minimum(2024, 2006 + rng.binomial(18, 0.45, n_tiles))
    tile_aerial = np.clip(0.85 * tile_r - 0.15 + rng.normal(0, 0.1, n_tiles), 0.0, 0.85)
    tile_owner = rng.choice(len(_OWNERS), n_tiles, p=_OWNER_P)

    # distribution trees: a spanning tree per tile, cheap trunk row, costly cross streets
    right = (ii < px - 1) & ((ii + 1) // k == ii // k)
    up = (jj < py - 1) & ((jj + 1) // k == jj // k)
    ea = np.concatenate([np.flatnonzero(right), np.flatnonzero(up)])
    eb = np.concatenate([np.flatnonzero(right) + 1, np.flatnonzero(up) + px])
    horizontal = np.arange(len(ea)) < right.sum()
    weight = rng.uniform(1.0, 2.0, len(ea)) + 0.8 * (horizontal & (jj[ea] % k != k // 2))
    mst = minimum_spanning_tree(coo_matrix((weight, (ea, eb)), shape=(n_plant, n_plant)))
    mst = mst.tocoo()
    in_tree = np.zeros(len(ea), bool)
    tree_key = np.minimum(mst.row, mst.col).astype(np.int64) * n_plant + np.maximum(mst.row,
                                                                                   mst.col)
    in_tree[np.isin(ea.astype(np.int64) * n_plant + eb, tree_key)] = True
    sroot = n_plant  # a virtual root joining all tile roots, for one search
    rows = np.concatenate([mst.row, np.full(n_tiles, sroot)])
    cols = np.concatenate([mst.col, root])
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_plant + 1, n_plant + 1))
    _, pred = breadth_first_order(graph.tocsr(), sroot, directed=False, return_predecessors=True)
    parent = pred[:n_plant].astype(np.int64)
    is_root = parent == sroot
    depth, subtree = _depth_and_subtree(parent, is_root)
    children = np.bincount(parent[~is_root], minlength=n_plant)

    # feeder first: lower span ids win ties where a ring shares a street with a tree span
    spans = _plan_feeder(rng, grid, margin=margin, px=px, root=root, tile_uv=tile_uv,
                         is_core_tile=is_core_tile, tile_planned=tile_planned)
    node_status = np.where(tile_planned[tile], "planned", "in_service").astype(object)

    # tree spans, parent -> child
    child = np.flatnonzero(~is_root)
    ctile = tile[child]
    aerial = rng.random(len(child)) < tile_aerial[ctile]
    placement = np.where(aerial, "aerial",
                         np.where(rng.random(len(child)) < 0.08, "buried", "underground"))
    demand = np.ceil(subtree[child] * premises_per_node * 1.3)
    count = _FIBER_SIZES[np.minimum(np.searchsorted(_FIBER_SIZES, demand), len(_FIBER_SIZES) - 1)]
    used = np.minimum(count, rng.binomial(np.ceil(subtree[child] * premises_per_node)
                                          .astype(np.int64), 0.35) + rng.integers(0, 3, len(child)))
    planned = tile_planned[ctile]
    spans.append(dict(
        from_i=parent[child], to_i=child,
        geometry=shapely.linestrings(np.stack([xy[parent[child]], xy[child]], axis=1)),
        status=np.where(planned, "planned", "in_service"), fiber_count=count,
        fibers_used=np.where(planned, 0, used), placement=placement, duct=None,
        owner=_OWNERS[tile_owner[ctile]],
        install_year=np.where(planned, -1,
                              np.minimum(2025, tile_year[ctile] + rng.integers(0, 3, len(child)))),
    ))

    # street links that close loops: meshed downtown (in service), planned elsewhere
    spare = np.flatnonzero(~in_tree & ~tile_planned[tile[ea]])
    central = tile_r[tile[ea[spare]]] < 0.35
    mesh = spare[central & (rng.random(len(spare)) < 0.12)]
    rest = np.setdiff1d(spare, mesh)
    plan = rng.choice(rest, min(len(rest), max(1, round(0.015 * len(spare)))), replace=False)
    for pick, status in ((mesh, "in_service"), (np.sort(plan), "planned")):
        n = len(pick)
        spans.append(dict(
            from_i=ea[pick], to_i=eb[pick],
            geometry=shapely.linestrings(np.stack([xy[ea[pick]], xy[eb[pick]]], axis=1)),
            status=status, fiber_count=rng.choice([24, 48, 96], n),
            fibers_used=0 if status == "planned" else rng.integers(0, 12, n),
            placement="underground", duct=None, owner=_OWNERS[0],
            install_year=-1 if status == "planned" else rng.integers(2012, 2025, n),
        ))

    # retired aerial detours: an old pole beside a working tree span, with its two spans
    working = np.flatnonzero(~planned)
    pick = np.sort(rng.choice(working, max(1, round(0.005 * len(working))), replace=False))
    a, b = parent[child[pick]], child[pick]
    d = xy[b] - xy[a]
    normal = np.column_stack([-d[:, 1], d[:, 0]]) / np.hypot(d[:, 0], d[:, 1])[:, None]
    pole_xy = (xy[a] + xy[b]) / 2 + 4.0 * normal
    pole_i = n_plant + np.arange(len(pick))
    n = len(pick)
    for ends, line in (((a, pole_i), np.stack([xy[a], pole_xy], axis=1)),
                       ((pole_i, b), np.stack([pole_xy, xy[b]], axis=1))):
        spans.append(dict(
            from_i=ends[0], to_i=ends[1], geometry=shapely.linestrings(line), status="retired",
            fiber_count=rng.choice([12, 24], n), fibers_used=0, placement="aerial", duct=None,
            owner=_OWNERS[0], install_year=rng.integers(1986, 2004, n),
        ))

    # node kinds: cabinets and cores at tile roots, splices where the tree branches
    in_aerial = np.zeros(n_plant, bool)
    in_aerial[child] = aerial
    kind = np.where(children >= 2, "splice", np.where(in_aerial, "pole", "handhole")).astype(object)
    splitter = (kind == "splice") & (depth <= 3) & (rng.random(n_plant) < 0.25)
    kind[splitter] = "splitter"
    kind[root] = np.where(is_core_tile, "core", "cabinet")
    name = np.full(n_plant, None, dtype=object)
    name[root] = [f"CAB-{t + 1:04d}" for t in range(n_tiles)]
    name[root[core_tiles]] = [
        f"CO {_CORE_NAMES[c]}" if c < len(_CORE_NAMES) else f"CO {c + 1}"
        for c in range(len(core_tiles))
    ]
    n_nodes = n_plant + len(pole_i)
    nodes = gpd.GeoDataFrame(
        {
            "node_id": _ids("n", n_nodes),
            "kind": np.concatenate([kind, np.full(len(pole_i), "pole", dtype=object)]),
            "status": np.concatenate([node_status, np.full(len(pole_i), "retired", dtype=object)]),
            "name": np.concatenate([name, np.full(len(pole_i), None, dtype=object)]),
        },
        geometry=shapely.points(np.concatenate([xy, pole_xy])),
    )
    return {"nodes": nodes, "spans": _span_frame(spans, nodes["node_id"].to_numpy()),
            "tile_planned": tile_planned}


def _depth_and_subtree(parent: IntArray, is_root: BoolArray) -> tuple[IntArray, FloatArray]:
    """Depth below the tile root and size of the subtree of every tree node, level by level."""
    n = len(parent)
    depth = np.where(is_root, 0, -1)
    level = 0
    while (depth < 0).any():
        nxt = (depth < 0) & (depth[np.where(is_root, 0, parent)] == level)
        nxt &= ~is_root
        if not nxt.any():
            break
        level += 1
        depth[nxt] = level
    subtree = np.ones(n)
    for d in range(level, 0, -1):
        at = np.flatnonzero(depth == d)
        subtree += np.bincount(parent[at], weights=subtree[at], minlength=n)[:n]
    return depth, subtree


def _plan_feeder(rng: np.random.Generator, grid: FloatArray, *, margin: int, px: int,
                 root: IntArray, tile_uv: FloatArray, is_core_tile: BoolArray,
                 tile_planned: BoolArray) -> list[dict[str, Any]]:
    """Feeder rings from each core through its cabinets and back; spurs to planned tiles."""
    cores = np.flatnonzero(is_core_tile)
    cabs = np.flatnonzero(~is_core_tile & ~tile_planned)
    out: list[dict[str, Any]] = []
    if len(cabs):
        dist = np.hypot(*(tile_uv[cabs, None, :] - tile_uv[None, cores, :]).transpose(2, 0, 1))
        home = np.argmin(dist, axis=1)
        rel = tile_uv[cabs] - tile_uv[cores[home]]
        angle = np.arctan2(rel[:, 1], rel[:, 0])
        order = np.lexsort((angle, home))
        cabs, home = cabs[order], home[order]
        per_core = np.bincount(home, minlength=len(cores))
        n_rings = np.maximum(1, np.round(per_core / 6)).astype(int)
        start = np.concatenate([[0], np.cumsum(per_core)[:-1]])
        rank = np.arange(len(cabs)) - start[home]
        ring_base = np.concatenate([[0], np.cumsum(n_rings)[:-1]])
        ring = ring_base[home] + rank * n_rings[home] // per_core[home]
        first = np.r_[True, ring[1:] != ring[:-1]]
        last = np.r_[ring[1:] != ring[:-1], True]
        ring_core = cores[home[first]]
        # spans into each cabinet (from the core or the previous cabinet), then the closing ones
        src_tile = np.where(first, cores[home], np.r_[0, cabs[:-1]])
        from_t = np.concatenate([src_tile, cabs[last]])
        to_t = np.concatenate([cabs, ring_core])
        closing = np.r_[np.zeros(len(cabs), bool), np.ones(last.sum(), bool)]
        span_ring = np.concatenate([ring, ring[last]])
        ring_size = np.bincount(ring)
        open_ring = (ring_size >= 2) & (rng.random(len(ring_size)) < 0.15)
        if not open_ring.any() and (ring_size >= 2).sum() >= 2:
            open_ring[np.flatnonzero(ring_size >= 2)[-1]] = True
        status = np.where(closing & open_ring[span_ring], "planned", "in_service")
        # ducts: one per span, some shared by consecutive spans or by both exits of a core
        n = len(from_t)
        join = ~first & (rng.random(len(cabs)) < 0.15)
        duct = np.concatenate([np.cumsum(~join) - 1, (~join).sum() + np.arange(last.sum())])
        exits = rng.random(last.sum()) < 0.3
        if not exits.any() and not join.any():  # keep at least one shared duct
            exits[0] = True
        duct[len(cabs) + np.flatnonzero(exits)] = duct[np.flatnonzero(first)[exits]]
        out.append(dict(
            from_i=root[from_t], to_i=root[to_t],
            geometry=_street_paths(grid, margin, px, root[from_t], root[to_t], closing),
            status=status, fiber_count=rng.choice([144, 288, 432], n, p=[0.5, 0.35, 0.15]),
            fibers_used=np.where(status == "planned", 0,
                                 rng.integers(20, 144, n)),
            placement=np.where(rng.random(n) < 0.1, "buried", "underground"),
            duct=duct, owner=_OWNERS[0],
            install_year=np.where(status == "planned", -1, rng.integers(1998, 2016, n)),
        ))
    spurs = np.flatnonzero(tile_planned)
    if len(spurs):
        live = np.flatnonzero(~tile_planned)
        dist = np.hypot(*(tile_uv[spurs, None, :] - tile_uv[None, live, :]).transpose(2, 0, 1))
        src = live[np.argmin(dist, axis=1)]
        n = len(spurs)
        out.append(dict(
            from_i=root[src], to_i=root[spurs],
            geometry=_street_paths(grid, margin, px, root[src], root[spurs], np.zeros(n, bool)),
            status="planned", fiber_count=144, fibers_used=0, placement="underground",
            duct=None, owner=_OWNERS[0], install_year=-1,
        ))
    return out


def _street_paths(grid: FloatArray, margin: int, px: int, a: IntArray, b: IntArray,
                  vertical_first: BoolArray) -> ObjArray:
    """Lines along the streets from plant node ``a`` to ``b``: one leg per direction."""
    j1, i1 = np.divmod(a, px)
    j2, i2 = np.divmod(b, px)
    n1, n2 = np.abs(i2 - i1), np.abs(j2 - j1)
    size = n1 + n2 + 1
    rep = np.repeat(np.arange(len(a)), size)
    pos = np.arange(size.sum()) - np.repeat(np.cumsum(size) - size, size)
    si, sj = np.sign(i2 - i1)[rep], np.sign(j2 - j1)[rep]
    i1r, j1r, i2r, j2r, n1r, n2r = i1[rep], j1[rep], i2[rep], j2[rep], n1[rep], n2[rep]
    h_i = np.where(pos <= n1r, i1r + si * pos, i2r)
    h_j = np.where(pos <= n1r, j1r, j1r + sj * (pos - n1r))
    v_i = np.where(pos <= n2r, i1r, i1r + si * (pos - n2r))
    v_j = np.where(pos <= n2r, j1r + sj * pos, j2r)
    vf = vertical_first[rep]
    ii, jj = np.where(vf, v_i, h_i), np.where(vf, v_j, h_j)
    return np.asarray(shapely.linestrings(grid[jj + margin, ii + margin], indices=rep),
                      dtype=object)


def _span_frame(parts: list[dict[str, Any]], node_ids: ObjArray) -> gpd.GeoDataFrame:
    """One spans frame from the parts, with contract dtypes (-1 year means unknown)."""
    sizes = [len(p["from_i"]) for p in parts]
    n = sum(sizes)

    def column(key: str) -> npt.NDArray[Any]:
        return np.concatenate([np.broadcast_to(np.asarray(p[key], dtype=object), (s,))
                               for p, s in zip(parts, sizes, strict=True)])

    duct = np.full(n, None, dtype=object)
    offset, pos = 0, 0
    for p, s in zip(parts, sizes, strict=True):
        if p["duct"] is not None:
            d = np.asarray(p["duct"], dtype=np.int64) + offset
            duct[pos:pos + s] = _ids("d", int(d.max()) + 1)[d]
            offset = int(d.max()) + 1
        pos += s
    year = column("install_year").astype(np.int64)
    install_year = pd.array(year, dtype="Int64")
    install_year[year < 0] = pd.NA
    frame = gpd.GeoDataFrame(
        {
            "span_id": _ids("s", n),
            "from_node": node_ids[column("from_i").astype(np.int64)],
            "to_node": node_ids[column("to_i").astype(np.int64)],
            "status": column("status"),
            "fiber_count": pd.array(column("fiber_count").astype(np.int64), dtype="Int64"),
            "fibers_used": pd.array(column("fibers_used").astype(np.int64), dtype="Int64"),
            "placement": column("placement"),
            "duct_id": duct,
            "owner": column("owner"),
            "install_year": install_year,
        },
        geometry=np.concatenate([np.asarray(p["geometry"], dtype=object) for p in parts]),
    )
    return frame


def _ids(prefix: str, n: int, first: int = 0, total: int | None = None) -> ObjArray:
    """Ids ``prefix`` + zero-padded number, so that text order is creation order."""
    width = len(str(max(0, (n if total is None else total) - 1)))
    return np.char.add(prefix, np.char.zfill(np.arange(first, first + n).astype(str), width)
                       ).astype(object)


def _street_edges(grid: FloatArray, margin: int, px: int, py: int, k: int, tx: int,
                  tile_planned: BoolArray, half_extent: float) -> dict[str, Any]:
    """Every street segment of the city, with what premises along it need."""
    cy, cx = grid.shape[:2]
    jj, ii = np.divmod(np.arange(cx * cy), cx)
    right = ii < cx - 1
    up = jj < cy - 1
    a = np.concatenate([np.flatnonzero(right), np.flatnonzero(up)])
    b = np.concatenate([np.flatnonzero(right) + 1, np.flatnonzero(up) + cx])
    horizontal = np.arange(len(a)) < right.sum()
    flat = grid.reshape(-1, 2)
    # a street is served when both ends are in working tiles of the plant
    pi, pj = ii - margin, jj - margin
    in_plant = (pi >= 0) & (pi < px) & (pj >= 0) & (pj < py)
    tile = np.where(in_plant, (np.clip(pj, 0, py - 1) // k) * tx + np.clip(pi, 0, px - 1) // k, 0)
    working = in_plant & ~tile_planned[tile]
    names = _street_names(cx, cy)
    mid = (flat[a] + flat[b]) / 2
    return {
        "edge_a": flat[a], "edge_b": flat[b],
        "edge_street": np.where(horizontal, jj[a], cy + ii[a]).astype(np.int64),
        "edge_house0": np.where(horizontal, ii[a], jj[a]).astype(np.int64) * 40 + 1,
        "edge_r": np.minimum(1.0, np.hypot(mid[:, 0], mid[:, 1]) / half_extent),
        "edge_served": working[a] & working[b],
        "street_names": names,
    }


def _street_names(cx: int, cy: int) -> list[str]:
    """Names for the cy east-west streets, then the cx north-south ones."""
    pool = [f"{p}{b}" for p in _PREFIXES for b in _STREET_BASES]

    def names(n: int, suffix: str) -> list[str]:
        return [f"{pool[i]}{suffix}" if i < len(pool) else f"Straße {i + 1}{suffix[:1]}"
                for i in range(n)]

    return names(cy, "straße") + names(cx, "weg")


def _plan_clusters(rng: np.random.Generator, grid: FloatArray, premises: int) -> dict[str, Any]:
    """Far hamlets: short roads well beyond the plant's reach."""
    n = max(1, round(premises * FAR_SHARE / 120))
    lo, hi = grid.reshape(-1, 2).min(axis=0), grid.reshape(-1, 2).max(axis=0)
    size = hi - lo
    gap = rng.uniform(700.0, 700.0 + min(0.15 * size.max(), 4000.0), n)
    # a point on the perimeter of the grid's box grown by `gap`
    w, h = size[0] + 2 * gap, size[1] + 2 * gap
    s = rng.uniform(0.0, 1.0, n) * 2 * (w + h)
    x = np.select([s < w, s < w + h, s < 2 * w + h], [s, w, 2 * w + h - s], 0.0)
    y = np.select([s < w, s < w + h, s < 2 * w + h], [0.0, s - w, h], 2 * (w + h) - s)
    centers = np.column_stack([lo[0] - gap + x, lo[1] - gap + y])
    theta = rng.uniform(0, np.pi, n)
    return {
        "cluster_center": centers,
        "cluster_dir": np.column_stack([np.cos(theta), np.sin(theta)]),
        "cluster_half": rng.uniform(80.0, 200.0, n),
    }


def _plan_areas(rng: np.random.Generator, grid: FloatArray, clusters: dict[str, Any]
                ) -> gpd.GeoDataFrame:
    """District polygons: Voronoi cells of jittered seeds, clipped to a box around everything."""
    pts = np.concatenate([grid.reshape(-1, 2), clusters["cluster_center"]])
    lo, hi = pts.min(axis=0) - 600.0, pts.max(axis=0) + 600.0
    g_lo, g_hi = grid.reshape(-1, 2).min(axis=0), grid.reshape(-1, 2).max(axis=0)
    dx = int(np.clip(round(grid.shape[1] / 25), 2, 6))
    dy = int(np.clip(round(grid.shape[0] / 25), 2, 6))
    fx, fy = np.meshgrid((np.arange(dx) + 0.5) / dx, (np.arange(dy) + 0.5) / dy)
    frac = np.column_stack([fx.ravel(), fy.ravel()])
    frac += rng.uniform(-0.2, 0.2, frac.shape) / np.array([dx, dy])
    seeds = g_lo + frac * (g_hi - g_lo)
    box = shapely.box(*lo, *hi)
    cells = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=box, ordered=True)
    polys = shapely.intersection(np.asarray(shapely.get_parts(cells), dtype=object), box)
    n = len(polys)
    names = [_DISTRICTS[i] if i < len(_DISTRICTS) else f"Bezirk {i + 1}" for i in range(n)]
    return gpd.GeoDataFrame({"area_id": _ids("a", n), "name": np.array(names, dtype=object)},
                            geometry=polys)


def _premise_block(city: _City, block: int) -> dict[str, Any]:
    """Columns of premises block ``block`` (its own random stream): the geometry is an array."""
    first = block * BLOCK
    n = min(BLOCK, city.premises - first)
    rng = np.random.default_rng([city.seed, 1, block])
    far = rng.random(n) < FAR_SHARE
    e = rng.integers(0, len(city.edge_a), n)
    t = rng.uniform(0.06, 0.94, n)
    side = rng.integers(0, 2, n)
    offset = 4.0 + 56.0 * rng.beta(1.3, 3.0, n)
    a = city.edge_a[e]
    d = city.edge_b[e] - a
    length = np.hypot(d[:, 0], d[:, 1])[:, None]
    normal = np.column_stack([-d[:, 1], d[:, 0]]) / length
    sign = (2 * side - 1)[:, None]
    xy = a + t[:, None] * d + sign * offset[:, None] * normal
    c = rng.integers(0, len(city.cluster_center), n)
    along = rng.uniform(-1.0, 1.0, n) * city.cluster_half[c]
    cdir = city.cluster_dir[c]
    cnormal = np.column_stack([-cdir[:, 1], cdir[:, 0]])
    far_xy = city.cluster_center[c] + along[:, None] * cdir + sign * offset[:, None] * cnormal
    xy = np.where(far[:, None], far_xy, xy)

    central = np.where(far, 0.0, 1.0 - city.edge_r[e])
    u = rng.random(n)
    anchor = u < 0.012
    business = ~anchor & (u < 0.05 + 0.1 * central)
    mdu = ~anchor & ~far & (rng.random(n) < 0.03 + 0.17 * central**2)
    mdu_units = np.clip(np.round(rng.lognormal(np.log(6.0), 0.75, n)), 2, 40).astype(np.int64)
    biz_units = np.where(rng.random(n) < 0.2, rng.integers(2, 7, n), 1)
    units = np.where(mdu, mdu_units, np.where(business, biz_units, 1))
    take = np.where(anchor, 0.7, np.where(business, 0.3, 0.42))
    connected = ~far & city.edge_served[e] & (rng.random(n) < take)

    number = np.where(far, (np.abs(along) // 12).astype(np.int64) * 2 + 1,
                      city.edge_house0[e] + (t * 20).astype(np.int64) * 2) + side
    # strings are built as Arrow arrays: far faster than numpy's, and what the writers take
    street = city.street_names.take(np.where(far, city.n_streets + c, city.edge_street[e]))
    index = pa.array(np.arange(first, first + n))
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
        "xy": _place_xy(xy, city.affine, city.work_crs, city.crs),
    }


def _premise_batches(city: _City, chunk_size: int) -> Iterator[dict[str, Any]]:
    """Premises in batches of whole blocks (about ``chunk_size`` records each)."""
    per_batch = max(1, -(-chunk_size // BLOCK))
    n_blocks = -(-city.premises // BLOCK)
    for start in range(0, n_blocks, per_batch):
        blocks = [_premise_block(city, b) for b in range(start, min(n_blocks, start + per_batch))]
        yield {key: pa.concat_arrays([blk[key] for blk in blocks])
               if isinstance(blocks[0][key], pa.Array)
               else np.concatenate([blk[key] for blk in blocks]) for key in blocks[0]}


def _premise_frame(cols: dict[str, Any], crs: CRS) -> gpd.GeoDataFrame:
    data: dict[str, Any] = {}
    for f in LAYERS["premises"].fields:
        val = cols[f.name]
        if isinstance(val, pa.Array):
            data[f.name] = pd.Series(val.to_numpy(zero_copy_only=False), dtype="str")
        elif f.type == "int":
            data[f.name] = pd.array(val, dtype="Int64")
        else:
            data[f.name] = val
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(shapely.points(cols["xy"]), crs=crs),
                            crs=crs)


_ARROW_TYPES = {"text": pa.string(), "int": pa.int64(), "bool": pa.bool_()}


def _premise_schema(crs: CRS, geo_metadata: bool) -> pa.Schema:
    fields = [pa.field(f.name, _ARROW_TYPES[f.type]) for f in LAYERS["premises"].fields]
    fields.append(pa.field("geometry", pa.binary()))
    if not geo_metadata:
        return pa.schema(fields)
    geo = {"version": "1.0.0", "primary_column": "geometry",
           "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Point"],
                                    "crs": crs.to_json_dict()}}}
    return pa.schema(fields, metadata={b"geo": json.dumps(geo).encode()})


def _premise_table(cols: dict[str, Any], schema: pa.Schema) -> pa.Table:
    arrays = [cols[name] if isinstance(cols[name], pa.Array)
              else pa.array(cols[name], type=schema.field(name).type)
              for name in schema.names if name != "geometry"]
    arrays.append(_point_wkb(cols["xy"]))
    return pa.Table.from_arrays(arrays, schema=schema)


def _point_wkb(xy: FloatArray) -> pa.Array:
    """Little-endian WKB points straight from coordinates (no GEOS objects on the write path)."""
    n = len(xy)
    rec = np.zeros(n, dtype=[("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")])
    rec["order"], rec["type"], rec["x"], rec["y"] = 1, 1, xy[:, 0], xy[:, 1]
    offsets = pa.py_buffer((np.arange(n + 1, dtype=np.int32) * rec.itemsize).tobytes())
    return pa.Array.from_buffers(pa.binary(), n, [None, offsets, pa.py_buffer(rec.tobytes())])


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
    city = _plan(premises, spans, seed, crs, center)
    parts = [_premise_frame(cols, city.crs) for cols in _premise_batches(city, DEFAULT_CHUNK)]
    frame = parts[0] if len(parts) == 1 else gpd.GeoDataFrame(
        pd.concat(parts, ignore_index=True), crs=city.crs)
    return Dataset(nodes=city.nodes, spans=city.spans, premises=frame, areas=city.areas)


def write_city(path: str | os.PathLike[str], *, premises: int, spans: int | None = None,
               seed: int = 0, fmt: str | None = None, crs: CRS | str | int = DEFAULT_CRS,
               center: tuple[float, float] = DEFAULT_CENTER, chunk_size: int = DEFAULT_CHUNK,
               progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Generate a city and write it to ``path`` atomically, premises chunk by chunk.

    The format comes from ``fmt`` or the suffix of ``path`` as in
    :func:`netgis.io.write_dataset`: ``.gpkg`` is one GeoPackage; ``.geojson``,
    ``.fgb`` or ``.parquet`` is a directory of ``<layer>.<ext>`` files. Only
    ``chunk_size`` premises are in memory at a time; the records are the same
    as those of :func:`generate_city` with the same arguments.

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
    >>> summary = write_city("/tmp/city.gpkg", premises=1000, seed=2)  # doctest: +SKIP
    >>> summary["premises"]  # doctest: +SKIP
    1000
    """
    out = Path(path)
    fmt = detect_format(out, fmt)
    city = _plan(premises, spans, seed, crs, center)
    batches = _premise_batches(city, chunk_size)
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


def _arrow_stream(city: _City, batches: Iterator[dict[str, Any]],
                  geo_metadata: bool) -> pa.RecordBatchReader:
    schema = _premise_schema(city.crs, geo_metadata)
    gen = (batch for cols in batches for batch in _premise_table(cols, schema).to_batches())
    return pa.RecordBatchReader.from_batches(schema, gen)


def _write_ogr_premises(city: _City, target: Path, driver: str,
                        batches: Iterator[dict[str, Any]]) -> None:
    pyogrio.write_arrow(_arrow_stream(city, batches, geo_metadata=False), target,
                        layer="premises", driver=driver, geometry_name="geometry",
                        geometry_type="Point", crs=city.crs.to_wkt())


def _write_gpkg(city: _City, out: Path, batches: Iterator[dict[str, Any]]) -> None:
    with atomic_file(out, suffix=".gpkg") as tmp:
        pyogrio.write_dataframe(city.nodes, tmp, layer="nodes", driver="GPKG")
        pyogrio.write_dataframe(city.spans, tmp, layer="spans", driver="GPKG")
        _write_ogr_premises(city, tmp, "GPKG", batches)
        pyogrio.write_dataframe(city.areas, tmp, layer="areas", driver="GPKG")


def _write_dir(city: _City, out: Path, fmt: str, batches: Iterator[dict[str, Any]]) -> None:
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
