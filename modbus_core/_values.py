"""Typed values in 16-bit registers: integers, floats, strings and bit fields.

Modbus only knows 16-bit registers; devices put wider values across several
of them, in an order the specification does not fix.  *byte_order* is the
order of the two bytes inside each register and *word_order* the order of
the registers; ``"big"`` for both is the Modbus convention (ABCD), the
other three combinations are CDAB (word_order="little"), BADC
(byte_order="little") and DCBA (both little).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence
from typing import Literal, TypeAlias

from ._errors import LocalProtocolError

__all__ = ["DataType", "from_registers", "register_count", "to_registers"]

Order: TypeAlias = Literal["big", "little"]
Value: TypeAlias = "int | float | str | tuple[bool, ...]"
ValueInput: TypeAlias = "int | float | str | Sequence[bool]"


class DataType(enum.StrEnum):
    """How a value is stored in registers."""

    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"
    BITS = "bits"


_FORMATS: dict[DataType, tuple[str, int]] = {
    DataType.INT16: ("h", 1),
    DataType.UINT16: ("H", 1),
    DataType.INT32: ("i", 2),
    DataType.UINT32: ("I", 2),
    DataType.INT64: ("q", 4),
    DataType.UINT64: ("Q", 4),
    DataType.FLOAT32: ("f", 2),
    DataType.FLOAT64: ("d", 4),
}


def _data_type(data_type: DataType | str) -> DataType:
    try:
        return DataType(data_type)
    except ValueError:
        choices = ", ".join(member.value for member in DataType)
        raise LocalProtocolError(f"unknown data type {data_type!r}; expected one of {choices}") from None


def _check_order(name: str, order: str) -> None:
    if order not in ("big", "little"):
        raise LocalProtocolError(f"{name} must be 'big' or 'little', got {order!r}")


def register_count(data_type: DataType | str, length: int | None = None) -> int:
    """How many registers a value of *data_type* takes.

    *length* is required for strings (in registers: two characters each)
    and bit fields (in registers: sixteen bits each).
    """
    data_type = _data_type(data_type)
    if data_type in _FORMATS:
        return _FORMATS[data_type][1]
    if length is None or length < 1:
        raise LocalProtocolError(f"{data_type.value} needs a length of at least one register")
    return length


def _words_from_bytes(raw: bytes, byte_order: Order, word_order: Order) -> tuple[int, ...]:
    words = [raw[i : i + 2] for i in range(0, len(raw), 2)]
    if word_order == "little":
        words.reverse()
    return tuple(int.from_bytes(word, byte_order) for word in words)


def _bytes_from_words(registers: Sequence[int], byte_order: Order, word_order: Order) -> bytes:
    words = list(registers)
    if word_order == "little":
        words.reverse()
    return b"".join(word.to_bytes(2, byte_order) for word in words)


def to_registers(
    value: ValueInput,
    data_type: DataType | str,
    *,
    byte_order: Order = "big",
    word_order: Order = "big",
    length: int | None = None,
) -> tuple[int, ...]:
    """Encode *value* as registers.

    Integers must fit the type; floats are IEEE 754; strings are UTF-8,
    padded with NUL to *length* registers; bit fields are sequences of
    booleans, bit 0 of the first register first.
    """
    data_type = _data_type(data_type)
    _check_order("byte_order", byte_order)
    _check_order("word_order", word_order)
    if data_type in _FORMATS:
        code, _ = _FORMATS[data_type]
        if code in "fd":
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise LocalProtocolError(f"{data_type.value} takes a number, got {value!r}")
        elif not isinstance(value, int) or isinstance(value, bool):
            raise LocalProtocolError(f"{data_type.value} takes an integer, got {value!r}")
        try:
            raw = struct.pack(">" + code, value)
        except (struct.error, OverflowError) as error:
            raise LocalProtocolError(f"{value!r} does not fit in {data_type.value}: {error}") from None
        return _words_from_bytes(raw, byte_order, word_order)
    count = register_count(data_type, length)
    if data_type is DataType.STRING:
        if not isinstance(value, str):
            raise LocalProtocolError(f"string takes a str, got {value!r}")
        try:
            raw = value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise LocalProtocolError(f"{value!r} is not encodable as UTF-8: {error.reason}") from None
        if len(raw) > 2 * count:
            raise LocalProtocolError(f"{value!r} takes {len(raw)} bytes, more than {count} registers hold")
        return _words_from_bytes(raw.ljust(2 * count, b"\x00"), byte_order, word_order)
    if isinstance(value, str | bytes | int | float):
        raise LocalProtocolError(f"bits takes a sequence of booleans, got {value!r}")
    bits = [bool(bit) for bit in value]
    if len(bits) > 16 * count:
        raise LocalProtocolError(f"{len(bits)} bits do not fit in {count} registers")
    bits += [False] * (16 * count - len(bits))
    words = tuple(sum(1 << i for i in range(16) if bits[16 * w + i]) for w in range(count))
    raw = b"".join(word.to_bytes(2, "big") for word in words)
    return _words_from_bytes(raw, byte_order, word_order)


def from_registers(
    registers: Sequence[int],
    data_type: DataType | str,
    *,
    byte_order: Order = "big",
    word_order: Order = "big",
) -> Value:
    """Decode registers written by :func:`to_registers` (the inverse)."""
    data_type = _data_type(data_type)
    _check_order("byte_order", byte_order)
    _check_order("word_order", word_order)
    if data_type in _FORMATS:
        code, count = _FORMATS[data_type]
        if len(registers) != count:
            raise LocalProtocolError(f"{data_type.value} takes {count} registers, got {len(registers)}")
        value: int | float = struct.unpack(">" + code, _bytes_from_words(registers, byte_order, word_order))[0]
        return value
    if not registers:
        raise LocalProtocolError(f"{data_type.value} needs at least one register")
    raw = _bytes_from_words(registers, byte_order, word_order)
    if data_type is DataType.STRING:
        return raw.rstrip(b"\x00").decode("utf-8", errors="replace")
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return tuple(bool(word >> i & 1) for word in words for i in range(16))
