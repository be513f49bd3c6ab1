"""The one JSON-safe converter (netgis.jsonsafe) every output goes through."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest

from netgis.jsonsafe import json_safe


@pytest.mark.parametrize(("value", "expected"), [
    (np.int64(3), 3),
    (np.float32(0.5), 0.5),
    (np.bool_(True), True),
    (float("nan"), None),
    (np.float64("-inf"), None),
    (float("inf"), None),
    (None, None),
    (pd.NA, None),
    (pd.NaT, None),
    (np.datetime64("NaT"), None),
    (np.datetime64("2024-05-01T12:00:00.000000000"), "2024-05-01T12:00:00"),
    (pd.Timestamp("2024-05-01T12:00:00Z"), "2024-05-01T12:00:00+00:00"),
    (datetime(2024, 5, 1, tzinfo=UTC), "2024-05-01T00:00:00+00:00"),
    (date(2024, 5, 1), "2024-05-01"),
    ("text", "text"),
    (7, 7),
])
def test_scalars(value: object, expected: object) -> None:
    out = json_safe(value)
    assert out == expected and type(out) is type(expected)


def test_nested_values_are_converted_at_every_depth() -> None:
    value = {"a": (np.int64(1), [np.float64("nan"), {"b": pd.NaT}]), 2: pd.NA}
    out = json_safe(value)
    assert out == {"a": [1, [None, {"b": None}]], "2": None}
    assert type(out["a"]) is list and type(out["a"][0]) is int  # type: ignore[index]
    # strict JSON (no NaN, no Infinity) accepts every converted value
    json.dumps(out, allow_nan=False)


def test_the_input_is_not_changed() -> None:
    value = {"a": [np.float64("nan")]}
    json_safe(value)
    assert np.isnan(value["a"][0])
