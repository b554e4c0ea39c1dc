"""Clients that misbehave never hold the server: timeouts, limits, garbage, pipelining, backpressure."""

from __future__ import annotations

import logging
import selectors
import socket
import struct
import threading
import time

import pytest

from modbus_core import (
    Device,
    ReadHoldingRegisters,
    ReadHoldingRegistersResponse,
    Request,
    Response,
    ServerContext,
    WriteSingleRegister,
)
from modbus_sync import ConnectionInfo, TcpServer, UdpServer

from .sync_support import RawClient, wait_for


@pytest.fixture
def info_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="modbus_sync")
    return caplog


def test_idle_timeout_closes_a_silent_connection(info_logs: pytest.LogCaptureFixture) -> None:
    with TcpServer(ServerContext(Device.sized(10)), port=0, idle_timeout=0.3) as server:
        with RawClient(server.port) as silent, RawClient(server.port) as busy:
            started = time.monotonic()
            # The busy client keeps talking past the idle timeout and stays.
            while time.monotonic() - started < 0.6:
                assert busy.read_registers(0, 1) == (0,)
                time.sleep(0.05)
            assert silent.closed_by_peer(within=1)
            assert busy.read_registers(0, 1) == (0,)
        assert "closing: idle for 0.3 s" in info_logs.text


def test_partial_frame_timeout_closes_a_stalled_frame(info_logs: pytest.LogCaptureFixture) -> None:
    with TcpServer(ServerContext(Device.sized(10)), port=0, frame_timeout=0.3) as server:
        with RawClient(server.port) as stalled, RawClient(server.port) as other:
            stalled.sock.sendall(b"\x00\x01\x00\x00\x00\x06\x01")  # an MBAP header, no PDU
            # Meanwhile another client is served at once.
            started = time.monotonic()
            assert other.read_registers(0, 1) == (0,)
            assert time.monotonic() - started < 0.2
            assert stalled.closed_by_peer(within=2)
            assert time.monotonic() - started >= 0.25
        assert "partial MBAP frame incomplete" in info_logs.text


def test_garbage_closes_only_that_connection(info_logs: pytest.LogCaptureFixture) -> None:
    with TcpServer(ServerContext(Device.sized(10)), port=0) as server:
        with RawClient(server.port) as good, RawClient(server.port) as bad:
            assert good.read_registers(0, 1) == (0,)
            bad.sock.sendall(b"\xde\xad\xbe\xef\xff\xff\xff\xff garbage")  # MBAP length 65535
            assert bad.closed_by_peer(within=2)
            assert good.read_registers(0, 1) == (0,)
        assert "outside 2..254" in info_logs.text


def test_frames_with_another_protocol_id_are_skipped() -> None:
    with TcpServer(ServerContext(Device.sized(10)), port=0) as server, RawClient(server.port) as client:
        foreign = b"\x00\x07\x00\x05\x00\x06\x01\x03\x00\x00\x00\x01"  # protocol id 5
        request, data = client.encode(ReadHoldingRegisters(0, 1))
        client.sock.sendall(foreign + data)
        (response,) = client.responses(1)
        assert response.transaction_id == request.transaction_id


def test_pipelined_requests_are_all_answered_in_order() -> None:
    with TcpServer(ServerContext(Device.sized(200)), port=0) as server, RawClient(server.port) as client:
        requests = []
        data = b""
        for index in range(100):
            pdu = WriteSingleRegister(index, index) if index % 2 else ReadHoldingRegisters(index - 1 if index else 0, 2)
            request, encoded = client.encode(pdu)
            requests.append(request)
            data += encoded
        client.sock.sendall(data)  # one write, a hundred requests
        responses = client.responses(100)
        assert [r.transaction_id for r in responses] == [r.transaction_id for r in requests]
        assert not any(r.is_exception for r in responses)
        # Each read saw the writes sent before it, and none sent after.
        assert responses[2].pdu == ReadHoldingRegistersResponse((1, 0))


def test_requests_split_byte_by_byte_are_answered() -> None:
    with TcpServer(ServerContext(Device.sized(10)), port=0) as server, RawClient(server.port) as client:
        client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request, data = client.encode(ReadHoldingRegisters(0, 2))
        for byte in data:
            client.sock.sendall(bytes((byte,)))
            time.sleep(0.002)
        (response,) = client.responses(1)
        assert response.transaction_id == request.transaction_id


def test_half_closed_client_gets_its_answers() -> None:
    with TcpServer(ServerContext(Device.sized(10)), port=0) as server, RawClient(server.port) as client:
        data = b"".join(client.encode(ReadHoldingRegisters(0, 1))[1] for _ in range(5))
        client.sock.sendall(data)
        client.sock.shutdown(socket.SHUT_WR)
        assert len(client.responses(5)) == 5
        assert client.closed_by_peer(within=2)


def test_connection_limit_refuse(info_logs: pytest.LogCaptureFixture) -> None:
    with TcpServer(ServerContext(Device.sized(10)), port=0, max_connections=2, connection_policy="refuse") as server:
        with RawClient(server.port) as first, RawClient(server.port) as second:
            assert first.read_registers(0, 1) == (0,)
            assert second.read_registers(0, 1) == (0,)
            with RawClient(server.port) as third:
                assert third.closed_by_peer(within=2)
            assert first.read_registers(0, 1) == (0,)
        assert "(max_connections): refusing" in info_logs.text


def test_connection_limit_closes_the_oldest_idle(info_logs: pytest.LogCaptureFixture) -> None:
    with TcpServer(ServerContext(Device.sized(10)), port=0, max_connections=2) as server:
        with RawClient(server.port) as oldest, RawClient(server.port) as recent:
            assert oldest.read_registers(0, 1) == (0,)
            time.sleep(0.05)
            assert recent.read_registers(0, 1) == (0,)
            with RawClient(server.port) as newcomer:
                assert newcomer.read_registers(0, 1) == (0,)
                assert oldest.closed_by_peer(within=2)
                assert recent.read_registers(0, 1) == (0,)
        assert "closing the oldest idle one" in info_logs.text


def test_nodelay_and_keepalive_on_accepted_connections() -> None:
    with TcpServer(ServerContext(), port=0) as server, RawClient(server.port) as client:
        client.read_registers(0, 1)
        (link,) = server._links.values()
        sock = link.fileobj()
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
    with TcpServer(ServerContext(), port=0, keepalive=False) as server, RawClient(server.port) as client:
        client.read_registers(0, 1)
        (link,) = server._links.values()
        assert not link.fileobj().getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)


def test_a_client_that_does_not_read_is_throttled_not_buffered() -> None:
    """Pipelining without reading: the server stops reading that client; others go on."""
    with (
        TcpServer(ServerContext(Device.sized(125)), port=0) as server,
        RawClient(server.port, rcvbuf=16384) as hog,
        RawClient(server.port) as other,
    ):
        assert hog.read_registers(0, 1) == (0,)  # accepted
        hog_peer = f"127.0.0.1:{hog.sock.getsockname()[1]}"
        (link,) = [link for link in server._links.values() if link.info.peer == hog_peer]
        _, one = hog.encode(ReadHoldingRegisters(0, 125))
        hog.sock.sendall(one * 20000)  # 240 kB of requests asking for 5 MB of answers
        # The kernel's buffers fill, then the server keeps at most about 256 kB plus one read's answers.
        assert wait_for(lambda: not link.interest & selectors.EVENT_READ)
        assert link.out_size < 2 * 1024 * 1024
        assert other.read_registers(0, 1) == (0,)
        # Reading again, every request gets its answer (259 bytes each).
        hog.sock.settimeout(5)
        expected = 20000 * 259
        received = 0
        while received < expected:
            chunk = hog.sock.recv(1 << 20)
            assert chunk, f"closed after {received} of {expected} bytes"
            received += len(chunk)
        assert received == expected


def test_a_slow_handler_on_handler_threads_does_not_stall_others() -> None:
    def handler(request: Request, info: ConnectionInfo) -> Response:
        if request.unit == 9:
            time.sleep(0.5)
        return request.reply(ReadHoldingRegistersResponse((request.unit,)))

    with (
        TcpServer(handler, port=0, handler_threads=4) as server,
        RawClient(server.port) as slow,
        RawClient(server.port) as fast,
    ):
        slow.send(ReadHoldingRegisters(0, 1), unit=9)
        slow.send(ReadHoldingRegisters(0, 1), unit=1)  # pipelined behind the slow one
        started = time.monotonic()
        assert fast.read_registers(0, 1, unit=2) == (2,)
        assert time.monotonic() - started < 0.3
        # The slow connection's answers come in the order asked.
        assert [r.pdu.registers for r in slow.responses(2)] == [(9,), (1,)]  # type: ignore[attr-defined]


def test_a_blocking_handler_without_threads_still_answers_in_order() -> None:
    calls: list[int] = []

    def handler(request: Request, info: ConnectionInfo) -> Response:
        calls.append(request.unit)
        time.sleep(0.01)
        return request.reply(ReadHoldingRegistersResponse((request.unit,)))

    with TcpServer(handler, port=0) as server, RawClient(server.port) as client:
        for unit in range(1, 11):
            client.send(ReadHoldingRegisters(0, 1), unit=unit)
        assert [r.unit for r in client.responses(10)] == list(range(1, 11))
    assert calls == list(range(1, 11))


def test_udp_garbage_is_dropped_and_the_next_datagram_answered() -> None:
    with (
        UdpServer(ServerContext(Device.sized(10)), port=0) as server,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock,
    ):
        sock.settimeout(2)
        address = ("127.0.0.1", server.port)
        sock.sendto(b"\x00", address)
        sock.sendto(b"\x00\x01\x00\x00\xff\xff\x01\x03", address)
        sock.sendto(struct.pack(">HHHB", 7, 0, 6, 1) + ReadHoldingRegisters(0, 1).encode(), address)
        data, _ = sock.recvfrom(1024)
        assert data == struct.pack(">HHHB", 7, 0, 5, 1) + b"\x03\x02\x00\x00"


def test_many_connections_at_once() -> None:
    with TcpServer(ServerContext(Device.sized(10)), port=0) as server:
        clients = [RawClient(server.port) for _ in range(200)]
        try:
            for client in clients:
                client.send(ReadHoldingRegisters(0, 1))
            for client in clients:
                assert len(client.responses(1)) == 1
            assert wait_for(lambda: len(server.connections) == 200)
        finally:
            for client in clients:
                client.close()
        assert wait_for(lambda: server.connections == [])


def test_threads_serving_one_datastore_concurrently() -> None:
    """Several servers (one with handler threads) and the application write one device at once."""
    device = Device.sized(64)
    context = ServerContext(device)
    errors: list[str] = []
    with TcpServer(context, port=0) as first, TcpServer(context, port=0, handler_threads=4) as second:
        stop = threading.Event()

        def application() -> None:
            while not stop.is_set():
                with device.lock:  # an atomic block of application writes
                    device.holding_registers.write(40, [7] * 10, force=True)
                    device.holding_registers.write(40, [8] * 10, force=True)

        def client(port: int, bit: int) -> None:
            from modbus_core import MaskWriteRegister, WriteMultipleRegisters

            with RawClient(port) as raw:
                for round_ in range(60):
                    # Set our own bit of register 0 (read-modify-write in one request).
                    raw.call(MaskWriteRegister(0, 0xFFFF ^ (1 << bit), 1 << bit))
                    # Write a block of equal values, read a block: never mixed.
                    raw.call(WriteMultipleRegisters(10, (bit * 100 + round_,) * 20))
                    values = raw.read_registers(10, 20)
                    if len(set(values)) != 1:
                        errors.append(f"torn read {values}")
                    seen = raw.read_registers(40, 10)
                    if len(set(seen)) != 1:
                        errors.append(f"torn application write {seen}")

        app = threading.Thread(target=application, daemon=True)
        app.start()
        threads = [
            threading.Thread(target=client, args=(first.port if bit % 2 else second.port, bit), daemon=True)
            for bit in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        stop.set()
        app.join(5)
    assert errors == []
    assert device.holding_registers.read(0, 1) == (0xFF,)  # every client's bit: no lost update
