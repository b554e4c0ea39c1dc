"""Request handlers: what a server calls for each request, and what it tells them.

A server answers requests either from a :class:`modbus_core.ServerContext`
(it builds a :class:`modbus_core.Dispatcher`: the fast path) or through a
:data:`Handler`, a callable that gets the :class:`~modbus_core.Request` and
the :class:`ConnectionInfo` of the connection it arrived on, and returns a
:class:`~modbus_core.Response`, a :class:`RawReply`, None (no answer), or an
awaitable of one of these (a gateway, a database).  Requests on one
connection are always answered in the order they arrived.

This module imports neither anyio nor asyncio: ``modbus_sync`` uses it too.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Awaitable, Callable
from typing import TypeAlias

from modbus_core import Dispatcher, Framer, MbapFramer, Request, Response

__all__ = ["ConnectionInfo", "Handler", "RawReply", "dispatcher_handler", "new_connection_info", "next_connection_id"]

_MBAP = MbapFramer()


def _encode_mbap(response: Response) -> bytes:
    return _MBAP.encode(response.unit, response.transaction_id, response.pdu.encode())


@dataclasses.dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """One client connection (or serial line, or UDP peer), as handlers and hooks see it.

    *transport* is ``"tcp"``, ``"tls"``, ``"udp"``, ``"serial"`` or
    ``"stream"`` (a user's byte stream).  *peer* and *local* are printable
    addresses (``"127.0.0.1:50312"``, ``"[::1]:502"``, ``"/dev/ttyUSB0"``).
    *role* is the TLS client's role (Modbus/TCP Security), None without one.
    *server* is the name given to the server.  *connection_id* is unique
    within the process and increases.  :attr:`encode` frames a
    :class:`~modbus_core.Response` exactly as this connection would send it
    (for :class:`RawReply` fault injection); a ConnectionInfo built by hand
    encodes as Modbus TCP (MBAP).
    """

    transport: str
    peer: str
    local: str
    role: str | None = None
    server: str = ""
    connection_id: int = 0
    encode: Callable[[Response], bytes] = dataclasses.field(default=_encode_mbap, repr=False, compare=False)


@dataclasses.dataclass(frozen=True, slots=True)
class RawReply:
    """Bytes of the handler's choosing, written instead of an encoded response.

    *parts* are written in order: :class:`bytes` as they are, numbers as
    pauses in seconds between writes.  For fault injection: junk, a
    response split in two with a gap, a wrong CRC.  ``RawReply((b"...",))``
    or ``RawReply.of(b"\\x00\\x01", 0.5, b"...")``.
    """

    parts: tuple[bytes | float, ...]

    def __post_init__(self) -> None:
        parts = tuple(self.parts)
        for part in parts:
            if isinstance(part, bytes | bytearray | memoryview):
                continue
            if isinstance(part, bool) or not isinstance(part, int | float) or part < 0:
                raise ValueError(f"RawReply parts are bytes or non-negative pauses in seconds, got {part!r}")
        object.__setattr__(
            self, "parts", tuple(bytes(p) if isinstance(p, bytearray | memoryview) else p for p in parts)
        )

    @classmethod
    def of(cls, *parts: bytes | float) -> RawReply:
        """``RawReply.of(b"...", 0.1, b"...")``."""
        return cls(parts)

    @property
    def data(self) -> bytes:
        """Every byte of the reply, pauses left out (for traces and UDP)."""
        return b"".join(part for part in self.parts if isinstance(part, bytes))


HandlerResult: TypeAlias = Response | RawReply | None
"""What a handler returns: a response, raw bytes, or None for no answer."""

Handler: TypeAlias = Callable[[Request, ConnectionInfo], HandlerResult | Awaitable[HandlerResult]]
"""``handler(request, info)``: the answer to *request* received on *info*.

An exception it raises is logged and answered with exception 04 (server
device failure); :class:`modbus_core.ModbusExceptionError` answers its own
exception code.  Neither closes the connection."""


def dispatcher_handler(dispatcher: Dispatcher) -> Handler:
    """A :data:`Handler` that answers from *dispatcher* (ignoring the connection)."""
    dispatch = dispatcher.dispatch

    def handle(request: Request, info: ConnectionInfo) -> HandlerResult | Awaitable[HandlerResult]:
        return dispatch(request)

    return handle


# Connection ids are unique in the process, so that logs and the simulator
# can tell connections of different servers apart.  A counter is the only
# process-wide state here; it holds no configuration.
_ids = itertools.count(1)
_ids_lock = threading.Lock()


def next_connection_id() -> int:
    """A new connection id (thread-safe, increasing)."""
    with _ids_lock:
        return next(_ids)


def new_connection_info(
    transport: str, peer: str, local: str, role: str | None, server: str, framer: Framer
) -> ConnectionInfo:
    """The :class:`ConnectionInfo` of a new connection whose responses *framer* frames."""

    def encode(response: Response) -> bytes:
        return framer.encode(response.unit, response.transaction_id, response.pdu.encode())

    return ConnectionInfo(transport, peer, local, role, server, next_connection_id(), encode)
