"""A build program to the coverage goal: which gap builds, in which year, for how much, and
when the goal is reached (docs/plans.md, "Programme").

Year by year, from the data as it is: the gap clusters of the network as built so far
(:func:`~netgis.products.gaps.result.gap_analysis`, ranked by cost per unit, ties by
cluster id as the gap planner breaks them) are taken greedily in that order while the
year's budget lasts (a cluster that does not fit is skipped for cheaper ones after it);
with ``eligible`` locations (BEAD: unserved and underserved ``location_id``), clusters
holding any of them come first, in the same order among themselves. The chosen clusters'
sketches are built (in service) and the next year starts from the result. The program
stops at the goal (coverage, units, at least ``goal_pct``), when no cluster fits a year's
budget, or after ``max_years``.

:func:`budget_for_goal` finds the least budget per year (to the currency unit) that
reaches the goal by a given year, by bisection over whole programs.

Examples
--------
>>> from netgis.io import read_dataset
>>> ds = read_dataset("tests/examples/ring_spur/dataset.gpkg")
>>> prog = run_program(ds, budget_per_year=1e6, start_year=2027)
>>> [(y.year, y.clusters, round(y.coverage_pct, 1)) for y in prog.years]
[(2027, ['gap-p_far'], 100.0)]
>>> prog.goal_year
2027
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from netgis.dataset import Dataset
from netgis.engine.analysis import analyze
from netgis.engine.optics import LossBudget
from netgis.errors import ParameterError, Problem
from netgis.products.bead import premises_at_locations
from netgis.products.gaps.plan import GapParams, apply_plan, cluster_builds
from netgis.products.gaps.result import gap_analysis
from netgis.schema import DEFAULT_DROP_M

#: Years a program may run before it stops short of its goal.
MAX_YEARS = 30


@dataclass(frozen=True)
class ProgramYear:
    """One year of a program: what it builds and where coverage stands at its end."""

    year: int
    clusters: list[str]
    cost: float
    premises_passed: int      #: newly passed by this year's builds
    units_passed: int
    coverage_pct: float       #: at the end of the year
    route_m: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"year": self.year, "clusters": self.clusters, "cost": round(self.cost, 2),
                "premises_passed": self.premises_passed, "units_passed": self.units_passed,
                "coverage_pct": self.coverage_pct, "route_m": round(self.route_m, 3)}


@dataclass
class Program:
    """A program: its years, the coverage it started from, and when it reached the goal."""

    start_year: int
    budget_per_year: float
    goal_pct: float
    start_coverage_pct: float
    years: list[ProgramYear] = field(default_factory=list)
    #: the year the goal was reached (None: not within the program)
    goal_year: int | None = None
    #: why the program ended: "goal", "no_cluster_fits", "no_gaps_left", "max_years"
    stopped: str = "max_years"
    #: the builds of each year as datasets' nodes and spans (for saving as plans)
    builds: dict[int, tuple[Any, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (without the builds' geometries)."""
        return {"start_year": self.start_year, "budget_per_year": self.budget_per_year,
                "goal_pct": self.goal_pct, "start_coverage_pct": self.start_coverage_pct,
                "goal_year": self.goal_year, "stopped": self.stopped,
                "total_cost": round(sum(y.cost for y in self.years), 2),
                "years": [y.as_dict() for y in self.years]}


def run_program(dataset: Dataset, *, budget_per_year: float, start_year: int,
                goal_pct: float = 100.0, drop_m: float = DEFAULT_DROP_M,
                budget: LossBudget | None = None, eligible: Collection[str] | None = None,
                params: GapParams | None = None, max_years: int = MAX_YEARS) -> Program:
    """Choose gap builds year by year within ``budget_per_year`` (see the module)."""
    _check(budget_per_year, goal_pct, max_years)
    ds = dataset
    result = analyze(ds, drop_m=drop_m, budget=budget)
    program = Program(start_year, float(budget_per_year), float(goal_pct),
                      _pct(result.kpis["network"]["coverage_pct"]))
    if program.start_coverage_pct >= goal_pct:
        program.goal_year, program.stopped = start_year - 1, "goal"
        return program
    for year in range(start_year, start_year + max_years):
        gaps = gap_analysis(result, params)
        clusters = gaps.plan.clusters
        buildable = clusters[clusters["route_m"].notna() & clusters["cost"].notna()]
        if buildable.empty:
            program.stopped = "no_gaps_left"
            break
        chosen = _choose(buildable, gaps.plan.premise_cluster, budget_per_year, eligible)
        if not chosen:
            program.stopped = "no_cluster_fits"
            break
        nodes, spans = cluster_builds(gaps.plan, chosen)
        ds = apply_plan(ds, replace(gaps.plan, nodes=nodes, spans=spans))
        before = result.kpis["network"]
        result = analyze(ds, drop_m=drop_m, budget=budget)
        after = result.kpis["network"]
        rows = buildable.set_index("cluster_id").loc[chosen]
        program.years.append(ProgramYear(
            year=year, clusters=chosen, cost=float(rows["cost"].sum()),
            premises_passed=int(after["premises_passed"] - before["premises_passed"]),
            units_passed=int(after["units_passed"] - before["units_passed"]),
            coverage_pct=_pct(after["coverage_pct"]), route_m=float(rows["route_m"].sum())))
        program.builds[year] = (nodes, spans)
        if _pct(after["coverage_pct"]) >= goal_pct:
            program.goal_year, program.stopped = year, "goal"
            break
    return program


def budget_for_goal(dataset: Dataset, *, goal_year: int, start_year: int,
                    goal_pct: float = 100.0, drop_m: float = DEFAULT_DROP_M,
                    budget: LossBudget | None = None, eligible: Collection[str] | None = None,
                    params: GapParams | None = None) -> tuple[float | None, Program]:
    """The least budget per year (whole currency units) whose program reaches ``goal_pct`` by
    ``goal_year``, and that program; None and the program of an unlimited budget when no
    budget reaches it (clusters that cannot join the network, for instance)."""
    if goal_year < start_year:
        raise ParameterError([Problem("parameters", None, "goal_date",
                                      f"the goal year {goal_year} is before the start year "
                                      f"{start_year}")])
    years = goal_year - start_year + 1
    kw: dict[str, Any] = dict(start_year=start_year, goal_pct=goal_pct, drop_m=drop_m,
                              budget=budget, eligible=eligible, params=params,
                              max_years=years)
    result = analyze(dataset, drop_m=drop_m, budget=budget)
    clusters = gap_analysis(result, params).plan.clusters
    total = float(clusters["cost"].dropna().sum())
    if total <= 0:
        return 0.0, run_program(dataset, budget_per_year=0.0, **kw)
    # enough for every cluster of today in one year; builds open no dearer clusters later
    # than the whole of today's, but allow for it by doubling until reached
    hi = total
    best = run_program(dataset, budget_per_year=hi, **kw)
    while best.goal_year is None and hi < total * 64:
        hi *= 2
        best = run_program(dataset, budget_per_year=hi, **kw)
    if best.goal_year is None:
        return None, best
    lo = 0.0
    while hi - lo > 1.0:
        mid = (lo + hi) / 2
        trial = run_program(dataset, budget_per_year=mid, **kw)
        if trial.goal_year is not None:
            hi, best = mid, trial
        else:
            lo = mid
    return float(round(hi + 0.5)), best


def program_to_goal(dataset: Dataset, *, start_year: int, budget_per_year: float | None = None,
                    goal_year: int | None = None, goal_pct: float = 100.0,
                    drop_m: float = DEFAULT_DROP_M, budget: LossBudget | None = None,
                    eligible: Collection[str] | None = None) -> tuple[Program, float | None]:
    """The programme ``netgis program`` and ``GET /program`` answer: at ``budget_per_year``
    (run to the goal, or to the end of ``goal_year`` when given), or without it the least
    budget reaching the goal by ``goal_year`` (:func:`budget_for_goal`). Returns the
    programme and that least budget (None when a budget was given or none reaches it)."""
    if budget_per_year is None:
        if goal_year is None:
            raise ParameterError([Problem("parameters", None, "budget_per_year",
                                          "give a budget per year, a goal date or both")])
        needed, prog = budget_for_goal(dataset, goal_year=goal_year, start_year=start_year,
                                       goal_pct=goal_pct, drop_m=drop_m, budget=budget,
                                       eligible=eligible)
        return prog, needed
    years = MAX_YEARS if goal_year is None else min(max(1, goal_year - start_year + 1),
                                                    MAX_YEARS)
    return run_program(dataset, budget_per_year=budget_per_year, start_year=start_year,
                       goal_pct=goal_pct, drop_m=drop_m, budget=budget, eligible=eligible,
                       max_years=years), None


def _choose(clusters: pd.DataFrame, premise_cluster: pd.DataFrame, money: float,
            eligible: Collection[str] | None) -> list[str]:
    """Clusters in rank order (eligible ones first) while the money lasts."""
    order = clusters.sort_values("rank", kind="stable")
    if eligible:
        holds = set(premise_cluster.loc[
            premise_cluster["premise_id"].astype(str).isin(set(eligible)), "cluster_id"])
        first = order["cluster_id"].isin(holds)
        order = pd.concat([order[first], order[~first]])
    chosen: list[str] = []
    left = float(money)
    for cid, cost in zip(order["cluster_id"].astype(str), order["cost"].astype(float),
                         strict=True):
        if cost <= left:
            chosen.append(cid)
            left -= cost
    return chosen


def eligible_premises(dataset: Dataset, best: pd.Series) -> set[str]:
    """Premise ids whose ``location_id`` is BEAD-eligible: best class code 0 (unserved) or
    1 (underserved) in ``best`` (:attr:`netgis.products.bead.Availability.best`, by
    location_id)."""
    eligible = set(best[best <= 1].index.astype(str))
    at = premises_at_locations(dataset.premises)
    return set(at.loc[at["location_id"].isin(eligible), "premise_id"].astype(str))


def _pct(value: float | None) -> float:
    """A coverage percentage; none (no premises) is nothing left to cover."""
    return 100.0 if value is None else float(value)


def _check(budget_per_year: float, goal_pct: float, max_years: int) -> None:
    problems = []
    if not budget_per_year >= 0:
        problems.append(Problem("parameters", None, "budget_per_year", "a number >= 0"))
    if not 0 < goal_pct <= 100:
        problems.append(Problem("parameters", None, "goal_pct", "above 0, at most 100"))
    if not 1 <= max_years <= MAX_YEARS:
        problems.append(Problem("parameters", None, "max_years", f"1 to {MAX_YEARS}"))
    if problems:
        raise ParameterError(problems)


