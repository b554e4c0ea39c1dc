"""``modbuskit serve``: a quick Modbus server, in the spirit of diagslave.

::

    modbuskit serve                                   # TCP on 127.0.0.1:502, every unit, 10000 of each table
    modbuskit serve --tcp 0.0.0.0:5020 --unit 1 --unit 2 --size 100
    modbuskit serve --udp 127.0.0.1:5020 --tls [::1]:802 --cert s.pem --key s.key --ca ca.pem
    modbuskit serve --serial /dev/ttyUSB0 --baudrate 9600 --parity E --framer rtu
    modbuskit serve --config plant.json               # the simulator's plant, without its web page
    modbuskit serve --sync --tcp 127.0.0.1:5020       # the blocking implementation (modbus_sync)

Every server shares one datastore.  Ctrl-C (or SIGTERM) stops cleanly;
bad arguments get a one-line error and exit status 2; a server that
cannot start (address in use, no such device) exits with status 1.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from typing import Any

from ._cli import add_backend_option, current_backend, run_on

__all__ = ["add_serve_command", "parse_endpoint", "run_serve"]

logger = logging.getLogger(__name__)

DEFAULT_TCP = "127.0.0.1:502"


def parse_endpoint(text: str) -> tuple[str | None, int]:
    """``HOST:PORT`` -> (host, port).

    ``[::1]:502`` for IPv6; ``502`` or ``:502`` mean 127.0.0.1; ``*:502``
    means every interface (IPv4 and IPv6), returned as host None.
    """
    host, separator, port_text = text.rpartition(":")
    if not separator:
        host, port_text = "", text
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"expected HOST:PORT, got {text!r} (write IPv6 addresses as [::1]:502)")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"expected HOST:PORT, got {text!r}") from None
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"port {port} is outside 0..65535")
    if host == "*":
        return None, port
    return host or "127.0.0.1", port


def _endpoint(text: str) -> str:
    try:
        parse_endpoint(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _unit(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a unit id 0..255, got {text!r}") from None
    if not 0 <= value <= 255:
        raise argparse.ArgumentTypeError(f"expected a unit id 0..255, got {value}")
    return value


def _size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a table size 1..65536, got {text!r}") from None
    if not 1 <= value <= 0x10000:
        raise argparse.ArgumentTypeError(f"expected a table size 1..65536, got {value}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_serve_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand to ``modbuskit``'s subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="a quick Modbus server (TCP, UDP, TLS, serial) with a plain datastore",
        description=(
            "Serve a plain datastore (every table 0..SIZE-1, zeros) over the transports given; "
            f"without any, Modbus TCP on {DEFAULT_TCP}. Addresses bind 127.0.0.1 unless told: "
            "*:PORT binds every interface."
        ),
    )
    where = parser.add_argument_group("transports (each may be repeated)")
    where.add_argument("--tcp", action="append", type=_endpoint, metavar="HOST:PORT", help="Modbus TCP")
    where.add_argument("--udp", action="append", type=_endpoint, metavar="HOST:PORT", help="Modbus UDP")
    where.add_argument(
        "--tls",
        action="append",
        type=_endpoint,
        metavar="HOST:PORT",
        help="Modbus/TCP Security (needs --cert, --key, --ca)",
    )
    where.add_argument("--serial", action="append", metavar="DEVICE", help="a serial line (e.g. /dev/ttyUSB0)")
    tls = parser.add_argument_group("TLS")
    tls.add_argument("--cert", metavar="FILE", help="the server's certificate (PEM)")
    tls.add_argument("--key", metavar="FILE", help="the server's private key (PEM)")
    tls.add_argument("--ca", metavar="FILE", help="the CA that signs client certificates (PEM)")
    line = parser.add_argument_group("serial line")
    line.add_argument("--baudrate", type=_positive_int, default=19200, help="default 19200")
    line.add_argument(
        "--parity", type=str.upper, choices=["N", "E", "O", "NONE", "EVEN", "ODD"], default="N", help="default N"
    )
    line.add_argument("--stopbits", type=int, choices=[1, 2], default=1, help="default 1")
    data = parser.add_argument_group("datastore and framing")
    data.add_argument(
        "--framer",
        choices=["socket", "rtu", "ascii"],
        help="the framing (default: socket on TCP/UDP/TLS, rtu on serial lines); rtu over TCP works too",
    )
    data.add_argument(
        "--unit",
        action="append",
        type=_unit,
        metavar="ID",
        help="answer this unit id (repeatable; default: every unit)",
    )
    data.add_argument("--size", type=_size, default=10000, metavar="N", help="each table holds 0..N-1 (default 10000)")
    data.add_argument("--config", metavar="FILE", help="serve the simulator's plant from FILE (instead of the above)")
    run = parser.add_argument_group("running")
    add_backend_option(run)
    run.add_argument("--sync", action="store_true", help="use the blocking implementation (modbus_sync)")
    run.add_argument("-v", "--verbose", action="count", default=0, help="log more (-v: connections, -vv: frames)")
    parser.set_defaults(run=run_serve)
    return parser


def _fail(message: str, status: int = 2) -> int:
    print(f"modbuskit serve: error: {message}", file=sys.stderr)
    return status


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr)


def run_serve(args: argparse.Namespace) -> int:
    """Run ``modbuskit serve``; the exit status."""
    transports = [args.tcp, args.udp, args.tls, args.serial]
    if args.config is not None:
        if any(transports) or args.unit or args.sync:
            return _fail(
                "--config describes the servers: do not combine it with --tcp/--udp/--tls/--serial/--unit/--sync"
            )
        return _run_config(args)
    if not any(transports):
        args.tcp = [DEFAULT_TCP]
    if args.tls and not (args.cert and args.key and args.ca):
        return _fail("--tls needs --cert, --key and --ca (client certificates are required)")
    if (args.cert or args.key or args.ca) and not args.tls:
        return _fail("--cert, --key and --ca only apply to --tls")
    if args.framer == "socket" and args.serial:
        return _fail("serial lines carry rtu or ascii frames, not socket (MBAP)")
    args.parity = args.parity[0]
    if args.sync:
        try:
            sync_serve = importlib.import_module("modbus_sync._serve")
        except ModuleNotFoundError as error:
            if error.name not in ("modbus_sync._serve", "modbus_sync"):
                raise
            return _fail("--sync: modbus_sync does not provide its serve implementation (modbus_sync._serve) yet")
        run: Any = getattr(sync_serve, "run_serve", None)
        if run is None:
            return _fail("--sync: modbus_sync._serve has no run_serve() yet")
        return int(run(args))
    _configure_logging(args.verbose)
    try:
        servers = build_servers(args)
    except (ValueError, TypeError) as error:
        return _fail(str(error))
    except OSError as error:  # --cert, --key or --ca that cannot be loaded
        return _fail(error.strerror or str(error))
    try:
        return int(run_on(args.backend, _serve, servers))
    except KeyboardInterrupt:
        return 0


def build_servers(args: argparse.Namespace) -> list[Any]:
    """The modbus_anyio servers *args* ask for, sharing one datastore."""
    from modbus_core import Device, ServerContext

    from ._serial import SerialServer
    from ._server import TcpServer, TlsServer
    from ._udp import UdpServer

    if args.unit:
        context = ServerContext({unit: Device.sized(args.size) for unit in args.unit})
    else:
        context = ServerContext(Device.sized(args.size))
    network_framer = args.framer or "socket"
    servers: list[Any] = []
    for text in args.tcp or ():
        host, port = parse_endpoint(text)
        servers.append(TcpServer(context, host=host, port=port, framer=network_framer))
    for text in args.udp or ():
        host, port = parse_endpoint(text)
        servers.append(UdpServer(context, host=host, port=port, framer=network_framer))
    for text in args.tls or ():
        host, port = parse_endpoint(text)
        servers.append(
            TlsServer(
                context,
                host=host,
                port=port,
                framer=network_framer,
                certfile=args.cert,
                keyfile=args.key,
                cafile=args.ca,
            )
        )
    for device in args.serial or ():
        servers.append(
            SerialServer(
                context,
                port=device,
                baudrate=args.baudrate,
                parity=args.parity,
                stopbits=args.stopbits,
                framer=args.framer or "rtu",
            )
        )
    return servers


async def _serve(servers: list[Any]) -> int:
    import anyio

    from ._net import format_address

    async with anyio.create_task_group() as task_group:
        for server in servers:
            try:
                await task_group.start(server.serve_forever)
            except OSError as error:
                print(f"modbuskit serve: error: {_explain(error)}", file=sys.stderr)
                task_group.cancel_scope.cancel()
                return 1
            where = ", ".join(format_address(address) for address in server.addresses)
            print(f"modbuskit serve: {server.transport} on {where} ({current_backend()})", file=sys.stderr, flush=True)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break
        print("modbuskit serve: stopping", file=sys.stderr, flush=True)
        with anyio.move_on_after(10):
            async with anyio.create_task_group() as stopping:
                for server in servers:
                    stopping.start_soon(server.shutdown)
        task_group.cancel_scope.cancel()
    return 0


def _explain(error: OSError) -> str:
    text = str(error)
    if "Permission denied" in text or error.errno == 13:
        text += " (ports below 1024 need privileges: try a port such as 5020)"
    return text


def _run_config(args: argparse.Namespace) -> int:
    try:
        simulator_module = importlib.import_module("modbus_anyio.simulator")
    except ModuleNotFoundError as error:
        if error.name != "modbus_anyio.simulator":
            raise
        return _fail("--config: the simulator (modbus_anyio.simulator) is not available")
    load_config = getattr(simulator_module, "load_config", None)
    simulator_class = getattr(simulator_module, "Simulator", None)
    if load_config is None or simulator_class is None:
        return _fail("--config: modbus_anyio.simulator provides no load_config()/Simulator yet")
    _configure_logging(args.verbose)
    try:
        config = load_config(args.config)
    except (OSError, ValueError) as error:  # the simulator's ConfigError is a ValueError
        return _fail(str(error).replace("\n", "; "))
    simulator = simulator_class(config, http=False)
    start_errors: tuple[type[BaseException], ...] = (OSError,)
    simulator_error = getattr(simulator_module, "SimulatorError", None)
    if isinstance(simulator_error, type) and issubclass(simulator_error, Exception):
        start_errors = (OSError, simulator_error)
    return int(run_on(args.backend, _serve_simulator, simulator, start_errors))


async def _serve_simulator(simulator: Any, start_errors: tuple[type[BaseException], ...]) -> int:
    import anyio

    async with anyio.create_task_group() as task_group:
        try:
            await task_group.start(simulator.serve)
        except start_errors as error:
            print(
                f"modbuskit serve: error: {_explain(error) if isinstance(error, OSError) else error}", file=sys.stderr
            )
            task_group.cancel_scope.cancel()
            return 1
        for name, addresses in simulator.modbus_addresses.items():
            print(f"modbuskit serve: {name} on {', '.join(addresses)}", file=sys.stderr, flush=True)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break
        print("modbuskit serve: stopping", file=sys.stderr, flush=True)
        simulator.stop_soon()
    return 0
