"""PDUs: the case table through the encoders and the decoders, and the
specification's limits on construction."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from typing import Any

import pytest

import modbus_core
from modbus_core import (
    DeviceIdCode,
    Diagnostics,
    DiagnosticsResponse,
    DiagnosticSubFunction,
    ExceptionCode,
    ExceptionResponse,
    FileRecord,
    FileRecordReference,
    FunctionCode,
    FunctionTable,
    GetCommEventCounterResponse,
    GetCommEventLogResponse,
    LocalProtocolError,
    MalformedRequest,
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
    RemoteProtocolError,
    ReportServerIdResponse,
    RequestPdu,
    ResponsePdu,
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

from .cases import (
    MALFORMED_REQUESTS,
    MALFORMED_RESPONSES,
    RAW_REQUESTS,
    REQUEST_CLASSES,
    RESPONSE_CLASSES,
    request_cases,
    response_cases,
)

TABLE = FunctionTable()
REQUESTS = list(request_cases())
RESPONSES = list(response_cases())


def _ids(cases: list[Any]) -> list[str]:
    return [case[0] for case in cases]


@pytest.mark.parametrize(("name", "pdu", "wire"), REQUESTS, ids=_ids(REQUESTS))
def test_request_encodes_to_the_wire_bytes(name: str, pdu: RequestPdu, wire: bytes) -> None:
    assert pdu.encode() == wire


@pytest.mark.parametrize(("name", "pdu", "wire"), REQUESTS, ids=_ids(REQUESTS))
def test_request_decodes_from_the_wire_bytes(name: str, pdu: RequestPdu, wire: bytes) -> None:
    decoded = TABLE.decode_request(wire)
    assert decoded == pdu
    assert type(decoded) is type(pdu)
    # What the decoder built without its checks passes them.
    assert dataclasses.replace(decoded) == decoded  # type: ignore[type-var]


@pytest.mark.parametrize(("name", "pdu", "wire", "decoded"), RESPONSES, ids=_ids(RESPONSES))
def test_response_encodes_to_the_wire_bytes(name: str, pdu: ResponsePdu, wire: bytes, decoded: ResponsePdu) -> None:
    assert pdu.encode() == wire
    assert decoded.encode() == wire


@pytest.mark.parametrize(("name", "pdu", "wire", "decoded"), RESPONSES, ids=_ids(RESPONSES))
def test_response_decodes_from_the_wire_bytes(name: str, pdu: ResponsePdu, wire: bytes, decoded: ResponsePdu) -> None:
    result = TABLE.decode_response(wire)
    assert result == decoded
    assert type(result) is type(decoded)
    assert dataclasses.replace(result) == result  # type: ignore[type-var]


def test_bit_responses_decode_with_their_padding() -> None:
    # A decoder cannot tell padding from data: 19 coils come back as 24.
    decoded = TABLE.decode_response(bytes.fromhex("0103CD6B05"))
    assert isinstance(decoded, ReadCoilsResponse)
    assert len(decoded.values) == 24
    assert decoded.values[19:] == (False,) * 5


def test_the_table_covers_every_class() -> None:
    requests = {cls for cls in vars(modbus_core).values() if isinstance(cls, type) and issubclass(cls, RequestPdu)}
    responses = {cls for cls in vars(modbus_core).values() if isinstance(cls, type) and issubclass(cls, ResponsePdu)}
    assert requests - REQUEST_CLASSES == {RequestPdu, MalformedRequest}
    assert responses - RESPONSE_CLASSES == {ResponsePdu}


@pytest.mark.parametrize(("name", "wire", "code"), MALFORMED_REQUESTS, ids=[case[0] for case in MALFORMED_REQUESTS])
def test_malformed_request_says_which_exception_to_answer(name: str, wire: bytes, code: int) -> None:
    decoded = TABLE.decode_request(wire)
    assert isinstance(decoded, MalformedRequest)
    assert decoded.exception_code == code
    assert decoded.function_code == wire[0]
    assert decoded.data == wire[1:]
    assert decoded.reason
    assert decoded.encode() == wire


def test_empty_request_is_malformed() -> None:
    decoded = TABLE.decode_request(b"")
    assert decoded == MalformedRequest(0, ExceptionCode.ILLEGAL_FUNCTION, b"")


def test_long_unknown_request_is_malformed() -> None:
    decoded = TABLE.decode_request(bytes([0x41]) + bytes(253))
    assert isinstance(decoded, MalformedRequest)
    assert decoded.exception_code == ExceptionCode.ILLEGAL_FUNCTION


def test_long_diagnostic_echo_is_malformed() -> None:
    decoded = TABLE.decode_request(bytes.fromhex("080000") + bytes(251))
    assert isinstance(decoded, MalformedRequest)
    assert decoded.exception_code == ExceptionCode.ILLEGAL_DATA_VALUE


@pytest.mark.parametrize(("name", "wire", "pdu"), RAW_REQUESTS, ids=[case[0] for case in RAW_REQUESTS])
def test_unknown_request_decodes_to_raw(name: str, wire: bytes, pdu: RawPdu) -> None:
    decoded = TABLE.decode_request(wire)
    assert decoded == pdu
    assert decoded.encode() == wire


@pytest.mark.parametrize(("name", "wire"), MALFORMED_RESPONSES, ids=[case[0] for case in MALFORMED_RESPONSES])
def test_malformed_response_is_a_remote_protocol_error(name: str, wire: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        TABLE.decode_response(wire)


def test_unknown_response_decodes_to_raw() -> None:
    assert TABLE.decode_response(bytes.fromhex("41AABB")) == RawPdu(0x41, bytes.fromhex("AABB"))
    assert TABLE.decode_response(bytes.fromhex("2B0D01")) == RawPdu(0x2B, bytes.fromhex("0D01"))
    assert TABLE.decode_response(bytes.fromhex("2B")) == RawPdu(0x2B)


def test_exception_response_to_any_function() -> None:
    assert TABLE.decode_response(bytes.fromhex("C106")) == ExceptionResponse(0x41, 6)
    assert ExceptionResponse(0x41, 6).encode() == bytes.fromhex("C106")


# --------------------------------------------------------------------------
# construction


def _invalid(factory: Any, *args: Any) -> Any:
    return pytest.param(factory, args, id=f"{factory.__name__}{args!r}"[:80])


INVALID = [
    _invalid(ReadCoils, -1, 1),
    _invalid(ReadCoils, 0x10000, 1),
    _invalid(ReadCoils, 0, 0),
    _invalid(ReadCoils, 0, 2001),
    _invalid(ReadCoils, "0", 1),
    _invalid(ReadDiscreteInputs, 0, 2001),
    _invalid(ReadHoldingRegisters, 0, 126),
    _invalid(ReadHoldingRegisters, 0, 0),
    _invalid(ReadInputRegisters, 0, 126),
    _invalid(ReadCoilsResponse, ()),
    _invalid(ReadCoilsResponse, (True,) * 2001),
    _invalid(ReadDiscreteInputsResponse, ()),
    _invalid(ReadHoldingRegistersResponse, ()),
    _invalid(ReadHoldingRegistersResponse, (0,) * 126),
    _invalid(ReadHoldingRegistersResponse, (0x10000,)),
    _invalid(ReadHoldingRegistersResponse, (-1,)),
    _invalid(ReadHoldingRegistersResponse, ("1",)),
    _invalid(ReadInputRegistersResponse, (0,) * 126),
    _invalid(WriteSingleCoil, 0x10000, True),
    _invalid(WriteSingleCoilResponse, -1, True),
    _invalid(WriteSingleRegister, 0, 0x10000),
    _invalid(WriteSingleRegisterResponse, 0, -1),
    _invalid(ReadExceptionStatusResponse, 256),
    _invalid(Diagnostics, -1),
    _invalid(Diagnostics, 0x10000),
    _invalid(Diagnostics, 5),
    _invalid(Diagnostics, DiagnosticSubFunction.RESTART_COMMUNICATIONS_OPTION, b"\x12\x34"),
    _invalid(Diagnostics, DiagnosticSubFunction.RETURN_BUS_MESSAGE_COUNT, b""),
    _invalid(Diagnostics, DiagnosticSubFunction.CHANGE_ASCII_INPUT_DELIMITER, b"\x0a"),
    _invalid(Diagnostics, DiagnosticSubFunction.CHANGE_ASCII_INPUT_DELIMITER, b"\x0a\x01"),
    _invalid(Diagnostics, DiagnosticSubFunction.RETURN_QUERY_DATA, bytes(251)),
    _invalid(Diagnostics, DiagnosticSubFunction.RETURN_QUERY_DATA, "text"),
    _invalid(DiagnosticsResponse, 0x10000),
    _invalid(DiagnosticsResponse, 0, bytes(251)),
    _invalid(DiagnosticsResponse, DiagnosticSubFunction.RETURN_BUS_MESSAGE_COUNT, b""),
    _invalid(DiagnosticsResponse, DiagnosticSubFunction.RESTART_COMMUNICATIONS_OPTION, b"\xff\x00\x00"),
    _invalid(DiagnosticsResponse, 0x15, b"\x01"),
    _invalid(GetCommEventCounterResponse, 0x10000, 0),
    _invalid(GetCommEventCounterResponse, 0, -1),
    _invalid(GetCommEventLogResponse, -1, 0, 0),
    _invalid(GetCommEventLogResponse, 0, 0x10000, 0),
    _invalid(GetCommEventLogResponse, 0, 0, 0x10000),
    _invalid(GetCommEventLogResponse, 0, 0, 0, bytes(65)),
    _invalid(WriteMultipleCoils, 0, ()),
    _invalid(WriteMultipleCoils, 0, (True,) * 1969),
    _invalid(WriteMultipleCoils, -1, (True,)),
    _invalid(WriteMultipleCoilsResponse, 0, 0),
    _invalid(WriteMultipleCoilsResponse, 0, 1969),
    _invalid(WriteMultipleRegisters, 0, ()),
    _invalid(WriteMultipleRegisters, 0, (0,) * 124),
    _invalid(WriteMultipleRegistersResponse, 0, 124),
    _invalid(WriteMultipleRegistersResponse, 0x10000, 1),
    _invalid(ReportServerIdResponse, 256),
    _invalid(ReportServerIdResponse, 1, True, bytes(250)),
    _invalid(FileRecordReference, 0, 0, 1),
    _invalid(FileRecordReference, 1, 0x2710, 1),
    _invalid(FileRecordReference, 1, 0, 0),
    _invalid(FileRecordReference, 1, 0, 125),
    _invalid(FileRecord, 0, 0, (1,)),
    _invalid(FileRecord, 1, 0x2710, (1,)),
    _invalid(FileRecord, 1, 0, ()),
    _invalid(FileRecord, 1, 0, (0,) * 123),
    _invalid(ReadFileRecord, ()),
    _invalid(ReadFileRecord, (FileRecordReference(1, 0, 1),) * 36),
    _invalid(ReadFileRecord, ((1, 0, 1),)),
    _invalid(ReadFileRecord, (FileRecordReference(1, 0, 124), FileRecordReference(1, 0, 1))),
    _invalid(ReadFileRecordResponse, ()),
    _invalid(ReadFileRecordResponse, ((),)),
    _invalid(ReadFileRecordResponse, ((0,) * 124, (0,))),
    _invalid(WriteFileRecord, ()),
    _invalid(WriteFileRecord, ((1, 0, (1,)),)),
    _invalid(WriteFileRecord, (FileRecord(1, 0, (0,) * 122), FileRecord(1, 0, (0,)))),
    _invalid(WriteFileRecordResponse, ()),
    _invalid(MaskWriteRegister, 0, 0x10000, 0),
    _invalid(MaskWriteRegister, 0, 0, -1),
    _invalid(MaskWriteRegister, -1, 0, 0),
    _invalid(MaskWriteRegisterResponse, 0, 0, 0x10000),
    _invalid(ReadWriteMultipleRegisters, -1, 1, 0, (1,)),
    _invalid(ReadWriteMultipleRegisters, 0, 0, 0, (1,)),
    _invalid(ReadWriteMultipleRegisters, 0, 126, 0, (1,)),
    _invalid(ReadWriteMultipleRegisters, 0, 1, 0x10000, (1,)),
    _invalid(ReadWriteMultipleRegisters, 0, 1, 0, ()),
    _invalid(ReadWriteMultipleRegisters, 0, 1, 0, (0,) * 122),
    _invalid(ReadWriteMultipleRegistersResponse, ()),
    _invalid(ReadFifoQueue, 0x10000),
    _invalid(ReadFifoQueueResponse, (0,) * 32),
    _invalid(ReadDeviceIdentification, 0, 0),
    _invalid(ReadDeviceIdentification, 5, 0),
    _invalid(ReadDeviceIdentification, 1, 256),
    _invalid(ReadDeviceIdentificationResponse, 0, 1, False, 0, ()),
    _invalid(ReadDeviceIdentificationResponse, 1, 256, False, 0, ()),
    _invalid(ReadDeviceIdentificationResponse, 1, 1, False, 256, ()),
    _invalid(ReadDeviceIdentificationResponse, 1, 1, False, 0, ((256, b"x"),)),
    _invalid(ReadDeviceIdentificationResponse, 1, 1, False, 0, ((0, bytes(256)),)),
    _invalid(ReadDeviceIdentificationResponse, 1, 1, False, 0, ((0, 5),)),
    _invalid(ReadDeviceIdentificationResponse, 1, 1, False, 0, ((0, b"x", b"y"),)),
    _invalid(ReadDeviceIdentificationResponse, 1, 1, False, 0, (b"x",)),
    _invalid(ReadDeviceIdentificationResponse, 1, 1, False, 0, tuple((i, bytes(60)) for i in range(4))),
    _invalid(ExceptionResponse, 0, 1),
    _invalid(ExceptionResponse, 0x80, 1),
    _invalid(ExceptionResponse, 1, 256),
    _invalid(RawPdu, 0),
    _invalid(RawPdu, 0x80),
    _invalid(RawPdu, 0x41, bytes(253)),
    _invalid(RawPdu, 0x41, [1, 2]),
    _invalid(MalformedRequest, 256, 1, b""),
    _invalid(MalformedRequest, 3, 0, b""),
    _invalid(MalformedRequest, 3, 3, "data"),
]


@pytest.mark.parametrize(("factory", "args"), INVALID)
def test_constructor_enforces_the_specification(factory: Any, args: tuple[Any, ...]) -> None:
    with pytest.raises(LocalProtocolError):
        factory(*args)


def test_local_protocol_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="count"):
        ReadHoldingRegisters(0, 0)


def test_constructors_normalise_their_values() -> None:
    assert WriteSingleCoil(1, 1).value is True  # type: ignore[arg-type]
    assert WriteSingleCoilResponse(1, 0).value is False  # type: ignore[arg-type]
    assert ReadCoilsResponse([1, 0, "x"]).values == (True, False, True)  # type: ignore[arg-type]
    assert ReadDiscreteInputsResponse(iter([0])).values == (False,)  # type: ignore[arg-type]
    assert WriteMultipleCoils(0, [1]).values == (True,)  # type: ignore[arg-type]
    assert WriteMultipleRegisters(0, [1, 2]).values == (1, 2)  # type: ignore[arg-type]
    assert ReadHoldingRegistersResponse([7]).registers == (7,)  # type: ignore[arg-type]
    assert Diagnostics(0, bytearray(b"\x01\x02")).data == b"\x01\x02"  # type: ignore[arg-type]
    assert DiagnosticsResponse(0, memoryview(b"\x01")).data == b"\x01"  # type: ignore[arg-type]
    assert RawPdu(0x41, bytearray(b"\x01")).data == b"\x01"  # type: ignore[arg-type]
    assert ReportServerIdResponse(1, 0).running is False  # type: ignore[arg-type]
    assert ReadDeviceIdentificationResponse(1, 1, 1, 0, [(0, bytearray(b"a"))]).objects == ((0, b"a"),)  # type: ignore[arg-type]
    assert ReadDeviceIdentificationResponse(1, 1, 1, 0, ()).more_follows is True  # type: ignore[arg-type]
    assert ReadFileRecord([FileRecordReference(1, 0, 1)]).references == (FileRecordReference(1, 0, 1),)  # type: ignore[arg-type]
    assert ReadFileRecordResponse([[1, 2]]).records == ((1, 2),)  # type: ignore[arg-type]
    assert WriteFileRecord([FileRecord(1, 0, [3])]).records == (FileRecord(1, 0, (3,)),)  # type: ignore[arg-type]
    assert ReadWriteMultipleRegisters(0, 1, 0, [5]).write_values == (5,)  # type: ignore[arg-type]
    assert ReadFifoQueueResponse([]).values == ()  # type: ignore[arg-type]
    assert GetCommEventLogResponse(0, 0, 0, bytearray(b"\x20")).events == b"\x20"  # type: ignore[arg-type]
    assert MalformedRequest(3, 3, bytearray(b"\x00")).data == b"\x00"  # type: ignore[arg-type]


def test_diagnostics_defaults_and_value() -> None:
    assert Diagnostics(DiagnosticSubFunction.RETURN_BUS_MESSAGE_COUNT).data == b"\x00\x00"
    assert DiagnosticsResponse(DiagnosticSubFunction.RETURN_BUS_MESSAGE_COUNT, b"\x01\x07").value == 0x0107
    with pytest.raises(ValueError, match="3 bytes"):
        _ = DiagnosticsResponse(0, b"\x01\x02\x03").value


def test_device_identification_defaults() -> None:
    assert ReadDeviceIdentification() == ReadDeviceIdentification(DeviceIdCode.BASIC, 0)


def test_malformed_request_equality_ignores_the_reason() -> None:
    assert MalformedRequest(3, 3, b"", "one reason") == MalformedRequest(3, 3, b"", "another")
    assert MalformedRequest(3, 3, b"") != MalformedRequest(3, 1, b"")


def test_raw_pdu_is_both_a_request_and_a_response() -> None:
    raw = RawPdu(0x41, b"\x01")
    assert isinstance(raw, RequestPdu)
    assert isinstance(raw, ResponsePdu)


def test_pdus_are_frozen_hashable_and_picklable() -> None:
    pdu = ReadHoldingRegisters(1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        pdu.address = 3  # type: ignore[misc]
    assert hash(pdu) == hash(ReadHoldingRegisters(1, 2))
    assert pickle.loads(pickle.dumps(pdu)) == pdu
    decoded = TABLE.decode_request(pdu.encode())
    with pytest.raises(dataclasses.FrozenInstanceError):
        decoded.count = 3  # type: ignore[attr-defined]
    assert pickle.loads(pickle.dumps(decoded)) == decoded
    assert not hasattr(decoded, "__dict__")


@pytest.mark.parametrize(
    ("decode", "pdu"),
    [
        (TABLE.decode_request, WriteMultipleRegisters(16, (1, 0xFFFE)).encode()),
        (TABLE.decode_request, ReadWriteMultipleRegisters(0, 2, 10, (255,)).encode()),
        (TABLE.decode_response, ReadHoldingRegistersResponse((1, 0xFFFE)).encode()),
        (TABLE.decode_response, ReadInputRegistersResponse((0x0102,)).encode()),
        (TABLE.decode_response, ReadWriteMultipleRegistersResponse((0xABCD,)).encode()),
    ],
)
def test_pdus_carrying_registers_encode_as_decoded_and_copies_too(decode: Any, pdu: bytes) -> None:
    # They keep the bytes they were decoded from; copies, which do not, pack again.
    decoded = decode(pdu)
    assert decoded.encode() == pdu
    for duplicate in (pickle.loads(pickle.dumps(decoded)), dataclasses.replace(decoded), copy.copy(decoded)):
        assert duplicate == decoded
        assert duplicate.encode() == pdu
    # A buffer that may change afterwards is not kept.
    buffer = bytearray(pdu)
    from_buffer = decode(buffer)
    buffer[-1] ^= 0xFF
    assert from_buffer.encode() == pdu


def test_base_pdu_has_no_encoding() -> None:
    with pytest.raises(NotImplementedError):
        Pdu().encode()


def test_enumerations_hold_the_specification_codes() -> None:
    assert FunctionCode.ENCAPSULATED_INTERFACE_TRANSPORT.value == 0x2B
    assert FunctionCode.READ_FIFO_QUEUE.value == 0x18
    assert ExceptionCode.GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND.value == 0x0B
    assert DiagnosticSubFunction.CLEAR_OVERRUN_COUNTER_AND_FLAG.value == 0x14
    assert DeviceIdCode.SPECIFIC.value == 4
    # Each class carries the function code of the enumeration.
    for cls in REQUEST_CLASSES | RESPONSE_CLASSES:
        code = inspect.getattr_static(cls, "function_code")
        if isinstance(code, int):
            assert code in FunctionCode.__members__.values()
