"""Serial line diagnostics: counters, the communication event log and
listen-only mode, for functions 08, 11 and 12.

One :class:`ServerDiagnostics` belongs to one server or one serial line,
never to the process.  The connection counts what it sees on the line
(messages, communication errors, overruns); the dispatcher counts what the
server does with the messages addressed to it.
"""

from __future__ import annotations

from collections import deque

from ._events import DropCause
from ._pdu import DiagnosticSubFunction, ExceptionCode

__all__ = ["ServerDiagnostics"]

# Event log bytes (Modbus Application Protocol, function 12).
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

_COUNTERS = {
    DiagnosticSubFunction.RETURN_BUS_MESSAGE_COUNT: "bus_message_count",
    DiagnosticSubFunction.RETURN_BUS_COMMUNICATION_ERROR_COUNT: "bus_communication_error_count",
    DiagnosticSubFunction.RETURN_BUS_EXCEPTION_ERROR_COUNT: "bus_exception_error_count",
    DiagnosticSubFunction.RETURN_SERVER_MESSAGE_COUNT: "server_message_count",
    DiagnosticSubFunction.RETURN_SERVER_NO_RESPONSE_COUNT: "server_no_response_count",
    DiagnosticSubFunction.RETURN_SERVER_NAK_COUNT: "server_nak_count",
    DiagnosticSubFunction.RETURN_SERVER_BUSY_COUNT: "server_busy_count",
    DiagnosticSubFunction.RETURN_BUS_CHARACTER_OVERRUN_COUNT: "bus_character_overrun_count",
}


class ServerDiagnostics:
    """Counters, event log and listen-only flag of one server or serial line.

    Counters are plain integers that grow without bound; the protocol reads
    them modulo 65536, as 16-bit registers wrap.
    """

    __slots__ = (
        "_pending_flags",
        "bus_character_overrun_count",
        "bus_communication_error_count",
        "bus_exception_error_count",
        "bus_message_count",
        "busy",
        "diagnostic_register",
        "event_count",
        "events",
        "listen_only",
        "server_busy_count",
        "server_message_count",
        "server_nak_count",
        "server_no_response_count",
    )

    def __init__(self) -> None:
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
        self.events: deque[int] = deque(maxlen=EVENT_LOG_SIZE)  # newest first
        # Errors seen since the last receive event, reported in the next one.
        self._pending_flags = 0

    def __repr__(self) -> str:
        return (
            f"<ServerDiagnostics messages={self.bus_message_count} errors={self.bus_communication_error_count} "
            f"exceptions={self.bus_exception_error_count} listen_only={self.listen_only}>"
        )

    # -- what the connection reports ---------------------------------------

    def frame_received(self) -> None:
        """A frame with a good checksum was seen on the line (any unit)."""
        self.bus_message_count += 1

    def frame_dropped(self, cause: DropCause) -> None:
        """The connection threw bytes away."""
        if cause is DropCause.OVERRUN:
            self.bus_character_overrun_count += 1
            self._pending_flags |= RECEIVE_CHARACTER_OVERRUN
        if cause.is_communication_error:
            self.bus_communication_error_count += 1
            self._pending_flags |= RECEIVE_COMMUNICATION_ERROR

    # -- what the dispatcher reports ---------------------------------------

    def message_received(self, *, broadcast: bool) -> None:
        """A request addressed to this server (or broadcast) arrived."""
        self.server_message_count += 1
        event = RECEIVE_EVENT | self._pending_flags
        if broadcast:
            event |= RECEIVE_BROADCAST
        if self.listen_only:
            event |= RECEIVE_LISTEN_ONLY
        self._pending_flags = 0
        self.events.appendleft(event)

    def response_sent(self, exception_code: int | None, *, counts_as_event: bool = True) -> None:
        """The server answered (*exception_code* None for a normal response)."""
        event = SEND_EVENT
        if exception_code is None:
            if counts_as_event:
                self.event_count += 1
        else:
            self.exception_returned(exception_code)
            if exception_code <= ExceptionCode.ILLEGAL_DATA_VALUE:
                event |= SEND_READ_EXCEPTION
            elif exception_code == ExceptionCode.SERVER_DEVICE_FAILURE:
                event |= SEND_ABORT_EXCEPTION
            elif exception_code in (ExceptionCode.ACKNOWLEDGE, ExceptionCode.SERVER_DEVICE_BUSY):
                event |= SEND_BUSY_EXCEPTION
            elif exception_code == ExceptionCode.NEGATIVE_ACKNOWLEDGE:
                event |= SEND_NAK_EXCEPTION
        if self.listen_only:
            event |= SEND_LISTEN_ONLY
        self.events.appendleft(event)

    def exception_returned(self, exception_code: int) -> None:
        """Count an exception, also for a broadcast where nothing is sent."""
        self.bus_exception_error_count += 1
        if exception_code == ExceptionCode.NEGATIVE_ACKNOWLEDGE:
            self.server_nak_count += 1
        elif exception_code == ExceptionCode.SERVER_DEVICE_BUSY:
            self.server_busy_count += 1

    def no_response(self) -> None:
        """A message addressed to this server got no answer (broadcast, listen-only)."""
        self.server_no_response_count += 1

    def enter_listen_only(self) -> None:
        self.listen_only = True
        self.events.appendleft(ENTERED_LISTEN_ONLY)

    def restart(self, *, clear_log: bool) -> None:
        """Restart communications (08/01): counters cleared, listen-only left."""
        self.clear_counters()
        self.listen_only = False
        if clear_log:
            self.events.clear()
        self.events.appendleft(COMMUNICATION_RESTART)

    def clear_counters(self) -> None:
        """Clear every counter and the diagnostic register (08/0A)."""
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
        """Clear the overrun counter and error flag (08/14)."""
        self.bus_character_overrun_count = 0
        self._pending_flags &= ~RECEIVE_CHARACTER_OVERRUN

    def counter(self, sub_function: int) -> int:
        """The value a counter sub-function (0B..12) returns, as a 16-bit word."""
        return int(getattr(self, _COUNTERS[DiagnosticSubFunction(sub_function)])) & 0xFFFF

    @property
    def status(self) -> int:
        """The status word of functions 11 and 12: 0xFFFF while busy."""
        return 0xFFFF if self.busy else 0x0000

    def snapshot(self) -> dict[str, int | bool]:
        """Every counter by name, for status pages and logs."""
        result: dict[str, int | bool] = {name: int(getattr(self, name)) for name in _COUNTERS.values()}
        result["event_count"] = self.event_count
        result["diagnostic_register"] = self.diagnostic_register
        result["listen_only"] = self.listen_only
        return result
