"""The files of ``netgis gaps``: ranked build list, roll-ups and the sketch."""

from __future__ import annotations

import os
from pathlib import Path

import pyogrio

from netgis.io import atomic_dir
from netgis.products.gaps.plan import BuildPlan
from netgis.products.gaps.result import Gaps


def write_gaps(gaps: Gaps, out_dir: str | os.PathLike[str]) -> Path:
    """Write the ranked build list, the roll-ups and the sketch into ``out_dir``, all or nothing.

    ``gaps_clusters.csv`` (ranked build list), ``gaps_h3.csv`` and
    ``gaps_h3.geojson`` (hexagons), ``gaps_areas.csv``, ``gaps_premises.csv``
    (premise_id, cluster_id) and ``gaps_plan.gpkg`` (layers ``nodes`` and
    ``spans``, status planned, dataset CRS). Other files in ``out_dir`` stay.

    Examples
    --------
    >>> import tempfile
    >>> from netgis.engine.analysis import analyze
    >>> from netgis.io import read_dataset
    >>> from netgis.products.gaps import gap_analysis
    >>> from netgis.schema import GAP_FILES
    >>> gaps = gap_analysis(analyze(read_dataset("tests/examples/ring_spur/dataset.gpkg")))
    >>> out = write_gaps(gaps, tempfile.mkdtemp())
    >>> sorted(p.name for p in out.iterdir() if p.name in GAP_FILES) == sorted(GAP_FILES)
    True
    """
    out = Path(out_dir)
    with atomic_dir(out, merge=True) as tmp:
        gaps.plan.clusters.drop(columns="geometry").to_csv(tmp / "gaps_clusters.csv",
                                                           index=False)
        gaps.hexes.drop(columns="geometry").to_csv(tmp / "gaps_h3.csv", index=False)
        (tmp / "gaps_h3.geojson").write_text(gaps.hexes.to_json(na="null", drop_id=True))
        gaps.areas.to_csv(tmp / "gaps_areas.csv", index=False)
        gaps.plan.premise_cluster.to_csv(tmp / "gaps_premises.csv", index=False)
        write_sketch(gaps.plan, tmp / "gaps_plan.gpkg")
    return out


def write_sketch(plan: BuildPlan, path: Path) -> None:
    """The sketch of a build plan as a GeoPackage (``gaps_plan.gpkg``): layers ``nodes`` and
    ``spans``, status planned, dataset CRS."""
    for layer in ("nodes", "spans"):
        frame = getattr(plan, layer)
        # an empty layer still gets written so the file always has both layers
        pyogrio.write_dataframe(frame, path, layer=layer, driver="GPKG",
                                append=layer == "spans")
