"""Properties of the codec: round trips, robustness against any bytes, and
client/server symmetry through every framing."""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modbus_core import (
    AsciiFramer,
    ClientConnection,
    DeviceIdCode,
    Diagnostics,
    DiagnosticsResponse,
    DiagnosticSubFunction,
    ExceptionResponse,
    FileRecord,
    FileRecordReference,
    FrameDropped,
    Framer,
    FunctionTable,
    GetCommEventCounter,
    GetCommEventCounterResponse,
    GetCommEventLog,
    GetCommEventLogResponse,
    MalformedRequest,
    MaskWriteRegister,
    MaskWriteRegisterResponse,
    MbapFramer,
    NeedData,
    RawPdu,
    ReadCoils,
    ReadCoilsResponse,
    ReadDeviceIdentification,
    ReadDeviceIdentificationResponse,
    ReadDiscreteInputs,
    ReadDiscreteInputsResponse,
    ReadExceptionStatus,
    ReadExceptionStatusResponse,
    ReadFifoQueue,
    ReadFifoQueueResponse,
    ReadFileRecord,
    ReadFileRecordResponse,
    ReadHoldingRegisters,
    ReadHoldingRegistersResponse,
    ReadInputRegisters,
    ReadInputRegistersResponse,
    ReadWriteMultipleRegisters,
    ReadWriteMultipleRegistersResponse,
    RemoteProtocolError,
    ReportServerId,
    ReportServerIdResponse,
    Request,
    RequestPdu,
    Response,
    ResponsePdu,
    RtuFramer,
    ServerConnection,
    ServerDiagnostics,
    WriteFileRecord,
    WriteFileRecordResponse,
    WriteMultipleCoils,
    WriteMultipleCoilsResponse,
    WriteMultipleRegisters,
    WriteMultipleRegistersResponse,
    WriteSingleCoil,
    WriteSingleCoilResponse,
    WriteSingleRegister,
    WriteSingleRegisterResponse,
)

from .cases import mbap, rtu

TABLE = FunctionTable()
CHEAP = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
COSTLY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

addresses = st.integers(0, 0xFFFF)
words = st.integers(0, 0xFFFF)
small_bytes = st.binary(max_size=40)


# Values drawn as bytes: much faster to generate than lists of numbers.


def registers(low: int, high: int) -> st.SearchStrategy[tuple[int, ...]]:
    return st.integers(low, high).flatmap(
        lambda count: st.binary(min_size=2 * count, max_size=2 * count).map(
            lambda data: struct.unpack(f">{len(data) // 2}H", data)
        )
    )


def bits(low: int, high: int) -> st.SearchStrategy[tuple[bool, ...]]:
    return st.integers(low, high).flatmap(
        lambda count: st.binary(min_size=(count + 7) // 8, max_size=(count + 7) // 8).map(
            lambda data: tuple(bool(data[index // 8] >> (index % 8) & 1) for index in range(count))
        )
    )


# --------------------------------------------------------------------------
# a request and a response that answers it, for every function


Pair = tuple[RequestPdu, ResponsePdu]


def _or_exception(pair: st.SearchStrategy[Pair]) -> st.SearchStrategy[Pair]:
    """The pair, or its request answered with an exception."""
    exception_code = st.sampled_from([1, 2, 3, 4, 5, 6, 8, 0x0A, 0x0B])
    return st.one_of(
        pair,
        st.tuples(pair, exception_code).map(lambda p: (p[0][0], ExceptionResponse(p[0][0].function_code & 0x7F, p[1]))),
    )


@st.composite
def bit_reads(draw: st.DrawFn) -> Pair:
    request_cls, response_cls = draw(
        st.sampled_from([(ReadCoils, ReadCoilsResponse), (ReadDiscreteInputs, ReadDiscreteInputsResponse)])
    )
    count = draw(st.integers(1, 2000))
    return request_cls(draw(addresses), count), response_cls(draw(bits(count, count)))


@st.composite
def register_reads(draw: st.DrawFn) -> Pair:
    request_cls, response_cls = draw(
        st.sampled_from(
            [(ReadHoldingRegisters, ReadHoldingRegistersResponse), (ReadInputRegisters, ReadInputRegistersResponse)]
        )
    )
    count = draw(st.integers(1, 125))
    return request_cls(draw(addresses), count), response_cls(draw(registers(count, count)))


@st.composite
def single_writes(draw: st.DrawFn) -> Pair:
    address = draw(addresses)
    if draw(st.booleans()):
        value = draw(st.booleans())
        return WriteSingleCoil(address, value), WriteSingleCoilResponse(address, value)
    word = draw(words)
    return WriteSingleRegister(address, word), WriteSingleRegisterResponse(address, word)


@st.composite
def multiple_writes(draw: st.DrawFn) -> Pair:
    address = draw(addresses)
    if draw(st.booleans()):
        values = draw(bits(1, 1968))
        return WriteMultipleCoils(address, values), WriteMultipleCoilsResponse(address, len(values))
    words_ = draw(registers(1, 123))
    return WriteMultipleRegisters(address, words_), WriteMultipleRegistersResponse(address, len(words_))


@st.composite
def diagnostics(draw: st.DrawFn) -> Pair:
    sub_function = draw(
        st.sampled_from(sorted(set(DiagnosticSubFunction) - {DiagnosticSubFunction.FORCE_LISTEN_ONLY_MODE}))
    )
    if sub_function == DiagnosticSubFunction.RETURN_QUERY_DATA:
        data = draw(st.binary(max_size=250))
        return Diagnostics(sub_function, data), DiagnosticsResponse(sub_function, data)
    if sub_function == DiagnosticSubFunction.RESTART_COMMUNICATIONS_OPTION:
        data = draw(st.sampled_from([b"\x00\x00", b"\xff\x00"]))
        return Diagnostics(sub_function, data), DiagnosticsResponse(sub_function, data)
    if sub_function == DiagnosticSubFunction.CHANGE_ASCII_INPUT_DELIMITER:
        data = bytes((draw(st.integers(0, 255)), 0))
        return Diagnostics(sub_function, data), DiagnosticsResponse(sub_function, data)
    return Diagnostics(sub_function), DiagnosticsResponse(sub_function, draw(st.binary(min_size=2, max_size=2)))


@st.composite
def status_functions(draw: st.DrawFn) -> Pair:
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return ReadExceptionStatus(), ReadExceptionStatusResponse(draw(st.integers(0, 255)))
    if choice == 1:
        return GetCommEventCounter(), GetCommEventCounterResponse(draw(words), draw(words))
    if choice == 2:
        events = draw(st.binary(max_size=64))
        return GetCommEventLog(), GetCommEventLogResponse(draw(words), draw(words), draw(words), events)
    response = ReportServerIdResponse(draw(st.integers(0, 255)), draw(st.booleans()), draw(st.binary(max_size=249)))
    return ReportServerId(), response


@st.composite
def file_reads(draw: st.DrawFn) -> Pair:
    # The response must fit a PDU: 2 bytes, then 2 per group and 2 per record.
    count = draw(st.integers(1, 35))
    lengths = draw(st.lists(st.integers(1, (249 - 2 * count) // (2 * count)), min_size=count, max_size=count))
    references = tuple(
        FileRecordReference(draw(st.integers(1, 0xFFFF)), draw(st.integers(0, 0x270F)), length) for length in lengths
    )
    records = tuple(draw(registers(length, length)) for length in lengths)
    return ReadFileRecord(references), ReadFileRecordResponse(records)


@st.composite
def file_writes(draw: st.DrawFn) -> Pair:
    # 7 bytes of header and 2 per record for each group: 9..251 in all.
    count = draw(st.integers(1, 27))
    lengths = draw(st.lists(st.integers(1, (251 - 7 * count) // (2 * count)), min_size=count, max_size=count))
    records = tuple(
        FileRecord(draw(st.integers(1, 0xFFFF)), draw(st.integers(0, 0x270F)), draw(registers(length, length)))
        for length in lengths
    )
    return WriteFileRecord(records), WriteFileRecordResponse(records)


@st.composite
def other_registers(draw: st.DrawFn) -> Pair:
    choice = draw(st.integers(0, 2))
    if choice == 0:
        address, and_mask, or_mask = draw(addresses), draw(words), draw(words)
        return MaskWriteRegister(address, and_mask, or_mask), MaskWriteRegisterResponse(address, and_mask, or_mask)
    if choice == 1:
        read_count = draw(st.integers(1, 125))
        request = ReadWriteMultipleRegisters(draw(addresses), read_count, draw(addresses), draw(registers(1, 121)))
        return request, ReadWriteMultipleRegistersResponse(draw(registers(read_count, read_count)))
    return ReadFifoQueue(draw(addresses)), ReadFifoQueueResponse(draw(registers(0, 31)))


@st.composite
def identification(draw: st.DrawFn) -> Pair:
    read_code = draw(st.sampled_from(list(DeviceIdCode)))
    objects = []
    size = 7
    for object_id in draw(st.lists(st.integers(0, 255), max_size=8, unique=True)):
        room = 253 - size - 2  # a PDU is 253 bytes at most
        if room < 0:
            break
        value = draw(st.binary(max_size=room))
        objects.append((object_id, value))
        size += 2 + len(value)
    response = ReadDeviceIdentificationResponse(
        read_code,
        draw(st.sampled_from([1, 2, 3, 0x81, 0x82, 0x83])),
        draw(st.booleans()),
        draw(st.integers(0, 255)),
        tuple(objects),
    )
    return ReadDeviceIdentification(read_code, draw(st.integers(0, 255))), response


KNOWN = {
    0x01,
    0x02,
    0x03,
    0x04,
    0x05,
    0x06,
    0x07,
    0x08,
    0x0B,
    0x0C,
    0x0F,
    0x10,
    0x11,
    0x14,
    0x15,
    0x16,
    0x17,
    0x18,
    0x2B,
}
unknown_codes = st.integers(1, 0x7F).filter(lambda code: code not in KNOWN)


@st.composite
def raw(draw: st.DrawFn) -> Pair:
    if draw(st.booleans()):
        code = draw(unknown_codes)
        return RawPdu(code, draw(st.binary(max_size=252))), RawPdu(code, draw(st.binary(max_size=252)))
    # Encapsulated interface transport with another MEI type than 14.
    mei = draw(st.integers(0, 255).filter(lambda value: value != 0x0E))
    request_data = bytes((mei,)) + draw(st.binary(max_size=40))
    response_data = bytes((mei,)) + draw(st.binary(max_size=40))
    return RawPdu(0x2B, request_data), RawPdu(0x2B, response_data)


PAIRS = _or_exception(
    st.one_of(
        bit_reads(),
        register_reads(),
        single_writes(),
        multiple_writes(),
        diagnostics(),
        status_functions(),
        file_reads(),
        file_writes(),
        other_registers(),
        identification(),
        raw(),
    )
)


# --------------------------------------------------------------------------
# round trips


@CHEAP
@given(PAIRS)
def test_every_request_round_trips(pair: Pair) -> None:
    request, _ = pair
    assert TABLE.decode_request(request.encode()) == request


@CHEAP
@given(PAIRS)
def test_every_response_round_trips(pair: Pair) -> None:
    _, response = pair
    decoded = TABLE.decode_response(response.encode())
    if isinstance(response, ReadCoilsResponse | ReadDiscreteInputsResponse):
        # Bits come back padded to whole bytes, with zeros.
        assert isinstance(decoded, type(response))
        assert decoded.values[: len(response.values)] == response.values
        assert not any(decoded.values[len(response.values) :])
        assert len(decoded.values) == (len(response.values) + 7) // 8 * 8
    else:
        assert decoded == response


@CHEAP
@given(st.binary(max_size=260))
def test_any_bytes_decode_to_a_request_a_server_can_answer(data: bytes) -> None:
    decoded = TABLE.decode_request(data)
    if isinstance(decoded, MalformedRequest):
        assert decoded.exception_code in (1, 3)
        assert decoded.encode() == data or data == b""
        return
    # A decoded request is valid, and the bytes were its only encoding (also
    # for a copy, which does not keep the bytes it came from).
    assert dataclasses.replace(decoded) == decoded  # type: ignore[type-var]
    assert decoded.encode() == data
    assert dataclasses.replace(decoded).encode() == data  # type: ignore[type-var]


@CHEAP
@given(st.binary(max_size=260))
def test_any_bytes_decode_to_a_response_or_a_remote_protocol_error(data: bytes) -> None:
    try:
        decoded = TABLE.decode_response(data)
    except RemoteProtocolError:
        return
    assert dataclasses.replace(decoded) == decoded  # type: ignore[type-var]
    encoded = decoded.encode()
    assert dataclasses.replace(decoded).encode() == encoded  # type: ignore[type-var]
    if isinstance(decoded, ReportServerIdResponse):
        # Any run indicator but 0x00 reads as on, which encodes as 0xFF.
        assert encoded[3] in (0x00, 0xFF)
        encoded = encoded[:3] + data[3:4] + encoded[4:]
    assert encoded == data


# --------------------------------------------------------------------------
# any bytes, cut anywhere, into any connection


FRAMERS: dict[str, Callable[[], Framer]] = {
    "mbap": MbapFramer,
    "mbap-timeout": lambda: MbapFramer(frame_timeout=0.5),
    "mbap-datagram": lambda: MbapFramer(datagram=True),
    "rtu": lambda: RtuFramer(19200),
    "rtu-strict": lambda: RtuFramer(9600, strict_timing=True),
    "rtu-fast": lambda: RtuFramer(115200, strict_timing=True),
    "rtu-datagram": lambda: RtuFramer(19200, datagram=True),
    "ascii": lambda: AsciiFramer(timeout=0.2),
}
STREAM_ERRORS = {"mbap", "mbap-timeout"}  # where RemoteProtocolError may end the stream


def _frame_pieces() -> st.SearchStrategy[bytes]:
    """Bytes that look like the start of frames often enough to reach deep states."""
    valid = PAIRS.flatmap(
        lambda pair: st.sampled_from(
            [
                mbap(1, 1, pair[0].encode()),
                mbap(1, 1, pair[1].encode()),
                rtu(1, pair[0].encode()),
                rtu(2, pair[1].encode()),
                b":" + (bytes((1,)) + pair[0].encode()).hex().upper().encode() + b"\r\n",
            ]
        )
    )
    return st.one_of(st.binary(max_size=30), valid, st.sampled_from([b":", b"\r\n", b"\x00\x00\x00\x00", b"\x01\x03"]))


@st.composite
def cut_stream(draw: st.DrawFn) -> list[tuple[bytes, float]]:
    data = b"".join(draw(st.lists(_frame_pieces(), max_size=6)))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=8)))
    chunks = []
    start = 0
    now = 0.0
    for cut in [*cuts, len(data)]:
        now += draw(st.sampled_from([0.0, 0.0001, 0.001, 0.003, 0.03, 1.0]))
        chunks.append((data[start:cut], now))
        start = cut
    return chunks


def _run(
    connection: ServerConnection | ClientConnection, chunks: list[tuple[bytes, float]], streaming: bool
) -> list[Any]:
    events: list[Any] = []
    try:
        for data, now in chunks:
            connection.receive_data(data, now)
            deadline = connection.next_deadline()
            if deadline is not None:
                assert isinstance(deadline, float)
                connection.handle_timeout(now)  # too early: does nothing harmful
            for _ in range(10_000):
                event = connection.next_event()
                if isinstance(event, NeedData):
                    break
                events.append(event)
        deadline = connection.next_deadline()
        if deadline is not None:
            connection.handle_timeout(deadline + 1.0)
            for _ in range(10_000):
                event = connection.next_event()
                if isinstance(event, NeedData):
                    break
                events.append(event)
    except RemoteProtocolError:
        assert streaming
    return events


@COSTLY
@given(st.sampled_from(sorted(FRAMERS)), cut_stream(), st.booleans(), st.booleans())
def test_servers_survive_any_bytes(name: str, chunks: list[tuple[bytes, float]], shared: bool, echo: bool) -> None:
    options: dict[str, Any] = {"units": {1, 3}, "diagnostics": ServerDiagnostics()} if shared else {}
    server = ServerConnection(FRAMERS[name](), echo=echo, **options)
    if echo:
        server.send(Response(ReadHoldingRegistersResponse((1,)), 1, 0))
    for event in _run(server, chunks, name in STREAM_ERRORS):
        assert isinstance(event, Request | FrameDropped)
        if isinstance(event, FrameDropped):
            assert event.data or name == "mbap-datagram"  # an empty datagram is dropped too


@COSTLY
@given(st.sampled_from(sorted(FRAMERS)), cut_stream(), st.lists(PAIRS, max_size=3))
def test_clients_survive_any_bytes(name: str, chunks: list[tuple[bytes, float]], pending: list[Pair]) -> None:
    client = ClientConnection(FRAMERS[name]())
    for unit, (request, _) in enumerate(pending, start=1):
        client.send(client.request(request, unit))
    for event in _run(client, chunks, name in STREAM_ERRORS):
        assert isinstance(event, Response | FrameDropped)


# --------------------------------------------------------------------------
# a client and a server wired together


WIRED: dict[str, Callable[[], Framer]] = {
    "mbap": MbapFramer,
    "rtu": lambda: RtuFramer(19200),
    "ascii": AsciiFramer,
}


def _deliver(
    connection: ServerConnection | ClientConnection, data: bytes, cuts: list[int], now: float
) -> tuple[list[Any], float]:
    """Feed *data* in pieces a millisecond apart, then let silence end it."""
    events: list[Any] = []
    start = 0
    for cut in [*sorted(cut % (len(data) + 1) for cut in cuts), len(data)]:
        now += 0.001
        connection.receive_data(data[start:cut], now)
        start = cut
        while not isinstance(event := connection.next_event(), NeedData):
            events.append(event)
    deadline = connection.next_deadline()
    if deadline is not None:
        now = deadline
        connection.handle_timeout(now)
        while not isinstance(event := connection.next_event(), NeedData):
            events.append(event)
    return events, now + 1.0


@COSTLY
@given(
    st.sampled_from(sorted(WIRED)),
    st.lists(st.tuples(PAIRS, st.integers(0, 247), st.lists(st.integers(0, 600), max_size=3)), min_size=1, max_size=4),
)
def test_client_and_server_agree(name: str, exchanges: list[tuple[Pair, int, list[int]]]) -> None:
    client = ClientConnection(WIRED[name]())
    server = ServerConnection(WIRED[name]())
    now = 0.0
    for (request_pdu, response_pdu), unit, cuts in exchanges:
        if name == "ascii" and isinstance(request_pdu, Diagnostics) and request_pdu.sub_function == 3:
            continue  # it would change the server's end of frame for the frames that follow
        request = client.request(request_pdu, unit)
        received, now = _deliver(server, client.send(request), cuts, now)
        assert received == [request]
        broadcast = name != "mbap" and unit == 0
        if broadcast:
            assert client.pending == ()
            continue
        response = request.reply(response_pdu)
        answered, now = _deliver(client, server.send(response), cuts, now)
        assert answered == [response]
        assert client.pending == ()


# --------------------------------------------------------------------------
# the whole-frame cache changes nothing but speed


@st.composite
def polls(draw: st.DrawFn) -> tuple[str, list[tuple[bytes, float]]]:
    """Reads of a poller: the same few frames again, some garbled or split."""
    frames = draw(st.lists(PAIRS.map(lambda pair: pair[0].encode()), min_size=1, max_size=3))
    chunks = []
    now = 0.0
    framing = draw(st.sampled_from(["mbap", "rtu"]))
    for index in draw(st.lists(st.integers(0, len(frames) - 1), min_size=1, max_size=12)):
        unit = draw(st.integers(0, 3))
        frame = mbap(draw(st.integers(0, 3)), unit, frames[index]) if framing == "mbap" else rtu(unit, frames[index])
        damage = draw(st.integers(0, 5))
        if damage == 1:
            frame = frame[: draw(st.integers(0, len(frame)))]
        elif damage == 2:
            position = draw(st.integers(0, len(frame) - 1))
            frame = frame[:position] + bytes((frame[position] ^ 0x5A,)) + frame[position + 1 :]
        elif damage == 3:
            frame = frame + frame
        now += draw(st.sampled_from([0.0005, 0.03, 1.0]))
        chunks.append((frame, now))
    return framing, chunks


@COSTLY
@given(polls())
def test_the_frame_cache_changes_no_event(reads: tuple[str, list[tuple[bytes, float]]]) -> None:
    framing, chunks = reads
    make = MbapFramer if framing == "mbap" else RtuFramer
    cached = ServerConnection(make())
    plain = ServerConnection(make(), units=range(256))  # same meaning, no whole-frame cache
    assert _run(cached, chunks, True) == _run(plain, chunks, True)
