"""Function tables: custom function codes, per connection, with RTU length rules."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import pytest

from modbus_core import (
    ClientConnection,
    CustomFunction,
    CustomPdu,
    ExceptionCode,
    FrameDropped,
    FunctionTable,
    LocalProtocolError,
    MalformedRequest,
    MbapFramer,
    RawPdu,
    ReadHoldingRegisters,
    RemoteProtocolError,
    Request,
    RequestPdu,
    Response,
    ResponsePdu,
    RtuFramer,
    ServerConnection,
)

from .cases import feed, rtu, whole


@dataclasses.dataclass(frozen=True, slots=True)
class Echo(RequestPdu):
    """User function 65: an echo of up to 10 bytes, length first."""

    function_code: ClassVar[int] = 0x41
    payload: bytes

    def encode(self) -> bytes:
        return bytes((0x41, len(self.payload))) + self.payload

    @classmethod
    def decode(cls, pdu: bytes) -> Echo:
        if len(pdu) < 2 or pdu[1] > 10 or len(pdu) != 2 + pdu[1]:
            raise ValueError("bad echo")
        return cls(pdu[2:])


@dataclasses.dataclass(frozen=True, slots=True)
class EchoResponse(ResponsePdu):
    function_code: ClassVar[int] = 0x41
    payload: bytes

    def encode(self) -> bytes:
        return bytes((0x41, len(self.payload))) + self.payload

    @classmethod
    def decode(cls, pdu: bytes) -> EchoResponse:
        return cls(Echo.decode(pdu).payload)


@dataclasses.dataclass(frozen=True, slots=True)
class Ping(RequestPdu):
    """User function 100: always 3 bytes."""

    function_code: ClassVar[int] = 0x64
    value: int

    def encode(self) -> bytes:
        return bytes((0x64,)) + self.value.to_bytes(2, "big")

    @classmethod
    def decode(cls, pdu: bytes) -> Ping:
        return cls(int.from_bytes(pdu[1:3], "big"))


@dataclasses.dataclass(frozen=True, slots=True)
class Pong(ResponsePdu):
    function_code: ClassVar[int] = 0x64
    value: int

    def encode(self) -> bytes:
        return bytes((0x64,)) + self.value.to_bytes(2, "big")

    @classmethod
    def decode(cls, pdu: bytes) -> Pong:
        return cls(pdu[1] << 8 | pdu[2])


def _echo_length(pdu: bytes) -> int | None:
    return 2 + pdu[1] if len(pdu) >= 2 else None


ECHO = CustomFunction(0x41, Echo, EchoResponse, request_length=_echo_length, response_length=_echo_length)
PING = CustomFunction(0x64, Ping, Pong, request_length=3, response_length=3)


def test_default_table() -> None:
    table = FunctionTable()
    assert repr(table) == "FunctionTable()"
    assert table.custom == ()


def test_custom_functions_decode_both_ways() -> None:
    table = FunctionTable([ECHO, PING])
    assert repr(table) == "FunctionTable(custom=[65, 100])"
    assert table.decode_request(bytes.fromhex("410201FF")) == Echo(b"\x01\xff")
    assert table.decode_response(bytes.fromhex("410101")) == EchoResponse(b"\x01")
    assert table.decode_request(bytes.fromhex("640102")) == Ping(0x102)
    assert table.decode_response(bytes.fromhex("640102")) == Pong(0x102)
    # Other tables are not affected: nothing is registered process-wide.
    assert FunctionTable().decode_request(bytes.fromhex("410201FF")) == RawPdu(0x41, bytes.fromhex("0201FF"))


def test_custom_function_may_replace_a_public_one() -> None:
    table = FunctionTable([CustomFunction(0x03, Ping, Pong, request_length=3, response_length=3)])
    assert table.decode_request(bytes.fromhex("030007")) == Ping(7)


def test_custom_decoder_errors_become_exception_03() -> None:
    table = FunctionTable([ECHO])
    decoded = table.decode_request(bytes.fromhex("4102"))
    assert isinstance(decoded, MalformedRequest)
    assert decoded.exception_code == ExceptionCode.ILLEGAL_DATA_VALUE
    assert "bad echo" in decoded.reason
    with pytest.raises(RemoteProtocolError, match="bad echo"):
        table.decode_response(bytes.fromhex("41FF"))
    # IndexError from a decoder that reads past the end counts the same.
    pong_table = FunctionTable([PING])
    with pytest.raises(RemoteProtocolError):
        pong_table.decode_response(bytes.fromhex("64"))


def test_custom_decoder_must_return_its_kind_of_pdu() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Confused(RequestPdu):
        function_code: ClassVar[int] = 0x42

        def encode(self) -> bytes:
            return b"\x42"

        @classmethod
        def decode(cls, pdu: bytes) -> object:
            return Pong(1)

    table = FunctionTable([CustomFunction(0x42, Confused, Pong)])
    with pytest.raises(LocalProtocolError, match="not a RequestPdu"):
        table.decode_request(b"\x42")


def test_custom_pdu_protocol() -> None:
    assert isinstance(Echo(b""), CustomPdu)
    assert isinstance(ReadHoldingRegisters(0, 1), CustomPdu)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"function_code": 0, "request": Ping, "response": Pong}, "1..127"),
        ({"function_code": 0x80, "request": Ping, "response": Pong}, "1..127"),
        ({"function_code": "65", "request": Ping, "response": Pong}, "1..127"),
        ({"function_code": 0x41, "request": RawPdu, "response": Pong}, "decode"),
    ],
)
def test_custom_function_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        CustomFunction(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("length", [0, 254])
def test_fixed_custom_length_must_fit_a_pdu(length: int) -> None:
    with pytest.raises(LocalProtocolError, match=r"1\.\.253"):
        FunctionTable([CustomFunction(0x64, Ping, Pong, request_length=length)])


def test_table_accepts_only_custom_functions() -> None:
    with pytest.raises(LocalProtocolError, match="CustomFunction"):
        FunctionTable([object()])  # type: ignore[list-item]


def test_length_rules() -> None:
    table = FunctionTable([ECHO, PING, CustomFunction(0x65, Ping, Pong)])
    pdu = bytes.fromhex("410201FF")
    assert table.request_length(pdu, 0, 1) is None  # needs the length byte
    assert table.request_length(pdu, 0, 4) == 4
    assert table.request_length(b"\x64", 0, 1) == 3
    assert table.response_length(b"\x64", 0, 1) == 3
    assert table.request_length(b"\x03", 0, 1) == 5
    assert table.response_length(bytes.fromhex("0304"), 0, 2) == 6
    assert table.response_length(bytes.fromhex("83"), 0, 1) == 2  # an exception response
    # Silence ends the frames of functions without a length rule.
    by_silence = table.request_length(b"\x65", 0, 1)
    assert by_silence is not None
    assert by_silence < 0
    assert table.request_length(b"\x42", 0, 1) == by_silence
    # No request starts with 0 or an exception code; no response with 0 or 0x80.
    invalid = table.request_length(b"\x00", 0, 1)
    assert invalid is not None
    assert invalid < 0
    assert invalid != by_silence
    assert table.request_length(b"\x83", 0, 1) == invalid
    assert table.response_length(b"\x80", 0, 1) == invalid


def test_a_length_rule_that_answers_nonsense_starts_no_frame() -> None:
    odd = CustomFunction(0x66, Ping, Pong, request_length=lambda pdu: -1, response_length=lambda pdu: "x")  # type: ignore[arg-type,return-value]
    table = FunctionTable([odd])
    invalid = table.request_length(b"\x00", 0, 1)
    assert table.request_length(b"\x66", 0, 1) == invalid
    assert table.response_length(b"\x66", 0, 1) == invalid


def test_custom_functions_through_rtu_connections() -> None:
    table = FunctionTable([ECHO, PING])
    server = ServerConnection(RtuFramer(19200), functions=table)
    client = ClientConnection(RtuFramer(19200), functions=table)
    assert server.functions is table
    request = client.request(Echo(b"\x01\x02\x03"), unit=5)
    wire = client.send(request)
    assert wire == rtu(5, bytes.fromhex("4103010203"))
    # The length rule frames it at once: no silence needed.
    assert feed(server, whole(wire), settle=False) == [request]
    reply = server.send(request.reply(EchoResponse(b"\x09")))
    assert feed(client, whole(reply), settle=False) == [Response(EchoResponse(b"\x09"), 5)]
    ping = client.request(Ping(7), unit=5)
    assert feed(server, whole(client.send(ping)), settle=False) == [ping]
    assert feed(client, whole(server.send(ping.reply(Pong(8)))), settle=False) == [Response(Pong(8), 5)]


def test_custom_function_without_a_length_rule_ends_at_silence() -> None:
    table = FunctionTable([CustomFunction(0x64, Ping, Pong)])
    server = ServerConnection(RtuFramer(19200), functions=table)
    wire = rtu(1, bytes.fromhex("640001"))
    assert feed(server, whole(wire), settle=False) == []
    assert feed(server, [], settle=True) == [Request(Ping(1), 1)]


def test_custom_functions_through_mbap() -> None:
    table = FunctionTable([ECHO])
    server = ServerConnection(MbapFramer(), functions=table)
    client = ClientConnection(MbapFramer(), functions=table)
    request = client.request(Echo(b"hi"), unit=1)
    assert feed(server, whole(client.send(request))) == [request]
    malformed = client.request(RawPdu(0x41, b"\x05"), unit=1)
    [event] = feed(server, whole(client.send(malformed)))
    assert isinstance(event, Request)
    assert isinstance(event.pdu, MalformedRequest)
    assert event.pdu.exception_code == ExceptionCode.ILLEGAL_DATA_VALUE
    # A client whose custom decoder chokes drops the response.
    [dropped] = feed(client, whole(server.send(request.reply(RawPdu(0x41, b"\x09")))))
    assert isinstance(dropped, FrameDropped)


def test_length_rules_that_need_more_bytes() -> None:
    table = FunctionTable()
    assert table.response_length(b"\x18\x00", 0, 2) is None  # FIFO byte count is a word
    assert table.response_length(b"\x18\x00\x06", 0, 3) == 9
    assert table.request_length(b"\x2b", 0, 1) is None  # MEI type decides
    assert table.request_length(b"\x2b\x0e", 0, 2) == 4
    assert table.request_length(b"\x2b\x0d", 0, 2) == table.request_length(b"\x41", 0, 1)
    assert table.response_length(b"\x2b", 0, 1) is None
    assert table.response_length(b"\x2b\x0d", 0, 2) == table.request_length(b"\x41", 0, 1)
    identification = bytes.fromhex("2B0E0101000002") + b"\x00\x03abc" + b"\x01\x02"
    assert table.response_length(identification, 0, 7) is None
    # The last object's length byte is enough: the framer waits for its value.
    assert table.response_length(identification, 0, len(identification) - 1) is None
    assert table.response_length(identification, 0, len(identification)) == len(identification) + 2
    assert table.request_length(b"\x08\x00", 0, 2) is None
    assert table.response_length(b"\x01", 0, 1) is None


def test_device_identification_longer_than_a_pdu_is_no_frame() -> None:
    table = FunctionTable()
    buffer = bytes.fromhex("2B0E0101000002") + b"\x00\xff" + bytes(255) + b"\x01\x01x"
    assert table.response_length(buffer, 0, len(buffer)) == table.request_length(b"\x00", 0, 1)
