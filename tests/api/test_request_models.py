"""No request builds a parameter model: FastAPI's models of every route are built with the app.

FastAPI builds the field models of the routes of an included router (one pydantic
TypeAdapter per query parameter) when a request first matches them, inside
``warnings.catch_warnings`` to hush pydantic's ``UnsupportedFieldAttributeWarning`` about
the ``alias`` FastAPI gives every parameter. That context manager is not thread safe: a
background thread leaving its own ``catch_warnings`` meanwhile (pandas, shapely and
SQLAlchemy use them; the result store runs in one) restores the filters without the
hush, and under ``-W error`` the first tile of a full test run answered 500 naming
``budget_db``. The app now builds them when it is made.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

#: Run in a fresh process, so no app built earlier in the test session has made the
#: models (FastAPI caches some per model class) and warnings are errors from the start.
_SCRIPT = r"""
import json, sys, threading, traceback, warnings
warnings.simplefilter("error")

import fastapi._compat.v2 as compat
from fastapi.testclient import TestClient

from netgis.api.app import create_app
from netgis.generate import generate_city
from tests.api.helpers import make_settings

made = []
build = compat.ModelField.__post_init__

def recording(self):
    made.append(f"{self.name} in {threading.current_thread().name}:\n"
                + "".join(traceback.format_stack(limit=8)))
    build(self)

app = create_app(make_settings(sys.argv[1]))
compat.ModelField.__post_init__ = recording
answers = {}
with TestClient(app) as client:
    app.state.repo.load_dataset(generate_city(premises=120, seed=3))
    for url in ["/tiles/spans/14/8800/5300.mvt", "/tiles/premises.json?budget_db=20",
                "/collections/premises/items?limit=2", "/analysis/coverage?drop_m=40",
                "/kpis", "/search?q=1", "/health", "/no/such/page", "/docs"]:
        answers[url] = client.get(url).status_code
print(json.dumps({"answers": answers, "made": made}))
"""


def test_no_request_builds_a_parameter_model(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", _SCRIPT, f"sqlite:///{tmp_path / 'models.db'}"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    # the requests were answered (a 500 would say a warning was raised after all)
    assert out["answers"]["/tiles/premises.json?budget_db=20"] == 200
    assert out["answers"]["/no/such/page"] == 404
    assert 500 not in out["answers"].values(), out["answers"]
    assert out["made"] == [], f"{len(out['made'])} models built per request, first:\n" \
        + out["made"][0]
