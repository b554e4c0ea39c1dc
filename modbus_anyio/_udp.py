"""The UDP server: one datagram, one ADU (MBAP by default, RTU over UDP too).

Each peer address gets its own session (kept for the *peer_limit* most
recent peers), so that an async handler answering one peer's request
holds back only that peer's later requests.  On asyncio the datagrams come
through an :class:`asyncio.DatagramProtocol`; on trio through anyio's
UDP socket.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import anyio
import anyio.abc

from modbus_core import RemoteProtocolError

from ._net import SocketAddresses, format_address
from ._server import Answer, ServerBase, _current_backend_is_asyncio, _Record, _unblock, event_loop_clock
from ._session import FramerSpec, Session, build_framer

__all__ = ["UdpServer", "serve_udp"]

logger = logging.getLogger(__name__)


class _Peer(_Record):
    __slots__ = ("address", "send", "working")

    def __init__(self, session: Session, address: Any, now: float) -> None:
        self.session = session
        self.info = session.info
        self.address = address
        self.last_activity = now
        self.working = False

    def close(self) -> None:
        pass

    def stop_reading(self) -> None:
        pass


class UdpServer(SocketAddresses, ServerBase):
    """A Modbus UDP server.  *host* defaults to 127.0.0.1 (None: every
    interface, IPv4 and IPv6); *port* 0 picks a free port.  UDP has no
    connections: ``trace_connect`` is never called, and :attr:`connections`
    lists the *peer_limit* most recent peers."""

    transport = "udp"

    def __init__(
        self,
        answer: Answer,
        *,
        host: str | Sequence[str] | None = "127.0.0.1",
        port: int = 502,
        framer: FramerSpec = "socket",
        peer_limit: int = 256,
        **options: Any,
    ) -> None:
        super().__init__(answer, framer=framer, **options)
        self._init_addresses(host, port)
        self.peer_limit = peer_limit
        self._peers: OrderedDict[tuple[int, Any], _Peer] = OrderedDict()
        self._closers: list[Any] = []
        self._sockets: list[socket.socket] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def _prepare(self) -> None:
        sockets = self._sockets = self._bind(socket.SOCK_DGRAM)
        if _current_backend_is_asyncio():
            loop = asyncio.get_running_loop()
            try:
                for index, sock in enumerate(sockets):
                    transport, _ = await loop.create_datagram_endpoint(
                        functools.partial(_UdpProtocol, self, index), sock=sock
                    )
                    self._closers.append(transport)
            except BaseException:
                for sock in sockets:
                    sock.close()
                raise

    async def _open(self, task_group: anyio.abc.TaskGroup) -> None:
        if not self._closers:
            for index, sock in enumerate(self._sockets):
                udp = await anyio.abc.UDPSocket.from_socket(sock)
                self._closers.append(udp)
                task_group.start_soon(self._receive_loop, udp, index, task_group)

    async def _close_listeners(self) -> None:
        closers, self._closers = self._closers, []
        for closer in closers:
            # An anyio socket on trio; an asyncio (or uvloop) transport otherwise.
            if isinstance(closer, anyio.abc.UDPSocket):
                await closer.aclose()
            else:
                closer.close()

    async def _finish_connections(self) -> None:
        # Sockets are closed already; peers whose async answer is pending get
        # shutdown_timeout to finish (their answer is dropped: nothing to send on).
        with anyio.move_on_after(self.shutdown_timeout):
            while any(peer.working for peer in self._peers.values()):
                await anyio.sleep(0.01)
        for task in self._tasks:
            task.cancel()
        self._peers.clear()

    # -- peers ------------------------------------------------------------------

    def _peer(self, index: int, address: Any, local: str, now: float) -> _Peer:
        key = (index, address)
        peer = self._peers.get(key)
        if peer is not None:
            self._peers.move_to_end(key)
            peer.last_activity = now
            return peer
        framer = build_framer(self._framer_spec, datagram=True)
        info = self._info("udp", format_address(address), local, framer)
        peer = _Peer(self._new_session(framer, info), address, now)
        self._peers[key] = peer
        while len(self._peers) > self.peer_limit:
            oldest_key = next(iter(self._peers))
            if self._peers[oldest_key].working:
                break
            del self._peers[oldest_key]
        return peer

    @property
    def connections(self) -> list[Any]:
        """The peers heard from recently (UDP has no connections)."""
        return [peer.info for peer in self._peers.values()]

    def _receive(self, peer: _Peer, data: bytes, now: float) -> bytes:
        try:
            return peer.session.receive(data, now)
        except RemoteProtocolError as error:  # pragma: no cover - datagram framers drop instead
            logger.info("%s: %s", peer.info.peer, error)
            return b""

    async def _receive_loop(self, udp: anyio.abc.UDPSocket, index: int, task_group: anyio.abc.TaskGroup) -> None:
        local = format_address(udp.extra(anyio.abc.SocketAttribute.local_address))
        clock = event_loop_clock()
        while True:
            try:
                data, address = await udp.receive()
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream):
                return
            except OSError as error:
                # Some systems report an ICMP "port unreachable" for an earlier
                # answer on the next receive (Windows): one peer's trouble only.
                logger.debug("%s: %s", self.name, error)
                continue
            now = clock()
            peer = self._peer(index, address, local, now)
            out = self._receive(peer, data, now)
            if out:
                try:
                    await udp.sendto(out, address[0], address[1])
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    return
                except OSError as error:
                    logger.debug("%s: %s: %s", self.name, peer.info.peer, error)
            if peer.session.blocked is not None and not peer.working:
                peer.working = True
                task_group.start_soon(self._work, peer, udp)

    async def _work(self, peer: _Peer, udp: anyio.abc.UDPSocket | asyncio.DatagramTransport) -> None:
        async def send(data: bytes) -> None:
            await _send(udp, data, peer.address)

        try:
            while peer.session.blocked is not None:
                out = await _unblock(peer.session, send)
                if out:
                    await send(out)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            pass
        finally:
            peer.working = False


async def _send(udp: anyio.abc.UDPSocket | asyncio.DatagramTransport, data: bytes, address: Any) -> None:
    if isinstance(udp, anyio.abc.UDPSocket):
        await udp.sendto(data, address[0], address[1])
    elif not udp.is_closing():
        udp.sendto(data, address)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: UdpServer, index: int) -> None:
        self.server = server
        self.index = index
        self.transport: asyncio.DatagramTransport | None = None
        self.local = ""
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.local = format_address(transport.get_extra_info("sockname"))

    def datagram_received(self, data: bytes, addr: Any) -> None:
        server = self.server
        now = self.loop.time()
        peer = server._peer(self.index, addr, self.local, now)
        out = server._receive(peer, data, now)
        transport = self.transport
        assert transport is not None
        if out:
            transport.sendto(out, addr)
        if peer.session.blocked is not None and not peer.working:
            peer.working = True
            task = self.loop.create_task(server._work(peer, transport))
            server._tasks.add(task)
            task.add_done_callback(server._tasks.discard)

    def error_received(self, exc: Exception) -> None:
        logger.debug("%s: %s", self.server.name, exc)


async def serve_udp(
    answer: Answer, *, task_status: anyio.abc.TaskStatus[Any] = anyio.TASK_STATUS_IGNORED, **options: Any
) -> None:
    """``UdpServer(answer, **options).serve_forever()``: reports the server object when listening."""
    await UdpServer(answer, **options).serve_forever(task_status=task_status)
