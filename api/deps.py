"""Dependencies shared by the routers: settings, services, repository, API keys, request bodies.

Access: writes need a key with the ``write`` scope (:func:`require_api_key`);
reads need none unless ``NETGIS_OPEN_READS=false``, when every route but
:data:`PUBLIC_PATHS` needs a key with the ``read`` scope (:func:`read_access`,
installed on the whole app); the audit log always needs one
(:func:`require_read_key`). No key: 401; an unknown key or one without the
scope: 403. Keys are parsed and checked in :mod:`api.auth`.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import Depends, Query, Request, Security
from fastapi.security import APIKeyHeader

from netgis.api.auth import ApiKey, Scope, authenticate
from netgis.api.errors import ApiError
from netgis.api.limits import Client, set_current_client
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


def get_settings(request: Request) -> Settings:
    """The settings the application was created with (dependency of :data:`SettingsDep`)."""
    settings: Settings = request.app.state.settings
    return settings


def get_services(request: Request) -> Services:
    """The application's shared state (dependency of :data:`ServicesDep`)."""
    services: Services = request.app.state.services
    return services


def get_repo(request: Request) -> Repository:
    """The repository of the application's database (dependency of :data:`RepoDep`)."""
    return get_services(request).repo


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


def _authorize(settings: Settings, key: str | None, scope: Scope, missing: str) -> ApiKey:
    """The configured key sent in ``key`` if it has ``scope``; else a 401 or 403 problem.

    ``missing`` is the detail of the 401 (it names the X-API-Key header).
    """
    if not key:
        raise ApiError(401, missing,
                       headers={"WWW-Authenticate": 'ApiKey header="X-API-Key"'})
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


def require_api_key(
    settings: SettingsDep,
    key: Annotated[str | None, Security(_api_key_header)] = None,
) -> ApiKey:
    """The writing key: 401 without a key, 403 for an unknown key or one without write scope."""
    return _authorize(settings, key, "write",
                      "this request changes data and needs an X-API-Key header")


def require_read_key(
    settings: SettingsDep,
    key: Annotated[str | None, Security(_api_key_header)] = None,
) -> ApiKey:
    """A key with the read scope, whether reads are open or not (for the audit log)."""
    return _authorize(settings, key, "read",
                      "the audit log tells who changed what and needs an X-API-Key header")


def _closed_reads(
    request: Request,
    settings: SettingsDep,
    key: Annotated[str | None, Security(_api_key_header)] = None,
) -> None:
    """With closed reads: a key with the read scope for every route but PUBLIC_PATHS."""
    # the matched route's path template (e.g. /collections/nodes/items/{featureId}); when a
    # framework does not say, the request is treated as closed
    route = request.scope.get("route")
    if getattr(route, "path", None) in PUBLIC_PATHS:
        return
    _authorize(settings, key, "read",
               "reads are closed on this server: every request needs an X-API-Key header")


def read_access(settings: Settings) -> list[Any]:
    """The app-wide dependencies the read setting asks for: none when reads are open.

    Installed on the whole application (not per router), so a route added later
    is closed too unless it is listed in :data:`PUBLIC_PATHS`; with open reads
    nothing is installed and the OpenAPI document shows no key on reads.
    """
    return [] if settings.open_reads else [Depends(_closed_reads)]


async def identify_client(request: Request) -> None:
    """Record who asks (address, valid key or not) for the limits on new analyses.

    An application-wide dependency. It is async so that it runs in the request's
    own context, which the route's thread inherits (see :func:`api.limits.current_client`).
    A key that is not valid counts as none; it is not refused here (reads need no key).
    """
    key = request.headers.get("x-api-key")
    found = authenticate(get_settings(request).api_keys, key) if key else None
    keyed = found is not None
    if found is not None:
        # who asks, by the key's name (never its secret), for the request log
        request.state.principal = found.name
    address = request.client.host if request.client is not None else "unknown"
    set_current_client(Client(address, keyed))


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
#: The key of a write, for its audit entry (the same call as in WriteAccess: FastAPI runs it
#: once per request).
WriterDep = Annotated[ApiKey, Depends(require_api_key)]
#: A key with the read scope, whatever NETGIS_OPEN_READS says (the audit log tells who
#: changed what).
AuditAccess = [Depends(require_read_key)]


def wait_for_min_version(
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
        services.wait_for_version(min_version)


#: Router dependency of the routers whose answers come from the analysis.
MIN_VERSION = Depends(wait_for_min_version)
