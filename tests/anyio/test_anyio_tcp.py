"""The TCP server on asyncio and trio, over real loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import re
import socket
import struct
import time
from collections.abc import Awaitable
from typing import Any

import anyio
import pytest

from modbus_anyio import ConnectionInfo, RawReply, TcpServer, serve_tcp
from modbus_core import (
    AsciiFramer,
    ClientConnection,
    CustomFunction,
    Device,
    ExceptionCode,
    ExceptionResponse,
    FunctionTable,
    MbapFramer,
    ModbusExceptionError,
    RawPdu,
    ReadCoils,
    ReadDiscreteInputs,
    ReadHoldingRegisters,
    ReadHoldingRegistersResponse,
    ReadInputRegisters,
    Request,
    RequestPdu,
    Response,
    ResponsePdu,
    RtuFramer,
    ServerContext,
    WriteMultipleCoils,
    WriteMultipleRegisters,
    WriteSingleCoil,
    WriteSingleRegister,
)

from .anyio_support import connect, read_all_until_closed

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True, params=["reactor", "per-connection"])
def data_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test on both data paths of plain TCP: the reactor (Linux), and
    what serves where epoll is missing (asyncio's protocols; on trio a task
    per connection)."""
    if request.param == "per-connection":
        monkeypatch.setattr("modbus_anyio._reactor.reactor_available", lambda: False)
    return str(request.param)


def context(size: int = 100) -> ServerContext:
    return ServerContext(Device.sized(size))


def mbap(transaction_id: int, pdu: bytes, unit: int = 1) -> bytes:
    return transaction_id.to_bytes(2, "big") + b"\x00\x00" + (len(pdu) + 1).to_bytes(2, "big") + bytes((unit,)) + pdu


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_reads_and_writes_every_table(host: str) -> None:
    device = Device.sized(100)
    device.discrete_inputs[7] = True
    device.input_registers[9] = 999
    async with TcpServer(ServerContext(device), host=host, port=0) as server:
        assert server.addresses[0][0] == host
        assert server.port != 0
        with anyio.fail_after(5):
            client = await connect(server.port, host)
            assert (await client.call(WriteSingleCoil(3, True))).pdu.address == 3
            assert (await client.call(WriteMultipleCoils(10, (True, False, True)))).pdu.count == 3
            assert (await client.call(ReadCoils(0, 16))).pdu.values[:13] == (
                (False,) * 3 + (True,) + (False,) * 6 + (True, False, True)
            )
            assert (await client.call(ReadDiscreteInputs(7, 1))).pdu.values == (True,)
            await client.call(WriteSingleRegister(1, 0xBEEF))
            await client.call(WriteMultipleRegisters(2, (1, 2, 3)))
            assert (await client.call(ReadHoldingRegisters(0, 5))).pdu.registers == (0, 0xBEEF, 1, 2, 3)
            assert (await client.call(ReadInputRegisters(9, 1))).pdu.registers == (999,)
            missing = await client.call(ReadHoldingRegisters(99, 2))
            assert missing.pdu == ExceptionResponse(3, ExceptionCode.ILLEGAL_DATA_ADDRESS)
            info = server.connections[0]
            assert info.transport == "tcp"
            assert info.peer.startswith(f"[{host}]:" if ":" in host else f"{host}:")
            await client.aclose()
    assert device.holding_registers[1] == 0xBEEF
    assert not server.listening


async def test_default_host_is_loopback_and_every_interface_binds_both_families() -> None:
    server = TcpServer(context(), port=0)
    assert server.host == "127.0.0.1"
    async with TcpServer(context(), host=None, port=0) as everywhere:
        families = {":" in address[0] for address in everywhere.addresses}
        ports = {address[1] for address in everywhere.addresses}
        assert len(ports) == 1  # port 0: one port for every address
        if socket.has_ipv6 and len(everywhere.addresses) > 1:
            assert families == {True, False}
        with anyio.fail_after(5):
            client = await connect(everywhere.port, "127.0.0.1")
            assert not (await client.call(ReadHoldingRegisters(0, 1))).is_exception
            await client.aclose()


async def test_pipelined_requests_are_all_answered_in_order() -> None:
    async with TcpServer(context(), port=0) as server:
        with anyio.fail_after(5):
            stream = await anyio.connect_tcp("127.0.0.1", server.port)
            requests = b"".join(mbap(tid, bytes.fromhex("06 0000") + tid.to_bytes(2, "big")) for tid in range(1, 41))
            await stream.send(requests + mbap(41, bytes.fromhex("03 0000 0001")))
            expected = b"".join(mbap(tid, bytes.fromhex("06 0000") + tid.to_bytes(2, "big")) for tid in range(1, 41))
            expected += mbap(41, bytes.fromhex("03 02 0028"))
            data = b""
            while len(data) < len(expected):
                data += await stream.receive()
            assert data == expected
            await stream.aclose()


async def test_bursts_larger_than_a_read_from_several_clients_at_once() -> None:
    # On asyncio the connections of a server read into one shared buffer: each
    # read must be taken out of it before the next connection's read lands.
    async with TcpServer(context(), port=0) as server:

        async def client(number: int) -> None:
            stream = await anyio.connect_tcp("127.0.0.1", server.port)
            tids = range(1, 12001)  # 144,000 bytes of requests: several reads' worth
            requests = b"".join(mbap(tid, bytes.fromhex("03 0000 0001"), unit=number) for tid in tids)
            answers = b"".join(mbap(tid, bytes.fromhex("03 02 0000"), unit=number) for tid in tids)
            received = bytearray()

            async def read() -> None:
                while len(received) < len(answers):
                    received.extend(await stream.receive())

            async with anyio.create_task_group() as group:
                group.start_soon(read)
                for start in range(0, len(requests), 7001):  # frames split at odd places
                    await stream.send(requests[start : start + 7001])
            assert bytes(received) == answers
            await stream.aclose()

        with anyio.fail_after(20):
            async with anyio.create_task_group() as group:
                for number in range(1, 5):
                    group.start_soon(client, number)


async def test_the_data_path_under_test_is_the_one_serving(data_path: str) -> None:
    async with TcpServer(context(), port=0) as server:
        assert (server._reactor is not None) == (data_path == "reactor")
        with anyio.fail_after(5):
            stream = await anyio.connect_tcp("127.0.0.1", server.port)
            await stream.send(mbap(1, bytes.fromhex("03 0000 0001")))
            assert await stream.receive() == mbap(1, bytes.fromhex("03 02 0000"))
            await stream.aclose()


class HeldHandler:
    """An async handler that answers a register read with *value*, once released."""

    def __init__(self, value: int) -> None:
        self.value = value
        self.entered = anyio.Event()  # a request is in the handler
        self.release = anyio.Event()  # let it answer

    async def __call__(self, request: Request, info: ConnectionInfo) -> Response:
        self.entered.set()
        await self.release.wait()
        return request.reply(ReadHoldingRegistersResponse((self.value,)))


# On trio, connections come as anyio streams, with a task each.
@pytest.mark.parametrize(
    "anyio_backend", ["asyncio", pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop")], indirect=True
)
async def test_on_asyncio_idle_connections_have_no_task_and_blocked_work_has_one() -> None:
    handler = HeldHandler(7)
    async with TcpServer(handler, port=0) as server:
        with anyio.fail_after(5):
            tasks = len(asyncio.all_tasks())
            streams = [await anyio.connect_tcp("127.0.0.1", server.port) for _ in range(20)]
            while len(server.connections) < 20:
                await anyio.sleep(0.01)
            assert len(asyncio.all_tasks()) == tasks
            await streams[0].send(mbap(1, bytes.fromhex("03 0001 0001")))
            await handler.entered.wait()
            assert len(asyncio.all_tasks()) == tasks + 1  # the connection's handler, awaited
            handler.release.set()
            assert await streams[0].receive() == mbap(1, bytes.fromhex("03 02 0007"))
            while len(asyncio.all_tasks()) > tasks:
                await anyio.sleep(0.01)
            await streams[0].send(mbap(2, bytes.fromhex("03 0001 0001")))
            assert await streams[0].receive() == mbap(2, bytes.fromhex("03 02 0007"))
            for stream in streams:
                await stream.aclose()
            while server.connections:
                await anyio.sleep(0.01)


async def test_one_request_split_over_many_writes() -> None:
    async with TcpServer(context(), port=0) as server:
        with anyio.fail_after(5):
            stream = await anyio.connect_tcp("127.0.0.1", server.port)
            frame = mbap(7, bytes.fromhex("03 0000 0002"))
            for byte in frame:
                await stream.send(bytes((byte,)))
                await anyio.sleep(0.005)
            assert await stream.receive() == mbap(7, bytes.fromhex("03 04 0000 0000"))
            await stream.aclose()


async def test_serve_forever_reports_the_server_and_shutdown_stops_it() -> None:
    server = TcpServer(context(), port=0, name="plant")
    async with anyio.create_task_group() as task_group:
        started = await task_group.start(server.serve_forever)
        assert started is server
        assert server.listening
        assert server.name == "plant"
        with pytest.raises(RuntimeError, match="already serving"):
            await server.serve_forever()
        with anyio.fail_after(5):
            client = await connect(server.port)
            await client.call(ReadHoldingRegisters(0, 1))
            assert server.connections[0].server == "plant"
            await server.shutdown()
            assert await read_all_until_closed(client.stream) == b""
            await server.shutdown()  # idempotent
    with pytest.raises(OSError):
        await anyio.connect_tcp("127.0.0.1", server.port)


async def test_an_error_inside_async_with_propagates_unwrapped_after_shutdown() -> None:
    # On trio a task group wraps a body's exception in an exception group;
    # the server's context manager must not.
    server = TcpServer(context(), port=0)
    ports: list[int] = []

    async def body() -> None:
        async with server:
            ports.append(server.port)
            raise KeyError("from the body")

    with pytest.raises(KeyError, match="from the body"):
        await body()
    assert not server.listening
    with pytest.raises(OSError):
        await anyio.connect_tcp("127.0.0.1", ports[0])


async def test_a_cancelled_body_still_shuts_the_server_down() -> None:
    server = TcpServer(context(), port=0)
    with anyio.move_on_after(0.2) as scope:
        async with server:
            await anyio.sleep(10)
    assert scope.cancelled_caught
    assert not server.listening


async def test_address_in_use_is_a_plain_oserror() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=r"cannot bind 127\.0\.0\.1:.*Address already in use"):
            async with TcpServer(context(), port=port):
                pass
        server = TcpServer(context(), port=port)
        with pytest.raises(OSError, match="Address already in use"):
            await server.serve_forever()
        assert not server.listening


async def test_serve_tcp_function() -> None:
    async with anyio.create_task_group() as task_group:
        server = await task_group.start(lambda task_status: serve_tcp(context(), port=0, task_status=task_status))
        assert isinstance(server, TcpServer)
        with anyio.fail_after(5):
            client = await connect(server.port)
            await client.call(ReadHoldingRegisters(0, 1))
            await client.aclose()
        await server.shutdown()


async def test_cancelling_the_task_group_closes_everything() -> None:
    server = TcpServer(context(), port=0)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as task_group:
            await task_group.start(server.serve_forever)
            client = await connect(server.port)
            await client.call(ReadHoldingRegisters(0, 1))
            task_group.cancel_scope.cancel()
        assert await read_all_until_closed(client.stream) == b""
    assert not server.listening


async def test_shutdown_answers_requests_already_received() -> None:
    release = anyio.Event()
    answered: list[int] = []

    async def slow(request: Request, info: ConnectionInfo) -> Response:
        await release.wait()
        answered.append(request.transaction_id)
        return request.reply(ReadHoldingRegistersResponse((request.transaction_id,)))

    server = TcpServer(slow, port=0)
    async with anyio.create_task_group() as task_group:
        await task_group.start(server.serve_forever)
        with anyio.fail_after(5):
            stream = await anyio.connect_tcp("127.0.0.1", server.port)
            await stream.send(mbap(1, bytes.fromhex("03 0000 0001")) + mbap(2, bytes.fromhex("03 0000 0001")))
            while not server.connections:
                await anyio.sleep(0.01)
            await anyio.sleep(0.1)
            task_group.start_soon(server.shutdown)
            await anyio.sleep(0.1)
            release.set()
            data = await read_all_until_closed(stream)
    assert data == mbap(1, bytes.fromhex("03 02 0001")) + mbap(2, bytes.fromhex("03 02 0002"))
    assert answered == [1, 2]


async def test_several_servers_share_a_datastore() -> None:
    shared = context()
    async with TcpServer(shared, port=0) as first, TcpServer(shared, port=0) as second:
        with anyio.fail_after(5):
            a = await connect(first.port)
            b = await connect(second.port)
            await a.call(WriteSingleRegister(5, 55))
            assert (await b.call(ReadHoldingRegisters(5, 1))).pdu.registers == (55,)
            await a.aclose()
            await b.aclose()


@pytest.mark.parametrize(("framer", "client_framer"), [("rtu", RtuFramer), ("ascii", AsciiFramer)])
async def test_any_framer_over_tcp(framer: str, client_framer: type[Any]) -> None:
    async with TcpServer(context(), port=0, framer=framer) as server:
        with anyio.fail_after(5):
            client = await connect(server.port, framer=client_framer())
            await client.call(WriteSingleRegister(4, 44), unit=3)
            response = await client.call(ReadHoldingRegisters(4, 1), unit=3)
            assert response.pdu.registers == (44,)
            assert response.unit == 3
            await client.aclose()


async def test_unit_zero_and_255_are_answered_on_tcp() -> None:
    async with TcpServer(context(), port=0) as server:
        with anyio.fail_after(5):
            client = await connect(server.port)
            for unit in (0, 255):
                response = await client.call(ReadHoldingRegisters(0, 1), unit=unit)
                assert not response.is_exception
                assert response.unit == unit
            await client.aclose()


async def test_missing_units_get_exception_0b_or_silence() -> None:
    several = ServerContext({1: Device.sized(10)})
    async with TcpServer(several, port=0) as server, TcpServer(several, port=0, ignore_missing_units=True) as quiet:
        with anyio.fail_after(5):
            client = await connect(server.port)
            response = await client.call(ReadHoldingRegisters(0, 1), unit=9)
            assert response.pdu == ExceptionResponse(3, ExceptionCode.GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND)
            await client.aclose()
            stream = await anyio.connect_tcp("127.0.0.1", quiet.port)
            await stream.send(mbap(1, bytes.fromhex("03 0000 0001"), unit=9) + mbap(2, bytes.fromhex("03 0000 0001")))
            assert await stream.receive() == mbap(2, bytes.fromhex("03 02 0000"))
            await stream.aclose()


# -- handlers -------------------------------------------------------------------


async def test_async_handler_answers_in_order() -> None:
    """Requests on one connection are executed and answered in order, though
    the first takes longest."""
    order: list[int] = []

    async def handler(request: Request, info: ConnectionInfo) -> Response:
        value = request.pdu.address  # type: ignore[attr-defined]
        await anyio.sleep(0.05 * (5 - value))
        order.append(value)
        return request.reply(ReadHoldingRegistersResponse((value,)))

    async with TcpServer(handler, port=0) as server:
        with anyio.fail_after(5):
            stream = await anyio.connect_tcp("127.0.0.1", server.port)
            await stream.send(
                b"".join(mbap(i + 1, bytes.fromhex("03") + i.to_bytes(2, "big") + b"\x00\x01") for i in range(5))
            )
            expected = b"".join(mbap(i + 1, bytes.fromhex("03 02") + i.to_bytes(2, "big")) for i in range(5))
            data = b""
            while len(data) < len(expected):
                data += await stream.receive()
            assert data == expected
            await stream.aclose()
    assert order == [0, 1, 2, 3, 4]


async def test_sync_and_async_handlers_mix_and_info_is_given() -> None:
    seen: list[ConnectionInfo] = []

    def handler(request: Request, info: ConnectionInfo) -> Response | Awaitable[Response] | None:
        seen.append(info)
        address = request.pdu.address  # type: ignore[attr-defined]
        if address == 1:
            return None  # no answer

        async def later() -> Response:
            await anyio.sleep(0.01)
            return request.reply(ReadHoldingRegistersResponse((address,)))

        return later() if address % 2 else request.reply(ReadHoldingRegistersResponse((address,)))

    async with TcpServer(handler, port=0, name="mixer") as server:
        with anyio.fail_after(5):
            client = await connect(server.port)
            for address in (2, 3, 4):
                assert (await client.call(ReadHoldingRegisters(address, 1))).pdu.registers == (address,)
            await client.send(ReadHoldingRegisters(1, 1))
            assert (await client.call(ReadHoldingRegisters(6, 1))).pdu.registers == (6,)
            await client.aclose()
    assert {info.server for info in seen} == {"mixer"}
    assert len({info.connection_id for info in seen}) == 1
    assert seen[0].encode(Request(ReadHoldingRegisters(0, 1), 1, 9).reply(ReadHoldingRegistersResponse((1,))))[:2] == (
        b"\x00\x09"
    )


async def test_handler_failures_answer_exception_04_or_their_own_code(caplog: pytest.LogCaptureFixture) -> None:
    def handler(request: Request, info: ConnectionInfo) -> Any:
        address = request.pdu.address  # type: ignore[attr-defined]
        if address == 0:
            raise RuntimeError("boom")
        if address == 1:
            raise ModbusExceptionError(ExceptionCode.SERVER_DEVICE_BUSY)
        if address == 2:

            async def fails() -> Response:
                raise ValueError("later boom")

            return fails()
        if address == 3:
            return "not a response"
        return request.reply(ReadHoldingRegistersResponse((address,)))

    caplog.set_level(logging.ERROR, logger="modbus_anyio")
    async with TcpServer(handler, port=0) as server:
        with anyio.fail_after(5):
            client = await connect(server.port)
            codes = []
            for address in range(5):
                response = await client.call(ReadHoldingRegisters(address, 1))
                codes.append(response.pdu.exception_code if response.is_exception else None)
            assert codes == [4, 6, 4, 4, None]
            await client.aclose()
    assert "boom" in caplog.text
    assert "later boom" in caplog.text


async def test_raw_reply_writes_bytes_and_pauses() -> None:
    def handler(request: Request, info: ConnectionInfo) -> RawReply:
        whole = info.encode(request.reply(ReadHoldingRegistersResponse((0x1234,))))
        if request.pdu.address == 0:  # type: ignore[attr-defined]
            return RawReply.of(whole[:5], 0.2, whole[5:])
        return RawReply.of(b"junk")

    async with TcpServer(handler, port=0) as server:
        with anyio.fail_after(5):
            stream = await anyio.connect_tcp("127.0.0.1", server.port)
            await stream.send(mbap(1, bytes.fromhex("03 0000 0001")))
            first = await stream.receive()
            start = anyio.current_time()
            second = await stream.receive()
            assert anyio.current_time() - start > 0.1
            assert first + second == mbap(1, bytes.fromhex("03 02 1234"))
            await stream.send(mbap(2, bytes.fromhex("03 0001 0001")))
            assert await stream.receive() == b"junk"
            await stream.aclose()


@dataclasses.dataclass(frozen=True, slots=True)
class Ping(RequestPdu):
    """A user-defined function 65: echo the payload reversed."""

    function_code = 0x41
    payload: bytes

    def encode(self) -> bytes:
        return b"\x41" + self.payload

    @classmethod
    def decode(cls, pdu: bytes) -> Ping:
        return cls(pdu[1:])

    def execute(self, device: Device) -> PingResponse:
        return PingResponse(self.payload[::-1])


@dataclasses.dataclass(frozen=True, slots=True)
class PingResponse(ResponsePdu):
    function_code = 0x41
    payload: bytes

    def encode(self) -> bytes:
        return b"\x41" + self.payload

    @classmethod
    def decode(cls, pdu: bytes) -> PingResponse:
        return cls(pdu[1:])


PING = CustomFunction(0x41, Ping, PingResponse)


async def test_rtu_over_tcp_a_frame_of_unknown_length_ends_with_silence() -> None:
    # Function 0x41 is unknown: the RTU framer cannot tell where its frame
    # ends but by the silence after it (3.5 characters); then it is answered
    # with exception 01.  Sent in pieces, the frame's end moves.
    frame = RtuFramer().encode(1, 0, bytes.fromhex("41 0102 0304"))
    async with TcpServer(context(), port=0, framer="rtu") as server:
        with anyio.fail_after(5):
            stream = await anyio.connect_tcp("127.0.0.1", server.port)
            for piece in (frame[:2], frame[2:5], frame[5:]):
                await stream.send(piece)
                await anyio.sleep(0.0005)
            assert await stream.receive() == RtuFramer().encode(1, 0, bytes.fromhex("c1 01"))
            await stream.aclose()


async def test_custom_function_codes() -> None:
    async with TcpServer(context(), port=0, custom_pdu=[PING]) as server, TcpServer(context(), port=0) as plain:
        with anyio.fail_after(5):
            client = await connect(server.port)
            client.connection = ClientConnection(MbapFramer(), functions=FunctionTable([PING]))
            response = await client.call(Ping(b"abc"))
            assert response.pdu == PingResponse(b"cba")
            await client.aclose()
            other = await connect(plain.port)
            response = await other.call(RawPdu(0x41, b"abc"))
            assert response.pdu == ExceptionResponse(0x41, ExceptionCode.ILLEGAL_FUNCTION)
            await other.aclose()
    with pytest.raises(ValueError, match="either"):
        TcpServer(context(), functions=FunctionTable([PING]), custom_pdu=[PING])


# -- trace hooks ----------------------------------------------------------------


async def test_trace_hooks_pymodbus_style_and_with_connection_info() -> None:
    events: list[tuple[Any, ...]] = []

    def trace_packet(sending: bool, data: bytes) -> bytes:
        events.append(("packet", sending, data))
        return data

    def trace_pdu(sending: bool, pdu: Any, info: ConnectionInfo) -> Any:
        events.append(("pdu", sending, type(pdu).__name__, info.peer))
        if not sending and isinstance(pdu, ReadHoldingRegisters):
            return ReadHoldingRegisters(pdu.address + 1, pdu.count)  # hooks may change what passes
        return pdu

    def trace_connect(connected: bool, info: ConnectionInfo) -> None:
        events.append(("connect", connected, info.transport))

    device = Device(holding_registers=[10, 11, 12])
    async with TcpServer(
        ServerContext(device), port=0, trace_packet=trace_packet, trace_pdu=trace_pdu, trace_connect=trace_connect
    ) as server:
        with anyio.fail_after(5):
            client = await connect(server.port)
            response = await client.call(ReadHoldingRegisters(0, 1))
            assert response.pdu.registers == (11,)
            peer = server.connections[0].peer
            await client.aclose()
            while server.connections:
                await anyio.sleep(0.01)
    assert events[0] == ("connect", True, "tcp")
    assert events[1] == ("packet", False, mbap(1, bytes.fromhex("03 0000 0001")))
    assert events[2] == ("pdu", False, "ReadHoldingRegisters", peer)
    assert events[3] == ("pdu", True, "ReadHoldingRegistersResponse", peer)
    assert events[4] == ("packet", True, mbap(1, bytes.fromhex("03 02 000b")))
    assert events[5] == ("connect", False, "tcp")


async def test_trace_packet_may_rewrite_what_is_sent(caplog: pytest.LogCaptureFixture) -> None:
    def trace_packet(sending: bool, data: bytes) -> bytes:
        return data + b"!" if sending else data

    def trace_connect(connected: bool) -> None:
        raise RuntimeError("a broken hook does not break the server")

    caplog.set_level(logging.ERROR, logger="modbus_anyio")
    async with TcpServer(context(), port=0, trace_packet=trace_packet, trace_connect=trace_connect) as server:
        with anyio.fail_after(5):
            stream = await anyio.connect_tcp("127.0.0.1", server.port)
            await stream.send(mbap(1, bytes.fromhex("06 0001 0002")))
            assert await stream.receive() == mbap(1, bytes.fromhex("06 0001 0002")) + b"!"
            await stream.aclose()
    assert "trace_connect raised" in caplog.text


async def test_broken_trace_hooks_are_logged_and_bypassed(caplog: pytest.LogCaptureFixture) -> None:
    def trace_pdu(sending: bool, pdu: Any) -> Any:
        raise RuntimeError("hook bug")

    def trace_packet(sending: bool, data: bytes) -> object:
        return "not bytes"

    caplog.set_level(logging.ERROR, logger="modbus_anyio")
    async with TcpServer(context(), port=0, trace_pdu=trace_pdu, trace_packet=trace_packet) as server:
        with anyio.fail_after(5):
            client = await connect(server.port)
            assert (await client.call(ReadHoldingRegisters(0, 2))).pdu.registers == (0, 0)
            await client.aclose()
    assert "trace_pdu raised" in caplog.text
    assert "trace_packet returned 'not bytes'" in caplog.text


# -- robustness ------------------------------------------------------------------


async def test_garbage_and_silent_clients_do_not_block_others() -> None:
    async with TcpServer(context(), port=0) as server:
        with anyio.fail_after(5):
            silent = await anyio.connect_tcp("127.0.0.1", server.port)
            half = await anyio.connect_tcp("127.0.0.1", server.port)
            await half.send(mbap(1, bytes.fromhex("03 0000 0001"))[:9])
            garbage = await anyio.connect_tcp("127.0.0.1", server.port)
            await garbage.send(b"\xff" * 64)  # MBAP length 0xFFFF: the stream cannot continue
            good = await connect(server.port)
            for address in range(20):
                assert not (await good.call(ReadHoldingRegisters(address, 1))).is_exception
            assert await read_all_until_closed(garbage) == b""
            await good.aclose()
            await silent.aclose()
            await half.aclose()


async def test_wrong_protocol_id_is_dropped_and_the_stream_goes_on() -> None:
    async with TcpServer(context(), port=0) as server:
        with anyio.fail_after(5):
            stream = await anyio.connect_tcp("127.0.0.1", server.port)
            bad = bytearray(mbap(1, bytes.fromhex("03 0000 0001")))
            bad[3] = 1
            await stream.send(bytes(bad) + mbap(2, bytes.fromhex("03 0000 0001")))
            assert await stream.receive() == mbap(2, bytes.fromhex("03 02 0000"))
            await stream.aclose()


async def test_partial_frame_timeout_closes_the_connection(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="modbus_anyio")
    async with TcpServer(context(), port=0, frame_timeout=0.2) as server:
        with anyio.fail_after(5):
            stream = await anyio.connect_tcp("127.0.0.1", server.port)
            await stream.send(mbap(1, bytes.fromhex("03 0000 0001"))[:8])
            start = anyio.current_time()
            assert await read_all_until_closed(stream) == b""
            assert 0.15 < anyio.current_time() - start < 2
    assert "partial MBAP frame" in caplog.text


async def test_connections_are_logged_when_they_open_and_close(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="modbus_anyio")
    async with TcpServer(context(), port=0, name="plc") as server:
        with anyio.fail_after(5):
            client = await connect(server.port)
            assert not (await client.call(ReadHoldingRegisters(0, 1))).is_exception
            await client.aclose()
            while "closed" not in caplog.text:
                await anyio.sleep(0.01)
    lines = [record.getMessage() for record in caplog.records if "connection #" in record.getMessage()]
    assert len(lines) == 2
    assert re.fullmatch(r"plc: connection #\d+ from 127\.0\.0\.1:\d+ opened", lines[0])
    assert lines[1] == lines[0].replace("opened", "closed")


async def test_idle_timeout_closes_quiet_connections_only(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="modbus_anyio")
    async with TcpServer(context(), port=0, idle_timeout=0.5) as server:
        with anyio.fail_after(10):
            quiet = await anyio.connect_tcp("127.0.0.1", server.port)
            busy = await connect(server.port)
            start = anyio.current_time()
            while anyio.current_time() - start < 1.0:
                assert not (await busy.call(ReadHoldingRegisters(0, 1))).is_exception
                await anyio.sleep(0.05)
            assert await read_all_until_closed(quiet) == b""
            assert not (await busy.call(ReadHoldingRegisters(0, 1))).is_exception
            await busy.aclose()
    assert "idle for 0.5 s" in caplog.text


async def test_connection_limit_closes_the_oldest_idle(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="modbus_anyio")
    async with TcpServer(context(), port=0, max_connections=2) as server:
        with anyio.fail_after(5):
            oldest = await connect(server.port)
            await oldest.call(ReadHoldingRegisters(0, 1))
            await anyio.sleep(0.05)
            newer = await connect(server.port)
            await newer.call(ReadHoldingRegisters(0, 1))
            third = await connect(server.port)
            assert not (await third.call(ReadHoldingRegisters(0, 1))).is_exception
            assert await read_all_until_closed(oldest.stream) == b""
            assert not (await newer.call(ReadHoldingRegisters(0, 1))).is_exception
            assert len(server.connections) == 2
            await newer.aclose()
            await third.aclose()
    assert "closing the oldest idle one" in caplog.text


async def test_connection_limit_refuse_policy(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="modbus_anyio")
    async with TcpServer(context(), port=0, max_connections=1, connection_policy="refuse") as server:
        with anyio.fail_after(5):
            first = await connect(server.port)
            await first.call(ReadHoldingRegisters(0, 1))
            second = await anyio.connect_tcp("127.0.0.1", server.port)
            assert await read_all_until_closed(second) == b""
            assert not (await first.call(ReadHoldingRegisters(0, 1))).is_exception
            await first.aclose()
    assert "refusing" in caplog.text


async def test_a_client_that_does_not_read_is_not_read_and_gets_every_answer_later() -> None:
    # 60,000 requests of 12 bytes ask for 15 MB of answers, more than the
    # socket buffers of both ends hold.  The server must stop reading that
    # client rather than buffer its answers without bound, serve others
    # meanwhile, and once the client reads (and has half-closed), send every
    # answer in order, then close.
    tids = range(1, 60001)
    requests = b"".join(mbap(tid % 65536, bytes.fromhex("03 0000 007d")) for tid in tids)
    answers = b"".join(mbap(tid % 65536, bytes.fromhex("03 fa") + bytes(250)) for tid in tids)
    async with TcpServer(context(200), port=0) as server:
        with anyio.fail_after(60):
            greedy = socket.socket()
            greedy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
            greedy.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                greedy.connect(("127.0.0.1", server.port))
            await anyio.wait_writable(greedy)
            sent = 0
            while sent < len(requests):  # send what the kernel takes, until it takes nothing for a while
                try:
                    sent += greedy.send(requests[sent : sent + 65536])
                except BlockingIOError:
                    with anyio.move_on_after(0.5) as waited:
                        await anyio.wait_writable(greedy)
                    if waited.cancelled_caught:
                        break
            answered = -1
            while answered != server.diagnostics.bus_message_count:  # until the server stops
                answered = server.diagnostics.bus_message_count
                await anyio.sleep(0.3)
            assert answered < len(tids) // 2, "the server kept reading a client that reads nothing"
            other = await connect(server.port)
            assert not (await other.call(ReadHoldingRegisters(0, 1))).is_exception
            await other.aclose()

            received = bytearray()

            async def read_everything() -> None:
                while True:
                    await anyio.wait_readable(greedy)
                    data = greedy.recv(1 << 20)
                    if not data:
                        return
                    received.extend(data)

            async with anyio.create_task_group() as group:
                group.start_soon(read_everything)
                while sent < len(requests):
                    await anyio.wait_writable(greedy)
                    sent += greedy.send(requests[sent:])
                greedy.shutdown(socket.SHUT_WR)
            greedy.close()
    assert len(received) == len(answers)
    assert received == answers


async def test_a_client_reset_while_its_async_handler_runs_costs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    # The connection is not read while its handler runs; the reset must not
    # make the server spin on it meanwhile, nor log an error after.
    caplog.set_level(logging.INFO, logger="modbus_anyio")
    handler = HeldHandler(1)
    async with TcpServer(handler, port=0) as server:
        with anyio.fail_after(10):
            client = socket.socket()
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                client.connect(("127.0.0.1", server.port))
            await anyio.wait_writable(client)
            client.send(mbap(1, bytes.fromhex("03 0000 0001")))
            await handler.entered.wait()
            client.close()  # SO_LINGER 0: a reset
            cpu = time.process_time()
            await anyio.sleep(0.5)
            assert time.process_time() - cpu < 0.25, "the server spun on the reset connection"
            handler.release.set()
            while server.connections:
                await anyio.sleep(0.01)
            other = await connect(server.port)
            assert (await other.call(ReadHoldingRegisters(0, 1))).pdu == ReadHoldingRegistersResponse((1,))
            await other.aclose()
    assert "ERROR" not in caplog.text


async def test_nodelay_and_keepalive_are_on() -> None:
    seen: list[tuple[int, int]] = []

    async with TcpServer(context(), port=0) as server:
        with anyio.fail_after(5):
            client = await connect(server.port)
            await client.call(ReadHoldingRegisters(0, 1))
            # The server's side of the connection, found among this process's
            # descriptors by its peer port (uvloop hides its socket objects).
            local_port = client.stream.extra(anyio.abc.SocketAttribute.local_port)
            for name in os.listdir("/proc/self/fd"):
                try:
                    descriptor = os.dup(int(name))
                except OSError:
                    continue
                try:
                    probe = socket.socket(fileno=descriptor)
                except OSError:  # not a socket
                    os.close(descriptor)
                    continue
                with probe:
                    try:
                        if probe.family != socket.AF_INET or probe.getpeername()[1] != local_port:
                            continue
                    except OSError:
                        continue
                    seen.append(
                        (
                            probe.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY),
                            probe.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                        )
                    )
            await client.aclose()
    assert seen
    assert all(nodelay and keepalive for nodelay, keepalive in seen)


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="port"):
        TcpServer(context(), port=70000)
    with pytest.raises(ValueError, match="framer"):
        TcpServer(context(), framer="carrier pigeon")
    with pytest.raises(ValueError, match="idle_timeout"):
        TcpServer(context(), idle_timeout=0)
    with pytest.raises(ValueError, match="max_connections"):
        TcpServer(context(), max_connections=0)
    with pytest.raises(ValueError, match="connection_policy"):
        TcpServer(context(), connection_policy="maybe")
    with pytest.raises(TypeError, match="ServerContext or a handler"):
        TcpServer(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="datastore"):
        TcpServer(lambda request, info: None, broadcast=True)


async def test_a_failing_connection_does_not_stop_the_server(caplog: pytest.LogCaptureFixture) -> None:
    """trace_connect raising is logged; a framer factory that fails breaks only its connection."""
    calls = 0

    def framer() -> MbapFramer:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("factory bug")
        return MbapFramer()

    caplog.set_level(logging.ERROR)
    async with TcpServer(context(), port=0, framer=framer) as server:
        with anyio.fail_after(5):
            first = await anyio.connect_tcp("127.0.0.1", server.port)
            assert await read_all_until_closed(first) == b""
            client = await connect(server.port)
            assert not (await client.call(ReadHoldingRegisters(0, 1))).is_exception
            await client.aclose()
    assert "factory bug" in caplog.text


async def test_a_framer_that_breaks_mid_stream_costs_its_connection_only(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenFramer(MbapFramer):
        def receive_data(self, data: bytes | bytearray | memoryview, now: float) -> None:
            if b"boom" in bytes(data):
                raise RuntimeError("framer bug")
            super().receive_data(data, now)

    caplog.set_level(logging.ERROR)
    async with TcpServer(context(), port=0, framer=BrokenFramer) as server:
        with anyio.fail_after(5):
            other = await connect(server.port)
            broken = await anyio.connect_tcp("127.0.0.1", server.port)
            await broken.send(b"boom")
            assert await read_all_until_closed(broken) == b""
            assert not (await other.call(ReadHoldingRegisters(0, 1))).is_exception
            await other.aclose()
    assert "a connection failed" in caplog.text
    assert "framer bug" in caplog.text
