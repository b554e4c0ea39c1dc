"""The machinery every blocking server shares: one selector loop, links, lifecycle.

Concurrency model
-----------------
Each server runs one :mod:`selectors` event loop in one thread (the thread
that calls :meth:`serve_forever`, or a background thread from
:meth:`start` and ``with server:``).  Every socket is non-blocking and
registered with the selector; a readable connection is read once, its bytes
go to its :class:`modbus_core.ServerConnection` with the arrival time, and
every complete request is answered at once, so that pipelined requests are
all answered, in order, with one ``send`` for the lot.  Timers (the core's
``next_deadline()``, idle connections, pauses of a :class:`RawReply`) live
in one heap, checked after each wake-up.

Why one loop rather than a thread per connection: Modbus requests are tiny
and the datastore answers in microseconds, so the cost that matters is the
per-request overhead.  A loop pays one ``select`` per wake-up and no thread
switches (threads contend for the GIL: with ten busy connections a
thread-per-connection server spends its time handing the GIL around), a
connection costs a few hundred bytes instead of a thread stack, and a
thousand idle connections cost nothing per request.  Shutdown and timeouts
are simple too: the loop owns all state, and other threads talk to it only
through a self-pipe (a socket pair) and a queue of calls.

The price of one loop is that a handler that blocks stalls every
connection of its server.  A handler that talks to slow things (a gateway,
a database) is given ``handler_threads=N``: handlers then run on a pool of
*N* threads, each connection still gets its answers in order (one request
of a connection at a time), and the loop keeps serving the others.  The
datastore (:class:`modbus_core.Device`) locks itself, so several servers or
handler threads may share it.
"""

from __future__ import annotations

import contextlib
import heapq
import inspect
import logging
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Container, Iterable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self

from modbus_anyio._handler import ConnectionInfo, Handler, RawReply
from modbus_anyio._security import RolePolicy
from modbus_anyio.compat import as_identity
from modbus_core import (
    NEED_DATA,
    CustomFunction,
    DeviceIdentity,
    Dispatcher,
    ExceptionCode,
    FrameDropped,
    Framer,
    FunctionTable,
    ModbusExceptionError,
    Request,
    Response,
    ServerConnection,
    ServerContext,
    ServerDiagnostics,
)

from ._options import (
    check_sync_context,
    check_sync_handler,
    framer_factory,
    framer_name,
    function_table,
    positive_or_none,
)

__all__ = ["Link", "Server", "TracePacket", "TracePdu", "TraceConnect"]

logger = logging.getLogger(__name__)

TracePacket = Callable[[bool, bytes], bytes]
"""``trace_packet(sending, data) -> data``: sees (and may replace) the bytes of every read and write."""
TracePdu = Callable[[bool, Any], Any]
"""``trace_pdu(sending, event) -> event``: sees (and may replace) each :class:`Request` and :class:`Response`."""
TraceConnect = Callable[[bool], object]
"""``trace_connect(connected)``: called when a client connects (True) and disconnects (False)."""

# A connection stops being read while this much output waits for the
# client (it pipelines without reading its answers), or this many requests
# wait for a handler thread.
_HIGH_WATER = 256 * 1024
_MAX_QUEUED = 64
_READ_SIZE = 65536


class _Timed(Protocol):
    timer_at: float | None
    closed: bool

    def on_timer(self, now: float) -> None: ...


def _call_hook(hook: Callable[..., object], *args: object) -> None:
    try:
        hook(*args)
    except Exception:
        logger.exception("%s raised", getattr(hook, "__qualname__", hook))


class Link:
    """One conversation with a peer: a TCP or TLS connection, a UDP peer, a serial line.

    It owns the :class:`ServerConnection`, the :class:`ConnectionInfo`
    handlers see, and the output waiting to be written (bytes, and pauses
    from a :class:`RawReply`).  Subclasses say how bytes are written.
    """

    __slots__ = (
        "busy",
        "closed",
        "conn",
        "connected_at",
        "draining",
        "info",
        "interest",
        "last_request",
        "out",
        "out_size",
        "queue",
        "reported",
        "resume_at",
        "server",
        "timer_at",
    )

    #: whether queued responses may be joined into one write (streams yes, datagrams no)
    joins_writes: ClassVar[bool] = True

    def __init__(self, server: Server, conn: ServerConnection, info: ConnectionInfo, now: float) -> None:
        self.server = server
        self.conn = conn
        self.info = info
        self.out: deque[bytes | float] = deque()
        self.out_size = 0
        self.resume_at: float | None = None
        self.queue: deque[Request] = deque()
        self.busy = False
        self.closed = False
        self.draining = False  # close once the output is written (EOF from the peer, or shutdown)
        self.connected_at = now
        self.last_request = now
        self.timer_at: float | None = None
        self.interest = 0
        self.reported = False  # trace_connect(True) was called

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.info.peer} #{self.info.connection_id}>"

    # -- to implement -------------------------------------------------------

    def write_some(self, data: bytes) -> int:
        """Write what the transport takes now; the count written (0: try when writable)."""
        raise NotImplementedError

    def fileobj(self) -> Any:
        """What the selector watches for this link, or None (not watched)."""
        return None

    def close_transport(self) -> None:
        """Release the socket or port."""

    def on_ready(self, mask: int, now: float) -> None:
        """The selector callback: *mask* says readable and/or writable."""

    def wanted_events(self) -> int:
        """What the selector should watch for now."""
        events = 0
        if self.server.wants_read(self):
            events |= selectors.EVENT_READ
        if self.out and self.resume_at is None:
            events |= selectors.EVENT_WRITE
        return events

    @property
    def idle(self) -> bool:
        """Nothing to write, no request in the works."""
        return not self.out and not self.busy and not self.queue

    # -- reading --------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> None:
        """Bytes from the peer: hand them to the core and answer what they complete."""
        server = self.server
        if server.trace_packet is not None:
            data = server.trace_packet(False, data)
        self.conn.receive_data(data, now)
        self.process(now)

    def process(self, now: float) -> None:
        """Answer every complete request the connection holds."""
        conn = self.conn
        server = self.server
        respond = server.respond_now
        chunks: list[bytes | float] = []
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                break
            if event.__class__ is FrameDropped:
                logger.debug("%s: dropped %s", self, event.reason)
                continue
            self.last_request = now
            if respond is None:
                self.enqueue(event, now)  # type: ignore[arg-type]
                continue
            reply = respond(event, self.info)  # type: ignore[arg-type]
            if reply is not None:
                server.encode_reply(self, reply, chunks)
        if chunks:
            self.write(chunks, now)
        self.reschedule()

    # -- handler threads --------------------------------------------------------

    def enqueue(self, request: Request, now: float) -> None:
        if self.busy:
            self.queue.append(request)
            if len(self.queue) >= _MAX_QUEUED:
                self.server.update_interest(self)
        else:
            self.busy = True
            self.server.submit(self, request)

    def completed(self, reply: Response | RawReply | None, now: float) -> None:
        """A handler thread answered this link's oldest request (in the loop thread)."""
        self.busy = False
        if self.closed:
            return
        if reply is not None:
            chunks: list[bytes | float] = []
            self.server.encode_reply(self, reply, chunks)
            self.write(chunks, now)
        if self.queue and not self.closed:
            self.busy = True
            self.server.submit(self, self.queue.popleft())
            if len(self.queue) == _MAX_QUEUED - 1:
                self.server.update_interest(self)
        self.after_output(now)

    # -- writing --------------------------------------------------------------

    def write(self, chunks: list[bytes | float], now: float) -> None:
        """Queue *chunks* (bytes, and float pauses) and write what can be written now."""
        out = self.out
        if not out and self.joins_writes and len(chunks) == 1 and chunks[0].__class__ is bytes:
            # The hot path: one answer, nothing waiting: write it straight away.
            data: bytes = chunks[0]
            try:
                written = self.write_some(data)
            except OSError as error:
                self.server.close_link(self, f"write failed: {error}")
                return
            if written == len(data):
                return
            out.append(data[written:])
            self.out_size += len(data) - written
            self.server.update_interest(self)
            return
        if self.joins_writes:
            # Consecutive bytes become one write.
            pending: list[bytes] = []
            for chunk in chunks:
                if chunk.__class__ is bytes:
                    pending.append(chunk)
                    continue
                if pending:
                    out.append(b"".join(pending))
                    pending = []
                out.append(chunk)
            if pending:
                out.append(b"".join(pending))
        else:
            out.extend(chunks)
        self.out_size += sum(len(chunk) for chunk in chunks if chunk.__class__ is bytes)
        self.flush(now)

    def flush(self, now: float) -> None:
        """Write queued output until the transport pushes back or a pause begins."""
        out = self.out
        while out and self.resume_at is None:
            head = out[0]
            if head.__class__ is not bytes:
                out.popleft()
                if head:
                    self.resume_at = now + head  # type: ignore[operator]
                    self.reschedule()
                continue
            try:
                written = self.write_some(head)
            except OSError as error:
                self.server.close_link(self, f"write failed: {error}")
                return
            self.out_size -= written
            if written < len(head):
                out[0] = head[written:]
                break
            out.popleft()
        self.server.update_interest(self)
        self.after_output(now)

    def after_output(self, now: float) -> None:
        if self.draining and self.idle and not self.closed:
            self.server.close_link(self, None)

    # -- timers ---------------------------------------------------------------

    def next_deadline(self) -> float | None:
        deadlines = []
        core = self.conn.next_deadline()
        if core is not None:
            deadlines.append(core)
        if self.resume_at is not None:
            deadlines.append(self.resume_at)
        idle_timeout = self.server.idle_timeout
        if idle_timeout is not None:
            deadlines.append(self.last_request + idle_timeout)
        return min(deadlines) if deadlines else None

    def reschedule(self) -> None:
        deadline = self.next_deadline()
        if deadline is not None and (self.timer_at is None or deadline < self.timer_at):
            self.timer_at = deadline
            self.server.call_at(deadline, self)

    def on_timer(self, now: float) -> None:
        if self.resume_at is not None and now >= self.resume_at:
            self.resume_at = None
            self.flush(now)
            if self.closed:
                return
        core = self.conn.next_deadline()
        if core is not None and now >= core:
            self.conn.handle_timeout(now)  # RemoteProtocolError: a partial frame timed out
            self.process(now)
            if self.closed:
                return
        idle_timeout = self.server.idle_timeout
        if (
            idle_timeout is not None
            and now >= self.last_request + idle_timeout
            and self.idle
            and self.conn.next_deadline() is None  # a frame is arriving: its own timeout governs
        ):
            self.server.idle_expired(self, idle_timeout)
            return
        self.reschedule()


class _Later:
    """A one-off timer (reopening a serial port, resuming accept)."""

    __slots__ = ("action", "closed", "timer_at")

    def __init__(self, action: Callable[[float], None]) -> None:
        self.action = action
        self.closed = False
        self.timer_at: float | None = None

    def on_timer(self, now: float) -> None:
        self.action(now)


class Server:
    """What the TCP, TLS, UDP and serial servers share: options, the loop, the lifecycle.

    A server serves once: :meth:`serve_forever` (blocking), or :meth:`start`
    / ``with server:`` (in a background thread); :meth:`shutdown` from any
    thread ends it.
    """

    transport: ClassVar[str] = ""
    default_framer: ClassVar[str] = "socket"

    def __init__(
        self,
        context: ServerContext | Handler,
        *,
        name: str,
        identity: DeviceIdentity | Any,
        framer: object,
        serial_line: bool,
        broadcast: bool | None,
        ignore_missing_units: bool | None,
        functions: FunctionTable | None,
        custom_pdu: Iterable[CustomFunction] | None,
        trace_packet: TracePacket | None,
        trace_pdu: TracePdu | None,
        trace_connect: TraceConnect | None,
        idle_timeout: float | None,
        frame_timeout: float | None,
        handler_threads: int,
        shutdown_timeout: float,
        policy: RolePolicy | None = None,
        datagram: bool = False,
        baudrate: int = 19200,
        strict_timing: bool = False,
    ) -> None:
        self.name = str(name)
        self.diagnostics = ServerDiagnostics()
        self.functions = function_table(functions, custom_pdu)
        self.framer_name = framer_name(framer, self.default_framer)
        self.idle_timeout = positive_or_none("idle_timeout", idle_timeout)
        self.frame_timeout = positive_or_none("frame_timeout", frame_timeout)
        timeout = positive_or_none("shutdown_timeout", shutdown_timeout)
        if timeout is None:
            raise ValueError("shutdown_timeout must be a positive number of seconds")
        self.shutdown_timeout = timeout
        self._new_framer = framer_factory(
            self.framer_name,
            datagram=datagram,
            frame_timeout=self.frame_timeout,
            baudrate=baudrate,
            strict_timing=strict_timing,
        )
        for hook_name, hook in (
            ("trace_packet", trace_packet),
            ("trace_pdu", trace_pdu),
            ("trace_connect", trace_connect),
        ):
            if hook is not None and not callable(hook):
                raise TypeError(f"{hook_name} must be callable, got {type(hook).__name__}")
            if hook is not None and inspect.iscoroutinefunction(hook):
                raise TypeError(f"{hook_name} is a coroutine function: modbus_sync calls hooks synchronously")
        self.trace_packet = trace_packet
        self.trace_pdu = trace_pdu
        self.trace_connect = trace_connect
        if policy is not None and not isinstance(policy, RolePolicy):
            raise TypeError(f"policy must be a RolePolicy, got {type(policy).__name__}")
        self.policy = policy
        if isinstance(handler_threads, bool) or not isinstance(handler_threads, int) or handler_threads < 0:
            raise ValueError(f"handler_threads must be an integer >= 0, got {handler_threads!r}")
        self.handler_threads = handler_threads

        serial = self.new_framer().is_serial
        self.dispatcher: Dispatcher | None
        self.handler: Handler | None
        if isinstance(context, ServerContext):
            check_sync_context(context)
            self.dispatcher = Dispatcher(
                context,
                diagnostics=self.diagnostics,
                identity=as_identity(identity),
                serial=serial,
                broadcast=broadcast,
                ignore_missing_units=ignore_missing_units,
            )
            self.handler = None
        else:
            check_sync_handler(context)
            if identity is not None:
                as_identity(identity)  # checked, though a handler answers identification itself
            self.dispatcher = None
            self.handler = context
        # On a shared serial line, frames for units the context does not hold
        # are other servers' business: skip them (and their responses).
        self.units: Container[int] | None = (
            self.dispatcher
            if serial_line and self.dispatcher is not None and self.dispatcher.ignore_missing_units
            else None
        )
        # respond_now is None when requests go to handler threads.
        self.respond_now: Callable[[Request, ConnectionInfo], Response | RawReply | None] | None = (
            None if handler_threads else self.respond
        )

        # Lifecycle, guarded by _lock (re-entrant: shutdown() may run in a
        # signal handler that interrupted this very thread).
        self._lock = threading.RLock()
        self._stop_requested = False
        self._claimed = False  # serve_forever() has been called
        self._opened = False
        self._listening = threading.Event()
        self._stopped = threading.Event()
        self._loop_thread: int | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

        # Loop state, touched only by the loop thread (except _calls and the wake-up socket).
        self._selector: selectors.BaseSelector | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._calls: deque[Callable[[float], None]] = deque()
        self._timers: list[tuple[float, int, _Timed]] = []
        self._timer_seq = 0
        self._links: dict[int, Link] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._draining = False

    def __repr__(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        where = self.describe() if self._opened else ""
        return f"<{type(self).__name__}{name} {where or 'not open'}>"

    # -- public surface -------------------------------------------------------

    @property
    def serving(self) -> bool:
        """True between listening and the end of :meth:`serve_forever`."""
        return self._listening.is_set() and not self._stopped.is_set()

    @property
    def connections(self) -> list[ConnectionInfo]:
        """The open connections (TCP/TLS clients, UDP peers seen lately, the serial line)."""
        return [link.info for link in list(self._links.values()) if not link.closed]

    def new_framer(self) -> Framer:
        """A fresh framer of this server's kind (one per connection)."""
        return self._new_framer()

    def serve_forever(self) -> None:
        """Listen and serve until :meth:`shutdown`; blocks the calling thread.

        Errors opening the listener or port (address in use, no such
        device) are raised from here.  A server serves once: after
        :meth:`shutdown` (even one called before), this returns at once.
        """
        with self._lock:
            if self._claimed:
                raise RuntimeError(f"{self!r} already served: a server serves once, create a new one")
            self._claimed = True
            self._loop_thread = threading.get_ident()
            if self._stop_requested and not self._opened:
                self._listening.set()
                self._stopped.set()
                return
        try:
            if not self._opened:
                self.open()
            self._run()
        finally:
            try:
                self._close_everything()
            finally:
                self._stopped.set()

    def start(self) -> Self:
        """Open the listener (errors raise here) and serve in a background thread; returns self."""
        with self._lock:
            if self._claimed or self._thread is not None:
                raise RuntimeError(f"{self!r} already served: a server serves once, create a new one")
            self.open()
            self._thread = threading.Thread(target=self._serve_in_thread, name=f"modbus_sync {self}", daemon=True)
            self._thread.start()
        self._listening.wait()
        return self

    def _serve_in_thread(self) -> None:
        try:
            self.serve_forever()
        except BaseException as error:
            self._error = error
            logger.exception("%r failed", self)
            self._listening.set()

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop serving and return once the server is down (callable from any thread).

        Requests already received are answered (within ``shutdown_timeout``),
        then listeners and connections close.  Called in the thread that
        serves (from a handler, a hook or a signal handler), it only asks
        the loop to stop, and the loop stops as soon as control returns to
        it.  *timeout*: give up waiting after that many seconds (the server
        still stops).  Idempotent.
        """
        if not self.request_stop():
            return
        self._stopped.wait(timeout)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def request_stop(self) -> bool:
        """Ask the loop to stop, without waiting; whether :meth:`shutdown` could wait for it."""
        with self._lock:
            self._stop_requested = True
            opened = self._opened
            own_thread = self._loop_thread == threading.get_ident()
        if opened:
            self._wake()
        return opened and not own_thread

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.shutdown()
        if self._error is not None and exc is None:
            raise RuntimeError(f"{self!r} failed while serving") from self._error

    # -- opening --------------------------------------------------------------

    def open(self) -> None:
        """Bind listeners / open the port and prepare the loop (any thread, before serving)."""
        with self._lock:
            if self._opened:
                return
            selector = selectors.DefaultSelector()
            wake_r, wake_w = socket.socketpair()
            try:
                for end in (wake_r, wake_w):
                    end.setblocking(False)
                selector.register(wake_r, selectors.EVENT_READ, self._on_wake)
                self._selector = selector
                self._open_transport(selector)
            except BaseException:
                selector.close()
                wake_r.close()
                wake_w.close()
                self._selector = None
                raise
            self._wake_r, self._wake_w = wake_r, wake_w
            if self.handler_threads:
                self._pool = ThreadPoolExecutor(self.handler_threads, thread_name_prefix=f"modbus_sync {self.name}")
            self._opened = True

    def _open_transport(self, selector: selectors.BaseSelector) -> None:
        raise NotImplementedError

    def _close_transport(self) -> None:
        """Close listeners (the loop stops accepting)."""

    def _log_started(self) -> None:
        logger.info("%s serving on %s", self, self.describe())

    def describe(self) -> str:
        return ""

    # -- the loop -------------------------------------------------------------

    def _run(self) -> None:
        selector = self._selector
        assert selector is not None
        select = selector.select
        timers = self._timers
        calls = self._calls
        monotonic = time.monotonic
        drain_deadline = 0.0
        self._listening.set()
        self._log_started()
        while True:
            if self._stop_requested:
                if not self._draining:
                    self._begin_drain()
                    drain_deadline = monotonic() + self.shutdown_timeout
                if self._drained() or monotonic() >= drain_deadline:
                    break
            timeout: float | None = None
            if timers:
                timeout = max(0.0, timers[0][0] - monotonic())
            if self._draining:
                timeout = min(timeout if timeout is not None else 0.05, 0.05)
            events = select(timeout)
            now = monotonic()
            for key, mask in events:
                key.data(mask, now)
            while calls:
                calls.popleft()(now)
            while timers and timers[0][0] <= now:
                when, _, item = heapq.heappop(timers)
                if item.closed or item.timer_at != when:
                    continue  # stale: rescheduled or gone
                item.timer_at = None
                try:
                    item.on_timer(now)
                except Exception as error:
                    if isinstance(item, Link):
                        self.close_link(item, _reason(error))
                    else:
                        logger.exception("%r: timer failed", self)

    def _on_wake(self, mask: int, now: float) -> None:
        assert self._wake_r is not None
        with contextlib.suppress(BlockingIOError, InterruptedError):
            self._wake_r.recv(4096)

    def _wake(self) -> None:
        wake = self._wake_w
        if wake is not None:
            with contextlib.suppress(OSError):  # full (a wake-up is pending anyway) or closed
                wake.send(b"\0")

    def call_soon_threadsafe(self, function: Callable[[float], None]) -> None:
        """Run ``function(now)`` in the loop thread."""
        self._calls.append(function)
        self._wake()

    def call_at(self, when: float, item: _Timed) -> None:
        """Call ``item.on_timer(now)`` at *when*, unless its ``timer_at`` changed by then."""
        self._timer_seq += 1
        heapq.heappush(self._timers, (when, self._timer_seq, item))

    def call_later(self, delay: float, action: Callable[[float], None]) -> _Later:
        later = _Later(action)
        later.timer_at = time.monotonic() + delay
        self.call_at(later.timer_at, later)
        return later

    def _begin_drain(self) -> None:
        self._draining = True
        logger.info("%s shutting down", self)
        self._close_transport()
        now = time.monotonic()
        for link in list(self._links.values()):
            link.draining = True
            self.stop_reading(link)
            link.after_output(now)

    def stop_reading(self, link: Link) -> None:
        self.update_interest(link)

    def _drained(self) -> bool:
        return all(link.idle or link.closed for link in self._links.values())

    def _close_everything(self) -> None:
        self._close_transport()
        for link in list(self._links.values()):
            self.close_link(link, None)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self._selector is not None:
            self._selector.close()
        for end in (self._wake_r, self._wake_w):
            if end is not None:
                end.close()
        self._wake_w = None
        logger.info("%s stopped", self)

    # -- links ----------------------------------------------------------------

    def add_link(self, link: Link, *, report: bool = True) -> None:
        """Start watching *link*; *report*: it is connected now (TLS reports after its handshake)."""
        self._links[id(link)] = link
        self.update_interest(link)
        link.reschedule()
        if report:
            self.report_connected(link)

    def report_connected(self, link: Link) -> None:
        link.reported = True
        if self.trace_connect is not None:
            _call_hook(self.trace_connect, True)

    def wants_read(self, link: Link) -> bool:
        return not link.draining and link.out_size < _HIGH_WATER and len(link.queue) < _MAX_QUEUED

    def update_interest(self, link: Link) -> None:
        """Register what the selector should watch for *link*."""
        fileobj = link.fileobj()
        if fileobj is None or link.closed or self._selector is None:
            return
        events = link.wanted_events()
        if events == link.interest:
            return
        if link.interest == 0:
            self._selector.register(fileobj, events, link.on_ready)
        elif events == 0:
            self._selector.unregister(fileobj)
        else:
            self._selector.modify(fileobj, events, link.on_ready)
        link.interest = events

    def close_link(self, link: Link, reason: str | None) -> None:
        """Close *link*; *reason* (logged) when it was not a normal end."""
        if link.closed:
            return
        link.closed = True
        fileobj = link.fileobj()
        if link.interest and fileobj is not None and self._selector is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(fileobj)
        link.interest = 0
        self._links.pop(id(link), None)
        link.close_transport()
        if reason:
            logger.info("%s: closed: %s", link, reason)
        else:
            logger.debug("%s: closed", link)
        if link.reported and self.trace_connect is not None:
            _call_hook(self.trace_connect, False)

    def idle_expired(self, link: Link, idle_timeout: float) -> None:
        self.close_link(link, f"idle for {idle_timeout:g} s")

    def new_connection(self) -> ServerConnection:
        return ServerConnection(
            self.new_framer(),
            functions=self.functions,
            units=self.units,
            diagnostics=self.diagnostics,
        )

    # -- answering ------------------------------------------------------------

    def respond(self, request: Request, info: ConnectionInfo) -> Response | RawReply | None:
        """The answer to *request*: role rules, then the dispatcher or the handler."""
        if self.trace_pdu is not None:
            request = self.trace_pdu(False, request)
        policy = self.policy
        if policy is not None and not policy.allows(info.role, request):
            logger.info("%s: role %r may not %r", info.peer, info.role, request)
            return request.exception(ExceptionCode.ILLEGAL_FUNCTION)
        dispatcher = self.dispatcher
        result: object
        if dispatcher is not None:
            result = dispatcher.dispatch(request)
            if result is None or result.__class__ is Response:
                return result
        else:
            assert self.handler is not None
            try:
                result = self.handler(request, info)
            except Exception as error:  # noqa: BLE001 - a failing handler answers 04
                return _handler_failed(request, error)
        if result is None or isinstance(result, Response | RawReply):
            return result
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()
            logger.error(
                "%s returned an awaitable for %r: modbus_sync needs synchronous handlers and devices",
                self.handler or "a device",
                request,
            )
        else:
            logger.error("the handler returned %r for %r: expected a Response, a RawReply or None", result, request)
        return request.exception(ExceptionCode.SERVER_DEVICE_FAILURE)

    def encode_reply(self, link: Link, reply: Response | RawReply, chunks: list[bytes | float]) -> None:
        """Append the bytes (and pauses) of *reply* to *chunks*."""
        if isinstance(reply, Response):
            response: Response = reply
            if self.trace_pdu is not None:
                response = self.trace_pdu(True, reply)
                if response is None:
                    return
            data = link.conn.send(response)
            if self.trace_packet is not None:
                data = self.trace_packet(True, data)
            chunks.append(data)
            return
        for part in reply.parts:
            if isinstance(part, bytes):
                chunks.append(self.trace_packet(True, part) if self.trace_packet is not None else part)
            else:
                chunks.append(float(part))

    def submit(self, link: Link, request: Request) -> None:
        """Run the handler for *request* on a handler thread; the answer comes back to the loop."""
        assert self._pool is not None
        info = link.info

        def work() -> None:
            try:
                reply = self.respond(request, info)
            except Exception as error:  # noqa: BLE001 - a failing trace_pdu or policy
                reply = _handler_failed(request, error)
            self.call_soon_threadsafe(lambda now: link.completed(reply, now))

        try:
            self._pool.submit(work)
        except RuntimeError:  # the pool is shut down: the server is stopping
            link.busy = False


def _handler_failed(request: Request, error: Exception) -> Response:
    if isinstance(error, ModbusExceptionError):
        return request.exception(error.exception_code)
    logger.error("handler failed on %r", request, exc_info=error)
    return request.exception(ExceptionCode.SERVER_DEVICE_FAILURE)


def _reason(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
