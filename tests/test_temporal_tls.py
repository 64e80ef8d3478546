"""A secured Temporal connection: TLS with a private CA and server name, mTLS, refusals.

A TLS-terminating proxy (asyncio + ssl, below) sits in front of the session's dev server.
It presents a certificate for `temporal.test` signed by a test CA and requires a client
certificate signed by the same CA, as an mTLS-secured cluster's frontend does. rehabflow's
one connect function (worker, API and command line all use it) is pointed at the proxy.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.testing import WorkflowEnvironment

from core.secrets import Secrets
from core.settings import Settings
from core.temporal import connect, tls_config

SERVER_NAME = "temporal.test"


@dataclass
class Pki:
    ca_file: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path  # a client certificate from a CA the proxy does not trust
    rogue_key: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName(SERVER_NAME), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca_key, rogue_ca_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = _cert("rehabflow test CA", ca_key, None, ca_key, ca=True)
    rogue_ca = _cert("someone else's CA", rogue_ca_key, None, rogue_ca_key, ca=True)
    server_key, client_key, rogue_key = (ec.generate_private_key(ec.SECP256R1()) for _ in "abc")
    return Pki(
        ca_file=_pem(d / "ca.pem", ca),
        server_cert=_pem(
            d / "server.pem", _cert(SERVER_NAME, server_key, ca.subject, ca_key, server=True)
        ),
        server_key=_write_key(d / "server.key", server_key),
        client_cert=_pem(
            d / "client.pem", _cert("rehabflow-worker", client_key, ca.subject, ca_key)
        ),
        client_key=_write_key(d / "client.key", client_key),
        rogue_cert=_pem(
            d / "rogue.pem", _cert("rehabflow-worker", rogue_key, rogue_ca.subject, rogue_ca_key)
        ),
        rogue_key=_write_key(d / "rogue.key", rogue_key),
    )


@dataclass
class TlsProxy:
    address: str
    # Common names of the client certificates of accepted connections.
    clients: list[str] = field(default_factory=list)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


@pytest_asyncio.fixture(scope="module")
async def tls_proxy(pki: Pki, dev_env: WorkflowEnvironment) -> AsyncIterator[TlsProxy]:
    """mTLS in front of the dev server: TLS 1.2+, client certificate required, HTTP/2 ALPN."""
    upstream_host, _, upstream_port = dev_env.client.service_client.config.target_host.rpartition(
        ":"
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca_file))
    context.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["h2"])  # gRPC
    proxy = TlsProxy(address="")
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peercert") or {}
        proxy.clients.extend(
            v for rdn in peer.get("subject", ()) for k, v in rdn if k == "commonName"
        )
        up_reader, up_writer = await asyncio.open_connection(upstream_host, int(upstream_port))
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    def track(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(handle(reader, writer))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(track, "127.0.0.1", 0, ssl=context)
    proxy.address = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield proxy
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _settings(proxy: TlsProxy, test_secrets: Secrets, **tls: object) -> Settings:
    return Settings(
        temporal={"address": proxy.address, "namespace": "default", "tls": tls},
        database={"url": "postgresql+asyncpg://unused@127.0.0.1/unused"},
        security={
            "payload_keys": test_secrets.payload_keys,
            "pin_encryption_keys": test_secrets.pin_encryption_keys,
            "pin_lookup_key": base64.urlsafe_b64encode(test_secrets.pin_lookup_key).decode(),
        },
    )


async def test_the_right_client_certificate_connects_through_mtls(
    pki: Pki, tls_proxy: TlsProxy, test_secrets: Secrets
) -> None:
    settings = _settings(
        tls_proxy,
        test_secrets,
        ca_file=pki.ca_file,
        server_name=SERVER_NAME,
        client_cert_file=pki.client_cert,
        client_key_file=pki.client_key,
    )
    client = await connect(settings, test_secrets)
    # A real call through the proxy: the namespace the settings name exists on the server.
    described = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace="default")
    )
    assert described.namespace_info.name == "default"
    assert "rehabflow-worker" in tls_proxy.clients


@pytest.mark.parametrize(
    "tls",
    [
        pytest.param("no client certificate", id="no-client-cert"),
        pytest.param("client certificate of another CA", id="untrusted-client-cert"),
        pytest.param("server name not in the certificate", id="wrong-server-name"),
        pytest.param("system roots only", id="untrusted-server"),
    ],
)
async def test_a_connection_without_the_right_credentials_is_refused(
    pki: Pki, tls_proxy: TlsProxy, test_secrets: Secrets, tls: str
) -> None:
    all_options: dict[str, dict[str, object]] = {
        "no client certificate": {"ca_file": pki.ca_file, "server_name": SERVER_NAME},
        "client certificate of another CA": {
            "ca_file": pki.ca_file,
            "server_name": SERVER_NAME,
            "client_cert_file": pki.rogue_cert,
            "client_key_file": pki.rogue_key,
        },
        "server name not in the certificate": {
            "ca_file": pki.ca_file,
            "server_name": "frontend.elsewhere.test",
            "client_cert_file": pki.client_cert,
            "client_key_file": pki.client_key,
        },
        "system roots only": {
            "client_cert_file": pki.client_cert,
            "client_key_file": pki.client_key,
        },
    }
    settings = _settings(tls_proxy, test_secrets, **all_options[tls])
    accepted_before = list(tls_proxy.clients)
    with pytest.raises(RuntimeError):
        await connect(settings, test_secrets)
    assert tls_proxy.clients == accepted_before


async def test_plain_connection_to_the_tls_frontend_is_refused(
    tls_proxy: TlsProxy, test_secrets: Secrets
) -> None:
    with pytest.raises(RuntimeError):
        await connect(_settings(tls_proxy, test_secrets, enabled=False), test_secrets)


def test_client_certificate_and_key_go_together(pki: Pki) -> None:
    with pytest.raises(ValueError, match="go together"):
        Settings(temporal={"tls": {"client_cert_file": pki.client_cert}})


def test_an_api_key_turns_tls_on_with_the_system_roots() -> None:
    settings = Settings(temporal={"address": "rehab.tmprl.cloud:7233", "api_key": "k"})
    assert tls_config(settings.temporal) is not False
    assert tls_config(Settings().temporal) is False
