"""pymodbus' server names: a pymodbus program moves by changing its imports."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import anyio
import anyio.to_thread
import pytest

import modbus_anyio
from modbus_anyio import (
    FramerType,
    ModbusDeviceContext,
    ModbusDeviceIdentification,
    ModbusSequentialDataBlock,
    ModbusSerialServer,
    ModbusServerContext,
    ModbusTcpServer,
    ModbusTlsServer,
    ModbusUdpServer,
    ServerAsyncStop,
    StartAsyncSerialServer,
    StartAsyncTcpServer,
    StartAsyncUdpServer,
    started_servers,
)
from modbus_core import ClientConnection, ReadDeviceIdentification, ReadHoldingRegisters, RtuFramer

from .anyio_support import PtyPair, SerialEnd, connect

pytestmark = pytest.mark.anyio


def pymodbus_context() -> ModbusServerContext:
    device = ModbusDeviceContext(hr=ModbusSequentialDataBlock(1, [17] * 100))
    return ModbusServerContext(devices=device, single=True)


def test_signatures_accept_pymodbus_keywords() -> None:
    """Every keyword of pymodbus 3.16.1's constructors is accepted."""
    import inspect

    from pymodbus.server import server as pymodbus_servers

    for ours, theirs in (
        (ModbusTcpServer, pymodbus_servers.ModbusTcpServer),
        (ModbusTlsServer, pymodbus_servers.ModbusTlsServer),
        (ModbusUdpServer, pymodbus_servers.ModbusUdpServer),
        (ModbusSerialServer, pymodbus_servers.ModbusSerialServer),
    ):
        their_names = set(inspect.signature(theirs.__init__).parameters) - {"self"}
        our_names = set(inspect.signature(ours.__init__).parameters) - {"self", "options"}
        assert their_names <= our_names, (ours.__name__, their_names - our_names)


async def test_modbus_tcp_server_with_pymodbus_arguments() -> None:
    packets: list[bool] = []
    connects: list[bool] = []

    def trace_packet(sending: bool, data: bytes) -> bytes:
        packets.append(sending)
        return data

    identity = ModbusDeviceIdentification(info_name={"VendorName": "ACME", "ProductCode": "X1"})
    server = ModbusTcpServer(
        context=pymodbus_context(),
        framer=FramerType.SOCKET,
        identity=identity,
        address=("127.0.0.1", 0),
        ignore_missing_devices=False,
        broadcast_enable=False,
        trace_packet=trace_packet,
        trace_pdu=lambda sending, pdu: pdu,
        trace_connect=connects.append,
        custom_pdu=None,
    )
    async with server:
        with anyio.fail_after(5):
            client = await connect(server.port)
            assert (await client.call(ReadHoldingRegisters(0, 2))).pdu.registers == (17, 17)
            response = await client.call(ReadDeviceIdentification(1, 0))
            assert response.pdu.objects[0] == (0, b"ACME")
            await client.aclose()
            while len(connects) < 2:
                await anyio.sleep(0.01)
    assert packets == [False, True, False, True]
    assert connects == [True, False]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_serve_forever_in_the_background_on_asyncio() -> None:
    server = ModbusTcpServer(pymodbus_context(), address=("127.0.0.1", 0))
    await server.serve_forever(background=True)
    try:
        assert server.listening
        with anyio.fail_after(5):
            client = await connect(server.port)
            await client.call(ReadHoldingRegisters(0, 1))
            await client.aclose()
    finally:
        await server.shutdown()
    assert not server.listening


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_serve_forever_in_the_background_needs_asyncio() -> None:
    with pytest.raises(RuntimeError, match="needs asyncio"):
        await ModbusTcpServer(pymodbus_context(), address=("127.0.0.1", 0)).serve_forever(background=True)


async def test_server_async_stop_stops_every_server_started() -> None:
    with anyio.fail_after(10):
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(lambda: StartAsyncTcpServer(pymodbus_context(), address=("127.0.0.1", 0)))
            task_group.start_soon(lambda: StartAsyncTcpServer(pymodbus_context(), address=("127.0.0.1", 0)))
            task_group.start_soon(lambda: StartAsyncUdpServer(pymodbus_context(), address=("127.0.0.1", 0)))
            while len(started_servers()) < 3 or not all(server.listening for server in started_servers()):
                await anyio.sleep(0.01)
            tcp_ports = [server.port for server in started_servers() if isinstance(server, ModbusTcpServer)]
            for port in tcp_ports:
                client = await connect(port)
                await client.call(ReadHoldingRegisters(0, 1))
                await client.aclose()
            await ServerAsyncStop()
        # the task group ends: every StartAsync* call returned
    assert started_servers() == []
    with pytest.raises(RuntimeError, match="not running"):
        await ServerAsyncStop()


async def test_server_async_stop_is_per_event_loop() -> None:
    """A ServerAsyncStop in another event loop (another thread) does not see, nor stop, this loop's servers."""
    with anyio.fail_after(10):
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(lambda: StartAsyncTcpServer(pymodbus_context(), address=("127.0.0.1", 0)))
            while not started_servers() or not started_servers()[0].listening:
                await anyio.sleep(0.01)

            def other_loop() -> str:
                try:
                    asyncio.run(ServerAsyncStop())
                except RuntimeError as error:
                    return str(error)
                return "stopped"

            assert await anyio.to_thread.run_sync(other_loop) == "Modbus server not running."
            server = started_servers()[0]
            client = await connect(server.port)
            await client.call(ReadHoldingRegisters(0, 1))
            await client.aclose()
            await ServerAsyncStop()


@pytest.mark.serial
async def test_start_async_serial_server(pty_pair: PtyPair, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(
                lambda: StartAsyncSerialServer(
                    context=pymodbus_context(),
                    framer=FramerType.RTU,
                    port=pty_pair.server,
                    baudrate=9600,
                    handle_local_echo=False,
                )
            )
            while not started_servers() or not started_servers()[0].listening:
                await anyio.sleep(0.01)
            end = SerialEnd(pty_pair.client)
            try:
                response: Any = await end.call(ClientConnection(RtuFramer(9600)), ReadHoldingRegisters(0, 3), unit=4)
                assert response.pdu.registers == (17, 17, 17)
            finally:
                end.close()
            await ServerAsyncStop()


def test_tls_server_requires_sslctx_like_pymodbus() -> None:
    with pytest.raises(TypeError, match="sslctx"):
        ModbusTlsServer(pymodbus_context())


def test_every_exported_name_resolves() -> None:
    for name in modbus_anyio.__all__:
        assert getattr(modbus_anyio, name) is not None
    assert set(dir(modbus_anyio)) >= set(modbus_anyio.__all__)
    with pytest.raises(AttributeError):
        modbus_anyio.NoSuchThing  # noqa: B018
