"""``modbuskit serve --sync``: the quick server on the blocking implementation.

The ``serve`` command's parser belongs to ``modbus_anyio._serve``; with
``--sync`` it calls :func:`run_serve` with the parsed arguments.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

from modbus_core import Device, ServerContext

from ._serial import SerialServer
from ._server import Server
from ._tcp import TcpServer, TlsServer
from ._udp import UdpServer

__all__ = ["build_servers", "run_serve"]

logger = logging.getLogger(__name__)


def _endpoint(value: object, option: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:502`` for IPv6; ``:502`` or ``502`` for 127.0.0.1)."""
    if isinstance(value, tuple):
        host, port = value
        return str(host), int(port)
    text = str(value)
    host, separator, port_text = text.rpartition(":")
    if not separator:
        host, port_text = "", text
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"{option} expects HOST:PORT, got {text!r}") from None
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"{option}: port {port} is outside 0..65535")
    return host or "127.0.0.1", port


def _as_list(value: object) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple) and not (
        len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)
    ):
        return list(value)
    return [value]


def build_context(units: Sequence[int] | None, size: int) -> ServerContext:
    """Every table 0..size-1; one device per unit, or one device answering every unit."""
    if units:
        return ServerContext({unit: Device.sized(size) for unit in units})
    return ServerContext(Device.sized(size))


def build_servers(args: argparse.Namespace) -> list[Server]:
    """The servers *args* ask for (ValueError/TypeError for bad arguments)."""
    size = getattr(args, "size", 10000)
    if size is None:
        size = 10000
    if not 1 <= size <= 0x10000:
        raise ValueError(f"--size must be 1..65536, got {size}")
    units = getattr(args, "unit", None) or None
    for unit in units or ():
        if not 0 <= unit <= 255:
            raise ValueError(f"--unit must be 0..255, got {unit}")
    context = build_context(units, size)
    framer = getattr(args, "framer", None)
    servers: list[Server] = []
    for value in _as_list(getattr(args, "tcp", None)):
        host, port = _endpoint(value, "--tcp")
        servers.append(TcpServer(context, host=host, port=port, framer=framer or "socket", name="tcp"))
    for value in _as_list(getattr(args, "udp", None)):
        host, port = _endpoint(value, "--udp")
        servers.append(UdpServer(context, host=host, port=port, framer=framer or "socket", name="udp"))
    for value in _as_list(getattr(args, "tls", None)):
        host, port = _endpoint(value, "--tls")
        cert = getattr(args, "cert", None)
        if cert is None:
            raise ValueError("--tls needs --cert (and --key, --ca)")
        ca = getattr(args, "ca", None)
        servers.append(
            TlsServer(
                context,
                host=host,
                port=port,
                certfile=cert,
                keyfile=getattr(args, "key", None),
                cafile=ca,
                framer=framer or "socket",
                name="tls",
            )
        )
    for device in _as_list(getattr(args, "serial", None)):
        servers.append(
            SerialServer(
                context,
                port=str(device),
                baudrate=getattr(args, "baudrate", None) or 19200,
                parity=(getattr(args, "parity", None) or "N")[0].upper(),
                framer=framer or "rtu",
                name="serial",
            )
        )
    if not servers:
        raise ValueError("give at least one of --tcp, --udp, --tls or --serial")
    return servers


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def run_serve(args: argparse.Namespace) -> int:
    """Run the servers *args* describe until Ctrl-C or SIGTERM; the exit status.

    2 for bad arguments, 1 when a server cannot start (address in use, no
    such device), 0 after a clean stop.
    """
    _configure_logging(getattr(args, "verbose", 0) or 0)
    try:
        servers = build_servers(args)
    except (ValueError, TypeError, OSError) as error:
        print(f"modbuskit serve: error: {error}", file=sys.stderr)
        return 2

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for stop_signal in (signal.SIGINT, signal.SIGTERM):
            previous[stop_signal] = signal.signal(stop_signal, on_signal)
    started: list[Server] = []
    try:
        for server in servers:
            try:
                server.start()
            except OSError as error:
                print(f"modbuskit serve: error: {error}", file=sys.stderr)
                return 1
            started.append(server)
            print(f"modbuskit serve (sync): {server.name}", file=sys.stderr, flush=True)
        # Wake now and then: a server that failed ends the command too.
        while not stop.wait(0.5):
            if not all(server.serving for server in started):
                print("modbuskit serve: a server stopped unexpectedly", file=sys.stderr)
                return 1
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        for server in started:
            server.request_stop()
        for server in started:
            server.shutdown()
        for restored, handler in previous.items():
            signal.signal(restored, handler)
