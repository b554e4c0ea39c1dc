"""``modbuskit sim`` as a user runs it: a real process, real ports, Ctrl-C."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .sim_support import PYMODBUS_SETUP, modbus_client, plant_document, write_json

MODBUSKIT = [sys.executable, "-m", "modbus_anyio"]


def run(*arguments: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MODBUSKIT, *arguments], capture_output=True, text=True, timeout=timeout, check=False)


@contextmanager
def simulator_process(*arguments: str) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """``modbuskit sim`` with *arguments*; yields the process and what it announced (name -> address)."""
    process = subprocess.Popen(
        [*MODBUSKIT, "sim", *arguments], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        announced: dict[str, str] = {}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            if match := re.match(r"modbuskit simulator: .* \((\w+)\)$", line):
                announced["backend"] = match[1]
            elif match := re.match(r"\s+Modbus (\S+): \S+ (\S+)", line):
                announced[match[1]] = match[2]
            elif match := re.match(r"\s+Web page: (\S+)", line):
                announced["web"] = match[1]
            elif line.startswith("Press Ctrl-C"):
                break
        else:
            raise AssertionError("the simulator did not start in time")
        yield process, announced
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_the_default_plant_runs_and_ctrl_c_stops_it(backend: str) -> None:
    with simulator_process("--modbus-port", "0", "--http-port", "0", "--backend", backend) as (process, announced):
        assert set(announced) == {"backend", "plant", "web"}
        assert announced["backend"] == backend
        with modbus_client(split(announced["plant"])) as client:
            voltage = client.read_input_registers(0, count=2, device_id=1).registers
            level = client.read_input_registers(0, count=1, device_id=2).registers
        (value,) = struct.unpack(">f", struct.pack(">HH", *voltage))
        assert 220 < value < 240
        assert 0 <= level[0] <= 1000
        with urllib.request.urlopen(f"{announced['web']}/registers", timeout=10) as page:
            assert b"<title>Registers" in page.read()
        with urllib.request.urlopen(f"{announced['web']}/api/plant", timeout=10) as response:
            assert json.load(response)["devices"] == 3
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=15)
        assert process.returncode == 0, err
        assert out.strip().endswith("modbuskit sim: stopped")
        assert "Traceback" not in err


def test_sigterm_stops_cleanly_too(tmp_path: Path) -> None:
    config = write_json(tmp_path / "plant.json", plant_document())
    with simulator_process("--config", str(config), "--no-http") as (process, announced):
        assert announced == {"backend": announced["backend"], "main": announced["main"], "web": "off"}
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=15)
        assert process.returncode == 0


def test_a_pymodbus_setup_file_with_its_entries(tmp_path: Path) -> None:
    arguments = ["--config", str(PYMODBUS_SETUP), "--modbus-server", "server_test_try_udp", "--modbus-device", "device"]
    arguments += ["--modbus-host", "127.0.0.1", "--modbus-port", "0", "--no-http"]
    with simulator_process(*arguments) as (process, announced):
        host, port = split(announced["server_test_try_udp"])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            sock.sendto(bytes.fromhex("0001 0000 0006 01 03 0003 0001"), (host, port))
            assert sock.recv(512) == bytes.fromhex("0001 0000 0005 01 03 02 4269")  # 17001
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=15)
        assert process.returncode == 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--http-port", "x"], "argument --http-port: expected a port number 0..65535, got 'x'"),
        (["--modbus-port", "70000"], "argument --modbus-port: expected a port number 0..65535, got 70000"),
        (["--backend", "curio"], "argument --backend: invalid choice: 'curio'"),
        (["--modbus-device", "x"], "--modbus-server and --modbus-device need --config"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(arguments: list[str], message: str) -> None:
    result = run("sim", *arguments)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("modbuskit sim: error: ")
    assert message in result.stderr


def test_a_bad_configuration_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    path = write_json(tmp_path / "plant.json", plant_document(devices=[{"name": "a", "unit": 300}]))
    result = run("sim", "--config", str(path))
    assert result.returncode == 2
    assert result.stderr == f"modbuskit sim: error: {path}: devices[0].unit: expected a number <= 255, got 300\n"
    assert result.stdout == ""


def test_a_corrupt_state_file_exits_1(tmp_path: Path) -> None:
    state = tmp_path / "plant.state"
    state.write_text('{"format": "something else"}', encoding="utf-8")
    result = run("sim", "--modbus-port", "0", "--http-port", "0", "--state", str(state))
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        f"modbuskit sim: error: {state}: not a modbuskit simulator state file"
        ' (no "format": "modbuskit-simulator-state")'
    )
    assert state.read_text() == '{"format": "something else"}'


def test_a_taken_port_exits_1_and_says_which(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("sim", "--modbus-port", str(port), "--http-port", "0")
        assert result.returncode == 1
        assert f"modbuskit sim: error: cannot start listener 'plant' (tcp 127.0.0.1:{port}): " in result.stderr
        result = run("sim", "--modbus-port", "0", "--http-port", str(port))
        assert result.returncode == 1
        assert f"modbuskit sim: error: cannot start the web page on 127.0.0.1:{port}: " in result.stderr


def test_check_and_schema() -> None:
    result = run("sim", "--check")
    assert (result.returncode, result.stdout) == (0, "<built-in plant>: 3 device(s), 1 server(s): configuration OK\n")
    result = run("sim", "--print-schema")
    assert json.loads(result.stdout)["title"] == "modbuskit simulator configuration"


INSTALLED = shutil.which("modbuskit") or str(Path(sys.executable).with_name("modbuskit"))


@pytest.mark.skipif(not Path(INSTALLED).exists(), reason="the modbuskit command is not installed")
def test_the_installed_command_has_sim() -> None:
    command = INSTALLED
    result = subprocess.run([command, "sim", "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0
    assert "127.0.0.1:5020" in result.stdout
    assert "--state FILE" in result.stdout
