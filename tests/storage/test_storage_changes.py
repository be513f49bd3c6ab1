"""The change feed (Repository.changes_since) on SpatiaLite and PostGIS.

The property: whatever writes follow data version ``v``, the frames that
``read_consistent`` gave at ``v`` with ``changes_since(v)`` applied (deleted ids
and the ids of the rows dropped, the rows appended) are exactly the frames it
gives now: same columns, dtypes, values and CRS.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import pandas as pd
import pytest
import shapely
import sqlalchemy
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netgis.dataset import Dataset
from netgis.errors import ConflictError, NotFoundError, ValidationError
from netgis.schema import LAYER_NAMES, LAYERS, STRAND_LAYER_NAMES
from netgis.storage import Repository, migrate
from netgis.storage.changes import ChangeSet, _deleted_ids, _deleting_entries, _rows
from netgis.storage.models import Base
from tests.storage.helpers import BACKENDS, chain_dataset, clean_repo

LON, LAT = 8.6, 50.1
#: The ids the writes draw from: few, so that ids are deleted and written again.
POOL = {"nodes": [f"n{i}" for i in range(6)], "spans": [f"s{i}" for i in range(5)],
        "premises": [f"p{i}" for i in range(8)], "areas": ["a0", "a1", "a2"]}
#: What a write may fail with (a missing id, one taken, a node still in use, bad values):
#: it then writes nothing, which the property covers as well.
REFUSED: tuple[type[Exception], ...] = (ValidationError, ConflictError, NotFoundError)


def by_id(frame: gpd.GeoDataFrame, layer: str) -> gpd.GeoDataFrame:
    return frame.sort_values(LAYERS[layer].id_field).reset_index(drop=True)


def apply_change(before: Dataset, change: ChangeSet) -> dict[str, gpd.GeoDataFrame]:
    """The frames of ``before`` brought to ``change.version``, each sorted by id."""
    out = {}
    for name in LAYER_NAMES:
        id_field = LAYERS[name].id_field
        frame, rows = before.layers()[name], change.rows[name]
        drop = set(change.deleted[name]) | set(rows[id_field])
        kept = frame[~frame[id_field].isin(drop)]
        if len(rows):
            kept = pd.concat([kept, rows], ignore_index=True) if len(kept) else rows
        out[name] = by_id(kept, name)
    return out


def assert_brings(before: Dataset, change: ChangeSet | None, repo: Repository) -> None:
    """``change`` applied to ``before`` gives what ``read_consistent`` gives now."""
    assert change is not None
    version, now = repo.read_consistent()
    assert change.version == version
    got = apply_change(before, change)
    for name in LAYER_NAMES:
        want = by_id(now.layers()[name], name)
        rows = change.rows[name]
        assert rows.crs is not None and rows.crs.to_epsg() == 4326, name
        assert list(rows.columns) == list(want.columns), name
        assert list(rows[LAYERS[name].id_field]) == sorted(rows[LAYERS[name].id_field]), name
        assert change.deleted[name] == sorted(set(change.deleted[name])), name
        assert not set(change.deleted[name]) & set(want[LAYERS[name].id_field]), name
        pd.testing.assert_frame_equal(got[name], want, check_dtype=True, obj=name)
        crs = got[name].crs
        assert crs is not None and crs.to_epsg() == 4326, name


# ---------------------------------------------------------------------- writes


def premise(pid: str, units: int, kind: str, connected: bool, address: str | None,
            dx: float) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"premise_id": [pid], "units": [units], "kind": [kind], "connected": [connected],
         "address": [address], "location_id": [None]},
        geometry=[shapely.Point(LON + dx, LAT + 0.0003)], crs=4326)


def node(nid: str, kind: str, name: str | None, dx: float) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"node_id": [nid], "kind": [kind], "status": ["in_service"],
                             "name": [name]},
                            geometry=[shapely.Point(LON + dx, LAT)], crs=4326)


def span(sid: str, a: str, b: str, fibers: int, dx: float) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"span_id": [sid], "from_node": [a], "to_node": [b], "status": ["in_service"],
         "fiber_count": [fibers], "fibers_used": [0], "placement": ["aerial"],
         "duct_id": [None], "owner": ["city"], "install_year": [2021]},
        geometry=[shapely.LineString([(LON + dx, LAT), (LON + dx + 0.001, LAT)])], crs=4326)


def area(aid: str, name: str | None, grow: float) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"area_id": [aid], "name": [name]},
                            geometry=[shapely.box(LON - 0.01 - grow, LAT - 0.01,
                                                  LON + 0.02, LAT + 0.01)], crs=4326)


offsets = st.integers(0, 30).map(lambda k: k * 0.0002)
names = st.one_of(st.none(), st.sampled_from(["North", "cabinet 7", "Süd"]))
items = {
    "premises": st.builds(premise, st.sampled_from(POOL["premises"]), st.integers(1, 4),
                          st.sampled_from(["residential", "business", "anchor"]), st.booleans(),
                          st.one_of(st.none(), st.just("1 Main St")), offsets),
    "nodes": st.builds(node, st.sampled_from(POOL["nodes"]),
                       st.sampled_from(["splice", "cabinet", "core"]), names, offsets),
    "spans": st.builds(span, st.sampled_from(POOL["spans"]), st.sampled_from(POOL["nodes"]),
                       st.sampled_from(POOL["nodes"]), st.sampled_from([12, 48, 144]), offsets),
    "areas": st.builds(area, st.sampled_from(POOL["areas"]), names,
                       st.integers(0, 3).map(lambda k: k * 0.001)),
}
patches: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "premises": st.fixed_dictionaries({}, optional={
        "units": st.integers(1, 9), "connected": st.booleans(),
        "address": st.one_of(st.none(), st.just("2 Side St")),
        "geometry": offsets.map(lambda dx: shapely.Point(LON + dx, LAT - 0.0003))}),
    "nodes": st.fixed_dictionaries({}, optional={"name": names,
                                                 "status": st.sampled_from(["planned"])}),
    "spans": st.fixed_dictionaries({}, optional={"fibers_used": st.integers(0, 60),
                                                 "owner": st.sampled_from(["city", None])}),
    "areas": st.fixed_dictionaries({"name": names}),
}
layers = st.sampled_from(LAYER_NAMES)


@dataclass
class Touched:
    """The ids the successful writes wrote or deleted, per layer (``everything``: a replace
    load deleted what was there)."""

    ids: dict[str, set[str]] = field(default_factory=lambda: {n: set() for n in LAYER_NAMES})
    everything: bool = False

    def add(self, layer: str, ids: Any) -> None:
        self.ids[layer].update(str(i) for i in ids)


@dataclass(frozen=True)
class Write:
    """One write, shown by what it does when Hypothesis reports an example."""

    label: str
    run: Callable[[Repository, Touched], None]

    def __call__(self, repo: Repository, touched: Touched) -> None:
        self.run(repo, touched)

    def __repr__(self) -> str:
        return self.label


def item_id(layer: str, item: gpd.GeoDataFrame) -> str:
    return str(item[LAYERS[layer].id_field].iat[0])


def insert(layer: str, item: gpd.GeoDataFrame) -> Write:
    def run(repo: Repository, touched: Touched) -> None:
        repo.insert_items(layer, item)
        touched.add(layer, [item_id(layer, item)])
    return Write(f"insert {layer} {item_id(layer, item)}", run)


def replace(layer: str, item: gpd.GeoDataFrame) -> Write:
    def run(repo: Repository, touched: Touched) -> None:
        repo.replace_item(layer, item_id(layer, item), item)
        touched.add(layer, [item_id(layer, item)])
    return Write(f"replace {layer} {item_id(layer, item)}", run)


def patch(layer: str, key: str, changes: dict[str, Any]) -> Write:
    def run(repo: Repository, touched: Touched) -> None:
        repo.patch_item(layer, key, changes)
        touched.add(layer, [key])
    return Write(f"patch {layer} {key} {changes}", run)


def remove(layer: str, key: str) -> Write:
    def run(repo: Repository, touched: Touched) -> None:
        repo.delete_item(layer, key)
        touched.add(layer, [key])
    return Write(f"delete {layer} {key}", run)


def rewrite(layer: str, item: gpd.GeoDataFrame) -> Write:
    """Delete and write again (other values): a row of the change, not a deleted id."""
    def run(repo: Repository, touched: Touched) -> None:
        run_all(repo, [remove(layer, item_id(layer, item))], touched)
        insert(layer, item)(repo, touched)
    return Write(f"delete and insert {layer} {item_id(layer, item)}", run)


def load(mode: str, n: int, per_span: int, step: float, prefix: str) -> Write:
    dataset = chain_dataset(n, premises_per_span=per_span, step_deg=step, prefix=prefix)

    def run(repo: Repository, touched: Touched) -> None:
        repo.load_dataset(dataset, mode=mode)  # type: ignore[arg-type]
        for name, frame in dataset.layers().items():
            touched.add(name, frame[LAYERS[name].id_field])
        touched.everything |= mode == "replace"
    return Write(f"load {mode} {prefix}chain({n}, {per_span}, {step})", run)


#: One write of any kind (refused ones write nothing).
writes = st.one_of(
    layers.flatmap(lambda n: items[n].map(lambda item: insert(n, item))),
    layers.flatmap(lambda n: items[n].map(lambda item: replace(n, item))),
    # patches of the ids the start holds, so that most change a row
    layers.flatmap(lambda n: st.tuples(st.sampled_from(POOL[n][:3]), patches[n]).map(
        lambda t: patch(n, *t))),
    layers.flatmap(lambda n: st.sampled_from(POOL[n]).map(lambda i: remove(n, i))),
    layers.flatmap(lambda n: items[n].map(lambda item: rewrite(n, item))),
    st.builds(load, st.sampled_from(["insert", "upsert", "replace"]), st.integers(1, 4),
              st.integers(1, 2), st.sampled_from([0.001, 0.0012]), st.sampled_from(["", "x"])),
)


def run_all(repo: Repository, ops: list[Write], touched: Touched) -> None:
    for op in ops:
        with contextlib.suppress(*REFUSED):
            op(repo, touched)


def start(repo: Repository) -> None:
    """A chain of 3 spans, 6 premises and one area."""
    clean_repo(repo)
    repo.load_dataset(chain_dataset(3, premises_per_span=2))
    repo.insert_items("areas", area("a0", "all", 0.0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_changes_applied_give_the_data_of_the_new_version(backend: str,
                                                          repo: Repository) -> None:
    @settings(max_examples=20, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(from_zero=st.booleans(), before=st.lists(writes, max_size=3),
           after=st.lists(writes, min_size=2, max_size=6))
    def check(from_zero: bool, before: list[Write], after: list[Write]) -> None:
        clean_repo(repo)
        if from_zero:
            since, held = repo.read_consistent()  # 0, nothing
        start(repo)
        run_all(repo, before, Touched())
        if not from_zero:
            since, held = repo.read_consistent()
        # since 0 every feature was written in the range
        touched = Touched(everything=from_zero)
        for op in after:
            run_all(repo, [op], touched)
            change = repo.changes_since(since)
            assert_brings(held, change, repo)
            assert change is not None
            for name in LAYER_NAMES:
                written = set(change.rows[name][LAYERS[name].id_field]) | set(
                    change.deleted[name])
                # nothing but what the writes touched (a replace load touches everything)
                assert touched.everything or written <= touched.ids[name], name
        # the count a max_rows check compares
        change = repo.changes_since(since)
        assert change is not None
        assert repo.changes_since(since, max_rows=change.count) is not None
        if change.count:
            assert repo.changes_since(since, max_rows=change.count - 1) is None

    check()


@pytest.mark.parametrize("backend", BACKENDS)
def test_changes_since_zero_is_the_whole_dataset(backend: str, repo: Repository) -> None:
    start(repo)
    version, dataset = repo.read_consistent()
    change = repo.changes_since(0)
    assert change is not None and (change.since, change.version) == (0, version) == (0, 2)
    for name in LAYER_NAMES:
        # exactly the validated frames, row for row
        pd.testing.assert_frame_equal(change.rows[name], by_id(dataset.layers()[name], name),
                                      check_dtype=True, obj=name)
        assert change.deleted[name] == []
    assert change.count == 4 + 3 + 6 + 1 and not change.empty
    assert change.bulk and not change.replaced_all
    # only the area's write after the load
    later = repo.changes_since(1)
    assert later is not None and later.count == 1 and not later.bulk
    assert list(later.rows["areas"]["area_id"]) == ["a0"]
    assert all(len(later.rows[n]) == 0 for n in ("nodes", "spans", "premises"))
    # the empty frames are the clean ones too
    pd.testing.assert_frame_equal(later.rows["nodes"], dataset.nodes.iloc[0:0],
                                  check_dtype=True, check_index_type=False)


@pytest.mark.parametrize("backend", BACKENDS)
def test_versions_out_of_range_and_limits(backend: str, repo: Repository) -> None:
    assert repo.changes_since(0) is not None and repo.changes_since(0).empty  # type: ignore[union-attr]
    start(repo)
    same = repo.changes_since(2)
    assert same is not None and same.empty and (same.since, same.version) == (2, 2)
    assert not same.bulk and set(same.rows) == set(same.deleted) == set(LAYER_NAMES)
    assert repo.changes_since(3) is None  # newer than the data
    assert repo.changes_since(-1) is None
    assert repo.changes_since(2**40) is None  # beyond any integer column, still no error
    assert repo.changes_since(2, max_rows=0) is not None  # nothing to count
    assert repo.changes_since(0, max_rows=13) is None  # 14 rows
    assert repo.changes_since(0, max_rows=14) is not None
    repo.delete_item("premises", "p0")
    change = repo.changes_since(1, max_rows=2)  # the area and the deleted id
    assert change is not None and change.count == 2
    assert change.deleted["premises"] == ["p0"] and list(change.rows["areas"]["area_id"]) == [
        "a0"]
    assert repo.changes_since(1, max_rows=1) is None
    with pytest.raises(ValidationError):
        repo.changes_since(0, max_rows=-1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bulk_and_replace_flags(backend: str, repo: Repository) -> None:
    start(repo)
    repo.load_dataset(chain_dataset(2, prefix="x"), mode="insert")  # version 3
    repo.patch_item("premises", "p1", {"units": 7})  # 4
    repo.load_dataset(chain_dataset(1), mode="upsert")  # 5
    repo.load_dataset(chain_dataset(1), mode="replace")  # 6
    repo.delete_item("premises", "p0")  # 7

    def flags(since: int) -> tuple[bool, bool]:
        change = repo.changes_since(since)
        assert change is not None
        return change.bulk, change.replaced_all

    assert flags(0) == (True, True)
    assert flags(2) == (True, True)
    assert flags(3) == (True, True)
    assert flags(4) == (True, True)
    assert flags(5) == (True, True)
    assert flags(6) == (False, False)
    assert flags(3) == flags(5)
    assert flags(1) == (True, True)
    upsert_only = repo.changes_since(4)
    assert upsert_only is not None
    # the replace load deleted what the chain of 1 does not hold, the x-chain included, and
    # the delete after it p0, the chain's one premise
    assert upsert_only.deleted["nodes"] == ["n2", "n3", "xn0", "xn1", "xn2"]
    assert upsert_only.deleted["premises"] == ["p0", "p1", "p2", "p3", "p4", "p5", "xp0",
                                               "xp1"]
    assert upsert_only.deleted["areas"] == ["a0"]
    assert list(upsert_only.rows["nodes"]["node_id"]) == ["n0", "n1"]
    # an insert load and an upsert load alone are bulk, not replace
    clean_repo(repo)
    start(repo)
    repo.load_dataset(chain_dataset(1, prefix="y"))
    repo.load_dataset(chain_dataset(1, prefix="y"), mode="upsert")
    assert flags(2) == (True, False)
    assert flags(3) == (True, False)


@pytest.mark.parametrize("backend", BACKENDS)
def test_deleted_and_written_again_within_the_range(backend: str, repo: Repository) -> None:
    start(repo)
    since, held = repo.read_consistent()
    repo.delete_item("premises", "p2")
    gone = repo.changes_since(since)
    assert gone is not None and gone.deleted["premises"] == ["p2"]
    assert len(gone.rows["premises"]) == 0
    repo.insert_items("premises", premise("p2", 3, "business", True, None, 0.0004))
    again = repo.changes_since(since)
    assert again is not None
    # present now: a row, not a deleted id
    assert again.deleted["premises"] == [] and list(again.rows["premises"]["premise_id"]) == [
        "p2"]
    assert again.rows["premises"]["units"].tolist() == [3]
    assert again.count == 1
    assert_brings(held, again, repo)
    # written and deleted after since: a deleted id (absent now), not a row
    repo.insert_items("premises", premise("p9", 1, "residential", False, None, 0.0))
    repo.delete_item("premises", "p9")
    change = repo.changes_since(since)
    assert change is not None and change.deleted["premises"] == ["p9"]
    assert_brings(held, change, repo)
    # a node deleted twice in the range (deleted, written, deleted) is named once
    repo.insert_items("nodes", node("n9", "splice", None, 0.0))
    repo.delete_item("nodes", "n9")
    repo.insert_items("nodes", node("n9", "splice", None, 0.0))
    repo.delete_item("nodes", "n9")
    change = repo.changes_since(since)
    assert change is not None and change.deleted["nodes"] == ["n9"]
    assert change.count == 3


# --------------------------------------------------------- migration 0007


NEW_INDEXES = {("nodes", "ix_nodes_row_version"), ("spans", "ix_spans_row_version"),
               ("premises", "ix_premises_row_version"), ("areas", "ix_areas_row_version"),
               ("audit_log", "ix_audit_log_data_version")}


def _indexes(engine: sqlalchemy.Engine) -> set[tuple[str, str]]:
    inspector = sqlalchemy.inspect(engine)
    return {(table, ix["name"]) for table in ("nodes", "spans", "premises", "areas", "audit_log")
            for ix in inspector.get_indexes(table) if ix["name"] is not None}


def _missing_from_database(engine: sqlalchemy.Engine) -> list[Any]:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"include_object": migrate.include_object,
                                                     "compare_type": True})
        return list(compare_metadata(ctx, Base.metadata))


@pytest.mark.parametrize("backend", BACKENDS)
def test_change_feed_migration_goes_both_ways(
        backend: str, new_engine: Callable[[str], sqlalchemy.Engine]) -> None:
    engine = new_engine(backend)
    migrate.upgrade(engine, "0006")
    assert not _indexes(engine) & NEW_INDEXES
    repo = Repository(engine)
    repo.load_dataset(chain_dataset(3))
    repo.delete_item("premises", "p1")
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert _indexes(engine) >= NEW_INDEXES
    assert _missing_from_database(engine) == []
    change = repo.changes_since(1)
    assert change is not None and change.deleted["premises"] == ["p1"]
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0006")
    assert migrate.current_revision(engine) == "0006"
    assert not _indexes(engine) & NEW_INDEXES
    # the model has exactly these five indexes more than revision 0006 (and the plan
    # tables of revision 0008, the strand tables of 0009, kpi_snapshots.estimated of 0010
    # and the streets of 0011)
    diffs = _missing_from_database(engine)
    later = {"plan_audit", *STRAND_LAYER_NAMES}
    indexes = [(d[0], d[1].table.name, d[1].name) for d in diffs if d[0] == "add_index"]
    tables = sorted(d[1].name for d in diffs if d[0] == "add_table")
    columns = [(d[2], d[3].name) for d in diffs if d[0] == "add_column"]
    assert sorted(i for i in indexes if i[1] not in later) == sorted(
        ("add_index", table, name) for table, name in NEW_INDEXES)
    assert tables == sorted(["plan_audit", "plan_features", "plans", "streets",
                             *STRAND_LAYER_NAMES])
    assert sorted(columns) == [("audit_log", "plan"), ("kpi_snapshots", "estimated")]
    assert len(diffs) == len(indexes) + len(tables) + len(columns)
    # data and spatial indexes untouched
    assert repo.count("premises") == 2
    page, _ = repo.query_items("nodes", bbox=(8.59, 50.09, 8.61, 50.11))
    assert len(page) == 4
    migrate.upgrade(engine)
    assert _indexes(engine) >= NEW_INDEXES and _missing_from_database(engine) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_writes_older_than_the_audit_log_make_the_change_unknown(
        backend: str, new_engine: Callable[[str], sqlalchemy.Engine]) -> None:
    engine = new_engine(backend)
    migrate.upgrade(engine, "0003")
    with engine.begin() as conn:
        # seven writes before the audit log existed (revision 0004): no entries for them
        conn.execute(sqlalchemy.text(
            "UPDATE netgis_meta SET value = 7 WHERE key = 'data_version'"))
    migrate.upgrade(engine)
    repo = Repository(engine)
    assert repo.changes_since(0) is None and repo.changes_since(6) is None
    now = repo.changes_since(7)
    assert now is not None and now.empty
    repo.load_dataset(chain_dataset(1))
    change = repo.changes_since(7)
    assert change is not None and len(change.rows["nodes"]) == 2
    assert repo.changes_since(6) is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_replace_load_logged_before_audit_ids_makes_the_change_unknown(
        backend: str, new_engine: Callable[[str], sqlalchemy.Engine]) -> None:
    engine = new_engine(backend)
    migrate.upgrade(engine, "0005")
    with engine.begin() as conn:
        # as revision 0005 logged a replace load: the ids it wrote, not those it deleted
        conn.execute(sqlalchemy.text(
            "INSERT INTO audit_log (changed_at, actor, action, layer, feature_ids, count, "
            "mode, data_version) VALUES (CURRENT_TIMESTAMP, 'cli', 'load', 'nodes', '[]', 0, "
            "'replace', 1)"))
        conn.execute(sqlalchemy.text(
            "UPDATE netgis_meta SET value = 1 WHERE key = 'data_version'"))
    migrate.upgrade(engine)
    repo = Repository(engine)
    assert repo.changes_since(0) is None
    repo.load_dataset(chain_dataset(1))
    assert repo.changes_since(0) is None
    change = repo.changes_since(1)  # after it: known
    assert change is not None and change.bulk and not change.replaced_all


# ------------------------------------------------------------ query plans


def test_spatialite_reads_a_change_on_the_new_indexes(tmp_path: Any) -> None:
    repo = Repository.from_url(f"sqlite:///{tmp_path / 'plan.db'}")
    repo.init()

    def plan(conn: sqlalchemy.Connection, stmt: Any, **params: Any) -> str:
        sql = stmt.params(**params).compile(conn, compile_kwargs={"literal_binds": True})
        return " / ".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))

    try:
        with repo.engine.connect() as conn:
            for name in LAYER_NAMES:
                assert f"USING INDEX ix_{name}_row_version (row_version>?)" in plan(
                    conn, _rows(name), since=5), name
            assert "USING INDEX ix_audit_log_data_version (data_version>?)" in plan(
                conn, _deleting_entries(), since=5)
            # the deleted ids of the entries on the primary key of audit_ids, not a scan
            deleted = plan(conn, _deleted_ids("premises"), entries=[5, 7])
            assert "SEARCH audit_ids USING INDEX" in deleted, deleted
            assert "(audit_id=? AND layer=?)" in deleted and "SCAN" not in deleted, deleted
    finally:
        repo.close()
