"""Per-feature versions and partial updates (issue 19, lost updates), on both databases.

A PATCH changes only the fields it names, inside one transaction, so concurrent
PATCHes of different fields of one feature both survive. Every feature carries a
version (the data version of the write that last changed it); a write conditioned
on a version the feature no longer has is refused and changes nothing.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import shapely

from netgis.errors import NotFoundError, PreconditionFailed
from netgis.storage import Repository
from tests.storage.helpers import chain_dataset

ROUNDS = 12


def _both(n: int, work: Any) -> list[Any]:
    """``work(i)`` on ``n`` threads started together; exceptions come back as results."""
    barrier = threading.Barrier(n)
    out: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = work(i)
        except Exception as exc:  # returned to the test, which asserts on it
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return out


def test_concurrent_patches_of_different_fields_both_survive(repo: Repository) -> None:
    repo.load_dataset(chain_dataset(5))
    for round_ in range(ROUNDS):
        units, address = round_ + 2, f"{round_} High St"
        changes = [{"units": units}, {"address": address}]
        results = _both(2, lambda i, c=changes: repo.patch_item("premises", "p1", c[i]))
        assert not [r for r in results if isinstance(r, Exception)], results
        got = repo.get_item("premises", "p1")
        assert (int(got["units"].iat[0]), got["address"].iat[0]) == (units, address), round_


def test_patch_changes_only_the_named_fields(repo: Repository) -> None:
    repo.load_dataset(chain_dataset(5))
    before = repo.get_item("premises", "p2")
    repo.patch_item("premises", "p2", {"kind": "business"})
    after = repo.get_item("premises", "p2")
    assert after["kind"].iat[0] == "business"
    for field in ("units", "connected", "address", "location_id"):
        assert after[field].iat[0] == before[field].iat[0] or \
            (after[field].isna().all() and before[field].isna().all()), field
    assert after.geometry.iat[0].equals(before.geometry.iat[0])


def test_versions_grow_with_each_write_and_a_stale_one_changes_nothing(
        repo: Repository) -> None:
    repo.load_dataset(chain_dataset(5))
    frame, v1 = repo.get_item_versioned("premises", "p1")
    assert v1 == repo.data_version()
    _, other = repo.get_item_versioned("premises", "p2")
    assert other == v1  # written by the same load

    v2 = repo.patch_item("premises", "p1", {"units": 3}, if_match={v1})
    assert v2 > v1 and repo.get_item_versioned("premises", "p1")[1] == v2
    assert repo.get_item_versioned("premises", "p2")[1] == v1  # others keep theirs

    before = (repo.data_version(), repo.get_item("premises", "p1"))
    for write in (lambda: repo.patch_item("premises", "p1", {"units": 4}, if_match={v1}),
                  lambda: repo.replace_item("premises", "p1", frame, if_match={v1}),
                  lambda: repo.patch_item("premises", "p1", {"units": 4}, if_match=set())):
        with pytest.raises(PreconditionFailed) as info:
            write()
        assert info.value.current == v2
        assert repo.data_version() == before[0]
        assert repo.get_item("premises", "p1").equals(before[1])

    v3 = repo.replace_item("premises", "p1", frame, if_match={v1, v2})
    assert v3 > v2 and int(repo.get_item("premises", "p1")["units"].iat[0]) == \
        int(frame["units"].iat[0])
    # no condition: last writer wins
    assert repo.patch_item("premises", "p1", {"units": 5}) > v3
    with pytest.raises(NotFoundError):
        repo.patch_item("premises", "ghost", {"units": 5}, if_match={v1})


def test_a_deleted_and_recreated_feature_never_reuses_a_version(repo: Repository) -> None:
    repo.load_dataset(chain_dataset(5))
    frame, v1 = repo.get_item_versioned("premises", "p4")
    repo.delete_item("premises", "p4")
    repo.insert_items("premises", frame)
    _, v2 = repo.get_item_versioned("premises", "p4")
    assert v2 > v1
    with pytest.raises(PreconditionFailed):
        repo.patch_item("premises", "p4", {"units": 2}, if_match={v1})


def test_geometry_patch_keeps_the_spatial_index(repo: Repository) -> None:
    repo.load_dataset(chain_dataset(5))
    repo.patch_item("premises", "p3", {"geometry": shapely.Point(9.5, 51.5)})
    page, matched = repo.query_items("premises", bbox=(9.4, 51.4, 9.6, 51.6))
    assert matched == 1 and list(page["premise_id"]) == ["p3"]
    page, _ = repo.query_items("premises", bbox=(8.59, 50.09, 8.7, 50.2))
    assert "p3" not in set(page["premise_id"])


def test_a_consistent_read_is_labelled_with_the_version_it_saw(
        repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process writes in the middle of every read of the layers (after the nodes):
    the dataset returned must be exactly the data of the version it is labelled with."""
    repo.load_dataset(chain_dataset(5))
    # p1's units at each data version
    units_at = {repo.data_version(): int(repo.get_item("premises", "p1")["units"].iat[0])}
    real = repo._select_frame

    def select_then_write(conn: Any, layer: str, **kwargs: Any) -> Any:
        frame = real(conn, layer, **kwargs)
        if layer == "nodes" and len(units_at) < 20:
            units = 100 + len(units_at)
            units_at[repo.patch_item("premises", "p1", {"units": units})] = units
        return frame

    monkeypatch.setattr(repo, "_select_frame", select_then_write)
    version, dataset = repo.read_consistent()
    premises = dataset.premises.set_index("premise_id")
    assert version in units_at
    assert int(premises.loc["p1", "units"]) == units_at[version], (version, units_at)
