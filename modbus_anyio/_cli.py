"""The ``modbuskit`` command: ``serve`` (a quick server) and ``sim`` (the simulator)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modbuskit", description="Modbus servers and a device simulator.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from ._serve import add_serve_command

    add_serve_command(commands)
    from .simulator._cli import add_sim_command

    add_sim_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``modbuskit``; returns the exit status (2 for bad arguments)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
