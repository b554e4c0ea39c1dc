"""Typed values in registers: every type, every byte and word order."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modbus_core import (
    DataType,
    LocalProtocolError,
    ModbusExceptionError,
    RegisterTable,
    from_registers,
    register_count,
    to_registers,
)

ORDERS = [("big", "big"), ("big", "little"), ("little", "big"), ("little", "little")]


@pytest.mark.parametrize(
    ("byte_order", "word_order", "registers"),
    [
        ("big", "big", (0x1234, 0x5678)),  # ABCD, the Modbus convention
        ("big", "little", (0x5678, 0x1234)),  # CDAB
        ("little", "big", (0x3412, 0x7856)),  # BADC
        ("little", "little", (0x7856, 0x3412)),  # DCBA
    ],
)
def test_the_four_orders_of_a_32_bit_value(byte_order: str, word_order: str, registers: tuple[int, int]) -> None:
    assert to_registers(0x12345678, "uint32", byte_order=byte_order, word_order=word_order) == registers  # type: ignore[arg-type]
    assert from_registers(registers, "uint32", byte_order=byte_order, word_order=word_order) == 0x12345678  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "data_type", "registers"),
    [
        (-1, DataType.INT16, (0xFFFF,)),
        (-32768, DataType.INT16, (0x8000,)),
        (65535, DataType.UINT16, (0xFFFF,)),
        (-2, DataType.INT32, (0xFFFF, 0xFFFE)),
        (0x0102030405060708, DataType.UINT64, (0x0102, 0x0304, 0x0506, 0x0708)),
        (-1, DataType.INT64, (0xFFFF,) * 4),
        (1.0, DataType.FLOAT32, (0x3F80, 0x0000)),
        (-2.5, DataType.FLOAT32, (0xC020, 0x0000)),
        (1.0, DataType.FLOAT64, (0x3FF0, 0, 0, 0)),
        (2, DataType.FLOAT64, (0x4000, 0, 0, 0)),  # an int is a number too
    ],
)
def test_known_encodings(value: float, data_type: DataType, registers: tuple[int, ...]) -> None:
    assert to_registers(value, data_type) == registers
    assert from_registers(registers, data_type) == value


def test_strings_are_utf8_padded_with_nul() -> None:
    assert to_registers("AB", "string", length=2) == (0x4142, 0x0000)
    assert to_registers("ABC", DataType.STRING, length=2) == (0x4142, 0x4300)
    assert to_registers("ABC", DataType.STRING, length=2, byte_order="little") == (0x4241, 0x0043)
    assert from_registers((0x4142, 0x4300), "string") == "ABC"
    assert from_registers((0x4241, 0x0043), "string", byte_order="little") == "ABC"
    assert from_registers((0xC3A9, 0x0000), "string") == "\u00e9"
    assert from_registers((0xFF00,), "string") == "\ufffd"  # not UTF-8: replaced, never an error


def test_bits_start_at_bit_0_of_the_first_register() -> None:
    assert to_registers([True, False, True], "bits", length=1) == (0b101,)
    bits = [False] * 16 + [True]
    assert to_registers(bits, DataType.BITS, length=2) == (0, 1)
    assert to_registers(bits, DataType.BITS, length=2, word_order="little") == (1, 0)
    decoded = from_registers((0b101, 0x8000), "bits")
    assert isinstance(decoded, tuple)
    assert decoded[:3] == (True, False, True)
    assert decoded[31] is True
    assert sum(decoded) == 3
    assert len(decoded) == 32


def test_register_counts() -> None:
    assert [register_count(t) for t in ("int16", "uint16", "int32", "uint32", "float32")] == [1, 1, 2, 2, 2]
    assert [register_count(t) for t in ("int64", "uint64", "float64")] == [4, 4, 4]
    assert register_count("string", 5) == 5
    assert register_count(DataType.BITS, 2) == 2
    for data_type in ("string", "bits"):
        for length in (None, 0, -1):
            with pytest.raises(LocalProtocolError, match="length"):
                register_count(data_type, length)


@pytest.mark.parametrize(
    ("value", "data_type", "options", "message"),
    [
        (70000, "uint16", {}, "does not fit"),
        (-1, "uint32", {}, "does not fit"),
        (1 << 63, "int64", {}, "does not fit"),
        (1e39, "float32", {}, "does not fit"),
        (1.5, "int16", {}, "integer"),
        (True, "int16", {}, "integer"),
        ("1", "int32", {}, "integer"),
        (True, "float32", {}, "number"),
        ("1.0", "float64", {}, "number"),
        (5, "string", {"length": 2}, "str"),
        ("ABCDE", "string", {"length": 2}, "bytes"),
        ("x", "string", {}, "length"),
        ("\ud800", "string", {"length": 2}, "UTF-8"),
        ([True] * 17, "bits", {"length": 1}, "do not fit"),
        (5, "bits", {"length": 1}, "booleans"),
        ("on", "bits", {"length": 1}, "booleans"),
        (1, "int128", {}, "unknown data type"),
        (1, "int16", {"byte_order": "middle"}, "byte_order"),
        (1, "int16", {"word_order": "BIG"}, "word_order"),
    ],
)
def test_to_registers_refuses_what_does_not_fit(
    value: object, data_type: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        to_registers(value, data_type, **options)  # type: ignore[arg-type]


def test_from_registers_refuses_the_wrong_count() -> None:
    with pytest.raises(LocalProtocolError, match="takes 2 registers"):
        from_registers((1,), "float32")
    with pytest.raises(LocalProtocolError, match="at least one"):
        from_registers((), "string")
    with pytest.raises(LocalProtocolError, match="unknown data type"):
        from_registers((1,), "word")
    with pytest.raises(LocalProtocolError, match="byte_order"):
        from_registers((1,), "int16", byte_order="native")  # type: ignore[arg-type]


def test_special_floats_survive() -> None:
    assert math.isnan(from_registers(to_registers(math.nan, "float32"), "float32"))  # type: ignore[arg-type]
    assert from_registers(to_registers(-math.inf, "float64"), "float64") == -math.inf
    # Values that round to the largest float32 are not an overflow.
    largest = struct.unpack(">f", b"\x7f\x7f\xff\xff")[0]
    assert from_registers(to_registers(largest, "float32"), "float32") == largest


order = st.sampled_from(ORDERS)


@given(st.integers(-(1 << 63), (1 << 63) - 1), order)
def test_int64_round_trip(value: int, orders: tuple[str, str]) -> None:
    byte_order, word_order = orders
    registers = to_registers(value, "int64", byte_order=byte_order, word_order=word_order)  # type: ignore[arg-type]
    assert all(0 <= register <= 0xFFFF for register in registers)
    assert from_registers(registers, "int64", byte_order=byte_order, word_order=word_order) == value  # type: ignore[arg-type]


@given(st.sampled_from(["int16", "uint16", "int32", "uint32", "uint64"]), st.data(), order)
def test_integer_round_trip(data_type: str, data: st.DataObject, orders: tuple[str, str]) -> None:
    bits = {"int16": 16, "uint16": 16, "int32": 32, "uint32": 32, "uint64": 64}[data_type]
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if data_type.startswith("int") else (0, (1 << bits) - 1)
    value = data.draw(st.integers(low, high))
    byte_order, word_order = orders
    registers = to_registers(value, data_type, byte_order=byte_order, word_order=word_order)  # type: ignore[arg-type]
    assert len(registers) == register_count(data_type)
    assert from_registers(registers, data_type, byte_order=byte_order, word_order=word_order) == value  # type: ignore[arg-type]


@given(st.floats(allow_nan=False, width=32), st.floats(allow_nan=False), order)
def test_float_round_trip(single: float, double: float, orders: tuple[str, str]) -> None:
    byte_order, word_order = orders
    for value, data_type in ((single, "float32"), (double, "float64")):
        registers = to_registers(value, data_type, byte_order=byte_order, word_order=word_order)  # type: ignore[arg-type]
        assert from_registers(registers, data_type, byte_order=byte_order, word_order=word_order) == value  # type: ignore[arg-type]


@given(
    st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=20),
    st.integers(0, 3),
    order,
)
def test_string_round_trip(text: str, extra: int, orders: tuple[str, str]) -> None:
    length = max(1, (len(text.encode()) + 1) // 2 + extra)
    byte_order, word_order = orders
    registers = to_registers(text, "string", length=length, byte_order=byte_order, word_order=word_order)  # type: ignore[arg-type]
    assert len(registers) == length
    assert from_registers(registers, "string", byte_order=byte_order, word_order=word_order) == text  # type: ignore[arg-type]


@given(st.lists(st.booleans(), min_size=1, max_size=64), order)
def test_bits_round_trip(bits: list[bool], orders: tuple[str, str]) -> None:
    length = (len(bits) + 15) // 16
    byte_order, word_order = orders
    registers = to_registers(bits, "bits", length=length, byte_order=byte_order, word_order=word_order)  # type: ignore[arg-type]
    decoded = from_registers(registers, "bits", byte_order=byte_order, word_order=word_order)  # type: ignore[arg-type]
    assert decoded == tuple(bits) + (False,) * (16 * length - len(bits))


def test_typed_helpers_on_a_register_table() -> None:
    table = RegisterTable.zeros(10)
    table.set_value(0, 3.5, "float32", word_order="little")
    assert table.read(0, 2) == (0x0000, 0x4060)
    assert table.get_value(0, "float32", word_order="little") == 3.5
    table.set_value(2, -5, DataType.INT32)
    assert table.get_value(2, DataType.INT32) == -5
    assert table.get_value(2, DataType.UINT32) == 0xFFFFFFFB
    table.set_value(4, "hi!", "string", length=2)
    assert table.get_value(4, "string", length=2) == "hi!"
    table.set_value(6, [True, True], "bits", length=1)
    assert table[6] == 3
    with pytest.raises(ModbusExceptionError):
        table.set_value(8, 1, "int64")  # 8..11 runs past the table: nothing written
    assert table.read(8, 2) == (0, 0)
    table.set_read_only(8, 2)
    table.set_value(8, 7, "uint32")  # application writes go through read-only ranges
    assert table.get_value(8, "uint32") == 7
    with pytest.raises(ModbusExceptionError):
        table.set_value(8, 8, "uint32", force=False)
    assert table.get_value(8, "uint32") == 7
