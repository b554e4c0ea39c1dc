"""Write the seed corpus of every fuzz target into ``fuzz/corpus/<target>/``.

    .venv/bin/python fuzz/make_corpus.py

Seeds are built with modbus_core's own encoders: a valid frame of every
function code for each framing, then the tricky cases (frames split over
reads, garbage before frames, MBAP protocol ids other than 0 and bad
lengths, bad CRC and LRC, other units' traffic, timing that breaks t1.5 and
t3.5, delimiter changes).  Each file is named ``seed-<what it is>``; files
the fuzzers added (named by their hash) are left alone.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from fuzzsupport import op_bytes, serial_delay

from modbus_core import (
    Diagnostics,
    DiagnosticsResponse,
    DiagnosticSubFunction,
    ExceptionResponse,
    FileRecord,
    FileRecordReference,
    GetCommEventCounter,
    GetCommEventCounterResponse,
    GetCommEventLog,
    GetCommEventLogResponse,
    MaskWriteRegister,
    MaskWriteRegisterResponse,
    Pdu,
    RawPdu,
    ReadCoils,
    ReadCoilsResponse,
    ReadDeviceIdentification,
    ReadDeviceIdentificationResponse,
    ReadDiscreteInputs,
    ReadDiscreteInputsResponse,
    ReadExceptionStatus,
    ReadExceptionStatusResponse,
    ReadFifoQueue,
    ReadFifoQueueResponse,
    ReadFileRecord,
    ReadFileRecordResponse,
    ReadHoldingRegisters,
    ReadHoldingRegistersResponse,
    ReadInputRegisters,
    ReadInputRegistersResponse,
    ReadWriteMultipleRegisters,
    ReadWriteMultipleRegistersResponse,
    ReportServerId,
    ReportServerIdResponse,
    WriteFileRecord,
    WriteFileRecordResponse,
    WriteMultipleCoils,
    WriteMultipleCoilsResponse,
    WriteMultipleRegisters,
    WriteMultipleRegistersResponse,
    WriteSingleCoil,
    WriteSingleCoilResponse,
    WriteSingleRegister,
    WriteSingleRegisterResponse,
    crc16,
    lrc,
)

CORPUS = Path(__file__).resolve().parent / "corpus"

# Delay indices of fuzzsupport.serial_delay, by what they mean.
CONTIGUOUS = 0  # the next byte follows at once
GAP_2_CHARS = 6  # more than t1.5: breaks a frame under strict timing
GAP_4_CHARS = 12  # more than t3.5: separates frames
GAP_TOLERANT = 26  # 20.1 ms: ends a frame even with tolerant timing
GAP_SECONDS = 30  # 1.0001 s: past the ASCII inter-character timeout
assert serial_delay(GAP_2_CHARS, 1.0) == 2.0
assert serial_delay(GAP_4_CHARS, 1.0) == 4.0
assert serial_delay(GAP_TOLERANT, 1.0) == 0.0201
assert serial_delay(GAP_SECONDS, 1.0) == 1.0001

REQUESTS: list[tuple[str, Pdu]] = [
    ("fc01-read-coils", ReadCoils(0, 16)),
    ("fc01-read-2000-coils", ReadCoils(100, 2000)),
    ("fc02-read-discrete-inputs", ReadDiscreteInputs(0, 10)),
    ("fc03-read-holding", ReadHoldingRegisters(0, 10)),
    ("fc03-read-across-blocks", ReadHoldingRegisters(205, 10)),
    ("fc03-read-hole", ReadHoldingRegisters(130, 2)),
    ("fc04-read-input", ReadInputRegisters(0, 50)),
    ("fc05-write-coil", WriteSingleCoil(0, True)),
    ("fc05-write-read-only-coil", WriteSingleCoil(5, True)),
    ("fc06-write-register", WriteSingleRegister(1, 0x1234)),
    ("fc06-write-read-only-register", WriteSingleRegister(100, 1)),
    ("fc07-read-exception-status", ReadExceptionStatus()),
    ("fc08-00-echo", Diagnostics(DiagnosticSubFunction.RETURN_QUERY_DATA, b"\x12\x34\x56")),
    ("fc08-01-restart", Diagnostics(DiagnosticSubFunction.RESTART_COMMUNICATIONS_OPTION, b"\xff\x00")),
    ("fc08-02-diagnostic-register", Diagnostics(DiagnosticSubFunction.RETURN_DIAGNOSTIC_REGISTER)),
    ("fc08-03-delimiter", Diagnostics(DiagnosticSubFunction.CHANGE_ASCII_INPUT_DELIMITER, b"\x21\x00")),
    ("fc08-04-listen-only", Diagnostics(DiagnosticSubFunction.FORCE_LISTEN_ONLY_MODE)),
    ("fc08-0a-clear", Diagnostics(DiagnosticSubFunction.CLEAR_COUNTERS_AND_DIAGNOSTIC_REGISTER)),
    ("fc08-0b-bus-messages", Diagnostics(DiagnosticSubFunction.RETURN_BUS_MESSAGE_COUNT)),
    ("fc08-0c-bus-errors", Diagnostics(DiagnosticSubFunction.RETURN_BUS_COMMUNICATION_ERROR_COUNT)),
    ("fc08-0d-exceptions", Diagnostics(DiagnosticSubFunction.RETURN_BUS_EXCEPTION_ERROR_COUNT)),
    ("fc08-0e-server-messages", Diagnostics(DiagnosticSubFunction.RETURN_SERVER_MESSAGE_COUNT)),
    ("fc08-0f-no-response", Diagnostics(DiagnosticSubFunction.RETURN_SERVER_NO_RESPONSE_COUNT)),
    ("fc08-10-nak", Diagnostics(DiagnosticSubFunction.RETURN_SERVER_NAK_COUNT)),
    ("fc08-11-busy", Diagnostics(DiagnosticSubFunction.RETURN_SERVER_BUSY_COUNT)),
    ("fc08-12-overrun", Diagnostics(DiagnosticSubFunction.RETURN_BUS_CHARACTER_OVERRUN_COUNT)),
    ("fc08-14-clear-overrun", Diagnostics(DiagnosticSubFunction.CLEAR_OVERRUN_COUNTER_AND_FLAG)),
    ("fc11-event-counter", GetCommEventCounter()),
    ("fc12-event-log", GetCommEventLog()),
    ("fc15-write-coils", WriteMultipleCoils(0, (True, False, True, True, False, False, True, False, True))),
    ("fc16-write-registers", WriteMultipleRegisters(0, (1, 2, 3))),
    ("fc16-write-read-only", WriteMultipleRegisters(98, (1, 2, 3))),
    ("fc17-report-server-id", ReportServerId()),
    (
        "fc20-read-file",
        ReadFileRecord((FileRecordReference(1, 0, 4), FileRecordReference(2, 1, 4), FileRecordReference(9, 0, 1))),
    ),
    ("fc20-read-file-whole", ReadFileRecord((FileRecordReference(2, 0, 5),))),
    ("fc21-write-file", WriteFileRecord((FileRecord(1, 10, (1, 2, 3)), FileRecord(0xFFFF, 15, (7,))))),
    ("fc22-mask-write", MaskWriteRegister(0, 0xF2, 0x25)),
    ("fc23-read-write", ReadWriteMultipleRegisters(0, 5, 3, (0xAAAA, 0xBBBB))),
    ("fc23-read-write-hole", ReadWriteMultipleRegisters(125, 10, 0, (1,))),
    ("fc24-fifo", ReadFifoQueue(0)),
    ("fc24-fifo-full", ReadFifoQueue(20)),
    ("fc24-fifo-overlong", ReadFifoQueue(30)),
    ("fc43-basic", ReadDeviceIdentification(1, 0)),
    ("fc43-regular", ReadDeviceIdentification(2, 0)),
    ("fc43-extended", ReadDeviceIdentification(3, 0)),
    ("fc43-extended-from-80", ReadDeviceIdentification(3, 0x80)),
    ("fc43-one-object", ReadDeviceIdentification(4, 0x90)),
    ("fc43-missing-object", ReadDeviceIdentification(4, 0x50)),
    ("fc43-13-canopen", RawPdu(0x2B, b"\x0d\x00\x01")),
    ("fc65-custom-fixed", RawPdu(0x41, b"\x01\x02\x03\x04")),
    ("fc100-custom-counted", RawPdu(0x64, b"\x02\xaa\xbb")),
    ("fc100-custom-fails", RawPdu(0x64, b"\x01\x04")),
    ("fc101-custom-silence", RawPdu(0x65, b"\x01\x02\x03")),
]

MALFORMED_REQUESTS: list[tuple[str, bytes]] = [
    ("malformed-fc03-quantity-0", bytes.fromhex("0300000000")),
    ("malformed-fc03-short", bytes.fromhex("030000")),
    ("malformed-fc05-value", bytes.fromhex("0500001234")),
    ("malformed-fc08-unknown-sub", bytes.fromhex("0800990000")),
    ("malformed-fc15-byte-count", bytes.fromhex("0f0000000a0100")),
    ("malformed-fc16-byte-count", bytes.fromhex("1000000002030001")),
    ("malformed-fc20-reference-type", bytes.fromhex("1407050001000000010001")),
    ("malformed-fc43-read-code", bytes.fromhex("2b0e0500")),
    ("malformed-code-0x81", bytes.fromhex("810001")),
]

RESPONSES: list[tuple[str, Pdu]] = [
    ("fc01", ReadCoilsResponse((True, False) * 8)),
    ("fc02", ReadDiscreteInputsResponse((True,) * 10)),
    ("fc03", ReadHoldingRegistersResponse((1, 2, 3))),
    ("fc03-125", ReadHoldingRegistersResponse(tuple(range(125)))),
    ("fc04", ReadInputRegistersResponse((0xFFFF,))),
    ("fc05", WriteSingleCoilResponse(0, True)),
    ("fc06", WriteSingleRegisterResponse(1, 0x1234)),
    ("fc07", ReadExceptionStatusResponse(0x5A)),
    ("fc08-00", DiagnosticsResponse(0, b"\x12\x34\x56")),
    ("fc08-0b", DiagnosticsResponse(0x0B, b"\x00\x05")),
    ("fc11", GetCommEventCounterResponse(0, 3)),
    ("fc12", GetCommEventLogResponse(0, 3, 5, b"\x20\x00\x40")),
    ("fc15", WriteMultipleCoilsResponse(0, 9)),
    ("fc16", WriteMultipleRegistersResponse(0, 3)),
    ("fc17", ReportServerIdResponse(0x42, True, b"modbuskit")),
    ("fc20", ReadFileRecordResponse(((1, 2, 3, 4), (5,)))),
    ("fc21", WriteFileRecordResponse((FileRecord(1, 10, (1, 2, 3)),))),
    ("fc22", MaskWriteRegisterResponse(0, 0xF2, 0x25)),
    ("fc23", ReadWriteMultipleRegistersResponse((1, 2))),
    ("fc24", ReadFifoQueueResponse((1, 2, 3))),
    ("fc24-empty", ReadFifoQueueResponse(())),
    ("fc43", ReadDeviceIdentificationResponse(1, 0x81, False, 0, ((0, b"vendor"), (1, b"FZ-1"), (2, b"1.0")))),
    ("fc43-more", ReadDeviceIdentificationResponse(3, 0x83, True, 0x80, ((6, b"app"),))),
    ("exception-03-02", ExceptionResponse(3, 2)),
    ("exception-43-01", ExceptionResponse(0x2B, 1)),
    ("fc65-custom", RawPdu(0x41, b"\x04\x03\x02\x01")),
]

# (request, answer) pairs for the client: what unit 1 answers to each.
EXCHANGES: list[tuple[str, Pdu, Pdu]] = [
    ("fc01", ReadCoils(0, 10), ReadCoilsResponse((True,) * 10)),
    ("fc02", ReadDiscreteInputs(0, 3), ReadDiscreteInputsResponse((False, True, False))),
    ("fc03", ReadHoldingRegisters(0, 3), ReadHoldingRegistersResponse((1, 2, 3))),
    ("fc04", ReadInputRegisters(0, 1), ReadInputRegistersResponse((7,))),
    ("fc05", WriteSingleCoil(0, True), WriteSingleCoilResponse(0, True)),
    ("fc06", WriteSingleRegister(1, 2), WriteSingleRegisterResponse(1, 2)),
    ("fc07", ReadExceptionStatus(), ReadExceptionStatusResponse(0x5A)),
    ("fc08-00", Diagnostics(0, b"\x12\x34"), DiagnosticsResponse(0, b"\x12\x34")),
    ("fc08-0b", Diagnostics(0x0B), DiagnosticsResponse(0x0B, b"\x00\x05")),
    ("fc11", GetCommEventCounter(), GetCommEventCounterResponse(0, 3)),
    ("fc12", GetCommEventLog(), GetCommEventLogResponse(0, 3, 5, b"\x20")),
    ("fc15", WriteMultipleCoils(0, (True,) * 9), WriteMultipleCoilsResponse(0, 9)),
    ("fc16", WriteMultipleRegisters(0, (1, 2)), WriteMultipleRegistersResponse(0, 2)),
    ("fc17", ReportServerId(), ReportServerIdResponse(0x42, True, b"abc")),
    ("fc20", ReadFileRecord((FileRecordReference(1, 0, 2),)), ReadFileRecordResponse(((1, 2),))),
    ("fc21", WriteFileRecord((FileRecord(1, 0, (1,)),)), WriteFileRecordResponse((FileRecord(1, 0, (1,)),))),
    ("fc22", MaskWriteRegister(0, 1, 2), MaskWriteRegisterResponse(0, 1, 2)),
    ("fc23", ReadWriteMultipleRegisters(0, 2, 0, (9,)), ReadWriteMultipleRegistersResponse((9, 0))),
    ("fc24", ReadFifoQueue(0), ReadFifoQueueResponse((1, 2, 3))),
    (
        "fc43",
        ReadDeviceIdentification(1, 0),
        ReadDeviceIdentificationResponse(1, 0x81, False, 0, ((0, b"v"), (1, b"p"), (2, b"1"))),
    ),
    ("fc03-exception", ReadHoldingRegisters(500, 3), ExceptionResponse(3, 2)),
    ("fc65-custom", RawPdu(0x41, b"\x01\x02\x03\x04"), RawPdu(0x41, b"\x04\x03\x02\x01")),
]


def rtu(unit: int, pdu: bytes) -> bytes:
    raw = bytes((unit,)) + pdu
    return raw + crc16(raw).to_bytes(2, "little")


def ascii_frame(unit: int, pdu: bytes, delimiter: int = 0x0A) -> bytes:
    raw = bytes((unit,)) + pdu
    return b":" + (raw + bytes((lrc(raw),))).hex().upper().encode() + bytes((0x0D, delimiter))


def mbap(transaction_id: int, unit: int, pdu: bytes, protocol_id: int = 0, length: int | None = None) -> bytes:
    size = len(pdu) + 1 if length is None else length
    return struct.pack(">HHHB", transaction_id, protocol_id, size, unit) + pdu


def raw_ops(data: bytes, *, delay: int = 0, size: int = 255) -> bytes:
    """*data* arriving in reads of *size* bytes (each a raw op)."""
    return b"".join(op_bytes(data[start : start + size], delay=delay) for start in range(0, len(data), size))


def every_request() -> Iterator[tuple[str, bytes]]:
    for name, pdu in REQUESTS:
        yield name, pdu.encode()
    yield from MALFORMED_REQUESTS


# --------------------------------------------------------------------------
# one generator per target


def pdu_request() -> Iterator[tuple[str, bytes]]:
    yield from every_request()
    yield "empty", b""


def pdu_response() -> Iterator[tuple[str, bytes]]:
    for name, pdu in RESPONSES:
        yield name, pdu.encode()
    yield "malformed-fc03-odd-byte-count", bytes.fromhex("030300010002")
    yield "malformed-fc24-count", bytes.fromhex("1800060003000100020003")
    yield "malformed-fc43-truncated", bytes.fromhex("2b0e01810000020003")
    yield "malformed-exception-long", bytes.fromhex("830200")


def dispatch() -> Iterator[tuple[str, bytes]]:
    def record(unit: int, pdu: bytes) -> bytes:
        return bytes((unit, len(pdu))) + pdu

    for name, pdu in every_request():
        yield f"tcp-{name}", b"\x00" + record(1, pdu)
        yield f"serial-multi-{name}", b"\x03" + record(17, pdu)
    everything = b"".join(record(1, pdu) for _, pdu in every_request() if len(pdu) < 250)
    yield "tcp-all-in-a-row", b"\x00" + everything
    yield "custom-all-in-a-row", b"\x04" + everything
    listen_only = Diagnostics(DiagnosticSubFunction.FORCE_LISTEN_ONLY_MODE).encode()
    restart = Diagnostics(DiagnosticSubFunction.RESTART_COMMUNICATIONS_OPTION).encode()
    write = WriteMultipleRegisters(0, (5, 6)).encode()
    read = ReadHoldingRegisters(0, 2).encode()
    yield (
        "serial-listen-only-then-restart",
        b"\x03" + record(1, listen_only) + record(1, write) + record(1, restart) + record(1, restart) + record(1, read),
    )
    yield "serial-broadcast-write", b"\x03" + record(0, write) + record(1, read) + record(17, read)
    yield "serial-missing-unit", b"\x03" + record(99, read)
    yield "tcp-missing-unit", b"\x02" + record(99, read) + record(0, read) + record(255, read)
    yield "serial-event-log", b"\x01" + record(1, read) + record(1, b"\x03\x00\x00\x00\x00") + record(1, b"\x0c")


def mbap_server() -> Iterator[tuple[str, bytes]]:
    def wrapped(transaction_id: int, unit: int, pdu: bytes) -> bytes:
        return op_bytes(transaction_id.to_bytes(2, "big") + bytes((unit,)) + pdu, wrap=True)

    for name, pdu in every_request():
        if len(pdu) <= 252:
            yield name, b"\x00" + wrapped(1, 1, pdu)
    read = ReadHoldingRegisters(0, 3).encode()
    stream = b"".join(mbap(index, 1, pdu.encode()) for index, (_, pdu) in enumerate(REQUESTS))
    yield "pipelined-in-one-read", b"\x00" + raw_ops(stream)
    yield "pipelined-odd-reads", b"\x00" + raw_ops(stream, size=37)
    yield "split-byte-by-byte", b"\x00" + raw_ops(mbap(7, 1, read), size=1)
    yield "split-in-header", b"\x00" + op_bytes(mbap(7, 1, read), extra=True, arg=3)
    yield "protocol-id-1-then-valid", b"\x00" + raw_ops(mbap(1, 1, read, protocol_id=1) + mbap(2, 1, read))
    yield "length-0", b"\x00" + raw_ops(mbap(1, 1, read, length=0))
    yield "length-255", b"\x00" + raw_ops(mbap(1, 1, read, length=255) + bytes(255))
    yield "units-0-and-255", b"\x08" + wrapped(1, 0, read) + wrapped(2, 255, read) + wrapped(3, 17, read)
    yield "custom-table", b"\x10" + wrapped(1, 1, RawPdu(0x64, b"\x02\xaa\xbb").encode())
    yield "datagram", b"\x01" + wrapped(1, 1, read) + wrapped(2, 1, read)
    yield "datagram-two-adus", b"\x01" + raw_ops(mbap(1, 1, read) + mbap(2, 1, read))
    yield "datagram-short", b"\x01" + raw_ops(b"\x00\x01\x00")
    yield "datagram-length-past-end", b"\x01" + raw_ops(mbap(1, 1, read, length=20))
    yield "lazy-datagrams", b"\x21" + raw_ops(mbap(1, 1, read, length=20)) + raw_ops(mbap(2, 1, read) * 2)
    yield "lazy-stream", b"\x20" + raw_ops(mbap(1, 1, read)[:9]) + raw_ops(mbap(1, 1, read)[9:] + mbap(2, 1, read))
    # frame timeout 1 s: a partial ADU, then silence past the deadline
    partial = mbap(1, 1, read)[:5]
    yield "frame-timeout", b"\x02" + op_bytes(partial) + op_bytes(b"", delay=12, timeout_first=True)
    yield (
        "frame-timeout-busy-stream",
        b"\x02"
        + op_bytes(mbap(1, 1, read) + mbap(2, 1, read)[:4])
        + op_bytes(mbap(2, 1, read)[4:] + mbap(3, 1, read)[:4], delay=8)
        + op_bytes(mbap(3, 1, read)[4:] + mbap(4, 1, read)[:4], delay=8)
        + op_bytes(b"", delay=4, timeout_first=True),
    )


def rtu_server() -> Iterator[tuple[str, bytes]]:
    header = bytes((0x00, 2, 1, 0))  # tolerant, 19200 baud, no units filter
    strict = bytes((0x01, 2, 1, 0))

    def wrapped(unit: int, pdu: bytes, delay: int = GAP_TOLERANT, *, extra: bool = False, arg: int = 0) -> bytes:
        return op_bytes(bytes((unit,)) + pdu, wrap=True, delay=delay, extra=extra, arg=arg)

    for name, pdu in every_request():
        if len(pdu) <= 253:
            yield name, header + wrapped(1, pdu)
    read = ReadHoldingRegisters(0, 3).encode()
    answer = ReadHoldingRegistersResponse((1, 2, 3)).encode()
    yield "split-frame", header + wrapped(1, read, extra=True, arg=3)
    yield "split-frame-strict", strict + wrapped(1, read, delay=GAP_4_CHARS, extra=True, arg=5)
    yield (
        "gap-inside-frame-strict",
        strict + op_bytes(rtu(1, read)[:4], delay=GAP_4_CHARS) + op_bytes(rtu(1, read)[4:], delay=GAP_2_CHARS),
    )
    yield "frame-too-early-strict", strict + wrapped(1, read, delay=GAP_4_CHARS) + wrapped(1, read, delay=GAP_2_CHARS)
    yield "garbage-prefix", header + op_bytes(b"\x55\xaa\x01" + rtu(1, read), delay=GAP_TOLERANT)
    yield "bad-crc", header + op_bytes(rtu(1, read)[:-1] + b"\x00", delay=GAP_TOLERANT) + wrapped(1, read)
    yield "short-frame", header + op_bytes(b"\x01\x03", delay=GAP_TOLERANT) + wrapped(1, read)
    yield "back-to-back", header + op_bytes(rtu(1, read) + rtu(1, read) + rtu(2, read), delay=GAP_TOLERANT)
    # a shared line: a request to unit 5, its answer, then a request to us
    yield "other-server-traffic", bytes((0x20, 2, 1, 0)) + wrapped(5, read) + wrapped(5, answer) + wrapped(1, read)
    yield (
        "other-server-then-silence-frame",
        bytes((0x20, 2, 1, 0)) + wrapped(5, read) + wrapped(1, Diagnostics(0, b"\xab\xcd").encode()),
    )
    yield "units-filter", bytes((0x20, 2, 1, 0)) + wrapped(2, read) + wrapped(1, read)
    yield "broadcast", bytes((0x30, 2, 1, 0)) + wrapped(0, WriteSingleRegister(1, 5).encode()) + wrapped(1, read)
    yield "datagram", bytes((0x02, 2, 1, 0)) + wrapped(1, read) + wrapped(1, read, extra=True, arg=3)
    yield "echo", bytes((0x04, 2, 1, 0)) + wrapped(1, read) + wrapped(1, read)
    yield (
        "custom-table",
        bytes((0x08, 2, 1, 0))
        + wrapped(1, RawPdu(0x64, b"\x02\xaa\xbb").encode())
        + wrapped(1, RawPdu(0x65, b"\x01").encode()),
    )
    yield "timeout-between", header + op_bytes(rtu(1, read)[:5]) + op_bytes(b"", timeout_first=True) + wrapped(1, read)
    yield "baud-1200", bytes((0x00, 0, 1, 0)) + wrapped(1, read) + wrapped(1, read, extra=True, arg=4)
    yield "baud-115200-strict", bytes((0x01, 4, 1, 0)) + wrapped(1, read, delay=GAP_TOLERANT) + wrapped(1, read)
    yield (
        "lazy-adapter",
        bytes((0x00, 2, 1, 1))
        + wrapped(1, read)
        + wrapped(1, read, delay=GAP_SECONDS)
        + op_bytes(b"", timeout_first=True),
    )


def rtu_client() -> Iterator[tuple[str, bytes]]:
    header = bytes((0x00, 2, 0))

    def send(unit: int, pdu: bytes) -> bytes:
        return op_bytes(bytes((unit,)) + pdu, extra=True, arg=0x80)

    def arrive(unit: int, pdu: bytes, *, extra: bool = False, arg: int = 0) -> bytes:
        return op_bytes(bytes((unit,)) + pdu, wrap=True, delay=GAP_TOLERANT, extra=extra, arg=arg)

    for name, request, response in EXCHANGES:
        yield name, header + send(1, request.encode()) + arrive(1, response.encode())
    read = ReadHoldingRegisters(0, 3).encode()
    answer = ReadHoldingRegistersResponse((1, 2, 3)).encode()
    yield "split-answer", header + send(1, read) + arrive(1, answer, extra=True, arg=4)
    yield "answer-from-other-unit", header + send(1, read) + arrive(2, answer) + arrive(1, answer)
    yield "unexpected-answer", header + arrive(1, answer)
    yield "wrong-function", header + send(1, read) + arrive(1, ReadInputRegistersResponse((1,)).encode())
    yield "malformed-answer", header + send(1, read) + arrive(1, bytes.fromhex("030300010002"))
    yield "short-coil-answer", header + send(1, ReadCoils(0, 20).encode()) + arrive(1, bytes.fromhex("010100"))
    yield "garbage-then-answer", header + send(1, read) + op_bytes(b"\xff\x00" + rtu(1, answer), delay=GAP_TOLERANT)
    yield "two-pending", header + send(1, read) + send(2, read) + arrive(2, answer) + arrive(1, answer)
    yield "cancel", header + send(1, read) + op_bytes(b"", extra=True, arg=0xC0) + arrive(1, answer)
    yield "echo", bytes((0x04, 2, 0)) + send(1, read) + arrive(1, answer)
    yield "strict", bytes((0x01, 2, 0)) + send(1, read) + arrive(1, answer, extra=True, arg=2)
    yield "another-masters-request", header + send(1, read) + arrive(3, read) + arrive(1, answer)
    yield "custom", bytes((0x08, 2, 0)) + send(1, RawPdu(0x64, b"\x01\x07").encode()) + arrive(1, b"\x64\x01\x07")
    yield "lazy-adapter", bytes((0x00, 2, 1)) + send(1, read) + arrive(1, answer) + op_bytes(b"", timeout_first=True)


def ascii_server() -> Iterator[tuple[str, bytes]]:
    header = bytes((0x00, 0x0A, 1, 0))

    def wrapped(unit: int, pdu: bytes, delay: int = GAP_4_CHARS, *, extra: bool = False, arg: int = 0) -> bytes:
        return op_bytes(bytes((unit,)) + pdu, wrap=True, delay=delay, extra=extra, arg=arg)

    for name, pdu in every_request():
        if len(pdu) <= 126:
            yield name, header + wrapped(1, pdu)
    read = ReadHoldingRegisters(0, 3).encode()
    frame = ascii_frame(1, read)
    yield "lowercase-hex", header + op_bytes(frame.lower().replace(b"\r\n", b"\r\n"))
    yield "bad-lrc", header + op_bytes(frame[:-4] + b"00\r\n") + wrapped(1, read)
    yield "not-hex", header + op_bytes(b":01XY\r\n") + wrapped(1, read)
    yield "garbage-prefix", header + op_bytes(b"garbage" + frame)
    yield "blank-noise", header + op_bytes(b"\r\n  \r\n" + frame)
    yield "new-colon-restarts", header + op_bytes(frame[:7] + frame)
    yield "split-frame", header + wrapped(1, read, extra=True, arg=6)
    yield "inter-character-timeout", header + op_bytes(frame[:6]) + op_bytes(frame[6:], delay=GAP_SECONDS)
    yield "timeout-then-frame", header + op_bytes(frame[:6]) + op_bytes(b"", timeout_first=True) + wrapped(1, read)
    yield "overlong", header + op_bytes(b":" + b"0" * 254) + op_bytes(b"0" * 255) + op_bytes(b"0" * 10 + b"\r\n")
    delimiter = Diagnostics(DiagnosticSubFunction.CHANGE_ASCII_INPUT_DELIMITER, b"!\x00").encode()
    yield "delimiter-change", header + wrapped(1, delimiter) + wrapped(1, read) + op_bytes(frame)
    yield "broadcast-delimiter-change", bytes((0x60, 0x0A, 1, 0)) + wrapped(0, delimiter) + wrapped(1, read)
    yield "start-delimiter", bytes((0x01, ord("!"), 1, 0)) + wrapped(1, read)
    yield "units-filter", bytes((0x40, 0x0A, 1, 0)) + wrapped(2, read) + wrapped(1, read)
    yield "echo", bytes((0x02, 0x0A, 1, 0)) + wrapped(1, read) + wrapped(1, read)
    yield "custom-table", bytes((0x04, 0x0A, 1, 0)) + wrapped(1, RawPdu(0x64, b"\x02\xaa\xbb").encode())
    yield "short-timeout", bytes((0x08, 0x0A, 1, 0)) + wrapped(1, read, extra=True, arg=9)
    yield "lazy-adapter", bytes((0x00, 0x0A, 1, 1)) + wrapped(1, read) + wrapped(1, read, delay=GAP_SECONDS)


TARGETS = {
    "pdu_request": pdu_request,
    "pdu_response": pdu_response,
    "dispatch": dispatch,
    "mbap_server": mbap_server,
    "rtu_server": rtu_server,
    "rtu_client": rtu_client,
    "ascii_server": ascii_server,
}


def write(target: str, seeds: Iterable[tuple[str, bytes]]) -> int:
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("seed-*"):
        stale.unlink()
    count = 0
    for name, data in seeds:
        path = directory / f"seed-{name}"
        if path.exists():
            raise SystemExit(f"two seeds of {target} are called {name}")
        path.write_bytes(data)
        count += 1
    return count


def main() -> int:
    for target, seeds in TARGETS.items():
        print(f"{target}: {write(target, seeds())} seeds", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
