"""``netgis bdc``: the FCC BDC fixed availability location list of the sample plant.

The file is checked against the published layout (the FCC's "How to Format Fixed
Broadband Availability Location Lists": eight fields, in this order, with these value
rules), written out here again rather than taken from netgis. Which locations it lists is
worked out independently: from ``netgis analyze``'s premises.csv (passed, in_budget), the
premises' location_id read from the GeoPackage with sqlite3, and the Fabric file read
with the csv module.

The dataset is the sample with one change: premises p0009 (not passed) and p0000 (passed,
in budget) share one location_id, so that location has two premises and is filed.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from netgis.cli import main

ROOT = Path(__file__).parents[1]
NETGIS = Path(sys.executable).with_name("netgis")

#: The published header of a fixed availability location list, field by field.
PUBLISHED_COLUMNS = ["provider_id", "brand_name", "location_id", "technology",
                     "max_advertised_download_speed", "max_advertised_upload_speed",
                     "low_latency", "business_residential_code"]
FIXED_TECHNOLOGIES = {"0", "10", "40", "50", "60", "61", "70", "71", "72"}
SHARED = ("p0009", "p0000")
ORPHANS = ["1299999990", "1299999991", "1299999992"]  # on no premise
BRAND = "Acme, \"Fiber\" Co"


def netgis(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(NETGIS), *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd, check=False)


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


class Case:
    """The dataset, its Fabric file and what analyze says of its premises."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dataset = root / "plant.gpkg"
        shutil.copy(ROOT / "data" / "sample.gpkg", self.dataset)
        # GDAL's own SQL: the GeoPackage's triggers call its spatial functions
        sql = ("UPDATE premises SET location_id = (SELECT location_id FROM premises WHERE "
               f"premise_id = '{SHARED[0]}') WHERE premise_id = '{SHARED[1]}'")
        done = subprocess.run(["ogrinfo", "-q", str(self.dataset), "-sql", sql],
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        with sqlite3.connect(self.dataset) as db:
            pairs = db.execute("SELECT premise_id, location_id FROM premises").fetchall()
        self.location_of = {str(p): str(lid) for p, lid in pairs}
        self.shared_location = self.location_of[SHARED[0]]
        assert self.location_of[SHARED[1]] == self.shared_location
        done = netgis("analyze", self.dataset, "--out", root / "analysis")
        assert done.returncode == 0, done.stderr
        self.premises = {r["premise_id"]: r for r in read_rows(root / "analysis" /
                                                               "premises.csv")}
        self.fabric = root / "fabric.csv"
        self.bsl: dict[str, bool] = {}
        self._write_fabric()

    def _ids(self, passed: str, in_budget: str, n: int) -> list[str]:
        chosen = [pid for pid, r in sorted(self.premises.items())
                  if r["passed"] == passed and r["in_budget"] == in_budget
                  and pid not in SHARED]
        return [self.location_of[pid] for pid in chosen[:n]]

    def _write_fabric(self) -> None:
        served = self._ids("true", "true", 12)
        ids = (served + self._ids("true", "false", 5) + self._ids("false", "false", 6)
               + ORPHANS + [self.shared_location])
        not_bsl = set(served[-2:])  # two served premises whose location is no BSL
        with self.fabric.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["location_id", "address_primary", "bsl_flag", "latitude", "longitude"])
            for i, location_id in enumerate(ids):
                self.bsl[location_id] = location_id not in not_bsl
                w.writerow([location_id, f"{i} Main St", str(self.bsl[location_id]),
                            "50.1", "8.7"])

    def expected(self, include_out_of_budget: bool) -> dict[str, str]:
        """Each Fabric location's answer: ``filed`` or the reason it is left out."""
        by_location: dict[str, list[dict[str, str]]] = {}
        for pid, row in self.premises.items():
            by_location.setdefault(self.location_of[pid], []).append(row)
        out: dict[str, str] = {}
        for location_id, bsl in self.bsl.items():
            rows = by_location.get(location_id, [])
            if not bsl:
                out[location_id] = "not_bsl"
            elif not rows:
                out[location_id] = "no_premise"
            elif not any(r["passed"] == "true" for r in rows):
                out[location_id] = "not_passed"
            elif not include_out_of_budget and not any(
                    r["passed"] == "true" and r["in_budget"] == "true" for r in rows):
                out[location_id] = "out_of_budget"
            else:
                out[location_id] = "filed"
        return out


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return Case(tmp_path_factory.mktemp("bdc"))


def check_published_layout(path: Path, brand: str) -> list[dict[str, str]]:
    """Every value rule of the location list, on the file as written."""
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == ",".join(PUBLISHED_COLUMNS)  # the header, exactly
    rows = read_rows(path)
    for r in rows:
        assert list(r) == PUBLISHED_COLUMNS and None not in r.values()
        assert re.fullmatch(r"[1-9]\d{5}", r["provider_id"])
        assert r["brand_name"] == brand
        assert re.fullmatch(r"[1-8]\d{9}", r["location_id"])  # a final Fabric id
        assert r["technology"] in FIXED_TECHNOLOGIES
        down, up = (int(r[c]) for c in PUBLISHED_COLUMNS[4:6])  # whole Mbps
        assert str(down) == r["max_advertised_download_speed"]
        assert str(up) == r["max_advertised_upload_speed"]
        assert (down >= 25 and up >= 3) or (down, up) in {(0, 0), (10, 1)}
        assert r["low_latency"] in {"0", "1"}
        assert r["business_residential_code"] in {"B", "R", "X"}
    ids = [r["location_id"] for r in rows]
    assert len(ids) == len(set(ids))
    return rows


def test_the_filing_lists_the_passed_in_budget_fabric_locations(case: Case,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = netgis("bdc", case.dataset, "--fabric", case.fabric, "--provider-id", "131425",
                  "--brand-name", BRAND, "--max-down", "2000", "--max-up", "940",
                  "--business-residential-code", "r", "--out", out)
    assert done.returncode == 0, done.stderr
    rows = check_published_layout(out / "bdc_availability.csv", BRAND)
    assert {(r["provider_id"], r["technology"], r["max_advertised_download_speed"],
             r["max_advertised_upload_speed"], r["low_latency"],
             r["business_residential_code"]) for r in rows} == {
        ("131425", "50", "2000", "940", "1", "R")}
    expected = case.expected(include_out_of_budget=False)
    filed = {k for k, v in expected.items() if v == "filed"}
    assert {r["location_id"] for r in rows} == filed
    assert case.shared_location in filed and len(filed) == 11
    # what was left out, and why, location by location and in the counts
    left = {r["location_id"]: r["reason"] for r in read_rows(out / "bdc_left_out.csv")}
    assert left == {k: v for k, v in expected.items() if v != "filed"}
    summary = json.loads((out / "bdc_summary.json").read_text(encoding="utf-8"))
    assert summary == json.loads(done.stdout)
    reasons = Counter(expected.values())
    assert summary["left_out_by_reason"] == {
        r: reasons[r] for r in ("not_bsl", "no_premise", "not_passed", "out_of_budget")}
    assert all(summary["left_out_by_reason"].values())  # each reason happens here
    assert summary["filed"] + sum(summary["left_out_by_reason"].values()) == \
        summary["fabric_locations"] == len(expected)
    assert summary["left_out"] == len(left) and summary["filed"] == len(rows)
    assert summary["filed_with_several_premises"] == 1
    assert summary["filed_out_of_budget"] == 0
    served = [pid for pid, r in case.premises.items()
              if r["passed"] == "true" and r["in_budget"] == "true"]
    assert summary["served_premises_not_filed"] == {
        "without_location_id": 0,
        "location_not_in_fabric": sum(case.location_of[p] not in expected for p in served)}
    text = (out / "bdc_summary.md").read_text(encoding="utf-8")
    assert f"{len(rows)} of the {len(expected)} locations of fabric.csv are filed" in text
    assert f"(`out_of_budget`) | {reasons['out_of_budget']} |" in text


def test_out_of_budget_locations_are_filed_on_request(case: Case, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "bdc", str(case.dataset), "--fabric",
                             str(case.fabric), "--provider-id", "131425", "--brand-name",
                             "Acme", "--include-out-of-budget", "--out", str(tmp_path))
    assert code == 0, err
    rows = check_published_layout(tmp_path / "bdc_availability.csv", "Acme")
    expected = case.expected(include_out_of_budget=True)
    assert {r["location_id"] for r in rows} == {k for k, v in expected.items() if v == "filed"}
    summary = json.loads(out)
    assert summary["left_out_by_reason"]["out_of_budget"] == 0
    assert summary["filed_out_of_budget"] == Counter(
        case.expected(include_out_of_budget=False).values())["out_of_budget"] == 5


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
            *args: str) -> tuple[int, str, str]:
    """``netgis ARGS`` through the real entry point, in this process."""
    monkeypatch.setattr(sys, "argv", ["netgis", *args])
    with pytest.raises(SystemExit) as info:
        main()
    got = capsys.readouterr()
    assert isinstance(info.value.code, int)
    return info.value.code, got.out, got.err


FABRIC_HEAD = "location_id,bsl_flag,latitude\n"


@pytest.mark.parametrize(("fabric", "options", "message"), [
    ("id,lat\n1000000001,50\n", (), "fabric.csv: missing column (the header has id, lat)"),
    (FABRIC_HEAD + "1000000001,True,50\n12345,True,50\n", (),
     "fabric.csv line 3: '12345' is not a Fabric location id"),
    (FABRIC_HEAD + "1000000001,True,50\n9000000001,True,50\n", (),
     "fabric.csv line 3: '9000000001' is not a Fabric location id"),
    (FABRIC_HEAD + "1000000001,True,50\n,True,50\n", (), "fabric.csv line 3: empty"),
    (FABRIC_HEAD + "1000000001,True,50\n1000000002,True,50\n1000000001,False,50\n", (),
     "fabric.csv line 4: duplicate location_id (first on line 2)"),
    (FABRIC_HEAD + "1000000001,maybe,50\n", (), "fabric.csv line 2: must be True or False"),
    (FABRIC_HEAD + "1000000001,True,50,extra\n", (),
     "fabric.csv line 2: 3 fields expected, 4 found"),
    (FABRIC_HEAD, ("--provider-id", "12"), "must be the FCC's 6-digit provider ID"),
    (FABRIC_HEAD, ("--brand-name", " "), "brand_name: must be a name"),
    (FABRIC_HEAD, ("--max-down", "20", "--max-up", "2"), "20/2 Mbps is below 25/3"),
    (FABRIC_HEAD, ("--max-down", "100", "--max-up", "2"), "100/2 Mbps is below 25/3"),
    (FABRIC_HEAD, ("--max-down", "-5"), "max_advertised_download_speed: must be a whole"),
    (FABRIC_HEAD, ("--technology", "55"), "technology: must be one of 0, 10, 40, 50"),
    (FABRIC_HEAD, ("--low-latency", "2"), "low_latency: must be 1"),
    (FABRIC_HEAD, ("--business-residential-code", "Q"), "must be B, R or X, got 'Q'"),
])
def test_bad_input_is_named_and_nothing_is_written(
        fabric: str, options: tuple[str, ...], message: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fabric.csv"
    path.write_text(fabric, encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    earlier = out / "bdc_availability.csv"
    earlier.write_text("an earlier filing\n")  # netgis's own file: replaced only on success
    given = {"--provider-id": "131425", "--brand-name": "Acme"}
    given.update(zip(options[::2], options[1::2], strict=True))
    args = [a for pair in given.items() for a in pair]
    code, stdout, stderr = run_cli(monkeypatch, capsys, "bdc", str(ROOT / "data" /
                                                                   "sample.gpkg"),
                                   "--fabric", str(path), *args, "--out", str(out))
    assert code == 2, (stdout, stderr)
    assert message in stderr, stderr
    assert "Traceback" not in stderr and stdout == ""
    assert sorted(p.name for p in out.iterdir()) == ["bdc_availability.csv"]
    assert earlier.read_text() == "an earlier filing\n"


def test_a_folder_of_someone_elses_is_refused_before_any_work(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    code, _, err = run_cli(monkeypatch, capsys, "bdc", "nowhere.gpkg", "--fabric",
                           "nowhere.csv", "--provider-id", "131425", "--brand-name", "Acme",
                           "--out", str(tmp_path))
    assert code == 2 and "holds files netgis did not write (notes.txt)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_many_bad_rows_are_counted_after_the_first_thousand(tmp_path: Path) -> None:
    from netgis.errors import ValidationError
    from netgis.products.bdc import read_fabric

    path = tmp_path / "fabric.csv"
    path.write_text("location_id\n" + "".join(f"{i}\n" for i in range(1205)), encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        read_fabric(path)
    problems = info.value.problems
    assert len(problems) == 1001
    assert problems[0].reason.startswith("fabric.csv line 2: '0' is not a Fabric location id")
    assert problems[999].reason.startswith("fabric.csv line 1001: '999' is not")
    assert problems[-1].reason == "fabric.csv: and 205 more problems"
