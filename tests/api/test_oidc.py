"""Single sign-on (issue 32): OpenID Connect bearer tokens, checked against a JWKS.

The test makes its own RSA keys and JWKS, served as a file and by a small HTTP
server on a real port; the app runs over a real port (uvicorn) with closed reads.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from pydantic import ValidationError

from netgis.api.app import create_app
from netgis.api.settings import Settings
from tests.api.helpers import API_KEY, LiveServer, make_settings

ISSUER = "https://sso.example.org/realms/netgis"
AUDIENCE = "netgis-api"
WRITE_ROLE = "netgis-write"
ITEMS = "/collections/nodes/items"


@dataclass(frozen=True)
class Key:
    kid: str
    private: rsa.RSAPrivateKey

    def jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _key(kid: str) -> Key:
    return Key(kid, rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="module")
def keys() -> dict[str, Key]:
    """k1 is published from the start, k2 only after a rotation, stranger never."""
    return {kid: _key(kid) for kid in ("k1", "k2", "stranger")}


def jwks(*published: Key) -> str:
    return json.dumps({"keys": [k.jwk() for k in published]})


def token(key: Key, kid: str | None = None, alg: str = "RS256", **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 300,
               "realm_access": {"roles": []}, **claims}
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, key.private, algorithm=alg, headers={"kid": kid or key.kid})


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any]) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "mallory", "exp": now + 300,
              "realm_access": {"roles": [WRITE_ROLE]}}
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def alg_none(keys: dict[str, Key]) -> str:
    return _unsigned({"alg": "none", "kid": "k1", "typ": "JWT"}) + "."


def hs_with_public_key(keys: dict[str, Key]) -> str:
    # the HS/RS confusion: an HMAC over the token with the published RSA key as its secret
    signing_input = _unsigned({"alg": "HS256", "kid": "k1", "typ": "JWT"})
    mac = hmac.new(keys["k1"].public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def _settings(tmp: Path, jwks_source: str, **overrides: Any) -> Settings:
    return make_settings(f"sqlite:///{tmp / 'api.db'}", open_reads=False,
                         oidc_issuer=ISSUER, oidc_audience=AUDIENCE, oidc_jwks=jwks_source,
                         oidc_roles_claim="realm_access.roles", **overrides)


@pytest.fixture(scope="module")
def jwks_file(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, Key]) -> Path:
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(jwks(keys["k1"]))
    return path


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, jwks_file: Path) -> Iterator[httpx.Client]:
    """The app over a real port, closed reads, the JWKS in a file (read again at once on an
    unknown kid)."""
    settings = _settings(tmp_path_factory.mktemp("db"), str(jwks_file),
                         oidc_jwks_min_refresh_s=0)
    with LiveServer(create_app(settings)) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def node(node_id: str) -> dict[str, Any]:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [8.69, 50.12]},
            "properties": {"node_id": node_id, "kind": "cabinet"}}


# ------------------------------------------------------------------ the rejection table

REJECTED: dict[str, tuple[Callable[[dict[str, Key]], str], str]] = {
    "expired": (lambda k: token(k["k1"], exp=int(time.time()) - 120), "expired"),
    "not yet valid": (lambda k: token(k["k1"], nbf=int(time.time()) + 120), "not valid yet"),
    "wrong audience": (lambda k: token(k["k1"], aud="another-app"), "audience"),
    "wrong issuer": (lambda k: token(k["k1"], iss="https://evil.example.org"), "issued"),
    "no exp": (lambda k: token(k["k1"], exp=None), "'exp'"),
    "unknown key": (lambda k: token(k["stranger"]), "does not publish"),
    "alg none": (alg_none, "algorithm"),
    "HS256 with the public key": (hs_with_public_key, "algorithm"),
    "bad signature": (lambda k: token(k["stranger"], kid="k1"), "signature does not verify"),
    "malformed": (lambda k: "not-a.jwt", "malformed"),
}


@pytest.mark.parametrize("case", REJECTED)
def test_invalid_tokens_are_401(api: httpx.Client, keys: dict[str, Key], case: str) -> None:
    make, why = REJECTED[case]
    value = make(keys)
    for method, path, body in (("GET", ITEMS, None), ("POST", ITEMS, node("x1"))):
        r = api.request(method, path, json=body, headers=bearer(value))
        assert r.status_code == 401, (case, method, r.text)
        assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert r.headers["content-type"].startswith("application/problem+json")
        assert why in r.json()["detail"]
        assert value not in r.text


# ------------------------------------------------------------------ what a valid token may do


def test_a_token_reads_and_needs_the_write_role_to_write(api: httpx.Client,
                                                         keys: dict[str, Key]) -> None:
    # closed reads: without credentials 401, offering both
    r = api.get(ITEMS)
    assert r.status_code == 401
    assert "Bearer" in r.headers["www-authenticate"]
    assert "X-API-Key" in r.headers["www-authenticate"]

    reader = token(keys["k1"], sub="bob")
    assert api.get(ITEMS, headers=bearer(reader)).status_code == 200
    r = api.post(ITEMS, json=node("n-bob"), headers=bearer(reader))
    assert r.status_code == 403
    assert WRITE_ROLE in r.json()["detail"]
    assert api.get(f"{ITEMS}/n-bob", headers=bearer(reader)).status_code == 404

    writer = token(keys["k1"], realm_access={"roles": ["viewer", WRITE_ROLE]})
    r = api.post(ITEMS, json=node("n-alice"), headers=bearer(writer))
    assert r.status_code == 201, r.text
    entries = api.get("/audit", params={"id": "n-alice"}, headers=bearer(reader)).json()
    assert [e["actor"] for e in entries["entries"]] == ["oidc:alice"]

    # a key and a token together: refused, whichever would do
    r = api.post(ITEMS, json=node("n-both"), headers={**bearer(writer), "X-API-Key": API_KEY})
    assert r.status_code == 400
    assert "not both" in r.json()["detail"]
    # the key alone still writes, under its own name
    r = api.post(ITEMS, json=node("n-key"), headers={"X-API-Key": API_KEY})
    assert r.status_code == 201
    entries = api.get("/audit", params={"id": "n-key"}, headers=bearer(reader)).json()
    assert [e["actor"] for e in entries["entries"]] == ["key1"]


def test_openapi_offers_the_bearer_scheme_beside_the_key(api: httpx.Client,
                                                         keys: dict[str, Key]) -> None:
    doc = api.get("/openapi.json", headers=bearer(token(keys["k1"]))).json()
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    security = doc["paths"][ITEMS]["post"]["security"]
    assert {"HTTPBearer": []} in security and {"APIKeyHeader": []} in security


# ------------------------------------------------------------------ key rotation


def test_a_new_kid_is_accepted_once_the_jwks_file_has_it(api: httpx.Client, jwks_file: Path,
                                                        keys: dict[str, Key]) -> None:
    rotated = token(keys["k2"])
    assert api.get(ITEMS, headers=bearer(rotated)).status_code == 401
    jwks_file.write_text(jwks(keys["k1"], keys["k2"]))
    assert api.get(ITEMS, headers=bearer(rotated)).status_code == 200
    assert api.get(ITEMS, headers=bearer(token(keys["k1"]))).status_code == 200


class JwksServer:
    """A JWKS over HTTP on a loopback port; counts the requests it answers."""

    def __init__(self, body: str) -> None:
        self.body = body
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                raw = outer.body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/certs"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> JwksServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_jwks_url_is_read_again_on_a_new_kid_but_not_for_a_flood(
        tmp_path: Path, keys: dict[str, Key]) -> None:
    interval = 2.0
    with JwksServer(jwks(keys["k1"])) as provider, \
            LiveServer(create_app(_settings(tmp_path, provider.url,
                                            oidc_jwks_min_refresh_s=interval))) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get(ITEMS, headers=bearer(token(keys["k1"]))).status_code == 200
        first_read = time.monotonic()
        assert provider.hits == 1
        provider.body = jwks(keys["k1"], keys["k2"])
        # twenty made-up kids in a row: at most one more read of the JWKS
        for n in range(20):
            r = client.get(ITEMS, headers=bearer(token(keys["stranger"], kid=f"bogus{n}")))
            assert r.status_code == 401
        assert provider.hits <= 2
        # once the interval has passed, the rotated key's first token reads the JWKS again
        time.sleep(max(0.0, first_read + interval - time.monotonic()) + 0.1)
        assert client.get(ITEMS, headers=bearer(token(keys["k2"]))).status_code == 200
        # read by the flood (if it outlasted the interval) or by k2's first token: not both
        assert provider.hits == 2


# ------------------------------------------------------------------ settings


def test_oidc_settings_go_together(jwks_file: Path) -> None:
    with pytest.raises(ValidationError, match="NETGIS_OIDC_AUDIENCE, NETGIS_OIDC_JWKS"):
        Settings(oidc_issuer=ISSUER)
    with pytest.raises(ValidationError, match="neither an http"):
        Settings(oidc_issuer=ISSUER, oidc_audience=AUDIENCE, oidc_jwks="/no/such/jwks.json")
    with pytest.raises(ValidationError, match="https"):
        Settings(oidc_issuer=ISSUER, oidc_audience=AUDIENCE,
                 oidc_jwks="http://sso.example.org/certs")
    settings = Settings.model_validate({"oidc_issuer": ISSUER, "oidc_audience": AUDIENCE,
                                        "oidc_jwks": str(jwks_file), "oidc_write_roles": "a, b"})
    assert settings.oidc and settings.oidc_write_roles == ["a", "b"]
    assert not Settings().oidc
