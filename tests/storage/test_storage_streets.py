"""The optional streets context layer kept by the database (revision 0011), on SpatiaLite
and PostGIS: loaded with a dataset that has one, read back with the dataset, removed by a
replace without one, kept by other loads; a dataset without streets loads as before."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import shapely

from netgis.generate import generate_city
from netgis.storage import Repository


def test_streets_are_stored_and_read_back(repo: Repository) -> None:
    city = generate_city(premises=120, seed=3)
    assert city.streets is not None
    streets = city.streets.copy()
    streets.loc[streets.index[1], "name"] = None
    counts = repo.load_dataset(replace(city, streets=streets))
    assert counts["streets"] == len(streets)
    stored = repo.read_streets()
    assert stored is not None and stored.crs.to_epsg() == 4326
    assert stored["name"].tolist() == streets["name"].tolist()
    want = streets.to_crs(4326).geometry.to_numpy()
    assert bool(np.all(shapely.equals_exact(stored.geometry.to_numpy(), want, tolerance=1e-9)))
    read = repo.read_dataset()
    assert read.streets is not None and read.streets["name"].tolist() == stored["name"].tolist()
    # the route layers alone, as the live analysis reads them, are as before
    assert repo.read_consistent()[1].streets is None


def test_loads_replace_keep_or_remove_the_streets(repo: Repository) -> None:
    city = generate_city(premises=120, seed=3)
    assert city.streets is not None
    repo.load_dataset(city)
    # an upsert without streets keeps them
    counts = repo.load_dataset(replace(city, streets=None), mode="upsert")
    assert "streets" not in counts
    kept = repo.read_streets()
    assert kept is not None and len(kept) == len(city.streets)
    # a load with other streets replaces them
    repo.load_dataset(replace(city, streets=city.streets.iloc[:2]), mode="upsert")
    two = repo.read_streets()
    assert two is not None and two["name"].tolist() == city.streets["name"].iloc[:2].tolist()
    # a replace without streets removes them: the database holds exactly that dataset
    repo.load_dataset(replace(city, streets=None), mode="replace")
    assert repo.read_streets() is None and repo.read_dataset().streets is None


def test_db_load_keeps_the_files_streets_and_export_writes_them(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from netgis.cli import app
    from netgis.generate import write_city
    from netgis.io import read_dataset

    write_city(tmp_path / "city.gpkg", premises=120, seed=3)
    url = f"sqlite:///{tmp_path / 'n.db'}"
    run = CliRunner().invoke(app, ["db", "load", str(tmp_path / "city.gpkg"),
                                   "--database-url", url], catch_exceptions=False)
    assert run.exit_code == 0, run.output
    streets = read_dataset(tmp_path / "city.gpkg").streets
    assert streets is not None
    assert json.loads(run.stdout)["loaded"]["streets"] == len(streets)
    run = CliRunner().invoke(app, ["db", "export", str(tmp_path / "back.gpkg"),
                                   "--database-url", url], catch_exceptions=False)
    assert run.exit_code == 0, run.output
    back = read_dataset(tmp_path / "back.gpkg").streets
    assert back is not None and back["name"].tolist() == streets["name"].tolist()
