"""``row_feature`` (one premise's feature, taken from the analysis's frame in place) gives
exactly the feature ``frame_to_features`` gives of that row as a one-row WGS84 frame: every
property (text, counts, flags, missing values, losses) and the geometry, for every row of
the examples and of a generated city in a UTM CRS with missing values in it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from netgis.api.geojson import frame_to_features, row_feature
from netgis.engine.analysis import analyze
from netgis.generate import generate_city
from netgis.io import read_dataset
from netgis.schema import LAYERS, RESULT_FIELDS
from tests.helpers import EXAMPLES_DIR

COLUMNS = [*LAYERS["premises"].field_names, *(f.name for f in RESULT_FIELDS["premises"])]


def _premises(name: str):  # type: ignore[no-untyped-def]
    if name == "city":
        return analyze(generate_city(premises=3000, seed=5)).premises
    return analyze(read_dataset(EXAMPLES_DIR / name / "dataset.gpkg")).premises


@pytest.mark.parametrize("name", ["ring_spur", "optical_ring", "city"])
def test_one_row_feature_equals_the_frame_feature(name: str) -> None:
    premises = _premises(name)
    rows = range(len(premises)) if len(premises) < 100 else \
        np.random.default_rng(0).choice(len(premises), 200, replace=False).tolist()
    seen_missing = set()
    for at in rows:
        fast = row_feature(premises, at, LAYERS["premises"], COLUMNS)
        slow = frame_to_features(premises.iloc[[at]].to_crs(4326), LAYERS["premises"],
                                 COLUMNS)[0]
        # the same JSON, key for key and bit for bit (floats included)
        assert json.dumps(fast, sort_keys=True) == json.dumps(slow, sort_keys=True), at
        seen_missing |= {k for k, v in fast["properties"].items() if v is None}
    if name == "city":
        # rows whose served span or loss is missing were among those compared
        assert "served_span_id" in seen_missing
