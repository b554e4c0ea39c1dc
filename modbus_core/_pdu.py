"""Protocol data units: one frozen dataclass per request and per response.

A PDU is the part of a Modbus message that does not depend on the
transport: the function code and its data.  Every class here can encode
itself (``pdu.encode() -> bytes``, function code included); decoding goes
through the per-function tables in :mod:`._functions`, because a decoder
must sometimes answer "this request is malformed, reply with exception 03"
instead of raising.

Constructors validate against the specification and raise
:class:`LocalProtocolError`.  Decoders validate while they parse and then
build instances through :func:`_unchecked` so that the hot path does not pay
for the same checks twice.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from ._errors import LocalProtocolError

__all__ = [
    "DeviceIdCode",
    "Diagnostics",
    "DiagnosticsResponse",
    "DiagnosticSubFunction",
    "ExceptionCode",
    "ExceptionResponse",
    "FileRecord",
    "FileRecordReference",
    "FunctionCode",
    "GetCommEventCounter",
    "GetCommEventCounterResponse",
    "GetCommEventLog",
    "GetCommEventLogResponse",
    "MalformedRequest",
    "MaskWriteRegister",
    "MaskWriteRegisterResponse",
    "Pdu",
    "RawPdu",
    "ReadCoils",
    "ReadCoilsResponse",
    "ReadDeviceIdentification",
    "ReadDeviceIdentificationResponse",
    "ReadDiscreteInputs",
    "ReadDiscreteInputsResponse",
    "ReadExceptionStatus",
    "ReadExceptionStatusResponse",
    "ReadFifoQueue",
    "ReadFifoQueueResponse",
    "ReadFileRecord",
    "ReadFileRecordResponse",
    "ReadHoldingRegisters",
    "ReadHoldingRegistersResponse",
    "ReadInputRegisters",
    "ReadInputRegistersResponse",
    "ReadWriteMultipleRegisters",
    "ReadWriteMultipleRegistersResponse",
    "ReportServerId",
    "ReportServerIdResponse",
    "RequestPdu",
    "ResponsePdu",
    "WriteFileRecord",
    "WriteFileRecordResponse",
    "WriteMultipleCoils",
    "WriteMultipleCoilsResponse",
    "WriteMultipleRegisters",
    "WriteMultipleRegistersResponse",
    "WriteSingleCoil",
    "WriteSingleCoilResponse",
    "WriteSingleRegister",
    "WriteSingleRegisterResponse",
]

MAX_PDU_SIZE = 253


class FunctionCode(enum.IntEnum):
    """The public function codes of the Modbus application protocol."""

    READ_COILS = 0x01
    READ_DISCRETE_INPUTS = 0x02
    READ_HOLDING_REGISTERS = 0x03
    READ_INPUT_REGISTERS = 0x04
    WRITE_SINGLE_COIL = 0x05
    WRITE_SINGLE_REGISTER = 0x06
    READ_EXCEPTION_STATUS = 0x07
    DIAGNOSTICS = 0x08
    GET_COMM_EVENT_COUNTER = 0x0B
    GET_COMM_EVENT_LOG = 0x0C
    WRITE_MULTIPLE_COILS = 0x0F
    WRITE_MULTIPLE_REGISTERS = 0x10
    REPORT_SERVER_ID = 0x11
    READ_FILE_RECORD = 0x14
    WRITE_FILE_RECORD = 0x15
    MASK_WRITE_REGISTER = 0x16
    READ_WRITE_MULTIPLE_REGISTERS = 0x17
    READ_FIFO_QUEUE = 0x18
    ENCAPSULATED_INTERFACE_TRANSPORT = 0x2B


class ExceptionCode(enum.IntEnum):
    """Exception codes carried by an :class:`ExceptionResponse`."""

    ILLEGAL_FUNCTION = 0x01
    ILLEGAL_DATA_ADDRESS = 0x02
    ILLEGAL_DATA_VALUE = 0x03
    SERVER_DEVICE_FAILURE = 0x04
    ACKNOWLEDGE = 0x05
    SERVER_DEVICE_BUSY = 0x06
    NEGATIVE_ACKNOWLEDGE = 0x07
    MEMORY_PARITY_ERROR = 0x08
    GATEWAY_PATH_UNAVAILABLE = 0x0A
    GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND = 0x0B


class DiagnosticSubFunction(enum.IntEnum):
    """Sub-function codes of function 08 (serial line diagnostics)."""

    RETURN_QUERY_DATA = 0x00
    RESTART_COMMUNICATIONS_OPTION = 0x01
    RETURN_DIAGNOSTIC_REGISTER = 0x02
    CHANGE_ASCII_INPUT_DELIMITER = 0x03
    FORCE_LISTEN_ONLY_MODE = 0x04
    CLEAR_COUNTERS_AND_DIAGNOSTIC_REGISTER = 0x0A
    RETURN_BUS_MESSAGE_COUNT = 0x0B
    RETURN_BUS_COMMUNICATION_ERROR_COUNT = 0x0C
    RETURN_BUS_EXCEPTION_ERROR_COUNT = 0x0D
    RETURN_SERVER_MESSAGE_COUNT = 0x0E
    RETURN_SERVER_NO_RESPONSE_COUNT = 0x0F
    RETURN_SERVER_NAK_COUNT = 0x10
    RETURN_SERVER_BUSY_COUNT = 0x11
    RETURN_BUS_CHARACTER_OVERRUN_COUNT = 0x12
    CLEAR_OVERRUN_COUNTER_AND_FLAG = 0x14


class DeviceIdCode(enum.IntEnum):
    """Read Device ID codes of function 43 / MEI 14."""

    BASIC = 0x01
    REGULAR = 0x02
    EXTENDED = 0x03
    SPECIFIC = 0x04


MEI_READ_DEVICE_IDENTIFICATION = 0x0E
FILE_REFERENCE_TYPE = 0x06
MAX_RECORD_NUMBER = 0x270F
# The longest group of records that fits a PDU: a read response carries
# function, byte count, then per group a length and a reference type; a
# write request carries function, data length, then a 7-byte header per group.
MAX_READ_RECORD_LENGTH = (MAX_PDU_SIZE - 4) // 2
MAX_WRITE_RECORD_LENGTH = (0xFB - 7) // 2


# --------------------------------------------------------------------------
# base classes


class Pdu:
    """Base class of every PDU.

    ``function_code`` is a class attribute for the typed PDUs and a field for
    :class:`ExceptionResponse`, :class:`RawPdu` and :class:`MalformedRequest`.
    """

    __slots__ = ()

    if TYPE_CHECKING:

        @property
        def function_code(self) -> int: ...

    def encode(self) -> bytes:
        """Return the PDU as bytes, function code first."""
        raise NotImplementedError


class RequestPdu(Pdu):
    """Base class of requests (what a client sends and a server receives)."""

    __slots__ = ()


class ResponsePdu(Pdu):
    """Base class of responses (what a server sends and a client receives)."""

    __slots__ = ()


# --------------------------------------------------------------------------
# validation and packing helpers

_T = TypeVar("_T")


def mutable_twin(cls: type) -> Any:
    """A class with the same slots as the frozen dataclass *cls*, but mutable.

    Decoders build an instance of the twin with plain slot stores (fast:
    the interpreter specialises them) and then set its ``__class__`` to
    *cls*, which CPython allows between classes of identical layout.  The
    result is an ordinary, frozen instance of *cls*, at about half the cost
    of setting each slot through its descriptor, the only other way past a
    frozen ``__setattr__``.
    """
    twin = type(
        f"_Mutable{cls.__name__}", cls.__bases__, {"__slots__": vars(cls)["__slots__"], "__module__": cls.__module__}
    )
    twin().__class__ = cls  # fails here, at import, if the layouts ever differ
    return twin


def _unchecked(cls: type[_T]) -> Callable[..., _T]:
    """Return a constructor for *cls* that skips ``__post_init__``.

    For decoders that have validated every field while parsing.  Generated
    like the ``__init__`` of a dataclass, with a :func:`mutable_twin`.  For
    an :class:`_Encoded` class it also takes ``_wire``: the PDU's bytes.
    """
    names = [field.name for field in dataclasses.fields(cls)]  # type: ignore[arg-type]
    stores = "".join(f"    obj.{name} = {name}\n" for name in names)
    if issubclass(cls, _Encoded):
        names.append("_wire=None")
        stores += "    obj._wire = _wire\n"
    source = f"def make({', '.join(names)}):\n    obj = twin()\n{stores}    obj.__class__ = cls\n    return obj\n"
    namespace: dict[str, Any] = {"twin": mutable_twin(cls), "cls": cls}
    exec(source, namespace)
    make: Callable[..., _T] = namespace["make"]
    return make


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or not low <= value <= high:
        raise LocalProtocolError(f"{name} must be an integer in {low}..{high}, got {value!r}")


def _check_address(value: object) -> None:
    _check_int("address", value, 0, 0xFFFF)


def _registers(name: str, values: Iterable[int], low: int, high: int) -> tuple[int, ...]:
    result = tuple(values)
    if not low <= len(result) <= high:
        raise LocalProtocolError(f"{name} must hold {low}..{high} registers, got {len(result)}")
    for value in result:
        if not isinstance(value, int) or not 0 <= value <= 0xFFFF:
            raise LocalProtocolError(f"register values must be integers in 0..65535, got {value!r}")
    return result


def _bits(name: str, values: Iterable[object], low: int, high: int) -> tuple[bool, ...]:
    result = tuple(bool(value) for value in values)
    if not low <= len(result) <= high:
        raise LocalProtocolError(f"{name} must hold {low}..{high} bits, got {len(result)}")
    return result


def _check_bytes(name: str, value: object, high: int | None) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise LocalProtocolError(f"{name} must be bytes, got {type(value).__name__}")
    result = bytes(value)
    if high is not None and len(result) > high:
        raise LocalProtocolError(f"{name} may hold at most {high} bytes, got {len(result)}")
    return result


_BIT_CHARS = bytes.maketrans(b"\x00\x01", b"01")
_CHAR_BITS = bytes.maketrans(b"01", b"\x00\x01")


def pack_bits(values: Sequence[bool]) -> bytes:
    """Pack booleans (at least one) LSB first, eight to a byte, the last byte zero-padded."""
    # bytes(values) is b"\x00\x01...", the string reversed is the binary
    # number whose bit i is values[i]: all the work stays in C.
    number = int(bytes(values).translate(_BIT_CHARS)[::-1], 2)
    return number.to_bytes((len(values) + 7) >> 3, "little")


def unpack_bits(data: bytes, count: int) -> tuple[bool, ...]:
    """Unpack *count* (at least one) booleans packed LSB first (the inverse of :func:`pack_bits`)."""
    number = int.from_bytes(data, "little")
    digits = format(number, f"0{len(data) * 8}b")[::-1][:count]
    return tuple(map(bool, digits.encode().translate(_CHAR_BITS)))


_WORDS = tuple(struct.Struct(f">{n}H") for n in range(128))
_FC_COUNT_WORDS = tuple(struct.Struct(f">BB{n}H") for n in range(128))
_FC_ADDR_VALUE = struct.Struct(">BHH")
_FC_WORD = struct.Struct(">BH")
_FC_WORD_WORD = struct.Struct(">BHH")


class _Encoded:
    """A PDU carrying registers, which may keep its own encoding.

    Packing 100 registers costs about 1.5 us, and these bytes often exist
    already: the frame a request was decoded from, or the answer the
    dispatcher built straight from a datastore's table.  ``_wire`` holds them
    (None: pack when asked).  It is a slot, not a dataclass field, so that
    equality, hashing, repr and :func:`dataclasses.replace` ignore it; a copy
    made by ``replace`` or by pickling packs again.
    """

    __slots__ = ("_wire",)
    _wire: bytes | None

    def _pack(self) -> bytes:
        raise NotImplementedError

    def encode(self) -> bytes:
        try:
            wire = self._wire
        except AttributeError:  # unpickled: only the fields come back
            return self._pack()
        return self._pack() if wire is None else wire


# --------------------------------------------------------------------------
# shapes that several PDUs share: behaviour only, no slots (the fields stay
# on each dataclass, so that decoders' mutable twins keep their layout)


class _AddressCount:
    """An address and a count of 1..``max_count``: reads, and the answers to multiple writes."""

    __slots__ = ()
    function_code: ClassVar[int]
    max_count: ClassVar[int]
    address: int
    count: int

    def __post_init__(self) -> None:
        _check_address(self.address)
        _check_int("count", self.count, 1, self.max_count)

    def encode(self) -> bytes:
        return _FC_ADDR_VALUE.pack(self.function_code, self.address, self.count)


class _BitValues:
    """The values of a bit read's answer (01, 02)."""

    __slots__ = ()
    function_code: ClassVar[int]
    values: tuple[bool, ...]

    def __post_init__(self) -> None:
        _set(self, "values", _bits("values", self.values, 1, 2000))

    def encode(self) -> bytes:
        packed = pack_bits(self.values)
        return bytes((self.function_code, len(packed))) + packed


class _RegisterValues(_Encoded, ResponsePdu):
    """The values of a register read's answer (03, 04, 23)."""

    __slots__ = ()
    function_code: ClassVar[int]
    registers: tuple[int, ...]

    def __post_init__(self) -> None:
        _set(self, "registers", _registers("registers", self.registers, 1, 125))
        _set(self, "_wire", None)

    def _pack(self) -> bytes:
        registers = self.registers
        count = len(registers)
        return _FC_COUNT_WORDS[count].pack(self.function_code, count * 2, *registers)


class _CoilWrite:
    """05 and its echo."""

    __slots__ = ()
    function_code: ClassVar[int]
    address: int
    value: bool

    def __post_init__(self) -> None:
        _check_address(self.address)
        _set(self, "value", bool(self.value))

    def encode(self) -> bytes:
        return _FC_ADDR_VALUE.pack(self.function_code, self.address, COIL_ON if self.value else COIL_OFF)


class _RegisterWrite:
    """06 and its echo."""

    __slots__ = ()
    function_code: ClassVar[int]
    address: int
    value: int

    def __post_init__(self) -> None:
        _check_address(self.address)
        _check_int("value", self.value, 0, 0xFFFF)

    def encode(self) -> bytes:
        return _FC_ADDR_VALUE.pack(self.function_code, self.address, self.value)


class _MaskWrite:
    """22 and its echo."""

    __slots__ = ()
    function_code: ClassVar[int]
    address: int
    and_mask: int
    or_mask: int

    def __post_init__(self) -> None:
        _check_address(self.address)
        _check_int("and_mask", self.and_mask, 0, 0xFFFF)
        _check_int("or_mask", self.or_mask, 0, 0xFFFF)

    def encode(self) -> bytes:
        return _MASK_WRITE.pack(self.function_code, self.address, self.and_mask, self.or_mask)


# --------------------------------------------------------------------------
# 01, 02, 03, 04: reads


@dataclasses.dataclass(frozen=True, slots=True)
class ReadCoils(_AddressCount, RequestPdu):
    """01: read *count* coils (1..2000) from *address* (0-based)."""

    function_code: ClassVar[int] = 0x01
    max_count: ClassVar[int] = 2000
    address: int
    count: int


@dataclasses.dataclass(frozen=True, slots=True)
class ReadDiscreteInputs(_AddressCount, RequestPdu):
    """02: read *count* discrete inputs (1..2000) from *address*."""

    function_code: ClassVar[int] = 0x02
    max_count: ClassVar[int] = 2000
    address: int
    count: int


@dataclasses.dataclass(frozen=True, slots=True)
class ReadHoldingRegisters(_AddressCount, RequestPdu):
    """03: read *count* holding registers (1..125) from *address*."""

    function_code: ClassVar[int] = 0x03
    max_count: ClassVar[int] = 125
    address: int
    count: int


@dataclasses.dataclass(frozen=True, slots=True)
class ReadInputRegisters(_AddressCount, RequestPdu):
    """04: read *count* input registers (1..125) from *address*."""

    function_code: ClassVar[int] = 0x04
    max_count: ClassVar[int] = 125
    address: int
    count: int


@dataclasses.dataclass(frozen=True, slots=True)
class ReadCoilsResponse(_BitValues, ResponsePdu):
    """01 response: the coil values, first address first.

    A decoder cannot tell padding from data, so a response decoded without
    its request holds a multiple of eight values; :class:`ClientConnection`
    trims it to the requested count.
    """

    function_code: ClassVar[int] = 0x01
    values: tuple[bool, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class ReadDiscreteInputsResponse(_BitValues, ResponsePdu):
    """02 response: the discrete input values (see :class:`ReadCoilsResponse`)."""

    function_code: ClassVar[int] = 0x02
    values: tuple[bool, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class ReadHoldingRegistersResponse(_RegisterValues, ResponsePdu):
    """03 response: the register values (1..125)."""

    function_code: ClassVar[int] = 0x03
    registers: tuple[int, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class ReadInputRegistersResponse(_RegisterValues, ResponsePdu):
    """04 response: the register values (1..125)."""

    function_code: ClassVar[int] = 0x04
    registers: tuple[int, ...]


# --------------------------------------------------------------------------
# 05, 06: single writes

COIL_ON = 0xFF00
COIL_OFF = 0x0000


@dataclasses.dataclass(frozen=True, slots=True)
class WriteSingleCoil(_CoilWrite, RequestPdu):
    """05: set one coil on (True) or off (False)."""

    function_code: ClassVar[int] = 0x05
    address: int
    value: bool


@dataclasses.dataclass(frozen=True, slots=True)
class WriteSingleCoilResponse(_CoilWrite, ResponsePdu):
    """05 response: the echo of the request."""

    function_code: ClassVar[int] = 0x05
    address: int
    value: bool


@dataclasses.dataclass(frozen=True, slots=True)
class WriteSingleRegister(_RegisterWrite, RequestPdu):
    """06: write one holding register."""

    function_code: ClassVar[int] = 0x06
    address: int
    value: int


@dataclasses.dataclass(frozen=True, slots=True)
class WriteSingleRegisterResponse(_RegisterWrite, ResponsePdu):
    """06 response: the echo of the request."""

    function_code: ClassVar[int] = 0x06
    address: int
    value: int


# --------------------------------------------------------------------------
# 07, 08, 11, 12, 17: serial line and status functions


@dataclasses.dataclass(frozen=True, slots=True)
class ReadExceptionStatus(RequestPdu):
    """07: read the eight exception status outputs."""

    function_code: ClassVar[int] = 0x07

    def encode(self) -> bytes:
        return b"\x07"


@dataclasses.dataclass(frozen=True, slots=True)
class ReadExceptionStatusResponse(ResponsePdu):
    """07 response: one status byte."""

    function_code: ClassVar[int] = 0x07
    status: int

    def __post_init__(self) -> None:
        _check_int("status", self.status, 0, 0xFF)

    def encode(self) -> bytes:
        return bytes((0x07, self.status))


_WORD_ZERO = b"\x00\x00"
# What the request data of each sub-function must be; None means "anything".
_DIAGNOSTIC_REQUEST_DATA: dict[int, tuple[bytes, ...] | None] = {
    DiagnosticSubFunction.RETURN_QUERY_DATA: None,
    DiagnosticSubFunction.RESTART_COMMUNICATIONS_OPTION: (_WORD_ZERO, b"\xff\x00"),
    DiagnosticSubFunction.CHANGE_ASCII_INPUT_DELIMITER: None,  # CHAR 00, checked below
    **{
        code: (_WORD_ZERO,)
        for code in DiagnosticSubFunction
        if code
        not in (
            DiagnosticSubFunction.RETURN_QUERY_DATA,
            DiagnosticSubFunction.RESTART_COMMUNICATIONS_OPTION,
            DiagnosticSubFunction.CHANGE_ASCII_INPUT_DELIMITER,
        )
    },
}


def diagnostic_request_error(sub_function: int, data: bytes) -> str | None:
    """Why *data* is not a valid request for *sub_function*, or None if it is."""
    if sub_function not in _DIAGNOSTIC_REQUEST_DATA:
        return f"unknown diagnostic sub-function {sub_function:#04x}"
    allowed = _DIAGNOSTIC_REQUEST_DATA[sub_function]
    if sub_function == DiagnosticSubFunction.CHANGE_ASCII_INPUT_DELIMITER:
        if len(data) != 2 or data[1] != 0:
            return "the ASCII delimiter request data must be CHAR 00"
    elif allowed is not None and data not in allowed:
        choices = " or ".join(value.hex().upper() for value in allowed)
        return f"sub-function {sub_function:#04x} takes data {choices}, got {data.hex().upper()}"
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class Diagnostics(RequestPdu):
    """08: a serial line diagnostic.

    *data* is the raw data field.  Sub-function 00 echoes any data; 01 takes
    ``0000`` or ``FF00`` (also clear the event log); 03 takes the new
    delimiter character followed by ``00``; every other one takes ``0000``.
    """

    function_code: ClassVar[int] = 0x08
    sub_function: int
    data: bytes = _WORD_ZERO

    def __post_init__(self) -> None:
        _check_int("sub_function", self.sub_function, 0, 0xFFFF)
        _set(self, "data", _check_bytes("data", self.data, MAX_PDU_SIZE - 3))
        error = diagnostic_request_error(self.sub_function, self.data)
        if error is not None:
            raise LocalProtocolError(error)

    def encode(self) -> bytes:
        return _FC_WORD.pack(0x08, self.sub_function) + self.data


@dataclasses.dataclass(frozen=True, slots=True)
class DiagnosticsResponse(ResponsePdu):
    """08 response: the sub-function and its data (an echo or a counter).

    Only 00 (return query data) answers with data of any length; every other
    sub-function answers with one word, which is also how an RTU framer
    knows where the frame ends.
    """

    function_code: ClassVar[int] = 0x08
    sub_function: int
    data: bytes = _WORD_ZERO

    def __post_init__(self) -> None:
        _check_int("sub_function", self.sub_function, 0, 0xFFFF)
        _set(self, "data", _check_bytes("data", self.data, MAX_PDU_SIZE - 3))
        if self.sub_function != DiagnosticSubFunction.RETURN_QUERY_DATA and len(self.data) != 2:
            raise LocalProtocolError(
                f"sub-function {self.sub_function:#04x} answers with 2 bytes, got {len(self.data)}"
            )

    @property
    def value(self) -> int:
        """The data field read as one 16-bit word (for counters, the register)."""
        if len(self.data) != 2:
            raise ValueError(f"the data field holds {len(self.data)} bytes, not one word")
        return int.from_bytes(self.data, "big")

    def encode(self) -> bytes:
        return _FC_WORD.pack(0x08, self.sub_function) + self.data


@dataclasses.dataclass(frozen=True, slots=True)
class GetCommEventCounter(RequestPdu):
    """11: read the status word and the event counter."""

    function_code: ClassVar[int] = 0x0B

    def encode(self) -> bytes:
        return b"\x0b"


@dataclasses.dataclass(frozen=True, slots=True)
class GetCommEventCounterResponse(ResponsePdu):
    """11 response: *status* is 0xFFFF while busy, else 0."""

    function_code: ClassVar[int] = 0x0B
    status: int
    event_count: int

    def __post_init__(self) -> None:
        _check_int("status", self.status, 0, 0xFFFF)
        _check_int("event_count", self.event_count, 0, 0xFFFF)

    def encode(self) -> bytes:
        return _FC_WORD_WORD.pack(0x0B, self.status, self.event_count)


@dataclasses.dataclass(frozen=True, slots=True)
class GetCommEventLog(RequestPdu):
    """12: read the status, counters and the event log."""

    function_code: ClassVar[int] = 0x0C

    def encode(self) -> bytes:
        return b"\x0c"


_COMM_EVENT_LOG = struct.Struct(">BBHHH")


@dataclasses.dataclass(frozen=True, slots=True)
class GetCommEventLogResponse(ResponsePdu):
    """12 response: up to 64 event bytes, newest first."""

    function_code: ClassVar[int] = 0x0C
    status: int
    event_count: int
    message_count: int
    events: bytes = b""

    def __post_init__(self) -> None:
        _check_int("status", self.status, 0, 0xFFFF)
        _check_int("event_count", self.event_count, 0, 0xFFFF)
        _check_int("message_count", self.message_count, 0, 0xFFFF)
        _set(self, "events", _check_bytes("events", self.events, 64))

    def encode(self) -> bytes:
        head = _COMM_EVENT_LOG.pack(0x0C, 6 + len(self.events), self.status, self.event_count, self.message_count)
        return head + self.events


@dataclasses.dataclass(frozen=True, slots=True)
class ReportServerId(RequestPdu):
    """17: read the server id, run indicator and device-specific data."""

    function_code: ClassVar[int] = 0x11

    def encode(self) -> bytes:
        return b"\x11"


@dataclasses.dataclass(frozen=True, slots=True)
class ReportServerIdResponse(ResponsePdu):
    """17 response.

    The specification leaves the length of the server id to the device; like
    libmodbus and most devices, modbuskit uses one byte, so that a decoder
    can find the run indicator.
    """

    function_code: ClassVar[int] = 0x11
    server_id: int
    running: bool = True
    additional_data: bytes = b""

    def __post_init__(self) -> None:
        _check_int("server_id", self.server_id, 0, 0xFF)
        _set(self, "running", bool(self.running))
        _set(self, "additional_data", _check_bytes("additional_data", self.additional_data, MAX_PDU_SIZE - 4))

    def encode(self) -> bytes:
        head = bytes((0x11, 2 + len(self.additional_data), self.server_id, 0xFF if self.running else 0x00))
        return head + self.additional_data


# --------------------------------------------------------------------------
# 15, 16: multiple writes


@dataclasses.dataclass(frozen=True, slots=True)
class WriteMultipleCoils(RequestPdu):
    """15: write 1..1968 coils starting at *address*."""

    function_code: ClassVar[int] = 0x0F
    max_count: ClassVar[int] = 1968
    address: int
    values: tuple[bool, ...]

    def __post_init__(self) -> None:
        _check_address(self.address)
        _set(self, "values", _bits("values", self.values, 1, self.max_count))

    def encode(self) -> bytes:
        packed = pack_bits(self.values)
        return struct.pack(">BHHB", 0x0F, self.address, len(self.values), len(packed)) + packed


@dataclasses.dataclass(frozen=True, slots=True)
class WriteMultipleCoilsResponse(_AddressCount, ResponsePdu):
    """15 response: the address and the number of coils written."""

    function_code: ClassVar[int] = 0x0F
    max_count: ClassVar[int] = 1968
    address: int
    count: int


_WRITE_REGISTERS_HEAD = struct.Struct(">BHHB")


@dataclasses.dataclass(frozen=True, slots=True)
class WriteMultipleRegisters(_Encoded, RequestPdu):
    """16: write 1..123 holding registers starting at *address*."""

    function_code: ClassVar[int] = 0x10
    max_count: ClassVar[int] = 123
    address: int
    values: tuple[int, ...]

    def __post_init__(self) -> None:
        _check_address(self.address)
        _set(self, "values", _registers("values", self.values, 1, self.max_count))
        _set(self, "_wire", None)

    def _pack(self) -> bytes:
        count = len(self.values)
        return _WRITE_REGISTERS_HEAD.pack(0x10, self.address, count, count * 2) + _WORDS[count].pack(*self.values)


@dataclasses.dataclass(frozen=True, slots=True)
class WriteMultipleRegistersResponse(_AddressCount, ResponsePdu):
    """16 response: the address and the number of registers written."""

    function_code: ClassVar[int] = 0x10
    max_count: ClassVar[int] = 123
    address: int
    count: int


# --------------------------------------------------------------------------
# 20, 21: file records


@dataclasses.dataclass(frozen=True, slots=True)
class FileRecordReference:
    """One sub-request of :class:`ReadFileRecord`: which records to read."""

    file_number: int
    record_number: int
    record_length: int

    def __post_init__(self) -> None:
        _check_int("file_number", self.file_number, 1, 0xFFFF)
        _check_int("record_number", self.record_number, 0, MAX_RECORD_NUMBER)
        _check_int("record_length", self.record_length, 1, MAX_READ_RECORD_LENGTH)


@dataclasses.dataclass(frozen=True, slots=True)
class FileRecord:
    """One sub-request of :class:`WriteFileRecord`: records and their values."""

    file_number: int
    record_number: int
    values: tuple[int, ...]

    def __post_init__(self) -> None:
        _check_int("file_number", self.file_number, 1, 0xFFFF)
        _check_int("record_number", self.record_number, 0, MAX_RECORD_NUMBER)
        _set(self, "values", _registers("values", self.values, 1, MAX_WRITE_RECORD_LENGTH))


_FILE_SUB_REQUEST = struct.Struct(">BHHH")


@dataclasses.dataclass(frozen=True, slots=True)
class ReadFileRecord(RequestPdu):
    """20: read groups of records from files (each group 7 bytes on the wire)."""

    function_code: ClassVar[int] = 0x14
    references: tuple[FileRecordReference, ...]

    def __post_init__(self) -> None:
        references = tuple(self.references)
        _set(self, "references", references)
        if not 1 <= len(references) <= 35:
            raise LocalProtocolError(f"a file read holds 1..35 sub-requests, got {len(references)}")
        if not all(isinstance(reference, FileRecordReference) for reference in references):
            raise LocalProtocolError("references must be FileRecordReference objects")
        response_size = 2 + sum(2 + 2 * reference.record_length for reference in references)
        if response_size > MAX_PDU_SIZE:
            raise LocalProtocolError(f"the response to this file read would take {response_size} bytes, more than 253")

    def encode(self) -> bytes:
        body = b"".join(
            _FILE_SUB_REQUEST.pack(FILE_REFERENCE_TYPE, ref.file_number, ref.record_number, ref.record_length)
            for ref in self.references
        )
        return bytes((0x14, len(body))) + body


@dataclasses.dataclass(frozen=True, slots=True)
class ReadFileRecordResponse(ResponsePdu):
    """20 response: the values of each requested group, in request order."""

    function_code: ClassVar[int] = 0x14
    records: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        records = tuple(_registers("record values", group, 1, MAX_READ_RECORD_LENGTH) for group in self.records)
        _set(self, "records", records)
        if not records:
            raise LocalProtocolError("a file read response holds at least one group")
        size = 2 + sum(2 + 2 * len(group) for group in records)
        if size > MAX_PDU_SIZE:
            raise LocalProtocolError(f"this file read response takes {size} bytes, more than 253")

    def encode(self) -> bytes:
        parts = [
            bytes((1 + 2 * len(group), FILE_REFERENCE_TYPE)) + _WORDS[len(group)].pack(*group) for group in self.records
        ]
        body = b"".join(parts)
        return bytes((0x14, len(body))) + body


def _encode_file_records(function_code: int, records: tuple[FileRecord, ...]) -> bytes:
    body = b"".join(
        _FILE_SUB_REQUEST.pack(FILE_REFERENCE_TYPE, record.file_number, record.record_number, len(record.values))
        + _WORDS[len(record.values)].pack(*record.values)
        for record in records
    )
    return bytes((function_code, len(body))) + body


def _check_file_records(records: Iterable[FileRecord]) -> tuple[FileRecord, ...]:
    result = tuple(records)
    if not result:
        raise LocalProtocolError("a file write holds at least one record group")
    if not all(isinstance(record, FileRecord) for record in result):
        raise LocalProtocolError("records must be FileRecord objects")
    size = sum(7 + 2 * len(record.values) for record in result)
    if not 0x09 <= size <= 0xFB:
        raise LocalProtocolError(f"a file write carries 9..251 bytes of data, got {size}")
    return result


@dataclasses.dataclass(frozen=True, slots=True)
class WriteFileRecord(RequestPdu):
    """21: write groups of records into files."""

    function_code: ClassVar[int] = 0x15
    records: tuple[FileRecord, ...]

    def __post_init__(self) -> None:
        _set(self, "records", _check_file_records(self.records))

    def encode(self) -> bytes:
        return _encode_file_records(0x15, self.records)


@dataclasses.dataclass(frozen=True, slots=True)
class WriteFileRecordResponse(ResponsePdu):
    """21 response: the echo of the request."""

    function_code: ClassVar[int] = 0x15
    records: tuple[FileRecord, ...]

    def __post_init__(self) -> None:
        _set(self, "records", _check_file_records(self.records))

    def encode(self) -> bytes:
        return _encode_file_records(0x15, self.records)


# --------------------------------------------------------------------------
# 22, 23, 24

_MASK_WRITE = struct.Struct(">BHHH")


@dataclasses.dataclass(frozen=True, slots=True)
class MaskWriteRegister(_MaskWrite, RequestPdu):
    """22: ``result = (current AND and_mask) OR (or_mask AND NOT and_mask)``."""

    function_code: ClassVar[int] = 0x16
    address: int
    and_mask: int
    or_mask: int


@dataclasses.dataclass(frozen=True, slots=True)
class MaskWriteRegisterResponse(_MaskWrite, ResponsePdu):
    """22 response: the echo of the request."""

    function_code: ClassVar[int] = 0x16
    address: int
    and_mask: int
    or_mask: int


_READ_WRITE_HEAD = struct.Struct(">BHHHHB")


@dataclasses.dataclass(frozen=True, slots=True)
class ReadWriteMultipleRegisters(_Encoded, RequestPdu):
    """23: write 1..121 registers, then read 1..125 (the write happens first)."""

    function_code: ClassVar[int] = 0x17
    read_address: int
    read_count: int
    write_address: int
    write_values: tuple[int, ...]

    def __post_init__(self) -> None:
        _check_int("read_address", self.read_address, 0, 0xFFFF)
        _check_int("read_count", self.read_count, 1, 125)
        _check_int("write_address", self.write_address, 0, 0xFFFF)
        _set(self, "write_values", _registers("write_values", self.write_values, 1, 121))
        _set(self, "_wire", None)

    def _pack(self) -> bytes:
        count = len(self.write_values)
        head = _READ_WRITE_HEAD.pack(0x17, self.read_address, self.read_count, self.write_address, count, count * 2)
        return head + _WORDS[count].pack(*self.write_values)


@dataclasses.dataclass(frozen=True, slots=True)
class ReadWriteMultipleRegistersResponse(_RegisterValues, ResponsePdu):
    """23 response: the registers read."""

    function_code: ClassVar[int] = 0x17
    registers: tuple[int, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class ReadFifoQueue(RequestPdu):
    """24: read the FIFO queue whose count register is at *address*."""

    function_code: ClassVar[int] = 0x18
    address: int

    def __post_init__(self) -> None:
        _check_address(self.address)

    def encode(self) -> bytes:
        return _FC_WORD.pack(0x18, self.address)


@dataclasses.dataclass(frozen=True, slots=True)
class ReadFifoQueueResponse(ResponsePdu):
    """24 response: the queued values (0..31), oldest first."""

    function_code: ClassVar[int] = 0x18
    values: tuple[int, ...]

    def __post_init__(self) -> None:
        _set(self, "values", _registers("values", self.values, 0, 31))

    def encode(self) -> bytes:
        count = len(self.values)
        return struct.pack(">BHH", 0x18, 2 + 2 * count, count) + _WORDS[count].pack(*self.values)


# --------------------------------------------------------------------------
# 43 / 14: device identification


@dataclasses.dataclass(frozen=True, slots=True)
class ReadDeviceIdentification(RequestPdu):
    """43/14: read identification objects.

    *read_code* 1 (basic), 2 (regular) and 3 (extended) stream objects from
    *object_id*; 4 reads the single object *object_id*.
    """

    function_code: ClassVar[int] = 0x2B
    read_code: int = DeviceIdCode.BASIC
    object_id: int = 0

    def __post_init__(self) -> None:
        _check_int("read_code", self.read_code, 1, 4)
        _check_int("object_id", self.object_id, 0, 0xFF)

    def encode(self) -> bytes:
        return bytes((0x2B, MEI_READ_DEVICE_IDENTIFICATION, self.read_code, self.object_id))


@dataclasses.dataclass(frozen=True, slots=True)
class ReadDeviceIdentificationResponse(ResponsePdu):
    """43/14 response: *objects* is a tuple of ``(object_id, value)`` pairs."""

    function_code: ClassVar[int] = 0x2B
    read_code: int
    conformity_level: int
    more_follows: bool
    next_object_id: int
    objects: tuple[tuple[int, bytes], ...]

    def __post_init__(self) -> None:
        _check_int("read_code", self.read_code, 1, 4)
        _check_int("conformity_level", self.conformity_level, 0, 0xFF)
        _set(self, "more_follows", bool(self.more_follows))
        _check_int("next_object_id", self.next_object_id, 0, 0xFF)
        objects = tuple(_identification_object(item) for item in self.objects)
        _set(self, "objects", objects)
        size = 7 + sum(2 + len(value) for _, value in objects)
        if size > MAX_PDU_SIZE:
            raise LocalProtocolError(f"this identification response takes {size} bytes, more than 253")

    def encode(self) -> bytes:
        head = bytes(
            (
                0x2B,
                MEI_READ_DEVICE_IDENTIFICATION,
                self.read_code,
                self.conformity_level,
                0xFF if self.more_follows else 0x00,
                self.next_object_id,
                len(self.objects),
            )
        )
        return head + b"".join(bytes((object_id, len(value))) + value for object_id, value in self.objects)


def _identification_object(item: object) -> tuple[int, bytes]:
    if not isinstance(item, tuple) or len(item) != 2:
        raise LocalProtocolError(f"identification objects are (object_id, value) pairs, got {item!r}")
    object_id, value = item
    _check_int("object id", object_id, 0, 0xFF)
    return object_id, _check_bytes("object value", value, 0xFF)


# --------------------------------------------------------------------------
# exception responses, unknown and malformed PDUs


@dataclasses.dataclass(frozen=True, slots=True)
class ExceptionResponse(ResponsePdu):
    """A Modbus exception: the request's function code and an exception code."""

    function_code: int
    exception_code: int

    def __post_init__(self) -> None:
        _check_int("function_code", self.function_code, 1, 0x7F)
        _check_int("exception_code", self.exception_code, 0, 0xFF)

    def encode(self) -> bytes:
        return bytes((self.function_code | 0x80, self.exception_code))


@dataclasses.dataclass(frozen=True, slots=True)
class RawPdu(RequestPdu, ResponsePdu):
    """A PDU whose function code the codec does not know, kept as bytes.

    A server answers an unknown request with exception 01 unless a handler
    takes it; a gateway can forward it untouched.
    """

    function_code: int
    data: bytes = b""

    def __post_init__(self) -> None:
        _check_int("function_code", self.function_code, 1, 0x7F)
        _set(self, "data", _check_bytes("data", self.data, MAX_PDU_SIZE - 1))

    def encode(self) -> bytes:
        return bytes((self.function_code,)) + self.data


@dataclasses.dataclass(frozen=True, slots=True)
class MalformedRequest(RequestPdu):
    """A request of a known function whose fields the specification forbids.

    It exists only on the receiving side: the decoder found, for example, a
    quantity of 0 registers or an unknown diagnostic sub-function, and the
    server must answer with *exception_code* (03, or 01 for an unknown
    sub-function).  *data* is the PDU after the function code; *reason* says
    what was wrong, for logs.
    """

    function_code: int
    exception_code: int
    data: bytes
    reason: str = dataclasses.field(default="", compare=False)

    def __post_init__(self) -> None:
        _check_int("function_code", self.function_code, 0, 0xFF)
        _check_int("exception_code", self.exception_code, 1, 0xFF)
        _set(self, "data", _check_bytes("data", self.data, None))

    def encode(self) -> bytes:
        return bytes((self.function_code,)) + self.data
