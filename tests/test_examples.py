"""Every file in examples/ is run here as a user runs it, and checked from outside.

Servers are started as subprocesses (``python examples/x.py --port 0 ...``),
found by the line ``listening on SCHEME://HOST:PORT`` they print, driven by a
client nobody here wrote (pymodbus 3.16.1; TLS and serial too), and stopped
with SIGINT, which must end them cleanly (exit status 0, no traceback).
Scripts that run to completion must exit 0.  A broken example fails here.
"""

from __future__ import annotations

import contextlib
import functools
import json
import queue
import re
import signal
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography import x509
from pymodbus.client import ModbusSerialClient, ModbusTcpClient, ModbusTlsClient, ModbusUdpClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU

from modbus_anyio import client_role
from modbus_core import Device, ServerContext
from modbus_sync import TcpServer

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
LISTENING = re.compile(r"^listening on (?P<scheme>[a-z]+)://(?P<where>\S+)$")
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0

# The examples each test runs; test_every_example_is_tested compares it with the directory.
TESTED: set[str] = set()
_F = TypeVar("_F", bound=Callable[..., Any])


def runs(*names: str) -> Callable[[_F], _F]:
    """Record that the decorated test runs the example files *names*."""

    def record(test: _F) -> _F:
        TESTED.update(names)
        return test

    return record


# --------------------------------------------------------------------------
# running examples


class Example:
    """A running example: its listeners, its output as it comes, and a clean stop."""

    def __init__(self, name: str, process: subprocess.Popen[str]) -> None:
        self.name = name
        self.process = process
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        self.listeners: dict[str, str] = {}
        assert process.stdout is not None
        assert process.stderr is not None
        threading.Thread(target=self._pump, args=(process.stdout, self.lines.put), daemon=True).start()
        threading.Thread(target=self._pump, args=(process.stderr, self.stderr.append), daemon=True).start()

    @staticmethod
    def _pump(stream: Any, sink: Callable[[Any], None]) -> None:
        for line in stream:
            sink(line.rstrip("\n"))
        sink(None)

    def next_line(self, timeout: float = 10.0) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.name} printed nothing for {timeout} s; stderr:\n{self.error_text}") from None
        if line is None:
            self.process.wait(timeout=STOP_TIMEOUT)
            raise AssertionError(f"{self.name} exited ({self.process.returncode}); stderr:\n{self.error_text}")
        return line

    def wait_for(self, text: str, timeout: float = 10.0) -> str:
        """The next output line containing *text*."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            line = self.next_line(remaining)
            if text in line:
                return line
        raise AssertionError(f"{self.name} did not print {text!r} within {timeout} s")

    def wait_listening(self, schemes: tuple[str, ...]) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not all(scheme in self.listeners for scheme in schemes):
            line = self.next_line(max(0.1, deadline - time.monotonic()))
            match = LISTENING.match(line)
            if match:
                self.listeners[match["scheme"]] = match["where"]

    def address(self, scheme: str = "tcp") -> tuple[str, int]:
        host, _, port = self.listeners[scheme].rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def error_text(self) -> str:
        return "\n".join(line for line in list(self.stderr) if line is not None)

    def stop(self) -> None:
        """Ctrl-C: the example must stop by itself, promptly, with status 0 and no traceback."""
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT)
            raise AssertionError(f"{self.name} did not stop on SIGINT; stderr:\n{self.error_text}") from None
        time.sleep(0.05)  # let the reader threads take the last lines
        assert self.process.returncode == 0, f"{self.name} exited {self.process.returncode}:\n{self.error_text}"
        assert "Traceback" not in self.error_text, self.error_text


@contextlib.contextmanager
def example(name: str, *args: str, schemes: tuple[str, ...] = ("tcp",), cwd: Path | None = None) -> Iterator[Example]:
    """Run ``python examples/<name> <args>`` until its listeners are up; stop it on exit."""
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / name), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )
    running = Example(name, process)
    try:
        running.wait_listening(schemes)
        yield running
    except BaseException:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)
        raise
    running.stop()


def run_script(*command: str | Path, cwd: Path, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run a script to completion; it must exit 0."""
    completed = subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert completed.returncode == 0, (
        f"{command} exited {completed.returncode}:\n{completed.stdout}\n{completed.stderr}"
    )
    return completed


@contextlib.contextmanager
def tcp_client(address: tuple[str, int], **options: Any) -> Iterator[Any]:
    """A connected pymodbus TCP client (typed Any: pymodbus' client API is partly unannotated)."""
    client: Any = ModbusTcpClient(address[0], port=address[1], timeout=options.pop("timeout", 3), retries=0, **options)
    assert client.connect(), f"cannot connect to {address}"
    try:
        yield client
    finally:
        client.close()


def registers(response: Any) -> list[int]:
    assert not response.isError(), response
    return list(response.registers)


def exception_code(response: Any) -> int:
    assert response.isError(), f"expected an exception response, got {response}"
    return int(response.exception_code)


# --------------------------------------------------------------------------
# getting started


@pytest.mark.interop
@pytest.mark.parametrize("name", ["first_server_asyncio.py", "first_server_trio.py", "first_server_sync.py"])
@runs("first_server_asyncio.py", "first_server_trio.py", "first_server_sync.py")
def test_first_server(name: str, tmp_path: Path) -> None:
    with example(name, "--port", "0", cwd=tmp_path) as server, tcp_client(server.address()) as client:
        assert registers(client.read_holding_registers(0, count=2)) == [1234, 0]
        assert not client.write_registers(98, [7, 8], device_id=42).isError()  # every unit id, one device
        assert registers(client.read_holding_registers(98, count=2, device_id=3)) == [7, 8]
        assert exception_code(client.read_holding_registers(99, count=2)) == 2  # 0..99 only
        assert not client.write_coil(5, True).isError()
        assert client.read_coils(5).bits[0] is True


# --------------------------------------------------------------------------
# embedding modbus_core


def _pipelined_requests(address: tuple[str, int]) -> bytes:
    """Two MBAP requests in one write; both answers, in order."""
    import socket

    requests = bytes.fromhex("000700000006010300000001") + bytes.fromhex("000800000006010300010001")
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(requests)
        answer = b""
        while len(answer) < 22:
            chunk = sock.recv(100)
            assert chunk, "connection closed early"
            answer += chunk
    return answer


@pytest.mark.interop
@pytest.mark.parametrize("name", ["core_selectors_server.py", "core_asyncio_protocol.py"])
@pytest.mark.parametrize("framer", ["socket", "rtu"])
@runs("core_selectors_server.py", "core_asyncio_protocol.py")
def test_core_adapters(name: str, framer: str, tmp_path: Path) -> None:
    pymodbus_framer = FramerType.RTU if framer == "rtu" else FramerType.SOCKET
    with example(name, "--port", "0", "--framer", framer, cwd=tmp_path) as server:
        with tcp_client(server.address(), framer=pymodbus_framer) as client:
            assert not client.write_registers(1, [5, 6]).isError()
            assert registers(client.read_holding_registers(0, count=3)) == [1234, 5, 6]
            assert exception_code(client.read_input_registers(100, count=1)) == 2
        if framer == "socket":
            answer = _pipelined_requests(server.address())
            assert answer == bytes.fromhex("000700000005010302 04d2") + bytes.fromhex("000800000005010302 0005")


# --------------------------------------------------------------------------
# modbus_anyio under trio


@pytest.mark.interop
@runs("trio_plant.py")
def test_trio_plant(tmp_path: Path) -> None:
    with example("trio_plant.py", "--port", "0", schemes=("tcp", "udp"), cwd=tmp_path) as plant:
        udp: Any = ModbusUdpClient(plant.address("udp")[0], port=plant.address("udp")[1], timeout=3, retries=0)
        assert udp.connect()
        try:
            with tcp_client(plant.address("tcp")) as client:
                first = registers(client.read_input_registers(0))[0]
                time.sleep(0.5)
                filling = registers(client.read_input_registers(0))[0]
                assert filling > first  # the program moves the value
                assert not client.write_coil(0, True).isError()
                plant.wait_for("valve open")  # the observer saw the client's write
                time.sleep(0.5)
                draining = registers(client.read_input_registers(0))[0]
                assert draining < filling
            assert udp.read_coils(0).bits[0] is True  # one datastore behind both servers
        finally:
            udp.close()


# --------------------------------------------------------------------------
# async handlers and devices


@pytest.mark.interop
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@runs("gateway.py")
def test_gateway(backend: str, tmp_path: Path) -> None:
    device = Device.sized(10)
    upstream = TcpServer(ServerContext({1: device}), port=0).start()
    try:
        options = ("--port", "0", "--upstream", f"127.0.0.1:{upstream.port}", "--backend", backend)
        with example("gateway.py", *options, cwd=tmp_path) as gateway, tcp_client(gateway.address()) as client:
            assert not client.write_registers(2, [7, 8]).isError()
            assert device.holding_registers.read(2, 2) == (7, 8)  # it reached the upstream server
            assert registers(client.read_holding_registers(0, count=4)) == [0, 0, 7, 8]
            assert exception_code(client.read_holding_registers(9, count=4)) == 2  # upstream's own exception
            assert exception_code(client.read_holding_registers(0, device_id=5)) == 0x0B  # no unit 5 upstream
            upstream.shutdown()
            assert exception_code(client.read_holding_registers(0)) == 0x0A  # the path is gone
    finally:
        upstream.shutdown()


@pytest.mark.interop
@runs("database_device.py")
def test_database_device(tmp_path: Path) -> None:
    database = tmp_path / "registers.sqlite3"
    options = ("--port", "0", "--database", str(database), "--size", "10")
    with example("database_device.py", *options, cwd=tmp_path) as server, tcp_client(server.address()) as client:
        assert not client.write_registers(2, [7, 8]).isError()
        assert registers(client.read_holding_registers(0, count=4)) == [0, 0, 7, 8]
        assert exception_code(client.write_registers(8, [1, 2, 3])) == 2  # runs past 9: nothing written
        assert registers(client.read_holding_registers(8, count=2)) == [0, 0]
        assert not client.write_coils(0, [True, False, True]).isError()
        assert client.read_coils(0, count=3).bits[:3] == [True, False, True]
        # FC22: (8 AND 0x00F0) OR (0x0005 AND NOT 0x00F0) = 5
        assert not client.mask_write_register(address=3, and_mask=0x00F0, or_mask=0x0005).isError()
        assert exception_code(client.read_input_registers(0)) == 1  # a table the device does not have
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT kind, address, value FROM point WHERE value != 0 ORDER BY kind, address").fetchall()
    assert rows == [("coil", 0, 1), ("coil", 2, 1), ("holding", 2, 7), ("holding", 3, 5)]
    with example("database_device.py", *options, cwd=tmp_path) as server, tcp_client(server.address()) as client:
        assert registers(client.read_holding_registers(2, count=2)) == [7, 5]  # kept across a restart


class _ReadLabelRequest(ModbusPDU):
    """pymodbus' side of custom function 65 (an independent implementation of the same PDU)."""

    function_code = 0x41
    rtu_frame_size = 5

    def __init__(self, index: int = 0, dev_id: int = 1, transaction_id: int = 0) -> None:
        super().__init__(dev_id=dev_id, transaction_id=transaction_id)
        self.index = index

    def encode(self) -> bytes:
        return bytes((self.index,))

    def decode(self, data: bytes) -> None:
        self.index = data[0]


class _ReadLabelResponse(ModbusPDU):
    function_code = 0x41
    rtu_byte_count_pos = 2

    def __init__(self, text: str = "", dev_id: int = 1, transaction_id: int = 0) -> None:
        super().__init__(dev_id=dev_id, transaction_id=transaction_id)
        self.text = text

    def encode(self) -> bytes:
        raw = self.text.encode()
        return bytes((len(raw),)) + raw

    def decode(self, data: bytes) -> None:
        self.text = data[1 : 1 + data[0]].decode()


@pytest.mark.interop
@runs("custom_function.py")
def test_custom_function(tmp_path: Path) -> None:
    with example("custom_function.py", "--port", "0", cwd=tmp_path) as server, tcp_client(server.address()) as client:
        client.register(_ReadLabelResponse)
        answer = client.execute(False, _ReadLabelRequest(1))
        assert isinstance(answer, _ReadLabelResponse)
        assert answer.text == "valve V-7"
        assert exception_code(client.execute(False, _ReadLabelRequest(12))) == 2
        assert registers(client.read_holding_registers(0)) == [0]  # the standard functions still work


# --------------------------------------------------------------------------
# fuzzing


@runs("hypothesis_codec.py")
def test_hypothesis_codec(tmp_path: Path) -> None:
    completed = run_script(sys.executable, EXAMPLES / "hypothesis_codec.py", "--max-examples", "10", cwd=tmp_path)
    assert "6 properties hold" in completed.stdout


@runs("fuzz_custom_function.py")
def test_fuzz_custom_function(tmp_path: Path) -> None:
    completed = run_script(
        sys.executable, EXAMPLES / "fuzz_custom_function.py", "-runs=1000", "-seed=1", cwd=tmp_path, timeout=180
    )
    assert "Done 1000 runs" in completed.stderr


# --------------------------------------------------------------------------
# vendoring


@runs("vendor_modbus_core.py")
def test_vendor_modbus_core(tmp_path: Path) -> None:
    package = tmp_path / "myproto" / "_vendor"
    package.mkdir(parents=True)
    for directory in (package.parent, package):
        (directory / "__init__.py").write_text("")
    script = EXAMPLES / "vendor_modbus_core.py"
    run_script(sys.executable, script, "myproto/_vendor", cwd=tmp_path)
    copy = package / "modbus_core"
    assert "MIT License" in (copy / "LICENSE").read_text()
    assert set(json.loads((copy / "UPSTREAM.json").read_text())["files"]) >= {"__init__.py", "py.typed"}
    # No site-packages at all (-S -s -E): the copy works with the standard library alone.
    probe = (
        "import sys\n"
        "from myproto._vendor import modbus_core as m\n"
        "c = m.ServerConnection(m.MbapFramer())\n"
        "c.receive_data(bytes.fromhex('000100000006010300000002'), 0.0)\n"
        "print(c.next_event())\n"
        "assert 'modbus_core' not in sys.modules\n"
    )
    completed = run_script(sys.executable, "-S", "-s", "-E", "-c", probe, cwd=tmp_path)
    assert "ReadHoldingRegisters(address=0, count=2)" in completed.stdout
    checked = run_script(sys.executable, script, "myproto/_vendor", "--check", cwd=tmp_path)
    assert "matches modbus_core" in checked.stdout
    with (copy / "_pdu.py").open("a") as edited:
        edited.write("# a local change\n")
    checked = subprocess.run(
        [sys.executable, str(script), "myproto/_vendor", "--check"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 1
    assert "_pdu.py: edited in place" in checked.stdout


# --------------------------------------------------------------------------
# Modbus/TCP Security


def _make_certificates(maker: str, directory: Path) -> None:
    if maker == "make_certificates.py":
        roles = ("--role", "operator", "--role", "visitor")
        run_script(sys.executable, EXAMPLES / maker, directory, *roles, cwd=directory.parent)
    else:
        run_script("sh", EXAMPLES / maker, directory, "operator", "visitor", cwd=directory.parent)


def _der(path: Path) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(Encoding.DER)


@pytest.mark.parametrize("maker", ["make_certificates.py", "make_certificates.sh"])
@runs("make_certificates.py", "make_certificates.sh")
def test_make_certificates(maker: str, tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    _make_certificates(maker, certs)
    ca = x509.load_pem_x509_certificate((certs / "ca.pem").read_bytes())
    for name, role in (("operator", "operator"), ("visitor", "visitor"), ("no-role", None), ("server", None)):
        certificate = x509.load_pem_x509_certificate((certs / f"{name}.pem").read_bytes())
        certificate.verify_directly_issued_by(ca)
        assert client_role(_der(certs / f"{name}.pem")) == role


def _tls_client(port: int, certs: Path, name: str | None) -> Any:
    context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    context.check_hostname = False  # pymodbus' TLS client gives no server name; the CA is still checked
    if name is not None:
        context.load_cert_chain(certs / f"{name}.pem", certs / f"{name}.key")
    return ModbusTlsClient("127.0.0.1", port=port, sslctx=context, timeout=3, retries=0)


@pytest.mark.interop
@pytest.mark.parametrize("maker", ["make_certificates.py", "make_certificates.sh"])
@runs("tls_server.py", "roles.json")
def test_tls_server_role_rules(maker: str, tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    _make_certificates(maker, certs)
    with example("tls_server.py", "--port", "0", "--certs", str(certs), schemes=("tls",), cwd=tmp_path) as server:
        port = server.address("tls")[1]
        operator = _tls_client(port, certs, "operator")
        assert operator.connect()
        try:
            assert registers(operator.read_holding_registers(0, count=2)) == [0, 0]
            assert not operator.write_register(5, 9).isError()  # holding registers 0..9
            assert exception_code(operator.write_register(50, 9)) == 1  # refused by the rules: illegal function
            assert exception_code(operator.write_coil(0, True)) == 1
            assert exception_code(operator.read_holding_registers(0, device_id=2)) == 1  # unit 1 only
            assert "role 'operator'" in server.wait_for("connected")
        finally:
            operator.close()
        nobody = _tls_client(port, certs, "no-role")
        assert nobody.connect()
        try:
            assert exception_code(nobody.read_holding_registers(0)) == 1
            assert nobody.read_device_information().information[0] == b"modbuskit"  # its one allowed function
        finally:
            nobody.close()
        visitor = _tls_client(port, certs, "visitor")  # a role the policy does not name: "default", nothing
        assert visitor.connect()
        try:
            assert exception_code(visitor.read_holding_registers(0)) == 1
        finally:
            visitor.close()
        anonymous = _tls_client(port, certs, None)  # no client certificate: the server ends the handshake
        try:
            anonymous.connect()  # with TLS 1.3 the client learns of the refusal at its first read
            with pytest.raises(ModbusException):
                anonymous.read_holding_registers(0)
        finally:
            anonymous.close()


# --------------------------------------------------------------------------
# serial lines


@contextlib.contextmanager
def pty_pair() -> Iterator[tuple[str, str]]:
    """Two pseudo-terminals joined by socat: a serial line without hardware."""
    process = subprocess.Popen(
        ["socat", "-d", "-d", "pty,raw,echo=0", "pty,raw,echo=0"], stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stderr is not None
        paths: list[str] = []
        deadline = time.monotonic() + 10
        while len(paths) < 2 and time.monotonic() < deadline:
            found = re.search(r"PTY is (\S+)", process.stderr.readline())
            if found:
                paths.append(found.group(1))
        assert len(paths) == 2, "socat did not open two pseudo-terminals"
        yield paths[0], paths[1]
    finally:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


@pytest.mark.serial
@pytest.mark.interop
@pytest.mark.parametrize("implementation", ["anyio", "sync"])
@pytest.mark.parametrize("framer", ["rtu", "ascii"])
@runs("serial_server.py")
def test_serial_server(implementation: str, framer: str, tmp_path: Path) -> None:
    with pty_pair() as (server_end, client_end):
        options = ["--device", server_end, "--framer", framer, "--unit", "1", "--unit", "2", "--parity", "N"]
        if implementation == "sync":
            options.append("--sync")
        with example("serial_server.py", *options, schemes=("serial",), cwd=tmp_path) as server:
            assert server.listeners["serial"] == server_end
            client: Any = ModbusSerialClient(
                client_end,
                framer=FramerType.RTU if framer == "rtu" else FramerType.ASCII,
                baudrate=19200,
                timeout=0.5,
                retries=0,
            )
            assert client.connect()
            try:
                assert registers(client.read_holding_registers(0, device_id=1)) == [1]
                assert registers(client.read_holding_registers(0, device_id=2)) == [2]
                with pytest.raises(ModbusException):  # another server's unit: silence on the line
                    client.read_holding_registers(0, device_id=3)
                client.write_register(5, 77, device_id=0, no_response_expected=True)  # broadcast: no answer
                time.sleep(0.2)
                assert registers(client.read_holding_registers(5, device_id=1)) == [77]
                assert registers(client.read_holding_registers(5, device_id=2)) == [77]
            finally:
                client.close()


# --------------------------------------------------------------------------
# the simulator


def _inject(api: str, *args: str, cwd: Path) -> str:
    return run_script(sys.executable, EXAMPLES / "inject_fault.py", "--api", api, *args, cwd=cwd, timeout=30).stdout


@pytest.mark.interop
@runs("simulator_embedded.py", "inject_fault.py")
def test_simulator_fault_recipes(tmp_path: Path) -> None:
    import urllib.request

    options = ("--port", "0", "--http-port", "0")
    with example("simulator_embedded.py", *options, schemes=("tcp", "http"), cwd=tmp_path) as simulator:
        api = f"http://{simulator.listeners['http']}"
        with urllib.request.urlopen(f"{api}/api/registers?device=pump", timeout=10) as reply:
            names = {item["name"] for item in json.load(reply)["items"]}
        assert names == {"setpoint", "speed", "running", "starts"}
        inject = functools.partial(_inject, api, cwd=tmp_path)
        with tcp_client(simulator.address(), timeout=1) as client:
            assert registers(client.read_holding_registers(0)) == [1450]
            for recipe, code in (("busy", 6), ("failure", 4), ("gateway-timeout", 0x0B)):
                assert "fault rule" in inject(recipe, "--unit", "1", "--count", "1")
                assert exception_code(client.read_holding_registers(0)) == code
                assert registers(client.read_holding_registers(0)) == [1450]  # count 1: over
            inject("failure", "--addresses", "5-9", "--function", "3")
            assert registers(client.read_holding_registers(0)) == [1450]  # outside the range
            assert exception_code(client.read_holding_registers(6)) == 4
            assert '"effect": "exception"' in inject("--list")
            assert "ended 1 rule(s)" in inject("--clear")
            assert registers(client.read_holding_registers(6)) == [0]
            inject("offline", "--count", "1")
            with pytest.raises(ModbusException):
                client.read_holding_registers(0)
        with tcp_client(simulator.address(), timeout=3) as client:
            inject("slow", "--count", "1")
            started = time.monotonic()
            assert registers(client.read_holding_registers(0)) == [1450]
            assert time.monotonic() - started >= 1.4
            inject("fragmented", "--count", "1")
            started = time.monotonic()
            assert registers(client.read_holding_registers(0)) == [1450]  # reassembled from 3 pieces
            assert time.monotonic() - started >= 0.35
        with tcp_client(simulator.address(), timeout=1) as client:
            inject("garbage", "--count", "1", "--function", "4")
            with pytest.raises(ModbusException):
                client.read_input_registers(0)
        # 0.6 s is far longer than an answer takes, even on a loaded machine; 25 requests
        # all answered (or none) with one in three unanswered: odds below 1 in 20000.
        with tcp_client(simulator.address(), timeout=0.6) as client:
            inject("flaky", "--duration", "60")
            outcomes = []
            for _ in range(25):
                try:
                    outcomes.append(not client.read_holding_registers(0).isError())
                except ModbusException:
                    outcomes.append(False)
                    client.close()
                    assert client.connect()
            assert any(outcomes)  # about one in three unanswered
            assert not all(outcomes)


# --------------------------------------------------------------------------
# migrating from pymodbus


@pytest.mark.interop
@runs("pymodbus_migration.py")
def test_pymodbus_migration(tmp_path: Path) -> None:
    with (
        example("pymodbus_migration.py", "--port", "0", cwd=tmp_path) as server,
        tcp_client(server.address()) as client,
    ):
        assert registers(client.read_holding_registers(0, count=3)) == [0, 1, 2]  # block address 1 is address 0
        assert registers(client.read_holding_registers(99)) == [99]
        assert exception_code(client.read_holding_registers(100)) == 2
        first = registers(client.read_holding_registers(10))[0]
        time.sleep(0.5)
        assert registers(client.read_holding_registers(10))[0] > first  # the updating task's setValues
        information = client.read_device_information().information
        assert information[0] == b"ACME"
        assert information[1] == b"PM"


# --------------------------------------------------------------------------


def test_every_example_is_tested() -> None:
    present = {path.name for path in EXAMPLES.iterdir() if path.is_file() and path.name != "README.md"}
    assert present == TESTED, f"untested: {sorted(present - TESTED)}; gone: {sorted(TESTED - present)}"


def test_readme_lists_every_example() -> None:
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    missing = [name for name in sorted(TESTED) if f"`{name}`" not in readme]
    assert not missing, f"examples/README.md does not mention {missing}"
