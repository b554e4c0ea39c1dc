"""A first Modbus TCP server, on asyncio.

    python examples/first_server_asyncio.py [--port 5020]

One device answers every unit id with 100 coils, discrete inputs, holding
registers and input registers (addresses 0..99).  Ctrl-C stops it.
"""

import argparse
import asyncio
import contextlib

from modbus_anyio import TcpServer
from modbus_core import Device, ServerContext


async def main(port: int) -> None:
    device = Device.sized(100)  # addresses 0..99 of each table, all zero
    device.holding_registers[0] = 1234  # what a client reads at holding register 0
    async with TcpServer(ServerContext(device), port=port) as server:  # binds 127.0.0.1
        print(f"listening on tcp://127.0.0.1:{server.port}", flush=True)
        await asyncio.Event().wait()  # serve until Ctrl-C cancels this task


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A first Modbus TCP server, on asyncio.")
    parser.add_argument("--port", type=int, default=5020, help="TCP port (0: any free port)")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parser.parse_args().port))
