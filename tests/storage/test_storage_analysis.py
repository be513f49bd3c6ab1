"""`analyze` gives the same answers from a file, from SpatiaLite and from PostGIS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

from netgis.dataset import Dataset
from netgis.engine.analysis import NODE_COLUMNS, PREMISE_COLUMNS, SPAN_COLUMNS, Analysis, analyze
from netgis.io import read_dataset
from netgis.storage import Repository
from tests.helpers import EXAMPLES_DIR


def _ring_spur() -> Dataset:
    return read_dataset(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg")


def _duct_ring() -> Dataset:
    return read_dataset(EXAMPLES_DIR / "duct_ring" / "dataset.gpkg")


def _generated() -> Dataset:
    from netgis.generate import generate_city

    return generate_city(premises=4000, seed=7)


def _outputs(result: Analysis) -> dict[str, Any]:
    def table(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
        out = pd.DataFrame(frame[list(columns)]).astype(object)
        return out.sort_values(columns[0]).reset_index(drop=True)

    return {"premises": table(result.premises, PREMISE_COLUMNS),
            "spans": table(result.spans, SPAN_COLUMNS),
            "nodes": table(result.nodes, NODE_COLUMNS),
            "kpis": result.kpis}


def _assert_close(got: Any, want: Any, path: str = "kpis") -> None:
    if isinstance(want, dict):
        assert set(got) == set(want), path
        for key in want:
            _assert_close(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _assert_close(g, w, f"{path}[{i}]")
    elif isinstance(want, float) and not isinstance(want, bool):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-6), path
    else:
        assert got == want, path


@pytest.mark.postgis
@pytest.mark.parametrize("make", [_ring_spur, _duct_ring, _generated],
                         ids=["ring_spur", "duct_ring", "generated"])
def test_analyze_same_from_file_spatialite_postgis(
        make: Callable[[], Dataset], all_repos: dict[str, Repository]) -> None:
    dataset = make()
    from_file = _outputs(analyze(dataset))
    from_db: dict[str, dict[str, Any]] = {}
    for backend, repo in all_repos.items():
        repo.load_dataset(dataset)
        from_db[backend] = _outputs(analyze(repo.read_dataset()))
    lite, pg = from_db["spatialite"], from_db["postgis"]
    # both databases hold the very same WGS84 numbers: bit-identical answers
    for name in ("premises", "spans", "nodes"):
        pd.testing.assert_frame_equal(lite[name], pg[name], check_exact=True, obj=name)
    assert lite["kpis"] == pg["kpis"]
    # storage is lossless: the file's layers in WGS84 give bit-identical answers
    wgs84 = Dataset(**{name: frame.to_crs(4326) for name, frame in dataset.layers().items()})
    exact = _outputs(analyze(wgs84))
    for name in ("premises", "spans", "nodes"):
        pd.testing.assert_frame_equal(lite[name], exact[name], check_exact=True, obj=name)
    assert lite["kpis"] == exact["kpis"]
    # the file as it is (UTM here): the same answers up to the reprojection's rounding
    # (distances within a micrometer, the tie tolerance of the definitions)
    for name in ("premises", "spans", "nodes"):
        got, want = lite[name], from_file[name]
        assert list(got.columns) == list(want.columns)
        for col in got.columns:
            if col in ("distance_m", "loss_db"):
                pd.testing.assert_series_equal(got[col].astype(float), want[col].astype(float),
                                               rtol=1e-9, atol=1e-6, obj=f"{name}.{col}")
            else:
                assert got[col].tolist() == want[col].tolist(), f"{name}.{col}"
    _assert_close(lite["kpis"], from_file["kpis"])
    assert from_file["premises"]["passed"].any()
