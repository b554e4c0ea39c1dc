"""The ``modbuskit`` command: ``serve`` (a quick server) and ``sim`` (the simulator)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any, NoReturn


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line on stderr (what is wrong, and where to look), status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_sim_command(commands: Any) -> None:
    # The simulator's subcommand lives with the simulator; imported lazily so
    # that `modbuskit serve` works even while the simulator is absent.
    try:
        module = importlib.import_module("modbus_anyio.simulator._cli")
    except ModuleNotFoundError as error:
        if error.name not in ("modbus_anyio.simulator._cli", "modbus_anyio.simulator"):
            raise
        parser = commands.add_parser("sim", help="the device simulator (not installed)")

        def unavailable(args: argparse.Namespace) -> int:
            print("modbuskit sim: error: the simulator (modbus_anyio.simulator._cli) is not available", file=sys.stderr)
            return 2

        parser.set_defaults(run=unavailable)
        return
    module.add_sim_command(commands)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="modbuskit", description="Modbus servers and a device simulator.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from ._serve import add_serve_command

    add_serve_command(commands)
    _add_sim_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``modbuskit``; returns the exit status (2 for bad arguments)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
