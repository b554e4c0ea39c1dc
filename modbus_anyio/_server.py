"""Servers: the common lifecycle, TCP and TLS, and ``serve_stream``.

Every server runs under asyncio or trio (anyio).  Listeners, task groups,
cancellation and the lifecycle are anyio's; the data path is chosen by the
transport, the platform and the running backend:

* plain TCP where epoll exists (Linux), on every loop: one reactor per
  server (``_reactor``) reads, answers and writes every ready connection,
  with no task switch per request;
* otherwise on asyncio (TLS; plain TCP without epoll), connections are
  :class:`asyncio.BufferedProtocol` objects (``loop.create_server``): the
  core is fed from what each read brings and synchronous answers are
  written at once, with no task per connection.  anyio's stream layer costs
  as much per request as all the Modbus work (see ``benchmarks/README.md``),
  so these thinner paths are worth having;
* otherwise on trio (TLS; plain TCP without epoll), and for any
  :class:`anyio.abc.ByteStream` (``serve_stream``), anyio streams served by
  one task each.

Every path drives the same :class:`~modbus_anyio._session.Session`, so they
behave the same; the tests run every server on each backend, and plain
TCP on both of its paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import ssl
from collections.abc import Awaitable, Callable, Container, Iterable, Sequence
from os import PathLike
from typing import TYPE_CHECKING, Any, TypeAlias

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.streams.tls import TLSAttribute, TLSStream

from modbus_core import (
    CustomFunction,
    DeviceIdentity,
    Dispatcher,
    Framer,
    FunctionTable,
    RemoteProtocolError,
    ServerConnection,
    ServerContext,
    ServerDiagnostics,
)

from ._handler import ConnectionInfo, Handler, new_connection_info
from ._net import (
    ConnectionPolicy,
    SocketAddresses,
    as_connection_policy,
    check_max_connections,
    format_address,
    make_room,
    set_stream_options,
)
from ._options import ServerOptions, positive_or_none
from ._security import RolePolicy, client_role, tls_server_settings
from ._session import (
    FramerSpec,
    Hooks,
    Session,
    TraceConnect,
    TracePacket,
    TracePdu,
    build_framer,
    function_table,
)

if TYPE_CHECKING:
    from ._reactor import Reactor
    from .compat import ModbusDeviceIdentification

__all__ = ["ConnectionPolicy", "ServerBase", "TcpServer", "TlsServer", "serve_stream", "serve_tcp", "serve_tls"]

logger = logging.getLogger(__name__)

StrPath: TypeAlias = "str | PathLike[str]"
Answer: TypeAlias = "ServerContext | Handler"
"""What a server answers with: a datastore (the fast path) or a handler."""


def _current_backend_is_asyncio() -> bool:
    return isinstance(anyio.lowlevel.current_token().native_token, asyncio.AbstractEventLoop)


def event_loop_clock() -> Callable[[], float]:
    """The running event loop's clock: what :func:`anyio.current_time` reads,
    without its per-call backend lookup (it runs once per request)."""
    native = anyio.lowlevel.current_token().native_token
    if isinstance(native, asyncio.AbstractEventLoop):
        return native.time
    import trio

    return trio.current_time


class _Record:
    """An open connection as the server tracks it (for limits, shutdown, ``connections``)."""

    __slots__ = ("info", "last_activity", "session")

    info: ConnectionInfo
    session: Session
    last_activity: float

    def close(self) -> None:
        """Close the connection now."""
        raise NotImplementedError

    def stop_reading(self) -> None:
        """Read no more requests (shutdown): finish the current one."""
        raise NotImplementedError

    @property
    def busy(self) -> bool:
        return self.session.blocked is not None


def _fed(record: _Record, feed: Callable[..., bytes], *args: Any) -> bytes | None:
    """Feed *record*'s session (*feed* is its ``receive`` or ``timeout``): the bytes to write,
    or None once the connection is closed, after a protocol error or a bug (logged)."""
    try:
        return feed(*args)
    except RemoteProtocolError as error:
        logger.info("%s: %s: closing", record.info.peer, error)
    except Exception:
        # A bug (in a framer, say) costs this connection only.
        logger.exception("%s: a connection failed", record.info.server)
    record.close()
    return None


def _idle(record: _Record) -> bool:
    return not record.busy


class ServerBase(ServerOptions):
    """What every server has: the answer (datastore or handler), options, lifecycle.

    Not instantiated directly: see :class:`TcpServer`, :class:`TlsServer`,
    :class:`~modbus_anyio.UdpServer` and :class:`~modbus_anyio.SerialServer`.
    """

    def __init__(self, answer: Answer, **options: Any) -> None:
        super().__init__(answer, **options)
        self._records: dict[int, _Record] = {}
        self._stop: anyio.Event | None = None
        self._done: anyio.Event | None = None
        self._running = False
        self._listening = False

    # -- public --------------------------------------------------------------

    @property
    def connections(self) -> list[ConnectionInfo]:
        """The connections open now."""
        return [record.info for record in self._records.values()]

    @property
    def listening(self) -> bool:
        """True between readiness and shutdown."""
        return self._listening

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} listening={self._listening} connections={len(self._records)}>"

    async def serve_forever(self, *, task_status: anyio.abc.TaskStatus[Any] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve until :meth:`shutdown` (or cancellation).

        Reports readiness with ``task_status.started(self)`` once listening, so
        ``server = await task_group.start(server.serve_forever)`` works and
        :attr:`addresses` holds the bound ports.
        """
        if self._running:
            raise RuntimeError(f"{self!r} is already serving")
        self._running = True
        self._stop = anyio.Event()
        self._done = anyio.Event()
        try:
            await self._prepare()  # binding errors surface here, not in an exception group
            async with anyio.create_task_group() as task_group:
                await self._open(task_group)
                self._listening = True
                logger.info("%s: listening", self.name)
                task_status.started(self)
                await self._stop.wait()
                self._listening = False
                await self._close_listeners()
                await self._finish_connections()
                task_group.cancel_scope.cancel()
        finally:
            self._listening = False
            with anyio.CancelScope(shield=True):
                await self._close_listeners()
                for record in list(self._records.values()):
                    record.close()
                self._records.clear()
            self._running = False
            self._done.set()
            logger.info("%s: stopped", self.name)

    async def shutdown(self) -> None:
        """Stop accepting, answer the requests already received, close every
        connection, and return once the server has stopped (idempotent)."""
        if self._stop is None or self._done is None:
            return
        self._stop.set()
        await self._done.wait()

    async def __aenter__(self) -> Any:
        self._context_group = anyio.create_task_group()
        await self._context_group.__aenter__()
        try:
            await self._context_group.start(self.serve_forever)
        except BaseException:
            # The server did not start (address in use...): raise its error as it is.
            await self._context_group.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        # The body's exception is not handed to the task group: on trio it
        # would come out wrapped in an exception group.  The shutdown is
        # shielded so that it completes (bounded by shutdown_timeout) even
        # when the body was cancelled; the exception then propagates as is.
        try:
            with anyio.CancelScope(shield=True):
                await self.shutdown()
        finally:
            await self._context_group.__aexit__(None, None, None)

    # -- for subclasses ---------------------------------------------------------

    async def _prepare(self) -> None:
        """Bind or open what the server serves (may raise OSError)."""

    async def _open(self, task_group: anyio.abc.TaskGroup) -> None:
        """Start serving in *task_group*."""

    async def _close_listeners(self) -> None:
        """Stop accepting (idempotent)."""

    async def _finish_connections(self) -> None:
        """Let every connection finish what it received, within shutdown_timeout."""
        for record in list(self._records.values()):
            record.stop_reading()
        with anyio.move_on_after(self.shutdown_timeout):
            while any(record.busy for record in self._records.values()):
                await anyio.sleep(0.01)
        for record in list(self._records.values()):
            record.close()

    def _new_session(self, framer: Framer, info: ConnectionInfo, *, echo: bool = False) -> Session:
        return Session(
            self._connection(framer, echo=echo),
            info,
            dispatcher=self.dispatcher,
            handler=self.handler,
            policy=self._policy(),
            hooks=self.hooks,
        )

    def _policy(self) -> RolePolicy | None:
        return None


# -- TCP and TLS ----------------------------------------------------------------


class TcpServer(SocketAddresses, ServerBase):
    """A Modbus TCP server (any framer: MBAP by default, RTU or ASCII over TCP too).

    *answer* is a :class:`modbus_core.ServerContext` or a
    :data:`~modbus_anyio.Handler`.  *host* defaults to 127.0.0.1; give
    ``"::1"``, a name, a list of addresses, or None (every interface, IPv4
    and IPv6).  *port* 0 picks a free port (see :attr:`addresses`).

    Robustness: *frame_timeout* closes a connection whose MBAP frame stays
    incomplete that long; *idle_timeout* (None: never) closes a connection
    quiet that long; at *max_connections* open connections *connection_policy*
    decides (and a warning is logged).  TCP_NODELAY and keepalive are on.
    Pipelined requests are answered in order.
    """

    transport = "tcp"

    def __init__(
        self,
        answer: Answer,
        *,
        host: str | Sequence[str] | None = "127.0.0.1",
        port: int = 502,
        framer: FramerSpec = "socket",
        idle_timeout: float | None = None,
        frame_timeout: float | None = 10.0,
        max_connections: int | None = 1024,
        connection_policy: ConnectionPolicy | str = ConnectionPolicy.CLOSE_OLDEST_IDLE,
        keepalive: bool = True,
        backlog: int = 128,
        **options: Any,
    ) -> None:
        super().__init__(answer, framer=framer, **options)
        self._init_addresses(host, port)
        self.idle_timeout = positive_or_none("idle_timeout", idle_timeout)
        self.frame_timeout = positive_or_none("frame_timeout", frame_timeout)
        self.max_connections = check_max_connections(max_connections)
        self.connection_policy = as_connection_policy(connection_policy)
        self.keepalive = keepalive
        self.backlog = backlog
        self._sockets: list[socket.socket] = []
        self._asyncio_servers: list[asyncio.AbstractServer] = []
        self._listeners: list[anyio.abc.Listener[Any]] = []
        self._accept_scopes: list[anyio.CancelScope] = []
        self._reactor: Reactor | None = None

    def _ssl_context(self) -> ssl.SSLContext | None:
        return None

    def _framer(self) -> Framer:
        return build_framer(self._framer_spec, frame_timeout=self.frame_timeout)

    async def _prepare(self) -> None:
        sockets = self._sockets = self._bind(socket.SOCK_STREAM, self.backlog)
        context = self._ssl_context()
        self._reactor = None
        from ._reactor import reactor_available

        if context is None and reactor_available():
            return  # the reactor serves plain TCP on every loop (see _open)
        if _current_backend_is_asyncio() and (
            # Our TLS handshake needs the new connection not to be read before
            # it starts: asyncio's own loop keeps a transport paused from
            # connection_made on, uvloop starts reading regardless.  TLS on
            # other loops takes the anyio stream path (as on trio).
            context is None or isinstance(asyncio.get_running_loop(), asyncio.BaseEventLoop)
        ):
            from ._asyncio_tcp import start_asyncio_servers

            self._asyncio_servers = await start_asyncio_servers(self, sockets, context)

    async def _open(self, task_group: anyio.abc.TaskGroup) -> None:
        if self._asyncio_servers:
            return
        from ._reactor import Reactor, reactor_available

        if self._ssl_context() is None and reactor_available():
            self._reactor = Reactor(self)
            task_group.start_soon(self._reactor.run)
            if _current_backend_is_asyncio():
                # anyio's streams on asyncio read through a transport of their
                # own: the reactor's sockets are accepted by hand.
                for sock in self._sockets:
                    sock.setblocking(False)
                    task_group.start_soon(self._accept_sockets, sock)
                return
        for sock in self._sockets:
            listener = await anyio.abc.SocketListener.from_socket(sock)
            self._listeners.append(listener)
            task_group.start_soon(self._accept, listener, task_group)

    def _handshake_timeout(self) -> float:
        return 10.0

    async def _accept(self, listener: anyio.abc.SocketListener, task_group: anyio.abc.TaskGroup) -> None:
        # Connections run in the server's task group: to stop accepting leaves them be.
        with anyio.CancelScope() as scope:
            self._accept_scopes.append(scope)
            while True:
                try:
                    stream = await listener.accept()
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    return
                except OSError as error:
                    # Out of file descriptors, typically: keep serving who is connected.
                    logger.warning("%s: accept failed: %s", self.name, error)
                    await anyio.sleep(0.5)
                    continue
                task_group.start_soon(self._serve_guarded, stream)

    async def _accept_sockets(self, listener: socket.socket) -> None:
        # The reactor's accept loop on asyncio.
        loop = asyncio.get_running_loop()
        with anyio.CancelScope() as scope:
            self._accept_scopes.append(scope)
            while True:
                try:
                    sock, _ = await loop.sock_accept(listener)
                except OSError as error:
                    if listener.fileno() < 0:
                        return  # closed
                    logger.warning("%s: accept failed: %s", self.name, error)
                    await anyio.sleep(0.5)
                    continue
                self._add_socket(sock)

    def _add_socket(self, sock: socket.socket) -> None:
        # No task per connection: the reactor starts one only for blocked work.
        assert self._reactor is not None
        try:
            sock.setblocking(False)
            set_stream_options(sock, self.keepalive)
            peer = format_address(sock.getpeername())
            local = format_address(sock.getsockname())
        except OSError as error:  # reset before we looked
            logger.info("%s: connection lost at accept: %s", self.name, error)
            sock.close()
            return
        try:
            self._reactor.add(sock, peer, local)
        except Exception:  # a framer factory's bug, say: it costs this connection only
            logger.exception("%s: a connection failed", self.name)
            sock.close()

    async def _serve_guarded(self, stream: anyio.abc.SocketStream) -> None:
        # One connection's failure (a bug, a hook that raises) must not end
        # the server's task group, and with it every other connection.
        try:
            await self._serve_accepted(stream)
        except Exception:
            logger.exception("%s: a connection failed", self.name)
            await anyio.aclose_forcefully(stream)

    async def _close_listeners(self) -> None:
        for scope in self._accept_scopes:
            scope.cancel()
        servers, self._asyncio_servers = self._asyncio_servers, []
        for server in servers:
            server.close()
        listeners, self._listeners = self._listeners, []
        for listener in listeners:
            with contextlib.suppress(Exception):
                await listener.aclose()
        sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()

    # -- admission and records ------------------------------------------------------

    def _admit(self, record: _Record) -> bool:
        """Apply the connection limit to a new connection; register it when admitted."""
        records = self._records
        admitted, oldest = make_room(
            self.name, record.info.peer, records.values(), self.max_connections, self.connection_policy, _idle, logger
        )
        if oldest is not None:
            records.pop(oldest.info.connection_id, None)
            oldest.close()
        if admitted:
            records[record.info.connection_id] = record
        return admitted

    def _forget(self, record: _Record) -> None:
        self._records.pop(record.info.connection_id, None)

    # -- the anyio stream path (trio) -----------------------------------------------

    async def _serve_accepted(self, stream: anyio.abc.SocketStream) -> None:
        raw = stream.extra(anyio.abc.SocketAttribute.raw_socket, None)
        set_stream_options(raw, self.keepalive)
        peer = format_address(stream.extra(anyio.abc.SocketAttribute.remote_address, "?"))
        local = format_address(stream.extra(anyio.abc.SocketAttribute.local_address, "?"))
        context = self._ssl_context()
        if context is None:
            # Plain TCP: the loop reads and writes the socket itself (see _raw_socket_io).
            plain = raw if isinstance(raw, socket.socket) else None
            if self._reactor is not None and plain is not None:
                await self._reactor.serve(stream, plain, peer, local)
                return
            await _run_stream(self, stream, self.transport, peer, local, None, self.idle_timeout, raw=plain)
            return
        try:
            with anyio.fail_after(self._handshake_timeout()):
                tls = await TLSStream.wrap(stream, server_side=True, ssl_context=context, standard_compatible=True)
            role = client_role(tls.extra(TLSAttribute.peer_certificate_binary, None))
        except (OSError, ValueError, TimeoutError, anyio.BrokenResourceError, anyio.EndOfStream) as error:
            reason = error.__cause__ if isinstance(error, anyio.BrokenResourceError) and error.__cause__ else error
            logger.warning("%s: TLS handshake with %s failed: %s", self.name, peer, reason or type(reason).__name__)
            await anyio.aclose_forcefully(stream)
            return
        await _run_stream(self, tls, self.transport, peer, local, role, self.idle_timeout)


class TlsServer(TcpServer):
    """A Modbus/TCP Security server: TLS 1.2+, mutual authentication, roles.

    Give *ssl_context* (an :class:`ssl.SSLContext` of your own; it must not
    allow TLS older than 1.2) or *certfile*/*keyfile* (paths; *cafile*
    verifies client certificates, which are required unless
    *require_client_certificate* is False).  *policy* (a
    :class:`~modbus_anyio.RolePolicy`) decides what each client role may do;
    refused requests get exception 01.  Without a policy every
    authenticated client may do anything.  Default port 802.
    """

    transport = "tls"

    def __init__(
        self,
        answer: Answer,
        *,
        ssl_context: ssl.SSLContext | None = None,
        certfile: StrPath | None = None,
        keyfile: StrPath | None = None,
        cafile: StrPath | None = None,
        password: str | bytes | None = None,
        require_client_certificate: bool = True,
        policy: RolePolicy | None = None,
        port: int = 802,
        handshake_timeout: float = 10.0,
        **options: Any,
    ) -> None:
        super().__init__(answer, port=port, **options)
        self._context, self.policy = tls_server_settings(
            ssl_context, certfile, keyfile, cafile, password, require_client_certificate, policy
        )
        self.handshake_timeout = handshake_timeout

    @property
    def ssl_context(self) -> ssl.SSLContext:
        return self._context

    def _ssl_context(self) -> ssl.SSLContext | None:
        return self._context

    def _policy(self) -> RolePolicy | None:
        return self.policy

    def _handshake_timeout(self) -> float:
        return self.handshake_timeout


# -- serving one byte stream --------------------------------------------------------


class _StreamRecord(_Record):
    __slots__ = ("processing", "scope", "stopping", "stream")

    def __init__(self, stream: anyio.abc.ByteStream, info: ConnectionInfo, session: Session, now: float) -> None:
        self.stream = stream
        self.info = info
        self.session = session
        self.last_activity = now
        self.scope: anyio.CancelScope | None = None
        self.processing = False
        self.stopping = False

    def close(self) -> None:
        self.stopping = True
        if self.scope is not None:
            self.scope.cancel()

    def stop_reading(self) -> None:
        self.stopping = True
        if not self.processing and self.scope is not None:
            self.scope.cancel()


async def _run_stream(
    server: TcpServer | None,
    stream: anyio.abc.ByteStream,
    transport: str,
    peer: str,
    local: str,
    role: str | None,
    idle_timeout: float | None,
    *,
    session_factory: Callable[[Framer, ConnectionInfo], Session] | None = None,
    framer: Framer | None = None,
    info_factory: Callable[[Framer], ConnectionInfo] | None = None,
    hooks: Hooks | None = None,
    raw: socket.socket | None = None,
) -> None:
    """Serve one connection (a server's, or serve_stream's) until EOF, error, timeout or shutdown.

    *raw*: the plain TCP socket under *stream*, read and written directly.
    """
    if server is not None:
        framer = server._framer()
        info = server._info(transport, peer, local, framer, role)
        session = server._new_session(framer, info)
        hooks = server.hooks
    else:
        assert framer is not None
        assert info_factory is not None
        assert session_factory is not None
        info = info_factory(framer)
        session = session_factory(framer, info)
    record = _StreamRecord(stream, info, session, anyio.current_time())
    try:
        if server is not None and not server._admit(record):
            await anyio.aclose_forcefully(stream)
            return
        if hooks is not None:
            hooks.connected(True, info)
        try:
            with anyio.CancelScope() as record.scope:
                await _stream_loop(record, idle_timeout, raw)
        finally:
            if server is not None:
                server._forget(record)
            if hooks is not None:
                hooks.connected(False, info)
    finally:
        await _close_stream(stream)


async def _close_stream(stream: anyio.abc.AsyncResource) -> None:
    """Close politely (TLS close_notify) if the peer lets us within a second, else forcefully."""
    with anyio.CancelScope(shield=True):
        with anyio.move_on_after(1):
            try:
                await stream.aclose()
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                await anyio.aclose_forcefully(stream)
            return
        await anyio.aclose_forcefully(stream)


def _raw_socket_io(
    sock: socket.socket,
) -> tuple[Callable[[], Awaitable[bytes]], Callable[[bytes], Awaitable[None]]]:
    """receive() and send() straight on a plain TCP socket.

    What anyio's SocketStream does, minus a scheduler round trip and the
    wrappers per call: each receive() waits for readiness first (so a
    flooding client still lets other tasks run), then reads without blocking.
    """
    recv = sock.recv
    send_some = sock.send
    wait_readable: Callable[[socket.socket], Awaitable[None]] = anyio.wait_readable
    wait_writable: Callable[[socket.socket], Awaitable[None]] = anyio.wait_writable
    if not _current_backend_is_asyncio():
        # anyio's wait_readable is trio's, behind a backend lookup on every call.
        import trio.lowlevel

        wait_readable = trio.lowlevel.wait_readable
        wait_writable = trio.lowlevel.wait_writable

    async def receive() -> bytes:
        while True:
            await wait_readable(sock)
            try:
                data = recv(65536)
            except BlockingIOError:
                continue
            except OSError as error:
                raise anyio.BrokenResourceError from error
            if not data:
                raise anyio.EndOfStream
            return data

    async def send(data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[send_some(view) :]
            except BlockingIOError:
                await wait_writable(sock)
            except OSError as error:
                raise anyio.BrokenResourceError from error

    return receive, send


async def _stream_loop(record: _StreamRecord, idle_timeout: float | None, raw: socket.socket | None = None) -> None:
    stream = record.stream
    session = record.session
    if raw is not None:
        receive, send = _raw_socket_io(raw)
    else:
        receive, send = stream.receive, stream.send
    info = record.info
    current_time = event_loop_clock()
    while not record.stopping:
        deadline = math.inf if idle_timeout is None else record.last_activity + idle_timeout
        frame_deadline = session.next_deadline()
        if frame_deadline is not None and frame_deadline < deadline:
            deadline = frame_deadline
        record.processing = False
        try:
            if deadline == math.inf:
                data = await receive()
            else:
                data = b""
                with anyio.CancelScope(deadline=deadline):
                    data = await receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return
        except OSError as error:
            logger.info("%s: connection error: %s", info.peer, error)
            return
        record.processing = True
        now = current_time()
        try:
            if data:
                record.last_activity = now
                out = session.receive(data, now)
            else:
                frame_deadline = session.next_deadline()
                if frame_deadline is not None and now >= frame_deadline:
                    out = session.timeout(now)
                elif idle_timeout is not None and now - record.last_activity >= idle_timeout:
                    logger.info("%s: idle for %.1f s: closing", info.peer, idle_timeout)
                    return
                else:
                    continue
        except RemoteProtocolError as error:
            logger.info("%s: %s: closing", info.peer, error)
            return
        try:
            if out:
                await send(out)
            while session.blocked is not None:
                out = await _unblock(session, send)
                if out:
                    await send(out)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            return


async def _unblock(session: Session, send: Callable[[bytes], Awaitable[None]]) -> bytes:
    """Do the session's blocked item (await a handler, or write a paused RawReply); resume it."""
    blocked = session.blocked
    assert blocked is not None
    if blocked.awaitable is not None:
        try:
            result: Any = await blocked.awaitable
        except Exception as error:  # noqa: BLE001 - answered with exception 04 by the session
            result = error
        return session.resume(result)
    assert blocked.raw is not None
    for part in blocked.raw.parts:
        if isinstance(part, bytes):
            if part:
                await send(part)
        else:
            await anyio.sleep(part)
    return session.resume(None)


async def serve_stream(
    stream: anyio.abc.ByteStream,
    answer: Answer,
    *,
    framer: FramerSpec = "socket",
    peer: str = "stream",
    local: str = "",
    transport: str = "stream",
    name: str = "stream",
    role: str | None = None,
    idle_timeout: float | None = None,
    frame_timeout: float | None = None,
    identity: DeviceIdentity | ModbusDeviceIdentification | None = None,
    ignore_missing_units: bool | None = None,
    broadcast: bool | None = None,
    functions: FunctionTable | None = None,
    custom_pdu: Iterable[CustomFunction] | None = None,
    units: Container[int] | None = None,
    policy: RolePolicy | None = None,
    diagnostics: ServerDiagnostics | None = None,
    trace_packet: TracePacket | None = None,
    trace_pdu: TracePdu | None = None,
    trace_connect: TraceConnect | None = None,
) -> None:
    """Serve Modbus on any :class:`anyio.abc.ByteStream` until it ends.

    A websocket adapter, a radio link, one end of an in-memory pair: any
    byte stream carries Modbus with any framer, through the same code as
    the TCP server (timeouts, async handlers answered in order, hooks).
    *peer*, *local*, *transport* and *role* fill the
    :class:`~modbus_anyio.ConnectionInfo` that handlers and hooks see;
    *policy* is checked against *role*.  The stream is closed on return.

    For example, Modbus RTU frames carried over a websocket, with any
    websocket library wrapped as a byte stream::

        class WebSocketStream(anyio.abc.ByteStream):
            def __init__(self, websocket): self.websocket = websocket
            async def receive(self, max_bytes=65536): return await self.websocket.receive_bytes()
            async def send(self, item): await self.websocket.send_bytes(item)
            async def send_eof(self): pass
            async def aclose(self): await self.websocket.close()

        async def endpoint(websocket):
            await websocket.accept()
            await serve_stream(WebSocketStream(websocket), context, framer="rtu", transport="websocket")
    """
    answer_dispatcher: Dispatcher | None = None
    handler: Handler | None = None
    from .compat import as_identity

    table = function_table(functions, custom_pdu)
    line_diagnostics = diagnostics if diagnostics is not None else ServerDiagnostics()
    if isinstance(answer, ServerContext):
        answer_dispatcher = Dispatcher(
            answer,
            diagnostics=line_diagnostics,
            identity=as_identity(identity),
            broadcast=broadcast,
            ignore_missing_units=ignore_missing_units,
        )
    elif callable(answer):
        handler = answer
    else:
        raise TypeError(f"serve_stream answers from a ServerContext or a handler, got {type(answer).__name__}")
    hooks = Hooks(trace_packet, trace_pdu, trace_connect)

    def make_info(framer: Framer) -> ConnectionInfo:
        return new_connection_info(transport, peer, local, role, name, framer)

    def make_session(framer: Framer, info: ConnectionInfo) -> Session:
        connection = ServerConnection(framer, units=units, functions=table, diagnostics=line_diagnostics)
        return Session(connection, info, dispatcher=answer_dispatcher, handler=handler, policy=policy, hooks=hooks)

    await _run_stream(
        None,
        stream,
        transport,
        peer,
        local,
        role,
        idle_timeout,
        session_factory=make_session,
        framer=build_framer(framer, frame_timeout=frame_timeout),
        info_factory=make_info,
        hooks=hooks,
    )


async def serve_tcp(
    answer: Answer, *, task_status: anyio.abc.TaskStatus[Any] = anyio.TASK_STATUS_IGNORED, **options: Any
) -> None:
    """``TcpServer(answer, **options).serve_forever()``: reports the server object when listening."""
    await TcpServer(answer, **options).serve_forever(task_status=task_status)


async def serve_tls(
    answer: Answer, *, task_status: anyio.abc.TaskStatus[Any] = anyio.TASK_STATUS_IGNORED, **options: Any
) -> None:
    """``TlsServer(answer, **options).serve_forever()``: reports the server object when listening."""
    await TlsServer(answer, **options).serve_forever(task_status=task_status)
