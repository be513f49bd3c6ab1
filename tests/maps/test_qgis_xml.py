"""The QGIS project writer without QGIS: its XML, the answers of servers that are not what
``netgis qgis`` needs, and the command's own checks (the project opened by QGIS itself is
``tests/maps/test_qgis_project.py``)."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest
from typer.testing import CliRunner

from netgis.cli import app
from netgis.errors import ConfigError
from netgis.maps import static_dir
from netgis.maps.qgis import (
    BASEMAP_VECTOR_STYLES,
    Classes,
    Collection,
    ServerCatalog,
    TileSource,
    qgis_project,
    read_server,
)
from netgis.maps.qgis_xml import (
    FeatureLayer,
    Group,
    Project,
    SingleSymbol,
    Symbol,
    oapif_source,
    project_xml,
    rgba,
    write_qgz,
    xyz_source,
)
from tests.maps.helpers import closed_port

BOX = (8.6, 50.0, 8.8, 50.2)


def _catalog(**changes: Any) -> ServerCatalog:
    values: dict[str, Any] = {
        "url": "http://127.0.0.1:8000", "title": "netgis",
        "collections": tuple(Collection(name, name.title(), BOX) for name in (
            "nodes", "spans", "premises", "areas", "premise_results", "span_results",
            "node_results", "gap_clusters", "h3_gaps")),
        "tiles": {name: TileSource(f"http://127.0.0.1:8000/tiles/{name}/{{z}}/{{x}}/{{y}}.mvt",
                                   0, 22) for name in ("nodes", "spans", "premises", "areas")},
        "classes": Classes((40, 30, 9, 2), (12, 3), (1, 2, 5, 9), 28.0)}
    return ServerCatalog(**{**values, **changes})


def test_the_vector_base_map_styles_are_those_of_the_web_maps_script() -> None:
    """BASEMAP_VECTOR_STYLES is basemap.js's table in Python: same patterns, same styles."""
    script = (static_dir() / "basemap" / "basemap.js").read_text(encoding="utf-8")
    table = re.search(r"var STYLES = \[(.*?)\n  \];", script, re.S)
    assert table is not None
    rows = re.findall(r"\[/([^/]+)/i,\s*\{([^}]*)\}\]", table.group(1))

    def value(text: str) -> Any:
        text = text.strip()
        return text.strip('"') if text.startswith('"') else {"true": True, "false": False}.get(
            text, float(text) if "." in text else int(text) if text.isdigit() else text)

    js = [(pattern, {k.strip(): value(v) for k, v in (p.split(":") for p in body.split(","))})
          for pattern, body in rows]
    assert [(pattern, style) for pattern, _, style in BASEMAP_VECTOR_STYLES] == js


def test_the_project_is_deterministic_and_names_are_data() -> None:
    odd = "<b>Nord & 'Süd'</b>"
    catalog = _catalog(title=odd, collections=(Collection("premises", odd, BOX),))
    first = project_xml(qgis_project(catalog))
    assert first == project_xml(qgis_project(catalog))
    root = ET.fromstring(first.split(b"\n", 1)[1])
    assert root.findtext("title") == f"{odd} (http://127.0.0.1:8000)"
    assert root.findtext("projectlayers/maplayer[id='netgis_premises']/layername") == odd
    # a quote in a URL stays inside its value of the data source
    assert oapif_source("http://h/it's", "premises", view_only=False) == \
        "url='http://h/it\\'s' typename='premises'"
    assert "&" not in xyz_source("http://h/t/{z}/{x}/{y}.mvt?a=1&b=2", 0, 1).split("url=")[1] \
        .split("&zmax")[0]


def test_a_project_without_results_tiles_or_base_map_has_only_what_exists() -> None:
    bare = qgis_project(_catalog(tiles={}, collections=(Collection("spans", "Spans", None),)))
    assert [g.name for g in bare.tree] == ["Plant"] and bare.extent is None
    full = qgis_project(_catalog(basemap=TileSource("http://h/basemap/{z}/{x}/{y}.png", 0, 14,
                                                    vector=False)), authcfg="abc1234")
    assert [g.name for g in full.tree] == ["Coverage map (vector tiles)", "Results", "Plant",
                                           "Base map"]
    sources = {layer.id: layer.source for layer in full.layers()}
    assert all("authcfg" in s for lid, s in sources.items() if lid != "netgis_basemap")
    assert "authcfg" not in sources["netgis_basemap"]


def test_bad_values_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="colour"):
        rgba("green")
    with pytest.raises(ConfigError, match=r"\{z\}"):
        xyz_source("http://h/tiles/1/2/3.png", 0, 3)
    with pytest.raises(ConfigError, match=r"\.qgz"):
        write_qgz(Project("x", ()), tmp_path / "x.qgs")
    layer = FeatureLayer("a", "A", oapif_source("http://h", "a"), "Point",
                         SingleSymbol(Symbol("marker", "#000000")))
    with pytest.raises(ConfigError, match="unique"):
        project_xml(Project("x", (Group("g", (layer, layer)),)))
    out = write_qgz(Project("x", (Group("g", (layer,)),)), tmp_path / "x.qgz")
    assert zipfile.ZipFile(out).namelist() == ["x.qgs"]
    assert [p.name for p in tmp_path.iterdir()] == ["x.qgz"]  # no temporary left


def _server(answers: dict[str, httpx.Response]) -> httpx.Client:
    def serve(request: httpx.Request) -> httpx.Response:
        return answers.get(request.url.path, httpx.Response(404, json={}))
    return httpx.Client(transport=httpx.MockTransport(serve))


@pytest.mark.parametrize(("answers", "message"), [
    ({"/": httpx.Response(200, text="<html>hello</html>")}, "did not answer JSON"),
    ({"/": httpx.Response(200, json={"links": []})}, "no 'data' link"),
    ({"/": httpx.Response(401, json={})}, "--api-key-env"),
    ({"/": httpx.Response(503, json={"detail": "busy\x1b[2J"})}, r"503 .*'busy\\x1b\[2J'"),
])
def test_answers_that_are_not_a_netgis_server_are_named(answers: dict[str, httpx.Response],
                                                       message: str) -> None:
    with _server(answers) as client, pytest.raises(ConfigError, match=message):
        read_server(client, "http://netgis.test")


def test_the_command_checks_its_options_and_the_server(tmp_path: Path) -> None:
    out = tmp_path / "p.qgz"

    def run(*args: str, env: dict[str, str] | None = None) -> BaseException | None:
        return CliRunner().invoke(app, ["qgis", *args], env=env).exception

    assert "--url must be" in str(run("--url", "ftp://h", "--out", str(out)))
    assert ".qgz" in str(run("--url", "http://h", "--out", str(tmp_path / "p.qgs")))
    missing = run("--url", "http://h", "--out", str(out), "--api-key-env", "NETGIS_NO_SUCH_KEY",
                  env={"NETGIS_NO_SUCH_KEY": ""})
    assert "NETGIS_NO_SUCH_KEY" in str(missing)
    down = run("--url", f"http://127.0.0.1:{closed_port()}", "--out", str(out))
    assert isinstance(down, ConfigError) and "cannot read" in str(down)
    assert not out.exists()
