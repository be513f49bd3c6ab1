"""The audit log in the repository, on both databases (issue 19).

Every write of features leaves exactly one entry per write (a bulk load too: one
entry with counts per layer, its ids paged from ``audit_ids``), written in the
write's own transaction: a write that fails leaves none, and an entry that
cannot be written undoes the write.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import geopandas as gpd
import pytest
import shapely
import sqlalchemy
from alembic import command

from netgis.dataset import Dataset
from netgis.errors import ConflictError, NotFoundError, PreconditionFailed, ValidationError
from netgis.schema import LAYERS
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


def _all_ids(repo: Repository, entry_id: int, page: int = 4) -> list[dict[str, Any]]:
    """Every id of an entry, read ``page`` at a time."""
    found: list[dict[str, Any]] = []
    while True:
        rows, matched = repo.audit_entry_ids(entry_id, limit=page, offset=len(found))
        found += rows
        if not rows:
            assert len(found) == matched
            return found


def test_a_load_is_one_entry_with_counts_and_its_ids_paged(repo: Repository) -> None:
    data = chain_dataset(5)
    counts = repo.load_dataset(data, actor="cli")
    [entry] = _entries(repo)
    assert (entry["actor"], entry["action"], entry["mode"], entry["data_version"]) == \
        ("cli", "load", "insert", counts.data_version == repo.data_version())
    # no ids inline, no bodies: counts per layer
    assert (entry["layer"], entry["feature_ids"], entry["before"], entry["after"]) == \
        (None, None, None, None)
    assert entry["counts"] == {name: {"inserted": counts[name], "replaced": 0, "deleted": 0}
                               for name in ("nodes", "spans", "premises", "areas")}
    assert entry["count"] == sum(counts.values())
    assert entry["time"].tzinfo is not None
    assert abs(datetime.now(UTC) - entry["time"]) < timedelta(minutes=5)
    # every id exactly once, a page at a time
    rows = _all_ids(repo, entry["id"])
    wanted = [(name, str(i)) for name, frame in data.layers().items()
              for i in frame[LAYERS[name].id_field]]
    assert sorted((r["layer"], r["id"]) for r in rows) == sorted(wanted)
    assert {(r["action"], r["before"] is None) for r in rows} == {("insert", True)}
    nodes, matched = repo.audit_entry_ids(entry["id"], layer="nodes")
    assert [r["id"] for r in nodes] == sorted(str(v) for v in data.nodes["node_id"])
    assert matched == len(data.nodes)
    with pytest.raises(NotFoundError):
        repo.audit_entry_ids(entry["id"] + 100)
    repo.load_dataset(data, mode="upsert", action="import", actor="editor")
    newest = _entries(repo)[0]
    assert (newest["action"], newest["mode"], newest["actor"]) == ("import", "upsert", "editor")


def test_an_upsert_keeps_the_features_it_replaced_as_they_were(repo: Repository) -> None:
    repo.load_dataset(chain_dataset(3))
    old = repo.get_item("premises", "p1")
    changed = chain_dataset(4)
    premises = changed.premises.copy()
    premises.loc[premises["premise_id"] == "p1", "units"] = 40
    changed = Dataset(nodes=changed.nodes, spans=changed.spans, premises=premises,
                      areas=changed.areas)
    repo.load_dataset(changed, mode="upsert")
    [entry, _] = _entries(repo, feature_id="p1")
    assert entry["counts"]["premises"] == {"inserted": 1, "replaced": 3, "deleted": 0}
    assert entry["counts"]["nodes"] == {"inserted": 1, "replaced": 4, "deleted": 0}
    rows = {(r["layer"], r["id"]): r for r in _all_ids(repo, entry["id"])}
    p1 = rows[("premises", "p1")]
    assert p1["action"] == "replace"
    # the feature as it was, every property and the geometry, as a PATCH keeps it
    assert p1["before"]["id"] == "p1" and p1["before"]["type"] == "Feature"
    assert p1["before"]["properties"] == _feature(audit.feature_collection(
        "premises", old))["properties"]
    assert shapely.geometry.shape(p1["before"]["geometry"]).equals_exact(
        old.geometry.iat[0], 1e-9)
    assert int(repo.get_item("premises", "p1")["units"].iat[0]) == 40
    assert (rows[("premises", "p3")]["action"], rows[("premises", "p3")]["before"]) == \
        ("insert", None)


def test_replace_loads_one_dataset_instead_of_another_in_one_entry(repo: Repository) -> None:
    first = chain_dataset(4)
    repo.load_dataset(first)
    second = chain_dataset(2, prefix="b", lon0=8.7)
    counts = repo.load_dataset(second, mode="replace", actor="cli")
    # exactly the second dataset: nothing of the first is left, nothing merged
    for name, frame in second.layers().items():
        page, matched = repo.query_items(name, limit=100)
        id_field = LAYERS[name].id_field
        assert sorted(page[id_field]) == sorted(frame[id_field]) and matched == len(frame)
    # the spatial index knows the new rows and has forgotten the old ones
    page, _ = repo.query_items("nodes", bbox=(8.69, 50.09, 8.71, 50.11))
    assert sorted(page["node_id"]) == ["bn0", "bn1", "bn2"]
    assert repo.query_items("nodes", bbox=(8.59, 50.09, 8.61, 50.11))[1] == 0
    [entry, _] = _entries(repo)
    assert (entry["mode"], entry["data_version"]) == ("replace", counts.data_version)
    assert entry["counts"]["nodes"] == {"inserted": 3, "replaced": 0, "deleted": 5}
    deleted = [r for r in _all_ids(repo, entry["id"]) if r["action"] == "delete"]
    assert sorted((r["layer"], r["id"]) for r in deleted) == sorted(
        [(name, str(i)) for name, frame in first.layers().items()
         for i in frame[LAYERS[name].id_field]])
    assert all(r["before"]["id"] == r["id"] for r in deleted)
    # the history of a deleted feature ends with the replace
    assert [e["mode"] for e in _entries(repo, feature_id="n3", layer="nodes")] == \
        ["replace", "insert"]
    # the same dataset again: everything replaced, nothing inserted or deleted
    repo.load_dataset(second, mode="replace")
    assert _entries(repo)[0]["counts"]["spans"] == {"inserted": 0, "replaced": 2, "deleted": 0}


def test_filtering_by_id_uses_the_index(repo: Repository) -> None:
    repo.load_dataset(chain_dataset(3))
    statements: list[tuple[str, Any]] = []

    def remember(_conn: Any, _cursor: Any, statement: str, parameters: Any,
                 _context: Any, _many: bool) -> None:
        if "audit_ids" in statement and statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    sqlalchemy.event.listen(repo.engine, "before_cursor_execute", remember)
    try:
        assert len(_entries(repo, feature_id="p1")) == 1
    finally:
        sqlalchemy.event.remove(repo.engine, "before_cursor_execute", remember)
    assert statements
    with repo.engine.connect() as conn:
        driver = conn.connection.dbapi_connection
        assert driver is not None
        cursor = driver.cursor()
        for statement, parameters in statements:
            if repo.engine.dialect.name == "sqlite":
                cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
            else:
                # tables this small are scanned; what matters is that the index can be used
                cursor.execute("SET enable_seqscan = off")
                cursor.execute("EXPLAIN " + statement, parameters)
            plan = " ".join(str(row) for row in cursor.fetchall())
            assert "ix_audit_ids_feature_id" in plan, plan
        cursor.close()


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
    monkeypatch.setattr(audit, "finish_bulk", broken)
    with pytest.raises(RuntimeError):
        repo.insert_items("nodes", _node("x1"))
    with pytest.raises(RuntimeError):
        repo.delete_item("premises", "p0")
    for mode in ("insert", "replace"):
        with pytest.raises(RuntimeError):
            repo.load_dataset(chain_dataset(2, prefix="b"), mode=mode)  # type: ignore[arg-type]
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
        ["nodes", None]
    assert _entries(repo, feature_id="n1", layer="spans") == []
    # the load wrote spans: it names no layer, its ids do
    assert [(e["layer"], e["action"]) for e in _entries(repo, layer="spans")] == \
        [(None, "load")]
    assert [e["layer"] for e in _entries(repo, layer="nodes")] == ["nodes"] * 6 + [None]
    assert {e["actor"] for e in _entries(repo, actor="alice")} == {"alice"}
    assert len(_entries(repo, action="create")) == 5
    assert _entries(repo, since=datetime.now(UTC) + timedelta(hours=1)) == []
    # a naive time is UTC
    assert len(_entries(repo, since=datetime.now(UTC).replace(tzinfo=None)
                        - timedelta(hours=1))) == 7

    page, matched = repo.audit_log(limit=3, offset=2)
    everything = _entries(repo)
    assert matched == len(everything) == 7
    assert [e["id"] for e in page] == [e["id"] for e in everything[2:5]]
    with pytest.raises(ValidationError):
        repo.audit_log(limit=-1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_audit_migrations_go_both_ways(
        backend: str, new_engine: Callable[[str], sqlalchemy.Engine]) -> None:
    engine = new_engine(backend)
    migrate.upgrade(engine)
    repo = Repository(engine)
    repo.load_dataset(chain_dataset(2))
    repo.delete_item("premises", "p0", actor="alice")
    assert [e["action"] for e in _entries(repo)][:1] == ["delete"]
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0005")
    # a bulk load is one entry per layer it wrote, with its ids inline again
    rows = _legacy_entries(engine)
    assert [(r[0], r[1]) for r in rows] == [("delete", "premises"), ("load", "nodes"),
                                            ("load", "premises"), ("load", "spans")]
    assert rows[1][2] == ["n0", "n1", "n2"]
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0003")
    assert "audit_log" not in sqlalchemy.inspect(engine).get_table_names()
    # the layers, their data and their spatial indexes are untouched
    page, _ = repo.query_items("nodes", bbox=(8.59, 50.09, 8.61, 50.11))
    assert len(page) == 3 and repo.count("premises") == 1
    migrate.upgrade(engine)
    assert _entries(repo) == []


def _legacy_entries(engine: sqlalchemy.Engine) -> list[tuple[str, str, list[str]]]:
    with engine.connect() as conn:
        rows = conn.execute(sqlalchemy.text(
            "SELECT action, layer, feature_ids FROM audit_log ORDER BY action, layer")).all()
    return [(a, layer, ids if isinstance(ids, list) else json.loads(ids))
            for a, layer, ids in rows]


@pytest.mark.parametrize("backend", BACKENDS)
def test_entries_logged_before_audit_ids_move_there(
        backend: str, new_engine: Callable[[str], sqlalchemy.Engine]) -> None:
    engine = new_engine(backend)
    migrate.upgrade(engine, "0005")
    with engine.begin() as conn:
        # as revision 0005 logged a load (one entry per layer, ids inline) and a patch
        for layer, ids, mode in (("nodes", ["n0", "n1"], "insert"), ("spans", ["s1"], "insert"),
                                 ("nodes", ["n0", "n1"], "upsert")):
            conn.execute(sqlalchemy.text(
                "INSERT INTO audit_log (changed_at, actor, action, layer, feature_ids, count, "
                "mode, data_version) VALUES (:t, 'cli', 'load', :layer, :ids, :n, :mode, 1)"),
                {"t": datetime.now(UTC), "layer": layer, "ids": json.dumps(ids), "n": len(ids),
                 "mode": mode})
        conn.execute(sqlalchemy.text(
            "INSERT INTO audit_log (changed_at, actor, action, layer, feature_ids, count, "
            "data_version) VALUES (:t, 'bob', 'patch', 'nodes', '[\"n1\"]', 1, 2)"),
            {"t": datetime.now(UTC)})
    migrate.upgrade(engine)
    repo = Repository(engine)
    history = _entries(repo, feature_id="n1", layer="nodes")
    assert [(e["action"], e["mode"]) for e in history] == [("patch", None), ("load", "upsert"),
                                                           ("load", "insert")]
    # bulk entries: no ids inline; the insert knows its counts, the upsert only its total
    assert [(e["feature_ids"], e["count"]) for e in history] == [(["n1"], 1), (None, 2),
                                                                 (None, 2)]
    assert history[2]["counts"] == {"nodes": {"inserted": 2, "replaced": 0, "deleted": 0}}
    assert history[1]["counts"] is None
    assert [(r["id"], r["action"]) for r in repo.audit_entry_ids(history[1]["id"])[0]] == \
        [("n0", "upsert"), ("n1", "upsert")]
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0005")
    assert sorted(r[2] for r in _legacy_entries(engine)) == [["n0", "n1"], ["n0", "n1"], ["n1"],
                                                            ["s1"]]
