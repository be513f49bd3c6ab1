"""Property-based run of schemathesis over the OpenAPI document against a real server.

Every operation of the document, with a bounded number of generated valid and
invalid requests each and a deadline per request (writes carry a valid key, so
they reach the contract checks and are not rate limited): no 5xx, and every
response (status, content type, body) must be one the document describes. The one check left out is
``positive_data_acceptance``: the contract has rules a JSON schema cannot state
(a bbox's numbers in range, ids that exist, a valid polygon), so a schema-valid
request may rightly get a 4xx problem. Requests with a generated (malformed)
``Content-Length`` header are not sent: the HTTP server answers them before the app.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.specs.openapi.checks import positive_data_acceptance

from netgis.api.app import create_app
from netgis.io import read_dataset
from netgis.storage import Repository
from tests.api.helpers import API_KEY, LiveServer, make_settings
from tests.helpers import EXAMPLES_DIR, PostgresDatabases


@pytest.fixture(scope="module",
                params=["spatialite", pytest.param("postgis", marks=pytest.mark.postgis)])
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    if request.param == "spatialite":
        url = f"sqlite:///{Path(tmp_path_factory.mktemp('st')) / 'st.db'}"
    else:
        dbs: PostgresDatabases = request.getfixturevalue("pg_databases")
        url = dbs.create(prefix="netgis_st", template=request.getfixturevalue("postgis_server"))
    repo = Repository.from_url(url)
    repo.init()
    repo.load_dataset(read_dataset(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg"))
    repo.engine.dispose()
    with LiveServer(create_app(make_settings(url))) as live:
        yield live


@pytest.fixture(scope="module")
def api_schema(server: LiveServer) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


#: The budget: examples per operation (valid, invalid) and the time one example may take.
POSITIVE_EXAMPLES = 12
NEGATIVE_EXAMPLES = 6
DEADLINE = timedelta(seconds=30)
HTTP_METHODS = {"get", "put", "post", "patch", "delete", "head", "options"}


def _run(operation: schemathesis.APIOperation, mode: schemathesis.GenerationMode,
         examples: int) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=DEADLINE,
              suppress_health_check=list(HealthCheck),
              derandomize=True, database=None, phases=[Phase.explicit, Phase.generate])
    def check(case: schemathesis.Case) -> None:
        # a malformed Content-Length is refused by the HTTP server (uvicorn's h11) before
        # the app sees the request, as a plain-text 400: transport, not the API's document
        assume("content-length" not in {k.lower() for k in (case.headers or {})})
        case.call_and_validate(headers={"X-API-Key": API_KEY}, timeout=60,
                               excluded_checks=[positive_data_acceptance])

    check()


def test_api_conforms_to_its_openapi_document(api_schema: schemathesis.BaseSchema) -> None:
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    # every operation of the document, none left out
    paths = api_schema.raw_schema["paths"]
    assert len(operations) == sum(len(HTTP_METHODS & set(item)) for item in paths.values())
    assert len(operations) >= 30
    for operation in operations:
        for mode, examples in ((schemathesis.GenerationMode.POSITIVE, POSITIVE_EXAMPLES),
                               (schemathesis.GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES)):
            try:
                _run(operation, mode, examples)
            except Unsatisfiable:
                # an operation without parameters or body has no invalid request to make
                assert mode is schemathesis.GenerationMode.NEGATIVE
            except (Exception, BaseExceptionGroup) as exc:  # report every operation's failure
                failures.append(f"{operation.label} [{mode.value}]: {exc}")
    assert not failures, "\n\n".join(failures)
