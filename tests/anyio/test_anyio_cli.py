"""``modbuskit serve`` as a process: real sockets, Ctrl-C, exit codes."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pymodbus
import pytest
import trustme
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modbus_anyio._cli import main
from modbus_anyio._serve import parse_endpoint
from modbus_core import (
    NEED_DATA,
    ClientConnection,
    ExceptionResponse,
    Framer,
    MbapFramer,
    ReadHoldingRegisters,
    RequestPdu,
    Response,
    RtuFramer,
    WriteSingleRegister,
)

from .anyio_support import IssueClient, PtyPair

LISTENING = re.compile(r"modbuskit serve(?: \(sync\))?: (\w+) on (\S+)(?: \((\w+)\))?")


class Served:
    def __init__(self, process: subprocess.Popen[str], addresses: dict[str, str], backends: set[str]) -> None:
        self.process = process
        self.addresses = addresses
        self.backends = backends  # the event loops the start-up lines named

    def port(self, transport: str = "tcp") -> int:
        return int(self.addresses[transport].rsplit(":", 1)[1])


def start(*arguments: str, expect: int = 1) -> Served:
    process = subprocess.Popen(
        [sys.executable, "-m", "modbus_anyio", "serve", *arguments],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    addresses: dict[str, str] = {}
    backends: set[str] = set()
    deadline = time.monotonic() + 20
    lines = []
    while len(addresses) < expect and time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        lines.append(line)
        match = LISTENING.search(line)
        if match:
            addresses[match.group(1)] = match.group(2).rstrip(",")
            if match.group(3):
                backends.add(match.group(3))
    if len(addresses) < expect:
        process.kill()
        process.wait(timeout=10)
        raise AssertionError("modbuskit serve did not start:\n" + "".join(lines))
    return Served(process, addresses, backends)


def stop(served: Served) -> int:
    served.process.send_signal(signal.SIGINT)
    try:
        status = served.process.wait(timeout=15)
    finally:
        if served.process.poll() is None:
            served.process.kill()
            served.process.wait(timeout=10)
        if served.process.stderr is not None:
            served.process.stderr.close()
    return status


@pytest.fixture
def processes() -> Iterator[list[Served]]:
    started: list[Served] = []
    yield started
    for served in started:
        if served.process.poll() is None:
            served.process.kill()
            served.process.wait(timeout=10)


def call(sock: socket.socket, connection: ClientConnection, pdu: RequestPdu, unit: int = 1) -> Response:
    sock.sendall(connection.send(connection.request(pdu, unit)))
    while True:
        event = connection.next_event()
        if event is NEED_DATA:
            connection.receive_data(sock.recv(4096), time.monotonic())
            continue
        assert isinstance(event, Response), event
        return event


def tcp_call(port: int, pdu: RequestPdu, unit: int = 1, framer: Framer | None = None) -> Response:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        return call(sock, ClientConnection(framer or MbapFramer()), pdu, unit)


@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_serve_tcp_and_stop_with_ctrl_c(backend: str, processes: list[Served]) -> None:
    served = start("--tcp", "127.0.0.1:0", "--backend", backend, "--size", "100")
    processes.append(served)
    assert served.backends == {backend}
    port = served.port()
    assert not tcp_call(port, WriteSingleRegister(99, 7)).is_exception
    assert tcp_call(port, ReadHoldingRegisters(99, 1)).pdu.registers == (7,)  # type: ignore[attr-defined]
    response = tcp_call(port, ReadHoldingRegisters(99, 2))
    assert response.pdu == ExceptionResponse(3, 2)  # --size 100: 0..99
    assert stop(served) == 0


def test_units_udp_and_rtu_over_tcp(processes: list[Served]) -> None:
    served = start(
        "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--unit", "3", "--unit", "4", "--framer", "rtu", expect=2
    )
    processes.append(served)
    assert served.backends == {"uvloop"}  # the default where uvloop is installed (a dependency on Linux)
    port = served.port("tcp")
    assert not tcp_call(port, WriteSingleRegister(1, 5), unit=3, framer=RtuFramer()).is_exception
    assert tcp_call(port, ReadHoldingRegisters(1, 1), unit=4, framer=RtuFramer()).pdu.registers == (0,)  # type: ignore[attr-defined]
    missing = tcp_call(port, ReadHoldingRegisters(1, 1), unit=5, framer=RtuFramer())
    assert missing.pdu == ExceptionResponse(3, 0x0B)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(5)
        client = ClientConnection(RtuFramer())
        udp.sendto(client.send(client.request(ReadHoldingRegisters(1, 1), 3)), ("127.0.0.1", served.port("udp")))
        client.receive_data(udp.recv(4096), 0.0)
        event = client.next_event()
        assert isinstance(event, Response)
        assert event.pdu.registers == (5,)  # type: ignore[attr-defined]  # one datastore for every server
    assert stop(served) == 0


def test_tls(
    tmp_path: Path, server_cert: trustme.LeafCert, ca: trustme.CA, issue_client: IssueClient, processes: list[Served]
) -> None:
    import ssl

    server_cert.cert_chain_pems[0].write_to_path(str(tmp_path / "s.pem"))
    server_cert.private_key_pem.write_to_path(str(tmp_path / "s.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    served = start(
        "--tls", "127.0.0.1:0", "--cert", str(tmp_path / "s.pem"), "--key", str(tmp_path / "s.key"),
        "--ca", str(tmp_path / "ca.pem"),
    )  # fmt: skip
    processes.append(served)
    context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    context.load_cert_chain(*issue_client(role="operator").write(tmp_path, "c"))
    with (
        socket.create_connection(("127.0.0.1", served.port("tls")), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as sock,
    ):
        assert not call(sock, ClientConnection(MbapFramer()), ReadHoldingRegisters(0, 1)).is_exception
    assert stop(served) == 0


@pytest.mark.serial
def test_serial(pty_pair: PtyPair, processes: list[Served]) -> None:
    import os
    import tty

    served = start("--serial", pty_pair.server, "--baudrate", "9600", "--parity", "E", "--unit", "2")
    processes.append(served)
    fd = os.open(pty_pair.client, os.O_RDWR | os.O_NOCTTY)
    try:
        tty.setraw(fd)
        client = ClientConnection(RtuFramer(9600))
        os.write(fd, client.send(client.request(WriteSingleRegister(3, 9), 2)))
        deadline = time.monotonic() + 5
        event: object = NEED_DATA
        while event is NEED_DATA and time.monotonic() < deadline:
            import select

            if select.select([fd], [], [], 0.5)[0]:
                client.receive_data(os.read(fd, 256), time.monotonic())
            event = client.next_event()
        assert isinstance(event, Response)
    finally:
        os.close(fd)
    assert stop(served) == 0


def test_sync_implementation(processes: list[Served]) -> None:
    served = start("--sync", "--tcp", "127.0.0.1:0")
    processes.append(served)
    assert not tcp_call(served.port(), ReadHoldingRegisters(0, 1)).is_exception
    assert stop(served) == 0


def test_config_serves_the_simulators_plant(tmp_path: Path, processes: list[Served]) -> None:
    config = tmp_path / "plant.json"
    config.write_text(
        json.dumps(
            {
                "servers": [{"name": "plant", "transport": "tcp", "host": "127.0.0.1", "port": 0}],
                "devices": [{"name": "meter", "unit": 1, "holding_registers": 10}],
            }
        )
    )
    served = start("--config", str(config))
    processes.append(served)
    assert not tcp_call(served.port("plant"), ReadHoldingRegisters(0, 1)).is_exception
    assert stop(served) == 0


def run_main(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``modbuskit ARGUMENTS`` in this process: its exit status and what it wrote on stderr."""
    try:
        status = main(arguments)
    except SystemExit as exit_error:  # argparse's own errors
        status = int(exit_error.code or 0)
    return status, capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--tcp", "nohost:port"], "expected HOST:PORT"),
        (["--tcp", "127.0.0.1:70000"], "outside 0..65535"),
        (["--tcp", "::1:502"], r"\[::1\]:502"),
        (["--unit", "256"], "unit id"),
        (["--size", "0"], "table size"),
        (["--tls", "127.0.0.1:802"], "--tls needs --cert"),
        (["--cert", "x.pem"], "only apply to --tls"),
        (
            ["--tls", "127.0.0.1:0", "--cert", "x.pem", "--key", "x.pem", "--ca", "missing.pem"],
            "cannot load the CA certificates missing.pem: No such file or directory$",
        ),
        (["--serial", "/dev/null", "--framer", "socket"], "serial lines"),
        (["--config", "x.json", "--tcp", "127.0.0.1:0"], "do not combine"),
        (["--backend", "curio"], "invalid choice"),
        (["--frobnicate"], "unrecognized arguments"),
    ],
)
def test_bad_arguments_one_line_and_status_2(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, error = run_main(["serve", *arguments], capsys)
    assert status == 2
    assert len(error.strip().splitlines()) == 1, error
    assert re.search(message, error), error


@pytest.mark.parametrize("command", ["serve", "sim"])
def test_without_uvloop_the_default_is_asyncio(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Windows has no uvloop: the option must not offer it, nor default to it.
    import importlib.util

    from modbus_anyio._cli import build_parser

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *args: None if name == "uvloop" else real_find_spec(name, *args)
    )
    parser = build_parser()
    assert parser.parse_args([command]).backend == "asyncio"
    with pytest.raises(SystemExit) as exit_error:
        parser.parse_args([command, "--backend", "uvloop"])
    assert exit_error.value.code == 2
    assert "invalid choice: 'uvloop'" in capsys.readouterr().err


def test_a_server_that_cannot_start_exits_with_status_1(processes: list[Served]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "modbus_anyio", "serve", "--tcp", f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 1
    assert "Address already in use" in result.stderr


def test_parse_endpoint() -> None:
    assert parse_endpoint("502") == ("127.0.0.1", 502)
    assert parse_endpoint(":502") == ("127.0.0.1", 502)
    assert parse_endpoint("[::1]:802") == ("::1", 802)
    assert parse_endpoint("*:502") == (None, 502)
    assert parse_endpoint("0.0.0.0:502") == ("0.0.0.0", 502)


@pytest.mark.parametrize("command", ["serve", "sim"])
def test_ctrl_c_while_starting_ends_quietly(command: str, tmp_path: Path) -> None:
    # The configuration is a named pipe: once the command has it open (our end opens only then),
    # it waits for the file's contents, still starting.
    config = tmp_path / "plant.json"
    os.mkfifo(config)
    process = subprocess.Popen(
        [sys.executable, "-m", "modbus_anyio", command, "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    writer = None
    try:
        deadline = time.monotonic() + 20
        while writer is None:
            try:
                writer = os.open(config, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as error:
                if error.errno != errno.ENXIO:  # ENXIO: nobody reads it yet
                    raise
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "the command never opened its configuration"
                time.sleep(0.02)
        time.sleep(0.2)  # into the read
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=15)
    finally:
        if writer is not None:
            os.close(writer)
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert process.returncode == 130
    assert (out + err).strip().splitlines() == ["modbuskit: interrupted"]


SERVE_WORDS = ["--tcp", "--udp", "--tls", "--serial", "--cert", "--key", "--ca", "--baudrate", "--parity",
               "--stopbits", "--framer", "--unit", "--size", "--backend", "-v"]  # fmt: skip
SERVE_VALUES = ["127.0.0.1:0", "[::1]:0", "*:0", "localhost:0", ":0", "host", "1.2.3.4:99999", "0", "1", "-1",
                "255", "256", "65536", "abc", "rtu", "ascii", "socket", "E", "none", "2", "x.pem", "/dev/null",
                "trio", "asyncio", ""]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arguments=st.lists(st.sampled_from(SERVE_WORDS + SERVE_VALUES), max_size=8))
def test_any_serve_arguments_start_or_get_one_line(
    arguments: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Everything up to serving runs (parsing, checks, building every server); serving does not.
    monkeypatch.setattr("modbus_anyio._serve.run_on", lambda backend, function, servers: 0)
    status, error = run_main(["serve", *arguments], capsys)
    assert status in (0, 2), (status, error)
    if status == 2:
        assert len(error.strip().splitlines()) == 1, error
        assert re.match(r"modbuskit( serve)?: error: ", error), error


PYMODBUS_SETUP = Path(pymodbus.__file__ or "").parent / "server" / "simulator" / "setup.json"
SIM_WORDS = ["--config", "--http-host", "--http-port", "--no-http", "--modbus-host", "--modbus-port", "--backend",
             "--modbus-server", "--modbus-device", "--custom-actions", "--log-level", "--check"]  # fmt: skip
SIM_VALUES = ["0", "-1", "65536", "abc", "localhost", "::1", "server", "device", "debug", "trio", "nope.json",
              "os", "modbus_anyio.simulator.example_actions", "no.such.module", ""]  # fmt: skip


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arguments=st.lists(st.sampled_from(SIM_WORDS + SIM_VALUES), max_size=8), setup=st.booleans())
def test_any_sim_arguments_start_or_say_what_is_wrong(
    arguments: list[str], setup: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Everything up to serving runs (parsing, the configuration, building the simulator); serving does not.
    monkeypatch.setattr("modbus_anyio.simulator._cli.run_on", lambda backend, function, simulator: 0)
    if setup:  # a pymodbus setup.json, where --modbus-server/--modbus-device apply
        arguments = ["--config", str(PYMODBUS_SETUP), *arguments]
    status, error = run_main(["sim", *arguments], capsys)
    assert status in (0, 2), (status, error)
    if status == 2:
        # One line per problem (a configuration may have several), each saying what is wrong.
        lines = [line for line in error.strip().splitlines() if " INFO " not in line and " DEBUG " not in line]
        assert lines, error
        assert all(re.match(r"modbuskit( sim)?: error: ", line) for line in lines), error
