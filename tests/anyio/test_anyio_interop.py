"""Interop with clients nobody here wrote: pymodbus 3.16.1's clients and mbpoll.

The servers run on the test's backend (asyncio or trio); pymodbus's asyncio
clients run in a worker thread with their own event loop, mbpoll as a process.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
import trustme

from modbus_anyio import SerialServer, TcpServer, TlsServer, UdpServer
from modbus_core import Device, DeviceIdentity, ServerContext

from .anyio_support import IssueClient, PtyPair

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


def plant() -> tuple[ServerContext, Device]:
    device = Device.sized(200)
    device.discrete_inputs.write(10, [True, False, True], force=True)
    device.input_registers.write(20, [7, 8, 9], force=True)
    return ServerContext({1: device}), device


async def exercise(client: Any) -> dict[str, Any]:
    """Read and write every table through a connected pymodbus client (unit 1)."""
    results: dict[str, Any] = {}

    def ok(response: Any) -> Any:
        assert not response.isError(), response
        return response

    ok(await client.write_coil(1, True, device_id=1))
    ok(await client.write_coils(4, [True, False, True, True], device_id=1))
    results["coils"] = ok(await client.read_coils(0, count=8, device_id=1)).bits[:8]
    results["discrete_inputs"] = ok(await client.read_discrete_inputs(10, count=3, device_id=1)).bits[:3]
    ok(await client.write_register(2, 0x1234, device_id=1))
    ok(await client.write_registers(3, [5, 6, 7], device_id=1))
    results["holding"] = ok(await client.read_holding_registers(2, count=4, device_id=1)).registers
    results["input"] = ok(await client.read_input_registers(20, count=3, device_id=1)).registers
    ok(await client.mask_write_register(address=2, and_mask=0x00FF, or_mask=0x0F00, device_id=1))
    results["read_write"] = ok(
        await client.readwrite_registers(read_address=2, read_count=2, write_address=10, values=[42], device_id=1)
    ).registers
    error = await client.read_holding_registers(199, count=5, device_id=1)
    results["exception"] = error.exception_code if error.isError() else None
    return results


EXPECTED = {
    "coils": [False, True, False, False, True, False, True, True],
    "discrete_inputs": [True, False, True],
    "holding": [0x1234, 5, 6, 7],
    "input": [7, 8, 9],
    "read_write": [0x0F34, 5],
    "exception": 2,
}


async def run_pymodbus(make_client: Callable[[], Any], work: Callable[[Any], Awaitable[Any]] = exercise) -> Any:
    """Run *work* with a pymodbus client in a thread of its own (asyncio loop)."""

    async def main() -> Any:
        client = make_client()
        try:
            assert await client.connect(), "pymodbus could not connect"
            return await work(client)
        finally:
            client.close()

    def in_thread() -> Any:
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        return asyncio.run(asyncio.wait_for(main(), 20))

    return await anyio.to_thread.run_sync(in_thread)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_pymodbus_tcp_client(host: str) -> None:
    from pymodbus.client import AsyncModbusTcpClient

    context, device = plant()
    async with TcpServer(context, host=host, port=0) as server:
        with anyio.fail_after(30):
            results = await run_pymodbus(lambda: AsyncModbusTcpClient(host, port=server.port, timeout=3, retries=0))
    assert results == EXPECTED
    assert device.holding_registers[10] == 42


async def test_pymodbus_tls_client(
    tmp_path: Path, server_cert: trustme.LeafCert, ca: trustme.CA, issue_client: IssueClient
) -> None:
    from pymodbus.client import AsyncModbusTlsClient

    server_cert.cert_chain_pems[0].write_to_path(str(tmp_path / "server.pem"))
    server_cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    cert, key = issue_client(role="operator").write(tmp_path, "client")
    client_context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    client_context.load_cert_chain(cert, key)
    roles: list[str | None] = []
    context, _ = plant()
    async with TlsServer(
        context,
        port=0,
        certfile=tmp_path / "server.pem",
        keyfile=tmp_path / "server.key",
        cafile=tmp_path / "ca.pem",
        trace_connect=lambda connected, info: roles.append(info.role),
    ) as server:
        with anyio.fail_after(30):
            results = await run_pymodbus(
                lambda: AsyncModbusTlsClient("localhost", sslctx=client_context, port=server.port, timeout=3, retries=0)
            )
    assert results == EXPECTED
    assert roles[0] == "operator"


async def test_pymodbus_udp_client() -> None:
    from pymodbus.client import AsyncModbusUdpClient

    context, _ = plant()
    async with UdpServer(context, port=0) as server:
        with anyio.fail_after(30):
            results = await run_pymodbus(
                lambda: AsyncModbusUdpClient("127.0.0.1", port=server.port, timeout=3, retries=0)
            )
    assert results == EXPECTED


@pytest.mark.serial
@pytest.mark.parametrize("framer", ["rtu", "ascii"])
async def test_pymodbus_serial_client(pty_pair: PtyPair, framer: str) -> None:
    from pymodbus import FramerType
    from pymodbus.client import AsyncModbusSerialClient

    context, _ = plant()
    async with SerialServer(context, port=pty_pair.server, framer=framer, baudrate=19200):
        with anyio.fail_after(30):
            results = await run_pymodbus(
                lambda: AsyncModbusSerialClient(
                    pty_pair.client, framer=FramerType(framer), baudrate=19200, timeout=3, retries=0
                )
            )
    assert results == EXPECTED


async def test_pymodbus_reads_device_identification() -> None:
    from pymodbus.client import AsyncModbusTcpClient

    identity = DeviceIdentity("modbuskit", "MK-1", "1.0", product_name="interop")

    async def identify(client: Any) -> Any:
        response = await client.read_device_information(read_code=2, object_id=0, device_id=1)
        assert not response.isError(), response
        return response.information

    async with TcpServer(ServerContext(Device.sized(5)), port=0, identity=identity) as server:
        with anyio.fail_after(30):
            information = await run_pymodbus(
                lambda: AsyncModbusTcpClient("127.0.0.1", port=server.port, timeout=3, retries=0), identify
            )
    assert information[0] == b"modbuskit"
    assert information[1] == b"MK-1"
    assert information[4] == b"interop"


# -- mbpoll ------------------------------------------------------------------------

needs_mbpoll = pytest.mark.skipif(shutil.which("mbpoll") is None, reason="mbpoll is not installed")


async def mbpoll(*arguments: str) -> str:
    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["mbpoll", *arguments], capture_output=True, text=True, timeout=20, check=False)

    result = await anyio.to_thread.run_sync(run)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def mbpoll_values(output: str) -> dict[int, str]:
    values = {}
    for line in output.splitlines():
        if line.startswith("[") and "]:" in line:
            address, value = line[1:].split("]:", 1)
            values[int(address)] = value.strip()
    return values


@needs_mbpoll
async def test_mbpoll_tcp_reads_and_writes_every_table() -> None:
    context, device = plant()
    async with TcpServer(context, port=0) as server:
        port = str(server.port)
        common = ["-m", "tcp", "-p", port, "-a", "1", "-0", "-1"]
        with anyio.fail_after(60):
            await mbpoll(*common, "-t", "4", "-r", "5", "127.0.0.1", "11", "22", "33")
            holding = mbpoll_values(await mbpoll(*common, "-t", "4", "-r", "5", "-c", "3", "127.0.0.1"))
            await mbpoll(*common, "-t", "0", "-r", "7", "127.0.0.1", "1", "0", "1")
            coils = mbpoll_values(await mbpoll(*common, "-t", "0", "-r", "7", "-c", "3", "127.0.0.1"))
            inputs = mbpoll_values(await mbpoll(*common, "-t", "1", "-r", "10", "-c", "3", "127.0.0.1"))
            registers = mbpoll_values(await mbpoll(*common, "-t", "3", "-r", "20", "-c", "3", "127.0.0.1"))
    assert holding == {5: "11", 6: "22", 7: "33"}
    assert coils == {7: "1", 8: "0", 9: "1"}
    assert inputs == {10: "1", 11: "0", 12: "1"}
    assert registers == {20: "7", 21: "8", 22: "9"}
    assert device.holding_registers.read(5, 3) == (11, 22, 33)


@needs_mbpoll
@pytest.mark.serial
async def test_mbpoll_rtu_reads_and_writes_every_table(pty_pair: PtyPair) -> None:
    context, device = plant()
    async with SerialServer(context, port=pty_pair.server, baudrate=19200, parity="N"):
        common = ["-m", "rtu", "-b", "19200", "-P", "none", "-a", "1", "-0", "-1"]
        with anyio.fail_after(60):
            await mbpoll(*common, "-t", "4", "-r", "5", pty_pair.client, "11", "22", "33")
            holding = mbpoll_values(await mbpoll(*common, "-t", "4", "-r", "5", "-c", "3", pty_pair.client))
            await mbpoll(*common, "-t", "0", "-r", "7", pty_pair.client, "1", "0", "1")
            coils = mbpoll_values(await mbpoll(*common, "-t", "0", "-r", "7", "-c", "3", pty_pair.client))
            inputs = mbpoll_values(await mbpoll(*common, "-t", "1", "-r", "10", "-c", "3", pty_pair.client))
            registers = mbpoll_values(await mbpoll(*common, "-t", "3", "-r", "20", "-c", "3", pty_pair.client))
    assert holding == {5: "11", 6: "22", 7: "33"}
    assert coils == {7: "1", 8: "0", 9: "1"}
    assert inputs == {10: "1", 11: "0", 12: "1"}
    assert registers == {20: "7", 21: "8", 22: "9"}
    assert device.holding_registers.read(5, 3) == (11, 22, 33)
