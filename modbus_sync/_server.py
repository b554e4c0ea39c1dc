"""The machinery every blocking server shares: one selector loop, links, lifecycle.

Concurrency model
-----------------
Each server runs one :mod:`selectors` event loop in one thread (the thread
that calls :meth:`Server.serve_forever`, or a background thread from
:meth:`Server.start` and ``with server:``).  Every socket is non-blocking
and registered with the selector; a readable connection is read once, its
bytes go to its session (a :class:`modbus_core.ServerConnection` behind
the same ``Session`` the async servers use: role rules, trace hooks,
dispatcher or handler) with their arrival time, and every complete request
is answered at once, so that pipelined requests are all answered, in
order, with one ``send`` for the lot.  Timers (the core's
``next_deadline()``, idle connections, pauses of a ``RawReply``) live in
one heap, checked after each wake-up.

Why one loop rather than a thread per connection: Modbus requests are tiny
and the datastore answers in microseconds, so what counts is the overhead
per request.  A loop pays one ``select`` per wake-up and no thread switch
(threads contend for the GIL: with ten busy connections a
thread-per-connection server spends its time handing the GIL around); a
connection costs a few hundred bytes instead of a thread and its stack;
a thousand idle connections cost nothing per request.  Shutdown and
timeouts stay simple too: the loop owns all state, and other threads reach
it only through a self-pipe (a socket pair) and a queue of calls.

The price of one loop is that a handler that blocks stalls every
connection of its server.  A handler that waits on slow things (a gateway,
a database) is given ``handler_threads=N``: handlers then run on a pool of
*N* threads while the loop serves everyone else, and each connection still
gets its answers in order (one request of a connection at a time).  The
datastore (:class:`modbus_core.Device`) locks itself, so several servers,
handler threads and the application may share it.
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
from collections.abc import Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self

from modbus_anyio._handler import ConnectionInfo, Handler, HandlerResult, dispatcher_handler
from modbus_anyio._options import ServerOptions
from modbus_anyio._session import Session
from modbus_core import Framer, Request, ServerContext

from ._options import check_sync_context, check_sync_handler

__all__ = ["Link", "Server"]

logger = logging.getLogger(__name__)

Answer = ServerContext | Handler
"""What a server answers with: a datastore (the core's dispatcher, the fast path) or a handler."""

# A connection is not read while this much output waits for its client (it
# pipelines without reading its answers).
_HIGH_WATER = 256 * 1024


class _Timed(Protocol):
    timer_at: float | None
    closed: bool

    def on_timer(self, now: float) -> None: ...


class _Resume:
    """In a link's output queue: the raw reply before it is written; resume the session."""

    __slots__ = ()


_RESUME = _Resume()


class _PoolCall:
    """A handler call running on a handler thread.

    The session treats any object with ``__await__`` as an answer to wait
    for; this one is waited for by the loop (a callback when the thread is
    done), never awaited.
    """

    __slots__ = ("future",)

    def __init__(self, future: Future[HandlerResult]) -> None:
        self.future = future

    def __await__(self) -> Generator[Any, None, HandlerResult]:  # pragma: no cover - never awaited
        raise TypeError("a handler thread's call is not awaitable")


class Link:
    """One conversation with a peer: a TCP or TLS connection, a UDP peer, the serial line.

    It owns the session (framing, rules, hooks, answering) and the output
    not yet written: bytes, pauses (floats) and resume markers of a
    ``RawReply``.  Subclasses say how bytes are written.
    """

    __slots__ = (
        "closed",
        "connected_at",
        "draining",
        "info",
        "interest",
        "last_activity",
        "out",
        "out_size",
        "reading_since",
        "reported",
        "resume_at",
        "server",
        "session",
        "timer_at",
        "waiting",
    )

    #: whether output may be joined into one write (streams yes, datagrams no)
    joins_writes: ClassVar[bool] = True

    def __init__(self, server: Server, info: ConnectionInfo, now: float) -> None:
        self.server = server
        self.info = info
        self.session: Session | None = None  # TLS: once the handshake told the client's role
        self.out: deque[bytes | float | _Resume] = deque()
        self.out_size = 0
        self.resume_at: float | None = None
        self.waiting = False  # a handler thread works on this link's request
        self.closed = False
        self.draining = False  # close once the output is written (EOF from the peer, or shutdown)
        self.connected_at = now
        self.last_activity = now
        self.reading_since = now  # when the selector last started watching for reads
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

    # -- state ----------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """A request is being answered (a handler thread, a paused raw reply)."""
        session = self.session
        return session is not None and session.blocked is not None

    @property
    def idle(self) -> bool:
        """Nothing to write, no request in the works."""
        return not self.out and not self.busy

    def wanted_events(self) -> int:
        """What the selector should watch for now."""
        events = 0
        if (
            not self.draining
            and self.session is not None
            and self.session.blocked is None  # what arrives meanwhile would only pile up
            and self.out_size < _HIGH_WATER
        ):
            events |= selectors.EVENT_READ
        if self.out and self.resume_at is None and self.out[0].__class__ is bytes:
            events |= selectors.EVENT_WRITE
        return events

    def start_session(self, session: Session) -> None:
        self.session = session
        self.info = session.info

    # -- reading --------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> None:
        """Bytes from the peer: through the session, answers out."""
        session = self.session
        assert session is not None
        self.last_activity = now
        out = session.receive(data, now)
        if out:
            self.write(out, now)
        if session.blocked is not None:
            self.unblock(now)
        # Only the core's deadline can have moved earlier (the idle one moved
        # later, and its timer reschedules itself when it fires).
        if session.next_deadline() is not None:
            self.reschedule()

    def unblock(self, now: float) -> None:
        """The session waits for an item: start it, or finish it at once."""
        session = self.session
        assert session is not None
        while not self.waiting and not self.closed and (blocked := session.blocked) is not None:
            if blocked.raw is not None:
                self.waiting = True  # until the resume marker is reached
                for part in blocked.raw.parts:
                    self.out.append(part if isinstance(part, bytes) else float(part))
                    if isinstance(part, bytes):
                        self.out_size += len(part)
                self.out.append(_RESUME)
                self.flush(now)
                return
            awaitable = blocked.awaitable
            if isinstance(awaitable, _PoolCall):
                self.waiting = True
                self.server._update_interest(self)
                future = awaitable.future
                future.add_done_callback(lambda done: self.server._call_soon_threadsafe(self._completed))
                return
            # A synchronous server cannot await: a handler or device that
            # returned an awaitable gets exception 04 (logged by the session).
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            error = TypeError(f"{awaitable!r} is awaitable: modbus_sync needs synchronous handlers and devices")
            self.write(session.resume(error), now)

    def _completed(self, now: float) -> None:
        """A handler thread finished this link's request (in the loop thread)."""
        session = self.session
        self.waiting = False
        if self.closed or session is None or session.blocked is None:
            return
        awaitable = session.blocked.awaitable
        assert isinstance(awaitable, _PoolCall)
        try:
            result: Any = awaitable.future.result()
        except Exception as error:  # noqa: BLE001 - the session answers 04 and logs it
            result = error
        self.write(session.resume(result), now)
        self.unblock(now)
        self.server._update_interest(self)
        self.after_output()
        self.reschedule()

    # -- writing --------------------------------------------------------------

    def write(self, data: bytes, now: float) -> None:
        """Write *data* now, or queue what the transport does not take."""
        if not data or self.closed:
            return
        if not self.out:
            try:
                written = self.write_some(data)
            except OSError as error:
                self.server._close_link(self, f"write failed: {error}")
                return
            if written == len(data):
                return
            data = data[written:]
        if self.out and self.joins_writes and self.out[-1].__class__ is bytes:
            self.out[-1] += data
        else:
            self.out.append(data)
        self.out_size += len(data)
        self.server._update_interest(self)

    def flush(self, now: float) -> None:
        """Write queued output until the transport pushes back or a pause begins."""
        out = self.out
        while out and self.resume_at is None and not self.closed:
            head = out[0]
            if head.__class__ is float:
                out.popleft()
                if head:
                    self.resume_at = now + head
                    self.reschedule()
                continue
            if head is _RESUME:
                out.popleft()
                self.waiting = False
                session = self.session
                assert session is not None
                more = session.resume(None)
                if more:
                    out.appendleft(more)
                    self.out_size += len(more)
                if session.blocked is not None:
                    self.unblock(now)
                continue
            try:
                written = self.write_some(head)  # type: ignore[arg-type]
            except OSError as error:
                self.server._close_link(self, f"write failed: {error}")
                return
            self.out_size -= written
            if written < len(head):  # type: ignore[arg-type]
                out[0] = head[written:]  # type: ignore[index]
                break
            out.popleft()
        self.server._update_interest(self)
        self.after_output()

    def after_output(self) -> None:
        if self.draining and self.idle and not self.closed:
            self.server._close_link(self, None)

    # -- timers ---------------------------------------------------------------

    def frame_deadline(self) -> float | None:
        """When the core's timer is due: a partial frame's timeout, or the silence that ends a frame.

        None while the link is not read (backpressure, a request in the
        works): a frame that stops arriving then is our doing, not the
        client's.  The partial-frame timeout runs again from when reading
        resumed.
        """
        session = self.session
        if session is None or not self.interest & selectors.EVENT_READ:
            return None
        deadline = session.next_deadline()
        frame_timeout = self.server.frame_timeout
        if deadline is not None and frame_timeout is not None:
            deadline = max(deadline, self.reading_since + frame_timeout)
        return deadline

    def next_deadline(self) -> float | None:
        deadline = self.frame_deadline()
        if self.resume_at is not None and (deadline is None or self.resume_at < deadline):
            deadline = self.resume_at
        idle_timeout = self.server.idle_timeout
        if idle_timeout is not None:
            idle_deadline = self.last_activity + idle_timeout
            if deadline is None or idle_deadline < deadline:
                deadline = idle_deadline
        return deadline

    def reschedule(self) -> None:
        deadline = self.next_deadline()
        if deadline is not None and (self.timer_at is None or deadline < self.timer_at):
            self.timer_at = deadline
            self.server._call_at(deadline, self)

    def on_timer(self, now: float) -> None:
        if self.resume_at is not None and now >= self.resume_at:
            self.resume_at = None
            self.flush(now)
            if self.closed:
                return
        session = self.session
        frame_deadline = self.frame_deadline()
        if session is not None and frame_deadline is not None and now >= frame_deadline:
            self.write(session.timeout(now), now)  # RemoteProtocolError: a partial frame stalled
            if session.blocked is not None:
                self.unblock(now)
            if self.closed:
                return
        idle_timeout = self.server.idle_timeout
        if (
            idle_timeout is not None
            and now >= self.last_activity + idle_timeout
            and self.idle
            and (session is None or session.next_deadline() is None)  # a frame's own timeout governs
        ):
            self.server._idle_expired(self, idle_timeout)
            return
        self.reschedule()


class _Later:
    """A one-off timer (reopening a serial port, resuming accept, a handshake deadline)."""

    __slots__ = ("action", "closed", "timer_at")

    def __init__(self, action: Callable[[float], None]) -> None:
        self.action = action
        self.closed = False
        self.timer_at: float | None = None

    def on_timer(self, now: float) -> None:
        self.action(now)


class Server(ServerOptions):
    """What the TCP, TLS, UDP and serial servers share: options, the loop, the lifecycle.

    A server serves once: :meth:`serve_forever` (blocking), or :meth:`start`
    / ``with server:`` (in a background thread); :meth:`shutdown`, from any
    thread, ends it.  Not instantiated directly: see :class:`TcpServer`,
    :class:`TlsServer`, :class:`UdpServer` and :class:`SerialServer`, and
    :class:`TcpServer` for the options every server takes.
    """

    def __init__(self, answer: Answer, *, handler_threads: int = 0, **options: Any) -> None:
        # What a blocking server cannot do, refused before the common checks.
        for hook_name in ("trace_packet", "trace_pdu", "trace_connect"):
            if inspect.iscoroutinefunction(options.get(hook_name)):
                raise TypeError(f"{hook_name} is a coroutine function: modbus_sync calls hooks synchronously")
        if isinstance(answer, ServerContext):
            check_sync_context(answer)
        else:
            check_sync_handler(answer)
        super().__init__(answer, **options)
        if isinstance(handler_threads, bool) or not isinstance(handler_threads, int) or handler_threads < 0:
            raise ValueError(f"handler_threads must be an integer >= 0, got {handler_threads!r}")
        self.handler_threads = handler_threads
        self.idle_timeout: float | None = None
        self.frame_timeout: float | None = None

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

        # Loop state, touched only by the loop thread (but _calls and the wake-up socket).
        self._selector: selectors.BaseSelector | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._calls: deque[Callable[[float], None]] = deque()
        self._timers: list[tuple[float, int, _Timed]] = []
        self._timer_seq = 0
        self._links: dict[int, Link] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._draining = False

    # -- public surface -------------------------------------------------------

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} serving={self.serving} connections={len(self._links)}>"

    @property
    def serving(self) -> bool:
        """True between listening and the end of :meth:`serve_forever`."""
        return self._listening.is_set() and not self._stopped.is_set()

    @property
    def listening(self) -> bool:
        """The same as :attr:`serving` (the name the async servers use)."""
        return self.serving

    @property
    def connections(self) -> list[ConnectionInfo]:
        """The open connections (TCP/TLS clients, UDP peers heard lately, the serial line)."""
        return [link.info for link in list(self._links.values()) if not link.closed and link.session is not None]

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
        """Open the listener or port (errors raise here) and serve in a background thread."""
        with self._lock:
            if self._claimed or self._thread is not None:
                raise RuntimeError(f"{self!r} already served: a server serves once, create a new one")
            self.open()
            self._thread = threading.Thread(target=self._serve_in_thread, name=f"modbus_sync {self.name}", daemon=True)
            self._thread.start()
        self._listening.wait()
        return self

    def _serve_in_thread(self) -> None:
        try:
            self.serve_forever()
        except BaseException as error:
            self._error = error
            logger.exception("%s failed", self.name)
            self._listening.set()

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop serving and return once the server is down (callable from any thread).

        Requests already received are answered (within *shutdown_timeout*),
        then listeners and connections close.  Called in the thread that
        serves (from a handler, a hook or a signal handler), it only asks
        the loop to stop, which it does as soon as control returns to it.
        *timeout*: stop waiting after that many seconds (the server still
        stops).  Idempotent.
        """
        if not self._request_stop():
            return
        self._stopped.wait(timeout)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _request_stop(self) -> bool:
        """Ask the loop to stop without waiting; whether :meth:`shutdown` can wait for it."""
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
            raise RuntimeError(f"{self.name} failed while serving") from self._error

    # -- opening --------------------------------------------------------------

    def open(self) -> None:
        """Bind listeners / open the port and prepare the loop (before serving; idempotent)."""
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
                self._wake_r, self._wake_w = wake_r, wake_w
                self._open_transport(selector)
            except BaseException:
                selector.close()
                wake_r.close()
                wake_w.close()
                self._selector = self._wake_r = self._wake_w = None
                raise
            if self.handler_threads:
                self._pool = ThreadPoolExecutor(self.handler_threads, thread_name_prefix=f"modbus_sync {self.name}")
            self._opened = True

    def _open_transport(self, selector: selectors.BaseSelector) -> None:
        raise NotImplementedError

    def _close_transport(self) -> None:
        """Stop accepting or reading new requests (idempotent)."""

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
        logger.info("%s: listening", self.name)
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
                timeout = 0.01 if timeout is None else min(timeout, 0.01)
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
                        self._close_link(item, reason(error))
                    else:
                        logger.exception("%s: timer failed", self.name)

    def _on_wake(self, mask: int, now: float) -> None:
        assert self._wake_r is not None
        with contextlib.suppress(BlockingIOError, InterruptedError):
            self._wake_r.recv(4096)

    def _wake(self) -> None:
        wake = self._wake_w
        if wake is not None:
            with contextlib.suppress(OSError):  # full (a wake-up is pending anyway) or closed
                wake.send(b"\0")

    def _call_soon_threadsafe(self, function: Callable[[float], None]) -> None:
        """Run ``function(now)`` in the loop thread."""
        self._calls.append(function)
        self._wake()

    def _call_at(self, when: float, item: _Timed) -> None:
        """Call ``item.on_timer(now)`` at *when*, unless its ``timer_at`` changed by then."""
        self._timer_seq += 1
        heapq.heappush(self._timers, (when, self._timer_seq, item))

    def _call_later(self, delay: float, action: Callable[[float], None]) -> _Later:
        """Run ``action(now)`` in the loop thread after *delay* seconds."""
        later = _Later(action)
        later.timer_at = time.monotonic() + delay
        self._call_at(later.timer_at, later)
        return later

    def _begin_drain(self) -> None:
        self._draining = True
        logger.info("%s: shutting down", self.name)
        self._close_transport()
        for link in list(self._links.values()):
            link.draining = True
            self._update_interest(link)
            link.after_output()

    def _drained(self) -> bool:
        return all(link.idle or link.closed for link in self._links.values())

    def _close_everything(self) -> None:
        self._close_transport()
        for link in list(self._links.values()):
            self._close_link(link, None)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self._selector is not None:
            self._selector.close()
        wake_r, wake_w = self._wake_r, self._wake_w
        self._wake_w = None
        for end in (wake_r, wake_w):
            if end is not None:
                end.close()
        logger.info("%s: stopped", self.name)

    # -- links ----------------------------------------------------------------

    def _new_session(self, framer: Framer, info: ConnectionInfo, *, echo: bool = False) -> Session:
        """The session of one connection (or UDP peer, or serial line)."""
        connection = self._connection(framer, echo=echo)
        dispatcher = self.dispatcher
        handler = self.handler
        if self.handler_threads:
            handler = self._pooled(handler if handler is not None else dispatcher_handler(dispatcher))  # type: ignore[arg-type]
            dispatcher = None
        policy = getattr(self, "policy", None)
        return Session(connection, info, dispatcher=dispatcher, handler=handler, policy=policy, hooks=self.hooks)

    def _pooled(self, handler: Handler) -> Handler:
        def pooled(request: Request, info: ConnectionInfo) -> _PoolCall:
            pool = self._pool
            if pool is None:
                raise RuntimeError("the server is not serving")
            return _PoolCall(pool.submit(handler, request, info))  # type: ignore[arg-type]

        return pooled

    def _add_link(self, link: Link, *, report: bool = True) -> None:
        """Start watching *link*; *report*: it is connected now (TLS reports after its handshake)."""
        self._links[id(link)] = link
        self._update_interest(link)
        link.reschedule()
        if report:
            self._report_connected(link)

    def _report_connected(self, link: Link) -> None:
        link.reported = True
        self.hooks.connected(True, link.info)

    def _update_interest(self, link: Link) -> None:
        """Register what the selector should watch for *link*."""
        fileobj = link.fileobj()
        if fileobj is None or link.closed or self._selector is None:
            return
        events = link.wanted_events()
        if events == link.interest:
            return
        resumed = events & selectors.EVENT_READ and not link.interest & selectors.EVENT_READ
        if link.interest == 0:
            self._selector.register(fileobj, events, link.on_ready)
        elif events == 0:
            self._selector.unregister(fileobj)
        else:
            self._selector.modify(fileobj, events, link.on_ready)
        link.interest = events
        if resumed:
            link.reading_since = time.monotonic()
            link.reschedule()

    def _close_link(self, link: Link, why: str | None) -> None:
        """Close *link*; *why* (logged) when it was not a normal end."""
        if link.closed:
            return
        link.closed = True
        fileobj = link.fileobj()
        if link.interest and fileobj is not None and self._selector is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(fileobj)
        link.interest = 0
        self._links.pop(id(link), None)
        if why:
            logger.info("%s: %s: closing: %s", self.name, link.info.peer, why)
        link.close_transport()
        if link.reported:
            self.hooks.connected(False, link.info)

    def _idle_expired(self, link: Link, idle_timeout: float) -> None:
        self._close_link(link, f"idle for {idle_timeout:.1f} s")


def reason(error: BaseException) -> str:
    """A one-line account of *error* for logs."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
