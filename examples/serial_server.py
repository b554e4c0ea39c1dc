"""A Modbus RTU (or ASCII) server on a serial line, for one or several unit ids.

    python examples/serial_server.py --device /dev/ttyUSB0 [--baudrate 19200] [--parity E]
                                     [--framer rtu|ascii] [--unit 1 --unit 2] [--echo] [--sync]

Each unit id given gets its own device (holding register 0 holds the unit id).
On a shared RS-485 line the server answers only those units, stays silent for
the others (another server's), keeps in step with the other servers' answers,
and executes broadcasts (unit 0) without answering.  ``--echo`` removes the
echo of what it sends, for adapters that hear themselves.  ``--sync`` runs
modbus_sync's blocking server instead of modbus_anyio's: same options, same
behaviour.  Ctrl-C stops it.

Try it without hardware: ``socat -d -d pty,raw,echo=0 pty,raw,echo=0`` prints
two /dev/pts paths; give one to this script and the other to a client
(``mbpoll -m rtu -a 1 -b 19200 -P none -r 1 -c 2 /dev/pts/N``).
"""

from __future__ import annotations

import argparse
import contextlib
import signal

import anyio

from modbus_core import Device, ServerContext


def build_context(units: list[int]) -> ServerContext:
    devices = {}
    for unit in units:
        device = Device.sized(100)
        device.holding_registers[0] = unit
        devices[unit] = device
    return ServerContext(devices)


def serial_options(args: argparse.Namespace) -> dict[str, object]:
    return {
        "port": args.device,
        "baudrate": args.baudrate,
        "parity": args.parity,
        "stopbits": args.stopbits,
        "framer": args.framer,
        "echo": args.echo,
    }


async def serve_async(args: argparse.Namespace) -> None:
    from modbus_anyio import SerialServer

    async with SerialServer(build_context(args.unit), **serial_options(args)) as server:  # type: ignore[arg-type]
        print(f"listening on serial://{server.port}", flush=True)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break


def serve_sync(args: argparse.Namespace) -> None:
    from modbus_sync import SerialServer

    server = SerialServer(build_context(args.unit), **serial_options(args))  # type: ignore[arg-type]
    server.open()
    print(f"listening on serial://{server.port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description="A Modbus RTU or ASCII server on a serial line.")
    parser.add_argument("--device", required=True, help="the serial port, e.g. /dev/ttyUSB0")
    parser.add_argument("--baudrate", type=int, default=19200)
    parser.add_argument("--parity", choices=["N", "E", "O"], default="E", help="E (even) is the Modbus default")
    parser.add_argument("--stopbits", type=int, choices=[1, 2], default=1)
    parser.add_argument("--framer", choices=["rtu", "ascii"], default="rtu")
    parser.add_argument("--unit", type=int, action="append", help="a unit id to answer (repeatable; default 1)")
    parser.add_argument("--echo", action="store_true", help="the adapter echoes what it sends: remove the echo")
    parser.add_argument("--sync", action="store_true", help="use modbus_sync (blocking) instead of modbus_anyio")
    args = parser.parse_args()
    args.unit = args.unit or [1]
    if args.sync:
        serve_sync(args)
    else:
        anyio.run(serve_async, args)


if __name__ == "__main__":
    main()
