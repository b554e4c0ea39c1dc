"""Modbus TCP and Modbus/TCP Security (TLS) servers on blocking sockets."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import selectors
import socket
import ssl
from collections.abc import Iterable
from os import PathLike
from typing import Any

from modbus_anyio._handler import ConnectionInfo, Handler, next_connection_id
from modbus_anyio._security import RolePolicy, check_server_context, client_role, server_ssl_context
from modbus_core import (
    CustomFunction,
    DeviceIdentity,
    Framer,
    FunctionTable,
    RemoteProtocolError,
    Response,
    ServerContext,
)

from ._net import bind_sockets, format_address, set_stream_options
from ._options import ConnectionLimitPolicy
from ._server import Link, Server, TraceConnect, TracePacket, TracePdu, _reason

__all__ = ["TcpServer", "TlsServer"]

logger = logging.getLogger(__name__)

_READ_SIZE = 65536
_ACCEPTS_PER_WAKE = 64
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_QUIET_ERRORS = (ConnectionError, TimeoutError, RemoteProtocolError)


def _encoder(framer: Framer) -> Any:
    def encode(response: Response) -> bytes:
        return framer.encode(response.unit, response.transaction_id, response.pdu.encode())

    return encode


class _StreamLink(Link):
    __slots__ = ("sock",)

    def __init__(self, server: Server, sock: socket.socket, info: ConnectionInfo, now: float) -> None:
        conn = server.new_connection()
        info = dataclasses.replace(info, encode=_encoder(conn.framer))
        super().__init__(server, conn, info, now)
        self.sock = sock

    def fileobj(self) -> socket.socket:
        return self.sock

    def close_transport(self) -> None:
        self.sock.close()

    def write_some(self, data: bytes) -> int:
        try:
            return self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            return 0

    def read(self) -> bytes | None:
        """What the socket holds; b"" at end of stream; None: nothing yet."""
        try:
            return self.sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return None

    def on_ready(self, mask: int, now: float) -> None:
        try:
            if mask & selectors.EVENT_READ:
                data = self.read()
                if data:
                    self.receive(data, now)
                elif data is not None:
                    # The peer closed (or half-closed) its side: answer what
                    # it sent, then close.
                    self.draining = True
                    self.server.update_interest(self)
                    self.after_output(now)
            if mask & selectors.EVENT_WRITE and not self.closed:
                self.flush(now)
        except _QUIET_ERRORS as error:
            self.server.close_link(self, _reason(error))
        except OSError as error:
            self.server.close_link(self, _reason(error))
        except Exception as error:
            logger.exception("%s: closing after an error", self)
            self.server.close_link(self, _reason(error))


class _TlsLink(_StreamLink):
    __slots__ = ("handshake_wants",)

    sock: ssl.SSLSocket

    def __init__(self, server: Server, sock: ssl.SSLSocket, info: ConnectionInfo, now: float) -> None:
        super().__init__(server, sock, info, now)
        self.handshake_wants: int = selectors.EVENT_READ  # 0 once the handshake is done

    def wanted_events(self) -> int:
        return self.handshake_wants or super().wanted_events()

    @property
    def idle(self) -> bool:
        return not self.handshake_wants and super().idle

    def write_some(self, data: bytes) -> int:
        try:
            return self.sock.send(data)
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError, InterruptedError):
            return 0

    def read(self) -> bytes | None:
        sock = self.sock
        try:
            data = sock.recv(_READ_SIZE)
            while data and sock.pending():
                data += sock.recv(sock.pending())
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, InterruptedError):
            return None
        except ssl.SSLZeroReturnError:
            return b""
        return data

    def on_ready(self, mask: int, now: float) -> None:
        if self.handshake_wants:
            self.handshake(now)
            return
        super().on_ready(mask, now)

    def handshake(self, now: float) -> None:
        server = self.server
        try:
            self.sock.do_handshake()
        except ssl.SSLWantReadError:
            self.handshake_wants = selectors.EVENT_READ
            server.update_interest(self)
            return
        except ssl.SSLWantWriteError:
            self.handshake_wants = selectors.EVENT_WRITE
            server.update_interest(self)
            return
        except (ssl.SSLError, OSError) as error:
            server.close_link(self, f"TLS handshake failed: {_reason(error)}")
            return
        try:
            role = client_role(self.sock.getpeercert(binary_form=True))
        except ValueError as error:
            server.close_link(self, f"refused: {error}")
            return
        self.info = dataclasses.replace(self.info, role=role)
        self.handshake_wants = 0
        self.last_request = now
        logger.debug("%s: TLS %s, role %r", self, self.sock.version(), role)
        server.update_interest(self)
        server.report_connected(self)
        # Bytes that came with the end of the handshake are already decrypted and waiting.
        if self.sock.pending():
            self.on_ready(selectors.EVENT_READ, now)


class TcpServer(Server):
    """A Modbus TCP server (any framer: MBAP by default, RTU or ASCII over TCP too).

    *context* is a :class:`modbus_core.ServerContext` (or the compat
    ``ModbusServerContext``), answered by the core's dispatcher, or a
    handler ``handler(request, info) -> Response | RawReply | None``.

    Listens on *host* (``127.0.0.1`` by default; None or ``""`` for every
    interface; a name binds every address it resolves to) and *port* (0
    picks a free one: read it back from :attr:`port`).

    Robustness: *idle_timeout* closes connections that send no request
    for that long (None: never); *frame_timeout* closes a connection whose
    partial frame stops arriving; at most *max_connections* are open, and
    past it *connection_limit_policy* ``"refuse"`` closes the newcomer
    while ``"close_oldest_idle"`` closes the connection idle the longest
    (refusing only when none is idle); either logs a warning.
    *shutdown_timeout* bounds how long :meth:`shutdown` waits for answers
    to be written.  *handler_threads* runs the handler on that many
    threads (see the module documentation); 0 runs it in the I/O thread.
    """

    transport = "tcp"

    def __init__(
        self,
        context: ServerContext | Handler,
        *,
        host: str | None = "127.0.0.1",
        port: int = 502,
        name: str = "",
        identity: DeviceIdentity | Any = None,
        framer: object = "socket",
        ignore_missing_units: bool | None = None,
        broadcast: bool | None = None,
        functions: FunctionTable | None = None,
        custom_pdu: Iterable[CustomFunction] | None = None,
        trace_packet: TracePacket | None = None,
        trace_pdu: TracePdu | None = None,
        trace_connect: TraceConnect | None = None,
        idle_timeout: float | None = None,
        frame_timeout: float | None = 10.0,
        max_connections: int = 1000,
        connection_limit_policy: ConnectionLimitPolicy = "refuse",
        handler_threads: int = 0,
        shutdown_timeout: float = 5.0,
        backlog: int = 128,
        policy: RolePolicy | None = None,
    ) -> None:
        super().__init__(
            context,
            name=name,
            identity=identity,
            framer=framer,
            serial_line=False,
            broadcast=broadcast,
            ignore_missing_units=ignore_missing_units,
            functions=functions,
            custom_pdu=custom_pdu,
            trace_packet=trace_packet,
            trace_pdu=trace_pdu,
            trace_connect=trace_connect,
            idle_timeout=idle_timeout,
            frame_timeout=frame_timeout,
            handler_threads=handler_threads,
            shutdown_timeout=shutdown_timeout,
            policy=policy,
        )
        if isinstance(max_connections, bool) or not isinstance(max_connections, int) or max_connections < 1:
            raise ValueError(f"max_connections must be a positive integer, got {max_connections!r}")
        if connection_limit_policy not in ("refuse", "close_oldest_idle"):
            raise ValueError(
                f"connection_limit_policy must be 'refuse' or 'close_oldest_idle', got {connection_limit_policy!r}"
            )
        self.host = host
        self._requested_port = port
        self.max_connections = max_connections
        self.connection_limit_policy: ConnectionLimitPolicy = connection_limit_policy
        self.backlog = backlog
        self._listeners: list[socket.socket] = []
        self._addresses: list[tuple[str, int]] = []

    # -- addresses ---------------------------------------------------------------

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The bound ``(host, port)`` pairs (empty before the server opened)."""
        return list(self._addresses)

    @property
    def port(self) -> int:
        """The bound port (the requested one before the server opened)."""
        return self._addresses[0][1] if self._addresses else self._requested_port

    def describe(self) -> str:
        return ", ".join(format_address(address) for address in self._addresses)

    # -- listening ----------------------------------------------------------------

    def _open_transport(self, selector: selectors.BaseSelector) -> None:
        self._listeners = bind_sockets(self.host, self._requested_port, socket.SOCK_STREAM, self.backlog)
        self._addresses = [sock.getsockname()[:2] for sock in self._listeners]
        for listener in self._listeners:
            selector.register(listener, selectors.EVENT_READ, self._acceptor(listener))

    def _close_transport(self) -> None:
        for listener in self._listeners:
            if self._selector is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(listener)
            listener.close()
        self._listeners = []

    def _acceptor(self, listener: socket.socket) -> Any:
        local = format_address(listener.getsockname())

        def accept(mask: int, now: float) -> None:
            for _ in range(_ACCEPTS_PER_WAKE):
                try:
                    sock, address = listener.accept()
                except (BlockingIOError, InterruptedError):
                    return
                except OSError as error:
                    if error.errno in _OUT_OF_RESOURCES:
                        self._pause_accepting(listener, error)
                        return
                    continue  # the client gave up before we accepted (ECONNABORTED)
                self._accepted(sock, address, local, now)

        return accept

    def _pause_accepting(self, listener: socket.socket, error: OSError) -> None:
        """Out of file descriptors: stop accepting for a moment instead of spinning."""
        logger.error("%s: cannot accept connections: %s; pausing accept for 0.5 s", self, error.strerror)
        assert self._selector is not None
        self._selector.unregister(listener)
        callback = self._acceptor(listener)

        def resume(now: float) -> None:
            if listener.fileno() >= 0 and self._selector is not None and not self._draining:
                self._selector.register(listener, selectors.EVENT_READ, callback)

        self.call_later(0.5, resume)

    def _accepted(self, sock: socket.socket, address: tuple[Any, ...], local: str, now: float) -> None:
        peer = format_address(address)
        if len(self._links) >= self.max_connections and not self._make_room(peer):
            sock.close()
            return
        try:
            set_stream_options(sock)
            info = ConnectionInfo(
                transport=self.transport,
                peer=peer,
                local=local,
                server=self.name,
                connection_id=next_connection_id(),
            )
            link = self._new_link(sock, info, now)
        except (OSError, ssl.SSLError) as error:
            logger.info("%s: connection from %s failed: %s", self, peer, error)
            sock.close()
            return
        logger.debug("%s: connection #%d from %s", self, info.connection_id, peer)
        self._add(link)

    def _new_link(self, sock: socket.socket, info: ConnectionInfo, now: float) -> Link:
        return _StreamLink(self, sock, info, now)

    def _add(self, link: Link) -> None:
        self.add_link(link)

    def _make_room(self, peer: str) -> bool:
        """At the connection limit: apply the policy; whether the newcomer may stay."""
        if self.connection_limit_policy == "close_oldest_idle":
            idle = [link for link in self._links.values() if link.idle and not link.closed]
            if idle:
                oldest = min(idle, key=lambda link: link.last_request)
                logger.warning(
                    "%s: connection limit %d reached: closing the oldest idle connection %s for %s",
                    self,
                    self.max_connections,
                    oldest.info.peer,
                    peer,
                )
                self.close_link(oldest, "closed to make room for a new connection")
                return True
        logger.warning("%s: connection limit %d reached: refused %s", self, self.max_connections, peer)
        return False


StrPath = str | PathLike[str]


class TlsServer(TcpServer):
    """A Modbus/TCP Security server: MBAP over TLS 1.2+, client roles, role rules.

    Give *certfile* and *keyfile* (and *cafile*, the CA that signs client
    certificates; *password* for an encrypted key), or a ready
    *ssl_context*.  By default a client certificate is required
    (mutual authentication, as the specification demands); a context
    that would allow TLS older than 1.2 is refused.

    The client's role, read from its certificate (extension
    ``1.3.6.1.4.1.50316.802.1``), is in :attr:`ConnectionInfo.role`; a
    certificate with more than one role is refused at connection.
    *policy* (a :class:`RolePolicy`) says what each role may do; a request
    it refuses is answered with exception 01.  Without a policy every
    authenticated client may do everything.  Port 802 by default; the
    other options are those of :class:`TcpServer`.
    """

    transport = "tls"

    def __init__(
        self,
        context: ServerContext | Handler,
        *,
        host: str | None = "127.0.0.1",
        port: int = 802,
        certfile: StrPath | None = None,
        keyfile: StrPath | None = None,
        cafile: StrPath | None = None,
        password: str | bytes | None = None,
        ssl_context: ssl.SSLContext | None = None,
        require_client_certificate: bool = True,
        policy: RolePolicy | None = None,
        handshake_timeout: float = 10.0,
        **options: Any,
    ) -> None:
        if ssl_context is None:
            if certfile is None:
                raise ValueError("TlsServer needs certfile= (and keyfile=, cafile=) or ssl_context=")
            ssl_context = server_ssl_context(
                certfile,
                keyfile,
                cafile=cafile,
                password=password,
                require_client_certificate=require_client_certificate,
            )
        else:
            if certfile is not None or keyfile is not None:
                raise ValueError("give either ssl_context= or certfile=/keyfile=, not both")
            check_server_context(ssl_context)
        super().__init__(context, host=host, port=port, policy=policy, **options)
        self.ssl_context = ssl_context
        timeout = float(handshake_timeout)
        if not timeout > 0:
            raise ValueError(f"handshake_timeout must be positive, got {handshake_timeout!r}")
        self.handshake_timeout = timeout

    def _new_link(self, sock: socket.socket, info: ConnectionInfo, now: float) -> Link:
        wrapped = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return _TlsLink(self, wrapped, info, now)

    def _add(self, link: Link) -> None:
        self.add_link(link, report=False)
        assert isinstance(link, _TlsLink)
        link.handshake(link.connected_at)
        if not link.closed and link.handshake_wants:
            # A client that never finishes its handshake is dropped.
            def expire(now: float) -> None:
                if not link.closed and link.handshake_wants:
                    self.close_link(link, f"no TLS handshake within {self.handshake_timeout:g} s")

            self.call_later(self.handshake_timeout, expire)
