"""Modbus traffic through the running simulator: real servers, a real client, faults that act on the wire."""

from __future__ import annotations

import socket
import struct
import time
import tracemalloc
from typing import Any

import anyio
import pytest
from pymodbus.exceptions import ModbusIOException

from modbus_anyio import ConnectionInfo
from modbus_anyio.simulator import Simulator
from modbus_core import (
    NEED_DATA,
    ExceptionCode,
    MbapFramer,
    ReadHoldingRegisters,
    ReadHoldingRegistersResponse,
    ReadInputRegisters,
    ReadWriteMultipleRegisters,
    ReadWriteMultipleRegistersResponse,
    Request,
    Response,
    ServerConnection,
    WriteMultipleRegisters,
    WriteMultipleRegistersResponse,
    WriteSingleRegister,
)

from .sim_support import http, modbus_address, modbus_client, running, small_config

pytestmark = pytest.mark.anyio


def read_holding(address: tuple[str, int], start: int, count: int, unit: int, timeout: float = 2.0) -> Any:
    """Read with pymodbus: the response (maybe an exception response), or the ModbusIOException."""
    with modbus_client(address, timeout=timeout) as client:
        try:
            return client.read_holding_registers(start, count=count, device_id=unit)
        except ModbusIOException as error:
            return error


def raw_request(
    address: tuple[str, int], data: bytes, *, quiet: float = 0.3, limit: float = 3.0
) -> list[tuple[float, bytes]]:
    """Send *data* on a fresh connection; every chunk received (with its arrival time) until *quiet*
    seconds pass after one, or *limit* seconds in all."""
    chunks: list[tuple[float, bytes]] = []
    with socket.create_connection(address, timeout=limit) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sent = time.monotonic()
        sock.sendall(data)
        deadline = sent + limit
        while time.monotonic() < deadline:
            # The first answer may be late on purpose; after it, silence ends the answer.
            sock.settimeout(quiet if chunks else max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append((time.monotonic() - sent, chunk))
    return chunks


MBAP = MbapFramer()


def mbap_read(unit: int, start: int, count: int, transaction: int = 1) -> bytes:
    return MBAP.encode(unit, transaction, ReadHoldingRegisters(start, count).encode())


async def test_clients_read_and_write_the_plant_and_calls_are_recorded() -> None:
    async with running() as simulator:
        address = modbus_address(simulator)

        def exchange() -> tuple[Any, Any, Any]:
            with modbus_client(address) as client:
                voltage = client.read_input_registers(0, count=2, device_id=1)
                written = client.write_register(0, 777, device_id=1)
                missing = client.read_holding_registers(0, count=1, device_id=9)
                return voltage, written, missing

        voltage, written, missing = await anyio.to_thread.run_sync(exchange)
        assert voltage.registers == list(simulator.plant.point("meter/voltage").raw())
        assert not written.isError()
        assert simulator.plant.point("meter/setpoint").value == 777
        assert missing.isError()
        assert missing.exception_code == 0x0B  # no device 9 on TCP: gateway target failed to respond
        calls = simulator.recorder.calls()
        assert [(call.request.unit, call.function, call.result) for call in calls] == [
            (1, 4, "ok"),
            (1, 6, "ok"),
            (9, 3, "exception"),
        ]
        first = calls[0].to_json()
        assert first["peer"].startswith("127.0.0.1:")
        assert (first["server"], first["address"], first["count"], first["function_name"]) == (
            "main",
            0,
            2,
            "read_input_registers",
        )
        assert simulator.plant.device("meter").counters["requests"] == 2
        listener = simulator.listeners["main"]
        assert listener.handler.counters.to_json() == {
            "requests": 3,
            "responses": 3,
            "exceptions": 1,
            "no_answer": 0,
            "raw": 0,
            "faults": 0,
        }


async def test_exception_faults_limited_by_count_do_not_execute_writes() -> None:
    async with running() as simulator, http(simulator) as web:
        address = modbus_address(simulator)
        created = await web.post(
            "/api/faults",
            json={"effect": "exception", "unit": 1, "functions": [3, 6], "exception_code": 6, "count": 2},
        )
        assert created.status_code == 201, created.text
        rule = created.json()

        def exchange() -> list[Any]:
            with modbus_client(address) as client:
                return [
                    client.write_register(0, 5, device_id=1),
                    client.read_holding_registers(0, count=1, device_id=1),
                    client.read_holding_registers(0, count=1, device_id=1),
                    client.read_holding_registers(0, count=1, device_id=2),
                ]

        first, second, third, other_unit = await anyio.to_thread.run_sync(exchange)
        assert (first.isError(), first.exception_code) == (True, 6)
        assert (second.isError(), second.exception_code) == (True, 6)
        assert third.registers == [100]  # the faulty write was not executed; the rule is spent
        assert other_unit.registers == [500]
        ended = (await web.get(f"/api/faults/{rule['id']}")).json()
        assert (ended["applied"], ended["active"], ended["ended"]) == (2, False, "count reached")
        faulted = [call.fault for call in simulator.recorder.calls()]
        assert faulted == [rule["id"], rule["id"], None, None]


async def test_no_answer_for_a_time_then_normal_answers() -> None:
    async with running() as simulator, http(simulator) as web:
        address = modbus_address(simulator)
        response = await web.post("/api/faults", json={"effect": "no_answer", "duration": 1.5})
        assert response.status_code == 201
        silent = await anyio.to_thread.run_sync(lambda: read_holding(address, 0, 1, 1, timeout=0.5))
        assert isinstance(silent, ModbusIOException) or silent.isError()
        with anyio.fail_after(5):
            while (await web.get("/api/faults")).json()["items"][0]["ended"] != "expired":
                await anyio.sleep(0.1)
        answered = await anyio.to_thread.run_sync(lambda: read_holding(address, 0, 1, 1))
        assert answered.registers == [100]
        assert [call.result for call in simulator.recorder.calls()] == ["no_answer", "ok"]


async def test_delay_split_and_junk_act_on_the_bytes_sent() -> None:
    async with running() as simulator:
        address = modbus_address(simulator)
        expected = MBAP.encode(1, 7, ReadHoldingRegistersResponse((100, 0xFFFF, 0xFFFB)).encode())

        simulator.faults.add("delay", delay=0.3, count=1)
        chunks = await anyio.to_thread.run_sync(lambda: raw_request(address, mbap_read(1, 0, 3, 7)))
        assert b"".join(chunk for _, chunk in chunks) == expected
        assert chunks[0][0] >= 0.3

        simulator.faults.add("split", pieces=3, pause=0.15, count=1)
        chunks = await anyio.to_thread.run_sync(lambda: raw_request(address, mbap_read(1, 0, 3, 7)))
        assert b"".join(chunk for _, chunk in chunks) == expected
        assert len(chunks) >= 2  # three pieces; a busy client may read two at once
        assert chunks[-1][0] - chunks[0][0] >= 0.14

        simulator.faults.add("junk", junk_length=9, address_first=0, address_last=0, count=1)
        untouched = await anyio.to_thread.run_sync(lambda: raw_request(address, mbap_read(1, 1, 2, 8)))
        assert b"".join(chunk for _, chunk in untouched)[:2] == b"\x00\x08"  # not in the fault's addresses
        chunks = await anyio.to_thread.run_sync(lambda: raw_request(address, mbap_read(1, 0, 3, 7)))
        junk = b"".join(chunk for _, chunk in chunks)
        assert len(junk) == 9
        assert junk != expected[:9]
        results = [call.result for call in simulator.recorder.calls()]
        assert results == ["ok", "raw", "ok", "raw"]


async def test_listeners_stop_and_start_through_the_api() -> None:
    async with running() as simulator, http(simulator) as web:
        address = modbus_address(simulator)
        stopped = await web.post("/api/servers/main/stop", headers={"Content-Type": "application/json"})
        assert stopped.json()["state"] == "stopped"
        with pytest.raises(OSError):
            await anyio.to_thread.run_sync(lambda: socket.create_connection(address, timeout=2).close())
        started = await web.post("/api/servers/main/start", headers={"Content-Type": "application/json"})
        assert started.json()["state"] == "running"
        new_address = modbus_address(simulator)
        answered = await anyio.to_thread.run_sync(lambda: read_holding(new_address, 0, 1, 1))
        assert answered.registers == [100]
        server = (await web.get("/api/server")).json()
        assert server["listeners"][0]["counters"]["requests"] == 1


async def test_a_listener_that_cannot_bind_stops_everything_with_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = small_config(
            servers=[
                {"name": "first", "transport": "tcp", "port": 0},
                {"name": "second", "transport": "tcp", "port": port},
            ],
        )
        simulator = Simulator(config)
        with pytest.raises(Exception) as caught:
            async with simulator:
                pass
        error: BaseException = caught.value
        while isinstance(error, BaseExceptionGroup):
            error = error.exceptions[0]
        assert f"cannot start listener 'second' (tcp 127.0.0.1:{port})" in str(error)
        assert simulator.listeners["first"].state == "stopped"
        assert simulator.status == "stopped"


async def test_tcp_udp_and_rtu_over_tcp_listeners_share_the_plant() -> None:
    config = small_config(
        servers=[
            {"name": "tcp", "transport": "tcp", "port": 0},
            {"name": "udp", "transport": "udp", "port": 0},
            {"name": "rtu", "transport": "tcp", "port": 0, "framer": "rtu"},
        ],
        devices=[
            {
                "name": "shared",
                "unit": 5,
                "holding_registers": 4,
                "registers": [{"name": "x", "address": 0, "value": 42}],
            },
            {"name": "only-rtu", "unit": 6, "servers": ["rtu"], "holding_registers": 2},
        ],
    )
    async with running(config) as simulator:
        request = ReadHoldingRegisters(0, 1).encode()
        tcp = modbus_address(simulator, "tcp")
        udp = modbus_address(simulator, "udp")
        rtu = modbus_address(simulator, "rtu")

        def udp_exchange() -> bytes:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(2)
                sock.sendto(MBAP.encode(5, 3, request), udp)
                return sock.recv(512)

        from modbus_core import RtuFramer

        rtu_framer = RtuFramer()
        tcp_reply = await anyio.to_thread.run_sync(lambda: raw_request(tcp, MBAP.encode(5, 2, request)))
        udp_reply = await anyio.to_thread.run_sync(udp_exchange)
        rtu_reply = await anyio.to_thread.run_sync(lambda: raw_request(rtu, rtu_framer.encode(5, 0, request)))
        answer = ReadHoldingRegistersResponse((42,)).encode()
        assert b"".join(chunk for _, chunk in tcp_reply) == MBAP.encode(5, 2, answer)
        assert udp_reply == MBAP.encode(5, 3, answer)
        assert b"".join(chunk for _, chunk in rtu_reply) == rtu_framer.encode(5, 0, answer)
        missing_on_tcp = await anyio.to_thread.run_sync(lambda: raw_request(tcp, MBAP.encode(6, 4, request)))
        assert b"".join(chunk for _, chunk in missing_on_tcp)[7:] == b"\x83\x0b"
        servers = {call.info.server for call in simulator.recorder.calls()}
        assert servers == {"tcp", "udp", "rtu"}
        assert struct.unpack(">H", b"".join(chunk for _, chunk in tcp_reply)[:2]) == (2,)


def test_kept_calls_carrying_registers_come_back_whole_and_hold_no_int_per_register() -> None:
    info = ConnectionInfo("tcp", "127.0.0.1:50000", "127.0.0.1:502", server="plant", connection_id=1)
    recorder = Simulator(small_config()).recorder
    write = Request(WriteMultipleRegisters(7, tuple(range(1000, 1100))), 3, 41)
    read = Request(ReadHoldingRegisters(0, 125), 3, 42)
    both = Request(ReadWriteMultipleRegisters(0, 2, 5, (60000, 60001)), 4, 43)
    calls = [
        (write, write.reply(WriteMultipleRegistersResponse(7, 100))),
        (read, read.reply(ReadHoldingRegistersResponse(tuple(range(40000, 40125))))),
        (read, read.exception(ExceptionCode.ILLEGAL_DATA_ADDRESS)),
        (both, both.reply(ReadWriteMultipleRegistersResponse((65535, 1)))),
        # A handler may answer under another unit or transaction id: kept whole as well.
        (read, Response(ReadHoldingRegistersResponse((7, 8)), 9, 99)),
    ]
    for request, response in calls:
        recorder.record(1.0, 0.0, info, request, response)
    kept = recorder.calls()
    assert [(call.request, call.outcome) for call in kept] == calls
    assert [(call.unit, call.function, call.result, call.exception_code) for call in kept] == [
        (3, 16, "ok", None),
        (3, 3, "ok", None),
        (3, 3, "exception", 2),
        (4, 23, "ok", None),
        (3, 3, "ok", None),
    ]
    assert [call["unit"] for call in (call.to_json() for call in kept)] == [3, 3, 3, 4, 3]

    # 10,000 calls of FC16 x 100 with values no cache holds: kept as objects
    # they would hold a million ints (about 37 MB).
    recorder = Simulator(small_config()).recorder
    assert recorder.keep == 10000
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(10000):
            request = Request(WriteMultipleRegisters(0, tuple(range(n + 300, n + 400))), 1, n % 65536)
            recorder.record(1.0, 0.0, info, request, request.reply(WriteMultipleRegistersResponse(0, 100)))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 6_000_000, held
    assert recorder.calls()[-1].request.pdu == WriteMultipleRegisters(0, tuple(range(10299, 10399)))


def poll_frame(transaction_id: int, unit: int, pdu: bytes) -> bytes:
    return MbapFramer().encode(unit, transaction_id, pdu)


async def test_repeated_polls_are_answered_at_once_and_kept_like_every_call() -> None:
    # A poller's repeated frames skip the events (ServerConnection.answer_now
    # through the handler); the answers, calls and counters must not show it.
    async with running() as simulator:
        handler = simulator.listeners["main"].handler
        info = ConnectionInfo("tcp", "127.0.0.1:50000", "127.0.0.1:502", server="main", connection_id=1)
        connection = ServerConnection(MbapFramer())
        functions = connection.functions
        read = ReadInputRegisters(0, 2).encode()
        past_the_end = ReadHoldingRegisters(60000, 2).encode()
        write = WriteSingleRegister(0, 777).encode()
        assert handler._answer_now(connection, poll_frame(1, 1, read), info) is None  # never seen

        def the_long_way(frame: bytes) -> bytes:
            connection.receive_data(frame, 0.0)
            event = connection.next_event()
            assert isinstance(event, Request)
            assert connection.next_event() is NEED_DATA
            response = handler(event, info)
            assert isinstance(response, Response)
            return connection.send(response)

        pdus = [read, read, past_the_end, past_the_end, write, write]
        answers: list[bytes] = []
        for transaction_id, pdu in enumerate(pdus, start=1):
            frame = poll_frame(transaction_id, 1, pdu)
            answer = the_long_way(frame) if transaction_id % 2 else handler._answer_now(connection, frame, info)
            assert answer is not None
            if transaction_id % 2 == 0:
                assert answer[2:] == answers[-1][2:]  # the same answer as the long way's
            answers.append(answer)

        # Fresh records for each look: reading a record's outcome decodes it.
        calls = simulator.recorder.calls()
        assert [(call.function, call.result, call.exception_code) for call in calls] == [
            (4, "ok", None),
            (4, "ok", None),
            (3, "exception", 2),
            (3, "exception", 2),
            (6, "ok", None),
            (6, "ok", None),
        ]
        calls = simulator.recorder.calls()
        assert [(call.request, call.outcome) for call in calls] == [
            (
                Request(functions.decode_request(pdu), 1, transaction_id),
                Response(functions.decode_response(answer[7:]), 1, transaction_id),
            )
            for transaction_id, (pdu, answer) in enumerate(zip(pdus, answers, strict=True), start=1)
        ]
        pairs = [[call.to_json() for call in calls[index : index + 2]] for index in (0, 2, 4)]
        for long_way, at_once in pairs:
            for varying in ("id", "time", "transaction"):
                del long_way[varying], at_once[varying]
            for call in (long_way, at_once):
                call["response"] = call["response"][len("00 01 ") :]  # after the transaction id
            assert at_once == long_way
        assert handler.counters.to_json() == {
            "requests": 6,
            "responses": 6,
            "exceptions": 2,
            "no_answer": 0,
            "raw": 0,
            "faults": 0,
        }
        assert simulator.plant.device("meter").counters["requests"] == 6
        assert simulator.plant.device("meter").counters["exceptions"] == 2

        # A fault rule may match any request: while one is set, every request takes the long way.
        simulator.faults.add("no_answer", unit=2)
        assert handler._answer_now(connection, poll_frame(9, 1, read), info) is None
