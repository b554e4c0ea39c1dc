"""CRC-16/MODBUS (RTU) and LRC (ASCII) checks.

The CRC runs on a 65536-entry table so that Python does one lookup per two
bytes instead of eight shifts per byte: about ten times faster than a bitwise
loop, which matters because every RTU frame in both directions pays for it.
The table is an array of 16-bit words (128 kB, which stays in the processor's
cache; a list of int objects takes 2.5 MB and makes every lookup of a new
frame a cache miss), built on first use, not at import, so that TCP-only
users never pay for it (a few milliseconds).

Long frames (a 125-register answer is 255 bytes) take another way, twice
as fast again: the CRC is linear in the message's bits, so each of its 16
bits is the parity of the message ANDed with a fixed mask, which Python
computes over the whole frame at once, in C (see :func:`long_crc`).
"""

from __future__ import annotations

import functools
import struct
import sys
from collections.abc import Callable, Sequence

__all__ = ["crc16", "lrc"]

_POLYNOMIAL = 0xA001  # 0x8005 bit-reversed: the CRC is computed LSB first
_CHUNK = 256  # bytes per struct call; an RTU frame is at most 256 bytes
LONG_FRAME = 128  # from this many bytes on (up to _CHUNK), long_crc() is the faster way

# "<nH" reads n little-endian words whatever the host's byte order: feeding
# the low byte first is what a reflected CRC does.
CRC_WORDS = tuple(struct.Struct(f"<{n}H") for n in range(_CHUNK // 2 + 1))


@functools.cache
def crc_tables() -> tuple[Sequence[int], Sequence[int]]:
    """The byte table and the two-byte table of the CRC (built once per process)."""
    byte_table = []
    for value in range(256):
        for _ in range(8):
            value = (value >> 1) ^ _POLYNOMIAL if value & 1 else value >> 1
        byte_table.append(value)
    # Feeding two bytes into register r: with x = r ^ (b0 | b1 << 8) the new
    # register depends on x alone.  With c, k the low and high bytes of
    # byte_table[b0'] (b0' = x & 0xFF), it is k ^ byte_table[(x >> 8) ^ c]:
    # for each b0' the 256 entries x = b0' + 256 * i are one permutation of
    # byte_table, built here a whole row at a time (bytes.translate, and
    # integer XOR to apply c and k to 256 bytes at once).
    low = bytes(value & 0xFF for value in byte_table)
    high = bytes(value >> 8 for value in byte_table)
    identity = int.from_bytes(bytes(range(256)), "little")
    ones = int.from_bytes(b"\x01" * 256, "little")
    words = bytearray(2 * 65536)
    first = 0 if sys.byteorder == "little" else 1  # where the low byte of a word lies
    for b0, value in enumerate(byte_table):
        index = (identity ^ (value & 0xFF) * ones).to_bytes(256, "little")
        row_low = int.from_bytes(index.translate(low), "little") ^ (value >> 8) * ones
        words[2 * b0 + first :: 512] = row_low.to_bytes(256, "little")
        words[2 * b0 + 1 - first :: 512] = index.translate(high)
    return byte_table, memoryview(words).cast("H")


@functools.cache
def long_crc() -> Callable[[bytes | bytearray | memoryview], int]:
    """The CRC of LONG_FRAME to 256 bytes, as 16 parities (built once per process).

    Without its initial value the CRC is linear in the message's bits, and
    what one bit adds depends only on how many bits follow it.  With the
    message shifted to end at bit 2047 of one integer, CRC bit j is the
    parity of the bits whose contribution has bit j set: one AND with a
    fixed mask and one bit count, each done in C over the whole frame.  The
    initial value 0xFFFF adds a constant that depends on the length only.
    """
    byte_table, _ = crc_tables()
    bits = 8 * _CHUNK
    contributions = []  # of a 1 followed by k zero bits, for k = 0..bits-1
    register = 1
    for _ in range(bits):
        register = (register >> 1) ^ _POLYNOMIAL if register & 1 else register >> 1
        contributions.append(register)
    masks = [0] * 16
    for position, contribution in enumerate(reversed(contributions)):
        for bit in range(16):
            if contribution >> bit & 1:
                masks[bit] |= 1 << position
    initial = [0xFFFF]  # the register after 0xFFFF and n zero bytes
    for _ in range(_CHUNK):
        register = initial[-1]
        initial.append((register >> 8) ^ byte_table[register & 0xFF])
    m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15 = masks

    def crc(data: bytes | bytearray | memoryview) -> int:
        size = len(data)
        m = int.from_bytes(data, "little") << (bits - 8 * size)
        return initial[size] ^ (
            ((m & m0).bit_count() & 1)
            | ((m & m1).bit_count() & 1) << 1
            | ((m & m2).bit_count() & 1) << 2
            | ((m & m3).bit_count() & 1) << 3
            | ((m & m4).bit_count() & 1) << 4
            | ((m & m5).bit_count() & 1) << 5
            | ((m & m6).bit_count() & 1) << 6
            | ((m & m7).bit_count() & 1) << 7
            | ((m & m8).bit_count() & 1) << 8
            | ((m & m9).bit_count() & 1) << 9
            | ((m & m10).bit_count() & 1) << 10
            | ((m & m11).bit_count() & 1) << 11
            | ((m & m12).bit_count() & 1) << 12
            | ((m & m13).bit_count() & 1) << 13
            | ((m & m14).bit_count() & 1) << 14
            | ((m & m15).bit_count() & 1) << 15
        )

    return crc


def crc16(data: bytes | bytearray | memoryview) -> int:
    """Return the Modbus CRC-16 of *data* as an integer.

    On the wire the CRC is sent low byte first, so
    ``crc16(frame).to_bytes(2, "little")`` is what follows *frame*, and the
    CRC of a whole valid frame (its two CRC bytes included) is 0.
    """
    data = memoryview(data).cast("B")
    if LONG_FRAME <= len(data) <= _CHUNK:
        return long_crc()(data)
    byte_table, word_table = crc_tables()
    crc = 0xFFFF
    for start in range(0, len(data), _CHUNK):
        crc = crc_update(crc, data, start, min(len(data) - start, _CHUNK), byte_table, word_table)
    return crc


def crc_update(
    crc: int,
    data: bytes | bytearray | memoryview,
    start: int,
    size: int,
    byte_table: Sequence[int],
    word_table: Sequence[int],
) -> int:
    """Feed ``data[start:start + size]`` (at most 256 bytes) into the CRC register *crc*."""
    for word in CRC_WORDS[size >> 1].unpack_from(data, start):
        crc = word_table[crc ^ word]
    if size & 1:
        crc = (crc >> 8) ^ byte_table[(crc ^ data[start + size - 1]) & 0xFF]
    return crc


def lrc(data: bytes | bytearray | memoryview) -> int:
    """Return the Modbus ASCII LRC: the two's complement of the byte sum."""
    return -sum(memoryview(data).cast("B")) & 0xFF
