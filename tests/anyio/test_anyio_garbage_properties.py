"""Arbitrary bytes to modbus_anyio's and modbus_sync's servers (TCP, UDP, TLS, serial; every framer):
the server answers what it can, closes when the client is done, logs no error, and serves the next client."""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import serial
import trustme
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import modbus_sync
from modbus_anyio import SerialServer, TcpServer, TlsServer, UdpServer
from modbus_core import (
    NEED_DATA,
    AsciiFramer,
    ClientConnection,
    Device,
    Framer,
    MbapFramer,
    ReadHoldingRegisters,
    Response,
    RtuFramer,
    ServerContext,
    WriteMultipleRegisters,
)

from .anyio_support import start_socat

FRAMERS: dict[str, type[Framer]] = {"socket": MbapFramer, "rtu": RtuFramer, "ascii": AsciiFramer}
SERVERS = [
    (implementation, framer)
    for implementation in ("asyncio", "uvloop", "trio", "sync")
    for framer in ("socket", "rtu", "ascii")
]  # fmt: skip


@contextlib.contextmanager
def serving(
    implementation: str, sync_class: Callable[..., Any], anyio_class: Callable[..., Any], **options: Any
) -> Iterator[int]:
    """The port of a server of *implementation* ("sync", or the event loop) on 100 of each table, while it runs."""
    context = ServerContext(Device.sized(100))
    if implementation == "sync":
        with sync_class(context, **options) as server:
            yield server.port
        return
    backend = "trio" if implementation == "trio" else "asyncio"
    backend_options = {"use_uvloop": True} if implementation == "uvloop" else {}
    with start_blocking_portal(backend, backend_options) as portal:
        server = anyio_class(context, **options)
        with portal.wrap_async_context_manager(server):
            yield server.port


@pytest.fixture(scope="module", params=SERVERS, ids=[f"{i}-{f}" for i, f in SERVERS])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    implementation, framer = request.param
    with serving(implementation, modbus_sync.TcpServer, TcpServer, port=0, framer=framer, frame_timeout=0.3) as port:
        yield framer, port


def valid_frame(framer: str, unit: int, transaction_id: int, write: bool) -> bytes:
    pdu = WriteMultipleRegisters(3, (1, 2, 3)) if write else ReadHoldingRegisters(0, 4)
    return FRAMERS[framer]().encode(unit, transaction_id, pdu.encode())


@st.composite
def byte_streams(draw: st.DrawFn, framer: str) -> list[bytes]:
    """Writes of garbage, of valid frames and of pieces of frames, in any order."""
    writes = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["garbage", "frame", "piece", "noise-like"]))
        if kind == "garbage":
            writes.append(draw(st.binary(min_size=1, max_size=300)))
        elif kind == "noise-like":  # bytes that look like the framing's own
            alphabet = b":0123456789ABCDEF\r\n" if framer == "ascii" else b"\x00\x01\x03\x10\xff"
            writes.append(bytes(draw(st.lists(st.sampled_from(alphabet), min_size=1, max_size=80))))
        else:
            frame = valid_frame(framer, draw(st.integers(0, 255)), draw(st.integers(0, 0xFFFF)), draw(st.booleans()))
            writes.append(frame if kind == "frame" else frame[: draw(st.integers(1, len(frame)))])
    return writes


def read_until_closed(sock: socket.socket, deadline: float) -> bytes:
    received = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:  # closed with bytes of ours unread
            return received
        except TimeoutError:
            break
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"the server did not close within its frame timeout; it sent {received!r}")


@contextlib.contextmanager
def no_error_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        yield
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR], caplog.text


def send_and_hang_up(port: int, writes: list[bytes]) -> None:
    """Connect, send *writes*, half-close, and read until the server closes too."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for chunk in writes:
            with contextlib.suppress(ConnectionError):  # the server may have closed already
                sock.sendall(chunk)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        read_until_closed(sock, time.monotonic() + 5)


def answers_a_good_client(framer: str, port: int, tls: ssl.SSLContext | None = None) -> None:
    connection = ClientConnection(FRAMERS[framer]())
    with contextlib.ExitStack() as stack:
        sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5))
        if tls is not None:
            sock = stack.enter_context(tls.wrap_socket(sock, server_hostname="127.0.0.1"))
        sock.sendall(connection.send(connection.request(ReadHoldingRegisters(0, 4), unit=1)))
        while (event := connection.next_event()) is NEED_DATA:
            connection.receive_data(sock.recv(4096), time.monotonic())
    assert isinstance(event, Response)
    assert not event.is_exception


def first_answer(connection: ClientConnection, receive: Callable[[], bytes]) -> Response:
    """Feed what *receive()* brings to *connection* until the answer to its request comes
    (skipping answers to requests it did not send: the server's to the garbage)."""
    deadline = time.monotonic() + 5
    while True:
        assert time.monotonic() < deadline, "no answer"
        connection.receive_data(receive(), time.monotonic())
        while (event := connection.next_event()) is not NEED_DATA:
            if isinstance(event, Response):
                return event


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_garbage_never_wedges_a_server(
    server: tuple[str, int], data: st.DataObject, caplog: pytest.LogCaptureFixture
) -> None:
    framer, port = server
    writes = data.draw(byte_streams(framer))
    with no_error_logged(caplog):
        send_and_hang_up(port, writes)
        answers_a_good_client(framer, port)


@pytest.fixture(scope="module", params=SERVERS, ids=[f"{i}-{f}" for i, f in SERVERS])
def udp_server(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    implementation, framer = request.param
    with serving(implementation, modbus_sync.UdpServer, UdpServer, port=0, framer=framer) as port:
        yield framer, port


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_garbage_datagrams_never_wedge_a_server(
    udp_server: tuple[str, int], data: st.DataObject, caplog: pytest.LogCaptureFixture
) -> None:
    framer, port = udp_server
    datagrams = data.draw(byte_streams(framer))
    with no_error_logged(caplog), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for datagram in datagrams:
            sock.sendto(datagram, ("127.0.0.1", port))
        connection = ClientConnection(FRAMERS[framer]())
        sock.sendto(connection.send(connection.request(ReadHoldingRegisters(0, 4), unit=1)), ("127.0.0.1", port))
        sock.settimeout(5)
        answer = first_answer(connection, lambda: sock.recvfrom(65536)[0])
    assert not answer.is_exception


TLS_SERVERS = ["asyncio", "uvloop", "trio", "sync"]


@pytest.fixture(scope="module", params=TLS_SERVERS)
def tls_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    ca: trustme.CA,
    server_cert: trustme.LeafCert,
) -> Iterator[tuple[int, ssl.SSLContext]]:
    """A TLS server on an ephemeral port, and a client context it accepts."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key, authority = directory / "server.pem", directory / "server.key", directory / "ca.pem"
    server_cert.cert_chain_pems[0].write_to_path(str(cert))
    server_cert.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(authority))
    client = ssl.create_default_context()
    ca.configure_trust(client)
    ca.issue_cert("client").configure_cert(client)
    files = {"certfile": cert, "keyfile": key, "cafile": authority}
    with serving(request.param, modbus_sync.TlsServer, TlsServer, port=0, handshake_timeout=2, **files) as port:
        yield port, client


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_garbage_never_wedges_a_tls_server(
    tls_server: tuple[int, ssl.SSLContext], data: st.DataObject, caplog: pytest.LogCaptureFixture
) -> None:
    port, client = tls_server
    # Garbage, or a TLS record header (handshake, TLS 1.0-1.3) with garbage inside.
    record = st.builds(lambda version, body: bytes([0x16, 3, version]) + len(body).to_bytes(2, "big") + body,
                       st.integers(1, 4), st.binary(max_size=200))  # fmt: skip
    writes = data.draw(st.lists(st.binary(min_size=1, max_size=300) | record, min_size=1, max_size=4))
    with no_error_logged(caplog):
        send_and_hang_up(port, writes)
        answers_a_good_client("socket", port, tls=client)


SERIAL_SERVERS = [
    (implementation, framer) for implementation in ("asyncio", "uvloop", "trio", "sync") for framer in ("rtu", "ascii")
]


@pytest.fixture(scope="module", params=SERIAL_SERVERS, ids=[f"{i}-{f}" for i, f in SERIAL_SERVERS])
def serial_line(request: pytest.FixtureRequest) -> Iterator[tuple[str, serial.Serial]]:
    """A serial server of unit 1 on one end of a socat pseudo-terminal pair, and the other end."""
    if shutil.which("socat") is None:
        pytest.skip("socat is not installed")
    implementation, framer = request.param
    socat, pair = start_socat()
    try:
        with (
            serving(implementation, modbus_sync.SerialServer, SerialServer, port=pair.server, framer=framer),
            serial.Serial(pair.client, 38400, timeout=0.2) as line,
        ):
            yield framer, line
    finally:
        socat.kill()
        socat.wait(timeout=5)
        if socat.stderr is not None:
            socat.stderr.close()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_line_noise_never_wedges_a_serial_server(
    serial_line: tuple[str, serial.Serial], data: st.DataObject, caplog: pytest.LogCaptureFixture
) -> None:
    framer, line = serial_line
    noise = data.draw(byte_streams(framer))
    with no_error_logged(caplog):
        for chunk in noise:
            line.write(chunk)
        time.sleep(0.05)  # silence: where a line resynchronises
        connection = ClientConnection(FRAMERS[framer]())
        line.write(connection.send(connection.request(ReadHoldingRegisters(0, 4), unit=1)))
        # The first byte waits for the answer (or the timeout); the rest is what came with it.
        answer = first_answer(connection, lambda: line.read(1) + line.read(line.in_waiting))
    assert not answer.is_exception
