"""A Modbus UDP server on blocking sockets: one datagram, one request."""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from modbus_anyio._net import SocketAddresses, format_address
from modbus_anyio._options import positive_or_none
from modbus_anyio._session import FramerSpec, build_framer
from modbus_core import RemoteProtocolError

from ._server import Answer, Link, Server, reason

__all__ = ["UdpServer"]

logger = logging.getLogger(__name__)

_DATAGRAM_SIZE = 65535
_DATAGRAMS_PER_WAKE = 64


class _PeerLink(Link):
    """The requests of one UDP peer: its own framer and session, answers sent back to it."""

    __slots__ = ("address", "key", "sock")

    joins_writes = False  # one answer, one datagram

    def __init__(self, server: UdpServer, sock: socket.socket, address: Any, local: str, now: float) -> None:
        framer = build_framer(server._framer_spec, datagram=True)
        super().__init__(server, server._info("udp", format_address(address), local, framer), now)
        self.sock = sock
        self.address = address
        self.key = (sock.fileno(), address)
        self.start_session(server._new_session(framer, self.info))

    def write_some(self, data: bytes) -> int:
        try:
            self.sock.sendto(data, self.address)
        except (BlockingIOError, InterruptedError):
            logger.debug("%s: %s: send buffer full, answer dropped", self.server.name, self.info.peer)
        except OSError as error:
            # The peer's port is closed (ICMP unreachable): UDP is lossy, carry on.
            logger.debug("%s: %s: answer not sent: %s", self.server.name, self.info.peer, error)
        return len(data)


class UdpServer(SocketAddresses, Server):
    """A Modbus UDP server (MBAP by default; RTU or ASCII datagrams too).

    *host* defaults to 127.0.0.1 (None: every interface, IPv4 and IPv6);
    *port* 0 picks a free port.  Each datagram holds one request and gets
    its answer in one datagram.  A peer (address and port) is remembered
    while it is active, so that handlers see a :class:`ConnectionInfo`
    for it: at most *peer_limit* peers (the least recently heard one is
    forgotten first), and a peer silent for *idle_timeout* seconds is
    forgotten.  The common options are those of :class:`TcpServer`.
    """

    transport = "udp"

    def __init__(
        self,
        answer: Answer,
        *,
        host: str | Sequence[str] | None = "127.0.0.1",
        port: int = 502,
        framer: FramerSpec = "socket",
        peer_limit: int = 256,
        idle_timeout: float | None = 60.0,
        **options: Any,
    ) -> None:
        super().__init__(answer, framer=framer, **options)
        self._init_addresses(host, port)
        if isinstance(peer_limit, bool) or not isinstance(peer_limit, int) or peer_limit < 1:
            raise ValueError(f"peer_limit must be a positive integer, got {peer_limit!r}")
        self.peer_limit = peer_limit
        self.idle_timeout = positive_or_none("idle_timeout", idle_timeout)
        self._sockets: list[socket.socket] = []
        self._peers: OrderedDict[tuple[int, Any], _PeerLink] = OrderedDict()

    def _open_transport(self, selector: selectors.BaseSelector) -> None:
        self._sockets = self._bind(socket.SOCK_DGRAM)
        for sock in self._sockets:
            selector.register(sock, selectors.EVENT_READ, self._receiver(sock))

    def _close_transport(self) -> None:
        # The sockets stay open while answers drain: only reading stops.
        for sock in self._sockets:
            if self._selector is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(sock)

    def _close_everything(self) -> None:
        super()._close_everything()
        sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()

    def _receiver(self, sock: socket.socket) -> Callable[[int, float], None]:
        local = format_address(sock.getsockname())

        def receive(mask: int, now: float) -> None:
            for _ in range(_DATAGRAMS_PER_WAKE):
                try:
                    data, address = sock.recvfrom(_DATAGRAM_SIZE)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError as error:  # ICMP errors surface here on some systems
                    logger.debug("%s: receive failed: %s", self.name, error)
                    continue
                link = self._peer(sock, address, local, now)
                # While a peer's request is being answered (a handler
                # thread, a paused raw reply), its next datagrams wait in
                # its framer: one request of a peer at a time, in order.
                try:
                    link.receive(data, now)
                except RemoteProtocolError as error:  # datagram framers drop instead; kept for custom ones
                    logger.info("%s: %s: %s", self.name, link.info.peer, error)
                except Exception as error:
                    logger.exception("%s: error on a datagram from %s", self.name, link.info.peer)
                    self._close_link(link, reason(error))

        return receive

    def _peer(self, sock: socket.socket, address: Any, local: str, now: float) -> _PeerLink:
        key = (sock.fileno(), address)
        link = self._peers.get(key)
        if link is not None:
            self._peers.move_to_end(key)
            return link
        link = _PeerLink(self, sock, address, local, now)
        self._peers[key] = link
        self._add_link(link, report=False)  # a datagram is no connection: trace_connect is not called
        while len(self._peers) > self.peer_limit:
            oldest = next(iter(self._peers.values()))
            if oldest.busy:
                break
            self._close_link(oldest, None)
        return link

    def _close_link(self, link: Link, why: str | None) -> None:
        if isinstance(link, _PeerLink):
            self._peers.pop(link.key, None)
        super()._close_link(link, why)

    def _idle_expired(self, link: Link, idle_timeout: float) -> None:
        self._close_link(link, None)  # forgetting a quiet peer is routine
