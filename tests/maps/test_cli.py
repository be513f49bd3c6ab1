"""`netgis map KIND DATASET --out FILE.html`: one self-contained page per kind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from netgis.cli import app
from tests.helpers import EXAMPLES_DIR
from tests.maps.helpers import PageServer, asset_urls
from tests.maps.test_browser import assert_clean, click_premises, load

RING = EXAMPLES_DIR / "ring_spur" / "dataset.gpkg"


@pytest.mark.parametrize(("kind", "marker"), [
    ("coverage", "netgis-premise-passed"),
    ("criticality", "netgis-span-spof"),
    ("gaps", "netgis-gap-hex"),
    ("areas", "netgis-area-coverage"),
])
def test_map_command_writes_a_self_contained_page(kind: str, marker: str, tmp_path: Path) -> None:
    out = tmp_path / "sub" / f"{kind}.html"
    res = CliRunner().invoke(app, ["map", kind, str(RING), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert f'"map": "{kind}"' in res.stdout
    html = out.read_text(encoding="utf-8")
    assert asset_urls(html) == []
    assert marker in html and "netgis-legend" in html
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary file left


def test_tiles_come_from_option_or_environment(tmp_path: Path) -> None:
    out = tmp_path / "t.html"
    url = "http://127.0.0.1:9/tiles/{z}/{x}/{y}.png"
    res = CliRunner().invoke(app, ["map", "coverage", str(RING), "--out", str(out)],
                             env={"NETGIS_TILES_URL": url})
    assert res.exit_code == 0, res.output
    assert url in out.read_text(encoding="utf-8")
    res = CliRunner().invoke(app, ["map", "coverage", str(RING), "--out", str(out)],
                             env={"NETGIS_TILES_URL": ""})
    assert res.exit_code == 0 and "/tiles/" not in out.read_text(encoding="utf-8")


def test_bad_kind_and_bad_dataset_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "x.html"
    cmd = [sys.executable, "-c", "from netgis.cli import main; main()", "map"]
    bad = subprocess.run([*cmd, "heat", str(RING), "--out", str(out)], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "KIND must be one of" in bad.stderr
    missing = subprocess.run([*cmd, "coverage", str(tmp_path / "none.gpkg"), "--out", str(out)],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert not out.exists()


@pytest.mark.browser
def test_cli_scenario_page_in_chromium(browser_context: Any, server: PageServer, ring: Any,
                                       tmp_path: Path) -> None:
    out = server.root / "cli_criticality.html"
    res = CliRunner().invoke(app, ["map", "criticality", str(RING), "--out", str(out),
                                   "--cut-spans", "s5"])
    assert res.exit_code == 0, res.output
    page = load(browser_context, server.url(out.name))
    assert_clean(page)
    assert page.requests == [server.url(out.name)]  # everything inline
    assert page.count("path.netgis-scenario-span") == 1
    assert page.count("path.netgis-scenario-premise") == 3
    assert click_premises(page, ring.premises, ["p_spur1", "p_spur2", "p_end"],
                          "netgis-scenario-premise") == 3
    page.page.screenshot(path=tmp_path / "cli_criticality.png")
    page.page.close()
