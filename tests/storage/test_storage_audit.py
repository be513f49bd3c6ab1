"""The audit log in the repository, on both databases (issue 19).

Every write of features leaves exactly one entry per write (one per layer for a
bulk load), written in the write's own transaction: a write that fails leaves
none, and an entry that cannot be written undoes the write.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import geopandas as gpd
import pytest
import shapely
import sqlalchemy
from alembic import command

from netgis.errors import ConflictError, NotFoundError, PreconditionFailed, ValidationError
from netgis.storage import Repository, audit, migrate
from tests.storage.helpers import BACKENDS, chain_dataset


def _node(node_id: str, *, kind: str = "splice", lon: float = 8.65, lat: float = 50.2,
          name: str | None = None) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"node_id": [node_id], "kind": [kind], "name": [name]},
                            geometry=[shapely.Point(lon, lat)], crs=4326)


def _entries(repo: Repository, **filters: Any) -> list[dict[str, Any]]:
    return repo.audit_log(limit=1000, **filters)[0]


def _feature(fc: dict[str, Any] | None) -> dict[str, Any]:
    assert fc is not None and fc["type"] == "FeatureCollection"
    assert len(fc["features"]) == 1
    feature: dict[str, Any] = fc["features"][0]
    return feature


def test_a_load_leaves_one_entry_per_layer_with_ids_and_counts(repo: Repository) -> None:
    data = chain_dataset(5)
    counts = repo.load_dataset(data, actor="cli")
    entries = _entries(repo)
    assert [e["layer"] for e in entries] == ["areas", "premises", "spans", "nodes"]
    version = repo.data_version()
    for e in entries:
        assert (e["actor"], e["action"], e["mode"], e["data_version"]) == \
            ("cli", "load", "insert", version)
        assert e["count"] == counts[e["layer"]] == len(e["feature_ids"])
        # bulk loads keep ids and counts, not the features' bodies
        assert e["before"] is None and e["after"] is None
        assert e["time"].tzinfo is not None
        assert abs(datetime.now(UTC) - e["time"]) < timedelta(minutes=5)
    nodes = next(e for e in entries if e["layer"] == "nodes")
    assert nodes["feature_ids"] == [str(v) for v in data.nodes["node_id"]]
    repo.load_dataset(data, mode="upsert", action="import", actor="editor")
    newest = _entries(repo)[0]
    assert (newest["action"], newest["mode"], newest["actor"]) == ("import", "upsert", "editor")


def test_item_writes_keep_the_features_before_and_after(repo: Repository) -> None:
    repo.load_dataset(chain_dataset(3))
    start = len(_entries(repo))

    repo.insert_items("nodes", _node("x1", name="new"), actor="alice")
    created = _entries(repo)[0]
    assert (created["action"], created["actor"], created["layer"]) == ("create", "alice",
                                                                       "nodes")
    assert created["feature_ids"] == ["x1"] and created["count"] == 1
    assert created["before"] is None
    after = _feature(created["after"])
    assert after["id"] == "x1"
    # the stored feature whole: defaults filled in by validation, the geometry as GeoJSON
    assert after["properties"] == {"node_id": "x1", "kind": "splice", "status": "in_service",
                                   "name": "new", "split_ratio": None}
    assert after["geometry"] == {"type": "Point", "coordinates": [8.65, 50.2]}
    assert created["data_version"] == repo.get_item_versioned("nodes", "x1")[1]

    repo.replace_item("nodes", "x1", _node("x1", kind="cabinet", lon=8.66), actor="bob")
    replaced = _entries(repo)[0]
    assert (replaced["action"], replaced["actor"]) == ("replace", "bob")
    assert _feature(replaced["before"]) == after
    assert _feature(replaced["after"])["properties"]["kind"] == "cabinet"
    assert _feature(replaced["after"])["properties"]["name"] is None
    assert _feature(replaced["after"])["geometry"]["coordinates"] == [8.66, 50.2]

    repo.patch_item("nodes", "x1", {"name": "patched"}, actor="carol")
    patched = _entries(repo)[0]
    assert patched["action"] == "patch"
    assert _feature(patched["before"]) == _feature(replaced["after"])
    # the whole feature after the patch, not only the field sent
    assert _feature(patched["after"])["properties"] == {
        **_feature(replaced["after"])["properties"], "name": "patched"}

    repo.delete_item("nodes", "x1", actor="dave")
    deleted = _entries(repo)[0]
    assert (deleted["action"], deleted["after"]) == ("delete", None)
    assert _feature(deleted["before"]) == _feature(patched["after"])

    assert len(_entries(repo)) == start + 4
    ids = [e["id"] for e in _entries(repo)]
    assert ids == sorted(ids, reverse=True)  # newest first


def test_failed_writes_leave_no_entry(repo: Repository) -> None:
    repo.load_dataset(chain_dataset(3))
    before = len(_entries(repo))
    version = repo.get_item_versioned("nodes", "n1")[1]
    failures: list[tuple[type[Exception], Callable[[], Any]]] = [
        (ValidationError, lambda: repo.insert_items("nodes", _node("bad", kind="castle"))),
        (ConflictError, lambda: repo.insert_items("nodes", _node("n1"))),
        (ConflictError, lambda: repo.delete_item("nodes", "n1")),  # spans use it
        (NotFoundError, lambda: repo.delete_item("nodes", "ghost")),
        (NotFoundError, lambda: repo.replace_item("nodes", "ghost", _node("ghost"))),
        (PreconditionFailed, lambda: repo.replace_item("nodes", "n1", _node("n1"),
                                                       if_match=[version + 1])),
        (PreconditionFailed, lambda: repo.patch_item("nodes", "n1", {"name": "x"},
                                                     if_match=[version - 1])),
        (ValidationError, lambda: repo.patch_item("nodes", "n1", {"kind": "castle"})),
        (ConflictError, lambda: repo.load_dataset(chain_dataset(3))),
    ]
    for error, write in failures:
        with pytest.raises(error):
            write()
    assert len(_entries(repo)) == before


def test_an_entry_that_cannot_be_written_undoes_the_write(
        repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    repo.load_dataset(chain_dataset(2))
    version = repo.data_version()

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the audit log is full")

    monkeypatch.setattr(audit, "record", broken)
    with pytest.raises(RuntimeError):
        repo.insert_items("nodes", _node("x1"))
    with pytest.raises(RuntimeError):
        repo.delete_item("premises", "p0")
    with pytest.raises(RuntimeError):
        repo.load_dataset(chain_dataset(2, prefix="b"))
    # no change without its trace: the rows and the data version are as they were
    assert repo.data_version() == version
    assert repo.count("nodes") == 3 and repo.count("premises") == 2
    with pytest.raises(NotFoundError):
        repo.get_item("nodes", "x1")


def test_queries_by_layer_id_time_actor_action_and_page(repo: Repository) -> None:
    repo.load_dataset(chain_dataset(2), actor="cli")
    # ids that a text search over the JSON array would confuse
    for node_id in ('q"1', "q", "q1", "%", "_"):
        repo.insert_items("nodes", _node(node_id), actor="alice")
    repo.patch_item("nodes", "n1", {"name": "x"}, actor="bob")

    by_id = _entries(repo, feature_id="q")
    assert [e["feature_ids"] for e in by_id] == [["q"]]
    assert [e["feature_ids"] for e in _entries(repo, feature_id='q"1')] == [['q"1']]
    assert [e["feature_ids"] for e in _entries(repo, feature_id="%")] == [["%"]]
    assert [e["feature_ids"] for e in _entries(repo, feature_id="_")] == [["_"]]
    # a feature's history includes the load that wrote it
    assert [e["action"] for e in _entries(repo, feature_id="n1")] == ["patch", "load"]
    assert [e["layer"] for e in _entries(repo, feature_id="n1", layer="nodes")] == \
        ["nodes", "nodes"]
    assert _entries(repo, feature_id="n1", layer="spans") == []
    assert {e["layer"] for e in _entries(repo, layer="spans")} == {"spans"}
    assert {e["actor"] for e in _entries(repo, actor="alice")} == {"alice"}
    assert len(_entries(repo, action="create")) == 5
    assert _entries(repo, since=datetime.now(UTC) + timedelta(hours=1)) == []
    # a naive time is UTC
    assert len(_entries(repo, since=datetime.now(UTC).replace(tzinfo=None)
                        - timedelta(hours=1))) == 10

    page, matched = repo.audit_log(limit=3, offset=2)
    everything = _entries(repo)
    assert matched == len(everything) == 10
    assert [e["id"] for e in page] == [e["id"] for e in everything[2:5]]
    with pytest.raises(ValidationError):
        repo.audit_log(limit=-1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_audit_migration_goes_both_ways(
        backend: str, new_engine: Callable[[str], sqlalchemy.Engine]) -> None:
    engine = new_engine(backend)
    migrate.upgrade(engine, "0003")
    migrate.upgrade(engine, "0004")
    assert migrate.current_revision(engine) == "0004"
    repo = Repository(engine)
    repo.load_dataset(chain_dataset(2))
    repo.delete_item("premises", "p0", actor="alice")
    assert [e["action"] for e in _entries(repo)][:1] == ["delete"]
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0003")
    assert "audit_log" not in sqlalchemy.inspect(engine).get_table_names()
    # the layers, their data and their spatial indexes are untouched
    page, _ = repo.query_items("nodes", bbox=(8.59, 50.09, 8.61, 50.11))
    assert len(page) == 3 and repo.count("premises") == 1
    migrate.upgrade(engine)
    assert _entries(repo) == []
