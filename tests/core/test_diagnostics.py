"""Functions 08, 11 and 12: counters, listen-only mode, restart, the event log.

Most tests run a real :class:`ServerConnection` (RTU) and a
:class:`Dispatcher` sharing one :class:`ServerDiagnostics`, as an adapter
wires them, driven by a :class:`ClientConnection`.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from modbus_core import (
    NEED_DATA,
    AsciiFramer,
    ClientConnection,
    Device,
    Diagnostics,
    DiagnosticsResponse,
    DiagnosticSubFunction,
    Dispatcher,
    DropCause,
    ExceptionCode,
    ExceptionResponse,
    GetCommEventCounter,
    GetCommEventCounterResponse,
    GetCommEventLog,
    GetCommEventLogResponse,
    LocalProtocolError,
    ModbusExceptionError,
    ReadCoils,
    ReadHoldingRegisters,
    ReadHoldingRegistersResponse,
    Request,
    Response,
    ServerConnection,
    ServerContext,
    ServerDiagnostics,
    WriteSingleRegister,
    crc16,
)

from .dispatch_support import SerialLine, answer, ask, error_code, wire

Sub = DiagnosticSubFunction


class Refusing(Device):
    """Reads of holding register N fail with exception code N (for the exception counters)."""

    def read_holding_registers(self, address: int, count: int) -> Sequence[int]:
        if address:
            raise ModbusExceptionError(address)
        return super().read_holding_registers(address, count)


@pytest.fixture
def line() -> SerialLine:
    return SerialLine(ServerContext({1: Refusing(holding_registers=20, coils=4)}))


def diagnose(line: SerialLine, sub_function: int, data: bytes = b"\x00\x00", unit: int = 1) -> Response | None:
    return line.request(Diagnostics(sub_function, data), unit)


def counter(line: SerialLine, sub_function: int) -> int:
    response = diagnose(line, sub_function)
    assert response is not None
    assert isinstance(response.pdu, DiagnosticsResponse)
    assert response.pdu.sub_function == sub_function
    return response.pdu.value


def event_log(line: SerialLine) -> GetCommEventLogResponse:
    response = line.request(GetCommEventLog())
    assert response is not None
    assert isinstance(response.pdu, GetCommEventLogResponse)
    return response.pdu


def event_counter(line: SerialLine) -> GetCommEventCounterResponse:
    response = line.request(GetCommEventCounter())
    assert response is not None
    assert isinstance(response.pdu, GetCommEventCounterResponse)
    return response.pdu


def bad_crc_frame() -> bytes:
    frame = bytes.fromhex("01 03 0000 0001")
    return frame + ((crc16(frame) ^ 0x0101).to_bytes(2, "little"))


# -- 08/00, 02, 03 ---------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"\xa5\x37", bytes(range(100))])
def test_return_query_data_echoes_any_data(line: SerialLine, data: bytes) -> None:
    response = diagnose(line, Sub.RETURN_QUERY_DATA, data)
    assert response is not None
    assert response.pdu == DiagnosticsResponse(0, data)


def test_return_diagnostic_register_returns_the_application_word(line: SerialLine) -> None:
    assert counter(line, Sub.RETURN_DIAGNOSTIC_REGISTER) == 0
    line.diagnostics.diagnostic_register = 0x1234
    assert counter(line, Sub.RETURN_DIAGNOSTIC_REGISTER) == 0x1234


def test_change_ascii_delimiter_echoes_and_changes_the_line_delimiter() -> None:
    line = SerialLine(ServerContext({1: Device(holding_registers=[7])}), framer=AsciiFramer())
    response = diagnose(line, Sub.CHANGE_ASCII_INPUT_DELIMITER, b"!\x00")
    assert response is not None
    assert response.pdu == DiagnosticsResponse(Sub.CHANGE_ASCII_INPUT_DELIMITER, b"!\x00")
    assert line.diagnostics.ascii_delimiter == ord("!")
    # The next request ends with CR '!' instead of CR LF, and is understood.
    client = ClientConnection(AsciiFramer())
    frame = client.send(client.request(ReadHoldingRegisters(0, 1), 1))
    replies = line.feed(frame[:-1] + b"!")
    assert len(replies) == 1
    client.receive_data(replies[0])
    assert client.next_event() == Response(ReadHoldingRegistersResponse((7,)), 1)
    # A frame with the old LF no longer ends.
    assert line.feed(client.send(client.request(ReadHoldingRegisters(0, 1), 1))) == []


def test_change_ascii_delimiter_needs_char_00(line: SerialLine) -> None:
    assert error_code(line.dispatcher, wire("08 0003 2101")) == ExceptionCode.ILLEGAL_DATA_VALUE
    assert line.diagnostics.ascii_delimiter == 0x0A


# -- counters ----------------------------------------------------------------------


def test_every_counter_counts_what_the_specification_says(line: SerialLine) -> None:
    assert line.request(ReadHoldingRegisters(0, 1)) is not None  # a normal answer
    assert line.request(ReadHoldingRegisters(2, 1)) is not None  # exception 02
    assert line.request(ReadHoldingRegisters(6, 1)) is not None  # exception 06: busy
    assert line.request(ReadHoldingRegisters(7, 1)) is not None  # exception 07: NAK
    assert line.request(ReadHoldingRegisters(7, 1)) is not None
    assert line.request(WriteSingleRegister(0, 1), unit=0) is None  # broadcast: no response
    assert line.request(ReadHoldingRegisters(0, 1), unit=9) is None  # another server's: not counted
    assert line.feed(bad_crc_frame()) == []  # a communication error, not a bus message
    # Bus messages so far: 7 frames with a good CRC (the one for unit 9 too).
    assert counter(line, Sub.RETURN_BUS_MESSAGE_COUNT) == 8  # the counting request included
    # Every drop the connection reported as a communication error (at least the bad CRC).
    errors = [drop for drop in line.dropped if drop.cause.is_communication_error]
    assert any(drop.cause is DropCause.CHECKSUM for drop in errors)
    assert counter(line, Sub.RETURN_BUS_COMMUNICATION_ERROR_COUNT) == len(errors)
    assert counter(line, Sub.RETURN_BUS_EXCEPTION_ERROR_COUNT) == 4
    assert counter(line, Sub.RETURN_SERVER_MESSAGE_COUNT) == 6 + 4  # four counter requests so far
    assert counter(line, Sub.RETURN_SERVER_NO_RESPONSE_COUNT) == 1
    assert counter(line, Sub.RETURN_SERVER_NAK_COUNT) == 2
    assert counter(line, Sub.RETURN_SERVER_BUSY_COUNT) == 1
    assert counter(line, Sub.RETURN_BUS_CHARACTER_OVERRUN_COUNT) == 0


def test_an_overrun_counts_and_08_14_clears_it() -> None:
    line = SerialLine(ServerContext({1: Device(coils=1)}), framer=AsciiFramer())
    assert line.feed(b":" + b"0" * 600) == []  # longer than any ASCII frame
    assert counter(line, Sub.RETURN_BUS_CHARACTER_OVERRUN_COUNT) == 1
    assert event_log(line).events[2] == 0x80 | 0x10 | 0x02  # the first receive event after it
    assert diagnose(line, Sub.CLEAR_OVERRUN_COUNTER_AND_FLAG) is not None
    assert counter(line, Sub.RETURN_BUS_CHARACTER_OVERRUN_COUNT) == 0
    errors = [drop for drop in line.dropped if drop.cause.is_communication_error]
    assert counter(line, Sub.RETURN_BUS_COMMUNICATION_ERROR_COUNT) == len(errors) >= 1  # not cleared by 14


def test_08_14_clears_an_overrun_flag_not_yet_logged() -> None:
    diagnostics = ServerDiagnostics()
    diagnostics.frame_dropped(DropCause.OVERRUN)
    diagnostics.clear_overrun()
    diagnostics.message_received(broadcast=False)
    assert diagnostics.events == bytes([0x80 | 0x02])


def test_counters_wrap_at_16_bits(line: SerialLine) -> None:
    line.diagnostics.server_message_count = 0xFFFF
    assert counter(line, Sub.RETURN_SERVER_MESSAGE_COUNT) == 0  # 0x10000
    line.diagnostics.event_count = 0x1FFFF
    assert event_counter(line).event_count == 0xFFFF


def test_clear_counters_clears_them_and_the_register_but_not_the_log(line: SerialLine) -> None:
    line.request(ReadHoldingRegisters(2, 1))
    line.diagnostics.diagnostic_register = 0xBEEF
    response = diagnose(line, Sub.CLEAR_COUNTERS_AND_DIAGNOSTIC_REGISTER)
    assert response is not None
    assert response.pdu == DiagnosticsResponse(Sub.CLEAR_COUNTERS_AND_DIAGNOSTIC_REGISTER)
    snapshot = line.diagnostics.snapshot()
    assert all(snapshot[name] == 0 for name in snapshot if name.endswith("_count"))
    assert snapshot["diagnostic_register"] == 0
    assert event_log(line).events[:4] == bytes([0x80, 0x40, 0x80, 0x41])


# -- 08/04 listen-only and 08/01 restart ----------------------------------------------


def test_listen_only_mode_answers_nothing_until_a_restart(line: SerialLine) -> None:
    device = line.dispatcher.context[1]
    assert isinstance(device, Device)
    assert diagnose(line, Sub.FORCE_LISTEN_ONLY_MODE) is None  # 08/04 itself gets no answer
    assert line.diagnostics.listen_only
    # Nothing is answered or executed, not even diagnostics or errors...
    assert line.request(ReadHoldingRegisters(0, 1)) is None
    assert line.request(WriteSingleRegister(0, 9)) is None
    assert line.request(WriteSingleRegister(0, 9), unit=0) is None
    assert diagnose(line, Sub.RETURN_QUERY_DATA) is None
    assert diagnose(line, Sub.RETURN_BUS_MESSAGE_COUNT) is None
    assert line.request(GetCommEventCounter()) is None
    assert line.request(ReadHoldingRegisters(2, 1)) is None
    assert device.holding_registers[0] == 0
    # ...and the restart that leaves listen-only mode is not answered either.
    assert diagnose(line, Sub.RESTART_COMMUNICATIONS_OPTION) is None
    assert not line.diagnostics.listen_only
    assert line.request(ReadHoldingRegisters(0, 1)) == Response(ReadHoldingRegistersResponse((0,)), 1)


def test_listen_only_mode_silences_missing_units_on_tcp_too() -> None:
    dispatcher = Dispatcher(ServerContext({1: Device(coils=1)}))
    assert ask(dispatcher, Diagnostics(Sub.FORCE_LISTEN_ONLY_MODE)) is None
    assert ask(dispatcher, ReadCoils(0, 1), unit=2) is None  # no 0B
    assert ask(dispatcher, Diagnostics(Sub.RESTART_COMMUNICATIONS_OPTION), unit=2) is None
    assert dispatcher.diagnostics.listen_only
    assert ask(dispatcher, Diagnostics(Sub.RESTART_COMMUNICATIONS_OPTION)) is None
    assert error_code(dispatcher, ReadCoils(0, 1), unit=2) == ExceptionCode.GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND


def test_listen_only_mode_is_logged(line: SerialLine) -> None:
    diagnose(line, Sub.FORCE_LISTEN_ONLY_MODE)
    line.request(ReadHoldingRegisters(0, 1))
    line.request(WriteSingleRegister(0, 1), unit=0)
    diagnose(line, Sub.RESTART_COMMUNICATIONS_OPTION)
    # newest first: restart, its receive event (listen-only), the broadcast and
    # the read received in listen-only mode, entered listen-only, its receive.
    assert event_log(line).events == bytes([0x80, 0x00, 0xA0, 0xE0, 0xA0, 0x04, 0x80])


def test_a_restart_answers_first_then_clears_the_counters(line: SerialLine) -> None:
    line.request(ReadHoldingRegisters(0, 1))
    line.request(ReadHoldingRegisters(2, 1))
    response = diagnose(line, Sub.RESTART_COMMUNICATIONS_OPTION)
    assert response is not None
    assert response.pdu == DiagnosticsResponse(Sub.RESTART_COMMUNICATIONS_OPTION, b"\x00\x00")
    assert line.diagnostics.snapshot() == ServerDiagnostics().snapshot()
    # The log keeps its history (data 0000) with the restart event on top.
    log = event_log(line)
    assert log.events == bytes([0x80, 0x00, 0x40, 0x80, 0x41, 0x80, 0x40, 0x80])
    assert (log.event_count, log.message_count) == (0, 1)


def test_a_restart_with_ff00_also_clears_the_event_log(line: SerialLine) -> None:
    line.request(ReadHoldingRegisters(2, 1))
    response = diagnose(line, Sub.RESTART_COMMUNICATIONS_OPTION, b"\xff\x00")
    assert response is not None
    assert response.pdu == DiagnosticsResponse(Sub.RESTART_COMMUNICATIONS_OPTION, b"\xff\x00")
    assert event_log(line).events == bytes([0x80, 0x00])


def test_a_restart_takes_only_0000_or_ff00(line: SerialLine) -> None:
    assert error_code(line.dispatcher, wire("08 0001 0001")) == ExceptionCode.ILLEGAL_DATA_VALUE


@pytest.mark.parametrize("hex_pdu", ["08 0013 0000", "08 0015 0000", "08 FFFF 0000", "08 0005 0000"])
def test_unknown_sub_functions_answer_01(line: SerialLine, hex_pdu: str) -> None:
    assert error_code(line.dispatcher, wire(hex_pdu)) == ExceptionCode.ILLEGAL_FUNCTION


@pytest.mark.parametrize("sub_function", [Sub.RETURN_DIAGNOSTIC_REGISTER, Sub.RETURN_BUS_MESSAGE_COUNT, 0x14])
def test_counter_requests_take_data_0000(line: SerialLine, sub_function: int) -> None:
    assert error_code(line.dispatcher, wire(f"08 {sub_function:04X} 0001")) == ExceptionCode.ILLEGAL_DATA_VALUE


# -- 08 by broadcast ------------------------------------------------------------------


def test_broadcast_diagnostics_act_without_answering(line: SerialLine) -> None:
    line.request(ReadHoldingRegisters(2, 1))
    assert diagnose(line, Sub.CLEAR_COUNTERS_AND_DIAGNOSTIC_REGISTER, unit=0) is None
    assert line.diagnostics.bus_exception_error_count == 0
    assert diagnose(line, Sub.CHANGE_ASCII_INPUT_DELIMITER, b"\r\x00", unit=0) is None
    assert line.diagnostics.ascii_delimiter == 0x0D
    line.diagnostics.bus_character_overrun_count = 5
    assert diagnose(line, Sub.CLEAR_OVERRUN_COUNTER_AND_FLAG, unit=0) is None
    assert line.diagnostics.bus_character_overrun_count == 0
    assert diagnose(line, Sub.FORCE_LISTEN_ONLY_MODE, unit=0) is None
    assert line.diagnostics.listen_only
    assert diagnose(line, Sub.CLEAR_COUNTERS_AND_DIAGNOSTIC_REGISTER, unit=0) is None  # not executed
    assert diagnose(line, Sub.RESTART_COMMUNICATIONS_OPTION, b"\xff\x00", unit=0) is None
    assert not line.diagnostics.listen_only
    assert event_log(line).events == bytes([0x80, 0x00])


def test_broadcast_queries_are_ignored(line: SerialLine) -> None:
    line.diagnostics.diagnostic_register = 3
    for sub_function in (Sub.RETURN_QUERY_DATA, Sub.RETURN_DIAGNOSTIC_REGISTER, Sub.RETURN_BUS_MESSAGE_COUNT):
        assert diagnose(line, sub_function, unit=0) is None
    assert line.diagnostics.server_no_response_count == 3
    assert line.diagnostics.event_count == 0


# -- 11 and 12 -------------------------------------------------------------------------


def test_the_event_counter_counts_completed_messages_only(line: SerialLine) -> None:
    assert event_counter(line) == GetCommEventCounterResponse(0, 0)
    line.request(ReadHoldingRegisters(0, 1))
    line.request(WriteSingleRegister(0, 1))
    line.request(ReadHoldingRegisters(2, 1))  # an exception: not counted
    line.request(WriteSingleRegister(1, 1), unit=0)  # a completed broadcast: counted
    assert event_counter(line) == GetCommEventCounterResponse(0, 3)
    assert event_counter(line) == GetCommEventCounterResponse(0, 3)  # FC11 does not count itself
    line.diagnostics.busy = True
    assert event_counter(line) == GetCommEventCounterResponse(0xFFFF, 3)


def test_the_event_log_records_receive_and_send_events_newest_first(line: SerialLine) -> None:
    line.request(ReadHoldingRegisters(0, 1))
    for code in (2, 4, 5, 6, 7, 8):
        line.request(ReadHoldingRegisters(code, 1))  # answered with exception *code*
    line.request(WriteSingleRegister(0, 1), unit=0)
    assert line.feed(bad_crc_frame()) == []
    log = event_log(line)
    assert log.status == 0
    assert log.event_count == 2  # the normal answer and the broadcast; exceptions do not count
    assert log.message_count == 9  # every good frame, this one included
    oldest_first = [
        0x80, 0x40,  # received, sent a normal answer
        0x80, 0x41,  # exception 02: "read exception" bit
        0x80, 0x42,  # 04: "abort" bit
        0x80, 0x44,  # 05: "busy" bit
        0x80, 0x44,  # 06: "busy" bit
        0x80, 0x48,  # 07: "NAK" bit
        0x80, 0x40,  # 08: no bit of its own
        0xC0,  # the broadcast: received, nothing sent
        0x82,  # this request, the first received after a CRC error
    ]  # fmt: skip
    assert log.events == bytes(reversed(oldest_first))


def test_the_event_log_keeps_the_newest_64_events(line: SerialLine) -> None:
    for _ in range(40):
        line.request(ReadHoldingRegisters(0, 1))
    log = event_log(line)
    assert len(log.events) == 64
    assert log.events[0] == 0x80
    assert set(log.events[1:]) == {0x40, 0x80}


def test_fc11_and_fc12_take_no_data(line: SerialLine) -> None:
    assert error_code(line.dispatcher, wire("0B 00")) == ExceptionCode.ILLEGAL_DATA_VALUE
    assert error_code(line.dispatcher, wire("0C 00")) == ExceptionCode.ILLEGAL_DATA_VALUE


# -- the object itself ----------------------------------------------------------------------


def test_each_server_has_its_own_counters() -> None:
    first = Dispatcher(Device(coils=1))
    second = Dispatcher(Device(coils=1))
    answer(first, ReadCoils(0, 1))
    assert ask(first, Diagnostics(Sub.FORCE_LISTEN_ONLY_MODE)) is None
    assert first.diagnostics is not second.diagnostics
    assert first.diagnostics.server_message_count == 2
    assert second.diagnostics.server_message_count == 0
    assert answer(second, ReadCoils(0, 1)) is not None
    assert ask(first, ReadCoils(0, 1)) is None


def test_connection_drops_count_as_the_specification_says() -> None:
    diagnostics = ServerDiagnostics()
    for cause in DropCause:
        diagnostics.frame_dropped(cause)
    errors = sum(1 for cause in DropCause if cause.is_communication_error)
    assert diagnostics.bus_communication_error_count == errors
    assert diagnostics.bus_character_overrun_count == 1
    assert diagnostics.message_received(broadcast=False) is False
    assert diagnostics.events == bytes([0x80 | 0x02 | 0x10])
    # The flags go to one receive event only.
    diagnostics.message_received(broadcast=True)
    assert diagnostics.events[0] == 0xC0


def test_a_response_sent_while_listening_only_is_flagged() -> None:
    diagnostics = ServerDiagnostics()
    diagnostics.enter_listen_only()
    diagnostics.response_sent(None)
    diagnostics.response_sent(ExceptionCode.GATEWAY_PATH_UNAVAILABLE)
    assert diagnostics.events == bytes([0x60, 0x60, 0x04])
    assert diagnostics.bus_exception_error_count == 1


def test_the_diagnostics_api_checks_its_input() -> None:
    diagnostics = ServerDiagnostics()
    with pytest.raises(LocalProtocolError, match="not a counter"):
        diagnostics.counter(Sub.RETURN_QUERY_DATA)
    with pytest.raises(LocalProtocolError, match="byte"):
        diagnostics.change_ascii_delimiter(256)
    assert "listen_only=False" in repr(diagnostics)
    assert diagnostics.comm_event_log() == (0, 0, 0, b"")


def test_adapters_report_answers_they_make_themselves() -> None:
    # A TCP server that answers 06 when it has no free transaction slot.
    diagnostics = ServerDiagnostics()
    server = ServerConnection(AsciiFramer(), diagnostics=diagnostics)
    client = ClientConnection(AsciiFramer())
    server.receive_data(client.send(client.request(ReadCoils(0, 1), 1)))
    request = server.next_event()
    assert isinstance(request, Request)
    assert server.next_event() is NEED_DATA
    diagnostics.message_received(broadcast=False)
    busy = request.exception(ExceptionCode.SERVER_DEVICE_BUSY)
    diagnostics.response_sent(ExceptionCode.SERVER_DEVICE_BUSY)
    client.receive_data(server.send(busy))
    assert client.next_event() == Response(ExceptionResponse(1, 6), 1)
    assert diagnostics.snapshot()["server_busy_count"] == 1
    assert diagnostics.bus_message_count == 1
