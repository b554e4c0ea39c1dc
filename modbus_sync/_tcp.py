"""Modbus TCP and Modbus/TCP Security (TLS) servers on blocking sockets."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import selectors
import socket
import ssl
from collections.abc import Callable, Sequence
from typing import Any

from modbus_anyio._net import (
    SocketAddresses,
    as_connection_policy,
    check_max_connections,
    format_address,
    make_room,
    set_stream_options,
)
from modbus_anyio._options import positive_or_none
from modbus_anyio._security import RolePolicy, client_role, tls_server_settings
from modbus_anyio._session import FramerSpec, build_framer
from modbus_core import RemoteProtocolError

from ._server import Answer, Link, Server, reason

__all__ = ["TcpServer", "TlsServer"]

logger = logging.getLogger(__name__)

_READ_SIZE = 960  # a few frames; the selector reports the rest (see modbus_anyio._reactor.READ_SIZE)
_ACCEPTS_PER_WAKE = 64
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class _StreamLink(Link):
    __slots__ = ("framer", "sock")

    def __init__(self, server: TcpServer, sock: socket.socket, peer: str, local: str, now: float) -> None:
        framer = server._framer()
        info = server._info(server.transport, peer, local, framer)
        super().__init__(server, info, now)
        self.sock = sock
        self.framer = framer  # the session's, once it starts (TLS: after the handshake)

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
                    self.receive(data, now)  # the hot path: a request in, its answer sent
                elif data is not None:
                    # The peer closed (or half-closed) its side: answer what
                    # it sent, then close.
                    self.draining = True
                    self.server._update_interest(self)
                    self.after_output()
            if mask & selectors.EVENT_WRITE and not self.closed:
                self.flush(now)
        except (RemoteProtocolError, OSError) as error:
            self.server._close_link(self, reason(error))
        except Exception as error:
            logger.exception("%s: %s: closing after an error", self.server.name, self.info.peer)
            self.server._close_link(self, reason(error))


class _TlsLink(_StreamLink):
    __slots__ = ("handshake_wants",)

    sock: ssl.SSLSocket

    def __init__(self, server: TcpServer, sock: ssl.SSLSocket, peer: str, local: str, now: float) -> None:
        super().__init__(server, sock, peer, local, now)
        self.handshake_wants: int = selectors.EVENT_READ  # 0 once the handshake is done

    def wanted_events(self) -> int:
        return self.handshake_wants or super().wanted_events()

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
        else:
            super().on_ready(mask, now)

    def handshake(self, now: float) -> None:
        server = self.server
        assert isinstance(server, TcpServer)
        try:
            self.sock.do_handshake()
        except ssl.SSLWantReadError:
            self.handshake_wants = selectors.EVENT_READ
            server._update_interest(self)
            return
        except ssl.SSLWantWriteError:
            self.handshake_wants = selectors.EVENT_WRITE
            server._update_interest(self)
            return
        except (ssl.SSLError, OSError) as error:
            logger.warning("%s: TLS handshake with %s failed: %s", server.name, self.info.peer, reason(error))
            server._close_link(self, None)
            return
        try:
            role = client_role(self.sock.getpeercert(binary_form=True))
        except ValueError as error:
            logger.warning("%s: %s: %s: closing", server.name, self.info.peer, error)
            server._close_link(self, None)
            return
        self.handshake_wants = 0
        self.last_activity = now
        self.start_session(server._new_session(self.framer, dataclasses.replace(self.info, role=role)))
        logger.debug("%s: %s: %s, role %r", server.name, self.info.peer, self.sock.version(), role)
        server._update_interest(self)
        server._report_connected(self)
        # Bytes that came with the end of the handshake are already decrypted and waiting.
        if self.sock.pending():
            self.on_ready(selectors.EVENT_READ, now)


class TcpServer(SocketAddresses, Server):
    """A Modbus TCP server (any framer: MBAP by default, RTU or ASCII over TCP too).

    *answer* is a :class:`modbus_core.ServerContext` (or the compat
    ``ModbusServerContext``), answered by the core's dispatcher, or a
    handler ``handler(request, info) -> Response | RawReply | None``.
    *host* defaults to 127.0.0.1; give ``"::1"``, a name, a list of
    addresses, or None (every interface, IPv4 and IPv6).  *port* 0 picks a
    free port (read it back from :attr:`port` or :attr:`addresses`).

    Robustness: *frame_timeout* closes a connection whose MBAP frame stays
    incomplete that long; *idle_timeout* (None: never) closes a connection
    quiet that long; at *max_connections* open connections
    *connection_policy* decides, with a warning in the log:
    ``"close_oldest_idle"`` closes the connection quiet the longest (and
    refuses the newcomer when all are busy), ``"refuse"`` closes the
    newcomer.  TCP_NODELAY and keepalive (*keepalive*) are on.  Pipelined
    requests are answered in order; a client that sends without reading
    its answers is not read until it does.

    Common options (every server): *name*, *identity*, *framer*,
    *ignore_missing_units*, *broadcast*, *functions* or *custom_pdu*,
    *units*, *trace_packet*, *trace_pdu*, *trace_connect* (each may take the
    :class:`ConnectionInfo` as one more argument), *handler_threads* (run
    the handler, or the datastore's dispatcher, on that many threads, so
    that a slow one does not stall the other connections; 0 runs it in the
    I/O thread; the diagnostics counters of functions 08/11/12 are not
    locked, and may then miss a count when requests finish at the same
    instant) and *shutdown_timeout* (how long :meth:`shutdown` lets answers
    finish).
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
        connection_policy: str = "close_oldest_idle",
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
        self.keepalive = bool(keepalive)
        self.backlog = backlog
        self._listeners: list[socket.socket] = []

    def _framer(self) -> Any:
        return build_framer(self._framer_spec, frame_timeout=self.frame_timeout)

    # -- listening ----------------------------------------------------------------

    def _open_transport(self, selector: selectors.BaseSelector) -> None:
        self._listeners = self._bind(socket.SOCK_STREAM, self.backlog)
        for listener in self._listeners:
            selector.register(listener, selectors.EVENT_READ, self._acceptor(listener))

    def _close_transport(self) -> None:
        listeners, self._listeners = self._listeners, []
        for listener in listeners:
            if self._selector is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(listener)
            listener.close()

    def _acceptor(self, listener: socket.socket) -> Callable[[int, float], None]:
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
                self._accepted(sock, format_address(address), local, now)

        return accept

    def _pause_accepting(self, listener: socket.socket, error: OSError) -> None:
        """Out of file descriptors: stop accepting for a moment instead of spinning."""
        logger.error("%s: cannot accept connections: %s; pausing accept for 0.5 s", self.name, error.strerror)
        assert self._selector is not None
        self._selector.unregister(listener)
        callback = self._acceptor(listener)

        def resume(now: float) -> None:
            if listener.fileno() >= 0 and self._selector is not None and not self._draining:
                self._selector.register(listener, selectors.EVENT_READ, callback)

        self._call_later(0.5, resume)

    def _accepted(self, sock: socket.socket, peer: str, local: str, now: float) -> None:
        if not self._admit(peer):
            sock.close()
            return
        try:
            sock.setblocking(False)
            set_stream_options(sock, self.keepalive)
            link = self._new_link(sock, peer, local, now)
        except (OSError, ValueError) as error:
            logger.info("%s: connection from %s failed: %s", self.name, peer, error)
            sock.close()
            return
        self._add(link, now)

    def _new_link(self, sock: socket.socket, peer: str, local: str, now: float) -> _StreamLink:
        link = _StreamLink(self, sock, peer, local, now)
        link.start_session(self._new_session(link.framer, link.info))
        return link

    def _add(self, link: _StreamLink, now: float) -> None:
        self._add_link(link)

    def _admit(self, peer: str) -> bool:
        """Apply the connection limit before accepting *peer*; whether it may stay."""
        admitted, oldest = make_room(
            self.name, peer, self._links.values(), self.max_connections, self.connection_policy, _idle, logger
        )
        if oldest is not None:
            self._close_link(oldest, None)
        return admitted


def _idle(link: Link) -> bool:
    return link.idle and not link.closed


class TlsServer(TcpServer):
    """A Modbus/TCP Security server: TLS 1.2+, mutual authentication, roles.

    Give *ssl_context* (an :class:`ssl.SSLContext` of your own; it must
    not allow TLS older than 1.2) or *certfile*/*keyfile* (paths; *cafile*
    verifies client certificates, which are required unless
    *require_client_certificate* is False; *password* decrypts the key).

    The client's role, read from its certificate (extension
    ``1.3.6.1.4.1.50316.802.1``), is :attr:`ConnectionInfo.role`; a
    certificate that holds more than one role is refused.  *policy* (a
    :class:`RolePolicy`) decides what each role may do; a request it
    refuses is answered with exception 01.  Without a policy every
    authenticated client may do everything.  A client that does not finish
    its handshake within *handshake_timeout* seconds is dropped.  Port 802
    by default; the other options are those of :class:`TcpServer`.
    """

    transport = "tls"

    def __init__(
        self,
        answer: Answer,
        *,
        ssl_context: ssl.SSLContext | None = None,
        certfile: Any = None,
        keyfile: Any = None,
        cafile: Any = None,
        password: str | bytes | None = None,
        require_client_certificate: bool = True,
        policy: RolePolicy | None = None,
        port: int = 802,
        handshake_timeout: float = 10.0,
        **options: Any,
    ) -> None:
        super().__init__(answer, port=port, **options)
        self.ssl_context, self.policy = tls_server_settings(
            ssl_context, certfile, keyfile, cafile, password, require_client_certificate, policy
        )
        timeout = positive_or_none("handshake_timeout", handshake_timeout)
        assert timeout is not None
        self.handshake_timeout = timeout

    def _new_link(self, sock: socket.socket, peer: str, local: str, now: float) -> _StreamLink:
        wrapped = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return _TlsLink(self, wrapped, peer, local, now)  # the session starts after the handshake

    def _add(self, link: _StreamLink, now: float) -> None:
        assert isinstance(link, _TlsLink)
        self._add_link(link, report=False)
        link.handshake(now)
        if link.closed or not link.handshake_wants:
            return

        def expire(now: float) -> None:
            if not link.closed and link.handshake_wants:
                logger.warning(
                    "%s: %s: no TLS handshake within %.1f s: closing", self.name, link.info.peer, self.handshake_timeout
                )
                self._close_link(link, None)

        self._call_later(self.handshake_timeout, expire)
