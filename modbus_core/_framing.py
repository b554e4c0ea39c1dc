"""Framers: bytes on a transport <-> application data units.

A framer knows where frames start and end and checks their integrity; it
knows nothing of what the PDUs mean beyond the length rules of the
:class:`FunctionTable` its connection gives it.  Three exist:

* :class:`MbapFramer` for Modbus TCP and TLS (and UDP, one datagram one ADU);
* :class:`RtuFramer` for RTU on serial lines, and RTU over TCP or UDP;
* :class:`AsciiFramer` for ASCII on serial lines.

Frames go to the connection as ``(unit, transaction_id, pdu, kind)`` tuples,
where *kind* is :data:`REQUEST`, :data:`RESPONSE` or :data:`UNKNOWN` (MBAP
and ASCII frames do not say).  Framers never read a clock: the adapter
passes the time data arrived and calls :meth:`handle_timeout` at
:meth:`next_deadline`.
"""

from __future__ import annotations

import abc
import struct
from collections import deque
from typing import TypeAlias

from ._checksum import _crc16, _tables, lrc
from ._errors import LocalProtocolError, RemoteProtocolError
from ._events import DropCause, FrameDropped
from ._functions import BY_SILENCE, DEFAULT_FUNCTIONS, INVALID, FunctionTable

__all__ = ["AsciiFramer", "Framer", "MbapFramer", "RtuFramer"]

UNKNOWN = 0
REQUEST = 1
RESPONSE = 2

_HINTED_ORDER = ((REQUEST, RESPONSE), (RESPONSE, REQUEST))  # indexed by expect_response

Frame: TypeAlias = tuple[int, int, bytes, int]
"""``(unit, transaction_id, pdu, kind)``."""

_MBAP = struct.Struct(">HHHB")
MAX_RTU_FRAME = 256
MAX_ASCII_FRAME = 513


class Framer(abc.ABC):
    """The interface a connection drives.  One framer serves one connection."""

    __slots__ = ("_functions", "expect_response")

    def __init__(self) -> None:
        self._functions: FunctionTable = DEFAULT_FUNCTIONS
        # Set by the connection: on a shared RS-485 line, whether the next
        # frame is more likely another server's response than a request.
        self.expect_response = False

    def bind(self, functions: FunctionTable) -> None:
        """Give the framer the function table of its connection (RTU needs it)."""
        self._functions = functions

    @abc.abstractmethod
    def receive_data(self, data: bytes, now: float) -> None:
        """Append bytes that arrived at time *now* (the arrival of the last byte)."""

    @abc.abstractmethod
    def next_frame(self) -> Frame | FrameDropped | None:
        """The next complete frame or drop, or None when more bytes are needed."""

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timeout` should be called, or None."""
        return None

    def handle_timeout(self, now: float) -> None:  # noqa: B027 - a default, not abstract
        """Act on silence on the line up to *now*."""

    @abc.abstractmethod
    def encode(self, unit: int, transaction_id: int, pdu: bytes) -> bytes:
        """Wrap *pdu* in this framing."""

    @property
    def is_serial(self) -> bool:
        """True for serial-line framings, where unit 0 is broadcast."""
        return False


class MbapFramer(Framer):
    """The MBAP header of Modbus TCP: transaction id, protocol id, length, unit.

    Any number of ADUs may arrive in one read and one ADU may be split over
    many reads.  ADUs with a protocol id other than 0 are dropped without
    losing the stream.  A length outside 2..254 leaves no way to find the
    next ADU: on a stream it raises :class:`RemoteProtocolError` (close the
    connection).

    *datagram*: every :meth:`receive_data` call is one UDP datagram holding
    one ADU; leftovers and bad lengths are dropped, never raised.

    *frame_timeout*: seconds a partial ADU may wait for its remaining bytes;
    past it :meth:`handle_timeout` raises :class:`RemoteProtocolError`, so
    that a peer that sends half a frame cannot hold a connection forever.
    """

    __slots__ = ("_data", "_datagram", "_frame_timeout", "_partial_since", "_position")

    def __init__(self, *, datagram: bool = False, frame_timeout: float | None = None) -> None:
        super().__init__()
        if frame_timeout is not None and frame_timeout <= 0:
            raise LocalProtocolError("frame_timeout must be positive")
        self._datagram = datagram
        self._frame_timeout = frame_timeout
        # A bytes object and a read position: the common case (one whole
        # ADU per read) then never copies into a buffer.
        self._data = b""
        self._position = 0
        self._partial_since: float | None = None

    def __repr__(self) -> str:
        return f"MbapFramer(datagram={self._datagram})"

    def receive_data(self, data: bytes, now: float) -> None:
        if self._position >= len(self._data):
            self._data = bytes(data)
            self._position = 0
            self._partial_since = now
        else:
            self._data = self._data[self._position :] + data
            self._position = 0

    def next_frame(self) -> Frame | FrameDropped | None:
        data = self._data
        position = self._position
        available = len(data) - position
        if available < 7:
            if available == 0:
                self._partial_since = None
            elif self._datagram:
                return self._drop_rest(DropCause.TOO_SHORT, "datagram shorter than an MBAP header")
            return None
        transaction_id, protocol_id, length, unit = _MBAP.unpack_from(data, position)
        if not 2 <= length <= 254:
            if self._datagram:
                return self._drop_rest(DropCause.OVERRUN, f"MBAP length {length} outside 2..254")
            raise RemoteProtocolError(f"MBAP length {length} outside 2..254: the stream cannot be resynchronised")
        end = position + 6 + length
        if end > len(data):
            if self._datagram:
                return self._drop_rest(DropCause.INCOMPLETE, f"MBAP length {length} exceeds the datagram")
            return None
        self._position = end
        if protocol_id:
            return FrameDropped(DropCause.PROTOCOL_ID, data[position:end], f"protocol id {protocol_id}")
        return unit, transaction_id, data[position + 7 : end], UNKNOWN

    def _drop_rest(self, cause: DropCause, detail: str) -> FrameDropped:
        rest = self._data[self._position :]
        self._data = b""
        self._position = 0
        return FrameDropped(cause, rest, detail)

    def next_deadline(self) -> float | None:
        if self._frame_timeout is None or self._position >= len(self._data) or self._partial_since is None:
            return None
        return self._partial_since + self._frame_timeout

    def handle_timeout(self, now: float) -> None:
        deadline = self.next_deadline()
        if deadline is not None and now >= deadline:
            raise RemoteProtocolError(f"partial MBAP frame incomplete after {self._frame_timeout} s")

    def encode(self, unit: int, transaction_id: int, pdu: bytes) -> bytes:
        return _MBAP.pack(transaction_id, 0, len(pdu) + 1, unit) + pdu


def _serial_times(baudrate: int) -> tuple[float, float, float]:
    """Character time, t1.5 and t3.5 for *baudrate* (11 bits per character)."""
    char_time = 11.0 / baudrate
    if baudrate > 19200:
        return char_time, 0.000750, 0.001750
    return char_time, 1.5 * char_time, 3.5 * char_time


TOLERANT_GAP = 0.020
"""Silence that ends a frame when timing is not strict: longer than the 16 ms
latency timer of common USB serial adapters, which deliver one frame in
pieces with gaps far above t1.5."""


class RtuFramer(Framer):
    """Modbus RTU: unit, PDU, CRC-16, frames separated by silence.

    Frames are delimited by the length their function code and byte count
    imply, for requests and for responses, and confirmed by the CRC; a
    server on a shared RS-485 line thereby stays in step with other
    servers' traffic.  Silence only resynchronises: after garbage, bytes are
    skipped one at a time until a frame checks out.  Frames whose length
    cannot be known in advance (diagnostic echo, unknown functions) end at
    the first silence.

    *strict_timing*: apply the specification's timing to the arrival times
    the adapter passes: a gap longer than t1.5 inside a frame discards it,
    and a frame that starts less than t3.5 after the previous one is
    dropped.  Only for ports that deliver bytes as they arrive; a PC with a
    USB adapter cannot see sub-millisecond gaps, so by default a frame is
    only broken by a gap of :data:`TOLERANT_GAP` (or t3.5, if longer).

    *datagram*: every :meth:`receive_data` call is a complete datagram (RTU
    over UDP); what it holds beyond its frames is dropped at once.
    """

    __slots__ = (
        "_buffer",
        "_char_time",
        "_datagram",
        "_early",
        "_end_cause",
        "_gap",
        "_last",
        "_last_frame_end",
        "_ready",
        "_run",
        "_run_cause",
        "_strict",
        "_tables",
        "baudrate",
        "t1_5",
        "t3_5",
    )

    def __init__(self, baudrate: int = 19200, *, strict_timing: bool = False, datagram: bool = False) -> None:
        super().__init__()
        if not isinstance(baudrate, int) or baudrate <= 0:
            raise LocalProtocolError(f"baudrate must be a positive integer, got {baudrate!r}")
        self.baudrate = baudrate
        self._char_time, self.t1_5, self.t3_5 = _serial_times(baudrate)
        self._strict = strict_timing
        self._gap = self.t1_5 if strict_timing else max(self.t3_5, TOLERANT_GAP)
        self._datagram = datagram
        self._buffer = bytearray()
        self._last: float | None = None  # arrival of the newest byte
        self._last_frame_end: float | None = None
        self._early = False  # the frame in the buffer began too soon (strict)
        self._ready: deque[Frame | FrameDropped] = deque()
        self._run = bytearray()  # garbage being skipped, reported as one drop
        self._run_cause = DropCause.GARBAGE
        self._end_cause = DropCause.INCOMPLETE  # why a frame cut short by silence is dropped
        self._tables = _tables()  # built now, not on the first frame

    def __repr__(self) -> str:
        return f"RtuFramer(baudrate={self.baudrate}, strict_timing={self._strict})"

    @property
    def is_serial(self) -> bool:
        return True

    def receive_data(self, data: bytes, now: float) -> None:
        if not data:
            return
        first_byte = now - (len(data) - 1) * self._char_time
        if self._buffer and self._last is not None and first_byte - self._last - self._char_time > self._gap:
            self._flush(DropCause.TIMING if self._strict else DropCause.INCOMPLETE)
        if not self._buffer and self._strict and self._last_frame_end is not None:
            self._early = first_byte - self._char_time - self._last_frame_end < self.t3_5
        self._buffer += data
        self._last = now
        if self._datagram:
            self._flush(DropCause.INCOMPLETE)

    def next_frame(self) -> Frame | FrameDropped | None:
        if self._ready:
            return self._ready.popleft()
        return self._parse(at_end=False)

    def next_deadline(self) -> float | None:
        if (self._buffer or self._run) and self._last is not None:
            return self._last + self._gap
        return None

    def handle_timeout(self, now: float) -> None:
        deadline = self.next_deadline()
        if deadline is not None and now >= deadline:
            self._flush(DropCause.INCOMPLETE)

    def encode(self, unit: int, transaction_id: int, pdu: bytes) -> bytes:
        frame = bytes((unit,)) + pdu
        return frame + _crc16(frame, *self._tables).to_bytes(2, "little")

    # ------------------------------------------------------------------

    def _flush(self, cause: DropCause) -> None:
        """Silence: the bytes in the buffer are all the current frame will get."""
        self._end_cause = cause
        while True:
            item = self._parse(at_end=True)
            if item is None:
                break
            self._ready.append(item)
        self._early = False

    def _take_run(self) -> FrameDropped | None:
        if not self._run:
            return None
        dropped = FrameDropped(self._run_cause, bytes(self._run))
        self._run.clear()
        self._run_cause = DropCause.GARBAGE
        return dropped

    def _skip(self, count: int, cause: DropCause) -> None:
        if not self._run:
            self._run_cause = cause
        self._run += self._buffer[:count]
        del self._buffer[:count]

    def _parse(self, *, at_end: bool) -> Frame | FrameDropped | None:
        buffer = self._buffer
        functions = self._functions
        byte_table, word_table = self._tables
        while True:
            size = len(buffer)
            if size < 4:
                if at_end and size:
                    self._skip(size, DropCause.TOO_SHORT)
                return self._take_run() if at_end or (self._run and not size) else None
            waiting = False
            checksum_failed = False
            for kind in _HINTED_ORDER[self.expect_response]:
                if kind == REQUEST:
                    length = functions.request_length(buffer, 1, size)
                else:
                    length = functions.response_length(buffer, 1, size)
                if length is None:
                    waiting = True
                    continue
                if length == INVALID:
                    continue
                if length == BY_SILENCE:
                    if not at_end:
                        waiting = True
                        continue
                    total = _crc_prefix(buffer)
                    if total is None:
                        checksum_failed = True
                        continue
                else:
                    total = length + 3
                    if total > MAX_RTU_FRAME or length < 1:
                        continue
                    if size < total:
                        waiting = True
                        continue
                    if _crc16(buffer[:total] if size > total else buffer, byte_table, word_table):
                        checksum_failed = True
                        continue
                if self._run:
                    return self._take_run()  # the frame stays in the buffer for the next call
                return self._frame(total, kind)
            if waiting and not at_end:
                return None
            # Nothing can start at buffer[0]: skip one byte and look again.
            if checksum_failed:
                self._skip(1, DropCause.CHECKSUM)
            else:
                self._skip(1, self._end_cause if waiting else DropCause.GARBAGE)

    def _frame(self, total: int, kind: int) -> Frame | FrameDropped:
        buffer = self._buffer
        self._last_frame_end = self._last
        if self._early:
            self._early = False
            frame = bytes(buffer[:total])
            del buffer[:total]
            return FrameDropped(DropCause.TIMING, frame, "frame began less than t3.5 after the previous one")
        unit = buffer[0]
        pdu = bytes(buffer[1 : total - 2])
        del buffer[:total]
        return unit, 0, pdu, kind


def _crc_prefix(buffer: bytearray) -> int | None:
    """Length of the shortest prefix (at least 4 bytes) whose CRC checks out."""
    byte_table, _ = _tables()
    crc = 0xFFFF
    for index, byte in enumerate(buffer[:MAX_RTU_FRAME]):
        crc = (crc >> 8) ^ byte_table[(crc ^ byte) & 0xFF]
        if crc == 0 and index >= 3:
            return index + 1
    return None


_HEX_DIGITS = b"0123456789ABCDEFabcdef"


class AsciiFramer(Framer):
    """Modbus ASCII: ``:``, hex pairs (unit, PDU, LRC), CR LF.

    A ``:`` always starts a new frame.  *timeout* is the inter-character
    timeout (1 s by default): a frame that stops arriving for longer is
    dropped.  :attr:`input_delimiter` replaces LF as the end character
    (function 08/03 changes it on a server).
    """

    __slots__ = ("_buffer", "_last", "_ready", "_timeout", "input_delimiter")

    def __init__(self, *, timeout: float = 1.0, input_delimiter: int = 0x0A) -> None:
        super().__init__()
        if timeout <= 0:
            raise LocalProtocolError("timeout must be positive")
        if not 0 <= input_delimiter <= 0xFF:
            raise LocalProtocolError("input_delimiter must be a byte value")
        self._timeout = timeout
        self.input_delimiter = input_delimiter
        self._buffer = bytearray()
        self._last: float | None = None
        self._ready: deque[FrameDropped] = deque()

    def __repr__(self) -> str:
        return f"AsciiFramer(timeout={self._timeout})"

    @property
    def is_serial(self) -> bool:
        return True

    def receive_data(self, data: bytes, now: float) -> None:
        if self._buffer and self._last is not None and now - self._last > self._timeout:
            self._drop_partial()
        self._buffer += data
        self._last = now

    def next_deadline(self) -> float | None:
        if self._buffer and self._last is not None:
            return self._last + self._timeout
        return None

    def handle_timeout(self, now: float) -> None:
        deadline = self.next_deadline()
        if deadline is not None and now >= deadline:
            self._drop_partial()

    def _drop_partial(self) -> None:
        self._ready.append(FrameDropped(DropCause.INCOMPLETE, bytes(self._buffer), "inter-character timeout"))
        self._buffer.clear()

    def next_frame(self) -> Frame | FrameDropped | None:
        if self._ready:
            return self._ready.popleft()
        buffer = self._buffer
        if not buffer:
            return None
        start = buffer.find(b":")
        if start != 0:
            garbage = bytes(buffer if start < 0 else buffer[:start])
            del buffer[: len(garbage)]
            if not garbage.strip():
                return self.next_frame()  # line noise of blanks (a stray CR LF) is not an error
            return FrameDropped(DropCause.GARBAGE, garbage, "bytes before ':'")
        end = buffer.find(bytes((0x0D, self.input_delimiter)), 1)
        restart = buffer.find(b":", 1)
        if restart != -1 and (end == -1 or restart < end):
            dropped = bytes(buffer[:restart])
            del buffer[:restart]
            return FrameDropped(DropCause.INCOMPLETE, dropped, "a new ':' began before the end of the frame")
        if end == -1:
            if len(buffer) > MAX_ASCII_FRAME:
                dropped = bytes(buffer)
                buffer.clear()
                return FrameDropped(DropCause.OVERRUN, dropped, f"more than {MAX_ASCII_FRAME} characters")
            return None
        frame = bytes(buffer[: end + 2])
        del buffer[: end + 2]
        digits = frame[1:-2]
        if len(frame) > MAX_ASCII_FRAME:
            return FrameDropped(DropCause.OVERRUN, frame, f"more than {MAX_ASCII_FRAME} characters")
        if len(digits) & 1 or digits.translate(None, _HEX_DIGITS):
            return FrameDropped(DropCause.ENCODING, frame, "not pairs of hex digits")
        raw = bytes.fromhex(digits.decode("ascii"))
        if len(raw) < 3:
            return FrameDropped(DropCause.TOO_SHORT, frame)
        if lrc(raw[:-1]) != raw[-1]:
            return FrameDropped(DropCause.CHECKSUM, frame, f"LRC {raw[-1]:02X}, expected {lrc(raw[:-1]):02X}")
        return raw[0], 0, raw[1:-1], UNKNOWN

    def encode(self, unit: int, transaction_id: int, pdu: bytes) -> bytes:
        raw = bytes((unit,)) + pdu
        return b":" + (raw + bytes((lrc(raw),))).hex().upper().encode("ascii") + b"\r\n"
