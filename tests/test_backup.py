"""``netgis db backup`` and ``netgis db restore`` on real SpatiaLite files and PostGIS databases.

The sample is loaded with ``netgis db load`` once per database kind, then written to as
the API would (a create, a patch, a delete through the repository); its backup restored
into an empty database must hold every table's rows, the data version and the audit log
exactly (compared here row by row, apart from the module's own checksums). A backup taken
while a real ``netgis serve`` takes writes from eight threads holds every write
acknowledged before it started, and a restore into a served database is seen by the
server as before or after, never halfway.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import pytest
import sqlalchemy
from shapely.geometry import Point

from netgis.cli.common import main as netgis_main
from netgis.storage import Repository, migrate
from netgis.storage.engine import create_engine
from netgis.storage.models import Base
from netgis.validate import validate_frames
from tests.api.helpers import ServerProcess
from tests.api.reliability_helpers import KEY, netgis_env
from tests.helpers import PostgresDatabases

SAMPLE = Path(__file__).parents[1] / "data" / "sample.gpkg"
NETGIS = Path(sys.executable).with_name("netgis")
KINDS = ["spatialite", pytest.param("postgis", marks=pytest.mark.postgis)]
#: The tables compared: the model's and Alembic's (not the spatial extensions' own).
TABLES = sorted([*Base.metadata.tables, "alembic_version"])


def cli(*args: str | Path) -> tuple[int, str, str]:
    """``netgis ARGS`` through the real entry point in this process: exit code, out, err."""
    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["netgis", *map(str, args)]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            netgis_main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = argv
    return code, out.getvalue(), err.getvalue()


def contents(url: str) -> dict[str, list[str]]:
    """Every row of every netgis table, as text, sorted: what two databases must share."""
    engine = create_engine(url, create=False)
    try:
        with engine.connect() as conn:
            present = set(sqlalchemy.inspect(conn).get_table_names())
            return {t: sorted(repr(tuple(bytes(v) if isinstance(v, memoryview) else v
                                         for v in row))
                              for row in conn.exec_driver_sql(f'SELECT * FROM "{t}"'))
                    for t in TABLES if t in present}
    finally:
        engine.dispose()


def data_version(url: str) -> int:
    with Repository.from_url(url, create=False) as repo:
        return repo.data_version()


def audit_log(url: str) -> list[dict[str, Any]]:
    with Repository.from_url(url, create=False) as repo:
        entries, _ = repo.audit_log(limit=1000)
    return entries


def api_like_writes(url: str, tag: str) -> None:
    """A create, a patch and a delete, as the API makes them (an actor, audit entries)."""
    with Repository.from_url(url, create=False) as repo:
        first = repo.query_items("premises", limit=2)[0]
        x, y = first.geometry.iloc[0].x, first.geometry.iloc[0].y
        new = gpd.GeoDataFrame({"premise_id": [f"{tag}-a", f"{tag}-b"], "units": [3, 4]},
                               geometry=[Point(x + 1e-5, y), Point(x, y + 1e-5)], crs=4326)
        repo.insert_items("premises", new, actor="writer")
        repo.patch_item("premises", str(first["premise_id"].iloc[1]),
                        {"units": 9, "address": f"patched {tag}"}, actor="writer")
        repo.delete_item("premises", f"{tag}-b", actor="writer")


@dataclass
class Databases:
    """Makes databases of one kind: ``empty()`` a new one without data, ``loaded()`` a copy
    of the sample loaded once with ``netgis db load``."""

    kind: str
    folder: Path
    pg: PostgresDatabases | None
    template: str

    def empty(self) -> str:
        if self.pg is None:
            return f"sqlite:///{self.folder / f'empty-{time.monotonic_ns()}.db'}"
        return self.pg.create(prefix="netgis_backup_test")

    def loaded(self) -> str:
        if self.pg is None:
            path = self.folder / f"loaded-{time.monotonic_ns()}.db"
            shutil.copyfile(sqlalchemy.make_url(self.template).database or "", path)
            return f"sqlite:///{path}"
        name = sqlalchemy.make_url(self.template).database
        return self.pg.create(prefix="netgis_backup_test", template=name)


@pytest.fixture(scope="module", params=KINDS)
def dbs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Databases]:
    folder = tmp_path_factory.mktemp(f"backup-{request.param}")
    pg: PostgresDatabases | None = None
    if request.param == "spatialite":
        template = f"sqlite:///{folder / 'template.db'}"
    else:
        pg = request.getfixturevalue("pg_databases")
        template = pg.create(prefix="netgis_backup_tmpl")
    code, out, err = cli("db", "load", SAMPLE, "--database-url", template)
    assert code == 0, err
    assert json.loads(out)["loaded"]["premises"] > 1000
    yield Databases(request.param, folder, pg, template)
    if pg is not None:
        pg.drop(template)


def backup_file(dbs: Databases, name: str) -> Path:
    return dbs.folder / (f"{name}.db" if dbs.kind == "spatialite" else f"{name}.dump")


def test_round_trip_restores_every_row_the_version_and_the_audit_log(dbs: Databases) -> None:
    source = dbs.loaded()
    api_like_writes(source, "rt")
    out = backup_file(dbs, "round-trip")
    code, printed, err = cli("db", "backup", out, "--database-url", source)
    assert code == 0, err
    summary = json.loads(printed)
    before = contents(source)
    assert summary["data_version"] == data_version(source) == 4  # the load, then 3 writes
    assert summary["audit_entries"] == len(audit_log(source)) == 4
    assert summary["tables"] == {t: len(rows) for t, rows in before.items()}
    assert summary["bytes"] == out.stat().st_size > 0
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]

    target = dbs.empty()
    with Repository.from_url(target) as repo:
        repo.init()  # empty: the tables, no rows
    code, printed, err = cli("db", "restore", out, "--database-url", target)
    assert code == 0, err
    restored = json.loads(printed)
    assert restored["verified"] is True
    assert restored["upgrade_needed"] is False
    assert contents(target) == before
    assert data_version(target) == data_version(source)
    assert audit_log(target) == audit_log(source)
    # the restored database takes writes on (its id sequences went along)
    api_like_writes(target, "after")
    assert audit_log(target)[0]["id"] > audit_log(source)[0]["id"]


def test_restore_refuses_a_database_holding_data_unless_replace(dbs: Databases) -> None:
    source = dbs.loaded()
    out = backup_file(dbs, "refuse")
    assert cli("db", "backup", out, "--database-url", source)[0] == 0
    target = dbs.loaded()
    api_like_writes(target, "other")
    held = contents(target)

    code, printed, err = cli("db", "restore", out, "--database-url", target)
    assert code == 2
    assert printed == ""
    assert "holds data" in err and "premises" in err and "--replace" in err
    assert "Traceback" not in err
    assert contents(target) == held

    code, printed, err = cli("db", "restore", out, "--replace", "--database-url", target)
    assert code == 0, err
    assert contents(target) == contents(source)
    assert json.loads(printed)["data_version"] == data_version(source)


def test_backup_of_an_older_revision_restores_and_says_to_upgrade(tmp_path: Path) -> None:
    old = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(old)
    migrate.upgrade(engine, "0010")
    engine.dispose()
    assert cli("db", "backup", tmp_path / "old-backup.db", "--database-url", old)[0] == 0
    target = f"sqlite:///{tmp_path / 'new.db'}"
    code, printed, err = cli("db", "restore", tmp_path / "old-backup.db", "--database-url", target)
    assert code == 0, err
    assert json.loads(printed)["revision"] == "0010"
    assert json.loads(printed)["upgrade_needed"] is True
    assert "netgis db upgrade" in err
    code, printed, err = cli("db", "upgrade", "--database-url", target)
    assert code == 0, err
    assert json.loads(printed)["revision"] == migrate.head_revision()


def test_backup_refuses_to_overwrite_and_a_bad_backup_is_not_restored(tmp_path: Path) -> None:
    out = tmp_path / "exists.db"
    out.write_bytes(b"keep me")
    code, _, err = cli("db", "backup", out, "--database-url", f"sqlite:///{SAMPLE}")
    assert (code, out.read_bytes()) == (2, b"keep me")
    assert "exists already" in err
    code, _, err = cli("db", "restore", out, "--database-url", f"sqlite:///{tmp_path / 'x.db'}")
    assert code == 2
    assert "not a readable SpatiaLite backup" in err
    assert not (tmp_path / "x.db").exists()


# --------------------------------------------------------------------------- under load


@dataclass
class Write:
    """One HTTP write: the premise, sent and acknowledged at (monotonic), its status."""

    premise: str
    units: int | None
    sent: float
    acked: float
    status: int


def _writers(base: str, n: int, stop: threading.Event, patched: list[str]
             ) -> tuple[list[threading.Thread], list[list[Write]]]:
    """``n`` threads alternately POSTing a new premise and PATCHing one premise of their
    own (its units counting up), each on a keep-alive connection, until ``stop``."""
    logs: list[list[Write]] = [[] for _ in range(n)]

    def run(i: int) -> None:
        with httpx.Client(base_url=base, headers=KEY, timeout=60) as client:
            k = 0
            while not stop.is_set():
                sent = time.monotonic()
                if k % 2 == 0:
                    pid = f"load-{i}-{k}"
                    r = client.post("/collections/premises/items", json={
                        "type": "Feature", "properties": {"premise_id": pid, "units": 1},
                        "geometry": {"type": "Point", "coordinates": [-0.12 + i / 1e4,
                                                                      51.5 + k / 1e5]}})
                    logs[i].append(Write(pid, None, sent, time.monotonic(), r.status_code))
                else:
                    r = client.patch(f"/collections/premises/items/{patched[i]}",
                                     json={"properties": {"units": 100 + k}})
                    logs[i].append(Write(patched[i], 100 + k, sent, time.monotonic(),
                                         r.status_code))
                k += 1

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    return threads, logs


def _wait_for(condition: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    """``netgis serve`` on a SpatiaLite copy of the sample loaded by ``netgis db load`` (one
    for the tests below: each takes the data as the one before left it)."""
    folder = tmp_path_factory.mktemp("served")
    url = f"sqlite:///{folder / 'served.db'}"
    code, _, err = cli("db", "load", SAMPLE, "--database-url", url)
    assert code == 0, err
    with ServerProcess(netgis_env(url), folder / "server.log") as server:
        yield server, url


def test_backup_under_load_holds_every_write_acknowledged_before_it(
        served: tuple[ServerProcess, str], tmp_path: Path) -> None:
    server, url = served
    first = httpx.get(f"{server.url}/collections/premises/items", params={"limit": 8},
                      timeout=60).json()["features"]
    patched = [f["id"] for f in first]
    stop = threading.Event()
    threads, logs = _writers(server.url, 8, stop, patched)
    for t in threads:
        t.start()

    def answered(since: float = 0.0) -> int:
        """Writes sent after ``since`` and answered."""
        return sum(1 for log in logs for w in list(log) if w.sent > since)

    _wait_for(lambda: answered() >= 16)
    out = tmp_path / "under-load.db"
    started = time.monotonic()
    done = subprocess.run([str(NETGIS), "db", "backup", str(out)], env=netgis_env(url),
                          capture_output=True, text=True, timeout=120, check=False)
    finished = time.monotonic()
    _wait_for(lambda: answered(finished) >= 8)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    writes = [w for log in logs for w in log]
    assert {w.status for w in writes} <= {200, 201}, sorted({w.status for w in writes})
    before = [w for w in writes if w.acked < started]
    during = [w for w in writes if started <= w.acked <= finished]
    after = [w for w in writes if w.sent > finished]
    assert before and during and after, (len(before), len(during), len(after))
    print(f"writes acknowledged: {len(before)} before the backup, {len(during)} during its "
          f"{finished - started:.2f} s, {len(after)} sent after it; backup "
          f"{summary['seconds']} s for {summary['bytes']} bytes")

    copy = sqlite3.connect(f"file:{out}?mode=ro", uri=True)
    try:
        held = {r[0]: r[1] for r in copy.execute("SELECT premise_id, units FROM premises")}
        entries = copy.execute("SELECT count(*) FROM audit_log").fetchone()[0]
        version = copy.execute("SELECT value FROM netgis_meta WHERE key = 'data_version'"
                               ).fetchone()[0]
        integrity = copy.execute("PRAGMA integrity_check").fetchall()
    finally:
        copy.close()
    assert integrity == [("ok",)]
    # every write acknowledged before the backup started is in it: zero missing
    missing = [w for w in before if w.units is None and w.premise not in held]
    assert missing == []
    for i, premise in enumerate(patched):
        acked = [w.units for w in logs[i] if w.units is not None and w.acked < started]
        if acked:
            assert held[premise] >= max(acked)
    # and none sent after it ended: a snapshot, not a smear
    assert not [w for w in after if w.units is None and w.premise in held]
    # one version and one audit entry per write: the copy is one consistent moment
    assert summary["data_version"] == version == entries
    assert summary["audit_entries"] == entries
    # the copy opens as a netgis database and its data passes the validation
    with Repository.from_url(f"sqlite:///{out}", create=False) as repo:
        assert repo.revision() == migrate.head_revision()
        _, data = repo.read_consistent()
    checked = validate_frames(data.layers())
    assert checked.ok, checked.errors
    assert len(data.premises) == len(held)


def test_restore_into_a_served_database_is_seen_whole(
        served: tuple[ServerProcess, str], tmp_path: Path) -> None:
    server, url = served
    base = server.url
    # the backup: the served data plus 30 premises and a patched one
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert cli("db", "backup", tmp_path / "other.db", "--database-url", url)[0] == 0
    with Repository.from_url(other, create=False) as repo:
        first = repo.query_items("premises", limit=1)[0]
        pid = str(first["premise_id"].iloc[0])
        x, y = first.geometry.iloc[0].x, first.geometry.iloc[0].y
        repo.insert_items("premises", gpd.GeoDataFrame(
            {"premise_id": [f"restored-{k}" for k in range(30)], "units": [1] * 30},
            geometry=[Point(x + k * 1e-5, y) for k in range(30)], crs=4326))
        repo.patch_item("premises", pid, {"units": 77})
    assert cli("db", "backup", tmp_path / "other-backup.db", "--database-url", other)[0] == 0

    def state() -> tuple[int, int]:
        """One read (one snapshot): the first premise's units and the premise count."""
        page = httpx.get(f"{base}/collections/premises/items", params={"limit": 1},
                         timeout=60)
        assert page.status_code == 200
        body = page.json()
        assert body["features"][0]["id"] == pid
        return body["features"][0]["properties"]["units"], body["numberMatched"]

    old = state()
    seen: list[tuple[int, int] | Exception] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                seen.append(state())
            except Exception as exc:  # reported by the assertion below
                seen.append(exc)

    readers = [threading.Thread(target=read, daemon=True) for _ in range(3)]
    for t in readers:
        t.start()
    time.sleep(0.3)
    code, printed, err = cli("db", "restore", tmp_path / "other-backup.db", "--replace",
                             "--database-url", url)
    time.sleep(0.3)
    stop.set()
    for t in readers:
        t.join(timeout=60)
    assert code == 0, err
    new = (77, old[1] + 30)
    assert json.loads(printed)["data_version"] == data_version(other)
    # every read answered 200 with the database before the restore or after it
    assert set(seen) <= {old, new}, [s for s in seen if s not in (old, new)][:5]
    assert seen.count(old) > 0
    assert state() == new
    # and the server writes on into the restored database
    r = httpx.patch(f"{base}/collections/premises/items/{pid}", headers=KEY, timeout=60,
                    json={"properties": {"units": 78}})
    assert r.status_code == 200
    assert httpx.get(f"{base}/health", timeout=60).json()["data_version"] == \
        data_version(other) + 1
