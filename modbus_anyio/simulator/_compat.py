"""pymodbus' simulator names: :class:`ModbusSimulatorServer` and
:func:`get_simulator_commandline`, over :class:`~.Simulator`.

Differences from pymodbus 3.16, on purpose: *http_host* defaults to
127.0.0.1 (not every interface); *json_file* None (the default) runs the
built-in example plant, and the file may be this project's format as well
as a pymodbus ``setup.json``; *log_file* given adds a log file; the
servers run on asyncio or trio.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from ._config import default_config, is_pymodbus_setup, load_config, read_document
from ._simulator import Simulator

__all__ = ["ModbusSimulatorServer", "get_simulator_commandline"]

logger = logging.getLogger(__name__)


class ModbusSimulatorServer:
    """The simulator with pymodbus' constructor.

    ::

        simulator = ModbusSimulatorServer(json_file="setup.json", modbus_server="server",
                                          modbus_device="device", http_port=8080)
        await simulator.run_forever(only_start=True)
        ...
        await simulator.stop()

    With *http_host* or *http_port* None the web page does not start.
    """

    def __init__(
        self,
        modbus_server: str = "server",
        modbus_device: str = "device",
        http_host: str | None = "127.0.0.1",
        http_port: int | str | None = 8080,
        log_file: str | None = None,
        json_file: str | Path | None = None,
        custom_actions_module: str | None = None,
        *,
        state_file: str | Path | None = None,
    ) -> None:
        if json_file is None:
            config = default_config()
        elif is_pymodbus_setup(read_document(json_file)):
            config = load_config(
                json_file,
                modbus_server=modbus_server,
                modbus_device=modbus_device,
                custom_actions_module=custom_actions_module,
            )
        else:
            config = load_config(json_file, custom_actions_module=custom_actions_module)
        http = http_host is not None and http_port is not None
        if http:
            config = config.with_overrides(http_host=str(http_host), http_port=int(http_port))  # type: ignore[arg-type]
        self.log_file = log_file
        self.simulator = Simulator(config, state_file=state_file, http=http)
        self._file_handler: logging.Handler | None = None
        self._background_done: anyio.Event | None = None
        self._background_task: Any = None  # asyncio keeps only weak references to tasks

    @property
    def http_url(self) -> str | None:
        return self.simulator.http_url

    @property
    def modbus_addresses(self) -> dict[str, list[str]]:
        return self.simulator.modbus_addresses

    def _open_log_file(self) -> None:
        if self.log_file and self._file_handler is None:
            handler = logging.FileHandler(self.log_file, encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            logging.getLogger("modbus_anyio").addHandler(handler)
            self._file_handler = handler

    def _close_log_file(self) -> None:
        if self._file_handler is not None:
            logging.getLogger("modbus_anyio").removeHandler(self._file_handler)
            self._file_handler.close()
            self._file_handler = None

    async def run_forever(self, only_start: bool = False) -> None:
        """Start the Modbus listeners and the web page; with *only_start*
        return once they listen (they keep running until :meth:`stop`),
        else run until :meth:`stop`."""
        self._open_log_file()
        if not only_start:
            try:
                await self.simulator.serve()
            finally:
                self._close_log_file()
            return
        ready = anyio.Event()
        failures: list[BaseException] = []
        self._background_done = anyio.Event()
        done = self._background_done

        async def background() -> None:
            try:
                async with anyio.create_task_group() as group:
                    await group.start(self.simulator.serve)
                    ready.set()
            except BaseException as error:  # noqa: BLE001 - handed to run_forever's caller
                failures.append(error)
            finally:
                ready.set()
                done.set()
                self._close_log_file()

        self._background_task = _spawn_background(background)
        await ready.wait()
        if failures:
            raise failures[0]

    async def stop(self) -> None:
        """Stop the listeners and the web page."""
        await self.simulator.stop()
        if self._background_done is not None:
            await self._background_done.wait()


def _spawn_background(function: Any) -> Any:
    """Run *function* outside the caller's task, as pymodbus' asyncio task does; the task (asyncio)."""
    import sniffio

    if sniffio.current_async_library() == "trio":
        import trio

        trio.lowlevel.spawn_system_task(function)
        return None
    import asyncio

    return asyncio.get_running_loop().create_task(function())


def get_simulator_commandline(cmdline: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse pymodbus' simulator options; the keyword arguments of
    :class:`ModbusSimulatorServer` (options not given are left out)."""
    parser = argparse.ArgumentParser(description="Modbus simulator with REST API and web page")
    parser.add_argument(
        "--modbus_server", help="use <modbus_server> from server_list in a pymodbus json file", type=str
    )
    parser.add_argument(
        "--modbus_device", help="use <modbus_device> from device_list in a pymodbus json file", type=str
    )
    parser.add_argument("--http_host", help="the web page's address (default 127.0.0.1)", type=str)
    parser.add_argument("--http_port", help="the web page's port (default 8080)", type=int)
    parser.add_argument(
        "--log",
        choices=["critical", "error", "warning", "info", "debug"],
        help="log level, default info",
        default="info",
        type=str,
    )
    parser.add_argument("--json_file", help="the plant (default: the built-in example plant)", type=str)
    parser.add_argument("--log_file", help="also log to this file", type=str)
    parser.add_argument("--custom_actions_module", help="python module with custom actions", type=str)
    args = parser.parse_args(cmdline)
    logging.getLogger("modbus_anyio").setLevel(args.log.upper())
    return {key: value for key, value in vars(args).items() if key != "log" and value is not None}
