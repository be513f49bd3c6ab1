"""Settings of the HTTP API, read from the environment (``NETGIS_`` prefix).

Only this module (and the command line) reads the environment; everything
else receives a :class:`Settings` object.

``NETGIS_API_KEYS`` takes bare keys and named, scoped keys (syntax in
:mod:`api.auth`); only their SHA-256 digests are kept, so neither the settings
nor their ``repr`` hold a secret.

Examples
--------
>>> settings = Settings(api_keys="k1, viewer:read:k2", open_reads=False)
>>> settings.api_keys
[ApiKey(name='key1', scope='write'), ApiKey(name='viewer', scope='read')]
>>> "k2" in repr(settings)
False
"""

from __future__ import annotations

from datetime import date
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from netgis.api.auth import ApiKey, parse_api_keys
from netgis.api.oidc import check_jwks_source
from netgis.engine.optics import LossBudget
from netgis.io.isolation import Limits
from netgis.products.feeds import DEFAULT_MIN_SPAN_DAYS, DEFAULT_PACE_WINDOW_DAYS, Goal
from netgis.schema import (
    DEFAULT_DROP_M,
    DEFAULT_MAX_CLUSTER_EXTENT_M,
    DEFAULT_MAX_CLUSTER_UNITS,
    DEFAULT_REACH_M,
)


class Settings(BaseSettings):
    """Everything the API can be configured with."""

    # hide_input_in_errors: a NETGIS_API_KEYS that does not parse must not print its secrets
    model_config = SettingsConfigDict(env_prefix="NETGIS_", extra="ignore",
                                      hide_input_in_errors=True)

    database_url: Annotated[str, Field(
        description="SQLAlchemy URL of the SpatiaLite or PostGIS database.")] = \
        "sqlite:///./netgis.db"
    #: The one moment a server may make a database: at start, when the SpatiaLite file does not
    #: exist. Afterwards a missing file is an outage (503), never a new empty database.
    create_database: Annotated[bool, Field(
        description="At start, create (and migrate) the SpatiaLite file if it does not exist; "
                    "false: a missing file answers 503 until it appears.")] = True
    #: NETGIS_API_KEYS is a comma separated list (see api.auth); an empty list disables every
    #: write (and, with closed reads, every read).
    api_keys: Annotated[list[ApiKey], NoDecode, Field(
        description="Keys, comma separated: SECRET (read-write, named key<N>), "
                    "NAME:read|write:SECRET or NAME:read|write:sha256=HEX.")] = []
    open_reads: Annotated[bool, Field(
        description="Reads need no key; false: every read but /health needs a key with "
                    "the read scope. The audit log always needs one.")] = True
    #: single sign-on (api/oidc.py): on when issuer, audience and JWKS are all set
    oidc_issuer: Annotated[str | None, Field(description=(
        "OpenID Connect: the iss a bearer token must carry; set with NETGIS_OIDC_AUDIENCE "
        "and NETGIS_OIDC_JWKS, or none of them (no bearer tokens)."))] = None
    oidc_audience: Annotated[str | None, Field(description=(
        "OpenID Connect: the audience a bearer token's aud must hold."))] = None
    oidc_jwks: Annotated[str | None, Field(description=(
        "OpenID Connect: the provider's signing keys, a JWKS URL (https) or file."))] = None
    oidc_roles_claim: Annotated[str, Field(min_length=1, description=(
        "Claim (or dotted path, e.g. realm_access.roles) of a token's roles: a list or a "
        "space separated string."))] = "roles"
    oidc_write_roles: Annotated[list[str], NoDecode, Field(min_length=1, description=(
        "Roles (comma separated) of which a token needs one to write."))] = ["netgis-write"]
    oidc_jwks_min_refresh_s: Annotated[float, Field(ge=0, description=(
        "Least seconds between two reads of the JWKS (a token with an unknown kid reads it "
        "again)."))] = 30.0
    drop_m: Annotated[float, Field(gt=0, description="Default maximum drop length (m).")] = \
        DEFAULT_DROP_M
    pon_class: Annotated[str | None, Field(
        description="Optical budget of a named PON class (gpon-b+, gpon-c+, xgs-pon-n1, "
                    "xgs-pon-n2); budget_db overrides it.")] = None
    budget_db: Annotated[float | None, Field(ge=0, description="Optical budget in dB "
                                             "(default 28, GPON class B+).")] = None
    atten_db_per_km: Annotated[float | None, Field(ge=0, description="Fiber attenuation, "
                                                   "dB/km (default 0.35).")] = None
    splice_db: Annotated[float | None, Field(ge=0, description="Loss per splice node, dB "
                                             "(default 0.1).")] = None
    fixed_db: Annotated[float | None, Field(ge=0, description="Connector loss at both ends, "
                                            "dB (default 1.0).")] = None
    default_limit: Annotated[int, Field(ge=1, description="Items per page by default.")] = 100
    max_limit: Annotated[int, Field(ge=1, description="Larger limits are clamped.")] = 10_000
    max_upload_bytes: Annotated[int, Field(ge=1, description="Largest upload.")] = 256 * 2**20
    max_body_bytes: Annotated[int, Field(ge=1, description="Largest JSON body.")] = 32 * 2**20
    #: POST /import reads the upload in a child process (netgis.io.isolation) under these limits
    import_timeout_s: Annotated[float, Field(gt=0, description=(
        "Seconds an import may take to read and validate its upload (its child process "
        "is killed then: 422)."))] = 300.0
    import_cpu_s: Annotated[float, Field(gt=0, description=(
        "Seconds of CPU time an import may use to read and validate its upload."))] = 120.0
    import_memory_bytes: Annotated[int, Field(ge=2**20, description=(
        "Bytes of memory (address space) an import may use to read and validate its "
        "upload, beyond the ~0.7 GB of libraries its process loads."))] = 4 * 2**30
    shutdown_timeout_s: Annotated[float, Field(gt=0, description=(
        "Seconds a stopping server waits for requests under way (an import, a slow "
        "client) before it cancels them; an import's process is killed then."))] = 10.0
    analysis_cache_size: Annotated[int, Field(ge=1, description="Analyses kept.")] = 4
    live_poll_s: Annotated[float, Field(gt=0, le=60, description=(
        "Seconds between two looks at the data version by the live analysis (writes made "
        "through this process are seen at once; others within this)."))] = 0.05
    request_threads: Annotated[int, Field(ge=1, le=1000, description=(
        "Requests whose handlers run at once in each server process (the others wait "
        "their turn). Each one takes the interpreter lock in turn with the live analysis: "
        "fewer keep more of it for applying edits (docs/architecture.md, \"Live "
        "analysis\"). Waits for a data version do not count."))] = 40
    thread_switch_ms: Annotated[float, Field(gt=0, le=100, description=(
        "Longest time (ms) one thread of the server runs Python before another may "
        "(sys.setswitchinterval; Python's default is 5). The live analysis gives way "
        "whenever numpy, GEOS or the database work outside the interpreter lock, and must "
        "then wait for it again: behind busy request threads each such wait lasts up to "
        "this long (docs/architecture.md, \"Live analysis\")."))] = 5.0
    write_visible_timeout_s: Annotated[float, Field(ge=0, description=(
        "A write through the API answers once the live analysis reflects it, or after this "
        "many seconds (then its X-Data-Version-Visible header says false)."))] = 30.0
    min_version_timeout_s: Annotated[float, Field(gt=0, description=(
        "Longest wait of a read with min_version for that data version (then 503)."))] = 30.0
    kpi_snapshot_interval_s: Annotated[float, Field(ge=0, description=(
        "Least seconds between two KPI snapshots of edits (0: one per reflected change); "
        "a bulk load or import is always snapshotted once reflected."))] = 3600.0
    #: each analysis the server computes is stored in the database (in a background thread)
    #: and per-item requests read stored results: API workers and hosts share them
    stored_results: Annotated[bool, Field(
        description="Store each analysis in the database's result tables and answer "
                    "per-item requests (a premise, serviceability, KPIs) from them.")] = True
    results_keep: Annotated[int, Field(ge=1, description="Data versions whose stored "
                                       "results are kept (the newest).")] = 1
    map_cache_size: Annotated[int, Field(ge=1, description="Map pages kept (per data "
                                         "version and parameters).")] = 16
    gap_max_units: Annotated[float, Field(gt=0, description="Largest gap cluster, in units, "
                                          "by default (a larger one is split).")] = \
        DEFAULT_MAX_CLUSTER_UNITS
    gap_max_extent_m: Annotated[float, Field(gt=0, description="Widest gap cluster, meters "
                                             "(bounding box diagonal), by default.")] = \
        DEFAULT_MAX_CLUSTER_EXTENT_M
    #: requests that would start new work (an analysis at other than the default parameters,
    #: a page or report not kept, a scenario: api.services.Services.admit) per client address
    #: without an X-API-Key; cached answers are never limited
    analysis_rate_per_minute: Annotated[float, Field(ge=0, description=(
        "New analyses, pages or reports an anonymous client may start per minute (429 "
        "beyond); 0: no limit."))] = 10.0
    analysis_burst: Annotated[int, Field(ge=1, description=(
        "New analyses, pages or reports an anonymous client may start in a row."))] = 5
    #: absolute links (TileJSON, OGC links, the report's map links) start with it; unset: with
    #: the address the server was reached on (its socket), never the request's Host header
    public_url: Annotated[str | None, Field(description=(
        "http(s)://host[:port] clients reach the server by, for absolute links; unset: the "
        "server's own address."))] = None
    #: behind a reverse proxy (api/transport.py): the peers whose forwarded headers count
    forwarded_allow_ips: Annotated[list[str], NoDecode, Field(description=(
        "Reverse proxies (IP addresses or networks, comma separated; * for any peer) whose "
        "X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host are honoured; empty (the "
        "default): none, every client's forwarded headers are ignored."))] = []
    hsts_max_age: Annotated[int, Field(ge=0, description=(
        "max-age in seconds of the Strict-Transport-Security header of every response "
        "over https (netgis serve --ssl-certfile, or https forwarded by a trusted proxy); "
        "0: no such header."))] = 31_536_000
    header_timeout_s: Annotated[float, Field(gt=0, description=(
        "Seconds a client has to send a request's headers (from its first byte, or from "
        "the connection); then it is disconnected."))] = 10.0
    body_timeout_s: Annotated[float, Field(gt=0, description=(
        "Seconds a request body may pause between two reads (408, then disconnected)."))] = \
        30.0
    keep_alive_s: Annotated[int, Field(ge=1, description=(
        "Seconds an idle keep-alive connection is kept open."))] = 5
    #: json: one JSON object per log line, a line per request (api/request_log.py), and no
    #: uvicorn access line
    log_format: Annotated[Literal["text", "json"], Field(description=(
        "Log lines as plain text (uvicorn's access log) or as JSON objects, one per request "
        "with its request id, route, status, duration and principal."))] = "text"
    #: empty by default: maps work offline and show the plant without a base map
    tiles_url: Annotated[str, Field(description="Basemap tiles for maps ({z}/{x}/{y} URL); "
                                                "empty for none.")] = ""
    #: unset by default: maps show the dataset's own streets, if any, on a blank background
    basemap: Annotated[Path | None, Field(description=(
        "Base map served by this server (GET /basemap.json, /basemap/{z}/{x}/{y}.{ext}) and "
        "drawn under every map: an MBTiles or PMTiles file of raster (png, jpg, webp) or "
        "vector (mvt) tiles (docs/basemap.md); unset: none."))] = None
    #: unset by default: the bead_classes collection is there only with both files
    bead_availability: Annotated[list[Path], NoDecode, Field(description=(
        "FCC BDC availability CSV files (comma separated) the bead_classes result collection "
        "classes the Fabric locations of NETGIS_BEAD_LOCATIONS by (docs/spec.md §2.11); "
        "unset: no such collection."))] = []
    bead_locations: Annotated[Path | None, Field(description=(
        "FCC Fabric locations CSV (location_id, latitude, longitude) of the bead_classes "
        "result collection; set with NETGIS_BEAD_AVAILABILITY or not at all."))] = None
    bead_reach_m: Annotated[float, Field(ge=0, description=(
        "An unpassed BEAD location this close to lit plant (m) is 'reachable' in "
        "bead_classes, else 'beyond'."))] = DEFAULT_REACH_M
    portal_messages: Annotated[str | None, Field(
        description="JSON file with every text of the /portal page (a translation of "
                    "maps/static/portal/messages.json); unset: English.")] = None
    title: str = "netgis"
    goal_coverage_pct: Annotated[float, Field(gt=0, le=100, description="Coverage target of "
                                              "GET /kpis/goal, percent of units passed.")] = \
        Goal.target_pct
    goal_date: Annotated[date, Field(description="Day the coverage target should be "
                                     "reached.")] = Goal.target_date
    goal_window_days: Annotated[int, Field(ge=1, le=36_500, description=(
        "Days of KPI history (up to the day asked for) the goal view's pace is measured "
        "over."))] = DEFAULT_PACE_WINDOW_DAYS
    goal_min_span_days: Annotated[float, Field(ge=0, description=(
        "Least time the snapshots of that window must span for a pace to be given."))] = \
        DEFAULT_MIN_SPAN_DAYS
    program_budget_per_year: Annotated[float | None, Field(ge=0, description=(
        "Budget per year of the build programme the dashboard and the report draw beside "
        "the actual coverage (docs/plans.md); unset: no programme line."))] = None

    def import_limits(self) -> Limits:
        """What reading an upload of POST /import may use (netgis.io.isolation)."""
        return Limits(wall_s=self.import_timeout_s, cpu_s=self.import_cpu_s,
                      memory_bytes=self.import_memory_bytes,
                      settings={"wall_s": "NETGIS_IMPORT_TIMEOUT_S",
                                "cpu_s": "NETGIS_IMPORT_CPU_S",
                                "memory_bytes": "NETGIS_IMPORT_MEMORY_BYTES"})

    def loss_budget(self) -> LossBudget:
        """The optical parameters these settings ask for (else docs/spec.md §2.10's defaults)."""
        base = LossBudget.preset(self.pon_class) if self.pon_class else LossBudget()
        return base.with_(budget_db=self.budget_db, atten_db_per_km=self.atten_db_per_km,
                          splice_db=self.splice_db, fixed_db=self.fixed_db)

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc or \
                parts.path.strip("/") or parts.query or parts.fragment or "@" in parts.netloc:
            raise ValueError(f"public_url must be http(s)://host[:port], not {value!r}")
        return f"{parts.scheme}://{parts.netloc}"

    @field_validator("forwarded_allow_ips", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        # NETGIS_FORWARDED_ALLOW_IPS=10.0.0.5,192.168.1.0/24; each checked, * alone
        items = [p.strip() for p in value.split(",") if p.strip()] \
            if isinstance(value, str) else value
        if isinstance(items, list):
            for item in items:
                if item == "*":
                    continue
                try:
                    ip_network(str(item), strict=False)
                except ValueError:
                    raise ValueError(f"forwarded_allow_ips: {item!r} is not an IP address, "
                                     "a network (10.0.0.0/8) or *") from None
        return items

    @field_validator("basemap", mode="before")
    @classmethod
    def _no_basemap_when_empty(cls, value: Any) -> Any:
        # NETGIS_BASEMAP= (empty) means none, not the current directory
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("bead_availability", mode="before")
    @classmethod
    def _split_paths(cls, value: Any) -> Any:
        # NETGIS_BEAD_AVAILABILITY=a.csv,b.csv; empty: none
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("bead_locations", mode="before")
    @classmethod
    def _no_locations_when_empty(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _bead_files_together(self) -> Settings:
        if bool(self.bead_availability) != (self.bead_locations is not None):
            raise ValueError("NETGIS_BEAD_AVAILABILITY and NETGIS_BEAD_LOCATIONS go together: "
                             "set both (the bead_classes collection) or neither")
        return self

    @field_validator("oidc_issuer", "oidc_audience", "oidc_jwks", mode="before")
    @classmethod
    def _no_oidc_when_empty(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("oidc_write_roles", mode="before")
    @classmethod
    def _split_roles(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _oidc_together(self) -> Settings:
        given = {"NETGIS_OIDC_ISSUER": self.oidc_issuer, "NETGIS_OIDC_AUDIENCE":
                 self.oidc_audience, "NETGIS_OIDC_JWKS": self.oidc_jwks}
        missing = [name for name, value in given.items() if value is None]
        if missing and len(missing) < len(given):
            raise ValueError("single sign-on needs NETGIS_OIDC_ISSUER, NETGIS_OIDC_AUDIENCE "
                             "and NETGIS_OIDC_JWKS together; missing: " + ", ".join(missing))
        if self.oidc_jwks is not None:
            self.oidc_jwks = check_jwks_source(self.oidc_jwks)
        return self

    @property
    def oidc(self) -> bool:
        """Whether bearer tokens are accepted (NETGIS_OIDC_ISSUER, _AUDIENCE, _JWKS set)."""
        return self.oidc_issuer is not None

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: Any) -> Any:
        # the plain secrets end here: only their digests reach the settings
        if isinstance(value, str):
            return parse_api_keys(value)
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return parse_api_keys(value)
        return value
