"""``netgis plan ...`` as a planner uses it, on a generated city in SpatiaLite and PostGIS:
the top gap builds tried in a plan, its KPIs equal to ``netgis analyze`` of the file it
exports (and to the builds applied by the gap planner's own code), main untouched until
the merge, the merge giving main the plan's KPIs, a conflict refused.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from netgis.engine.analysis import analyze
from netgis.generate import generate_city
from netgis.io import write_dataset
from netgis.products.gaps.plan import apply_plan
from netgis.products.gaps.result import gap_analysis
from netgis.storage import Repository
from tests.helpers import PostgresDatabases

NETGIS = Path(sys.executable).with_name("netgis")
PREMISES = 4000
SEED = 61


def netgis(*args: str | Path, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(NETGIS), *map(str, args)], capture_output=True, text=True,
                          timeout=300, check=False, env={"PATH": "/usr/bin:/bin",
                                                         "NETGIS_DATABASE_URL": url})


def ok(run: subprocess.CompletedProcess[str]) -> Any:
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def same_kpis(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Equal KPIs: integers exactly, floats to 1e-9 relative (km sums in another order)."""
    def same(x: Any, y: Any) -> bool:
        if isinstance(x, float) or isinstance(y, float):
            return x is not None and y is not None and math.isclose(x, y, rel_tol=1e-9,
                                                                    abs_tol=1e-9)
        return bool(x == y)

    assert a.keys() == b.keys()
    bad = [k for k in a["network"] if not same(a["network"][k], b["network"][k])]
    assert not bad, [(k, a["network"][k], b["network"][k]) for k in bad]
    assert [r["area_id"] for r in a["areas"]] == [r["area_id"] for r in b["areas"]]
    for x, y in zip(a["areas"], b["areas"], strict=True):
        assert all(same(x[k], y[k]) for k in x), (x, y)


@pytest.fixture(params=["spatialite", pytest.param("postgis", marks=pytest.mark.postgis)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "spatialite":
        return f"sqlite:///{tmp_path / 'city.db'}"
    dbs: PostgresDatabases = request.getfixturevalue("pg_databases")
    return str(dbs.create())


def test_a_plan_of_the_top_gap_builds_from_create_to_merge(url: str, tmp_path: Path) -> None:
    city = generate_city(premises=PREMISES, seed=SEED)
    write_dataset(city, tmp_path / "city.gpkg")
    ok(netgis("db", "load", tmp_path / "city.gpkg", url=url))
    ok(netgis("analyze", "--db", "--out", tmp_path / "main0", url=url))
    main_kpis = (tmp_path / "main0" / "kpis.json").read_bytes()

    assert ok(netgis("plan", "create", "top5", "--description", "five builds", url=url))[
        "base_version"] == 1
    built = ok(netgis("plan", "build", "top5", "--top", "5", url=url))
    assert len(built["clusters"]) == 5 and built["spans"] > 0
    plan_kpis = ok(netgis("plan", "kpis", "top5", url=url))
    ok(netgis("plan", "export", "top5", "--out", tmp_path / "plan.gpkg", url=url))
    ok(netgis("analyze", tmp_path / "plan.gpkg", "--out", tmp_path / "planned", url=url))
    same_kpis(plan_kpis, json.loads((tmp_path / "planned" / "kpis.json").read_text()))

    # the same builds by the gap planner's own code: main plus the five clusters' sketch
    with Repository.from_url(url) as repo:
        _, main = repo.read_consistent()
    gaps = gap_analysis(analyze(main))
    plan = gaps.plan
    members = plan.premise_cluster[plan.premise_cluster["cluster_id"].isin(built["clusters"])]
    keep = {f"plan-n-{p}" for p in members["premise_id"]}
    five = type(plan)(plan.clusters, plan.premise_cluster,
                      plan.nodes[plan.nodes["node_id"].isin(keep)],
                      plan.spans[plan.spans["span_id"].isin(
                          {k.replace("plan-n-", "plan-s-") for k in keep})])
    reference = analyze(apply_plan(main, five))
    assert built["clusters"] == plan.clusters["cluster_id"].tolist()[:5]
    same_kpis(plan_kpis, json.loads(json.dumps(reference.kpis)))
    assert plan_kpis["network"]["premises_passed"] > json.loads(main_kpis)["network"][
        "premises_passed"]

    compared = ok(netgis("plan", "compare", "top5", url=url))
    assert compared["premises"]["newly_passed"] == (
        plan_kpis["network"]["premises_passed"]
        - json.loads(main_kpis)["network"]["premises_passed"])
    assert len(compared["spans"]["added"]) == built["spans"]
    assert compared["cost"]["total"] > 0 and compared["bill_of_materials"]["handholes"] == \
        built["nodes"]
    csv_out = netgis("plan", "compare", "top5", "--format", "csv", url=url)
    assert csv_out.returncode == 0 and csv_out.stdout.startswith("kpi,main,plan,delta\n")

    # main is byte for byte what it was after all that plan work
    ok(netgis("analyze", "--db", "--out", tmp_path / "main1", url=url))
    assert (tmp_path / "main1" / "kpis.json").read_bytes() == main_kpis

    merged = ok(netgis("plan", "merge", "top5", url=url))
    assert merged["data_version"] == 2
    ok(netgis("analyze", "--db", "--out", tmp_path / "main2", url=url))
    same_kpis(json.loads((tmp_path / "main2" / "kpis.json").read_text()), plan_kpis)
    assert ok(netgis("plan", "list", url=url)) == []


def test_a_conflicting_edit_stops_the_merge_until_rebased(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    write_dataset(generate_city(premises=300, seed=5), tmp_path / "city.gpkg")
    ok(netgis("db", "load", tmp_path / "city.gpkg", url=url))
    repo = Repository.from_url(url)
    ok(netgis("plan", "create", "p", url=url))
    row = repo.get_item("premises", "p001")
    row["units"] = 44
    write_dataset_dir = tmp_path / "edit"
    write_dataset_dir.mkdir()
    row.to_file(write_dataset_dir / "premises.geojson", driver="GeoJSON")
    assert ok(netgis("plan", "apply", "p", write_dataset_dir, url=url))["written"] == {
        "premises": 1}
    repo.patch_item("premises", "p001", {"units": 2})
    before = repo.data_version()
    run = netgis("plan", "merge", "p", url=url)
    assert run.returncode == 2 and "p001" in run.stderr and "rebase" in run.stderr
    assert "Traceback" not in run.stderr
    assert repo.data_version() == before
    assert int(repo.get_item("premises", "p001")["units"].iat[0]) == 2
    shown = ok(netgis("plan", "show", "p", url=url))
    assert shown["conflicts"][0]["id"] == "p001" and shown["written"] == {"premises": ["p001"]}
    ok(netgis("plan", "rebase", "p", url=url))
    ok(netgis("plan", "merge", "p", url=url))
    assert int(repo.get_item("premises", "p001")["units"].iat[0]) == 44
    repo.close()


def test_plan_commands_name_what_is_wrong(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    ok(netgis("db", "init", url=url))
    for args, words in ((("plan", "show", "nope"), "nope"),
                        (("plan", "create", "../x"), "name"),
                        (("plan", "build", "nope"), "cluster"),
                        (("plan", "compare", "nope", "--format", "xml"), "--format")):
        run = netgis(*args, url=url)
        assert run.returncode == 2, (args, run.stdout, run.stderr)
        assert words in run.stderr and "Traceback" not in run.stderr, (args, run.stderr)


def test_compare_names_the_bead_locations_a_plan_newly_serves(tmp_path: Path) -> None:
    """`netgis plan compare` counts the FCC locations (premises with a location_id) the plan
    newly passes, and with `--bead-availability` those that are BEAD-eligible (unserved or
    underserved there), against analyses made here of main and of the plan's data."""
    from netgis.storage.plans import Plans
    from tests.test_bead import availability_csv

    url = f"sqlite:///{tmp_path / 'bead.db'}"
    write_dataset(generate_city(premises=1500, seed=11), tmp_path / "city.gpkg")
    ok(netgis("db", "load", tmp_path / "city.gpkg", url=url))
    ok(netgis("plan", "create", "b", url=url))
    ok(netgis("plan", "build", "b", "--top", "3", url=url))
    with Repository.from_url(url) as repo:
        main = analyze(repo.read_dataset())
        _, data = Plans(repo).dataset("b")
    plan = analyze(data)
    before = set(main.premises.loc[main.premises["passed"], "premise_id"].astype(str))
    after = plan.premises[plan.premises["passed"] & plan.premises["location_id"].notna()]
    newly = sorted(set(after.loc[~after["premise_id"].astype(str).isin(before),
                                 "location_id"].astype(str)))
    assert len(newly) >= 4
    unserved = newly[::2]  # in the availability file: no service at all (BEAD-eligible)
    served = newly[1::2]   # 100/20 Mbps with low latency: served, not eligible
    avail = availability_csv(tmp_path / "avail.csv",
                             [(loc, 50, 1000, 1000, 0) for loc in unserved]
                             + [(loc, 50, 100, 20, 1) for loc in served])
    plain = ok(netgis("plan", "compare", "b", url=url))["bead"]
    assert plain["locations_newly_served"] == len(newly) and plain["location_ids"] == newly
    assert plain["availability"] is False and plain["eligible_newly_served"] is None
    with_file = ok(netgis("plan", "compare", "b", "--bead-availability", avail, url=url))["bead"]
    assert with_file["eligible_location_ids"] == unserved
    assert with_file["eligible_newly_served"] == len(unserved)
    csv_out = netgis("plan", "compare", "b", "--format", "csv", "--bead-availability", avail,
                     url=url).stdout
    assert f"BEAD-eligible locations newly served,{len(unserved)},locations" in csv_out
