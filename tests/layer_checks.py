"""Reading a result CSV and a result layer into the same typed frame, to compare them.

Both sides are parsed by the types of the layer's fields (netgis.products.result_layers):
a CSV cell ``true``/``false`` is a boolean, an empty cell a null; a layer read back from
GeoPackage (booleans as integers, nulls as NaN) or GeoParquet comes out the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from pandas.api.extensions import ExtensionDtype

from netgis.products.result_layers import RESULT_LAYERS

_BOOL_CELLS = {"true": True, "false": False, "": None}
_NULLABLE: dict[str, ExtensionDtype] = {"bool": pd.BooleanDtype(), "int": pd.Int64Dtype(),
                                        "float": pd.Float64Dtype(), "text": pd.StringDtype()}


def typed(frame: pd.DataFrame, layer: str, columns: list[str] | None = None) -> pd.DataFrame:
    """``columns`` (default: every field of ``layer``) of ``frame`` as nullable types, rows
    in id order."""
    fields = [f for f in RESULT_LAYERS[layer].fields if columns is None or f.name in columns]
    out = pd.DataFrame({f.name: _column(frame[f.name], f.type) for f in fields})
    return out.sort_values(RESULT_LAYERS[layer].id_field).reset_index(drop=True)


def _column(values: pd.Series, kind: str) -> Any:
    if kind == "bool":
        # CSV cells are text: true / false / empty
        values = values.map(lambda v: _BOOL_CELLS[v] if isinstance(v, str) else v)
    if kind == "text":
        values = values.astype(object).where(values.notna(), None).map(
            lambda v: v if v is None else str(v))
    return values.astype(_NULLABLE[kind])


def csv_frame(path: Path, layer: str) -> pd.DataFrame:
    """A result CSV as the layer's typed columns (those the CSV has)."""
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    names = {f.name: f.type for f in RESULT_LAYERS[layer].fields}
    parsed = pd.DataFrame({c: _csv_cells(raw[c], names[c]) for c in raw.columns if c in names})
    return typed(parsed, layer, list(parsed.columns))


def _csv_cells(cells: pd.Series, kind: str) -> pd.Series:
    if kind in ("int", "float"):
        return pd.to_numeric(cells.replace("", None))
    if kind == "text":
        return cells.replace("", None)
    return cells
