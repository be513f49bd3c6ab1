"""The one place where errors become HTTP responses (RFC 9457 ``application/problem+json``).

Every response that is not a success carries ``type``, ``title``, ``status``,
``detail`` and, where the cause is in the data, ``errors``: a list of
``{"layer", "id", "field", "reason"}`` naming what is at fault. No traceback
ever reaches a client, not even for a bug (that is a plain 500 problem).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from netgis.errors import (
    ConfigError,
    ConflictError,
    NetgisError,
    NotFoundError,
    ParameterError,
    PreconditionFailed,
    Problem,
    StorageError,
    StorageUnavailable,
    UnsupportedUpload,
    UploadTooLarge,
    ValidationError,
)

PROBLEM_MEDIA_TYPE = "application/problem+json"
#: Seconds a client is told to wait before retrying after a database fault (503).
RETRY_AFTER_S = 5
log = logging.getLogger("netgis.api")


class ProblemItem(BaseModel):
    """One thing at fault: the layer, feature id and field, and why."""

    layer: str | None = None
    id: str | None = None
    field: str | None = None
    reason: str


class ProblemDetail(BaseModel):
    """An error response (RFC 9457)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[ProblemItem] = Field(default_factory=list)


class ProblemResponse(JSONResponse):
    """A JSON response sent as ``application/problem+json`` (RFC 9457)."""

    media_type = PROBLEM_MEDIA_TYPE


class ApiError(Exception):
    """An HTTP error raised by the API itself (bad key, unsupported media type, ...)."""

    def __init__(self, status: int, detail: str, problems: Sequence[Problem] = (),
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.problems = list(problems)
        self.headers = headers


def problem(status: int, detail: str, problems: Sequence[Problem] = (),
            headers: dict[str, str] | None = None) -> ProblemResponse:
    """Build a problem+json response."""
    body = ProblemDetail(
        type=f"https://netgis.dev/problems/{status}" if status != 500 else "about:blank",
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        errors=[ProblemItem(**p.as_dict()) for p in problems],
    )
    # nosniff here too: a 500 is sent from outside every middleware (api.security)
    return ProblemResponse(body.model_dump(), status_code=status,
                           headers={"X-Content-Type-Options": "nosniff", **(headers or {})})


#: The HTTP status of each netgis error class. An exception takes the status of the first
#: class of its MRO listed here (Starlette looks handlers up that way), so a ParameterError,
#: though a ValidationError, is a 400, and a class not listed gets its base class's status.
STATUS_CODES: Mapping[type[NetgisError], int] = {
    NetgisError: 400,
    ParameterError: 400,
    ValidationError: 422,
    UploadTooLarge: 413,
    UnsupportedUpload: 415,
    ConfigError: 422,
    NotFoundError: 404,
    ConflictError: 409,
    PreconditionFailed: 412,
    StorageError: 503,
    StorageUnavailable: 503,
}


def _problems_of(exc: NetgisError) -> list[Problem]:
    if isinstance(exc, ValidationError | ConflictError):
        return exc.problems
    if isinstance(exc, NotFoundError):
        return [Problem(exc.layer, exc.id, None, "no such feature")]
    if isinstance(exc, PreconditionFailed):
        return [Problem(exc.layer, exc.id, None, "changed since the version in If-Match")]
    return []


def _request_validation_problems(errors: Sequence[Any]) -> list[Problem]:
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        where = loc[0] if loc else "request"
        out.append(Problem(where, None, ".".join(loc[1:]) or None, str(err.get("msg", "invalid"))))
    return out


Handler = Callable[[Request, Exception], Awaitable[ProblemResponse]]


def _netgis_handler(status: int) -> Handler:
    """The handler answering ``status`` for a :class:`NetgisError`."""

    async def handler(request: Request, exc: Exception) -> ProblemResponse:
        assert isinstance(exc, NetgisError)
        if isinstance(exc, StorageUnavailable):
            # an outage, a file fault or contention past the busy timeout: worth retrying
            log.warning("database unavailable on %s: %s", request.url.path, exc)
            return problem(503, f"{exc.reason}; retry later",
                           headers={"Retry-After": str(exc.retry_after)})
        if status == 503:
            # the message may carry connection details; they stay in the log
            log.error("storage error on %s: %s", request.url.path, exc)
            # a fault, not the client's doing: worth retrying (docs/spec.md §3.5: 503, Retry-After)
            return problem(503, "the database is not reachable",
                           headers={"Retry-After": str(RETRY_AFTER_S)})
        return problem(status, str(exc), _problems_of(exc))

    return handler


async def _api_error_handler(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, ApiError)
    return problem(exc.status, exc.detail, exc.problems, exc.headers)


async def _http_handler(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers) if exc.headers else None
    return problem(exc.status_code, str(exc.detail), headers=headers)


async def _request_validation_handler(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    problems = _request_validation_problems(exc.errors())
    # FastAPI's own 422 becomes 400 for query and path parameters (OGC API says a bad
    # parameter is a 400) and stays 422 for request bodies.
    status = 422 if any(p.layer == "body" for p in problems) else 400
    return problem(status, "invalid request: " + "; ".join(str(p) for p in problems[:5]), problems)


async def _unexpected_handler(request: Request, exc: Exception) -> ProblemResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    # sent from outside every middleware: the request id (api.request_log) is added here
    request_id = getattr(request.state, "request_id", None)
    return problem(500, "internal server error",
                   headers={"X-Request-ID": request_id} if isinstance(request_id, str) else None)


def install_error_handlers(app: FastAPI,
                           status_codes: Mapping[type[NetgisError], int] = STATUS_CODES) -> None:
    """Register every handler on ``app``: one per entry of ``status_codes``, then the rest."""
    for exc_class, status in status_codes.items():
        app.add_exception_handler(exc_class, _netgis_handler(status))
    app.add_exception_handler(ApiError, _api_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    app.add_exception_handler(RequestValidationError, _request_validation_handler)
    app.add_exception_handler(Exception, _unexpected_handler)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the problem statuses a route can answer."""
    schema = {"$ref": "#/components/schemas/ProblemDetail"}
    return {
        s: {
            "description": HTTPStatus(s).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": schema}},
        }
        for s in statuses
    }
