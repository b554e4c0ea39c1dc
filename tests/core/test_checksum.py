"""CRC-16/MODBUS and LRC against the specification's vectors and a bitwise reference."""

from __future__ import annotations

import array
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modbus_core import (
    DropCause,
    FrameDropped,
    Request,
    RtuFramer,
    ServerConnection,
    WriteMultipleRegisters,
    crc16,
    lrc,
)

from .cases import reference_crc, reference_lrc


@pytest.mark.parametrize(
    ("frame", "crc"),
    [
        ("01030000000A", "C5CD"),  # the well-known RTU request
        ("1103006B0003", "7687"),  # Modbus over Serial Line, CRC generation example
        ("", "FFFF"),
        ("01", "7E80"),
    ],
)
def test_specification_vectors(frame: str, crc: str) -> None:
    assert crc16(bytes.fromhex(frame)).to_bytes(2, "little") == bytes.fromhex(crc)


def test_a_whole_frame_checks_to_zero() -> None:
    frame = bytes.fromhex("01030000000AC5CD")
    assert crc16(frame) == 0


def test_lrc_specification_vector() -> None:
    assert lrc(bytes.fromhex("1103006B0003")) == 0x7E
    assert lrc(b"") == 0


@pytest.mark.parametrize("size", [0, 1, 2, 31, 32, 33, 127, 128, 129, 255, 256, 257, 1000])
def test_every_length_matches_the_reference(size: int) -> None:
    data = bytes((index * 37 + 11) & 0xFF for index in range(size))
    assert crc16(data).to_bytes(2, "little") == reference_crc(data)


def test_every_frame_length_matches_the_reference() -> None:
    # Short and long frames take different ways (a table; parities over the whole frame).
    generator = random.Random(1)
    for size in range(300):
        for data in (generator.randbytes(size), b"\xff" * size, bytes(size)):
            assert crc16(data).to_bytes(2, "little") == reference_crc(data), size


@pytest.mark.parametrize("pdu_size", [1, 126, 127, 200, 253])
def test_rtu_frames_carry_the_reference_crc(pdu_size: int) -> None:
    pdu = bytes((3, *((index * 7) & 0xFF for index in range(pdu_size - 1))))
    frame = RtuFramer(19200).encode(17, 0, pdu)
    assert frame == bytes((17,)) + pdu + reference_crc(bytes((17,)) + pdu)


def test_buffers_of_any_kind() -> None:
    data = bytes(range(50))
    expected = crc16(data)
    assert crc16(bytearray(data)) == expected
    assert crc16(memoryview(data)) == expected
    assert crc16(memoryview(data)[10:]) == crc16(data[10:])
    words = array.array("H", [0x0201, 0x0403])  # a buffer of another item size
    assert crc16(memoryview(words)) == crc16(words.tobytes())
    assert lrc(bytearray(data)) == lrc(data) == lrc(memoryview(data))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_crc_matches_the_bitwise_reference(data: bytes) -> None:
    assert crc16(data).to_bytes(2, "little") == reference_crc(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_lrc_matches_the_reference(data: bytes) -> None:
    assert lrc(data) == reference_lrc(data)
    assert (sum(data) + lrc(data)) & 0xFF == 0


def test_long_rtu_frames_are_checked_when_received() -> None:
    # A 209-byte request is checked by the long-frame way: good passes, one flipped bit does not.
    request = WriteMultipleRegisters(0, tuple(range(100)))
    frame = RtuFramer(19200).encode(1, 0, request.encode())
    good = ServerConnection(RtuFramer(19200))
    good.receive_data(frame, 0.0)
    assert good.next_event() == Request(request, 1, 0)
    bad = ServerConnection(RtuFramer(19200))
    bad.receive_data(frame[:-1] + bytes((frame[-1] ^ 1,)), 0.0)
    event = bad.next_event()
    assert isinstance(event, FrameDropped)
    assert event.cause is DropCause.CHECKSUM
