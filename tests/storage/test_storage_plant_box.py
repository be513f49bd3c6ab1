"""The plant's box, against which a written feature's coordinates are checked for a swap,
follows every write of nodes and spans although it is kept between writes.

The box (of the stored nodes and spans) is read once and kept per database; a write
of nodes or spans, or a load, after it makes it be read again (docs/architecture.md,
"Live analysis"). A premise far from the plant whose swapped coordinates fall inside
the plant's box is refused; the same premise is accepted while the plant is elsewhere.
"""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from netgis.errors import ValidationError
from netgis.storage import Repository
from tests.storage.helpers import chain_dataset

SWAPPED = "swapped"


def _premise(premise_id: str, lon: float, lat: float) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"premise_id": [premise_id], "units": [1], "kind": ["residential"],
         "connected": [False], "address": [None], "location_id": [None]},
        geometry=[shapely.Point(lon, lat)], crs=4326)


def _node(node_id: str, lon: float, lat: float) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"node_id": [node_id], "kind": ["splice"], "status": ["in_service"], "name": [None]},
        geometry=[shapely.Point(lon, lat)], crs=4326)


def _refused_as_swapped(repo: Repository, premise_id: str, lon: float, lat: float) -> bool:
    try:
        repo.insert_items("premises", _premise(premise_id, lon, lat))
    except ValidationError as exc:
        text = " ".join(p.reason for p in exc.problems)
        assert SWAPPED in text, text
        return True
    return False


def test_the_kept_box_follows_node_inserts_deletes_and_loads(repo: Repository) -> None:
    # a plant around (8.6, 50.1); a premise at (60.0, 12.0) is far from it, and so is its
    # swap (12.0, 60.0): accepted, and the box is now kept
    repo.load_dataset(chain_dataset(3))
    assert not _refused_as_swapped(repo, "far1", 60.0, 12.0)
    # a node at (12.0, 60.0) stretches the box over the swap of such a premise
    repo.insert_items("nodes", _node("north", 12.0, 60.0))
    assert _refused_as_swapped(repo, "far2", 60.0, 12.001)
    # patches of premises in between keep the box (and keep refusing)
    repo.patch_item("premises", "p0", {"units": 7})
    assert _refused_as_swapped(repo, "far3", 60.0, 12.002)
    # the node deleted: the box shrinks back, the premise is accepted again
    repo.delete_item("nodes", "north")
    assert not _refused_as_swapped(repo, "far4", 60.0, 12.003)
    # moved by a patch of its geometry: a node again stretches the box
    repo.insert_items("nodes", _node("north", 8.61, 50.11))
    assert not _refused_as_swapped(repo, "far5", 60.0, 12.004)
    repo.patch_item("nodes", "north", {"geometry": shapely.Point(12.0, 60.0)})
    assert _refused_as_swapped(repo, "far6", 60.0, 12.005)


def test_a_load_that_moves_the_plant_moves_the_box(repo: Repository) -> None:
    repo.load_dataset(chain_dataset(3))
    assert not _refused_as_swapped(repo, "far1", 60.0, 12.0)
    # the whole plant replaced by one near (12.0, 60.0)
    repo.load_dataset(chain_dataset(3, lon0=12.0, lat0=60.0, prefix="x"), mode="replace")
    assert _refused_as_swapped(repo, "far2", 60.0, 12.001)


def test_the_box_is_that_of_nodes_and_spans_as_stored(repo: Repository) -> None:
    from netgis.storage.repository import _plant_bounds
    repo.load_dataset(chain_dataset(2))
    with repo.engine.connect() as conn:
        first = _plant_bounds(conn)
        assert first is not None
        assert _plant_bounds(conn) == first  # kept
    repo.insert_items("nodes", _node("east", 9.0, 50.1))
    with repo.engine.connect() as conn:
        box = _plant_bounds(conn)
    assert box is not None and box[2] == pytest.approx(9.0) and box[0] == first[0]
