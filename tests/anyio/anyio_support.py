"""Helpers and fixtures shared by the modbus_anyio tests (imported by conftest.py)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import re
import shutil
import subprocess
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat import asn1
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from modbus_anyio import ROLE_OID
from modbus_core import NEED_DATA, ClientConnection, Framer, MbapFramer, Request, RequestPdu, Response


@pytest.fixture(
    params=[
        pytest.param("asyncio", id="asyncio"),
        # uvloop's transports are not asyncio's classes: the asyncio-native paths must not assume they are.
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
        pytest.param("trio", id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> object:
    return request.param


# ---------------------------------------------------------------------------
# certificates


@dataclasses.dataclass(frozen=True)
class ClientCertificate:
    cert_pem: bytes
    key_pem: bytes
    der: bytes

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        cert = directory / f"{name}.crt"
        key = directory / f"{name}.key"
        cert.write_bytes(self.cert_pem)
        key.write_bytes(self.key_pem)
        return cert, key


IssueClient = Callable[..., ClientCertificate]


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_cert(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("localhost", "127.0.0.1", "::1")


def issue_client_certificate(
    ca: trustme.CA,
    name: str = "client",
    *,
    roles: tuple[bytes, ...] = (),
) -> ClientCertificate:
    """A client certificate signed by *ca*, with the Modbus role extension
    holding each DER value of *roles* (trustme cannot add custom extensions)."""
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    placeholder_oids = []
    for index, value in enumerate(roles):
        # cryptography refuses the same extension twice: add the extra ones
        # under an OID of the same length and rename them in the DER below.
        oid = ROLE_OID if index == 0 else f"{ROLE_OID[:-1]}{index + 1}"
        placeholder_oids.append(oid)
        builder = builder.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), value), critical=False)
    certificate = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    der = certificate.public_bytes(serialization.Encoding.DER)
    if len(roles) > 1:
        role_oid = asn1.encode_der(x509.ObjectIdentifier(ROLE_OID))
        for oid in placeholder_oids[1:]:
            der = der.replace(asn1.encode_der(x509.ObjectIdentifier(oid)), role_oid)
    return ClientCertificate(
        cert_pem=certificate.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        der=der,
    )


def role_value(role: str) -> bytes:
    """The DER UTF8String of *role*, as the role extension holds it."""
    return asn1.encode_der(role)


@pytest.fixture(scope="session")
def issue_client(ca: trustme.CA) -> IssueClient:
    def issue(name: str = "client", *, role: str | None = None, roles: tuple[bytes, ...] = ()) -> ClientCertificate:
        if role is not None:
            roles = (role_value(role), *roles)
        return issue_client_certificate(ca, name, roles=roles)

    return issue


# ---------------------------------------------------------------------------
# serial: socat pseudo-terminal pairs

_PTY = re.compile(rb"PTY is (\S+)")


@dataclasses.dataclass(frozen=True)
class PtyPair:
    server: str
    client: str
    pid: int


def start_socat() -> tuple[subprocess.Popen[bytes], PtyPair]:
    process = subprocess.Popen(
        ["socat", "-d", "-d", "pty,raw,echo=0", "pty,raw,echo=0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    paths: list[str] = []
    deadline = time.monotonic() + 5
    while len(paths) < 2 and time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        match = _PTY.search(line)
        if match:
            paths.append(match.group(1).decode())
    if len(paths) < 2:
        process.kill()
        process.wait(timeout=5)
        raise RuntimeError("socat did not report two pseudo-terminals")
    # socat prints the ptys before it starts transferring: wait for that line.
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line or b"starting data transfer loop" in line:
            break
    return process, PtyPair(paths[0], paths[1], process.pid)


@pytest.fixture
def pty_pair() -> Iterator[PtyPair]:
    if shutil.which("socat") is None:
        pytest.skip("socat is not installed")
    process, pair = start_socat()
    try:
        yield pair
    finally:
        process.kill()
        process.wait(timeout=5)
        if process.stderr is not None:
            process.stderr.close()


# ---------------------------------------------------------------------------
# a small Modbus client on modbus_core, for driving the servers


class Client:
    """Requests over an anyio byte stream, answers matched by the core's ClientConnection."""

    def __init__(self, stream: anyio.abc.ByteStream, framer: Framer | None = None) -> None:
        self.stream = stream
        self.connection = ClientConnection(framer if framer is not None else MbapFramer())

    async def send(self, pdu: RequestPdu, unit: int = 1) -> Request:
        request = self.connection.request(pdu, unit)
        await self.stream.send(self.connection.send(request))
        return request

    async def response(self) -> Response:
        while True:
            event = self.connection.next_event()
            if event is NEED_DATA:
                data = await self.stream.receive()
                self.connection.receive_data(data, anyio.current_time())
                continue
            if isinstance(event, Response):
                return event
            raise AssertionError(f"unexpected {event!r}")

    async def call(self, pdu: RequestPdu, unit: int = 1) -> Any:
        """The Response (typed Any, so that tests read the fields of the PDU they expect)."""
        await self.send(pdu, unit)
        return await self.response()

    async def aclose(self) -> None:
        await self.stream.aclose()


async def connect(port: int, host: str = "127.0.0.1", framer: Framer | None = None) -> Client:
    return Client(await anyio.connect_tcp(host, port), framer)


async def read_all_until_closed(stream: anyio.abc.ByteStream) -> bytes:
    """Every byte until the peer closes (bounded by the caller's timeout)."""
    data = b""
    try:
        while True:
            data += await stream.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        return data


class SerialEnd:
    """The client's end of a pty pair, non-blocking, waited on with anyio."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.fd, view) :]
            except BlockingIOError:
                await anyio.wait_writable(self.fd)

    async def read(self, size: int) -> bytes:
        """Exactly *size* bytes (bounded by the caller's timeout)."""
        data = b""
        while len(data) < size:
            await anyio.wait_readable(self.fd)
            try:
                data += os.read(self.fd, size - len(data))
            except BlockingIOError:
                continue
        return data

    async def read_for(self, seconds: float) -> bytes:
        """Whatever arrives within *seconds*."""
        data = b""
        with anyio.move_on_after(seconds):
            while True:
                await anyio.wait_readable(self.fd)
                with contextlib.suppress(BlockingIOError):
                    data += os.read(self.fd, 4096)
        return data

    async def call(self, connection: ClientConnection, pdu: RequestPdu, unit: int = 1) -> Any:
        await self.write(connection.send(connection.request(pdu, unit)))
        while True:
            event = connection.next_event()
            if event is NEED_DATA:
                await anyio.wait_readable(self.fd)
                with contextlib.suppress(BlockingIOError):
                    connection.receive_data(os.read(self.fd, 4096), anyio.current_time())
                continue
            if isinstance(event, Response):
                return event
            raise AssertionError(f"unexpected {event!r}")

    def close(self) -> None:
        os.close(self.fd)
