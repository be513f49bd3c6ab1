"""What the interoperability tests share: the command line in a fresh process and the OFDS
reference validator (libcoveofds)."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from libcoveofds.additionalfields import AdditionalFields
from libcoveofds.geojson import GeoJSONAssumeFeatureType, GeoJSONToJSONConverter
from libcoveofds.jsonschemavalidate import JSONSchemaValidator
from libcoveofds.python_validate import PythonValidate
from libcoveofds.schema import OFDSSchema

ROOT = Path(__file__).resolve().parents[2]
OFDS_DATA = Path(__file__).resolve().parent / "data" / "ofds"
MAPPINGS = ROOT / "data" / "mappings"


@dataclass
class Run:
    """What a command did: its exit code and what it printed."""

    returncode: int
    stdout: str
    stderr: str


def netgis(*args: str | Path) -> Run:
    """Run the command line's entry point in this process (its exit-code and error handling
    included), capturing what it prints: a fresh interpreter per call would spend seconds
    importing geopandas each time (tests/test_cli.py runs the installed script)."""
    from netgis.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["netgis", *map(str, args)]
    code: int | str | None = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.argv = argv
    return Run(code if isinstance(code, int) else 1, out.getvalue(), err.getvalue())


def ofds_report(nodes: Path, spans: Path) -> dict[str, Any]:
    """What the OFDS reference validator says about a GeoJSON publication.

    The two files are converted to the JSON publication format with libcoveofds's own
    converter, which is then checked against the OFDS schema (``schema``), by the
    standard's additional rules (``checks``: references, geometries, unique ids), for
    fields the schema does not define (``additional``) and for networks described
    differently in different features (``inconsistent``).
    """
    converter = GeoJSONToJSONConverter()
    converter.process_data(json.loads(nodes.read_text(encoding="utf-8")),
                           assumed_feature_type=GeoJSONAssumeFeatureType.NODE)
    converter.process_data(json.loads(spans.read_text(encoding="utf-8")),
                           assumed_feature_type=GeoJSONAssumeFeatureType.SPAN)
    data = converter.get_json()
    schema = OFDSSchema()
    meta = converter.get_meta_json()
    return {
        "data": data,
        "schema": [e.json()["message"] for e in JSONSchemaValidator(schema).validate(data)],
        "checks": PythonValidate(schema).validate(data),
        "additional": AdditionalFields(schema).process(data),
        "inconsistent": meta["inconsistent_network_ids"],
    }
