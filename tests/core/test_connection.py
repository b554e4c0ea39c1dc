"""Connections: every exchange of the case table through MBAP, RTU and ASCII,
on the server and on the client side, fed whole, byte by byte and followed
by the next frame."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from modbus_core import (
    AsciiFramer,
    ClientConnection,
    Device,
    Diagnostics,
    DiagnosticSubFunction,
    Dispatcher,
    DropCause,
    Event,
    ExceptionResponse,
    FrameDropped,
    Framer,
    FunctionTable,
    LocalProtocolError,
    MalformedRequest,
    MbapFramer,
    RawPdu,
    ReadCoils,
    ReadCoilsResponse,
    ReadDiscreteInputs,
    ReadDiscreteInputsResponse,
    ReadExceptionStatus,
    ReadHoldingRegisters,
    ReadHoldingRegistersResponse,
    ReadInputRegisters,
    RegisterTable,
    Request,
    RequestPdu,
    Response,
    RtuFramer,
    ServerConnection,
    ServerContext,
    ServerDiagnostics,
    WriteMultipleCoils,
    WriteMultipleRegisters,
    WriteSingleCoil,
    WriteSingleRegister,
)

from .cases import (
    EXCHANGES,
    MALFORMED_REQUESTS,
    RAW_REQUESTS,
    Exchange,
    ascii_frame,
    bytewise,
    feed,
    mbap,
    rtu,
    split,
    whole,
)

UNIT = 17
NEXT_UNIT = 18
NEXT_REQUEST = ReadHoldingRegisters(107, 3)
NEXT_REQUEST_WIRE = bytes.fromhex("03006B0003")
NEXT_RESPONSE = ReadHoldingRegistersResponse((0x022B, 0x0000, 0x0064))
NEXT_RESPONSE_WIRE = bytes.fromhex("0306022B00000064")


class Framing:
    """How one framing wraps a PDU, written independently of the framers."""

    def __init__(self, name: str, make: Callable[[], Framer], wrap: Callable[[int, int, bytes], bytes]) -> None:
        self.name = name
        self.make = make
        self.wrap = wrap
        self.serial = name != "mbap"

    def transaction_id(self, value: int) -> int:
        return 0 if self.serial else value


FRAMINGS = [
    Framing("mbap", MbapFramer, lambda transaction_id, unit, pdu: mbap(transaction_id, unit, pdu)),
    Framing("rtu", lambda: RtuFramer(19200), lambda transaction_id, unit, pdu: rtu(unit, pdu)),
    Framing("ascii", AsciiFramer, lambda transaction_id, unit, pdu: ascii_frame(unit, pdu)),
]
MODES = ["whole", "bytewise", "trailing"]


def chunks(framing: Framing, mode: str, wire: bytes, next_wire: bytes, by_silence: bool) -> list[tuple[bytes, float]]:
    if mode == "whole":
        return whole(wire)
    if mode == "bytewise":
        return bytewise(wire)
    if framing.name == "rtu" and by_silence:
        # Only silence ends such a frame: the next one comes after a pause.
        return [(wire, 1.0), (next_wire, 1.5)]
    return whole(wire + next_wire)


def _params(exchanges: list[Exchange]) -> list[Any]:
    return [
        pytest.param(exchange, framing, mode, id=f"{framing.name}-{mode}-{exchange.name}")
        for exchange in exchanges
        for framing in FRAMINGS
        for mode in MODES
    ]


@pytest.mark.parametrize(("exchange", "framing", "mode"), _params(list(EXCHANGES)))
def test_server_receives_and_answers(exchange: Exchange, framing: Framing, mode: str) -> None:
    server = ServerConnection(framing.make())
    transaction_id = framing.transaction_id(0x0102)
    next_transaction_id = framing.transaction_id(0x0103)
    wire = framing.wrap(transaction_id, UNIT, exchange.request_wire)
    next_wire = framing.wrap(next_transaction_id, NEXT_UNIT, NEXT_REQUEST_WIRE)
    expected: list[Event] = [Request(exchange.request, UNIT, transaction_id)]
    if mode == "trailing":
        expected.append(Request(NEXT_REQUEST, NEXT_UNIT, next_transaction_id))
    assert feed(server, chunks(framing, mode, wire, next_wire, exchange.rtu_by_silence)) == expected
    if exchange.response is not None:
        response = Response(exchange.response, UNIT, transaction_id)
        assert server.send(response) == framing.wrap(transaction_id, UNIT, exchange.response_wire)


@pytest.mark.parametrize(
    ("exchange", "framing", "mode"), _params([exchange for exchange in EXCHANGES if exchange.response is not None])
)
def test_client_sends_and_matches_the_answer(exchange: Exchange, framing: Framing, mode: str) -> None:
    client = ClientConnection(framing.make())
    request = client.request(exchange.request, UNIT)
    next_request = client.request(NEXT_REQUEST, NEXT_UNIT)
    transaction_id = request.transaction_id
    assert transaction_id == framing.transaction_id(1)
    assert client.send(request) == framing.wrap(transaction_id, UNIT, exchange.request_wire)
    client.send(next_request)
    assert client.pending == (request, next_request)
    wire = framing.wrap(transaction_id, UNIT, exchange.response_wire)
    next_wire = framing.wrap(next_request.transaction_id, NEXT_UNIT, NEXT_RESPONSE_WIRE)
    assert exchange.response is not None
    expected: list[Event] = [Response(exchange.response, UNIT, transaction_id)]
    if mode == "trailing":
        expected.append(Response(NEXT_RESPONSE, NEXT_UNIT, next_request.transaction_id))
    assert feed(client, chunks(framing, mode, wire, next_wire, exchange.rtu_by_silence)) == expected
    remaining: tuple[Request, ...] = () if mode == "trailing" else (next_request,)
    assert client.pending == remaining


def test_broadcast_and_listen_only_requests_expect_no_answer() -> None:
    for framer in (RtuFramer(), AsciiFramer()):
        client = ClientConnection(framer)
        client.send(client.request(WriteSingleRegister(1, 2), 0))
        client.send(client.request(Diagnostics(DiagnosticSubFunction.FORCE_LISTEN_ONLY_MODE), 1))
        assert client.pending == ()
    # On TCP unit 0 is an ordinary unit.
    client = ClientConnection(MbapFramer())
    request = client.request(WriteSingleRegister(1, 2), 0)
    client.send(request)
    assert client.pending == (request,)


# --------------------------------------------------------------------------
# malformed and unknown requests reach the server, never silently dropped


def _malformed_params() -> list[Any]:
    return [
        pytest.param(wire, code, framing, id=f"{framing.name}-{name}")
        for name, wire, code in MALFORMED_REQUESTS
        if 0 < len(wire) <= 253
        for framing in FRAMINGS
    ]


@pytest.mark.parametrize(("wire", "code", "framing"), _malformed_params())
def test_malformed_request_reaches_the_server(wire: bytes, code: int, framing: Framing) -> None:
    server = ServerConnection(framing.make())
    transaction_id = framing.transaction_id(7)
    events = feed(server, whole(framing.wrap(transaction_id, UNIT, wire)))
    expected = Request(MalformedRequest(wire[0], code, wire[1:]), UNIT, transaction_id)
    if framing.name == "rtu" and events != [expected]:
        # On a serial line a frame whose length its function code denies is
        # noise (dropped and counted) or, where it reads as one, another
        # server's response (skipped): never answered.
        assert FunctionTable().request_length(wire, 0, len(wire)) != len(wire)
        assert all(isinstance(event, FrameDropped) for event in events)
        return
    assert events == [expected]
    if not wire[0] & 0x7F:
        with pytest.raises(LocalProtocolError):  # function code 0 has no exception response
            expected.exception(code)
        return
    answer = expected.exception(code)
    assert server.send(answer) == framing.wrap(transaction_id, UNIT, bytes((wire[0] | 0x80, code)))


@pytest.mark.parametrize(
    ("wire", "pdu", "framing"),
    [
        pytest.param(wire, pdu, framing, id=f"{framing.name}-{name}")
        for name, wire, pdu in RAW_REQUESTS
        for framing in FRAMINGS
    ],
)
def test_unknown_request_reaches_the_server(wire: bytes, pdu: RawPdu, framing: Framing) -> None:
    server = ServerConnection(framing.make())
    transaction_id = framing.transaction_id(9)
    events = feed(server, whole(framing.wrap(transaction_id, UNIT, wire)))
    assert events == [Request(pdu, UNIT, transaction_id)]


# --------------------------------------------------------------------------
# the server side


def test_server_sends_only_responses() -> None:
    server = ServerConnection(MbapFramer())
    with pytest.raises(LocalProtocolError, match="Response"):
        server.send(Request(ReadHoldingRegisters(0, 1), 1))  # type: ignore[arg-type]
    assert repr(server) == "ServerConnection(MbapFramer(datagram=False, frame_timeout=None))"
    assert isinstance(server.framer, MbapFramer)


def test_server_answers_only_its_units_on_tcp() -> None:
    server = ServerConnection(MbapFramer(), units={1, 2})
    wire = b"".join(mbap(unit, unit, NEXT_REQUEST_WIRE) for unit in (1, 3, 2, 0, 255))
    assert feed(server, whole(wire)) == [Request(NEXT_REQUEST, 1, 1), Request(NEXT_REQUEST, 2, 2)]


def test_server_counts_what_it_sees_on_the_line() -> None:
    diagnostics = ServerDiagnostics()
    server = ServerConnection(RtuFramer(), units={1}, diagnostics=diagnostics)
    bad = bytearray(rtu(1, NEXT_REQUEST_WIRE))
    bad[3] ^= 1
    line = rtu(2, NEXT_REQUEST_WIRE) + rtu(2, NEXT_RESPONSE_WIRE) + rtu(1, NEXT_REQUEST_WIRE)
    events = feed(server, [(line, 1.0), (bytes(bad), 2.0)])
    assert events[0] == Request(NEXT_REQUEST, 1)
    assert all(isinstance(event, FrameDropped) for event in events[1:])
    assert diagnostics.bus_message_count == 3  # every good frame, for any unit
    assert diagnostics.bus_communication_error_count == len(events) - 1


def test_server_with_echo_and_pipelined_tcp_requests() -> None:
    server = ServerConnection(MbapFramer(), echo=True)
    [request] = feed(server, whole(mbap(1, 1, NEXT_REQUEST_WIRE)))
    assert isinstance(request, Request)
    answer = server.send(request.reply(NEXT_RESPONSE))
    assert feed(server, whole(answer + mbap(2, 1, NEXT_REQUEST_WIRE))) == [Request(NEXT_REQUEST, 1, 2)]


# --------------------------------------------------------------------------
# the whole-frame cache


def test_repeated_polls_with_new_transaction_ids() -> None:
    server = ServerConnection(MbapFramer())
    for transaction_id in range(1, 600):
        unit = transaction_id % 3
        assert feed(server, whole(mbap(transaction_id, unit, NEXT_REQUEST_WIRE))) == [
            Request(NEXT_REQUEST, unit, transaction_id)
        ]


@pytest.mark.parametrize("framing", ["mbap", "rtu"])
def test_remembered_frames_are_still_counted(framing: str) -> None:
    # Servers give their connections the line's counters: a poll answered
    # from the whole-frame cache is still a message seen on the line.
    diagnostics = ServerDiagnostics()
    if framing == "mbap":
        server = ServerConnection(MbapFramer(), diagnostics=diagnostics)
        reads = [whole(mbap(transaction_id, 1, NEXT_REQUEST_WIRE)) for transaction_id in range(1, 6)]
        expected = [[Request(NEXT_REQUEST, 1, transaction_id)] for transaction_id in range(1, 6)]
    else:
        server = ServerConnection(RtuFramer(), diagnostics=diagnostics)
        reads = [whole(rtu(1, NEXT_REQUEST_WIRE), float(second)) for second in range(5)]
        expected = [[Request(NEXT_REQUEST, 1)]] * 5
    assert [feed(server, read) for read in reads] == expected
    assert diagnostics.bus_message_count == 5


def test_caches_stay_bounded_and_correct_over_many_distinct_requests() -> None:
    tcp = ServerConnection(MbapFramer())
    serial = ServerConnection(RtuFramer())
    shared = ServerConnection(AsciiFramer(), units={1})  # the PDU cache only
    for round_ in range(2):
        for address in range(300):
            pdu = ReadCoils(address, 1 + round_)
            wire = pdu.encode()
            assert feed(tcp, whole(mbap(address, 1, wire))) == [Request(pdu, 1, address)]
            assert feed(serial, whole(rtu(1, wire), float(address))) == [Request(pdu, 1)]
            assert feed(shared, whole(ascii_frame(1, wire))) == [Request(pdu, 1)]


def test_cached_frame_waits_for_events_before_it() -> None:
    server = ServerConnection(MbapFramer())
    wire = mbap(1, 1, NEXT_REQUEST_WIRE)
    feed(server, whole(wire))
    # Two reads before the adapter asks for events: both come, in order.
    server.receive_data(mbap(2, 1, NEXT_REQUEST_WIRE), 0.0)
    server.receive_data(mbap(3, 1, NEXT_REQUEST_WIRE), 0.0)
    assert feed(server, []) == [Request(NEXT_REQUEST, 1, 2), Request(NEXT_REQUEST, 1, 3)]
    # After a partial ADU, a read that completes it is no cached frame.
    server.receive_data(wire[:3], 0.0)
    assert feed(server, whole(wire[3:])) == [Request(NEXT_REQUEST, 1, 1)]


def test_rtu_frame_after_queued_drops_keeps_its_place() -> None:
    server = ServerConnection(RtuFramer())
    frame = rtu(1, NEXT_REQUEST_WIRE)
    feed(server, whole(frame))
    server.receive_data(b"\x01\x03\x00", 2.0)
    server.handle_timeout(3.0)  # silence: the fragment is dropped, but nobody asked yet
    server.receive_data(frame, 4.0)
    assert feed(server, []) == [FrameDropped(DropCause.TOO_SHORT, b"\x01\x03\x00"), Request(NEXT_REQUEST, 1)]


def test_rtu_frames_that_silence_ends_are_never_served_early() -> None:
    server = ServerConnection(RtuFramer())
    echo = rtu(1, bytes.fromhex("0800001234"))
    expected = Request(Diagnostics(0, bytes.fromhex("1234")), 1)
    for now in (1.0, 2.0):
        server.receive_data(echo, now)
        assert feed(server, [], settle=False) == []  # the echo might go on
        assert feed(server, []) == [expected]


def test_same_request_for_several_units() -> None:
    for framing in FRAMINGS:
        server = ServerConnection(framing.make())
        for _ in range(3):
            for unit in (1, 2, 3):
                wire = framing.wrap(5, unit, NEXT_REQUEST_WIRE)
                assert feed(server, whole(wire)) == [Request(NEXT_REQUEST, unit, framing.transaction_id(5))]


# --------------------------------------------------------------------------
# answering a repeated poll at once (answer_now)


class World:
    """A device, its dispatcher and one Modbus/TCP connection sharing the counters."""

    def __init__(
        self,
        device_class: type[Device] = Device,
        *,
        framer: Framer | None = None,
        broadcast: bool = False,
        connection_counts: bool = True,
        **connection_options: Any,
    ) -> None:
        self.device = device_class(
            coils=[bool(i % 3) for i in range(40)],
            discrete_inputs=[bool(i % 5) for i in range(40)],
            holding_registers=list(range(100, 140)),
            input_registers=list(range(200, 240)),
        )
        self.diagnostics = ServerDiagnostics()
        self.dispatcher = Dispatcher(
            ServerContext(dict.fromkeys((0, 1, 2), self.device)), diagnostics=self.diagnostics, broadcast=broadcast
        )
        self.connection = ServerConnection(
            framer or MbapFramer(),
            diagnostics=self.diagnostics if connection_counts else None,
            **connection_options,
        )
        self.at_once = 0  # requests answer_now answered

    def full_path(self, wire: bytes) -> bytes:
        """What an adapter without answer_now writes for *wire*."""
        self.connection.receive_data(wire, 1.0)
        out = b""
        for event in feed(self.connection, []):
            assert isinstance(event, Request)
            response = self.dispatcher.dispatch(event)
            assert response is None or isinstance(response, Response)
            if response is not None:
                out += self.connection.send(response)
        return out

    def answer(self, wire: bytes) -> bytes:
        """answer_now, and the full path when it declines."""
        out = self.connection.answer_now(wire, self.dispatcher)
        if out is None:
            return self.full_path(wire)
        self.at_once += 1
        return out

    def state(self) -> tuple[object, ...]:
        tables = tuple(tuple(table.read(0, 40)) for table in self.device.tables.values())
        return self.diagnostics.snapshot(), self.diagnostics.events, tables


FAST_POLLS = [
    ReadCoils(3, 9).encode(),
    ReadDiscreteInputs(0, 16).encode(),
    ReadHoldingRegisters(5, 10).encode(),
    ReadInputRegisters(30, 10).encode(),
    ReadHoldingRegisters(35, 10).encode(),  # past the end: exception 02
    b"\x04\x00\x00\x00\x00",  # a bad count, malformed: the general path's exception 03
    WriteSingleCoil(4, True).encode(),
    WriteSingleRegister(7, 0xBEEF).encode(),
    WriteMultipleCoils(8, (True, False, True)).encode(),
    WriteMultipleRegisters(9, (1, 2, 3)).encode(),
    WriteMultipleRegisters(39, (1, 2)).encode(),  # past the end: exception 02
]


@pytest.mark.parametrize("connection_counts", [True, False])
def test_answer_now_answers_a_repeated_poll_as_the_full_path_does(connection_counts: bool) -> None:
    full = World(connection_counts=connection_counts)
    fast = World(connection_counts=connection_counts)
    for round_ in range(3):
        for index, pdu in enumerate(FAST_POLLS):
            wire = mbap(round_ * 100 + index, index % 3, pdu)
            expected = full.full_path(wire)
            assert fast.answer(wire) == expected, pdu
            assert fast.state() == full.state(), pdu
    # The first round fills the whole-frame cache; the others are answered at once.
    assert fast.at_once == 2 * (len(FAST_POLLS) - 1)
    counters = full.diagnostics
    assert counters.server_message_count == 3 * len(FAST_POLLS)
    assert counters.bus_exception_error_count == 3 * 3  # two past the end, one malformed
    assert counters.event_count == 3 * (len(FAST_POLLS) - 3)
    # Newest first: the last poll's send event (exception 02) and its receive event.
    assert counters.events[:4] == bytes((0x41, 0x80, 0x40, 0x80))
    assert full.diagnostics.bus_message_count == (3 * len(FAST_POLLS) if connection_counts else 0)


def _replace_device(world: World) -> None:
    world.dispatcher.context[1] = Device(holding_registers=list(range(300, 340)))


def _replace_table(world: World) -> None:
    world.device.holding_registers = RegisterTable.zeros(40)


def _replace_dispatcher(world: World) -> None:
    world.dispatcher = Dispatcher(ServerContext(Device(holding_registers=[7] * 40)), diagnostics=world.diagnostics)


# What may change the answer to a remembered read (and what must not confuse it).
CHANGES: dict[str, Callable[[World], object]] = {
    "an application write": lambda world: world.device.holding_registers.write(6, [0x1234]),
    "a Modbus write": lambda world: world.full_path(mbap(50, 2, WriteMultipleRegisters(12, (5, 6)).encode())),
    "a write elsewhere": lambda world: world.device.holding_registers.write(30, [1]),
    "a write to another table": lambda world: world.full_path(mbap(51, 1, WriteSingleCoil(5, False).encode())),
    "a block added": lambda world: world.device.holding_registers.add(50, [1, 2]),
    "another device for the unit": _replace_device,
    "another table on the device": _replace_table,
    "another dispatcher": _replace_dispatcher,
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_answer_now_remembers_a_read_until_what_it_read_changes(change: str, monkeypatch: pytest.MonkeyPatch) -> None:
    full = World()
    fast = World()
    reads: list[int] = []
    read_wire = RegisterTable._read_wire

    def counted(table: RegisterTable, address: int, count: int) -> bytes:
        reads.append(address)
        return read_wire(table, address, count)

    monkeypatch.setattr(RegisterTable, "_read_wire", counted)
    poll = mbap(1, 1, ReadHoldingRegisters(5, 10).encode())

    def both() -> None:
        expected = full.full_path(poll)
        assert fast.answer(poll) == expected
        assert fast.state() == full.state()

    for _ in range(4):
        both()
    # The first poll takes the long way, the second reads the table, the others remember.
    assert (fast.at_once, reads) == (3, [5])
    CHANGES[change](full)
    CHANGES[change](fast)
    for _ in range(2):
        both()
    assert fast.at_once == 5
    assert full.diagnostics.server_message_count == 6 + (change in ("a Modbus write", "a write to another table"))


def test_answers_stay_correct_with_more_distinct_reads_than_are_remembered() -> None:
    full = World()
    fast = World()
    polls = [mbap(1, 1, kind(address, 1).encode()) for kind in (ReadCoils, ReadDiscreteInputs) for address in range(40)]
    for round_ in range(4):
        for index, poll in enumerate(polls):
            assert fast.answer(poll) == full.full_path(poll)
            if round_ == 2 and index == 0:
                fast.device.coils.write(0, [True])
                full.device.coils.write(0, [True])
    assert fast.at_once == 3 * len(polls)
    assert fast.state() == full.state()


def test_a_remembered_answer_logs_the_errors_seen_before_it() -> None:
    full = World()
    fast = World()
    poll = mbap(1, 1, ReadInputRegisters(2, 3).encode())
    for _ in range(3):
        assert fast.answer(poll) == full.full_path(poll)
    assert fast.at_once == 2
    for world in (full, fast):
        # The line's errors go into the flags of the next receive event.
        world.diagnostics.frame_dropped(DropCause.OVERRUN)
        world.diagnostics.frame_dropped(DropCause.CHECKSUM)
    assert fast.answer(poll) == full.full_path(poll)
    assert fast.state() == full.state()
    assert full.diagnostics.events[:2] == bytes((0x40, 0x80 | 0x10 | 0x02))
    assert fast.answer(poll) == full.full_path(poll)  # and only into that one
    assert fast.at_once == 4
    assert fast.state() == full.state()
    assert full.diagnostics.events[:4] == bytes((0x40, 0x80, 0x40, 0x80 | 0x10 | 0x02))


def _primed(world: World, wire: bytes) -> World:
    world.full_path(wire)  # now a frame seen before
    return world


def _remembered(world: World, wire: bytes) -> World:
    world.full_path(wire)
    assert world.connection.answer_now(wire, world.dispatcher) is not None  # now an answer remembered
    return world


def _broadcast_enabled(world: World) -> World:
    world.dispatcher.broadcast = True
    return world


POLL = mbap(9, 1, ReadHoldingRegisters(5, 10).encode())


def _listen_only() -> World:
    world = _primed(World(), POLL)
    world.diagnostics.enter_listen_only()
    return world


def _listen_only_remembered() -> World:
    world = _remembered(World(), POLL)
    world.diagnostics.enter_listen_only()
    return world


def _partial_frame_held() -> World:
    world = _primed(World(), POLL)
    world.connection.receive_data(POLL[:3], 1.0)
    return world


def _event_waiting() -> World:
    world = _primed(World(), POLL)
    world.connection.receive_data(POLL, 1.0)
    return world


class LoggedDevice(Device):
    """A device of its own class: the general path's."""


DECLINED: dict[str, tuple[Callable[[], World], bytes | bytearray]] = {
    "rtu framing": (lambda: _primed(World(framer=RtuFramer()), rtu(1, POLL[7:])), rtu(1, POLL[7:])),
    "units of its own": (lambda: _primed(World(units={1}), POLL), POLL),
    "echo": (lambda: _primed(World(echo=True), POLL), POLL),
    "a bytearray": (lambda: _primed(World(), POLL), bytearray(POLL)),
    "a frame never seen": (lambda: _primed(World(), POLL), mbap(9, 1, ReadHoldingRegisters(6, 10).encode())),
    "a partial frame held": (_partial_frame_held, POLL),
    "an event waiting": (_event_waiting, POLL),
    "diagnostics": (lambda: _primed(World(), mbap(1, 1, b"\x08\x00\x00\x12\x34")), mbap(1, 1, b"\x08\x00\x00\x12\x34")),
    "listen-only mode": (_listen_only, POLL),
    "listen-only mode after an answer remembered": (_listen_only_remembered, POLL),
    "a broadcast after an answer remembered": (
        lambda: _broadcast_enabled(_remembered(World(), mbap(1, 0, POLL[7:]))),
        mbap(1, 0, POLL[7:]),
    ),
    "a broadcast": (lambda: _primed(World(broadcast=True), mbap(1, 0, POLL[7:])), mbap(1, 0, POLL[7:])),
    "a missing unit": (lambda: _primed(World(), mbap(1, 5, POLL[7:])), mbap(1, 5, POLL[7:])),
    "another device class": (lambda: _primed(World(LoggedDevice), POLL), POLL),
}


@pytest.mark.parametrize("case", list(DECLINED))
def test_answer_now_declines_and_changes_nothing(case: str) -> None:
    make, wire = DECLINED[case]
    world = make()
    before = world.state()
    assert world.connection.answer_now(wire, world.dispatcher) is None  # type: ignore[arg-type]
    assert world.state() == before


# --------------------------------------------------------------------------
# the client side


def test_transaction_ids() -> None:
    client = ClientConnection(MbapFramer())
    first = client.request(NEXT_REQUEST)
    assert (first.unit, first.transaction_id) == (1, 1)
    assert client.request(NEXT_REQUEST).transaction_id == 2  # nothing sent: ids still advance
    client = ClientConnection(MbapFramer())
    pdu = ReadExceptionStatus()
    sent = []
    for _ in range(0x10000):
        request = client.request(pdu)
        client.send(request)
        sent.append(request.transaction_id)
    # Every id once, wrapping around after 0xFFFF.
    assert sent == [*range(1, 0x10000), 0]
    with pytest.raises(LocalProtocolError, match="65536"):
        client.request(pdu)
    # Ids still pending are skipped; other units have their own.
    client.cancel(Request(pdu, 1, 7))
    assert client.request(pdu).transaction_id == 7
    assert client.request(pdu, unit=2).transaction_id == 8


def test_client_misuse() -> None:
    client = ClientConnection(MbapFramer())
    with pytest.raises(LocalProtocolError, match="Request"):
        client.send(Response(NEXT_RESPONSE, 1))  # type: ignore[arg-type]
    request = client.request(NEXT_REQUEST)
    client.send(request)
    with pytest.raises(LocalProtocolError, match="still pending"):
        client.send(request)
    serial = ClientConnection(RtuFramer())
    assert serial.request(NEXT_REQUEST, 3) == Request(NEXT_REQUEST, 3, 0)
    with pytest.raises(LocalProtocolError, match="transaction id"):
        serial.send(Request(NEXT_REQUEST, 3, 1))
    # A request that cannot be encoded is not left pending.
    with pytest.raises(LocalProtocolError):
        serial.send(Request(MalformedRequest(0x41, 1, bytes(300)), 3))
    assert serial.pending == ()


def test_cancel() -> None:
    client = ClientConnection(MbapFramer())
    request = client.request(NEXT_REQUEST)
    client.send(request)
    client.cancel(request)
    client.cancel(request)
    assert client.pending == ()
    assert repr(client) == "ClientConnection(MbapFramer(datagram=False, frame_timeout=None), pending=0)"
    assert feed(client, whole(mbap(1, 1, NEXT_RESPONSE_WIRE))) == [
        FrameDropped(DropCause.UNEXPECTED, NEXT_RESPONSE_WIRE, "unit 1, transaction 1")
    ]


def _client_with(pdu: RequestPdu) -> tuple[ClientConnection, Request]:
    client = ClientConnection(MbapFramer())
    request = client.request(pdu)
    client.send(request)
    return client, request


def test_response_of_another_function_is_unexpected() -> None:
    client, request = _client_with(NEXT_REQUEST)
    wire = bytes.fromhex("0402000A")
    assert feed(client, whole(mbap(1, 1, wire))) == [FrameDropped(DropCause.UNEXPECTED, wire, "function 4 answers 3")]
    assert client.pending == (request,)  # the right answer may still come
    assert feed(client, whole(mbap(1, 1, NEXT_RESPONSE_WIRE))) == [Response(NEXT_RESPONSE, 1, 1)]


def test_malformed_response_is_dropped_and_ends_the_wait() -> None:
    client, _ = _client_with(NEXT_REQUEST)
    wire = bytes.fromhex("0303000102")
    [event] = feed(client, whole(mbap(1, 1, wire)))
    assert isinstance(event, FrameDropped)
    assert event.cause == DropCause.MALFORMED
    assert event.data == wire
    assert client.pending == ()


@pytest.mark.parametrize(
    ("pdu", "wire"),
    [
        (ReadCoils(0, 3), "01020000"),  # 16 bits for 3
        (ReadCoils(0, 9), "010100"),  # 8 bits for 9
        (ReadDiscreteInputs(0, 17), "02020000"),
    ],
)
def test_bit_count_must_answer_the_request(pdu: RequestPdu, wire: str) -> None:
    client, _ = _client_with(pdu)
    [event] = feed(client, whole(mbap(1, 1, bytes.fromhex(wire))))
    assert isinstance(event, FrameDropped)
    assert event.cause == DropCause.MALFORMED
    assert client.pending == ()


def test_bit_response_to_a_forwarded_request_keeps_its_padding() -> None:
    # A gateway forwards what it received, malformed or not.
    for pdu in (MalformedRequest(0x01, 3, bytes.fromhex("00000000")), RawPdu(0x02, bytes.fromhex("0000"))):
        client, _ = _client_with(pdu)
        wire = bytes((pdu.function_code,)) + bytes.fromhex("0105")
        [event] = feed(client, whole(mbap(1, 1, wire)))
        assert isinstance(event, Response)
        assert event.pdu.encode() == wire
        assert client.pending == ()


def test_bit_responses_are_trimmed_to_the_request() -> None:
    client, _ = _client_with(ReadDiscreteInputs(0, 9))
    assert feed(client, whole(mbap(1, 1, bytes.fromhex("0202FF01")))) == [
        Response(ReadDiscreteInputsResponse((True,) * 9), 1, 1)
    ]
    client, _ = _client_with(ReadCoils(0, 2))
    assert feed(client, whole(mbap(1, 1, bytes.fromhex("8102")))) == [Response(ExceptionResponse(1, 2), 1, 1)]
    client, _ = _client_with(ReadCoils(0, 8))
    assert feed(client, whole(mbap(1, 1, bytes.fromhex("010155")))) == [
        Response(ReadCoilsResponse((True, False) * 4), 1, 1)
    ]


# --------------------------------------------------------------------------
# every RTU request of the table against the specification's timing


RTU_REQUESTS = [pytest.param(exchange, id=exchange.name) for exchange in EXCHANGES]


@pytest.mark.parametrize("exchange", RTU_REQUESTS)
def test_strict_rtu_timing_respected(exchange: Exchange) -> None:
    framer = RtuFramer(9600, strict_timing=True)
    server = ServerConnection(framer)
    wire = rtu(UNIT, exchange.request_wire)
    # Back-to-back characters, then a second frame after exactly t3.5 and a bit.
    step = split(wire, len(wire) // 2, framer.t1_5 * 0.9, start=1.0, baudrate=9600)
    later = step[-1][1] + framer.t3_5 * 1.05
    events = feed(server, [*step, *bytewise(wire, later + 11 / 9600, 9600)])
    assert events == [Request(exchange.request, UNIT)] * 2


@pytest.mark.parametrize("exchange", RTU_REQUESTS)
def test_strict_rtu_timing_violated(exchange: Exchange) -> None:
    framer = RtuFramer(9600, strict_timing=True)
    server = ServerConnection(framer)
    wire = rtu(UNIT, exchange.request_wire)
    # A gap over t1.5 inside the frame discards it...
    events = feed(server, split(wire, len(wire) // 2, framer.t1_5 * 1.3, baudrate=9600))
    assert events
    assert all(isinstance(event, FrameDropped) for event in events)
    assert events[0].cause == DropCause.TIMING  # type: ignore[union-attr]
    # ... and a frame that follows the last one by less than t3.5 is dropped.
    end = 10.0
    feed(server, bytewise(wire, end - (len(wire) - 1) * 11 / 9600, 9600))
    events = feed(server, bytewise(wire, end + framer.t3_5 * 0.7 + 11 / 9600, 9600))
    assert events == [FrameDropped(DropCause.TIMING, wire, "frame began less than t3.5 after the previous one")]


@pytest.mark.parametrize("exchange", RTU_REQUESTS)
def test_tolerant_rtu_timing(exchange: Exchange) -> None:
    server = ServerConnection(RtuFramer(9600))
    wire = rtu(UNIT, exchange.request_wire)
    # What strict timing refuses, a USB adapter's gaps, is fine by default...
    chunks = [*split(wire, len(wire) // 2, 0.010, baudrate=9600), *bytewise(wire, 2.0 + 0.0005, 9600)]
    assert feed(server, chunks) == [Request(exchange.request, UNIT)] * 2
    # ... but not silence longer than the tolerance.
    events = feed(server, split(wire, len(wire) // 2, 0.100, start=5.0, baudrate=9600))
    assert all(isinstance(event, FrameDropped) for event in events)
