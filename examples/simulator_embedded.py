"""The simulator inside a program: a plant described in Python, its web page and REST API.

    python examples/simulator_embedded.py [--port 5020] [--http-port 8080]

``modbuskit sim --config plant.json`` runs a plant from a file; the same
configuration, as a dict, runs inside a program with ``Simulator``, which
also gives the program the plant's values (``simulator.plant.point(...)``).
This plant is one pump: a speed that follows its setpoint, a running flag,
and a fault counter.  Open the web page, and inject faults with
``inject_fault.py``.  Ctrl-C (or SIGTERM) stops it.
"""

from __future__ import annotations

import argparse
import signal
from typing import Any

import anyio

from modbus_anyio.simulator import Simulator, parse_config


def plant(modbus_port: int, http_port: int) -> dict[str, Any]:
    """The configuration, as a configuration file would hold it (see the JSON Schema)."""
    return {
        "version": 1,
        "description": "One pump, for the fault injection recipes.",
        "http": {"host": "127.0.0.1", "port": http_port},
        "servers": [{"name": "plant", "transport": "tcp", "host": "127.0.0.1", "port": modbus_port}],
        "devices": [
            {
                "name": "pump",
                "unit": 1,
                "holding_registers": 20,
                "input_registers": 20,
                "coils": 8,
                "registers": [
                    {"name": "setpoint", "address": 0, "type": "uint16", "units": "rpm", "value": 1450},
                    {"name": "speed", "table": "input_registers", "address": 0, "type": "float32", "units": "rpm",
                     "value": 1450.0, "action": {"kind": "random", "min": 1440, "max": 1460, "interval": 0.5}},
                    {"name": "running", "table": "coils", "address": 0, "value": True},
                    {"name": "starts", "table": "input_registers", "address": 2, "type": "uint32",
                     "action": {"kind": "increment", "interval": 1}},
                ],
            }
        ],
    }  # fmt: skip


async def main(modbus_port: int, http_port: int) -> None:
    config = parse_config(plant(modbus_port, http_port), source="simulator_embedded.py")
    async with Simulator(config) as simulator:
        for addresses in simulator.modbus_addresses.values():
            print(f"listening on tcp://{addresses[0]}", flush=True)
        print(f"listening on {simulator.http_url}", flush=True)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="The simulator inside a program.")
    parser.add_argument("--port", type=int, default=5020, help="Modbus TCP port (0: any free port)")
    parser.add_argument("--http-port", type=int, default=8080, help="web page and REST API port (0: any free port)")
    args = parser.parse_args()
    anyio.run(main, args.port, args.http_port)
