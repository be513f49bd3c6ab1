"""Dependencies shared by the routers: settings, services, repository, API key, request bodies."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from api.errors import ApiError
from api.limits import Client, set_current_client
from api.services import Services
from api.settings import Settings
from netgis.storage import Repository

JSON_MEDIA_TYPES = ("application/json", "application/geo+json", "application/merge-patch+json")

_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False,
    description="One of the keys in NETGIS_API_KEYS; needed for every write.",
)


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_repo(request: Request) -> Repository:
    return get_services(request).repo


SettingsDep = Annotated[Settings, Depends(get_settings)]
#: The application's state: the consistent read, analyses, build plans, KPI snapshots.
ServicesDep = Annotated[Services, Depends(get_services)]
#: The open repository, for plain reads and writes of features.
RepoDep = Annotated[Repository, Depends(get_repo)]


def key_is_valid(settings: Settings, key: str) -> bool:
    """Whether ``key`` is one of NETGIS_API_KEYS."""
    # compare against every key without stopping early, so timing says nothing about keys
    ok = False
    for candidate in settings.api_keys:
        ok |= secrets.compare_digest(key.encode(), candidate.encode())
    return ok


def require_api_key(
    settings: SettingsDep,
    key: Annotated[str | None, Security(_api_key_header)] = None,
) -> None:
    """401 without a key, 403 with a key that is not in NETGIS_API_KEYS."""
    if not key:
        raise ApiError(401, "this request changes data and needs an X-API-Key header",
                       headers={"WWW-Authenticate": 'ApiKey header="X-API-Key"'})
    if not key_is_valid(settings, key):
        raise ApiError(403, "the X-API-Key is not valid")


async def identify_client(request: Request) -> None:
    """Record who asks (address, valid key or not) for the limits on new analyses.

    An application-wide dependency. It is async so that it runs in the request's
    own context, which the route's thread inherits (see :func:`api.limits.current_client`).
    A key that is not valid counts as none; it is not refused here (reads need no key).
    """
    key = request.headers.get("x-api-key")
    keyed = bool(key) and key_is_valid(get_settings(request), key or "")
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
