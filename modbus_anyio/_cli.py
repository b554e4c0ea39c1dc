"""The ``modbuskit`` command: ``serve`` (a quick server) and ``sim`` (the simulator)."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn, TypeVar

_T = TypeVar("_T")

BACKENDS = ("asyncio", "uvloop", "trio")
"""What ``--backend`` may name: asyncio's own loop, uvloop's asyncio loop, or trio."""


def available_backends() -> tuple[str, ...]:
    """:data:`BACKENDS` that this machine has (uvloop is a dependency except on Windows)."""
    have_uvloop = importlib.util.find_spec("uvloop") is not None
    return tuple(backend for backend in BACKENDS if backend != "uvloop" or have_uvloop)


def add_backend_option(group: Any) -> None:
    """The ``--backend`` option of ``serve`` and ``sim``: uvloop by default where installed."""
    choices = available_backends()
    default = "uvloop" if "uvloop" in choices else "asyncio"
    group.add_argument(
        "--backend",
        choices=choices,
        default=default,
        help=f"the event loop: {', '.join(choices)} (default here: {default}; uvloop: asyncio on libuv, faster)",
    )


def current_backend() -> str:
    """The running event loop as ``--backend`` names it (for the start-up lines)."""
    import anyio

    package = type(anyio.lowlevel.current_token().native_token).__module__.partition(".")[0]
    return package if package in ("uvloop", "trio") else "asyncio"


def run_on(backend: str, function: Callable[..., Awaitable[_T]], *args: Any) -> _T:
    """``anyio.run(function, *args)`` on *backend* (one of :data:`BACKENDS`)."""
    import anyio

    if backend == "uvloop":
        return anyio.run(function, *args, backend="asyncio", backend_options={"use_uvloop": True})
    return anyio.run(function, *args, backend=backend)


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
    """Run ``modbuskit``; returns the exit status (2 for bad arguments, 130 interrupted while starting)."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        status: int = args.run(args)
    except KeyboardInterrupt:
        # Ctrl-C before the command's own handling of it is in place (while starting): no traceback.
        print("modbuskit: interrupted", file=sys.stderr)
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
