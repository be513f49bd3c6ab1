"""Dependencies shared by the routers: settings, services, repository, API keys, request bodies.

Access: writes need a key with the ``write`` scope (:func:`require_api_key`);
reads need none unless ``NETGIS_OPEN_READS=false``, when every route but
:data:`PUBLIC_PATHS` needs a key with the ``read`` scope (:func:`read_access`,
installed on the whole app); the audit log always needs one
(:func:`require_read_key`). No key: 401; an unknown key or one without the
scope: 403. Keys are parsed and checked in :mod:`api.auth`.

Single sign-on: when ``NETGIS_OIDC_*`` is set, an ``Authorization: Bearer``
token of the OpenID Connect provider (checked in :mod:`api.oidc`) may stand
in for a key wherever one is asked for: any valid token reads, one with a
write role writes. An invalid token: 401 (``Bearer error="invalid_token"``);
a valid one without a write role on a write: 403; a request with both a key
and a token: 400. The principal's name (a key's name, ``oidc:<sub>`` for a
token) is put on ``request.state.principal`` for the request log.
"""

from __future__ import annotations

import logging
import threading
from typing import Annotated, Any

import anyio
from fastapi import Depends, Query, Request, Security
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from netgis.api.auth import Principal, Scope, authenticate
from netgis.api.errors import ApiError
from netgis.api.limits import Client, set_current_client
from netgis.api.oidc import InvalidToken, KeysUnavailable, TokenPrincipal, TokenVerifier
from netgis.api.services import Services
from netgis.api.settings import Settings
from netgis.io.basemap import BasemapFile
from netgis.maps.basemap import Basemap
from netgis.storage import Repository

JSON_MEDIA_TYPES = ("application/json", "application/geo+json", "application/merge-patch+json")

_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False,
    description="One of the keys in NETGIS_API_KEYS: writes need the write scope, the audit "
                "log (and, with NETGIS_OPEN_READS=false, every read) the read scope.",
)
#: Routes that answer without a key even when reads are closed: liveness probes carry no key,
#: and the residents' portal shows only what a resident may see (api/routers/portal.py);
#: the base map is public data the portal draws (api/routers/basemap.py).
PUBLIC_PATHS = frozenset({"/health", "/portal", "/portal/addresses", "/portal/plant",
                          "/basemap.json", "/basemap/{z}/{x}/{y}.{ext}"})
log = logging.getLogger("netgis.api")


def settings_of(request: Request) -> Settings:
    """The settings the application was created with."""
    settings: Settings = request.app.state.settings
    return settings


def services_of(request: Request) -> Services:
    """The application's shared state."""
    services: Services = request.app.state.services
    return services


# The dependencies below only look up application state: coroutines, so that FastAPI runs
# them in the event loop instead of sending each to a worker thread and back (a request
# with three such dependencies took four turns of the thread pool).

async def get_settings(request: Request) -> Settings:
    """The settings the application was created with (dependency of :data:`SettingsDep`)."""
    return settings_of(request)


async def get_services(request: Request) -> Services:
    """The application's shared state (dependency of :data:`ServicesDep`)."""
    return services_of(request)


async def get_repo(request: Request) -> Repository:
    """The repository of the application's database (dependency of :data:`RepoDep`)."""
    return services_of(request).repo


def page_basemap(request: Request) -> Basemap | None:
    """The base map every page draws (``NETGIS_BASEMAP``, served under ``/basemap``), None
    without one (dependency of :data:`BasemapPageDep`)."""
    opened: BasemapFile | None = getattr(request.app.state, "basemap", None)
    return None if opened is None else Basemap.of(opened.info)


SettingsDep = Annotated[Settings, Depends(get_settings)]
#: The base map for a page (:class:`netgis.maps.basemap.Basemap`), or None.
BasemapPageDep = Annotated["Basemap | None", Depends(page_basemap)]
#: The application's state: the consistent read, analyses, build plans, KPI snapshots.
ServicesDep = Annotated[Services, Depends(get_services)]
#: The open repository, for plain reads and writes of features.
RepoDep = Annotated[Repository, Depends(get_repo)]


#: A request without credentials is told it may send a key or, with single sign-on, a token.
_KEY_CHALLENGE = 'ApiKey header="X-API-Key"'
_BEARER_CHALLENGE = 'Bearer realm="netgis"'
_verifier_lock = threading.Lock()


def token_verifier(request: Request) -> TokenVerifier | None:
    """The application's checker of bearer tokens, made at first use; None without single
    sign-on (NETGIS_OIDC_* unset)."""
    settings = settings_of(request)
    if not settings.oidc:
        return None
    state = request.app.state
    verifier: TokenVerifier | None = getattr(state, "oidc_verifier", None)
    if verifier is None:
        with _verifier_lock:
            verifier = getattr(state, "oidc_verifier", None)
            if verifier is None:
                verifier = TokenVerifier.of(settings)
                state.oidc_verifier = verifier
    return verifier


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header (possibly empty); None without one."""
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _verified(request: Request, verifier: TokenVerifier,
              token: str) -> TokenPrincipal | InvalidToken | KeysUnavailable:
    """The principal of ``token``, or why it is refused; checked once per request."""
    cached = getattr(request.state, "oidc_checked", None)
    if cached is not None and cached[0] == token:
        result: TokenPrincipal | InvalidToken | KeysUnavailable = cached[1]
        return result
    try:
        result = verifier.verify(token)
    except (InvalidToken, KeysUnavailable) as error:
        result = error
    request.state.oidc_checked = (token, result)
    return result


def _token_principal(request: Request, verifier: TokenVerifier, token: str,
                     scope: Scope) -> TokenPrincipal:
    """The principal of a valid ``token`` with ``scope``; else a 401, 403 or 503 problem."""
    result = _verified(request, verifier, token)
    if isinstance(result, KeysUnavailable):
        raise ApiError(503, str(result))
    if isinstance(result, InvalidToken):
        # the token itself is never logged or echoed
        log.info("refused a bearer token: %s", result)
        raise ApiError(401, str(result),
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    if not result.allows(scope):
        roles = ", ".join(verifier.write_roles)
        log.info("refused token %r: it has none of the write roles", result.name)
        raise ApiError(403, f"this request changes data and needs a token with the role "
                       f"{roles!r} (or one of them) in its {verifier.roles_claim!r} claim; "
                       f"this token has none of them",
                       headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'})
    return result


def _key_principal(settings: Settings, key: str | None, scope: Scope, missing: str,
                   oidc: bool) -> Principal:
    """The configured key sent in ``key`` if it has ``scope``; else a 401 or 403 problem."""
    if not key:
        challenge = f"{_KEY_CHALLENGE}, {_BEARER_CHALLENGE}" if oidc else _KEY_CHALLENGE
        raise ApiError(401, missing + (" or an Authorization: Bearer token" if oidc else ""),
                       headers={"WWW-Authenticate": challenge})
    found = authenticate(settings.api_keys, key)
    if found is None:
        # the presented value is never logged or echoed: it may be a real key mistyped
        log.info("refused an unknown X-API-Key")
        raise ApiError(403, "the X-API-Key is not valid")
    if not found.allows(scope):
        log.info("refused key %r: it has no %s scope", found.name, scope)
        raise ApiError(403, f"the key {found.name!r} has the {found.scope} scope; this "
                       f"request needs {scope}")
    return found


def _authorize(request: Request, settings: Settings, key: str | None, scope: Scope,
               missing: str) -> Principal:
    """The key sent in ``key``, or the bearer token, if it has ``scope``; else a 400, 401,
    403 (or 503: the provider's keys cannot be read) problem.

    ``missing`` is the detail of the 401 without credentials (it names the X-API-Key
    header). The principal's name goes on ``request.state.principal``.
    """
    verifier = token_verifier(request)
    token = bearer_token(request) if verifier is not None else None
    if verifier is not None and token is not None:
        if key:
            # two credentials: which one the audit log should name is anyone's guess
            raise ApiError(400, "send an X-API-Key header or an Authorization: Bearer token, "
                           "not both",
                           headers={"WWW-Authenticate": 'Bearer error="invalid_request"'})
        found: Principal = _token_principal(request, verifier, token, scope)
    else:
        found = _key_principal(settings, key, scope, missing, verifier is not None)
    request.state.principal = found.name
    return found


def require_api_key(
    request: Request,
    settings: SettingsDep,
    key: Annotated[str | None, Security(_api_key_header)] = None,
) -> Principal:
    """The writer: 401 without a key (or token), 403 for an unknown key or one without write
    scope (a token without a write role)."""
    return _authorize(request, settings, key, "write",
                      "this request changes data and needs an X-API-Key header")


def require_read_key(
    request: Request,
    settings: SettingsDep,
    key: Annotated[str | None, Security(_api_key_header)] = None,
) -> Principal:
    """A key with the read scope (or a valid token), whether reads are open or not (for the
    audit log)."""
    return _authorize(request, settings, key, "read",
                      "the audit log tells who changed what and needs an X-API-Key header")


def _closed_reads(
    request: Request,
    settings: SettingsDep,
    key: Annotated[str | None, Security(_api_key_header)] = None,
) -> None:
    """With closed reads: a key with the read scope (or a valid token) for every route but
    PUBLIC_PATHS."""
    # the matched route's path template (e.g. /collections/nodes/items/{featureId}); when a
    # framework does not say, the request is treated as closed
    route = request.scope.get("route")
    if getattr(route, "path", None) in PUBLIC_PATHS:
        return
    _authorize(request, settings, key, "read",
               "reads are closed on this server: every request needs an X-API-Key header")


def read_access(settings: Settings) -> list[Any]:
    """The app-wide dependencies the read setting asks for: none when reads are open.

    Installed on the whole application (not per router), so a route added later
    is closed too unless it is listed in :data:`PUBLIC_PATHS`; with open reads
    nothing is installed and the OpenAPI document shows no key on reads.
    """
    return [] if settings.open_reads else [Depends(_closed_reads)]


async def identify_client(request: Request) -> None:
    """Record who asks (address, valid key or token or not) for the limits on new analyses.

    An application-wide dependency. It is async so that it runs in the request's
    own context, which the route's thread inherits (see :func:`api.limits.current_client`).
    A key or token that is not valid counts as none; it is not refused here (reads need
    none). A token is checked in a worker thread (reading the provider's keys may wait on
    the network), once per request.
    """
    key = request.headers.get("x-api-key")
    found: Principal | None = authenticate(settings_of(request).api_keys, key) if key else None
    verifier = token_verifier(request)
    token = bearer_token(request) if verifier is not None else None
    if found is None and verifier is not None and token is not None:
        checked = await run_in_threadpool(_verified, request, verifier, token)
        found = checked if isinstance(checked, TokenPrincipal) else None
    if found is not None:
        # who asks, by the key's name (never its secret) or the token's subject, for the
        # request log
        request.state.principal = found.name
    address = request.client.host if request.client is not None else "unknown"
    set_current_client(Client(address, found is not None))


async def require_json_body(request: Request, settings: SettingsDep) -> None:
    """415 unless the body is JSON / GeoJSON, 413 when it is larger than allowed."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in JSON_MEDIA_TYPES:
        raise ApiError(415, f"unsupported media type {media_type or '(none)'!r}; send one of "
                       + ", ".join(JSON_MEDIA_TYPES))
    _check_length(request, settings.max_body_bytes)
    body = await request.body()
    if len(body) > settings.max_body_bytes:
        raise ApiError(413, f"the request body is larger than {settings.max_body_bytes} bytes")


def _check_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the request body is larger than {limit} bytes")


def check_upload_length(request: Request, settings: SettingsDep) -> None:
    """413 before reading an upload whose declared length is too large."""
    _check_length(request, settings.max_upload_bytes)


WriteAccess = [Depends(require_api_key)]
JsonWrite = [Depends(require_api_key), Depends(require_json_body)]
#: The key (or bearer token) of a write, for its audit entry (the same call as in
#: WriteAccess: FastAPI runs it once per request).
WriterDep = Annotated[Principal, Depends(require_api_key)]
#: A key with the read scope, whatever NETGIS_OPEN_READS says (the audit log tells who
#: changed what).
AuditAccess = [Depends(require_read_key)]


async def wait_for_min_version(
    services: ServicesDep,
    min_version: Annotated[int | None, Query(
        ge=0, description="Answer once the analysis reflects at least this data version "
                          "(the X-Data-Version of your write); without it the answer "
                          "reflects the newest analysis ready, never waiting for one.")] = None,
) -> None:
    """The ``min_version`` query parameter of every analysis read (a router dependency):
    waits until the live analysis reflects that data version (503 after
    ``NETGIS_MIN_VERSION_TIMEOUT_S``; 400 for a version the database has not reached)."""
    if min_version is not None:
        await anyio.to_thread.run_sync(services.wait_for_version, min_version,
                                       limiter=services.waiters)


#: Router dependency of the routers whose answers come from the analysis.
MIN_VERSION = Depends(wait_for_min_version)
