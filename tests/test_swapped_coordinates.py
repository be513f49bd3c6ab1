"""Coordinates given as (lat, lon) instead of (lon, lat) are an error with the fix.

Before, the sample with its premises swapped validated with 0 errors (only "outside
every area" warnings) and analysed to 0 % coverage; a dataset swapped as a whole in a
CRS of limited area of use was an error that did not say why. Each case here writes
real files and runs the real command line in a fresh process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely import Point

from netgis.generate import generate_city
from netgis.geodesy import geodesic_distance_m, utm_epsg
from netgis.io import validate_path
from netgis.schema import LAYER_NAMES
from netgis.validate import SWAP_NEAR_M, validate_frames
from tests.helpers import EXAMPLES, EXAMPLES_DIR

NETGIS = Path(sys.executable).with_name("netgis")
SAMPLE = Path(__file__).parents[1] / "data" / "sample.gpkg"
LATLON = "coordinates look swapped (lat, lon): swap x and y"


def netgis(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(NETGIS), *map(str, args)], capture_output=True, text=True,
                          timeout=300, check=False)


def sample_layers(crs: Any) -> dict[str, gpd.GeoDataFrame]:
    return {name: gpd.read_file(SAMPLE, layer=name).to_crs(crs) for name in LAYER_NAMES}


def swap(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` with x and y of every vertex exchanged, its CRS unchanged."""
    swapped = shapely.transform(frame.geometry.to_numpy(), lambda xy: xy[:, ::-1])
    return frame.set_geometry(gpd.GeoSeries(swapped, index=frame.index, crs=frame.crs))


def write_dir(path: Path, layers: dict[str, gpd.GeoDataFrame], *, swapped: Iterable[str],
              ext: str = "geojson") -> Path:
    path.mkdir()
    for name, frame in layers.items():
        (swap(frame) if name in swapped else frame).to_file(path / f"{name}.{ext}")
    return path


def validate(path: Path) -> tuple[int, dict[str, list[dict[str, Any]]]]:
    run = netgis("validate", path)
    assert "Traceback" not in run.stderr, run.stderr
    return run.returncode, json.loads(run.stdout)


def reasons(problems: list[dict[str, Any]], layer: str) -> list[str]:
    return [p["reason"] for p in problems if p["layer"] == layer and p["field"] == "geometry"]


def test_swapped_premises_of_the_sample_are_errors_that_say_so(tmp_path: Path) -> None:
    layers = sample_layers(4326)
    path = write_dir(tmp_path / "ds", layers, swapped=["premises"])
    code, report = validate(path)
    assert code == 2
    errors = reasons(report["errors"], "premises")
    assert len(errors) == len(layers["premises"])
    assert all(r.startswith(LATLON) for r in errors), errors[:3]
    assert {p["id"] for p in report["errors"]} == set(layers["premises"]["premise_id"])
    # the plant is fine and says nothing; no "outside every area" noise for the same rows
    assert not reasons(report["errors"], "nodes") + reasons(report["errors"], "spans")
    assert not reasons(report["warnings"], "premises")
    run = netgis("analyze", path, "--out", tmp_path / "out")
    assert run.returncode == 2 and LATLON in run.stderr
    assert not (tmp_path / "out").exists()


def test_swapped_wgs84_premises_with_a_projected_plant(tmp_path: Path) -> None:
    """Premises (lat, lon) in a file of their own next to a plant in UTM: one error per
    premise with the fix, not an error about the UTM zone's area of use."""
    layers = sample_layers(32632)
    layers["premises"] = layers["premises"].to_crs(4326)
    path = tmp_path / "ds"
    path.mkdir()
    for name, frame in layers.items():
        (swap(frame) if name == "premises" else frame).to_file(path / f"{name}.fgb")
    code, report = validate(path)
    errors = reasons(report["errors"], "premises")
    assert code == 2 and len(errors) == len(layers["premises"])
    assert all(r.startswith(LATLON) and "area of use" not in r for r in errors), errors[:3]


def test_one_swapped_premise_is_named(tmp_path: Path) -> None:
    layers = sample_layers(4326)
    premises = layers["premises"]
    premises.loc[premises.index[7:8], "geometry"] = swap(premises.iloc[7:8]).geometry
    path = write_dir(tmp_path / "ds", layers, swapped=[])
    code, report = validate(path)
    assert code == 2
    assert [(p["layer"], p["id"], p["field"]) for p in report["errors"]] == [
        ("premises", premises["premise_id"].iat[7], "geometry")]
    assert report["errors"][0]["reason"].startswith(LATLON)


@pytest.mark.parametrize(("crs", "center", "order"), [
    (4326, (-104.99, 39.74), "lat, lon"),      # Denver: longitude beyond +-90
    (4258, (8.70, 50.10), "lat, lon"),         # ETRS89: area of use is Europe
    (32632, (8.70, 50.10), "northing, easting"),
])
def test_a_dataset_swapped_as_a_whole_is_an_error_that_says_so(
        crs: int, center: tuple[float, float], order: str, tmp_path: Path) -> None:
    city = generate_city(premises=120, seed=4, center=center, crs=utm_epsg(*center)).layers()
    layers = {name: frame.to_crs(crs) for name, frame in city.items()}
    path = write_dir(tmp_path / "ds", layers, swapped=LAYER_NAMES, ext="fgb")
    code, report = validate(path)
    assert code == 2
    for name in LAYER_NAMES:
        errors = reasons(report["errors"], name)
        assert len(errors) == len(layers[name]), (name, errors[:3])
        assert all(r.startswith(f"coordinates look swapped ({order}): swap x and y")
                   for r in errors), errors[:3]
    # swapped back, the same files are clean
    back = write_dir(tmp_path / "back", layers, swapped=[], ext="fgb")
    assert validate(back) == (0, {"errors": [], "warnings": []})


def far_premise(layers: dict[str, gpd.GeoDataFrame], x: float, y: float) -> None:
    premises = layers["premises"]
    premises.loc[premises.index[0], "geometry"] = Point(x, y)


@pytest.mark.parametrize("km", [3, 100, 2000])
def test_a_premise_far_from_the_plant_but_not_swapped_is_no_swap_error(km: int) -> None:
    layers = sample_layers(4326)
    west, south, _, _ = layers["nodes"].total_bounds
    far_premise(layers, west, south - km / 111.2)
    report = validate_frames(layers)
    assert not [p for p in report.errors if "swapped" in p.reason], report.errors
    assert report.ok


def test_a_premise_near_the_plant_whose_swap_lands_near_it_too_is_not_flagged() -> None:
    """A plant astride lon = lat: a premise 10 km east of it mirrors to 10-odd km north of
    it, near too, but the premise itself is not far enough off to be taken for swapped."""
    city = generate_city(premises=150, seed=2, center=(45.0, 45.0), crs=4326).layers()
    west, south, east, north = city["nodes"].total_bounds
    x, y = east + 10_000 / (111_320 * np.cos(np.radians(45))), (south + north) / 2
    # the premise of the test: swapped, the point lies within SWAP_NEAR_M of the plant's box
    near = geodesic_distance_m(y, x, np.clip(y, west, east), np.clip(x, south, north))
    assert float(near) < SWAP_NEAR_M
    far_premise(city, x, y)
    report = validate_frames(city)
    assert not [p for p in report.errors if "swapped" in p.reason], report.errors


@pytest.mark.parametrize("center", [(8.70, 50.10), (-73.99, 40.73), (139.69, 35.69),
                                    (151.21, -33.87), (-0.13, 51.51), (45.0, 45.0)])
@pytest.mark.parametrize("crs", [4326, None])
def test_generated_cities_stay_clean(center: tuple[float, float], crs: int | None) -> None:
    city = generate_city(premises=300, seed=1, center=center,
                         crs=crs or utm_epsg(*center)).layers()
    report = validate_frames(city)
    assert report.ok, report.errors[:3]


@pytest.mark.parametrize("path", [SAMPLE, *(EXAMPLES_DIR / e / "dataset.gpkg" for e in EXAMPLES)],
                         ids=["sample", *EXAMPLES])
def test_examples_and_the_sample_stay_clean(path: Path) -> None:
    report = validate_path(path)
    assert report.ok and not report.warnings, report.errors[:3]
