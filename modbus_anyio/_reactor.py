"""The data path of plain TCP servers where ``select.epoll`` exists (Linux), on every loop.

One part of the server, the :class:`Reactor`, watches an epoll object of
its own that holds every connection: asyncio's loop calls it back when the
object is readable, and on trio one task waits for that.  It then reads,
answers and writes every ready connection without blocking, with no task
switch per request.  What may block, awaiting an async handler or pacing a
paused :class:`~modbus_anyio.RawReply`, runs in a task while the reactor
leaves that connection unread, so that requests are answered in order.  On
asyncio a connection has such a task only while it has such work (an idle
connection costs its objects alone, about half of what a task adds); on
trio, where connections come as anyio streams, each keeps a task for its
lifetime, which also closes its stream however the server ends.

Why: on trio a task per connection waking once per request answered 18-20k
requests/s on the benchmark machine (a canned answer through the same path
23k); on asyncio's own loop, a protocol per connection answered 22-27k.
The reactor answers about 30k on both (see ``benchmarks/RESULTS.md``).

Two things cost more in trio than they look: entering and leaving a
``CancelScope`` (about 10 us here) and a wait (a pass through the
scheduler).  So the connections' timers (idle, partial frame) have a task of
their own, whose scope :meth:`Reactor.schedule` moves, and the reactor's
wait needs none; and after a round the reactor looks again for ready
connections before it waits, a few rounds at most, so that other tasks still
get their turn.

Output that the socket does not take at once waits in the connection and
stops its reading until it is written: a client that does not read its
answers cannot make the server buffer without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
import select
import socket
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from ._server import _close_stream, _current_backend_is_asyncio, _fed, _Record, _unblock, event_loop_clock

if TYPE_CHECKING:
    from ._handler import ConnectionInfo
    from ._server import TcpServer
    from ._session import Session

__all__ = ["Reactor", "reactor_available"]

logger = logging.getLogger(__name__)

# A read of up to 960 bytes (a few frames: a Modbus/TCP frame has at most
# 260) is a bytes object glibc serves from its per-thread cache; a 64 KiB
# one took about 2 us more of user time a request (A/B, FC3 x 10).  Longer
# input takes more reads: epoll reports the socket again.
READ_SIZE = 960
ROUNDS_PER_WAIT = 8  # rounds of ready connections served between two waits
_READ = select.EPOLLIN if hasattr(select, "EPOLLIN") else 0
_WRITE = select.EPOLLOUT if hasattr(select, "EPOLLOUT") else 0
_BROKEN = (select.EPOLLERR | select.EPOLLHUP) if hasattr(select, "EPOLLERR") else 0
_IDLE, _FRAME = 0, 1  # what a timer is for


def reactor_available() -> bool:
    """True where the reactor can run (Linux: epoll)."""
    return hasattr(select, "epoll")


class Connection(_Record):
    """One plain TCP connection served by the :class:`Reactor`."""

    __slots__ = (
        "closing",
        "drained",
        "fd",
        "frame_timer",
        "idle_timer",
        "interest",
        "pending",
        "reactor",
        "sock",
        "stopping",
        "wakeup",
        "working",
    )

    def __init__(
        self, reactor: Reactor, sock: socket.socket, info: ConnectionInfo, session: Session, now: float, *, task: bool
    ) -> None:
        self.reactor = reactor
        self.sock = sock
        self.fd = sock.fileno()
        self.info = info
        self.session = session
        self.last_activity = now
        self.pending = b""  # output the socket has not taken yet
        self.interest = 0  # the epoll events asked for now
        self.closing = False
        self.stopping = False  # shutdown: read no more
        self.frame_timer = False
        self.idle_timer = False
        # With a task for its lifetime (task=True): set when that task has something to do.
        # Without (None): a task is started for blocked work, and the connection ends in close().
        self.wakeup: anyio.Event | None = anyio.Event() if task else None
        self.working = False  # a task does the blocked work now (connections without their own)
        self.drained: anyio.Event | None = None  # set when the pending output is written

    @property
    def busy(self) -> bool:
        return self.session.blocked is not None or bool(self.pending)

    # -- _Record ---------------------------------------------------------------

    def close(self) -> None:
        if self.closing:
            return
        self.closing = True
        self.reactor.forget(self)
        if self.drained is not None:
            self.drained.set()
        if self.wakeup is not None:
            self.wakeup.set()  # its task ends it
        else:
            self.reactor.release(self)

    def stop_reading(self) -> None:
        self.stopping = True
        self.update_interest()

    # -- what the reactor calls ----------------------------------------------

    def readable(self, now: float) -> None:
        try:
            data = self.sock.recv(READ_SIZE)
        except BlockingIOError:
            return
        except OSError as error:
            self.broken(error)
            return
        if not data:
            # The client is done sending.  Nothing is left to write: a
            # connection with output pending is not read.
            self.close()
            return
        self.last_activity = now
        out = _fed(self, self.session.receive, data, now)
        if out:
            self.write(out)
        self.after_session()

    def writable(self) -> None:
        data = self.pending
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            return
        except OSError as error:
            self.broken(error)
            return
        self.pending = data[sent:]
        if not self.pending:
            if self.drained is not None:
                self.drained.set()
                self.drained = None
            self.update_interest()

    def timer(self, kind: int, now: float) -> None:
        if kind == _IDLE:
            self.idle_timer = False
            timeout = self.reactor.idle_timeout
            assert timeout is not None
            if not self.busy and now - self.last_activity >= timeout:
                logger.info("%s: idle for %.1f s: closing", self.info.peer, timeout)
                self.close()
            else:
                self.idle_timer = True
                self.reactor.schedule(max(now, self.last_activity) + timeout, self, _IDLE)
            return
        self.frame_timer = False
        session = self.session
        deadline = session.next_deadline()
        if deadline is None or session.blocked is not None:
            return
        if now < deadline:
            self.frame_timer = True
            self.reactor.schedule(deadline, self, _FRAME)
            return
        out = _fed(self, session.timeout, now)
        if out:
            self.write(out)
        self.after_session()

    # -- internals ---------------------------------------------------------------

    def broken(self, error: OSError) -> None:
        logger.info("%s: connection error: %s", self.info.peer, error)
        self.close()

    def after_session(self) -> None:
        """After the session took input: hand blocked work to the task, or watch the frame deadline."""
        if self.closing:
            return
        if self.session.blocked is not None:
            self.update_interest()
            if self.wakeup is not None:
                self.wakeup.set()
            elif not self.working:
                self.working = True
                self.reactor.spawn(self.work)
        elif not self.frame_timer:
            deadline = self.session.next_deadline()
            if deadline is not None:
                self.frame_timer = True
                self.reactor.schedule(deadline, self, _FRAME)

    def write(self, data: bytes) -> None:
        if self.closing:
            return
        if self.pending:
            self.pending += data
            return
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as error:
            self.broken(error)
            return
        if sent < len(data):
            self.pending = data[sent:]
            self.update_interest()

    def update_interest(self) -> None:
        if self.closing:
            return
        if self.pending:
            wanted = _WRITE
        elif self.stopping or self.session.blocked is not None:
            wanted = 0
        else:
            wanted = _READ
        if wanted != self.interest:
            self.interest = wanted
            self.reactor.epoll.modify(self.fd, wanted)

    async def send(self, data: bytes) -> None:
        """Write *data* and wait until the socket took it (for the connection's task)."""
        if data:
            self.write(data)
        if self.pending and not self.closing:
            self.drained = drained = self.drained or anyio.Event()
            await drained.wait()
        if self.closing:
            raise anyio.BrokenResourceError

    async def run(self) -> None:
        """The connection's own task: do the session's blocked work until the connection closes."""
        while True:
            assert self.wakeup is not None
            await self.wakeup.wait()
            self.wakeup = anyio.Event()
            if self.closing or not await self._unblocked():
                return

    async def work(self) -> None:
        """Do the session's blocked work, then end (a connection without a task of its own)."""
        try:
            if not await self._unblocked():
                self.close()  # no task of its own to end it
        except Exception:
            # A bug costs this connection, not the reactor's task group.
            logger.exception("%s: a connection failed", self.info.server)
            self.close()
        finally:
            self.working = False

    async def _unblocked(self) -> bool:
        """Do the session's blocked work and read again; False once the connection is closed."""
        session = self.session
        try:
            while session.blocked is not None and not self.closing:
                out = await _unblock(session, self.send)
                if out:
                    self.write(out)
        except (anyio.BrokenResourceError, OSError):
            return False
        if self.closing:
            return False
        self.update_interest()
        self.after_session()
        return True


class Reactor:
    """Reads, answers and writes every ready connection of one server from one task."""

    def __init__(self, server: TcpServer) -> None:
        self.server = server
        self.idle_timeout = server.idle_timeout
        self.epoll = select.epoll()
        self.connections: dict[int, Connection] = {}
        self.clock = event_loop_clock()
        self._timers: list[tuple[float, int, Connection, int]] = []
        self._order = itertools.count()
        self._waiting: anyio.CancelScope | None = None  # the timer task's wait, while it waits
        self._task_group: anyio.abc.TaskGroup | None = None  # for blocked work, while running

    async def run(self) -> None:
        """Serve the connections until cancelled."""
        epoll = self.epoll
        try:
            async with anyio.create_task_group() as task_group:
                self._task_group = task_group
                task_group.start_soon(self._run_timers)
                if _current_backend_is_asyncio():
                    # The loop calls back when the epoll object is readable: no task switch.
                    loop = asyncio.get_running_loop()
                    loop.add_reader(epoll.fileno(), self._serve)
                    try:
                        await anyio.sleep_forever()
                    finally:
                        loop.remove_reader(epoll.fileno())
                else:
                    import trio.lowlevel

                    wait_readable = trio.lowlevel.wait_readable
                    serve = self._serve
                    while True:
                        await wait_readable(epoll)
                        serve()
        finally:
            for connection in list(self.connections.values()):
                connection.close()
            epoll.close()

    def _serve(self) -> None:
        # A wait costs a pass through the event loop, more than a request;
        # answered clients have often sent again by the time a round is done,
        # so look again before waiting.
        epoll = self.epoll
        serve_ready = self._serve_ready
        clock = self.clock
        for _ in range(ROUNDS_PER_WAIT):
            ready = epoll.poll(0)
            if not ready:
                break
            serve_ready(ready, clock())

    def _serve_ready(self, ready: list[tuple[int, int]], now: float) -> None:
        connections = self.connections
        for fd, events in ready:
            connection = connections.get(fd)
            if connection is None:
                continue
            try:
                if events & _WRITE:
                    connection.writable()
                if events & ~_WRITE:
                    if connection.interest & _READ:
                        connection.readable(now)
                    elif events & _BROKEN and not connection.closing:
                        # Reset while not read (an async handler at work): epoll
                        # reports it until the socket is unregistered.
                        connection.close()
            except Exception as error:  # noqa: BLE001 - a bug costs this connection only
                self._failed(connection, error)

    async def _run_timers(self) -> None:
        """Fire the connections' timers (a task of its own: the reactor's wait needs no deadline)."""
        timers = self._timers
        clock = self.clock
        while True:
            # In a scope whose deadline schedule() may bring forward.
            with anyio.CancelScope(deadline=timers[0][0] if timers else math.inf) as self._waiting:
                await anyio.sleep_forever()
            self._waiting = None
            now = clock()
            while timers and timers[0][0] <= now:
                _, _, connection, kind = heapq.heappop(timers)
                if not connection.closing:
                    try:
                        connection.timer(kind, now)
                    except Exception as error:  # noqa: BLE001
                        self._failed(connection, error)

    async def serve(self, stream: anyio.abc.SocketStream, sock: socket.socket, peer: str, local: str) -> None:
        """Serve one accepted connection until it closes (the connection's task).

        *sock* is the socket of *stream*, which is closed at the end.
        """
        connection = self._connection(sock, peer, local, task=True)
        try:
            if not self.server._admit(connection):
                return
            self.server.hooks.connected(True, connection.info)
            try:
                self._watch(connection)
                await connection.run()
            finally:
                connection.close()
                self.server._forget(connection)
                self.server.hooks.connected(False, connection.info)
        finally:
            await _close_stream(stream)

    def add(self, sock: socket.socket, peer: str, local: str) -> None:
        """Serve one accepted connection, without a task of its own (asyncio): it ends in
        :meth:`Connection.close`, which calls :meth:`release`."""
        connection = self._connection(sock, peer, local, task=False)
        if not self.server._admit(connection):
            sock.close()
            return
        try:
            self.server.hooks.connected(True, connection.info)
            self._watch(connection)
        except Exception:
            logger.exception("%s: a connection failed", self.server.name)
            connection.close()

    def release(self, connection: Connection) -> None:
        """End a connection that has no task of its own (it is closing)."""
        server = self.server
        server._forget(connection)
        try:
            server.hooks.connected(False, connection.info)
        except Exception:
            logger.exception("%s: trace_connect failed", server.name)
        finally:
            connection.sock.close()

    def spawn(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run *work* in a task of the reactor's (a connection's blocked work)."""
        assert self._task_group is not None
        self._task_group.start_soon(work)

    def _connection(self, sock: socket.socket, peer: str, local: str, *, task: bool) -> Connection:
        server = self.server
        framer = server._framer()
        info = server._info(server.transport, peer, local, framer, None)
        return Connection(self, sock, info, server._new_session(framer, info), self.clock(), task=task)

    def _watch(self, connection: Connection) -> None:
        self.connections[connection.fd] = connection
        connection.interest = _READ
        self.epoll.register(connection.fd, _READ)
        if self.idle_timeout is not None:
            connection.idle_timer = True
            self.schedule(connection.last_activity + self.idle_timeout, connection, _IDLE)

    def _failed(self, connection: Connection, error: Exception) -> None:
        # A bug costs this connection, not every connection of the server.
        logger.error("%s: a connection failed", self.server.name, exc_info=error)
        connection.close()

    def schedule(self, when: float, connection: Connection, kind: int) -> None:
        if when < math.inf:
            heapq.heappush(self._timers, (when, next(self._order), connection, kind))
            waiting = self._waiting
            if waiting is not None and when < waiting.deadline:
                waiting.deadline = when

    def forget(self, connection: Connection) -> None:
        """Stop watching *connection* (it is closing)."""
        if self.connections.get(connection.fd) is connection:
            del self.connections[connection.fd]
            with contextlib.suppress(OSError, ValueError):  # the reactor has ended
                self.epoll.unregister(connection.fd)
