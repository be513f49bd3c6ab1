"""``netgis partition`` and ``netgis analyze --engine dask`` against the local engine.

One small generated city, partitioned into Hilbert-ordered GeoParquet files; a
dask.distributed LocalCluster of two worker processes for the whole module (the
CLI connects to it with ``--scheduler``). Outputs are compared byte for byte,
rows sorted (docs/spec.md §3.1 lets rows come in any order).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import shapely
from distributed import LocalCluster

from netgis.engine.analysis import analyze
from netgis.engine.coverage import SpanIndex, locate
from netgis.engine.distributed import analyze_dask, partition_dataset
from netgis.engine.outputs import write_outputs
from netgis.engine.streamed import analyze_chunked, premise_files, row_group_chunks
from netgis.errors import DatasetFormatError, ValidationError
from netgis.generate import generate_city
from netgis.io import read_dataset, read_raw, write_dataset

PREMISES = 3000


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated city as a GeoPackage, with one premise attribute outside the contract."""
    ds = generate_city(premises=PREMISES, seed=11)
    ds.premises["survey_note"] = np.where(np.arange(PREMISES) % 3 == 0, "visited", None)
    path = tmp_path_factory.mktemp("city") / "city.gpkg"
    write_dataset(ds, path)
    return path


@pytest.fixture(scope="module")
def partitioned(city: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("parts") / "city"
    partition_dataset(city, out, partitions=4)
    return out


@pytest.fixture(scope="module")
def local(city: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The local engine's files for the city."""
    out = tmp_path_factory.mktemp("local") / "out"
    write_outputs(analyze(read_dataset(city)), out)
    return out


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as c:
        yield c.scheduler_address


def _sorted_rows(path: Path) -> list[str]:
    header, *rows = path.read_text().splitlines()
    return [header, *sorted(rows)]


def _same_outputs(a: Path, b: Path) -> None:
    for name in ("premises.csv", "spans.csv", "nodes.csv"):
        assert _sorted_rows(a / name) == _sorted_rows(b / name), name
    assert (a / "kpis.json").read_bytes() == (b / "kpis.json").read_bytes()


def test_partition_keeps_every_feature_and_attribute(city: Path, partitioned: Path) -> None:
    parts = sorted((partitioned / "premises.parquet").glob("*.parquet"))
    assert len(parts) == 4
    before, after = read_raw(city), read_raw(partitioned)
    assert set(after) == set(before)
    for name, layer in before.items():
        want = layer.frame.sort_values(layer.frame.columns[0]).reset_index(drop=True)
        got = after[name].frame.sort_values(want.columns[0]).reset_index(drop=True)
        assert list(got.columns) == list(want.columns), name
        assert got.crs == want.crs, name
        assert shapely.equals_exact(got.geometry.to_numpy(), want.geometry.to_numpy(),
                                    tolerance=0).all(), name
        attrs = [c for c in want.columns if c != "geometry"]
        pd.testing.assert_frame_equal(pd.DataFrame(got[attrs]), pd.DataFrame(want[attrs]),
                                      check_dtype=False)
    # each partition is a compact piece of the city: their boxes cover far less than four cities
    bounds = np.array([gpd.read_parquet(p).total_bounds for p in parts])
    areas = (bounds[:, 2] - bounds[:, 0]) * (bounds[:, 3] - bounds[:, 1])
    whole = (bounds[:, 2].max() - bounds[:, 0].min()) * (bounds[:, 3].max() - bounds[:, 1].min())
    assert areas.sum() < 2.0 * whole


def test_partitioned_dataset_gives_the_same_answers(local: Path, partitioned: Path,
                                                    tmp_path: Path) -> None:
    write_outputs(analyze(read_dataset(partitioned)), tmp_path / "parts")
    _same_outputs(local, tmp_path / "parts")


def test_dask_engine_equals_local_engine(city: Path, partitioned: Path, cluster: str,
                                         local: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "netgis.cli", "analyze", str(partitioned), "--engine", "dask",
         "--scheduler", cluster, "--drop-m", "150", "--out", str(tmp_path / "dask")],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    _same_outputs(local, tmp_path / "dask")
    # the GeoPackage read whole, cut into partitions by row order: the same answers again
    analyze_dask(city, tmp_path / "dask-gpkg", scheduler=cluster)
    _same_outputs(local, tmp_path / "dask-gpkg")


def test_dask_engine_halo_misses_fall_back_to_the_whole_network(
        partitioned: Path, cluster: str, tmp_path: Path) -> None:
    """With a tiny drop_m almost every premise has no lit span within its partition's halo."""
    write_outputs(analyze(read_dataset(partitioned), drop_m=1.0), tmp_path / "local")
    analyze_dask(partitioned, tmp_path / "dask", drop_m=1.0, scheduler=cluster)
    _same_outputs(tmp_path / "local", tmp_path / "dask")


def test_dask_engine_reports_duplicates_across_partitions(partitioned: Path, cluster: str,
                                                          tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(partitioned, broken)
    parts = sorted((broken / "premises.parquet").glob("*.parquet"))
    shutil.copy(parts[0], parts[0].with_name("part.99.parquet"))
    dup = str(pd.read_parquet(parts[0], columns=["premise_id"])["premise_id"].iloc[0])
    with pytest.raises(ValidationError) as err:
        analyze_dask(broken, tmp_path / "out", scheduler=cluster)
    found = {(p.layer, p.id, p.field, p.reason) for p in err.value.problems}
    assert ("premises", dup, "premise_id", "duplicate id") in found
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("rows", "processes"), [(1000, True), (300, False)])
def test_streamed_local_engine_equals_in_memory(partitioned: Path, local: Path,
                                                tmp_path: Path, rows: int,
                                                processes: bool) -> None:
    """Premises read ``rows`` at a time from the GeoParquet files: the same files as all at
    once. Whole row groups (750 premises each here) make chunks of 1000 for pass one's worker
    processes; for 300 they are too large and pass one reads batches on threads."""
    files = premise_files(partitioned) or []
    groups = row_group_chunks(files, rows)
    assert (groups is not None) == processes
    done = analyze_chunked(partitioned, tmp_path / "streamed", chunk_rows=rows)
    sizes = [pq.ParquetFile(f).metadata.num_rows for f in files]
    assert done.chunks == (len(groups) if groups is not None
                           else sum(-(-n // rows) for n in sizes))
    assert done.chunks >= len(files)
    _same_outputs(local, tmp_path / "streamed")


def test_netgis_analyze_stream_option(partitioned: Path, city: Path, local: Path,
                                     tmp_path: Path) -> None:
    """``netgis analyze --stream`` streams a small GeoParquet dataset (the streamed steps
    show in --timings), with the same files; a GeoPackage or --db cannot be streamed."""
    netgis = Path(sys.executable).with_name("netgis")
    run = subprocess.run([str(netgis), "analyze", str(partitioned), "--out",
                          str(tmp_path / "out"), "--stream", "--timings"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    assert "timing: validate" in run.stderr
    _same_outputs(local, tmp_path / "out")
    for args in ([str(city), "--stream"], ["--db", "--stream"]):
        bad = subprocess.run([str(netgis), "analyze", *args, "--out", str(tmp_path / "no")],
                             capture_output=True, text=True, timeout=300, check=False)
        assert bad.returncode == 2, bad.stderr
        assert "GeoParquet" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "no").exists()


def test_streamed_local_engine_names_a_bad_premise_and_writes_nothing(
        partitioned: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad row in a later chunk: the error names it, no output, no kept chunk left over."""
    broken = tmp_path / "broken"
    shutil.copytree(partitioned, broken)
    last = sorted((broken / "premises.parquet").glob("*.parquet"))[-1]
    frame = gpd.read_parquet(last)
    bad = str(frame["premise_id"].iloc[-1])
    frame.loc[frame.index[-1], "units"] = -3
    frame.to_parquet(last)
    # a temporary folder of this test's own (other workers run streamed analyses meanwhile)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with pytest.raises(ValidationError) as err:
        analyze_chunked(broken, tmp_path / "out", chunk_rows=1000)
    assert [(p.layer, p.id, p.field) for p in err.value.problems] == [
        ("premises", bad, "units")]
    assert not (tmp_path / "out").exists()
    assert list(scratch.iterdir()) == []


def test_streamed_local_engine_reports_duplicates_across_chunks(partitioned: Path,
                                                                tmp_path: Path) -> None:
    """Ids repeated in another chunk (here: two of one partition's ids given to three rows
    of another, one of them twice) are each named once, and nothing is written."""
    broken = tmp_path / "broken"
    shutil.copytree(partitioned, broken)
    first, *_, last = sorted((broken / "premises.parquet").glob("*.parquet"))
    ids = pd.read_parquet(first, columns=["premise_id"])["premise_id"].astype(str)
    frame = gpd.read_parquet(last)
    frame.loc[frame.index[[0, 5, 9]], "premise_id"] = ids.iloc[[3, 4, 4]].to_numpy()
    frame.to_parquet(last)
    with pytest.raises(ValidationError) as err:
        analyze_chunked(broken, tmp_path / "out", chunk_rows=1000)
    dups = sorted(p.id for p in err.value.problems if p.reason == "duplicate id")
    assert dups == sorted({ids.iloc[3], ids.iloc[4]})
    assert not (tmp_path / "out").exists()


def test_streamed_local_engine_names_an_unreadable_premises_file(partitioned: Path,
                                                                 tmp_path: Path) -> None:
    """A premises file that is not GeoParquet: a format error naming it (raised where the
    chunks are planned, before any worker starts)."""
    broken = tmp_path / "broken"
    shutil.copytree(partitioned, broken)
    last = sorted((broken / "premises.parquet").glob("*.parquet"))[-1]
    last.write_bytes(b"not parquet at all")
    with pytest.raises(DatasetFormatError, match=last.name):
        analyze_chunked(broken, tmp_path / "out", chunk_rows=1000)
    assert not (tmp_path / "out").exists()


def test_halo_search_answers_as_the_whole_network(city: Path) -> None:
    """Premises of one corner (few spans near them) and a drop_m so small that most miss."""
    ds = read_dataset(city)
    lit = ds.spans[ds.spans["status"] == "in_service"]
    index = SpanIndex(lit[["span_id", "geometry"]])
    corner = ds.premises.geometry.x.rank() <= 300
    points = ds.premises.geometry[corner.to_numpy()]
    for drop_m in (150.0, 1.0):
        want = locate(points, index, drop_m=drop_m)
        got = locate(points, index, drop_m=drop_m, halo_m=drop_m)
        pd.testing.assert_frame_equal(got, want)


def test_halo_search_widens_then_falls_back_to_every_span(city: Path) -> None:
    """Points near one span, a few hundred metres off the network (found by the wider
    halo), far away on one side (settled by a halo as wide as the span found for them,
    over the network's edge) and far away on both sides (that halo covers the whole
    network: the index of every span): the answers of the whole network, and that index
    is built only when the search would cover most of the network."""
    ds = read_dataset(city)
    lit = ds.spans[ds.spans["status"] == "in_service"]
    x1 = lit.total_bounds[2]
    east = lit.geometry.bounds["maxx"].to_numpy().argmax()
    ex, ey = shapely.get_coordinates(lit.geometry.iloc[east]).max(axis=0)
    mid = lit.geometry.iloc[len(lit) // 2].interpolate(0.5, normalized=True)
    near = gpd.GeoSeries(shapely.points(mid.x + np.linspace(-20, 20, 9), mid.y + 10),
                         crs=ds.crs)
    off = gpd.GeoSeries(shapely.points([ex + 400.0], [ey]), crs=ds.crs)
    far = gpd.GeoSeries(shapely.points(np.full(3, x1 + 50_000.0), [ey, ey + 10, ey + 20]),
                        crs=ds.crs)
    x0 = lit.total_bounds[0]
    west = gpd.GeoSeries(shapely.points([x0 - 50_000.0], [ey]), crs=ds.crs)
    for points, builds_all in ((near, False), (off, False),
                               (pd.concat([near, off, far]), False),
                               (pd.concat([near, off, far, west]), True)):
        points = points.reset_index(drop=True)
        index = SpanIndex(lit[["span_id", "geometry"]])
        got = locate(points, index, drop_m=30.0, halo_m=150.0)
        assert any(index.built(z) for z in range(32601, 32761)) == builds_all
        pd.testing.assert_frame_equal(got, locate(points, SpanIndex(lit[["span_id", "geometry"]]),
                                                  drop_m=30.0))
