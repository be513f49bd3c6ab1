"""CQL2 on frames in memory (the API's result collections) answers as CQL2 in the database.

The same filters, on the premises of a small city, through
:func:`netgis.storage.filters.filter_condition` in SpatiaLite (``Repository.query_items``)
and through :func:`netgis.storage.filters.frame_mask` on the same rows in memory: the same
premises match, nulls included (a comparison with a null is unknown in both), and the
same filters are refused with the same message.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import shapely
from pandas.api.extensions import ExtensionDtype

from netgis.errors import ParameterError
from netgis.generate import generate_city
from netgis.schema import LAYERS
from netgis.storage import Repository
from netgis.storage.filters import frame_mask, parse_filter

_NULLABLE: dict[str, ExtensionDtype] = {"bool": pd.BooleanDtype(), "int": pd.Int64Dtype(),
                                        "float": pd.Float64Dtype(), "text": pd.StringDtype()}


@pytest.fixture(scope="module")
def premises() -> Iterator[tuple[Repository, pd.DataFrame, np.ndarray]]:
    city = generate_city(premises=400, seed=58)
    rows = city.premises.copy()
    # nulls to compare: some addresses and location ids missing
    rows.loc[rows.index[::5], "address"] = None
    rows.loc[rows.index[::7], "location_id"] = None
    city.premises = rows
    repo = Repository.from_url("sqlite:///:memory:")
    repo.init()
    repo.load_dataset(city)
    stored, _ = repo.query_items("premises", limit=10_000)
    layer = LAYERS["premises"]
    frame = pd.DataFrame({f.name: stored[f.name].astype(_NULLABLE[f.type])
                          for f in layer.fields})
    yield repo, frame, np.asarray(stored.to_crs(4326).geometry.to_numpy(), dtype=object)
    repo.close()


FILTERS = [
    "kind = 'business' AND units >= 2",
    "NOT units > 1",
    "units BETWEEN 2 AND 3 OR kind IN ('anchor', 'other')",
    "NOT units BETWEEN 2 AND 3",
    "address LIKE 'B%'",
    "NOT address LIKE '%1'",
    "address LIKE '%straße _%'",
    "location_id IS NULL",
    "location_id IS NOT NULL AND connected = true",
    "address <> 'x'",
    "NOT (address = 'x')",
    "location_id NOT IN ('a', 'b')",
    "CASEI(kind) = 'business'",
    "units < premise_id",
    # the western half of the city: {w} {s} {m} {n} (its box, split at the middle)
    "S_INTERSECTS(geometry, BBOX({w}, {s}, {m}, {n}))",
    "NOT S_WITHIN(geometry, POLYGON(({w} {s}, {m} {s}, {m} {n}, {w} {n}, {w} {s})))",
    "INCLUDE",
    "kind = 1",
    "colour = 'red'",
    "units = 'two'",
    "address LIKE kind",
    "S_INTERSECTS(geometry, BBOX(800, 0, 900, 1))",
]


@pytest.mark.parametrize("text", FILTERS)
def test_the_frame_matches_what_the_database_matches(
        premises: tuple[Repository, pd.DataFrame, np.ndarray], text: str) -> None:
    repo, frame, geometry = premises
    w, south, e, n = shapely.total_bounds(geometry)
    parsed = parse_filter(text.format(w=w - 1e-6, s=south - 1e-6, m=(w + e) / 2, n=n + 1e-6))
    try:
        stored, _ = repo.query_items("premises", cql2=parsed, limit=10_000)
    except ParameterError as refused:
        with pytest.raises(ParameterError) as also:
            frame_mask(parsed, LAYERS["premises"], frame, geometry)
        assert str(also.value) == str(refused)
        return
    mask = frame_mask(parsed, LAYERS["premises"], frame, geometry)
    assert sorted(frame.loc[mask, "premise_id"]) == sorted(stored["premise_id"])
    # the city has such premises and others: each case means something
    assert 0 < len(stored) < len(frame) or text == "INCLUDE"
