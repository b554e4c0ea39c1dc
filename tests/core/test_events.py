"""Events: validation, answers built from a request, drops and the NEED_DATA sentinel."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import pytest

from modbus_core import (
    NEED_DATA,
    DropCause,
    ExceptionCode,
    ExceptionResponse,
    FrameDropped,
    LocalProtocolError,
    MalformedRequest,
    MbapFramer,
    ModbusError,
    ModbusExceptionError,
    NeedData,
    ProtocolError,
    RawPdu,
    ReadHoldingRegisters,
    ReadHoldingRegistersResponse,
    RemoteProtocolError,
    Request,
    Response,
    RtuFramer,
    ServerConnection,
)

from .cases import feed, mbap, rtu, whole


@pytest.mark.parametrize(
    ("factory", "args"),
    [
        (Request, (ReadHoldingRegistersResponse((1,)), 1)),
        (Request, (ReadHoldingRegisters(0, 1), 256)),
        (Request, (ReadHoldingRegisters(0, 1), -1)),
        (Request, (ReadHoldingRegisters(0, 1), 1, 0x10000)),
        (Request, (b"\x03\x00\x00\x00\x01", 1)),
        (Response, (ReadHoldingRegisters(0, 1), 1)),
        (Response, (ReadHoldingRegistersResponse((1,)), 256)),
        (Response, (ReadHoldingRegistersResponse((1,)), 1, -1)),
    ],
)
def test_events_validate_their_fields(factory: Any, args: tuple[Any, ...]) -> None:
    with pytest.raises(LocalProtocolError):
        factory(*args)


def test_reply_and_exception_keep_unit_and_transaction() -> None:
    request = Request(ReadHoldingRegisters(0, 1), 7, 0x1234)
    assert request.reply(ReadHoldingRegistersResponse((5,))) == Response(ReadHoldingRegistersResponse((5,)), 7, 0x1234)
    answer = request.exception(ExceptionCode.ILLEGAL_DATA_ADDRESS)
    assert answer == Response(ExceptionResponse(3, 2), 7, 0x1234)
    assert answer.is_exception
    assert not request.reply(ReadHoldingRegistersResponse((5,))).is_exception
    with pytest.raises(LocalProtocolError):
        request.reply(ReadHoldingRegisters(0, 1))  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        request.exception(256)


def test_exception_to_a_raw_or_malformed_request() -> None:
    assert Request(RawPdu(0x41), 1).exception(1).pdu == ExceptionResponse(0x41, 1)
    assert Request(MalformedRequest(0x83, 1, b""), 1).exception(1).pdu == ExceptionResponse(3, 1)
    # Function code 0 has no exception response (0x80 is no function).
    for code in (0x00, 0x80):
        with pytest.raises(LocalProtocolError):
            Request(MalformedRequest(code, 1, b""), 1).exception(1)


def test_frame_dropped_reason() -> None:
    assert FrameDropped(DropCause.CHECKSUM).reason == "bad CRC or LRC"
    assert (
        FrameDropped(DropCause.GARBAGE, b"x", "bytes before ':'").reason
        == "bytes that start no frame: bytes before ':'"
    )


def test_communication_errors() -> None:
    errors = {cause for cause in DropCause if cause.is_communication_error}
    assert DropCause.CHECKSUM in errors
    assert DropCause.TOO_SHORT in errors
    assert DropCause.OVERRUN in errors
    assert DropCause.PROTOCOL_ID not in errors
    assert DropCause.UNEXPECTED not in errors
    assert DropCause.MALFORMED not in errors


def test_need_data_is_a_singleton() -> None:
    assert repr(NEED_DATA) == "NEED_DATA"
    assert isinstance(NEED_DATA, NeedData)
    assert pickle.loads(pickle.dumps(NEED_DATA)) is NEED_DATA
    assert copy.deepcopy(NEED_DATA) is NEED_DATA


def _decoded_events() -> list[Request]:
    """Requests built by each path of a server connection."""
    tcp = ServerConnection(MbapFramer())
    serial = ServerConnection(RtuFramer(19200))
    events = []
    for transaction_id in (1, 2):  # the second read hits the whole-frame cache
        events += feed(tcp, whole(mbap(transaction_id, 1, bytes.fromhex("0300000001"))))
        events += feed(serial, whole(rtu(1, bytes.fromhex("0300000001"))))
    events += feed(tcp, whole(mbap(3, 1, bytes.fromhex("0300000001")) * 2))
    assert all(type(event) is Request for event in events)
    return events  # type: ignore[return-value]


@pytest.mark.parametrize("event", _decoded_events())
def test_decoded_events_are_ordinary_frozen_events(event: Request) -> None:
    assert event == Request(ReadHoldingRegisters(0, 1), 1, event.transaction_id)
    assert type(event.pdu) is ReadHoldingRegisters
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.unit = 2  # type: ignore[misc]
    # A new attribute fails too (TypeError on Python 3.11, where the frozen
    # __setattr__ of a slotted dataclass refers to the class before slots).
    with pytest.raises((AttributeError, TypeError)):
        event.extra = 1  # type: ignore[attr-defined]
    assert not hasattr(event, "__dict__")
    assert pickle.loads(pickle.dumps(event)) == event
    assert hash(event) == hash(Request(ReadHoldingRegisters(0, 1), 1, event.transaction_id))
    assert dataclasses.replace(event, unit=2).unit == 2


def test_error_hierarchy() -> None:
    assert issubclass(LocalProtocolError, ProtocolError)
    assert issubclass(LocalProtocolError, ValueError)
    assert issubclass(RemoteProtocolError, ProtocolError)
    assert issubclass(ProtocolError, ModbusError)
    assert issubclass(ModbusExceptionError, ModbusError)
    busy = ModbusExceptionError(ExceptionCode.SERVER_DEVICE_BUSY)
    assert busy.exception_code == 6
    assert str(busy) == "Modbus exception 0x06"
    assert str(ModbusExceptionError(2, "no such register")) == "no such register"
