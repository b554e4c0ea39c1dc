"""The datastore: blocks, sparse tables, read-only ranges, observers, devices, the context."""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modbus_core import (
    BitTable,
    Change,
    Device,
    ExceptionCode,
    FileRecord,
    FileRecordReference,
    LocalProtocolError,
    ModbusExceptionError,
    RegisterTable,
    ServerContext,
    Subscription,
    TableKind,
)


def missing(error: pytest.ExceptionInfo[ModbusExceptionError]) -> bool:
    return error.value.exception_code == ExceptionCode.ILLEGAL_DATA_ADDRESS


# -- blocks and addresses ---------------------------------------------------------


@given(
    start=st.integers(0, 1000),
    values=st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=300),
    data=st.data(),
)
def test_register_reads_give_the_values(start: int, values: list[int], data: st.DataObject) -> None:
    table = RegisterTable(TableKind.HOLDING_REGISTERS)
    table.add(start, values)
    offset = data.draw(st.integers(0, len(values) - 1))
    count = data.draw(st.integers(1, len(values) - offset))
    assert table.read(start + offset, count) == tuple(values[offset : offset + count])


@given(
    size=st.integers(1, 300),
    data=st.data(),
)
def test_register_writes_store_the_values(size: int, data: st.DataObject) -> None:
    table = RegisterTable.zeros(size)
    offset = data.draw(st.integers(0, size - 1))
    values = data.draw(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=size - offset))
    # A tuple as a request brings them (up to 123), and the other forms application code may use.
    kinds: list[Callable[[list[int]], Iterable[int]]] = [tuple, list, iter, lambda items: array("H", items)]
    written = data.draw(st.sampled_from(kinds))(values)
    table.write(offset, written)
    assert table.read(0, size) == (0,) * offset + tuple(values) + (0,) * (size - offset - len(values))


def test_register_reads_longer_than_a_modbus_read() -> None:
    table = RegisterTable(TableKind.HOLDING_REGISTERS)
    table.add(10, range(1000, 1300))
    assert table.read(10, 125) == tuple(range(1000, 1125))
    assert table.read(11, 126) == tuple(range(1001, 1127))
    assert table.read(10, 300) == tuple(range(1000, 1300))


def test_addresses_are_the_wire_addresses() -> None:
    table = RegisterTable.zeros(10)
    table[0] = 5
    table[9] = 6
    assert table.read(0, 10) == (5, 0, 0, 0, 0, 0, 0, 0, 0, 6)
    assert table.ranges() == [(0, 10)]
    with pytest.raises(ModbusExceptionError) as error:
        table.read(10, 1)
    assert missing(error)


def test_a_block_starts_where_it_says() -> None:
    table = RegisterTable(TableKind.INPUT_REGISTERS)
    table.add(1000, [1, 2, 3])
    assert table.read(1000, 3) == (1, 2, 3)
    assert table[1002] == 3
    for address, count in [(999, 1), (999, 2), (1003, 1), (1001, 3), (0, 1)]:
        assert not table.covers(address, count)
        with pytest.raises(ModbusExceptionError):
            table.read(address, count)
    assert list(table) == [1000, 1001, 1002]
    assert len(table) == 3
    assert 1000 in table
    assert 1003 not in table
    assert "x" not in table
    assert repr(table) == "<RegisterTable input_registers [1000..1002]>"


def test_blocks_with_a_gap_stay_apart_and_adjacent_blocks_join() -> None:
    table = BitTable(TableKind.COILS)
    table.add(10, [True, False])
    table.add(0, [False] * 3)
    table.add(5, [True])
    assert table.ranges() == [(0, 3), (5, 1), (10, 2)]
    with pytest.raises(ModbusExceptionError):
        table.read(2, 4)  # across the gap 3..4
    table.add(3, [True, True])  # fills the gap: 0..5 is one block now
    table.add(6, [False] * 4)  # and 6..9 joins 10..11
    assert table.ranges() == [(0, 12)]
    assert table.read(0, 12) == (False, False, False, True, True, True, False, False, False, False, True, False)


def test_blocks_may_not_overlap_or_leave_the_address_space() -> None:
    table = RegisterTable.zeros(10, address=100)
    for address, size in [(95, 6), (109, 2), (100, 10), (104, 1)]:
        with pytest.raises(LocalProtocolError, match="overlaps"):
            table.add(address, [0] * size)
    with pytest.raises(LocalProtocolError, match="outside"):
        table.add(0xFFFF, [1, 2])
    with pytest.raises(LocalProtocolError, match="outside"):
        table.add(-1, [1])
    with pytest.raises(LocalProtocolError, match="integers"):
        table.add("1", [1])  # type: ignore[arg-type]
    table.add(50, [])  # nothing to add
    assert table.ranges() == [(100, 10)]
    full = RegisterTable.zeros(0x10000)
    assert full.read(0xFFFF, 1) == (0,)


def test_register_values_are_16_bit_integers() -> None:
    table = RegisterTable.zeros(2)
    for bad in ([70000], [-1], [1.5], "ab", [None], (1, 70000), (-1, 1), (1.5,), (None,), (0,) * 125 + (-1,)):
        with pytest.raises(LocalProtocolError, match=r"0\.\.65535"):
            table.write(0, bad)  # type: ignore[arg-type]
    assert table.read(0, 2) == (0, 0)
    table.write(0, (True, 65535))
    assert table.read(0, 2) == (1, 65535)
    with pytest.raises(LocalProtocolError, match="positive"):
        RegisterTable.zeros(-1)
    with pytest.raises(LocalProtocolError, match="positive"):
        BitTable.zeros(-1)


def test_bits_are_stored_as_booleans() -> None:
    table = BitTable.zeros(4, TableKind.DISCRETE_INPUTS, address=8)
    table.write(8, [1, 0, 2, 0])
    assert table.read(8, 4) == (True, False, True, False)
    assert all(type(value) is bool for value in table.read(8, 4))
    with pytest.raises(LocalProtocolError, match="booleans"):
        table.write(8, "1010")  # type: ignore[arg-type]
    assert table.kind is TableKind.DISCRETE_INPUTS


def test_a_sparse_table_holds_only_its_addresses() -> None:
    table = RegisterTable.sparse({5: 50, 6: 60, 7: 70, 100: 1, 0: 9}, TableKind.HOLDING_REGISTERS)
    assert table.ranges() == [(0, 1), (5, 3), (100, 1)]
    assert table.read(5, 3) == (50, 60, 70)
    assert table[0] == 9
    for address, count in [(1, 1), (4, 2), (7, 2), (99, 1), (101, 1)]:
        with pytest.raises(ModbusExceptionError):
            table.read(address, count)
    with pytest.raises(LocalProtocolError, match="integers"):
        RegisterTable.sparse({"a": 1}, TableKind.HOLDING_REGISTERS)  # type: ignore[dict-item]
    assert BitTable.sparse({}, TableKind.COILS).ranges() == []


def test_a_table_keeps_its_own_copy_of_the_values() -> None:
    values = array("H", [1, 2, 3])
    table = RegisterTable(TableKind.HOLDING_REGISTERS)
    table.add(0, values)
    values[0] = 99
    table.add(3, [4])  # merging blocks must not touch the caller's array either
    assert table.read(0, 4) == (1, 2, 3, 4)
    assert list(values) == [99, 2, 3]


def test_reads_and_writes_of_zero_values_are_refused() -> None:
    table = RegisterTable.zeros(4)
    with pytest.raises(ModbusExceptionError):
        table.read(0, 0)
    with pytest.raises(ModbusExceptionError):
        table.write(0, [])


# -- read-only ranges ---------------------------------------------------------------


def test_read_only_ranges_refuse_modbus_writes_but_not_application_writes() -> None:
    table = RegisterTable.zeros(10)
    table.set_read_only(4, 2)
    table.set_read_only(8)
    assert table.read_only_ranges() == [(4, 2), (8, 1)]
    assert table.is_read_only(5)
    assert table.is_read_only(0, 5)
    assert not table.is_read_only(6, 2)
    assert not table.is_read_only(0, 4)
    for address, count in [(4, 1), (3, 2), (5, 5), (8, 1), (0, 10)]:
        with pytest.raises(ModbusExceptionError) as error:
            table.write(address, [1] * count)
        assert missing(error)
    assert table.read(0, 10) == (0,) * 10
    table.write(0, [7] * 4)
    table.write(4, [8, 8], force=True)
    table[8] = 9  # item assignment is an application write
    assert table.read(0, 10) == (7, 7, 7, 7, 8, 8, 0, 0, 9, 0)
    assert table.read(4, 2) == (8, 8)  # reading a read-only range is fine
    with pytest.raises(LocalProtocolError):
        table.set_read_only(0xFFFF, 2)
    with pytest.raises(LocalProtocolError):
        table.set_read_only(0, 0)


# -- observers ---------------------------------------------------------------------


def test_observers_see_every_write_in_their_range() -> None:
    table = RegisterTable.zeros(100)
    everything: list[Change] = []
    window: list[Change] = []
    table.subscribe(everything.append)
    table.subscribe(window.append, 10, 5)  # 10..14
    table.write(0, [1, 2])
    table.write(8, [3, 4, 5])  # touches 10
    table[14] = 6
    table[15] = 7
    table.set_value(20, 1.5, "float32")
    assert everything == [
        Change(TableKind.HOLDING_REGISTERS, 0, (1, 2)),
        Change(TableKind.HOLDING_REGISTERS, 8, (3, 4, 5)),
        Change(TableKind.HOLDING_REGISTERS, 14, (6,)),
        Change(TableKind.HOLDING_REGISTERS, 15, (7,)),
        Change(TableKind.HOLDING_REGISTERS, 20, (0x3FC0, 0)),
    ]
    assert window == everything[1:3]


def test_a_refused_write_is_not_reported() -> None:
    table = RegisterTable.zeros(4)
    table.set_read_only(3)
    seen: list[Change] = []
    table.subscribe(seen.append)
    with pytest.raises(ModbusExceptionError):
        table.write(2, [1, 1])
    assert seen == []


def test_cancelling_a_subscription_stops_the_calls() -> None:
    table = BitTable.zeros(4)
    seen: list[Change] = []
    subscription = table.subscribe(seen.append)
    assert subscription.active
    assert "active" in repr(subscription)
    table[0] = True
    subscription.cancel()
    subscription.cancel()  # idempotent
    assert not subscription.active
    assert "cancelled" in repr(subscription)
    table[1] = True
    assert seen == [Change(TableKind.COILS, 0, (True,))]
    with table.subscribe(seen.append) as scoped:
        table[2] = True
    assert not scoped.active
    table[3] = True
    assert len(seen) == 2


def test_every_observer_runs_even_when_some_raise() -> None:
    table = RegisterTable.zeros(4)
    seen: list[int] = []

    def first(change: Change) -> None:
        raise ValueError("first")

    def second(change: Change) -> None:
        raise KeyError("second")

    table.subscribe(first)
    table.subscribe(lambda change: seen.append(1))
    with pytest.raises(ValueError, match="first"):
        table[0] = 1
    table.subscribe(second)
    with pytest.raises(ExceptionGroup) as group:
        table[1] = 2
    assert [type(error) for error in group.value.exceptions] == [ValueError, KeyError]
    assert seen == [1, 1]
    assert table.read(0, 2) == (1, 2)  # the writes stay done


def test_an_observer_may_cancel_itself_or_write_during_a_write() -> None:
    device = Device(holding_registers=4)
    seen: list[Change] = []
    subscriptions: list[Subscription] = []

    def once(change: Change) -> None:
        seen.append(change)
        subscriptions[0].cancel()
        if change.address == 0:
            device.holding_registers[3] = 9  # re-entrant: same thread, same lock

    subscriptions.append(device.holding_registers.subscribe(once))
    device.holding_registers[0] = 1
    device.holding_registers[1] = 1
    assert seen == [Change(TableKind.HOLDING_REGISTERS, 0, (1,))]
    assert device.holding_registers[3] == 9


def test_subscribe_checks_its_arguments() -> None:
    table = RegisterTable.zeros(4)
    with pytest.raises(LocalProtocolError, match="callable"):
        table.subscribe(42)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        table.subscribe(print, 0xFFFF, 2)


def test_device_subscriptions_cover_the_tables_asked_for() -> None:
    device = Device.sized(10)
    seen: list[Change] = []
    registers: list[Change] = []
    subscription = device.subscribe(seen.append)
    device.subscribe(registers.append, [TableKind.HOLDING_REGISTERS, "input_registers"])
    device.coils[1] = True
    device.discrete_inputs[2] = True
    device.holding_registers[3] = 3
    device.input_registers[4] = 4
    device.write_registers(5, [5, 6])
    device.write_coils(0, [True])
    assert [change.table for change in seen] == [
        TableKind.COILS,
        TableKind.DISCRETE_INPUTS,
        TableKind.HOLDING_REGISTERS,
        TableKind.INPUT_REGISTERS,
        TableKind.HOLDING_REGISTERS,
        TableKind.COILS,
    ]
    assert [change.table for change in registers] == [
        TableKind.HOLDING_REGISTERS,
        TableKind.INPUT_REGISTERS,
        TableKind.HOLDING_REGISTERS,
    ]
    subscription.cancel()
    device.coils[2] = True
    assert len(seen) == 6
    with pytest.raises(ValueError, match="tables"):
        device.subscribe(print, ["tables"])


# -- devices ---------------------------------------------------------------------------


def test_device_tables_from_every_kind_of_specification() -> None:
    device = Device(
        coils=3,
        discrete_inputs=[True, False],
        holding_registers={10: 1, 11: 2},
        input_registers=RegisterTable.zeros(2, address=5),
    )
    assert device.coils.ranges() == [(0, 3)]
    assert device.discrete_inputs.read(0, 2) == (True, False)
    assert device.holding_registers.ranges() == [(10, 2)]
    assert device.input_registers.ranges() == [(5, 2)]
    assert device.input_registers.kind is TableKind.INPUT_REGISTERS
    assert device.tables[TableKind.COILS] is device.coils
    assert list(device.tables) == list(TableKind)
    assert repr(device) == "<Device coils=3, discrete_inputs=2, holding_registers=2, input_registers=2>"
    assert Device().holding_registers.ranges() == []
    sized = Device.sized(5, exception_status=3)
    assert [len(table) for table in sized.tables.values()] == [5, 5, 5, 5]
    assert sized.exception_status == 3
    assert len(Device.sized().coils) == 10000


def test_all_tables_of_a_device_share_its_lock() -> None:
    device = Device.sized(2)
    assert all(table.lock is device.lock for table in device.tables.values())
    with device.lock:  # re-entrant: table methods work while it is held
        device.holding_registers[0] = 1
        assert device.holding_registers[0] == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"coils": RegisterTable.zeros(1)}, "BitTable"),
        ({"holding_registers": BitTable.zeros(1)}, "RegisterTable"),
        ({"coils": True}, "expected a size"),
        ({"holding_registers": "abc"}, "expected a size"),
        ({"holding_registers": 1.5}, "expected a size"),
        ({"coils": 0x10001}, "0..65536"),
        ({"coils": -1}, "0..65536"),
        ({"holding_registers": [70000]}, "0..65535"),
        ({"fifos": {0: [70000]}}, "0..65535"),
        ({"fifos": {0: [True]}}, "0..65535"),
        ({"fifos": {70000: []}}, "FIFO"),
        ({"files": {0: 3}}, "file numbers"),
        ({"files": {1: 10001}}, "10000"),
        ({"files": {1: -1}}, "10000"),
        ({"files": {1: [1, -2]}}, "0..65535"),
        ({"exception_status": 256}, "one byte"),
    ],
)
def test_device_checks_its_arguments(options: dict[str, object], message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        Device(**options)  # type: ignore[arg-type]


def test_a_table_belongs_to_one_device() -> None:
    table = RegisterTable.zeros(3)
    Device(holding_registers=table)
    with pytest.raises(LocalProtocolError, match="another device"):
        Device(input_registers=table)


def test_exception_status_is_one_byte() -> None:
    device = Device(exception_status=0x81)
    assert device.read_exception_status() == 0x81
    device.exception_status = 0
    assert device.read_exception_status() == 0
    with pytest.raises(LocalProtocolError):
        device.exception_status = 0x100


def test_fifo_queues() -> None:
    device = Device(fifos={5: (1, 2)})
    assert device.read_fifo_queue(5) == (1, 2)
    device.set_fifo(5, [])
    device.set_fifo(6, range(40))
    assert device.read_fifo_queue(5) == ()
    assert len(device.read_fifo_queue(6)) == 40  # the dispatcher answers 03 for it, not the device
    with pytest.raises(ModbusExceptionError) as error:
        device.read_fifo_queue(7)
    assert missing(error)


def test_file_records() -> None:
    device = Device(files={3: [1, 2, 3], 4: 2, 5: 0})
    assert device.read_file_records([FileRecordReference(3, 0, 3), FileRecordReference(4, 1, 1)]) == [(1, 2, 3), (0,)]
    device.write_file_records([FileRecord(4, 0, (7, 8))])
    assert list(device.files[4]) == [7, 8]
    for reference in [FileRecordReference(3, 3, 1), FileRecordReference(5, 0, 1), FileRecordReference(6, 0, 1)]:
        with pytest.raises(ModbusExceptionError) as error:
            device.read_file_records([reference])
        assert missing(error)


def test_mask_write_and_read_write_on_the_device() -> None:
    device = Device(holding_registers=[0x12, 0, 0])
    device.mask_write_register(0, 0xF2, 0x25)
    assert device.holding_registers[0] == 0x17
    assert device.read_write_registers(0, 3, 1, [5, 6]) == (0x17, 5, 6)
    with pytest.raises(ModbusExceptionError):
        device.read_write_registers(2, 2, 0, [9])
    assert device.holding_registers[0] == 0x17


# -- the server context ----------------------------------------------------------------


def test_single_mode_answers_every_unit() -> None:
    device = Device()
    context = ServerContext(device)
    assert context.single
    assert all(context.get(unit) is device for unit in (0, 1, 247, 255))
    assert context[9] is device
    assert 200 in context
    assert context.units() == []
    assert context.devices() == [device]
    assert repr(context) == "ServerContext(single)"
    with pytest.raises(LocalProtocolError, match="single"):
        context[1] = Device()


def test_a_context_without_devices_has_one_default_device() -> None:
    context = ServerContext()
    device = context.get(1)
    assert isinstance(device, Device)
    assert device.holding_registers.ranges() == [(0, 10000)]


def test_units_map_to_devices() -> None:
    meter, tank = Device(), Device()
    context = ServerContext({2: meter, 1: tank, 3: meter})
    assert not context.single
    assert context.get(1) is tank
    assert context.get(4) is None
    assert 4 not in context
    assert 3 in context
    assert context.units() == [1, 2, 3]
    assert context.devices() == [meter, tank]  # each device once
    assert repr(context) == "ServerContext(units=[1, 2, 3])"
    with pytest.raises(KeyError):
        context[4]
    context[4] = Device()
    del context[1]
    assert context.units() == [2, 3, 4]
    with pytest.raises(KeyError):
        del context[1]


@pytest.mark.parametrize("unit", [-1, 256, "1", True, None])
def test_unit_ids_are_bytes(unit: object) -> None:
    with pytest.raises(LocalProtocolError, match="unit ids"):
        ServerContext({unit: Device()})  # type: ignore[dict-item]


def test_the_context_refuses_what_is_not_a_device() -> None:
    with pytest.raises(LocalProtocolError, match="Device"):
        ServerContext(RegisterTable.zeros(1))  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="Device"):
        ServerContext({1: "meter"})  # type: ignore[dict-item]


def test_a_context_observer_sees_every_unit_with_its_id() -> None:
    meter, tank = Device(holding_registers=4), Device(coils=2)
    context = ServerContext({1: meter, 2: tank})
    seen: list[tuple[int | None, Change]] = []
    subscription = context.subscribe(lambda unit, change: seen.append((unit, change)))
    meter.holding_registers[0] = 1
    tank.coils[1] = True
    pump = Device(input_registers=1)
    context[3] = pump  # mapped later: observed too
    pump.input_registers[0] = 5
    context[2] = Device(coils=1)  # replaced: the old tank is no longer observed
    tank.coils[0] = True
    del context[1]
    meter.holding_registers[1] = 1
    assert seen == [
        (1, Change(TableKind.HOLDING_REGISTERS, 0, (1,))),
        (2, Change(TableKind.COILS, 1, (True,))),
        (3, Change(TableKind.INPUT_REGISTERS, 0, (5,))),
    ]
    subscription.cancel()
    pump.input_registers[0] = 6
    context[5] = Device(coils=1)
    context.get(5).coils[0] = True  # type: ignore[union-attr]
    assert len(seen) == 3


def test_context_observers_in_single_mode_and_several_subscriptions() -> None:
    device = Device(coils=2)
    context = ServerContext(device)
    first: list[int | None] = []
    second: list[int | None] = []
    one = context.subscribe(lambda unit, change: first.append(unit))
    context.subscribe(lambda unit, change: second.append(unit))
    device.coils[0] = True
    one.cancel()
    device.coils[1] = True
    assert first == [None]
    assert second == [None, None]
    with pytest.raises(LocalProtocolError, match="callable"):
        context.subscribe("print")  # type: ignore[arg-type]


def test_a_device_mapped_to_two_units_is_reported_for_both() -> None:
    shared = Device(coils=1)
    context = ServerContext({7: shared, 8: shared})
    seen: list[int | None] = []
    context.subscribe(lambda unit, change: seen.append(unit))
    shared.coils[0] = True
    assert sorted(seen) == [7, 8]  # type: ignore[type-var]


def test_the_device_operations_read_and_write_the_tables() -> None:
    device = Device(coils=[True, False], discrete_inputs=[False, True], holding_registers=[1, 2], input_registers=[3])
    assert device.read_coils(0, 2) == (True, False)
    assert device.read_discrete_inputs(1, 1) == (True,)
    assert device.read_holding_registers(0, 2) == (1, 2)
    assert device.read_input_registers(0, 1) == (3,)
    device.write_coils(1, [True])
    device.write_registers(0, [5, 6])
    assert device.coils.read(0, 2) == (True, True)
    assert device.holding_registers.read(0, 2) == (5, 6)
    with pytest.raises(ModbusExceptionError):
        device.read_input_registers(1, 1)


class Remote:
    """A minimal asynchronous device: it has no tables to observe."""

    async def read_holding_registers(self, address: int, count: int) -> list[int]:
        return [0] * count


def test_context_observers_skip_asynchronous_devices() -> None:
    local = Device(coils=1)
    context = ServerContext({1: local, 2: Remote()})  # type: ignore[dict-item]
    seen: list[int | None] = []
    context.subscribe(lambda unit, change: seen.append(unit))
    context[3] = Remote()  # type: ignore[assignment]
    local.coils[0] = True
    assert seen == [1]
