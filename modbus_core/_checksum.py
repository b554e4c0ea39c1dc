"""CRC-16/MODBUS (RTU) and LRC (ASCII) checks.

The CRC runs on a 65536-entry table so that Python does one lookup per two
bytes instead of eight shifts per byte: about ten times faster than a bitwise
loop, which matters because every RTU frame in both directions pays for it.
The table is a constant built on first use, not at import, so TCP-only users
never pay its 2 MB.
"""

from __future__ import annotations

import functools
import struct
import sys

__all__ = ["crc16", "lrc"]

_POLYNOMIAL = 0xA001  # 0x8005 bit-reversed: the CRC is computed LSB first


@functools.cache
def _tables() -> tuple[list[int], list[int]]:
    byte_table = []
    for value in range(256):
        for _ in range(8):
            value = (value >> 1) ^ _POLYNOMIAL if value & 1 else value >> 1
        byte_table.append(value)
    t8 = byte_table
    # Feeding two bytes b0, b1 into register r: with x = r ^ (b0 | b1 << 8)
    # the new register depends on x alone, so one table covers both steps.
    word_table = [(t8[x & 0xFF] >> 8) ^ t8[((x >> 8) ^ t8[x & 0xFF]) & 0xFF] for x in range(65536)]
    return byte_table, word_table


_LITTLE_ENDIAN = sys.byteorder == "little"
_SMALL = 32
_LITTLE_WORDS = tuple(struct.Struct(f"<{n}H") for n in range(_SMALL // 2 + 1))


def crc16(data: bytes | bytearray | memoryview) -> int:
    """Return the Modbus CRC-16 of *data* as an integer.

    On the wire the CRC is sent low byte first, so
    ``crc16(frame).to_bytes(2, "little")`` is what follows *frame*, and the
    CRC of a whole valid frame (its two CRC bytes included) is 0.
    """
    byte_table, word_table = _tables()
    return _crc16(data, byte_table, word_table)


def _crc16(data: bytes | bytearray | memoryview, byte_table: list[int], word_table: list[int]) -> int:
    size = len(data)
    crc = 0xFFFF
    if size <= _SMALL:
        # Short frames (requests) are most of the traffic: struct is cheaper
        # than setting up a memoryview.
        for word in _LITTLE_WORDS[size >> 1].unpack_from(data):
            crc = word_table[crc ^ word]
    else:
        view = memoryview(data)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
            size = len(view)
        words = view[: size & ~1].cast("H")
        if _LITTLE_ENDIAN:
            for word in words:
                crc = word_table[crc ^ word]
        else:  # pragma: no cover - exercised only on big-endian hosts
            for word in words:
                crc = word_table[crc ^ (((word & 0xFF) << 8) | (word >> 8))]
    if size & 1:
        crc = (crc >> 8) ^ byte_table[(crc ^ data[size - 1]) & 0xFF]
    return crc


def lrc(data: bytes | bytearray | memoryview) -> int:
    """Return the Modbus ASCII LRC: the two's complement of the byte sum."""
    return -sum(data) & 0xFF
