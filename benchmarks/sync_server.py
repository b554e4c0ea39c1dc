#!/usr/bin/env python3
"""modbus_sync's TCP server for the reference benchmark (../shared/bench).

usage: sync_server.py [--port 25504] [--handler-threads N] [--max-connections N]

Binds 127.0.0.1.  Datastore as pymodbus_server.py: 10000 coils, discrete
inputs, holding and input registers at addresses 0..9999, any unit id.
SIGTERM/SIGINT stop it (gracefully, through ``shutdown()``).

    ../shared/bench/run_tcp_bench.sh sync 25504 -- .venv/bin/python benchmarks/sync_server.py --port 25504
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

# Run from a checkout without installing it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modbus_core import Device, ServerContext
from modbus_sync import TcpServer

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=25504)
    parser.add_argument("--handler-threads", type=int, default=0)
    parser.add_argument("--max-connections", type=int, default=2000)
    args = parser.parse_args(argv)
    server = TcpServer(
        build_context(),
        port=args.port,
        handler_threads=args.handler_threads,
        max_connections=args.max_connections,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() from the serving thread only asks; the loop then ends.
        server.shutdown()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"modbus_sync serving on 127.0.0.1:{args.port} (thread {threading.get_ident()})", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
