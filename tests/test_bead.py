"""BEAD classification (docs/spec.md §2.11) on hand-made FCC CSVs, and the join with the plant.

Plant: tests/test_gaps.py's hand dataset (span s1 along y=0, x 0..1000, EPSG:32632).
Expected classes, worked out record by record:

| location | records (technology, down/up, low_latency) | class |
|---|---|---|
| L1 | 50 200/2, 10 30/5 | underserved (200/2 alone is unserved, 30/5 underserved) |
| L2 | 50 100/20 | served (exactly the bar) |
| L3 | 50 25/3 | underserved (exactly the bar) |
| L4 | 50 1000/1000 low_latency 0 | unserved (not counted) |
| L5 | 60 100/20, 70 100/20, 0 1000/1000 | unserved (technologies not counted) |
| L6 | no record | unserved |
| L7 | 40 99/20, 71 100/19.9, 72 100/20 (three providers) | served |
| L8 | 50 24.9/3, 10 25/2.9 | unserved (each just below) |
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Transformer

from netgis.engine.analysis import analyze
from netgis.errors import ValidationError
from netgis.io import write_dataset
from netgis.products.bead import (
    AVAILABILITY_COLUMNS,
    bead,
    class_codes,
    classify,
    read_availability,
    read_locations,
)
from tests.test_gaps import X0, Y0, hand_dataset

RECORDS = [
    ("L1", 50, 200, 2, 1), ("L1", 10, 30, 5, 1),
    ("L2", 50, 100, 20, 1),
    ("L3", 50, 25, 3, 1),
    ("L4", 50, 1000, 1000, 0),
    ("L5", 60, 100, 20, 1), ("L5", 70, 100, 20, 1), ("L5", 0, 1000, 1000, 1),
    ("L7", 40, 99, 20, 1), ("L7", 71, 100, 19.9, 1), ("L7", 72, 100, 20, 1),
    ("L8", 50, 24.9, 3, 1), ("L8", 10, 25, 2.9, 1),
]
EXPECTED = {"L1": "underserved", "L2": "served", "L3": "underserved", "L4": "unserved",
            "L5": "unserved", "L6": "unserved", "L7": "served", "L8": "unserved"}
# drawn offsets from s1 (y) at x=500: L2 50 m (passed), L1 300 m (reachable), L3 2,000 m
OFFSETS = {"L1": 300, "L2": 50, "L3": 2000, "L4": 100, "L5": 450, "L6": 140, "L7": 600,
           "L8": 10}


def availability_csv(path: Path, records: list[tuple[object, ...]] = RECORDS) -> Path:
    lines = [",".join(AVAILABILITY_COLUMNS)]
    for i, (loc, tech, down, up, ll) in enumerate(records):
        lines.append(f"{loc},{tech},{down},{up},{ll},{100 + i},\"Brand, Inc\",R,NY,"
                     f"360010001001000,8828308281fffff")
    path.write_text("\n".join(lines) + "\n")
    return path


def fabric_csv(path: Path) -> Path:
    t = Transformer.from_crs(32632, 4326, always_xy=True)
    lines = ["location_id,address_primary,latitude,longitude"]
    for loc, dy in OFFSETS.items():
        lon, lat = t.transform(X0 + 500, Y0 + dy)
        lines.append(f"{loc},1 Main St,{lat:.9f},{lon:.9f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_classes_by_hand_in_memory() -> None:
    frame = pd.DataFrame(RECORDS, columns=list(AVAILABILITY_COLUMNS[:5]))
    got = classify(frame, locations=EXPECTED)
    assert dict(zip(got["location_id"], got["bead_class"], strict=True)) == EXPECTED


def test_classes_by_hand_from_csv_in_small_blocks(tmp_path: Path) -> None:
    # tiny blocks: one location's records fall into different blocks
    avail = read_availability(availability_csv(tmp_path / "a.csv"), block_bytes=400)
    assert avail.rows == len(RECORDS)
    assert avail.counted_rows == 9  # all but L4 (low latency 0) and L5's three
    names = {k: ("unserved", "underserved", "served")[v] for k, v in avail.best.items()}
    assert names == {k: v for k, v in EXPECTED.items() if k != "L6"}


def test_join_with_plant(tmp_path: Path) -> None:
    result = analyze(hand_dataset())
    answer = bead(result.lit_spans, availability_csv(tmp_path / "a.csv"),
                  fabric_csv(tmp_path / "f.csv"), reach_m=500)
    s = answer.summary
    assert (s["served"], s["underserved"], s["unserved"]) == (2, 2, 4)
    # served: L2 passed, L7 beyond; underserved: L1 reachable, L3 beyond;
    # unserved: L4, L6, L8 passed, L5 reachable
    assert s["plant"] == {"served": {"passed": 1, "reachable": 0, "beyond": 1},
                          "underserved": {"passed": 0, "reachable": 1, "beyond": 1},
                          "unserved": {"passed": 3, "reachable": 1, "beyond": 0}}
    rows = answer.locations.set_index("location_id")
    assert dict(rows["bead_class"]) == EXPECTED
    assert rows.loc["L1", "distance_m"] == pytest.approx(300 / 0.99963, rel=1e-3)
    assert bool(rows.loc["L8", "passed"]) and not bool(rows.loc["L1", "passed"])
    assert s["availability_rows"] == len(RECORDS)
    assert s["availability_locations_not_in_locations"] == 0


def test_malformed_rows_are_errors_with_line_numbers(tmp_path: Path) -> None:
    p = availability_csv(tmp_path / "a.csv")
    lines = p.read_text().splitlines()
    lines[2] = lines[2].replace("L1,10,30", ",10,30")           # line 3: no location_id
    lines[4] = lines[4].replace(",25,3,", ",fast,3,")          # line 5: speed not a number
    lines[6] = lines[6].replace("L5,60,", "L5,6x,")            # line 7: bad technology
    lines[7] = lines[7].replace(",20,1,", ",20,2,")            # line 8: low_latency 2
    lines.insert(9, "L9,50,100")                               # line 10: too few fields
    lines[10] = lines[10].replace(",99,", ",-1,")              # line 11: negative speed
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValidationError) as info:
        read_availability(p, block_bytes=400)
    found = {(pr.field, pr.reason.split(":")[0]) for pr in info.value.problems}
    assert found == {("location_id", "a.csv line 3"),
                     ("max_advertised_download_speed", "a.csv line 5"),
                     ("technology", "a.csv line 7"), ("low_latency", "a.csv line 8"),
                     (None, "a.csv line 10"), ("max_advertised_download_speed", "a.csv line 11")}


def test_missing_column_and_bad_locations(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    p.write_text("location_id,technology,max_advertised_download_speed\n1,50,100\n")
    with pytest.raises(ValidationError, match="missing column"):
        read_availability(p)
    f = tmp_path / "f.csv"
    f.write_text("location_id,latitude,longitude\nA,50.1,8.6\n,50.1,8.6\nA,50.2,8.6\nB,95,8\n")
    with pytest.raises(ValidationError) as info:
        read_locations(f)
    reasons = sorted(str(p) for p in info.value.problems)
    assert any("line 3: empty" in r for r in reasons)
    assert any("line 4: duplicate location_id" in r for r in reasons)
    assert any("line 5: not a WGS84 position" in r for r in reasons)


def test_locations_from_a_point_layer(tmp_path: Path) -> None:
    import geopandas as gpd

    fab = read_locations(fabric_csv(tmp_path / "f.csv"))
    layer = gpd.GeoDataFrame({"location_id": fab["location_id"]}, geometry=fab.geometry,
                             crs=4326).to_crs(32632)
    layer.to_file(tmp_path / "f.gpkg", driver="GPKG")
    back = read_locations(tmp_path / "f.gpkg")
    assert back["location_id"].tolist() == fab["location_id"].tolist()
    assert np.allclose(back.geometry.x, fab.geometry.x) and np.allclose(back.geometry.y,
                                                                        fab.geometry.y)


@settings(max_examples=200, deadline=None)
@given(records=st.lists(st.tuples(st.sampled_from([0, 10, 40, 50, 60, 61, 70, 71, 72, 300]),
                                  st.sampled_from([0, 3, 24.9, 25, 99.9, 100, 200, 1000]),
                                  st.sampled_from([0, 2, 2.9, 3, 19.9, 20, 100]),
                                  st.sampled_from([0, 1])), max_size=6))
def test_property_class_is_the_best_counted_record(
        records: list[tuple[int, float, float, int]]) -> None:
    best = 0
    for tech, down, up, ll in records:
        if tech in (10, 40, 50, 71, 72) and ll == 1:
            best = max(best, 2 if down >= 100 and up >= 20 else 1 if down >= 25 and up >= 3
                       else 0)
    if records:
        tech, down, up, ll = (list(c) for c in zip(*records, strict=True))
        assert int(class_codes(tech, down, up, ll).max()) == best
    frame = pd.DataFrame([("X", *r) for r in records], columns=list(AVAILABILITY_COLUMNS[:5]))
    got = classify(frame, locations=["X"])["bead_class"].tolist()
    assert got == [("unserved", "underserved", "served")[best]]


def test_cli(tmp_path: Path) -> None:
    gpkg = tmp_path / "ds.gpkg"
    write_dataset(hand_dataset(), gpkg)
    a = availability_csv(tmp_path / "a.csv")
    f = fabric_csv(tmp_path / "f.csv")
    cli = [sys.executable, "-c", "from netgis.cli import main; main()"]
    run = subprocess.run([*cli, "bead", str(gpkg), "--availability", str(a), "--locations",
                          str(f), "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert (summary["served"], summary["underserved"], summary["unserved"]) == (2, 2, 4)
    out = pd.read_csv(tmp_path / "o" / "bead.csv", keep_default_na=False, dtype=str)
    assert list(out.columns[:4]) == ["location_id", "bead_class", "passed", "distance_m"]
    assert dict(zip(out["location_id"], out["bead_class"], strict=True)) == EXPECTED
    assert set(out["passed"]) == {"true", "false"}
    a.write_text(a.read_text().replace("L2,50,100,20", "L2,50,100,fast"))
    bad = subprocess.run([*cli, "bead", str(gpkg), "--availability", str(a), "--locations",
                          str(f), "--out", str(tmp_path / "bad")],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2
    assert "line 4" in bad.stderr and "max_advertised_upload_speed" in bad.stderr
    assert not (tmp_path / "bad" / "bead.csv").exists()
