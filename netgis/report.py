"""Write the files of ``netgis analyze``: premises.csv, spans.csv, nodes.csv, kpis.json.

Booleans are written ``true``/``false`` and nulls as empty cells. The four
files are written into a temporary directory and moved into place together,
so a failure leaves the output directory as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from netgis.analysis import NODE_COLUMNS, PREMISE_COLUMNS, SPAN_COLUMNS, Analysis

OUTPUT_FILES = ("premises.csv", "spans.csv", "nodes.csv", "kpis.json")


def _csv_frame(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    for col in columns:
        s = frame[col]
        if s.dtype == bool:
            out[col] = np.where(s.to_numpy(), "true", "false")
        elif col == "distance_m":
            out[col] = s.round(4)
        else:
            out[col] = s
    return out


def write_outputs(result: Analysis, out_dir: str | os.PathLike[str]) -> Path:
    """Write the four analysis files into ``out_dir`` (created when missing)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out, prefix=".netgis-"))
    try:
        _csv_frame(result.premises, PREMISE_COLUMNS).to_csv(tmp / "premises.csv", index=False)
        _csv_frame(result.spans, SPAN_COLUMNS).to_csv(tmp / "spans.csv", index=False)
        _csv_frame(result.nodes, NODE_COLUMNS).to_csv(tmp / "nodes.csv", index=False)
        (tmp / "kpis.json").write_text(json.dumps(result.kpis, indent=1, allow_nan=False) + "\n")
        for name in OUTPUT_FILES:
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
