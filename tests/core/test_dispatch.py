"""The dispatcher: every function code, every exception path, in the specification's order."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modbus_core import (
    BitTable,
    Change,
    CustomFunction,
    Device,
    DeviceIdentity,
    Dispatcher,
    ExceptionCode,
    ExceptionResponse,
    FileRecord,
    FileRecordReference,
    FunctionTable,
    LocalProtocolError,
    MalformedRequest,
    MaskWriteRegister,
    MaskWriteRegisterResponse,
    ModbusExceptionError,
    RawPdu,
    ReadCoils,
    ReadCoilsResponse,
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
    RegisterTable,
    ReportServerId,
    ReportServerIdResponse,
    Request,
    RequestPdu,
    Response,
    ResponsePdu,
    ServerContext,
    TableKind,
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

from .dispatch_support import answer, ask, error_code, wire

ILLEGAL_FUNCTION = ExceptionCode.ILLEGAL_FUNCTION
ILLEGAL_ADDRESS = ExceptionCode.ILLEGAL_DATA_ADDRESS
ILLEGAL_VALUE = ExceptionCode.ILLEGAL_DATA_VALUE
DEVICE_FAILURE = ExceptionCode.SERVER_DEVICE_FAILURE


def plain_device() -> Device:
    """Tables with values that tell addresses apart, a hole at 20..29 and a read-only range."""
    holding = {address: 1000 + address for address in [*range(20), *range(30, 40)]}
    device = Device(
        coils={address: address % 3 == 0 for address in range(20)},
        discrete_inputs=[address % 2 == 1 for address in range(16)],
        holding_registers=holding,
        input_registers=[2000 + address for address in range(10)],
        fifos={100: [1, 2, 3], 101: [], 102: list(range(31)), 103: list(range(32))},
        files={1: [10, 11, 12, 13, 14], 2: 3},
        exception_status=0x6D,
    )
    device.holding_registers.set_read_only(35, 2)
    device.coils.set_read_only(19)
    return device


@pytest.fixture
def device() -> Device:
    return plain_device()


@pytest.fixture
def dispatcher(device: Device) -> Dispatcher:
    return Dispatcher(ServerContext({1: device}))


# -- reads -------------------------------------------------------------------


def test_read_coils_returns_the_stored_bits(dispatcher: Dispatcher) -> None:
    assert answer(dispatcher, ReadCoils(2, 5)) == ReadCoilsResponse((False, True, False, False, True))


def test_read_discrete_inputs_returns_the_stored_bits(dispatcher: Dispatcher) -> None:
    assert answer(dispatcher, ReadDiscreteInputs(0, 4)) == ReadDiscreteInputsResponse((False, True, False, True))


def test_read_holding_registers_uses_wire_addresses_without_offset(dispatcher: Dispatcher) -> None:
    assert answer(dispatcher, ReadHoldingRegisters(0, 3)) == ReadHoldingRegistersResponse((1000, 1001, 1002))
    assert answer(dispatcher, ReadHoldingRegisters(39, 1)) == ReadHoldingRegistersResponse((1039,))


def test_read_input_registers_returns_the_stored_values(dispatcher: Dispatcher) -> None:
    assert answer(dispatcher, ReadInputRegisters(8, 2)) == ReadInputRegistersResponse((2008, 2009))


def test_a_read_of_125_registers_returns_them_all() -> None:
    dispatcher = Dispatcher(Device(holding_registers=list(range(200))))
    assert answer(dispatcher, ReadHoldingRegisters(75, 125)) == ReadHoldingRegistersResponse(tuple(range(75, 200)))


@given(
    st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=300),
    st.integers(0, 299),
    st.integers(1, 125),
    st.sampled_from(
        [(ReadHoldingRegisters, ReadHoldingRegistersResponse), (ReadInputRegisters, ReadInputRegistersResponse)]
    ),
)
def test_register_reads_encode_as_the_registers_they_read(
    values: list[int], address: int, count: int, classes: tuple[type[RequestPdu], type[ResponsePdu]]
) -> None:
    # The device's answers are encoded from the table's memory (see _Encoded):
    # the same bytes as an answer made from the values.
    request_cls, response_cls = classes
    dispatcher = Dispatcher(Device(holding_registers=values, input_registers=values))
    request = request_cls(address, count)  # type: ignore[call-arg]
    response = answer(dispatcher, request)
    if address + count > len(values):
        assert response == ExceptionResponse(request.function_code, ExceptionCode.ILLEGAL_DATA_ADDRESS)
        return
    expected = response_cls(tuple(values[address : address + count]))  # type: ignore[call-arg]
    assert response == expected
    assert response.encode() == expected.encode()


@given(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=123), st.integers(0, 300))
def test_register_writes_store_what_they_carry_decoded_or_not(values: list[int], address: int) -> None:
    # A request decoded from bytes is written from those bytes (see _Encoded).
    request = WriteMultipleRegisters(address, tuple(values))
    decoded = FunctionTable().decode_request(request.encode())
    for pdu in (request, decoded):
        device = Device(holding_registers=[7] * 400)
        changes: list[Change] = []
        device.subscribe(changes.append)
        response = answer(Dispatcher(device), pdu)
        if address + len(values) > 400:
            assert response == ExceptionResponse(0x10, ExceptionCode.ILLEGAL_DATA_ADDRESS)
            assert device.holding_registers.read(0, 400) == (7,) * 400
            assert changes == []
            continue
        assert response == WriteMultipleRegistersResponse(address, len(values))
        assert device.holding_registers.read(address, len(values)) == tuple(values)
        assert changes == [Change(TableKind.HOLDING_REGISTERS, address, tuple(values))]


@pytest.mark.parametrize(
    "pdu",
    [
        ReadCoils(15, 6),  # runs past the end
        ReadCoils(20, 1),  # just past the end
        ReadDiscreteInputs(16, 1),
        ReadHoldingRegisters(18, 3),  # into the hole 20..29
        ReadHoldingRegisters(25, 1),  # inside the hole
        ReadHoldingRegisters(19, 12),  # across the hole
        ReadHoldingRegisters(40, 1),  # past the last block
        ReadInputRegisters(10, 1),
        ReadInputRegisters(0xFFFF, 1),
    ],
)
def test_reads_touching_a_missing_address_answer_02(dispatcher: Dispatcher, pdu: RequestPdu) -> None:
    assert error_code(dispatcher, pdu) == ILLEGAL_ADDRESS


@pytest.mark.parametrize("hex_pdu", ["01 0000 0000", "01 0000 07D1", "02 0000 0000", "03 0000 007E", "04 0000 0000"])
def test_read_quantities_outside_the_limits_answer_03(dispatcher: Dispatcher, hex_pdu: str) -> None:
    assert error_code(dispatcher, wire(hex_pdu)) == ILLEGAL_VALUE


def test_value_errors_come_before_address_errors(dispatcher: Dispatcher) -> None:
    # Quantity 126 at an address the device does not have: 03, not 02.
    assert error_code(dispatcher, wire("03 FF00 007E")) == ILLEGAL_VALUE
    # Coil value 0x1234 at a missing address: 03 again.
    assert error_code(dispatcher, wire("05 FF00 1234")) == ILLEGAL_VALUE


def test_unknown_function_codes_answer_01_before_anything_else(dispatcher: Dispatcher) -> None:
    for hex_pdu in ["41 0000", "09", "2B 0D 00", "64"]:
        pdu = wire(hex_pdu)
        assert isinstance(pdu, RawPdu)
        assert error_code(dispatcher, pdu) == ILLEGAL_FUNCTION


def test_codes_with_the_exception_bit_answer_01_as_their_low_bits(dispatcher: Dispatcher) -> None:
    # What libmodbus and pymodbus do: "83 02" is answered "83 01".
    pdu = wire("83 02")
    assert isinstance(pdu, MalformedRequest)
    assert answer(dispatcher, pdu) == ExceptionResponse(3, ILLEGAL_FUNCTION)
    assert answer(dispatcher, wire("FF")) == ExceptionResponse(0x7F, ILLEGAL_FUNCTION)


@pytest.mark.parametrize("hex_pdu", ["80", "80 01", "00", "00 0000 0001", ""])
@pytest.mark.parametrize("unit", [0, 1, 2])  # broadcast, a device, a missing unit (no 0B either)
def test_function_0_gets_no_answer(hex_pdu: str, unit: int) -> None:
    # No exception response to "function 0" can be encoded (0x80 would be
    # read as one) nor decoded by any client.
    dispatcher = Dispatcher(ServerContext({1: plain_device()}), broadcast=True)
    pdu = wire(hex_pdu)
    assert isinstance(pdu, MalformedRequest)
    assert ask(dispatcher, pdu, unit=unit) is None
    assert dispatcher.diagnostics.server_message_count == 1
    assert dispatcher.diagnostics.server_no_response_count == 1
    assert dispatcher.diagnostics.bus_exception_error_count == 0


def test_an_empty_table_answers_every_address_with_02() -> None:
    dispatcher = Dispatcher(Device())
    for pdu in [ReadCoils(0, 1), ReadDiscreteInputs(0, 1), ReadHoldingRegisters(0, 1), ReadInputRegisters(0, 1)]:
        assert error_code(dispatcher, pdu) == ILLEGAL_ADDRESS


# -- single writes -----------------------------------------------------------


def test_write_single_coil_sets_and_clears_and_echoes(dispatcher: Dispatcher, device: Device) -> None:
    assert answer(dispatcher, wire("05 0001 FF00")) == WriteSingleCoilResponse(1, True)
    assert device.coils[1] is True
    assert answer(dispatcher, WriteSingleCoil(0, False)) == WriteSingleCoilResponse(0, False)
    assert device.coils[0] is False


def test_write_single_coil_with_another_value_answers_03_and_changes_nothing(
    dispatcher: Dispatcher, device: Device
) -> None:
    for value in ["0001", "FFFF", "00FF", "FF01"]:
        assert error_code(dispatcher, wire(f"05 0001 {value}")) == ILLEGAL_VALUE
    assert device.coils[1] is False


def test_write_single_coil_to_a_missing_or_read_only_coil_answers_02(dispatcher: Dispatcher, device: Device) -> None:
    assert error_code(dispatcher, WriteSingleCoil(20, True)) == ILLEGAL_ADDRESS
    assert error_code(dispatcher, WriteSingleCoil(19, True)) == ILLEGAL_ADDRESS
    assert device.coils[19] is False


def test_write_single_register_takes_any_16_bit_value(dispatcher: Dispatcher, device: Device) -> None:
    for value in (0, 1, 0x8000, 0xFFFF):
        assert answer(dispatcher, WriteSingleRegister(5, value)) == WriteSingleRegisterResponse(5, value)
        assert device.holding_registers[5] == value


def test_write_single_register_to_a_hole_or_read_only_answers_02(dispatcher: Dispatcher, device: Device) -> None:
    assert error_code(dispatcher, WriteSingleRegister(25, 1)) == ILLEGAL_ADDRESS
    assert error_code(dispatcher, WriteSingleRegister(36, 1)) == ILLEGAL_ADDRESS
    assert device.holding_registers[36] == 1036
    assert error_code(dispatcher, wire("06 0005 00")) == ILLEGAL_VALUE  # truncated


# -- multiple writes ---------------------------------------------------------


def test_write_multiple_coils_writes_them_all(dispatcher: Dispatcher, device: Device) -> None:
    # The specification's example: 10 coils from 19 (here 0-based 2), 0xCD 0x01.
    assert answer(dispatcher, wire("0F 0002 000A 02 CD01")) == WriteMultipleCoilsResponse(2, 10)
    assert device.coils.read(2, 10) == (True, False, True, True, False, False, True, True, True, False)


def test_write_multiple_coils_is_all_or_none(dispatcher: Dispatcher, device: Device) -> None:
    before = device.coils.read(0, 20)
    assert error_code(dispatcher, WriteMultipleCoils(15, (True,) * 6)) == ILLEGAL_ADDRESS  # past the end
    assert error_code(dispatcher, WriteMultipleCoils(10, (True,) * 10)) == ILLEGAL_ADDRESS  # covers read-only 19
    assert device.coils.read(0, 20) == before


@pytest.mark.parametrize(
    "hex_pdu",
    [
        "0F 0000 0000 00",  # quantity 0
        "0F 0000 07B1 F7" + "00" * 0xF7,  # quantity 1969
        "0F 0000 0009 01 FF",  # byte count 1 for 9 coils
        "0F 0000 0008 02 FF00",  # byte count 2 for 8 coils
        "0F 0000 0008 01",  # data missing
    ],
)
def test_write_multiple_coils_with_bad_counts_answers_03(dispatcher: Dispatcher, device: Device, hex_pdu: str) -> None:
    before = device.coils.read(0, 20)
    assert error_code(dispatcher, wire(hex_pdu)) == ILLEGAL_VALUE
    assert device.coils.read(0, 20) == before


def test_write_multiple_registers_writes_them_all(dispatcher: Dispatcher, device: Device) -> None:
    assert answer(dispatcher, wire("10 0001 0002 04 000A 0102")) == WriteMultipleRegistersResponse(1, 2)
    assert device.holding_registers.read(0, 4) == (1000, 0x000A, 0x0102, 1003)


def test_write_multiple_registers_is_all_or_none(dispatcher: Dispatcher, device: Device) -> None:
    before = device.holding_registers.read(30, 10)
    low = device.holding_registers.read(0, 20)
    assert error_code(dispatcher, WriteMultipleRegisters(18, (7,) * 4)) == ILLEGAL_ADDRESS  # into the hole
    assert error_code(dispatcher, WriteMultipleRegisters(30, (7,) * 10)) == ILLEGAL_ADDRESS  # read-only 35..36
    assert error_code(dispatcher, WriteMultipleRegisters(38, (7,) * 3)) == ILLEGAL_ADDRESS  # past the end
    assert device.holding_registers.read(30, 10) == before
    assert device.holding_registers.read(0, 20) == low


@pytest.mark.parametrize(
    "hex_pdu",
    [
        "10 0000 0000 00",  # quantity 0
        "10 0000 007C F8" + "00" * 0xF8,  # quantity 124
        "10 0000 0002 03 000000",  # byte count 3 for 2 registers
        "10 0000 0002 04 0000",  # data missing
    ],
)
def test_write_multiple_registers_with_bad_counts_answers_03(
    dispatcher: Dispatcher, device: Device, hex_pdu: str
) -> None:
    before = device.holding_registers.read(0, 20)
    assert error_code(dispatcher, wire(hex_pdu)) == ILLEGAL_VALUE
    assert device.holding_registers.read(0, 20) == before


# -- 22, 23, 24 --------------------------------------------------------------


def test_mask_write_register_follows_the_formula(dispatcher: Dispatcher, device: Device) -> None:
    # The specification's example: current 0x12, AND 0xF2, OR 0x25 -> 0x17.
    device.holding_registers[4] = 0x12
    assert answer(dispatcher, wire("16 0004 00F2 0025")) == MaskWriteRegisterResponse(4, 0xF2, 0x25)
    assert device.holding_registers[4] == 0x17


@pytest.mark.parametrize(
    ("current", "and_mask", "or_mask"),
    [(0xFFFF, 0x0000, 0x0000), (0x0000, 0xFFFF, 0xFFFF), (0xA5A5, 0x0F0F, 0xF0F0), (0x1234, 0xFFFF, 0x0000)],
)
def test_mask_write_register_edge_masks(
    dispatcher: Dispatcher, device: Device, current: int, and_mask: int, or_mask: int
) -> None:
    device.holding_registers[0] = current
    answer(dispatcher, MaskWriteRegister(0, and_mask, or_mask))
    assert device.holding_registers[0] == (current & and_mask) | (or_mask & ~and_mask & 0xFFFF)


def test_mask_write_register_to_missing_or_read_only_answers_02(dispatcher: Dispatcher, device: Device) -> None:
    assert error_code(dispatcher, MaskWriteRegister(25, 0, 1)) == ILLEGAL_ADDRESS
    assert error_code(dispatcher, MaskWriteRegister(35, 0, 1)) == ILLEGAL_ADDRESS
    assert device.holding_registers[35] == 1035
    assert error_code(dispatcher, wire("16 0004 00F2")) == ILLEGAL_VALUE


def test_read_write_multiple_registers_writes_before_it_reads(dispatcher: Dispatcher, device: Device) -> None:
    response = answer(dispatcher, ReadWriteMultipleRegisters(0, 6, 2, (7, 8, 9)))
    assert response == ReadWriteMultipleRegistersResponse((1000, 1001, 7, 8, 9, 1005))
    assert device.holding_registers.read(2, 3) == (7, 8, 9)


def test_read_write_with_a_bad_read_range_writes_nothing(dispatcher: Dispatcher, device: Device) -> None:
    assert error_code(dispatcher, ReadWriteMultipleRegisters(18, 5, 0, (1, 2))) == ILLEGAL_ADDRESS
    assert device.holding_registers.read(0, 2) == (1000, 1001)


def test_read_write_with_a_bad_or_read_only_write_range_answers_02(dispatcher: Dispatcher, device: Device) -> None:
    assert error_code(dispatcher, ReadWriteMultipleRegisters(0, 2, 19, (1, 2))) == ILLEGAL_ADDRESS
    assert error_code(dispatcher, ReadWriteMultipleRegisters(0, 2, 34, (1, 2))) == ILLEGAL_ADDRESS
    assert device.holding_registers.read(34, 2) == (1034, 1035)
    assert device.holding_registers[19] == 1019


@pytest.mark.parametrize(
    "hex_pdu",
    [
        "17 0000 0000 0000 0001 02 0000",  # read quantity 0
        "17 0000 007E 0000 0001 02 0000",  # read quantity 126
        "17 0000 0001 0000 0000 00",  # write quantity 0
        "17 0000 0001 0000 007A F4" + "00" * 0xF4,  # write quantity 122
        "17 0000 0001 0000 0001 03 000000",  # byte count 3 for 1 register
    ],
)
def test_read_write_with_bad_counts_answers_03(dispatcher: Dispatcher, device: Device, hex_pdu: str) -> None:
    assert error_code(dispatcher, wire(hex_pdu)) == ILLEGAL_VALUE
    assert device.holding_registers[0] == 1000


def test_read_fifo_queue_returns_the_queue_and_keeps_it(dispatcher: Dispatcher, device: Device) -> None:
    for _ in range(2):
        assert answer(dispatcher, ReadFifoQueue(100)) == ReadFifoQueueResponse((1, 2, 3))
    assert device.fifos[100] == [1, 2, 3]
    assert answer(dispatcher, ReadFifoQueue(101)) == ReadFifoQueueResponse(())
    assert answer(dispatcher, ReadFifoQueue(102)) == ReadFifoQueueResponse(tuple(range(31)))


def test_read_fifo_queue_over_31_answers_03_and_unknown_answers_02(dispatcher: Dispatcher) -> None:
    assert error_code(dispatcher, ReadFifoQueue(103)) == ILLEGAL_VALUE
    assert error_code(dispatcher, ReadFifoQueue(99)) == ILLEGAL_ADDRESS
    assert error_code(dispatcher, wire("18 0064 00")) == ILLEGAL_VALUE


# -- 20, 21 ------------------------------------------------------------------


def test_read_file_record_reads_the_stored_records(dispatcher: Dispatcher) -> None:
    pdu = ReadFileRecord((FileRecordReference(1, 1, 3), FileRecordReference(2, 0, 3), FileRecordReference(1, 4, 1)))
    assert answer(dispatcher, pdu) == ReadFileRecordResponse(((11, 12, 13), (0, 0, 0), (14,)))


def test_read_file_record_of_missing_records_answers_02(dispatcher: Dispatcher) -> None:
    assert error_code(dispatcher, ReadFileRecord((FileRecordReference(1, 3, 3),))) == ILLEGAL_ADDRESS
    assert error_code(dispatcher, ReadFileRecord((FileRecordReference(3, 0, 1),))) == ILLEGAL_ADDRESS
    both = ReadFileRecord((FileRecordReference(1, 0, 1), FileRecordReference(9, 0, 1)))
    assert error_code(dispatcher, both) == ILLEGAL_ADDRESS


@pytest.mark.parametrize(
    "hex_pdu",
    [
        "14 06 060001000000",  # byte count 6
        "14 07 05 0001 0000 0001",  # reference type 5
        "14 07 06 0001 2710 0001",  # record number 10000
        "14 07 06 0001 0000 0000",  # record length 0
        "14 07 06 0000 0000 0001",  # file 0
    ],
)
def test_read_file_record_with_bad_fields_answers_03(dispatcher: Dispatcher, hex_pdu: str) -> None:
    assert error_code(dispatcher, wire(hex_pdu)) == ILLEGAL_VALUE


def test_write_file_record_writes_and_echoes(dispatcher: Dispatcher, device: Device) -> None:
    pdu = WriteFileRecord((FileRecord(1, 3, (0xAAAA, 0xBBBB)), FileRecord(2, 0, (5,))))
    assert answer(dispatcher, pdu) == WriteFileRecordResponse(pdu.records)
    assert list(device.files[1]) == [10, 11, 12, 0xAAAA, 0xBBBB]
    assert list(device.files[2]) == [5, 0, 0]


def test_write_file_record_is_all_or_none(dispatcher: Dispatcher, device: Device) -> None:
    pdu = WriteFileRecord((FileRecord(1, 0, (1, 2)), FileRecord(2, 2, (1, 2))))
    assert error_code(dispatcher, pdu) == ILLEGAL_ADDRESS
    assert list(device.files[1]) == [10, 11, 12, 13, 14]
    assert list(device.files[2]) == [0, 0, 0]


def test_write_file_record_with_a_bad_data_length_answers_03(dispatcher: Dispatcher) -> None:
    assert error_code(dispatcher, wire("15 08 06 0001 0000 0001 00")) == ILLEGAL_VALUE


# -- 07, 17 ------------------------------------------------------------------


def test_read_exception_status_reads_the_device_byte(dispatcher: Dispatcher, device: Device) -> None:
    assert answer(dispatcher, ReadExceptionStatus()) == ReadExceptionStatusResponse(0x6D)
    device.exception_status = 0x01
    assert answer(dispatcher, ReadExceptionStatus()) == ReadExceptionStatusResponse(0x01)
    assert error_code(dispatcher, wire("07 00")) == ILLEGAL_VALUE


def test_report_server_id_comes_from_the_server_identity() -> None:
    identity = DeviceIdentity("ACME", "M-1", "2.1", server_id=0x42, running=False, additional_data=b"line 3")
    dispatcher = Dispatcher(Device(), identity=identity)
    assert answer(dispatcher, ReportServerId()) == ReportServerIdResponse(0x42, False, b"line 3")
    identity.running = True
    assert answer(dispatcher, ReportServerId()) == ReportServerIdResponse(0x42, True, b"line 3")


def test_a_device_identity_overrides_the_server_identity() -> None:
    meter = Device(identity=DeviceIdentity("ACME", "meter", "1.0", server_id=7))
    dispatcher = Dispatcher(ServerContext({1: meter, 2: Device()}))
    assert answer(dispatcher, ReportServerId(), unit=1) == ReportServerIdResponse(7, True, b"ACME meter")
    default = answer(dispatcher, ReportServerId(), unit=2)
    assert isinstance(default, ReportServerIdResponse)
    assert default.additional_data == b"modbuskit modbuskit server"


# -- failures while executing --------------------------------------------------


class FailingDevice(Device):
    """A Device subclass whose reads fail the way a broken backend does."""

    error: Exception = RuntimeError("disk on fire")

    def read_holding_registers(self, address: int, count: int) -> Sequence[int]:
        raise self.error


def test_an_exception_in_the_datastore_answers_04_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    dispatcher = Dispatcher(FailingDevice(holding_registers=10))
    with caplog.at_level(logging.ERROR, logger="modbus_core"):
        assert error_code(dispatcher, ReadHoldingRegisters(0, 1)) == DEVICE_FAILURE
    assert "disk on fire" in caplog.text
    assert any(record.exc_info is not None for record in caplog.records)


@pytest.mark.parametrize(
    "code", [ExceptionCode.SERVER_DEVICE_BUSY, ExceptionCode.ACKNOWLEDGE, ExceptionCode.MEMORY_PARITY_ERROR, 0x0A]
)
def test_a_modbus_exception_error_answers_its_own_code(code: int) -> None:
    device = FailingDevice(holding_registers=10)
    device.error = ModbusExceptionError(code)
    assert error_code(Dispatcher(device), ReadHoldingRegisters(0, 1)) == code


@pytest.mark.parametrize("code", [0, 256, -1])
def test_a_modbus_exception_error_with_an_impossible_code_answers_04(
    code: int, caplog: pytest.LogCaptureFixture
) -> None:
    device = FailingDevice(holding_registers=10)
    device.error = ModbusExceptionError(code)
    with caplog.at_level(logging.ERROR, logger="modbus_core"):
        assert error_code(Dispatcher(device), ReadHoldingRegisters(0, 1)) == DEVICE_FAILURE
    assert caplog.records


def test_an_observer_that_raises_answers_04_but_the_write_stays_done(
    dispatcher: Dispatcher, device: Device, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[object] = []

    def broken(change: object) -> None:
        raise ValueError("observer bug")

    device.holding_registers.subscribe(broken)
    device.holding_registers.subscribe(seen.append)
    with caplog.at_level(logging.ERROR, logger="modbus_core"):
        assert error_code(dispatcher, WriteSingleRegister(3, 99)) == DEVICE_FAILURE
    assert device.holding_registers[3] == 99
    assert len(seen) == 1  # the other observer was still called
    assert "observer bug" in caplog.text


def test_a_device_exception_status_that_is_not_a_byte_answers_04() -> None:
    class BadStatus(Device):
        def read_exception_status(self) -> int:
            return 300

    assert error_code(Dispatcher(BadStatus()), ReadExceptionStatus()) == DEVICE_FAILURE


class WrongCounts(Device):
    """A Device subclass that returns the wrong number of values: the dispatcher must notice."""

    def read_coils(self, address: int, count: int) -> Sequence[bool]:
        return [True] * (count + 1)

    def read_input_registers(self, address: int, count: int) -> Sequence[int]:
        return [1] * (count - 1)

    def read_write_registers(
        self, read_address: int, read_count: int, write_address: int, values: Sequence[int]
    ) -> Sequence[int]:
        return []

    def read_file_records(self, references: Sequence[FileRecordReference]) -> Sequence[Sequence[int]]:
        return [[1]] * len(references)

    def read_fifo_queue(self, address: int) -> Sequence[int]:
        return [70000]


@pytest.mark.parametrize(
    "pdu",
    [
        ReadCoils(0, 3),
        ReadInputRegisters(0, 3),
        ReadWriteMultipleRegisters(0, 2, 0, (1,)),
        ReadFileRecord((FileRecordReference(1, 0, 2),)),
        ReadFifoQueue(0),
    ],
)
def test_values_a_device_subclass_returns_are_checked(pdu: RequestPdu, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.CRITICAL, logger="modbus_core"):
        assert error_code(Dispatcher(WrongCounts()), pdu) == DEVICE_FAILURE


def test_values_a_device_subclass_returns_are_used_when_right() -> None:
    class Doubling(Device):
        def read_holding_registers(self, address: int, count: int) -> Sequence[int]:
            return [2 * value for value in super().read_holding_registers(address, count)]

        def read_discrete_inputs(self, address: int, count: int) -> Sequence[bool]:
            return [1] * count  # type: ignore[list-item]

    device = Doubling(holding_registers=[1, 2, 3], discrete_inputs=4)
    dispatcher = Dispatcher(device)
    assert answer(dispatcher, ReadHoldingRegisters(0, 3)) == ReadHoldingRegistersResponse((2, 4, 6))
    assert answer(dispatcher, ReadDiscreteInputs(1, 2)) == ReadDiscreteInputsResponse((True, True))


class ReadOnlyGateway:
    """A duck-typed synchronous device with only one operation."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def read_holding_registers(self, address: int, count: int) -> Sequence[int]:
        self.calls.append((address, count))
        return tuple(range(address, address + count))


def test_functions_a_device_does_not_implement_answer_01() -> None:
    gateway = ReadOnlyGateway()
    dispatcher = Dispatcher(ServerContext({1: gateway}))  # type: ignore[dict-item]
    assert answer(dispatcher, ReadHoldingRegisters(4, 2)) == ReadHoldingRegistersResponse((4, 5))
    assert gateway.calls == [(4, 2)]
    for pdu in [ReadCoils(0, 1), WriteSingleRegister(0, 1), ReadFifoQueue(0), ReadExceptionStatus()]:
        assert error_code(dispatcher, pdu) == ILLEGAL_FUNCTION
    # Functions that need no device operation still work.
    assert isinstance(answer(dispatcher, ReportServerId()), ReportServerIdResponse)


# -- units ---------------------------------------------------------------------


def test_a_missing_unit_answers_0b_on_tcp_by_default() -> None:
    dispatcher = Dispatcher(ServerContext({1: Device(holding_registers=1)}))
    code = error_code(dispatcher, ReadHoldingRegisters(0, 1), unit=2)
    assert code == ExceptionCode.GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND


def test_a_missing_unit_is_ignored_on_serial_lines_or_when_asked() -> None:
    for dispatcher in [
        Dispatcher(ServerContext({1: Device(holding_registers=1)}), serial=True),
        Dispatcher(ServerContext({1: Device(holding_registers=1)}), ignore_missing_units=True),
    ]:
        assert ask(dispatcher, ReadHoldingRegisters(0, 1), unit=2) is None
        assert dispatcher.diagnostics.server_message_count == 0  # not ours: not even counted
    # ...and a serial server may still choose to answer 0B.
    dispatcher = Dispatcher(ServerContext({1: Device()}), serial=True, ignore_missing_units=False)
    assert error_code(dispatcher, ReadCoils(0, 1), unit=3) == ExceptionCode.GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND


def test_units_0_and_255_are_ordinary_units_on_tcp() -> None:
    zero, top = Device(holding_registers=[10]), Device(holding_registers=[20])
    dispatcher = Dispatcher(ServerContext({0: zero, 255: top}))
    assert answer(dispatcher, ReadHoldingRegisters(0, 1), unit=0) == ReadHoldingRegistersResponse((10,))
    assert answer(dispatcher, ReadHoldingRegisters(0, 1), unit=255) == ReadHoldingRegistersResponse((20,))
    assert answer(dispatcher, WriteSingleRegister(0, 5), unit=0) == WriteSingleRegisterResponse(0, 5)
    assert zero.holding_registers[0] == 5
    assert top.holding_registers[0] == 20


def test_single_mode_answers_every_unit_with_one_device() -> None:
    device = Device(holding_registers=[1, 2])
    dispatcher = Dispatcher(ServerContext(device))
    for unit in (0, 1, 17, 247, 255):
        response = ask(dispatcher, ReadHoldingRegisters(1, 1), unit=unit, transaction_id=unit + 1)
        assert response == Response(ReadHoldingRegistersResponse((2,)), unit, unit + 1)


def test_responses_echo_unit_and_transaction_id(dispatcher: Dispatcher) -> None:
    assert ask(dispatcher, ReadHoldingRegisters(0, 1), 1, 0xBEEF) == Response(
        ReadHoldingRegistersResponse((1000,)), 1, 0xBEEF
    )
    assert ask(dispatcher, ReadHoldingRegisters(25, 1), 1, 0x1234) == Response(
        ExceptionResponse(3, ILLEGAL_ADDRESS), 1, 0x1234
    )


def test_one_device_may_serve_several_units() -> None:
    shared = Device(coils=4)
    dispatcher = Dispatcher(ServerContext({3: shared, 4: shared}))
    answer(dispatcher, WriteSingleCoil(2, True), unit=3)
    assert answer(dispatcher, ReadCoils(2, 1), unit=4) == ReadCoilsResponse((True,))


# -- broadcasts ----------------------------------------------------------------


@pytest.fixture
def line() -> tuple[Dispatcher, Device, Device]:
    first = Device(coils=8, holding_registers=10)
    second = Device(coils=8, holding_registers=5)
    return Dispatcher(ServerContext({1: first, 2: second, 3: first}), serial=True), first, second


def test_a_broadcast_write_executes_on_every_device_and_gets_no_reply(
    line: tuple[Dispatcher, Device, Device],
) -> None:
    dispatcher, first, second = line
    assert ask(dispatcher, WriteSingleRegister(2, 77), unit=0) is None
    assert first.holding_registers[2] == second.holding_registers[2] == 77
    assert ask(dispatcher, WriteMultipleCoils(0, (True, True)), unit=0) is None
    assert first.coils.read(0, 2) == second.coils.read(0, 2) == (True, True)
    assert ask(dispatcher, MaskWriteRegister(2, 0x00FF, 0x0100), unit=0) is None
    assert first.holding_registers[2] == second.holding_registers[2] == 0x014D
    assert ask(dispatcher, ReadWriteMultipleRegisters(0, 1, 0, (3,)), unit=0) is None
    assert first.holding_registers[0] == second.holding_registers[0] == 3
    assert dispatcher.diagnostics.event_count == 4  # once per message, not once per device
    assert dispatcher.diagnostics.server_no_response_count == 4


def test_a_broadcast_read_is_ignored(line: tuple[Dispatcher, Device, Device]) -> None:
    dispatcher, first, _ = line
    first.fifos[0] = [1]
    for pdu in [ReadHoldingRegisters(0, 1), ReadCoils(0, 1), ReadExceptionStatus(), ReportServerId(), ReadFifoQueue(0)]:
        assert ask(dispatcher, pdu, unit=0) is None
    assert dispatcher.diagnostics.event_count == 0
    assert dispatcher.diagnostics.bus_exception_error_count == 0
    assert dispatcher.diagnostics.server_no_response_count == 5


def test_a_failing_broadcast_is_counted_once_though_nothing_is_sent(
    line: tuple[Dispatcher, Device, Device],
) -> None:
    dispatcher, first, second = line
    # Register 7 exists on the first device only: the write happens there.
    assert ask(dispatcher, WriteSingleRegister(7, 1), unit=0) is None
    assert first.holding_registers[7] == 1
    assert dispatcher.diagnostics.bus_exception_error_count == 1
    # Malformed and unknown requests by broadcast count as exceptions too.
    assert ask(dispatcher, wire("10 0000 0001 03 000000"), unit=0) is None
    assert ask(dispatcher, wire("41"), unit=0) is None
    assert dispatcher.diagnostics.bus_exception_error_count == 3
    assert dispatcher.diagnostics.event_count == 0
    assert second.holding_registers.read(0, 5) == (0,) * 5


def test_a_broadcast_to_a_device_without_the_operation_counts_01() -> None:
    dispatcher = Dispatcher(ServerContext({1: ReadOnlyGateway()}), serial=True)  # type: ignore[dict-item]
    assert ask(dispatcher, WriteSingleRegister(0, 1), unit=0) is None
    assert dispatcher.diagnostics.bus_exception_error_count == 1


def test_a_broadcast_that_raises_is_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(Device):
        def write_registers(self, address: int, values: Sequence[int]) -> None:
            raise OSError("bus fault")

    dispatcher = Dispatcher(Broken(holding_registers=2), serial=True)
    with caplog.at_level(logging.ERROR, logger="modbus_core"):
        assert ask(dispatcher, WriteSingleRegister(0, 1), unit=0) is None
    assert "bus fault" in caplog.text
    assert dispatcher.diagnostics.bus_exception_error_count == 1


def test_unit_0_is_a_broadcast_only_when_enabled() -> None:
    device = Device(holding_registers=3)
    tcp = Dispatcher(ServerContext(device))
    assert answer(tcp, WriteSingleRegister(0, 4), unit=0) == WriteSingleRegisterResponse(0, 4)
    enabled = Dispatcher(ServerContext(device), broadcast=True)
    assert ask(enabled, WriteSingleRegister(0, 5), unit=0) is None
    assert device.holding_registers[0] == 5
    assert 0 in enabled
    assert 0 not in Dispatcher(ServerContext({1: device}))
    assert 1 in Dispatcher(ServerContext({1: device}))


def test_broadcast_of_a_custom_function_is_not_executed() -> None:
    dispatcher = Dispatcher(Device(), serial=True)
    assert ask(dispatcher, Ping(b"x"), unit=0) is None
    assert dispatcher.diagnostics.event_count == 0


# -- custom functions ------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Pong(ResponsePdu):
    function_code: ClassVar[int] = 0x41
    payload: bytes

    @classmethod
    def decode(cls, pdu: bytes) -> Pong:
        return cls(pdu[1:])

    def encode(self) -> bytes:
        return b"\x41" + self.payload


@dataclasses.dataclass(frozen=True, slots=True)
class Ping(RequestPdu):
    """A custom request that answers with the device's holding register count."""

    function_code: ClassVar[int] = 0x41
    payload: bytes

    @classmethod
    def decode(cls, pdu: bytes) -> Ping:
        if len(pdu) < 2:
            raise ValueError("a ping carries a payload")
        return cls(pdu[1:])

    def encode(self) -> bytes:
        return b"\x41" + self.payload

    def execute(self, device: Device) -> object:
        if self.payload == b"boom":
            raise KeyError("boom")
        if self.payload == b"busy":
            raise ModbusExceptionError(ExceptionCode.SERVER_DEVICE_BUSY)
        if self.payload == b"junk":
            return "not a PDU"
        return Pong(self.payload + bytes([len(device.holding_registers)]))


def test_a_custom_function_executes_its_request_class() -> None:
    functions = FunctionTable([CustomFunction(0x41, Ping, Pong)])
    dispatcher = Dispatcher(Device(holding_registers=3))
    assert answer(dispatcher, functions.decode_request(b"\x41hi")) == Pong(b"hi\x03")
    malformed = functions.decode_request(b"\x41")
    assert isinstance(malformed, MalformedRequest)
    assert error_code(dispatcher, malformed) == ILLEGAL_VALUE


def test_custom_function_failures_become_exception_codes(caplog: pytest.LogCaptureFixture) -> None:
    dispatcher = Dispatcher(Device())
    with caplog.at_level(logging.ERROR, logger="modbus_core"):
        assert error_code(dispatcher, Ping(b"boom")) == DEVICE_FAILURE
        assert error_code(dispatcher, Ping(b"junk")) == DEVICE_FAILURE
    assert "not a PDU" in caplog.text
    assert error_code(dispatcher, Ping(b"busy")) == ExceptionCode.SERVER_DEVICE_BUSY


def test_a_custom_request_without_execute_answers_01() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Silent(RequestPdu):
        function_code: ClassVar[int] = 0x42

        def encode(self) -> bytes:
            return b"\x42"

    assert error_code(Dispatcher(Device()), Silent()) == ILLEGAL_FUNCTION


# -- construction ----------------------------------------------------------------


def test_the_dispatcher_checks_its_arguments() -> None:
    with pytest.raises(LocalProtocolError, match="Device"):
        Dispatcher(42)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="ServerDiagnostics"):
        Dispatcher(Device(), diagnostics=object())  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="DeviceIdentity"):
        Dispatcher(Device(), identity="acme")  # type: ignore[arg-type]


def test_the_dispatcher_defaults_follow_the_transport() -> None:
    tcp = Dispatcher(ServerContext())
    assert (tcp.broadcast, tcp.ignore_missing_units) == (False, False)
    serial = Dispatcher(ServerContext(), serial=True)
    assert (serial.broadcast, serial.ignore_missing_units) == (True, True)
    mixed = Dispatcher(ServerContext(), serial=True, broadcast=False, ignore_missing_units=False)
    assert (mixed.broadcast, mixed.ignore_missing_units) == (False, False)
    assert "broadcast=False" in repr(mixed)
    assert tcp.context.single


def test_a_dispatcher_is_callable_and_has_a_coroutine_form() -> None:
    dispatcher = Dispatcher(Device(coils=[True]))
    request = Request(ReadCoils(0, 1), 1, 9)
    assert dispatcher(request) == dispatcher.dispatch(request) == Response(ReadCoilsResponse((True,)), 1, 9)
    coroutine = dispatcher.dispatch_async(request)
    with pytest.raises(StopIteration) as stop:
        coroutine.send(None)
    assert stop.value.value == Response(ReadCoilsResponse((True,)), 1, 9)


def test_tables_given_ready_made_are_used() -> None:
    coils = BitTable.zeros(4, TableKind.DISCRETE_INPUTS)
    registers = RegisterTable.zeros(3, TableKind.INPUT_REGISTERS, address=100)
    device = Device(coils=coils, holding_registers=registers)
    assert coils.kind is TableKind.COILS
    registers[101] = 9
    assert answer(Dispatcher(device), ReadHoldingRegisters(100, 3)) == ReadHoldingRegistersResponse((0, 9, 0))
