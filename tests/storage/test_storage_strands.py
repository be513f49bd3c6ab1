"""The strand layers in the database (migration 0009), on SpatiaLite and PostGIS: bulk loads in
every mode with one audit entry, reads in one snapshot, `db load` / `db export`, single-row
and batch writes that keep the strand plant valid, route writes that would break it, and a
database without strand rows behaving exactly as before."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
import sqlalchemy
from alembic import command

from netgis.errors import (
    ConflictError,
    NotFoundError,
    PreconditionFailed,
    ValidationError,
)
from netgis.io import write_dataset
from netgis.io.strands import read_strand_tables, write_strand_tables
from netgis.schema import STRAND_KEYS, STRAND_LAYER_NAMES, STRAND_LAYERS
from netgis.storage import Repository, migrate
from netgis.storage.models import STRAND_TABLES
from netgis.storage.plans import Plans
from netgis.storage.strand_store import StrandEdit
from netgis.strand_plant import validate_strands
from tests.storage.helpers import BACKENDS, chain_dataset
from tests.storage.strand_helpers import IDS, frame, route, strand_tables


def _typed() -> dict[str, pd.DataFrame]:
    """The plant as validation types it, with a cable's fibers_per_tube left empty as given
    (what the database stores)."""
    tables = validate_strands(route(), strand_tables()).raise_for_errors()
    out = {name: t.copy() for name, t in tables.items()}
    out["cables"]["fibers_per_tube"] = pd.Series([None], dtype=object)
    return out


def _same(got: dict[str, pd.DataFrame], want: dict[str, pd.DataFrame]) -> None:
    for name in STRAND_LAYER_NAMES:
        a = got[name].reset_index(drop=True).astype(object)
        b = want[name].reset_index(drop=True).astype(object)
        a, b = (f.where(f.notna(), None) for f in (a, b))
        assert a.to_dict("records") == b.to_dict("records"), name


def _loaded(repo: Repository) -> int:
    return repo.load_dataset(route(), strands=strand_tables()).data_version


# ------------------------------------------------------------------------------ the model

def test_strand_tables_are_the_contract() -> None:
    for name, layer in STRAND_LAYERS.items():
        table = STRAND_TABLES[name]
        assert [c.name for c in table.columns] == [*layer.field_names, "row_version"]
        key = STRAND_KEYS.get(name, (layer.id_field,))
        assert tuple(c.name for c in table.primary_key.columns) == key
        want = {"text": sqlalchemy.String, "int": sqlalchemy.Integer,
                "float": sqlalchemy.Float}
        for f in layer.fields:
            assert isinstance(table.c[f.name].type, want[f.type]), (name, f.name)
            assert table.c[f.name].nullable == (not f.required and f.default is None
                                                 and f.name not in key), (name, f.name)
        assert "geometry" not in table.c


# ------------------------------------------------------------------------------ bulk loads

@pytest.mark.parametrize("backend", BACKENDS)
def test_load_with_strands_reads_back_in_one_snapshot(repo: Repository) -> None:
    counts = repo.load_dataset(route(), strands=strand_tables(), actor="alice")
    assert counts.data_version == 1
    assert {name: counts[name] for name in STRAND_LAYER_NAMES} == {
        name: len(ids) for name, ids in IDS.items()}
    _same(repo.read_strand_tables(), _typed())
    version, dataset = repo.read_consistent_plant()
    assert version == 1 and len(dataset.premises) == 3
    _same(dataset.strands, _typed())
    assert repo.read_consistent()[1].strands == {}  # the route read is what it was
    # one audit entry for the whole load, every strand row among its ids
    (entry,), matched = repo.audit_log()
    assert matched == 1 and entry["action"] == "load" and entry["actor"] == "alice"
    assert entry["counts"]["cable_spans"] == {"inserted": 3, "replaced": 0, "deleted": 0}
    page, _ = repo.audit_entry_ids(entry["id"], layer="cable_spans")
    assert [(f["id"], f["action"]) for f in page] == [(i, "insert") for i in IDS["cable_spans"]]
    assert repo.stats()["strand_layers"]["drops"] == 2
    # the change feed names the layers a write touched
    change = repo.changes_since(0)
    assert change is not None and change.strands == frozenset(STRAND_LAYER_NAMES)


@pytest.mark.parametrize("backend", BACKENDS)
def test_upsert_and_insert_merge_with_the_stored_plant(repo: Repository) -> None:
    _loaded(repo)
    # a file holding a drop for p0 alone: valid only with the stored cable and splitter
    extra = {"drops": frame("drops", [("D3", "p0", "n2", "out", "SP1", "3", None, "12.5")])}
    counts = repo.load_dataset(route(), mode="upsert", strands=extra)
    assert counts["drops"] == 1 and counts["cables"] == 0
    assert list(repo.read_strand_tables()["drops"]["drop_id"]) == ["D1", "D2", "D3"]
    entry = repo.audit_log()[0][0]
    assert entry["counts"]["drops"] == {"inserted": 1, "replaced": 0, "deleted": 0}
    # upsert replaces a row of the same key
    moved = {"drops": frame("drops", [("D3", "p0", "n2", "out", "SP1", "4", None, None)])}
    repo.load_dataset(route(), mode="upsert", strands=moved)
    assert repo.read_strand_tables()["drops"]["src_num"].tolist() == [1, 2, 4]
    page, _ = repo.audit_entry_ids(repo.audit_log()[0][0]["id"], layer="drops")
    assert page[0]["action"] == "replace" and page[0]["before"]["properties"]["src_num"] == 3
    # insert refuses keys that are stored, naming them; nothing changes (the route layers
    # of this load are new: a second network beside the first)
    version = repo.data_version()
    with pytest.raises(ConflictError) as err:
        repo.load_dataset(chain_dataset(2, prefix="x"), mode="insert", strands=moved)
    assert [(p.layer, p.id) for p in err.value.problems] == [("drops", "D3")]
    assert repo.data_version() == version and repo.count("nodes") == 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_invalid_plant_loads_nothing(repo: Repository) -> None:
    bad = strand_tables()
    bad["cable_spans"].loc[1, "span_id"] = "s9"
    with pytest.raises(ValidationError) as err:
        repo.load_dataset(route(), strands=bad)
    assert any(p.layer == "cable_spans" and "s9" in p.reason for p in err.value.problems)
    assert repo.data_version() == 0 and repo.count("nodes") == 0
    assert repo.audit_log()[1] == 0
    # the merged state counts: a drop at a splitter output already used
    _loaded(repo)
    clash = {"drops": frame("drops", [("D9", "p0", "n2", "out", "SP1", "1", None, None)])}
    with pytest.raises(ValidationError) as err:
        repo.load_dataset(route(), mode="upsert", strands=clash)
    assert {p.id for p in err.value.problems} >= {"D9"}
    assert repo.data_version() == 1
    assert list(repo.read_strand_tables()["drops"]["drop_id"]) == ["D1", "D2"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_replace_holds_exactly_the_dataset(repo: Repository) -> None:
    _loaded(repo)
    # a route load that says nothing of strands keeps them, and checks them: a route
    # dataset without span s2 breaks cable C1
    short = route()
    short.spans = short.spans[short.spans["span_id"] != "s2"].reset_index(drop=True)
    with pytest.raises(ValidationError):
        repo.load_dataset(short, mode="replace")
    assert repo.data_version() == 1
    repo.load_dataset(route(), mode="replace")  # strands=None: left as they are
    assert len(repo.read_strand_tables()["cable_spans"]) == 3
    # strands={}: this dataset has none, so the database holds none afterwards
    counts = repo.load_dataset(route(), mode="replace", strands={})
    assert all(counts[name] == 0 for name in STRAND_LAYER_NAMES)
    assert not any(len(t) for t in repo.read_strand_tables().values())
    entry = repo.audit_log()[0][0]
    assert entry["counts"]["connections"] == {"inserted": 0, "replaced": 0, "deleted": 2}
    assert "strand_layers" not in repo.stats()
    assert repo.changes_since(2).strands == frozenset(STRAND_LAYER_NAMES)  # type: ignore[union-attr]


@pytest.mark.parametrize("backend", BACKENDS)
def test_without_strand_rows_loads_are_what_they_were(repo: Repository) -> None:
    counts = repo.load_dataset(route())
    assert sorted(counts) == ["areas", "nodes", "premises", "spans"] and counts.warnings == []
    counts = repo.load_dataset(route(), mode="replace", strands={})
    assert sorted(counts) == ["areas", "nodes", "premises", "spans"]
    entry = repo.audit_log()[0][0]
    assert sorted(entry["counts"]) == ["areas", "nodes", "premises", "spans"]
    assert sorted(repo.stats()) == ["data_version", "dialect", "layers", "revision"]
    assert repo.read_consistent_plant()[1].strands == {}
    assert repo.changes_since(0).strands == frozenset()  # type: ignore[union-attr]


# ------------------------------------------------------------------------------ writes

@pytest.mark.parametrize("backend", BACKENDS)
def test_single_row_writes_keep_the_plant_valid(repo: Repository) -> None:
    _loaded(repo)
    store = repo.strands
    rows, version = store.get("strand_state", "C1:12")
    assert version == 1 and rows.to_dict("records") == [
        {"cable_id": "C1", "strand": 12, "state": "reserved"}]
    ids = store.insert("strand_state", frame("strand_state", [("C1", "11", "broken")]),
                       actor="bob")
    assert ids == ["C1:11"] and store.get("strand_state", "C1:11")[1] == 2
    assert store.patch("cables", "C1", {"name": "main trunk"}, if_match=[1]) == 3
    with pytest.raises(PreconditionFailed):
        store.patch("cables", "C1", {"name": "again"}, if_match=[1])
    assert store.replace("splitters", "SP1", {"node_id": "n2", "ratio": 16}) == 4
    assert store.get("splitters", "SP1")[0]["ratio"].tolist() == [16]
    store.delete("strand_state", "C1:11", actor="bob")
    with pytest.raises(NotFoundError):
        store.get("strand_state", "C1:11")
    entries, _ = repo.audit_log(layer="strand_state")
    assert [(e["action"], e["actor"], e["feature_ids"]) for e in entries[:2]] == [
        ("delete", "bob", ["C1:11"]), ("create", "bob", ["C1:11"])]
    assert entries[0]["before"]["features"][0] == {
        "type": "Feature", "id": "C1:11", "geometry": None,
        "properties": {"cable_id": "C1", "strand": 11, "state": "broken"}}
    patched = repo.audit_log(layer="cables")[0][0]
    assert patched["before"]["features"][0]["properties"]["name"] == "trunk"
    assert patched["after"]["features"][0]["properties"]["name"] == "main trunk"
    change = repo.changes_since(1)
    assert change is not None and change.strands == {"strand_state", "cables", "splitters"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_invalid_write_changes_nothing(repo: Repository) -> None:
    _loaded(repo)
    store = repo.strands
    before = repo.read_strand_tables()
    failures = [
        # a span that does not touch the previous node of the cable
        lambda: store.patch("cable_spans", "C1:2", {"span_id": "s2"}),
        # an OLT port a connection names
        lambda: store.delete("olt_ports", "P1"),
        # a strand beyond the cable's fiber count
        lambda: store.insert("strand_state", frame("strand_state", [("C1", "13", "broken")])),
        # a cable alone, without its cable_spans
        lambda: store.insert("cables", frame("cables", [
            ("C2", "n0", "n1", "4", None, None, None, None)])),
        # a field the layer does not have
        lambda: store.patch("drops", "D1", {"colour": "blue"}),
        # a key that cannot change
        lambda: store.patch("cable_spans", "C1:2", {"seq": 5}),
    ]
    for fail in failures:
        with pytest.raises(ValidationError) as err:
            fail()
        assert err.value.problems
    with pytest.raises(ConflictError):
        store.insert("drops", frame("drops", [("D1", "p2", "n2", "out", "SP1", "1", None, None)]))
    with pytest.raises(NotFoundError):
        store.patch("cables", "C9", {"name": "x"})
    assert repo.data_version() == 1 and repo.audit_log()[1] == 1
    _same(repo.read_strand_tables(), before)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_batch_adds_and_removes_a_cable_with_its_spans(repo: Repository) -> None:
    _loaded(repo)
    store = repo.strands
    ids, version = store.apply([
        StrandEdit("cables", "create", properties={"cable_id": "C2", "from_node": "n1",
                                                   "to_node": "n3", "fiber_count": 4}),
        StrandEdit("cable_spans", "create", "C2:1", {"span_id": "s1"}),
        StrandEdit("cable_spans", "create", "C2:2", {"span_id": "s2"}),
    ], actor="carol")
    assert ids == ["C2", "C2:1", "C2:2"] and version == 2
    assert store.get("cable_spans", "C2:2")[1] == 2
    entries, _ = repo.audit_log(actor="carol")
    assert sorted((e["layer"], e["action"], e["count"]) for e in entries) == [
        ("cable_spans", "create", 2), ("cables", "create", 1)]
    with pytest.raises(ValidationError):
        store.apply([StrandEdit("cables", "delete", "C2")])
    store.apply([StrandEdit("cables", "delete", "C2"),
                 StrandEdit("cable_spans", "delete", "C2:1"),
                 StrandEdit("cable_spans", "delete", "C2:2")])
    _same(repo.read_strand_tables(), _typed())


@pytest.mark.parametrize("backend", BACKENDS)
def test_pages_filters_and_cursors(repo: Repository) -> None:
    from netgis.storage.filters import parse_filter

    _loaded(repo)
    store = repo.strands
    rows, matched = store.page("cable_spans", limit=2)
    assert list(rows["seq"]) == [1, 2] and matched == 3
    rows, _ = store.page("cable_spans", limit=2, after="C1:2")
    assert list(rows["seq"]) == [3]
    rows, _ = store.page("cable_spans", limit=2, before="C1:3")
    assert list(rows["seq"]) == [1, 2]
    assert store.page("drops", filters={"src_num": "2"})[1] == 1
    assert store.page("drops", cql2=parse_filter("length_m > 10 AND node_id = 'n2'"))[1] == 1
    assert store.page("drops", spatial=True)[1] == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_route_writes_that_would_break_the_plant_are_refused(repo: Repository) -> None:
    _loaded(repo)
    for layer, fid, named in (("spans", "s1", "cable_spans C1:2"),
                              ("premises", "p2", "drops D1")):
        with pytest.raises(ConflictError) as err:
            repo.delete_item(layer, fid)
        assert any(named in p.reason for p in err.value.problems), err.value.problems
    # a node no span names, where an OLT port stands
    lone = gpd.GeoDataFrame({"node_id": ["n9"], "kind": ["core"], "status": ["in_service"]},
                            geometry=[shapely.Point(8.6, 50.1005)], crs=4326)
    repo.insert_items("nodes", lone)
    repo.strands.insert("olt_ports", frame("olt_ports", [("P9", "n9", None)]))
    with pytest.raises(ConflictError) as err:
        repo.delete_item("nodes", "n9")
    assert [p.reason for p in err.value.problems] == ["still named by olt_ports P9 (node_id)"]
    # a span the cable runs along, turned to other ends
    with pytest.raises(ValidationError):
        repo.patch_item("spans", "s1", {"to_node": "n3"})
    # writes that leave the plant valid go through as before
    repo.patch_item("spans", "s1", {"owner": "utility"})
    repo.delete_item("premises", "p0")
    assert repo.data_version() == 5


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_plan_merge_that_breaks_the_plant_is_refused(repo: Repository) -> None:
    _loaded(repo)
    plans = Plans(repo)
    plans.create("cut")
    plans.delete("cut", "premises", ["p2"])
    with pytest.raises(ConflictError) as err:
        plans.merge("cut")
    assert any(p.layer == "drops" for p in err.value.problems)
    assert repo.count("premises") == 3 and repo.data_version() == 1


# ------------------------------------------------------------------------------ migrations

@pytest.mark.parametrize("backend", BACKENDS)
def test_migration_0009_goes_both_ways(backend: str,
                                       new_engine: Callable[[str], sqlalchemy.Engine]) -> None:
    engine = new_engine(backend)
    migrate.upgrade(engine, "0008")
    repo = Repository(engine)
    repo.load_dataset(route())  # route reads and writes work before the strand tables exist
    repo.delete_item("premises", "p0")
    assert repo.changes_since(1).strands == frozenset()  # type: ignore[union-attr]
    assert repo.read_consistent_plant()[1].strands == {}
    migrate.upgrade(engine)
    assert set(STRAND_LAYER_NAMES) <= set(sqlalchemy.inspect(engine).get_table_names())
    repo.load_dataset(route(), mode="upsert", strands=strand_tables())
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0008")
    assert not set(STRAND_LAYER_NAMES) & set(sqlalchemy.inspect(engine).get_table_names())
    assert repo.count("premises") == 3


# ------------------------------------------------------------------------------ command line

@pytest.fixture
def netgis_main(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
                ) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``netgis.cli.main`` in this process, as a shell would run it."""
    from netgis.cli import main

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        monkeypatch.delenv("NETGIS_DATABASE_URL", raising=False)
        monkeypatch.setattr(sys, "argv", ["netgis", *args])
        with pytest.raises(SystemExit) as done:
            main()
        out, err = capsys.readouterr()
        code = done.value.code
        return subprocess.CompletedProcess(list(args), code if isinstance(code, int) else 1,
                                           out, err)

    return run


def _dataset_dir(path: Path, strands: dict[str, pd.DataFrame] | None = None) -> Path:
    out = write_dataset(route(), path)
    if strands is not None:
        write_strand_tables(strands, out)
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("target", ["export.gpkg", "export"])
def test_db_load_and_export_round_trip(backend: str, target: str, tmp_path: Path,
                                       new_engine: Callable[[str], sqlalchemy.Engine],
                                       netgis_main: Callable[..., subprocess.CompletedProcess[str]]
                                       ) -> None:
    url = new_engine(backend).url.render_as_string(hide_password=False)
    source = _dataset_dir(tmp_path / "source.gpkg", strand_tables())
    run = netgis_main("db", "load", str(source), "--database-url", url)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["loaded"]["cable_spans"] == 3
    assert "warning: splitters id=SP1" in run.stderr  # the plant's warnings, as for files
    run = netgis_main("db", "export", str(tmp_path / target), "--database-url", url)
    assert run.returncode == 0, run.stderr
    written = json.loads(run.stdout)
    assert written["drops"] == 2 and written["premises"] == 3
    again = read_strand_tables(written["written"])
    assert sorted(again) == sorted(STRAND_LAYER_NAMES)
    _same(validate_strands(route(), again).raise_for_errors(),
          validate_strands(route(), strand_tables()).raise_for_errors())
    # the export loads again into a new database, and exports the same tables
    url2 = new_engine(backend).url.render_as_string(hide_password=False)
    assert netgis_main("db", "load", written["written"], "--database-url", url2).returncode == 0
    with Repository.from_url(url2) as repo:
        _same(repo.read_strand_tables(), _typed())


@pytest.mark.parametrize("backend", BACKENDS)
def test_db_load_of_an_invalid_plant_loads_nothing(
        backend: str, tmp_path: Path, new_engine: Callable[[str], sqlalchemy.Engine],
        netgis_main: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    url = new_engine(backend).url.render_as_string(hide_password=False)
    bad = strand_tables()
    bad["drops"].loc[0, "premise_id"] = "p77"
    run = netgis_main("db", "load", str(_dataset_dir(tmp_path / "bad", bad)),
                      "--database-url", url)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "drops id=D1 field=premise_id" in run.stderr and "p77" in run.stderr
    with Repository.from_url(url) as repo:
        assert repo.data_version() == 0 and repo.count("nodes") == 0
    # upsert: the stored plant and the file together must be valid
    assert netgis_main("db", "load", str(_dataset_dir(tmp_path / "good", strand_tables())),
                       "--database-url", url).returncode == 0
    used = {"drops": frame("drops", [("D5", "p0", "n2", "out", "SP1", "2", None, None)])}
    run = netgis_main("db", "load", str(_dataset_dir(tmp_path / "used", used)),
                      "--mode", "upsert", "--database-url", url)
    assert run.returncode == 2 and "drops id=D5" in run.stderr, run.stderr
    with Repository.from_url(url) as repo:
        assert repo.data_version() == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_export_without_strands_is_what_it_was(
        backend: str, tmp_path: Path, new_engine: Callable[[str], sqlalchemy.Engine],
        netgis_main: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    url = new_engine(backend).url.render_as_string(hide_password=False)
    run = netgis_main("db", "load", str(_dataset_dir(tmp_path / "route")), "--database-url", url)
    assert run.returncode == 0 and sorted(json.loads(run.stdout)["loaded"]) == [
        "areas", "nodes", "premises", "spans"]
    run = netgis_main("db", "export", str(tmp_path / "new.geojson"), "--database-url", url)
    assert run.returncode == 0, run.stderr
    assert sorted(json.loads(run.stdout)) == ["areas", "nodes", "premises", "spans", "written"]
    # what export wrote before the strand layers: the route dataset alone
    with Repository.from_url(url) as repo:
        old = write_dataset(repo.read_dataset(), tmp_path / "old.geojson")
    new = Path(json.loads(run.stdout)["written"])
    assert sorted(p.name for p in new.iterdir()) == sorted(p.name for p in old.iterdir())
    for path in old.iterdir():
        assert (new / path.name).read_bytes() == path.read_bytes(), path.name
