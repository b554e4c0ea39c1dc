"""A Modbus UDP server on blocking sockets: one datagram, one request."""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from modbus_anyio._handler import ConnectionInfo, Handler, next_connection_id
from modbus_core import CustomFunction, DeviceIdentity, FunctionTable, ServerContext

from ._net import bind_sockets, format_address
from ._server import Link, Server, TraceConnect, TracePacket, TracePdu, _reason
from ._tcp import _encoder

__all__ = ["UdpServer"]

logger = logging.getLogger(__name__)

_DATAGRAM_SIZE = 65535
_DATAGRAMS_PER_WAKE = 64


class _PeerLink(Link):
    """The requests of one UDP peer: its own framer state, answers sent back to it."""

    __slots__ = ("address", "sock")

    joins_writes = False  # one answer, one datagram

    def __init__(self, server: Server, sock: socket.socket, address: Any, info: ConnectionInfo, now: float) -> None:
        conn = server.new_connection()
        super().__init__(server, conn, info, now)
        self.info = type(info)(
            transport=info.transport,
            peer=info.peer,
            local=info.local,
            server=info.server,
            connection_id=info.connection_id,
            encode=_encoder(conn.framer),
        )
        self.sock = sock
        self.address = address

    def write_some(self, data: bytes) -> int:
        try:
            self.sock.sendto(data, self.address)
        except (BlockingIOError, InterruptedError):
            logger.debug("%s: send buffer full, answer dropped", self)
        except OSError as error:
            # The peer's port is closed (ICMP unreachable): UDP is lossy, carry on.
            logger.debug("%s: answer not sent: %s", self, error)
        return len(data)


class UdpServer(Server):
    """A Modbus UDP server (MBAP by default; RTU or ASCII datagrams too).

    Each datagram holds one request and gets its answer in one datagram.
    A peer (address and port) is remembered as a "connection" while it is
    active, so that handlers see a :class:`ConnectionInfo` for it; at most
    *max_connections* peers are remembered (the least recently heard one
    is forgotten first), and a peer silent for *idle_timeout* seconds is
    forgotten.  Other options are those of :class:`TcpServer`.
    """

    transport = "udp"

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
        idle_timeout: float | None = 60.0,
        max_connections: int = 1000,
        handler_threads: int = 0,
        shutdown_timeout: float = 5.0,
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
            frame_timeout=None,
            handler_threads=handler_threads,
            shutdown_timeout=shutdown_timeout,
            datagram=True,
        )
        if isinstance(max_connections, bool) or not isinstance(max_connections, int) or max_connections < 1:
            raise ValueError(f"max_connections must be a positive integer, got {max_connections!r}")
        self.host = host
        self._requested_port = port
        self.max_connections = max_connections
        self._sockets: list[socket.socket] = []
        self._addresses: list[tuple[str, int]] = []
        self._peers: OrderedDict[tuple[socket.socket, Any], _PeerLink] = OrderedDict()

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The bound ``(host, port)`` pairs (empty before the server opened)."""
        return list(self._addresses)

    @property
    def port(self) -> int:
        """The bound port (the requested one before the server opened)."""
        return self._addresses[0][1] if self._addresses else self._requested_port

    def describe(self) -> str:
        return ", ".join(format_address(address) for address in self._addresses) + " (udp)"

    def _open_transport(self, selector: selectors.BaseSelector) -> None:
        self._sockets = bind_sockets(self.host, self._requested_port, socket.SOCK_DGRAM)
        self._addresses = [sock.getsockname()[:2] for sock in self._sockets]
        for sock in self._sockets:
            selector.register(sock, selectors.EVENT_READ, self._receiver(sock))

    def _close_transport(self) -> None:
        # Sockets stay open while draining (answers go out through them);
        # only reading stops.
        for sock in self._sockets:
            if self._selector is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(sock)

    def _close_everything(self) -> None:
        super()._close_everything()
        for sock in self._sockets:
            sock.close()
        self._sockets = []

    def _receiver(self, sock: socket.socket) -> Any:
        local = format_address(sock.getsockname())

        def receive(mask: int, now: float) -> None:
            for _ in range(_DATAGRAMS_PER_WAKE):
                try:
                    data, address = sock.recvfrom(_DATAGRAM_SIZE)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError as error:  # ICMP errors surface here on some systems
                    logger.debug("%s: receive failed: %s", self, error)
                    continue
                link = self._peer(sock, address, local, now)
                try:
                    link.receive(data, now)
                except Exception as error:
                    logger.exception("%s: error on a datagram from %s", self, link.info.peer)
                    self.close_link(link, _reason(error))

        return receive

    def _peer(self, sock: socket.socket, address: Any, local: str, now: float) -> _PeerLink:
        key = (sock, address)
        link = self._peers.get(key)
        if link is not None and not link.closed:
            self._peers.move_to_end(key)
            return link
        while len(self._peers) >= self.max_connections:
            _, oldest = self._peers.popitem(last=False)
            self.close_link(oldest, None)
        info = ConnectionInfo(
            transport="udp",
            peer=format_address(address),
            local=local,
            server=self.name,
            connection_id=next_connection_id(),
        )
        link = _PeerLink(self, sock, address, info, now)
        self._peers[key] = link
        self.add_link(link)
        return link

    def close_link(self, link: Link, reason: str | None) -> None:
        if isinstance(link, _PeerLink):
            self._peers.pop((link.sock, link.address), None)
        super().close_link(link, reason)

    def idle_expired(self, link: Link, idle_timeout: float) -> None:
        self.close_link(link, None)  # forgetting a quiet peer is routine
