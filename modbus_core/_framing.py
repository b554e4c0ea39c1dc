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
passes the time data arrived and calls :meth:`~Framer.handle_timeout` at
:meth:`~Framer.next_deadline`.

Buffers are a ``bytes`` object and a read position rather than a
``bytearray``: in the common case (one read, one whole frame) the bytes the
adapter received are parsed where they lie, never copied.
"""

from __future__ import annotations

import abc
import math
import struct
from collections import deque
from collections.abc import Sequence
from typing import TypeAlias

from ._checksum import CRC_WORDS, LONG_FRAME, crc_tables, crc_update, long_crc, lrc
from ._errors import LocalProtocolError, RemoteProtocolError
from ._events import DropCause, FrameDropped
from ._functions import BY_SILENCE, DEFAULT_FUNCTIONS, FunctionTable
from ._pdu import MAX_PDU_SIZE

__all__ = ["AsciiFramer", "Framer", "MbapFramer", "RtuFramer"]

UNKNOWN = 0
REQUEST = 1
RESPONSE = 2

Frame: TypeAlias = tuple[int, int, bytes, int]
"""``(unit, transaction_id, pdu, kind)``."""

Buffer: TypeAlias = bytes | bytearray | memoryview
"""What ``receive_data`` accepts: whatever a transport's read returns."""

_MBAP = struct.Struct(">HHHB")
MAX_RTU_FRAME = 256
MAX_ASCII_FRAME = 513


def _size_error(pdu: bytes) -> LocalProtocolError:
    return LocalProtocolError(f"a PDU is 1..{MAX_PDU_SIZE} bytes, got {len(pdu)}")


def _unit_error(unit: int) -> LocalProtocolError:
    return LocalProtocolError(f"unit must be 0..255, got {unit}")


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
    def receive_data(self, data: Buffer, now: float) -> None:
        """Append bytes that arrived at time *now* (the arrival of the last byte)."""

    @abc.abstractmethod
    def next_frame(self) -> Frame | FrameDropped | None:
        """The next complete frame or drop, or None when more bytes are needed."""

    @abc.abstractmethod
    def next_deadline(self) -> float | None:
        """When :meth:`handle_timeout` should be called, or None."""

    @abc.abstractmethod
    def handle_timeout(self, now: float) -> None:
        """Act on silence on the line up to *now*."""

    @abc.abstractmethod
    def encode(self, unit: int, transaction_id: int, pdu: bytes) -> bytes:
        """Wrap *pdu* (function code first) in this framing."""

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
    one ADU; bytes after the ADU, short datagrams and bad lengths are
    dropped, never raised.

    *frame_timeout*: seconds a partial ADU may wait for its remaining bytes;
    past it :meth:`handle_timeout` raises :class:`RemoteProtocolError`, so
    that a peer that sends half a frame cannot hold a connection forever.
    """

    __slots__ = ("_data", "_datagram", "_frame_timeout", "_last", "_partial_since", "_ready", "_start")

    def __init__(self, *, datagram: bool = False, frame_timeout: float | None = None) -> None:
        super().__init__()
        if frame_timeout is not None and not frame_timeout > 0:
            raise LocalProtocolError(f"frame_timeout must be positive, got {frame_timeout!r}")
        self._datagram = datagram
        self._frame_timeout = frame_timeout
        # The bytes not yet framed are self._data[self._start:], and
        # self._start is always where an ADU begins.
        self._data = b""
        self._start = 0
        self._last = 0.0  # arrival of the newest bytes
        self._partial_since = 0.0  # arrival of the first bytes of the ADU at self._start
        self._ready: deque[Frame | FrameDropped] = deque()  # datagram mode

    def __repr__(self) -> str:
        return f"MbapFramer(datagram={self._datagram}, frame_timeout={self._frame_timeout})"

    @property
    def datagram(self) -> bool:
        """Whether every :meth:`receive_data` call is one datagram."""
        return self._datagram

    @property
    def frame_timeout(self) -> float | None:
        """Seconds a partial ADU may wait for the rest of its bytes (None: forever)."""
        return self._frame_timeout

    def receive_data(self, data: Buffer, now: float) -> None:
        if data.__class__ is not bytes:
            data = bytes(data)
        if self._datagram:
            self._receive_datagram(data)
        elif self._start >= len(self._data):
            self._data = data
            self._start = 0
            self._partial_since = self._last = now
        else:
            # The ADU at self._start began before: its _partial_since stays.
            self._data = self._data[self._start :] + data
            self._start = 0
            self._last = now

    def next_frame(self) -> Frame | FrameDropped | None:
        data = self._data
        start = self._start
        if len(data) - start < 7:
            return self._ready.popleft() if self._ready else self._incomplete()
        transaction_id, protocol_id, length, unit = _MBAP.unpack_from(data, start)
        end = start + 6 + length
        if not 2 <= length <= 254:
            raise RemoteProtocolError(f"MBAP length {length} outside 2..254: the stream cannot be resynchronised")
        if end > len(data):
            return self._incomplete()
        self._start = end
        if protocol_id:
            return FrameDropped(DropCause.PROTOCOL_ID, data[start:end], f"protocol id {protocol_id}")
        return unit, transaction_id, data[start + 7 : end], UNKNOWN

    def _incomplete(self) -> Frame | FrameDropped | None:
        if self._start:
            # An ADU ended inside the newest bytes: the partial one after it began there.
            self._partial_since = self._last
        return None

    def _receive_datagram(self, data: bytes) -> None:
        ready = self._ready
        if len(data) < 8:
            ready.append(FrameDropped(DropCause.TOO_SHORT, data, "datagram shorter than an MBAP header and a PDU"))
            return
        transaction_id, protocol_id, length, unit = _MBAP.unpack_from(data)
        end = 6 + length
        if not 2 <= length <= 254 or end > len(data):
            ready.append(FrameDropped(DropCause.INCOMPLETE, data, f"MBAP length {length} does not fit the datagram"))
            return
        if protocol_id:
            ready.append(FrameDropped(DropCause.PROTOCOL_ID, data[:end], f"protocol id {protocol_id}"))
        else:
            ready.append((unit, transaction_id, data[7:end], UNKNOWN))
        if end < len(data):
            ready.append(FrameDropped(DropCause.GARBAGE, data[end:], "bytes after the ADU in the datagram"))

    def next_deadline(self) -> float | None:
        if self._frame_timeout is None or self._start >= len(self._data):
            return None
        return self._partial_since + self._frame_timeout

    def handle_timeout(self, now: float) -> None:
        deadline = self.next_deadline()
        if deadline is not None and now >= deadline:
            raise RemoteProtocolError(f"partial MBAP frame incomplete after {self._frame_timeout} s")

    def encode(self, unit: int, transaction_id: int, pdu: bytes) -> bytes:
        if not 0 < len(pdu) <= MAX_PDU_SIZE:
            raise _size_error(pdu)
        try:
            return _MBAP.pack(transaction_id, 0, len(pdu) + 1, unit) + pdu
        except struct.error:
            raise LocalProtocolError(f"unit {unit} or transaction id {transaction_id} out of range") from None


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
    only broken by a gap of 20 ms (or t3.5, if longer).

    *datagram*: every :meth:`receive_data` call is a complete datagram (RTU
    over UDP): its frames are parsed at once, what else it holds is dropped,
    and timing does not apply.
    """

    __slots__ = (
        "_char_time",
        "_crc_tables",
        "_data",
        "_datagram",
        "_early",
        "_end_cause",
        "_gap",
        "_last",
        "_long_crc",
        "_orders",
        "_ready",
        "_start",
        "_strict",
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
        self._strict = strict_timing and not datagram
        self._gap = self.t1_5 if self._strict else max(self.t3_5, TOLERANT_GAP)
        self._datagram = datagram
        # The bytes not yet framed are self._data[self._start:].
        self._data = b""
        self._start = 0
        # Arrival of the newest byte on the line, whatever became of it: a
        # frame must follow any activity by t3.5.
        self._last = -math.inf
        self._early = False  # the frame in the buffer began too soon (strict)
        self._ready: deque[Frame | FrameDropped] = deque()  # parsed when silence ended the data
        self._end_cause = DropCause.INCOMPLETE  # why a frame cut short by silence is dropped
        self._crc_tables = crc_tables()  # built now, not on the first frame
        self._long_crc = long_crc()
        self._orders = self._make_orders(DEFAULT_FUNCTIONS)

    def __repr__(self) -> str:
        return f"RtuFramer(baudrate={self.baudrate}, strict_timing={self._strict}, datagram={self._datagram})"

    @property
    def is_serial(self) -> bool:
        return True

    @property
    def strict_timing(self) -> bool:
        """Whether the specification's t1.5 and t3.5 apply to arrival times."""
        return self._strict

    @property
    def datagram(self) -> bool:
        """Whether every :meth:`receive_data` call is one datagram."""
        return self._datagram

    def bind(self, functions: FunctionTable) -> None:
        super().bind(functions)
        self._orders = self._make_orders(functions)

    @staticmethod
    def _make_orders(functions: FunctionTable) -> tuple[tuple[tuple[int, tuple[object, ...]], ...], ...]:
        requests = (REQUEST, functions.request_rules)
        responses = (RESPONSE, functions.response_rules)
        return ((requests, responses), (responses, requests))  # indexed by expect_response

    def receive_data(self, data: Buffer, now: float) -> None:
        if not data:
            return
        if data.__class__ is not bytes:
            data = bytes(data)
        if self._datagram:
            self._data = self._data[self._start :] + data
            self._start = 0
            self._flush(DropCause.INCOMPLETE)
            return
        if self._start < len(self._data):
            first_byte = now - (len(data) - 1) * self._char_time
            if first_byte - self._char_time - self._last > self._gap:
                self._flush(DropCause.TIMING if self._strict else DropCause.INCOMPLETE)
        if self._start < len(self._data):
            self._data = self._data[self._start :] + data
        else:
            if self._strict:
                first_byte = now - (len(data) - 1) * self._char_time
                self._early = first_byte - self._char_time - self._last < self.t3_5
            self._data = data
        self._start = 0
        self._last = now

    def next_frame(self) -> Frame | FrameDropped | None:
        if self._ready:
            return self._ready.popleft()
        # The common case first: a whole frame of a fixed length at the
        # buffer's start whose CRC checks out.  Anything else: _parse.
        data = self._data
        start = self._start
        if len(data) - start >= 4 and not self._early:
            kind, rules = self._orders[self.expect_response][0]
            length = rules[data[start + 1]]
            if length.__class__ is int and length > 0 and start + length + 3 <= len(data):
                # The CRC of unit and PDU, compared with the two bytes after them.
                end = start + 1 + length
                byte_table, word_table = self._crc_tables
                crc = 0xFFFF
                for word in CRC_WORDS[(length + 1) >> 1].unpack_from(data, start):
                    crc = word_table[crc ^ word]
                if not length & 1:
                    crc = (crc >> 8) ^ byte_table[(crc ^ data[end - 1]) & 0xFF]
                if crc == data[end] | data[end + 1] << 8:
                    self._start = end + 2
                    return data[start], 0, data[start + 1 : end], kind
        return self._parse(False)

    def next_deadline(self) -> float | None:
        if self._start < len(self._data) and not self._datagram:
            return self._last + self._gap
        return None

    def handle_timeout(self, now: float) -> None:
        deadline = self.next_deadline()
        if deadline is not None and now >= deadline:
            self._flush(DropCause.INCOMPLETE)

    def encode(self, unit: int, transaction_id: int, pdu: bytes) -> bytes:
        if not 0 < len(pdu) <= MAX_PDU_SIZE:
            raise _size_error(pdu)
        if not 0 <= unit <= 0xFF:
            raise _unit_error(unit)
        frame = bytes((unit,)) + pdu
        if len(frame) >= LONG_FRAME:
            return frame + self._long_crc(frame).to_bytes(2, "little")
        return frame + crc_update(0xFFFF, frame, 0, len(frame), *self._crc_tables).to_bytes(2, "little")

    # ------------------------------------------------------------------

    def _flush(self, cause: DropCause) -> None:
        """Silence: the bytes in the buffer are all the current frame will get."""
        self._end_cause = cause
        while (item := self._parse(True)) is not None:
            self._ready.append(item)
        self._early = False

    def _parse(self, at_end: bool) -> Frame | FrameDropped | None:
        """The next frame, or the bytes skipped before one; *at_end*: silence followed the buffer.

        Bytes that start no frame are skipped one at a time and reported
        together, as one drop, before the frame after them; the cause is
        what the preferred reading of the first of them found.
        """
        byte_table, word_table = self._crc_tables
        data = self._data
        end = len(data)
        skipped_from = self._start
        cause = DropCause.GARBAGE
        while True:
            start = self._start
            size = end - start
            if size < 4:
                if at_end and size:
                    if start == skipped_from:
                        cause = DropCause.TOO_SHORT
                    self._start = end
                break
            code = data[start + 1]
            waiting = False
            verdict = None
            for kind, rules in self._orders[self.expect_response]:
                rule = rules[code]
                length = rule if rule.__class__ is int else rule(data, start + 1, end)  # type: ignore[operator]
                if length is None:
                    waiting = True
                    verdict = verdict or (self._end_cause if at_end else DropCause.GARBAGE)
                    continue
                if length > 0:
                    total = length + 3
                    if total > MAX_RTU_FRAME:
                        continue
                    if size < total:
                        waiting = True
                        verdict = verdict or (self._end_cause if at_end else DropCause.GARBAGE)
                        continue
                    if (
                        self._long_crc(data[start : start + total])
                        if total >= LONG_FRAME
                        else crc_update(0xFFFF, data, start, total, byte_table, word_table)
                    ):
                        verdict = verdict or DropCause.CHECKSUM
                        continue
                elif length == BY_SILENCE:
                    if not at_end and size < MAX_RTU_FRAME:
                        waiting = True
                        verdict = verdict or DropCause.GARBAGE
                        continue
                    found = _silence_frame_length(data, start, end, at_end, byte_table)
                    if found is None:
                        verdict = verdict or DropCause.CHECKSUM
                        continue
                    total = found
                else:  # INVALID: no such frame starts with these bytes
                    continue
                if start > skipped_from:
                    break  # report the skipped bytes first; the frame stays for the next call
                return self._frame(start, total, kind)
            else:
                if waiting and not at_end and size < MAX_RTU_FRAME:
                    break
                # Nothing can start at this byte: skip it and look again.
                if start == skipped_from:
                    cause = verdict or DropCause.GARBAGE
                self._start = start + 1
                continue
            break
        if self._start > skipped_from:
            if at_end and self._end_cause is DropCause.TIMING:
                cause = DropCause.TIMING  # whatever the bytes look like, the gap discarded them
            return FrameDropped(cause, data[skipped_from : self._start])
        return None

    def _frame(self, start: int, total: int, kind: int) -> Frame | FrameDropped:
        data = self._data
        self._start = start + total
        if self._early:
            self._early = False
            return FrameDropped(
                DropCause.TIMING, data[start : start + total], "frame began less than t3.5 after the previous one"
            )
        return data[start], 0, data[start + 1 : start + total - 2], kind


def _silence_frame_length(data: bytes, start: int, end: int, at_end: bool, byte_table: Sequence[int]) -> int | None:
    """Where a frame that only silence ends stops: the whole buffer when its
    CRC checks out and silence followed it, else the shortest prefix (at
    least 4 bytes) whose CRC does."""
    limit = min(end, start + MAX_RTU_FRAME)
    crc = 0xFFFF
    shortest = None
    for index in range(start, limit):
        crc = (crc >> 8) ^ byte_table[(crc ^ data[index]) & 0xFF]
        if crc == 0 and index - start >= 3:
            if shortest is None:
                shortest = index + 1 - start
            if index + 1 == end and at_end:
                return end - start
    return shortest


_HEX_DIGITS = b"0123456789ABCDEFabcdef"


class AsciiFramer(Framer):
    """Modbus ASCII: ``:``, hex pairs (unit, PDU, LRC), CR LF.

    A ``:`` always starts a new frame.  *timeout* is the inter-character
    timeout (1 s by default): a frame that stops arriving for longer is
    dropped.

    .. attribute:: input_delimiter

       The byte that ends a frame after CR: LF (``0x0A``) unless given, or
       changed by function 08/03 on a server connection.
    """

    __slots__ = ("_buffer", "_last", "_ready", "_timeout", "input_delimiter")

    def __init__(self, *, timeout: float = 1.0, input_delimiter: int = 0x0A) -> None:
        super().__init__()
        if not timeout > 0:
            raise LocalProtocolError(f"timeout must be positive, got {timeout!r}")
        if not isinstance(input_delimiter, int) or not 0 <= input_delimiter <= 0xFF:
            raise LocalProtocolError(f"input_delimiter must be a byte value, got {input_delimiter!r}")
        self._timeout = timeout
        self.input_delimiter = input_delimiter
        self._buffer = bytearray()
        self._last = 0.0
        self._ready: deque[Frame | FrameDropped] = deque()  # what silence completed

    def __repr__(self) -> str:
        return f"AsciiFramer(timeout={self._timeout}, input_delimiter={self.input_delimiter:#04x})"

    @property
    def is_serial(self) -> bool:
        return True

    @property
    def timeout(self) -> float:
        """The inter-character timeout, in seconds."""
        return self._timeout

    def receive_data(self, data: Buffer, now: float) -> None:
        if not data:
            return
        if self._buffer and now - self._last > self._timeout:
            self._drop_partial()
        self._buffer += data
        self._last = now

    def next_deadline(self) -> float | None:
        if self._buffer:
            return self._last + self._timeout
        return None

    def handle_timeout(self, now: float) -> None:
        deadline = self.next_deadline()
        if deadline is not None and now >= deadline:
            self._drop_partial()

    def _drop_partial(self) -> None:
        """Silence: the frames in the buffer are done, the rest will never be."""
        while (item := self._parse()) is not None:
            self._ready.append(item)
        partial = bytes(self._buffer)
        self._buffer.clear()
        if partial.strip():
            self._ready.append(FrameDropped(DropCause.INCOMPLETE, partial, "inter-character timeout"))

    def next_frame(self) -> Frame | FrameDropped | None:
        if self._ready:
            return self._ready.popleft()
        return self._parse()

    def _parse(self) -> Frame | FrameDropped | None:
        buffer = self._buffer
        start = buffer.find(b":")
        if start != 0:
            garbage = bytes(buffer if start < 0 else buffer[:start])
            del buffer[: len(garbage)]
            if garbage.strip():
                return FrameDropped(DropCause.GARBAGE, garbage, "bytes before ':'")
            # Blanks between frames (a stray CR LF) are not an error.
            if start < 0:
                return None
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
        if len(frame) > MAX_ASCII_FRAME:
            return FrameDropped(DropCause.OVERRUN, frame, f"more than {MAX_ASCII_FRAME} characters")
        digits = frame[1:-2]
        if len(digits) & 1 or digits.translate(None, _HEX_DIGITS):
            return FrameDropped(DropCause.ENCODING, frame, "not pairs of hex digits")
        raw = bytes.fromhex(digits.decode("ascii"))
        if len(raw) < 3:
            return FrameDropped(DropCause.TOO_SHORT, frame)
        if lrc(raw[:-1]) != raw[-1]:
            return FrameDropped(DropCause.CHECKSUM, frame, f"LRC {raw[-1]:02X}, expected {lrc(raw[:-1]):02X}")
        return raw[0], 0, raw[1:-1], UNKNOWN

    def encode(self, unit: int, transaction_id: int, pdu: bytes) -> bytes:
        if not 0 < len(pdu) <= MAX_PDU_SIZE:
            raise _size_error(pdu)
        if not 0 <= unit <= 0xFF:
            raise _unit_error(unit)
        raw = bytes((unit,)) + pdu
        return b":" + (raw + bytes((lrc(raw),))).hex().upper().encode("ascii") + b"\r\n"
