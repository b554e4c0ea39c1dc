"""The blocking serial server through socat pseudo-terminal pairs: RTU, ASCII, shared lines."""

# mypy: allow-untyped-calls

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import serial
from pymodbus.client import ModbusSerialClient
from pymodbus.framer import FramerType as PymodbusFramer

from modbus_core import (
    AsciiFramer,
    ClientConnection,
    Device,
    ReadHoldingRegisters,
    RtuFramer,
    ServerContext,
    WriteSingleRegister,
)
from modbus_sync import SerialServer

from .sync_support import PtyPair, start_socat, stop_socat, wait_for
from .test_sync_interop import exercise_every_table, mbpoll

pytestmark = [pytest.mark.serial, pytest.mark.interop]


@pytest.mark.parametrize("framer", ["rtu", "ascii"])
def test_pymodbus_serial_client(pty_pair: PtyPair, framer: str) -> None:
    device = Device.sized(100)
    with SerialServer(ServerContext({1: device}), port=pty_pair.server, framer=framer) as server:
        assert server.addresses == [pty_pair.server]
        client = ModbusSerialClient(
            pty_pair.client, framer=PymodbusFramer(framer), baudrate=19200, timeout=2, retries=0
        )
        try:
            assert client.connect()
            exercise_every_table(client, device, unit=1)
        finally:
            client.close()
        assert [info.transport for info in server.connections] == ["serial"]


@pytest.mark.skipif(shutil.which("mbpoll") is None, reason="mbpoll is not installed")
def test_mbpoll_rtu(pty_pair: PtyPair) -> None:
    device = Device.sized(100)
    device.input_registers.write(0, [42], force=True)
    with SerialServer(ServerContext({3: device}), port=pty_pair.server, baudrate=9600, parity="E"):
        line = ["-m", "rtu", "-b", "9600", "-P", "even", "-a", "3"]
        mbpoll(*line, "-t", "4", "-r", "1", pty_pair.client, "777", "888")
        assert device.holding_registers.read(0, 2) == (777, 888)
        assert "[1]: \t42" in mbpoll(*line, "-t", "3", "-r", "1", pty_pair.client)
        mbpoll(*line, "-t", "0", "-r", "3", pty_pair.client, "1")
        assert device.coils.read(2, 1) == (True,)


class LineClient:
    """A raw client on the other end of the line: write frames, read what comes back."""

    def __init__(self, path: str, framer: RtuFramer | AsciiFramer | None = None) -> None:
        self.port = serial.Serial(path, 19200, timeout=0.3)
        self.conn = ClientConnection(framer or RtuFramer(19200))
        self.rtu = RtuFramer(19200)

    def close(self) -> None:
        self.port.close()

    def frame(self, unit: int, pdu: bytes) -> bytes:
        return self.rtu.encode(unit, 0, pdu)

    def read_all(self, quiet: float = 0.3) -> bytes:
        """Everything that arrives until *quiet* seconds pass without a byte."""
        self.port.timeout = quiet
        data = b""
        while chunk := self.port.read(512):
            data += chunk
        return data


def test_shared_line_answers_only_its_units_and_ignores_other_traffic(pty_pair: PtyPair) -> None:
    ours = Device.sized(10)
    with SerialServer(ServerContext({1: ours, 2: Device.sized(10)}), port=pty_pair.server) as server:
        line = LineClient(pty_pair.client)
        try:
            other_request = line.frame(7, ReadHoldingRegisters(0, 2).encode())
            other_response = line.frame(7, b"\x03\x04\x00\x01\x00\x02")
            our_request = line.frame(1, ReadHoldingRegisters(0, 1).encode())
            # Another master's request and another server's answer, then ours, back to back.
            line.port.write(other_request + other_response + our_request)
            assert line.read_all() == line.frame(1, b"\x03\x02\x00\x00")
            # Broadcast: executed on every device, never answered.
            line.port.write(line.frame(0, WriteSingleRegister(4, 99).encode()))
            assert line.read_all() == b""
            assert ours.holding_registers.read(4, 1) == (99,)
            assert server.diagnostics.bus_message_count >= 4
        finally:
            line.close()


def test_missing_units_answered_when_asked(pty_pair: PtyPair) -> None:
    with SerialServer(ServerContext({1: Device.sized(10)}), port=pty_pair.server, ignore_missing_units=False):
        line = LineClient(pty_pair.client)
        try:
            line.port.write(line.frame(9, ReadHoldingRegisters(0, 1).encode()))
            assert line.read_all() == line.frame(9, b"\x83\x0b")
        finally:
            line.close()


def test_local_echo_is_dropped(pty_pair: PtyPair) -> None:
    """An RS-485 adapter that echoes: the server sees its own answer come back first."""
    with SerialServer(ServerContext({1: Device.sized(10)}), port=pty_pair.server, echo=True) as server:
        line = LineClient(pty_pair.client)
        try:
            request = line.frame(1, ReadHoldingRegisters(0, 1).encode())
            line.port.write(request)
            answer = line.read_all()
            assert answer == line.frame(1, b"\x03\x02\x00\x00")
            errors = server.diagnostics.bus_communication_error_count
            # The echo of the answer, then the next request: one answer, no error.
            line.port.write(answer + request)
            assert line.read_all() == answer
            assert server.diagnostics.bus_communication_error_count == errors
        finally:
            line.close()


def test_ascii_garbage_then_a_good_frame(pty_pair: PtyPair) -> None:
    with SerialServer(ServerContext({1: Device.sized(10)}), port=pty_pair.server, framer="ascii"):
        line = LineClient(pty_pair.client)
        ascii_framer = AsciiFramer()
        try:
            good = ascii_framer.encode(1, 0, ReadHoldingRegisters(0, 1).encode())
            line.port.write(b"noise\r\n:01ZZ\r\n" + good)
            assert line.read_all() == ascii_framer.encode(1, 0, b"\x03\x02\x00\x00")
        finally:
            line.close()


@pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed")
def test_port_lost_and_reopened(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The adapter goes away (socat dies) and comes back under the same name."""
    caplog.set_level(logging.INFO, logger="modbus_sync")
    server_link = tmp_path / "server-tty"
    client_link = tmp_path / "client-tty"

    def start() -> subprocess.Popen[bytes]:
        process, _ = start_socat(f"pty,raw,echo=0,link={server_link}", f"pty,raw,echo=0,link={client_link}")
        return process

    socat = start()
    connects: list[bool] = []
    try:
        with SerialServer(
            ServerContext({1: Device.sized(10)}),
            port=str(server_link),
            reconnect_delay=0.1,
            trace_connect=connects.append,
        ):
            stop_socat(socat)
            # The device node goes away with the adapter (a killed socat leaves its links behind,
            # and their /dev/pts numbers soon belong to someone else).
            server_link.unlink()
            client_link.unlink()
            assert wait_for(lambda: "reopening every 0.1 s" in caplog.text)
            socat = start()
            assert wait_for(lambda: connects == [True, False, True])
            assert f"{server_link} reopened" in caplog.text
            line = LineClient(str(client_link))
            try:
                line.port.write(line.frame(1, ReadHoldingRegisters(0, 1).encode()))
                assert line.read_all() == line.frame(1, b"\x03\x02\x00\x00")
            finally:
                line.close()
    finally:
        stop_socat(socat)
    assert connects == [True, False, True, False]


def test_bad_port_raises_at_start(tmp_path: Path) -> None:
    server = SerialServer(ServerContext(), port=str(tmp_path / "no-such-tty"))
    started = time.monotonic()
    with pytest.raises(OSError, match="cannot open"):
        server.start()
    assert time.monotonic() - started < 2
