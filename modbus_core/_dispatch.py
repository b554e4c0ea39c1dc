"""Dispatch: what a request does to the datastore, as the specification says.

:class:`Dispatcher` turns a :class:`Request` into a :class:`Response`, or into
None when the server must stay silent (a broadcast, listen-only mode, a unit
that is not ours on a serial line).  It never raises for a request: failures
become exception responses, in the order the specification gives:

1. 01, function (or FC08/FC43 sub-function) not supported: the decoder found
   an unknown code, or the device has no operation for the function;
2. 03, a quantity, byte count or value the specification forbids: the
   decoder found it (a :class:`MalformedRequest`), or a FIFO holds more
   than 31 values;
3. 02, addresses the device does not have (or refuses to write);
4. 04, anything the datastore, an observer or a custom function raises
   (logged with its traceback).  A :class:`ModbusExceptionError` gives its
   own code instead.

A request that fails changes nothing; the built-in :class:`Device` checks
whole ranges before it writes.  A PDU with function code 0x00 or 0x80
gets no answer: no exception response to "function 0" can be encoded.

The datastore may be asynchronous: a device whose operations are
coroutines (see :class:`AsyncDevice`) makes :meth:`Dispatcher.dispatch`
return an awaitable, which async adapters await; synchronous devices never
pay for that.

A custom function code reaches the dispatcher as an instance of the
request class given to :class:`CustomFunction`; if that class has an
``execute(device)`` method returning a response PDU (or an awaitable of
one), the dispatcher calls it, else it answers 01.  Custom functions are
not executed by broadcast.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from operator import attrgetter
from typing import Any, TypeAlias, TypeVar

from ._datastore import AnyDevice, BitTable, Device, RegisterTable, ServerContext, _check_device
from ._diagnostics import ServerDiagnostics
from ._errors import LocalProtocolError, ModbusExceptionError
from ._events import Request, Response, _make_exception, _make_response
from ._identity import DeviceIdentity
from ._pdu import (
    Diagnostics,
    DiagnosticsResponse,
    DiagnosticSubFunction,
    ExceptionCode,
    ExceptionResponse,
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
)
from ._version import __version__

__all__ = ["Dispatcher"]

logger = logging.getLogger(__name__)

DispatchResult: TypeAlias = "Response | Awaitable[Response | None] | None"

MAX_FIFO_COUNT = 31

# How a request that goes through a device operation is executed:
# ``invoke(operation, pdu)`` calls the device's bound method and
# ``finish(pdu, result, trusted)`` turns what it returned into the response;
# *trusted* results come from the built-in Device and skip re-validation.
# *broadcast*: whether a broadcast executes it (writes do, reads do not).
_Invoke: TypeAlias = Callable[[Any, Any], Any]
_Finish: TypeAlias = Callable[[Any, Any, bool], ResponsePdu]
_Answer = TypeVar("_Answer", ResponsePdu, bytes)  # what a fast path answers: a PDU, or its bytes
_Operation: TypeAlias = tuple[str, _Invoke, _Finish, bool]


def _wrong_count(pdu: RequestPdu, expected: int, got: int) -> LocalProtocolError:
    return LocalProtocolError(f"the device answered {pdu!r} with {got} values instead of {expected}")


def _read_finisher(cls: type[ResponsePdu], count_of: Callable[[Any], int]) -> _Finish:
    make = _unchecked(cls)

    def finish(pdu: Any, result: Any, trusted: bool) -> ResponsePdu:
        if trusted:
            return make(result)
        values = tuple(result)
        if len(values) != count_of(pdu):
            raise _wrong_count(pdu, count_of(pdu), len(values))
        return cls(values)  # type: ignore[call-arg]

    return finish


def _count(pdu: Any) -> int:
    return pdu.count  # type: ignore[no-any-return]


def _read_count(pdu: Any) -> int:
    return pdu.read_count  # type: ignore[no-any-return]


def _invoke_read(operation: Any, pdu: Any) -> Any:
    return operation(pdu.address, pdu.count)


def _invoke_write_one(operation: Any, pdu: Any) -> Any:
    return operation(pdu.address, (pdu.value,))


def _invoke_write_many(operation: Any, pdu: Any) -> Any:
    return operation(pdu.address, pdu.values)


def _invoke_mask_write(operation: Any, pdu: Any) -> Any:
    return operation(pdu.address, pdu.and_mask, pdu.or_mask)


def _invoke_read_write(operation: Any, pdu: Any) -> Any:
    return operation(pdu.read_address, pdu.read_count, pdu.write_address, pdu.write_values)


def _invoke_no_arguments(operation: Any, pdu: Any) -> Any:
    return operation()


def _invoke_fifo(operation: Any, pdu: Any) -> Any:
    return operation(pdu.address)


def _invoke_file_read(operation: Any, pdu: Any) -> Any:
    return operation(pdu.references)


def _invoke_file_write(operation: Any, pdu: Any) -> Any:
    return operation(pdu.records)


def _echo_finisher(make: Callable[[Any], ResponsePdu]) -> _Finish:
    return lambda pdu, result, trusted: make(pdu)


_make_write_coil_response = _unchecked(WriteSingleCoilResponse)
_make_write_register_response = _unchecked(WriteSingleRegisterResponse)
_make_write_coils_response = _unchecked(WriteMultipleCoilsResponse)
_make_write_registers_response = _unchecked(WriteMultipleRegistersResponse)
_make_mask_write_response = _unchecked(MaskWriteRegisterResponse)
_make_write_file_response = _unchecked(WriteFileRecordResponse)
_make_fifo_response = _unchecked(ReadFifoQueueResponse)


def _finish_exception_status(pdu: Any, result: Any, trusted: bool) -> ResponsePdu:
    return ReadExceptionStatusResponse(result)


def _finish_fifo(pdu: Any, result: Any, trusted: bool) -> ResponsePdu:
    values = tuple(result)
    if len(values) > MAX_FIFO_COUNT:
        raise ModbusExceptionError(
            ExceptionCode.ILLEGAL_DATA_VALUE, f"FIFO at {pdu.address} holds {len(values)} values, more than 31"
        )
    return _make_fifo_response(values) if trusted else ReadFifoQueueResponse(values)


def _finish_file_read(pdu: Any, result: Any, trusted: bool) -> ResponsePdu:
    groups = tuple(tuple(group) for group in result)
    references: tuple[Any, ...] = pdu.references
    lengths = [len(group) for group in groups]
    expected = [reference.record_length for reference in references]
    if lengths != expected:
        raise LocalProtocolError(f"the device answered {pdu!r} with groups of {lengths} records instead of {expected}")
    return ReadFileRecordResponse(groups)


_OPERATIONS: dict[type[RequestPdu], _Operation] = {
    ReadCoils: ("read_coils", _invoke_read, _read_finisher(ReadCoilsResponse, _count), False),
    ReadDiscreteInputs: (
        "read_discrete_inputs",
        _invoke_read,
        _read_finisher(ReadDiscreteInputsResponse, _count),
        False,
    ),
    ReadHoldingRegisters: (
        "read_holding_registers",
        _invoke_read,
        _read_finisher(ReadHoldingRegistersResponse, _count),
        False,
    ),
    ReadInputRegisters: (
        "read_input_registers",
        _invoke_read,
        _read_finisher(ReadInputRegistersResponse, _count),
        False,
    ),
    WriteSingleCoil: (
        "write_coils",
        _invoke_write_one,
        _echo_finisher(lambda pdu: _make_write_coil_response(pdu.address, pdu.value)),
        True,
    ),
    WriteSingleRegister: (
        "write_registers",
        _invoke_write_one,
        _echo_finisher(lambda pdu: _make_write_register_response(pdu.address, pdu.value)),
        True,
    ),
    WriteMultipleCoils: (
        "write_coils",
        _invoke_write_many,
        _echo_finisher(lambda pdu: _make_write_coils_response(pdu.address, len(pdu.values))),
        True,
    ),
    WriteMultipleRegisters: (
        "write_registers",
        _invoke_write_many,
        _echo_finisher(lambda pdu: _make_write_registers_response(pdu.address, len(pdu.values))),
        True,
    ),
    MaskWriteRegister: (
        "mask_write_register",
        _invoke_mask_write,
        _echo_finisher(lambda pdu: _make_mask_write_response(pdu.address, pdu.and_mask, pdu.or_mask)),
        True,
    ),
    ReadWriteMultipleRegisters: (
        "read_write_registers",
        _invoke_read_write,
        _read_finisher(ReadWriteMultipleRegistersResponse, _read_count),
        True,
    ),
    ReadExceptionStatus: ("read_exception_status", _invoke_no_arguments, _finish_exception_status, False),
    ReadFifoQueue: ("read_fifo_queue", _invoke_fifo, _finish_fifo, False),
    ReadFileRecord: ("read_file_records", _invoke_file_read, _finish_file_read, False),
    WriteFileRecord: (
        "write_file_records",
        _invoke_file_write,
        _echo_finisher(lambda pdu: _make_write_file_response(pdu.records)),
        True,
    ),
}

# The built-in Device skips the generic path for the frequent functions: one
# call straight to the table, and a response built without re-validation.
_make_coils_response = _unchecked(ReadCoilsResponse)
_make_discrete_inputs_response = _unchecked(ReadDiscreteInputsResponse)
_make_holding_response = _unchecked(ReadHoldingRegistersResponse)
_make_input_response = _unchecked(ReadInputRegistersResponse)


def _device_read_coils(device: Device, pdu: Any) -> ResponsePdu:
    return _make_coils_response(device.coils.read(pdu.address, pdu.count))


def _device_read_discrete_inputs(device: Device, pdu: Any) -> ResponsePdu:
    return _make_discrete_inputs_response(device.discrete_inputs.read(pdu.address, pdu.count))


# Register reads answer with their encoding made from the table's bytes (see _Encoded).
_HOLDING_HEADS = tuple(bytes((0x03, 2 * count)) for count in range(126))
_INPUT_HEADS = tuple(bytes((0x04, 2 * count)) for count in range(126))


def _device_read_holding(device: Device, pdu: Any) -> ResponsePdu:
    count = pdu.count
    registers, data = device.holding_registers._read_encoded(pdu.address, count)
    return _make_holding_response(registers, _HOLDING_HEADS[count] + data)


def _device_read_input(device: Device, pdu: Any) -> ResponsePdu:
    count = pdu.count
    registers, data = device.input_registers._read_encoded(pdu.address, count)
    return _make_input_response(registers, _INPUT_HEADS[count] + data)


def _device_write_coil(device: Device, pdu: Any) -> ResponsePdu:
    device.coils.write(pdu.address, (pdu.value,))
    return _make_write_coil_response(pdu.address, pdu.value)


def _device_write_register(device: Device, pdu: Any) -> ResponsePdu:
    device.holding_registers.write(pdu.address, (pdu.value,))
    return _make_write_register_response(pdu.address, pdu.value)


def _device_write_coils(device: Device, pdu: Any) -> ResponsePdu:
    device.coils.write(pdu.address, pdu.values)
    return _make_write_coils_response(pdu.address, len(pdu.values))


def _device_write_registers(device: Device, pdu: Any) -> ResponsePdu:
    wire = getattr(pdu, "_wire", None)  # the request's bytes, when it was decoded from them
    if wire is None:
        device.holding_registers.write(pdu.address, pdu.values)
    else:
        device.holding_registers._write_encoded(pdu.address, wire[6:], pdu.values)
    return _make_write_registers_response(pdu.address, len(pdu.values))


_DEVICE_FAST_PATH: dict[type[RequestPdu], Callable[[Device, Any], ResponsePdu]] = {
    ReadCoils: _device_read_coils,
    ReadDiscreteInputs: _device_read_discrete_inputs,
    ReadHoldingRegisters: _device_read_holding,
    ReadInputRegisters: _device_read_input,
    WriteSingleCoil: _device_write_coil,
    WriteSingleRegister: _device_write_register,
    WriteMultipleCoils: _device_write_coils,
    WriteMultipleRegisters: _device_write_registers,
}


# The same, answering with the response PDU's bytes (ServerConnection.answer_now):
# register reads skip the response object and the tuple of values.
def _device_read_holding_encoded(device: Device, pdu: Any) -> bytes:
    count: int = pdu.count
    return _HOLDING_HEADS[count] + device.holding_registers._read_wire(pdu.address, count)


def _device_read_input_encoded(device: Device, pdu: Any) -> bytes:
    count: int = pdu.count
    return _INPUT_HEADS[count] + device.input_registers._read_wire(pdu.address, count)


def _encoding(answer: Callable[[Device, Any], ResponsePdu]) -> Callable[[Device, Any], bytes]:
    def encoded(device: Device, pdu: Any) -> bytes:
        return answer(device, pdu).encode()

    return encoded


_DEVICE_ENCODED_PATH: dict[type[RequestPdu], Callable[[Device, Any], bytes]] = {
    **{cls: _encoding(answer) for cls, answer in _DEVICE_FAST_PATH.items()},
    ReadHoldingRegisters: _device_read_holding_encoded,
    ReadInputRegisters: _device_read_input_encoded,
}

_AnyTable: TypeAlias = BitTable | RegisterTable
# The table each read of a built-in Device reads: ServerConnection.answer_now
# remembers the answers to repeated reads while it is unchanged.
_DEVICE_READ_TABLES: dict[type[RequestPdu], Callable[[Device], _AnyTable]] = {
    ReadCoils: attrgetter("coils"),
    ReadDiscreteInputs: attrgetter("discrete_inputs"),
    ReadHoldingRegisters: attrgetter("holding_registers"),
    ReadInputRegisters: attrgetter("input_registers"),
}
# (device, table getter, table, its revision), and with the answer's bytes.
_ReadStamp: TypeAlias = tuple[Device, Callable[[Device], _AnyTable], _AnyTable, int]
_KnownAnswer: TypeAlias = tuple[_ReadStamp, bytes]

# Sub-functions of 08 that a broadcast executes: they change the line's
# state.  The others only return data, and a broadcast gets no answer.
_BROADCAST_DIAGNOSTICS = frozenset(
    {
        DiagnosticSubFunction.RESTART_COMMUNICATIONS_OPTION,
        DiagnosticSubFunction.CHANGE_ASCII_INPUT_DELIMITER,
        DiagnosticSubFunction.FORCE_LISTEN_ONLY_MODE,
        DiagnosticSubFunction.CLEAR_COUNTERS_AND_DIAGNOSTIC_REGISTER,
        DiagnosticSubFunction.CLEAR_OVERRUN_COUNTER_AND_FLAG,
    }
)
_COUNTER_SUB_FUNCTIONS = frozenset(range(0x0B, 0x13))


def _is_awaitable(value: object) -> bool:
    return value is not None and value.__class__ is not tuple and hasattr(value, "__await__")


def _is_restart(pdu: RequestPdu) -> bool:
    return pdu.__class__ is Diagnostics and pdu.sub_function == DiagnosticSubFunction.RESTART_COMMUNICATIONS_OPTION


class Dispatcher:
    """Executes requests against a :class:`ServerContext`.

    *serial*: the server is on a serial line, which sets the defaults of
    *broadcast* (unit 0 executes writes on every device, unanswered) and
    *ignore_missing_units* (silence for units that are not ours; otherwise,
    as on TCP by default, exception 0B "gateway target device failed to
    respond").  On TCP every unit id, 0 and 255 included, is an ordinary
    one unless *broadcast* is set.  *diagnostics* holds the counters, the
    event log and the listen-only mode of functions 08, 11 and 12 (give the
    same object to the :class:`ServerConnection`, see
    :class:`ServerDiagnostics`).  *identity* answers functions 17 and 43 for
    devices without an identity of their own.

    A dispatcher holds no lock of its own, so several threads may call
    :meth:`dispatch` at once: each device locks itself for the duration of
    an operation (see the datastore's locking notes) and the diagnostics
    are safe to share (see :class:`ServerDiagnostics`).
    """

    __slots__ = ("broadcast", "context", "diagnostics", "identity", "ignore_missing_units")

    def __init__(
        self,
        context: ServerContext | AnyDevice,
        *,
        diagnostics: ServerDiagnostics | None = None,
        identity: DeviceIdentity | None = None,
        serial: bool = False,
        broadcast: bool | None = None,
        ignore_missing_units: bool | None = None,
    ) -> None:
        if not isinstance(context, ServerContext):
            _check_device(context)
            context = ServerContext(context)
        if diagnostics is not None and not isinstance(diagnostics, ServerDiagnostics):
            raise LocalProtocolError(f"expected ServerDiagnostics, got {type(diagnostics).__name__}")
        if identity is not None and not isinstance(identity, DeviceIdentity):
            raise LocalProtocolError(f"expected a DeviceIdentity, got {type(identity).__name__}")
        self.context = context
        self.diagnostics = diagnostics if diagnostics is not None else ServerDiagnostics()
        self.identity = (
            identity
            if identity is not None
            else DeviceIdentity("modbuskit", "modbuskit", __version__, product_name="modbuskit server")
        )
        self.broadcast = bool(serial if broadcast is None else broadcast)
        self.ignore_missing_units = bool(serial if ignore_missing_units is None else ignore_missing_units)

    def __repr__(self) -> str:
        return (
            f"Dispatcher({self.context!r}, broadcast={self.broadcast}, "
            f"ignore_missing_units={self.ignore_missing_units})"
        )

    def __contains__(self, unit: object) -> bool:
        """Whether requests for *unit* are this server's (for ``ServerConnection(units=...)``)."""
        return unit in self.context or (unit == 0 and self.broadcast)

    def dispatch(self, request: Request) -> DispatchResult:
        """The answer to *request*: a :class:`Response`, None for silence, or
        an awaitable of either when the device is asynchronous."""
        unit = request.unit
        response = self._answer_device(unit, request.pdu)
        if response is not None:
            return _make_response(response, unit, request.transaction_id)
        if unit == 0 and self.broadcast:
            return self._broadcast(request)
        device = self.context.get(unit)
        if device is None and self.ignore_missing_units:
            return None  # not addressed to this server: not even counted
        pdu = request.pdu
        diagnostics = self.diagnostics
        if diagnostics.message_received(broadcast=False) and (device is None or not _is_restart(pdu)):
            diagnostics.no_response()  # listen-only: monitor, execute nothing but 08/01
            return None
        if device is None:
            function_code = pdu.function_code & 0x7F
            if not function_code:
                diagnostics.no_response()  # function 0: no answer can be encoded (see _execute_locally)
                return None
            return self._conclude(
                request, _make_exception(function_code, ExceptionCode.GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND)
            )
        operation = _OPERATIONS.get(pdu.__class__)
        if operation is None:
            return self._execute_locally(request, device)
        name, invoke, finish, _ = operation
        method = getattr(device, name, None)
        if method is None:
            return self._conclude(request, _make_exception(pdu.function_code, ExceptionCode.ILLEGAL_FUNCTION))
        try:
            result = invoke(method, pdu)
            if _is_awaitable(result):
                return self._finish_later(request, result, finish)
            response = finish(pdu, result, device.__class__ is Device)
        except Exception as error:  # noqa: BLE001 - every failure becomes an exception code
            response = self._failure(request.unit, request.pdu, error)
        return self._conclude(request, response)

    __call__ = dispatch

    def _answer_device(
        self,
        unit: int,
        pdu: RequestPdu,
        fast_path: Mapping[type[RequestPdu], Callable[[Device, Any], _Answer]] = _DEVICE_FAST_PATH,  # type: ignore[assignment]
    ) -> _Answer | ExceptionResponse | None:
        """The built-in :class:`Device`'s frequent functions, answered and counted at once.

        None when *pdu* needs the general path (another device or function,
        listen-only mode, a broadcast): nothing is counted then.  This is
        the part of :meth:`dispatch` that
        :meth:`ServerConnection.answer_now <modbus_core.ServerConnection.answer_now>`
        runs without events, with the response PDUs' bytes as *fast_path* gives them.
        """
        device = self.context.get(unit)
        if device.__class__ is not Device:
            return None
        fast = fast_path.get(pdu.__class__)
        if fast is None:
            return None
        diagnostics = self._fast_path_diagnostics(unit)
        if diagnostics is None:
            return None
        diagnostics.message_received(broadcast=False)
        try:
            response = fast(device, pdu)
        except Exception as error:  # noqa: BLE001 - every failure becomes an exception code
            failure = self._failure(unit, pdu, error)
            diagnostics.response_sent(failure.exception_code)
            return failure
        diagnostics.response_sent(None)
        return response

    def _fast_path_diagnostics(self, unit: int) -> ServerDiagnostics | None:
        """The diagnostics that count a fast answer (:meth:`_answer_device`,
        :meth:`_answer_known`) for *unit*; None when the general path must
        answer (listen-only mode, a broadcast)."""
        diagnostics = self.diagnostics
        if diagnostics.listen_only or (unit == 0 and self.broadcast):
            return None
        return diagnostics

    def _read_stamp(self, unit: int, pdu: RequestPdu) -> _ReadStamp | None:
        """What the answer to *pdu* depends on, when it is a read of a built-in
        :class:`Device`; taken before the read, so that a write meanwhile
        makes the answer stale rather than wrong."""
        table_of = _DEVICE_READ_TABLES.get(pdu.__class__)
        if table_of is None:
            return None
        device = self.context.get(unit)
        if device.__class__ is not Device:
            return None
        table = table_of(device)
        return device, table_of, table, table._revision

    def _answer_known(self, unit: int, known: _KnownAnswer) -> bytes | None:
        """A read's answer remembered with its :meth:`_read_stamp`, answered
        and counted as :meth:`_answer_device` would, while nothing it read
        has changed; None otherwise, with nothing counted."""
        (device, table_of, table, revision), answer = known
        if table._revision != revision or self.context.get(unit) is not device or table_of(device) is not table:
            return None
        diagnostics = self._fast_path_diagnostics(unit)
        if diagnostics is None:
            return None
        diagnostics._answered()
        return answer

    async def dispatch_async(self, request: Request) -> Response | None:
        """:meth:`dispatch`, always as a coroutine."""
        result = self.dispatch(request)
        if result is None or isinstance(result, Response):
            return result
        return await result

    # -- completing a request ------------------------------------------

    async def _finish_later(self, request: Request, pending: Awaitable[Any], finish: _Finish) -> Response:
        try:
            response = finish(request.pdu, await pending, False)
        except Exception as error:  # noqa: BLE001
            response = self._failure(request.unit, request.pdu, error)
        return self._conclude(request, response)

    async def _conclude_later(self, request: Request, pending: Awaitable[Any]) -> Response:
        try:
            response = _checked_custom_response(await pending)
        except Exception as error:  # noqa: BLE001
            response = self._failure(request.unit, request.pdu, error)
        return self._conclude(request, response)

    def _failure(self, unit: int, pdu: RequestPdu, error: Exception) -> ExceptionResponse:
        function_code = pdu.function_code & 0x7F
        if isinstance(error, ModbusExceptionError):
            code = error.exception_code
            if isinstance(code, int) and 1 <= code <= 0xFF:
                return _make_exception(function_code, code)
        logger.error(
            "unit %d, function %d: %r failed; answering exception 04",
            unit,
            function_code,
            pdu,
            exc_info=error,
        )
        return _make_exception(function_code, ExceptionCode.SERVER_DEVICE_FAILURE)

    def _conclude(self, request: Request, response: ResponsePdu) -> Response:
        self._count(response)
        return _make_response(response, request.unit, request.transaction_id)

    def _count(self, response: ResponsePdu) -> None:
        cls = response.__class__
        if cls is ExceptionResponse:
            self.diagnostics.response_sent(response.exception_code)  # type: ignore[attr-defined]
        else:
            self.diagnostics.response_sent(None, counts_as_event=cls is not GetCommEventCounterResponse)

    # -- requests that are not device operations -----------------------

    def _execute_locally(self, request: Request, device: AnyDevice) -> DispatchResult:
        pdu = request.pdu
        cls = pdu.__class__
        if cls is Diagnostics:
            return self._diagnose(request)
        function_code = pdu.function_code & 0x7F
        if function_code == 0:
            # 0x00 (and 0x80) is no function: no exception answer to it can
            # be encoded, let alone decoded.  (0x81-0xFF are answered 01 as
            # their low seven bits, as libmodbus and pymodbus do.)
            self.diagnostics.no_response()
            return None
        response: ResponsePdu
        try:
            if cls is MalformedRequest:
                response = _make_exception(function_code, pdu.exception_code)  # type: ignore[attr-defined]
            elif cls is GetCommEventCounter:
                status, event_count, _, _ = self.diagnostics.comm_event_log()
                response = GetCommEventCounterResponse(status, event_count)
            elif cls is GetCommEventLog:
                response = GetCommEventLogResponse(*self.diagnostics.comm_event_log())
            elif cls is ReportServerId:
                identity = self._identity_of(device)
                response = ReportServerIdResponse(identity.server_id, identity.running, identity.additional_data)
            elif cls is ReadDeviceIdentification:
                response = self._identity_of(device).read(pdu.read_code, pdu.object_id)  # type: ignore[attr-defined]
            else:
                execute = getattr(pdu, "execute", None) if cls is not RawPdu else None
                if execute is None:
                    response = _make_exception(function_code, ExceptionCode.ILLEGAL_FUNCTION)
                else:
                    outcome = execute(device)
                    if _is_awaitable(outcome):
                        return self._conclude_later(request, outcome)
                    response = _checked_custom_response(outcome)
        except Exception as error:  # noqa: BLE001
            response = self._failure(request.unit, request.pdu, error)
        return self._conclude(request, response)

    def _identity_of(self, device: AnyDevice) -> DeviceIdentity:
        identity = getattr(device, "identity", None)
        return identity if isinstance(identity, DeviceIdentity) else self.identity

    def _diagnose(self, request: Request) -> Response | None:
        """Function 08 addressed to this server (not broadcast)."""
        diagnostics = self.diagnostics
        pdu: Diagnostics = request.pdu  # type: ignore[assignment]
        sub_function = pdu.sub_function
        if sub_function == DiagnosticSubFunction.RESTART_COMMUNICATIONS_OPTION:
            # The answer goes out before the restart, and none at all when
            # the port was in listen-only mode.
            response = None
            if diagnostics.listen_only:
                diagnostics.no_response()
            else:
                response = self._conclude(request, DiagnosticsResponse(sub_function, pdu.data))
            diagnostics.restart(clear_log=pdu.data == b"\xff\x00")
            return response
        if sub_function == DiagnosticSubFunction.FORCE_LISTEN_ONLY_MODE:
            diagnostics.enter_listen_only()
            diagnostics.no_response()
            return None
        if sub_function == DiagnosticSubFunction.CLEAR_COUNTERS_AND_DIAGNOSTIC_REGISTER:
            # Cleared after this answer is counted, so that the counters
            # read zero until the next request.
            response = self._conclude(request, DiagnosticsResponse(sub_function, pdu.data))
            diagnostics.clear_counters()
            return response
        if sub_function == DiagnosticSubFunction.RETURN_DIAGNOSTIC_REGISTER:
            data = (diagnostics.diagnostic_register & 0xFFFF).to_bytes(2, "big")
        elif sub_function in _COUNTER_SUB_FUNCTIONS:
            data = diagnostics.counter(sub_function).to_bytes(2, "big")
        else:
            # 00 echoes its data; 03 and 14 echo after acting.
            if sub_function == DiagnosticSubFunction.CHANGE_ASCII_INPUT_DELIMITER:
                diagnostics.change_ascii_delimiter(pdu.data[0])
            elif sub_function == DiagnosticSubFunction.CLEAR_OVERRUN_COUNTER_AND_FLAG:
                diagnostics.clear_overrun()
            data = pdu.data
        return self._conclude(request, DiagnosticsResponse(sub_function, data))

    # -- broadcasts ----------------------------------------------------

    def _broadcast(self, request: Request) -> Awaitable[None] | None:
        """Unit 0 on a line with broadcasts: execute writes everywhere, answer nothing."""
        diagnostics = self.diagnostics
        pdu = request.pdu
        cls = pdu.__class__
        listen_only = diagnostics.message_received(broadcast=True)
        if cls is Diagnostics:
            sub_function = pdu.sub_function  # type: ignore[attr-defined]
            if sub_function in _BROADCAST_DIAGNOSTICS and (not listen_only or _is_restart(pdu)):
                self._diagnose_broadcast(pdu)  # type: ignore[arg-type]
            else:
                diagnostics.no_response()
            return None
        if listen_only:
            diagnostics.no_response()
            return None
        if cls is MalformedRequest or cls is RawPdu:
            if not pdu.function_code & 0x7F:
                diagnostics.no_response()  # function 0: not a request at all
                return None
            # It would have been answered with an exception: count it.
            code = pdu.exception_code if cls is MalformedRequest else ExceptionCode.ILLEGAL_FUNCTION  # type: ignore[attr-defined]
            diagnostics.completed_silently(code)
            return None
        operation = _OPERATIONS.get(cls)
        if operation is None or not operation[3]:
            diagnostics.no_response()  # reads by broadcast are ignored
            return None
        name, invoke, _, _ = operation
        first_error: int | None = None
        pending: list[Awaitable[Any]] = []
        for device in self.context.devices():
            method = getattr(device, name, None)
            if method is None:
                first_error = first_error or ExceptionCode.ILLEGAL_FUNCTION
                continue
            try:
                result = invoke(method, pdu)
            except Exception as error:  # noqa: BLE001
                code = self._failure(request.unit, request.pdu, error).exception_code  # logged even when not the first
                first_error = first_error or code
                continue
            if _is_awaitable(result):
                pending.append(result)
        if pending:
            return self._broadcast_later(request, pending, first_error)
        diagnostics.completed_silently(first_error)
        return None

    async def _broadcast_later(
        self, request: Request, pending: Sequence[Awaitable[Any]], first_error: int | None
    ) -> None:
        for awaitable in pending:
            try:
                await awaitable
            except Exception as error:  # noqa: BLE001
                code = self._failure(request.unit, request.pdu, error).exception_code
                first_error = first_error or code
        self.diagnostics.completed_silently(first_error)

    def _diagnose_broadcast(self, pdu: Diagnostics) -> None:
        diagnostics = self.diagnostics
        sub_function = pdu.sub_function
        if sub_function == DiagnosticSubFunction.FORCE_LISTEN_ONLY_MODE:
            diagnostics.enter_listen_only()
            diagnostics.no_response()
            return
        diagnostics.completed_silently(None)
        if sub_function == DiagnosticSubFunction.RESTART_COMMUNICATIONS_OPTION:
            diagnostics.restart(clear_log=pdu.data == b"\xff\x00")
        elif sub_function == DiagnosticSubFunction.CLEAR_COUNTERS_AND_DIAGNOSTIC_REGISTER:
            diagnostics.clear_counters()
        elif sub_function == DiagnosticSubFunction.CHANGE_ASCII_INPUT_DELIMITER:
            diagnostics.change_ascii_delimiter(pdu.data[0])
        else:
            diagnostics.clear_overrun()


def _checked_custom_response(outcome: object) -> ResponsePdu:
    if not isinstance(outcome, ResponsePdu):
        raise LocalProtocolError(f"a custom function returned {outcome!r}, not a response PDU")
    return outcome
