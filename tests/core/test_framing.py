"""Framers: MBAP streams and datagrams, RTU timing and resynchronisation, ASCII.

Driven through connections, the way adapters use them; the exchanges of
the case table are in test_connection.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from modbus_core import (
    AsciiFramer,
    ClientConnection,
    Diagnostics,
    DiagnosticsResponse,
    DiagnosticSubFunction,
    DropCause,
    ExceptionResponse,
    FrameDropped,
    Framer,
    LocalProtocolError,
    MbapFramer,
    RawPdu,
    ReadHoldingRegisters,
    ReadHoldingRegistersResponse,
    RemoteProtocolError,
    Request,
    Response,
    RtuFramer,
    ServerConnection,
    ServerDiagnostics,
    WriteSingleRegister,
    WriteSingleRegisterResponse,
)

from .cases import ascii_frame, bytewise, char_time, feed, mbap, rtu, split, whole

READ = bytes.fromhex("03006B0003")  # read holding registers 108-110
READ_PDU = ReadHoldingRegisters(107, 3)
ANSWER = bytes.fromhex("0306022B00000064")
ANSWER_PDU = ReadHoldingRegistersResponse((0x022B, 0, 0x64))


def causes(events: Sequence[object]) -> list[DropCause]:
    return [event.cause for event in events if isinstance(event, FrameDropped)]


def requests(events: Sequence[object]) -> list[object]:
    return [event for event in events if not isinstance(event, FrameDropped)]


# --------------------------------------------------------------------------
# MBAP


def test_mbap_many_adus_in_one_read() -> None:
    server = ServerConnection(MbapFramer())
    wire = b"".join(mbap(transaction_id, 1, READ) for transaction_id in range(5))
    assert feed(server, whole(wire)) == [Request(READ_PDU, 1, transaction_id) for transaction_id in range(5)]


def test_mbap_adus_split_anywhere() -> None:
    wire = mbap(1, 1, READ) + mbap(2, 2, READ) + mbap(3, 3, READ)
    expected = [Request(READ_PDU, unit, unit) for unit in (1, 2, 3)]
    for cut in range(1, len(wire)):
        server = ServerConnection(MbapFramer())
        assert feed(server, [(wire[:cut], 1.0), (wire[cut:], 2.0)]) == expected, cut


def test_mbap_other_protocol_is_dropped_without_losing_the_stream() -> None:
    server = ServerConnection(MbapFramer())
    other = mbap(9, 1, READ, protocol_id=1)
    events = feed(server, whole(other + mbap(10, 1, READ)))
    assert events == [FrameDropped(DropCause.PROTOCOL_ID, other, "protocol id 1"), Request(READ_PDU, 1, 10)]


@pytest.mark.parametrize("length", [0, 1, 255, 0xFFFF])
def test_mbap_length_out_of_range_cannot_be_resynchronised(length: int) -> None:
    server = ServerConnection(MbapFramer())
    server.receive_data(mbap(1, 1, READ) + bytes.fromhex(f"00020000{length:04X}01") + READ, 0.0)
    assert server.next_event() == Request(READ_PDU, 1, 1)
    with pytest.raises(RemoteProtocolError, match=rf"length {length} outside"):
        server.next_event()


def test_mbap_partial_header_waits() -> None:
    server = ServerConnection(MbapFramer())
    wire = mbap(1, 1, READ)
    assert feed(server, whole(wire[:6])) == []
    assert feed(server, whole(wire[6:])) == [Request(READ_PDU, 1, 1)]


def test_mbap_frame_timeout() -> None:
    framer = MbapFramer(frame_timeout=2.0)
    assert framer.frame_timeout == 2.0
    server = ServerConnection(framer)
    assert server.next_deadline() is None
    wire = mbap(1, 1, READ)
    server.receive_data(wire[:4], 10.0)
    assert server.next_event() is not None
    assert server.next_deadline() == 12.0
    server.receive_data(wire[4:8], 11.0)  # still the same partial ADU
    assert server.next_deadline() == 12.0
    server.handle_timeout(11.9)
    with pytest.raises(RemoteProtocolError, match=r"incomplete after 2\.0 s"):
        server.handle_timeout(12.0)


def test_mbap_frame_timeout_follows_the_partial_adu() -> None:
    # A pipelining client whose reads all end inside an ADU is healthy:
    # each partial ADU gets its own time, however long the stream runs.
    server = ServerConnection(MbapFramer(frame_timeout=2.0))
    wire = b"".join(mbap(transaction_id, 1, READ) for transaction_id in range(20))
    events = []
    for index, start in enumerate(range(0, len(wire), 17)):
        now = float(index)
        events += feed(server, [(wire[start : start + 17], now)], settle=False)
        deadline = server.next_deadline()
        assert deadline is None or deadline >= now + 1.0
        server.handle_timeout(now + 1.0)
    assert events == [Request(READ_PDU, 1, transaction_id) for transaction_id in range(20)]


def test_mbap_without_frame_timeout_waits_forever() -> None:
    server = ServerConnection(MbapFramer())
    server.receive_data(mbap(1, 1, READ)[:5], 0.0)
    assert server.next_deadline() is None
    server.handle_timeout(1e9)


@pytest.mark.parametrize("timeout", [0, -1.0])
def test_mbap_frame_timeout_must_be_positive(timeout: float) -> None:
    with pytest.raises(LocalProtocolError):
        MbapFramer(frame_timeout=timeout)


def test_mbap_datagrams() -> None:
    framer = MbapFramer(datagram=True)
    assert framer.datagram
    assert "datagram=True" in repr(framer)
    server = ServerConnection(framer)
    good = mbap(1, 1, READ)
    short = good[:7]
    other = mbap(2, 1, READ, protocol_id=3)
    bad_length = bytes.fromhex("00030000000101") + READ
    too_long = bytes.fromhex("000400000010") + good[6:]
    chunks = [(short, 1.0), (good + b"\xff\xfe", 2.0), (other, 3.0), (bad_length, 4.0), (too_long, 5.0), (good, 6.0)]
    events = feed(server, chunks)
    assert events == [
        FrameDropped(DropCause.TOO_SHORT, short, "datagram shorter than an MBAP header and a PDU"),
        Request(READ_PDU, 1, 1),
        FrameDropped(DropCause.GARBAGE, b"\xff\xfe", "bytes after the ADU in the datagram"),
        FrameDropped(DropCause.PROTOCOL_ID, other, "protocol id 3"),
        FrameDropped(DropCause.INCOMPLETE, bad_length, "MBAP length 1 does not fit the datagram"),
        FrameDropped(DropCause.INCOMPLETE, too_long, "MBAP length 16 does not fit the datagram"),
        Request(READ_PDU, 1, 1),
    ]
    assert server.next_deadline() is None


def test_mbap_datagrams_read_together_stay_apart() -> None:
    server = ServerConnection(MbapFramer(datagram=True))
    server.receive_data(mbap(1, 1, READ)[:9], 0.0)
    server.receive_data(mbap(2, 1, READ), 0.0)
    assert [type(event) for event in feed(server, [])] == [FrameDropped, Request]


def test_mbap_encode_checks_its_input() -> None:
    framer = MbapFramer()
    assert framer.encode(1, 2, READ) == mbap(2, 1, READ)
    assert not framer.is_serial
    with pytest.raises(LocalProtocolError, match=r"1\.\.253"):
        framer.encode(1, 2, b"")
    with pytest.raises(LocalProtocolError, match=r"1\.\.253"):
        framer.encode(1, 2, bytes(254))
    with pytest.raises(LocalProtocolError, match="out of range"):
        framer.encode(256, 2, READ)
    with pytest.raises(LocalProtocolError, match="out of range"):
        framer.encode(1, 0x10000, READ)


def test_connections_accept_only_framers_and_tables() -> None:
    with pytest.raises(LocalProtocolError, match="Framer"):
        ServerConnection(object())  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="FunctionTable"):
        ClientConnection(MbapFramer(), functions=object())  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="ServerDiagnostics"):
        ServerConnection(RtuFramer(), diagnostics=object())  # type: ignore[arg-type]


def test_bytearray_and_memoryview_input() -> None:
    framers: list[Framer] = [
        MbapFramer(),
        RtuFramer(),
        AsciiFramer(),
        MbapFramer(datagram=True),
        RtuFramer(datagram=True),
    ]
    for framer in framers:
        server = ServerConnection(framer)
        if isinstance(framer, MbapFramer):
            wire, transaction_id = mbap(1, 1, READ), 1
        else:
            wire, transaction_id = (rtu(1, READ) if isinstance(framer, RtuFramer) else ascii_frame(1, READ)), 0
        expected = [Request(READ_PDU, 1, transaction_id)]
        assert feed(server, whole(bytearray(wire))) == expected
        assert feed(server, whole(memoryview(wire))) == expected
        if not isinstance(framer, MbapFramer | RtuFramer) or not framer.datagram:
            split_reads = [(memoryview(wire)[:3], 2.0), (bytearray(wire[3:]), 2.0)]
            assert feed(server, split_reads) == expected  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# RTU timing

BAUDRATES = [9600, 19200, 115200]


def test_the_well_known_rtu_request() -> None:
    server = ServerConnection(RtuFramer(19200))
    assert feed(server, whole(bytes.fromhex("01030000000AC5CD"))) == [Request(ReadHoldingRegisters(0, 10), 1)]
    client = ClientConnection(RtuFramer(19200))
    assert client.send(client.request(ReadHoldingRegisters(0, 10), 1)) == bytes.fromhex("01030000000AC5CD")


def test_rtu_timing_constants() -> None:
    slow = RtuFramer(9600)
    assert slow.t1_5 == pytest.approx(1.5 * 11 / 9600)
    assert slow.t3_5 == pytest.approx(3.5 * 11 / 9600)
    fast = RtuFramer(115200)
    assert (fast.t1_5, fast.t3_5) == (0.000750, 0.001750)
    assert fast.baudrate == 115200
    assert RtuFramer(19200, strict_timing=True).strict_timing
    assert not RtuFramer().strict_timing
    assert repr(RtuFramer(9600)) == "RtuFramer(baudrate=9600, strict_timing=False, datagram=False)"
    assert RtuFramer().is_serial


@pytest.mark.parametrize("baudrate", [0, -9600, 9600.0, "9600"])
def test_rtu_baudrate_must_be_a_positive_integer(baudrate: object) -> None:
    with pytest.raises(LocalProtocolError):
        RtuFramer(baudrate)  # type: ignore[arg-type]


@pytest.mark.parametrize("baudrate", BAUDRATES)
def test_strict_timing_accepts_a_frame_without_gaps(baudrate: int) -> None:
    server = ServerConnection(RtuFramer(baudrate, strict_timing=True))
    wire = rtu(1, READ)
    assert feed(server, bytewise(wire, baudrate=baudrate)) == [Request(READ_PDU, 1)]


@pytest.mark.parametrize("baudrate", BAUDRATES)
def test_strict_timing_accepts_a_gap_up_to_t1_5(baudrate: int) -> None:
    framer = RtuFramer(baudrate, strict_timing=True)
    server = ServerConnection(framer)
    assert feed(server, split(rtu(1, READ), 4, framer.t1_5 * 0.9, baudrate=baudrate)) == [Request(READ_PDU, 1)]


@pytest.mark.parametrize("baudrate", BAUDRATES)
def test_strict_timing_discards_a_frame_with_a_gap_over_t1_5(baudrate: int) -> None:
    framer = RtuFramer(baudrate, strict_timing=True)
    server = ServerConnection(framer)
    wire = rtu(1, READ)
    events = feed(server, split(wire, 4, framer.t1_5 * 1.2, baudrate=baudrate))
    assert requests(events) == []
    assert causes(events)[0] == DropCause.TIMING
    assert b"".join(event.data for event in events if isinstance(event, FrameDropped)) == wire


@pytest.mark.parametrize("baudrate", BAUDRATES)
def test_strict_timing_drops_a_frame_that_follows_within_t3_5(baudrate: int) -> None:
    framer = RtuFramer(baudrate, strict_timing=True)
    server = ServerConnection(framer)
    first = rtu(1, READ)
    second = rtu(2, READ)
    step = char_time(baudrate)
    first_end = 1.0 + (len(first) - 1) * step
    too_soon = first_end + framer.t3_5 * 0.8 + step
    events = feed(server, [*bytewise(first, 1.0, baudrate), *bytewise(second, too_soon, baudrate)])
    assert events == [
        Request(READ_PDU, 1),
        FrameDropped(DropCause.TIMING, second, "frame began less than t3.5 after the previous one"),
    ]
    # After t3.5 of silence the next frame is welcome again.
    later = too_soon + (len(second) - 1) * step + framer.t3_5 * 1.1 + step
    assert feed(server, bytewise(second, later, baudrate)) == [Request(READ_PDU, 2)]


@pytest.mark.parametrize("baudrate", BAUDRATES)
def test_strict_timing_counts_dropped_bytes_as_activity(baudrate: int) -> None:
    # Garbage also occupies the line: a frame must follow it by t3.5.
    framer = RtuFramer(baudrate, strict_timing=True)
    server = ServerConnection(framer)
    noise_end = 1.0
    frame = rtu(1, READ)
    start = noise_end + framer.t3_5 * 0.5 + char_time(baudrate)
    events = feed(server, [(b"\x00\x00", noise_end), *bytewise(frame, start, baudrate)])
    assert causes(events)[-1] == DropCause.TIMING
    assert requests(events) == []


def test_strict_silence_ends_a_frame_after_t1_5() -> None:
    framer = RtuFramer(19200, strict_timing=True)
    server = ServerConnection(framer)
    echo = rtu(1, bytes.fromhex("080000A537"))
    server.receive_data(echo, 5.0)
    assert server.next_deadline() == pytest.approx(5.0 + framer.t1_5)
    assert feed(server, []) == [Request(Diagnostics(0, bytes.fromhex("A537")), 1)]


def test_tolerant_timing_ignores_gaps_a_usb_adapter_makes() -> None:
    framer = RtuFramer(19200)
    server = ServerConnection(framer)
    # 5 ms inside a frame (far above t1.5 = 0.86 ms) still makes one frame.
    assert feed(server, split(rtu(1, READ), 3, 0.005)) == [Request(READ_PDU, 1)]
    # Back-to-back frames are fine too.
    assert feed(server, whole(rtu(1, READ) + rtu(2, READ), 2.0)) == [Request(READ_PDU, 1), Request(READ_PDU, 2)]


def test_tolerant_timing_drops_a_frame_broken_by_long_silence() -> None:
    server = ServerConnection(RtuFramer(19200))
    wire = rtu(1, READ)
    events = feed(server, split(wire, 5, 0.050))
    assert requests(events) == []
    assert causes(events)[0] == DropCause.INCOMPLETE
    assert b"".join(event.data for event in events if isinstance(event, FrameDropped)) == wire


def test_tolerant_deadline_is_the_longer_of_t3_5_and_20_ms() -> None:
    fast = ServerConnection(RtuFramer(19200))
    fast.receive_data(rtu(1, READ)[:3], 1.0)
    assert fast.next_deadline() == pytest.approx(1.020)
    slow_framer = RtuFramer(1200)
    slow = ServerConnection(slow_framer)
    slow.receive_data(rtu(1, READ)[:3], 1.0)
    assert slow.next_deadline() == pytest.approx(1.0 + slow_framer.t3_5)
    assert slow_framer.t3_5 > 0.020


@pytest.mark.parametrize(
    "pdu",
    [
        bytes.fromhex("080000A537"),  # diagnostic echo: any length
        bytes.fromhex("080000"),
        bytes.fromhex("41010203"),  # user function: unknown length
        bytes.fromhex("2B0D0001"),  # MEI 13: unknown length
    ],
)
def test_frames_without_a_length_rule_end_at_silence(pdu: bytes) -> None:
    server = ServerConnection(RtuFramer(19200))
    wire = rtu(3, pdu)
    assert feed(server, whole(wire), settle=False) == []
    assert server.next_deadline() == pytest.approx(1.020)
    server.handle_timeout(1.019)
    assert feed(server, [], settle=False) == []
    server.handle_timeout(1.020)
    [event] = feed(server, [], settle=False)
    assert isinstance(event, Request)
    assert event.unit == 3
    assert event.pdu.encode() == pdu
    assert server.next_deadline() is None


def test_silence_frame_followed_by_the_next_frame() -> None:
    server = ServerConnection(RtuFramer(19200))
    echo = rtu(3, bytes.fromhex("080000A537"))
    events = feed(server, [(echo, 1.0), (rtu(1, READ), 1.5)])
    assert events == [Request(Diagnostics(0, bytes.fromhex("A537")), 3), Request(READ_PDU, 1)]


def test_silence_frame_takes_the_whole_buffer_when_it_checks_out() -> None:
    # Data whose shorter prefix happens to carry a valid CRC: the whole
    # frame, which silence ended, wins over the prefix.
    prefix = rtu(3, bytes.fromhex("08000001"))
    echo_data = prefix[4:] + b"\x55"
    whole_frame = rtu(3, bytes.fromhex("080000") + echo_data)
    assert whole_frame.startswith(prefix)
    server = ServerConnection(RtuFramer(19200))
    [event] = feed(server, whole(whole_frame))
    assert event == Request(Diagnostics(0, echo_data), 3)


def test_two_silence_frames_without_a_gap_between_them() -> None:
    # Where silence cannot separate them, the CRC does.
    server = ServerConnection(RtuFramer(19200))
    first = rtu(3, bytes.fromhex("080000A537"))
    second = rtu(4, bytes.fromhex("0800001234"))
    assert feed(server, whole(first + second)) == [
        Request(Diagnostics(0, bytes.fromhex("A537")), 3),
        Request(Diagnostics(0, bytes.fromhex("1234")), 4),
    ]


# --------------------------------------------------------------------------
# RTU resynchronisation


@pytest.mark.parametrize(
    "garbage",
    [b"\x00", b"\xff\xff\xff", b"\x01\x03", b"\x01\x03\x00", bytes(range(40, 60)), b"\x01\x10\x00\x00\x00\x7b\xf6"],
)
def test_rtu_resynchronises_after_garbage(garbage: bytes) -> None:
    server = ServerConnection(RtuFramer(19200))
    events = feed(server, whole(garbage + rtu(1, READ) + rtu(2, READ)))
    assert requests(events) == [Request(READ_PDU, 1), Request(READ_PDU, 2)]
    dropped = [event for event in events if isinstance(event, FrameDropped)]
    assert b"".join(event.data for event in dropped) == garbage
    assert isinstance(events[0], FrameDropped)


def test_rtu_bad_crc_is_dropped_and_the_next_frame_is_served() -> None:
    server = ServerConnection(RtuFramer(19200))
    bad = bytearray(rtu(1, READ))
    bad[-1] ^= 0xFF
    events = feed(server, [(bytes(bad), 1.0), (rtu(1, READ), 1.1)])
    assert causes(events)[0] == DropCause.CHECKSUM
    assert b"".join(event.data for event in events if isinstance(event, FrameDropped)) == bytes(bad)
    assert events[-1] == Request(READ_PDU, 1)
    assert requests(events) == [Request(READ_PDU, 1)]


def test_rtu_short_burst_is_too_short() -> None:
    server = ServerConnection(RtuFramer(19200))
    assert feed(server, whole(b"\x01\x03\x00")) == [FrameDropped(DropCause.TOO_SHORT, b"\x01\x03\x00")]


def test_rtu_incomplete_frame_at_silence() -> None:
    server = ServerConnection(RtuFramer(19200))
    wire = rtu(1, READ)
    assert feed(server, whole(wire[:6])) == [FrameDropped(DropCause.INCOMPLETE, wire[:6])]


def test_rtu_garbage_without_silence_is_dropped_as_it_comes() -> None:
    # A stream of noise whose second byte names a function without a length
    # rule never waits for silence beyond one frame's worth of bytes.
    server = ServerConnection(RtuFramer(19200))
    noise = bytes([0x01, 0x41]) * 600
    events = []
    for start in range(0, len(noise), 50):
        events += feed(server, [(noise[start : start + 50], 1.0 + start * 1e-4)], settle=False)
    dropped = sum(len(event.data) for event in events if isinstance(event, FrameDropped))
    assert dropped >= len(noise) - 256
    assert requests(events) == []
    events += feed(server, [], settle=True)
    assert sum(len(event.data) for event in events if isinstance(event, FrameDropped)) == len(noise)


def test_rtu_silence_flushes_garbage_before_a_frame_in_order() -> None:
    server = ServerConnection(RtuFramer(19200))
    server.receive_data(b"\x07", 1.0)
    server.receive_data(rtu(1, READ), 1.5)  # after 0.5 s of silence
    assert feed(server, []) == [FrameDropped(DropCause.TOO_SHORT, b"\x07"), Request(READ_PDU, 1)]


# --------------------------------------------------------------------------
# RTU on a shared line


def test_rtu_server_skips_other_servers_traffic() -> None:
    server = ServerConnection(RtuFramer(19200), units={1})
    line = [
        rtu(2, READ),  # the master asks server 2
        rtu(2, ANSWER),  # which answers
        rtu(3, bytes.fromhex("0600010003")),  # asks server 3 to write
        rtu(3, bytes.fromhex("8602")),  # which refuses
        rtu(1, READ),  # our turn
        rtu(4, bytes.fromhex("0F0013000A02CD01")),
        rtu(4, bytes.fromhex("0F0013000A")),
        rtu(1, bytes.fromhex("0600010003")),
    ]
    assert feed(server, whole(b"".join(line))) == [Request(READ_PDU, 1), Request(WriteSingleRegister(1, 3), 1)]
    # Byte by byte the same.
    server = ServerConnection(RtuFramer(19200), units={1})
    assert feed(server, bytewise(b"".join(line))) == [Request(READ_PDU, 1), Request(WriteSingleRegister(1, 3), 1)]


@pytest.mark.parametrize(
    "ours",
    [
        rtu(1, READ),
        rtu(1, bytes.fromhex("0600010003")),
        rtu(1, bytes.fromhex("0B")),
        rtu(1, bytes.fromhex("080000A537")),  # only silence ends these two
        rtu(1, bytes.fromhex("41010203")),
    ],
)
def test_rtu_request_after_an_unanswered_foreign_request_is_served(ours: bytes) -> None:
    server = ServerConnection(RtuFramer(19200), units={1})
    # Server 2 is off: its response never comes, and our request follows.
    [event] = feed(server, [(rtu(2, READ), 1.0), (ours, 1.5)])
    assert isinstance(event, Request)
    assert event.unit == 1
    assert event.pdu.encode() == ours[1:-2]


def test_rtu_foreign_response_without_its_request() -> None:
    # The server missed the request (it started mid-traffic): the response,
    # which cannot be read as a request, is still recognised and skipped.
    server = ServerConnection(RtuFramer(19200), units={1})
    assert feed(server, whole(rtu(2, bytes.fromhex("030200FF")) + rtu(1, READ))) == [Request(READ_PDU, 1)]


def test_rtu_broadcast_is_ours_when_units_say_so() -> None:
    server = ServerConnection(RtuFramer(19200), units={0, 1})
    write = bytes.fromhex("0600010003")
    assert feed(server, whole(rtu(0, write) + rtu(1, READ))) == [
        Request(WriteSingleRegister(1, 3), 0),
        Request(READ_PDU, 1),
    ]


def test_rtu_client_skips_requests_on_the_line() -> None:
    client = ClientConnection(RtuFramer(19200))
    request = client.request(READ_PDU, 1)
    client.send(request)
    # Another master's request, our own request echoed, then the answer.
    events = feed(client, whole(rtu(5, READ) + rtu(1, READ) + rtu(1, ANSWER)))
    assert events == [Response(ANSWER_PDU, 1)]
    # A request that reads as a response just as well (function 06) is one.
    write = rtu(5, bytes.fromhex("0600010003"))
    assert causes(feed(client, whole(write))) == [DropCause.UNEXPECTED]


def test_rtu_echo_suppression() -> None:
    server = ServerConnection(RtuFramer(19200), echo=True)
    [request] = feed(server, whole(rtu(1, READ)))
    assert isinstance(request, Request)
    reply = server.send(request.reply(ANSWER_PDU))
    # The adapter hears its own answer, then the next request.
    assert feed(server, [(reply[:4], 2.0), (reply[4:] + rtu(1, READ), 2.001)]) == [Request(READ_PDU, 1)]
    # A lost echo does not eat the next request.
    server.send(request.reply(ANSWER_PDU))
    assert feed(server, whole(rtu(1, READ), 3.0)) == [Request(READ_PDU, 1)]


def test_rtu_client_echo_suppression() -> None:
    client = ClientConnection(RtuFramer(19200), echo=True)
    request = client.request(WriteSingleRegister(1, 3), 1)
    wire = client.send(request)
    # On a two-wire line the echo of an FC06 request reads as its response.
    assert feed(client, whole(wire)) == []
    assert client.pending == (request,)
    answer = rtu(1, bytes.fromhex("0600010003"))
    assert feed(client, whole(answer, 2.0)) == [Response(WriteSingleRegisterResponse(1, 3), 1)]


def test_clients_report_drops() -> None:
    client = ClientConnection(RtuFramer(19200))
    client.send(client.request(READ_PDU, 1))
    bad = bytearray(rtu(1, ANSWER))
    bad[-2] ^= 0x55
    events = feed(client, whole(bytes(bad)))
    assert events
    assert all(isinstance(event, FrameDropped) for event in events)
    tcp = ClientConnection(MbapFramer())
    tcp.send(tcp.request(READ_PDU, 1))
    other = mbap(1, 1, ANSWER, protocol_id=7)
    assert causes(feed(tcp, whole(other + mbap(1, 1, ANSWER)))) == [DropCause.PROTOCOL_ID]


def test_rtu_datagrams() -> None:
    framer = RtuFramer(19200, datagram=True, strict_timing=True)
    assert framer.datagram
    assert not framer.strict_timing  # timing means nothing for datagrams
    server = ServerConnection(framer)
    events = feed(server, [(rtu(1, READ) + rtu(2, READ) + b"\x01\x03", 1.0), (rtu(3, READ), 1.0)], settle=False)
    assert events == [
        Request(READ_PDU, 1),
        Request(READ_PDU, 2),
        FrameDropped(DropCause.TOO_SHORT, b"\x01\x03"),
        Request(READ_PDU, 3),
    ]
    assert server.next_deadline() is None
    echo = rtu(1, bytes.fromhex("080000A537"))
    assert feed(server, whole(echo), settle=False) == [Request(Diagnostics(0, bytes.fromhex("A537")), 1)]


def test_rtu_encode_checks_its_input() -> None:
    framer = RtuFramer()
    assert framer.encode(1, 0, bytes.fromhex("030000000A")) == bytes.fromhex("01030000000AC5CD")
    with pytest.raises(LocalProtocolError, match=r"1\.\.253"):
        framer.encode(1, 0, bytes(254))
    with pytest.raises(LocalProtocolError, match="unit"):
        framer.encode(256, 0, READ)


def test_empty_reads_change_nothing() -> None:
    for framer in (RtuFramer(19200, strict_timing=True), AsciiFramer()):
        server = ServerConnection(framer)
        server.receive_data(b"", 100.0)
        assert server.next_deadline() is None
        assert feed(server, [], settle=False) == []


# --------------------------------------------------------------------------
# ASCII


def test_ascii_specification_example() -> None:
    server = ServerConnection(AsciiFramer())
    assert feed(server, whole(b":1103006B00037E\r\n")) == [Request(READ_PDU, 0x11)]
    assert ascii_frame(0x11, READ) == b":1103006B00037E\r\n"


def test_ascii_lowercase_hex_is_accepted() -> None:
    server = ServerConnection(AsciiFramer())
    assert feed(server, whole(b":1103006b00037e\r\n")) == [Request(READ_PDU, 0x11)]


def test_ascii_blank_noise_between_frames_is_no_error() -> None:
    server = ServerConnection(AsciiFramer())
    frame = ascii_frame(1, READ)
    assert feed(server, whole(b"\r\n \n" + frame + b"\r\n" + frame)) == [Request(READ_PDU, 1)] * 2


@pytest.mark.parametrize(
    ("wire", "cause"),
    [
        (b"hello" + ascii_frame(1, READ), DropCause.GARBAGE),
        (b":1103" + ascii_frame(1, READ), DropCause.INCOMPLETE),
        (b":11030G6B00037E\r\n" + ascii_frame(1, READ), DropCause.ENCODING),
        (b":1103006B00037\r\n" + ascii_frame(1, READ), DropCause.ENCODING),
        (b":1103006B00037F\r\n" + ascii_frame(1, READ), DropCause.CHECKSUM),
        (b":11EF\r\n" + ascii_frame(1, READ), DropCause.TOO_SHORT),
        (b":\r\n" + ascii_frame(1, READ), DropCause.TOO_SHORT),
    ],
)
def test_ascii_bad_frames_are_dropped(wire: bytes, cause: DropCause) -> None:
    server = ServerConnection(AsciiFramer())
    events = feed(server, whole(wire))
    assert causes(events) == [cause]
    assert requests(events) == [Request(READ_PDU, 1)]


def test_ascii_overrun() -> None:
    server = ServerConnection(AsciiFramer())
    endless = b":" + b"00" * 300
    events = feed(server, whole(endless), settle=False)
    assert causes(events) == [DropCause.OVERRUN]
    too_long = ascii_frame(1, bytes([0x41]) + bytes(253))  # 515 characters with CR LF
    assert len(too_long) > 513
    assert causes(feed(server, whole(too_long + ascii_frame(1, READ)))) == [DropCause.OVERRUN]
    longest = ascii_frame(1, bytes([0x41]) + bytes(252))
    assert len(longest) == 513
    [event] = feed(server, whole(longest))
    assert event == Request(RawPdu(0x41, bytes(252)), 1)


def test_ascii_inter_character_timeout() -> None:
    framer = AsciiFramer(timeout=0.5)
    assert framer.timeout == 0.5
    server = ServerConnection(framer)
    frame = ascii_frame(1, READ)
    # Silence inside a frame: dropped when the next byte comes late...
    events = feed(server, [(frame[:5], 1.0), (frame[5:], 1.6)], settle=False)
    assert causes(events) == [DropCause.INCOMPLETE, DropCause.GARBAGE]
    # ... or when the deadline passes.
    server.receive_data(frame[:5], 2.0)
    assert server.next_deadline() == 2.5
    server.handle_timeout(2.4)
    assert feed(server, [], settle=False) == []
    server.handle_timeout(2.5)
    assert feed(server, [], settle=False) == [FrameDropped(DropCause.INCOMPLETE, frame[:5], "inter-character timeout")]
    # Slow but steady characters are fine.
    assert feed(server, [(frame[index : index + 1], 3.0 + 0.4 * index) for index in range(len(frame))]) == [
        Request(READ_PDU, 1)
    ]


def test_ascii_timeout_keeps_the_frames_before_the_partial_one() -> None:
    # Bytes read, but not yet framed, when silence comes: complete frames
    # among them are served, only the unfinished one is dropped.
    frame = ascii_frame(1, READ)
    server = ServerConnection(AsciiFramer(timeout=0.5))
    server.receive_data(frame + frame[:4], 1.0)
    server.receive_data(frame, 2.0)
    assert feed(server, [], settle=False) == [
        Request(READ_PDU, 1),
        FrameDropped(DropCause.INCOMPLETE, frame[:4], "inter-character timeout"),
        Request(READ_PDU, 1),
    ]
    server.receive_data(b"junk" + frame + frame[:4], 3.0)
    server.handle_timeout(3.5)
    assert feed(server, [], settle=False) == [
        FrameDropped(DropCause.GARBAGE, b"junk", "bytes before ':'"),
        Request(READ_PDU, 1),
        FrameDropped(DropCause.INCOMPLETE, frame[:4], "inter-character timeout"),
    ]


def test_ascii_blank_leftover_times_out_silently() -> None:
    server = ServerConnection(AsciiFramer())
    assert feed(server, whole(b"\r")) == []
    # Read before the adapter asked for events: the blank is still no error.
    server.receive_data(b"\r\n", 1.0)
    server.receive_data(ascii_frame(1, READ), 5.0)
    assert feed(server, []) == [Request(READ_PDU, 1)]


@pytest.mark.parametrize(("kwargs", "message"), [({"timeout": 0}, "timeout"), ({"input_delimiter": 256}, "delimiter")])
def test_ascii_framer_validation(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        AsciiFramer(**kwargs)  # type: ignore[arg-type]


def test_ascii_encode() -> None:
    framer = AsciiFramer()
    assert framer.is_serial
    assert repr(framer) == "AsciiFramer(timeout=1.0, input_delimiter=0x0a)"
    assert framer.encode(0x11, 0, READ) == b":1103006B00037E\r\n"
    with pytest.raises(LocalProtocolError, match=r"1\.\.253"):
        framer.encode(1, 0, b"")
    with pytest.raises(LocalProtocolError, match="unit"):
        framer.encode(-1, 0, READ)


def test_ascii_delimiter_given_to_the_framer() -> None:
    server = ServerConnection(AsciiFramer(input_delimiter=ord("!")))
    frame = ascii_frame(1, READ, end=b"\r!")
    assert feed(server, whole(frame)) == [Request(READ_PDU, 1)]


def test_ascii_delimiter_changes_with_the_response_to_08_03() -> None:
    server = ServerConnection(AsciiFramer())
    change = Diagnostics(DiagnosticSubFunction.CHANGE_ASCII_INPUT_DELIMITER, b"!\x00")
    [request] = feed(server, whole(ascii_frame(1, change.encode())))
    assert request == Request(change, 1)
    reply = server.send(
        request.reply(DiagnosticsResponse(DiagnosticSubFunction.CHANGE_ASCII_INPUT_DELIMITER, b"!\x00"))
    )
    assert reply.endswith(b"\r\n")  # the output delimiter stays CR LF
    assert isinstance(server.framer, AsciiFramer)
    assert server.framer.input_delimiter == ord("!")
    assert feed(server, whole(ascii_frame(1, READ, end=b"\r!"))) == [Request(READ_PDU, 1)]
    # Other diagnostic answers change nothing.
    server.send(request.reply(DiagnosticsResponse(DiagnosticSubFunction.RETURN_QUERY_DATA, b"?\x00")))
    server.send(request.exception(1))
    assert server.framer.input_delimiter == ord("!")


def test_ascii_delimiter_follows_the_line_diagnostics() -> None:
    # The dispatcher changes the delimiter in the diagnostics (also for a
    # broadcast, which gets no response); the connection follows.
    diagnostics = ServerDiagnostics()
    server = ServerConnection(AsciiFramer(), diagnostics=diagnostics)
    assert feed(server, whole(ascii_frame(0, READ))) == [Request(READ_PDU, 0)]
    diagnostics.change_ascii_delimiter(ord("#"))
    assert feed(server, whole(ascii_frame(1, READ, end=b"\r#"))) == [Request(READ_PDU, 1)]
    assert feed(server, whole(ascii_frame(1, READ))) == [
        FrameDropped(DropCause.INCOMPLETE, ascii_frame(1, READ), "inter-character timeout")
    ]
    # A response to 08/03 sent by other means updates the diagnostics too.
    request = Request(Diagnostics(DiagnosticSubFunction.CHANGE_ASCII_INPUT_DELIMITER, b"$\x00"), 1)
    server.send(request.reply(DiagnosticsResponse(DiagnosticSubFunction.CHANGE_ASCII_INPUT_DELIMITER, b"$\x00")))
    assert diagnostics.ascii_delimiter == ord("$")
    assert feed(server, whole(ascii_frame(1, READ, end=b"\r$"))) == [Request(READ_PDU, 1)]


def test_ascii_framer_delimiter_seeds_the_diagnostics() -> None:
    diagnostics = ServerDiagnostics()
    ServerConnection(AsciiFramer(input_delimiter=ord("%")), diagnostics=diagnostics)
    assert diagnostics.ascii_delimiter == ord("%")
    untouched = ServerDiagnostics()
    ServerConnection(AsciiFramer(), diagnostics=untouched)
    assert untouched.ascii_delimiter == 0x0A


def test_ascii_client_and_exception_response() -> None:
    client = ClientConnection(AsciiFramer())
    request = client.request(READ_PDU, 1)
    assert client.send(request) == ascii_frame(1, READ)
    assert feed(client, whole(ascii_frame(1, bytes.fromhex("8302")))) == [Response(ExceptionResponse(3, 2), 1)]
