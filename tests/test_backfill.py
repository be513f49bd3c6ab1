"""The coverage history estimated from the spans' install_year (netgis.products.backfill):
one point per year up to the first measured snapshot, each the analysis of the plant
with only the spans installed by then, checked against an independent cut of the plant
(the later spans removed, not re-labelled)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from netgis.dataset import Dataset
from netgis.engine.analysis import analyze
from netgis.generate import generate_city
from netgis.products.backfill import ESTIMATE_BASIS, EstimatedHistory, estimate_history


@pytest.fixture(scope="module")
def city() -> Dataset:
    return generate_city(premises=300, seed=2)


@pytest.fixture(scope="module")
def history(city: Dataset) -> EstimatedHistory:
    return estimate_history(city, before=datetime(2024, 6, 1, tzinfo=UTC))


def _installed(city: Dataset) -> np.ndarray:
    spans = city.spans
    years = spans["install_year"]
    return np.asarray(years[(spans["status"] == "in_service") & years.notna()], dtype=int)


def test_one_point_per_year_from_the_first_install_year(city: Dataset,
                                                        history: EstimatedHistory) -> None:
    first = int(_installed(city).min())
    # 2023 is the last year that ends before June 2024
    assert [p.year for p in history.points] == list(range(first, 2024))
    assert [p.taken_at for p in history.points] == [
        datetime(y, 12, 31, tzinfo=UTC) for y in range(first, 2024)]
    for p in history.points:
        assert p.kpis["estimate"]["basis"] == ESTIMATE_BASIS == "install_year"
        assert p.kpis["estimate"]["year"] == p.year
        assert p.kpis["drop_m"] == 150.0 and "areas" in p.kpis
    # one analysis per year in which spans were installed (the other years repeat it)
    assert history.analyses == len({y for y in _installed(city) if y <= 2023})
    assert history.spans_with_year == len(_installed(city))
    assert history.spans_unknown_year == 0


@pytest.mark.parametrize("pick", [0, 0.5, 1])
def test_a_year_is_the_plant_without_the_spans_installed_later(
        city: Dataset, history: EstimatedHistory, pick: float) -> None:
    point = history.points[int(pick * (len(history.points) - 1))]
    spans = city.spans
    later = spans["install_year"].notna() & (spans["install_year"] > point.year)
    cut = replace(city, spans=spans[~later.to_numpy(dtype=bool)].reset_index(drop=True))
    want = analyze(cut).kpis
    for key in ("units_total", "units_passed", "premises_passed", "coverage_pct"):
        assert point.kpis["network"][key] == want["network"][key], (point.year, key)
    assert [a["units_passed"] for a in point.kpis["areas"]] == \
        [a["units_passed"] for a in want["areas"]]
    assert point.kpis["estimate"]["spans_in_service"] == int(
        ((spans["status"] == "in_service") & ~later).sum())


def test_coverage_never_falls_and_ends_at_the_plant_of_today(
        city: Dataset, history: EstimatedHistory) -> None:
    passed = [p.kpis["network"]["units_passed"] for p in history.points]
    assert passed == sorted(passed) and passed[0] < passed[-1]
    if int(_installed(city).max()) <= 2023:
        assert passed[-1] == analyze(city).kpis["network"]["units_passed"]


def test_spans_without_a_year_stand_all_along(city: Dataset) -> None:
    spans = city.spans.copy()
    first = spans.index[(spans["status"] == "in_service").to_numpy()][0]
    spans.loc[first, "install_year"] = None
    guessed = estimate_history(replace(city, spans=spans),
                               before=datetime(2024, 6, 1, tzinfo=UTC))
    assert guessed.spans_unknown_year == 1
    assert all(p.kpis["estimate"]["spans_in_service"] >= 1 for p in guessed.points)


def test_no_install_year_no_point(city: Dataset) -> None:
    spans = city.spans.assign(install_year=pd.array([None] * len(city.spans), dtype="Int64"))
    none = estimate_history(replace(city, spans=spans))
    assert none.points == [] and none.analyses == 0
    assert none.spans_unknown_year == int((city.spans["status"] == "in_service").sum())


def test_dry_run_stores_nothing_and_goes_with_backfill_only(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from netgis.cli import app
    from netgis.storage import Repository

    url = f"sqlite:///{tmp_path / 'n.db'}"
    with Repository.from_url(url) as repo:
        repo.init()
        repo.load_dataset(generate_city(premises=80, seed=5))
    run = CliRunner().invoke(app, ["kpis", "backfill", "--dry-run"],
                             env={"NETGIS_DATABASE_URL": url}, catch_exceptions=False)
    assert run.exit_code == 0, run.output
    out = json.loads(run.stdout)
    assert out["stored"] is False and out["years"] and out["first_measured"] is None
    with Repository.from_url(url) as repo:
        assert repo.kpi_history() == []
    wrong = CliRunner().invoke(app, ["kpis", str(tmp_path / "x.gpkg"), "--dry-run"],
                               catch_exceptions=False)
    assert wrong.exit_code == 2 and "--dry-run goes with 'netgis kpis backfill'" in wrong.output
