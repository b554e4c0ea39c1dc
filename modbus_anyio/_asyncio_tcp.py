"""The asyncio-native data path of TLS servers, and of plain TCP where the reactor cannot run.

(Plain TCP on Linux is served by ``_reactor``, on every loop.)

One :class:`asyncio.BufferedProtocol` per connection: each read lands in a
buffer the connections of a server share, and ``data_received`` feeds a copy
of it to the session with the loop's time (the clock anyio's deadlines use on
asyncio) and writes synchronous answers at once, so a request costs no task
switch.  (A plain :class:`asyncio.Protocol` gets a new 256 KiB bytes object
from asyncio's own loop per read: above glibc's mmap threshold, that is an
mmap, an mremap and a munmap a request, and half the throughput.)
A task is started only while a connection is blocked on an async handler
or a paused :class:`~modbus_anyio.RawReply`; reading pauses meanwhile, so
requests are executed and answered in order.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import TYPE_CHECKING, cast

from ._net import format_address, set_stream_options
from ._security import client_role
from ._server import _fed, _Record
from ._session import Session

if TYPE_CHECKING:
    from ._server import TcpServer

__all__ = ["start_asyncio_servers"]

logger = logging.getLogger(__name__)

READ_SIZE = 65536


async def start_asyncio_servers(
    server: TcpServer, sockets: list[socket.socket], context: ssl.SSLContext | None
) -> list[asyncio.AbstractServer]:
    """Serve *sockets* with :class:`ModbusProtocol` connections of *server*."""
    loop = asyncio.get_running_loop()
    servers: list[asyncio.AbstractServer] = []
    # One buffer for every connection: each read is consumed before the next one starts.
    buffer = memoryview(bytearray(READ_SIZE))
    try:
        for sock in sockets:
            servers.append(
                await loop.create_server(
                    lambda: ModbusProtocol(server, loop, context, buffer), sock=sock, start_serving=True
                )
            )
    except BaseException:
        for started in servers:
            started.close()
        raise
    return servers


class ModbusProtocol(asyncio.BufferedProtocol, _Record):
    """One TCP (or TLS) connection on the asyncio path."""

    __slots__ = (
        "admitted",
        "buffer",
        "clock",
        "closing",
        "context",
        "early",
        "frame_timer",
        "handshake",
        "idle_timer",
        "loop",
        "paused",
        "server",
        "transport",
        "worker",
        "write",
        "write_paused",
    )

    def __init__(
        self,
        server: TcpServer,
        loop: asyncio.AbstractEventLoop,
        context: ssl.SSLContext | None = None,
        buffer: memoryview | None = None,
    ) -> None:
        self.server = server
        self.buffer = memoryview(bytearray(READ_SIZE)) if buffer is None else buffer
        self.loop = loop
        self.clock = loop.time  # the clock anyio's deadlines use on asyncio
        self.context = context
        self.handshake: asyncio.Task[None] | None = None
        self.early: list[bytes] = []  # data the TLS layer delivered before start_tls returned
        self.transport: asyncio.Transport | None = None
        self.admitted = False
        self.closing = False
        self.paused = False
        self.write_paused = False
        self.frame_timer: asyncio.TimerHandle | None = None
        self.idle_timer: asyncio.TimerHandle | None = None
        self.worker: asyncio.Task[None] | None = None

    # -- asyncio.BufferedProtocol ----------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports do not derive from asyncio's.
        stream = cast("asyncio.Transport", transport)
        self.transport = stream
        set_stream_options(stream.get_extra_info("socket"), self.server.keepalive)
        if self.context is not None:
            # The handshake is ours (not create_server's), so that a refused
            # client is logged like on trio.  Nothing may be read before
            # start_tls takes the transport over (it resumes reading): a
            # ClientHello read here would be lost to the TLS layer.  (uvloop
            # starts reading after connection_made regardless: TcpServer
            # serves TLS there through anyio streams.)
            stream.pause_reading()
            self.handshake = self.loop.create_task(self._tls_handshake(stream, self.context))
            return
        self._established(stream)

    async def _tls_handshake(self, transport: asyncio.Transport, context: ssl.SSLContext) -> None:
        peer = format_address(transport.get_extra_info("peername"))
        try:
            tls = await self.loop.start_tls(
                transport, self, context, server_side=True, ssl_handshake_timeout=self.server._handshake_timeout()
            )
        except (TimeoutError, OSError) as error:
            logger.warning(
                "%s: TLS handshake with %s failed: %s", self.server.name, peer, error or type(error).__name__
            )
            transport.abort()
            return
        finally:
            self.handshake = None
        if tls is None:  # pragma: no cover - the connection went away during the handshake
            transport.abort()
            return
        self.transport = tls
        self._established(tls)

    def _established(self, transport: asyncio.Transport) -> None:
        try:
            self._start(transport)
        except Exception:
            # A bug (a framer factory that raises...) costs this connection only.
            logger.exception("%s: a connection failed", self.server.name)
            self.closing = True
            transport.abort()

    def _start(self, transport: asyncio.Transport) -> None:
        server = self.server
        self.write = transport.write
        peer = format_address(transport.get_extra_info("peername"))
        local = format_address(transport.get_extra_info("sockname"))
        role = None
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            try:
                role = client_role(ssl_object.getpeercert(binary_form=True))
            except ValueError as error:
                logger.warning("%s: %s: %s: closing", server.name, peer, error)
                self.closing = True
                transport.abort()
                return
        framer = server._framer()
        self.info = server._info(server.transport, peer, local, framer, role)
        self.session: Session = server._new_session(framer, self.info)
        self.last_activity = self.loop.time()
        if not server._admit(self):
            self.closing = True
            transport.close()
            return
        self.admitted = True
        server.hooks.connected(True, self.info)
        if server.idle_timeout is not None:
            self.idle_timer = self.loop.call_at(self.last_activity + server.idle_timeout, self._check_idle)
        early, self.early = self.early, []
        for data in early:
            self.data_received(data)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self.buffer[:nbytes]))

    def data_received(self, data: bytes) -> None:
        if not self.admitted:
            if not self.closing:
                self.early.append(data)
            return
        now = self.clock()
        self.last_activity = now
        session = self.session
        out = _fed(self, session.receive, data, now)
        if out is None:
            return
        if out:
            self.write(out)
        if session.blocked is not None:
            self._start_worker()
        elif self.frame_timer is None and session.next_deadline() is not None:
            self._arm_frame_timer()

    def eof_received(self) -> bool | None:
        # Answers to requests already received have been written; close.
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        if self.handshake is not None:
            self.handshake.cancel()
        for timer in (self.frame_timer, self.idle_timer):
            if timer is not None:
                timer.cancel()
        self.frame_timer = self.idle_timer = None
        if self.worker is not None:
            self.worker.cancel()
        if self.admitted:
            self.admitted = False
            self.server._forget(self)
            self.server.hooks.connected(False, self.info)

    def pause_writing(self) -> None:
        # The client does not read its answers: stop reading its requests.
        self.write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._update_reading()

    # -- _Record ---------------------------------------------------------------

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def stop_reading(self) -> None:
        self.paused = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    # -- internals -------------------------------------------------------------

    def _update_reading(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self.write_paused or self.worker is not None or self.server._listening is False:
            if not self.paused:
                self.paused = True
                transport.pause_reading()
        elif self.paused:
            self.paused = False
            transport.resume_reading()

    def _start_worker(self) -> None:
        if self.worker is None and not self.closing:
            self.worker = self.loop.create_task(self._work())
            self._update_reading()

    async def _work(self) -> None:
        from ._server import _unblock

        session = self.session
        transport = self.transport
        assert transport is not None

        async def send(data: bytes) -> None:
            transport.write(data)

        try:
            while session.blocked is not None and not self.closing:
                out = await _unblock(session, send)
                if out and not transport.is_closing():
                    transport.write(out)
        finally:
            self.worker = None
        if not self.closing:
            self._update_reading()
            if self.frame_timer is None and session.next_deadline() is not None:
                self._arm_frame_timer()

    def _arm_frame_timer(self) -> None:
        deadline = self.session.next_deadline()
        if deadline is not None:
            self.frame_timer = self.loop.call_at(deadline, self._frame_timeout)

    def _frame_timeout(self) -> None:
        self.frame_timer = None
        if self.closing:
            return
        session = self.session
        deadline = session.next_deadline()
        if deadline is None:
            return
        now = self.loop.time()
        if now < deadline:
            self.frame_timer = self.loop.call_at(deadline, self._frame_timeout)
            return
        out = _fed(self, session.timeout, now)
        if out is None:
            return
        if out:
            self.transport.write(out)  # type: ignore[union-attr]
        if session.blocked is not None:
            self._start_worker()
        elif session.next_deadline() is not None:
            self._arm_frame_timer()

    def _check_idle(self) -> None:
        self.idle_timer = None
        timeout = self.server.idle_timeout
        if self.closing or timeout is None:
            return
        now = self.loop.time()
        if self.worker is None and now - self.last_activity >= timeout:
            logger.info("%s: idle for %.1f s: closing", self.info.peer, timeout)
            self.close()
            return
        self.idle_timer = self.loop.call_at(max(now, self.last_activity) + timeout, self._check_idle)
