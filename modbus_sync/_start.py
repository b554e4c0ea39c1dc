"""pymodbus' blocking entry points: ``Start*Server()`` and ``ServerStop()``.

The registry of started servers
-------------------------------
``ServerStop()`` takes no argument, as in pymodbus, yet must stop every
server that ``StartTcpServer()``, ``StartTlsServer()``,
``StartUdpServer()`` and ``StartSerialServer()`` are running, in whatever
threads they run.  So those functions record their server in one registry,
:data:`_started` below, for as long as it serves.  It is the only
process-wide mutable state of ``modbus_sync``, and it exists only because
``ServerStop()``'s signature leaves no other place to find the servers:

* it holds nothing but the servers the ``Start*`` functions run (a server
  object used directly, with ``serve_forever()`` / ``with server:``, never
  enters it: stop that one with its own ``shutdown()``);
* each entry leaves the registry when its server has stopped;
* it is guarded by a re-entrant lock, so ``ServerStop()`` may be called
  from any thread, and from a signal handler that interrupted a thread
  that was itself registering a server.

Applications that run several servers and want to stop them separately
should use the server classes instead.
"""

from __future__ import annotations

import threading
from typing import Any

from modbus_anyio._handler import Handler
from modbus_core import ServerContext

from ._serial import SerialServer
from ._server import Server
from ._tcp import TcpServer, TlsServer
from ._udp import UdpServer

__all__ = ["ServerStop", "StartSerialServer", "StartTcpServer", "StartTlsServer", "StartUdpServer"]


class _StartedServers:
    """The servers ``Start*Server()`` are running, for ``ServerStop()``."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._servers: list[Server] = []

    def run(self, server: Server) -> None:
        """Serve *server* in this thread until it is stopped, registered meanwhile."""
        # Bind before registering: a ServerStop() that finds the server
        # can then wait for it to be down.
        server.open()
        with self._lock:
            self._servers.append(server)
        try:
            server.serve_forever()
        finally:
            with self._lock:
                if server in self._servers:
                    self._servers.remove(server)

    def running(self) -> list[Server]:
        with self._lock:
            return list(self._servers)

    def stop_all(self, timeout: float | None) -> list[Server]:
        servers = self.running()
        # Ask them all first, so that they drain in parallel, then wait.
        waitable = [server for server in servers if server._request_stop()]
        for server in waitable:
            server.shutdown(timeout)
        return servers


_started = _StartedServers()
"""The registry (see the module documentation)."""


def _pymodbus_options(
    address: tuple[str, int] | None,
    ignore_missing_devices: bool | None,
    broadcast_enable: bool | None,
    options: dict[str, Any],
    default_port: int,
) -> dict[str, Any]:
    if address is not None:
        host, port = address
        if "host" in options or "port" in options:
            raise ValueError("give either address=(host, port) or host=/port=, not both")
        options["host"] = host or None  # pymodbus' "" means every interface
        options["port"] = port
    options.setdefault("port", default_port)
    if ignore_missing_devices is not None:
        options["ignore_missing_units"] = ignore_missing_devices
    if broadcast_enable is not None:
        options["broadcast"] = broadcast_enable
    return options


def StartTcpServer(
    context: ServerContext | Handler,
    *,
    address: tuple[str, int] | None = None,
    ignore_missing_devices: bool | None = None,
    broadcast_enable: bool | None = None,
    **options: Any,
) -> None:
    """Serve Modbus TCP until :func:`ServerStop` (or Ctrl-C); blocks.

    pymodbus' arguments: *address* ``(host, port)`` (default
    ``("127.0.0.1", 502)``; host ``""`` listens on every interface),
    *framer*, *identity*, *ignore_missing_devices*, *broadcast_enable*,
    *trace_packet*, *trace_pdu*, *trace_connect*, *custom_pdu* (a list of
    :class:`modbus_core.CustomFunction`).  Any other keyword argument of
    :class:`TcpServer` may be given too.
    """
    options = _pymodbus_options(address, ignore_missing_devices, broadcast_enable, options, 502)
    _started.run(TcpServer(context, **options))


def StartTlsServer(
    context: ServerContext | Handler,
    *,
    address: tuple[str, int] | None = None,
    sslctx: Any = None,
    ignore_missing_devices: bool | None = None,
    broadcast_enable: bool | None = None,
    **options: Any,
) -> None:
    """Serve Modbus/TCP Security until :func:`ServerStop`; blocks.

    As :func:`StartTcpServer`, plus *sslctx* (pymodbus' name for an
    :class:`ssl.SSLContext`) or :class:`TlsServer`'s *certfile*, *keyfile*,
    *cafile*, *password* and *policy*.  Port 802 by default.
    """
    options = _pymodbus_options(address, ignore_missing_devices, broadcast_enable, options, 802)
    if sslctx is not None:
        options["ssl_context"] = sslctx
    _started.run(TlsServer(context, **options))


def StartUdpServer(
    context: ServerContext | Handler,
    *,
    address: tuple[str, int] | None = None,
    ignore_missing_devices: bool | None = None,
    broadcast_enable: bool | None = None,
    **options: Any,
) -> None:
    """Serve Modbus UDP until :func:`ServerStop`; blocks.  Arguments as :func:`StartTcpServer`."""
    options = _pymodbus_options(address, ignore_missing_devices, broadcast_enable, options, 502)
    _started.run(UdpServer(context, **options))


def StartSerialServer(
    context: ServerContext | Handler,
    *,
    port: str,
    ignore_missing_devices: bool | None = None,
    broadcast_enable: bool | None = None,
    handle_local_echo: bool | None = None,
    timeout: float | None = None,
    **options: Any,
) -> None:
    """Serve a serial line until :func:`ServerStop`; blocks.

    pymodbus' arguments: *port*, *framer* (RTU by default), *baudrate*,
    *bytesize*, *parity*, *stopbits*, *handle_local_echo*,
    *reconnect_delay*, *identity*, *ignore_missing_devices*,
    *broadcast_enable*, the trace hooks and *custom_pdu*; any other
    keyword argument of :class:`SerialServer` too.  *timeout* is accepted
    for pymodbus compatibility and unused: a server waits for requests as
    long as it runs.
    """
    del timeout
    if handle_local_echo is not None:
        options["echo"] = handle_local_echo
    if ignore_missing_devices is not None:
        options["ignore_missing_units"] = ignore_missing_devices
    if broadcast_enable is not None:
        options["broadcast"] = broadcast_enable
    _started.run(SerialServer(context, port=port, **options))


def ServerStop(timeout: float | None = None) -> None:
    """Stop every server ``Start*Server()`` runs, and return once they are down.

    Callable from any thread.  From a signal handler, or a handler of one
    of the servers, in the very thread a server serves in, that server can
    only be asked to stop (it stops as soon as the handler returns); the
    others are still waited for.  *timeout* bounds each wait.  Raises
    :class:`RuntimeError` when no such server runs, as pymodbus does.
    """
    if not _started.stop_all(timeout):
        raise RuntimeError("Modbus server not running: no Start*Server() call is serving")
