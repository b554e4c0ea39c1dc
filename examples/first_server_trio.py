"""A first Modbus TCP server, on trio.

    python examples/first_server_trio.py [--port 5020]

The same server as first_server_asyncio.py: modbus_anyio runs on both event
loops.  Ctrl-C (or SIGTERM) stops it.
"""

import argparse
import signal

import trio

from modbus_anyio import TcpServer
from modbus_core import Device, ServerContext


async def main(port: int) -> None:
    device = Device.sized(100)  # addresses 0..99 of each table, all zero
    device.holding_registers[0] = 1234  # what a client reads at holding register 0
    async with TcpServer(ServerContext(device), port=port) as server:  # binds 127.0.0.1
        print(f"listening on tcp://127.0.0.1:{server.port}", flush=True)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:  # serve until Ctrl-C
                break


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A first Modbus TCP server, on trio.")
    parser.add_argument("--port", type=int, default=5020, help="TCP port (0: any free port)")
    trio.run(main, parser.parse_args().port)
