"""Fuzz target: the Dispatcher executing decoded requests against devices.

Input: ``flags`` then requests, each ``unit, size, PDU``.

flags: bit 0 serial line (broadcast on unit 0, silence for missing units),
bit 1 several units (1 and 2 share a device, 17 and 247 have their own;
else one device answers every unit), bit 2 custom function table.

The devices have holes, read-only ranges, FIFOs (one too long to read) and
files.  Every request runs twice: against synchronous Devices and against
AsyncDevice wrappers of identical Devices; both must give the same answers
and end in the same state (differential check of the two dispatch paths).

Checked for the synchronous run: dispatch never raises and returns a
Response or None; the answer echoes unit and transaction id, is the request's
function or its exception, passes its constructor's validation and survives
encode/decode; the outcome of every table, FIFO and file operation is the
one the specification's validation order gives for the device's state
(02 for missing or read-only addresses, 03 for an overlong FIFO, the values
for reads, the new values after writes, write-before-read for FC23); an
exception changes nothing; device identification streams never split an
object and always advance; broadcasts and listen-only mode stay silent.
"""

from __future__ import annotations

from typing import Any

from fuzzsupport import Reader, fuzz, instrumented

with instrumented(__name__ == "__main__"):
    from fuzzoracles import (
        AsyncWrapper,
        check_reply,
        decode_request,
        expect,
        function_table,
        make_context,
        resolve,
    )

    from modbus_core import (
        BitTable,
        Device,
        DeviceIdentity,
        Diagnostics,
        DiagnosticsResponse,
        DiagnosticSubFunction,
        Dispatcher,
        ExceptionCode,
        ExceptionResponse,
        MalformedRequest,
        MaskWriteRegister,
        RawPdu,
        ReadCoils,
        ReadDeviceIdentification,
        ReadDeviceIdentificationResponse,
        ReadDiscreteInputs,
        ReadExceptionStatus,
        ReadFifoQueue,
        ReadFileRecord,
        ReadHoldingRegisters,
        ReadInputRegisters,
        ReadWriteMultipleRegisters,
        RegisterTable,
        Request,
        RequestPdu,
        Response,
        WriteFileRecord,
        WriteMultipleCoils,
        WriteMultipleRegisters,
        WriteSingleCoil,
        WriteSingleRegister,
    )

Fingerprint = tuple[Any, ...]

# Requests that write to a device: the only ones that may change it.
WRITES = frozenset(
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

# Object ids each streaming read code returns (ids 0x07..0x7F are reserved).
CATEGORY_IDS = {1: range(0x03), 2: range(0x07), 3: [*range(0x07), *range(0x80, 0x100)]}


def fingerprint(device: Device) -> Fingerprint:
    """Everything a Modbus request may change in *device*."""
    tables = tuple(
        tuple(tuple(table.read(start, count)) for start, count in table.ranges()) for table in device.tables.values()
    )
    fifos = tuple(sorted((address, tuple(queue)) for address, queue in device.fifos.items()))
    files = tuple(sorted((number, records.tobytes()) for number, records in device.files.items()))
    return tables, fifos, files


def writable(table: Any, address: int, count: int) -> bool:
    return bool(table.covers(address, count)) and not table.is_read_only(address, count)


def expected_outcome(device: Device, pdu: RequestPdu) -> tuple[int | None, Any]:
    """``(exception code or None, expected values)`` for a device operation, from the state before it.

    Returns ``(-1, None)`` for requests this model does not cover.
    """
    address_count: dict[type[RequestPdu], BitTable | RegisterTable] = {
        ReadCoils: device.coils,
        ReadDiscreteInputs: device.discrete_inputs,
        ReadHoldingRegisters: device.holding_registers,
        ReadInputRegisters: device.input_registers,
    }
    illegal = ExceptionCode.ILLEGAL_DATA_ADDRESS
    if isinstance(pdu, ReadCoils | ReadDiscreteInputs | ReadHoldingRegisters | ReadInputRegisters):
        table = address_count[type(pdu)]
        if not table.covers(pdu.address, pdu.count):
            return illegal, None
        return None, tuple(table.read(pdu.address, pdu.count))
    if isinstance(pdu, WriteSingleCoil):
        return (None, None) if writable(device.coils, pdu.address, 1) else (illegal, None)
    if isinstance(pdu, WriteSingleRegister):
        return (None, None) if writable(device.holding_registers, pdu.address, 1) else (illegal, None)
    if isinstance(pdu, WriteMultipleCoils):
        return (None, None) if writable(device.coils, pdu.address, len(pdu.values)) else (illegal, None)
    if isinstance(pdu, WriteMultipleRegisters):
        return (None, None) if writable(device.holding_registers, pdu.address, len(pdu.values)) else (illegal, None)
    if isinstance(pdu, MaskWriteRegister):
        holding = device.holding_registers
        if not writable(holding, pdu.address, 1):
            return illegal, None
        (current,) = holding.read(pdu.address, 1)
        return None, (current & pdu.and_mask) | (pdu.or_mask & ~pdu.and_mask & 0xFFFF)
    if isinstance(pdu, ReadWriteMultipleRegisters):
        holding = device.holding_registers
        if not holding.covers(pdu.read_address, pdu.read_count) or not writable(
            holding, pdu.write_address, len(pdu.write_values)
        ):
            return illegal, None
        return None, None
    if isinstance(pdu, ReadExceptionStatus):
        return None, device.exception_status
    if isinstance(pdu, ReadFifoQueue):
        queue = device.fifos.get(pdu.address)
        if queue is None:
            return illegal, None
        if len(queue) > 31:
            return ExceptionCode.ILLEGAL_DATA_VALUE, None
        return None, tuple(queue)
    if isinstance(pdu, ReadFileRecord | WriteFileRecord):
        spans = (
            [(ref.file_number, ref.record_number, ref.record_length) for ref in pdu.references]
            if isinstance(pdu, ReadFileRecord)
            else [(record.file_number, record.record_number, len(record.values)) for record in pdu.records]
        )
        for number, start, length in spans:
            records = device.files.get(number)
            if records is None or start + length > len(records):
                return illegal, None
        return None, tuple(tuple(device.files[number][start : start + length]) for number, start, length in spans)
    if isinstance(pdu, MalformedRequest):
        return pdu.exception_code, None
    if type(pdu) is RawPdu:
        return ExceptionCode.ILLEGAL_FUNCTION, None
    return -1, None


def is_exception(answer: object, function_code: int, code: int) -> bool:
    """Whether *answer* is exception *code* to *function_code* (built by hand: code 0 is possible)."""
    return (
        isinstance(answer, ExceptionResponse)
        and answer.function_code == function_code & 0x7F
        and answer.exception_code == code
    )


def check_outcome(device: Device, pdu: Any, code: int | None, values: Any, reply: Response) -> None:
    """The answer and the device's new state are what :func:`expected_outcome` predicted."""
    answer: Any = reply.pdu
    if code is not None:
        expect(
            is_exception(answer, pdu.function_code, code),
            "{!r} was answered {!r}, expected exception {:#04x}",
            pdu,
            answer,
            code,
        )
        return
    expect(not isinstance(answer, ExceptionResponse), "{!r} was answered {!r}", pdu, answer)
    if isinstance(pdu, ReadCoils | ReadDiscreteInputs):
        expect(answer.values == values, "{!r} read {!r}, the table holds {}", pdu, answer, values)
    elif isinstance(pdu, ReadHoldingRegisters | ReadInputRegisters):
        expect(answer.registers == values, "{!r} read {!r}, the table holds {}", pdu, answer, values)
    elif isinstance(pdu, WriteSingleCoil | WriteSingleRegister):
        table = device.coils if isinstance(pdu, WriteSingleCoil) else device.holding_registers
        now = table.read(pdu.address, 1)[0]
        expect(now == pdu.value, "after {!r} the table holds {}", pdu, now)
        expect(answer.address == pdu.address and answer.value == pdu.value, "{!r} echoed {!r}", pdu, answer)
    elif isinstance(pdu, WriteMultipleCoils | WriteMultipleRegisters):
        table = device.coils if isinstance(pdu, WriteMultipleCoils) else device.holding_registers
        written = tuple(table.read(pdu.address, len(pdu.values)))
        expect(written == tuple(pdu.values), "after {!r} the table holds {}", pdu, written)
        expect(answer.address == pdu.address and answer.count == len(pdu.values), "{!r} answered {!r}", pdu, answer)
    elif isinstance(pdu, MaskWriteRegister):
        now = device.holding_registers.read(pdu.address, 1)[0]
        expect(now == values, "after {!r} the register holds {:#06x}, expected {:#06x}", pdu, now, values)
    elif isinstance(pdu, ReadWriteMultipleRegisters):
        holding = device.holding_registers
        written = tuple(holding.read(pdu.write_address, len(pdu.write_values)))
        expect(written == pdu.write_values, "after {!r} the registers hold {}", pdu, written)
        read = tuple(holding.read(pdu.read_address, pdu.read_count))
        expect(answer.registers == read, "{!r} read {!r} but the registers hold {}", pdu, answer, read)
    elif isinstance(pdu, ReadExceptionStatus):
        expect(answer.status == values, "{!r} answered {!r}, the status is {:#04x}", pdu, answer, values)
    elif isinstance(pdu, ReadFifoQueue):
        expect(answer.values == values, "{!r} answered {!r}, the queue holds {}", pdu, answer, values)
    elif isinstance(pdu, ReadFileRecord):
        expect(answer.records == values, "{!r} answered {!r}, the files hold {}", pdu, answer, values)
    elif isinstance(pdu, WriteFileRecord):
        for record in pdu.records:
            stored = tuple(device.files[record.file_number][record.record_number :][: len(record.values)])
            expect(stored == record.values, "after {!r} file {} holds {}", pdu, record.file_number, stored)


def check_identification(pdu: ReadDeviceIdentification, reply: Response, identity: DeviceIdentity) -> None:
    answer = reply.pdu
    objects = identity.objects
    if pdu.read_code == 4:
        if pdu.object_id not in objects:
            expect(
                is_exception(answer, 0x2B, ExceptionCode.ILLEGAL_DATA_ADDRESS),
                "{!r} (no such object) was answered {!r}",
                pdu,
                answer,
            )
            return
        expect(
            isinstance(answer, ReadDeviceIdentificationResponse)
            and answer.objects == ((pdu.object_id, objects[pdu.object_id]),)
            and not answer.more_follows,
            "{!r} was answered {!r}",
            pdu,
            answer,
        )
        return
    expect(isinstance(answer, ReadDeviceIdentificationResponse), "{!r} was answered {!r}", pdu, answer)
    assert isinstance(answer, ReadDeviceIdentificationResponse)
    category = [object_id for object_id in CATEGORY_IDS[pdu.read_code] if object_id in objects]
    ids = [object_id for object_id, _ in answer.objects]
    expect(answer.read_code == pdu.read_code, "{!r} was answered {!r}", pdu, answer)
    expect(answer.conformity_level == identity.conformity_level, "{!r}: wrong conformity level", answer)
    expect(ids, "{!r}: a stream response without objects never advances", pdu)
    first = pdu.object_id if pdu.object_id in category else category[0]
    expect(ids[0] == first, "{!r} streamed from {:#04x}, expected {:#04x}", pdu, ids[0], first)
    expect(
        ids == category[category.index(first) :][: len(ids)],
        "{!r} streamed {}, the category is {}",
        pdu,
        ids,
        category,
    )
    for object_id, value in answer.objects:
        expect(value == objects[object_id], "{!r}: object {:#04x} was split or changed", pdu, object_id)
    rest = category[category.index(first) + len(ids) :]
    if answer.more_follows:
        expect(rest and answer.next_object_id == rest[0], "{!r}: {!r} does not point at {}", pdu, answer, rest)
    else:
        expect(not rest and answer.next_object_id == 0, "{!r}: {!r} left out {}", pdu, answer, rest)


def check(data: bytes) -> None:
    reader = Reader(data)
    flags = reader.u8()
    serial = bool(flags & 0x01)
    multi = bool(flags & 0x02)
    functions = function_table(bool(flags & 0x04))

    context = make_context(multi=multi, full=True)
    dispatcher = Dispatcher(context, serial=serial)
    async_context = make_context(multi=multi, full=True, wrap=AsyncWrapper)
    async_dispatcher = Dispatcher(async_context, serial=serial)
    diagnostics = dispatcher.diagnostics

    transaction_id = 0
    while reader.remaining:
        unit = reader.u8()
        raw = reader.take(reader.u8())
        transaction_id = (transaction_id + 1) & 0xFFFF
        pdu = decode_request(functions, raw)
        request = Request(pdu, unit, 0 if serial else transaction_id)

        device = context.get(unit)
        broadcast = serial and unit == 0
        listen_only = diagnostics.listen_only
        # The whole device is compared only around requests that may write (or must not, in listen-only).
        may_write = type(pdu) in WRITES or listen_only
        before = fingerprint(device) if isinstance(device, Device) and not broadcast and may_write else None
        modelled = isinstance(device, Device) and not broadcast
        code, values = expected_outcome(device, pdu) if modelled else (-1, None)  # type: ignore[arg-type]

        result = dispatcher.dispatch(request)
        expect(result is None or isinstance(result, Response), "dispatch({!r}) returned {!r}", request, result)
        reply = result if isinstance(result, Response) else None
        async_reply = resolve(async_dispatcher.dispatch(request))
        expect(
            async_reply == reply,
            "{!r}: a Device answers {!r}, an AsyncDevice {!r}",
            request,
            reply,
            async_reply,
        )

        restart = (
            isinstance(pdu, Diagnostics) and pdu.sub_function == DiagnosticSubFunction.RESTART_COMMUNICATIONS_OPTION
        )
        silent = broadcast or listen_only or (device is None and serial)
        if silent:
            expect(reply is None, "{!r} must get no answer (broadcast, listen-only, not ours)", request)
            if listen_only and not restart and before is not None:
                expect(fingerprint(device) == before, "{!r} changed a device in listen-only mode", request)  # type: ignore[arg-type]
            continue
        if not pdu.function_code & 0x7F:
            # 0x00 and 0x80 are no functions: no exception response to them can be encoded.
            expect(reply is None, "{!r} to function 0 was answered {!r}", request, reply)
            continue
        if device is None:
            expect(
                reply is not None and is_exception(reply.pdu, pdu.function_code, 0x0B),
                "{!r} for a missing unit was answered {!r}",
                request,
                reply,
            )
            check_reply(functions, request, reply)  # type: ignore[arg-type]
            continue
        if isinstance(pdu, Diagnostics) and pdu.sub_function == DiagnosticSubFunction.FORCE_LISTEN_ONLY_MODE:
            expect(reply is None and diagnostics.listen_only, "{!r} was answered {!r}", request, reply)
            continue
        expect(reply is not None, "{!r} got no answer", request)
        assert reply is not None
        check_reply(functions, request, reply)
        if isinstance(pdu, Diagnostics) and pdu.sub_function == DiagnosticSubFunction.RETURN_QUERY_DATA:
            echo = DiagnosticsResponse(pdu.sub_function, pdu.data)
            expect(reply.pdu == echo, "{!r} was not echoed: {!r}", request, reply)
        if isinstance(pdu, ReadDeviceIdentification):
            identity = device.identity or dispatcher.identity  # type: ignore[union-attr]
            check_identification(pdu, reply, identity)
        if code != -1:
            assert isinstance(device, Device)
            check_outcome(device, pdu, code, values, reply)
            if isinstance(reply.pdu, ExceptionResponse) and before is not None:
                expect(fingerprint(device) == before, "{!r} failed with {!r} but changed the device", request, reply)
    for unit in {1, 2, 17, 247, 0xFF} if multi else {1}:
        device, async_device = context.get(unit), async_context.get(unit)
        if isinstance(device, Device) and isinstance(async_device, AsyncWrapper):
            expect(
                fingerprint(device) == fingerprint(async_device.device),
                "unit {}: the Device and the AsyncDevice ended in different states",
                unit,
            )
    expect(
        diagnostics.snapshot() == async_dispatcher.diagnostics.snapshot()
        and diagnostics.events == async_dispatcher.diagnostics.events,
        "the two dispatchers counted differently",
    )


if __name__ == "__main__":
    fuzz(check)
