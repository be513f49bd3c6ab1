"""TLS and reverse proxies, on real ``netgis serve`` processes over real ports.

- ``--ssl-certfile``/``--ssl-keyfile`` (a self-signed certificate made here with
  ``cryptography``): an https client that trusts only that certificate gets 200 and
  ``Strict-Transport-Security``; a plain http server sends no such header.
- Forwarded headers count from the trusted proxy only (``NETGIS_FORWARDED_ALLOW_IPS``).
  The test process connects from 127.0.0.1 (the trusted proxy) or binds 127.0.0.2 (an
  untrusted client; all of 127/8 is loopback on Linux): the OGC links, the landing page
  links, HSTS and the client address that rate limits count by follow the forwarded
  headers of the first and ignore those of the second.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from netgis.io import read_dataset
from netgis.storage import Repository
from tests.api.helpers import ServerProcess
from tests.helpers import EXAMPLES_DIR

ONE_YEAR = "max-age=31536000"
FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "gis.example.org",
             "X-Forwarded-For": "203.0.113.7"}


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "netgis test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return cert_file, key_file


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SpatiaLite file holding the ring_spur example (six premises: pages of two)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('tls') / 'netgis.db'}"
    with Repository.from_url(url) as repo:
        repo.init()
        repo.load_dataset(read_dataset(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg"))
    return url


@pytest.fixture(scope="module")
def proxied(database: str, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[ServerProcess]:
    """Plain http, trusting 127.0.0.1 as its reverse proxy; one new analysis per client."""
    env = {"NETGIS_DATABASE_URL": database, "NETGIS_FORWARDED_ALLOW_IPS": "127.0.0.1",
           "NETGIS_ANALYSIS_BURST": "1", "NETGIS_ANALYSIS_RATE_PER_MINUTE": "0.01",
           "NETGIS_STORED_RESULTS": "false"}
    with ServerProcess(env, tmp_path_factory.mktemp("proxied") / "serve.log") as server:
        yield server


def _client(server: ServerProcess, source: str, **kw: Any) -> httpx.Client:
    """A client of ``server`` whose connections come from address ``source``."""
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=server.url, transport=transport, timeout=60, **kw)


def test_tls_server_sends_hsts(database: str, tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    env = {"NETGIS_DATABASE_URL": database}
    args = ["--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]
    with ServerProcess(env, tmp_path / "serve.log", args) as server:
        url = f"https://127.0.0.1:{server.port}"
        trust = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=url, verify=trust, timeout=60) as https:
            r = https.get("/health")
            assert r.status_code == 200 and r.headers["strict-transport-security"] == ONE_YEAR
            landing = https.get("/", params={"f": "json"}).json()
            # the links say https: the scheme the request came by
            assert {link["href"].split("/")[0] for link in landing["links"]} == {"https:"}
        # a client that does not trust the certificate is refused by its own TLS check
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"), \
                httpx.Client(verify=True, timeout=60) as strict:
            strict.get(f"{url}/health")
    assert f"netgis serves {database} on https://127.0.0.1:{server.port}/" in \
        server.log.read_text()


def test_tls_files_that_do_not_load_are_refused(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from netgis.cli import app

    cert, _ = _certificate(tmp_path)
    wrong = tmp_path / "wrong.pem"
    wrong.write_text("not a key\n")
    runner = CliRunner()
    done = runner.invoke(app, ["serve", "--ssl-certfile", str(cert), "--ssl-keyfile",
                               str(wrong)])
    assert done.exit_code == 2 and "--ssl-certfile" in done.stderr, done.output
    assert done.exception is None or isinstance(done.exception, SystemExit)
    alone = runner.invoke(app, ["serve", "--ssl-keyfile", str(wrong)])
    assert alone.exit_code == 2 and "--ssl-keyfile needs --ssl-certfile" in alone.stderr


def test_plain_http_has_no_hsts(proxied: ServerProcess) -> None:
    with _client(proxied, "127.0.0.2") as client:
        r = client.get("/health")
    assert r.status_code == 200 and "strict-transport-security" not in r.headers


@pytest.mark.parametrize("trusted", [True, False], ids=["trusted-proxy", "untrusted-client"])
def test_forwarded_scheme_and_host_only_from_the_trusted_proxy(
        proxied: ServerProcess, trusted: bool) -> None:
    origin = "https://gis.example.org" if trusted else proxied.url
    with _client(proxied, "127.0.0.1" if trusted else "127.0.0.2") as client:
        items = client.get("/collections/premises/items", params={"limit": 2},
                           headers=FORWARDED)
        landing = client.get("/", params={"f": "json"}, headers=FORWARDED)
    assert items.status_code == landing.status_code == 200
    links = {link["rel"]: link["href"] for link in items.json()["links"]}
    assert links["next"].startswith(f"{origin}/collections/premises/items?")
    assert links["self"].startswith(f"{origin}/collections/premises/items")
    hrefs = [link["href"] for link in landing.json()["links"]]
    assert hrefs and all(h.startswith(f"{origin}/") for h in hrefs), hrefs
    # https as the trusted proxy says: HSTS; from anyone else the request stays plain http
    assert landing.headers.get("strict-transport-security") == (ONE_YEAR if trusted else None)


def test_forwarded_host_that_is_not_a_host_is_ignored(proxied: ServerProcess) -> None:
    with _client(proxied, "127.0.0.1") as client:
        r = client.get("/", params={"f": "json"},
                       headers={"X-Forwarded-Host": "evil.example/x?", "X-Forwarded-Proto":
                                "http"})
    assert {link["href"].split("/")[2] for link in r.json()["links"]} == \
        {f"127.0.0.1:{proxied.port}"}


def test_client_address_from_the_trusted_proxy_only(proxied: ServerProcess) -> None:
    """One new analysis per client address (burst 1): behind the trusted proxy each
    forwarded address is a client of its own; an untrusted client cannot make itself new
    ones by sending X-Forwarded-For."""
    def coverage(client: httpx.Client, drop_m: int, forwarded_for: str) -> int:
        return client.get("/analysis/coverage", params={"drop_m": drop_m},
                          headers={"X-Forwarded-For": forwarded_for}).status_code

    with _client(proxied, "127.0.0.1") as proxy:
        assert coverage(proxy, 101, "203.0.113.10") == 200
        assert coverage(proxy, 102, "203.0.113.10") == 429  # that client's one token spent
        assert coverage(proxy, 103, "203.0.113.11") == 200  # another client behind it
    with _client(proxied, "127.0.0.3") as direct:
        assert coverage(direct, 104, "198.51.100.1") == 200
        # the same connection's address, whatever it claims to forward
        assert coverage(direct, 105, "198.51.100.2") == 429


@pytest.mark.parametrize(("max_age", "header"), [(600, "max-age=600"), (0, None)])
def test_hsts_max_age_is_configurable(database: str, max_age: int, header: str | None) -> None:
    from fastapi.testclient import TestClient

    from netgis.api.app import create_app
    from tests.api.helpers import make_settings

    app = create_app(make_settings(database, hsts_max_age=max_age))
    with TestClient(app, base_url="https://testserver") as client:
        r = client.get("/health")
    assert r.status_code == 200 and r.headers.get("strict-transport-security") == header
