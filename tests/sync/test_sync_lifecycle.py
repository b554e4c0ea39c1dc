"""Starting and stopping: Start*Server/ServerStop, serve_forever/shutdown, the context manager."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from modbus_core import Device, ReadHoldingRegisters, ReadHoldingRegistersResponse, Request, Response, ServerContext
from modbus_sync import (
    ConnectionInfo,
    SerialServer,
    Server,
    ServerStop,
    StartSerialServer,
    StartTcpServer,
    StartUdpServer,
    TcpServer,
    UdpServer,
    _start,
)

from .sync_support import PtyPair, RawClient, wait_for


def started_servers() -> list[Server]:
    """The servers Start*Server() runs now (the registry ServerStop uses)."""
    return _start._started.running()


@pytest.fixture
def no_leftovers() -> Iterator[None]:
    yield
    if started_servers():  # pragma: no cover - only when a test failed half-way
        ServerStop(timeout=5)


def run_in_thread(target: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as error:  # noqa: BLE001 - reported to the test
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def wait_started(count: int) -> list[Server]:
    assert wait_for(lambda: len(started_servers()) == count and all(s.serving for s in started_servers()), 5)
    return started_servers()


@pytest.mark.usefixtures("no_leftovers")
def test_server_stop_from_another_thread_ends_start_tcp_server_and_frees_its_port() -> None:
    context = ServerContext(Device.sized(10))
    thread, errors = run_in_thread(lambda: StartTcpServer(context, address=("127.0.0.1", 0)))
    (server,) = wait_started(1)
    assert isinstance(server, TcpServer)
    port = server.port
    with RawClient(port) as client:  # an open connection does not hold the server up
        assert client.read_registers(0, 2) == (0, 0)
        started = time.monotonic()
        ServerStop()
        elapsed = time.monotonic() - started
        assert client.closed_by_peer(within=2)
    thread.join(5)
    assert not thread.is_alive()
    assert errors == []
    assert elapsed < 1.0
    assert started_servers() == []
    # The port is free again at once.
    with socket.create_server(("127.0.0.1", port)) as again:
        assert again.getsockname()[1] == port


@pytest.mark.usefixtures("no_leftovers")
def test_server_stop_stops_every_started_server(pty_pair: PtyPair) -> None:
    context = ServerContext({1: Device.sized(10)})
    threads = [
        run_in_thread(lambda: StartTcpServer(context, address=("127.0.0.1", 0))),
        run_in_thread(lambda: StartUdpServer(context, address=("127.0.0.1", 0))),
        run_in_thread(lambda: StartSerialServer(context, port=pty_pair.server, baudrate=9600)),
    ]
    servers = wait_started(3)
    assert sorted(type(server).__name__ for server in servers) == ["SerialServer", "TcpServer", "UdpServer"]
    ServerStop()
    for thread, errors in threads:
        thread.join(5)
        assert not thread.is_alive()
        assert errors == []
    assert not any(server.serving for server in servers)
    with pytest.raises(RuntimeError, match="not running"):
        ServerStop()


def test_server_stop_without_a_server_raises() -> None:
    with pytest.raises(RuntimeError, match="not running"):
        ServerStop()


@pytest.mark.usefixtures("no_leftovers")
@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs pthread_kill")
def test_server_stop_from_a_signal_handler_in_the_serving_thread() -> None:
    """The classic: StartTcpServer in the main thread, ServerStop in a SIGUSR1 handler."""
    answers: list[tuple[int, ...]] = []

    def poke() -> None:
        (server,) = wait_started(1)
        assert isinstance(server, TcpServer)
        with RawClient(server.port) as client:
            answers.append(client.read_registers(0, 1))
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGUSR1)

    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: ServerStop())
    try:
        helper, errors = run_in_thread(poke)
        started = time.monotonic()
        StartTcpServer(ServerContext(Device.sized(10)), address=("127.0.0.1", 0))  # returns once stopped
        assert time.monotonic() - started < 5
    finally:
        signal.signal(signal.SIGUSR1, previous)
    helper.join(5)
    assert errors == []
    assert answers == [(0,)]
    assert started_servers() == []


@pytest.mark.usefixtures("no_leftovers")
@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs pthread_kill")
def test_ctrl_c_ends_start_tcp_server_and_frees_its_port() -> None:
    """Without a handler of one's own, Ctrl-C raises KeyboardInterrupt out of StartTcpServer, as in pymodbus."""
    ports: list[int] = []

    def interrupt() -> None:
        (server,) = wait_started(1)
        assert isinstance(server, TcpServer)
        ports.append(server.port)
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        helper, errors = run_in_thread(interrupt)
        with pytest.raises(KeyboardInterrupt):
            StartTcpServer(ServerContext(Device.sized(10)), address=("127.0.0.1", 0))
    finally:
        signal.signal(signal.SIGINT, previous)
    helper.join(5)
    assert errors == []
    assert started_servers() == []
    with socket.create_server(("127.0.0.1", ports[0])):
        pass


def test_serve_forever_and_shutdown_from_another_thread() -> None:
    server = TcpServer(ServerContext(Device.sized(10)), port=0)
    thread, errors = run_in_thread(server.serve_forever)
    assert wait_for(lambda: server.serving)
    with RawClient(server.port) as client:
        assert client.read_registers(0, 1) == (0,)
    server.shutdown()
    assert not server.serving
    thread.join(5)
    assert errors == []
    with pytest.raises(RuntimeError, match="serves once"):
        server.serve_forever()


def test_shutdown_before_serve_forever_makes_it_return_at_once() -> None:
    server = TcpServer(ServerContext(), port=0)
    server.shutdown()
    started = time.monotonic()
    server.serve_forever()
    assert time.monotonic() - started < 0.5
    assert server.addresses == []


def test_context_manager_serves_in_the_background_and_stops_on_exit() -> None:
    device = Device.sized(10)
    with TcpServer(ServerContext(device), port=0, name="plant") as server:
        assert server.serving
        assert server.name == "plant"
        device.holding_registers[3] = 42  # the application changes values while serving
        with RawClient(server.port) as client:
            assert client.read_registers(3, 1) == (42,)
        port = server.port
    assert not server.serving
    with socket.create_server(("127.0.0.1", port)):
        pass


def test_default_name_says_transport_and_address() -> None:
    with TcpServer(ServerContext(), port=0) as server:
        assert server.name == f"tcp 127.0.0.1:{server.port}"
    with UdpServer(ServerContext(), port=0) as udp:
        assert udp.name == f"udp 127.0.0.1:{udp.port}"


def test_shutdown_from_a_handler_does_not_deadlock() -> None:
    holder: list[TcpServer] = []

    def handler(request: Request, info: ConnectionInfo) -> Response:
        holder[0].shutdown()  # in the server's own thread: only asks
        return request.reply(ReadHoldingRegistersResponse((7,)))

    server = TcpServer(handler, port=0)
    holder.append(server)
    thread, errors = run_in_thread(server.serve_forever)
    assert wait_for(lambda: server.serving)
    with RawClient(server.port) as client:
        assert client.read_registers(0, 1) == (7,)  # the answer still goes out
        assert client.closed_by_peer(within=2)
    thread.join(5)
    assert not thread.is_alive()
    assert errors == []


def test_shutdown_answers_requests_in_flight() -> None:
    """A request a handler thread is working on is answered before the connection closes."""
    working = threading.Event()

    def slow(request: Request, info: ConnectionInfo) -> Response:
        working.set()
        time.sleep(0.3)
        return request.reply(ReadHoldingRegistersResponse((9,)))

    server = TcpServer(slow, port=0, handler_threads=2).start()
    with RawClient(server.port) as client:
        client.send(ReadHoldingRegisters(0, 1))
        assert working.wait(2)
        stopper, errors = run_in_thread(server.shutdown)
        (response,) = client.responses(1)
        assert response.pdu == ReadHoldingRegistersResponse((9,))
        assert client.closed_by_peer(within=2)
    stopper.join(5)
    assert errors == []
    assert not server.serving


def test_shutdown_timeout_bounds_the_wait() -> None:
    release = threading.Event()

    def stuck(request: Request, info: ConnectionInfo) -> None:
        release.wait(5)

    server = TcpServer(stuck, port=0, handler_threads=1, shutdown_timeout=0.2).start()
    try:
        with RawClient(server.port) as client:
            client.send(ReadHoldingRegisters(0, 1))
            time.sleep(0.1)
            started = time.monotonic()
            server.shutdown()
            assert time.monotonic() - started < 1.5
            assert client.closed_by_peer(within=2)
    finally:
        release.set()


def test_address_in_use_raises_from_start() -> None:
    with TcpServer(ServerContext(), port=0) as first:
        second = TcpServer(ServerContext(), port=first.port)
        with pytest.raises(OSError, match="cannot bind"):
            second.start()
        assert not second.serving


def test_bind_every_interface_and_ipv6() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    with TcpServer(ServerContext(), host=["127.0.0.1", "::1"], port=0) as server:
        hosts = sorted(host for host, _ in server.addresses)
        assert hosts == ["127.0.0.1", "::1"]
        assert len({port for _, port in server.addresses}) == 1
        for host in ("127.0.0.1", "::1"):
            with RawClient(server.port, host=host) as client:
                assert client.read_registers(0, 1) == (0,)


def test_serial_server_stops_from_another_thread(pty_pair: PtyPair) -> None:
    server = SerialServer(ServerContext({1: Device.sized(10)}), port=pty_pair.server)
    thread, errors = run_in_thread(server.serve_forever)
    assert wait_for(lambda: server.serving)
    server.shutdown()
    thread.join(5)
    assert not thread.is_alive()
    assert errors == []
    # The port is released: it opens again.
    with SerialServer(ServerContext({1: Device.sized(10)}), port=pty_pair.server) as again:
        assert again.serving


def test_process_exits_with_a_forgotten_background_server() -> None:
    """Background threads are daemons: a program that forgets shutdown() still exits."""
    import subprocess
    import sys

    code = (
        "from modbus_core import ServerContext\n"
        "from modbus_sync import TcpServer\n"
        "TcpServer(ServerContext(), port=0).start()\n"
        "print('started')\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=20, cwd=root, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "started"
