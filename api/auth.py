"""API keys: ``NETGIS_API_KEYS`` parsed into named, scoped, hashed keys, and the check of one.

``NETGIS_API_KEYS`` is a comma separated list of entries; each entry is one of

``SECRET``
    A bare key: read and write, named ``key<N>`` after its 1-based position in
    the list (``key1``, ``key2``, ...), the name audit entries carry.
``NAME:SCOPE:SECRET``
    A named key. ``SCOPE`` is ``read`` (read only) or ``write`` (read and write).
    The secret is everything after the second colon, so it may hold colons.
``NAME:SCOPE:sha256=HEX``
    A named key given by the SHA-256 digest of its secret (64 hex digits,
    e.g. ``printf %s "$SECRET" | sha256sum``), so the configuration holds no
    secret at all. A bare ``sha256=HEX`` is a read-write key given by digest.

Names are letters, digits, ``.``, ``_`` and ``-`` (at most 64); ``cli`` and
``local`` are reserved for writes that come from the command line and from
Python (:data:`RESERVED_NAMES`). Names and secrets must each be unique.

Only the SHA-256 digest of each secret is kept (never the secret), and a
presented key is checked against every configured digest with
:func:`hmac.compare_digest`, without stopping at a match: how long the check
takes says nothing about which key, or how much of one, was right. Errors
name an entry by its position, never by its text.

Examples
--------
>>> keys = parse_api_keys("s3cret, viewer:read:pa:ss")
>>> keys
[ApiKey(name='key1', scope='write'), ApiKey(name='viewer', scope='read')]
>>> authenticate(keys, "pa:ss").name, authenticate(keys, "nope")
('viewer', None)
>>> keys[1].allows("write")
False
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

Scope = Literal["read", "write"]
SCOPES: tuple[Scope, ...] = ("read", "write")
#: Actor names of writes that do not come through the API; no key may take them.
RESERVED_NAMES = frozenset({"cli", "local"})
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_DIGEST = re.compile(r"sha256=([0-9A-Fa-f]{64})")
_DIGEST_PREFIX = "sha256="


class Principal(Protocol):
    """Who a request speaks for: an :class:`ApiKey`, or the subject of a bearer token
    (:class:`api.oidc.TokenPrincipal`)."""

    @property
    def name(self) -> str:
        """The name audit entries and the request log carry."""

    def allows(self, scope: Scope) -> bool:
        """Whether it may do what ``scope`` names."""


@dataclass(frozen=True)
class ApiKey:
    """One configured key: its name, its scope and the SHA-256 digest of its secret.

    The digest stays out of ``repr`` (and so out of ``repr(settings)`` and logs):
    a digest of a short secret can be guessed offline.
    """

    name: str
    scope: Scope
    digest: bytes = field(repr=False)

    def allows(self, scope: Scope) -> bool:
        """Whether this key may do what ``scope`` names (``write`` includes ``read``)."""
        return self.scope == "write" or scope == "read"


def digest_of(secret: str | bytes) -> bytes:
    """The SHA-256 digest of a secret (text is taken as UTF-8).

    Examples
    --------
    >>> digest_of("abc").hex()[:16]
    'ba7816bf8f01cfea'
    """
    raw = secret.encode() if isinstance(secret, str) else secret
    return hashlib.sha256(raw).digest()


def _secret_digest(secret: str, where: str) -> bytes:
    if not secret:
        raise ValueError(f"{where}: the secret is empty")
    if secret.startswith(_DIGEST_PREFIX):
        match = _DIGEST.fullmatch(secret)
        if match is None:
            raise ValueError(f"{where}: sha256= must be followed by 64 hex digits")
        return bytes.fromhex(match.group(1))
    return digest_of(secret)


def _parse_entry(entry: str, position: int) -> ApiKey:
    where = f"entry {position} of NETGIS_API_KEYS"
    if ":" not in entry:
        return ApiKey(f"key{position}", "write", _secret_digest(entry, where))
    parts = entry.split(":", 2)
    if len(parts) != 3:
        raise ValueError(f"{where}: expected NAME:SCOPE:SECRET (a bare key has no colon)")
    name, scope, secret = (p.strip() for p in parts)
    if not _NAME.fullmatch(name):
        raise ValueError(f"{where}: a key name is 1 to 64 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")
    if name in RESERVED_NAMES:
        raise ValueError(f"{where}: the name {name!r} is reserved for writes outside the API")
    if scope not in SCOPES:
        raise ValueError(f"{where}: the scope is read or write")
    return ApiKey(name, scope, _secret_digest(secret, where))


def parse_api_keys(value: str | Iterable[str]) -> list[ApiKey]:
    """The keys of a ``NETGIS_API_KEYS`` value (a comma separated string or its entries).

    Raises
    ------
    ValueError
        For an entry that does not parse, a reserved or repeated name, or a
        secret given twice; the message names the entry's position, not its text.
    """
    entries = value.split(",") if isinstance(value, str) else list(value)
    keys: list[ApiKey] = []
    names: dict[str, int] = {}
    digests: dict[bytes, int] = {}
    for position, raw in enumerate((e.strip() for e in entries if e.strip()), start=1):
        key = _parse_entry(raw, position)
        if key.name in names:
            raise ValueError(f"entry {position} of NETGIS_API_KEYS: the name {key.name!r} is "
                             f"taken by entry {names[key.name]}")
        if key.digest in digests:
            # one secret under two names would make audit entries ambiguous
            raise ValueError(f"entry {position} of NETGIS_API_KEYS has the same secret as "
                             f"entry {digests[key.digest]}")
        names[key.name] = position
        digests[key.digest] = position
        keys.append(key)
    return keys


def _header_bytes(presented: str) -> bytes:
    # HTTP headers arrive decoded as latin-1: encoding back gives the bytes the client sent,
    # so a UTF-8 secret sent as UTF-8 matches its digest
    try:
        return presented.encode("latin-1")
    except UnicodeEncodeError:
        return presented.encode()


def authenticate(keys: Sequence[ApiKey], presented: str) -> ApiKey | None:
    """The configured key whose secret is ``presented``, or None.

    Compares the digest of ``presented`` with every configured digest in
    constant time and never stops early, so the time taken does not depend on
    which key (if any) matched.
    """
    wanted = digest_of(_header_bytes(presented))
    found: ApiKey | None = None
    for key in keys:
        if hmac.compare_digest(wanted, key.digest):
            found = key
    return found
