"""A small plant on trio: one datastore served over Modbus TCP and UDP, moved by the program.

    python examples/trio_plant.py [--port 5020]

modbus_anyio's servers are ordinary trio citizens: ``nursery.start(server.serve_forever)``
returns once the server listens, and ``server.shutdown()`` finishes the requests in
flight.  The program owns the datastore: a task fills the tank, an observer reacts
when a client opens or closes the drain valve.  Ctrl-C (or SIGTERM) stops it.

Tables (unit ids all answer the same device):

* input register 0: tank level in litres (rises while the valve is closed)
* coil 0: drain valve (write 1 to open it: the level falls)
"""

from __future__ import annotations

import argparse
import signal

import trio

from modbus_anyio import TcpServer, UdpServer
from modbus_core import Change, Device, ServerContext, TableKind

CAPACITY = 1000


async def simulate_tank(device: Device) -> None:
    """Fill the tank, or drain it while the valve (coil 0) is open, ten times a second."""
    while True:
        level = device.input_registers[0]
        step = -7 if device.coils[0] else 3
        device.input_registers[0] = min(CAPACITY, max(0, level + step))
        await trio.sleep(0.1)


def report_valve(change: Change) -> None:
    """Observers run in the writer's thread, right after the write: keep them short."""
    if change.table is TableKind.COILS and change.address == 0:
        print(f"valve {'open' if change.values[0] else 'closed'}", flush=True)


async def main(port: int) -> None:
    device = Device(coils=8, input_registers=[100, 0, 0, 0], holding_registers=16)
    device.subscribe(report_valve, tables=[TableKind.COILS])
    context = ServerContext(device)
    tcp = TcpServer(context, port=port)
    udp = UdpServer(context, port=port)  # the same datastore over UDP (--port 0: each picks a free port)
    async with trio.open_nursery() as nursery:
        await nursery.start(tcp.serve_forever)  # returns once listening: tcp.port is the bound port
        await nursery.start(udp.serve_forever)
        print(f"listening on tcp://127.0.0.1:{tcp.port}", flush=True)
        print(f"listening on udp://127.0.0.1:{udp.port}", flush=True)
        nursery.start_soon(simulate_tank, device)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break
        await tcp.shutdown()  # answer what was received, then close
        await udp.shutdown()
        nursery.cancel_scope.cancel()  # and stop the simulation


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A small plant on trio, over Modbus TCP and UDP.")
    parser.add_argument("--port", type=int, default=5020, help="TCP and UDP port (0: any free ports)")
    trio.run(main, parser.parse_args().port)
