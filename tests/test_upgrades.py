"""Schema upgrades with data: a database left at every earlier revision, filled as netgis of
that revision wrote it, then ``netgis db upgrade`` (the real command) and read back through
today's Repository; and the way down (head -> each earlier revision -> head).

The rows are the ``ring_spur`` example (tests/examples), written with plain SQL fit for the
schema of each revision: the four layers (row versions from 0003, a split ratio from 0002),
the data version, a KPI snapshot and the audit log (0004: one entry per layer for a load,
ids inline; 0006 on: one load entry, its ids in ``audit_ids``).

Every migration has a downgrade (none refuses). What a downgrade drops is lost for good,
and a way back up does not bring it back: below 0002 the split ratios, below 0003 the row
versions (the way up gives every row the data version), below 0004 the audit log.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pytest
import shapely
import sqlalchemy
from alembic.script import ScriptDirectory
from sqlalchemy import JSON, DateTime, bindparam, text
from typer.testing import CliRunner

from netgis.cli import app
from netgis.io import read_dataset
from netgis.schema import LAYER_NAMES, LAYERS
from netgis.storage import Repository, create_engine, migrate
from tests.helpers import EXAMPLES_DIR, PostgresDatabases

BACKENDS = ["spatialite", pytest.param("postgis", marks=pytest.mark.postgis)]
EXAMPLE = EXAMPLES_DIR / "ring_spur" / "dataset.gpkg"
HEAD = migrate.head_revision()
#: Every revision before the newest, oldest first (read from the migrations themselves).
EARLIER = [s.revision for s in reversed(list(
    ScriptDirectory.from_config(migrate.alembic_config()).walk_revisions()))][:-1]
LOADED_AT = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
PATCHED_AT = datetime(2026, 11, 3, 14, 0, tzinfo=UTC)
#: The patch of the seeded history: premise p_ring's units 1 -> 3 (data version 2).
PATCHED, UNITS_BEFORE, UNITS_AFTER = "p_ring", 1, 3
#: A splitter with its ratio (stored from revision 0002 on).
SPLITTER, RATIO = "F", 16


def test_revisions_are_what_these_tests_cover() -> None:
    # a new migration needs a seed here (its columns) before it ships
    shipped = [*EARLIER, HEAD]
    assert shipped == [f"{n:04d}" for n in range(1, 12)]


def _layers() -> dict[str, gpd.GeoDataFrame]:
    """The example's four layers in WGS84, with node F made a 1:16 splitter."""
    data = read_dataset(EXAMPLE)
    out = {name: frame.to_crs(4326).reset_index(drop=True)
           for name, frame in data.layers().items()}
    nodes = out["nodes"]
    nodes.loc[nodes["node_id"] == SPLITTER, ["kind", "split_ratio"]] = ["splitter", RATIO]
    return out


LAYER_DATA = _layers()


def _plain(value: Any) -> Any:
    """A cell as Python (None for missing)."""
    if value is None or (not isinstance(value, str | bytes) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _props(frame: pd.DataFrame, i: int, fields: list[str]) -> dict[str, Any]:
    return {f: _plain(frame.iloc[i][f]) for f in fields}


def _fields(layer: str, rev: int) -> list[str]:
    """The layer's fields that revision ``rev`` has columns for."""
    return [f for f in LAYERS[layer].field_names if f != "split_ratio" or rev >= 2]


def _feature(layer: str, i: int, props: dict[str, Any]) -> dict[str, Any]:
    geom = LAYER_DATA[layer].geometry.iloc[i]
    return {"type": "Feature", "id": props[LAYERS[layer].id_field], "properties": props,
            "geometry": json.loads(json.dumps(shapely.geometry.mapping(geom)))}


def _seed(engine: sqlalchemy.Engine, rev: int) -> None:
    """Write, as netgis at revision ``rev`` did: a load of the example (data version 1), a
    patch of p_ring's units by alice (version 2), a KPI snapshot of version 2."""
    spatialite = engine.dialect.name == "sqlite"
    from_wkb = "GeomFromWKB" if spatialite else "ST_GeomFromWKB"
    with engine.begin() as conn:
        for layer in ("nodes", "spans", "premises", "areas"):
            frame = LAYER_DATA[layer]
            cols = _fields(layer, rev) + (["row_version"] if rev >= 3 else [])
            stmt = text(f"INSERT INTO {layer} ({', '.join(cols)}, geometry) VALUES "
                        f"({', '.join(':' + c for c in cols)}, {from_wkb}(:wkb, 4326))")
            rows = []
            for i in range(len(frame)):
                row = _props(frame, i, _fields(layer, rev))
                if layer == "premises" and row["premise_id"] == PATCHED:
                    row["units"] = UNITS_AFTER
                if rev >= 3:
                    row["row_version"] = 2 if row.get("premise_id") == PATCHED else 1
                rows.append({**row, "wkb": shapely.to_wkb(frame.geometry.iloc[i])})
            conn.execute(stmt, rows)
        conn.execute(text("UPDATE netgis_meta SET value = 2 WHERE key = 'data_version'"))
        conn.execute(text(
            "INSERT INTO kpi_snapshots (taken_at, data_version, kpis) VALUES (:t, 2, :k)"
        ).bindparams(bindparam("t", type_=DateTime(timezone=True)),
                     bindparam("k", type_=JSON)),
            {"t": PATCHED_AT, "k": {"network": {"coverage_pct": 62.5, "units": 11}}})
        if rev >= 4:
            _seed_audit(conn, rev)


def _seed_audit(conn: sqlalchemy.Connection, rev: int) -> None:
    """The audit log of the load and the patch, as revision ``rev`` kept it."""
    premises = LAYER_DATA["premises"]
    i = int((premises["premise_id"] == PATCHED).to_numpy().nonzero()[0][0])
    fields = _fields("premises", rev)
    before = _props(premises, i, fields) | {"units": UNITS_BEFORE}
    after = before | {"units": UNITS_AFTER}
    fc = [{"type": "FeatureCollection", "features": [_feature("premises", i, p)]}
          for p in (before, after)]
    counts = rev >= 6
    stmt = text(
        "INSERT INTO audit_log (id, changed_at, actor, action, layer, feature_ids, count, "
        f"mode, data_version, before, after{', counts' if counts else ''}) VALUES (:id, :t, "
        f":actor, :action, :layer, :ids, :count, :mode, :v, :before, :after"
        f"{', :counts' if counts else ''})"
    ).bindparams(bindparam("t", type_=DateTime(timezone=True)),
                 *(bindparam(n, type_=JSON(none_as_null=True))
                   for n in ("ids", "before", "after", *(("counts",) if counts else ()))))
    load = {"t": LOADED_AT, "actor": "cli", "action": "load", "mode": "insert", "v": 1,
            "before": None, "after": None}
    entries: list[dict[str, Any]] = []
    if counts:
        entries.append({**load, "id": 1, "layer": None, "ids": None, "count": 20,
                        "counts": {n: {"inserted": len(LAYER_DATA[n]), "replaced": 0,
                                       "deleted": 0} for n in LAYER_NAMES}})
    else:
        for n, layer in enumerate(LAYER_NAMES, start=1):
            ids = [str(v) for v in LAYER_DATA[layer][LAYERS[layer].id_field]]
            entries.append({**load, "id": n, "layer": layer, "ids": ids, "count": len(ids)})
    patch_id = len(entries) + 1
    entries.append({"id": patch_id, "t": PATCHED_AT, "actor": "alice", "action": "patch",
                    "layer": "premises", "ids": [PATCHED], "count": 1, "mode": None, "v": 2,
                    "before": fc[0], "after": fc[1], **({"counts": None} if counts else {})})
    conn.execute(stmt, entries)
    if counts:
        ids_stmt = text("INSERT INTO audit_ids (audit_id, layer, feature_id, action) "
                        "VALUES (:a, :layer, :fid, :action)")
        rows = [{"a": 1, "layer": layer, "fid": str(v), "action": "insert"}
                for layer in LAYER_NAMES for v in LAYER_DATA[layer][LAYERS[layer].id_field]]
        rows.append({"a": patch_id, "layer": "premises", "fid": PATCHED, "action": "patch"})
        conn.execute(ids_stmt, rows)
    if conn.dialect.name == "postgresql":
        # explicit ids: move the sequence past them, as the rows had come from it
        conn.execute(text("SELECT setval('audit_log_id_seq', :n)"), {"n": patch_id})


def _netgis_upgrade(url: str) -> dict[str, Any]:
    """``netgis db upgrade`` through the real command line (typer's runner, this process)."""
    result = CliRunner().invoke(app, ["db", "upgrade", "--database-url", url],
                                env={"NETGIS_DATABASE_URL": None})
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def _check_features(repo: Repository, rev: int) -> None:
    """Today's code finds every seeded feature: ids, attributes, geometry, versions."""
    assert repo.data_version() == 2
    for layer, frame in LAYER_DATA.items():
        id_field = LAYERS[layer].id_field
        assert repo.count(layer) == len(frame)
        for i in range(len(frame)):
            want = _props(frame, i, list(LAYERS[layer].field_names))
            if rev < 2 and layer == "nodes":
                want["split_ratio"] = None  # no column for it yet
            got_frame, version = repo.get_item_versioned(layer, str(want[id_field]))
            got = _props(got_frame, 0, list(LAYERS[layer].field_names))
            if want[id_field] == PATCHED:
                want["units"] = UNITS_AFTER
            assert got == want, (layer, want[id_field])
            assert got_frame.geometry.iloc[0].equals_exact(frame.geometry.iloc[i], 0), \
                (layer, want[id_field])
            # from 0003 on each row keeps its own version; before, all take the data version
            patched = want[id_field] == PATCHED
            assert version == (2 if patched or rev < 3 else 1), (layer, want[id_field])
    # the spatial index answers after the migration: a box around the splitter alone
    f = LAYER_DATA["nodes"].set_index("node_id").geometry[SPLITTER]
    page, _ = repo.query_items("nodes", bbox=(f.x - 1e-5, f.y - 1e-5, f.x + 1e-5, f.y + 1e-5))
    assert list(page["node_id"]) == [SPLITTER]
    measured = [(h["data_version"], h["coverage_pct"], h["taken_at"])
                for h in repo.kpi_history() if "estimated" not in h]
    assert measured == [(2, 62.5, PATCHED_AT)]


def _check_audit(repo: Repository, rev: int) -> None:
    """The audit log reads as today's code writes it (empty before revision 0004)."""
    entries, matched = repo.audit_log(feature_id=PATCHED, layer="premises")
    if rev < 4:
        assert (entries, matched) == ([], 0) and repo.audit_log()[1] == 0
        return
    # newest first by time: a way down below 0006 writes a load's entries again (one per
    # layer), under new ids, which then list before the older patch in id order
    entries.sort(key=lambda e: e["time"], reverse=True)
    assert [(e["actor"], e["action"], e["data_version"]) for e in entries] == \
        [("alice", "patch", 2), ("cli", "load", 1)]
    patch, load = entries
    assert patch["time"] == PATCHED_AT and patch["feature_ids"] == [PATCHED]
    assert [fc["features"][0]["properties"]["units"]
            for fc in (patch["before"], patch["after"])] == [UNITS_BEFORE, UNITS_AFTER]
    # the load's ids are paged from audit_ids; one entry per layer before 0006
    page, n = repo.audit_entry_ids(load["id"], layer="premises")
    assert n == len(LAYER_DATA["premises"]) and {p["action"] for p in page} == {"insert"}
    assert load["counts"]["premises"]["inserted"] == n
    assert repo.audit_log(action="load")[1] == (1 if rev >= 6 else len(LAYER_NAMES))


@pytest.fixture(scope="module")
def databases(tmp_path_factory: pytest.TempPathFactory,
              request: pytest.FixtureRequest) -> Iterator[Any]:
    """A factory: the URL of a new, empty database of a backend (PostGIS ones are dropped
    at the end of the session)."""
    folder = tmp_path_factory.mktemp("upgrades")
    made: list[Path] = []

    def new(backend: str) -> str:
        if backend == "spatialite":
            made.append(folder / f"db{len(made)}.sqlite")
            return f"sqlite:///{made[-1]}"
        dbs: PostgresDatabases = request.getfixturevalue("pg_databases")
        return dbs.create(prefix="netgis_upgrade", postgis=False)

    yield new


@pytest.mark.parametrize("rev", EARLIER, ids=[f"from-{r}" for r in EARLIER])
@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_with_data(backend: str, rev: str, databases: Any) -> None:
    url = databases(backend)
    engine = create_engine(url)
    try:
        migrate.upgrade(engine, rev)
        assert migrate.current_revision(engine) == rev
        _seed(engine, int(rev))
    finally:
        engine.dispose()
    assert _netgis_upgrade(url) == {"revision": HEAD}
    with Repository.from_url(url) as repo:
        assert repo.revision() == HEAD
        _check_features(repo, int(rev))
        _check_audit(repo, int(rev))
        # and the upgraded database takes writes: the next version, logged
        repo.patch_item("premises", PATCHED, {"units": 4}, actor="bob")
        assert repo.data_version() == 3
        assert repo.audit_log(feature_id=PATCHED)[0][0]["actor"] == "bob"


def _netgis_downgrade(url: str, rev: str) -> None:
    """``netgis db downgrade REV`` through the real command line."""
    result = CliRunner().invoke(app, ["db", "downgrade", rev, "--database-url", url],
                                env={"NETGIS_DATABASE_URL": None})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"revision": rev}


def _ids(engine: sqlalchemy.Engine) -> dict[str, list[str]]:
    """The ids of each layer, read with plain SQL (any revision)."""
    with engine.connect() as conn:
        return {layer: sorted(conn.execute(text(
            f"SELECT {LAYERS[layer].id_field} FROM {layer}")).scalars())
            for layer in LAYER_NAMES}


@pytest.mark.parametrize("backend", BACKENDS)
def test_downgrade_to_each_revision_and_back(backend: str, databases: Any) -> None:
    """head -> r -> head for every earlier r, on one database: the features stay all the
    way (0001 has the four layers), and what r has no place for is gone afterwards."""
    url = databases(backend)
    engine = create_engine(url)
    try:
        migrate.upgrade(engine, "0010")
        _seed(engine, 10)
        assert _netgis_upgrade(url) == {"revision": HEAD}
        with Repository.from_url(url) as repo:
            # what only the newest revisions hold: an estimated KPI point (0010), a street
            repo.save_kpi_estimates([(LOADED_AT.replace(year=2020), {"network": {
                "coverage_pct": 10.0}})], data_version=2)
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO streets (name, geometry) VALUES ('Main', :g)"),
                             {"g": shapely.to_wkb(shapely.LineString([(8, 50), (8.1, 50)]))})
            assert len(repo.kpi_history()) == 2 and repo.read_streets() is not None
        want = _ids(engine)
        for rev in reversed(EARLIER):
            _netgis_downgrade(url, rev)
            assert _ids(engine) == want, rev
            assert _netgis_upgrade(url) == {"revision": HEAD}
            with Repository.from_url(url) as repo:
                # the database now holds what revision r can hold: as if seeded at r
                _check_features(repo, int(rev))
                _check_audit(repo, int(rev))
                assert repo.read_streets() is None  # 0011's streets went at the first step
                # the estimated point lives while the revision has its column (0010)
                estimated = [h["coverage_pct"] for h in repo.kpi_history() if "estimated" in h]
                assert estimated == ([10.0] if rev == "0010" else []), rev
    finally:
        engine.dispose()



def test_a_revision_that_cannot_be_reached_is_a_clear_error(databases: Any) -> None:
    url = databases("spatialite")
    runner = CliRunner()
    unknown = runner.invoke(app, ["db", "upgrade", "--revision", "0099", "--database-url", url])
    assert unknown.exit_code == 2 and "no migration revision '0099'" in unknown.stderr
    assert runner.invoke(app, ["db", "upgrade", "--revision", "0005", "--database-url",
                               url]).exit_code == 0
    # down to a revision above the database's own: refused, naming where it is
    up = runner.invoke(app, ["db", "downgrade", "0009", "--database-url", url])
    assert up.exit_code == 2 and "the database is at 0005" in up.stderr
    assert up.exception is None or isinstance(up.exception, SystemExit)
