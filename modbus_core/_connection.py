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

from . import _pdu
from ._diagnostics import ServerDiagnostics
from ._errors import LocalProtocolError
from ._events import (
    NEED_DATA,
    DropCause,
    FrameDropped,
    NeedData,
    Request,
    Response,
    _make_request,
    _make_response,
)
from ._framing import REQUEST, RESPONSE, AsciiFramer, Framer
from ._functions import DEFAULT_FUNCTIONS, FunctionTable
from ._pdu import (
    Diagnostics,
    DiagnosticsResponse,
    DiagnosticSubFunction,
    ReadCoilsResponse,
    ReadDiscreteInputsResponse,
    RequestPdu,
)

__all__ = ["ClientConnection", "ServerConnection"]

_CACHE_SIZE = 256
_CACHED_PDU_SIZE = 16  # reads and single writes; bulk writes rarely repeat
_IMMUTABLE_REQUESTS = frozenset(
    cls
    for cls in vars(_pdu).values()
    if isinstance(cls, type) and issubclass(cls, RequestPdu) and cls.__module__ == _pdu.__name__
)


class _Connection:
    __slots__ = ("_echo", "_expected_echo", "_framer", "_functions")

    def __init__(self, framer: Framer, *, functions: FunctionTable | None, echo: bool) -> None:
        if not isinstance(framer, Framer):
            raise LocalProtocolError(f"expected a Framer, got {type(framer).__name__}")
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

    def receive_data(self, data: bytes, now: float = 0.0) -> None:
        """Feed bytes that arrived at time *now* (seconds, monotonic).

        With ``echo=True`` the bytes this side sent and the line echoed back
        are removed first.
        """
        if self._expected_echo:
            data = self._strip_echo(data)
            if not data:
                return
        self._framer.receive_data(data, now)

    def _strip_echo(self, data: bytes) -> bytes:
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
        """Let silence up to *now* end or discard a partial frame."""
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
    *diagnostics*: the line's counters, updated for every frame seen.
    """

    __slots__ = ("_decoded", "_diagnostics", "_units")

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
        self._units = units
        self._diagnostics = diagnostics
        # Pollers send the same few requests over and over; decoded built-in
        # PDUs are immutable, so this connection keeps the recent ones.
        self._decoded: dict[bytes, RequestPdu] = {}

    def __repr__(self) -> str:
        return f"ServerConnection({self._framer!r})"

    def next_event(self) -> Request | FrameDropped | NeedData:
        """The next :class:`Request` or :class:`FrameDropped`, or :data:`NEED_DATA`."""
        framer = self._framer
        diagnostics = self._diagnostics
        units = self._units
        while True:
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
            ours = units is None or unit in units
            if kind:
                if kind == RESPONSE:
                    # Another server's answer on a shared line, unless it is
                    # addressed to us and reads as a request just as well.
                    framer.expect_response = False
                    if not ours or self._functions.request_length(pdu, 0, len(pdu)) != len(pdu):
                        continue
                else:
                    framer.expect_response = not ours and unit != 0
            if not ours:
                continue
            decoded = self._decoded.get(pdu)
            if decoded is None:
                decoded = self._functions.decode_request(pdu)
                if decoded.__class__ in _IMMUTABLE_REQUESTS and len(pdu) <= _CACHED_PDU_SIZE:
                    if len(self._decoded) >= _CACHE_SIZE:
                        self._decoded.clear()
                    self._decoded[pdu] = decoded
            return _make_request(decoded, unit, transaction_id)

    def send(self, response: Response) -> bytes:
        """Encode *response*; returns the bytes to write."""
        pdu = response.pdu
        framer = self._framer
        framer.expect_response = False
        if (
            pdu.__class__ is DiagnosticsResponse
            and pdu.sub_function == DiagnosticSubFunction.CHANGE_ASCII_INPUT_DELIMITER
            and isinstance(framer, AsciiFramer)
        ):
            framer.input_delimiter = pdu.data[0]
        return self._sent(framer.encode(response.unit, response.transaction_id, pdu.encode()))


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
        if _expects_response(request, serial):
            if key in self._pending:
                raise LocalProtocolError(f"a request with transaction id {key[0]} to unit {key[1]} is still pending")
            self._pending[key] = request
        return self._sent(self._framer.encode(request.unit, request.transaction_id, request.pdu.encode()))

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
        try:
            response = self._functions.decode_response(pdu)
        except Exception as error:  # noqa: BLE001 - RemoteProtocolError, or a custom decoder's bug
            del self._pending[(transaction_id, unit)]
            return FrameDropped(DropCause.MALFORMED, pdu, str(error))
        expected = request.pdu.function_code
        if response.function_code != expected:
            return FrameDropped(DropCause.UNEXPECTED, pdu, f"function {response.function_code} answers {expected}")
        if response.__class__ in (ReadCoilsResponse, ReadDiscreteInputsResponse):
            count: int = request.pdu.count  # type: ignore[attr-defined]
            values = response.values
            if len(values) < count or len(values) - count >= 8:
                del self._pending[(transaction_id, unit)]
                return FrameDropped(DropCause.MALFORMED, pdu, f"{len(values)} bits do not answer a read of {count}")
            response = type(response)(values[:count])
        del self._pending[(transaction_id, unit)]
        return _make_response(response, unit, transaction_id)
