"""``modbuskit serve --sync``: the quick server on the blocking implementation.

The ``serve`` command and its parser belong to ``modbus_anyio._serve``;
with ``--sync`` it checks the arguments as usual and calls
:func:`run_serve` with them.  Every server shares one datastore and runs
in its own thread; the main thread waits for Ctrl-C or SIGTERM, then shuts
them all down (answers in flight are finished).  Exit status: 0 after a
clean stop, 1 when a server cannot start (address in use, no such
device), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType
from typing import Any

from modbus_anyio._net import format_address
from modbus_anyio._serve import parse_endpoint
from modbus_core import Device, ServerContext

from ._serial import SerialServer
from ._server import Server
from ._tcp import TcpServer, TlsServer
from ._udp import UdpServer

__all__ = ["build_servers", "run_serve"]

DEFAULT_TCP = "127.0.0.1:502"


def build_servers(args: argparse.Namespace) -> list[Server]:
    """The servers *args* ask for, sharing one datastore (ValueError for bad arguments)."""
    size = getattr(args, "size", None) or 10000
    units = getattr(args, "unit", None)
    if units:
        context = ServerContext({unit: Device.sized(size) for unit in units})
    else:
        context = ServerContext(Device.sized(size))
    framer = getattr(args, "framer", None)
    network_framer = framer or "socket"
    servers: list[Server] = []
    tcp = getattr(args, "tcp", None)
    udp = getattr(args, "udp", None)
    tls = getattr(args, "tls", None)
    serial_lines = getattr(args, "serial", None)
    if not (tcp or udp or tls or serial_lines):
        tcp = [DEFAULT_TCP]
    for text in tcp or ():
        host, port = parse_endpoint(text)
        servers.append(TcpServer(context, host=host, port=port, framer=network_framer))
    for text in udp or ():
        host, port = parse_endpoint(text)
        servers.append(UdpServer(context, host=host, port=port, framer=network_framer))
    for text in tls or ():
        host, port = parse_endpoint(text)
        servers.append(
            TlsServer(
                context,
                host=host,
                port=port,
                framer=network_framer,
                certfile=getattr(args, "cert", None),
                keyfile=getattr(args, "key", None),
                cafile=getattr(args, "ca", None),
            )
        )
    for device in serial_lines or ():
        servers.append(
            SerialServer(
                context,
                port=device,
                baudrate=getattr(args, "baudrate", None) or 19200,
                parity=(getattr(args, "parity", None) or "N")[0],
                stopbits=getattr(args, "stopbits", None) or 1,
                framer=framer or "rtu",
            )
        )
    return servers


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr)


def _where(server: Server) -> str:
    addresses: list[Any] = getattr(server, "addresses", [])
    return ", ".join(format_address(address) for address in addresses)


def _explain(error: OSError) -> str:
    text = error.strerror if error.errno is not None and error.strerror else str(error)  # no "[Errno 98]"
    if error.errno == 13 or "Permission denied" in text:
        text += " (ports below 1024 need privileges: try a port such as 5020)"
    return text


def run_serve(args: argparse.Namespace) -> int:
    """Run the servers *args* describe until Ctrl-C or SIGTERM; the exit status."""
    _configure_logging(getattr(args, "verbose", 0) or 0)
    try:
        servers = build_servers(args)
    except (ValueError, TypeError) as error:
        print(f"modbuskit serve: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # --cert, --key or --ca that cannot be loaded
        print(f"modbuskit serve: error: {_explain(error)}", file=sys.stderr)
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
                print(f"modbuskit serve: error: {_explain(error)}", file=sys.stderr)
                return 1
            started.append(server)
            print(f"modbuskit serve: {server.transport} on {_where(server)} (sync)", file=sys.stderr, flush=True)
        # Wake now and then: a server that died ends the command too.
        while not stop.wait(0.5):
            failed = [server for server in started if not server.serving]
            if failed:
                print(f"modbuskit serve: error: {failed[0].name} stopped", file=sys.stderr)
                return 1
        print("modbuskit serve: stopping", file=sys.stderr, flush=True)
        return 0
    except KeyboardInterrupt:  # without our handler (not the main thread)
        print("modbuskit serve: stopping", file=sys.stderr, flush=True)
        return 0
    finally:
        for server in started:
            server._request_stop()
        for server in started:
            server.shutdown(timeout=10)
        for restored, handler in previous.items():
            signal.signal(restored, handler)
