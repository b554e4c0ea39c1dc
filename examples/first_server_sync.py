"""A first Modbus TCP server, without an event loop (modbus_sync).

    python examples/first_server_sync.py [--port 5020]

The same server as first_server_asyncio.py on blocking sockets: one
selector loop in this thread, nothing to await.  Ctrl-C stops it.
"""

import argparse
import contextlib

from modbus_core import Device, ServerContext
from modbus_sync import TcpServer


def main(port: int) -> None:
    device = Device.sized(100)  # addresses 0..99 of each table, all zero
    device.holding_registers[0] = 1234  # what a client reads at holding register 0
    server = TcpServer(ServerContext(device), port=port)  # binds 127.0.0.1
    server.open()  # bind now, so that the port can be printed
    print(f"listening on tcp://127.0.0.1:{server.port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()  # blocks until Ctrl-C (or server.shutdown() from another thread)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A first Modbus TCP server, without an event loop.")
    parser.add_argument("--port", type=int, default=5020, help="TCP port (0: any free port)")
    main(parser.parse_args().port)
