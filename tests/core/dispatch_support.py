"""Helpers shared by the dispatcher tests (public API only)."""

from __future__ import annotations

from typing import Any

from modbus_core import (
    NEED_DATA,
    ClientConnection,
    Dispatcher,
    ExceptionResponse,
    FrameDropped,
    Framer,
    FunctionTable,
    Request,
    RequestPdu,
    Response,
    ResponsePdu,
    RtuFramer,
    ServerConnection,
    ServerContext,
    ServerDiagnostics,
)

FUNCTIONS = FunctionTable()


def wire(hex_pdu: str) -> RequestPdu:
    """The request PDU a server decodes from these bytes (spaces allowed)."""
    return FUNCTIONS.decode_request(bytes.fromhex(hex_pdu))


def ask(dispatcher: Dispatcher, pdu: RequestPdu, unit: int = 1, transaction_id: int = 0) -> Response | None:
    """Dispatch synchronously; fails if the dispatcher returned an awaitable."""
    result = dispatcher.dispatch(Request(pdu, unit, transaction_id))
    assert result is None or isinstance(result, Response), f"expected a synchronous answer, got {result!r}"
    return result


def answer(dispatcher: Dispatcher, pdu: RequestPdu, unit: int = 1) -> ResponsePdu:
    """The response PDU, which must exist."""
    response = ask(dispatcher, pdu, unit)
    assert response is not None, f"{pdu!r} got no answer"
    assert response.unit == unit
    return response.pdu


def error_code(dispatcher: Dispatcher, pdu: RequestPdu, unit: int = 1) -> int:
    """The exception code of the answer, which must be an exception for *pdu*'s function."""
    response = answer(dispatcher, pdu, unit)
    assert isinstance(response, ExceptionResponse), f"expected an exception, got {response!r}"
    assert response.function_code == pdu.function_code & 0x7F
    return int(response.exception_code)


class SerialLine:
    """A server and a client on one simulated RTU line, for end-to-end tests.

    The server side is what an adapter runs: a :class:`ServerConnection`
    and a :class:`Dispatcher` sharing one :class:`ServerDiagnostics`.  Each
    message arrives one second after the previous one (a quiet line).
    """

    def __init__(self, context: ServerContext, *, framer: Framer | None = None, **options: Any) -> None:
        self.diagnostics = ServerDiagnostics()
        self.dispatcher = Dispatcher(context, diagnostics=self.diagnostics, serial=True, **options)
        self.server = ServerConnection(
            framer if framer is not None else RtuFramer(19200),
            units=self.dispatcher,
            diagnostics=self.diagnostics,
        )
        self.client = ClientConnection(RtuFramer(19200) if framer is None else type(framer)())
        self.now = 0.0
        self.dropped: list[FrameDropped] = []  # what the server's connection threw away

    def feed(self, data: bytes) -> list[bytes]:
        """Give the server bytes; return what it writes back (one item per response)."""
        self.now += 1.0
        self.server.receive_data(data, self.now)
        replies = self._serve()
        # Then the line stays quiet, as an adapter would notice at the deadline
        # (a frame whose length only silence tells, like 08/00, ends then).
        deadline = self.server.next_deadline()
        if deadline is not None and deadline < self.now + 0.5:
            self.server.handle_timeout(deadline)
            replies += self._serve()
        return replies

    def _serve(self) -> list[bytes]:
        replies: list[bytes] = []
        while True:
            event = self.server.next_event()
            if event is NEED_DATA:
                return replies
            if isinstance(event, FrameDropped):
                self.dropped.append(event)
            if isinstance(event, Request):
                response = self.dispatcher.dispatch(event)
                assert response is None or isinstance(response, Response)
                if response is not None:
                    replies.append(self.server.send(response))

    def request(self, pdu: RequestPdu, unit: int = 1) -> Response | None:
        """Send *pdu* from the client; the decoded answer, or None when the server stayed silent."""
        request = self.client.request(pdu, unit)
        replies = self.feed(self.client.send(request))
        if not replies:
            self.client.cancel(request)
            return None
        assert len(replies) == 1
        self.client.receive_data(replies[0], self.now)
        event = self.client.next_event()
        deadline = self.client.next_deadline()
        if event is NEED_DATA and deadline is not None:
            self.client.handle_timeout(deadline)
            event = self.client.next_event()
        assert isinstance(event, Response), event
        return event
