"""Binding listening sockets and naming addresses, shared by TCP, TLS and UDP."""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Sequence

__all__ = ["bind_sockets", "format_address", "set_stream_options"]

_UNAVAILABLE = {errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT}


def format_address(address: tuple[object, ...] | str) -> str:
    """``"127.0.0.1:502"`` or ``"[::1]:502"`` from a socket address."""
    if isinstance(address, str):
        return address
    host, port = str(address[0]), address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind_sockets(
    hosts: str | Sequence[str] | None, port: int, kind: socket.SocketKind, backlog: int = 128
) -> list[socket.socket]:
    """Non-blocking sockets bound to every address *hosts* resolve to.

    *hosts* None or ``""`` means every interface (IPv4 and IPv6); a name
    binds each address it resolves to; a list binds each of its entries.
    With port 0 the first socket gets an ephemeral port and the others
    reuse it, so that all share one port.  An address family the machine
    lacks is skipped when another address could be bound.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 0xFFFF:
        raise ValueError(f"port must be 0..65535, got {port!r}")
    names: list[str | None] = [None] if not hosts else [hosts] if isinstance(hosts, str) else list(hosts)
    infos = []
    for name in names:
        try:
            infos += socket.getaddrinfo(name, port, type=kind, flags=socket.AI_PASSIVE)
        except socket.gaierror as error:
            raise OSError(f"cannot resolve {name!r}: {error}") from None
    seen: set[tuple[object, ...]] = set()
    sockets: list[socket.socket] = []
    skipped: OSError | None = None
    try:
        for family, socktype, proto, _, sockaddr in infos:
            if sockaddr in seen:
                continue
            seen.add(sockaddr)
            sock = socket.socket(family, socktype, proto)
            try:
                if kind == socket.SOCK_STREAM and hasattr(socket, "SO_REUSEADDR") and socket.SO_REUSEADDR:
                    # Rebinding right after a stop must not wait out TIME_WAIT.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    with contextlib.suppress(OSError, AttributeError):
                        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                if sockets and port == 0:
                    sockaddr = (sockaddr[0], sockets[0].getsockname()[1], *sockaddr[2:])
                try:
                    sock.bind(sockaddr)
                except OSError as error:
                    if error.errno in _UNAVAILABLE and len(infos) > 1:
                        skipped = error
                        sock.close()
                        continue
                    raise OSError(error.errno, f"cannot bind {format_address(sockaddr)}: {error.strerror}") from None
                if kind == socket.SOCK_STREAM:
                    sock.listen(backlog)
                sock.setblocking(False)
            except BaseException:
                sock.close()
                raise
            sockets.append(sock)
        if not sockets:
            raise skipped or OSError(f"{hosts!r} resolves to no address")
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def set_stream_options(sock: socket.socket, keepalive: bool = True) -> None:
    """Non-blocking, TCP_NODELAY (answers leave at once) and keepalive (dead peers are found)."""
    sock.setblocking(False)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if not keepalive:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        # Probe after a minute of silence instead of the system's two hours.
        if hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 60)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 10)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 5)
