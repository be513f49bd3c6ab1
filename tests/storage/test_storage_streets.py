"""The optional streets context layer kept by the database (revision 0011), on SpatiaLite
and PostGIS: loaded with a dataset that has one, read back with the dataset, removed by a
replace without one, kept by other loads; a dataset without streets loads as before."""

from __future__ import annotations

from dataclasses import replace

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
