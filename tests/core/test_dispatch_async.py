"""Asynchronous devices (AsyncDevice) awaited by the dispatcher, on asyncio and on trio."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import ClassVar

import anyio
import pytest
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from modbus_core import (
    NEED_DATA,
    AsyncDevice,
    ClientConnection,
    Device,
    Diagnostics,
    Dispatcher,
    ExceptionCode,
    ExceptionResponse,
    FileRecord,
    FileRecordReference,
    MaskWriteRegister,
    MbapFramer,
    ModbusExceptionError,
    ReadCoils,
    ReadDiscreteInputs,
    ReadExceptionStatus,
    ReadFifoQueue,
    ReadFileRecord,
    ReadHoldingRegisters,
    ReadHoldingRegistersResponse,
    ReadInputRegisters,
    ReadWriteMultipleRegisters,
    ReportServerId,
    Request,
    RequestPdu,
    Response,
    ResponsePdu,
    ServerConnection,
    ServerContext,
    WriteFileRecord,
    WriteMultipleCoils,
    WriteMultipleRegisters,
    WriteSingleCoil,
    WriteSingleRegister,
)

from .dispatch_support import wire

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _missing(what: str) -> ModbusExceptionError:
    return ModbusExceptionError(ExceptionCode.ILLEGAL_DATA_ADDRESS, what)


class AsyncStore:
    """An asynchronous device: plain dicts behind an anyio lock, with a checkpoint in every operation.

    Written independently of :class:`Device`, the way an application writes
    a database-backed device: each operation checks its whole range first.
    """

    def __init__(self, size: int = 20) -> None:
        self.lock = anyio.Lock()
        self.coils = dict.fromkeys(range(size), False)
        self.discrete_inputs = {address: address % 2 == 1 for address in range(size)}
        self.holding = {address: 100 + address for address in range(size)}
        self.inputs = {address: 200 + address for address in range(size)}
        self.fifos = {0: [5, 6, 7], 1: list(range(32))}
        self.files = {1: [0] * 10}
        self.status = 0x5A
        self.calls = 0

    async def _enter(self) -> None:
        self.calls += 1
        await anyio.sleep(0)  # a real suspension point, as a database driver has

    @staticmethod
    def _check(table: dict[int, object], address: int, count: int) -> None:
        if any(a not in table for a in range(address, address + count)):
            raise _missing(f"{address}..{address + count - 1}")

    async def _read(self, table: dict[int, object], address: int, count: int) -> list[object]:
        await self._enter()
        async with self.lock:
            self._check(table, address, count)
            return [table[a] for a in range(address, address + count)]

    async def read_coils(self, address: int, count: int) -> Sequence[bool]:
        return await self._read(self.coils, address, count)  # type: ignore[arg-type,return-value]

    async def read_discrete_inputs(self, address: int, count: int) -> Sequence[bool]:
        return await self._read(self.discrete_inputs, address, count)  # type: ignore[arg-type,return-value]

    async def read_holding_registers(self, address: int, count: int) -> Sequence[int]:
        return await self._read(self.holding, address, count)  # type: ignore[arg-type,return-value]

    async def read_input_registers(self, address: int, count: int) -> Sequence[int]:
        return await self._read(self.inputs, address, count)  # type: ignore[arg-type,return-value]

    async def write_coils(self, address: int, values: Sequence[bool]) -> None:
        await self._enter()
        async with self.lock:
            self._check(self.coils, address, len(values))  # type: ignore[arg-type]
            for offset, value in enumerate(values):
                self.coils[address + offset] = value

    async def write_registers(self, address: int, values: Sequence[int]) -> None:
        await self._enter()
        async with self.lock:
            self._check(self.holding, address, len(values))  # type: ignore[arg-type]
            for offset, value in enumerate(values):
                self.holding[address + offset] = value

    async def mask_write_register(self, address: int, and_mask: int, or_mask: int) -> None:
        await self._enter()
        async with self.lock:
            self._check(self.holding, address, 1)  # type: ignore[arg-type]
            self.holding[address] = (self.holding[address] & and_mask) | (or_mask & ~and_mask & 0xFFFF)

    async def read_write_registers(
        self, read_address: int, read_count: int, write_address: int, values: Sequence[int]
    ) -> Sequence[int]:
        await self._enter()
        async with self.lock:
            self._check(self.holding, read_address, read_count)  # type: ignore[arg-type]
            self._check(self.holding, write_address, len(values))  # type: ignore[arg-type]
            for offset, value in enumerate(values):
                self.holding[write_address + offset] = value
            return [self.holding[a] for a in range(read_address, read_address + read_count)]

    async def read_exception_status(self) -> int:
        await self._enter()
        return self.status

    async def read_fifo_queue(self, address: int) -> Sequence[int]:
        await self._enter()
        if address not in self.fifos:
            raise _missing(f"FIFO {address}")
        return list(self.fifos[address])

    async def read_file_records(self, references: Sequence[FileRecordReference]) -> Sequence[Sequence[int]]:
        await self._enter()
        groups = []
        for reference in references:
            records = self.files.get(reference.file_number)
            end = reference.record_number + reference.record_length
            if records is None or end > len(records):
                raise _missing(f"file {reference.file_number}")
            groups.append(records[reference.record_number : end])
        return groups

    async def write_file_records(self, records: Sequence[FileRecord]) -> None:
        await self._enter()
        for record in records:
            stored = self.files.get(record.file_number)
            if stored is None or record.record_number + len(record.values) > len(stored):
                raise _missing(f"file {record.file_number}")
        for record in records:
            self.files[record.file_number][record.record_number : record.record_number + len(record.values)] = list(
                record.values
            )


def reference_device() -> Device:
    """A synchronous Device with the same content as a fresh AsyncStore."""
    return Device(
        coils=[False] * 20,
        discrete_inputs=[address % 2 == 1 for address in range(20)],
        holding_registers=[100 + address for address in range(20)],
        input_registers=[200 + address for address in range(20)],
        fifos={0: [5, 6, 7], 1: list(range(32))},
        files={1: 10},
        exception_status=0x5A,
    )


REQUESTS: list[RequestPdu] = [
    ReadCoils(0, 20),
    ReadCoils(19, 2),
    ReadDiscreteInputs(3, 5),
    ReadHoldingRegisters(0, 20),
    ReadHoldingRegisters(10, 11),
    ReadInputRegisters(15, 5),
    ReadInputRegisters(20, 1),
    WriteSingleCoil(3, True),
    WriteSingleCoil(20, True),
    WriteSingleRegister(4, 0xBEEF),
    WriteMultipleCoils(0, (True, False, True)),
    WriteMultipleCoils(18, (True, True, True)),
    WriteMultipleRegisters(5, (1, 2, 3)),
    WriteMultipleRegisters(19, (1, 2)),
    MaskWriteRegister(4, 0x00F0, 0x0102),
    MaskWriteRegister(25, 0, 0),
    ReadWriteMultipleRegisters(3, 4, 4, (9, 9)),
    ReadWriteMultipleRegisters(18, 4, 0, (1,)),
    ReadWriteMultipleRegisters(0, 1, 19, (1, 1)),
    ReadExceptionStatus(),
    ReadFifoQueue(0),
    ReadFifoQueue(1),
    ReadFifoQueue(2),
    WriteFileRecord((FileRecord(1, 2, (7, 8)),)),
    ReadFileRecord((FileRecordReference(1, 0, 4),)),
    ReadFileRecord((FileRecordReference(1, 9, 2),)),
    WriteFileRecord((FileRecord(1, 9, (7, 8)),)),
    ReportServerId(),
    Diagnostics(0),
    wire("03 0000 0000"),
    wire("41"),
]


async def test_an_async_device_answers_exactly_like_the_built_in_device() -> None:
    store = AsyncStore()
    asynchronous = Dispatcher(ServerContext({1: store}))
    synchronous = Dispatcher(ServerContext({1: reference_device()}))
    for transaction_id, pdu in enumerate(REQUESTS):
        request = Request(pdu, 1, transaction_id)
        expected = synchronous.dispatch(request)
        assert isinstance(expected, Response)
        assert await asynchronous.dispatch_async(request) == expected, pdu
    assert store.calls > 20
    device = synchronous.context[1]
    assert isinstance(device, Device)
    assert [store.holding[a] for a in range(20)] == list(device.holding_registers.read(0, 20))
    assert [store.coils[a] for a in range(20)] == list(device.coils.read(0, 20))
    assert store.files[1] == list(device.files[1])
    assert asynchronous.diagnostics.snapshot() == synchronous.diagnostics.snapshot()


async def test_dispatch_returns_an_awaitable_only_for_async_operations() -> None:
    dispatcher = Dispatcher(ServerContext({1: AsyncStore()}))
    pending = dispatcher.dispatch(Request(ReadHoldingRegisters(0, 2), 1, 3))
    assert not isinstance(pending, Response)
    assert pending is not None
    assert await pending == Response(ReadHoldingRegistersResponse((100, 101)), 1, 3)
    # Functions the dispatcher answers itself stay synchronous.
    assert isinstance(dispatcher.dispatch(Request(ReportServerId(), 1)), Response)
    assert isinstance(dispatcher.dispatch(Request(wire("03 0000 0000"), 1)), Response)


async def test_concurrent_requests_are_all_answered() -> None:
    store = AsyncStore()
    dispatcher = Dispatcher(ServerContext({1: store}))
    answers: dict[int, Response | None] = {}

    async def one(index: int) -> None:
        if index % 2:
            answers[index] = await dispatcher.dispatch_async(Request(WriteSingleRegister(index % 20, index), 1, index))
        else:
            answers[index] = await dispatcher.dispatch_async(Request(ReadHoldingRegisters(0, 20), 1, index))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            for index in range(100):
                group.start_soon(one, index)
    assert sorted(answers) == list(range(100))
    assert all(response is not None and not response.is_exception for response in answers.values())
    assert all(response is not None and response.transaction_id == index for index, response in answers.items())
    assert dispatcher.diagnostics.event_count == 100


class Faulty:
    """An async device whose operations fail in every way an async backend can."""

    def __init__(self) -> None:
        self.identity = None

    async def read_holding_registers(self, address: int, count: int) -> Sequence[int]:
        await anyio.sleep(0)
        if address == 1:
            raise ConnectionResetError("backend went away")
        if address == 2:
            raise ModbusExceptionError(ExceptionCode.GATEWAY_PATH_UNAVAILABLE)
        if address == 3:
            return [1] * (count + 1)
        return [70000] * count

    async def write_registers(self, address: int, values: Sequence[int]) -> None:
        await anyio.sleep(0)
        if address == 1:
            raise TimeoutError("backend too slow")


@pytest.mark.parametrize(
    ("address", "code"),
    [
        (1, ExceptionCode.SERVER_DEVICE_FAILURE),
        (2, ExceptionCode.GATEWAY_PATH_UNAVAILABLE),
        (3, ExceptionCode.SERVER_DEVICE_FAILURE),  # one value too many
        (4, ExceptionCode.SERVER_DEVICE_FAILURE),  # not a 16-bit value
    ],
)
async def test_async_failures_become_exception_codes(address: int, code: int, caplog: pytest.LogCaptureFixture) -> None:
    dispatcher = Dispatcher(ServerContext({1: Faulty()}))  # type: ignore[dict-item]
    with caplog.at_level(logging.ERROR, logger="modbus_core"):
        response = await dispatcher.dispatch_async(Request(ReadHoldingRegisters(address, 2), 1))
    assert response == Response(ExceptionResponse(3, code), 1)
    if code == ExceptionCode.SERVER_DEVICE_FAILURE:
        assert caplog.records


async def test_missing_async_operations_answer_01() -> None:
    dispatcher = Dispatcher(ServerContext({1: Faulty()}))  # type: ignore[dict-item]
    for pdu in [ReadCoils(0, 1), MaskWriteRegister(0, 0, 0), ReadFileRecord((FileRecordReference(1, 0, 1),))]:
        response = await dispatcher.dispatch_async(Request(pdu, 1))
        assert response == Response(ExceptionResponse(pdu.function_code, ExceptionCode.ILLEGAL_FUNCTION), 1)


async def test_broadcasts_await_every_async_device(caplog: pytest.LogCaptureFixture) -> None:
    first, second = AsyncStore(), AsyncStore(size=5)
    dispatcher = Dispatcher(ServerContext({1: first, 2: second, 3: Faulty()}), serial=True)  # type: ignore[dict-item]
    pending = dispatcher.dispatch(Request(WriteSingleRegister(4, 44), 0))
    assert pending is not None
    assert not isinstance(pending, Response)
    assert await pending is None
    assert first.holding[4] == second.holding[4] == 44
    assert dispatcher.diagnostics.event_count == 1
    # Register 10 is missing on the second store and the third device fails.
    with caplog.at_level(logging.ERROR, logger="modbus_core"):
        assert await dispatcher.dispatch_async(Request(WriteMultipleRegisters(1, (1,) * 10), 0)) is None
    assert first.holding[10] == 1
    assert dispatcher.diagnostics.bus_exception_error_count == 1
    assert "backend too slow" in caplog.text
    # Reads by broadcast are not even started.
    calls = first.calls
    assert dispatcher.dispatch(Request(ReadHoldingRegisters(0, 1), 0)) is None
    assert first.calls == calls


async def test_a_broadcast_mixing_sync_and_async_devices() -> None:
    store, device = AsyncStore(), Device(coils=30)
    dispatcher = Dispatcher(ServerContext({1: store, 2: device}), serial=True)
    assert await dispatcher.dispatch_async(Request(WriteSingleCoil(2, True), 0)) is None
    assert store.coils[2] is True
    assert device.coils[2] is True
    # The sync device fails (address 25 is past the store but not the device): counted once.
    assert await dispatcher.dispatch_async(Request(WriteSingleCoil(25, True), 0)) is None
    assert device.coils[25] is True
    assert dispatcher.diagnostics.bus_exception_error_count == 1
    assert dispatcher.diagnostics.event_count == 1


@dataclasses.dataclass(frozen=True, slots=True)
class Echo(ResponsePdu):
    function_code: ClassVar[int] = 0x44
    count: int

    def encode(self) -> bytes:
        return bytes((0x44, self.count))


@dataclasses.dataclass(frozen=True, slots=True)
class AsyncCount(RequestPdu):
    """A custom function whose execute() is a coroutine."""

    function_code: ClassVar[int] = 0x44
    fail: bool = False

    def encode(self) -> bytes:
        return b"\x44"

    def execute(self, device: AsyncStore) -> Awaitable[ResponsePdu]:
        return self._run(device)

    async def _run(self, device: AsyncStore) -> ResponsePdu:
        await anyio.sleep(0)
        if self.fail:
            raise RuntimeError("custom failure")
        return Echo(device.calls)


async def test_a_custom_function_may_be_asynchronous(caplog: pytest.LogCaptureFixture) -> None:
    dispatcher = Dispatcher(ServerContext({1: AsyncStore()}))
    assert await dispatcher.dispatch_async(Request(AsyncCount(), 1)) == Response(Echo(0), 1)
    with caplog.at_level(logging.ERROR, logger="modbus_core"):
        response = await dispatcher.dispatch_async(Request(AsyncCount(fail=True), 1))
    assert response == Response(ExceptionResponse(0x44, ExceptionCode.SERVER_DEVICE_FAILURE), 1)
    assert "custom failure" in caplog.text


# -- a gateway: an AsyncDevice that forwards to another server over a byte stream --------


class Gateway:
    """Forwards reads and writes of holding registers to a remote Modbus TCP server.

    The remote end is a real ServerConnection + Dispatcher task, reached over
    an anyio memory stream pair that carries the MBAP bytes.
    """

    def __init__(self, send: ObjectSendStream[bytes], receive: ObjectReceiveStream[bytes], unit: int) -> None:
        self.client = ClientConnection(MbapFramer())
        self.send, self.receive, self.unit = send, receive, unit
        self.lock = anyio.Lock()  # one transaction at a time on the link

    async def _call(self, pdu: RequestPdu) -> ResponsePdu:
        async with self.lock:
            await self.send.send(self.client.send(self.client.request(pdu, self.unit)))
            while True:
                event = self.client.next_event()
                if event is NEED_DATA:
                    self.client.receive_data(await self.receive.receive())
                    continue
                assert isinstance(event, Response)
                if isinstance(event.pdu, ExceptionResponse):
                    raise ModbusExceptionError(event.pdu.exception_code)
                return event.pdu

    async def read_holding_registers(self, address: int, count: int) -> Sequence[int]:
        response = await self._call(ReadHoldingRegisters(address, count))
        assert isinstance(response, ReadHoldingRegistersResponse)
        return response.registers

    async def write_registers(self, address: int, values: Sequence[int]) -> None:
        await self._call(WriteMultipleRegisters(address, tuple(values)))


async def serve_remote(
    dispatcher: Dispatcher, receive: ObjectReceiveStream[bytes], send: ObjectSendStream[bytes]
) -> None:
    connection = ServerConnection(MbapFramer())
    async for chunk in receive:
        connection.receive_data(chunk)
        while (event := connection.next_event()) is not NEED_DATA:
            assert isinstance(event, Request)
            response = await dispatcher.dispatch_async(event)
            assert response is not None
            await send.send(connection.send(response))


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[Dispatcher, Device]]:
    remote_device = Device(holding_registers=[10, 20, 30])
    remote = Dispatcher(ServerContext({5: remote_device}))
    to_remote_send, to_remote_receive = anyio.create_memory_object_stream[bytes](10)
    from_remote_send, from_remote_receive = anyio.create_memory_object_stream[bytes](10)
    async with anyio.create_task_group() as group:
        group.start_soon(serve_remote, remote, to_remote_receive, from_remote_send)
        local = Dispatcher(ServerContext({1: Gateway(to_remote_send, from_remote_receive, unit=5)}))  # type: ignore[dict-item]
        yield local, remote_device
        group.cancel_scope.cancel()


async def test_a_gateway_device_forwards_to_a_remote_server(gateway: tuple[Dispatcher, Device]) -> None:
    local, remote_device = gateway
    with anyio.fail_after(5):
        assert await local.dispatch_async(Request(ReadHoldingRegisters(0, 3), 1, 77)) == Response(
            ReadHoldingRegistersResponse((10, 20, 30)), 1, 77
        )
        write = await local.dispatch_async(Request(WriteSingleRegister(1, 99), 1, 78))
        assert write is not None
        assert not write.is_exception
        assert remote_device.holding_registers[1] == 99
        # The remote's exception code comes back through the gateway.
        missing = await local.dispatch_async(Request(ReadHoldingRegisters(2, 5), 1, 79))
        assert missing == Response(ExceptionResponse(3, ExceptionCode.ILLEGAL_DATA_ADDRESS), 1, 79)
        # And what the gateway does not implement is 01.
        coils = await local.dispatch_async(Request(ReadCoils(0, 1), 1, 80))
        assert coils == Response(ExceptionResponse(1, ExceptionCode.ILLEGAL_FUNCTION), 1, 80)


def test_the_async_device_protocol_describes_the_test_device() -> None:
    assert isinstance(AsyncStore(), AsyncDevice)
    assert not isinstance(Faulty(), AsyncDevice)  # partial, yet still usable (see above)
