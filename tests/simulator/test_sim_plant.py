"""The plant: modbus_core devices built from a configuration, named typed values, actions."""

from __future__ import annotations

import datetime
import logging
import random
from pathlib import Path
from typing import Any

import pytest

from modbus_anyio.simulator import load_config, parse_config
from modbus_anyio.simulator._actions import ActionRunner
from modbus_anyio.simulator._plant import MemoryDevice, Plant
from modbus_core import (
    Dispatcher,
    ExceptionResponse,
    ReadCoils,
    ReadHoldingRegisters,
    ReadInputRegisters,
    Request,
    RequestPdu,
    Response,
    ServerContext,
    TableKind,
    WriteMultipleRegisters,
    WriteSingleCoil,
    WriteSingleRegister,
)

from .sim_support import PYMODBUS_SETUP, plant_document, small_config, write_json


def answer(plant: Plant, pdu: RequestPdu, unit: int = 1) -> Any:
    """What the plant's devices answer to *pdu* for *unit*."""
    return ask(Dispatcher(ServerContext({sim.unit: sim.device for sim in plant if sim.unit is not None})), pdu, unit)


def test_points_hold_their_typed_initial_values() -> None:
    plant = Plant(small_config())
    assert plant.point("meter/voltage").value == 230.5
    assert plant.point("meter/limit").value == -5
    assert plant.point("meter/label").value == "M-1"
    assert plant.point("meter/relay").value is True
    assert plant.point("tank/level").value == 50.0
    assert plant.point("tank/level").raw() == (500,)
    assert plant.point("meter/limit").raw() == (0xFFFF, 0xFFFB)
    # Modbus clients see the same registers.
    assert answer(plant, ReadInputRegisters(0, 2)).registers == plant.point("meter/voltage").raw()


def test_byte_and_word_orders(tmp_path: Path) -> None:
    registers = [
        {
            "name": name,
            "address": 2 * index,
            "type": "uint32",
            "value": 0x11223344,
            "byte_order": byte,
            "word_order": word,
        }
        for index, (name, byte, word) in enumerate(
            [("abcd", "big", "big"), ("cdab", "big", "little"), ("badc", "little", "big"), ("dcba", "little", "little")]
        )
    ]
    plant = Plant(
        load_config(
            write_json(tmp_path / "p.json", plant_document(devices=[{"name": "d", "unit": 1, "registers": registers}]))
        )
    )
    assert plant.point("d/abcd").raw() == (0x1122, 0x3344)
    assert plant.point("d/cdab").raw() == (0x3344, 0x1122)
    assert plant.point("d/badc").raw() == (0x2211, 0x4433)
    assert plant.point("d/dcba").raw() == (0x4433, 0x2211)
    assert {plant.point(f"d/{name}").value for name in ("abcd", "cdab", "badc", "dcba")} == {0x11223344}


def test_scaled_values_round_to_the_register_and_refuse_what_does_not_fit() -> None:
    plant = Plant(small_config())
    level = plant.point("tank/level")
    level.set(61.27)
    assert level.raw() == (613,)
    assert level.value == pytest.approx(61.3)
    with pytest.raises(ValueError, match="does not fit"):
        level.set(7000)
    with pytest.raises(ValueError, match="expected a number"):
        level.set("high")
    with pytest.raises(ValueError, match="expected true or false"):
        plant.point("meter/relay").set(5)


def test_read_only_refuses_modbus_writes_but_not_the_application() -> None:
    plant = Plant(small_config())
    refused = answer(plant, WriteMultipleRegisters(1, (1, 2)))
    assert isinstance(refused, ExceptionResponse)
    assert refused.exception_code == 2
    assert plant.point("meter/limit").value == -5
    plant.point("meter/limit").set(-7)
    assert plant.point("meter/limit").value == -7
    accepted = answer(plant, WriteSingleRegister(0, 321))
    assert not isinstance(accepted, ExceptionResponse)
    assert plant.point("meter/setpoint").value == 321


def test_invalid_ranges_answer_exception_02(tmp_path: Path) -> None:
    document = plant_document(
        devices=[
            {
                "name": "d",
                "unit": 1,
                "holding_registers": {"start": 100, "size": 20, "fill": 7},
                "invalid": [{"table": "holding_registers", "address": 105, "count": 5}],
            }
        ]
    )
    plant = Plant(load_config(write_json(tmp_path / "p.json", document)))
    assert answer(plant, ReadHoldingRegisters(100, 5)).registers == (7,) * 5
    for address, count in ((104, 2), (99, 1), (110, 10), (110, 11)):
        response = answer(plant, ReadHoldingRegisters(address, count))
        ok = address == 110 and count == 10
        assert isinstance(response, ExceptionResponse) != ok, (address, count)
    assert plant.device("d").table_ranges(TableKind.HOLDING_REGISTERS) == [(100, 5), (110, 10)]


def test_reset_puts_back_initial_values() -> None:
    plant = Plant(small_config())
    meter = plant.device("meter")
    meter.point("setpoint").set(1)
    meter.point("label").set("XY")
    meter.point("relay").set(False)
    meter.write(TableKind.HOLDING_REGISTERS, 15, [9, 9])
    meter.reset()
    assert meter.point("setpoint").value == 100
    assert meter.point("label").value == "M-1"
    assert meter.point("relay").value is True
    assert meter.read(TableKind.HOLDING_REGISTERS, 15, 2) == (0, 0)


def test_change_listeners_observe_the_tables_only_while_they_listen() -> None:
    plant = Plant(small_config())
    tank = plant.device("tank")
    assert tank.device.holding_registers._observers == ()  # Modbus writes pay nothing by default
    seen: list[tuple[str, int]] = []
    remove = plant.add_change_listener(lambda sim, change: seen.append((sim.name, change.address)))
    answer(plant, WriteSingleRegister(0, 9), unit=2)
    assert seen == [("tank", 0)]
    remove()
    tank.point("level").set(1)
    assert seen == [("tank", 0)]
    assert tank.device.holding_registers._observers == ()


# -- the pymodbus memory model ---------------------------------------------------


def ask(dispatcher: Dispatcher, pdu: RequestPdu, unit: int = 1) -> Any:
    """The response PDU *dispatcher* gives (Any: tests look at fields of their own type)."""
    response = dispatcher.dispatch(Request(pdu, unit))
    assert isinstance(response, Response)
    return response.pdu


def test_pymodbus_memory_device_follows_pymodbus_rules() -> None:
    plant = Plant(load_config(PYMODBUS_SETUP))
    sim = plant.devices[0]
    assert isinstance(sim.device, MemoryDevice)
    dispatcher = Dispatcher(ServerContext(sim.device))
    assert ask(dispatcher, ReadHoldingRegisters(3, 1)).registers == (17001,)
    # Only "write" addresses take writes; others answer 02.
    assert not isinstance(ask(dispatcher, WriteSingleRegister(3, 5)), ExceptionResponse)
    assert isinstance(ask(dispatcher, WriteSingleRegister(2, 5)), ExceptionResponse)
    # Address 1 is invalid; 2 (bits) is the first valid one.
    assert isinstance(ask(dispatcher, ReadHoldingRegisters(1, 1)), ExceptionResponse)
    # "type exception": a read must cover whole values (uint32 at 4..5).
    assert isinstance(ask(dispatcher, ReadHoldingRegisters(5, 1)), ExceptionResponse)
    assert ask(dispatcher, ReadHoldingRegisters(4, 2)).registers == (9, 27177)
    # Coils are the bits of the shared registers: register 2 holds 7.
    assert ask(dispatcher, ReadCoils(32, 4)).values[:4] == (True, True, True, False)
    # Writing coil bits needs a writable register.
    assert isinstance(ask(dispatcher, WriteSingleCoil(32, False)), ExceptionResponse)
    assert not isinstance(ask(dispatcher, WriteSingleCoil(49, True)), ExceptionResponse)
    assert sim.point("uint16_3").value == 5 | 2


def test_pymodbus_read_actions_run_when_read() -> None:
    plant = Plant(load_config(PYMODBUS_SETUP))
    runner = ActionRunner(plant)
    dispatcher = Dispatcher(ServerContext(plant.devices[0].device))
    first = ask(dispatcher, ReadHoldingRegisters(2100, 1))
    second = ask(dispatcher, ReadHoldingRegisters(2100, 1))
    assert (first.registers, second.registers) == ((1,), (2,))
    assert runner.timer_count == 0


# -- actions --------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def action_plant(tmp_path: Path, registers: list[dict[str, object]], **extra: object) -> Plant:
    document = plant_document(
        devices=[{"name": "d", "unit": 1, "holding_registers": 40, "registers": registers}], **extra
    )
    return Plant(load_config(write_json(tmp_path / "p.json", document)))


def test_timer_actions(tmp_path: Path) -> None:
    plant = action_plant(
        tmp_path,
        [
            {
                "name": "count",
                "address": 0,
                "value": 8,
                "action": {"kind": "increment", "step": 2, "min": 5, "max": 12},
            },
            {"name": "noise", "address": 1, "action": {"kind": "random", "min": 10, "max": 20, "interval": 0.5}},
            {
                "name": "wave",
                "address": 2,
                "type": "float32",
                "action": {"kind": "sine", "amplitude": 10, "offset": 50, "period": 4},
            },
            {"name": "up", "address": 4, "type": "uint32", "action": "uptime"},
            {"name": "clock", "address": 6, "type": "uint32", "action": "timestamp"},
            {"name": "calendar", "address": 10, "action": {"kind": "timestamp", "layout": "pymodbus"}},
            {"name": "slow", "address": 20, "action": {"kind": "increment", "interval": 10}},
        ],
    )
    clock = Clock()
    runner = ActionRunner(plant, clock=clock, wall=lambda: 1_700_000_000.0, rng=random.Random(4))
    assert runner.timer_count == 7
    delay = runner.run_due(clock.now)
    assert delay == pytest.approx(0.5)
    point = plant.point
    assert point("d/count").value == 10
    assert 10 <= point("d/noise").value <= 20
    assert point("d/wave").value == pytest.approx(50.0)
    assert point("d/clock").value == 1_700_000_000
    moment = datetime.datetime.fromtimestamp(1_700_000_000)
    assert plant.device("d").read(TableKind.HOLDING_REGISTERS, 10, 7) == (
        moment.year,
        moment.month - 1,
        moment.day,
        moment.weekday() + 1,
        moment.hour,
        moment.minute,
        moment.second,
    )
    clock.now += 1.0
    runner.run_due(clock.now)
    assert point("d/count").value == 12
    assert point("d/wave").value == pytest.approx(60.0)
    assert point("d/up").value == 1
    assert point("d/slow").value == 1  # ran at the start only
    clock.now += 1.0
    runner.run_due(clock.now)
    assert point("d/count").value == 5  # 14 > max: back to min
    clock.now += 10.0  # far behind: runs once, does not burst
    runner.run_due(clock.now)
    assert point("d/slow").value == 2
    assert point("d/up").value == 12


def test_reset_on_write_and_custom_actions(tmp_path: Path) -> None:
    (tmp_path / "acts.py").write_text(
        "def follow(context):\n"
        "    context.state['runs'] = context.state.get('runs', 0) + 1\n"
        "    return context.device.point('source').value + context.parameters['add'] + context.state['runs']\n"
        "def broken(context):\n"
        "    raise RuntimeError('boom')\n",
        encoding="utf-8",
    )
    plant = action_plant(
        tmp_path,
        [
            {"name": "source", "address": 0, "value": 3},
            {
                "name": "copy",
                "address": 1,
                "action": {"kind": "custom", "function": "follow", "parameters": {"add": 100}},
            },
            {"name": "bad", "address": 2, "action": {"kind": "custom", "function": "broken"}},
            {"name": "reset", "address": 3, "action": "reset"},
        ],
        custom_actions="acts.py",
    )
    clock = Clock()
    runner = ActionRunner(plant, clock=clock)
    runner.run_due(clock.now)
    assert plant.point("d/copy").value == 104
    assert runner.failures == 1
    clock.now += 1
    runner.run_due(clock.now)
    assert plant.point("d/copy").value == 105
    assert runner.failures == 1  # the failing action is off
    plant.point("d/source").set(50)
    plant.point("d/reset").set(0)  # a zero write does not reset
    assert plant.point("d/source").value == 50
    answer(plant, WriteSingleRegister(3, 1))
    assert plant.point("d/source").value == 3
    assert plant.point("d/reset").value == 0
    runner.close()


def test_a_failing_action_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    plant = action_plant(
        tmp_path, [{"name": "x", "address": 0, "type": "int16", "action": {"kind": "sine", "amplitude": 40000}}]
    )
    runner = ActionRunner(plant, clock=Clock())
    runner.started -= 15  # a quarter period: the value is 40000, past int16
    with caplog.at_level(logging.ERROR, logger="modbus_anyio.simulator"):
        runner.run_due(runner.clock())
    assert "action sine every 1s of d/x failed and is now off" in caplog.text
    assert runner.timer_count == 0


def test_the_example_tank_fills_and_raises_its_alarm() -> None:
    from modbus_anyio.simulator import default_config

    plant = Plant(default_config())
    clock = Clock()
    runner = ActionRunner(plant, clock=clock)
    tank = plant.device("water-tank")
    tank.point("level").set(88.0)
    for _ in range(6):
        clock.now += 0.5
        runner.run_due(clock.now)
    assert tank.point("level").value > 90.0
    assert tank.point("high_level").value is True
    tank.point("inlet_valve").set(False)
    tank.point("outlet_valve").set(True)
    for _ in range(4):
        clock.now += 0.5
        runner.run_due(clock.now)
    assert tank.point("level").value < 90.0
    assert tank.point("high_level").value is False


def test_parse_config_builds_a_thousand_devices_quickly() -> None:
    import time

    document = plant_document(
        servers=[{"name": f"bus{index}", "transport": "tcp", "port": 0} for index in range(5)],
        templates={
            "meter": {
                "input_registers": 40,
                "registers": [
                    {"name": f"r{i}", "address": 2 * i, "type": "float32", "table": "input_registers"}
                    for i in range(20)
                ],
            }
        },
        devices=[
            {
                "name": f"bus{index}-m{{n}}",
                "template": "meter",
                "unit": 1,
                "servers": [f"bus{index}"],
                "repeat": {"count": 200},
            }
            for index in range(5)
        ],
    )
    started = time.perf_counter()
    plant = Plant(parse_config(document))
    elapsed = time.perf_counter() - started
    assert len(plant) == 1000
    assert sum(len(sim.points) for sim in plant) == 20000
    assert elapsed < 20  # generous: speed is measured in benchmarks/, this only guards against a blow-up


def test_timer_actions_run_in_batches(tmp_path: Path) -> None:
    plant = action_plant(tmp_path, [{"name": f"c{n}", "address": n, "action": "increment"} for n in range(5)])
    clock = Clock()
    runner = ActionRunner(plant, clock=clock)
    assert runner.run_due(clock.now, limit=2) == 0.0  # more are due: come back at once
    assert [plant.point(f"d/c{n}").value for n in range(5)] == [1, 1, 0, 0, 0]
    assert runner.run_due(clock.now, limit=2) == 0.0
    assert runner.run_due(clock.now, limit=2) == pytest.approx(1.0)
    assert [plant.point(f"d/c{n}").value for n in range(5)] == [1] * 5
