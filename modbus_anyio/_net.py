"""Sockets for the TCP, TLS and UDP servers: binding, naming, options, connection limits.

This module imports neither anyio nor asyncio: ``modbus_sync`` uses it too.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import logging
import socket
from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol, TypeVar

from ._handler import ConnectionInfo

__all__ = [
    "ConnectionPolicy",
    "SocketAddresses",
    "as_connection_policy",
    "bind_sockets",
    "check_max_connections",
    "check_port",
    "format_address",
    "make_room",
    "set_stream_options",
]

# bind() errors that mean "this machine has no such address or family".
_UNAVAILABLE = {errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT}


class ConnectionPolicy(enum.StrEnum):
    """What a server does when a client connects while *max_connections* are open."""

    CLOSE_OLDEST_IDLE = "close_oldest_idle"
    """Close the connection that has been quiet longest (not one whose request is
    being answered) and accept the new one; refuse it when every connection is busy."""
    REFUSE = "refuse"
    """Close the new connection at once."""


def as_connection_policy(value: ConnectionPolicy | str) -> ConnectionPolicy:
    """*value* as a :class:`ConnectionPolicy`, or a ValueError that lists the choices."""
    try:
        return ConnectionPolicy(value)
    except ValueError:
        choices = ", ".join(repr(policy.value) for policy in ConnectionPolicy)
        raise ValueError(f"connection_policy must be one of {choices}, got {value!r}") from None


def check_port(port: int) -> int:
    """*port* checked to be a TCP/UDP port number (0: any free port)."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 0xFFFF:
        raise ValueError(f"port must be 0..65535, got {port!r}")
    return port


def check_max_connections(value: int | None) -> int | None:
    """*value* checked to be a connection count of at least 1, or None (no limit)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"max_connections must be at least 1, or None, got {value!r}")
    return value


def format_address(address: object) -> str:
    """``"127.0.0.1:502"``, ``"[::1]:502"``, or ``str(address)`` for other kinds."""
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = str(address[0]), address[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(address)


def bind_sockets(
    hosts: str | Sequence[str] | None, port: int, kind: socket.SocketKind, backlog: int = 128
) -> list[socket.socket]:
    """Bound (and, for TCP, listening) non-blocking sockets for every address of *hosts*.

    *hosts* None or ``""`` means every interface (IPv4 and IPv6); a name
    binds each address it resolves to; a list binds each of its entries.
    IPv6 sockets are IPv6 only, so that IPv4 gets its own socket.  With
    port 0 the first socket picks a free port and the others bind the same
    one.  An address or family the machine lacks (no IPv6) is skipped when
    there is another address to bind.
    """
    check_port(port)
    names: list[str | None] = [None] if not hosts else [hosts] if isinstance(hosts, str) else list(hosts)
    addresses: list[tuple[int, tuple[Any, ...]]] = []
    for name in names:
        try:
            infos = socket.getaddrinfo(name, port, type=kind, flags=socket.AI_PASSIVE)
        except socket.gaierror as error:
            raise OSError(f"cannot resolve {name!r}: {error}") from None
        for info in infos:
            if info[0] in (socket.AF_INET, socket.AF_INET6) and (info[0], info[4]) not in addresses:
                addresses.append((info[0], info[4]))
    sockets: list[socket.socket] = []
    skipped: OSError | None = None
    try:
        for family, address in addresses:
            try:
                sock = socket.socket(family, kind)
            except OSError as error:
                if error.errno in _UNAVAILABLE and len(addresses) > 1:
                    skipped = error
                    continue
                raise
            try:
                if kind == socket.SOCK_STREAM:
                    # Rebinding right after a stop must not wait out TIME_WAIT.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    with contextlib.suppress(OSError, AttributeError):
                        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                if port == 0 and sockets:
                    address = (address[0], sockets[0].getsockname()[1], *address[2:])
                try:
                    sock.bind(address)
                except OSError as error:
                    if error.errno in _UNAVAILABLE and len(addresses) > 1:
                        skipped = error
                        sock.close()
                        continue
                    raise OSError(error.errno, f"cannot bind {format_address(address)}: {error.strerror}") from None
                if kind == socket.SOCK_STREAM:
                    sock.listen(backlog)
                sock.setblocking(False)
            except BaseException:
                sock.close()
                raise
            sockets.append(sock)
        if not sockets:
            raise skipped or OSError(f"no address to bind for {hosts!r}")
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def set_stream_options(sock: Any, keepalive: bool = True) -> None:
    """TCP_NODELAY (answers leave at once) and keepalive (dead peers are found) on an accepted socket.

    *sock* is a socket or asyncio's ``TransportSocket``; None is ignored.
    Keepalive probes after 60 s of silence, every 10 s, 5 times, where the
    system lets us say so (its own default waits two hours).
    """
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if not keepalive:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 5)):
            option = getattr(socket, name, None)
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)


class _Connection(Protocol):
    @property
    def info(self) -> ConnectionInfo: ...

    @property
    def last_activity(self) -> float: ...


_C = TypeVar("_C", bound=_Connection)


def make_room(
    server_name: str,
    newcomer: str,
    connections: Collection[_C],
    limit: int | None,
    policy: ConnectionPolicy,
    is_idle: Callable[[_C], bool],
    log: logging.Logger,
) -> tuple[bool, _C | None]:
    """Apply *max_connections* to a newcomer: (admit it?, the open connection to close for it).

    Under the limit: admitted, nothing to close.  At the limit *policy*
    decides: refuse the newcomer, or close the connection quiet the
    longest among the idle ones (refusing the newcomer when none is idle).
    Each decision at the limit is a warning on *log*, the server's logger.
    """
    if limit is None or len(connections) < limit:
        return True, None
    if policy == ConnectionPolicy.REFUSE:
        log.warning("%s: %d connections open (max_connections): refusing %s", server_name, len(connections), newcomer)
        return False, None
    idle = [connection for connection in connections if is_idle(connection)]
    if not idle:
        log.warning(
            "%s: %d connections open and all busy (max_connections): refusing %s",
            server_name,
            len(connections),
            newcomer,
        )
        return False, None
    oldest = min(idle, key=lambda connection: connection.last_activity)
    log.warning(
        "%s: %d connections open (max_connections): closing the oldest idle one, %s, for %s",
        server_name,
        len(connections),
        oldest.info.peer,
        newcomer,
    )
    return True, oldest


class SocketAddresses:
    """The bound addresses of a TCP, TLS or UDP server (a mixin of both packages' servers)."""

    host: str | Sequence[str] | None
    _bound: list[tuple[str, int]]
    _requested_port: int

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The bound ``(host, port)`` pairs (empty until the server listens)."""
        return list(self._bound)

    @property
    def port(self) -> int:
        """The bound port (the requested one until the server listens)."""
        return self._bound[0][1] if self._bound else self._requested_port

    def _address_text(self) -> str:
        return ", ".join(format_address(address) for address in self._bound)

    def _init_addresses(self, host: str | Sequence[str] | None, port: int) -> None:
        self.host = host
        self._requested_port = check_port(port)
        self._bound = []

    def _bind(self, kind: socket.SocketKind, backlog: int = 128) -> list[socket.socket]:
        """Bind :attr:`host` on the requested port (see :func:`bind_sockets`); note the addresses."""
        sockets = bind_sockets(self.host, self._requested_port, kind, backlog)
        self._bound = [sock.getsockname()[:2] for sock in sockets]
        return sockets
