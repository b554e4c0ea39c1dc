"""Any Modbus request to a simulated device: an answer or the exception the request deserves, never 04.

Exception 04 (server device failure) is what a datastore or an action that
raises turns into; a simulated device must not fail for any request a client
can send, whatever its memory model (the project's tables, or pymodbus'
typed cells with read-triggered actions)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modbus_anyio.simulator import Simulator, SimulatorConfig, default_config, load_config
from modbus_core import (
    Dispatcher,
    ExceptionCode,
    MaskWriteRegister,
    ReadCoils,
    ReadDiscreteInputs,
    ReadHoldingRegisters,
    ReadInputRegisters,
    ReadWriteMultipleRegisters,
    Request,
    RequestPdu,
    Response,
    WriteMultipleCoils,
    WriteMultipleRegisters,
    WriteSingleCoil,
    WriteSingleRegister,
)

from .sim_support import PYMODBUS_SETUP, small_config

addresses = st.integers(0, 300) | st.integers(0, 0xFFFF)
words = st.integers(0, 0xFFFF)


def counted(limit: int) -> st.SearchStrategy[tuple[int, int]]:
    """(address, count) with the count the function allows, inside the address space."""
    return st.tuples(addresses, st.integers(1, limit)).filter(lambda pair: pair[0] + pair[1] <= 0x10000)


requests: st.SearchStrategy[RequestPdu] = st.one_of(
    counted(2000).map(lambda pair: ReadCoils(*pair)),
    counted(2000).map(lambda pair: ReadDiscreteInputs(*pair)),
    counted(125).map(lambda pair: ReadHoldingRegisters(*pair)),
    counted(125).map(lambda pair: ReadInputRegisters(*pair)),
    st.builds(WriteSingleCoil, addresses, st.booleans()),
    st.builds(WriteSingleRegister, addresses, words),
    counted(123).flatmap(
        lambda pair: st.lists(words, min_size=pair[1], max_size=pair[1]).map(
            lambda values: WriteMultipleRegisters(pair[0], tuple(values))
        )
    ),
    counted(1968).flatmap(
        lambda pair: st.lists(st.booleans(), min_size=pair[1], max_size=pair[1]).map(
            lambda values: WriteMultipleCoils(pair[0], tuple(values))
        )
    ),
    st.builds(MaskWriteRegister, addresses, words, words),
    st.tuples(counted(125), counted(121)).flatmap(
        lambda pairs: st.lists(words, min_size=pairs[1][1], max_size=pairs[1][1]).map(
            lambda values: ReadWriteMultipleRegisters(pairs[0][0], pairs[0][1], pairs[1][0], tuple(values))
        )
    ),
)


def pymodbus_setup() -> SimulatorConfig:
    return load_config(PYMODBUS_SETUP)


PLANTS: dict[str, Callable[[], SimulatorConfig]] = {
    "built-in plant": default_config,
    "small plant": small_config,
    "pymodbus setup.json": pymodbus_setup,
}


@pytest.fixture(scope="module", params=sorted(PLANTS))
def plant(request: pytest.FixtureRequest) -> Iterator[tuple[Dispatcher, list[int]]]:
    """The dispatcher of the plant's first listener, as it answers, and the units it serves."""
    simulator = Simulator(PLANTS[request.param](), http=False)
    server = simulator.config.servers[0].name
    units = [unit if unit is not None else 1 for unit in simulator.plant.units_of(server)]
    yield Dispatcher(simulator.plant.context_for(server)), units
    simulator.actions.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_request_makes_a_simulated_device_fail(
    plant: tuple[Dispatcher, list[int]], data: st.DataObject, caplog: pytest.LogCaptureFixture
) -> None:
    dispatcher, units = plant
    pdus = data.draw(st.lists(requests, min_size=1, max_size=5))
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        for pdu in pdus:
            answer = dispatcher.dispatch(Request(pdu, data.draw(st.sampled_from(units))))
            assert isinstance(answer, Response)  # the simulated devices answer at once
            code = getattr(answer.pdu, "exception_code", None)
            assert code != ExceptionCode.SERVER_DEVICE_FAILURE, (pdu, caplog.text)
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR], caplog.text
