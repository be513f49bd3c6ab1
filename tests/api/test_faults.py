"""Faults of the database under a running server, and recovery without a restart (issue 19).

SpatiaLite: a read-only file, a file moved away, a file missing at start.
PostgreSQL (a throwaway cluster of the test's own): an outage during reads and
writes, a server down when the API starts. Both: ``netgis db load`` killed with
SIGKILL in the middle of a load changes nothing.

A fault answers 503 with Retry-After (never 500), /health says what writes need,
and the service heals by itself once the fault is gone.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy

from netgis.api.app import create_app
from netgis.generate import generate_city
from netgis.io import write_dataset
from netgis.storage import Repository
from tests.api.helpers import LiveServer
from tests.api.reliability_helpers import (
    KEY,
    ServerProcess,
    ThrowawayPostgres,
    fingerprint,
    give_to,
    netgis_env,
    non_root_user,
    settings_for,
    user_dir,
    wait_for,
)

pytestmark = pytest.mark.timeout(900)


def _unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, (r.request.method, r.request.url, r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")
    assert int(r.headers["retry-after"]) > 0


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=30).status_code == 200
    except httpx.TransportError:
        return False


def _first_premise(base: str) -> str:
    page = httpx.get(f"{base}/collections/premises/items", params={"limit": 1}, timeout=60)
    assert page.status_code == 200, page.text
    return str(page.json()["features"][0]["id"])


def _patch(base: str, pid: str, units: int) -> httpx.Response:
    return httpx.patch(f"{base}/collections/premises/items/{pid}", headers=KEY,
                       json={"properties": {"units": units}}, timeout=120)


def _units(base: str, pid: str) -> int:
    r = httpx.get(f"{base}/collections/premises/items/{pid}", timeout=60)
    assert r.status_code == 200, r.text
    return int(r.json()["properties"]["units"])


# ------------------------------------------------------------------------ SpatiaLite


@pytest.fixture
def sqlite_db() -> Iterator[tuple[Path, str | None]]:
    """A loaded SpatiaLite file in a folder the (non-root) server user owns."""
    user = non_root_user()
    with user_dir(user) as folder:
        path = folder / "netgis.db"
        repo = Repository.from_url(f"sqlite:///{path}")
        repo.init()
        repo.load_dataset(generate_city(premises=60, seed=7))
        repo.close()
        give_to(folder, user)
        yield path, user


def test_spatialite_read_only_file_gives_503_and_heals(
        sqlite_db: tuple[Path, str | None], tmp_path: Path) -> None:
    path, user = sqlite_db
    url = f"sqlite:///{path}"
    with ServerProcess(url, user=user, log=tmp_path / "serve.log") as server:
        base = server.url
        pid = _first_premise(base)
        assert _healthy(base) and _patch(base, pid, 2).status_code == 200

        path.chmod(0o444)
        _unavailable(httpx.get(f"{base}/health", timeout=30))
        _unavailable(_patch(base, pid, 3))
        assert _units(base, pid) == 2  # reads go on from a read-only file

        path.chmod(0o644)
        assert wait_for(lambda: _healthy(base), 30)
        assert _patch(base, pid, 4).status_code == 200  # no restart needed
        assert _units(base, pid) == 4
        assert server.alive()


def test_spatialite_server_started_on_a_read_only_file_heals_once_writable(
        sqlite_db: tuple[Path, str | None], tmp_path: Path) -> None:
    path, user = sqlite_db
    path.chmod(0o444)
    with ServerProcess(f"sqlite:///{path}", user=user, log=tmp_path / "serve.log") as server:
        base = server.url
        pid = _first_premise(base)  # every pooled connection is opened read-only now
        _unavailable(httpx.get(f"{base}/health", timeout=30))
        _unavailable(_patch(base, pid, 5))
        # SQLite made the WAL files with the database file's mode: all become writable
        for file in path.parent.glob(path.name + "*"):
            file.chmod(0o644)
        assert wait_for(lambda: _healthy(base), 30)
        # connections opened while the file was read-only are replaced, not reused
        for units in range(6, 12):
            assert _patch(base, pid, units).status_code == 200
        assert _units(base, pid) == 11


def test_spatialite_file_moved_away_gives_503_creates_nothing_and_heals(
        sqlite_db: tuple[Path, str | None], tmp_path: Path) -> None:
    path, user = sqlite_db
    moved = path.with_name("moved.db")
    with ServerProcess(f"sqlite:///{path}", user=user, log=tmp_path / "serve.log") as server:
        base = server.url
        pid = _first_premise(base)
        assert _patch(base, pid, 2).status_code == 200
        version = httpx.get(f"{base}/health", timeout=30).json()["data_version"]

        path.rename(moved)
        _unavailable(httpx.get(f"{base}/health", timeout=30))
        _unavailable(_patch(base, pid, 3))
        _unavailable(httpx.get(f"{base}/collections/premises/items/{pid}", timeout=60))
        assert not path.exists(), "a new, empty database file was created"

        moved.rename(path)
        assert wait_for(lambda: _healthy(base), 30)
        # nothing was written into the moved file while it was away
        assert httpx.get(f"{base}/health", timeout=30).json()["data_version"] == version
        assert _units(base, pid) == 2
        assert _patch(base, pid, 4).status_code == 200 and _units(base, pid) == 4


def test_spatialite_missing_at_start_serves_503_until_the_file_appears(
        tmp_path: Path) -> None:
    user = non_root_user()
    with user_dir(user) as folder:
        _missing_at_start(folder, user, tmp_path / "serve.log")


def _missing_at_start(folder: Path, user: str | None, log: Path) -> None:
    path = folder / "netgis.db"
    url = f"sqlite:///{path}"
    with ServerProcess(url, user=user, log=log,
                       env={"NETGIS_CREATE_DATABASE": "false"}) as server:
        base = server.url
        _unavailable(httpx.get(f"{base}/health", timeout=30))
        _unavailable(httpx.get(f"{base}/collections/premises/items", timeout=30))
        assert not path.exists(), "the server created the database it was told not to"
        # the database arrives (netgis db load makes it), and the server picks it up
        loaded = subprocess.run([sys.executable, "-m", "netgis.cli", "db", "load",
                                 str(Path(__file__).parents[1] / "examples" / "ring_spur"
                                     / "dataset.gpkg")],
                                env=netgis_env(url), capture_output=True, text=True,
                                timeout=300, check=False)
        assert loaded.returncode == 0, loaded.stderr
        give_to(folder, user)
        assert wait_for(lambda: _healthy(base), 60)
        assert _patch(base, _first_premise(base), 3).status_code == 200
        assert server.alive()


def test_spatialite_created_at_start_by_default(tmp_path: Path) -> None:
    """The default keeps `netgis serve` on a new path working: the file is made once, at
    start, and only a file that exists is opened after that."""
    path = tmp_path / "new.db"
    app = create_app(settings_for(f"sqlite:///{path}"))
    with LiveServer(app) as server:
        assert _healthy(server.url)
        assert path.exists()
        path.rename(tmp_path / "gone.db")
        _unavailable(httpx.get(f"{server.url}/health", timeout=30))
        assert not path.exists()


# ------------------------------------------------------------------------ PostgreSQL


@pytest.fixture(scope="module")
def pg() -> Iterator[ThrowawayPostgres]:
    cluster = ThrowawayPostgres()
    try:
        cluster.start()
        # in template1, so that every database created afterwards has PostGIS
        admin = sqlalchemy.create_engine(cluster.url("template1"), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
        finally:
            admin.dispose()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def pg_url(pg: ThrowawayPostgres, request: pytest.FixtureRequest) -> str:
    if not pg.running():
        pg.start()
    name = "t_" + request.node.name.lower().replace("[", "_").replace("]", "")[:50]
    return pg.create_database(name)


def test_postgis_outage_during_reads_and_writes_gives_503_and_recovers(
        pg: ThrowawayPostgres, pg_url: str) -> None:
    repo = Repository.from_url(pg_url)
    repo.init()
    repo.load_dataset(generate_city(premises=60, seed=7))
    repo.close()
    with LiveServer(create_app(settings_for(pg_url))) as server:
        base = server.url
        pid = _first_premise(base)
        statuses: list[int] = []
        stop = threading.Event()

        def traffic() -> None:
            # reads and writes all through the outage, each on its own connection
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    statuses.append(_patch(base, pid, 1 + n % 50).status_code)
                    statuses.append(httpx.get(f"{base}/collections/premises/items",
                                              timeout=60).status_code)
                except httpx.TransportError:
                    statuses.append(-1)  # a dropped connection: never acceptable
                time.sleep(0.05)

        worker = threading.Thread(target=traffic)
        worker.start()
        try:
            time.sleep(1)
            pg.stop("immediate")
            time.sleep(2)
            _unavailable(httpx.get(f"{base}/health", timeout=30))
            _unavailable(_patch(base, pid, 99))
            _unavailable(httpx.get(f"{base}/collections/premises/items/{pid}", timeout=60))
            pg.start()
            assert wait_for(lambda: _healthy(base), 60)
            time.sleep(1)
        finally:
            stop.set()
            worker.join(timeout=120)
        assert set(statuses) <= {200, 503}, sorted(set(statuses))
        assert 200 in statuses and 503 in statuses
        assert _patch(base, pid, 77).status_code == 200 and _units(base, pid) == 77


def test_postgis_down_at_start_serves_503_then_recovers(
        pg: ThrowawayPostgres, pg_url: str) -> None:
    # a database never initialised: the server migrates it once the server is back
    pg.stop("fast")
    with LiveServer(create_app(settings_for(pg_url))) as server:
        base = server.url
        _unavailable(httpx.get(f"{base}/health", timeout=30))
        _unavailable(httpx.get(f"{base}/collections/nodes/items", timeout=30))
        pg.start()
        assert wait_for(lambda: _healthy(base), 60)
        assert httpx.get(f"{base}/collections/nodes/items", timeout=30).status_code == 200
        created = httpx.post(f"{base}/collections/nodes/items", headers=KEY, timeout=60, json={
            "type": "Feature", "geometry": {"type": "Point", "coordinates": [8.6, 50.1]},
            "properties": {"node_id": "N1", "kind": "core"}})
        assert created.status_code == 201, created.text


# --------------------------------------------------------------- kill -9 during a load


@pytest.fixture(scope="module")
def big_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset whose load takes long enough to be killed in the middle."""
    out = tmp_path_factory.mktemp("big") / "big.gpkg"
    write_dataset(generate_city(premises=60_000, seed=11), out)
    return out


def _load_holds_sqlite_write_lock(path: Path) -> bool:
    probe = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as exc:
        return "locked" in str(exc)
    finally:
        probe.close()


def _load_is_writing_pg(url: str, app_name: str) -> bool:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            return bool(conn.execute(sqlalchemy.text(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = :a "
                "AND backend_xid IS NOT NULL"), {"a": app_name}).scalar())
    finally:
        engine.dispose()


def _kill_load_midway(url: str, dataset: Path, writing: Any, log: Path) -> None:
    """Start ``netgis db load --mode replace`` (over the data stored: the load that would
    lose most if half done), wait until ``writing()`` says it is inside its write
    transaction, and SIGKILL it there."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "netgis.cli", "db", "load", str(dataset), "--mode", "replace"],
            env=netgis_env(url), stdout=out, stderr=subprocess.STDOUT)
    try:
        started = wait_for(lambda: proc.poll() is not None or writing(), 300, step=0.02)
        assert started and proc.poll() is None, \
            "the load ended before it could be killed:\n" + log.read_text(errors="replace")
        time.sleep(0.3)  # well inside the write: rows are going in
        assert proc.poll() is None, "the load finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def test_kill_9_of_a_spatialite_load_changes_nothing(tmp_path: Path, big_dataset: Path) -> None:
    path = tmp_path / "netgis.db"
    url = f"sqlite:///{path}"
    repo = Repository.from_url(url)
    repo.init()
    repo.load_dataset(generate_city(premises=60, seed=7))
    repo.close()
    before = fingerprint(url)
    _kill_load_midway(url, big_dataset, lambda: _load_holds_sqlite_write_lock(path),
                      tmp_path / "load.log")
    assert fingerprint(url) == before
    with Repository.from_url(url) as again:  # and the database takes writes as before
        assert again.patch_item("premises", again.query_items("premises", limit=1)[0]
                                ["premise_id"].iat[0], {"units": 3}) == before[0] + 1


def test_kill_9_of_a_postgis_load_changes_nothing(pg_url: str, big_dataset: Path,
                                                  tmp_path: Path) -> None:
    repo = Repository.from_url(pg_url)
    repo.init()
    repo.load_dataset(generate_city(premises=60, seed=7))
    repo.close()
    before = fingerprint(pg_url)
    app_name = "netgis-kill-test"
    load_url = f"{pg_url}?application_name={app_name}"
    _kill_load_midway(load_url, big_dataset, lambda: _load_is_writing_pg(pg_url, app_name),
                      tmp_path / "load.log")
    # the server notices the dead client and rolls its transaction back
    assert wait_for(lambda: not _load_is_writing_pg(pg_url, app_name), 60)
    assert fingerprint(pg_url) == before
    with Repository.from_url(pg_url) as again:
        assert again.patch_item("premises", again.query_items("premises", limit=1)[0]
                                ["premise_id"].iat[0], {"units": 3}) == before[0] + 1
