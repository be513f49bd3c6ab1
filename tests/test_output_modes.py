"""Every file and directory the command line writes gets the usual modes under the umask,
and a write that fails leaves no temporary behind.

Each command runs as a user runs it: the venv's ``netgis`` script in a fresh
process (PYTHONPATH passed on), with the umask set in the child. Commands
that write no file (``validate``, ``scenario``, ``kpis`` without
``snapshot``) are not here; ``kpis snapshot`` and ``db load`` write into the
database, whose file SQLite creates.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from netgis.io import TEMP_PREFIX, write_dataset
from tests.test_bead import availability_csv, fabric_csv
from tests.test_gaps import hand_dataset

NETGIS = Path(sys.executable).with_name("netgis")
RING = Path(__file__).parent / "examples" / "ring_spur" / "dataset.gpkg"
UMASKS = [0o022, 0o027]


def netgis(*args: str | Path, umask: int, database: Path | None = None
           ) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("NETGIS_TILES_URL", None)
    if database is not None:
        env["NETGIS_DATABASE_URL"] = f"sqlite:///{database}"
    return subprocess.run([str(NETGIS), *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env, umask=umask, check=False)


@pytest.fixture(scope="module")
def bead_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bead-inputs")
    return {"dataset": write_dataset(hand_dataset(), d / "hand.gpkg"),
            "availability": availability_csv(d / "a.csv"),
            "locations": fabric_csv(d / "f.csv")}


def _modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root.parent)): stat.S_IMODE(p.lstat().st_mode)
            for p in [root, *root.rglob("*")]}


def _temporaries(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*") if p.name.startswith(TEMP_PREFIX)
                  or ".old-" in p.name)


@pytest.mark.parametrize("umask", UMASKS, ids=oct)
def test_every_output_gets_the_usual_modes(umask: int, bead_inputs: dict[str, Path],
                                           tmp_path: Path) -> None:
    out = tmp_path / "out"
    db = tmp_path / "db.sqlite"
    commands: list[tuple[str | Path, ...]] = [
        ("analyze", RING, "--out", out / "analyze"),
        ("gaps", RING, "--out", out / "gaps", "--after", out / "after.geojson"),
        ("bead", bead_inputs["dataset"], "--availability", bead_inputs["availability"],
         "--locations", bead_inputs["locations"], "--out", out / "bead"),
        ("generate", "--premises", "300", "--seed", "1", "--out", out / "gen" / "city.gpkg"),
        ("generate", "--premises", "300", "--seed", "1", "--out", out / "gen" / "city.parquet"),
        ("map", "coverage", RING, "--out", out / "maps" / "coverage.html"),
        ("db", "load", RING),
        ("db", "export", out / "export" / "ring.gpkg"),
        ("db", "export", out / "export" / "ring.fgb"),
        ("db", "export", out / "export" / "ring.fgb"),  # replaces the directory
    ]
    for args in commands:
        run = netgis(*args, umask=umask, database=db)
        assert run.returncode == 0, (args, run.stderr)

    file_mode, dir_mode = 0o666 & ~umask, 0o777 & ~umask
    modes = _modes(out)
    expected = {
        "out/analyze/kpis.json", "out/analyze/premises.csv", "out/gaps/gaps_clusters.csv",
        "out/gaps/gaps_plan.gpkg", "out/after.geojson/spans.geojson", "out/bead/bead.csv",
        "out/gen/city.gpkg", "out/gen/city.parquet/premises.parquet",
        "out/maps/coverage.html", "out/export/ring.gpkg", "out/export/ring.fgb/nodes.fgb",
    }
    assert expected <= set(modes)
    wrong = {name: oct(mode) for name, mode in modes.items()
             if mode != (dir_mode if (tmp_path / name).is_dir() else file_mode)}
    assert wrong == {}, f"umask {umask:03o}: want files {file_mode:o}, directories {dir_mode:o}"
    assert _temporaries(out) == []


def _failing_targets(root: Path) -> None:
    """Outputs whose last step must fail: a file that would replace a directory."""
    for blocker in ("gen/city.gpkg", "page.html", "analyze/premises.csv", "bead/bead.csv",
                    "gaps/gaps_h3.csv"):
        (root / blocker).mkdir(parents=True)
        (root / blocker / "keep.txt").write_text("mine")


def test_a_failing_write_leaves_no_temporary(bead_inputs: dict[str, Path],
                                             tmp_path: Path) -> None:
    umask = 0o027
    root = tmp_path / "out"
    _failing_targets(root)
    before = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    commands: list[tuple[str | Path, ...]] = [
        ("generate", "--premises", "300", "--out", root / "gen" / "city.gpkg"),
        ("map", "areas", RING, "--out", root / "page.html"),
        ("analyze", RING, "--out", root / "analyze"),
        ("bead", bead_inputs["dataset"], "--availability", bead_inputs["availability"],
         "--locations", bead_inputs["locations"], "--out", root / "bead"),
        ("gaps", RING, "--out", root / "gaps"),
    ]
    for args in commands:
        run = netgis(*args, umask=umask)
        assert run.returncode != 0, args
        assert "Traceback" not in run.stderr, run.stderr
        assert "directory" in run.stderr.lower(), run.stderr
    # nothing half-written: no temporary, no file of an output written before the failure
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == before
    assert _temporaries(root) == []
