"""Modbus/TCP Security on the blocking server: TLS 1.2+, client certificates, roles, rules."""

# mypy: allow-untyped-calls

from __future__ import annotations

import logging
import socket
import ssl
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import ModbusTlsClient

from modbus_core import ClientConnection, Device, MbapFramer, ReadHoldingRegisters, ServerContext
from modbus_sync import AccessRule, ConnectionInfo, RolePolicy, StartTlsServer, TlsServer

from .sync_support import ClientCert, wait_for

pytestmark = pytest.mark.interop


def client_context(cert_dir: Path, cert: ClientCert | None, *, check_hostname: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert_dir / "ca.pem"))
    # pymodbus' sync TLS client gives no server_hostname: it verifies the chain only.
    context.check_hostname = check_hostname
    if cert is not None:
        context.load_cert_chain(str(cert.cert), str(cert.key))
    return context


def tls_server(context: ServerContext, cert_dir: Path, **options: Any) -> TlsServer:
    return TlsServer(
        context,
        port=0,
        certfile=cert_dir / "server.pem",
        keyfile=cert_dir / "server.key",
        cafile=cert_dir / "ca.pem",
        **options,
    )


POLICY = RolePolicy(
    {
        "operator": [AccessRule()],
        "viewer": [AccessRule(functions=frozenset({3, 4}), addresses=((0, 9),))],
    },
)


def test_roles_and_rules_with_pymodbus_client(cert_dir: Path, client_certs: dict[str, ClientCert]) -> None:
    device = Device.sized(100)
    seen: list[ConnectionInfo] = []

    def trace(connected: bool) -> None:
        pass

    with tls_server(ServerContext(device), cert_dir, policy=POLICY, trace_connect=trace) as server:
        operator = ModbusTlsClient(
            "localhost",
            port=server.port,
            sslctx=client_context(cert_dir, client_certs["operator"], check_hostname=False),
            timeout=3,
        )
        viewer = ModbusTlsClient(
            "localhost",
            port=server.port,
            sslctx=client_context(cert_dir, client_certs["viewer"], check_hostname=False),
            timeout=3,
        )
        try:
            assert operator.connect()
            assert not operator.write_registers(0, [5, 6, 7], device_id=1).isError()
            assert viewer.connect()
            assert viewer.read_holding_registers(0, count=3, device_id=1).registers == [5, 6, 7]
            assert wait_for(lambda: len(server.connections) == 2)
            seen = server.connections
            # The viewer may read 0..9 only, and write nothing: exception 01.
            refused = viewer.write_register(0, 1, device_id=1)
            assert refused.isError()
            assert refused.exception_code == 1
            outside = viewer.read_holding_registers(10, count=1, device_id=1)
            assert outside.isError()
            assert outside.exception_code == 1
            assert device.holding_registers.read(0, 3) == (5, 6, 7)
        finally:
            operator.close()
            viewer.close()
    assert sorted(info.role or "" for info in seen) == ["operator", "viewer"]
    assert {info.transport for info in seen} == {"tls"}


def test_certificate_without_role_gets_the_no_role_rules(cert_dir: Path, client_certs: dict[str, ClientCert]) -> None:
    policy = RolePolicy({None: [AccessRule(functions=frozenset({3}))]})
    with tls_server(ServerContext(Device.sized(10)), cert_dir, policy=policy) as server:
        client = ModbusTlsClient(
            "localhost",
            port=server.port,
            sslctx=client_context(cert_dir, client_certs["none"], check_hostname=False),
            timeout=3,
        )
        try:
            assert client.connect()
            assert client.read_holding_registers(0, count=1, device_id=1).registers == [0]
            assert client.write_register(0, 1, device_id=1).exception_code == 1
            assert [info.role for info in server.connections] == [None]
        finally:
            client.close()


def tls_exchange(port: int, context: ssl.SSLContext, host: str = "localhost") -> bytes:
    """Connect, handshake, send one FC3 request; what the server answers (b"" when it hangs up)."""
    client = ClientConnection(MbapFramer())
    data = client.send(client.request(ReadHoldingRegisters(0, 1), 1))
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=3) as plain,
            context.wrap_socket(plain, server_hostname=host) as sock,
        ):
            sock.sendall(data)
            return sock.recv(1024)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return b""


def test_client_without_certificate_is_refused(cert_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="modbus_sync")
    with tls_server(ServerContext(Device.sized(10)), cert_dir) as server:
        assert tls_exchange(server.port, client_context(cert_dir, None)) == b""
        assert wait_for(lambda: "TLS handshake with" in caplog.text)
        assert server.connections == []


def test_certificate_with_two_roles_is_refused(
    cert_dir: Path, client_certs: dict[str, ClientCert], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="modbus_sync")
    with tls_server(ServerContext(Device.sized(10)), cert_dir) as server:
        assert tls_exchange(server.port, client_context(cert_dir, client_certs["two"])) == b""
        assert wait_for(lambda: "more than one Modbus role" in caplog.text)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_tls_older_than_1_2_is_refused(cert_dir: Path, client_certs: dict[str, ClientCert]) -> None:
    context = client_context(cert_dir, client_certs["operator"])
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client really offer TLS 1.1
    with tls_server(ServerContext(Device.sized(10)), cert_dir) as server:
        assert tls_exchange(server.port, context) == b""
    # Control: the same client gets answers from a server weakened behind our back.
    weakened = tls_server(ServerContext(Device.sized(10)), cert_dir)
    weakened.ssl_context.minimum_version = ssl.TLSVersion.TLSv1
    weakened.ssl_context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with weakened:
        assert tls_exchange(weakened.port, context)[7:] == b"\x03\x02\x00\x00"


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_a_context_allowing_old_tls_is_refused(cert_dir: Path) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1
    with pytest.raises(ValueError, match=r"TLS 1\.2"):
        TlsServer(ServerContext(), ssl_context=context)
    with pytest.raises(ValueError, match="certfile"):
        TlsServer(ServerContext())


def test_handshake_timeout_drops_a_silent_client(cert_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="modbus_sync")
    with tls_server(ServerContext(Device.sized(10)), cert_dir, handshake_timeout=0.2) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=3) as silent:
            silent.settimeout(3)
            assert silent.recv(1) == b""  # closed by the server, not by our timeout
        assert "no TLS handshake within 0.2 s" in caplog.text


def test_start_tls_server_takes_pymodbus_sslctx(cert_dir: Path, client_certs: dict[str, ClientCert]) -> None:
    import threading

    from modbus_sync import ServerStop

    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(cert_dir / "ca.pem"))
    server_context.load_cert_chain(str(cert_dir / "server.pem"), str(cert_dir / "server.key"))
    server_context.verify_mode = ssl.CERT_REQUIRED
    port_holder: list[int] = []

    def run() -> None:
        StartTlsServer(ServerContext(Device.sized(10)), address=("127.0.0.1", 0), sslctx=server_context)

    from modbus_sync import _start

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert wait_for(lambda: bool(_start._started.running()) and _start._started.running()[0].serving)
    server = _start._started.running()[0]
    assert isinstance(server, TlsServer)
    port_holder.append(server.port)
    answer = tls_exchange(port_holder[0], client_context(cert_dir, client_certs["operator"]))
    assert answer[7:] == b"\x03\x02\x00\x00"
    ServerStop()
    thread.join(5)
    assert not thread.is_alive()
