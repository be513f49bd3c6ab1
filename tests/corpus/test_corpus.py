"""Every bad input of :mod:`tests.corpus.cases` through every entry point: a clear error and
no change to the stored data (issue 19).

Entry points: ``netgis validate``, ``netgis analyze`` and ``netgis db load``
(the real ``netgis.cli.main``, in process) and ``POST /import`` for datasets on
disk; ``POST``, ``PUT`` and ``PATCH`` of ``/collections/{layer}/items`` (the
API's TestClient) for features. The store holds the ring_spur example; before
and after every attempt its tables are counted and checksummed.

On PostGIS the file cases go through ``netgis db load`` alone: ``validate`` and
``analyze`` never open a database, and ``POST /import`` reads and checks its upload in a
child process before any database is written (the same reader on both kinds of store), so
only the load differs between them; the SpatiaLite store takes every entry point.

A clear error is: exit code 2 (CLI) or the expected 4xx status with an
``application/problem+json`` body (API), no traceback and no "internal error",
and a problem naming the case's layer and, where the case knows them, its id
and field. Each test prints its figures and the running totals:
``N bad inputs, N clear errors, 0 changes to stored data``.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from fastapi.testclient import TestClient

from netgis.api.app import create_app
from netgis.cli import main
from netgis.errors import Problem
from netgis.io import read_dataset
from netgis.storage import Repository
from netgis.storage.models import ANALYSIS_RUNS, KPI_SNAPSHOTS, LAYER_TABLES, META
from tests.api.helpers import API_KEY, make_settings
from tests.corpus.cases import (
    FILE_CASES,
    GOOD,
    GOOD_GEOMETRY,
    ID_FIELD,
    ITEM_CASES,
    STORED,
    TOLERATED_CASES,
    Expect,
    FileCase,
    ItemCase,
)
from tests.helpers import EXAMPLES_DIR, PostgresDatabases

KEY = {"X-API-Key": API_KEY}
TABLES = [*LAYER_TABLES.values(), META, KPI_SNAPSHOTS, ANALYSIS_RUNS]


@dataclass
class Tally:
    """Bad inputs tried, clear errors seen, changes to the store; what went wrong."""

    inputs: int = 0
    clear: int = 0
    changes: int = 0
    failures: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.inputs += other.inputs
        self.clear += other.clear
        self.changes += other.changes
        self.failures += other.failures

    def line(self, what: str) -> str:
        return (f"{what}: {self.inputs} bad inputs, {self.clear} clear errors, "
                f"{self.changes} changes to stored data")


TOTAL = Tally()


# ---------------------------------------------------------------------------- the store


def _postgis_url() -> Iterator[str]:
    databases = PostgresDatabases()
    try:
        yield databases.create(prefix="netgis_corpus")
    finally:
        databases.drop_all()


@pytest.fixture(scope="module",
                params=["spatialite", pytest.param("postgis", marks=pytest.mark.postgis)])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[str]:
    """A database URL holding the ring_spur example."""
    if request.param == "spatialite":
        urls: Iterator[str] = iter([f"sqlite:///{tmp_path_factory.mktemp('corpus') / 'c.db'}"])
    else:
        urls = _postgis_url()
    url = next(urls)
    repo = Repository.from_url(url)
    repo.init()
    repo.load_dataset(read_dataset(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg"))
    repo.close()
    yield url
    for _ in urls:  # runs the generator's clean-up
        pass


@pytest.fixture(scope="module")
def client(store: str) -> Iterator[TestClient]:
    app = create_app(make_settings(store, max_body_bytes=1_000_000))
    with TestClient(app, raise_server_exceptions=False) as c:
        # the app's own first writes (the KPI snapshot and stored results of the data it
        # found) are done before any bad input is judged by what it changed
        app.state.services.settle()
        yield c


def checksum(url: str) -> tuple[dict[str, int], str]:
    """Row count per table and one SHA-256 over every row of every table, in key order."""
    engine = sqlalchemy.create_engine(url) if url.startswith("postgresql") else None
    repo = None
    if engine is None:
        repo = Repository.from_url(url)  # SpatiaLite needs its extension loaded
        engine = repo.engine
    digest = hashlib.sha256()
    counts: dict[str, int] = {}
    try:
        with engine.connect() as conn:
            for table in TABLES:
                keys = [c.name for c in table.primary_key.columns] or [table.c[0].name]
                rows = conn.exec_driver_sql(
                    f"SELECT * FROM {table.name} ORDER BY "  # table names are ours
                    + ", ".join(keys)).all()
                counts[table.name] = len(rows)
                digest.update(table.name.encode())
                for row in rows:
                    digest.update(repr(tuple(row)).encode("utf-8", "backslashreplace"))
    finally:
        engine.dispose()
    return counts, digest.hexdigest()


# --------------------------------------------------------------------------- judging


def _names(problem: dict[str, Any] | Problem, expect: Expect, ids: set[str | None]) -> bool:
    p = problem if isinstance(problem, dict) else problem.as_dict()
    if p.get("layer") != expect.layer:
        return False
    if expect.field is not None and p.get("field") != expect.field:
        return False
    return expect.id is None or p.get("id") in ids


def _cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
         *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["netgis", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else -1), out.out, out.err


def _stderr_names(stderr: str, expect: Expect) -> bool:
    """The CLI's problem lines (``layer id=... field=...: reason``) name the case."""
    if "internal error" in stderr or "Traceback" in stderr:
        return False
    head = str(Problem(expect.layer, expect.id, expect.field, "")).removesuffix(": ")
    if expect.id is None and expect.field is not None:
        lines = [ln.strip() for ln in stderr.splitlines()]
        return any(ln.startswith(expect.layer) and f"field={expect.field}:" in ln
                   for ln in lines)
    return head in stderr


def _upload(path: Path) -> tuple[str, bytes]:
    if path.is_file():
        return path.name, path.read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in sorted(path.iterdir()):
            zf.write(f, f"dataset/{f.name}")
    return "dataset.zip", buf.getvalue()


def _api_clear(r: Any, statuses: frozenset[int], expect: Expect, ids: set[str | None]) -> str:
    """'' when ``r`` is a clear error for the case, else what is wrong with it."""
    if r.status_code not in statuses:
        return f"status {r.status_code} (want {sorted(statuses)}): {r.text[:300]}"
    if not r.headers.get("content-type", "").startswith("application/problem+json"):
        return f"content-type {r.headers.get('content-type')}"
    body = r.json()
    if r.status_code == 415:
        return "" if body.get("detail") else "no detail"
    if not any(_names(e, expect, ids) for e in body.get("errors", [])):
        return f"no problem names {expect}: {body.get('errors')}"
    return ""


# ------------------------------------------------------------------------ file cases


def _on_postgis(store: str) -> bool:
    return store.startswith("postgresql")


def _run_file_case(case: FileCase, root: Path, store: str, client: TestClient,
                   monkeypatch: pytest.MonkeyPatch,
                   capsys: pytest.CaptureFixture[str]) -> Tally:
    tally = Tally()
    root.mkdir(parents=True)
    path = case.write(root)
    ids = {case.expect.id}

    def judge(entry: str, problem: str) -> None:
        tally.inputs += 1
        after = checksum(store)
        if after != before:
            tally.changes += 1
            problem += " (stored data changed)"
        if problem:
            tally.failures.append(f"{case.name} via {entry}: {problem}")
        else:
            tally.clear += 1

    before = checksum(store)
    if _on_postgis(store):  # what differs between the stores (see the module docstring)
        code, out, err = _cli(monkeypatch, capsys, "db", "load", str(path), "--database-url",
                              store, "--mode", "upsert")
        judge("netgis db load", "" if code == 2 and _stderr_names(err, case.expect)
              else f"exit {code}, stderr={err[-400:]!r}")
        return tally
    code, out, err = _cli(monkeypatch, capsys, "validate", str(path))
    try:
        report = json.loads(out)
        named = any(_names(p, case.expect, ids) for p in report["errors"])
    except (ValueError, KeyError):
        named = False
    judge("netgis validate", "" if code == 2 and named and not err.strip() else
          f"exit {code}, named={named}, stderr={err[-300:]!r}, stdout={out[:300]!r}")

    out_dir = root / "out"
    code, out, err = _cli(monkeypatch, capsys, "analyze", str(path), "--out", str(out_dir))
    judge("netgis analyze", "" if code == 2 and not out and not out_dir.exists()
          and _stderr_names(err, case.expect) else f"exit {code}, stderr={err[-400:]!r}")

    # upsert: an id clash with the stored example must not be what keeps a bad input out
    code, out, err = _cli(monkeypatch, capsys, "db", "load", str(path), "--database-url", store,
                          "--mode", "upsert")
    judge("netgis db load", "" if code == 2 and _stderr_names(err, case.expect)
          else f"exit {code}, stderr={err[-400:]!r}")

    name, data = _upload(path)
    r = client.post("/import", params={"mode": "upsert"}, files={"file": (name, data)},
                    headers=KEY)
    judge("POST /import", _api_clear(r, case.import_status, case.expect, ids))
    return tally


#: The file cases run in this many tests (every PARTS-th case each), so that pytest-xdist
#: spreads the corpus, about 3.5 minutes on one worker, over its workers.
PARTS = 4


@pytest.mark.parametrize("part", range(PARTS))
def test_file_corpus(store: str, client: TestClient, tmp_path: Path, part: int,
                     monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
                     ) -> None:
    tally = Tally()
    cases = FILE_CASES[part::PARTS]
    for i, case in enumerate(cases):
        tally.add(_run_file_case(case, tmp_path / f"case{i}", store, client, monkeypatch,
                                 capsys))
    kinds = len({(c.expect.layer, c.kind) for c in cases})
    with capsys.disabled():
        print(f"\n{len(cases)} of the {len(FILE_CASES)} file cases ({kinds} layer x kind "
              "pairs), " + tally.line("db load (PostGIS)" if _on_postgis(store)
                                      else "validate/analyze/db load/import"))
        print("".join(f"\n  FAILED {f}" for f in tally.failures))
    TOTAL.add(tally)
    with capsys.disabled():
        print("so far, " + TOTAL.line("all entry points"))
    assert tally.failures == []
    assert tally.inputs == (1 if _on_postgis(store) else 4) * len(cases) == tally.clear
    assert tally.changes == 0


# ------------------------------------------------------------------------ item cases


def _body(case: ItemCase, item_id: str | None) -> dict[str, Any]:
    props = {**GOOD[case.layer], **case.props}
    if item_id is not None and ID_FIELD[case.layer] not in case.props:
        props[ID_FIELD[case.layer]] = item_id
    return {"type": "Feature", "geometry": case.geometry or GOOD_GEOMETRY[case.layer],
            "properties": props}


def _send(client: TestClient, method: str, url: str, body: Any) -> Any:
    # json.dumps writes NaN / Infinity tokens and \\ud800 escapes, as a careless client does
    return client.request(method, url, content=json.dumps(body).encode("ascii"),
                          headers={**KEY, "content-type": "application/json"})


def test_item_corpus(store: str, client: TestClient, capsys: pytest.CaptureFixture[str]
                     ) -> None:
    tally = Tally()
    base_url = "/collections/{layer}/items"
    for case in ITEM_CASES:
        stored = STORED[case.layer]
        new_id = GOOD[case.layer][ID_FIELD[case.layer]]
        attempts: list[tuple[str, str, Any, frozenset[int] | None, set[str | None]]] = [
            ("POST", base_url.format(layer=case.layer), _body(case, None), case.post,
             {case.expect.id}),
            ("PUT", f"{base_url.format(layer=case.layer)}/{stored}", _body(case, stored),
             case.put, {case.expect.id, stored}),
            ("PATCH", f"{base_url.format(layer=case.layer)}/{stored}",
             {"properties": case.props,
              **({"geometry": case.geometry} if case.geometry else {})},
             case.patch, {case.expect.id, stored}),
        ]
        for method, url, body, statuses, ids in attempts:
            if statuses is None:
                continue
            if case.expect.id == new_id:
                ids = ids | {stored}
            before = checksum(store)
            r = _send(client, method, url, body)
            problem = _api_clear(r, statuses, case.expect, ids)
            tally.inputs += 1
            if checksum(store) != before:
                tally.changes += 1
                problem += " (stored data changed)"
            if problem:
                tally.failures.append(f"{case.name} via {method}: {problem}")
            else:
                tally.clear += 1
    kinds = len({(c.layer, c.kind) for c in ITEM_CASES})
    with capsys.disabled():
        print(f"\n{len(ITEM_CASES)} item cases ({kinds} layer x kind pairs), "
              + tally.line("POST/PUT/PATCH"))
        print("".join(f"\n  FAILED {f}" for f in tally.failures))
    TOTAL.add(tally)
    with capsys.disabled():
        print("so far, " + TOTAL.line("all entry points"))
    assert tally.failures == []
    assert tally.changes == 0 and tally.clear == tally.inputs


# ------------------------------------------------------------------ tolerated input


@pytest.mark.parametrize("case", TOLERATED_CASES, ids=lambda c: c.name)
def test_tolerated_3d_input_loads_as_2d_with_a_warning(
        case: FileCase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = case.write(tmp_path)
    code, out, _ = _cli(monkeypatch, capsys, "validate", str(path))
    report = json.loads(out)
    assert code == 0 and report["errors"] == []
    assert any("Z/M values dropped" in w["reason"] for w in report["warnings"])
    code, _, err = _cli(monkeypatch, capsys, "analyze", str(path), "--out", str(tmp_path / "o"))
    assert code == 0, err
    db = f"sqlite:///{tmp_path / 'z.db'}"
    code, _, err = _cli(monkeypatch, capsys, "db", "load", str(path), "--database-url", db)
    assert code == 0, err
    with Repository.from_url(db) as repo:
        stored = repo.read_dataset()
    assert not any(stored.premises.geometry.has_z)
