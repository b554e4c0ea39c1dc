"""One connection's Modbus work, without I/O: bytes in, bytes out.

A :class:`Session` joins a :class:`modbus_core.ServerConnection` to what a
server answers with (a dispatcher or a :data:`~modbus_anyio.Handler`), the
role policy of Modbus/TCP Security and the trace hooks.  Adapters feed it
the bytes they read with their arrival time and write what it returns::

    out = session.receive(data, now)
    if out:
        write(out)
    while session.blocked is not None:   # an async handler, or a RawReply with pauses
        ...                              # see Blocked; then session.resume(...)

Requests on one connection are executed and answered strictly in order:
when a handler returns an awaitable (or a :class:`RawReply` with pauses),
the session stops taking events from the connection until the adapter has
finished that item and called :meth:`Session.resume`; what arrives meanwhile
waits in the framer.

This module imports neither anyio nor asyncio, so a blocking server can
drive it too.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Container, Iterable
from typing import Any, TypeAlias

from modbus_core import (
    NEED_DATA,
    AsciiFramer,
    CustomFunction,
    Dispatcher,
    ExceptionCode,
    FrameDropped,
    Framer,
    FunctionTable,
    MbapFramer,
    ModbusExceptionError,
    Request,
    RequestPdu,
    Response,
    ResponsePdu,
    RtuFramer,
    ServerConnection,
    ServerDiagnostics,
)

from ._handler import ConnectionInfo, Handler, HandlerResult, RawReply
from ._security import RolePolicy

__all__ = [
    "Blocked",
    "FramerSpec",
    "Hooks",
    "Session",
    "build_framer",
    "function_table",
]

logger = logging.getLogger(__name__)

# -- framers ------------------------------------------------------------------

FramerSpec: TypeAlias = "str | Callable[[], Framer]"
"""``"socket"`` (alias ``"tls"``, ``"tcp"``), ``"rtu"``, ``"ascii"``, a
:class:`~modbus_anyio.FramerType`, or a callable returning a new
:class:`modbus_core.Framer` for each connection."""

_FRAMER_NAMES = {"socket": "socket", "tcp": "socket", "tls": "socket", "mbap": "socket", "rtu": "rtu", "ascii": "ascii"}


def framer_kind(spec: FramerSpec) -> str:
    """``"socket"``, ``"rtu"``, ``"ascii"`` or ``"custom"``; raises ValueError for unknown names."""
    if callable(spec):
        return "custom"
    name = _FRAMER_NAMES.get(str(getattr(spec, "value", spec)).lower())
    if name is None:
        raise ValueError(f"unknown framer {spec!r}: use 'socket', 'rtu', 'ascii' or a callable returning a Framer")
    return name


def build_framer(
    spec: FramerSpec,
    *,
    datagram: bool = False,
    frame_timeout: float | None = None,
    baudrate: int = 19200,
) -> Framer:
    """A new framer for one connection (or one serial line, or one UDP peer)."""
    kind = framer_kind(spec)
    if kind == "custom":
        framer = spec()  # type: ignore[operator]
        if not isinstance(framer, Framer):
            raise TypeError(f"the framer factory returned {type(framer).__name__}, not a modbus_core.Framer")
        return framer
    if kind == "socket":
        return MbapFramer(datagram=datagram, frame_timeout=None if datagram else frame_timeout)
    if kind == "rtu":
        return RtuFramer(baudrate, datagram=datagram)
    return AsciiFramer()


def function_table(
    functions: FunctionTable | None = None, custom_pdu: Iterable[CustomFunction] | None = None
) -> FunctionTable | None:
    """The function table from either option (they exclude each other)."""
    if functions is not None and custom_pdu is not None:
        raise ValueError("give either functions= or custom_pdu=, not both")
    if custom_pdu is not None:
        return FunctionTable(custom_pdu)
    if functions is not None and not isinstance(functions, FunctionTable):
        raise TypeError(f"functions must be a modbus_core.FunctionTable, got {type(functions).__name__}")
    return functions


# -- hooks --------------------------------------------------------------------

TracePacket: TypeAlias = Callable[..., bytes | None]
TracePdu: TypeAlias = Callable[..., Any]
TraceConnect: TypeAlias = Callable[..., object]


def _takes_info(hook: Callable[..., object], positional: int) -> bool:
    """Whether *hook* accepts one more positional argument than pymodbus gives (the ConnectionInfo)."""
    try:
        parameters = inspect.signature(hook).parameters.values()
    except (TypeError, ValueError):
        return False
    count = 0
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return True
        if parameter.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            count += 1
    return count > positional


class Hooks:
    """The trace hooks of a server, called with the ConnectionInfo when they take it.

    ``trace_packet(sending, data) -> data``, ``trace_pdu(sending, pdu) -> pdu``
    and ``trace_connect(connected)`` as in pymodbus; each may take one more
    positional argument, the :class:`~modbus_anyio.ConnectionInfo` (peer
    address, TLS role, connection id).
    """

    __slots__ = ("connect", "packet", "pdu")

    def __init__(
        self,
        trace_packet: TracePacket | None = None,
        trace_pdu: TracePdu | None = None,
        trace_connect: TraceConnect | None = None,
    ) -> None:
        self.packet = _adapt(trace_packet, 2)
        self.pdu = _adapt(trace_pdu, 2)
        self.connect = _adapt(trace_connect, 1)

    @property
    def any(self) -> bool:
        return self.packet is not None or self.pdu is not None or self.connect is not None

    def traced_packet(self, sending: bool, data: bytes, info: ConnectionInfo) -> bytes:
        """trace_packet's bytes (the same bytes when it returns None or raises, which is logged)."""
        assert self.packet is not None
        try:
            traced = self.packet(sending, data, info)
        except Exception:
            logger.exception("trace_packet raised: the bytes pass unchanged")
            return data
        if traced is None:
            return data
        if not isinstance(traced, bytes | bytearray | memoryview):
            logger.error("trace_packet returned %r, not bytes: the bytes pass unchanged", traced)
            return data
        return bytes(traced)

    def traced_pdu(self, sending: bool, pdu: Any, info: ConnectionInfo) -> Any:
        """trace_pdu's PDU (the same PDU when it returns None, a wrong type, or raises)."""
        assert self.pdu is not None
        try:
            traced = self.pdu(sending, pdu, info)
        except Exception:
            logger.exception("trace_pdu raised: the PDU passes unchanged")
            return pdu
        if traced is None or traced is pdu:
            return pdu
        expected = ResponsePdu if sending else RequestPdu
        if not isinstance(traced, expected):
            logger.error("trace_pdu returned %r, not a %s: the PDU passes unchanged", traced, expected.__name__)
            return pdu
        return traced

    def connected(self, connected: bool, info: ConnectionInfo) -> None:
        """Log a connection's start or end and call trace_connect, logging
        (never raising) what it raises."""
        if logger.isEnabledFor(logging.INFO):
            role = f", role {info.role!r}" if info.role is not None else ""
            change = "opened" if connected else "closed"
            logger.info("%s: connection #%d from %s%s %s", info.server, info.connection_id, info.peer, role, change)
        if self.connect is None:
            return
        try:
            self.connect(connected, info)
        except Exception:
            logger.exception("trace_connect raised")


def _adapt(hook: Callable[..., Any] | None, positional: int) -> Callable[..., Any] | None:
    if hook is None:
        return None
    if not callable(hook):
        raise TypeError(f"trace hooks must be callable, got {type(hook).__name__}")
    if _takes_info(hook, positional):
        return hook
    if positional == 1:
        return lambda connected, info: hook(connected)
    return lambda sending, value, info: hook(sending, value)


# -- the session --------------------------------------------------------------


class Blocked:
    """What stops a session until the adapter has done it.

    Either *awaitable* (an async handler's answer to *request*: await it and
    pass the result, or the exception, to :meth:`Session.resume`), or *raw*
    (a :class:`RawReply` with pauses: write its parts, sleeping for the
    numbers, then call ``resume(None)``).
    """

    __slots__ = ("awaitable", "raw", "request")

    def __init__(
        self, request: Request, awaitable: Awaitable[HandlerResult] | None = None, raw: RawReply | None = None
    ) -> None:
        self.request = request
        self.awaitable = awaitable
        self.raw = raw


Answer: TypeAlias = Callable[[Request], "HandlerResult | Awaitable[HandlerResult]"]


class Session:
    """The Modbus side of one connection; see the module documentation."""

    __slots__ = (
        "_answer",
        "_answer_now",
        "_dispatcher",
        "_feed",
        "_hooks",
        "_next_event",
        "_plain",
        "_policy",
        "_send",
        "blocked",
        "connection",
        "info",
        "next_deadline",
    )

    def __init__(
        self,
        connection: ServerConnection,
        info: ConnectionInfo,
        *,
        dispatcher: Dispatcher | None = None,
        handler: Handler | None = None,
        policy: RolePolicy | None = None,
        hooks: Hooks | None = None,
    ) -> None:
        self.connection = connection
        self.info = info
        if dispatcher is not None:
            self._answer: Answer = dispatcher.dispatch
        elif handler is not None:
            self._answer = lambda request: handler(request, info)
        else:
            raise ValueError("a session needs a dispatcher or a handler")
        self._policy = policy
        self._hooks = hooks if hooks is not None and (hooks.packet is not None or hooks.pdu is not None) else None
        self._plain = self._hooks is None and policy is None
        # With nothing between the connection and the dispatcher, a poller's
        # repeated request is answered without events (ServerConnection.answer_now).
        # A handler that keeps books around a dispatcher (the simulator's) may
        # do the same with a method _answer_now(connection, data, info).
        self._dispatcher = dispatcher if self._plain else None
        self._answer_now: Callable[[ServerConnection, bytes, ConnectionInfo], bytes | None] | None = (
            getattr(handler, "_answer_now", None) if self._plain else None
        )
        self.blocked: Blocked | None = None
        # When to call timeout() (the framer's partial-frame or silence
        # deadline): the framer's own method, one call on the hot path.
        self.next_deadline: Callable[[], float | None] = connection.framer.next_deadline
        # Bound once: receive() runs for every request.
        self._feed = connection.receive_data
        self._next_event = connection.next_event
        self._send = connection.send

    def __repr__(self) -> str:
        return f"<Session {self.info.transport} {self.info.peer} #{self.info.connection_id}>"

    # -- what adapters call ------------------------------------------------

    def receive(self, data: bytes, now: float) -> bytes:
        """Feed bytes that arrived at *now*; returns the bytes to write now.

        Raises :class:`modbus_core.RemoteProtocolError` when the stream
        cannot continue (close the connection).
        """
        if self._dispatcher is not None and self.blocked is None:
            out = self.connection.answer_now(data, self._dispatcher)
            if out is not None:
                return out
        elif self._answer_now is not None and self.blocked is None:
            out = self._answer_now(self.connection, data, self.info)
            if out is not None:
                return out
        elif not self._plain:
            hooks = self._hooks
            if hooks is not None and hooks.packet is not None:
                data = hooks.traced_packet(False, data, self.info)
        self._feed(data, now)
        if self.blocked is not None:
            return b""
        if not self._plain:
            return self._drain()
        # The hot path (a datastore or handler, no policy, no hooks): _drain,
        # inlined.  One request per read is the common case: no joining.
        next_event = self._next_event
        answer = self._answer
        send = self._send
        out = b""
        while True:
            event = next_event()
            if event.__class__ is Request:
                try:
                    result = answer(event)
                except Exception as error:  # noqa: BLE001 - a handler's failure answers 04
                    result = _failure(event, error)
                if result.__class__ is Response:
                    data = send(result)
                elif result is None:
                    continue
                else:
                    data = self._finish(event, result)
                    if self.blocked is not None:
                        return out + data if out else data
                out = out + data if out else data
            elif event is NEED_DATA:
                return out
            else:
                self._dropped(event)  # type: ignore[arg-type]

    def timeout(self, now: float) -> bytes:
        """Silence up to *now*: may complete or drop a frame (and raise for a
        stalled MBAP frame); returns bytes to write."""
        self.connection.handle_timeout(now)
        if self.blocked is not None:
            return b""
        return self._drain()

    def resume(self, result: HandlerResult | BaseException) -> bytes:
        """Finish the :attr:`blocked` item with *result* (the awaited answer,
        the exception it raised, or None after writing a RawReply); returns
        the bytes to write, which may leave the session blocked again."""
        blocked = self.blocked
        if blocked is None:
            raise RuntimeError("resume() without a blocked item")
        self.blocked = None
        out = b""
        if blocked.awaitable is not None:
            if isinstance(result, BaseException):
                result = _failure(blocked.request, result)
            out = self._finish(blocked.request, result)
            if self.blocked is not None:
                return out
        more = self._drain()
        return out + more if out else more

    # -- internals ---------------------------------------------------------

    def _drain(self) -> bytes:
        """Take events until the connection needs data or an item blocks."""
        next_event = self.connection.next_event
        send = self.connection.send
        answer = self._answer
        plain = self._plain
        first = b""
        rest: list[bytes] | None = None
        while True:
            event = next_event()
            if event.__class__ is Request:
                if plain:
                    try:
                        result = answer(event)
                    except Exception as error:  # noqa: BLE001 - a handler's failure answers 04
                        result = _failure(event, error)
                    if result is None:
                        continue
                    if result.__class__ is Response:
                        data = send(result)
                    else:
                        data = self._finish(event, result)
                        if self.blocked is not None:
                            if data:
                                (rest := rest or []).append(data)
                            break
                        if not data:
                            continue
                else:
                    data = self._process(event)
                    if self.blocked is not None:
                        if data:
                            (rest := rest or []).append(data)
                        break
                    if not data:
                        continue
                if not first:
                    first = data
                elif rest is None:
                    rest = [data]
                else:
                    rest.append(data)
            elif event is NEED_DATA:
                break
            else:
                self._dropped(event)  # type: ignore[arg-type]
        if rest is None:
            return first
        return first + b"".join(rest)

    def _process(self, request: Request) -> bytes:
        """A request through the role policy and the trace hooks (the slow path)."""
        hooks = self._hooks
        if hooks is not None and hooks.pdu is not None:
            pdu = hooks.traced_pdu(False, request.pdu, self.info)
            if pdu is not request.pdu:
                request = Request(pdu, request.unit, request.transaction_id)
        policy = self._policy
        if policy is not None and not policy.allows(self.info.role, request):
            logger.info(
                "%s: role %r may not make %s to unit %d: exception 01",
                self.info.peer,
                self.info.role,
                type(request.pdu).__name__,
                request.unit,
            )
            return self._finish(request, request.exception(ExceptionCode.ILLEGAL_FUNCTION))
        try:
            result = self._answer(request)
        except Exception as error:  # noqa: BLE001
            result = _failure(request, error)
        return self._finish(request, result)

    def _finish(self, request: Request, result: object) -> bytes:
        """Encode what answering *request* gave; block on awaitables and paused raw replies."""
        if result is None:
            return b""
        if isinstance(result, Response):
            hooks = self._hooks
            if hooks is not None and hooks.pdu is not None:
                pdu = hooks.traced_pdu(True, result.pdu, self.info)
                if pdu is not result.pdu:
                    result = Response(pdu, result.unit, result.transaction_id)
            data = self.connection.send(result)
            if hooks is not None and hooks.packet is not None:
                data = hooks.traced_packet(True, data, self.info)
            return data
        if isinstance(result, RawReply):
            if any(not isinstance(part, bytes) for part in result.parts):
                self.blocked = Blocked(request, raw=result)
                return b""
            data = result.data
            hooks = self._hooks
            if hooks is not None and hooks.packet is not None:
                data = hooks.traced_packet(True, data, self.info)
            return data
        if hasattr(result, "__await__"):
            self.blocked = Blocked(request, awaitable=result)
            return b""
        logger.error("the handler returned %r for %r: answering exception 04", result, request)
        return self._finish(request, request.exception(ExceptionCode.SERVER_DEVICE_FAILURE))

    def _dropped(self, event: FrameDropped) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s: dropped %d bytes: %s", self.info.peer, len(event.data), event.reason)


def _failure(request: Request, error: BaseException) -> Response:
    if isinstance(error, ModbusExceptionError):
        return request.exception(error.exception_code)
    logger.error("handler failed on %r", request, exc_info=error)
    return request.exception(ExceptionCode.SERVER_DEVICE_FAILURE)


def make_connection(
    framer: Framer,
    *,
    units: Container[int] | None,
    dispatcher: Dispatcher | None,
    serial_line: bool,
    functions: FunctionTable | None,
    echo: bool = False,
    diagnostics: ServerDiagnostics | None = None,
) -> ServerConnection:
    """The ServerConnection of one link, with the server's options.

    On a serial line that ignores missing units, frames for units the
    datastore lacks are other servers' business: they are skipped, and so
    are their answers.  With ``ignore_missing_units=False`` (a point-to-point
    line) they reach the dispatcher, which answers exception 0B.
    """
    if units is None and serial_line and dispatcher is not None and dispatcher.ignore_missing_units:
        units = dispatcher
    return ServerConnection(framer, units=units, functions=functions, echo=echo, diagnostics=diagnostics)
