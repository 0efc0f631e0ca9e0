"""The supervisor's probe transport: plain HTTP without building a TLS context; https verified.

Both against real servers on loopback: a plain asyncio HTTP server, and a TLS one whose
certificate (self-signed, made here) no CA vouches for.
"""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cortex_server.services.probe_transport import ProbeTransport


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
    await writer.drain()
    writer.close()


def _self_signed(folder: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


@pytest.fixture
async def servers(tmp_path: Path) -> AsyncIterator[tuple[int, int]]:
    plain = await asyncio.start_server(_answer, "127.0.0.1", 0)
    tls = await asyncio.start_server(_answer, "127.0.0.1", 0, ssl=_self_signed(tmp_path))
    try:
        yield plain.sockets[0].getsockname()[1], tls.sockets[0].getsockname()[1]
    finally:
        for server in (plain, tls):
            server.close()


async def test_plain_http_builds_no_tls_context_and_https_is_verified(servers: tuple[int, int]) -> None:
    plain_port, tls_port = servers
    transport = ProbeTransport()
    async with httpx.AsyncClient(transport=transport, trust_env=False, timeout=5) as client:
        for _ in range(3):
            assert (await client.get(f"http://127.0.0.1:{plain_port}/health")).text == "ok"
        assert transport._tls is None  # loopback engines: the verifying pool is never built

        # an https engine whose certificate no CA vouches for is refused, not trusted
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get(f"https://127.0.0.1:{tls_port}/health")
        assert transport._tls is not None
