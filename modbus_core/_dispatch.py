"""Dispatch: what a request does to the datastore, as the specification says.

:class:`Dispatcher` turns a :class:`Request` into a :class:`Response`, or into
None when the server must stay silent (a broadcast, listen-only mode, a unit
that is not ours on a serial line).  It never raises for a request: failures
become exception responses, in the order the specification gives (01
unsupported function, 03 malformed values, 02 missing addresses, 04 failure
while executing).

The datastore may be asynchronous: a device whose operations are
coroutines (see :class:`AsyncDevice`) makes :meth:`Dispatcher.dispatch`
return an awaitable, which async adapters await; synchronous devices never
pay for that.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeAlias, runtime_checkable

from ._datastore import Device, ServerContext
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

__all__ = ["AsyncDevice", "Dispatcher"]

logger = logging.getLogger("modbus_core.dispatch")

_DispatchResult: TypeAlias = "Response | Awaitable[Response | None] | None"


@runtime_checkable
class AsyncDevice(Protocol):
    """A device whose operations are coroutines (a database, a gateway).

    The dispatcher validates requests exactly as for :class:`Device` and
    awaits these methods; they raise :class:`ModbusExceptionError` for
    missing addresses (02) and anything else for a failure (04).  Values
    they return are checked before they are encoded.  An ``identity``
    attribute (a :class:`DeviceIdentity` or None) is optional.
    """

    async def read_coils(self, address: int, count: int) -> Sequence[bool]: ...
    async def read_discrete_inputs(self, address: int, count: int) -> Sequence[bool]: ...
    async def read_holding_registers(self, address: int, count: int) -> Sequence[int]: ...
    async def read_input_registers(self, address: int, count: int) -> Sequence[int]: ...
    async def write_coils(self, address: int, values: Sequence[bool]) -> None: ...
    async def write_registers(self, address: int, values: Sequence[int]) -> None: ...
    async def mask_write_register(self, address: int, and_mask: int, or_mask: int) -> None: ...
    async def read_write_registers(
        self, read_address: int, read_count: int, write_address: int, values: Sequence[int]
    ) -> Sequence[int]: ...
    async def read_exception_status(self) -> int: ...
    async def read_fifo_queue(self, address: int) -> Sequence[int]: ...
    async def read_file_records(self, references: Sequence[FileRecordReference]) -> Sequence[Sequence[int]]: ...
    async def write_file_records(self, records: Sequence[FileRecord]) -> None: ...


# A plan: which device operation a request needs and how its result becomes
# the response.  ``finish(result, trusted)``; *trusted* results come from
# the built-in Device and skip re-validation.
_Finish: TypeAlias = Callable[[Any, bool], ResponsePdu]
_Plan: TypeAlias = tuple[str, tuple[Any, ...], _Finish]


def _reader(cls: type[ResponsePdu]) -> _Finish:
    make = _unchecked(cls)

    def finish(result: Any, trusted: bool) -> ResponsePdu:
        return make(result) if trusted else cls(tuple(result))  # type: ignore[call-arg]

    return finish


def _echo(response: ResponsePdu) -> _Finish:
    return lambda result, trusted: response


_finish_coils = _reader(ReadCoilsResponse)
_finish_discrete_inputs = _reader(ReadDiscreteInputsResponse)
_finish_holding = _reader(ReadHoldingRegistersResponse)
_finish_input = _reader(ReadInputRegistersResponse)
_finish_read_write = _reader(ReadWriteMultipleRegistersResponse)
_finish_fifo = _reader(ReadFifoQueueResponse)
_make_write_coil_response = _unchecked(WriteSingleCoilResponse)
_make_write_register_response = _unchecked(WriteSingleRegisterResponse)


def _finish_exception_status(result: Any, trusted: bool) -> ResponsePdu:
    return ReadExceptionStatusResponse(result)


def _finish_file_read(result: Any, trusted: bool) -> ResponsePdu:
    return ReadFileRecordResponse(tuple(tuple(group) for group in result))


def _plan_read_coils(pdu: Any) -> _Plan:
    return "read_coils", (pdu.address, pdu.count), _finish_coils


def _plan_read_discrete_inputs(pdu: Any) -> _Plan:
    return "read_discrete_inputs", (pdu.address, pdu.count), _finish_discrete_inputs


def _plan_read_holding(pdu: Any) -> _Plan:
    return "read_holding_registers", (pdu.address, pdu.count), _finish_holding


def _plan_read_input(pdu: Any) -> _Plan:
    return "read_input_registers", (pdu.address, pdu.count), _finish_input


def _plan_write_coil(pdu: Any) -> _Plan:
    return "write_coils", (pdu.address, (pdu.value,)), _echo(_make_write_coil_response(pdu.address, pdu.value))


def _plan_write_register(pdu: Any) -> _Plan:
    response = _make_write_register_response(pdu.address, pdu.value)
    return "write_registers", (pdu.address, (pdu.value,)), _echo(response)


def _plan_write_coils(pdu: Any) -> _Plan:
    response = WriteMultipleCoilsResponse(pdu.address, len(pdu.values))
    return "write_coils", (pdu.address, pdu.values), _echo(response)


def _plan_write_registers(pdu: Any) -> _Plan:
    response = WriteMultipleRegistersResponse(pdu.address, len(pdu.values))
    return "write_registers", (pdu.address, pdu.values), _echo(response)


def _plan_mask_write(pdu: Any) -> _Plan:
    response = MaskWriteRegisterResponse(pdu.address, pdu.and_mask, pdu.or_mask)
    return "mask_write_register", (pdu.address, pdu.and_mask, pdu.or_mask), _echo(response)


def _plan_read_write(pdu: Any) -> _Plan:
    args = (pdu.read_address, pdu.read_count, pdu.write_address, pdu.write_values)
    return "read_write_registers", args, _finish_read_write


def _plan_exception_status(pdu: Any) -> _Plan:
    return "read_exception_status", (), _finish_exception_status


def _plan_fifo(pdu: Any) -> _Plan:
    return "read_fifo_queue", (pdu.address,), _finish_fifo


def _plan_file_read(pdu: Any) -> _Plan:
    return "read_file_records", (pdu.references,), _finish_file_read


def _plan_file_write(pdu: Any) -> _Plan:
    return "write_file_records", (pdu.records,), _echo(WriteFileRecordResponse(pdu.records))


_PLANS: dict[type[RequestPdu], Callable[[Any], _Plan]] = {
    ReadCoils: _plan_read_coils,
    ReadDiscreteInputs: _plan_read_discrete_inputs,
    ReadHoldingRegisters: _plan_read_holding,
    ReadInputRegisters: _plan_read_input,
    WriteSingleCoil: _plan_write_coil,
    WriteSingleRegister: _plan_write_register,
    WriteMultipleCoils: _plan_write_coils,
    WriteMultipleRegisters: _plan_write_registers,
    MaskWriteRegister: _plan_mask_write,
    ReadWriteMultipleRegisters: _plan_read_write,
    ReadExceptionStatus: _plan_exception_status,
    ReadFifoQueue: _plan_fifo,
    ReadFileRecord: _plan_file_read,
    WriteFileRecord: _plan_file_write,
}

# What a broadcast executes: writes (and diagnostics that change the line's
# state); reads by broadcast are ignored.
_BROADCAST_WRITES = frozenset(
    {
        WriteSingleCoil,
        WriteSingleRegister,
        WriteMultipleCoils,
        WriteMultipleRegisters,
        MaskWriteRegister,
        ReadWriteMultipleRegisters,
        WriteFileRecord,
    }
)
_BROADCAST_DIAGNOSTICS = frozenset(
    {
        DiagnosticSubFunction.RESTART_COMMUNICATIONS_OPTION,
        DiagnosticSubFunction.CHANGE_ASCII_INPUT_DELIMITER,
        DiagnosticSubFunction.FORCE_LISTEN_ONLY_MODE,
        DiagnosticSubFunction.CLEAR_COUNTERS_AND_DIAGNOSTIC_REGISTER,
        DiagnosticSubFunction.CLEAR_OVERRUN_COUNTER_AND_FLAG,
    }
)

_NO_RESPONSE = object()  # an operation that must not be answered (08/04)


def _is_awaitable(value: object) -> bool:
    return value is not None and value.__class__ is not tuple and hasattr(value, "__await__")


class Dispatcher:
    """Executes requests against a :class:`ServerContext`.

    *serial*: the server is on a serial line, which sets the defaults of
    *broadcast* (unit 0 executes writes on every device, unanswered) and
    *ignore_missing_units* (silence for units that are not ours; on TCP the
    default answers exception 0B, "gateway target device failed to
    respond").  *diagnostics* holds the counters of functions 08, 11 and 12
    (a new one if not given).  *identity* answers functions 17 and 43 for
    devices without an identity of their own.
    """

    __slots__ = ("broadcast", "context", "diagnostics", "identity", "ignore_missing_units")

    def __init__(
        self,
        context: ServerContext,
        *,
        diagnostics: ServerDiagnostics | None = None,
        identity: DeviceIdentity | None = None,
        serial: bool = False,
        broadcast: bool | None = None,
        ignore_missing_units: bool | None = None,
    ) -> None:
        if not isinstance(context, ServerContext):
            raise LocalProtocolError(f"expected a ServerContext, got {type(context).__name__}")
        self.context = context
        self.diagnostics = diagnostics if diagnostics is not None else ServerDiagnostics()
        self.identity = identity if identity is not None else DeviceIdentity("modbuskit", "modbuskit", "1.0")
        self.broadcast = serial if broadcast is None else broadcast
        self.ignore_missing_units = serial if ignore_missing_units is None else ignore_missing_units

    def __repr__(self) -> str:
        return f"Dispatcher({self.context!r}, broadcast={self.broadcast})"

    def __contains__(self, unit: object) -> bool:
        """Whether requests for *unit* are this server's (for ``ServerConnection(units=...)``)."""
        return unit in self.context or (unit == 0 and self.broadcast)

    def dispatch(self, request: Request) -> _DispatchResult:
        """The answer to *request*: a :class:`Response`, None for silence, or
        an awaitable of either when the device is asynchronous."""
        unit = request.unit
        diagnostics = self.diagnostics
        if unit == 0 and self.broadcast:
            return self._broadcast(request)
        device = self.context.get(unit)
        if device is None:
            if self.ignore_missing_units:
                return None
            diagnostics.message_received(broadcast=False)
            return self._conclude(
                request,
                _make_exception(request.pdu.function_code, ExceptionCode.GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND),
            )
        diagnostics.message_received(broadcast=False)
        pdu = request.pdu
        if diagnostics.listen_only and not _is_restart(pdu):
            diagnostics.no_response()
            return None
        plan_for = _PLANS.get(pdu.__class__)
        if plan_for is None:
            outcome = self._execute_local(pdu, device)
            if _is_awaitable(outcome):
                return self._conclude_later(request, outcome)  # type: ignore[arg-type]
            return self._conclude(request, outcome)
        method, args, finish = plan_for(pdu)
        trusted = device.__class__ is Device
        try:
            result = getattr(device, method)(*args)
            if _is_awaitable(result):
                return self._finish_later(request, result, finish)
            response = finish(result, trusted)
        except Exception as error:  # noqa: BLE001 - every failure becomes an exception code
            response = self._failure(request, error)
        return self._conclude(request, response)

    __call__ = dispatch

    async def dispatch_async(self, request: Request) -> Response | None:
        """:meth:`dispatch`, always as a coroutine."""
        result = self.dispatch(request)
        if isinstance(result, Response) or result is None:
            return result
        return await result

    # ------------------------------------------------------------------

    async def _finish_later(self, request: Request, pending: Awaitable[Any], finish: _Finish) -> Response | None:
        try:
            response = finish(await pending, False)
        except Exception as error:  # noqa: BLE001
            response = self._failure(request, error)
        return self._conclude(request, response)

    async def _conclude_later(self, request: Request, pending: Awaitable[Any]) -> Response | None:
        try:
            outcome = await pending
        except Exception as error:  # noqa: BLE001
            outcome = self._failure(request, error)
        return self._conclude(request, outcome)

    def _failure(self, request: Request, error: Exception) -> ExceptionResponse:
        code = request.pdu.function_code & 0x7F
        if isinstance(error, ModbusExceptionError):
            return _make_exception(code, error.exception_code)
        logger.error("unit %d function %d failed: %r", request.unit, code, request.pdu, exc_info=error)
        return _make_exception(code, ExceptionCode.SERVER_DEVICE_FAILURE)

    def _conclude(self, request: Request, outcome: ResponsePdu | object) -> Response | None:
        diagnostics = self.diagnostics
        if outcome is _NO_RESPONSE:
            diagnostics.no_response()
            return None
        if outcome.__class__ is ExceptionResponse:
            diagnostics.response_sent(outcome.exception_code)
        else:
            diagnostics.response_sent(None, counts_as_event=outcome.__class__ is not GetCommEventCounterResponse)
        return _make_response(outcome, request.unit, request.transaction_id)

    def _execute_local(self, pdu: RequestPdu, device: Any) -> ResponsePdu | object:
        """Requests that do not go through a device operation."""
        cls = pdu.__class__
        code = pdu.function_code & 0x7F
        try:
            if cls is MalformedRequest:
                return _make_exception(code, pdu.exception_code)  # type: ignore[attr-defined]
            if cls is Diagnostics:
                return self._diagnose(pdu)  # type: ignore[arg-type]
            if cls is GetCommEventCounter:
                diagnostics = self.diagnostics
                return GetCommEventCounterResponse(diagnostics.status, diagnostics.event_count & 0xFFFF)
            if cls is GetCommEventLog:
                diagnostics = self.diagnostics
                return GetCommEventLogResponse(
                    diagnostics.status,
                    diagnostics.event_count & 0xFFFF,
                    diagnostics.bus_message_count & 0xFFFF,
                    bytes(diagnostics.events),
                )
            if cls is ReportServerId:
                identity = self._identity_of(device)
                return ReportServerIdResponse(identity.server_id, identity.running, identity.additional_data)
            if cls is ReadDeviceIdentification:
                return self._identity_of(device).read(pdu.read_code, pdu.object_id)  # type: ignore[attr-defined]
            execute = getattr(pdu, "execute", None)
            if cls is RawPdu or execute is None:
                return _make_exception(code, ExceptionCode.ILLEGAL_FUNCTION)
            # A custom function: its request class carries the behaviour.
            return execute(device)  # type: ignore[no-any-return]
        except ModbusExceptionError as error:
            return _make_exception(code, error.exception_code)

    def _identity_of(self, device: Any) -> DeviceIdentity:
        identity = getattr(device, "identity", None)
        return identity if isinstance(identity, DeviceIdentity) else self.identity

    def _diagnose(self, pdu: Diagnostics) -> ResponsePdu | object:
        diagnostics = self.diagnostics
        sub_function = pdu.sub_function
        if sub_function == DiagnosticSubFunction.RESTART_COMMUNICATIONS_OPTION:
            was_listening_only = diagnostics.listen_only
            diagnostics.restart(clear_log=pdu.data == b"\xff\x00")
            return _NO_RESPONSE if was_listening_only else DiagnosticsResponse(sub_function, pdu.data)
        if sub_function == DiagnosticSubFunction.FORCE_LISTEN_ONLY_MODE:
            diagnostics.enter_listen_only()
            return _NO_RESPONSE
        if sub_function == DiagnosticSubFunction.RETURN_DIAGNOSTIC_REGISTER:
            return DiagnosticsResponse(sub_function, (diagnostics.diagnostic_register & 0xFFFF).to_bytes(2, "big"))
        if sub_function == DiagnosticSubFunction.CLEAR_COUNTERS_AND_DIAGNOSTIC_REGISTER:
            diagnostics.clear_counters()
        elif sub_function == DiagnosticSubFunction.CLEAR_OVERRUN_COUNTER_AND_FLAG:
            diagnostics.clear_overrun()
        elif sub_function >= DiagnosticSubFunction.RETURN_BUS_MESSAGE_COUNT and sub_function != 0x14:
            return DiagnosticsResponse(sub_function, diagnostics.counter(sub_function).to_bytes(2, "big"))
        # 00 echoes its data; 03 echoes, and the connection changes its
        # delimiter when it sends the echo; 0A and 14 echo after clearing.
        return DiagnosticsResponse(sub_function, pdu.data)

    def _broadcast(self, request: Request) -> _DispatchResult:
        diagnostics = self.diagnostics
        diagnostics.message_received(broadcast=True)
        pdu = request.pdu
        cls = pdu.__class__
        listen_only = diagnostics.listen_only
        diagnostics.no_response()
        pending: list[Awaitable[Any]] = []
        if cls is Diagnostics and pdu.sub_function in _BROADCAST_DIAGNOSTICS:  # type: ignore[attr-defined]
            if not listen_only or _is_restart(pdu):
                self._record_silent(self._diagnose(pdu))  # type: ignore[arg-type]
        elif cls in _BROADCAST_WRITES and not listen_only:
            method, args, _finish = _PLANS[cls](pdu)
            for device in self.context.devices():
                try:
                    result = getattr(device, method)(*args)
                except Exception as error:  # noqa: BLE001
                    self._record_silent(self._failure(request, error))
                    continue
                if _is_awaitable(result):
                    pending.append(result)
                else:
                    self._record_silent(None)
        if pending:
            return self._broadcast_later(request, pending)
        return None

    async def _broadcast_later(self, request: Request, pending: list[Awaitable[Any]]) -> None:
        for awaitable in pending:
            try:
                await awaitable
            except Exception as error:  # noqa: BLE001
                self._record_silent(self._failure(request, error))
            else:
                self._record_silent(None)

    def _record_silent(self, outcome: ResponsePdu | object | None) -> None:
        """Count what a broadcast did, though nothing is sent."""
        if outcome.__class__ is ExceptionResponse:
            self.diagnostics.exception_returned(outcome.exception_code)
        elif outcome is not _NO_RESPONSE:
            self.diagnostics.event_count += 1


def _is_restart(pdu: RequestPdu) -> bool:
    return pdu.__class__ is Diagnostics and pdu.sub_function == DiagnosticSubFunction.RESTART_COMMUNICATIONS_OPTION
