"""Reads see one consistent state of the database while imports commit (issue 19).

``read_dataset`` reads four tables; an import committing between two of those
reads must not show the reader spans whose nodes it did not see ("names no
existing node"). PostGIS reads in one REPEATABLE READ read-only transaction,
SpatiaLite in one transaction (a snapshot in WAL mode).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from netgis.storage import Repository, create_engine
from tests.storage.helpers import chain_dataset


@pytest.fixture
def other(repo: Repository) -> Iterator[Repository]:
    """A second handle on the same database, with its own connections (another process)."""
    second = Repository(create_engine(repo.engine.url.render_as_string(hide_password=False)))
    yield second
    second.close()


def test_sqlite_runs_in_wal_mode(repo: Repository) -> None:
    if repo.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    with repo.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_an_import_committed_between_two_table_reads_stays_invisible(
        repo: Repository, other: Repository) -> None:
    repo.load_dataset(chain_dataset(4))
    before = {name: len(frame) for name, frame in repo.read_dataset().layers().items()}
    fired: list[bool] = []

    def import_in_between(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # the reader has read the nodes and is about to read the spans: an import commits
        if not fired and "FROM spans" in statement and "ST_AsBinary" in statement:
            fired.append(True)
            other.load_dataset(chain_dataset(4, prefix="late_", lon0=9.0))

    event.listen(repo.engine, "before_cursor_execute", import_in_between)
    try:
        seen = repo.read_dataset()
    finally:
        event.remove(repo.engine, "before_cursor_execute", import_in_between)
    assert fired
    assert {name: len(frame) for name, frame in seen.layers().items()} == before
    assert repo.count("spans") == 2 * before["spans"]  # the import did commit


def test_reader_loop_during_an_import_loop_never_fails(
        repo: Repository, other: Repository) -> None:
    repo.load_dataset(chain_dataset(20))
    stop = threading.Event()
    imports: list[int] = []
    writer_errors: list[BaseException] = []

    def writer() -> None:
        i = 0
        try:
            while not stop.is_set():
                other.load_dataset(chain_dataset(20, prefix=f"w{i}_", lon0=9.0 + i * 0.01))
                imports.append(i)
                i += 1
        except BaseException as exc:  # reported by the test below
            writer_errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    reads, failures = 0, []
    deadline = time.monotonic() + 8
    try:
        while time.monotonic() < deadline or len(imports) < 5 or reads < 20:
            try:
                ds = repo.read_dataset()
            except Exception as exc:  # counted: not one may fail
                failures.append(exc)
            else:
                # whole imports only: every import adds 21 nodes, 20 spans and 20 premises
                assert (len(ds.nodes) - 21) % 21 == 0 and len(ds.spans) % 20 == 0
                assert len(ds.spans) // 20 == len(ds.premises) // 20 == len(ds.nodes) // 21
            reads += 1
            if time.monotonic() > deadline + 60:
                break
    finally:
        stop.set()
        thread.join(timeout=120)
    assert not writer_errors, writer_errors
    assert len(imports) >= 5 and reads >= 20
    assert not failures, f"{len(failures)} of {reads} reads failed: {failures[:3]}"


def test_query_page_and_count_agree(repo: Repository, other: Repository) -> None:
    """numberMatched and the page come from one snapshot too."""
    repo.load_dataset(chain_dataset(4))
    fired: list[bool] = []

    def import_in_between(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not fired and "ST_AsBinary" in statement and "FROM premises" in statement:
            fired.append(True)
            other.load_dataset(chain_dataset(4, prefix="late_", lon0=8.6001))

    event.listen(repo.engine, "before_cursor_execute", import_in_between)
    try:
        page, matched = repo.query_items("premises", limit=100)
    finally:
        event.remove(repo.engine, "before_cursor_execute", import_in_between)
    assert fired and matched == len(page) == 4
