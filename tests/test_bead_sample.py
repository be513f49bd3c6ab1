"""The README's `netgis bead` command on the shipped sample inputs (data/bead/).

Before, the command named files that did not ship. The classes are worked out here
again in plain Python over the two CSVs, with the rules as docs/gaps.md states them,
and the plant join is compared with `netgis analyze` of the sample: each Fabric
location stands on the premise with the same location_id.
"""

from __future__ import annotations

import csv
import json
import shlex
import subprocess
import sys
from collections import Counter
from pathlib import Path

import geopandas as gpd

ROOT = Path(__file__).parents[1]
NETGIS = Path(sys.executable).with_name("netgis")
COUNTED = {"10", "40", "50", "71", "72"}
CLASSES = ("unserved", "underserved", "served")


def readme_bead_command() -> list[str]:
    lines = [line for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
             if line.startswith("$N bead ")]
    assert len(lines) == 1, lines
    return shlex.split(lines[0].split("#")[0])[1:]


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def record_class(record: dict[str, str]) -> int:
    """The class code of one record alone (-1: it does not count)."""
    if record["technology"] not in COUNTED or record["low_latency"] != "1":
        return -1
    down = float(record["max_advertised_download_speed"])
    up = float(record["max_advertised_upload_speed"])
    return 2 if down >= 100 and up >= 20 else 1 if down >= 25 and up >= 3 else 0


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(NETGIS), *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, check=False)


def test_the_readme_bead_command_runs_on_the_shipped_files(tmp_path: Path) -> None:
    args = readme_bead_command()
    assert args[:2] == ["bead", "data/sample.gpkg"]
    (tmp_path / "data").symlink_to(ROOT / "data")
    done = run(args, tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)

    availability = rows(ROOT / "data" / "bead" / "availability.csv")
    fabric = rows(ROOT / "data" / "bead" / "fabric.csv")
    best: dict[str, int] = {}
    for record in availability:
        best[record["location_id"]] = max(best.get(record["location_id"], 0),
                                          record_class(record))
    expected = {f["location_id"]: CLASSES[max(best.get(f["location_id"], 0), 0)]
                for f in fabric}
    counts = Counter(expected.values())
    assert {c: summary[c] for c in CLASSES} == {c: counts[c] for c in CLASSES}
    assert summary["locations"] == len(fabric)
    assert summary["availability_rows"] == len(availability)
    assert summary["counted_rows"] == sum(record_class(r) >= 0 for r in availability)
    assert summary["availability_locations_not_in_locations"] == len(set(best) - set(expected))
    # the sample shows every class, and each class both passed and not
    assert all(counts[c] for c in CLASSES)
    assert all(summary["plant"][c]["passed"] and summary["plant"][c]["reachable"]
               and summary["plant"][c]["beyond"] for c in CLASSES)

    out = {r["location_id"]: r for r in rows(tmp_path / "bead" / "bead.csv")}
    assert {k: r["bead_class"] for k, r in out.items()} == expected
    # the plant join: passed exactly where the analysis passes the premise standing there
    analysed = run(["analyze", "data/sample.gpkg", "--out", "analysis"], tmp_path)
    assert analysed.returncode == 0, analysed.stderr
    premises = {r["premise_id"]: r["passed"] for r in rows(tmp_path / "analysis" /
                                                           "premises.csv")}
    location_of = gpd.read_file(ROOT / "data" / "sample.gpkg", layer="premises",
                                columns=["premise_id", "location_id"], ignore_geometry=True)
    passed = {str(lid): premises[pid] for pid, lid in zip(
        location_of["premise_id"], location_of["location_id"], strict=True)}
    assert {k: r["passed"] for k, r in out.items()} == {k: passed[k] for k in out}
    reach = float(summary["reach_m"])
    for r in out.values():
        plant = ("passed" if r["passed"] == "true" else
                 "reachable" if float(r["distance_m"]) <= reach else "beyond")
        assert r["plant"] == plant, r
