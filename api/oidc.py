"""Single sign-on: OpenID Connect bearer tokens (JWTs), checked with PyJWT.

A client sends ``Authorization: Bearer <JWT>``, an access token its OpenID
Connect provider (Keycloak, Azure AD / Entra ID, ...) issued. The token is
accepted when

- its header names an asymmetric algorithm (:data:`ALGORITHMS`: never
  ``none``, never an HMAC ``HS*``, so a token "signed" with the public key as
  an HMAC secret is refused) and a ``kid`` the provider's JWKS publishes;
- its signature verifies with that key (PyJWT: the key fixes the algorithm,
  the header cannot pick another);
- it has ``exp``, ``iss``, ``aud`` and ``sub``, ``iss`` is the configured
  issuer, ``aud`` holds the configured audience, and it is neither expired
  nor not yet valid (``nbf``), with :data:`LEEWAY_S` seconds for clocks.

Any valid token reads; it writes when its roles claim (``roles`` by default, a
dotted path such as ``realm_access.roles`` reaches into nested objects; a list
or a space separated string) holds one of the write roles. Its principal is
named ``oidc:<sub>`` (:data:`ACTOR_PREFIX`): API key names have no colon, so a
token's subject never takes a key's name, ``cli`` or ``local``.

The JWKS (a URL, fetched with PyJWT's :class:`jwt.PyJWKClient`, or a file, read
with :class:`jwt.PyJWKSet`) is kept in memory (:class:`KeySet`) and read again
when a token names a ``kid`` it does not hold, or when it is older than
:data:`MAX_AGE_S`; never more often than once per ``min_refresh_s``, so a flood
of tokens with made-up ``kid`` values costs the provider one request per
interval at most.

Examples
--------
>>> claim_values({"realm_access": {"roles": ["a", "b"]}}, "realm_access.roles")
['a', 'b']
>>> claim_values({"scp": "read write"}, "scp")
['read', 'write']
>>> TokenPrincipal("42", frozenset(), "read").name
'oidc:42'
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt

from netgis.api.auth import Scope

#: Signature algorithms a token may use: asymmetric only.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
              "ES512", "EdDSA")
#: Seconds of clock difference allowed on ``exp``, ``nbf`` and ``iat``.
LEEWAY_S = 30
#: A token's principal (and audit actor) is this prefix and its ``sub``.
ACTOR_PREFIX = "oidc:"
#: The JWKS is read again when it is older than this, at the next token (within the
#: refresh interval's limit), so a key the provider withdrew stops being trusted.
MAX_AGE_S = 3600.0
#: Seconds a JWKS URL may take to answer.
FETCH_TIMEOUT_S = 10.0
#: Longest ``sub`` accepted (it becomes the audit actor).
MAX_SUBJECT = 255
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
log = logging.getLogger("netgis.api")


class InvalidToken(Exception):
    """A bearer token that is refused; the message says why in general terms (never the
    token itself)."""


class KeysUnavailable(Exception):
    """The provider's keys could not be read (and none were read before)."""


@dataclass(frozen=True)
class TokenPrincipal:
    """Who a valid token speaks for: its subject, its roles and the scope they give."""

    subject: str
    roles: frozenset[str]
    scope: Scope

    @property
    def name(self) -> str:
        """The principal's name in logs and the audit log: ``oidc:<sub>``."""
        return ACTOR_PREFIX + self.subject

    def allows(self, scope: Scope) -> bool:
        """Whether this token may do what ``scope`` names (``write`` includes ``read``)."""
        return self.scope == "write" or scope == "read"


def is_url(source: str) -> bool:
    """Whether a ``NETGIS_OIDC_JWKS`` value is a URL (else it is a file path)."""
    return urlsplit(source).scheme.lower() in ("http", "https")


def check_jwks_source(source: str) -> str:
    """``source`` if it is an https URL (http only on the loopback), or a file holding a
    JWKS with at least one usable key; else a ValueError saying what is wrong."""
    source = source.strip()
    if is_url(source):
        parts = urlsplit(source)
        if parts.scheme.lower() == "http" and parts.hostname not in _LOOPBACK:
            raise ValueError("oidc_jwks: a JWKS URL must be https (http only on the loopback)")
        return source
    path = Path(source)
    if not path.is_file():
        raise ValueError(f"oidc_jwks: {source!r} is neither an http(s) URL nor a file")
    try:
        signing_keys(read_jwks_file(path))
    except (OSError, ValueError, jwt.PyJWTError) as error:
        raise ValueError(f"oidc_jwks: the file {source!r} is not a usable JWKS: "
                         f"{error}") from None
    return source


def read_jwks_file(path: Path) -> jwt.PyJWKSet:
    """The JWKS in a file (JSON ``{"keys": [...]}``)."""
    return jwt.PyJWKSet.from_json(path.read_text(encoding="utf-8"))


def signing_keys(jwks: jwt.PyJWKSet) -> dict[str, jwt.PyJWK]:
    """The keys of ``jwks`` a token may be signed with, by ``kid``: keys with a ``kid``,
    for signing (``use`` sig or none), of an asymmetric algorithm."""
    keys = {k.key_id: k for k in jwks.keys
            if k.key_id and k.public_key_use in ("sig", None)
            and k.algorithm_name in ALGORITHMS}
    if not keys:
        raise ValueError("the JWKS holds no asymmetric signing key with a kid")
    return keys


def jwks_loader(source: str) -> Callable[[], jwt.PyJWKSet]:
    """A function reading the JWKS at ``source`` (a URL or a file path) afresh."""
    if is_url(source):
        # the client fetches (http(s) only, no redirects); the caching is KeySet's
        client = jwt.PyJWKClient(source, cache_jwk_set=False, timeout=FETCH_TIMEOUT_S)
        return lambda: client.get_jwk_set(refresh=True)
    path = Path(source)
    return lambda: read_jwks_file(path)


class KeySet:
    """The provider's signing keys, kept and read again on an unknown ``kid``, at most once
    per ``min_refresh_s`` seconds (failed reads count too), and when older than ``max_age_s``.

    Parameters
    ----------
    load
        Reads the JWKS afresh (:func:`jwks_loader`).
    min_refresh_s
        Least time between two reads.
    """

    def __init__(self, load: Callable[[], jwt.PyJWKSet], min_refresh_s: float,
                 max_age_s: float = MAX_AGE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._load = load
        self._min_refresh_s = min_refresh_s
        self._max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: Mapping[str, jwt.PyJWK] = {}
        self._loaded_at: float | None = None
        self._tried_at: float | None = None
        #: How many times the JWKS was read (successfully or not).
        self.reads = 0

    def key(self, kid: str) -> jwt.PyJWK | None:
        """The key named ``kid``, reading the JWKS again if it is unknown or old and the
        last read is long enough ago; None if it is still unknown.

        Raises
        ------
        KeysUnavailable
            When no JWKS could be read yet.
        """
        keys, loaded_at = self._keys, self._loaded_at
        if kid in keys and loaded_at is not None and \
                self._clock() - loaded_at < self._max_age_s:
            return keys[kid]
        with self._lock:
            now = self._clock()
            stale = kid not in self._keys or self._loaded_at is None or \
                now - self._loaded_at >= self._max_age_s
            if stale and (self._tried_at is None or now - self._tried_at >= self._min_refresh_s):
                self._refresh(now)
            if self._loaded_at is None:
                raise KeysUnavailable("the sign-on provider's keys (NETGIS_OIDC_JWKS) "
                                      "cannot be read")
            return self._keys.get(kid)

    def _refresh(self, now: float) -> None:
        self._tried_at = now
        self.reads += 1
        try:
            keys = signing_keys(self._load())
        except (OSError, ValueError, jwt.PyJWTError) as error:
            # the keys read before stay in use; the next try waits for the interval
            log.warning("could not read the OIDC JWKS: %s", error)
            return
        self._keys = keys
        self._loaded_at = now


def claim_values(claims: Mapping[str, Any], path: str) -> list[str]:
    """The strings of a claim: a list, or a space separated string. ``path`` is a claim
    name, or a dotted path into nested objects (``realm_access.roles``) when no claim has
    that whole name; a missing claim is an empty list."""
    value: Any = claims.get(path)
    if path not in claims:
        value = claims
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


#: Why a token is refused, by PyJWT's exception (the first that matches): in general terms.
_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "the bearer token has expired"),
    (jwt.ImmatureSignatureError, "the bearer token is not valid yet"),
    (jwt.InvalidAudienceError, "the bearer token is meant for another audience"),
    (jwt.InvalidIssuerError, "the bearer token was not issued by the configured provider"),
    (jwt.InvalidAlgorithmError, "the bearer token's signature algorithm is not allowed"),
    (jwt.InvalidSignatureError, "the bearer token's signature does not verify"),
    (jwt.DecodeError, "the bearer token is malformed"),
)


class TokenVerifier:
    """Checks bearer tokens against one provider (issuer, audience, keys) and names their
    principal.

    Parameters
    ----------
    issuer, audience
        The ``iss`` a token must have and the audience its ``aud`` must hold.
    keys
        The provider's signing keys.
    roles_claim
        Claim name or dotted path of the token's roles.
    write_roles
        Roles of which one lets a token write.
    """

    def __init__(self, issuer: str, audience: str, keys: KeySet, roles_claim: str,
                 write_roles: Sequence[str]) -> None:
        self.issuer = issuer
        self.audience = audience
        self.keys = keys
        self.roles_claim = roles_claim
        self.write_roles = tuple(write_roles)

    @classmethod
    def of(cls, settings: Any) -> TokenVerifier:
        """The verifier of a :class:`api.settings.Settings` whose OIDC settings are set."""
        return cls(settings.oidc_issuer, settings.oidc_audience,
                   KeySet(jwks_loader(settings.oidc_jwks), settings.oidc_jwks_min_refresh_s),
                   settings.oidc_roles_claim, settings.oidc_write_roles)

    def verify(self, token: str) -> TokenPrincipal:
        """The principal of a valid ``token``.

        Raises
        ------
        InvalidToken
            Saying why the token is refused.
        KeysUnavailable
            When the provider's keys cannot be read.
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("the bearer token is malformed") from None
        if header.get("alg") not in ALGORITHMS:
            # none and HS*: refused before any key is looked up
            raise InvalidToken("the bearer token's signature algorithm is not allowed "
                               "(asymmetric signatures only)")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("the bearer token names no signing key (kid)")
        key = self.keys.key(kid)
        if key is None:
            raise InvalidToken("the bearer token is signed by a key the provider does not "
                               "publish")
        try:
            claims = jwt.decode(token, key=key, algorithms=list(ALGORITHMS),
                                audience=self.audience, issuer=self.issuer, leeway=LEEWAY_S,
                                options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.MissingRequiredClaimError as error:
            raise InvalidToken(f"the bearer token has no {error.claim!r} claim") from None
        except jwt.PyJWTError as error:
            reason = next((text for kind, text in _REASONS if isinstance(error, kind)),
                          "the bearer token is not valid")
            raise InvalidToken(reason) from None
        return self._principal(claims)

    def _principal(self, claims: Mapping[str, Any]) -> TokenPrincipal:
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject or len(subject) > MAX_SUBJECT or \
                not subject.isprintable():
            raise InvalidToken(f"the bearer token's subject (sub) is not 1 to {MAX_SUBJECT} "
                               "printable characters")
        roles = frozenset(claim_values(claims, self.roles_claim))
        scope: Scope = "write" if roles.intersection(self.write_roles) else "read"
        return TokenPrincipal(subject, roles, scope)
