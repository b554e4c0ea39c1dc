"""The datastore under the synchronous server's threads: requests are atomic on their device.

Threads call :meth:`Dispatcher.dispatch` at once, as modbus_sync does, while
others change values the way application code does.  The interpreter is
told to switch threads as often as it can, so that a missing lock shows.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from modbus_core import (
    Device,
    Dispatcher,
    MaskWriteRegister,
    ReadHoldingRegisters,
    ReadHoldingRegistersResponse,
    ReadWriteMultipleRegisters,
    ReadWriteMultipleRegistersResponse,
    Request,
    Response,
    ServerContext,
    WriteMultipleRegisters,
)

BLOCK = 100  # registers written and read as one


@pytest.fixture(autouse=True)
def frequent_switches() -> Iterator[None]:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def run_threads(workers: list[Callable[[], None]], timeout: float = 60.0) -> None:
    """Run every worker in its own thread; re-raise the first failure."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(workers))

    def wrapped(work: Callable[[], None]) -> None:
        try:
            start.wait(timeout)
            work()
        except BaseException as error:  # noqa: BLE001 - handed to the main thread
            errors.append(error)

    threads = [threading.Thread(target=wrapped, args=(work,), daemon=True) for work in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
        assert not thread.is_alive(), "a worker did not finish in time"
    if errors:
        raise errors[0]


def registers(response: Response | object) -> tuple[int, ...]:
    assert isinstance(response, Response)
    assert isinstance(response.pdu, ReadHoldingRegistersResponse | ReadWriteMultipleRegistersResponse)
    return response.pdu.registers


def test_readers_never_see_a_multi_register_write_half_done() -> None:
    device = Device(holding_registers=2 * BLOCK)
    dispatcher = Dispatcher(ServerContext({1: device}))
    seen: set[int] = set()

    def writer(value: int) -> Callable[[], None]:
        def work() -> None:
            request = Request(WriteMultipleRegisters(10, (value,) * BLOCK), 1)
            for _ in range(300):
                response = dispatcher.dispatch(request)
                assert isinstance(response, Response)
                assert not response.is_exception

        return work

    def reader() -> None:
        request = Request(ReadHoldingRegisters(10, BLOCK), 1)
        for _ in range(600):
            values = registers(dispatcher.dispatch(request))
            assert len(set(values)) == 1, f"torn read: {sorted(set(values))}"
            seen.add(values[0])

    def application() -> None:
        # Application code changes the block one register at a time, under the device lock.
        for round_ in range(100):
            with device.lock:
                for address in range(10, 10 + BLOCK):
                    device.holding_registers[address] = 1000 + round_

    run_threads([writer(1), writer(2), writer(3), reader, reader, application])
    assert len(seen) > 1  # the readers did see the writers at work


def test_read_write_multiple_registers_is_atomic() -> None:
    device = Device(holding_registers=BLOCK)
    dispatcher = Dispatcher(device)

    def worker(value: int) -> Callable[[], None]:
        def work() -> None:
            request = Request(ReadWriteMultipleRegisters(0, 60, 0, (value,) * 60), 1)
            for _ in range(400):
                # What it reads back is what it has just written, never another thread's values.
                assert registers(dispatcher.dispatch(request)) == (value,) * 60

        return work

    run_threads([worker(value) for value in range(1, 5)])


def test_mask_write_is_an_atomic_read_modify_write() -> None:
    device = Device(holding_registers=1)
    dispatcher = Dispatcher(device)

    def setter(bit: int) -> Callable[[], None]:
        def work() -> None:
            set_bit = Request(MaskWriteRegister(0, 0xFFFF ^ (1 << bit), 1 << bit), 1)
            clear_bit = Request(MaskWriteRegister(0, 0xFFFF ^ (1 << bit), 0), 1)
            for _ in range(300):
                dispatcher.dispatch(clear_bit)
                assert not device.holding_registers[0] & (1 << bit)
                dispatcher.dispatch(set_bit)
                assert device.holding_registers[0] & (1 << bit), "another thread's update erased this bit"

        return work

    run_threads([setter(bit) for bit in range(8)])
    assert device.holding_registers[0] == 0xFF


def test_observers_see_changes_in_write_order() -> None:
    device = Device(holding_registers=BLOCK)
    dispatcher = Dispatcher(device)
    observed: list[int] = []
    device.subscribe(lambda change: observed.append(int(change.values[0])))

    def writer(value: int) -> Callable[[], None]:
        def work() -> None:
            for _ in range(200):
                dispatcher.dispatch(Request(WriteMultipleRegisters(0, (value,) * BLOCK), 1))

        return work

    run_threads([writer(value) for value in range(1, 5)])
    assert len(observed) == 800
    # The last change reported is the value the table holds: no observer call overtook a write.
    assert observed[-1] == device.holding_registers[0]
