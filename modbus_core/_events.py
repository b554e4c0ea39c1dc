"""Events: what a connection hands to its user and accepts from it.

Events are symmetric: the :class:`Request` a client sends is, by value, the
:class:`Request` the server receives, and the same holds for
:class:`Response`.  Garbage becomes :class:`FrameDropped`, never an
exception, so a serial line full of noise never stops a server.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Final, final

from ._errors import LocalProtocolError
from ._pdu import ExceptionResponse, RequestPdu, ResponsePdu, _check_int, _unchecked

__all__ = ["NEED_DATA", "DropCause", "Event", "FrameDropped", "NeedData", "Request", "Response"]


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    """A request PDU addressed to *unit*.

    *transaction_id* is the MBAP transaction identifier; it is 0 on serial
    lines, which have none.
    """

    pdu: RequestPdu
    unit: int
    transaction_id: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.pdu, RequestPdu):
            raise LocalProtocolError(f"a Request carries a request PDU, got {type(self.pdu).__name__}")
        _check_int("unit", self.unit, 0, 0xFF)
        _check_int("transaction_id", self.transaction_id, 0, 0xFFFF)

    def reply(self, pdu: ResponsePdu) -> Response:
        """The :class:`Response` that answers this request with *pdu*."""
        if not isinstance(pdu, ResponsePdu):
            raise LocalProtocolError(f"a Response carries a response PDU, got {type(pdu).__name__}")
        return _make_response(pdu, self.unit, self.transaction_id)

    def exception(self, code: int) -> Response:
        """The :class:`Response` that answers this request with exception *code*.

        A request with function code 0x00 or 0x80 (a :class:`MalformedRequest`)
        has no exception response: :class:`LocalProtocolError`.
        """
        return _make_response(ExceptionResponse(self.pdu.function_code & 0x7F, code), self.unit, self.transaction_id)


@dataclasses.dataclass(frozen=True, slots=True)
class Response:
    """A response PDU (possibly an :class:`ExceptionResponse`) from *unit*."""

    pdu: ResponsePdu
    unit: int
    transaction_id: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.pdu, ResponsePdu):
            raise LocalProtocolError(f"a Response carries a response PDU, got {type(self.pdu).__name__}")
        _check_int("unit", self.unit, 0, 0xFF)
        _check_int("transaction_id", self.transaction_id, 0, 0xFFFF)

    @property
    def is_exception(self) -> bool:
        """True when the server answered with an exception code."""
        return isinstance(self.pdu, ExceptionResponse)


class DropCause(enum.Enum):
    """Why bytes were thrown away."""

    CHECKSUM = "bad CRC or LRC"
    TOO_SHORT = "frame too short"
    ENCODING = "bad ASCII encoding"
    OVERRUN = "frame too long"
    INCOMPLETE = "incomplete frame"
    TIMING = "inter-frame timing violated"
    GARBAGE = "bytes that start no frame"
    PROTOCOL_ID = "MBAP protocol id is not 0"
    MALFORMED = "malformed response"
    UNEXPECTED = "response to no pending request"

    @property
    def is_communication_error(self) -> bool:
        """Whether the diagnostics count it as a bus communication error."""
        return self in _COMMUNICATION_ERRORS


_COMMUNICATION_ERRORS = frozenset(
    {
        DropCause.CHECKSUM,
        DropCause.TOO_SHORT,
        DropCause.ENCODING,
        DropCause.OVERRUN,
        DropCause.INCOMPLETE,
        DropCause.TIMING,
        DropCause.GARBAGE,
    }
)


@dataclasses.dataclass(frozen=True, slots=True)
class FrameDropped:
    """Bytes that did not make a usable frame, and why."""

    cause: DropCause
    data: bytes = b""
    detail: str = ""

    @property
    def reason(self) -> str:
        """A sentence for logs."""
        return f"{self.cause.value}: {self.detail}" if self.detail else self.cause.value


@final
class NeedData:
    """The connection needs more bytes before it can produce an event."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"

    def __reduce__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()
"""The sentinel returned by ``next_event()`` when no event is ready."""

Event = Request | Response | FrameDropped
"""Everything ``next_event()`` returns, besides :data:`NEED_DATA`."""

_make_request = _unchecked(Request)
_make_response = _unchecked(Response)
_make_exception = _unchecked(ExceptionResponse)
