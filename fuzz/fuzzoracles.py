"""Invariants shared by the fuzz targets, written against modbus_core's public API.

Import this module only after modbus_core has been imported under
``fuzzsupport.instrumented()`` (the targets do), so that atheris sees the
code under test.

What is checked, besides "no unexpected exception":

* decoded PDUs re-encode to the bytes they came from (or their canonical
  form), and pass their own constructor's validation: a decoder must not
  build what the public constructor refuses;
* the RTU length rules agree with the decoders and never change their mind
  when more bytes arrive;
* framers account for every byte they were given, in order: each byte ends
  up in exactly one frame or :class:`FrameDropped`, and frames are exactly
  the framed bytes (the "ledger" below);
* a valid frame that arrives on an idle link comes out as that frame;
* a server's answer re-decodes, through a real :class:`ClientConnection`,
  to the response that was sent.
"""

from __future__ import annotations

import bisect
import dataclasses
import struct
from collections.abc import Callable, Container, Coroutine, Iterable, Sequence
from typing import Any, ClassVar

from modbus_core import (
    NEED_DATA,
    AsciiFramer,
    BitTable,
    ClientConnection,
    CustomFunction,
    Device,
    DeviceIdentity,
    Diagnostics,
    DiagnosticSubFunction,
    Dispatcher,
    ExceptionCode,
    ExceptionResponse,
    FileRecord,
    FileRecordReference,
    FrameDropped,
    Framer,
    FunctionCode,
    FunctionTable,
    LocalProtocolError,
    MalformedRequest,
    MbapFramer,
    ModbusExceptionError,
    RawPdu,
    ReadCoilsResponse,
    ReadDiscreteInputsResponse,
    RegisterTable,
    RemoteProtocolError,
    Request,
    RequestPdu,
    Response,
    ResponsePdu,
    RtuFramer,
    ServerConnection,
    ServerContext,
    TableKind,
    crc16,
    lrc,
)

DEFAULT_FUNCTIONS = FunctionTable()
# The markers FunctionTable's length rules return besides a length, read
# from the table itself rather than from private constants.
BY_SILENCE = DEFAULT_FUNCTIONS.request_length(b"\x41", 0, 1)  # an unknown code ends at silence
INVALID = DEFAULT_FUNCTIONS.request_length(b"\x80", 0, 1)  # no request starts with 0x80
MEI_READ_DEVICE_IDENTIFICATION = 0x0E
MAX_PDU = 253
BLANKS = b" \t\n\r\x0b\x0c"  # what bytes.strip() removes: AsciiFramer ignores such line noise


class InvariantError(AssertionError):
    """A property modbus_core promises does not hold for this input."""


def expect(condition: object, message: str, *arguments: object) -> None:
    """Raise :class:`InvariantError` unless *condition*.

    *message* is a ``str.format`` template for *arguments*, formatted only on
    failure: the checks run millions of times, the reprs almost never.
    """
    if not condition:
        raise InvariantError(message.format(*arguments))


# --------------------------------------------------------------------------
# custom functions: exercised by the targets that take a custom table


@dataclasses.dataclass(frozen=True, slots=True)
class FixedRequest(RequestPdu):
    """Function 65: four data bytes; the RTU length is a fixed 5."""

    function_code: ClassVar[int] = 0x41
    data: bytes

    def __post_init__(self) -> None:
        if len(self.data) != 4:
            raise LocalProtocolError("function 65 carries 4 bytes")

    def encode(self) -> bytes:
        return b"\x41" + self.data

    @classmethod
    def decode(cls, pdu: bytes) -> FixedRequest:
        if len(pdu) != 5:
            raise ValueError(f"function 65 is 5 bytes, got {len(pdu)}")
        return cls(pdu[1:])

    def execute(self, device: object) -> ResponsePdu:
        return FixedResponse(self.data[::-1])


@dataclasses.dataclass(frozen=True, slots=True)
class FixedResponse(ResponsePdu):
    function_code: ClassVar[int] = 0x41
    data: bytes

    def __post_init__(self) -> None:
        if len(self.data) != 4:
            raise LocalProtocolError("function 65 carries 4 bytes")

    def encode(self) -> bytes:
        return b"\x41" + self.data

    @classmethod
    def decode(cls, pdu: bytes) -> FixedResponse:
        if len(pdu) != 5:
            raise ValueError(f"function 65 is 5 bytes, got {len(pdu)}")
        return cls(pdu[1:])


def _counted_length(pdu: bytes) -> int | None:
    return 2 + pdu[1] if len(pdu) >= 2 else None


@dataclasses.dataclass(frozen=True, slots=True)
class CountedRequest(RequestPdu):
    """Function 100: a byte count and that many bytes; the RTU length comes from a function."""

    function_code: ClassVar[int] = 0x64
    data: bytes

    def __post_init__(self) -> None:
        if len(self.data) > MAX_PDU - 2:
            raise LocalProtocolError("too long")

    def encode(self) -> bytes:
        return bytes((0x64, len(self.data))) + self.data

    @classmethod
    def decode(cls, pdu: bytes) -> CountedRequest:
        if len(pdu) < 2 or len(pdu) != 2 + pdu[1]:
            raise ValueError("byte count does not match")
        return cls(pdu[2:])

    def execute(self, device: object) -> ResponsePdu:
        if self.data[:1] == b"\x06":
            raise ModbusExceptionError(ExceptionCode.SERVER_DEVICE_BUSY)
        if self.data[:1] == b"\x04":
            raise RuntimeError("a custom handler that fails: the dispatcher must answer 04")
        return CountedResponse(self.data)


@dataclasses.dataclass(frozen=True, slots=True)
class CountedResponse(ResponsePdu):
    function_code: ClassVar[int] = 0x64
    data: bytes

    def __post_init__(self) -> None:
        if len(self.data) > MAX_PDU - 2:
            raise LocalProtocolError("too long")

    def encode(self) -> bytes:
        return bytes((0x64, len(self.data))) + self.data

    @classmethod
    def decode(cls, pdu: bytes) -> CountedResponse:
        if len(pdu) < 2 or len(pdu) != 2 + pdu[1]:
            raise ValueError("byte count does not match")
        return cls(pdu[2:])


@dataclasses.dataclass(frozen=True, slots=True)
class SilentRequest(RequestPdu):
    """Function 101: any bytes; an RTU frame of it ends only at silence.  No ``execute``: 01."""

    function_code: ClassVar[int] = 0x65
    data: bytes = b""

    def encode(self) -> bytes:
        return b"\x65" + self.data

    @classmethod
    def decode(cls, pdu: bytes) -> SilentRequest:
        return cls(pdu[1:])


@dataclasses.dataclass(frozen=True, slots=True)
class SilentResponse(ResponsePdu):
    function_code: ClassVar[int] = 0x65
    data: bytes = b""

    def encode(self) -> bytes:
        return b"\x65" + self.data

    @classmethod
    def decode(cls, pdu: bytes) -> SilentResponse:
        return cls(pdu[1:])


CUSTOM_FUNCTIONS = FunctionTable(
    [
        CustomFunction(0x41, FixedRequest, FixedResponse, request_length=5, response_length=5),
        CustomFunction(0x64, CountedRequest, CountedResponse, _counted_length, _counted_length),
        CustomFunction(0x65, SilentRequest, SilentResponse),
    ]
)
_CUSTOM_CODES = {function.function_code for function in CUSTOM_FUNCTIONS.custom}


def function_table(custom: bool) -> FunctionTable:
    return CUSTOM_FUNCTIONS if custom else DEFAULT_FUNCTIONS


def known_codes(functions: FunctionTable) -> set[int]:
    return {int(code) for code in FunctionCode} | {function.function_code for function in functions.custom}


# --------------------------------------------------------------------------
# PDU invariants


def rebuild(value: Any) -> Any:
    """*value* rebuilt through the public constructors (which validate)."""
    if isinstance(value, tuple):
        if not value or isinstance(value[0], int | bytes):
            return value  # register values, bits: nothing to rebuild
        return tuple(rebuild(item) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {field.name: rebuild(getattr(value, field.name)) for field in dataclasses.fields(value) if field.init}
        return type(value)(**fields)
    return value


def check_constructible(pdu: object, origin: str) -> None:
    """*pdu* (built by a decoder or the dispatcher) passes its own constructor's checks."""
    try:
        rebuilt = rebuild(pdu)
    except LocalProtocolError as error:
        raise InvariantError(f"{origin} built {pdu!r}, which its constructor refuses: {error}") from error
    expect(rebuilt == pdu, "{} built {!r}; rebuilt it is {!r}", origin, pdu, rebuilt)


def canonical_request(raw: bytes) -> bytes:
    """*raw* as a decoded request re-encodes: FC15's unused bits of the last byte cleared."""
    if len(raw) >= 6 and raw[0] == 0x0F:
        count = raw[3] << 8 | raw[4]
        data = raw[6:]
        bits = int.from_bytes(data, "little") & ((1 << count) - 1)
        return raw[:6] + bits.to_bytes(len(data), "little")
    return raw


def canonical_response(raw: bytes) -> bytes:
    """*raw* as a decoded response re-encodes: FC17's run indicator is 0x00 or 0xFF."""
    if len(raw) >= 4 and raw[0] == 0x11 and raw[3] not in (0x00, 0xFF):
        return raw[:3] + b"\xff" + raw[4:]
    return raw


def check_length_rule(rule: Callable[[bytes, int, int], int | None], raw: bytes, what: str) -> None:
    """The RTU length rule frames *raw* as *raw*, and no prefix makes it say otherwise."""
    framed = b"\x01" + raw  # the framer measures from offset 1, after the unit id
    full = rule(framed, 1, len(framed))
    expect(
        full in (len(raw), BY_SILENCE),
        "{} {} decodes, but the RTU length rule says {}, not {}",
        what,
        raw.hex(),
        full,
        len(raw),
    )
    for end in range(2, len(framed)):
        partial = rule(framed, 1, end)
        expect(
            partial is None or partial == full,
            "{} {}: the length rule says {} after {} bytes, {} at the end",
            what,
            raw.hex(),
            partial,
            end - 1,
            full,
        )


def _request_error_code_allowed(functions: FunctionTable, raw: bytes, code: int) -> bool:
    if code == ExceptionCode.ILLEGAL_DATA_VALUE:
        return True
    if code != ExceptionCode.ILLEGAL_FUNCTION:
        return False
    if not raw or raw[0] & 0x80 or raw[0] == 0 or raw[0] not in known_codes(functions):
        return True  # not a request code, or one the table does not know (too long for a RawPdu)
    # 01 for a known function only when its sub-function (08) or MEI type (43) is unsupported.
    if raw[0] == 0x2B:
        return len(raw) >= 2 and raw[1] != MEI_READ_DEVICE_IDENTIFICATION
    sub_functions = {int(code) for code in DiagnosticSubFunction}
    return raw[0] == 0x08 and len(raw) >= 3 and (raw[1] << 8 | raw[2]) not in sub_functions


def decode_request(functions: FunctionTable, raw: bytes) -> RequestPdu:
    """``functions.decode_request(raw)``, which is documented never to raise."""
    try:
        return functions.decode_request(raw)
    except Exception as error:
        raise InvariantError(f"decode_request({raw.hex()}) raised {error!r}") from error


def check_decoded_request(functions: FunctionTable, raw: bytes, pdu: object) -> None:
    """What ``functions.decode_request(raw)`` returned is right for *raw*."""
    expect(isinstance(pdu, RequestPdu), "decode_request({}) returned {!r}", raw.hex(), pdu)
    assert isinstance(pdu, RequestPdu)
    if isinstance(pdu, MalformedRequest):
        expect(
            pdu.function_code == (raw[0] if raw else 0) and pdu.data == raw[1:],
            "{!r} does not carry the bytes of {}",
            pdu,
            raw.hex(),
        )
        expect(
            _request_error_code_allowed(functions, raw, pdu.exception_code),
            "{} decoded to {!r}: wrong exception code",
            raw.hex(),
            pdu,
        )
        if raw:
            expect(pdu.encode() == raw, "{!r} encodes to {}, not {}", pdu, pdu.encode().hex(), raw.hex())
        return
    expect(raw, "an empty PDU decoded to a request")
    encoded = pdu.encode()
    if type(pdu) is RawPdu:
        unknown = raw[0] not in known_codes(functions)
        other_mei = raw[0] == 0x2B and raw[1:2] != bytes((MEI_READ_DEVICE_IDENTIFICATION,))
        expect(unknown or other_mei, "{} of a known function decoded to {!r}", raw.hex(), pdu)
        expect(encoded == raw, "{!r} encodes to {}, not {}", pdu, encoded.hex(), raw.hex())
        check_constructible(pdu, "decode_request")
        return
    expect(pdu.function_code == raw[0], "{} decoded to {!r}", raw.hex(), pdu)
    expect(
        encoded == canonical_request(raw),
        "request {} decoded to {!r}, which encodes to {}",
        raw.hex(),
        pdu,
        encoded.hex(),
    )
    check_constructible(pdu, f"decode_request({raw.hex()})")
    check_length_rule(functions.request_length, raw, "request")


def check_decoded_response(functions: FunctionTable, raw: bytes, pdu: object) -> None:
    """What ``functions.decode_response(raw)`` returned is right for *raw*."""
    expect(isinstance(pdu, ResponsePdu), "decode_response({}) returned {!r}", raw.hex(), pdu)
    assert isinstance(pdu, ResponsePdu)
    encoded = pdu.encode()
    if isinstance(pdu, ExceptionResponse):
        expect(
            len(raw) == 2 and raw[0] & 0x80 and pdu == ExceptionResponse(raw[0] & 0x7F, raw[1]),
            "{} decoded to {!r}",
            raw.hex(),
            pdu,
        )
    elif type(pdu) is RawPdu:
        unknown = raw[0] not in known_codes(functions)
        other_mei = raw[0] == 0x2B and raw[1:2] != bytes((MEI_READ_DEVICE_IDENTIFICATION,))
        expect(unknown or other_mei, "{} of a known function decoded to {!r}", raw.hex(), pdu)
    else:
        expect(pdu.function_code == raw[0], "{} decoded to {!r}", raw.hex(), pdu)
        check_length_rule(functions.response_length, raw, "response")
    expect(
        encoded == canonical_response(raw),
        "response {} decoded to {!r}, which encodes to {}",
        raw.hex(),
        pdu,
        encoded.hex(),
    )
    check_constructible(pdu, f"decode_response({raw.hex()})")


def same_response(sent: ResponsePdu, received: ResponsePdu) -> bool:
    """Whether *received* is *sent* after a trip through bytes (bit reads come back padded to 8)."""
    if isinstance(sent, ReadCoilsResponse | ReadDiscreteInputsResponse) and type(received) is type(sent):
        values: tuple[bool, ...] = received.values
        count = len(sent.values)
        return values[:count] == sent.values and not any(values[count:]) and len(values) - count < 8
    return sent == received


def check_response_roundtrip(functions: FunctionTable, pdu: ResponsePdu, origin: str) -> None:
    """A response built by *origin* encodes, and decodes back to itself."""
    check_constructible(pdu, origin)
    encoded = pdu.encode()
    try:
        decoded = functions.decode_response(encoded)
    except RemoteProtocolError as error:
        raise InvariantError(f"{origin} built {pdu!r}; its encoding {encoded.hex()} does not decode: {error}") from None
    expect(same_response(pdu, decoded), "{} built {!r}; it decodes back as {!r}", origin, pdu, decoded)


# --------------------------------------------------------------------------
# framers that keep a ledger of what went in and what came out


class Ledger:
    """Every byte a framer was given, and how far its output has accounted for them."""

    __slots__ = ("_arrivals", "claims", "cursor", "fed")

    def __init__(self) -> None:
        self.fed = bytearray()
        self.cursor = 0
        self._arrivals: list[tuple[int, float]] = []  # (offset of a chunk, its arrival time)
        # Offsets where a frame that arrived on an idle link begins, and its bytes.
        self.claims: dict[int, bytes] = {}

    @property
    def idle(self) -> bool:
        return self.cursor == len(self.fed)

    def feed(self, data: bytes, now: float) -> None:
        if data:
            self._arrivals.append((len(self.fed), now))
            self.fed += data

    def arrival(self, offset: int) -> float:
        """When the byte at *offset* arrived."""
        return self._arrivals[self.chunk(offset)][1]

    def chunk(self, offset: int) -> int:
        """Which ``receive_data`` call (counting from 0) brought the byte at *offset*."""
        return bisect.bisect_right(self._arrivals, offset, key=lambda arrival: arrival[0]) - 1

    def at_cursor(self, size: int) -> bytes:
        return bytes(self.fed[self.cursor : self.cursor + size])

    def account(self, segment: bytes, what: str, *, is_frame: bool) -> None:
        """The framer's next output covers *segment*, which must come next in the input."""
        if not segment:
            return  # an empty datagram, dropped: it takes no place in the input
        start = self.cursor
        expect(
            self.fed[start : start + len(segment)] == segment,
            "{} {} is not the next input at offset {}: {}",
            what,
            segment.hex(),
            start,
            self.at_cursor(len(segment)).hex(),
        )
        claim = self.claims.pop(start, None)
        if claim is not None:
            expect(
                is_frame and segment == claim,
                "a valid frame {} that arrived on an idle link came out as {} {}",
                claim.hex(),
                what,
                segment.hex(),
            )
        self.cursor += len(segment)
        for offset in [offset for offset in self.claims if offset < self.cursor]:
            raise InvariantError(f"the frame at offset {offset}, {self.claims[offset].hex()}, was swallowed by {what}")

    def account_after_blanks(self, segment: bytes, what: str) -> None:
        """:meth:`account` *segment*, which may come after blanks that made no output."""
        offset = self.cursor
        while (
            self.fed[offset : offset + len(segment)] != segment
            and offset < len(self.fed)
            and self.fed[offset] in BLANKS
            and offset not in self.claims
        ):
            offset += 1
        if self.fed[offset : offset + len(segment)] == segment:
            self.cursor = offset
        self.account(segment, what, is_frame=False)

    def skip_blanks(self) -> None:
        while self.cursor < len(self.fed) and self.fed[self.cursor] in BLANKS and self.cursor not in self.claims:
            self.cursor += 1


FrameTuple = tuple[int, int, bytes, int]


class TappedRtuFramer(RtuFramer):
    __slots__ = ("frames", "functions", "ledger")

    def __init__(self, baudrate: int, *, strict_timing: bool, datagram: bool) -> None:
        super().__init__(baudrate, strict_timing=strict_timing, datagram=datagram)
        self.ledger = Ledger()
        self.frames: list[FrameTuple] = []
        self.functions = DEFAULT_FUNCTIONS

    @property
    def char_time(self) -> float:
        return 11.0 / self.baudrate

    def bind(self, functions: FunctionTable) -> None:
        super().bind(functions)
        self.functions = functions

    def receive_data(self, data: bytes | bytearray | memoryview, now: float) -> None:
        self.ledger.feed(bytes(data), now)
        super().receive_data(data, now)

    def next_frame(self) -> FrameTuple | FrameDropped | None:
        item = super().next_frame()
        if isinstance(item, FrameDropped):
            expect(item.data, "RTU dropped nothing: {!r}", item)
            self.ledger.account(item.data, f"drop {item.cause.name}", is_frame=False)
        elif item is not None:
            unit, transaction_id, pdu, _ = item
            expect(transaction_id == 0, "an RTU frame has a transaction id")
            expect(pdu, "an RTU frame without a PDU")
            raw = bytes((unit,)) + pdu
            self.ledger.account(raw + crc16(raw).to_bytes(2, "little"), "frame", is_frame=True)
            lengths = (
                self.functions.request_length(pdu, 0, len(pdu)),
                self.functions.response_length(pdu, 0, len(pdu)),
            )
            # None: the rule needs bytes past this PDU, so silence (not length) ended the frame.
            expect(
                len(pdu) in lengths or BY_SILENCE in lengths or None in lengths,
                "RTU frame {}: neither length rule gives {}: {}",
                raw.hex(),
                len(pdu),
                lengths,
            )
            self.frames.append(item)
        return item


class TappedAsciiFramer(AsciiFramer):
    __slots__ = ("delimiters", "depth", "frames", "ledger")

    def __init__(self, *, timeout: float, input_delimiter: int) -> None:
        super().__init__(timeout=timeout, input_delimiter=input_delimiter)
        self.delimiters = {input_delimiter}  # every delimiter in force so far
        self.depth = 0
        self.ledger = Ledger()
        self.frames: list[FrameTuple] = []

    def receive_data(self, data: bytes | bytearray | memoryview, now: float) -> None:
        self.ledger.feed(bytes(data), now)
        super().receive_data(data, now)

    def next_frame(self) -> FrameTuple | FrameDropped | None:
        # AsciiFramer.next_frame calls self.next_frame() after blank noise: account once, outermost.
        self.depth += 1
        try:
            item = super().next_frame()
        finally:
            self.depth -= 1
        if self.depth:
            return item
        ledger = self.ledger
        if isinstance(item, FrameDropped):
            expect(item.data, "ASCII dropped nothing: {!r}", item)
            # Blank line noise before it may have been discarded without a drop.
            ledger.account_after_blanks(item.data, f"drop {item.cause.name}")
        elif item is not None:
            unit, transaction_id, pdu, _ = item
            expect(transaction_id == 0, "an ASCII frame has a transaction id")
            raw = bytes((unit,)) + pdu
            raw += bytes((lrc(raw),))
            size = 1 + 2 * len(raw) + 2
            if ledger.at_cursor(1) != b":":
                ledger.skip_blanks()
            segment = ledger.at_cursor(size)
            # A frame parsed at a timeout may come out after 08/03 changed the delimiter.
            self.delimiters.add(self.input_delimiter)
            expect(
                segment[:1] == b":"
                and segment[-2] == 0x0D
                and segment[-1] in self.delimiters
                and _hex_or_none(segment[1:-2]) == raw,
                "ASCII frame {} is not the next input {!r}",
                raw.hex(),
                segment,
            )
            ledger.account(segment, "frame", is_frame=True)
            self.frames.append(item)
        return item


def _hex_or_none(digits: bytes) -> bytes | None:
    try:
        return bytes.fromhex(digits.decode("ascii"))
    except ValueError:
        return None


_MBAP = struct.Struct(">HHHB")


class TappedMbapFramer(MbapFramer):
    __slots__ = ("datagrams", "frames", "last_datagram", "ledger")

    def __init__(self, *, datagram: bool, frame_timeout: float | None) -> None:
        super().__init__(datagram=datagram, frame_timeout=frame_timeout)
        self.datagrams = datagram
        self.ledger = Ledger()
        self.frames: list[FrameTuple] = []
        self.last_datagram = -1  # the datagram the last ADU came from

    def receive_data(self, data: bytes | bytearray | memoryview, now: float) -> None:
        self.ledger.feed(bytes(data), now)
        super().receive_data(data, now)

    def next_frame(self) -> FrameTuple | FrameDropped | None:
        item = super().next_frame()
        if isinstance(item, FrameDropped):
            # An empty datagram is dropped as it is: empty.
            expect(item.data or self.datagrams, "MBAP dropped nothing: {!r}", item)
            data = item.data
            if not self.datagrams:
                # A stream drops nothing but whole ADUs with a protocol id other than 0.
                expect(
                    len(data) >= 7 and data[2:4] != b"\x00\x00" and len(data) == 6 + (data[4] << 8 | data[5]),
                    "an MBAP stream dropped {}, not one whole ADU of another protocol",
                    data.hex(),
                )
            self.ledger.account(data, f"drop {item.cause.name}", is_frame=False)
        elif item is not None:
            unit, transaction_id, pdu, _ = item
            expect(pdu, "an MBAP frame without a PDU")
            ledger = self.ledger
            adu = mbap_adu(transaction_id, unit, pdu)
            if self.datagrams:
                first, last = ledger.chunk(ledger.cursor), ledger.chunk(ledger.cursor + len(adu) - 1)
                expect(first == last, "an ADU was put together from datagrams {} to {}", first, last)
                expect(first != self.last_datagram, "one datagram gave several ADUs")
                self.last_datagram = first
            ledger.account(adu, "frame", is_frame=True)
            self.frames.append(item)
        return item


# --------------------------------------------------------------------------
# wire formats, written independently of the framers under test


def rtu_frame(unit: int, pdu: bytes) -> bytes:
    raw = bytes((unit,)) + pdu
    return raw + crc16(raw).to_bytes(2, "little")


def ascii_frame(unit: int, pdu: bytes, delimiter: int = 0x0A) -> bytes:
    raw = bytes((unit,)) + pdu
    return b":" + (raw + bytes((lrc(raw),))).hex().upper().encode() + bytes((0x0D, delimiter))


def mbap_adu(transaction_id: int, unit: int, pdu: bytes, protocol_id: int = 0) -> bytes:
    return _MBAP.pack(transaction_id, protocol_id, len(pdu) + 1, unit) + pdu


def crc_prefix_ambiguous(frame: bytes) -> bool:
    """Whether a proper prefix (4+ bytes) of *frame* also has a valid CRC, so silence-delimited
    framing may legitimately cut it short."""
    return any(crc16(frame[:end]) == 0 for end in range(4, len(frame)))


MAX_RTU_FRAME = 256


TOLERANT_GAP = 0.020  # RtuFramer: without strict timing, only this much silence (or t3.5) ends a frame


def rtu_frame_gap(framer: RtuFramer, strict: bool) -> float:
    """Silence that surely ends a frame on *framer* (a little more than it needs)."""
    return 1.01 * (framer.t1_5 if strict else max(framer.t3_5, TOLERANT_GAP))


def rtu_silence_ended(functions: FunctionTable, frame: bytes) -> bool:
    """Whether no length rule gives *frame*'s length: only silence ends it, and bytes
    that follow it without silence belong to it."""
    pdu = frame[1:-2]
    return len(pdu) not in (functions.request_length(pdu, 0, len(pdu)), functions.response_length(pdu, 0, len(pdu)))


def rtu_frames_whole(functions: FunctionTable, frame: bytes) -> bool:
    """Whether RTU framing must deliver *frame* as it is when it arrives on an idle line."""
    pdu = frame[1:-2]
    if not pdu or len(frame) > MAX_RTU_FRAME or crc_prefix_ambiguous(frame):
        return False
    lengths = (functions.request_length(pdu, 0, len(pdu)), functions.response_length(pdu, 0, len(pdu)))
    return len(pdu) in lengths or BY_SILENCE in lengths


# --------------------------------------------------------------------------
# devices for the dispatcher

IDENTITY = DeviceIdentity(
    "modbuskit fuzz",
    "FZ-1",
    "1.0",
    vendor_url="https://example.invalid/",
    product_name="fuzz device",
    model_name="M" * 120,
    user_application_name="fuzzing",
    extended={0x80: b"\x01" * 200, 0x81: b"", 0x90: b"ninety", 0xFF: b"last"},
    server_id=0x42,
    running=False,
)


def make_device(*, identity: DeviceIdentity | None = None, full: bool = False) -> Device:
    """A device with holes, read-only ranges, FIFOs and files.

    *full*: with a block of 2000 coils, so that the longest read succeeds
    (building it is slow under atheris' instrumentation, so only the
    dispatch target asks for it).
    """
    coils = BitTable(TableKind.COILS)
    coils.add(0, [index % 3 == 0 for index in range(40)])
    coils.add(100, [True] * (2000 if full else 100))
    coils.add(0xFFF0, [False] * 16)  # the top of the address space
    discrete_inputs = BitTable(TableKind.DISCRETE_INPUTS)
    discrete_inputs.add(0, [index % 2 == 1 for index in range(64)])
    discrete_inputs.add(1000, [True] * 16)
    holding = RegisterTable(TableKind.HOLDING_REGISTERS)
    holding.add(0, [index * 7 & 0xFFFF for index in range(130)])
    holding.add(200, [0xFFFF] * 10)
    holding.add(210, [0x1234] * 10)  # adjacent to the block before: one read may span both
    holding.add(0xFFF0, range(16))
    inputs = RegisterTable(TableKind.INPUT_REGISTERS)
    inputs.add(0, range(50))
    device = Device(
        coils=coils,
        discrete_inputs=discrete_inputs,
        holding_registers=holding,
        input_registers=inputs,
        identity=identity,
        fifos={0: [1, 2, 3], 10: [], 20: list(range(31)), 30: list(range(32)), 0xFFFF: [0xFFFF]},
        files={1: 10000, 2: [1, 2, 3, 4, 5], 0xFFFF: 16},
        exception_status=0x5A,
    )
    device.coils.set_read_only(5, 3)
    device.holding_registers.set_read_only(100, 20)
    device.holding_registers.set_read_only(205, 10)
    return device


class AsyncWrapper:
    """An AsyncDevice whose coroutines delegate to a Device (they never suspend)."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.identity = device.identity

    async def read_coils(self, address: int, count: int) -> Sequence[bool]:
        return self.device.read_coils(address, count)

    async def read_discrete_inputs(self, address: int, count: int) -> Sequence[bool]:
        return self.device.read_discrete_inputs(address, count)

    async def read_holding_registers(self, address: int, count: int) -> Sequence[int]:
        return self.device.read_holding_registers(address, count)

    async def read_input_registers(self, address: int, count: int) -> Sequence[int]:
        return self.device.read_input_registers(address, count)

    async def write_coils(self, address: int, values: Sequence[bool]) -> None:
        self.device.write_coils(address, values)

    async def write_registers(self, address: int, values: Sequence[int]) -> None:
        self.device.write_registers(address, values)

    async def mask_write_register(self, address: int, and_mask: int, or_mask: int) -> None:
        self.device.mask_write_register(address, and_mask, or_mask)

    async def read_write_registers(
        self, read_address: int, read_count: int, write_address: int, values: Sequence[int]
    ) -> Sequence[int]:
        return self.device.read_write_registers(read_address, read_count, write_address, values)

    async def read_exception_status(self) -> int:
        return self.device.read_exception_status()

    async def read_fifo_queue(self, address: int) -> Sequence[int]:
        return self.device.read_fifo_queue(address)

    async def read_file_records(self, references: Sequence[FileRecordReference]) -> Sequence[Sequence[int]]:
        return self.device.read_file_records(references)

    async def write_file_records(self, records: Sequence[FileRecord]) -> None:
        self.device.write_file_records(records)


SERIAL_UNITS = (1, 2, 17, 247)


def make_context(*, multi: bool, full: bool = False, wrap: Callable[[Device], Any] | None = None) -> ServerContext:
    """One device for every unit, or units 1, 2 (the same device as 1), 17 and 247.

    *full*: the first device has 2000 coils in a row (see :func:`make_device`).
    """

    def build(identity: DeviceIdentity | None = None, *, full: bool = False) -> Any:
        device = make_device(identity=identity, full=full)
        return wrap(device) if wrap is not None else device

    if not multi:
        return ServerContext(build(IDENTITY, full=full))
    first = build(IDENTITY, full=full)
    return ServerContext({1: first, 2: first, 17: build(), 247: build(IDENTITY)})


def resolve(result: object) -> Response | None:
    """The outcome of ``Dispatcher.dispatch``: awaited by hand when it is an awaitable."""
    if result is None or isinstance(result, Response):
        return result
    expect(hasattr(result, "__await__"), "dispatch returned {!r}", result)
    coroutine: Coroutine[Any, Any, Any] = result  # type: ignore[assignment]
    try:
        coroutine.send(None)
    except StopIteration as stop:
        value = stop.value
        expect(value is None or isinstance(value, Response), "dispatch's awaitable gave {!r}", value)
        return value  # type: ignore[no-any-return]
    coroutine.close()
    raise InvariantError("dispatch's awaitable suspended, though the device never does")


# --------------------------------------------------------------------------
# a server connection driven like an adapter drives it


Units = Container[int] | None


class ServerRig:
    """A :class:`ServerConnection` over a tapped framer, answering through a :class:`Dispatcher`.

    Every request is checked against the frame it came from, answered, and
    the answer re-decoded by a :class:`ClientConnection` over a second
    framer of the same kind (*client_framer*).
    """

    def __init__(
        self,
        framer: TappedRtuFramer | TappedAsciiFramer | TappedMbapFramer,
        *,
        functions: FunctionTable,
        units: Units,
        dispatcher: Dispatcher,
        echo: bool,
        client_framer: Framer,
        wire: Callable[[Response], bytes],
        answers_everything: bool = False,
    ) -> None:
        self.framer = framer
        self.answers_everything = answers_everything
        self.functions = functions
        self.units = units
        self.dispatcher = dispatcher
        self.echo = echo
        self.wire = wire
        self.connection = ServerConnection(
            framer, units=units, functions=functions, echo=echo, diagnostics=dispatcher.diagnostics
        )
        self.client = ClientConnection(client_framer, functions=functions)
        self.client_now = 0.0
        self.requests = 0
        self.responses = 0

    def ours(self, unit: int) -> bool:
        return self.units is None or unit in self.units

    def receive(self, data: bytes, now: float) -> None:
        self.connection.receive_data(data, now)

    def drain(self, now: float) -> None:
        """Take every event, as an adapter does after each read."""
        framer = self.framer
        while True:
            produced = len(framer.frames)
            event = self.connection.next_event()
            new_frames = framer.frames[produced:]
            if isinstance(event, Request):
                expect(new_frames, "{!r} without a frame", event)
                self._skipped(new_frames[:-1])
                self._answer(event, new_frames[-1], now)
                continue
            self._skipped(new_frames)
            if event is NEED_DATA:
                return
            expect(isinstance(event, FrameDropped), "next_event returned {!r}", event)

    def _skipped(self, frames: Iterable[FrameTuple]) -> None:
        """Frames the connection passed over without an event: only other units', or responses."""
        for unit, _, pdu, _ in frames:
            if not self.ours(unit):
                continue
            length = self.functions.request_length(pdu, 0, len(pdu))
            expect(
                length not in (len(pdu), BY_SILENCE),
                "a frame for unit {} that reads as a request, {}, was skipped",
                unit,
                pdu.hex(),
            )

    def timeout(self, now: float) -> float:
        """Call handle_timeout at next_deadline (the clock jumps there if it is later)."""
        deadline = self.connection.next_deadline()
        if deadline is None:
            return now
        now = max(now, deadline)
        self.connection.handle_timeout(now)
        after = self.connection.next_deadline()
        expect(after is None or after > now, "handle_timeout({}) left the deadline at {}", now, after)
        return now

    def _answer(self, request: Request, frame: FrameTuple, now: float) -> None:
        unit, transaction_id, raw, _ = frame
        self.requests += 1
        expect(
            request.unit == unit and request.transaction_id == transaction_id,
            "{!r} from frame {!r}",
            request,
            frame,
        )
        expect(self.ours(unit), "a request for unit {}, which this server does not serve", unit)
        decoded = self.functions.decode_request(raw)
        expect(decoded == request.pdu, "{} decodes to {!r}, the connection gave {!r}", raw.hex(), decoded, request)
        check_decoded_request(self.functions, raw, request.pdu)
        listen_only = self.dispatcher.diagnostics.listen_only
        reply = self.dispatcher.dispatch(request)
        expect(reply is None or isinstance(reply, Response), "dispatch returned {!r}", reply)
        if reply is None:
            # TCP answers every request, except in listen-only mode (which 08/04 enters) and
            # function code 0x00/0x80, to which no exception response can be encoded.
            expect(
                not self.answers_everything
                or listen_only
                or _is_force_listen_only(request.pdu)
                or not request.pdu.function_code & 0x7F,
                "{!r} got no answer, and the server was not in listen-only mode",
                request,
            )
            return
        assert isinstance(reply, Response)
        self.responses += 1
        check_reply(self.functions, request, reply)
        wire = self.connection.send(reply)
        expected_wire = self.wire(reply)
        expect(wire == expected_wire, "{!r} went out as {}, not {}", reply, wire.hex(), expected_wire.hex())
        self._client_agrees(request, reply, wire)
        if self.echo:
            fed = len(self.framer.ledger.fed)
            self.connection.receive_data(wire, now)  # the line echoes what we sent
            expect(len(self.framer.ledger.fed) == fed, "the echo of our own answer reached the framer")

    def _client_agrees(self, request: Request, reply: Response, wire: bytes) -> None:
        function_code = request.pdu.function_code
        if not 1 <= function_code <= 0x7F:
            return  # no client can send such a request
        client = self.client
        client.send(Request(request.pdu, request.unit, request.transaction_id))
        self.client_now += 1.0
        client.receive_data(wire, self.client_now)
        events = []
        while (event := client.next_event()) is not NEED_DATA:
            events.append(event)
        deadline = client.next_deadline()
        if deadline is not None:  # a frame that only silence ends (08/00)
            client.handle_timeout(deadline)
            while (event := client.next_event()) is not NEED_DATA:
                events.append(event)
        expect(events == [reply], "the server sent {!r} as {}; a client read {!r}", reply, wire.hex(), events)


def _is_force_listen_only(pdu: RequestPdu) -> bool:
    return isinstance(pdu, Diagnostics) and pdu.sub_function == DiagnosticSubFunction.FORCE_LISTEN_ONLY_MODE


def check_reply(functions: FunctionTable, request: Request, reply: Response) -> None:
    """A dispatcher's answer to *request* is well formed."""
    expect(
        reply.unit == request.unit and reply.transaction_id == request.transaction_id,
        "{!r} does not echo unit and transaction of {!r}",
        reply,
        request,
    )
    pdu = reply.pdu
    if isinstance(pdu, ExceptionResponse):
        expect(
            pdu.function_code == request.pdu.function_code & 0x7F,
            "{!r} answers {!r} with another function code",
            reply,
            request,
        )
        expect(pdu.exception_code in ExceptionCode._value2member_map_, "{!r}: unknown exception code", reply)
    else:
        expect(pdu.function_code == request.pdu.function_code, "{!r} answers {!r}", reply, request)
    check_response_roundtrip(functions, pdu, f"the dispatcher (for {request!r})")
