"""pymodbus' simulator names, and the TLS and serial listeners of a plant."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import trustme

from modbus_anyio.simulator import ModbusSimulatorServer, get_simulator_commandline, load_config
from modbus_anyio.simulator._actions import ActionRunner
from modbus_anyio.simulator._plant import Plant
from modbus_core import MbapFramer, ReadHoldingRegisters, ReadHoldingRegistersResponse, RtuFramer

from .sim_support import PYMODBUS_SETUP, modbus_client, plant_document, running, write_json

pytestmark = pytest.mark.anyio


def local_setup(tmp_path: Path, server: str = "server") -> Path:
    """pymodbus' own setup.json, moved to 127.0.0.1 and a free port."""
    setup = json.loads(PYMODBUS_SETUP.read_text())
    for entry in setup["server_list"].values():
        if entry["comm"] != "serial":
            entry.update(host="127.0.0.1", port=0)
    return write_json(tmp_path / "setup.json", setup)


async def test_modbus_simulator_server_runs_a_pymodbus_setup(tmp_path: Path) -> None:
    simulator = ModbusSimulatorServer(
        modbus_server="server",
        modbus_device="device",
        http_host="127.0.0.1",
        http_port=0,
        json_file=local_setup(tmp_path),
    )
    with anyio.fail_after(10):
        await simulator.run_forever(only_start=True)
        try:
            host, _, port = simulator.modbus_addresses["server"][0].rpartition(":")

            def read() -> Any:
                with modbus_client((host, int(port))) as client:
                    return client.read_holding_registers(3, count=1, device_id=1)

            assert (await anyio.to_thread.run_sync(read)).registers == [17001]
            assert simulator.http_url is not None
            async with httpx.AsyncClient(base_url=simulator.http_url) as web:
                registers = (await web.get("/api/registers", params={"name": "uint16_3"})).json()
            assert registers["items"][0]["value"] == 17001
        finally:
            await simulator.stop()
    assert simulator.simulator.status == "stopped"


async def test_modbus_simulator_server_run_forever_until_stop(tmp_path: Path) -> None:
    simulator = ModbusSimulatorServer(
        http_host=None, json_file=local_setup(tmp_path), log_file=str(tmp_path / "sim.log")
    )
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(simulator.run_forever)
            while simulator.simulator.status != "running":
                await anyio.sleep(0.01)
            assert simulator.http_url is None
            await simulator.stop()
    assert "simulator running" in (tmp_path / "sim.log").read_text()


def test_get_simulator_commandline_takes_pymodbus_options() -> None:
    options = get_simulator_commandline(
        ["--modbus_server", "server", "--modbus_device", "device", "--http_port", "8081", "--json_file", "setup.json"]
    )
    assert options == {
        "modbus_server": "server",
        "modbus_device": "device",
        "http_port": 8081,
        "json_file": "setup.json",
    }
    assert get_simulator_commandline([]) == {}
    with pytest.raises(SystemExit):
        get_simulator_commandline(["--log", "loud"])


def test_pymodbus_custom_actions_get_pymodbus_arguments(tmp_path: Path) -> None:
    (tmp_path / "umg.py").write_text(
        "def bump(registers, inx, step=1):\n"
        "    registers[inx].value = registers[inx].value + step\n"
        "custom_actions_dict = {'bump': bump}\n",
        encoding="utf-8",
    )
    setup = json.loads(PYMODBUS_SETUP.read_text())
    setup["device_list"]["device"]["uint16"].append(
        {"addr": 2101, "value": 10, "action": "bump", "parameters": {"step": 5}}
    )
    path = write_json(tmp_path / "setup.json", setup)
    plant = Plant(load_config(path, custom_actions_module=str(tmp_path / "umg.py")))
    runner = ActionRunner(plant)
    device = plant.devices[0].device
    assert list(device.read_holding_registers(2101, 1)) == [15]
    assert list(device.read_holding_registers(2101, 1)) == [20]
    assert runner.failures == 0


async def test_the_pymodbus_tls_entry_serves_tls(tmp_path: Path) -> None:
    """pymodbus 3.16 crashes on this entry; here it listens with the certificates it names."""
    ca = trustme.CA()
    certificate = ca.issue_cert("localhost", "127.0.0.1")
    (tmp_path / "certificates").mkdir()
    certificate.cert_chain_pems[0].write_to_path(str(tmp_path / "certificates" / "pymodbus_tls.crt"))
    certificate.private_key_pem.write_to_path(str(tmp_path / "certificates" / "pymodbus_tls.key"))
    config = load_config(local_setup(tmp_path), modbus_server="server_try_tls").with_overrides(http_port=0)
    async with running(config, http=False) as simulator:
        host, _, port = simulator.modbus_addresses["server_try_tls"][0].rpartition(":")
        context = ssl.create_default_context()
        ca.configure_trust(context)

        def exchange() -> bytes:
            with (
                socket.create_connection((host, int(port)), timeout=5) as raw,
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
            ):
                tls.sendall(MbapFramer().encode(1, 5, ReadHoldingRegisters(3, 1).encode()))
                return tls.recv(512)

        answer = await anyio.to_thread.run_sync(exchange)
        assert answer == MbapFramer().encode(1, 5, ReadHoldingRegistersResponse((17001,)).encode())
        assert simulator.recorder.calls()[0].info.transport == "tls"


async def test_a_tls_listener_with_roles_checks_client_certificates(tmp_path: Path) -> None:
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1")
    server_cert.cert_chain_pems[0].write_to_path(str(tmp_path / "server.crt"))
    server_cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.crt"))
    client_cert = ca.issue_cert("client@example.com")
    document = plant_document(
        servers=[
            {
                "name": "secure",
                "transport": "tls",
                "port": 0,
                "certfile": "server.crt",
                "keyfile": "server.key",
                "cafile": "ca.crt",
                "roles": {"no_role": [{"functions": [3], "units": [1]}]},
            }
        ]
    )
    config = load_config(write_json(tmp_path / "plant.json", document))
    async with running(config, http=False) as simulator:
        host, _, port = simulator.modbus_addresses["secure"][0].rpartition(":")
        context = ssl.create_default_context()
        ca.configure_trust(context)
        client_cert.configure_cert(context)

        def exchange(pdu: bytes) -> bytes:
            with (
                socket.create_connection((host, int(port)), timeout=5) as raw,
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
            ):
                tls.sendall(MbapFramer().encode(1, 1, pdu))
                return tls.recv(512)

        allowed = await anyio.to_thread.run_sync(exchange, ReadHoldingRegisters(0, 1).encode())
        refused = await anyio.to_thread.run_sync(exchange, bytes.fromhex("06 0000 0001"))
        assert allowed[7:] == ReadHoldingRegistersResponse((100,)).encode()
        assert refused[7:] == b"\x86\x01"  # Modbus/TCP Security: refused by the role rules
        assert simulator.plant.point("meter/setpoint").value == 100


@pytest.fixture
def pty_pair() -> Iterator[tuple[str, str]]:
    if shutil.which("socat") is None:
        pytest.skip("socat is not installed")
    process = subprocess.Popen(
        ["socat", "-d", "-d", "pty,raw,echo=0", "pty,raw,echo=0"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert process.stderr is not None
    try:
        paths: list[str] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line or b"starting data transfer loop" in line:
                break
            if match := re.search(rb"PTY is (\S+)", line):
                paths.append(match[1].decode())
        assert len(paths) == 2, "socat did not report two pseudo-terminals"
        yield paths[0], paths[1]
    finally:
        process.kill()
        process.wait(timeout=5)
        process.stderr.close()


@pytest.mark.serial
async def test_a_serial_rtu_listener(tmp_path: Path, pty_pair: tuple[str, str]) -> None:
    server_end, client_end = pty_pair
    document = plant_document(servers=[{"name": "line", "transport": "serial", "port": server_end, "baudrate": 38400}])
    config = load_config(write_json(tmp_path / "plant.json", document))
    async with running(config, http=False) as simulator:
        rtu = RtuFramer()
        descriptor = os.open(client_end, os.O_RDWR | os.O_NOCTTY)

        def exchange(unit: int) -> bytes:
            os.write(descriptor, rtu.encode(unit, 0, ReadHoldingRegisters(0, 1).encode()))
            received = b""
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                ready, _, _ = select.select([descriptor], [], [], max(0.0, deadline - time.monotonic()))
                if not ready:
                    break
                received += os.read(descriptor, 256)
                if len(received) >= 7:
                    break
            return received

        try:
            answer = await anyio.to_thread.run_sync(exchange, 2)
            silence = await anyio.to_thread.run_sync(exchange, 9)  # not ours: a serial server stays silent
        finally:
            os.close(descriptor)
        assert answer == rtu.encode(2, 0, ReadHoldingRegistersResponse((500,)).encode())
        assert silence == b""
        assert simulator.listeners["line"].addresses == [server_end]
        assert [call.request.unit for call in simulator.recorder.calls()] == [2]
