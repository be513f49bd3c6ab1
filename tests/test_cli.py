"""The command line as a user meets it: help, usage errors and unreadable input, no tracebacks."""

from __future__ import annotations

import json
import os
import pty
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import EXAMPLES_DIR

NETGIS = Path(sys.executable).with_name("netgis")


def netgis(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed ``netgis`` script in a fresh process."""
    return subprocess.run([str(NETGIS), *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd, check=False)


def test_help() -> None:
    run = netgis("--help")
    assert run.returncode == 0, run.stderr
    assert "Usage" in run.stdout and "validate" in run.stdout
    assert netgis("validate", "--help").returncode == 0


def test_no_arguments_shows_help() -> None:
    run = netgis()
    assert "Usage" in run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr


@pytest.mark.parametrize("args", [
    ("validate",),                                   # missing argument
    ("validate", "x.gpkg", "--no-such-option"),      # unknown option
    ("no-such-command",),                            # unknown command
    ("validate", "x.gpkg", "--snap-tolerance-m", "far"),  # bad option value
])
def test_usage_error_exits_2_without_traceback(args: tuple[str, ...]) -> None:
    run = netgis(*args)
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr + run.stdout
    assert run.stderr.strip()


@pytest.mark.parametrize("content", [b"", b"\x00garbage" * 64, b"SQLite format 3\x00broken"])
def test_unreadable_file_exits_2_naming_it(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "broken.gpkg"
    path.write_bytes(content)
    run = netgis("validate", path)
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr
    errors = json.loads(run.stdout)["errors"]
    assert len(errors) == 1 and "broken.gpkg" in errors[0]["reason"]


def test_missing_path_exits_2_naming_it(tmp_path: Path) -> None:
    run = netgis("validate", tmp_path / "nowhere.gpkg")
    assert run.returncode == 2
    report = json.loads(run.stdout)
    assert report["warnings"] == []
    [error] = report["errors"]
    assert error["layer"] == "dataset" and "nowhere.gpkg" in error["reason"]
    assert "does not exist" in error["reason"]


def test_unreadable_layer_file_in_a_directory(tmp_path: Path) -> None:
    (tmp_path / "nodes.fgb").write_bytes(b"not a flatgeobuf")
    run = netgis("validate", tmp_path)
    assert run.returncode == 2
    [error] = json.loads(run.stdout)["errors"]
    assert error["layer"] == "nodes" and "nodes.fgb" in error["reason"]


def test_valid_example_exits_0() -> None:
    run = netgis("validate", EXAMPLES_DIR / "ring_spur" / "dataset.gpkg")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"errors": [], "warnings": []}


RING = EXAMPLES_DIR / "ring_spur" / "dataset.gpkg"


def test_analyze_says_where_the_results_went_and_may_replace_its_own(tmp_path: Path) -> None:
    # no --out: ./netgis-out of the working directory, twice (the second replaces the first)
    for _ in range(2):
        run = netgis("analyze", RING, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        out = tmp_path / "netgis-out"
        assert f"results written to {out}" in run.stderr
        # stdout stays exactly the KPI JSON of kpis.json
        assert json.loads(run.stdout) == json.loads((out / "kpis.json").read_text())["network"]
    assert sorted(p.name for p in out.iterdir()) == [
        "kpis.json", "nodes.csv", "premises.csv", "spans.csv"]
    # a folder netgis gaps wrote into too stays netgis's
    assert netgis("gaps", RING, cwd=tmp_path).returncode == 0
    again = netgis("analyze", RING, cwd=tmp_path)
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize("default", [True, False], ids=["default-out", "given-out"])
def test_analyze_refuses_a_folder_netgis_did_not_write(tmp_path: Path, default: bool) -> None:
    out = tmp_path / "netgis-out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "premises.csv").write_text("premise_id\nmine\n")  # a user's file of that name
    run = netgis("analyze", RING, *(() if default else ("--out", out)), cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert "refusing to write the results into" in run.stderr and "notes.txt" in run.stderr
    assert "Traceback" not in run.stderr and run.stdout == ""
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "premises.csv"]
    assert (out / "premises.csv").read_text() == "premise_id\nmine\n"


def test_analyze_refuses_a_file_as_its_folder(tmp_path: Path) -> None:
    (tmp_path / "netgis-out").write_text("a file")
    run = netgis("analyze", RING, cwd=tmp_path)
    assert run.returncode == 2 and "not a folder" in run.stderr, run.stderr


SOURCES = Path(__file__).resolve().parent.parent / "data" / "mappings" / "sources"


@pytest.mark.parametrize("source", [SOURCES / "utility", SOURCES / "csv",
                                    SOURCES / "utility" / "cables.shp"],
                         ids=["shapefiles", "csv", "one-shapefile"])
def test_analyze_of_other_gis_files_points_to_import(source: Path, tmp_path: Path) -> None:
    run = netgis("analyze", source, "--out", tmp_path / "out")
    assert run.returncode == 2, run.stderr
    assert "netgis import SOURCE --mapping MAPPING.toml" in run.stderr
    assert "data/mappings/" in run.stderr
    # the files it saw are named
    assert any(f.name in run.stderr for f in ([source] if source.is_file()
                                              else source.iterdir()))
    assert "Traceback" not in run.stderr and not (tmp_path / "out").exists()


def test_a_folder_without_layers_or_gis_files_gets_no_import_hint(tmp_path: Path) -> None:
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "notes.txt").write_text("nothing here")
    run = netgis("analyze", tmp_path / "ds", "--out", tmp_path / "out")
    assert run.returncode == 2 and "nodes: required layer is missing" in run.stderr
    assert "netgis import" not in run.stderr


def test_analyze_prints_kpis_rounded_on_a_terminal_and_exact_in_a_pipe(
        tmp_path: Path) -> None:
    """A person at a terminal reads 93.5, a script reading the pipe gets kpis.json exactly."""
    sample = Path(__file__).resolve().parent.parent / "data" / "sample.gpkg"
    run = netgis("analyze", sample, "--out", tmp_path / "piped")
    assert run.returncode == 0, run.stderr
    exact = json.loads(run.stdout)
    assert exact == json.loads((tmp_path / "piped" / "kpis.json").read_text())["network"]
    assert exact["coverage_pct"] == 100 * exact["units_passed"] / exact["units_total"]
    # the same command with a terminal as stdout (a pseudo-terminal, as a shell gives)
    leader, follower = pty.openpty()
    with subprocess.Popen([str(NETGIS), "analyze", str(sample), "--out",
                           str(tmp_path / "tty")], stdout=follower,
                          stderr=subprocess.DEVNULL) as proc:
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not chunk:
                break
            shown += chunk
        assert proc.wait(timeout=300) == 0
    os.close(leader)
    read = json.loads(shown.decode("utf-8"))
    assert read.keys() == exact.keys()
    for key, value in exact.items():
        if isinstance(value, float) and key.endswith(("_pct", "_km")):
            decimals = 2 if key.endswith("_pct") else 3
            assert read[key] == round(value, decimals), key
        else:
            assert read[key] == value, key
    assert read["coverage_pct"] != exact["coverage_pct"]  # the sample's has many digits


def test_json_on_stdout_is_utf8_text_not_escapes() -> None:
    sample = Path(__file__).resolve().parent.parent / "data" / "sample.gpkg"
    # even where the locale's encoding could not write it
    run = subprocess.run([str(NETGIS), "search", str(sample), "12 lindenstrase", "--limit", "1"],
                         capture_output=True, timeout=120, check=False,
                         env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert run.returncode == 0, run.stderr
    text = run.stdout.decode("utf-8")
    assert "Lindenstraße" in text and "\\u00df" not in text
    assert json.loads(text)["features"][0]["properties"]["address"].startswith("Lindenstraße")


def test_serve_on_a_busy_port_says_so_before_any_url(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = subprocess.run([str(NETGIS), "serve", "--port", str(port), "--database-url",
                              f"sqlite:///{tmp_path / 'n.db'}"], capture_output=True, text=True,
                             timeout=120, check=False)
    assert run.returncode == 2, run.stderr
    assert f"127.0.0.1:{port} is already in use" in run.stderr
    assert "/collections" not in run.stderr and "Traceback" not in run.stderr
