"""Files from a third party read safely by the command line: a GDAL virtual dataset (VRT)
under any layer file's name, a path GDAL would take for a URL, an archive or a connection,
and a GeoPackage whose layer is a view, are refused with a problem that names the file
and never what the file points at; nothing is fetched from the network."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import EXAMPLES_DIR
from tests.interop.helpers import Run, netgis
from tests.interop.hostile import (
    COPY_VIEW,
    SECRET,
    SITES_MAPPING,
    Listener,
    gpkg_with_view,
    vrt,
    write_secret,
    zipped_secret,
)

#: Every suffix a mapped import reads as a source.
SOURCE_NAMES = ("sites.csv", "sites.geojson", "sites.json", "sites.kml", "sites.gpx",
                "sites.fgb", "sites.shp", "sites.gpkg", "sites.parquet")


def _target(kind: str, tmp_path: Path, listener: Listener) -> str:
    """What the VRT points at: a secret file, a URL, a file in an archive."""
    secret = write_secret(tmp_path / "elsewhere")
    if kind == "file":
        return f"CSV:{secret}"
    if kind == "url":
        return f"/vsicurl/{listener.url}/secret.csv"
    return f"/vsizip/{zipped_secret(secret.parent)}/secret.csv"


def _refused(run: Run, listener: Listener, name: str) -> None:
    assert run.returncode == 2, (run.returncode, run.stderr)
    assert SECRET not in run.stdout + run.stderr
    assert name in run.stdout + run.stderr, run.stderr
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr
    assert listener.hits == []


@pytest.mark.parametrize("kind", ["file", "url", "zip"])
@pytest.mark.parametrize("name", SOURCE_NAMES)
def test_a_vrt_under_a_source_name_is_refused(name: str, kind: str, tmp_path: Path) -> None:
    with Listener() as listener:
        folder = tmp_path / "upload"
        folder.mkdir()
        (folder / name).write_text(vrt(_target(kind, tmp_path, listener)))
        (tmp_path / "m.toml").write_text(SITES_MAPPING)
        run = netgis("import", folder, "--mapping", tmp_path / "m.toml",
                     "--out", tmp_path / "o.gpkg")
        _refused(run, listener, name)
    assert "not" in run.stderr  # "... is not a CSV file" and the like
    assert not (tmp_path / "o.gpkg").exists()


@pytest.mark.parametrize("layer_file", ["nodes.geojson", "nodes.json", "nodes.fgb",
                                        "nodes.parquet"])
@pytest.mark.parametrize("kind", ["file", "url", "zip"])
def test_a_vrt_as_a_dataset_layer_is_refused(layer_file: str, kind: str,
                                             tmp_path: Path) -> None:
    with Listener() as listener:
        dataset = tmp_path / "dataset"
        shutil.copytree(EXAMPLES_DIR / "ring_spur" / "dataset", dataset)
        (dataset / "nodes.geojson").unlink()
        (dataset / layer_file).write_text(vrt(_target(kind, tmp_path, listener),
                                              name="nodes"))
        for args in (["validate", dataset], ["analyze", dataset, "--out", tmp_path / "out"],
                     ["db", "load", dataset, "--database-url",
                      f"sqlite:///{tmp_path / 'n.db'}"]):
            run = netgis(*args)
            _refused(run, listener, layer_file)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("source", ["CSV:{secret}", "/vsicurl/{url}/secret.csv",
                                    "/vsizip/{zip}/secret.csv", "GPKG:{secret}:nodes",
                                    "PG:dbname=postgres"])
def test_a_path_gdal_would_read_as_something_else_is_refused(source: str,
                                                             tmp_path: Path) -> None:
    with Listener() as listener:
        secret = write_secret(tmp_path / "elsewhere")
        path = source.format(secret=secret, url=listener.url,
                             zip=zipped_secret(secret.parent))
        (tmp_path / "m.toml").write_text(SITES_MAPPING)
        runs = [netgis("import", path, "--mapping", tmp_path / "m.toml",
                       "--out", tmp_path / "o.gpkg"),
                netgis("validate", path),
                netgis("analyze", path, "--out", tmp_path / "out"),
                netgis("db", "load", path, "--database-url", f"sqlite:///{tmp_path / 'n.db'}")]
        for run in runs:
            _refused(run, listener, path[:8])  # a Path argument folds "//" into "/"
            assert "not a plain file path" in run.stdout + run.stderr, run.stderr


def test_a_geopackage_layer_that_is_a_view_is_refused(tmp_path: Path) -> None:
    package = gpkg_with_view(tmp_path / "plant.gpkg", COPY_VIEW)
    run = netgis("validate", package)
    assert run.returncode == 2
    (error,) = json.loads(run.stdout)["errors"]
    assert error["layer"] == "premises" and "view" in error["reason"], error
    for args in (["analyze", package, "--out", tmp_path / "out"],
                 ["db", "load", package, "--database-url", f"sqlite:///{tmp_path / 'n.db'}"]):
        run = netgis(*args)
        assert run.returncode == 2 and "view" in run.stderr, run.stderr
    (tmp_path / "m.toml").write_text('[spans]\nlayer = "premises"\n')
    run = netgis("import", package, "--mapping", tmp_path / "m.toml", "--out", tmp_path / "o.gpkg")
    assert run.returncode == 2 and "premises" in run.stderr and "view" in run.stderr, run.stderr
    assert not (tmp_path / "o.gpkg").exists() and not (tmp_path / "out").exists()


def test_the_sources_that_are_what_they_say_still_import(tmp_path: Path) -> None:
    """The checks refuse disguises, not the formats: a CSV, a GeoJSON file and a
    GeoPackage of plain tables import as before."""
    run = netgis("validate", EXAMPLES_DIR / "ring_spur" / "dataset.gpkg")
    assert run.returncode == 0, run.stdout
    run = netgis("validate", EXAMPLES_DIR / "ring_spur" / "dataset")
    assert run.returncode == 0, run.stdout
