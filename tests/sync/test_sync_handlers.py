"""Handlers, hooks and options: what the blocking servers share with the async ones."""

from __future__ import annotations

import dataclasses
import logging
import re
import socket
import struct
import time
from collections.abc import Awaitable
from typing import Any, ClassVar

import pytest

from modbus_core import (
    ClientConnection,
    CustomFunction,
    Device,
    ExceptionCode,
    FunctionTable,
    MbapFramer,
    ModbusExceptionError,
    ReadHoldingRegisters,
    ReadHoldingRegistersResponse,
    ReadInputRegistersResponse,
    Request,
    RequestPdu,
    Response,
    ResponsePdu,
    ServerContext,
    WriteSingleRegister,
)
from modbus_sync import ConnectionInfo, RawReply, SerialServer, TcpServer, UdpServer

from .sync_support import RawClient, wait_for


def registers(*values: int) -> ReadHoldingRegistersResponse:
    return ReadHoldingRegistersResponse(values)


def test_handler_gets_the_request_and_connection_info() -> None:
    seen: list[tuple[Request, ConnectionInfo]] = []

    def handler(request: Request, info: ConnectionInfo) -> Response:
        seen.append((request, info))
        return request.reply(registers(request.unit, info.connection_id & 0xFFFF))

    with (
        TcpServer(handler, port=0, name="gateway") as server,
        RawClient(server.port) as first,
        RawClient(server.port) as second,
    ):
        assert first.read_registers(0, 2, unit=7)[0] == 7
        assert second.read_registers(0, 2, unit=8)[0] == 8
    (request1, info1), (_, info2) = seen
    assert request1.pdu == ReadHoldingRegisters(0, 2)
    assert info1.transport == "tcp"
    assert info1.server == "gateway"
    assert info1.local == f"127.0.0.1:{server.port}"
    assert info1.peer.startswith("127.0.0.1:")
    assert info1.role is None
    assert info2.connection_id > info1.connection_id


def test_connections_are_logged_when_they_open_and_close(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="modbus_anyio")  # the session's logger, shared by both packages
    with TcpServer(ServerContext(Device.sized(10)), port=0, name="plc") as server:
        with RawClient(server.port) as client:
            assert client.call(ReadHoldingRegisters(0, 1)).pdu == registers(0)
        assert wait_for(lambda: "closed" in caplog.text)
    lines = [record.getMessage() for record in caplog.records if "connection #" in record.getMessage()]
    assert len(lines) == 2
    assert re.fullmatch(r"plc: connection #\d+ from 127\.0\.0\.1:\d+ opened", lines[0])
    assert lines[1] == lines[0].replace("opened", "closed")


def test_handler_failures_are_answered_and_keep_the_connection(caplog: pytest.LogCaptureFixture) -> None:
    def handler(request: Request, info: ConnectionInfo) -> Response | None:
        if request.unit == 1:
            raise RuntimeError("database down")
        if request.unit == 2:
            raise ModbusExceptionError(ExceptionCode.SERVER_DEVICE_BUSY)
        if request.unit == 3:
            return None  # no answer at all
        return request.reply(registers(4))

    with TcpServer(handler, port=0) as server, RawClient(server.port) as client:
        assert client.call(ReadHoldingRegisters(0, 1), unit=1).pdu.exception_code == 4  # type: ignore[attr-defined]
        assert client.call(ReadHoldingRegisters(0, 1), unit=2).pdu.exception_code == 6  # type: ignore[attr-defined]
        client.send(ReadHoldingRegisters(0, 1), unit=3)
        # The unanswered request is skipped; the next one is answered.
        assert client.call(ReadHoldingRegisters(0, 1), unit=4).pdu == registers(4)
    assert "database down" in caplog.text


def test_raw_reply_with_a_pause_and_the_connection_encoder() -> None:
    def handler(request: Request, info: ConnectionInfo) -> RawReply:
        whole = info.encode(request.reply(registers(1, 2)))
        return RawReply.of(whole[:5], 0.25, whole[5:])

    with TcpServer(handler, port=0) as server, RawClient(server.port) as client:
        request, data = client.encode(ReadHoldingRegisters(0, 2))
        started = time.monotonic()
        client.sock.sendall(data)
        first = client.sock.recv(100)
        assert len(first) == 5
        rest = client.sock.recv(100)
        assert time.monotonic() - started >= 0.2
        expected = MbapFramer().encode(1, request.transaction_id, registers(1, 2).encode())
        assert first + rest == expected


def test_raw_reply_pause_keeps_later_answers_in_order() -> None:
    def handler(request: Request, info: ConnectionInfo) -> RawReply | Response:
        if request.unit == 1:
            return RawReply.of(b"", 0.2, info.encode(request.reply(registers(1))))
        return request.reply(registers(2))

    with TcpServer(handler, port=0) as server, RawClient(server.port) as client:
        client.send(ReadHoldingRegisters(0, 1), unit=1)
        client.send(ReadHoldingRegisters(0, 1), unit=2)
        assert [response.unit for response in client.responses(2)] == [1, 2]


def test_async_handlers_and_devices_are_refused_at_construction() -> None:
    async def handler(request: Request, info: ConnectionInfo) -> None:
        return None

    class AsyncCallable:
        async def __call__(self, request: Request, info: ConnectionInfo) -> None:
            return None

    class AsyncDevice:
        async def read_holding_registers(self, address: int, count: int) -> list[int]:
            return [0] * count

    with pytest.raises(TypeError, match="async handler"):
        TcpServer(handler, port=0)
    with pytest.raises(TypeError, match="async handler"):
        TcpServer(AsyncCallable(), port=0)
    with pytest.raises(TypeError, match="coroutine function"):
        TcpServer(ServerContext({1: AsyncDevice()}), port=0)  # type: ignore[dict-item]


def test_a_handler_that_returns_an_awaitable_gets_exception_04(caplog: pytest.LogCaptureFixture) -> None:
    async def later() -> Response | None:
        return None

    def handler(request: Request, info: ConnectionInfo) -> Awaitable[Response | None]:
        return later()

    with TcpServer(handler, port=0) as server, RawClient(server.port) as client:
        response = client.call(ReadHoldingRegisters(0, 1))
        assert response.pdu.exception_code == 4  # type: ignore[attr-defined]
    assert "synchronous handlers" in caplog.text


def test_trace_hooks_see_and_may_change_traffic() -> None:
    packets: list[tuple[bool, bytes]] = []
    pdus: list[tuple[bool, Any]] = []
    connects: list[tuple[bool, str]] = []

    def trace_packet(sending: bool, data: bytes) -> bytes:
        packets.append((sending, data))
        return data

    def trace_pdu(sending: bool, pdu: Any, info: ConnectionInfo) -> Any:
        pdus.append((sending, pdu))
        if sending and isinstance(pdu, ReadHoldingRegistersResponse):
            return registers(*(value + 1 for value in pdu.registers))
        return pdu

    def trace_connect(connected: bool, info: ConnectionInfo) -> None:
        connects.append((connected, info.transport))

    with TcpServer(
        ServerContext(Device.sized(10)),
        port=0,
        trace_packet=trace_packet,
        trace_pdu=trace_pdu,
        trace_connect=trace_connect,
    ) as server:
        with RawClient(server.port) as client:
            assert client.read_registers(0, 2) == (1, 1)
        assert wait_for(lambda: len(connects) == 2)
    assert [sending for sending, _ in packets] == [False, True]
    assert packets[0][1][7:] == ReadHoldingRegisters(0, 2).encode()
    assert pdus == [(False, ReadHoldingRegisters(0, 2)), (True, registers(0, 0))]
    assert connects == [(True, "tcp"), (False, "tcp")]


def test_trace_packet_may_rewrite_incoming_bytes() -> None:
    def trace_packet(sending: bool, data: bytes) -> bytes:
        # A broken client sends protocol id 1: fix it on the way in.
        return data[:2] + b"\x00\x00" + data[4:] if not sending else data

    with (
        TcpServer(ServerContext(Device.sized(10)), port=0, trace_packet=trace_packet) as server,
        RawClient(server.port) as client,
    ):
        client.sock.sendall(b"\x00\x09\x00\x01\x00\x06\x01\x03\x00\x00\x00\x01")
        assert client.sock.recv(100) == b"\x00\x09\x00\x00\x00\x05\x01\x03\x02\x00\x00"


def test_a_failing_hook_is_logged_and_bypassed(caplog: pytest.LogCaptureFixture) -> None:
    def trace_pdu(sending: bool, pdu: Any) -> Any:
        if isinstance(pdu, WriteSingleRegister):
            raise RuntimeError("hook bug")
        return pdu

    device = Device.sized(10)
    with (
        TcpServer(ServerContext(device), port=0, trace_pdu=trace_pdu) as server,
        RawClient(server.port) as client,
    ):
        assert not client.call(WriteSingleRegister(0, 1)).is_exception  # the request passes unchanged
        assert client.read_registers(0, 1) == (1,)  # and the connection stays
    assert "hook bug" in caplog.text


@dataclasses.dataclass(frozen=True, slots=True)
class Checksum(RequestPdu):
    """Function 100: the sum of holding registers 0..count-1 (a custom function)."""

    function_code: ClassVar[int] = 100
    count: int

    def encode(self) -> bytes:
        return struct.pack(">BH", self.function_code, self.count)

    @classmethod
    def decode(cls, pdu: bytes) -> Checksum:
        if len(pdu) != 3:
            raise ValueError("a checksum request is 3 bytes")
        return cls(struct.unpack(">H", pdu[1:])[0])

    def execute(self, device: Device) -> ResponsePdu:
        return ChecksumResponse(sum(device.holding_registers.read(0, self.count)) & 0xFFFF)


@dataclasses.dataclass(frozen=True, slots=True)
class ChecksumResponse(ResponsePdu):
    function_code: ClassVar[int] = 100
    total: int

    def encode(self) -> bytes:
        return struct.pack(">BH", self.function_code, self.total)

    @classmethod
    def decode(cls, pdu: bytes) -> ChecksumResponse:
        return cls(struct.unpack(">H", pdu[1:3])[0])


def test_custom_function_codes() -> None:
    checksum = CustomFunction(100, Checksum, ChecksumResponse, request_length=3, response_length=3)
    device = Device(holding_registers=[1, 2, 3, 4])
    with TcpServer(ServerContext(device), port=0, custom_pdu=[checksum]) as server, RawClient(server.port) as client:
        client.conn = ClientConnection(MbapFramer(), functions=FunctionTable([checksum]))
        assert client.call(Checksum(4)).pdu == ChecksumResponse(10)
        # A malformed custom request is exception 03.
        client.sock.sendall(b"\x00\x05\x00\x00\x00\x03\x01\x64\x00")
        assert client.sock.recv(100) == b"\x00\x05\x00\x00\x00\x03\x01\xe4\x03"


def test_missing_units_and_broadcast_on_tcp() -> None:
    device = Device.sized(10)
    with (
        TcpServer(ServerContext({1: device}), port=0, broadcast=True, ignore_missing_units=True) as server,
        RawClient(server.port, timeout=0.3) as client,
    ):
        client.send(WriteSingleRegister(2, 5), unit=0)  # broadcast: executed, not answered
        client.send(ReadHoldingRegisters(0, 1), unit=9)  # missing: silence
        assert wait_for(lambda: device.holding_registers.read(2, 1) == (5,))
        with pytest.raises(TimeoutError):
            client.responses(1)
    with TcpServer(ServerContext({1: device}), port=0) as server, RawClient(server.port) as client:
        # By default TCP answers unit 0 like any unit, and a missing unit with exception 0B.
        assert client.call(ReadHoldingRegisters(0, 1), unit=9).pdu.exception_code == 0x0B  # type: ignore[attr-defined]


def test_udp_handler_and_raw_reply() -> None:
    connects: list[bool] = []

    def handler(request: Request, info: ConnectionInfo) -> RawReply | Response:
        assert info.transport == "udp"
        if request.unit == 2:
            return RawReply.of(b"junk")
        return request.reply(ReadInputRegistersResponse((3,)))

    with (
        UdpServer(handler, port=0, trace_connect=connects.append) as server,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock,
    ):
        sock.settimeout(2)
        client = ClientConnection(MbapFramer(datagram=True))
        sock.sendto(client.send(client.request(ReadHoldingRegisters(0, 1), 2)), ("127.0.0.1", server.port))
        assert sock.recvfrom(100)[0] == b"junk"
        request = client.request(ReadHoldingRegisters(0, 1), 1)
        sock.sendto(client.send(request), ("127.0.0.1", server.port))
        assert sock.recvfrom(100)[0][7:] == b"\x04\x02\x00\x03"
        assert [info.transport for info in server.connections] == ["udp"]
    assert connects == []  # datagrams make no connections


def test_option_errors_are_clear() -> None:
    def handler(request: Request, info: ConnectionInfo) -> None:
        return None

    with pytest.raises(ValueError, match="apply to a datastore"):
        TcpServer(handler, identity=object())
    with pytest.raises(ValueError, match="unknown framer"):
        TcpServer(ServerContext(), framer="modbus-over-carrier-pigeon")
    with pytest.raises(ValueError, match="not MBAP"):
        SerialServer(ServerContext(), port="/dev/null", framer="socket")
    with pytest.raises(ValueError, match="port must be"):
        TcpServer(ServerContext(), port=70000)
    with pytest.raises(ValueError, match="idle_timeout"):
        TcpServer(ServerContext(), idle_timeout=-1)
    with pytest.raises(ValueError, match="connection_policy"):
        TcpServer(ServerContext(), connection_policy="first_come")
    with pytest.raises(ValueError, match="handler_threads"):
        TcpServer(ServerContext(), handler_threads=-2)
    with pytest.raises(TypeError, match="ServerContext or a handler"):
        TcpServer(42)  # type: ignore[arg-type]


def test_server_diagnostics_over_tcp(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="modbus_sync")
    with TcpServer(ServerContext(Device.sized(10)), port=0) as server, RawClient(server.port) as client:
        for _ in range(3):
            client.read_registers(0, 1)
        assert server.diagnostics.bus_message_count == 3
        assert server.diagnostics.server_message_count == 3
