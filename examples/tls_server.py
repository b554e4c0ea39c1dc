"""A Modbus/TCP Security server: TLS with client certificates, and rules for each role.

    python examples/make_certificates.py certs
    python examples/tls_server.py --certs certs [--policy examples/roles.json] [--port 8020]

TLS 1.2 or newer; every client must present a certificate signed by
``certs/ca.pem``.  Its role (the certificate extension 1.3.6.1.4.1.50316.802.1)
picks the rules of the policy file (``roles.json`` beside this script by
default): an ``operator`` may read unit 1 and write its holding registers
0..9, an ``engineer`` may do anything, a certificate without a role may only
read the device identification, any other role nothing.  A refused request
is answered with exception 01 (illegal function).  Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import json
import signal
from pathlib import Path

import anyio

from modbus_anyio import ConnectionInfo, RolePolicy, TlsServer
from modbus_core import Device, DeviceIdentity, ServerContext


def show_connection(connected: bool, info: ConnectionInfo) -> None:
    """trace_connect may take the ConnectionInfo too: the peer, and on TLS the client's role."""
    state = "connected" if connected else "disconnected"
    print(f"{info.peer} {state}, role {info.role!r}", flush=True)


async def main(port: int, certs: Path, policy_file: Path) -> None:
    policy = RolePolicy.from_mapping(json.loads(policy_file.read_text(encoding="utf-8")))
    identity = DeviceIdentity("modbuskit", "TLS-DEMO", "1.0", product_name="Modbus/TCP Security example")
    context = ServerContext({1: Device.sized(100, identity=identity)})
    server = TlsServer(
        context,
        port=port,
        certfile=certs / "server.pem",
        keyfile=certs / "server.key",
        cafile=certs / "ca.pem",  # client certificates must be signed by this CA
        policy=policy,
        trace_connect=show_connection,
    )
    async with server:
        print(f"listening on tls://127.0.0.1:{server.port}", flush=True)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A Modbus/TCP Security server with role rules.")
    parser.add_argument("--port", type=int, default=8020, help="TCP port (802 is the standard one; 0: any free port)")
    parser.add_argument("--certs", type=Path, default=Path("certs"), help="directory written by make_certificates.py")
    parser.add_argument("--policy", type=Path, default=Path(__file__).with_name("roles.json"), help="role rules (JSON)")
    args = parser.parse_args()
    anyio.run(main, args.port, args.certs, args.policy)
