"""Connections: a framer and the PDU codec behind the h11-style interface.

::

    conn = ServerConnection(RtuFramer(baudrate=19200))
    conn.receive_data(chunk, now)
    while (event := conn.next_event()) is not NEED_DATA:
        if isinstance(event, Request):
            response = dispatcher.dispatch(event)
            if response is not None:
                transport.write(conn.send(response))

Time is a parameter: pass the arrival time of each chunk (any monotonic
clock, in seconds), call :meth:`handle_timeout` when :meth:`next_deadline`
comes, and the connection never reads a clock itself.
"""

from __future__ import annotations

from collections.abc import Container
from typing import TYPE_CHECKING

from . import _pdu
from ._diagnostics import ServerDiagnostics
from ._dispatch import _DEVICE_ENCODED_PATH, _KnownAnswer
from ._errors import LocalProtocolError
from ._events import NEED_DATA, DropCause, FrameDropped, NeedData, Request, Response, _make_response
from ._framing import _MBAP, REQUEST, RESPONSE, AsciiFramer, Buffer, Framer, MbapFramer, RtuFramer
from ._functions import BY_SILENCE, DEFAULT_FUNCTIONS, FunctionTable
from ._pdu import (
    Diagnostics,
    DiagnosticsResponse,
    DiagnosticSubFunction,
    ReadCoils,
    ReadCoilsResponse,
    ReadDiscreteInputs,
    ReadDiscreteInputsResponse,
    RequestPdu,
    mutable_twin,
)

if TYPE_CHECKING:
    from ._dispatch import Dispatcher

__all__ = ["ClientConnection", "ServerConnection"]

_CACHE_SIZE = 256
_CACHED_PDU_SIZE = 16  # reads and single writes; bulk writes rarely repeat
_ANSWERS_SIZE = 64  # answers to reads remembered by answer_now: up to 64 x 251 bytes
# The built-in request PDUs are immutable (frozen, with tuple and bytes
# fields), so one decoded instance may be handed out any number of times.
_IMMUTABLE_REQUESTS = frozenset(
    cls
    for cls in vars(_pdu).values()
    if isinstance(cls, type) and issubclass(cls, RequestPdu) and cls.__module__ == _pdu.__name__
)
_RequestTwin = mutable_twin(Request)


class _Connection:
    __slots__ = ("_echo", "_expected_echo", "_framer", "_functions")

    def __init__(self, framer: Framer, *, functions: FunctionTable | None, echo: bool) -> None:
        if not isinstance(framer, Framer):
            raise LocalProtocolError(f"expected a Framer, got {type(framer).__name__}")
        if functions is not None and not isinstance(functions, FunctionTable):
            raise LocalProtocolError(f"expected a FunctionTable, got {type(functions).__name__}")
        self._framer = framer
        self._functions = functions if functions is not None else DEFAULT_FUNCTIONS
        framer.bind(self._functions)
        self._echo = echo
        self._expected_echo = bytearray()

    @property
    def framer(self) -> Framer:
        """The framer this connection drives."""
        return self._framer

    @property
    def functions(self) -> FunctionTable:
        """The function table used to decode PDUs."""
        return self._functions

    def receive_data(self, data: Buffer, now: float = 0.0) -> None:
        """Feed bytes that arrived at time *now* (seconds, monotonic).

        With ``echo=True`` the bytes this side sent and the line echoed back
        are removed first.
        """
        if self._expected_echo:
            data = self._strip_echo(data)
        self._framer.receive_data(data, now)

    def _strip_echo(self, data: Buffer) -> Buffer:
        expected = self._expected_echo
        size = min(len(data), len(expected))
        if data[:size] == expected[:size]:
            del expected[:size]
            return data[size:]
        # The echo is lost or garbled: stop waiting for it, and keep the bytes.
        expected.clear()
        return data

    def next_deadline(self) -> float | None:
        """When to call :meth:`handle_timeout`, on the clock given to :meth:`receive_data`."""
        return self._framer.next_deadline()

    def handle_timeout(self, now: float) -> None:
        """Let silence up to *now* end or discard a partial frame.

        May raise :class:`RemoteProtocolError` (an MBAP stream whose partial
        frame did not complete in time): close the connection.
        """
        self._framer.handle_timeout(now)

    def _sent(self, data: bytes) -> bytes:
        if self._echo:
            self._expected_echo += data
        return data


class ServerConnection(_Connection):
    """The server side of one Modbus link: requests in, responses out.

    *units*: the unit ids this server answers on a shared serial line; frames
    for others are skipped without an event (None: every unit).  *echo*: the
    line echoes what this side sends (many RS-485 adapters do).
    *diagnostics*: the line's counters, updated for every frame seen, and
    the ASCII input delimiter of function 08/03 (give the same object to the
    :class:`Dispatcher`).

    Decoded request PDUs are immutable, and pollers send the same few
    requests over and over: the connection keeps the recent ones, keyed by
    their bytes, and hands out the same PDU object again.  On TCP and on an
    RTU line it serves alone, it also remembers whole frames: when a read
    holds exactly a frame seen before (all its bytes but the transaction id
    identical, the CRC included), the frame's parse and checks are not
    repeated, since identical bytes give identical results.
    """

    __slots__ = (
        "_answers",
        "_ascii",
        "_candidate",
        "_decoded",
        "_diagnostics",
        "_frames",
        "_mbap",
        "_ready",
        "_rtu",
        "_units",
    )

    def __init__(
        self,
        framer: Framer,
        *,
        units: Container[int] | None = None,
        functions: FunctionTable | None = None,
        echo: bool = False,
        diagnostics: ServerDiagnostics | None = None,
    ) -> None:
        super().__init__(framer, functions=functions, echo=echo)
        if diagnostics is not None and not isinstance(diagnostics, ServerDiagnostics):
            raise LocalProtocolError(f"expected ServerDiagnostics, got {type(diagnostics).__name__}")
        self._units = units
        self._diagnostics = diagnostics
        self._ascii = isinstance(framer, AsciiFramer)
        if diagnostics is not None and isinstance(framer, AsciiFramer) and framer.input_delimiter != 0x0A:
            diagnostics.change_ascii_delimiter(framer.input_delimiter)
        self._decoded: dict[bytes, RequestPdu] = {}
        # The whole-frame cache needs a built-in stream framer (exactly: a
        # subclass may see frames differently) and nothing to do per frame
        # but decoding it and counting it.  Its keys are whole reads (on MBAP
        # without the transaction id).
        self._frames: dict[bytes, tuple[int, RequestPdu]] = {}
        # answer_now's answers to reads among them, with what each depends on.
        self._answers: dict[bytes, _KnownAnswer] = {}
        fast = units is None and not echo
        self._mbap = framer if fast and type(framer) is MbapFramer and not framer.datagram else None
        self._rtu = (
            framer if fast and type(framer) is RtuFramer and not framer.strict_timing and not framer.datagram else None
        )
        self._ready: Request | None = None  # the request a cached frame gave
        self._candidate: bytes | None = None  # the key of a read that began at a frame boundary

    def __repr__(self) -> str:
        return f"ServerConnection({self._framer!r})"

    def receive_data(self, data: Buffer, now: float = 0.0) -> None:
        """Feed bytes that arrived at time *now* (seconds, monotonic).

        With ``echo=True`` the bytes this side sent and the line echoed back
        are removed first.
        """
        # The whole-frame cache, inlined: this is the path of every poll.  It
        # applies when the framer holds nothing and no event waits, so that
        # events keep their order.
        mbap = self._mbap
        if mbap is not None and self._ready is None and data.__class__ is bytes and mbap._start >= len(mbap._data):
            key = data[2:]
            hit = self._frames.get(key)
            if hit is not None:
                event = _RequestTwin()
                event.pdu = hit[1]
                event.unit = hit[0]
                event.transaction_id = data[0] << 8 | data[1]
                event.__class__ = Request
                self._ready = event
                if self._diagnostics is not None:
                    self._diagnostics.frame_received()
                return
            self._candidate = key
        elif (
            (rtu := self._rtu) is not None
            and self._ready is None
            and data.__class__ is bytes
            and rtu._start >= len(rtu._data)
            and not rtu._ready
        ):
            hit = self._frames.get(data)
            if hit is not None:
                event = _RequestTwin()
                event.pdu = hit[1]
                event.unit = hit[0]
                event.transaction_id = 0
                event.__class__ = Request
                self._ready = event
                if self._diagnostics is not None:
                    self._diagnostics.frame_received()
                return
            self._candidate = data
        else:
            self._candidate = None
            if self._expected_echo:
                data = self._strip_echo(data)
        self._framer.receive_data(data, now)

    def answer_now(self, data: bytes, dispatcher: Dispatcher) -> bytes | None:
        """The bytes that answer *data*, when it is one request the fast way allows; else None.

        The poller's path on Modbus/TCP, without events: *data* is exactly
        one MBAP frame seen before on this connection (see the whole-frame
        cache above), nothing else waits, and *dispatcher* answers it at
        once from a built-in :class:`Device` (reads and writes of coils and
        registers, not in listen-only mode).  The counters, the event log
        and the device end as :meth:`receive_data`, :meth:`next_event`,
        :meth:`Dispatcher.dispatch` and :meth:`send` would leave them.  On
        None nothing has changed: feed *data* to :meth:`receive_data`.

        The answer to a read is remembered with the revision of the table
        it read, and given again while that table is unchanged (every
        write through the table's methods makes a new revision).
        """
        mbap = self._mbap
        if mbap is None or self._ready is not None or data.__class__ is not bytes or mbap._start < len(mbap._data):
            return None
        key = data[2:]
        hit = self._frames.get(key)
        if hit is None:
            return None
        unit, pdu = hit
        known = self._answers.get(key)
        encoded = None if known is None else dispatcher._answer_known(unit, known)
        if encoded is None:
            stamp = dispatcher._read_stamp(unit, pdu)
            answer = dispatcher._answer_device(unit, pdu, _DEVICE_ENCODED_PATH)
            if answer is None:
                return None
            if isinstance(answer, bytes):
                encoded = answer
                if stamp is not None:
                    answers = self._answers
                    if len(answers) >= _ANSWERS_SIZE:
                        answers.clear()
                    answers[key] = (stamp, encoded)
            else:
                encoded = answer.encode()  # an exception answer
        if self._diagnostics is not None:
            self._diagnostics.frame_received()
        # The framer's checks hold: unit and transaction id came in this frame, and
        # these answers are short (125 registers or 2000 bits at most).
        return _MBAP.pack(data[0] << 8 | data[1], 0, len(encoded) + 1, unit) + encoded

    def next_event(self) -> Request | FrameDropped | NeedData:
        """The next :class:`Request` or :class:`FrameDropped`, or :data:`NEED_DATA`."""
        if self._ready is not None:
            event, self._ready = self._ready, None
            return event
        diagnostics = self._diagnostics
        framer = self._framer
        candidate = self._candidate
        self._candidate = None
        while True:
            if diagnostics is not None and self._ascii:
                # 08/03 changes the line's delimiter in the diagnostics, also for a broadcast.
                framer.input_delimiter = diagnostics.ascii_delimiter  # type: ignore[attr-defined]
            frame = framer.next_frame()
            if frame is None:
                return NEED_DATA
            if frame.__class__ is FrameDropped:
                if diagnostics is not None:
                    diagnostics.frame_dropped(frame.cause)
                return frame
            unit, transaction_id, pdu, kind = frame  # type: ignore[misc]
            if diagnostics is not None:
                diagnostics.frame_received()
            units = self._units
            if kind:
                if (kind == RESPONSE or units is not None) and not self._on_shared_line(unit, pdu, kind):
                    candidate = None
                    continue
            elif units is not None and unit not in units:
                continue
            if candidate is not None:
                decoded = self._decode_read(pdu, unit, candidate)
            else:
                decoded = self._decoded.get(pdu) or self._decode(pdu)
            request = _RequestTwin()
            request.pdu = decoded
            request.unit = unit
            request.transaction_id = transaction_id
            request.__class__ = Request
            return request  # type: ignore[no-any-return]

    def _decode(self, pdu: bytes) -> RequestPdu:
        """Decode *pdu* and keep it in the PDU cache if it may be shared."""
        decoded = self._functions.decode_request(pdu)
        if decoded.__class__ in _IMMUTABLE_REQUESTS and len(pdu) <= _CACHED_PDU_SIZE:
            if len(self._decoded) >= _CACHE_SIZE:
                self._decoded.clear()
            self._decoded[pdu] = decoded
        return decoded

    def _decode_read(self, pdu: bytes, unit: int, read: bytes) -> RequestPdu:
        """Decode the first frame of a *read* that began at a frame boundary.

        When the frame was the whole read, the read becomes a key of the
        whole-frame cache (which makes the PDU cache useless for it).
        """
        framer = self._mbap or self._rtu
        assert framer is not None  # a read is only a candidate with one of them
        if framer._start < len(framer._data):
            return self._decoded.get(pdu) or self._decode(pdu)
        decoded = self._functions.decode_request(pdu)
        if (
            decoded.__class__ in _IMMUTABLE_REQUESTS
            and len(pdu) <= _CACHED_PDU_SIZE
            # On RTU only a frame whose length its bytes give: silence ends the others.
            and (framer is self._mbap or self._functions.request_length(pdu, 0, len(pdu)) == len(pdu))
        ):
            if len(self._frames) >= _CACHE_SIZE:
                self._frames.clear()
                self._answers.clear()
            self._frames[read] = (unit, decoded)
        return decoded

    def _on_shared_line(self, unit: int, pdu: bytes, kind: int) -> bool:
        """Follow an RTU line's traffic: whether this frame is a request for us.

        After a request for another server, its response is the likely next
        frame, and the framer tries that reading first.
        """
        units = self._units
        ours = units is None or unit in units
        if kind == RESPONSE:
            # Another server's answer, unless it is addressed to us and reads
            # as a request just as well (the frame after a request that was
            # not answered): framed by its length, or by silence.
            self._framer.expect_response = False
            return ours and self._functions.request_length(pdu, 0, len(pdu)) in (len(pdu), BY_SILENCE)
        self._framer.expect_response = not ours and unit != 0
        return ours

    def send(self, response: Response) -> bytes:
        """Encode *response*; returns the bytes to write."""
        if response.__class__ is not Response:
            raise LocalProtocolError(f"a server sends Response events, got {type(response).__name__}")
        pdu = response.pdu
        framer = self._framer
        framer.expect_response = False
        if pdu.__class__ is DiagnosticsResponse and self._ascii:
            self._delimiter_changed(pdu)
        return self._sent(framer.encode(response.unit, response.transaction_id, pdu.encode()))

    def _delimiter_changed(self, pdu: DiagnosticsResponse) -> None:
        if pdu.sub_function == DiagnosticSubFunction.CHANGE_ASCII_INPUT_DELIMITER:
            delimiter = pdu.data[0]
            self._framer.input_delimiter = delimiter  # type: ignore[attr-defined]
            if self._diagnostics is not None:
                self._diagnostics.change_ascii_delimiter(delimiter)


def _expects_response(request: Request, serial: bool) -> bool:
    if serial and request.unit == 0:
        return False  # broadcast
    pdu = request.pdu
    return not (pdu.__class__ is Diagnostics and pdu.sub_function == DiagnosticSubFunction.FORCE_LISTEN_ONLY_MODE)


class ClientConnection(_Connection):
    """The client side of one Modbus link: requests out, responses in.

    It remembers the requests that await an answer, so that a response is
    matched to its request (by transaction id on MBAP, by unit on serial
    lines), checked against it, and its bit values trimmed to the count that
    was asked for.  Anything else becomes :class:`FrameDropped`.
    """

    __slots__ = ("_next_transaction_id", "_pending")

    def __init__(self, framer: Framer, *, functions: FunctionTable | None = None, echo: bool = False) -> None:
        super().__init__(framer, functions=functions, echo=echo)
        framer.expect_response = True
        self._pending: dict[tuple[int, int], Request] = {}
        self._next_transaction_id = 1

    def __repr__(self) -> str:
        return f"ClientConnection({self._framer!r}, pending={len(self._pending)})"

    @property
    def pending(self) -> tuple[Request, ...]:
        """Requests sent and not yet answered, oldest first."""
        return tuple(self._pending.values())

    def request(self, pdu: RequestPdu, unit: int = 1) -> Request:
        """A :class:`Request` for *pdu* with the next free transaction id."""
        if self._framer.is_serial:
            return Request(pdu, unit)
        for _ in range(0x10000):
            transaction_id = self._next_transaction_id
            self._next_transaction_id = (transaction_id + 1) & 0xFFFF
            if (transaction_id, unit) not in self._pending:
                return Request(pdu, unit, transaction_id)
        raise LocalProtocolError("all 65536 transaction ids are in use")

    def send(self, request: Request) -> bytes:
        """Encode *request*; returns the bytes to write."""
        if not isinstance(request, Request):
            raise LocalProtocolError(f"a client sends Request events, got {type(request).__name__}")
        serial = self._framer.is_serial
        if serial and request.transaction_id:
            raise LocalProtocolError("serial lines have no transaction id: leave it 0")
        key = (request.transaction_id, request.unit)
        expected = _expects_response(request, serial)
        if expected and key in self._pending:
            raise LocalProtocolError(f"a request with transaction id {key[0]} to unit {key[1]} is still pending")
        data = self._framer.encode(request.unit, request.transaction_id, request.pdu.encode())
        if expected:
            self._pending[key] = request
        return self._sent(data)

    def cancel(self, request: Request) -> None:
        """Stop waiting for the answer to *request* (after a timeout)."""
        self._pending.pop((request.transaction_id, request.unit), None)

    def next_event(self) -> Response | FrameDropped | NeedData:
        """The next :class:`Response` or :class:`FrameDropped`, or :data:`NEED_DATA`."""
        framer = self._framer
        while True:
            frame = framer.next_frame()
            if frame is None:
                return NEED_DATA
            if frame.__class__ is FrameDropped:
                return frame
            unit, transaction_id, pdu, kind = frame  # type: ignore[misc]
            if kind == REQUEST:
                continue  # another client's request, or our own echo
            request = self._pending.get((transaction_id, unit))
            if request is None:
                return FrameDropped(DropCause.UNEXPECTED, pdu, f"unit {unit}, transaction {transaction_id}")
            return self._match(request, unit, transaction_id, pdu)

    def _match(self, request: Request, unit: int, transaction_id: int, pdu: bytes) -> Response | FrameDropped:
        key = (transaction_id, unit)
        try:
            response = self._functions.decode_response(pdu)
        except Exception as error:  # noqa: BLE001 - RemoteProtocolError, or a custom decoder's bug
            del self._pending[key]
            return FrameDropped(DropCause.MALFORMED, pdu, str(error))
        expected = request.pdu.function_code
        if response.function_code != expected:
            return FrameDropped(DropCause.UNEXPECTED, pdu, f"function {response.function_code} answers {expected}")
        if response.__class__ in (ReadCoilsResponse, ReadDiscreteInputsResponse) and isinstance(
            request.pdu, ReadCoils | ReadDiscreteInputs
        ):
            # Padding is told from data by the count asked for (a raw or
            # malformed request, forwarded by a gateway, leaves it as it is).
            count = request.pdu.count
            values: tuple[bool, ...] = response.values
            if len(values) < count or len(values) - count >= 8:
                del self._pending[key]
                return FrameDropped(DropCause.MALFORMED, pdu, f"{len(values)} bits do not answer a read of {count}")
            response = type(response)(values[:count])
        del self._pending[key]
        return _make_response(response, unit, transaction_id)
