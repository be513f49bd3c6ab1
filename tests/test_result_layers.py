"""Results as GIS layers: ``analyze``, ``gaps`` and ``bead`` with ``--format gpkg|parquet``.

Every layer holds its CSV's rows, column for column and value for value, with the geometry
of its feature; premises also their address and the area covering them (checked against
shapely's own containment test). The CSVs stay exactly what they were (default format).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from netgis.engine.analysis import analyze
from netgis.engine.outputs import check_output_dir, write_outputs
from netgis.errors import ConfigError
from netgis.generate import generate_city
from netgis.io import read_dataset, write_dataset
from netgis.products.bead import bead, read_locations, write_bead
from netgis.products.gaps import gap_analysis, write_gaps
from netgis.products.result_layers import (
    RESULT_LAYERS,
    layer_files,
    write_analysis_layers,
    write_bead_layer,
    write_gap_layers,
)
from netgis.schema import ANALYSIS_FILES, RESULT_LAYER_FILES
from tests.helpers import EXAMPLES_DIR
from tests.layer_checks import csv_frame, typed

#: Each analysis layer and the CSV it stands for.
ANALYSIS_CSVS = {"premise_results": "premises.csv", "span_results": "spans.csv",
                 "node_results": "nodes.csv"}


def netgis_process(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The command line in a process of its own, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "netgis.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def netgis(*args: str | Path) -> Any:
    """The command line in this process (no interpreter start-up: the test budget)."""
    from typer.testing import CliRunner

    from netgis.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def read_layer(folder: Path, command: str, layer: str, fmt: str) -> gpd.GeoDataFrame:
    if fmt == "gpkg":
        frame = pyogrio.read_dataframe(folder / RESULT_LAYER_FILES[command][0], layer=layer)
    else:
        frame = gpd.read_parquet(folder / f"{layer}.parquet")
    assert isinstance(frame, gpd.GeoDataFrame)
    return frame


def check_layer_equals_csv(layer: gpd.GeoDataFrame, csv_path: Path, name: str) -> None:
    """The layer's columns start with the CSV's, in its order, and hold the same values."""
    csv = csv_frame(csv_path, name)
    assert list(layer.columns[:len(csv.columns)]) == list(csv.columns)
    assert [c for c in layer.columns if c not in ("geometry", "geom")] == \
        RESULT_LAYERS[name].field_names
    pd.testing.assert_frame_equal(typed(layer, name, list(csv.columns)), csv)


def check_geometry(layer: gpd.GeoDataFrame, source: gpd.GeoDataFrame, id_field: str) -> None:
    """Each feature's geometry is its source feature's, in the source's CRS."""
    assert layer.crs == source.crs
    src = source.set_index(source[id_field].astype(str)).geometry
    got = layer.set_index(layer[id_field].astype(str)).geometry
    assert sorted(got.index) == sorted(src.index)
    assert shapely.equals_exact(np.asarray(got.values), np.asarray(src.loc[got.index].values),
                                1e-9).all()


def expected_areas(premises: gpd.GeoDataFrame, areas: gpd.GeoDataFrame) -> pd.Series:
    """Per premise id, the lowest area_id of the areas covering it (None: none), tested
    plainly one area at a time in the dataset's CRS."""
    best: dict[str, str | None] = dict.fromkeys(premises["premise_id"].astype(str))
    for _, area in areas.sort_values("area_id", ascending=False).iterrows():
        inside = shapely.covers(area.geometry, premises.geometry.values)
        for pid in premises.loc[inside, "premise_id"].astype(str):
            best[pid] = str(area["area_id"])
    return pd.Series(best, dtype="string")


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("layers") / "city.gpkg"
    write_dataset(generate_city(premises=1500, seed=31), path)
    return path


@pytest.fixture(scope="module")
def city_outputs(city: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The real command line's outputs of the city in each format."""
    out = {}
    for fmt in ("csv", "gpkg", "parquet"):
        folder = tmp_path_factory.mktemp(f"out-{fmt}")
        if fmt == "gpkg":
            proc = netgis_process("analyze", city, "--out", folder, "--format", fmt)
            assert proc.returncode == 0, proc.stderr
            assert "results written to" in proc.stderr and "results.gpkg, kpis.json" in \
                proc.stderr
        else:
            done = netgis("analyze", city, "--out", folder, "--format", fmt)
            assert done.exit_code == 0, done.stderr
        out[fmt] = folder
    return out


@pytest.mark.parametrize("fmt", ["gpkg", "parquet"])
def test_analyze_layers_of_a_generated_city_equal_its_csvs(
        city: Path, city_outputs: dict[str, Path], fmt: str) -> None:
    ds = read_dataset(city)
    folder = city_outputs[fmt]
    files = RESULT_LAYER_FILES["analyze"]
    expected = [files[0]] if fmt == "gpkg" else [f"{n}.parquet" for n in files[1]]
    assert sorted(p.name for p in folder.iterdir()) == sorted([*expected, "kpis.json"])
    assert (folder / "kpis.json").read_bytes() == \
        (city_outputs["csv"] / "kpis.json").read_bytes()
    sources = {"premise_results": ds.premises, "span_results": ds.spans,
               "node_results": ds.nodes}
    for name, csv_name in ANALYSIS_CSVS.items():
        layer = read_layer(folder, "analyze", name, fmt)
        check_layer_equals_csv(layer, city_outputs["csv"] / csv_name, name)
        check_geometry(layer, sources[name], RESULT_LAYERS[name].id_field)
    premises = read_layer(folder, "analyze", "premise_results", fmt)
    by_id = premises.set_index("premise_id")
    src = ds.premises.set_index("premise_id")
    assert (by_id["address"].astype(str) == src.loc[by_id.index, "address"].astype(str)).all()
    want = expected_areas(ds.premises, ds.areas)
    assert want.notna().sum() > len(want) // 2  # the city's areas cover most premises
    got = by_id["area_id"].astype("string")
    pd.testing.assert_series_equal(got.sort_index(), want.loc[got.index].sort_index(),
                                   check_names=False, check_index_type=False)
    names = dict(zip(ds.areas["area_id"], ds.areas["name"], strict=True))
    assert (by_id["area_name"].dropna() == by_id["area_id"].dropna().map(names)).all()


def test_csv_format_writes_what_the_default_writes(city: Path, city_outputs: dict[str, Path],
                                                    tmp_path: Path) -> None:
    done = netgis("analyze", city, "--out", tmp_path)
    assert done.exit_code == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(ANALYSIS_FILES)
    for name in ANALYSIS_FILES:
        assert (tmp_path / name).read_bytes() == (city_outputs["csv"] / name).read_bytes()


def test_the_example_and_the_sample_in_every_layer(tmp_path: Path) -> None:
    # analyze on an example with hand-drawn answers; gaps and bead on the bundled sample
    result = analyze(read_dataset(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg"))
    write_outputs(result, tmp_path / "csv")
    sample = analyze(read_dataset("data/sample.gpkg"))
    found = gap_analysis(sample)
    write_gaps(found, tmp_path / "csv")
    answer = bead(sample.lit_spans, "data/bead/availability.csv", "data/bead/fabric.csv")
    write_bead(answer, tmp_path / "csv")
    locations = read_locations("data/bead/fabric.csv")
    gap_csvs = {"gap_clusters": "gaps_clusters.csv", "h3_gaps": "gaps_h3.csv",
                "gap_areas": "gaps_areas.csv", "gap_premises": "gaps_premises.csv"}
    for fmt in ("gpkg", "parquet"):
        folder = tmp_path / fmt
        write_analysis_layers(result, folder, fmt=fmt)
        write_gap_layers(found, sample, folder, fmt=fmt)
        write_bead_layer(answer, locations, folder, fmt=fmt)
        for name, csv_name in ANALYSIS_CSVS.items():
            check_layer_equals_csv(read_layer(folder, "analyze", name, fmt),
                                   tmp_path / "csv" / csv_name, name)
        for name, csv_name in gap_csvs.items():
            layer = read_layer(folder, "gaps", name, fmt)
            assert len(layer) > 0, name
            check_layer_equals_csv(layer, tmp_path / "csv" / csv_name, name)
        hexes = read_layer(folder, "gaps", "h3_gaps", fmt)
        assert hexes.crs is not None and hexes.crs.to_epsg() == 4326
        assert shapely.equals_exact(hexes.geometry.values, found.hexes.geometry.values,
                                    1e-12).all()
        check_geometry(read_layer(folder, "gaps", "gap_premises", fmt)[["premise_id",
                                                                        "geometry"]],
                       sample.premises[sample.premises["premise_id"].isin(
                           found.plan.premise_cluster["premise_id"])], "premise_id")
        classes = read_layer(folder, "bead", "bead_classes", fmt)
        check_layer_equals_csv(classes, tmp_path / "csv" / "bead.csv", "bead_classes")
        check_geometry(classes, locations, "location_id")
        assert (folder / "gaps_plan.gpkg").exists()


def test_bad_formats_and_engines_are_refused(city: Path, tmp_path: Path) -> None:
    done = netgis("analyze", city, "--out", tmp_path / "a", "--format", "shp")
    assert done.exit_code == 2
    assert "--format must be one of csv, gpkg, parquet, not 'shp'" in done.stderr
    done = netgis("analyze", city, "--out", tmp_path / "b", "--format", "gpkg",
                  "--engine", "dask")
    assert done.exit_code == 2 and "--format gpkg needs the premises in memory" in done.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_folder_of_layers_is_netgis_own(tmp_path: Path) -> None:
    # the layer files of every command and format are netgis's own: written again, not
    # refused; anything else in the folder still is
    for command in RESULT_LAYER_FILES:
        for fmt in ("gpkg", "parquet"):
            for name in layer_files(command, fmt):
                (tmp_path / name).write_bytes(b"")
    assert len(list(tmp_path.iterdir())) == 11
    assert check_output_dir(tmp_path) == tmp_path
    (tmp_path / "results.gpkg-journal").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"results\.gpkg-journal"):
        check_output_dir(tmp_path)


def test_gaps_and_bead_write_their_layers_from_the_command_line(tmp_path: Path) -> None:
    done = netgis("gaps", EXAMPLES_DIR / "ring_spur" / "dataset.gpkg", "--out", tmp_path,
                  "--format", "gpkg")
    assert done.exit_code == 0, done.stderr
    done = netgis("bead", "data/sample.gpkg", "--availability", "data/bead/availability.csv",
                  "--locations", "data/bead/fabric.csv", "--out", tmp_path,
                  "--format", "parquet")
    assert done.exit_code == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bead_classes.parquet", "gaps.gpkg", "gaps_plan.gpkg"]
    assert list(pyogrio.list_layers(tmp_path / "gaps.gpkg")[:, 0]) == list(
        RESULT_LAYER_FILES["gaps"][1])
    clusters = read_layer(tmp_path, "gaps", "gap_clusters", "gpkg")
    assert clusters["cluster_id"].tolist() == ["gap-p_far"]
    classes = read_layer(tmp_path, "bead", "bead_classes", "parquet")
    assert len(classes) == len(read_locations("data/bead/fabric.csv"))
    assert set(classes["bead_class"]) <= {"served", "underserved", "unserved"}
