"""A pymodbus 3.16 server program, moved to modbuskit by changing its imports.

    python examples/pymodbus_migration.py [--port 5020]

Everything below the imports is pymodbus code: a device context built from
data blocks, an identification, ``ModbusTcpServer`` started in the background,
a task that updates a register with ``setValues``.  The two differences that
show: ``server.port`` (modbuskit tells the bound port, so port 0 works) and
``server.shutdown()`` at the end.  See "Migrating from pymodbus" in the docs
for what differs on purpose.  Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

# Before:
#   from pymodbus import ModbusDeviceIdentification
#   from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
#   from pymodbus.server import ModbusTcpServer
from modbus_anyio import ModbusTcpServer
from modbus_anyio.compat import (
    ModbusDeviceContext,
    ModbusDeviceIdentification,
    ModbusSequentialDataBlock,
    ModbusServerContext,
)


async def updating_task(context: ModbusServerContext) -> None:
    """Count up holding register 10 every 100 ms, as pymodbus' updating server example does."""
    device = context[0]
    while True:
        (value,) = device.getValues(3, 10, count=1)
        device.setValues(3, 10, [(value + 1) & 0xFFFF])
        await asyncio.sleep(0.1)


async def run(port: int) -> None:
    # pymodbus' block address convention: block address 1 is protocol address 0.
    device = ModbusDeviceContext(
        di=ModbusSequentialDataBlock(1, [False] * 100),
        co=ModbusSequentialDataBlock(1, [False] * 100),
        hr=ModbusSequentialDataBlock(1, list(range(100))),
        ir=ModbusSequentialDataBlock(1, [0] * 100),
    )
    context = ModbusServerContext(devices=device, single=True)
    identity = ModbusDeviceIdentification(
        info_name={"VendorName": "ACME", "ProductCode": "PM", "MajorMinorRevision": "3.16", "ProductName": "Pump"}
    )
    server = ModbusTcpServer(context, identity=identity, address=("127.0.0.1", port))
    await server.serve_forever(background=True)
    print(f"listening on tcp://127.0.0.1:{server.port}", flush=True)
    try:
        await updating_task(context)
    finally:
        await server.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A pymodbus server program on modbuskit.")
    parser.add_argument("--port", type=int, default=5020, help="TCP port (0: any free port)")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(parser.parse_args().port))
