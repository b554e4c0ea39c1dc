"""modbus_sync against clients nobody here wrote: pymodbus' sync clients and mbpoll."""

# mypy: allow-untyped-calls

from __future__ import annotations

import shutil
import socket
import subprocess
from typing import Any

import pytest
from pymodbus.client import ModbusTcpClient, ModbusUdpClient
from pymodbus.framer import FramerType as PymodbusFramer

from modbus_core import Device, ServerContext
from modbus_sync import (
    ModbusDeviceContext,
    ModbusDeviceIdentification,
    ModbusSequentialDataBlock,
    ModbusServerContext,
    TcpServer,
    UdpServer,
)

pytestmark = pytest.mark.interop


def exercise_every_table(client: Any, device: Device, unit: int = 1) -> None:
    """Read and write every table through *client*; check the device saw it."""
    device.discrete_inputs.write(3, [True, False, True], force=True)
    device.input_registers.write(5, [111, 222], force=True)

    assert not client.write_coil(2, True, device_id=unit).isError()
    assert not client.write_coils(10, [True, False, True, True], device_id=unit).isError()
    assert client.read_coils(10, count=4, device_id=unit).bits[:4] == [True, False, True, True]
    assert device.coils.read(2, 1) == (True,)

    assert client.read_discrete_inputs(3, count=3, device_id=unit).bits[:3] == [True, False, True]

    assert not client.write_register(7, 0xBEEF, device_id=unit).isError()
    assert not client.write_registers(20, [1, 2, 3, 65535], device_id=unit).isError()
    assert client.read_holding_registers(20, count=4, device_id=unit).registers == [1, 2, 3, 65535]
    assert device.holding_registers.read(7, 1) == (0xBEEF,)

    assert client.read_input_registers(5, count=2, device_id=unit).registers == [111, 222]

    # Address 100 is past the table: exception 02.
    error = client.read_holding_registers(99, count=2, device_id=unit)
    assert error.isError()
    assert error.exception_code == 2


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_tcp_with_pymodbus_client(host: str) -> None:
    if host == "::1" and not socket.has_ipv6:
        pytest.skip("no IPv6")
    device = Device.sized(100)
    with TcpServer(ServerContext(device), host=host, port=0) as server:
        assert server.addresses[0][0] == host
        client = ModbusTcpClient(host, port=server.port, timeout=3)
        try:
            assert client.connect()
            exercise_every_table(client, device)
        finally:
            client.close()


def test_udp_with_pymodbus_client() -> None:
    device = Device.sized(100)
    with UdpServer(ServerContext(device), port=0) as server:
        client = ModbusUdpClient("127.0.0.1", port=server.port, timeout=3)
        try:
            assert client.connect()
            exercise_every_table(client, device)
            assert [info.transport for info in server.connections] == ["udp"]
        finally:
            client.close()


def test_rtu_framing_over_tcp() -> None:
    """Any framer on any transport: RTU frames over a TCP connection."""
    device = Device.sized(100)
    with TcpServer(ServerContext(device), port=0, framer="rtu") as server:
        client = ModbusTcpClient("127.0.0.1", port=server.port, framer=PymodbusFramer.RTU, timeout=3)
        try:
            assert client.connect()
            exercise_every_table(client, device, unit=5)
        finally:
            client.close()


def test_ascii_framing_over_udp() -> None:
    device = Device.sized(100)
    with UdpServer(ServerContext(device), port=0, framer="ascii") as server:
        client = ModbusUdpClient("127.0.0.1", port=server.port, framer=PymodbusFramer.ASCII, timeout=3)
        try:
            assert client.connect()
            exercise_every_table(client, device, unit=9)
        finally:
            client.close()


def test_pymodbus_datastore_names_and_identity() -> None:
    """A pymodbus program's datastore and identity, moved by changing imports."""
    device_context = ModbusDeviceContext(hr=ModbusSequentialDataBlock(1, [10, 11, 12]))
    context = ModbusServerContext(devices={1: device_context}, single=False)
    identity = ModbusDeviceIdentification(info_name={"VendorName": "ACME", "ProductCode": "PM-1"})
    with TcpServer(context, port=0, identity=identity) as server:
        client = ModbusTcpClient("127.0.0.1", port=server.port, timeout=3)
        try:
            assert client.connect()
            assert client.read_holding_registers(0, count=3, device_id=1).registers == [10, 11, 12]
            assert not client.write_register(1, 99, device_id=1).isError()
            assert device_context.getValues(3, 1, 1) == [99]
            info: Any = client.read_device_information(device_id=1)
            assert info.information[0] == b"ACME"
            assert info.information[1] == b"PM-1"
            # Unit 2 is not in the context: TCP answers exception 0B by default.
            missing = client.read_holding_registers(0, count=1, device_id=2)
            assert missing.isError()
            assert missing.exception_code == 0x0B
        finally:
            client.close()


def mbpoll(*arguments: str) -> str:
    completed = subprocess.run(
        ["mbpoll", "-1", "-o", "2", *arguments], capture_output=True, text=True, timeout=20, check=False
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


@pytest.mark.skipif(shutil.which("mbpoll") is None, reason="mbpoll is not installed")
def test_tcp_with_mbpoll() -> None:
    device = Device.sized(100)
    device.input_registers.write(0, [7, 8], force=True)
    device.discrete_inputs.write(0, [True, False], force=True)
    with TcpServer(ServerContext(device), port=0) as server:
        port = str(server.port)
        # mbpoll numbers references from 1: -r 11 is protocol address 10.
        mbpoll("-m", "tcp", "-p", port, "-a", "1", "-t", "4", "-r", "11", "127.0.0.1", "1234", "4321")
        assert device.holding_registers.read(10, 2) == (1234, 4321)
        output = mbpoll("-m", "tcp", "-p", port, "-a", "1", "-t", "4", "-r", "11", "-c", "2", "127.0.0.1")
        assert "[11]: \t1234" in output
        assert "[1]: \t7" in mbpoll("-m", "tcp", "-p", port, "-t", "3", "-r", "1", "-c", "2", "127.0.0.1")
        mbpoll("-m", "tcp", "-p", port, "-t", "0", "-r", "5", "127.0.0.1", "1")
        assert device.coils.read(4, 1) == (True,)
        assert "[1]: \t1" in mbpoll("-m", "tcp", "-p", port, "-t", "1", "-r", "1", "-c", "2", "127.0.0.1")
