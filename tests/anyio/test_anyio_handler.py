"""ConnectionInfo, RawReply and dispatcher_handler (transport-independent)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Awaitable
from typing import Any

import anyio
import pytest

from modbus_anyio import ConnectionInfo, RawReply, dispatcher_handler
from modbus_core import Device, Dispatcher, ReadHoldingRegisters, ReadHoldingRegistersResponse, Request, ServerContext


def test_connection_info_defaults_encode_as_mbap() -> None:
    info = ConnectionInfo("tcp", "127.0.0.1:5000", "127.0.0.1:502")
    assert info.role is None
    assert info.server == ""
    response = Request(ReadHoldingRegisters(0, 1), 1, 7).reply(ReadHoldingRegistersResponse((0x1234,)))
    assert info.encode(response) == bytes.fromhex("0007 0000 0005 01 03 02 1234")
    assert "encode" not in repr(info)
    assert info == ConnectionInfo("tcp", "127.0.0.1:5000", "127.0.0.1:502", encode=lambda r: b"")


def test_raw_reply_parts() -> None:
    reply = RawReply.of(b"\x01", 0.5, bytearray(b"\x02"), 1)  # type: ignore[arg-type]
    assert reply.parts == (b"\x01", 0.5, b"\x02", 1)
    assert reply.data == b"\x01\x02"
    assert RawReply([b"x"]).parts == (b"x",)  # type: ignore[arg-type]
    for bad in (-1.0, "text", True, None):
        with pytest.raises(ValueError, match="RawReply"):
            RawReply.of(bad)  # type: ignore[arg-type]


def test_dispatcher_handler_answers_from_the_datastore() -> None:
    device = Device(holding_registers=[5, 6, 7])
    handler = dispatcher_handler(Dispatcher(ServerContext(device)))
    info = ConnectionInfo("tcp", "a", "b")
    response = handler(Request(ReadHoldingRegisters(1, 2), 1, 3), info)
    assert response == Request(ReadHoldingRegisters(1, 2), 1, 3).reply(ReadHoldingRegistersResponse((6, 7)))


def test_package_import_pulls_in_no_event_loop() -> None:
    """modbus_sync imports these pieces: they must not drag anyio, trio or asyncio in."""
    code = (
        "import sys, modbus_anyio, modbus_anyio.compat, modbus_anyio._security, modbus_anyio._handler;"
        "print(sorted(m for m in ('anyio', 'trio', 'asyncio') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


class SlowUnit:
    """A device whose reads are awaited (a gateway, say)."""

    async def read_holding_registers(self, address: int, count: int) -> list[int]:
        return [address] * count


def test_a_session_waiting_for_an_async_answer_does_not_let_a_repeated_poll_overtake_it() -> None:
    # Below every adapter: a session that has blocked on one request queues
    # what comes next, even a poll it could answer at once (answer_now).
    from modbus_anyio._session import Session
    from modbus_core import MbapFramer, ServerConnection

    fast = Device(holding_registers=[5, 6, 7])
    session = Session(
        ServerConnection(MbapFramer()),
        ConnectionInfo("tcp", "a", "b"),
        dispatcher=Dispatcher(ServerContext({1: SlowUnit(), 2: fast})),  # type: ignore[dict-item]
    )
    poll = bytes.fromhex("0000 0000 0006 02 03 0001 0002")
    answer = bytes.fromhex("0000 0000 0007 02 03 04 0006 0007")
    assert session.receive(poll, 0.0) == answer
    assert session.receive(b"\x00\x09" + poll[2:], 0.0) == b"\x00\x09" + answer[2:]  # answered at once
    assert session.receive(bytes.fromhex("0001 0000 0006 01 03 0004 0001"), 0.0) == b""
    assert session.blocked is not None
    assert session.receive(b"\x00\x02" + poll[2:], 0.0) == b""  # after the slow one
    awaitable = session.blocked.awaitable
    assert awaitable is not None
    result = anyio.run(_awaited, awaitable)
    assert session.resume(result) == bytes.fromhex("0001 0000 0005 01 03 02 0004") + b"\x00\x02" + answer[2:]
    assert session.blocked is None


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
