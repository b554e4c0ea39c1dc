"""The serial server over socat pseudo-terminal pairs, on asyncio and trio."""

from __future__ import annotations

import logging

import anyio
import pytest

from modbus_anyio import ConnectionInfo, SerialServer, serve_serial
from modbus_core import (
    AsciiFramer,
    ClientConnection,
    Device,
    ExceptionResponse,
    ReadCoils,
    ReadDiscreteInputs,
    ReadHoldingRegisters,
    ReadHoldingRegistersResponse,
    ReadInputRegisters,
    Request,
    Response,
    RtuFramer,
    ServerContext,
    WriteMultipleCoils,
    WriteMultipleRegisters,
    WriteSingleCoil,
    WriteSingleRegister,
    crc16,
)

from .anyio_support import PtyPair, SerialEnd

pytestmark = [pytest.mark.anyio, pytest.mark.serial]


def rtu(unit: int, pdu: bytes) -> bytes:
    frame = bytes((unit,)) + pdu
    return frame + crc16(frame).to_bytes(2, "little")


@pytest.mark.parametrize(("framer", "client_framer"), [("rtu", RtuFramer), ("ascii", AsciiFramer)])
async def test_reads_and_writes_every_table(pty_pair: PtyPair, framer: str, client_framer: type) -> None:
    device = Device.sized(50)
    device.discrete_inputs[2] = True
    device.input_registers[4] = 4444
    server = SerialServer(ServerContext({1: device}), port=pty_pair.server, framer=framer, baudrate=38400)
    async with server:
        assert server.addresses == [pty_pair.server]
        assert server.connections[0].transport == "serial"
        end = SerialEnd(pty_pair.client)
        client = ClientConnection(client_framer())
        try:
            with anyio.fail_after(10):
                await end.call(client, WriteSingleCoil(1, True))
                await end.call(client, WriteMultipleCoils(5, (True, True)))
                assert (await end.call(client, ReadCoils(0, 8))).pdu.values == (
                    False,
                    True,
                    False,
                    False,
                    False,
                    True,
                    True,
                    False,
                )
                assert (await end.call(client, ReadDiscreteInputs(2, 1))).pdu.values == (True,)
                await end.call(client, WriteSingleRegister(0, 17))
                await end.call(client, WriteMultipleRegisters(1, (18, 19)))
                assert (await end.call(client, ReadHoldingRegisters(0, 3))).pdu.registers == (17, 18, 19)
                assert (await end.call(client, ReadInputRegisters(4, 1))).pdu.registers == (4444,)
                assert (await end.call(client, ReadHoldingRegisters(49, 2))).pdu == ExceptionResponse(3, 2)
        finally:
            end.close()
    assert device.holding_registers[0] == 17


async def test_shared_line_answers_only_its_units_and_skips_other_servers(pty_pair: PtyPair) -> None:
    """Another server (unit 2) answers on the same RS-485 line: its request and
    response pass by; only the request to unit 1 is answered, once."""
    device = Device.sized(10)
    device.holding_registers[0] = 0x0A0B
    async with SerialServer(ServerContext({1: device}), port=pty_pair.server) as server:
        end = SerialEnd(pty_pair.client)
        try:
            with anyio.fail_after(10):
                other_request = rtu(2, bytes.fromhex("03 0000 0002"))
                # unit 2's answer; its bytes 01 03 ... would read as a request to unit 1
                # if the server lost track of frame boundaries
                other_response = rtu(2, bytes.fromhex("03 04 0103 0000"))
                ours = rtu(1, bytes.fromhex("03 0000 0001"))
                await end.write(other_request + other_response + ours)
                answer = rtu(1, bytes.fromhex("03 02 0A0B"))
                assert await end.read(len(answer)) == answer
                assert await end.read_for(0.3) == b""
                assert server.diagnostics.bus_message_count == 3
                assert server.diagnostics.server_message_count == 1
        finally:
            end.close()


async def test_broadcast_writes_without_answer(pty_pair: PtyPair) -> None:
    one, two = Device.sized(5), Device.sized(5)
    async with SerialServer(ServerContext({1: one, 2: two}), port=pty_pair.server):
        end = SerialEnd(pty_pair.client)
        try:
            with anyio.fail_after(10):
                await end.write(rtu(0, bytes.fromhex("06 0003 0063")))
                assert await end.read_for(0.3) == b""
                assert one.holding_registers[3] == two.holding_registers[3] == 0x63
        finally:
            end.close()


@pytest.mark.parametrize("ignore_missing_units", [True, False])
async def test_missing_unit_on_a_point_to_point_line(pty_pair: PtyPair, ignore_missing_units: bool) -> None:
    # Silence by default (a shared line); exception 0B when the user says the
    # line is theirs alone.
    server = SerialServer(
        ServerContext({1: Device.sized(5)}), port=pty_pair.server, ignore_missing_units=ignore_missing_units
    )
    async with server:
        end = SerialEnd(pty_pair.client)
        try:
            with anyio.fail_after(10):
                if ignore_missing_units:
                    await end.write(rtu(7, ReadHoldingRegisters(0, 1).encode()))
                    assert await end.read_for(0.3) == b""
                else:
                    answer = await end.call(ClientConnection(RtuFramer()), ReadHoldingRegisters(0, 1), unit=7)
                    assert answer.pdu == ExceptionResponse(3, 0x0B)
        finally:
            end.close()


@pytest.mark.parametrize("echo", [True, False])
async def test_local_echo_suppression(pty_pair: PtyPair, echo: bool) -> None:
    """An adapter that echoes: the server hears its own answer.  The answer to
    function 06 is the request itself, so without suppression it runs twice."""
    writes: list[int] = []
    device = Device.sized(5)
    device.holding_registers.subscribe(lambda change: writes.append(change.address))
    async with SerialServer(ServerContext({1: device}), port=pty_pair.server, echo=echo):
        end = SerialEnd(pty_pair.client)
        try:
            with anyio.fail_after(10):
                request = rtu(1, bytes.fromhex("06 0001 0005"))
                await end.write(request)
                assert await end.read(len(request)) == request
                await end.write(request)  # the line's echo of the answer
                again = await end.read_for(0.3)
        finally:
            end.close()
    if echo:
        assert again == b""
        assert writes == [1]
    else:
        assert again == request
        assert writes == [1, 1]


async def test_async_handler_on_a_serial_line(pty_pair: PtyPair) -> None:
    async def handler(request: Request, info: ConnectionInfo) -> Response:
        await anyio.sleep(0.01)
        assert info.transport == "serial"
        return request.reply(ReadHoldingRegistersResponse((request.unit,)))

    async with SerialServer(handler, port=pty_pair.server, units={7}):
        end = SerialEnd(pty_pair.client)
        try:
            with anyio.fail_after(10):
                await end.write(rtu(8, bytes.fromhex("03 0000 0001")) + rtu(7, bytes.fromhex("03 0000 0001")))
                answer = rtu(7, bytes.fromhex("03 02 0007"))
                assert await end.read(len(answer)) == answer
                assert await end.read_for(0.2) == b""
        finally:
            end.close()


async def test_serve_serial_and_shutdown(pty_pair: PtyPair) -> None:
    async with anyio.create_task_group() as task_group:
        server = await task_group.start(
            lambda task_status: serve_serial(ServerContext(), port=pty_pair.server, task_status=task_status)
        )
        assert server.listening
        await server.shutdown()
    assert not server.listening


async def test_rs485_settings_pass_through_to_pyserial(pty_pair: PtyPair) -> None:
    """A pseudo-terminal has no RS-485 mode: pyserial's ioctl fails, which shows
    the settings reach it; the error names the port."""
    import serial.rs485

    server = SerialServer(ServerContext(), port=pty_pair.server, rs485_mode=serial.rs485.RS485Settings())
    with pytest.raises(OSError, match=r"cannot configure serial port .*RS485"):
        await server.serve_forever()


async def test_missing_device_is_a_clear_error(tmp_path: object) -> None:
    with pytest.raises(OSError, match="cannot open serial port /nonexistent/tty"):
        await SerialServer(ServerContext(), port="/nonexistent/tty").serve_forever()


async def test_device_gone_is_logged_and_retried(pty_pair: PtyPair, caplog: pytest.LogCaptureFixture) -> None:
    import os
    import signal

    caplog.set_level(logging.WARNING, logger="modbus_anyio")
    connects: list[bool] = []
    async with SerialServer(
        ServerContext(), port=pty_pair.server, reconnect_delay=0.05, trace_connect=connects.append
    ) as server:
        os.kill(pty_pair.pid, signal.SIGKILL)
        with anyio.fail_after(5):
            while "reopening" not in caplog.text:
                await anyio.sleep(0.02)
        assert server.listening
    assert connects[:2] == [True, False]


def test_bad_serial_options() -> None:
    for options, message in (
        ({"port": ""}, "port"),
        ({"port": "x", "baudrate": 0}, "baudrate"),
        ({"port": "x", "parity": "X"}, "parity"),
        ({"port": "x", "bytesize": 9}, "bytesize"),
        ({"port": "x", "stopbits": 3}, "stopbits"),
        ({"port": "x", "framer": "socket"}, "MBAP"),
    ):
        with pytest.raises(ValueError, match=message):
            SerialServer(ServerContext(), **options)
