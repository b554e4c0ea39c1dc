#!/usr/bin/env python3
"""modbuskit's Modbus TCP server for the load benchmarks (the peer of ../shared/bench/pymodbus_server.py).

usage: tcp_server.py [--port 1502] [--backend asyncio|uvloop|trio] [--max-connections N]

Always binds 127.0.0.1.  Datastore: 10000 coils, discrete inputs, holding
and input registers at addresses 0..9999 with the same values as the
pymodbus reference server, any unit id.  SIGTERM/SIGINT stop it cleanly.
"""

from __future__ import annotations

import argparse
import signal
import sys

import anyio

from modbus_anyio import TcpServer
from modbus_core import Device, ServerContext

N = 10000


def build_context() -> ServerContext:
    return ServerContext(
        Device(
            coils=[bool(i & 1) for i in range(N)],
            discrete_inputs=[bool((i >> 1) & 1) for i in range(N)],
            holding_registers=list(range(N)),
            input_registers=[N - i for i in range(N)],
        )
    )


async def main(args: argparse.Namespace) -> None:
    server = TcpServer(build_context(), host="127.0.0.1", port=args.port, max_connections=args.max_connections)
    async with anyio.create_task_group() as task_group:
        await task_group.start(server.serve_forever)
        print(f"modbuskit server ({args.backend}) on 127.0.0.1:{server.port}", file=sys.stderr, flush=True)
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                break
        await server.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=1502)
    parser.add_argument("--backend", choices=("asyncio", "uvloop", "trio"), default="asyncio")
    parser.add_argument("--max-connections", type=int, default=4096)
    arguments = parser.parse_args()
    if arguments.backend == "uvloop":
        anyio.run(main, arguments, backend="asyncio", backend_options={"use_uvloop": True})
    else:
        anyio.run(main, arguments, backend=arguments.backend)
