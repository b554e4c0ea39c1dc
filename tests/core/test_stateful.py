"""Model-based test: random request sequences against the Dispatcher and a plain dict model.

The model below is written from PROTOCOL.md alone: dicts of addresses,
sets of read-only addresses, lists for FIFOs and files, a few counters.
Requests are generated as raw fields and encoded to wire bytes by hand,
then decoded by the library's codec, so that malformed requests, bad
counts and validation order are part of the game.  Every response must
agree, and so must the whole state (four tables of two devices, FIFOs,
files, the diagnostics counters and event log) after every step.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterable

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from modbus_core import (
    NEED_DATA,
    Device,
    DiagnosticsResponse,
    Dispatcher,
    ExceptionResponse,
    FileRecord,
    FunctionTable,
    GetCommEventCounterResponse,
    GetCommEventLogResponse,
    MaskWriteRegisterResponse,
    MbapFramer,
    ModbusExceptionError,
    ReadCoilsResponse,
    ReadDiscreteInputsResponse,
    ReadExceptionStatusResponse,
    ReadFifoQueueResponse,
    ReadFileRecordResponse,
    ReadHoldingRegistersResponse,
    ReadInputRegistersResponse,
    ReadWriteMultipleRegistersResponse,
    Request,
    Response,
    ResponsePdu,
    ServerConnection,
    ServerContext,
    TableKind,
    WriteFileRecordResponse,
    WriteMultipleCoilsResponse,
    WriteMultipleRegistersResponse,
    WriteSingleCoilResponse,
    WriteSingleRegisterResponse,
)

FUNCTIONS = FunctionTable()
TABLES = ("coils", "discrete_inputs", "holding_registers", "input_registers")
WRITES = {5, 6, 15, 16, 21, 22, 23}
BROADCAST_DIAGNOSTICS = {0x01, 0x03, 0x04, 0x0A, 0x14}
KNOWN_SUB_FUNCTIONS = {0x00, 0x01, 0x02, 0x03, 0x04, *range(0x0A, 0x13), 0x14}
LARGEST_PDU = 253  # bytes; the model's longer writes cannot travel as a frame
ILLEGAL_FUNCTION, ILLEGAL_ADDRESS, ILLEGAL_VALUE, GATEWAY_TARGET = 0x01, 0x02, 0x03, 0x0B


class Refused(Exception):
    """The model's way to say "exception *code*"."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclasses.dataclass
class ModelDevice:
    tables: dict[str, dict[int, int]]  # bits are 0/1 here
    read_only: dict[str, set[int]]
    fifos: dict[int, list[int]]
    files: dict[int, list[int]]
    status: int

    def span(self, table: str, address: int, count: int, *, write: bool = False) -> range:
        addresses = range(address, address + count)
        stored = self.tables[table]
        if any(a not in stored for a in addresses):
            raise Refused(ILLEGAL_ADDRESS)
        if write and any(a in self.read_only[table] for a in addresses):
            raise Refused(ILLEGAL_ADDRESS)
        return addresses


def layout_a() -> ModelDevice:
    return ModelDevice(
        tables={
            "coils": {a: int(a % 3 == 0) for a in [*range(20), *range(24, 40)]},
            "discrete_inputs": {a: a % 2 for a in range(32)},
            "holding_registers": {a: 1000 + a for a in [*range(30), *range(40, 60)]},
            "input_registers": {a: 2000 + a for a in range(20)},
        },
        read_only={
            "coils": {30, 31},
            "discrete_inputs": set(),
            "holding_registers": {10, 11, 12},
            "input_registers": set(),
        },
        fifos={0: [1, 2, 3], 1: list(range(32)), 2: []},
        files={1: [0] * 10, 2: [7] * 5},
        status=0x11,
    )


def layout_b() -> ModelDevice:
    return ModelDevice(
        tables={
            "coils": dict.fromkeys(range(16), 0),
            "discrete_inputs": dict.fromkeys(range(16), 1),
            "holding_registers": {a: a for a in range(20)},
            "input_registers": {a: 3000 + a for a in range(5, 15)},
        },
        read_only={"coils": set(), "discrete_inputs": set(), "holding_registers": {5}, "input_registers": set()},
        fifos={0: [9]},
        files={1: [1, 2, 3]},
        status=0x22,
    )


def build_device(model: ModelDevice) -> Device:
    bits = {name: {a: bool(v) for a, v in model.tables[name].items()} for name in ("coils", "discrete_inputs")}
    device = Device(
        coils=bits["coils"],
        discrete_inputs=bits["discrete_inputs"],
        holding_registers=dict(model.tables["holding_registers"]),
        input_registers=dict(model.tables["input_registers"]),
        fifos=model.fifos,
        files=model.files,
        exception_status=model.status,
    )
    for name in TABLES:
        for address in model.read_only[name]:
            device.tables[TableKind(name)].set_read_only(address)
    # The model keeps copies of its own.
    model.fifos = {address: list(values) for address, values in model.fifos.items()}
    model.files = {number: list(values) for number, values in model.files.items()}
    return device


def pack_bits(bits: Iterable[int]) -> bytes:
    values = list(bits)
    packed = bytearray((len(values) + 7) // 8)
    for index, bit in enumerate(values):
        if bit:
            packed[index // 8] |= 1 << (index % 8)
    return bytes(packed)


def send_event(code: int | None) -> int:
    if code is None or code > 7:
        return 0x40
    return 0x40 | {1: 0x01, 2: 0x01, 3: 0x01, 4: 0x02, 5: 0x04, 6: 0x04, 7: 0x08}[code]


# Mostly valid requests inside the tables, often past them or malformed, so
# that every path is taken yet state still changes in most runs.
# (``a | b`` picks each branch equally often, hence the repeated branches.)
addresses = st.one_of(st.integers(0, 24), st.integers(0, 24), st.integers(0, 62), st.sampled_from([0xFFFE, 0xFFFF]))
small_counts = st.one_of(st.integers(1, 6), st.integers(1, 6), st.integers(0, 45))
register_values = st.integers(0, 0xFFFF)
file_groups = st.lists(
    st.tuples(
        st.sampled_from([6] * 9 + [5]),
        st.integers(1, 2) | st.sampled_from([0, 3]),
        st.integers(0, 6) | st.sampled_from([12, 10000]),
        st.integers(1, 4) | st.just(0),
    ),
    min_size=1,
    max_size=3,
)


def _operation(name: str, **arguments: st.SearchStrategy[object]) -> st.SearchStrategy[tuple[str, dict[str, object]]]:
    return st.tuples(st.just(name), st.fixed_dictionaries(arguments))


units = st.sampled_from([1, 1, 1, 1, 1, 2, 2, 2, 3, 3, 0, 0, 4, 255])
file_records = st.lists(
    st.tuples(
        st.sampled_from([6] * 9 + [5]),
        st.integers(1, 2) | st.sampled_from([0, 3]),
        st.integers(0, 6) | st.sampled_from([12, 10000]),
        st.lists(register_values, min_size=1, max_size=4) | st.just([]),
    ),
    min_size=1,
    max_size=3,
)
short_lists = st.lists(register_values, min_size=1, max_size=4)
register_lists = st.one_of(
    st.lists(register_values, min_size=1, max_size=8),
    st.lists(register_values, min_size=1, max_size=8),
    st.lists(register_values, max_size=35),
)


@st.composite
def read_write_arguments(draw: st.DrawFn) -> dict[str, object]:
    """FC23 fields; the two ranges often overlap, where writing first shows."""
    read_address = draw(addresses)
    overlapping = st.integers(max(read_address - 4, 0), min(read_address + 4, 0xFFFF))
    return {
        "unit": draw(units),
        "read_address": read_address,
        "read_count": draw(st.one_of(small_counts, small_counts, st.just(126))),
        "write_address": draw(st.one_of(overlapping, overlapping, addresses)),
        "values": draw(st.one_of(short_lists, short_lists, register_lists)),
    }


# Each operation appears as often as it should be drawn: the state-changing
# functions most, the ones that only read or count less.
OPERATIONS = st.one_of(
    *[
        _operation(
            "read",
            unit=units,
            function=st.sampled_from([1, 2, 3, 4]),
            address=addresses,
            count=st.one_of(small_counts, small_counts, st.sampled_from([126, 2001])),
        )
    ]
    * 3,
    _operation("write_coil", unit=units, address=addresses, value=st.sampled_from([0, 0xFF00, 0xFF00, 1, 0xFFFF])),
    *[_operation("write_register", unit=units, address=addresses, value=register_values)] * 2,
    *[
        _operation(
            "write_coils",
            unit=units,
            address=addresses,
            bits=st.lists(st.integers(0, 1), min_size=1, max_size=10) | st.lists(st.integers(0, 1), max_size=45),
            bad_count=st.sampled_from([False, False, False, True]),
        )
    ]
    * 2,
    *[
        _operation(
            "write_registers",
            unit=units,
            address=addresses,
            values=register_lists,
            bad_count=st.sampled_from([False, False, False, True]),
        )
    ]
    * 2,
    _operation("mask_write", unit=units, address=addresses, and_mask=register_values, or_mask=register_values),
    *[st.tuples(st.just("read_write"), read_write_arguments())] * 3,
    _operation("read_fifo", unit=units, address=st.integers(0, 3)),
    *[_operation("read_file", unit=units, groups=file_groups)] * 2,
    *[_operation("write_file", unit=units, records=file_records)] * 2,
    _operation("status", unit=units, function=st.sampled_from([0x07, 0x0B, 0x0C, 0x41])),
    *[
        _operation(
            "diagnostics",
            unit=units,
            sub=st.sampled_from(
                [0x00, 0x01, 0x01, 0x01, 0x02, 0x03, 0x04, 0x0A, 0x0B, 0x0D, 0x0E, 0x0F, 0x11, 0x13, 0x14]
            ),
            data=st.sampled_from([b"\x00\x00", b"\x00\x00", b"\xff\x00", b"\x21\x00", b"\x00\x01"]),
        )
    ]
    * 2,
    *[
        _operation(
            "application_write",
            index=st.integers(0, 1),
            table=st.sampled_from(TABLES),
            address=st.integers(0, 65),
            values=st.lists(register_values, min_size=1, max_size=6),
        )
    ]
    * 2,
    _operation(
        "application_fifo",
        index=st.integers(0, 1),
        address=st.integers(0, 3),
        values=st.lists(register_values, max_size=33),
    ),
)


class DispatcherMachine(RuleBasedStateMachine):
    """The dispatcher and the model side by side."""

    def __init__(self) -> None:
        super().__init__()
        self.models = [layout_a(), layout_b()]
        self.devices = [build_device(model) for model in self.models]
        # Unit 3 is the first device again; units 4 and 255 (and 0 without broadcast) are missing.
        self.unit_map = {1: 0, 2: 1, 3: 0}
        self.dispatcher = Dispatcher(ServerContext({unit: self.devices[i] for unit, i in self.unit_map.items()}))
        self.broadcast = False
        self.ignore_missing = False
        self.events: list[int] = []  # newest first
        # "frames": what the connection sees (only requests sent over it, see send()).
        self.counters = {"events": 0, "exceptions": 0, "messages": 0, "silent": 0, "frames": 0}
        self.listen_only = False
        self.delimiter = 0x0A
        self.connect()
        self.over_connection = False
        self.last: tuple[int, int, bytes, dict[str, object]] | None = None

    @initialize(serial=st.booleans(), ignore=st.booleans())
    def configure(self, serial: bool, ignore: bool) -> None:
        context = self.dispatcher.context
        self.dispatcher = Dispatcher(context, serial=serial, ignore_missing_units=ignore)
        self.broadcast, self.ignore_missing = serial, ignore
        self.connect()

    def connect(self) -> None:
        # Requests may also come as Modbus/TCP frames over a connection that
        # shares the counters, as a server's do; it answers frames it has seen
        # before at once (ServerConnection.answer_now), which must not show.
        self.connection = ServerConnection(MbapFramer(), diagnostics=self.dispatcher.diagnostics)

    # -- the model's side of the accounting ---------------------------------------

    def log(self, event: int) -> None:
        self.events.insert(0, event)
        del self.events[64:]

    def restart(self, clear_log: bool) -> None:
        self.counters = dict.fromkeys(self.counters, 0)
        self.listen_only = False
        if clear_log:
            self.events.clear()
        self.log(0x00)

    def answered(self, function: int, result: ResponsePdu | int) -> ResponsePdu:
        if isinstance(result, int):
            self.counters["exceptions"] += 1
            self.log(send_event(result) | (0x20 if self.listen_only else 0))
            return ExceptionResponse(function, result)
        if function != 0x0B:
            self.counters["events"] += 1
        self.log(0x40 | (0x20 if self.listen_only else 0))
        return result

    # -- what each function does to one device, from the raw fields -------------------

    def check_fields(self, function: int, fields: dict[str, object]) -> None:
        """What the specification asks of the request itself: 01 or 03, before any address."""
        f = fields
        if function in (1, 2, 3, 4):
            if not 1 <= int(f["count"]) <= (2000 if function <= 2 else 125):  # type: ignore[call-overload]
                raise Refused(ILLEGAL_VALUE)
        elif function == 5:
            if f["value"] not in (0x0000, 0xFF00):
                raise Refused(ILLEGAL_VALUE)
        elif function in (15, 16):
            if not 1 <= len(f["values"]) <= (1968 if function == 15 else 123) or f["bad_count"]:  # type: ignore[arg-type]
                raise Refused(ILLEGAL_VALUE)
        elif function == 23:
            if not 1 <= int(f["read_count"]) <= 125 or not 1 <= len(f["values"]) <= 121:  # type: ignore[arg-type,call-overload]
                raise Refused(ILLEGAL_VALUE)
        elif function == 20:
            groups = list(f["groups"])  # type: ignore[call-overload]
            size = 2 + sum(2 + 2 * length for _, _, _, length in groups)
            if not groups or size > 253 or any(t != 6 or n == 0 or r > 0x270F or not ln for t, n, r, ln in groups):
                raise Refused(ILLEGAL_VALUE)
        elif function == 21:
            groups = list(f["groups"])  # type: ignore[call-overload]
            size = sum(7 + 2 * len(values) for _, _, _, values in groups)
            if not 9 <= size <= 251 or any(t != 6 or n == 0 or r > 0x270F or not v for t, n, r, v in groups):
                raise Refused(ILLEGAL_VALUE)
        elif function == 8:
            self.diagnostics_check(int(f["sub"]), bytes(f["data"]))  # type: ignore[call-overload]
        elif function == 0x41:
            raise Refused(ILLEGAL_FUNCTION)

    def execute(self, model: ModelDevice, function: int, fields: dict[str, object]) -> ResponsePdu:
        """What a request with valid fields does to one device (02 and the FIFO's 03 from here)."""
        f = fields
        if function in (1, 2, 3, 4):
            table = TABLES[function - 1]
            span = model.span(table, int(f["address"]), int(f["count"]))  # type: ignore[call-overload]
            values = tuple(model.tables[table][a] for a in span)
            if function == 1:
                return ReadCoilsResponse(tuple(bool(v) for v in values))
            if function == 2:
                return ReadDiscreteInputsResponse(tuple(bool(v) for v in values))
            return (ReadHoldingRegistersResponse if function == 3 else ReadInputRegistersResponse)(values)
        if function == 5:
            address, on = int(f["address"]), f["value"] == 0xFF00  # type: ignore[call-overload]
            for a in model.span("coils", address, 1, write=True):
                model.tables["coils"][a] = int(on)
            return WriteSingleCoilResponse(address, on)
        if function == 6:
            address, value = int(f["address"]), int(f["value"])  # type: ignore[call-overload]
            for a in model.span("holding_registers", address, 1, write=True):
                model.tables["holding_registers"][a] = value
            return WriteSingleRegisterResponse(address, value)
        if function == 15:
            address, bits = int(f["address"]), list(f["values"])  # type: ignore[call-overload]
            for a, bit in zip(model.span("coils", address, len(bits), write=True), bits, strict=True):
                model.tables["coils"][a] = bit
            return WriteMultipleCoilsResponse(address, len(bits))
        if function == 16:
            address, values = int(f["address"]), list(f["values"])  # type: ignore[call-overload]
            for a, value in zip(model.span("holding_registers", address, len(values), write=True), values, strict=True):
                model.tables["holding_registers"][a] = value
            return WriteMultipleRegistersResponse(address, len(values))
        if function == 22:
            address, and_mask, or_mask = int(f["address"]), int(f["and_mask"]), int(f["or_mask"])  # type: ignore[call-overload]
            for a in model.span("holding_registers", address, 1, write=True):
                current = model.tables["holding_registers"][a]
                model.tables["holding_registers"][a] = (current & and_mask) | (or_mask & ~and_mask & 0xFFFF)
            return MaskWriteRegisterResponse(address, and_mask, or_mask)
        if function == 23:
            values = list(f["values"])  # type: ignore[call-overload]
            reads = model.span("holding_registers", int(f["read_address"]), int(f["read_count"]))  # type: ignore[call-overload]
            writes = model.span("holding_registers", int(f["write_address"]), len(values), write=True)  # type: ignore[call-overload]
            for a, value in zip(writes, values, strict=True):
                model.tables["holding_registers"][a] = value
            return ReadWriteMultipleRegistersResponse(tuple(model.tables["holding_registers"][a] for a in reads))
        if function == 24:
            queue = model.fifos.get(int(f["address"]))  # type: ignore[call-overload]
            if queue is None:
                raise Refused(ILLEGAL_ADDRESS)
            if len(queue) > 31:
                raise Refused(ILLEGAL_VALUE)
            return ReadFifoQueueResponse(tuple(queue))
        if function == 20:
            result = []
            for _, number, record, length in f["groups"]:  # type: ignore[attr-defined]
                stored = model.files.get(number)
                if stored is None or record + length > len(stored):
                    raise Refused(ILLEGAL_ADDRESS)
                result.append(tuple(stored[record : record + length]))
            return ReadFileRecordResponse(tuple(result))
        if function == 21:
            groups = list(f["groups"])  # type: ignore[call-overload]
            for _, number, record, values in groups:
                stored = model.files.get(number)
                if stored is None or record + len(values) > len(stored):
                    raise Refused(ILLEGAL_ADDRESS)
            for _, number, record, values in groups:
                model.files[number][record : record + len(values)] = values
            return WriteFileRecordResponse(tuple(FileRecord(n, r, tuple(v)) for _, n, r, v in groups))
        if function == 7:
            return ReadExceptionStatusResponse(model.status)
        if function == 0x0B:
            return GetCommEventCounterResponse(0, self.counters["events"] & 0xFFFF)
        assert function == 0x0C
        return GetCommEventLogResponse(
            0, self.counters["events"] & 0xFFFF, self.counters["frames"] & 0xFFFF, bytes(self.events)
        )

    # -- one request, both sides -------------------------------------------------------------

    def diagnostics_check(self, sub_function: int, data: bytes) -> None:
        if sub_function not in KNOWN_SUB_FUNCTIONS:
            raise Refused(ILLEGAL_FUNCTION)
        if sub_function == 0x00:
            return
        if sub_function == 0x01:
            allowed = data in (b"\x00\x00", b"\xff\x00")
        elif sub_function == 0x03:
            allowed = len(data) == 2 and data[1] == 0
        else:
            allowed = data == b"\x00\x00"
        if not allowed:
            raise Refused(ILLEGAL_VALUE)

    def counter_value(self, sub_function: int) -> int:
        names = {0x0B: "frames", 0x0D: "exceptions", 0x0E: "messages", 0x0F: "silent"}
        return self.counters[names[sub_function]] & 0xFFFF if sub_function in names else 0

    def expect(self, unit: int, function: int, fields: dict[str, object]) -> ResponsePdu | None:
        if unit == 0 and self.broadcast:
            self.expect_broadcast(function, fields)
            return None
        index = self.unit_map.get(unit)
        if index is None and self.ignore_missing:
            return None
        self.counters["messages"] += 1
        self.log(0x80 | (0x20 if self.listen_only else 0))
        is_restart = function == 8 and fields["sub"] == 1 and fields["data"] in (b"\x00\x00", b"\xff\x00")
        if self.listen_only and (index is None or not is_restart):
            self.counters["silent"] += 1
            return None
        if index is None:
            return self.answered(function, GATEWAY_TARGET)
        try:
            self.check_fields(function, fields)
        except Refused as refused:
            return self.answered(function, refused.code)
        if function == 8:
            sub_function, data = int(fields["sub"]), bytes(fields["data"])  # type: ignore[call-overload]
            if sub_function == 0x01:
                response = None
                if self.listen_only:
                    self.counters["silent"] += 1
                else:
                    response = self.answered(function, DiagnosticsResponse(1, data))
                self.restart(clear_log=data == b"\xff\x00")
                return response
            if sub_function == 0x04:
                self.listen_only = True
                self.log(0x04)
                self.counters["silent"] += 1
                return None
            if sub_function == 0x0A:
                response = self.answered(function, DiagnosticsResponse(0x0A, data))
                self.counters = dict.fromkeys(self.counters, 0)
                return response
            if sub_function == 0x03:
                self.delimiter = data[0]
            if 0x0B <= sub_function <= 0x12:
                data = self.counter_value(sub_function).to_bytes(2, "big")
            if sub_function == 0x02:
                data = b"\x00\x00"
            return self.answered(function, DiagnosticsResponse(sub_function, data))
        try:
            response = self.execute(self.models[index], function, fields)
        except Refused as refused:
            return self.answered(function, refused.code)
        return self.answered(function, response)

    def expect_broadcast(self, function: int, fields: dict[str, object]) -> None:
        """What a broadcast does: the model never answers one."""
        self.counters["messages"] += 1
        self.log(0xC0 | (0x20 if self.listen_only else 0))
        self.counters["silent"] += 1  # whatever happens, nothing is sent
        valid = function == 8
        try:
            self.check_fields(function, fields)
        except Refused:
            valid = False
        if valid:  # a diagnostic that changes the line's state, or a query to ignore
            sub_function, data = int(fields["sub"]), bytes(fields["data"])  # type: ignore[call-overload]
            if sub_function not in BROADCAST_DIAGNOSTICS or (self.listen_only and sub_function != 0x01):
                return None
            if sub_function == 0x04:
                self.listen_only = True
                self.log(0x04)
                return None
            self.counters["events"] += 1
            if sub_function == 0x01:
                self.restart(clear_log=data == b"\xff\x00")
            elif sub_function == 0x0A:
                self.counters = dict.fromkeys(self.counters, 0)
            elif sub_function == 0x03:
                self.delimiter = data[0]
            return None
        if self.listen_only:
            return None
        try:
            self.check_fields(function, fields)
        except Refused:
            self.counters["exceptions"] += 1  # it would have been an exception: counted
            return None
        if function not in WRITES:
            return None  # reads by broadcast are ignored
        failed = False
        for index in sorted(set(self.unit_map.values())):
            try:
                self.execute(self.models[index], function, fields)
            except Refused:
                failed = True
        self.counters["exceptions" if failed else "events"] += 1
        return None

    def send(self, unit: int, function: int, pdu: bytes, fields: dict[str, object]) -> None:
        self.last = (unit, function, pdu, fields)
        if self.over_connection and len(pdu) <= LARGEST_PDU:
            wire = self.over_tcp(unit, pdu)
            self.counters["frames"] += 1  # before any answer reads or clears it
            expected = self.expect(unit, function, fields)
            expected_wire = b"" if expected is None else MbapFramer().encode(unit, 0x0102, expected.encode())
            assert wire == expected_wire, f"unit {unit} {pdu.hex()}: {wire.hex()} != {expected_wire.hex()}"
            return
        request = Request(FUNCTIONS.decode_request(pdu), unit, 0x0102)
        actual = self.dispatcher.dispatch(request)
        expected = self.expect(unit, function, fields)
        if expected is None:
            assert actual is None, f"unit {unit} {pdu.hex()}: expected silence, got {actual!r}"
        else:
            assert actual == Response(expected, unit, 0x0102), f"unit {unit} {pdu.hex()}: {actual!r} != {expected!r}"

    def over_tcp(self, unit: int, pdu: bytes) -> bytes:
        """What a server writes for *pdu* to *unit* arriving as one MBAP frame."""
        frame = MbapFramer().encode(unit, 0x0102, pdu)
        answer = self.connection.answer_now(frame, self.dispatcher)
        if answer is not None:
            return answer
        self.connection.receive_data(frame, 0.0)
        event = self.connection.next_event()
        assert isinstance(event, Request)
        assert self.connection.next_event() is NEED_DATA
        response = self.dispatcher.dispatch(event)
        assert response is None or isinstance(response, Response)
        return b"" if response is None else self.connection.send(response)

    # -- the operations, one per function, chosen by the rule below --------------------

    def do_read(self, unit: int, function: int, address: int, count: int) -> None:
        pdu = struct.pack(">BHH", function, address, count)
        self.send(unit, function, pdu, {"address": address, "count": count})

    def do_write_coil(self, unit: int, address: int, value: int) -> None:
        self.send(unit, 5, struct.pack(">BHH", 5, address, value), {"address": address, "value": value})

    def do_write_register(self, unit: int, address: int, value: int) -> None:
        self.send(unit, 6, struct.pack(">BHH", 6, address, value), {"address": address, "value": value})

    def do_write_coils(self, unit: int, address: int, bits: list[int], bad_count: bool) -> None:
        packed = pack_bits(bits)
        byte_count = len(packed) + (1 if bad_count else 0)
        pdu = struct.pack(">BHHB", 15, address, len(bits), byte_count) + packed + (b"\x00" if bad_count else b"")
        self.send(unit, 15, pdu, {"address": address, "values": bits, "bad_count": bad_count})

    def do_write_registers(self, unit: int, address: int, values: list[int], bad_count: bool) -> None:
        body = struct.pack(f">{len(values)}H", *values)
        byte_count = len(body) + (2 if bad_count else 0)
        pdu = struct.pack(">BHHB", 16, address, len(values), byte_count) + body + (b"\x00\x00" if bad_count else b"")
        self.send(unit, 16, pdu, {"address": address, "values": values, "bad_count": bad_count})

    def do_mask_write(self, unit: int, address: int, and_mask: int, or_mask: int) -> None:
        pdu = struct.pack(">BHHH", 22, address, and_mask, or_mask)
        self.send(unit, 22, pdu, {"address": address, "and_mask": and_mask, "or_mask": or_mask})

    def do_read_write(
        self, unit: int, read_address: int, read_count: int, write_address: int, values: list[int]
    ) -> None:
        head = struct.pack(">BHHHHB", 23, read_address, read_count, write_address, len(values), 2 * len(values))
        pdu = head + struct.pack(f">{len(values)}H", *values)
        fields = {"read_address": read_address, "read_count": read_count, "write_address": write_address}
        self.send(unit, 23, pdu, {**fields, "values": values})

    def do_read_fifo(self, unit: int, address: int) -> None:
        self.send(unit, 24, struct.pack(">BH", 24, address), {"address": address})

    def do_read_file(self, unit: int, groups: list[tuple[int, int, int, int]]) -> None:
        # An empty request (byte count 0) is one of the malformed ones.
        body = b"".join(struct.pack(">BHHH", *group) for group in groups)
        self.send(unit, 20, bytes((20, len(body))) + body, {"groups": groups})

    def do_write_file(self, unit: int, records: list[tuple[int, int, int, list[int]]]) -> None:
        body = b"".join(
            struct.pack(">BHHH", kind, number, record, len(values)) + struct.pack(f">{len(values)}H", *values)
            for kind, number, record, values in records
        )
        self.send(unit, 21, bytes((21, len(body))) + body, {"groups": records})

    def do_status(self, unit: int, function: int) -> None:
        self.send(unit, function, bytes((function,)), {})

    def do_diagnostics(self, unit: int, sub: int, data: bytes) -> None:
        self.send(unit, 8, struct.pack(">BH", 8, sub) + data, {"sub": sub, "data": data})

    def do_application_write(self, index: int, table: str, address: int, values: list[int]) -> None:
        """The application changes values (a simulator action): read-only ranges do not apply."""
        model = self.models[index]
        if table in ("coils", "discrete_inputs"):
            values = [value & 1 for value in values]
        try:
            addresses = model.span(table, address, len(values))
        except Refused:
            addresses = None
        try:
            self.devices[index].tables[TableKind(table)].write(address, values, force=True)
        except ModbusExceptionError:
            assert addresses is None
        else:
            assert addresses is not None
            for a, value in zip(addresses, values, strict=True):
                model.tables[table][a] = value

    def do_application_fifo(self, index: int, address: int, values: list[int]) -> None:
        self.devices[index].set_fifo(address, values)
        self.models[index].fifos[address] = list(values)

    @rule(operation=st.data(), over_connection=st.booleans())
    def step(self, operation: st.DataObject, over_connection: bool) -> None:
        name, arguments = operation.draw(OPERATIONS, label="operation")
        self.over_connection = over_connection
        getattr(self, f"do_{name}")(**arguments)

    @precondition(lambda self: self.last is not None)
    @rule()
    def repeat(self) -> None:
        """The last request again, as a frame over the connection: what pollers send."""
        assert self.last is not None
        self.over_connection = True
        self.send(*self.last)

    # -- the state ---------------------------------------------------------------------------

    @invariant()
    def same_state(self) -> None:
        for model, device in zip(self.models, self.devices, strict=True):
            for name in TABLES:
                table = device.tables[TableKind(name)]
                actual: dict[int, int] = {}
                for start, size in table.ranges():
                    actual.update(zip(range(start, start + size), map(int, table.read(start, size)), strict=True))
                assert actual == model.tables[name], name
            assert {a: list(values) for a, values in device.fifos.items()} == model.fifos
            assert {n: list(values) for n, values in device.files.items()} == model.files
        diagnostics = self.dispatcher.diagnostics
        assert diagnostics.event_count == self.counters["events"]
        assert diagnostics.bus_exception_error_count == self.counters["exceptions"]
        assert diagnostics.server_message_count == self.counters["messages"]
        assert diagnostics.server_no_response_count == self.counters["silent"]
        assert diagnostics.bus_message_count == self.counters["frames"]
        assert diagnostics.listen_only == self.listen_only
        assert diagnostics.events == bytes(self.events)
        assert diagnostics.ascii_delimiter == self.delimiter


DispatcherMachine.TestCase.settings = settings(max_examples=75, stateful_step_count=50, deadline=None)
test_dispatcher_agrees_with_the_model = DispatcherMachine.TestCase
