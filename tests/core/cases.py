"""The (event, wire bytes) table shared by the encoder and decoder tests.

Every PDU class appears here with the bytes the specification gives for it:
the worked examples of the Modbus Application Protocol Specification V1.1b3
(section 6, one per function code), the Modbus over Serial Line examples
(the RTU vector ``01 03 00 00 00 0A C5 CD``, ``11 03 00 6B 00 03`` with its
CRC ``76 87`` and LRC ``7E``), and, where the specification has no example
(function 17's data, the counters of function 08), values built by hand.

The framing helpers below (CRC, LRC, MBAP header) are written independently
of modbus_core, bit by bit, so that a test never checks the library against
itself.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterable, Iterator, Sequence

from modbus_core import (
    ClientConnection,
    DeviceIdCode,
    Diagnostics,
    DiagnosticsResponse,
    DiagnosticSubFunction,
    Event,
    ExceptionCode,
    ExceptionResponse,
    FileRecord,
    FileRecordReference,
    GetCommEventCounter,
    GetCommEventCounterResponse,
    GetCommEventLog,
    GetCommEventLogResponse,
    MaskWriteRegister,
    MaskWriteRegisterResponse,
    NeedData,
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
    RequestPdu,
    ResponsePdu,
    ServerConnection,
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
)

# --------------------------------------------------------------------------
# independent reference framing


def reference_crc(data: bytes) -> bytes:
    """CRC-16/MODBUS, bit by bit as the serial line specification draws it; wire order."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return bytes((crc & 0xFF, crc >> 8))


def reference_lrc(data: bytes) -> int:
    """LRC as the serial line specification describes it: add, keep 8 bits, two's complement."""
    total = 0
    for byte in data:
        total = (total + byte) & 0xFF
    return ((total ^ 0xFF) + 1) & 0xFF


def mbap(transaction_id: int, unit: int, pdu: bytes, protocol_id: int = 0) -> bytes:
    return struct.pack(">HHHB", transaction_id, protocol_id, len(pdu) + 1, unit) + pdu


def rtu(unit: int, pdu: bytes) -> bytes:
    frame = bytes((unit,)) + pdu
    return frame + reference_crc(frame)


def ascii_frame(unit: int, pdu: bytes, end: bytes = b"\r\n") -> bytes:
    raw = bytes((unit,)) + pdu
    return b":" + "".join(f"{byte:02X}" for byte in raw + bytes((reference_lrc(raw),))).encode() + end


def bits(data: bytes, count: int) -> tuple[bool, ...]:
    """Coil values packed LSB first, as the specification's tables show them."""
    return tuple(bool(data[i // 8] >> (i % 8) & 1) for i in range(count))


# The serial line specification's own vectors.
assert reference_crc(bytes.fromhex("01030000000A")) == bytes.fromhex("C5CD")
assert reference_crc(bytes.fromhex("1103006B0003")) == bytes.fromhex("7687")
assert reference_lrc(bytes.fromhex("1103006B0003")) == 0x7E


# --------------------------------------------------------------------------
# the table


@dataclasses.dataclass(frozen=True)
class Exchange:
    """A request, its wire PDU, and the response a server gives (None: no response)."""

    name: str
    request: RequestPdu
    request_wire: bytes
    response: ResponsePdu | None
    response_wire: bytes = b""
    # What a bare PDU decoder makes of response_wire when that differs from
    # the response (bit responses: the decoder cannot tell padding from data).
    response_decoded: ResponsePdu | None = None
    # Frames whose length the function code does not give end by silence on RTU.
    rtu_by_silence: bool = False

    @property
    def decoded_response(self) -> ResponsePdu | None:
        return self.response_decoded if self.response_decoded is not None else self.response


def _hex(text: str) -> bytes:
    return bytes.fromhex(text)


def _word(value: int) -> bytes:
    return value.to_bytes(2, "big")


COILS_20_38 = bits(_hex("CD6B05"), 19)
INPUTS_197_218 = bits(_hex("ACDB35"), 22)
COILS_20_29 = bits(_hex("CD01"), 10)

_IDENTITY_OBJECTS = ((0x00, b"Company identification"), (0x01, b"Product code XX"), (0x02, b"V2.11"))


def _identification_wire(
    read_code: int, conformity: int, more: int, next_id: int, objects: Sequence[tuple[int, bytes]]
) -> bytes:
    body = b"".join(bytes((object_id, len(value))) + value for object_id, value in objects)
    return bytes((0x2B, 0x0E, read_code, conformity, more, next_id, len(objects))) + body


SPEC_EXCHANGES: tuple[Exchange, ...] = (
    Exchange(
        "fc01 read coils 20-38",
        ReadCoils(19, 19),
        _hex("0100130013"),
        ReadCoilsResponse(COILS_20_38),
        _hex("0103CD6B05"),
        response_decoded=ReadCoilsResponse(bits(_hex("CD6B05"), 24)),
    ),
    Exchange(
        "fc02 read discrete inputs 197-218",
        ReadDiscreteInputs(196, 22),
        _hex("0200C40016"),
        ReadDiscreteInputsResponse(INPUTS_197_218),
        _hex("0203ACDB35"),
        response_decoded=ReadDiscreteInputsResponse(bits(_hex("ACDB35"), 24)),
    ),
    Exchange(
        "fc03 read holding registers 108-110",
        ReadHoldingRegisters(107, 3),
        _hex("03006B0003"),
        ReadHoldingRegistersResponse((0x022B, 0x0000, 0x0064)),
        _hex("0306022B00000064"),
    ),
    Exchange(
        "fc04 read input register 9",
        ReadInputRegisters(8, 1),
        _hex("0400080001"),
        ReadInputRegistersResponse((0x000A,)),
        _hex("0402000A"),
    ),
    Exchange(
        "fc05 write coil 173 on",
        WriteSingleCoil(172, True),
        _hex("0500ACFF00"),
        WriteSingleCoilResponse(172, True),
        _hex("0500ACFF00"),
    ),
    Exchange(
        "fc06 write register 2",
        WriteSingleRegister(1, 3),
        _hex("0600010003"),
        WriteSingleRegisterResponse(1, 3),
        _hex("0600010003"),
    ),
    Exchange(
        "fc07 read exception status",
        ReadExceptionStatus(),
        _hex("07"),
        ReadExceptionStatusResponse(0x6D),
        _hex("076D"),
    ),
    Exchange(
        "fc08/00 return query data",
        Diagnostics(DiagnosticSubFunction.RETURN_QUERY_DATA, _hex("A537")),
        _hex("080000A537"),
        DiagnosticsResponse(DiagnosticSubFunction.RETURN_QUERY_DATA, _hex("A537")),
        _hex("080000A537"),
        rtu_by_silence=True,
    ),
    Exchange(
        "fc11 get comm event counter",
        GetCommEventCounter(),
        _hex("0B"),
        GetCommEventCounterResponse(0xFFFF, 0x0108),
        _hex("0BFFFF0108"),
    ),
    Exchange(
        "fc12 get comm event log",
        GetCommEventLog(),
        _hex("0C"),
        GetCommEventLogResponse(0x0000, 0x0108, 0x0121, _hex("2000")),
        _hex("0C08000001080121" + "2000"),
    ),
    Exchange(
        "fc15 write coils 20-29",
        WriteMultipleCoils(19, COILS_20_29),
        _hex("0F0013000A02CD01"),
        WriteMultipleCoilsResponse(19, 10),
        _hex("0F0013000A"),
    ),
    Exchange(
        "fc16 write registers 2-3",
        WriteMultipleRegisters(1, (0x000A, 0x0102)),
        _hex("100001000204000A0102"),
        WriteMultipleRegistersResponse(1, 2),
        _hex("1000010002"),
    ),
    Exchange(
        "fc20 read file record",
        ReadFileRecord((FileRecordReference(4, 1, 2), FileRecordReference(3, 9, 2))),
        _hex("140E0600040001000206000300090002"),
        ReadFileRecordResponse(((0x0DFE, 0x0020), (0x33CD, 0x0040))),
        _hex("140C05060DFE0020050633CD0040"),
    ),
    Exchange(
        "fc21 write file record",
        WriteFileRecord((FileRecord(4, 7, (0x06AF, 0x04BE, 0x100D)),)),
        _hex("150D0600040007000306AF04BE100D"),
        WriteFileRecordResponse((FileRecord(4, 7, (0x06AF, 0x04BE, 0x100D)),)),
        _hex("150D0600040007000306AF04BE100D"),
    ),
    Exchange(
        "fc22 mask write register",
        MaskWriteRegister(4, 0x00F2, 0x0025),
        _hex("16000400F20025"),
        MaskWriteRegisterResponse(4, 0x00F2, 0x0025),
        _hex("16000400F20025"),
    ),
    Exchange(
        "fc23 read/write registers",
        ReadWriteMultipleRegisters(3, 6, 14, (0x00FF, 0x00FF, 0x00FF)),
        _hex("1700030006000E00030600FF00FF00FF"),
        ReadWriteMultipleRegistersResponse((0x00FE, 0x0ACD, 0x0001, 0x0003, 0x000D, 0x00FF)),
        _hex("170C00FE0ACD00010003000D00FF"),
    ),
    Exchange(
        "fc24 read fifo queue",
        ReadFifoQueue(0x04DE),
        _hex("1804DE"),
        ReadFifoQueueResponse((0x01B8, 0x1284)),
        _hex("180006000201B81284"),
    ),
    Exchange(
        "fc43/14 read device identification, basic",
        ReadDeviceIdentification(DeviceIdCode.BASIC, 0),
        _hex("2B0E0100"),
        ReadDeviceIdentificationResponse(1, 0x01, False, 0, _IDENTITY_OBJECTS),
        _identification_wire(1, 0x01, 0x00, 0, _IDENTITY_OBJECTS),
    ),
    Exchange(
        "exception: fc01 illegal data address",
        ReadCoils(0x04A1, 1),
        _hex("0104A10001"),
        ExceptionResponse(0x01, ExceptionCode.ILLEGAL_DATA_ADDRESS),
        _hex("8102"),
    ),
)
"""The worked examples of the Modbus Application Protocol Specification."""


def _diagnostic(sub_function: int, data: bytes, answer: bytes | None) -> Exchange:
    name = DiagnosticSubFunction(sub_function).name.lower()
    wire = bytes((0x08,)) + _word(sub_function) + data
    if answer is None:
        return Exchange(f"fc08/{sub_function:02x} {name}", Diagnostics(sub_function, data), wire, None)
    return Exchange(
        f"fc08/{sub_function:02x} {name}",
        Diagnostics(sub_function, data),
        wire,
        DiagnosticsResponse(sub_function, answer),
        bytes((0x08,)) + _word(sub_function) + answer,
    )


S = DiagnosticSubFunction
DIAGNOSTIC_EXCHANGES: tuple[Exchange, ...] = (
    Exchange(
        "fc08/00 return query data, empty",
        Diagnostics(S.RETURN_QUERY_DATA, b""),
        _hex("080000"),
        DiagnosticsResponse(S.RETURN_QUERY_DATA, b""),
        _hex("080000"),
        rtu_by_silence=True,
    ),
    Exchange(
        "fc08/00 return query data, long",
        Diagnostics(S.RETURN_QUERY_DATA, bytes(range(40))),
        _hex("080000") + bytes(range(40)),
        DiagnosticsResponse(S.RETURN_QUERY_DATA, bytes(range(40))),
        _hex("080000") + bytes(range(40)),
        rtu_by_silence=True,
    ),
    _diagnostic(S.RESTART_COMMUNICATIONS_OPTION, _hex("0000"), _hex("0000")),
    _diagnostic(S.RESTART_COMMUNICATIONS_OPTION, _hex("FF00"), _hex("FF00")),
    _diagnostic(S.RETURN_DIAGNOSTIC_REGISTER, _hex("0000"), _hex("8001")),
    _diagnostic(S.CHANGE_ASCII_INPUT_DELIMITER, _hex("3E00"), _hex("3E00")),
    _diagnostic(S.FORCE_LISTEN_ONLY_MODE, _hex("0000"), None),
    _diagnostic(S.CLEAR_COUNTERS_AND_DIAGNOSTIC_REGISTER, _hex("0000"), _hex("0000")),
    _diagnostic(S.RETURN_BUS_MESSAGE_COUNT, _hex("0000"), _hex("0107")),
    _diagnostic(S.RETURN_BUS_COMMUNICATION_ERROR_COUNT, _hex("0000"), _hex("0003")),
    _diagnostic(S.RETURN_BUS_EXCEPTION_ERROR_COUNT, _hex("0000"), _hex("0002")),
    _diagnostic(S.RETURN_SERVER_MESSAGE_COUNT, _hex("0000"), _hex("00FF")),
    _diagnostic(S.RETURN_SERVER_NO_RESPONSE_COUNT, _hex("0000"), _hex("0001")),
    _diagnostic(S.RETURN_SERVER_NAK_COUNT, _hex("0000"), _hex("0000")),
    _diagnostic(S.RETURN_SERVER_BUSY_COUNT, _hex("0000"), _hex("0004")),
    _diagnostic(S.RETURN_BUS_CHARACTER_OVERRUN_COUNT, _hex("0000"), _hex("0005")),
    _diagnostic(S.CLEAR_OVERRUN_COUNTER_AND_FLAG, _hex("0000"), _hex("0000")),
)
"""Every sub-function of function 08 (04 gets no response)."""

_REGULAR = ((0x03, b"https://example.com"), (0x04, b"Model X"), (0x05, b"Model X-1"), (0x06, b"Model X app"))
_EXTENDED = ((0x80, b"\x01\x02\x03"), (0x81, b"private"), (0xFF, b""))
_LARGE = tuple((0x80 + index, bytes([index]) * 60) for index in range(3))

OTHER_EXCHANGES: tuple[Exchange, ...] = (
    Exchange(
        "fc01 read one coil",
        ReadCoils(0, 1),
        _hex("0100000001"),
        ReadCoilsResponse((True,)),
        _hex("010101"),
        response_decoded=ReadCoilsResponse((True,) + (False,) * 7),
    ),
    Exchange(
        "fc01 read 2000 coils",
        ReadCoils(0xFFFF - 1999, 2000),
        _hex("01F83007D0"),
        ReadCoilsResponse(tuple(i % 3 == 0 for i in range(2000))),
        _hex("01FA") + bytes(sum(1 << b for b in range(8) if (i * 8 + b) % 3 == 0) for i in range(250)),
    ),
    Exchange(
        "fc02 read 8 inputs",
        ReadDiscreteInputs(7, 8),
        _hex("0200070008"),
        ReadDiscreteInputsResponse((False, True) * 4),
        _hex("0201AA"),
    ),
    Exchange(
        "fc03 read 125 registers",
        ReadHoldingRegisters(0, 125),
        _hex("030000007D"),
        ReadHoldingRegistersResponse(tuple((i * 257) & 0xFFFF for i in range(125))),
        _hex("03FA") + b"".join(_word((i * 257) & 0xFFFF) for i in range(125)),
    ),
    Exchange(
        "fc04 read 125 input registers at 0xFF00",
        ReadInputRegisters(0xFF00, 125),
        _hex("04FF00007D"),
        ReadInputRegistersResponse(tuple(range(125))),
        _hex("04FA") + b"".join(_word(i) for i in range(125)),
    ),
    Exchange(
        "fc05 write coil off",
        WriteSingleCoil(0xFFFF, False),
        _hex("05FFFF0000"),
        WriteSingleCoilResponse(0xFFFF, False),
        _hex("05FFFF0000"),
    ),
    Exchange(
        "fc06 write 0xFFFF",
        WriteSingleRegister(0, 0xFFFF),
        _hex("060000FFFF"),
        WriteSingleRegisterResponse(0, 0xFFFF),
        _hex("060000FFFF"),
    ),
    Exchange(
        "fc12 get comm event log, no events",
        GetCommEventLog(),
        _hex("0C"),
        GetCommEventLogResponse(0xFFFF, 0, 0),
        _hex("0C06FFFF00000000"),
    ),
    Exchange(
        "fc12 get comm event log, 64 events",
        GetCommEventLog(),
        _hex("0C"),
        GetCommEventLogResponse(0, 64, 65, bytes(range(0x80, 0xC0))),
        _hex("0C46000000400041") + bytes(range(0x80, 0xC0)),
    ),
    Exchange(
        "fc15 write 1968 coils",
        WriteMultipleCoils(0, (True,) * 1968),
        _hex("0F000007B0F6") + b"\xff" * 246,
        WriteMultipleCoilsResponse(0, 1968),
        _hex("0F000007B0"),
    ),
    Exchange(
        "fc16 write 123 registers",
        WriteMultipleRegisters(0x0100, tuple(range(123))),
        _hex("100100007BF6") + b"".join(_word(i) for i in range(123)),
        WriteMultipleRegistersResponse(0x0100, 123),
        _hex("100100007B"),
    ),
    Exchange(
        "fc17 report server id",
        ReportServerId(),
        _hex("11"),
        ReportServerIdResponse(0x42, True, b"modbuskit"),
        _hex("110B42FF") + b"modbuskit",
    ),
    Exchange(
        "fc17 report server id, stopped, no data",
        ReportServerId(),
        _hex("11"),
        ReportServerIdResponse(0x01, False),
        _hex("11020100"),
    ),
    Exchange(
        "fc20 read one record of 0x270F",
        ReadFileRecord((FileRecordReference(0xFFFF, 0x270F, 1),)),
        _hex("140706FFFF270F0001"),
        ReadFileRecordResponse(((0xBEEF,),)),
        _hex("14040306BEEF"),
    ),
    Exchange(
        "fc21 write two file records",
        WriteFileRecord((FileRecord(1, 0, (1,)), FileRecord(2, 3, (4, 5)))),
        _hex("1514" + "06000100000001" + "0001" + "06000200030002" + "00040005"),
        WriteFileRecordResponse((FileRecord(1, 0, (1,)), FileRecord(2, 3, (4, 5)))),
        _hex("1514" + "06000100000001" + "0001" + "06000200030002" + "00040005"),
    ),
    Exchange(
        "fc23 read 125 write 121",
        ReadWriteMultipleRegisters(0, 125, 0xFFFF, tuple(range(121))),
        _hex("17" + "0000" + "007D" + "FFFF" + "0079" + "F2") + b"".join(_word(i) for i in range(121)),
        ReadWriteMultipleRegistersResponse(tuple(range(125))),
        _hex("17FA") + b"".join(_word(i) for i in range(125)),
    ),
    Exchange(
        "fc24 read empty fifo",
        ReadFifoQueue(0),
        _hex("180000"),
        ReadFifoQueueResponse(()),
        _hex("1800020000"),
    ),
    Exchange(
        "fc24 read full fifo",
        ReadFifoQueue(0xFFFF),
        _hex("18FFFF"),
        ReadFifoQueueResponse(tuple(range(31))),
        _hex("180040001F") + b"".join(_word(i) for i in range(31)),
    ),
    Exchange(
        "fc43/14 read device identification, regular",
        ReadDeviceIdentification(DeviceIdCode.REGULAR, 0),
        _hex("2B0E0200"),
        ReadDeviceIdentificationResponse(2, 0x02, False, 0, _IDENTITY_OBJECTS + _REGULAR),
        _identification_wire(2, 0x02, 0x00, 0, _IDENTITY_OBJECTS + _REGULAR),
    ),
    Exchange(
        "fc43/14 read device identification, extended, more follows",
        ReadDeviceIdentification(DeviceIdCode.EXTENDED, 0x80),
        _hex("2B0E0380"),
        ReadDeviceIdentificationResponse(3, 0x83, True, 0x83, _LARGE),
        _identification_wire(3, 0x83, 0xFF, 0x83, _LARGE),
    ),
    Exchange(
        "fc43/14 read device identification, extended, last objects",
        ReadDeviceIdentification(DeviceIdCode.EXTENDED, 0x83),
        _hex("2B0E0383"),
        ReadDeviceIdentificationResponse(3, 0x83, False, 0, _EXTENDED),
        _identification_wire(3, 0x83, 0x00, 0, _EXTENDED),
    ),
    Exchange(
        "fc43/14 read device identification, one object",
        ReadDeviceIdentification(DeviceIdCode.SPECIFIC, 0x04),
        _hex("2B0E0404"),
        ReadDeviceIdentificationResponse(4, 0x82, False, 0, ((0x04, b"Model X"),)),
        _identification_wire(4, 0x82, 0x00, 0, ((0x04, b"Model X"),)),
    ),
    Exchange(
        "fc43/14 read device identification, no object",
        ReadDeviceIdentification(DeviceIdCode.BASIC, 0x00),
        _hex("2B0E0100"),
        ReadDeviceIdentificationResponse(1, 0x01, False, 0, ()),
        _identification_wire(1, 0x01, 0x00, 0, ()),
    ),
    Exchange(
        "exception: fc03 illegal data value",
        ReadHoldingRegisters(0, 1),
        _hex("0300000001"),
        ExceptionResponse(0x03, ExceptionCode.ILLEGAL_DATA_VALUE),
        _hex("8303"),
    ),
    Exchange(
        "exception: fc16 server device failure",
        WriteMultipleRegisters(0, (1,)),
        _hex("10000000010200" + "01"),
        ExceptionResponse(0x10, ExceptionCode.SERVER_DEVICE_FAILURE),
        _hex("9004"),
    ),
    Exchange(
        "exception: fc08 illegal function",
        Diagnostics(S.RETURN_BUS_MESSAGE_COUNT),
        _hex("08000B0000"),
        ExceptionResponse(0x08, ExceptionCode.ILLEGAL_FUNCTION),
        _hex("8801"),
    ),
    Exchange(
        "exception: fc43 gateway target failed to respond",
        ReadDeviceIdentification(),
        _hex("2B0E0100"),
        ExceptionResponse(0x2B, ExceptionCode.GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND),
        _hex("AB0B"),
    ),
    Exchange(
        "exception: fc24 gateway path unavailable",
        ReadFifoQueue(1),
        _hex("180001"),
        ExceptionResponse(0x18, ExceptionCode.GATEWAY_PATH_UNAVAILABLE),
        _hex("980A"),
    ),
    Exchange(
        "user function 65, raw",
        RawPdu(0x41, _hex("0102030405")),
        _hex("410102030405"),
        RawPdu(0x41, _hex("AA")),
        _hex("41AA"),
        rtu_by_silence=True,
    ),
    Exchange(
        "user function 110, empty, answered with exception 01",
        RawPdu(0x6E),
        _hex("6E"),
        ExceptionResponse(0x6E, ExceptionCode.ILLEGAL_FUNCTION),
        _hex("EE01"),
        rtu_by_silence=True,
    ),
    Exchange(
        "fc43/13 CANopen general reference, raw",
        RawPdu(0x2B, _hex("0D00010203")),
        _hex("2B0D00010203"),
        RawPdu(0x2B, _hex("0D0001020304")),
        _hex("2B0D0001020304"),
        rtu_by_silence=True,
    ),
)

EXCHANGES: tuple[Exchange, ...] = SPEC_EXCHANGES + DIAGNOSTIC_EXCHANGES + OTHER_EXCHANGES


def request_cases() -> Iterator[tuple[str, RequestPdu, bytes]]:
    seen: set[bytes] = set()
    for exchange in EXCHANGES:
        if exchange.request_wire not in seen:
            seen.add(exchange.request_wire)
            yield exchange.name, exchange.request, exchange.request_wire


def response_cases() -> Iterator[tuple[str, ResponsePdu, bytes, ResponsePdu]]:
    """``(name, response, wire, what a bare decoder returns)``."""
    for exchange in EXCHANGES:
        if exchange.response is not None and exchange.decoded_response is not None:
            yield exchange.name, exchange.response, exchange.response_wire, exchange.decoded_response


REQUEST_CLASSES = frozenset(type(exchange.request) for exchange in EXCHANGES)
RESPONSE_CLASSES = frozenset(type(exchange.response) for exchange in EXCHANGES if exchange.response is not None)


# --------------------------------------------------------------------------
# malformed requests: (name, wire PDU, exception code the server must answer)

ILLEGAL_FUNCTION = ExceptionCode.ILLEGAL_FUNCTION
ILLEGAL_VALUE = ExceptionCode.ILLEGAL_DATA_VALUE

MALFORMED_REQUESTS: tuple[tuple[str, bytes, int], ...] = (
    ("fc01 quantity 0", _hex("0100000000"), ILLEGAL_VALUE),
    ("fc01 quantity 2001", _hex("01000007D1"), ILLEGAL_VALUE),
    ("fc01 short", _hex("01000000"), ILLEGAL_VALUE),
    ("fc01 long", _hex("010000000100"), ILLEGAL_VALUE),
    ("fc02 quantity 0", _hex("0200000000"), ILLEGAL_VALUE),
    ("fc02 quantity 2001", _hex("02000007D1"), ILLEGAL_VALUE),
    ("fc03 quantity 0", _hex("0300000000"), ILLEGAL_VALUE),
    ("fc03 quantity 126", _hex("030000007E"), ILLEGAL_VALUE),
    ("fc03 quantity 0xFFFF", _hex("030000FFFF"), ILLEGAL_VALUE),
    ("fc04 quantity 126", _hex("040000007E"), ILLEGAL_VALUE),
    ("fc04 only a function code", _hex("04"), ILLEGAL_VALUE),
    ("fc05 value 0x1234", _hex("0500011234"), ILLEGAL_VALUE),
    ("fc05 value 0x00FF", _hex("05000100FF"), ILLEGAL_VALUE),
    ("fc05 short", _hex("050001FF"), ILLEGAL_VALUE),
    ("fc06 short", _hex("06000100"), ILLEGAL_VALUE),
    ("fc06 long", _hex("060001000300"), ILLEGAL_VALUE),
    ("fc07 with data", _hex("0700"), ILLEGAL_VALUE),
    ("fc08 unknown sub-function 05", _hex("0800050000"), ILLEGAL_FUNCTION),
    ("fc08 unknown sub-function 13", _hex("0800130000"), ILLEGAL_FUNCTION),
    ("fc08 unknown sub-function 15", _hex("0800150000"), ILLEGAL_FUNCTION),
    ("fc08 unknown sub-function 0xFFFF", _hex("08FFFF0000"), ILLEGAL_FUNCTION),
    ("fc08 restart with data 1234", _hex("0800011234"), ILLEGAL_VALUE),
    ("fc08 counter with data 0001", _hex("08000B0001"), ILLEGAL_VALUE),
    ("fc08 counter without data", _hex("08000B"), ILLEGAL_VALUE),
    ("fc08 delimiter not followed by 00", _hex("0800033E01"), ILLEGAL_VALUE),
    ("fc08 listen-only with data FF00", _hex("080004FF00"), ILLEGAL_VALUE),
    ("fc08 no sub-function", _hex("0800"), ILLEGAL_VALUE),
    ("fc11 with data", _hex("0B00"), ILLEGAL_VALUE),
    ("fc12 with data", _hex("0C0000"), ILLEGAL_VALUE),
    ("fc15 quantity 0", _hex("0F0000000000"), ILLEGAL_VALUE),
    ("fc15 quantity 1969", _hex("0F000007B1F7") + bytes(247), ILLEGAL_VALUE),
    ("fc15 byte count too small", _hex("0F0000000A01FF"), ILLEGAL_VALUE),
    ("fc15 byte count too large", _hex("0F00000008020000"), ILLEGAL_VALUE),
    ("fc15 data shorter than byte count", _hex("0F0000000A02FF"), ILLEGAL_VALUE),
    ("fc15 no byte count", _hex("0F00000001"), ILLEGAL_VALUE),
    ("fc16 quantity 0", _hex("100000000000"), ILLEGAL_VALUE),
    ("fc16 quantity 124", _hex("100000007CF8") + bytes(248), ILLEGAL_VALUE),
    ("fc16 byte count odd", _hex("100000000103000000"), ILLEGAL_VALUE),
    ("fc16 data longer than byte count", _hex("10000000010200010002"), ILLEGAL_VALUE),
    ("fc16 no byte count", _hex("1000000001"), ILLEGAL_VALUE),
    ("fc17 with data", _hex("1100"), ILLEGAL_VALUE),
    ("fc20 byte count 6", _hex("1406060001000000"), ILLEGAL_VALUE),
    ("fc20 byte count not a multiple of 7", _hex("14080600010000000100"), ILLEGAL_VALUE),
    ("fc20 byte count 0xFC", _hex("14FC") + _hex("06000100000001") * 36, ILLEGAL_VALUE),
    ("fc20 reference type 5", _hex("14070500010000" + "0001"), ILLEGAL_VALUE),
    ("fc20 file 0", _hex("14070600000000" + "0001"), ILLEGAL_VALUE),
    ("fc20 record 0x2710", _hex("14070600012710" + "0001"), ILLEGAL_VALUE),
    ("fc20 record length 0", _hex("14070600010000" + "0000"), ILLEGAL_VALUE),
    ("fc20 response too long", _hex("140E" + "0600010000007D" + "06000200000001"), ILLEGAL_VALUE),
    ("fc20 no byte count", _hex("14"), ILLEGAL_VALUE),
    ("fc21 data length 8", _hex("15080600010000000100"), ILLEGAL_VALUE),
    ("fc21 data length disagrees", _hex("150A060001000000010001"), ILLEGAL_VALUE),
    ("fc21 record runs past the data", _hex("1509060001000000020001"), ILLEGAL_VALUE),
    ("fc21 truncated record header", _hex("150C" + "060001000000010001" + "060001"), ILLEGAL_VALUE),
    ("fc21 reference type 7", _hex("1509070001000000010001"), ILLEGAL_VALUE),
    ("fc21 no data length", _hex("15"), ILLEGAL_VALUE),
    ("fc22 short", _hex("16000400F200"), ILLEGAL_VALUE),
    ("fc23 read quantity 0", _hex("170000000000000001020001"), ILLEGAL_VALUE),
    ("fc23 read quantity 126", _hex("170000007E00000001020001"), ILLEGAL_VALUE),
    ("fc23 write quantity 0", _hex("17000000010000000000"), ILLEGAL_VALUE),
    ("fc23 write quantity 122", _hex("1700000001000000" + "7AF4") + bytes(244), ILLEGAL_VALUE),
    ("fc23 byte count disagrees", _hex("170000000100000001040001"), ILLEGAL_VALUE),
    ("fc23 short header", _hex("170000000100000001"), ILLEGAL_VALUE),
    ("fc24 short", _hex("1804"), ILLEGAL_VALUE),
    ("fc43/14 read code 0", _hex("2B0E0000"), ILLEGAL_VALUE),
    ("fc43/14 read code 5", _hex("2B0E0500"), ILLEGAL_VALUE),
    ("fc43/14 short", _hex("2B0E01"), ILLEGAL_VALUE),
    ("fc43/14 long", _hex("2B0E010000"), ILLEGAL_VALUE),
    ("fc43 without MEI type", _hex("2B"), ILLEGAL_VALUE),
    ("function code 0", _hex("00"), ILLEGAL_FUNCTION),
    ("function code 0x80", _hex("800102"), ILLEGAL_FUNCTION),
    ("function code 0x83", _hex("8302"), ILLEGAL_FUNCTION),
)

# Unknown function codes decode to RawPdu (a server answers 01 unless a handler takes them).
RAW_REQUESTS: tuple[tuple[str, bytes, RawPdu], ...] = (
    ("fc09 (not public)", _hex("09"), RawPdu(0x09)),
    ("fc13 with data", _hex("0D0102"), RawPdu(0x0D, _hex("0102"))),
    ("fc65 user-defined", _hex("41FF"), RawPdu(0x41, _hex("FF"))),
    ("fc127", _hex("7F") + bytes(252), RawPdu(0x7F, bytes(252))),
    ("fc43/13 CANopen", _hex("2B0D"), RawPdu(0x2B, _hex("0D"))),
    ("fc43/15 unknown MEI type", _hex("2B0F0100"), RawPdu(0x2B, _hex("0F0100"))),
)

# Response PDUs a client must reject (the decoder raises RemoteProtocolError).
MALFORMED_RESPONSES: tuple[tuple[str, bytes], ...] = (
    ("empty", b""),
    ("function code 0", _hex("00")),
    ("exception to function 0", _hex("8001")),
    ("exception without code", _hex("83")),
    ("exception too long", _hex("830200")),
    ("fc01 byte count disagrees", _hex("010201")),
    ("fc01 byte count 0", _hex("0100")),
    ("fc01 byte count 251", _hex("01FB") + bytes(251)),
    ("fc03 odd byte count", _hex("0303000102")),
    ("fc03 byte count 0", _hex("0300")),
    ("fc03 byte count 252", _hex("03FC") + bytes(252)),
    ("fc03 byte count disagrees", _hex("03040001")),
    ("fc05 bad coil value", _hex("0500011234")),
    ("fc05 short", _hex("050001FF")),
    ("fc06 short", _hex("06000100")),
    ("fc07 short", _hex("07")),
    ("fc08 short", _hex("0800")),
    ("fc11 short", _hex("0BFFFF01")),
    ("fc12 byte count 5", _hex("0C050000000000")),
    ("fc12 too many events", _hex("0C47000000000000") + bytes(65)),
    ("fc12 byte count disagrees", _hex("0C0800000000000000")),
    ("fc15 quantity 0", _hex("0F00000000")),
    ("fc15 quantity 1969", _hex("0F000007B1")),
    ("fc16 quantity 124", _hex("100000007C")),
    ("fc16 long", _hex("100000000100")),
    ("fc17 byte count 1", _hex("110101")),
    ("fc17 byte count disagrees", _hex("110301FF")),
    ("fc20 no sub-response", _hex("1400")),
    ("fc20 sub-response length even", _hex("14050406000102")),
    ("fc20 sub-response length 1", _hex("14020106")),
    ("fc20 sub-response reference type 5", _hex("140403050001")),
    ("fc20 sub-response runs past the PDU", _hex("140405060001")),
    ("fc20 byte count disagrees", _hex("140503060001")),
    ("fc20 group too long", _hex("14FE") + _hex("FD06") + bytes(252)),
    ("fc21 data length 8", _hex("15080600010000000100")),
    ("fc22 short", _hex("160004")),
    ("fc23 odd byte count", _hex("170100")),
    ("fc24 count 32", _hex("1800420020") + bytes(64)),
    ("fc24 byte count disagrees", _hex("18000600010001")),
    ("fc24 short", _hex("180002")),
    ("fc43/14 short header", _hex("2B0E0101000000")[:-1]),
    ("fc43/14 read code 0", _hex("2B0E00010000" + "00")),
    ("fc43/14 more follows 0x01", _hex("2B0E01010100" + "00")),
    ("fc43/14 truncated object header", _hex("2B0E01010000" + "01" + "00")),
    ("fc43/14 truncated object value", _hex("2B0E01010000" + "01" + "0005" + "4142")),
    ("fc43/14 bytes after the objects", _hex("2B0E01010000" + "00" + "FF")),
    ("fc43/14 too long", _hex("2B0E01010000" + "01" + "00FF") + bytes(255)),
    ("fc08 data too long", _hex("080000") + bytes(251)),
    ("fc08 counter without data", _hex("08000B")),
    ("fc08 restart echo of 3 bytes", _hex("080001FF0000")),
)


# --------------------------------------------------------------------------
# driving connections


def drain(connection: ServerConnection | ClientConnection) -> list[Event]:
    """Every event the connection has ready (a bounded loop: each event consumes bytes)."""
    events: list[Event] = []
    for _ in range(10_000):
        event = connection.next_event()
        if isinstance(event, NeedData):
            return events
        events.append(event)
    raise AssertionError("next_event() never returned NEED_DATA")


def feed(
    connection: ServerConnection | ClientConnection, chunks: Iterable[tuple[bytes, float]], *, settle: bool = True
) -> list[Event]:
    """Feed ``(bytes, arrival time)`` chunks, collecting events after each one.

    *settle*: then let the connection's deadline pass (silence on a serial
    line ends a frame that only silence can end).
    """
    events: list[Event] = drain(connection)
    for data, now in chunks:
        connection.receive_data(data, now)
        events += drain(connection)
    if settle:
        deadline = connection.next_deadline()
        if deadline is not None:
            connection.handle_timeout(deadline)
            events += drain(connection)
    return events


def char_time(baudrate: int) -> float:
    return 11.0 / baudrate


def whole(wire: bytes | bytearray | memoryview, start: float = 1.0) -> list[tuple[bytes, float]]:
    return [(wire, start)]  # type: ignore[list-item]


def bytewise(wire: bytes, start: float = 1.0, baudrate: int = 19200) -> list[tuple[bytes, float]]:
    """One byte at a time, each arriving one character time after the one before."""
    step = char_time(baudrate)
    return [(wire[index : index + 1], start + index * step) for index in range(len(wire))]


def split(wire: bytes, at: int, gap: float, start: float = 1.0, baudrate: int = 19200) -> list[tuple[bytes, float]]:
    """Two chunks with *gap* seconds of silence between the end of the first and the start of the second."""
    step = char_time(baudrate)
    first_end = start + (at - 1) * step
    second_start = first_end + gap + step
    return [(wire[:at], first_end), (wire[at:], second_start + (len(wire) - at - 1) * step)]
