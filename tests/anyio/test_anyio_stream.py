"""serve_stream: Modbus over any anyio ByteStream (here an in-memory pair)."""

from __future__ import annotations

import anyio
import anyio.abc
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from modbus_anyio import AccessRule, ConnectionInfo, RolePolicy, serve_stream
from modbus_core import (
    Device,
    ExceptionCode,
    ExceptionResponse,
    ReadHoldingRegisters,
    Request,
    Response,
    RtuFramer,
    ServerContext,
    WriteSingleRegister,
    WriteSingleRegisterResponse,
)

from .anyio_support import Client

pytestmark = pytest.mark.anyio


class MemoryByteStream(anyio.abc.ByteStream):
    """One end of an in-memory byte pipe: the kind of transport a user brings."""

    def __init__(self, send: MemoryObjectSendStream[bytes], receive: MemoryObjectReceiveStream[bytes]) -> None:
        self._send = send
        self._receive = receive

    async def send(self, item: bytes) -> None:
        await self._send.send(item)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            raise
        except anyio.ClosedResourceError:
            raise anyio.EndOfStream from None

    async def send_eof(self) -> None:
        await self._send.aclose()

    async def aclose(self) -> None:
        await self._send.aclose()
        await self._receive.aclose()


def byte_stream_pair() -> tuple[MemoryByteStream, MemoryByteStream]:
    a_send, b_receive = anyio.create_memory_object_stream[bytes](16)
    b_send, a_receive = anyio.create_memory_object_stream[bytes](16)
    return MemoryByteStream(a_send, a_receive), MemoryByteStream(b_send, b_receive)


async def test_serve_stream_answers_until_the_stream_ends() -> None:
    server_end, client_end = byte_stream_pair()
    device = Device.sized(10)
    connects: list[tuple[bool, str]] = []
    with anyio.fail_after(5):
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(
                lambda: serve_stream(
                    server_end,
                    ServerContext(device),
                    peer="radio-7",
                    trace_connect=lambda connected, info: connects.append((connected, info.peer)),
                )
            )
            client = Client(client_end)
            await client.call(WriteSingleRegister(2, 22))
            assert (await client.call(ReadHoldingRegisters(2, 1))).pdu.registers == (22,)
            await client_end.send_eof()
    assert device.holding_registers[2] == 22
    assert connects == [(True, "radio-7"), (False, "radio-7")]


async def test_serve_stream_with_rtu_a_handler_and_a_role_policy() -> None:
    server_end, client_end = byte_stream_pair()
    seen: list[ConnectionInfo] = []

    def handler(request: Request, info: ConnectionInfo) -> Response:
        seen.append(info)
        return request.reply(WriteSingleRegisterResponse(1, 1))

    policy = RolePolicy({"writer": [AccessRule(functions=frozenset({6}))]})
    with anyio.fail_after(5):
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(
                lambda: serve_stream(
                    server_end, handler, framer="rtu", role="reader", policy=policy, transport="websocket"
                )
            )
            client = Client(client_end, RtuFramer())
            response = await client.call(WriteSingleRegister(1, 1), unit=3)
            assert response.pdu == ExceptionResponse(6, ExceptionCode.ILLEGAL_FUNCTION)
            await client_end.send_eof()
    assert seen == []  # refused before the handler

    server_end, client_end = byte_stream_pair()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(lambda: serve_stream(server_end, handler, framer="rtu", role="writer", policy=policy))
            client = Client(client_end, RtuFramer())
            assert not (await client.call(WriteSingleRegister(1, 1), unit=3)).is_exception
            await client_end.send_eof()
    assert seen[0].role == "writer"
    assert seen[0].transport == "stream"


async def test_serve_stream_refuses_what_is_not_an_answer() -> None:
    server_end, _ = byte_stream_pair()
    with pytest.raises(TypeError, match="ServerContext or a handler"):
        await serve_stream(server_end, 42)  # type: ignore[arg-type]


async def test_the_clock_fed_to_the_core_is_anyios() -> None:
    """Arrival times and deadlines must come from one clock: the one anyio's
    cancel scopes use."""
    from modbus_anyio._server import event_loop_clock

    clock = event_loop_clock()
    before = anyio.current_time()
    now = clock()
    after = anyio.current_time()
    assert before <= now <= after
