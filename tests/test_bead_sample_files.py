"""The shipped BEAD sample inputs (data/bead/) are what data/bead/make_sample.py makes from
data/sample.gpkg, byte for byte, and each Fabric location is the sample's premise with its
location_id (same address and units)."""

from __future__ import annotations

import csv
import importlib.util
import sqlite3
from pathlib import Path

ROOT = Path(__file__).parents[1]
BEAD = ROOT / "data" / "bead"


def test_make_sample_makes_the_shipped_files(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_sample", BEAD / "make_sample.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    for name in ("fabric.csv", "availability.csv"):
        assert (tmp_path / name).read_bytes() == (BEAD / name).read_bytes(), name


def test_every_fabric_location_is_a_premise_of_the_sample() -> None:
    with (BEAD / "fabric.csv").open(newline="", encoding="utf-8") as f:
        fabric = {r["location_id"]: r for r in csv.DictReader(f)}
    with sqlite3.connect(ROOT / "data" / "sample.gpkg") as db:
        rows = db.execute("SELECT location_id, address, units FROM premises").fetchall()
    premises = {str(lid): (address, units) for lid, address, units in rows}
    assert len(fabric) == 36
    for location_id, row in fabric.items():
        assert premises[location_id] == (row["address_primary"], int(row["unit_count"]))
