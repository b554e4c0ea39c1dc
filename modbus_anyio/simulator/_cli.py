"""``modbuskit sim``: run the simulator from the command line."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from typing import Any, NoReturn

import anyio

from .._cli import add_backend_option, current_backend, run_on

__all__ = ["add_sim_command", "run_sim"]


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number 0..65535, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0..65535, got {value}")
    return value


def add_sim_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``sim`` subcommand to ``modbuskit``'s subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sim",
        help="run the device simulator: a plant of Modbus devices and its web page",
        description=(
            "Run a plant of simulated Modbus devices with a live web page and REST API. Without --config, "
            "a built-in example plant (an energy meter, a water tank, a PLC) listens on Modbus TCP "
            "127.0.0.1:5020 and the web page on http://127.0.0.1:8080."
        ),
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="the plant: a JSON or TOML file, or a pymodbus simulator setup.json (default: the example plant)",
    )
    parser.add_argument("--http-host", metavar="HOST", help="the web page's address (default 127.0.0.1)")
    parser.add_argument(
        "--http-port", metavar="PORT", type=_port, help="the web page's port (default 8080; 0: any free port)"
    )
    parser.add_argument("--no-http", action="store_true", help="do not start the web page and REST API")
    parser.add_argument("--modbus-host", metavar="HOST", help="move the first network Modbus listener to this address")
    parser.add_argument(
        "--modbus-port", metavar="PORT", type=_port, help="move the first network Modbus listener to this port"
    )
    add_backend_option(parser)
    parser.add_argument("--state", metavar="FILE", help="keep register values in FILE across restarts")
    parser.add_argument(
        "--modbus-server", metavar="NAME", help="pymodbus setup.json: the server_list entry (default: server)"
    )
    parser.add_argument(
        "--modbus-device", metavar="NAME", help="pymodbus setup.json: the device_list entry (default: device)"
    )
    parser.add_argument("--custom-actions", metavar="MODULE", help="a module or .py file with custom action functions")
    parser.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        default="INFO",
        type=str.upper,
        help="what is logged to the terminal (default INFO)",
    )
    parser.add_argument("--check", action="store_true", help="check the configuration, print a summary and exit")
    parser.add_argument("--print-schema", action="store_true", help="print the configuration's JSON Schema and exit")
    parser.set_defaults(run=run_sim)
    # A bad option value is one line on stderr, not the whole usage.
    parser.error = _one_line_error  # type: ignore[method-assign]
    return parser


def _one_line_error(message: str) -> NoReturn:
    print(f"modbuskit sim: error: {message} (see modbuskit sim --help)", file=sys.stderr)
    sys.exit(2)


def _fail(message: str, status: int) -> int:
    for line in str(message).splitlines() or [""]:
        print(f"modbuskit sim: error: {line}", file=sys.stderr)
    return status


def run_sim(args: argparse.Namespace) -> int:
    """Run ``modbuskit sim``; the exit status (0 stopped by Ctrl-C, 1 failed, 2 bad input)."""
    from ._config import config_schema, default_config, load_config
    from ._errors import ConfigError, SimulatorError, StateError
    from ._simulator import Simulator

    if args.print_schema:
        print(json.dumps(config_schema(), indent=2))
        return 0
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        if args.config is None:
            if args.modbus_server or args.modbus_device:
                return _fail("--modbus-server and --modbus-device need --config (a pymodbus setup.json)", 2)
            config = default_config()
        else:
            config = load_config(
                args.config,
                modbus_server=args.modbus_server,
                modbus_device=args.modbus_device,
                custom_actions_module=args.custom_actions,
            )
        config = config.with_overrides(
            http_host=args.http_host,
            http_port=args.http_port,
            modbus_host=args.modbus_host,
            modbus_port=args.modbus_port,
        )
    except ConfigError as error:
        return _fail(str(error), 2)
    if args.check:
        print(f"{config.source}: {len(config.devices)} device(s), {len(config.servers)} server(s): configuration OK")
        return 0
    try:
        simulator = Simulator(config, state_file=args.state, http=False if args.no_http else None)
    except StateError as error:
        return _fail(str(error), 1)
    try:
        return run_on(args.backend, _main, simulator)
    except SimulatorError as error:
        return _fail(str(error), 1)


async def _main(simulator: Any) -> int:
    from ._errors import SimulatorError

    failure: SimulatorError | None = None
    async with anyio.create_task_group() as group:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:

            async def stop_on_signal() -> None:
                async for _ in signals:
                    simulator.stop_soon()
                    return

            group.start_soon(stop_on_signal)
            try:
                await group.start(simulator.serve)
            except SimulatorError as error:
                failure = error
            else:
                _announce(simulator)
                await simulator.wait_stopped()
            group.cancel_scope.cancel()
    if failure is not None:
        raise failure
    print("modbuskit sim: stopped", flush=True)
    return 0


def _announce(simulator: Any) -> None:
    config = simulator.config
    lines = [f"modbuskit simulator: {len(simulator.plant)} device(s) from {config.source} ({current_backend()})"]
    for name, listener in simulator.listeners.items():
        where = ", ".join(listener.addresses)
        state = "" if listener.state == "running" else f" ({listener.state})"
        lines.append(f"  Modbus {name}: {listener.spec.transport} {where}{state}")
    lines.append(f"  Web page: {simulator.http_url or 'off'}")
    lines.append("Press Ctrl-C to stop.")
    print("\n".join(lines), flush=True)
