"""The function table: how each function code decodes and how long it is.

One :class:`FunctionTable` maps every function code to its request decoder,
its response decoder and, for RTU, the rules that tell a framer where a
frame ends.  The default table knows every public function code; custom
function codes are added by building a new table
(``FunctionTable([CustomFunction(...)])``) and giving it to a connection or a
server.  Tables are immutable, so one can be shared by any number of
connections, and nothing is registered process-wide.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable, Iterable
from typing import Protocol, TypeAlias, runtime_checkable

from ._errors import LocalProtocolError, RemoteProtocolError
from ._pdu import (
    COIL_OFF,
    COIL_ON,
    FILE_REFERENCE_TYPE,
    MAX_PDU_SIZE,
    MAX_RECORD_NUMBER,
    MEI_READ_DEVICE_IDENTIFICATION,
    Diagnostics,
    DiagnosticsResponse,
    DiagnosticSubFunction,
    ExceptionCode,
    ExceptionResponse,
    FileRecord,
    FileRecordReference,
    GetCommEventCounter,
    GetCommEventCounterResponse,
    GetCommEventLog,
    GetCommEventLogResponse,
    MalformedRequest,
    MaskWriteRegister,
    MaskWriteRegisterResponse,
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
    _unchecked,
    diagnostic_request_error,
    mutable_twin,
    unpack_bits,
)

__all__ = ["CustomFunction", "CustomPdu", "FunctionTable", "RtuLength"]

_Buffer: TypeAlias = bytes | bytearray

# Results of a length rule besides a length: the end of the frame is known
# only from silence on the line, or these bytes cannot start such a frame.
BY_SILENCE = -1
INVALID = -2

LengthRule: TypeAlias = Callable[[_Buffer, int, int], "int | None"]
"""``rule(buffer, start, end)``: the PDU starts at ``buffer[start]`` (the
function code) and ``end - start`` bytes of it have arrived.  Returns the
PDU's length, None when more bytes are needed to know it, BY_SILENCE or
INVALID."""

RtuLength: TypeAlias = "int | Callable[[bytes], int | None] | None"
"""How an RTU framer finds where a custom PDU ends: a fixed PDU length
(function code included); a function given the PDU bytes received so far
that returns the PDU length, or None while it needs more bytes; or None when
only silence on the line ends the frame (slower: it waits for the gap)."""

_U16 = struct.Struct(">H")
_ADDR_COUNT = struct.Struct(">HH")
_WORDS = tuple(struct.Struct(f">{count}H") for count in range(126))  # big-endian registers, as many as one PDU holds
_FC_ADDR_COUNT = struct.Struct(">BHH")
_READ_WRITE = struct.Struct(">HHHHB")
_FILE_SUB = struct.Struct(">BHHH")

Pdu_: TypeAlias = "RequestPdu | ResponsePdu"


class _Malformed(Exception):
    """Raised inside decoders; the table turns it into the right result."""

    def __init__(self, reason: str, code: int = ExceptionCode.ILLEGAL_DATA_VALUE) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


# --------------------------------------------------------------------------
# request decoders: bytes -> RequestPdu, raising _Malformed


def _read_decoder(cls: type[RequestPdu], max_count: int) -> Callable[[bytes], RequestPdu]:
    # The hot path of every poller: one struct call that also checks the
    # length, and the instance built in place rather than by a helper.
    unpack = _FC_ADDR_COUNT.unpack
    twin = mutable_twin(cls)

    def decode(pdu: bytes) -> RequestPdu:
        try:
            _, address, count = unpack(pdu)
        except struct.error:
            raise _Malformed(f"a read request is 5 bytes, got {len(pdu)}") from None
        if 0 < count <= max_count:
            request = twin()
            request.address = address
            request.count = count
            request.__class__ = cls
            return request  # type: ignore[no-any-return]
        raise _Malformed(f"quantity {count} outside 1..{max_count}")

    return decode


def _fixed_size(pdu: bytes, size: int) -> None:
    if len(pdu) != size:
        raise _Malformed(f"function {pdu[0]} takes {size} bytes, got {len(pdu)}")


_make_write_coil = _unchecked(WriteSingleCoil)
_make_write_register = _unchecked(WriteSingleRegister)


def _decode_write_single_coil(pdu: bytes) -> RequestPdu:
    _fixed_size(pdu, 5)
    address, value = _ADDR_COUNT.unpack_from(pdu, 1)
    if value not in (COIL_ON, COIL_OFF):
        raise _Malformed(f"coil value must be 0x0000 or 0xFF00, got {value:#06x}")
    return _make_write_coil(address, value == COIL_ON)


def _decode_write_single_register(pdu: bytes) -> RequestPdu:
    _fixed_size(pdu, 5)
    address, value = _ADDR_COUNT.unpack_from(pdu, 1)
    return _make_write_register(address, value)


def _empty_decoder(cls: type[RequestPdu]) -> Callable[[bytes], RequestPdu]:
    instance = cls()

    def decode(pdu: bytes) -> RequestPdu:
        _fixed_size(pdu, 1)
        return instance

    return decode


_make_diagnostics = _unchecked(Diagnostics)


def _decode_diagnostics(pdu: bytes) -> RequestPdu:
    if len(pdu) < 3:
        raise _Malformed("a diagnostics request holds at least a sub-function")
    (sub_function,) = _U16.unpack_from(pdu, 1)
    data = pdu[3:]
    if len(pdu) > MAX_PDU_SIZE:
        raise _Malformed(f"a PDU is at most {MAX_PDU_SIZE} bytes, got {len(pdu)}")
    error = diagnostic_request_error(sub_function, data)
    if error is not None:
        known = sub_function in DiagnosticSubFunction._value2member_map_
        raise _Malformed(error, ExceptionCode.ILLEGAL_DATA_VALUE if known else ExceptionCode.ILLEGAL_FUNCTION)
    return _make_diagnostics(sub_function, data)


_make_write_coils = _unchecked(WriteMultipleCoils)


def _decode_write_multiple_coils(pdu: bytes) -> RequestPdu:
    if len(pdu) < 6:
        raise _Malformed("a write of coils needs address, quantity and byte count")
    address, count = _ADDR_COUNT.unpack_from(pdu, 1)
    byte_count = pdu[5]
    if not 0 < count <= WriteMultipleCoils.max_count:
        raise _Malformed(f"quantity {count} outside 1..1968")
    if byte_count != (count + 7) >> 3 or len(pdu) != 6 + byte_count:
        raise _Malformed(f"byte count {byte_count} does not fit quantity {count}")
    return _make_write_coils(address, unpack_bits(pdu[6:], count))


def _kept(pdu: bytes) -> bytes | None:
    """What a decoded PDU may keep as its encoding: *pdu* if it is bytes, which nobody can change."""
    return pdu if pdu.__class__ is bytes else None


_make_write_registers = _unchecked(WriteMultipleRegisters)


def _decode_write_multiple_registers(pdu: bytes) -> RequestPdu:
    if len(pdu) < 6:
        raise _Malformed("a write of registers needs address, quantity and byte count")
    address, count = _ADDR_COUNT.unpack_from(pdu, 1)
    byte_count = pdu[5]
    if not 0 < count <= WriteMultipleRegisters.max_count:
        raise _Malformed(f"quantity {count} outside 1..123")
    if byte_count != 2 * count or len(pdu) != 6 + byte_count:
        raise _Malformed(f"byte count {byte_count} does not fit quantity {count}")
    return _make_write_registers(address, _WORDS[count].unpack_from(pdu, 6), _kept(pdu))


_make_reference = _unchecked(FileRecordReference)
_make_read_file = _unchecked(ReadFileRecord)


def _decode_read_file_record(pdu: bytes) -> RequestPdu:
    if len(pdu) < 2:
        raise _Malformed("a file read needs a byte count")
    byte_count = pdu[1]
    if not 0x07 <= byte_count <= 0xF5 or byte_count % 7 or len(pdu) != 2 + byte_count:
        raise _Malformed(f"byte count {byte_count} is not 7..245 in 7-byte steps matching the PDU")
    references = []
    response_size = 2
    for offset in range(2, len(pdu), 7):
        ref_type, file_number, record_number, length = _FILE_SUB.unpack_from(pdu, offset)
        _check_file_sub_request(ref_type, file_number, record_number, length)
        response_size += 2 + 2 * length
        references.append(_make_reference(file_number, record_number, length))
    if response_size > MAX_PDU_SIZE:
        raise _Malformed(f"the response would take {response_size} bytes, more than 253")
    return _make_read_file(tuple(references))


def _check_file_sub_request(ref_type: int, file_number: int, record_number: int, length: int) -> None:
    if ref_type != FILE_REFERENCE_TYPE:
        raise _Malformed(f"reference type must be 6, got {ref_type}")
    if file_number == 0:
        raise _Malformed("file number 0 does not exist")
    if record_number > MAX_RECORD_NUMBER:
        raise _Malformed(f"record number {record_number} above 0x270F")
    if length == 0:
        raise _Malformed("record length 0")


_make_file_record = _unchecked(FileRecord)


def _parse_file_records(pdu: bytes) -> tuple[FileRecord, ...]:
    if len(pdu) < 2:
        raise _Malformed("a file write needs a data length")
    byte_count = pdu[1]
    if not 0x09 <= byte_count <= 0xFB or len(pdu) != 2 + byte_count:
        raise _Malformed(f"data length {byte_count} is not 9..251 matching the PDU")
    records = []
    offset = 2
    while offset < len(pdu):
        if offset + 7 > len(pdu):
            raise _Malformed("truncated file record header")
        ref_type, file_number, record_number, length = _FILE_SUB.unpack_from(pdu, offset)
        _check_file_sub_request(ref_type, file_number, record_number, length)
        end = offset + 7 + 2 * length
        if end > len(pdu):
            raise _Malformed("record data runs past the PDU")
        records.append(
            _make_file_record(file_number, record_number, struct.unpack_from(f">{length}H", pdu, offset + 7))
        )
        offset = end
    return tuple(records)


_make_write_file = _unchecked(WriteFileRecord)


def _decode_write_file_record(pdu: bytes) -> RequestPdu:
    return _make_write_file(_parse_file_records(pdu))


_make_mask_write = _unchecked(MaskWriteRegister)


def _decode_mask_write(pdu: bytes) -> RequestPdu:
    _fixed_size(pdu, 7)
    return _make_mask_write(*struct.unpack_from(">HHH", pdu, 1))


_make_read_write = _unchecked(ReadWriteMultipleRegisters)


def _decode_read_write(pdu: bytes) -> RequestPdu:
    if len(pdu) < 10:
        raise _Malformed("a read/write request needs 10 bytes of header")
    read_address, read_count, write_address, write_count, byte_count = _READ_WRITE.unpack_from(pdu, 1)
    if not 0 < read_count <= 125:
        raise _Malformed(f"read quantity {read_count} outside 1..125")
    if not 0 < write_count <= 121:
        raise _Malformed(f"write quantity {write_count} outside 1..121")
    if byte_count != 2 * write_count or len(pdu) != 10 + byte_count:
        raise _Malformed(f"byte count {byte_count} does not fit write quantity {write_count}")
    values = _WORDS[write_count].unpack_from(pdu, 10)
    return _make_read_write(read_address, read_count, write_address, values, _kept(pdu))


_make_fifo = _unchecked(ReadFifoQueue)


def _decode_read_fifo(pdu: bytes) -> RequestPdu:
    _fixed_size(pdu, 3)
    return _make_fifo(_U16.unpack_from(pdu, 1)[0])


_make_device_id = _unchecked(ReadDeviceIdentification)


def _decode_encapsulated(pdu: bytes) -> RequestPdu:
    if len(pdu) < 2:
        raise _Malformed("function 43 needs an MEI type")
    if pdu[1] != MEI_READ_DEVICE_IDENTIFICATION:
        # Other MEI types (13 is CANopen) are not built in: a handler or a
        # gateway can still take them as raw PDUs.
        return _raw_request(pdu)
    _fixed_size(pdu, 4)
    read_code, object_id = pdu[2], pdu[3]
    if not 1 <= read_code <= 4:
        raise _Malformed(f"read device id code {read_code} outside 1..4")
    return _make_device_id(read_code, object_id)


# --------------------------------------------------------------------------
# response decoders: bytes -> ResponsePdu, raising _Malformed


def _bits_response_decoder(cls: type[ResponsePdu]) -> Callable[[bytes], ResponsePdu]:
    make = _unchecked(cls)

    def decode(pdu: bytes) -> ResponsePdu:
        if len(pdu) < 3 or len(pdu) != 2 + pdu[1] or pdu[1] > 250:
            raise _Malformed("byte count does not match the PDU or exceeds 250")
        return make(unpack_bits(pdu[2:], 8 * pdu[1]))

    return decode


def _registers_response_decoder(cls: type[ResponsePdu]) -> Callable[[bytes], ResponsePdu]:
    make = _unchecked(cls)

    def decode(pdu: bytes) -> ResponsePdu:
        if len(pdu) < 4 or len(pdu) != 2 + pdu[1] or pdu[1] & 1 or pdu[1] > 250:
            raise _Malformed("byte count does not match the PDU or is not an even 2..250")
        return make(_WORDS[pdu[1] >> 1].unpack_from(pdu, 2), _kept(pdu))

    return decode


_make_write_coil_response = _unchecked(WriteSingleCoilResponse)


def _decode_write_single_coil_response(pdu: bytes) -> ResponsePdu:
    request: WriteSingleCoil = _decode_write_single_coil(pdu)  # type: ignore[assignment]
    return _make_write_coil_response(request.address, request.value)


def _echo_response_decoder(cls: type[ResponsePdu]) -> Callable[[bytes], ResponsePdu]:
    make = _unchecked(cls)

    def decode(pdu: bytes) -> ResponsePdu:
        _fixed_size(pdu, 5)
        return make(*_ADDR_COUNT.unpack_from(pdu, 1))

    return decode


def _count_response_decoder(cls: type[ResponsePdu], max_count: int) -> Callable[[bytes], ResponsePdu]:
    make = _unchecked(cls)

    def decode(pdu: bytes) -> ResponsePdu:
        _fixed_size(pdu, 5)
        address, count = _ADDR_COUNT.unpack_from(pdu, 1)
        if not 0 < count <= max_count:
            raise _Malformed(f"quantity {count} outside 1..{max_count}")
        return make(address, count)

    return decode


def _decode_exception_status_response(pdu: bytes) -> ResponsePdu:
    _fixed_size(pdu, 2)
    return ReadExceptionStatusResponse(pdu[1])


def _decode_diagnostics_response(pdu: bytes) -> ResponsePdu:
    if len(pdu) < 3:
        raise _Malformed("a diagnostics response holds at least a sub-function")
    return DiagnosticsResponse(_U16.unpack_from(pdu, 1)[0], pdu[3:])


def _decode_event_counter_response(pdu: bytes) -> ResponsePdu:
    _fixed_size(pdu, 5)
    return GetCommEventCounterResponse(*_ADDR_COUNT.unpack_from(pdu, 1))


def _decode_event_log_response(pdu: bytes) -> ResponsePdu:
    if len(pdu) < 8 or len(pdu) != 2 + pdu[1] or pdu[1] > 6 + 64:
        raise _Malformed("byte count does not match the PDU")
    status, event_count, message_count = struct.unpack_from(">HHH", pdu, 2)
    return GetCommEventLogResponse(status, event_count, message_count, pdu[8:])


def _decode_report_server_id_response(pdu: bytes) -> ResponsePdu:
    if len(pdu) < 4 or len(pdu) != 2 + pdu[1]:
        raise _Malformed("byte count does not match the PDU")
    return ReportServerIdResponse(pdu[2], pdu[3] != 0x00, pdu[4:])


def _decode_read_file_record_response(pdu: bytes) -> ResponsePdu:
    if len(pdu) < 2 or len(pdu) != 2 + pdu[1]:
        raise _Malformed("byte count does not match the PDU")
    groups = []
    offset = 2
    while offset < len(pdu):
        length = pdu[offset]
        end = offset + 1 + length
        if length < 3 or not length & 1 or end > len(pdu) or pdu[offset + 1] != FILE_REFERENCE_TYPE:
            raise _Malformed("bad file sub-response")
        groups.append(struct.unpack_from(f">{(length - 1) >> 1}H", pdu, offset + 2))
        offset = end
    if not groups:
        raise _Malformed("no file sub-response")
    return ReadFileRecordResponse(tuple(groups))


def _decode_write_file_record_response(pdu: bytes) -> ResponsePdu:
    return WriteFileRecordResponse(_parse_file_records(pdu))


def _decode_mask_write_response(pdu: bytes) -> ResponsePdu:
    _fixed_size(pdu, 7)
    return MaskWriteRegisterResponse(*struct.unpack_from(">HHH", pdu, 1))


def _decode_fifo_response(pdu: bytes) -> ResponsePdu:
    if len(pdu) < 5:
        raise _Malformed("a FIFO response needs byte count and FIFO count")
    byte_count, count = _ADDR_COUNT.unpack_from(pdu, 1)
    if count > 31 or byte_count != 2 + 2 * count or len(pdu) != 3 + byte_count:
        raise _Malformed("FIFO byte count and count disagree")
    return ReadFifoQueueResponse(struct.unpack_from(f">{count}H", pdu, 5))


def _decode_encapsulated_response(pdu: bytes) -> ResponsePdu:
    if len(pdu) < 2 or pdu[1] != MEI_READ_DEVICE_IDENTIFICATION:
        return RawPdu(pdu[0], pdu[1:])
    if len(pdu) < 7:
        raise _Malformed("a device identification response needs 7 bytes of header")
    read_code, conformity, more_follows, next_object_id, number = pdu[2:7]
    if more_follows not in (0x00, 0xFF) or not 1 <= read_code <= 4:
        raise _Malformed("bad device identification header")
    objects = []
    offset = 7
    for _ in range(number):
        if offset + 2 > len(pdu) or offset + 2 + pdu[offset + 1] > len(pdu):
            raise _Malformed("truncated identification object")
        length = pdu[offset + 1]
        objects.append((pdu[offset], pdu[offset + 2 : offset + 2 + length]))
        offset += 2 + length
    if offset != len(pdu):
        raise _Malformed("bytes after the last identification object")
    return ReadDeviceIdentificationResponse(read_code, conformity, more_follows == 0xFF, next_object_id, tuple(objects))


# --------------------------------------------------------------------------
# RTU length rules


def _byte_at(offset: int, base: int) -> LengthRule:
    """The PDU is ``base + buffer[start + offset]`` bytes long."""

    def rule(buffer: _Buffer, start: int, end: int) -> int | None:
        if end - start <= offset:
            return None
        return base + buffer[start + offset]

    return rule


def _word_at(offset: int, base: int) -> LengthRule:
    def rule(buffer: _Buffer, start: int, end: int) -> int | None:
        if end - start <= offset + 1:
            return None
        return base + (buffer[start + offset] << 8 | buffer[start + offset + 1])

    return rule


def _diagnostics_length(buffer: _Buffer, start: int, end: int) -> int | None:
    if end - start < 3:
        return None
    # Only "return query data" may carry any amount of data.
    if buffer[start + 1] == 0 and buffer[start + 2] == DiagnosticSubFunction.RETURN_QUERY_DATA:
        return BY_SILENCE
    return 5


def _encapsulated_request_length(buffer: _Buffer, start: int, end: int) -> int | None:
    if end - start < 2:
        return None
    return 4 if buffer[start + 1] == MEI_READ_DEVICE_IDENTIFICATION else BY_SILENCE


def _encapsulated_response_length(buffer: _Buffer, start: int, end: int) -> int | None:
    if end - start < 2:
        return None
    if buffer[start + 1] != MEI_READ_DEVICE_IDENTIFICATION:
        return BY_SILENCE
    if end - start < 7:
        return None
    offset = start + 7
    for _ in range(buffer[start + 6]):
        if offset + 1 >= end:
            return None
        offset += 2 + buffer[offset + 1]
        if offset - start > MAX_PDU_SIZE:
            return INVALID
    return offset - start


# --------------------------------------------------------------------------
# custom functions and the table


@runtime_checkable
class CustomPdu(Protocol):
    """What a custom request or response class provides.

    Subclass :class:`RequestPdu` or :class:`ResponsePdu` as a frozen
    dataclass with a ``function_code`` class attribute, an ``encode()`` that
    returns the whole PDU (function code first), and a ``decode`` class
    method that takes the whole PDU and raises ``ValueError`` when it is
    malformed (a server then answers exception 03).
    """

    function_code: int

    def encode(self) -> bytes:
        """Return the PDU as bytes, function code first."""


@dataclasses.dataclass(frozen=True, slots=True)
class CustomFunction:
    """A function code added to a :class:`FunctionTable`.

    *request* and *response* are the PDU classes (see :class:`CustomPdu`).
    *request_length* and *response_length* tell an RTU framer where frames
    end (see :data:`RtuLength`); MBAP and ASCII frames do not need them.
    User-defined function codes are 65-72 and 100-110, but any code may be
    replaced, for devices that speak a dialect.
    """

    function_code: int
    request: type[RequestPdu]
    response: type[ResponsePdu]
    request_length: RtuLength = None
    response_length: RtuLength = None

    def __post_init__(self) -> None:
        if not isinstance(self.function_code, int) or not 1 <= self.function_code <= 0x7F:
            raise LocalProtocolError(f"function code must be 1..127, got {self.function_code!r}")
        for cls in (self.request, self.response):
            if not callable(getattr(cls, "decode", None)):
                raise LocalProtocolError(f"{cls.__name__} needs a decode(pdu: bytes) class method")


def _custom_rule(length: RtuLength) -> int | LengthRule:
    if length is None:
        return BY_SILENCE
    if isinstance(length, int):
        if not 1 <= length <= MAX_PDU_SIZE:
            raise LocalProtocolError(f"a PDU length must be 1..253, got {length}")
        return length
    measure = length

    def rule(buffer: _Buffer, start: int, end: int) -> int | None:
        result = measure(bytes(buffer[start:end]))
        if result is None:
            return None
        # Anything but a positive length says that no such frame starts here.
        return result if isinstance(result, int) and result > 0 else INVALID

    return rule


def _custom_decoder(cls: type[RequestPdu] | type[ResponsePdu]) -> Callable[[bytes], Pdu_]:
    decode_method: Callable[[bytes], Pdu_] = cls.decode  # type: ignore[union-attr]
    base = RequestPdu if issubclass(cls, RequestPdu) else ResponsePdu

    def decode(pdu: bytes) -> Pdu_:
        try:
            result = decode_method(pdu)
        except (ValueError, IndexError, struct.error) as error:
            raise _Malformed(f"{cls.__name__}: {error}") from None
        if not isinstance(result, base):
            raise LocalProtocolError(f"{cls.__name__}.decode returned {type(result).__name__}, not a {base.__name__}")
        return result

    return decode


_REQUEST_DECODERS: dict[int, Callable[[bytes], RequestPdu]] = {
    0x01: _read_decoder(ReadCoils, 2000),
    0x02: _read_decoder(ReadDiscreteInputs, 2000),
    0x03: _read_decoder(ReadHoldingRegisters, 125),
    0x04: _read_decoder(ReadInputRegisters, 125),
    0x05: _decode_write_single_coil,
    0x06: _decode_write_single_register,
    0x07: _empty_decoder(ReadExceptionStatus),
    0x08: _decode_diagnostics,
    0x0B: _empty_decoder(GetCommEventCounter),
    0x0C: _empty_decoder(GetCommEventLog),
    0x0F: _decode_write_multiple_coils,
    0x10: _decode_write_multiple_registers,
    0x11: _empty_decoder(ReportServerId),
    0x14: _decode_read_file_record,
    0x15: _decode_write_file_record,
    0x16: _decode_mask_write,
    0x17: _decode_read_write,
    0x18: _decode_read_fifo,
    0x2B: _decode_encapsulated,
}

_RESPONSE_DECODERS: dict[int, Callable[[bytes], ResponsePdu]] = {
    0x01: _bits_response_decoder(ReadCoilsResponse),
    0x02: _bits_response_decoder(ReadDiscreteInputsResponse),
    0x03: _registers_response_decoder(ReadHoldingRegistersResponse),
    0x04: _registers_response_decoder(ReadInputRegistersResponse),
    0x05: _decode_write_single_coil_response,
    0x06: _echo_response_decoder(WriteSingleRegisterResponse),
    0x07: _decode_exception_status_response,
    0x08: _decode_diagnostics_response,
    0x0B: _decode_event_counter_response,
    0x0C: _decode_event_log_response,
    0x0F: _count_response_decoder(WriteMultipleCoilsResponse, 1968),
    0x10: _count_response_decoder(WriteMultipleRegistersResponse, 123),
    0x11: _decode_report_server_id_response,
    0x14: _decode_read_file_record_response,
    0x15: _decode_write_file_record_response,
    0x16: _decode_mask_write_response,
    0x17: _registers_response_decoder(ReadWriteMultipleRegistersResponse),
    0x18: _decode_fifo_response,
    0x2B: _decode_encapsulated_response,
}

# A length table maps a function code to a fixed PDU length or to a rule.
_REQUEST_LENGTHS: dict[int, int | LengthRule] = {
    **dict.fromkeys((1, 2, 3, 4, 5, 6), 5),
    **dict.fromkeys((7, 11, 12, 17), 1),
    0x08: _diagnostics_length,
    0x0F: _byte_at(5, 6),
    0x10: _byte_at(5, 6),
    0x14: _byte_at(1, 2),
    0x15: _byte_at(1, 2),
    0x16: 7,
    0x17: _byte_at(9, 10),
    0x18: 3,
    0x2B: _encapsulated_request_length,
}

_RESPONSE_LENGTHS: dict[int, int | LengthRule] = {
    **{code: _byte_at(1, 2) for code in (0x01, 0x02, 0x03, 0x04, 0x0C, 0x11, 0x14, 0x15, 0x17)},
    **dict.fromkeys((5, 6, 11, 15, 16), 5),
    0x07: 2,
    0x08: _diagnostics_length,
    0x16: 7,
    0x18: _word_at(1, 3),
    0x2B: _encapsulated_response_length,
}


def _rules(lengths: dict[int, int | LengthRule], *, responses: bool) -> tuple[int | LengthRule, ...]:
    """A rule for each of the 256 codes, so that a framer looks one up by index."""
    rules: list[int | LengthRule] = []
    for code in range(256):
        if code == 0 or code == 0x80:
            rules.append(INVALID)
        elif code & 0x80:
            rules.append(2 if responses else INVALID)  # an exception response is the code and one byte
        else:
            rules.append(lengths.get(code, BY_SILENCE))
    return tuple(rules)


class FunctionTable:
    """Decoders and RTU length rules for every function code a peer speaks.

    ``FunctionTable()`` is the standard table.  ``FunctionTable(custom)``
    adds or replaces function codes with :class:`CustomFunction` entries.
    A table never changes after it is built.
    """

    __slots__ = ("_request_decoders", "_response_decoders", "custom", "request_rules", "response_rules")

    def __init__(self, custom: Iterable[CustomFunction] = ()) -> None:
        self.custom: tuple[CustomFunction, ...] = tuple(custom)
        self._request_decoders = dict(_REQUEST_DECODERS)
        self._response_decoders = dict(_RESPONSE_DECODERS)
        request_lengths = dict(_REQUEST_LENGTHS)
        response_lengths = dict(_RESPONSE_LENGTHS)
        for function in self.custom:
            if not isinstance(function, CustomFunction):
                raise LocalProtocolError(f"expected CustomFunction, got {type(function).__name__}")
            code = function.function_code
            self._request_decoders[code] = _custom_decoder(function.request)  # type: ignore[assignment]
            self._response_decoders[code] = _custom_decoder(function.response)  # type: ignore[assignment]
            request_lengths[code] = _custom_rule(function.request_length)
            response_lengths[code] = _custom_rule(function.response_length)
        # For RTU framers: ``rules[function_code]`` is a PDU length, BY_SILENCE,
        # INVALID, or a LengthRule that reads the length from the bytes.
        self.request_rules = _rules(request_lengths, responses=False)
        self.response_rules = _rules(response_lengths, responses=True)

    def __repr__(self) -> str:
        codes = ", ".join(str(function.function_code) for function in self.custom)
        return f"FunctionTable(custom=[{codes}])" if codes else "FunctionTable()"

    def decode_request(self, pdu: bytes) -> RequestPdu:
        """Decode a request PDU (function code first).

        Never raises for bad input: an unknown function code gives a
        :class:`RawPdu`, a malformed request a :class:`MalformedRequest`
        carrying the exception code a server must answer with.
        """
        if not pdu:
            return MalformedRequest(0, ExceptionCode.ILLEGAL_FUNCTION, b"", "empty PDU")
        decoder = self._request_decoders.get(pdu[0], _raw_request)
        try:
            return decoder(pdu)
        except _Malformed as error:
            return MalformedRequest(pdu[0], error.code, pdu[1:], error.reason)

    def decode_response(self, pdu: bytes) -> ResponsePdu:
        """Decode a response PDU; raise :class:`RemoteProtocolError` if malformed."""
        if not pdu:
            raise RemoteProtocolError("empty response PDU")
        decoder = self._response_decoders.get(pdu[0], _decode_other_response)
        try:
            return decoder(pdu)
        except (_Malformed, LocalProtocolError) as error:
            raise RemoteProtocolError(f"malformed response to function {pdu[0] & 0x7F}: {error}") from None

    def request_length(self, buffer: _Buffer, start: int, end: int) -> int | None:
        """Length of the request PDU that starts at ``buffer[start]``, of which
        ``end - start`` bytes have arrived: None while more bytes are needed
        to know it; -1 when only silence on the line ends it; -2 when these
        bytes cannot start a request.  Used by :class:`RtuFramer`."""
        rule = self.request_rules[buffer[start]]
        return rule if isinstance(rule, int) else rule(buffer, start, end)

    def response_length(self, buffer: _Buffer, start: int, end: int) -> int | None:
        """Length of the response PDU that starts at ``buffer[start]``, with
        the same results as :meth:`request_length`."""
        rule = self.response_rules[buffer[start]]
        return rule if isinstance(rule, int) else rule(buffer, start, end)


def _raw_request(pdu: bytes) -> RequestPdu:
    """A function code the table does not know: a server answers 01, a gateway forwards it."""
    if pdu[0] & 0x80 or pdu[0] == 0:
        raise _Malformed("not a request function code", ExceptionCode.ILLEGAL_FUNCTION)
    if len(pdu) > MAX_PDU_SIZE:
        raise _Malformed(f"a PDU is at most {MAX_PDU_SIZE} bytes, got {len(pdu)}", ExceptionCode.ILLEGAL_FUNCTION)
    return RawPdu(pdu[0], pdu[1:])


def _decode_other_response(pdu: bytes) -> ResponsePdu:
    """An exception response, or a function code the table does not know."""
    code = pdu[0]
    if code & 0x80:
        if len(pdu) != 2:
            raise _Malformed(f"an exception response is 2 bytes, got {len(pdu)}")
        return ExceptionResponse(code & 0x7F, pdu[1])
    return RawPdu(code, pdu[1:])


DEFAULT_FUNCTIONS = FunctionTable()
