"""Values as JSON can hold them: the one converter every file, feed, response and stored
result goes through.

numpy scalars become Python ones, NaN and infinities ``None`` (JSON has neither), missing
values (``None``, ``pd.NA``, ``pd.NaT``, ``numpy.datetime64("NaT")``) ``None``, instants
(``datetime``, ``pd.Timestamp``, ``numpy.datetime64``) ISO 8601 text; mappings (their keys
as text) and sequences are converted item by item, tuples becoming lists.

Examples
--------
>>> import numpy as np, pandas as pd
>>> json_safe({"a": np.int64(3), "b": [np.float64("nan"), (1, float("inf"))], "c": pd.NaT})
{'a': 3, 'b': [None, [1, None]], 'c': None}
>>> json_safe(pd.Timestamp("2024-05-01T12:00:00Z"))
'2024-05-01T12:00:00+00:00'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import TypeAlias, overload

import numpy as np
import pandas as pd

#: A value JSON can hold, nested.
JSONValue: TypeAlias = "bool | int | float | str | list[JSONValue] | dict[str, JSONValue] | None"
#: A JSON object.
JSONObject: TypeAlias = "dict[str, JSONValue]"


@overload
def json_safe(value: Mapping[str, object]) -> JSONObject: ...


@overload
def json_safe(value: list[object] | tuple[object, ...]) -> list[JSONValue]: ...


@overload
def json_safe(value: object) -> JSONValue: ...


def json_safe(value: object) -> JSONValue:
    """``value`` with every part converted to what JSON holds (see the module's text).

    Parameters
    ----------
    value
        A scalar (Python, numpy or pandas), or a mapping, list or tuple of them.

    Returns
    -------
    JSONValue
        A new value; ``value`` is not changed. Objects of other kinds are returned as
        they are (the caller's encoder decides about them).
    """
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else json_safe(pd.Timestamp(value))
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value  # type: ignore[return-value]  # str, int, bool, float, or left to the encoder
