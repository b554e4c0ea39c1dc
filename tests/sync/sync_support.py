"""Fixtures and helpers for the modbus_sync tests (imported by conftest.py).

Certificates: trustme makes the CA and the server certificate; client
certificates with the Modbus role extension are built with cryptography
(trustme cannot add custom extensions).  Serial: socat pseudo-terminal
pairs.  Raw clients: plain sockets speaking through
``modbus_core.ClientConnection``, for the robustness tests that need to
misbehave on purpose.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import re
import select
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat import asn1
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from modbus_anyio import ROLE_OID
from modbus_core import (
    NEED_DATA,
    ClientConnection,
    Device,
    MbapFramer,
    ReadHoldingRegisters,
    Request,
    RequestPdu,
    Response,
    ServerContext,
)

# ---------------------------------------------------------------------------
# datastore


@pytest.fixture
def context() -> ServerContext:
    """One device answering every unit, every table 0..99."""
    return ServerContext(Device.sized(100))


# ---------------------------------------------------------------------------
# certificates


@dataclasses.dataclass(frozen=True)
class ClientCert:
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_cert(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("localhost", "127.0.0.1", "::1")


@pytest.fixture(scope="session")
def cert_dir(tmp_path_factory: pytest.TempPathFactory, ca: trustme.CA, server_cert: trustme.LeafCert) -> Path:
    directory = tmp_path_factory.mktemp("certs")
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    server_cert.cert_chain_pems[0].write_to_path(str(directory / "server.pem"))
    server_cert.private_key_pem.write_to_path(str(directory / "server.key"))
    return directory


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    size = (length.bit_length() + 7) // 8
    return bytes((0x80 | size,)) + length.to_bytes(size, "big")


def _der_read(data: bytes, offset: int) -> tuple[int, int]:
    """(start of content, end) of the DER element at *offset*."""
    first = data[offset + 1]
    if first < 0x80:
        return offset + 2, offset + 2 + first
    size = first & 0x7F
    length = int.from_bytes(data[offset + 2 : offset + 2 + size], "big")
    start = offset + 2 + size
    return start, start + length


def make_client_cert(ca: trustme.CA, directory: Path, name: str, roles: tuple[str, ...] = ()) -> ClientCert:
    """A client certificate signed by *ca*, holding one role extension per entry of *roles*.

    cryptography refuses to add the same extension twice, so extra roles
    go under placeholder OIDs of the same length; the to-be-signed part is
    then patched and signed again, so that the certificate verifies.
    """
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
    )
    placeholders = []
    for index, role in enumerate(roles):
        oid = ROLE_OID if index == 0 else ROLE_OID[:-1] + str(index + 1)
        placeholders.append(oid)
        value = asn1.encode_der(role)
        builder = builder.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), value), critical=False)
    certificate = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    der = certificate.public_bytes(serialization.Encoding.DER)
    if len(placeholders) > 1:
        tbs = certificate.tbs_certificate_bytes
        role_oid = asn1.encode_der(x509.ObjectIdentifier(ROLE_OID))
        for oid in placeholders[1:]:
            tbs = tbs.replace(asn1.encode_der(x509.ObjectIdentifier(oid)), role_oid)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)  # trustme's default key type
        signature = ca_key.sign(tbs, ec.ECDSA(hashes.SHA256()))
        # Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
        content, _ = _der_read(der, 0)
        _, tbs_end = _der_read(der, content)
        _, algorithm_end = _der_read(der, tbs_end)
        algorithm = der[tbs_end:algorithm_end]
        bit_string = b"\x03" + _der_length(len(signature) + 1) + b"\x00" + signature
        body = tbs + algorithm + bit_string
        der = b"\x30" + _der_length(len(body)) + body
        certificate = x509.load_der_x509_certificate(der)
    cert_path = directory / f"{name}.pem"
    key_path = directory / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ClientCert(cert_path, key_path)


@pytest.fixture(scope="session")
def client_certs(ca: trustme.CA, cert_dir: Path) -> dict[str, ClientCert]:
    """Client certificates: "operator" and "viewer" roles, none, and two roles."""
    return {
        "operator": make_client_cert(ca, cert_dir, "operator", ("operator",)),
        "viewer": make_client_cert(ca, cert_dir, "viewer", ("viewer",)),
        "none": make_client_cert(ca, cert_dir, "norole"),
        "two": make_client_cert(ca, cert_dir, "tworoles", ("operator", "engineer")),
    }


# ---------------------------------------------------------------------------
# serial: socat pseudo-terminal pairs

_PTY = re.compile(rb"PTY is (\S+)")


@dataclasses.dataclass(frozen=True)
class PtyPair:
    server: str
    client: str


def _read_line(stream: object, deadline: float) -> bytes:
    fd = stream.fileno()  # type: ignore[attr-defined]
    line = b""
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise TimeoutError("socat said nothing in time")
        chunk = stream.read1(1)  # type: ignore[attr-defined]
        if not chunk:
            break
        line += chunk
    return line


def start_socat(*addresses: str) -> tuple[subprocess.Popen[bytes], list[str]]:
    """socat joining two pseudo-terminals (extra pty options in *addresses*), ready to transfer.

    Returns the process and the two /dev/pts paths; the caller kills it.
    """
    process = subprocess.Popen(
        ["socat", "-d", "-d", *(addresses or ("pty,raw,echo=0", "pty,raw,echo=0"))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 5
        paths: list[str] = []
        while True:
            line = _read_line(process.stderr, deadline)
            if not line:
                raise RuntimeError("socat exited")
            match = _PTY.search(line)
            if match:
                paths.append(match.group(1).decode())
            if b"starting data transfer loop" in line:
                break
        assert len(paths) == 2, paths
    except BaseException:
        stop_socat(process)
        raise
    return process, paths


def stop_socat(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait(timeout=5)
    if process.stderr is not None:
        process.stderr.close()


@pytest.fixture
def pty_pair() -> Iterator[PtyPair]:
    if shutil.which("socat") is None:
        pytest.skip("socat is not installed")
    process, paths = start_socat()
    try:
        yield PtyPair(paths[0], paths[1])
    finally:
        stop_socat(process)


# ---------------------------------------------------------------------------
# a raw Modbus TCP client on a plain socket


class RawClient:
    """A socket plus a core ClientConnection: send requests, read responses, misbehave."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 3.0, rcvbuf: int | None = None) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connecting: sets the window
        self.sock.settimeout(timeout)
        try:
            self.sock.connect((host, port))
        except BaseException:
            self.sock.close()
            raise
        self.conn = ClientConnection(MbapFramer())

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def encode(self, pdu: RequestPdu, unit: int = 1) -> tuple[Request, bytes]:
        request = self.conn.request(pdu, unit)
        return request, self.conn.send(request)

    def send(self, pdu: RequestPdu, unit: int = 1) -> Request:
        request, data = self.encode(pdu, unit)
        self.sock.sendall(data)
        return request

    def responses(self, count: int) -> list[Response]:
        """The next *count* responses (socket timeout applies)."""
        result: list[Response] = []
        while len(result) < count:
            event = self.conn.next_event()
            if event is NEED_DATA:
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError(f"closed after {len(result)} of {count} responses")
                self.conn.receive_data(data, time.monotonic())
                continue
            assert isinstance(event, Response), event
            result.append(event)
        return result

    def call(self, pdu: RequestPdu, unit: int = 1) -> Response:
        self.send(pdu, unit)
        return self.responses(1)[0]

    def read_registers(self, address: int, count: int, unit: int = 1) -> tuple[int, ...]:
        response = self.call(ReadHoldingRegisters(address, count), unit)
        return response.pdu.registers  # type: ignore[attr-defined, no-any-return]

    def closed_by_peer(self, within: float) -> bool:
        """Whether the server closes this connection within *within* seconds."""
        self.sock.settimeout(within)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True


def wait_for(condition: Callable[[], bool], timeout: float = 3.0, interval: float = 0.01) -> bool:
    """Poll *condition* until it holds or *timeout* passes; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A port that was free a moment ago (for subprocesses that need a number up front)."""
    with contextlib.closing(socket.socket(socket.AF_INET, kind)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
