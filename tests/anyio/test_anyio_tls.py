"""Modbus/TCP Security: the TLS server with real certificates (trustme CA, role extensions)."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
import trustme

from modbus_anyio import AccessRule, ConnectionInfo, RolePolicy, TlsServer
from modbus_core import (
    NEED_DATA,
    ClientConnection,
    Device,
    Dispatcher,
    ExceptionCode,
    ExceptionResponse,
    MbapFramer,
    ReadHoldingRegisters,
    Request,
    Response,
    ServerContext,
    WriteSingleRegister,
)

from .anyio_support import Client, ClientCertificate, IssueClient, role_value

pytestmark = pytest.mark.anyio


@pytest.fixture
def server_files(tmp_path: Path, server_cert: trustme.LeafCert, ca: trustme.CA) -> dict[str, Path]:
    files = {"certfile": tmp_path / "server.pem", "keyfile": tmp_path / "server.key", "cafile": tmp_path / "ca.pem"}
    server_cert.cert_chain_pems[0].write_to_path(str(files["certfile"]))
    server_cert.private_key_pem.write_to_path(str(files["keyfile"]))
    ca.cert_pem.write_to_path(str(files["cafile"]))
    return files


def client_context(ca: trustme.CA, tmp_path: Path, certificate: ClientCertificate | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    if certificate is not None:
        cert, key = certificate.write(tmp_path, f"client{id(certificate)}")
        context.load_cert_chain(cert, key)
    return context


REFUSED = (ssl.SSLError, anyio.BrokenResourceError, anyio.EndOfStream, OSError)


async def connect_and_read(port: int, context: ssl.SSLContext) -> object:
    """Connect and make one request.  With TLS 1.3 the server checks the
    client's certificate after the client's side of the handshake has ended,
    so a refusal may only show at the first read."""
    client = await tls_client(port, context)
    return await client.call(ReadHoldingRegisters(0, 1))


async def tls_client(port: int, context: ssl.SSLContext, host: str = "127.0.0.1") -> Client:
    stream = await anyio.connect_tcp(host, port, tls=True, ssl_context=context, tls_hostname="localhost")
    return Client(stream)


POLICY = RolePolicy(
    {
        "operator": [AccessRule(functions=frozenset({3}), addresses=((0, 9),))],
        "engineer": [AccessRule()],
        None: [AccessRule(functions=frozenset({3}), addresses=((0, 0),))],
    }
)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_role_reaches_handlers_and_hooks(
    host: str, server_files: dict[str, Path], issue_client: IssueClient, ca: trustme.CA, tmp_path: Path
) -> None:
    seen: list[tuple[str, str | None]] = []
    connects: list[str | None] = []
    device = Device.sized(20)

    dispatcher = Dispatcher(ServerContext(device))

    def handler(request: Request, info: ConnectionInfo) -> Any:
        seen.append((info.transport, info.role))
        return dispatcher.dispatch(request)

    async with TlsServer(
        handler,
        host=host,
        port=0,
        trace_connect=lambda connected, info: connects.append(info.role),
        **server_files,  # type: ignore[arg-type]
    ) as server:
        with anyio.fail_after(10):
            client = await tls_client(server.port, client_context(ca, tmp_path, issue_client(role="operator")), host)
            assert not (await client.call(WriteSingleRegister(3, 33))).is_exception
            assert (await client.call(ReadHoldingRegisters(3, 1))).pdu.registers == (33,)
            assert server.connections[0].role == "operator"
            assert server.connections[0].transport == "tls"
            await client.aclose()
            anonymous = await tls_client(server.port, client_context(ca, tmp_path, issue_client()), host)
            await anonymous.call(ReadHoldingRegisters(3, 1))
            await anonymous.aclose()
    assert seen == [("tls", "operator"), ("tls", "operator"), ("tls", None)]
    assert connects[0] == "operator"


async def test_role_policy_refusals_get_exception_01(
    server_files: dict[str, Path], issue_client: IssueClient, ca: trustme.CA, tmp_path: Path
) -> None:
    illegal = ExceptionCode.ILLEGAL_FUNCTION
    async with TlsServer(ServerContext(Device.sized(20)), port=0, policy=POLICY, **server_files) as server:  # type: ignore[arg-type]
        with anyio.fail_after(10):
            operator = await tls_client(server.port, client_context(ca, tmp_path, issue_client(role="operator")))
            assert not (await operator.call(ReadHoldingRegisters(0, 10))).is_exception
            assert (await operator.call(ReadHoldingRegisters(5, 10))).pdu == ExceptionResponse(3, illegal)
            assert (await operator.call(WriteSingleRegister(1, 1))).pdu == ExceptionResponse(6, illegal)
            await operator.aclose()

            engineer = await tls_client(server.port, client_context(ca, tmp_path, issue_client(role="engineer")))
            assert not (await engineer.call(WriteSingleRegister(1, 1))).is_exception
            await engineer.aclose()

            nobody = await tls_client(server.port, client_context(ca, tmp_path, issue_client()))
            assert not (await nobody.call(ReadHoldingRegisters(0, 1))).is_exception
            assert (await nobody.call(ReadHoldingRegisters(1, 1))).pdu == ExceptionResponse(3, illegal)
            await nobody.aclose()

            stranger = await tls_client(server.port, client_context(ca, tmp_path, issue_client(role="visitor")))
            assert (await stranger.call(ReadHoldingRegisters(0, 1))).pdu == ExceptionResponse(3, illegal)
            await stranger.aclose()


async def test_client_without_certificate_is_refused(
    server_files: dict[str, Path], ca: trustme.CA, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with TlsServer(ServerContext(Device.sized(5)), port=0, **server_files) as server:  # type: ignore[arg-type]
        with anyio.fail_after(10):
            with pytest.raises(REFUSED):
                await connect_and_read(server.port, client_context(ca, tmp_path, None))
            assert server.connections == []
            while "TLS handshake with 127.0.0.1:" not in caplog.text:
                await anyio.sleep(0.01)
    assert "did not return a certificate" in caplog.text


async def test_client_certificate_from_another_ca_is_refused(
    server_files: dict[str, Path], ca: trustme.CA, tmp_path: Path
) -> None:
    from .anyio_support import issue_client_certificate

    stranger = issue_client_certificate(trustme.CA(), "stranger", roles=(role_value("engineer"),))
    async with TlsServer(ServerContext(Device.sized(5)), port=0, **server_files) as server:  # type: ignore[arg-type]
        with anyio.fail_after(10):
            with pytest.raises(REFUSED):
                await connect_and_read(server.port, client_context(ca, tmp_path, stranger))


async def test_two_role_extensions_close_the_connection(
    server_files: dict[str, Path], issue_client: IssueClient, ca: trustme.CA, tmp_path: Path
) -> None:
    """The certificate with two roles is forged by renaming an extension in its DER
    (cryptography refuses to build it), so its signature does not verify: the
    handshake refuses it before the role is even read."""
    certificate = issue_client(role="operator", roles=(role_value("engineer"),))
    forged = ClientCertificate(
        cert_pem=ssl.DER_cert_to_PEM_cert(certificate.der).encode(), key_pem=certificate.key_pem, der=certificate.der
    )
    async with TlsServer(ServerContext(Device.sized(5)), port=0, **server_files) as server:  # type: ignore[arg-type]
        with anyio.fail_after(10):
            with pytest.raises(REFUSED):
                await connect_and_read(server.port, client_context(ca, tmp_path, forged))


async def test_users_own_ssl_context(
    server_files: dict[str, Path], issue_client: IssueClient, ca: trustme.CA, tmp_path: Path
) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(server_files["cafile"]))
    context.load_cert_chain(server_files["certfile"], server_files["keyfile"])
    context.verify_mode = ssl.CERT_REQUIRED
    async with TlsServer(ServerContext(Device.sized(5)), port=0, ssl_context=context) as server:
        assert server.ssl_context is context
        with anyio.fail_after(10):
            client = await tls_client(server.port, client_context(ca, tmp_path, issue_client(role="engineer")))
            assert not (await client.call(ReadHoldingRegisters(0, 1))).is_exception
            await client.aclose()


async def test_a_client_hello_waiting_at_accept_is_not_lost(
    server_files: dict[str, Path], issue_client: IssueClient, ca: trustme.CA, tmp_path: Path
) -> None:
    # The client connects and sends its ClientHello while the server's loop
    # is busy, so that the hello already waits when the connection is
    # accepted (uvloop then reads it at once, before any handshake began).
    context = client_context(ca, tmp_path, issue_client(role="operator"))
    failures: list[str] = []

    def one_client(port: int) -> None:
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
                context.wrap_socket(raw, server_hostname="localhost") as sock,
            ):
                client = ClientConnection(MbapFramer())
                sock.sendall(client.send(client.request(ReadHoldingRegisters(0, 1))))
                event: object = NEED_DATA
                while event is NEED_DATA:
                    data = sock.recv(256)
                    assert data, "the server closed the connection"
                    client.receive_data(data)
                    event = client.next_event()
                assert isinstance(event, Response)
                assert not event.is_exception
        except (OSError, AssertionError) as error:
            failures.append(repr(error))

    async with TlsServer(ServerContext(Device.sized(5)), port=0, **server_files) as server:  # type: ignore[arg-type]
        for _ in range(3):
            thread = threading.Thread(target=one_client, args=(server.port,))
            thread.start()
            time.sleep(0.3)  # blocks the loop on purpose: the hello arrives before the accept
            with anyio.fail_after(10):
                await anyio.to_thread.run_sync(thread.join)
    assert failures == []


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1 is deprecated:DeprecationWarning")
def test_tls_options_are_checked(server_files: dict[str, Path]) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1
    with pytest.raises(ValueError, match=r"TLS 1\.2"):
        TlsServer(ServerContext(), ssl_context=context)
    with pytest.raises(ValueError, match="needs ssl_context"):
        TlsServer(ServerContext())
    with pytest.raises(ValueError, match="not both"):
        TlsServer(ServerContext(), ssl_context=ssl.create_default_context(), certfile="x")
    with pytest.raises(TypeError, match="RolePolicy"):
        TlsServer(ServerContext(), policy={"roles": {}}, **server_files)  # type: ignore[arg-type]
    server = TlsServer(ServerContext(), **server_files)  # type: ignore[arg-type]
    assert server.port == 802
    assert server.ssl_context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert server.ssl_context.verify_mode == ssl.CERT_REQUIRED


def test_files_that_cannot_be_loaded_are_named(server_files: dict[str, Path], tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    cert, key, ca = server_files["certfile"], server_files["keyfile"], server_files["cafile"]
    with pytest.raises(FileNotFoundError, match=rf"cannot load the CA certificates {missing}: No such file"):
        TlsServer(ServerContext(), certfile=cert, keyfile=key, cafile=missing)
    with pytest.raises(ssl.SSLError, match=rf"cannot load the CA certificates {garbage}: \[X509"):
        TlsServer(ServerContext(), certfile=cert, keyfile=key, cafile=garbage)
    with pytest.raises(ssl.SSLError, match=rf"cannot load the certificate {garbage} and key {key}: "):
        TlsServer(ServerContext(), certfile=garbage, keyfile=key, cafile=ca)
    with pytest.raises(ssl.SSLError, match=rf"cannot load the certificate {cert} and key {garbage}: "):
        TlsServer(ServerContext(), certfile=cert, keyfile=garbage, cafile=ca)
