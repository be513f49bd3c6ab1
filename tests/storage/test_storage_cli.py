"""`netgis db ...` end to end in a subprocess, on both databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy

from netgis.cli import main
from netgis.io import read_dataset, write_dataset
from netgis.storage.migrate import head_revision
from tests.helpers import EXAMPLES_DIR
from tests.storage.helpers import BACKENDS, assert_same_layers, chain_dataset

EXAMPLE = EXAMPLES_DIR / "ring_spur" / "dataset.gpkg"


def _netgis(*args: str, env_url: str | None = None) -> subprocess.CompletedProcess[str]:
    """The real entry point in a subprocess (slow: a fresh interpreter each time)."""
    env = {k: v for k, v in os.environ.items() if k != "NETGIS_DATABASE_URL"}
    if env_url is not None:
        env["NETGIS_DATABASE_URL"] = env_url
    return subprocess.run([sys.executable, "-m", "netgis.cli", *args], capture_output=True,
                          text=True, env=env, timeout=300, check=False)


@pytest.fixture
def netgis_main(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
                ) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``netgis.cli.main`` in this process, with argv and environment as a shell would set."""

    def run(*args: str, env_url: str | None = None) -> subprocess.CompletedProcess[str]:
        if env_url is None:
            monkeypatch.delenv("NETGIS_DATABASE_URL", raising=False)
        else:
            monkeypatch.setenv("NETGIS_DATABASE_URL", env_url)
        monkeypatch.setattr(sys, "argv", ["netgis", *args])
        with pytest.raises(SystemExit) as done:
            main()
        out, err = capsys.readouterr()
        code = done.value.code
        return subprocess.CompletedProcess(list(args), code if isinstance(code, int) else 1,
                                           out, err)

    return run


@pytest.mark.parametrize("backend", BACKENDS)
def test_db_commands(backend: str, new_engine: Callable[[str], sqlalchemy.Engine],
                     tmp_path: Path,
                     netgis_main: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    url = new_engine(backend).url.render_as_string(hide_password=False)
    # SpatiaLite through the environment variable, PostGIS through the option
    opts = ["--database-url", url] if backend == "postgis" else []
    env_url = url if backend == "spatialite" else None

    # `db load` alone is enough on a new database; init and upgrade are then no-ops
    run = netgis_main("db", "load", str(EXAMPLE), *opts, env_url=env_url)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["loaded"]["spans"] == len(read_dataset(EXAMPLE).spans)
    run = netgis_main("db", "init", *opts, env_url=env_url)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["data_version"] == 1
    run = netgis_main("db", "upgrade", *opts, env_url=env_url)
    assert run.returncode == 0 and json.loads(run.stdout)["revision"] == head_revision()

    again = netgis_main("db", "load", str(EXAMPLE), *opts, env_url=env_url)
    assert again.returncode == 2
    assert "--mode replace" in again.stderr and "Traceback" not in again.stderr
    again = netgis_main("db", "load", str(EXAMPLE), "--mode", "insert", *opts, env_url=env_url)
    assert again.returncode == 2
    assert "spans id=s1 field=span_id" in again.stderr and "Traceback" not in again.stderr
    assert netgis_main("db", "load", str(EXAMPLE), "--mode", "upsert", *opts,
                   env_url=env_url).returncode == 0

    bad = chain_dataset(40, prefix="z")
    bad.spans.loc[17, "from_node"] = "ghost"
    bad_path = write_dataset(bad, tmp_path / "bad.gpkg")
    run = netgis_main("db", "load", str(bad_path), *opts, env_url=env_url)
    assert run.returncode == 2
    assert "spans id=zs17 field=from_node" in run.stderr

    stats = json.loads(netgis_main("db", "stats", *opts, env_url=env_url).stdout)
    assert stats["data_version"] == 2
    assert stats["layers"]["premises"] == len(read_dataset(EXAMPLE).premises)

    out = tmp_path / "export.gpkg"
    run = netgis_main("db", "export", str(out), *opts, env_url=env_url)
    assert run.returncode == 0, run.stderr
    assert_same_layers(read_dataset(out), read_dataset(EXAMPLE))


def test_db_commands_report_bad_databases(
        tmp_path: Path, netgis_main: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    run = netgis_main("db", "stats", "--database-url", "mysql://x@127.0.0.1/db")
    assert run.returncode == 2 and "unsupported database" in run.stderr
    # the installed entry point, in a fresh interpreter, on a database never initialised
    run = _netgis("db", "stats", env_url=f"sqlite:///{tmp_path / 'never_initialised.db'}")
    assert run.returncode == 2 and "netgis db init" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_db_history_lists_the_loads_of_the_command_line(
        backend: str, new_engine: Callable[[str], sqlalchemy.Engine],
        netgis_main: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    url = new_engine(backend).url.render_as_string(hide_password=False)
    opts = ["--database-url", url]
    assert netgis_main("db", "load", str(EXAMPLE), *opts).returncode == 0
    assert netgis_main("db", "load", str(EXAMPLE), "--mode", "upsert", *opts).returncode == 0

    run = netgis_main("db", "history", *opts)
    assert run.returncode == 0, run.stderr
    entries = [json.loads(line) for line in run.stdout.splitlines()]
    # one entry per load, newest first, by the command line, with counts and no ids
    assert len(entries) == 2
    assert {(e["actor"], e["action"]) for e in entries} == {("cli", "load")}
    assert [e["mode"] for e in entries] == ["upsert", "insert"]
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)
    assert entries[0]["time"].endswith("Z")
    spans = read_dataset(EXAMPLE).spans
    assert entries[1]["counts"]["spans"] == {"inserted": len(spans), "replaced": 0,
                                             "deleted": 0}
    assert entries[0]["counts"]["spans"] == {"inserted": 0, "replaced": len(spans),
                                             "deleted": 0}
    assert [e["feature_ids"] for e in entries] == [None, None]

    run = netgis_main("db", "history", "--layer", "spans", "--id", "s1", "--limit", "1", *opts)
    assert [json.loads(line)["mode"] for line in run.stdout.splitlines()] == ["upsert"]
    run = netgis_main("db", "history", "--since", "2999-01-01T00:00:00Z", *opts)
    assert run.returncode == 0 and run.stdout == ""
    for bad in (["--since", "yesterday"], ["--layer", "ducts"], ["--action", "drop"]):
        run = netgis_main("db", "history", *bad, *opts)
        assert run.returncode == 2 and bad[0] in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_db_load_never_merges_a_second_dataset_silently(
        backend: str, new_engine: Callable[[str], sqlalchemy.Engine],
        netgis_main: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    url = new_engine(backend).url.render_as_string(hide_password=False)
    opts = ["--database-url", url]
    other = EXAMPLES_DIR / "duct_ring" / "dataset.gpkg"
    first, second = read_dataset(EXAMPLE), read_dataset(other)
    assert netgis_main("db", "load", str(EXAMPLE), *opts).returncode == 0

    def stats() -> dict[str, object]:
        run = netgis_main("db", "stats", *opts)
        assert run.returncode == 0, run.stderr
        out: dict[str, object] = json.loads(run.stdout)
        return out

    held = stats()
    # a second dataset without a mode: refused, nothing changed, the way out named
    run = netgis_main("db", "load", str(other), *opts)
    assert run.returncode == 2
    assert "--mode replace" in run.stderr and "--mode upsert" in run.stderr
    assert "nodes" in run.stderr and "Traceback" not in run.stderr
    assert stats() == held
    # replace: the database holds exactly the second dataset, logged as one entry
    run = netgis_main("db", "load", str(other), "--mode", "replace", *opts)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["loaded"] == {n: len(f) for n, f in second.layers().items()}
    layers = stats()["layers"]
    assert layers == {n: len(f) for n, f in second.layers().items()}
    [entry] = [json.loads(line) for line in
               netgis_main("db", "history", "--limit", "1", *opts).stdout.splitlines()]
    assert entry["mode"] == "replace" and entry["layer"] is None
    assert entry["counts"]["nodes"]["deleted"] + entry["counts"]["nodes"]["replaced"] == \
        len(first.nodes)
    # again and again, as `make demo` does: same data, a new version each time
    for _ in range(2):
        run = netgis_main("db", "load", str(other), "--mode", "replace", *opts)
        assert run.returncode == 0, run.stderr
        assert stats()["layers"] == layers
    run = netgis_main("db", "load", str(other), "--mode", "upsert", *opts)
    assert run.returncode == 0 and stats()["layers"] == layers
    assert netgis_main("db", "load", str(other), "--mode", "merge", *opts).returncode == 2
