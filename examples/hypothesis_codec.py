"""Property-based tests of the Modbus codec with hypothesis, custom function code included.

    python examples/hypothesis_codec.py [--max-examples 200]
    python -m pytest examples/hypothesis_codec.py

Each property is a ``test_*`` function: pytest collects them, and run as a
script this file calls them one by one (hypothesis runs the examples when a
``@given`` function is called).  They check what a codec must never get wrong:

* every request and response survives encode -> decode unchanged;
* a client and a server wired together agree on every request, however the
  bytes are split on the way and whatever the silence between the pieces;
* arbitrary bytes are only ever events (a Request or a FrameDropped), never an
  exception, on a serial line; on a TCP stream at most RemoteProtocolError;
* the custom function code of custom_function.py decodes what it encodes and
  turns garbage into a MalformedRequest (exception 03), never a crash.
"""

from __future__ import annotations

import argparse
import sys

from custom_function import READ_LABEL, ReadLabel, ReadLabelResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from modbus_core import (
    NEED_DATA,
    ClientConnection,
    FrameDropped,
    FunctionTable,
    MalformedRequest,
    MaskWriteRegister,
    MbapFramer,
    ReadCoils,
    ReadHoldingRegisters,
    ReadHoldingRegistersResponse,
    ReadWriteMultipleRegisters,
    RemoteProtocolError,
    Request,
    RequestPdu,
    ResponsePdu,
    RtuFramer,
    ServerConnection,
    WriteMultipleCoils,
    WriteMultipleRegisters,
    WriteSingleCoil,
    WriteSingleRegister,
)

settings.register_profile("example", max_examples=200, deadline=None)
settings.load_profile("example")

TABLE = FunctionTable([READ_LABEL])

addresses = st.integers(0, 0xFFFF)
registers = st.integers(0, 0xFFFF)


def _fits(address: int, count: int) -> bool:
    return address + count <= 0x10000


requests: st.SearchStrategy[RequestPdu] = st.one_of(
    st.builds(ReadCoils, addresses, st.integers(1, 2000)).filter(lambda pdu: _fits(pdu.address, pdu.count)),
    st.builds(ReadHoldingRegisters, addresses, st.integers(1, 125)).filter(lambda pdu: _fits(pdu.address, pdu.count)),
    st.builds(WriteSingleCoil, addresses, st.booleans()),
    st.builds(WriteSingleRegister, addresses, registers),
    st.builds(WriteMultipleCoils, addresses, st.lists(st.booleans(), min_size=1, max_size=1968).map(tuple)),
    st.builds(WriteMultipleRegisters, addresses, st.lists(registers, min_size=1, max_size=123).map(tuple)),
    st.builds(MaskWriteRegister, addresses, registers, registers),
    st.builds(
        ReadWriteMultipleRegisters,
        addresses,
        st.integers(1, 125),
        addresses,
        st.lists(registers, min_size=1, max_size=121).map(tuple),
    ),
    st.builds(ReadLabel, st.integers(0, 0xFF)),
)

responses: st.SearchStrategy[ResponsePdu] = st.one_of(
    st.builds(ReadHoldingRegistersResponse, st.lists(registers, min_size=1, max_size=125).map(tuple)),
    st.builds(ReadLabelResponse, st.text(max_size=60)),
)


@given(requests)
def test_request_round_trip(pdu: RequestPdu) -> None:
    assert TABLE.decode_request(pdu.encode()) == pdu


@given(responses)
def test_response_round_trip(pdu: ResponsePdu) -> None:
    assert TABLE.decode_response(pdu.encode()) == pdu


@given(
    st.lists(requests, min_size=1, max_size=5),
    st.integers(1, 247),
    st.lists(st.integers(1, 20), min_size=1, max_size=30),
    st.lists(st.floats(0, 0.005), min_size=1, max_size=30),
)
def test_client_and_server_agree_over_rtu(
    pdus: list[RequestPdu], unit: int, cuts: list[int], gaps: list[float]
) -> None:
    """What a client sends is what the server receives, in pieces with gaps shorter than the RTU silence."""
    client = ClientConnection(RtuFramer(19200), functions=TABLE)
    server = ServerConnection(RtuFramer(19200), functions=TABLE)
    now = 0.0
    for pdu in pdus:
        request = client.request(pdu, unit)
        wire = client.send(request)
        client.cancel(request)  # no response comes back in this test
        position = 0
        index = 0
        while position < len(wire):
            size = cuts[index % len(cuts)]
            server.receive_data(wire[position : position + size], now)
            position += size
            now += gaps[index % len(gaps)]
            index += 1
        events = []
        while (event := server.next_event()) is not NEED_DATA:
            events.append(event)
        deadline = server.next_deadline()
        if deadline is not None:  # frames whose end only silence can tell
            server.handle_timeout(deadline)
            while (event := server.next_event()) is not NEED_DATA:
                events.append(event)
        assert events == [request]
        now += 0.1  # silence between requests


@given(st.lists(st.binary(max_size=40), max_size=20), st.lists(st.floats(0, 0.05), min_size=1, max_size=20))
def test_serial_garbage_gives_only_events(chunks: list[bytes], gaps: list[float]) -> None:
    server = ServerConnection(RtuFramer(9600), functions=TABLE)
    now = 0.0
    for index, chunk in enumerate(chunks):
        server.receive_data(chunk, now)
        now += gaps[index % len(gaps)]
        while (event := server.next_event()) is not NEED_DATA:
            assert isinstance(event, Request | FrameDropped)
    server.handle_timeout(now + 1.0)
    while (event := server.next_event()) is not NEED_DATA:
        assert isinstance(event, Request | FrameDropped)


@given(st.lists(st.binary(max_size=300), max_size=10))
def test_tcp_garbage_gives_events_or_remote_protocol_error(chunks: list[bytes]) -> None:
    server = ServerConnection(MbapFramer(), functions=TABLE)
    try:
        for chunk in chunks:
            server.receive_data(chunk, 0.0)
            while (event := server.next_event()) is not NEED_DATA:
                assert isinstance(event, Request | FrameDropped)
    except RemoteProtocolError:
        pass  # the adapter closes the connection


@given(st.binary(max_size=20))
def test_custom_request_garbage_is_malformed_not_a_crash(data: bytes) -> None:
    pdu = TABLE.decode_request(bytes((READ_LABEL.function_code,)) + data)
    if isinstance(pdu, MalformedRequest):
        assert pdu.exception_code == 3  # the server answers "illegal data value"
    else:
        assert pdu == ReadLabel(data[0])


PROPERTIES = [
    test_request_round_trip,
    test_response_round_trip,
    test_client_and_server_agree_over_rtu,
    test_serial_garbage_gives_only_events,
    test_tcp_garbage_gives_events_or_remote_protocol_error,
    test_custom_request_garbage_is_malformed_not_a_crash,
]


def main() -> int:
    parser = argparse.ArgumentParser(description="Property-based tests of the Modbus codec.")
    parser.add_argument("--max-examples", type=int, default=200, help="examples per property")
    args = parser.parse_args()
    settings.register_profile("cli", max_examples=args.max_examples, deadline=None)
    settings.load_profile("cli")
    for prop in PROPERTIES:
        prop()  # raises (with the smallest failing example) when a property does not hold
        print(f"ok {prop.__name__}", flush=True)
    print(f"{len(PROPERTIES)} properties hold", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
