"""Backups of a netgis database and their restore, verified row for row.

SpatiaLite
    :func:`backup` copies the file with SQLite's online backup API in one step while
    its source connection holds a read transaction: the copy is the database as of
    that transaction's snapshot (WAL mode lets the server's writers go on meanwhile),
    and the fingerprint this module records is read in the same snapshot. The copy
    goes to a temporary file beside the target, is checked (``PRAGMA quick_check``
    and the fingerprint) and is renamed over the target only then: a failed backup
    leaves no file behind.

    :func:`restore` copies the backup INTO the target database with the same API: the
    copy is one write transaction of the target (it waits for the server's writers),
    so a server using the database sees it as before or as after, never halfway; the
    file keeps its inode, so the server's connections go on with it. A target that
    does not exist yet is made as a temporary file and renamed into place.

PostGIS
    :func:`backup` runs ``pg_dump -Fc`` on a snapshot exported by a repeatable-read
    transaction in which the fingerprint is read, so both describe the same moment.
    :func:`restore` feeds ``pg_restore``'s script to ``psql --single-transaction``
    after a guard that locks the target's tables, refuses rows (unless ``replace``)
    and drops them: all or nothing. Passwords travel in ``PGPASSWORD``, never in
    process arguments.

The fingerprint of a database (:class:`Snapshot`): every netgis table (the model's,
``alembic_version`` included; not the spatial extensions' own) with its row count and
an order-independent checksum of its rows, the data version and the schema revision.
A backup must match what was read at its snapshot, a restored database must match its
backup, or the command fails loudly.

Examples
--------
>>> Snapshot({"audit_log": TableSum(3, "0")}, 7, "0011").summary()["audit_entries"]
3
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

from netgis.errors import StorageError
from netgis.storage.dialects import SPATIALITE_TABLE_PREFIXES
from netgis.storage.engine import BUSY_TIMEOUT_S, default_database_url, normalize_url
from netgis.storage.models import DATA_VERSION_KEY

#: Tables that hold no data of their own: a database holding rows only in these is empty.
BOOKKEEPING_TABLES = ("alembic_version", "netgis_meta")
#: PostGIS's own table, which pg_dump archives (the rows users added) and restore leaves alone.
EXTENSION_TABLES = ("spatial_ref_sys",)
#: Where Debian keeps the PostgreSQL 15 client programs when they are not on PATH.
PG_BIN_DIR = Path("/usr/lib/postgresql/15/bin")
_MASK = (1 << 128) - 1


class BackupError(StorageError):
    """A backup or restore that cannot be made, or whose result does not match its source."""


class RestoreRefused(BackupError):
    """A restore into a database that holds data, without ``replace``: nothing was changed."""


@dataclass(frozen=True)
class TableSum:
    """A table's row count and a checksum of its rows (independent of their order)."""

    rows: int
    checksum: str


@dataclass(frozen=True)
class Snapshot:
    """What a database holds at one moment: each table's :class:`TableSum`, the data
    version (None: no ``netgis_meta`` row) and the schema revision (None: not migrated)."""

    tables: dict[str, TableSum]
    data_version: int | None
    revision: str | None

    def summary(self) -> dict[str, Any]:
        """The counts as JSON: rows per table, total rows, data version, audit entries."""
        audit = self.tables.get("audit_log")
        return {"tables": {name: s.rows for name, s in sorted(self.tables.items())},
                "rows": sum(s.rows for s in self.tables.values()),
                "data_version": self.data_version,
                "audit_entries": 0 if audit is None else audit.rows,
                "revision": self.revision}

    def differences(self, other: Snapshot) -> list[str]:
        """What differs from ``other`` (the expected state), one phrase each; [] if equal."""
        out = []
        for name in sorted(set(self.tables) | set(other.tables)):
            have, want = self.tables.get(name), other.tables.get(name)
            if have is None or want is None:
                out.append(f"table {name} is {'missing' if have is None else 'unexpected'}")
            elif have.rows != want.rows:
                out.append(f"table {name}: {have.rows} rows, expected {want.rows}")
            elif have.checksum != want.checksum:
                out.append(f"table {name}: the rows differ (checksum)")
        if self.data_version != other.data_version:
            out.append(f"data version {self.data_version}, expected {other.data_version}")
        if self.revision != other.revision:
            out.append(f"revision {self.revision}, expected {other.revision}")
        return out


@dataclass
class _Summer:
    """Accumulates an order-independent checksum (a sum of row hashes) and a count."""

    rows: int = 0
    total: int = 0
    kept: list[bytes] = field(default_factory=list)
    keep: bool = False

    def add(self, row: bytes) -> None:
        self.rows += 1
        self.total = (self.total + int.from_bytes(
            hashlib.blake2b(row, digest_size=16).digest(), "big")) & _MASK
        if self.keep:
            self.kept.append(row)

    def result(self) -> TableSum:
        return TableSum(self.rows, f"{self.total:032x}")


def _backend(url: str | None) -> tuple[str, URL]:
    full = make_url(normalize_url(url or default_database_url()))
    return full.get_backend_name(), full


def backup(url: str | None, out: Path, *, overwrite: bool = False) -> dict[str, Any]:
    """Back up the database of ``url`` to the file ``out``; a JSON-able summary.

    The backup is checked before it is put in place (see the module's documentation);
    ``out`` existing already is an error unless ``overwrite``.
    """
    started = time.monotonic()
    out = Path(os.path.abspath(out))
    if out.exists() and not overwrite:
        raise BackupError(f"{out} exists already (pass --overwrite to replace it)")
    if not out.parent.is_dir():
        raise BackupError(f"the folder of {out} does not exist")
    backend, full = _backend(url)
    with _temp_beside(out) as tmp:
        if backend == "sqlite":
            snap = _sqlite_backup(_sqlite_path(full, must_exist=True), tmp, out)
        else:
            snap = _pg_backup(full, tmp)
        _fsync(tmp)
        os.replace(tmp, out)
    _fsync(out.parent)
    return {"backup": str(out), **snap.summary(), "bytes": out.stat().st_size,
            "seconds": round(time.monotonic() - started, 3)}


def restore(url: str | None, src: Path, *, replace: bool = False) -> dict[str, Any]:
    """Restore the backup ``src`` into the database of ``url``; a JSON-able summary.

    The target must hold no data (tables without rows, or none) unless ``replace``
    (:class:`RestoreRefused`, nothing changed). The restored database is compared
    with the backup (:class:`BackupError` if anything differs). A backup of an older
    schema revision is restored as it is; the summary's ``upgrade_needed`` then says
    to run ``netgis db upgrade``.
    """
    started = time.monotonic()
    src = Path(os.path.abspath(src))
    if not src.is_file():
        raise BackupError(f"no backup file {src}")
    backend, full = _backend(url)
    if backend == "sqlite":
        want, got = _sqlite_restore(src, _sqlite_path(full, must_exist=False), replace)
    else:
        want, got = _pg_restore(full, src, replace)
    problems = got.differences(want)
    if problems:
        raise BackupError("the restored database does not match the backup: "
                          + "; ".join(problems))
    head = _head_revision()
    return {"restored": str(src), **got.summary(), "verified": True,
            "upgrade_needed": got.revision != head, "bytes": src.stat().st_size,
            "seconds": round(time.monotonic() - started, 3)}


# --------------------------------------------------------------------------- revisions


def _head_revision() -> str | None:
    from netgis.storage.migrate import head_revision

    return head_revision()


def _check_revision(revision: str | None, what: str) -> None:
    """A backup must come from netgis (a revision) of this version or an older one."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from netgis.storage.migrate import alembic_config

    if revision is None:
        raise BackupError(f"{what} is not a netgis database (no schema revision)")
    try:
        ScriptDirectory.from_config(alembic_config()).get_revision(revision)
    except CommandError:
        raise BackupError(f"{what} is at schema revision {revision!r}, which this netgis "
                          f"does not know (newer than {_head_revision()!r}): restore it "
                          "with the netgis version that made it") from None


# --------------------------------------------------------------------------- files


@contextlib.contextmanager
def _temp_beside(target: Path) -> Iterator[Path]:
    """A fresh temporary path in ``target``'s folder, removed (with its SQLite journal
    files) unless the block moved it away."""
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
    # made as any new file is (the umask decides its mode), not private like mkstemp's
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        yield tmp
    finally:
        for extra in (tmp, *(tmp.with_name(tmp.name + s) for s in ("-wal", "-shm",
                                                                     "-journal"))):
            with contextlib.suppress(FileNotFoundError):
                extra.unlink()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- SpatiaLite


def _sqlite_path(url: URL, *, must_exist: bool) -> Path:
    database = url.database
    if database in (None, "", ":memory:") or database.startswith("file:") or \
            "uri" in url.query:
        raise BackupError("backup and restore need a SpatiaLite file: sqlite:///FILE")
    path = Path(os.path.abspath(database))
    if must_exist and not path.is_file():
        raise BackupError(f"no database file {path}")
    return path


def _sqlite_connect(path: Path, mode: str = "rw") -> sqlite3.Connection:
    """A plain sqlite3 connection (no SpatiaLite needed: pages and raw rows only)."""
    uri = f"file:{urllib.parse.quote(str(path))}?mode={mode}"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None,
                               timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open {path}: {exc}") from exc
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
    return conn


def _sqlite_tables(conn: sqlite3.Connection) -> list[str]:
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    return [n for n in names if not n.startswith(SPATIALITE_TABLE_PREFIXES)]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sqlite_snapshot(conn: sqlite3.Connection) -> Snapshot:
    """The fingerprint of the database as the connection's current transaction sees it."""
    tables: dict[str, TableSum] = {}
    version = revision = None
    for name in _sqlite_tables(conn):
        summer = _Summer()
        for row in conn.execute(f"SELECT * FROM {_quote(name)}"):
            summer.add(repr(row).encode())
            if name == "netgis_meta" and row[0] == DATA_VERSION_KEY:
                version = int(row[1])
            elif name == "alembic_version":
                revision = str(row[0])
        tables[name] = summer.result()
    return Snapshot(tables, version, revision)


def _sqlite_check(conn: sqlite3.Connection, what: str) -> None:
    result = [r[0] for r in conn.execute("PRAGMA quick_check")]
    if result != ["ok"]:
        raise BackupError(f"{what} is damaged: {'; '.join(map(str, result[:5]))}")


def _sqlite_backup(source: Path, tmp: Path, out: Path) -> Snapshot:
    if out == source:
        raise BackupError("the backup cannot be the database itself")
    src = _sqlite_connect(source)
    try:
        # one read transaction: the fingerprint and the copy see the same snapshot
        src.execute("BEGIN")
        snap = _sqlite_snapshot(src)
        dst = sqlite3.connect(tmp, isolation_level=None)
        try:
            src.backup(dst)  # every page in one step, inside the read transaction
            # a backup is one self-contained file: no WAL beside it
            dst.execute("PRAGMA journal_mode = DELETE")
        finally:
            dst.close()
        src.execute("COMMIT")
    except sqlite3.Error as exc:
        raise BackupError(f"backup of {source} failed: {exc}") from exc
    finally:
        src.close()
    _check_revision(snap.revision, str(source))
    copy = _sqlite_connect(tmp, "ro")
    try:
        _sqlite_check(copy, "the backup")
        problems = _sqlite_snapshot(copy).differences(snap)
    finally:
        copy.close()
    if problems:
        raise BackupError("the backup does not match the database: " + "; ".join(problems))
    return snap


def _sqlite_holds_data(conn: sqlite3.Connection) -> list[str]:
    """The tables holding rows, bookkeeping aside."""
    return [name for name in _sqlite_tables(conn) if name not in BOOKKEEPING_TABLES and
            conn.execute(f"SELECT EXISTS (SELECT 1 FROM {_quote(name)})").fetchone()[0]]


def _sqlite_restore(src_path: Path, target: Path, replace: bool) -> tuple[Snapshot, Snapshot]:
    src = _sqlite_connect(src_path, "ro")
    try:
        try:
            _sqlite_check(src, f"the backup {src_path}")
            want = _sqlite_snapshot(src)
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{src_path} is not a readable SpatiaLite backup: {exc}") from exc
        _check_revision(want.revision, f"the backup {src_path}")
        if not target.exists():
            if not target.parent.is_dir():
                raise BackupError(f"the folder of {target} does not exist")
            # nobody can be using a file that is not there yet: build it aside, rename
            with _temp_beside(target) as tmp:
                dst = sqlite3.connect(tmp, isolation_level=None)
                try:
                    src.backup(dst)
                finally:
                    dst.close()
                _fsync(tmp)
                os.replace(tmp, target)
            _fsync(target.parent)
        else:
            _sqlite_restore_into(src, target, replace)
    finally:
        src.close()
    got_conn = _sqlite_connect(target, "ro")
    try:
        got = _sqlite_snapshot(got_conn)
    finally:
        got_conn.close()
    return want, got


def _sqlite_restore_into(src: sqlite3.Connection, target: Path, replace: bool) -> None:
    """Copy ``src`` into the existing database ``target`` as one write transaction."""
    dst = _sqlite_connect(target)
    try:
        full = _sqlite_holds_data(dst)
        if full and not replace:
            raise RestoreRefused(
                f"{target} holds data (tables {', '.join(full)}): nothing restored; "
                "restore into an empty database, or pass --replace to overwrite it")
        # the backup API waits for the target's writers and copies in one transaction:
        # a server's readers see the old database or the new one, never a mix
        src.backup(dst)
    except sqlite3.Error as exc:
        raise BackupError(f"restore into {target} failed (nothing changed): {exc}") from exc
    finally:
        dst.close()


# --------------------------------------------------------------------------- PostGIS


def _pg_program(name: str) -> str:
    found = shutil.which(name)
    if found is None and (PG_BIN_DIR / name).is_file():
        found = str(PG_BIN_DIR / name)
    if found is None:
        raise BackupError(f"{name} not found: install the PostgreSQL client programs "
                          "(Debian: postgresql-client-15)")
    return found


def _pg_env(url: URL) -> dict[str, str]:
    """The libpq environment naming the database of ``url``: the password goes here, not
    into a program's arguments (where other users of the machine could read it)."""
    env = dict(os.environ)  # the user's own PG* settings (certificates...) stay
    values = {"PGHOST": url.host or url.query.get("host"), "PGPORT": url.port,
              "PGUSER": url.username, "PGPASSWORD": url.password, "PGDATABASE": url.database,
              "PGSSLMODE": url.query.get("sslmode"), "PGTZ": "UTC",
              "PGCONNECT_TIMEOUT": "10",
              # a restore waiting this long for the server's transactions gives up
              "PGOPTIONS": f"-c lock_timeout={BUSY_TIMEOUT_S}s"}
    env.update({k: str(v) for k, v in values.items() if isinstance(v, str | int)})
    return env


def _pg_connect(url: URL) -> Any:
    import psycopg

    from netgis.storage.engine import create_engine

    engine = create_engine(url.render_as_string(hide_password=False))
    try:
        _, kwargs = engine.dialect.create_connect_args(engine.url)
    finally:
        engine.dispose()
    # the session formats values as pg_dump's does, so their COPY text is comparable
    kwargs["options"] = ("-c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=postgres "
                         "-c extra_float_digits=3")
    try:
        return psycopg.connect(**kwargs)
    except psycopg.Error as exc:
        raise BackupError(f"cannot connect to {url.render_as_string()}: {exc}") from exc


_PG_TABLES = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY c.relname
"""


def _lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The lines of a stream of byte chunks (without their newlines)."""
    rest = b""
    for chunk in chunks:
        rest += bytes(chunk)
        *lines, rest = rest.split(b"\n")
        yield from lines
    if rest:
        yield rest


def _copy_snapshot(tables: dict[str, _Summer]) -> Snapshot:
    """A :class:`Snapshot` from each table's COPY lines (``netgis_meta`` and
    ``alembic_version`` kept for their values)."""
    version = revision = None
    for line in tables.get("netgis_meta", _Summer()).kept:
        key, _, value = line.decode().partition("\t")
        if key == DATA_VERSION_KEY:
            version = int(value)
    kept = tables.get("alembic_version", _Summer()).kept
    if kept:
        revision = kept[0].decode()
    return Snapshot({n: s.result() for n, s in sorted(tables.items())}, version, revision)


def _pg_snapshot(conn: Any) -> Snapshot:
    """The fingerprint of the database in the connection's current transaction: every
    table's rows as COPY text (what pg_dump writes)."""
    from psycopg import sql

    tables: dict[str, _Summer] = {}
    for (name,) in conn.execute(_PG_TABLES).fetchall():
        summer = tables[name] = _Summer(keep=name in BOOKKEEPING_TABLES)
        with conn.cursor() as cur, cur.copy(sql.SQL("COPY {} TO STDOUT").format(
                sql.Identifier(name))) as copy:
            for line in _lines(copy):
                summer.add(line)
    return _copy_snapshot(tables)


def _dump_snapshot(dump: Path, env: dict[str, str]) -> Snapshot:
    """The fingerprint of a ``pg_dump -Fc`` archive, from the COPY blocks of its data."""
    proc = subprocess.Popen([_pg_program("pg_restore"), "--data-only", "-f", "-", str(dump)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    copy_start = re.compile(rb"^COPY (?:([^ .]+)\.)?([^ ]+) .*FROM stdin;$")
    tables: dict[str, _Summer] = {}
    current: _Summer | None = None
    for line in _lines(iter(lambda: proc.stdout.read(1 << 16), b"")):  # type: ignore[union-attr]
        if current is not None:
            if line == b"\\.":
                current = None
            else:
                current.add(line)
            continue
        m = copy_start.match(line)
        name = "" if m is None else m.group(2).decode().strip('"')
        if m and m.group(1) in (None, b"public") and name not in EXTENSION_TABLES:
            current = tables[name] = _Summer(keep=name in BOOKKEEPING_TABLES)
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise BackupError(f"pg_restore cannot read {dump}: {err.decode(errors='replace')}")
    return _copy_snapshot(tables)


def _pg_backup(url: URL, tmp: Path) -> Snapshot:
    import psycopg

    conn = _pg_connect(url)
    try:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        # the snapshot pg_dump will use, and the fingerprint read in it
        snapshot_id = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        snap = _pg_snapshot(conn)
        env = _pg_env(url)
        done = subprocess.run([_pg_program("pg_dump"), "-Fc", f"--snapshot={snapshot_id}",
                               "-f", str(tmp)], env=env, capture_output=True, check=False)
        if done.returncode != 0:
            raise BackupError(f"pg_dump failed: {done.stderr.decode(errors='replace')}")
        conn.rollback()
    except psycopg.Error as exc:
        raise BackupError(f"backup failed: {exc}") from exc
    finally:
        conn.close()
    _check_revision(snap.revision, "the database")
    problems = _dump_snapshot(tmp, env).differences(snap)
    if problems:
        raise BackupError("the backup does not match the database: " + "; ".join(problems))
    return snap


# Run first in the restore's transaction: lock every netgis table of the target (its
# server waits), refuse one holding rows unless replacing, drop them all (the archive
# makes them anew, at its own revision).
_PG_GUARD = """
DO $netgis$
DECLARE
  names text[];
  t text;
  n bigint;
BEGIN
  SELECT coalesce(array_agg(c.relname::text ORDER BY c.relname), '{{}}') INTO names
  FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
  WHERE ns.nspname = current_schema() AND c.relkind IN ('r', 'p')
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                    AND d.objid = c.oid AND d.deptype = 'e');
  IF cardinality(names) = 0 THEN RETURN; END IF;
  EXECUTE 'LOCK TABLE ' || (SELECT string_agg(format('%I', x), ', ') FROM unnest(names) x)
          || ' IN ACCESS EXCLUSIVE MODE';
  FOREACH t IN ARRAY names LOOP
    IF NOT {replace} AND t NOT IN ('alembic_version', 'netgis_meta') THEN
      EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM %I LIMIT 1) s', t) INTO n;
      IF n > 0 THEN
        RAISE EXCEPTION 'netgis-restore-refused: table % holds rows', t;
      END IF;
    END IF;
  END LOOP;
  FOREACH t IN ARRAY names LOOP
    EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', t);
  END LOOP;
END
$netgis$;
"""


def _pg_holds_data(conn: Any) -> list[str]:
    from psycopg import sql

    full = []
    for (name,) in conn.execute(_PG_TABLES).fetchall():
        if name in BOOKKEEPING_TABLES:
            continue
        query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(name))
        if conn.execute(query).fetchone()[0]:
            full.append(name)
    return full


def _pg_restore(url: URL, dump: Path, replace: bool) -> tuple[Snapshot, Snapshot]:
    env = _pg_env(url)
    want = _dump_snapshot(dump, env)  # reads the whole archive: a damaged one fails here
    _check_revision(want.revision, f"the backup {dump}")
    conn = _pg_connect(url)
    try:
        conn.autocommit = True
        full = _pg_holds_data(conn)
        # the spatial types exist before the archive's tables need them (the archive's
        # own CREATE EXTENSION is left out: dropping and making it anew would touch
        # whatever else of the database uses PostGIS)
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    finally:
        conn.close()
    if full and not replace:
        raise RestoreRefused(
            f"the database holds data (tables {', '.join(full)}): nothing restored; restore "
            "into an empty database, or pass --replace to overwrite it")
    listing = subprocess.run([_pg_program("pg_restore"), "--list", str(dump)], env=env,
                             capture_output=True, check=False)
    if listing.returncode != 0:
        raise BackupError(f"pg_restore cannot read {dump}: "
                          f"{listing.stderr.decode(errors='replace')}")
    keep = [line for line in listing.stdout.decode().splitlines()
            if not re.search(r"\bEXTENSION\b", line)]
    with tempfile.NamedTemporaryFile("w", suffix=".list") as list_file:
        list_file.write("\n".join(keep) + "\n")
        list_file.flush()
        script = subprocess.Popen(
            [_pg_program("pg_restore"), "--no-owner", "--no-privileges", "-L",
             list_file.name, "-f", "-", str(dump)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        # one transaction: the guard, then the archive; any error rolls all of it back
        applied = subprocess.run(
            [_pg_program("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
             "-c", _PG_GUARD.format(replace="true" if replace else "false"), "-f", "-"],
            stdin=script.stdout, capture_output=True, env=env, check=False)
        assert script.stdout is not None
        script.stdout.close()
        _, script_err = script.communicate()
    if applied.returncode != 0 or script.returncode != 0:
        err = (applied.stderr + script_err).decode(errors="replace")
        if "netgis-restore-refused" in err:
            raise RestoreRefused(
                "the database holds data (a write came in during the restore): nothing "
                "restored; pass --replace to overwrite it")
        raise BackupError(f"restore failed, nothing changed: {err.strip()}")
    conn = _pg_connect(url)
    try:
        got = _pg_snapshot(conn)
        conn.rollback()
    finally:
        conn.close()
    return want, got
