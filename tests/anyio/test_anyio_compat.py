"""The pymodbus datastore names, checked against pymodbus 3.16.1 itself."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from modbus_anyio import (
    FramerType,
    ModbusDeviceContext,
    ModbusDeviceIdentification,
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSparseDataBlock,
)
from modbus_core import DeviceIdentity, LocalProtocolError, ServerContext


def test_framer_type_values_match_pymodbus() -> None:
    from pymodbus import FramerType as PymodbusFramerType

    for member in PymodbusFramerType:
        assert FramerType(member.value) == member.value
        assert FramerType[member.name].value == member.value


def _build(blocks: dict[str, object]) -> dict[str, object]:
    return blocks


SEQUENTIAL = [10, 11, 12, 13]
SPARSE = {1: 20, 2: 21, 5: 25}
COILS = [True, False, True, True, False, False, True, False]


def _our_reads(context: ModbusDeviceContext) -> dict[str, list[int | None]]:
    def read(function: int, address: int) -> int | None:
        if not context.validate(function, address):
            return None
        return int(context.getValues(function, address, 1)[0])

    return {
        "hr": [read(3, address) for address in range(7)],
        "ir": [read(4, address) for address in range(7)],
        "co": [read(1, address) for address in range(10)],
        "di": [read(2, address) for address in range(3)],
    }


async def _pymodbus_reads() -> dict[str, list[int | None]]:
    from pymodbus.client import AsyncModbusTcpClient
    from pymodbus.datastore import ModbusDeviceContext as PmDevice
    from pymodbus.datastore import ModbusSequentialDataBlock as PmSequential
    from pymodbus.datastore import ModbusServerContext as PmServer
    from pymodbus.datastore import ModbusSparseDataBlock as PmSparse
    from pymodbus.server import ModbusTcpServer

    device = PmDevice(hr=PmSequential(1, SEQUENTIAL), ir=PmSparse(SPARSE), co=PmSequential(1, COILS))  # type: ignore[no-untyped-call]
    server: Any = ModbusTcpServer(PmServer(devices=device, single=True), address=("127.0.0.1", 0))
    task = asyncio.create_task(server.serve_forever())
    try:
        for _ in range(100):
            if server.transport is not None:
                break
            await asyncio.sleep(0.01)
        port = server.transport.sockets[0].getsockname()[1]
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
        await client.connect()
        try:

            async def read(kind: str, address: int) -> int | None:
                if kind == "hr":
                    result = await client.read_holding_registers(address, count=1)
                elif kind == "ir":
                    result = await client.read_input_registers(address, count=1)
                elif kind == "co":
                    result = await client.read_coils(address, count=1)
                else:
                    result = await client.read_discrete_inputs(address, count=1)
                if result.isError():
                    return None
                return int(result.registers[0]) if kind in ("hr", "ir") else int(result.bits[0])

            return {
                "hr": [await read("hr", address) for address in range(7)],
                "ir": [await read("ir", address) for address in range(7)],
                "co": [await read("co", address) for address in range(10)],
                "di": [await read("di", address) for address in range(3)],
            }
        finally:
            client.close()
    finally:
        await server.shutdown()
        task.cancel()


@pytest.mark.interop
def test_addresses_match_pymodbus_3_16(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    ours = ModbusDeviceContext(
        hr=ModbusSequentialDataBlock(1, SEQUENTIAL),
        ir=ModbusSparseDataBlock(SPARSE),
        co=ModbusSequentialDataBlock(1, COILS),
    )
    theirs = asyncio.run(asyncio.wait_for(_pymodbus_reads(), 20))
    mine = _our_reads(ours)
    assert mine["hr"] == theirs["hr"] == [10, 11, 12, 13, None, None, None]
    assert mine["ir"] == theirs["ir"] == [None, 20, 21, None, None, 25, None]
    # pymodbus 3.16 stores bits in 16-bit registers and also answers the
    # padding up to the next multiple of 16 (with 0); we answer exactly the
    # bits given, and exception 02 past them.
    assert mine["co"][:8] == theirs["co"][:8] == [1, 0, 1, 1, 0, 0, 1, 0]
    assert mine["co"][8:] == [None, None]
    assert mine["di"][0] == theirs["di"][0] == 0


def test_sequential_block_at_zero_loses_its_first_value() -> None:
    context = ModbusDeviceContext(hr=ModbusSequentialDataBlock(0, [7, 8, 9]))
    assert context.getValues(3, 0, 2) == [8, 9]
    assert not context.validate(3, 2)
    assert len(ModbusSequentialDataBlock.create().values) == 0x10000


def test_set_and_get_values_use_protocol_addresses() -> None:
    context = ModbusDeviceContext(hr=ModbusSequentialDataBlock(1, [0] * 10), co=ModbusSequentialDataBlock(1, [0] * 16))
    context.setValues(6, 3, [500, 501])
    assert context.device.holding_registers.read(3, 2) == (500, 501)
    assert context.getValues(16, 2, 3) == [0, 500, 501]
    context.setValues(5, 15, [True])
    assert context.getValues(1, 14, 2) == [False, True]
    context.setValues(3, 0, 42)  # type: ignore[arg-type]
    assert context.device.holding_registers[0] == 42
    with pytest.raises(LocalProtocolError, match="function code 7"):
        context.getValues(7, 0)


def test_server_context_is_a_core_server_context() -> None:
    one = ModbusDeviceContext()
    single = ModbusServerContext(devices=one, single=True)
    assert isinstance(single, ServerContext)
    assert single.get(17) is one.device
    assert single[17] is one
    assert 200 in single

    a, b = ModbusDeviceContext(), ModbusDeviceContext()
    several = ModbusServerContext(devices={1: a, 2: b}, single=False)
    assert several.get(2) is b.device
    assert several.get(3) is None
    assert 3 not in several
    assert several[1] is a
    with pytest.raises(KeyError):
        several[3]
    assert several.device_ids() == [1, 2]

    with_zero = ModbusServerContext(devices={0: a, 5: b})
    assert with_zero.get(5) is b.device
    assert with_zero.get(9) is a.device  # pymodbus: id 0 answers unknown ids
    assert 9 in with_zero
    assert with_zero[9] is a

    with pytest.raises(TypeError):
        ModbusServerContext(devices=None)
    with pytest.raises(TypeError):
        ModbusServerContext(devices={1: object()})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        ModbusServerContext(devices=[a])  # type: ignore[arg-type]


def test_default_tables_hold_one_value_at_zero() -> None:
    context = ModbusDeviceContext()
    for function in (1, 2, 3, 4):
        assert context.validate(function, 0)
        assert not context.validate(function, 1)


def test_block_validation() -> None:
    with pytest.raises(LocalProtocolError):
        ModbusSequentialDataBlock(-1, [1])
    with pytest.raises(LocalProtocolError):
        ModbusSequentialDataBlock(0xFFFF, [1, 2])
    with pytest.raises(LocalProtocolError):
        ModbusSequentialDataBlock(1, "abc")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        ModbusSequentialDataBlock(1, [1.5])  # type: ignore[list-item]
    with pytest.raises(LocalProtocolError):
        ModbusSparseDataBlock({70000: 1})
    with pytest.raises(LocalProtocolError):
        ModbusSparseDataBlock({1: "x"})
    with pytest.raises(LocalProtocolError):
        ModbusDeviceContext(hr=ModbusSequentialDataBlock(1, [70000]))
    with pytest.raises(LocalProtocolError):
        ModbusDeviceContext(hr=[1, 2])  # type: ignore[arg-type]
    assert ModbusSparseDataBlock([5, 6]).values == {0: 5, 1: 6}
    assert ModbusSparseDataBlock().values == {}
    assert ModbusSequentialDataBlock(1, 5).values == [5]
    assert "4 values" in repr(ModbusSequentialDataBlock(1, [1, 2, 3, 4]))


def test_device_identification() -> None:
    identification = ModbusDeviceIdentification(
        info_name={"VendorName": "ACME", "ProductCode": "PM-1", "MajorMinorRevision": "2.1", "ProductName": "Meter"},
        info={0x80: "private"},
    )
    identification[0x05] = "M1"
    assert identification[0x00] == "ACME"
    assert identification.summary()["ModelName"] == "M1"
    identity = identification.to_identity()
    assert isinstance(identity, DeviceIdentity)
    assert identity.objects[0x00] == b"ACME"
    assert identity.objects[0x04] == b"Meter"
    assert identity.objects[0x80] == b"private"
    assert identity.conformity_level == 0x83
    other = ModbusDeviceIdentification()
    other.update(identification)
    assert dict(other)[0x01] == "PM-1"
    other.update({0x06: "app"})
    assert other[0x06] == "app"
    with pytest.raises(LocalProtocolError):
        ModbusDeviceIdentification(info_name={"Vendor": "x"})
    with pytest.raises(LocalProtocolError):
        identification[0x07] = "reserved"
