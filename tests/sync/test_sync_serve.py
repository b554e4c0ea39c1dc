"""``modbuskit serve --sync`` as a process: serving, Ctrl-C, SIGTERM, exit codes."""

# mypy: allow-untyped-calls

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymodbus.client import ModbusSerialClient, ModbusTcpClient, ModbusUdpClient
from pymodbus.framer import FramerType as PymodbusFramer

from .sync_support import PtyPair, _read_line

ROOT = Path(os.path.abspath(__file__)).parents[2]
_LISTENING = re.compile(rb"modbuskit serve: (\w+) on (\S+) \(sync\)")


class ServeProcess:
    def __init__(self, *arguments: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "modbus_anyio", "serve", "--sync", *arguments],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.lines: list[bytes] = []

    def wait_listening(self, count: int = 1) -> list[tuple[str, str]]:
        """The (transport, address) lines the command prints once serving."""
        found: list[tuple[str, str]] = []
        deadline = time.monotonic() + 15
        while len(found) < count:
            line = _read_line(self.process.stderr, deadline)
            assert line, f"serve exited: {b''.join(self.lines).decode()}"
            self.lines.append(line)
            match = _LISTENING.search(line)
            if match:
                found.append((match.group(1).decode(), match.group(2).decode()))
        return found

    def stop(self, signum: int) -> tuple[int, str]:
        self.process.send_signal(signum)
        returncode = self.process.wait(timeout=10)
        assert self.process.stderr is not None
        rest = self.process.stderr.read()
        return returncode, (b"".join(self.lines) + rest).decode()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)
        if self.process.stderr is not None:
            self.process.stderr.close()


@pytest.fixture
def serve() -> Iterator[type[ServeProcess]]:
    started: list[ServeProcess] = []

    class Tracked(ServeProcess):
        def __init__(self, *arguments: str) -> None:
            super().__init__(*arguments)
            started.append(self)

    yield Tracked
    for process in started:
        process.kill()


def port_of(address: str) -> int:
    return int(address.rpartition(":")[2])


@pytest.mark.interop
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_tcp_then_stop(serve: type[ServeProcess], stop_signal: int) -> None:
    process = serve("--tcp", "127.0.0.1:0", "--unit", "1", "--size", "100")
    [(transport, address)] = process.wait_listening()
    assert transport == "tcp"
    client = ModbusTcpClient("127.0.0.1", port=port_of(address), timeout=3)
    try:
        assert client.connect()
        assert not client.write_registers(98, [5, 6], device_id=1).isError()
        assert client.read_holding_registers(98, count=2, device_id=1).registers == [5, 6]
        assert client.read_holding_registers(100, count=1, device_id=1).exception_code == 2  # --size 100
        assert client.read_holding_registers(0, count=1, device_id=2).exception_code == 0x0B  # only --unit 1
    finally:
        client.close()
    returncode, output = process.stop(stop_signal)
    assert returncode == 0, output
    assert "modbuskit serve: stopping" in output
    assert "Traceback" not in output
    with socket.create_server(("127.0.0.1", port_of(address))):
        pass  # released


@pytest.mark.interop
def test_serve_udp_and_tcp_together(serve: type[ServeProcess]) -> None:
    process = serve("--udp", "127.0.0.1:0", "--tcp", "127.0.0.1:0")
    listening = dict(process.wait_listening(2))
    tcp = ModbusTcpClient("127.0.0.1", port=port_of(listening["tcp"]), timeout=3)
    udp = ModbusUdpClient("127.0.0.1", port=port_of(listening["udp"]), timeout=3)
    try:
        assert tcp.connect()
        assert udp.connect()
        assert not tcp.write_register(3, 33, device_id=9).isError()
        # One datastore for both, every unit answered by default.
        assert udp.read_holding_registers(3, count=1, device_id=4).registers == [33]
    finally:
        tcp.close()
        udp.close()
    assert process.stop(signal.SIGINT)[0] == 0


@pytest.mark.serial
@pytest.mark.interop
def test_serve_serial_ascii(serve: type[ServeProcess], pty_pair: PtyPair) -> None:
    process = serve("--serial", pty_pair.server, "--framer", "ascii", "--baudrate", "9600", "--unit", "5")
    process.wait_listening()
    client = ModbusSerialClient(pty_pair.client, framer=PymodbusFramer.ASCII, baudrate=9600, timeout=2, retries=0)
    try:
        assert client.connect()
        assert not client.write_coil(7, True, device_id=5).isError()
        assert client.read_coils(7, count=1, device_id=5).bits[0] is True
    finally:
        client.close()
    assert process.stop(signal.SIGINT)[0] == 0


def test_serve_address_in_use_exits_1(serve: type[ServeProcess]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        process = serve("--tcp", f"127.0.0.1:{port}")
        returncode = process.process.wait(timeout=15)
        assert process.process.stderr is not None
        output = process.process.stderr.read().decode()
    assert returncode == 1
    assert output.strip().splitlines() == [
        f"modbuskit serve: error: cannot bind 127.0.0.1:{port}: Address already in use"
    ]


def test_serve_bad_arguments_exit_2(serve: type[ServeProcess]) -> None:
    process = serve("--tls", "127.0.0.1:0")
    assert process.process.wait(timeout=15) == 2
    assert process.process.stderr is not None
    assert b"--tls needs --cert" in process.process.stderr.read()
    missing = serve("--tls", "127.0.0.1:0", "--cert", "x.pem", "--key", "x.pem", "--ca", "missing.pem")
    assert missing.process.wait(timeout=15) == 2
    assert missing.process.stderr is not None
    assert missing.process.stderr.read().decode().splitlines() == [
        "modbuskit serve: error: cannot load the CA certificates missing.pem: No such file or directory"
    ]
