"""Networks that light nothing (or serve nobody) through every command of the CLI.

The cases and their answers by the rule are in :mod:`tests.degenerate`. ``netgis
analyze`` runs as a subprocess with each engine's dataset form (the GeoPackage for
the local engine, GeoParquet for the streamed one and for Dask on a module-wide
LocalCluster); the other commands run through the real ``netgis.cli.main`` in
process, which is the same code without a new interpreter per call.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from distributed import LocalCluster
from pyproj import Transformer

from netgis.cli import main
from netgis.io import write_dataset
from netgis.products.bead import AVAILABILITY_COLUMNS
from netgis.products.feeds import PROMETHEUS_KPIS, read_kpis_csv
from netgis.schema import KPI_BY_NAME
from tests.degenerate import (
    CASE_IDS,
    CASES,
    FAR,
    NEAR_S1,
    NO_CORE_WARNING,
    Degenerate,
    close,
)
from tests.netbuild import ORIGIN, UTM

pytestmark = pytest.mark.parametrize("case", CASES, ids=CASE_IDS)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each case as a GeoPackage (``NAME.gpkg``) and a GeoParquet directory (``NAME``)."""
    root = tmp_path_factory.mktemp("degenerate")
    out: dict[str, Path] = {}
    for case in CASES:
        ds = case.dataset()
        out[f"{case.name}.gpkg"] = write_dataset(ds, root / f"{case.name}.gpkg")
        out[case.name] = write_dataset(ds, root / case.name, fmt="parquet")
    return out


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as c:
        yield c.scheduler_address


def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        *args: str) -> tuple[int, str, str]:
    """``netgis ARGS`` through the real entry point in this process: code, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["netgis", *args])
    with pytest.raises(SystemExit) as info:
        main()
    got = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else -1), got.out, got.err


def warned(case: Degenerate, stderr: str) -> None:
    """The no-core warning once when the case has no in-service core, else not at all."""
    assert stderr.count(f"warning: {NO_CORE_WARNING}") == (1 if case.no_core else 0), stderr
    assert "Traceback" not in stderr and "internal error" not in stderr


def same_kpis(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert list(got) == list(want)
    for key, value in want.items():
        assert close(key, got[key], value), (key, got[key], value)


def premise_answer(case: Degenerate) -> dict[str, Any]:
    """What every premise of these networks gets: nothing passes (see tests.degenerate)."""
    assert not case.lit or not case.premises  # the cases are drawn so
    return {"passed": False, "distance_m": None, "served_span_id": None,
            "span_protected": False, "node_protected": False, "duct_protected": False,
            "loss_db": None, "in_budget": False}


def csv_rows(path: Path, key: str) -> dict[str, dict[str, str]]:
    with path.open(newline="") as fh:
        return {row[key]: row for row in csv.DictReader(fh)}


def csv_cell(value: Any) -> str:
    """How the result CSVs write a value: booleans lower case, null empty."""
    if value is None:
        return ""
    return str(value).lower() if isinstance(value, bool) else str(value)


def test_validate_warns_of_no_core_and_finds_no_error(
        case: Degenerate, files: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(monkeypatch, capsys, "validate", str(files[f"{case.name}.gpkg"]))
    report = json.loads(out)
    assert code == 0 and report["errors"] == []
    no_core = [w for w in report["warnings"] if w == NO_CORE_WARNING.as_dict()]
    assert len(no_core) == (1 if case.no_core else 0)


@pytest.mark.parametrize("engine", ["local", "stream", "dask"])
def test_analyze_lights_nothing_and_writes_every_file(
        case: Degenerate, engine: str, files: dict[str, Path], tmp_path: Path,
        request: pytest.FixtureRequest) -> None:
    out = tmp_path / "out"
    args = {"local": [str(files[f"{case.name}.gpkg"])],
            "stream": [str(files[case.name]), "--stream"],
            "dask": [str(files[case.name]), "--engine", "dask", "--scheduler",
                     request.getfixturevalue("scheduler") if engine == "dask" else ""]}[engine]
    proc = subprocess.run([sys.executable, "-m", "netgis.cli", "analyze", *args, "--out",
                           str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    warned(case, proc.stderr)
    kpis = json.loads((out / "kpis.json").read_text())
    assert json.loads(proc.stdout) == kpis["network"]
    same_kpis(kpis["network"], case.network_kpis())
    want_areas = case.area_kpis()
    assert [a["area_id"] for a in kpis["areas"]] == [a["area_id"] for a in want_areas]
    for got, want in zip(kpis["areas"], want_areas, strict=True):
        same_kpis(got, want)

    premises = csv_rows(out / "premises.csv", "premise_id")
    assert set(premises) == set(case.units())
    answer = {k: csv_cell(v) for k, v in premise_answer(case).items()}
    for row in premises.values():
        assert {k: row[k] for k in answer} == answer
    spans = csv_rows(out / "spans.csv", "span_id")
    assert {s: (r["lit"], r["cut_premises"], r["cut_units"]) for s, r in spans.items()} == {
        s[0]: (csv_cell(s[0] in case.lit), "0", "0") for s in case.spans}
    nodes = csv_rows(out / "nodes.csv", "node_id")
    assert {n: (r["failure_premises"], r["failure_units"]) for n, r in nodes.items()} == {
        n[0]: ("0", "0") for n in case.nodes}


def test_scenario_loses_nobody(case: Degenerate, files: dict[str, Path],
                               monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    cut = [s[0] for s in case.spans]
    args = ["--cut-spans", ",".join(cut)] if cut else []
    code, out, err = cli(monkeypatch, capsys, "scenario", str(files[f"{case.name}.gpkg"]),
                         *args, "--fail-nodes", "B", "--pon-class", "gpon-c+")
    assert code == 0, err
    warned(case, err)
    got = json.loads(out)
    assert (got["premises"], got["units"], got["premise_ids"]) == (0, 0, [])
    assert (got["failed_spans"], got["failed_nodes"]) == (sorted(cut), ["B"])
    optics = got["optics"]
    assert (optics["units_in_budget_before"], optics["units_in_budget_after"],
            optics["entering"], optics["leaving"]) == (0, 0, [], [])


def test_gaps_list_every_premise_with_nothing_to_join(
        case: Degenerate, files: dict[str, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(monkeypatch, capsys, "gaps", str(files[f"{case.name}.gpkg"]),
                         "--out", str(tmp_path / "gaps"))
    assert code == 0, err
    warned(case, err)
    got = json.loads(out)
    units = case.units()
    assert (got["premises_not_passed"], got["units_not_passed"]) == (len(units),
                                                                     sum(units.values()))
    # nothing is lit: no cluster has a span to join or a distance to it
    assert all(c["join_span_id"] is None and c["min_distance_m"] is None for c in got["top"])
    listed = csv_rows(tmp_path / "gaps" / "gaps_premises.csv", "premise_id")
    assert set(listed) == set(units)


def _bead_inputs(root: Path) -> tuple[Path, Path]:
    """L_near 20 m off s1 with a fiber gigabit offer (served), L_far with none (unserved)."""
    avail = root / "availability.csv"
    avail.write_text(",".join(AVAILABILITY_COLUMNS) + "\n"
                     "L_near,50,1000,1000,1,100,Brand,R,NY,360010001001000,8828308281fffff\n")
    to_wgs84 = Transformer.from_crs(UTM, 4326, always_xy=True)
    lines = ["location_id,latitude,longitude"]
    for loc, (x, y) in (("L_near", NEAR_S1), ("L_far", FAR)):
        lon, lat = to_wgs84.transform(x + ORIGIN[0], y + ORIGIN[1])
        lines.append(f"{loc},{lat:.9f},{lon:.9f}")
    fabric = root / "fabric.csv"
    fabric.write_text("\n".join(lines) + "\n")
    return avail, fabric


def test_bead_joins_locations_to_what_is_lit(
        case: Degenerate, files: dict[str, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    avail, fabric = _bead_inputs(tmp_path)
    code, out, err = cli(monkeypatch, capsys, "bead", str(files[f"{case.name}.gpkg"]),
                         "--availability", str(avail), "--locations", str(fabric),
                         "--out", str(tmp_path / "bead"))
    assert code == 0, err
    warned(case, err)
    got = json.loads(out)
    near_lit = "s1" in case.lit
    assert (got["served"], got["unserved"], got["locations"]) == (1, 1, 2)
    assert got["plant"]["served"] == {"passed": int(near_lit), "reachable": 0,
                                      "beyond": int(not near_lit)}
    assert got["plant"]["unserved"] == {"passed": 0, "reachable": 0, "beyond": 1}
    rows = csv_rows(tmp_path / "bead" / "bead.csv", "location_id")
    assert rows["L_near"]["passed"] == csv_cell(near_lit)
    # with no lit span at all there is no distance to tell
    assert (rows["L_far"]["distance_m"] == "") == (not case.lit)


@pytest.mark.parametrize("fmt", ["json", "csv", "prom"])
def test_kpis_feeds_null_where_nothing_to_divide_by(
        case: Degenerate, fmt: str, files: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(monkeypatch, capsys, "kpis", str(files[f"{case.name}.gpkg"]),
                         "--format", fmt)
    assert code == 0, err
    warned(case, err)
    want = case.network_kpis()
    if fmt == "json":
        network = json.loads(out)["data"][0]
    elif fmt == "csv":
        network = read_kpis_csv(out)[0]
    else:
        samples = dict(line.rsplit(" ", 1) for line in out.splitlines()
                       if line and not line.startswith("#") and "{" not in line)
        for kpi in PROMETHEUS_KPIS:
            value = want[kpi.key]
            if value is None:  # a null KPI has no sample (never NaN)
                assert kpi.name not in samples, kpi.name
            else:
                assert float(samples[kpi.name]) == pytest.approx(kpi.to_base(value), rel=0.01)
        return
    assert network["scope"] == "network"
    for key, value in want.items():
        got = network[key]
        if KPI_BY_NAME[key].type == "float" and isinstance(got, int):
            got = float(got)  # JSON writes 0.0 as 0.0, but a CSV reader need not
        assert close(key, got, value), (key, got, value)


def test_search_finds_each_premise_unserved(
        case: Degenerate, files: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for premise_id in case.units() or {"p1": 1}:
        code, out, err = cli(monkeypatch, capsys, "search", str(files[f"{case.name}.gpkg"]),
                             premise_id)
        assert code == 0, err
        warned(case, err)
        hits = json.loads(out)["features"]
        if not case.premises:
            assert hits == []
            continue
        assert hits[0]["id"] == premise_id
        props = hits[0]["properties"]
        assert {k: props[k] for k in premise_answer(case)} == premise_answer(case)
