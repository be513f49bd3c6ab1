"""The build programme (netgis.products.program, ``netgis program``): each year greedy within
its budget, coverage as a fresh analysis of the builds gives it, the least budget for a goal
date, BEAD-eligible clusters first, years saved as plans."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pytest

from netgis.dataset import Dataset
from netgis.engine.analysis import analyze
from netgis.generate import generate_city
from netgis.io import write_dataset
from netgis.products.gaps.result import gap_analysis
from netgis.products.program import budget_for_goal, run_program
from netgis.storage import Repository
from netgis.storage.plans import Plans

NETGIS = Path(sys.executable).with_name("netgis")


@pytest.fixture(scope="module")
def city() -> Dataset:
    return generate_city(premises=1500, seed=11)


def _plus(ds: Dataset, nodes: Any, spans: Any) -> Dataset:
    n = pd.concat([ds.nodes, nodes.to_crs(ds.crs)[list(ds.nodes.columns)]], ignore_index=True)
    s = pd.concat([ds.spans, spans.to_crs(ds.crs)[list(ds.spans.columns)]], ignore_index=True)
    return Dataset(gpd.GeoDataFrame(n, crs=ds.crs), gpd.GeoDataFrame(s, crs=ds.crs),
                   ds.premises, ds.areas)


def test_each_year_is_greedy_within_its_budget(city: Dataset) -> None:
    first = gap_analysis(analyze(city)).plan.clusters.sort_values("rank")
    budget = float(first["cost"].iloc[:3].sum())
    prog = run_program(city, budget_per_year=budget, start_year=2027, max_years=4)
    assert prog.years and all(y.cost <= budget + 1e-6 for y in prog.years)
    # year one: the clusters in rank order, each taken if it still fits (computed here)
    left, expect = budget, []
    for cid, cost in zip(first["cluster_id"], first["cost"], strict=True):
        if cost <= left:
            expect.append(cid)
            left -= cost
    assert prog.years[0].clusters == expect
    # coverage each year is a fresh analysis of the data with every build so far
    ds = city
    for year in prog.years:
        ds = _plus(ds, *prog.builds[year.year])
        kpis = analyze(ds).kpis["network"]
        assert year.coverage_pct == kpis["coverage_pct"]
    coverage = [prog.start_coverage_pct] + [y.coverage_pct for y in prog.years]
    assert coverage == sorted(coverage) and coverage[-1] > coverage[0]


def test_a_budget_too_small_for_any_cluster_stops_at_once(city: Dataset) -> None:
    prog = run_program(city, budget_per_year=1.0, start_year=2027)
    assert prog.years == [] and prog.stopped == "no_cluster_fits" and prog.goal_year is None


def test_the_least_budget_for_a_goal_date(city: Dataset) -> None:
    start = analyze(city).kpis["network"]["coverage_pct"]
    goal = round(start + (100 - start) / 2, 3)
    needed, prog = budget_for_goal(city, goal_year=2028, start_year=2027, goal_pct=goal)
    assert needed is not None and prog.goal_year is not None and prog.goal_year <= 2028
    again = run_program(city, budget_per_year=needed, start_year=2027, goal_pct=goal,
                        max_years=2)
    assert again.goal_year is not None and again.goal_year <= 2028
    short = run_program(city, budget_per_year=needed - 2, start_year=2027, goal_pct=goal,
                        max_years=2)
    assert short.goal_year is None


def test_bead_eligible_clusters_come_first(city: Dataset) -> None:
    plan = gap_analysis(analyze(city)).plan
    ranked = plan.clusters.sort_values("rank")
    last = str(ranked["cluster_id"].iloc[-1])
    members = plan.premise_cluster.loc[plan.premise_cluster["cluster_id"] == last, "premise_id"]
    budget = float(ranked["cost"].iloc[-1])
    plain = run_program(city, budget_per_year=budget, start_year=2027, max_years=1)
    first = run_program(city, budget_per_year=budget, start_year=2027, max_years=1,
                        eligible=set(members.astype(str)))
    assert first.years[0].clusters[0] == last
    assert plain.years[0].clusters[0] != last


def test_netgis_program_saves_each_year_as_a_plan(city: Dataset, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    write_dataset(city, tmp_path / "city.gpkg")
    env = {"PATH": "/usr/bin:/bin", "NETGIS_DATABASE_URL": url}
    load = subprocess.run([str(NETGIS), "db", "load", str(tmp_path / "city.gpkg")], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert load.returncode == 0, load.stderr
    clusters = gap_analysis(analyze(city)).plan.clusters.sort_values("rank")
    budget = str(float(clusters["cost"].iloc[:4].sum()))
    run = subprocess.run([str(NETGIS), "program", "--db", "--budget-per-year", budget,
                          "--start-year", "2027", "--goal-date", "2028", "--save-plans", "prog"],
                         env=env, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert [y["year"] for y in out["years"]] == [2027, 2028][:len(out["years"])]
    assert out["plans"] == [f"prog-{y['year']}" for y in out["years"]]
    with Repository.from_url(url) as repo:
        plans = Plans(repo)
        assert [p.name for p in plans.all()] == out["plans"]
        assert repo.data_version() == 1  # the plans leave main as it was
    bad = subprocess.run([str(NETGIS), "program", "--db"], env=env, capture_output=True,
                         text=True, timeout=60, check=False)
    assert bad.returncode == 2 and "budget" in bad.stderr and "Traceback" not in bad.stderr


def test_the_dashboard_and_the_report_draw_the_programme(city: Dataset) -> None:
    from netgis.maps.dashboard import report_html
    from netgis.products.progress import build_dashboard, chart_specs

    result = analyze(city)
    clusters = gap_analysis(result).plan.clusters
    prog = run_program(city, budget_per_year=float(clusters["cost"].sum()) / 2,
                       start_year=2027, max_years=3)
    assert prog.years
    board = build_dashboard(result, program=prog)
    spec = json.dumps(chart_specs(board)["coverage"])
    for year in prog.years:
        assert f"at the end of {year.year}" in spec
    assert "Build programme at" in spec
    html = report_html(board)
    assert html.count('<tr data-year="') == len(prog.years)
    # an area's board has no programme line: the programme is the network's
    area = str(city.areas["area_id"].iloc[0])
    assert build_dashboard(result, program=prog, area_id=area).program == []
