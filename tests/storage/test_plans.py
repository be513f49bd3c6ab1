"""Design plans in the database (netgis.storage.plans), on SpatiaLite and PostGIS: a plan
is main plus its edits, main is untouched until a merge, and a merge refuses what main
changed since."""

from __future__ import annotations

from collections.abc import Callable

import geopandas as gpd
import pytest
import shapely
import sqlalchemy
from alembic import command

from netgis.errors import ConflictError, NotFoundError, ValidationError
from netgis.storage import Repository, migrate
from netgis.storage.plans import Plans
from tests.storage.helpers import BACKENDS, chain_dataset


def _point_node(node_id: str, lon: float, lat: float, kind: str = "splice") -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"node_id": [node_id], "kind": [kind], "status": ["in_service"]},
                            geometry=[shapely.Point(lon, lat)], crs=4326)


def _span(span_id: str, a: str, b: str, line: list[tuple[float, float]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"span_id": [span_id], "from_node": [a], "to_node": [b],
                             "status": ["in_service"], "placement": ["aerial"],
                             "fiber_count": [48]},
                            geometry=[shapely.LineString(line)], crs=4326)


def _main_state(repo: Repository) -> tuple[int, list[object], object]:
    version, ds = repo.read_consistent()
    entries, total = repo.audit_log(limit=100)
    layers = {name: frame.to_wkb().to_dict() for name, frame in ds.layers().items()}
    return version, [total, [e["id"] for e in entries]], layers


@pytest.fixture
def plans(repo: Repository) -> Plans:
    repo.load_dataset(chain_dataset(4))
    return Plans(repo)


def test_plan_edits_leave_main_untouched_and_show_in_the_plan(repo: Repository,
                                                             plans: Plans) -> None:
    before = _main_state(repo)
    info = plans.create("north", actor="alice", description="two builds")
    assert (info.base_version, info.version, info.created_by) == (1, 0, "alice")
    # a new node and a span from the chain's last node to it; a premise patched; one deleted
    plans.write("north", "nodes", _point_node("x1", 8.6045, 50.1005), actor="alice")
    plans.write("north", "spans", _span("xs1", "n4", "x1", [(8.604, 50.1), (8.6045, 50.1005)]),
                actor="alice")
    row = repo.get_item("premises", "p0")
    row["units"] = 30
    plans.write("north", "premises", row, actor="alice")
    version = plans.delete("north", "premises", ["p1"], actor="alice")
    assert version == 4
    assert _main_state(repo) == before
    _, ds = plans.dataset("north")
    assert "xs1" in set(ds.spans["span_id"]) and "x1" in set(ds.nodes["node_id"])
    assert "p1" not in set(ds.premises["premise_id"])
    assert int(ds.premises.set_index("premise_id").loc["p0", "units"]) == 30
    info = plans.get("north")
    assert info.edits["premises"] == {"written": 1, "deleted": 1}
    entries, total = plans.audit("north")
    assert total == 4 and [(e["action"], e["layer"], e["feature_ids"], e["plan_version"],
                            e["actor"]) for e in entries] == [
        ("delete", "premises", ["p1"], 4, "alice"), ("write", "premises", ["p0"], 3, "alice"),
        ("write", "spans", ["xs1"], 2, "alice"), ("write", "nodes", ["x1"], 1, "alice")]
    assert info.edits["spans"] == {"written": 1, "deleted": 0}
    frame, etag = plans.item("north", "premises", "p0")
    assert etag == "p3" and int(frame["units"].iat[0]) == 30
    assert plans.item("north", "premises", "p2")[1].startswith("m")
    with pytest.raises(NotFoundError):
        plans.item("north", "premises", "p1")
    # main's later edits of other features show in the plan at once
    repo.patch_item("premises", "p2", {"units": 7})
    _, ds = plans.dataset("north")
    assert int(ds.premises.set_index("premise_id").loc["p2", "units"]) == 7


def test_plan_writes_are_validated_like_writes_to_main(plans: Plans) -> None:
    plans.create("p")
    with pytest.raises(ValidationError) as err:
        plans.write("p", "spans", _span("xs1", "n4", "nowhere", [(8.604, 50.1), (8.605, 50.1)]))
    assert any(problem.layer == "spans" for problem in err.value.problems)
    bad = _point_node("x1", 8.6, 50.1)
    bad["kind"] = "teleporter"
    with pytest.raises(ValidationError):
        plans.write("p", "nodes", bad)
    with pytest.raises(ConflictError):
        plans.write("p", "nodes", _point_node("n1", 8.6, 50.1), mode="insert")
    with pytest.raises(NotFoundError):
        plans.write("p", "nodes", _point_node("x9", 8.6, 50.1), mode="replace")
    with pytest.raises(ConflictError) as used:
        plans.delete("p", "nodes", ["n2"])
    assert "s1" in str(used.value) and "s2" in str(used.value)
    with pytest.raises(NotFoundError):
        plans.delete("p", "premises", ["nope"])
    # nothing of the refused writes stayed
    assert plans.get("p").edits["nodes"] == {"written": 0, "deleted": 0}
    assert plans.edits("p").empty


def test_plan_names_and_lifecycle(plans: Plans) -> None:
    with pytest.raises(ValidationError):
        plans.create("../etc")
    with pytest.raises(ValidationError):
        plans.create("")
    plans.create("b")
    plans.create("a")
    with pytest.raises(ConflictError):
        plans.create("a")
    assert [p.name for p in plans.all()] == ["a", "b"]
    plans.write("a", "nodes", _point_node("x1", 8.6, 50.1))
    plans.discard("a")
    assert [p.name for p in plans.all()] == ["b"]
    for call in (lambda: plans.get("a"), lambda: plans.discard("a"),
                 lambda: plans.edits("a"), lambda: plans.merge("a")):
        with pytest.raises(NotFoundError):
            call()


def test_merge_applies_every_edit_in_one_audited_change(repo: Repository,
                                                       plans: Plans) -> None:
    plans.create("north")
    plans.write("north", "nodes", _point_node("x1", 8.6045, 50.1005))
    plans.write("north", "spans", _span("xs1", "n4", "x1", [(8.604, 50.1), (8.6045, 50.1005)]))
    row = repo.get_item("premises", "p0")
    row["units"] = 30
    plans.write("north", "premises", row)
    plans.delete("north", "premises", ["p1"])
    _, planned = plans.dataset("north")
    counts = plans.merge("north", actor="bob")
    assert counts.data_version == 2 and repo.data_version() == 2
    assert counts["nodes"] == 1 and counts["spans"] == 1 and counts["premises"] == 1
    _, main = repo.read_consistent()
    for layer in ("nodes", "spans", "premises"):
        key = main.layers()[layer].columns[0]
        got = main.layers()[layer].sort_values(key).reset_index(drop=True)
        want = planned.layers()[layer].sort_values(key).reset_index(drop=True)
        assert got[key].tolist() == want[key].tolist(), layer
    assert int(repo.get_item("premises", "p0")["units"].iat[0]) == 30
    entries, _ = repo.audit_log(limit=5)
    assert len(entries) == 2  # the load and the merge
    merge = entries[0]
    assert (merge["action"], merge["plan"], merge["actor"]) == ("merge", "north", "bob")
    assert merge["counts"]["premises"] == {"inserted": 0, "replaced": 1, "deleted": 1}
    assert merge["counts"]["spans"] == {"inserted": 1, "replaced": 0, "deleted": 0}
    assert plans.all() == []
    change = repo.changes_since(1)
    assert change is not None and change.bulk  # one analysis of the merged data


@pytest.mark.parametrize("main_edit", ["patch", "delete", "create"])
def test_a_feature_main_changed_since_is_a_conflict_and_nothing_merges(
        repo: Repository, plans: Plans, main_edit: str) -> None:
    plans.create("p")
    row = repo.get_item("premises", "p0")
    row["units"] = 30
    plans.write("p", "premises", row)
    new = row.copy()
    new["premise_id"] = "p-new"
    plans.write("p", "premises", new)
    if main_edit == "patch":
        repo.patch_item("premises", "p0", {"units": 2})
        conflict = ("premises", "p0")
    elif main_edit == "delete":
        repo.delete_item("premises", "p0")
        conflict = ("premises", "p0")
    else:
        repo.insert_items("premises", new)
        conflict = ("premises", "p-new")
    before = _main_state(repo)
    assert [(c.layer, c.id) for c in plans.conflicts("p")] == [conflict]
    with pytest.raises(ConflictError) as err:
        plans.merge("p")
    assert conflict[1] in str(err.value)
    assert _main_state(repo) == before
    assert plans.get("p").edits["premises"]["written"] == 2
    # the planner settles it: the plan's content is kept, main's version is its new start
    plans.rebase("p", actor="carol")
    assert plans.audit("p")[0][0]["action"] == "rebase"
    assert plans.conflicts("p") == []
    assert plans.get("p").base_version == repo.data_version()
    plans.merge("p")
    assert int(repo.get_item("premises", "p0")["units"].iat[0]) == 30
    assert int(repo.get_item("premises", "p-new")["units"].iat[0]) == 30


def test_merge_deletes_nodes_after_the_spans_that_named_them(repo: Repository,
                                                            plans: Plans) -> None:
    plans.create("p")
    plans.delete("p", "premises", ["p3"])
    plans.delete("p", "spans", ["s3"])
    plans.delete("p", "nodes", ["n4"])
    plans.merge("p")
    _, main = repo.read_consistent()
    assert "n4" not in set(main.nodes["node_id"]) and "s3" not in set(main.spans["span_id"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_plan_migration_goes_both_ways_and_keeps_the_audit_log(
        backend: str, new_engine: Callable[[str], sqlalchemy.Engine]) -> None:
    engine = new_engine(backend)
    migrate.upgrade(engine, "0007")
    repo = Repository(engine)
    repo.load_dataset(chain_dataset(3))  # written at 0007: no plan column yet
    migrate.upgrade(engine)
    plans = Plans(repo)
    plans.create("p")
    plans.delete("p", "premises", ["p0"])
    plans.merge("p")
    entries, _ = repo.audit_log()
    assert [(e["action"], e["plan"]) for e in entries] == [("merge", "p"), ("load", None)]
    ids_before = repo.audit_entry_ids(entries[1]["id"])
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0007")
    tables = sqlalchemy.inspect(engine).get_table_names()
    assert not {"plans", "plan_features", "plan_audit"} & set(tables)
    assert "plan" not in {c["name"] for c in sqlalchemy.inspect(engine).get_columns("audit_log")}
    # the entries and their ids (audit_ids, which cascade from audit_log) are all there
    with engine.connect() as conn:
        assert conn.execute(sqlalchemy.text("SELECT count(*) FROM audit_log")).scalar() == 2
    assert repo.audit_entry_ids(entries[1]["id"]) == ids_before
    migrate.upgrade(engine)
    assert [e["plan"] for e in repo.audit_log()[0]] == [None, None]
    assert Plans(repo).all() == []


def test_planned_spans_and_nodes_go_in_service_in_one_write(repo: Repository,
                                                           plans: Plans) -> None:
    # main has a planned spur: node x1 and span xs1, both planned
    node = _point_node("x1", 8.6045, 50.1005)
    node["status"] = "planned"
    repo.insert_items("nodes", node)
    span = _span("xs1", "n4", "x1", [(8.604, 50.1), (8.6045, 50.1005)])
    span["status"] = "planned"
    repo.insert_items("spans", span)
    version = repo.data_version()
    plans.create("p")
    # a planned span of the plan's own is switched on too; main's planned ones are found
    own = _span("xs2", "n3", "x1", [(8.603, 50.1), (8.6045, 50.1005)])
    own["status"] = "planned"
    plans.write("p", "spans", own)
    plan_version, switched = plans.switch_on("p", all_planned=True)
    assert switched == {"spans": ["xs1", "xs2"], "nodes": ["x1"]}
    assert plan_version == plans.get("p").version == 2
    _, ds = plans.dataset("p")
    status = dict(zip(ds.spans["span_id"], ds.spans["status"], strict=True))
    assert status["xs1"] == status["xs2"] == "in_service"
    assert set(ds.nodes.loc[ds.nodes["node_id"] == "x1", "status"]) == {"in_service"}
    assert repo.data_version() == version  # main: still planned
    assert repo.get_item("spans", "xs1")["status"].iat[0] == "planned"
    with pytest.raises(NotFoundError):
        plans.switch_on("p", spans=["nope"])
