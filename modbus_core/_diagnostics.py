"""Serial line diagnostics: counters, the communication event log, listen-only
mode and the ASCII input delimiter, for functions 08, 11 and 12.

One :class:`ServerDiagnostics` belongs to one server or one serial line,
never to the process.  Two parts of the core feed it, and an adapter gives
the same object to both::

    diagnostics = ServerDiagnostics()
    connection = ServerConnection(framer, diagnostics=diagnostics)
    dispatcher = Dispatcher(context, diagnostics=diagnostics)

The connection counts what it sees on the line (every frame, communication
errors, overruns: counters 0B, 0C and 12); the dispatcher counts what the
server does with the messages addressed to it (0D, 0E, 0F, 10, 11, the
event counter of function 11 and the event log of function 12).  An adapter
that answers a request without the dispatcher (exception 06 when it is too
busy, a refusal by its security rules) reports it with
:meth:`~ServerDiagnostics.message_received` and
:meth:`~ServerDiagnostics.response_sent` to keep the counters true.

Threads: the threads of a synchronous server may share one object.  The
per-message updates are single increments and deque appends, with no lock
(a lock would cost more than the rest of a read request): under the GIL
they do not interleave in practice, and at worst a counter misses an
increment, never anything worse.  Everything that changes or reads several
fields at once (restart, clears, listen-only, :meth:`comm_event_log`,
:meth:`snapshot`) holds the object's lock.
"""

from __future__ import annotations

import threading
from collections import deque

from ._errors import LocalProtocolError
from ._events import DropCause
from ._pdu import DiagnosticSubFunction, ExceptionCode

__all__ = ["ServerDiagnostics"]

# Event log bytes (Modbus Application Protocol V1.1b3, function 12).
RECEIVE_EVENT = 0x80
RECEIVE_COMMUNICATION_ERROR = 0x02
RECEIVE_CHARACTER_OVERRUN = 0x10
RECEIVE_LISTEN_ONLY = 0x20
RECEIVE_BROADCAST = 0x40
SEND_EVENT = 0x40
SEND_READ_EXCEPTION = 0x01  # exception codes 1-3
SEND_ABORT_EXCEPTION = 0x02  # exception code 4
SEND_BUSY_EXCEPTION = 0x04  # exception codes 5-6
SEND_NAK_EXCEPTION = 0x08  # exception code 7
SEND_LISTEN_ONLY = 0x20
ENTERED_LISTEN_ONLY = 0x04
COMMUNICATION_RESTART = 0x00

EVENT_LOG_SIZE = 64
DEFAULT_ASCII_DELIMITER = 0x0A  # LF

# The counter each sub-function 0B..12 returns, by attribute name.
_COUNTERS: dict[int, str] = {
    DiagnosticSubFunction.RETURN_BUS_MESSAGE_COUNT: "bus_message_count",
    DiagnosticSubFunction.RETURN_BUS_COMMUNICATION_ERROR_COUNT: "bus_communication_error_count",
    DiagnosticSubFunction.RETURN_BUS_EXCEPTION_ERROR_COUNT: "bus_exception_error_count",
    DiagnosticSubFunction.RETURN_SERVER_MESSAGE_COUNT: "server_message_count",
    DiagnosticSubFunction.RETURN_SERVER_NO_RESPONSE_COUNT: "server_no_response_count",
    DiagnosticSubFunction.RETURN_SERVER_NAK_COUNT: "server_nak_count",
    DiagnosticSubFunction.RETURN_SERVER_BUSY_COUNT: "server_busy_count",
    DiagnosticSubFunction.RETURN_BUS_CHARACTER_OVERRUN_COUNT: "bus_character_overrun_count",
}


def _send_event(exception_code: int) -> int:
    """The event byte of an exception response."""
    if exception_code <= ExceptionCode.ILLEGAL_DATA_VALUE:
        return SEND_EVENT | SEND_READ_EXCEPTION
    if exception_code == ExceptionCode.SERVER_DEVICE_FAILURE:
        return SEND_EVENT | SEND_ABORT_EXCEPTION
    if exception_code in (ExceptionCode.ACKNOWLEDGE, ExceptionCode.SERVER_DEVICE_BUSY):
        return SEND_EVENT | SEND_BUSY_EXCEPTION
    if exception_code == ExceptionCode.NEGATIVE_ACKNOWLEDGE:
        return SEND_EVENT | SEND_NAK_EXCEPTION
    return SEND_EVENT  # 08, 0A, 0B: the specification gives them no bit


class ServerDiagnostics:
    """Counters, event log, listen-only flag and ASCII delimiter of one server or line.

    Counters are plain integers that grow without bound; the protocol reads
    them modulo 65536, as 16-bit registers wrap.  *diagnostic_register* (the
    word 08/02 returns) and *busy* (the status word of functions 11 and 12
    reads 0xFFFF while it is set) are the application's to set.
    """

    __slots__ = (
        "_events",
        "_lock",
        "_pending_flags",
        "ascii_delimiter",
        "bus_character_overrun_count",
        "bus_communication_error_count",
        "bus_exception_error_count",
        "bus_message_count",
        "busy",
        "diagnostic_register",
        "event_count",
        "listen_only",
        "server_busy_count",
        "server_message_count",
        "server_nak_count",
        "server_no_response_count",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bus_message_count = 0
        self.bus_communication_error_count = 0
        self.bus_exception_error_count = 0
        self.server_message_count = 0
        self.server_no_response_count = 0
        self.server_nak_count = 0
        self.server_busy_count = 0
        self.bus_character_overrun_count = 0
        self.diagnostic_register = 0
        self.event_count = 0
        self.listen_only = False
        self.busy = False
        self.ascii_delimiter = DEFAULT_ASCII_DELIMITER
        self._events: deque[int] = deque(maxlen=EVENT_LOG_SIZE)  # newest first
        # Errors seen since the last receive event, reported in the next one.
        self._pending_flags = 0

    def __repr__(self) -> str:
        return (
            f"<ServerDiagnostics messages={self.bus_message_count} errors={self.bus_communication_error_count} "
            f"exceptions={self.bus_exception_error_count} listen_only={self.listen_only}>"
        )

    @property
    def events(self) -> bytes:
        """The communication event log (at most 64 bytes), newest first."""
        with self._lock:
            return bytes(self._events)

    # -- what the connection reports ---------------------------------------

    def frame_received(self) -> None:
        """A frame with a good checksum was seen on the line (for any unit)."""
        self.bus_message_count += 1

    def frame_dropped(self, cause: DropCause) -> None:
        """The connection threw bytes away for *cause*."""
        if cause is DropCause.OVERRUN:
            self.bus_character_overrun_count += 1
            self._pending_flags |= RECEIVE_CHARACTER_OVERRUN
        if cause.is_communication_error:
            self.bus_communication_error_count += 1
            self._pending_flags |= RECEIVE_COMMUNICATION_ERROR

    # -- what the dispatcher reports ---------------------------------------

    def message_received(self, *, broadcast: bool) -> bool:
        """A request addressed to this server (or broadcast) arrived.

        Logs a receive event and returns whether the server is in
        listen-only mode (so that the caller needs no second look).
        """
        self.server_message_count += 1
        event = RECEIVE_EVENT
        if self._pending_flags:
            event |= self._pending_flags
            self._pending_flags = 0
        if broadcast:
            event |= RECEIVE_BROADCAST
        listen_only = self.listen_only
        if listen_only:
            event |= RECEIVE_LISTEN_ONLY
        self._events.appendleft(event)
        return listen_only

    def response_sent(self, exception_code: int | None, *, counts_as_event: bool = True) -> None:
        """The server answered: *exception_code* is None for a normal response.

        A normal response counts as a completed message (function 11)
        unless *counts_as_event* is false (function 11 itself).
        """
        if exception_code is None:
            event = SEND_EVENT
            if counts_as_event:
                self.event_count += 1
        else:
            event = _send_event(exception_code)
            self._count_exception(exception_code)
        if self.listen_only:
            event |= SEND_LISTEN_ONLY
        self._events.appendleft(event)

    def _answered(self) -> None:
        """:meth:`message_received` and :meth:`response_sent` of a normal
        response to a request that was not broadcast, in one call (the
        dispatcher's remembered answers); only out of listen-only mode."""
        self.server_message_count += 1
        self.event_count += 1
        flags = self._pending_flags
        self._pending_flags = 0
        events = self._events
        events.appendleft(RECEIVE_EVENT | flags)
        events.appendleft(SEND_EVENT)

    def completed_silently(self, exception_code: int | None) -> None:
        """A message that gets no answer (a broadcast) completed, or failed with *exception_code*.

        Counts it like :meth:`response_sent` (the exception counters count
        broadcasts too) and as a message without a response, with no send
        event since nothing is sent.
        """
        if exception_code is None:
            self.event_count += 1
        else:
            self._count_exception(exception_code)
        self.server_no_response_count += 1

    def _count_exception(self, exception_code: int) -> None:
        self.bus_exception_error_count += 1
        if exception_code == ExceptionCode.NEGATIVE_ACKNOWLEDGE:
            self.server_nak_count += 1
        elif exception_code == ExceptionCode.SERVER_DEVICE_BUSY:
            self.server_busy_count += 1

    def no_response(self) -> None:
        """A message addressed to this server got no answer (listen-only mode, an ignored broadcast)."""
        self.server_no_response_count += 1

    # -- the state functions 08 change -------------------------------------

    def enter_listen_only(self) -> None:
        """08/04: from now on monitor only, until a restart (08/01)."""
        with self._lock:
            self.listen_only = True
            self._events.appendleft(ENTERED_LISTEN_ONLY)

    def restart(self, *, clear_log: bool) -> None:
        """08/01: counters cleared, listen-only mode left, a restart event logged.

        With *clear_log* (request data FF00) the event log is emptied
        before the restart event is added.
        """
        with self._lock:
            self._clear_counters()
            self.listen_only = False
            self._pending_flags = 0
            if clear_log:
                self._events.clear()
            self._events.appendleft(COMMUNICATION_RESTART)

    def clear_counters(self) -> None:
        """08/0A: clear every counter and the diagnostic register."""
        with self._lock:
            self._clear_counters()

    def _clear_counters(self) -> None:
        self.bus_message_count = 0
        self.bus_communication_error_count = 0
        self.bus_exception_error_count = 0
        self.server_message_count = 0
        self.server_no_response_count = 0
        self.server_nak_count = 0
        self.server_busy_count = 0
        self.bus_character_overrun_count = 0
        self.diagnostic_register = 0
        self.event_count = 0

    def clear_overrun(self) -> None:
        """08/14: clear the overrun counter and the overrun error flag."""
        with self._lock:
            self.bus_character_overrun_count = 0
            self._pending_flags &= ~RECEIVE_CHARACTER_OVERRUN

    def change_ascii_delimiter(self, delimiter: int) -> None:
        """08/03: *delimiter* ends ASCII frames instead of LF from now on."""
        if not isinstance(delimiter, int) or not 0 <= delimiter <= 0xFF:
            raise LocalProtocolError(f"the ASCII delimiter is a byte value, got {delimiter!r}")
        self.ascii_delimiter = delimiter

    # -- what functions 08, 11 and 12 read ---------------------------------

    def counter(self, sub_function: int) -> int:
        """The word a counter sub-function (0B..12) returns."""
        name = _COUNTERS.get(sub_function)
        if name is None:
            raise LocalProtocolError(f"sub-function {sub_function:#04x} is not a counter")
        return int(getattr(self, name)) & 0xFFFF

    @property
    def status(self) -> int:
        """The status word of functions 11 and 12: 0xFFFF while busy, else 0."""
        return 0xFFFF if self.busy else 0x0000

    def comm_event_log(self) -> tuple[int, int, int, bytes]:
        """What function 12 returns: status, event count, message count and the log, read at once."""
        with self._lock:
            return self.status, self.event_count & 0xFFFF, self.bus_message_count & 0xFFFF, bytes(self._events)

    def snapshot(self) -> dict[str, int | bool]:
        """Every counter by name, for status pages and logs."""
        with self._lock:
            result: dict[str, int | bool] = {name: int(getattr(self, name)) for name in _COUNTERS.values()}
            result["event_count"] = self.event_count
            result["diagnostic_register"] = self.diagnostic_register
            result["listen_only"] = self.listen_only
            result["ascii_delimiter"] = self.ascii_delimiter
            return result
