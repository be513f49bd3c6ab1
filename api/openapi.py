"""The OpenAPI document, in version 3.0 as OGC API - Features Part 1 asks (conformance class oas30).

FastAPI writes OpenAPI 3.1 (JSON Schema 2020-12); :func:`to_openapi_30` rewrites
the few constructs that 3.0 spells differently (``null`` types, ``const``,
numeric exclusive bounds, binary strings, example lists).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel


def _nullable(schema: dict[str, Any], key: str) -> None:
    options = schema[key]
    rest = [o for o in options if o != {"type": "null"}]
    if len(rest) == len(options):
        return
    del schema[key]
    if len(rest) == 1:
        only = rest[0]
        if "$ref" in only:
            schema["allOf"] = [only]
        else:
            schema.update(only)
    else:
        schema[key] = rest
    schema["nullable"] = True


def _convert(node: Any) -> Any:
    if isinstance(node, list):
        return [_convert(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _convert(v) for k, v in node.items()}
    for key in ("anyOf", "oneOf"):
        if isinstance(out.get(key), list):
            _nullable(out, key)
    if isinstance(out.get("type"), list):
        types = [t for t in out["type"] if t != "null"]
        if len(types) < len(out["type"]):
            out["nullable"] = True
        out["type"] = types[0] if len(types) == 1 else types
    if "const" in out:
        out["enum"] = [out.pop("const")]
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), int | float) and not isinstance(out.get(bound), bool):
            out[plain] = out[bound]
            out[bound] = True
    if out.get("type") == "string" and "contentMediaType" in out:
        out.pop("contentMediaType")
        out["format"] = "binary"
    if isinstance(out.get("examples"), list) and "type" in out:
        examples = out.pop("examples")
        if examples:
            out["example"] = examples[0]
    return out


def to_openapi_30(document: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a FastAPI (OpenAPI 3.1) document as OpenAPI 3.0.3.

    Examples
    --------
    >>> doc = {"openapi": "3.1.0", "components": {"schemas": {"A": {
    ...     "anyOf": [{"type": "string"}, {"type": "null"}]}}}}
    >>> to_openapi_30(doc)["components"]["schemas"]["A"]
    {'type': 'string', 'nullable': True}
    """
    out: dict[str, Any] = _convert(document)
    out["openapi"] = "3.0.3"
    return out


_PROBLEM_REF = {"$ref": "#/components/schemas/ProblemDetail"}


def _problems_for_bad_parameters(doc: dict[str, Any]) -> None:
    # FastAPI documents a 422 HTTPValidationError for every parameter; the error handlers
    # answer a bad parameter with a 400 problem instead (see api.errors)
    for path_item in doc.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.get("responses", {})
            fastapi_422 = responses.get("422", {})
            if "HTTPValidationError" in str(fastapi_422):
                del responses["422"]
            if operation.get("parameters") or "HTTPValidationError" in str(fastapi_422):
                responses.setdefault("400", {
                    "description": "Bad Request",
                    "content": {"application/problem+json": {"schema": _PROBLEM_REF}},
                })
    schemas = doc.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)


#: The parameter whose other values start a new analysis (see api.services.Services.analysis).
ANALYSIS_PARAMETER = "drop_m"


#: Paths that start new work without taking analysis parameters: a report or dashboard of
#: an area not kept, a what-if scenario, a trace at other loss parameters or under a cut
#: (see api.services.Services.admit).
NEW_WORK_PATHS = frozenset({"/report", "/dashboard", "/analysis/scenarios", "/trace",
                            "/trace/cuts", "/diversity"})


def _rate_limit_responses(doc: dict[str, Any]) -> None:
    # an operation taking analysis parameters may start a new analysis, and a few others
    # other new work, which anonymous clients may do only so often (api.limits): it may
    # answer 429 with Retry-After
    for path, path_item in doc.get("paths", {}).items():
        for operation in path_item.values():
            names = {p.get("name") for p in operation.get("parameters", [])}
            if ANALYSIS_PARAMETER in names or path in NEW_WORK_PATHS:
                operation.setdefault("responses", {})["429"] = {
                    "description": "Too Many Requests: this client started as much new work "
                                   "(analyses, pages, reports, scenarios) as it may for now "
                                   "(cached answers and requests with an X-API-Key are "
                                   "never limited).",
                    "headers": {"Retry-After": {
                        "description": "Seconds until a new analysis is allowed again.",
                        "schema": {"type": "integer"}}},
                    "content": {"application/problem+json": {"schema": _PROBLEM_REF}},
                }


def _problems_for_keys(doc: dict[str, Any], public_paths: Collection[str]) -> None:
    # every operation that takes a key answers 401 without one and 403 with a wrong one;
    # the public paths take none even when the app-wide read check lists it for them
    for path, path_item in doc.get("paths", {}).items():
        for operation in path_item.values():
            if path in public_paths:
                operation.pop("security", None)
                continue
            if not operation.get("security"):
                continue
            for status, phrase in (("401", "Unauthorized"), ("403", "Forbidden")):
                operation.setdefault("responses", {}).setdefault(status, {
                    "description": phrase,
                    "content": {"application/problem+json": {"schema": _PROBLEM_REF}},
                })


#: The security scheme of single sign-on's bearer tokens (api/oidc.py).
BEARER_SCHEME = "HTTPBearer"


def _bearer_tokens(doc: dict[str, Any]) -> None:
    # with single sign-on, a token of the OpenID Connect provider may stand in for a key:
    # every operation that takes a key takes one or the other (two requirements: either)
    doc.setdefault("components", {}).setdefault("securitySchemes", {})[BEARER_SCHEME] = {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "An access token of the OpenID Connect provider (NETGIS_OIDC_*): any "
                       "valid token reads, one with a write role (NETGIS_OIDC_WRITE_ROLES) "
                       "writes. Send it or an X-API-Key, not both.",
    }
    for path_item in doc.get("paths", {}).values():
        for operation in path_item.values():
            security = operation.get("security")
            if security and {BEARER_SCHEME: []} not in security:
                security.append({BEARER_SCHEME: []})


def _item_limits(doc: dict[str, Any], default: int, maximum: int) -> None:
    # GDAL 3.8+ and QGIS take their page size from the maximum of the items' limit
    for path, path_item in doc.get("paths", {}).items():
        if not path.endswith("/items") or "get" not in path_item:
            continue
        for parameter in path_item["get"].get("parameters", []):
            if parameter.get("name") == "limit" and parameter.get("in") == "query":
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": maximum,
                                       "default": default}
                parameter["description"] = (
                    f"Items per page: {default} by default, at most {maximum} (a larger value "
                    "is a 400 naming limit).")


def install_openapi(app: FastAPI, extra_schemas: dict[str, type[BaseModel]],
                    public_paths: Collection[str] = (),
                    item_limits: tuple[int, int] | None = None) -> None:
    """Serve a cached OpenAPI 3.0 document that also holds ``extra_schemas`` components.

    Operations under ``public_paths`` are shown without a key requirement; every
    other operation that takes a key is shown with its 401 and 403 answers, and,
    with single sign-on (the app's settings say so), takes a bearer token instead.
    ``item_limits`` (default, maximum) documents the ``limit`` of every items
    endpoint.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version,
                              description=app.description, routes=app.routes)
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            for name, model in extra_schemas.items():
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(schema.pop("$defs", {}))
                schemas[name] = schema
            _problems_for_bad_parameters(doc)
            _rate_limit_responses(doc)
            _problems_for_keys(doc, public_paths)
            if getattr(getattr(app.state, "settings", None), "oidc", False):
                _bearer_tokens(doc)
            if item_limits is not None:
                _item_limits(doc, *item_limits)
            app.openapi_schema = to_openapi_30(doc)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
