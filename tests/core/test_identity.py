"""Function 43/14 (read device identification) and the identity behind 17."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modbus_core import (
    Device,
    DeviceIdCode,
    DeviceIdentity,
    Dispatcher,
    ExceptionCode,
    LocalProtocolError,
    ModbusExceptionError,
    ReadDeviceIdentification,
    ReadDeviceIdentificationResponse,
    ReportServerId,
    ReportServerIdResponse,
)

from .dispatch_support import answer, error_code, wire

BASIC = DeviceIdentity("ACME", "PM-100", "3.2")
REGULAR = DeviceIdentity(
    "ACME",
    b"PM-100",
    "3.2",
    vendor_url="https://acme.example",
    product_name="Power meter",
    model_name="PM-100/B",
    user_application_name="line 4",
)
EXTENDED = DeviceIdentity(
    "ACME", "PM-100", "3.2", product_name="Power meter", extended={0x80: "serial 17", 0xFF: b"\x00\x01"}
)


def identify(identity: DeviceIdentity, read_code: int, object_id: int = 0) -> ReadDeviceIdentificationResponse:
    response = answer(Dispatcher(Device(identity=identity)), ReadDeviceIdentification(read_code, object_id))
    assert isinstance(response, ReadDeviceIdentificationResponse)
    assert response.read_code == read_code
    return response


def test_basic_stream_returns_the_three_mandatory_objects() -> None:
    response = identify(BASIC, DeviceIdCode.BASIC)
    assert response == ReadDeviceIdentificationResponse(1, 0x81, False, 0, ((0, b"ACME"), (1, b"PM-100"), (2, b"3.2")))


def test_regular_stream_adds_the_regular_objects() -> None:
    response = identify(REGULAR, DeviceIdCode.REGULAR)
    assert response.conformity_level == 0x82
    assert dict(response.objects) == {
        0: b"ACME",
        1: b"PM-100",
        2: b"3.2",
        3: b"https://acme.example",
        4: b"Power meter",
        5: b"PM-100/B",
        6: b"line 4",
    }
    assert [object_id for object_id, _ in response.objects] == list(range(7))
    # The basic stream of the same device stays basic.
    assert [object_id for object_id, _ in identify(REGULAR, DeviceIdCode.BASIC).objects] == [0, 1, 2]


def test_extended_stream_adds_the_private_objects() -> None:
    response = identify(EXTENDED, DeviceIdCode.EXTENDED)
    assert response.conformity_level == 0x83
    assert response.objects == (
        (0, b"ACME"),
        (1, b"PM-100"),
        (2, b"3.2"),
        (4, b"Power meter"),
        (0x80, b"serial 17"),
        (0xFF, b"\x00\x01"),
    )
    assert (response.more_follows, response.next_object_id) == (False, 0)


def test_a_higher_read_code_than_the_conformity_level_answers_what_exists() -> None:
    assert identify(BASIC, DeviceIdCode.EXTENDED).objects == identify(BASIC, DeviceIdCode.BASIC).objects
    assert identify(BASIC, DeviceIdCode.REGULAR).conformity_level == 0x81


def test_a_stream_may_start_at_any_object_of_its_category() -> None:
    assert [i for i, _ in identify(REGULAR, DeviceIdCode.REGULAR, 4).objects] == [4, 5, 6]
    assert [i for i, _ in identify(EXTENDED, DeviceIdCode.EXTENDED, 0x80).objects] == [0x80, 0xFF]


@pytest.mark.parametrize(
    ("identity", "read_code", "object_id"),
    [
        (BASIC, DeviceIdCode.BASIC, 0x03),  # a regular id in a basic stream
        (BASIC, DeviceIdCode.REGULAR, 0x05),  # an object the device does not have
        (REGULAR, DeviceIdCode.REGULAR, 0x80),  # an extended id in a regular stream
        (EXTENDED, DeviceIdCode.EXTENDED, 0x7F),  # a reserved id
        (EXTENDED, DeviceIdCode.EXTENDED, 0x81),  # between two extended objects
    ],
)
def test_a_stream_from_an_unknown_object_restarts_at_0(
    identity: DeviceIdentity, read_code: int, object_id: int
) -> None:
    assert identify(identity, read_code, object_id) == identify(identity, read_code, 0)


def test_individual_access_returns_one_object() -> None:
    response = identify(EXTENDED, DeviceIdCode.SPECIFIC, 0x80)
    assert response == ReadDeviceIdentificationResponse(4, 0x83, False, 0, ((0x80, b"serial 17"),))
    assert identify(BASIC, DeviceIdCode.SPECIFIC, 2).objects == ((2, b"3.2"),)


@pytest.mark.parametrize("object_id", [0x03, 0x06, 0x07, 0x7F, 0x81, 0xFE])
def test_individual_access_to_an_unknown_object_answers_02(object_id: int) -> None:
    dispatcher = Dispatcher(Device(identity=EXTENDED))
    assert error_code(dispatcher, ReadDeviceIdentification(4, object_id)) == ExceptionCode.ILLEGAL_DATA_ADDRESS


@pytest.mark.parametrize("read_code", [0, 5, 0xFF])
def test_read_codes_outside_1_to_4_answer_03(read_code: int) -> None:
    dispatcher = Dispatcher(Device(identity=BASIC))
    assert error_code(dispatcher, wire(f"2B 0E {read_code:02X} 00")) == ExceptionCode.ILLEGAL_DATA_VALUE
    with pytest.raises(ModbusExceptionError) as caught:
        BASIC.read(read_code, 0)
    assert caught.value.exception_code == ExceptionCode.ILLEGAL_DATA_VALUE


def test_malformed_identification_requests() -> None:
    dispatcher = Dispatcher(Device(identity=BASIC))
    assert error_code(dispatcher, wire("2B 0E 01")) == ExceptionCode.ILLEGAL_DATA_VALUE
    assert error_code(dispatcher, wire("2B 0E 01 00 00")) == ExceptionCode.ILLEGAL_DATA_VALUE
    assert error_code(dispatcher, wire("2B 0D 01 00")) == ExceptionCode.ILLEGAL_FUNCTION  # CANopen MEI type


def big_identity(sizes: list[int]) -> DeviceIdentity:
    return DeviceIdentity(
        "V" * 10, "P", "R", extended={0x80 + index: bytes([index]) * size for index, size in enumerate(sizes)}
    )


def stream(identity: DeviceIdentity, read_code: int) -> list[ReadDeviceIdentificationResponse]:
    """Follow More Follows the way a client does, and check every step."""
    dispatcher = Dispatcher(Device(identity=identity))
    responses = []
    object_id = 0
    for _ in range(256):
        response = answer(dispatcher, ReadDeviceIdentification(read_code, object_id))
        assert isinstance(response, ReadDeviceIdentificationResponse)
        assert len(response.encode()) <= 253
        assert response.objects, "every response carries at least one object"
        responses.append(response)
        if not response.more_follows:
            assert response.next_object_id == 0
            return responses
        assert response.next_object_id > object_id  # always advances
        assert response.next_object_id > response.objects[-1][0]
        object_id = response.next_object_id
    raise AssertionError("the stream never ended")


def test_objects_that_do_not_fit_follow_in_the_next_responses() -> None:
    identity = big_identity([200, 200, 40, 244])
    responses = stream(identity, DeviceIdCode.EXTENDED)
    assert [[i for i, _ in response.objects] for response in responses] == [[0, 1, 2, 0x80], [0x81, 0x82], [0x83]]
    assert [response.next_object_id for response in responses] == [0x81, 0x83, 0]
    assert [response.more_follows for response in responses] == [True, True, False]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 244), max_size=40), st.sampled_from([1, 2, 3]))
def test_streaming_returns_every_object_once_and_never_splits_one(sizes: list[int], read_code: int) -> None:
    identity = big_identity(sizes)
    received = [item for response in stream(identity, read_code) for item in response.objects]
    expected = [(i, value) for i, value in identity.objects.items() if read_code == 3 or i < 3]
    assert received == expected


def test_identity_objects_and_defaults() -> None:
    assert BASIC.objects == {0: b"ACME", 1: b"PM-100", 2: b"3.2"}
    assert DeviceIdentity().objects == {0: b"", 1: b"", 2: b""}
    assert BASIC.additional_data == b"ACME PM-100"
    assert REGULAR.additional_data == b"ACME Power meter"
    assert DeviceIdentity().additional_data == b""
    assert "ACME" in repr(BASIC)
    assert DeviceIdentity("\u00e9").objects[0] == "\u00e9".encode()


def test_report_server_id_uses_the_identity_fields() -> None:
    identity = DeviceIdentity("ACME", "X", "1", server_id=0xFF, running=False, additional_data=b"\x01\x02")
    assert answer(Dispatcher(Device(identity=identity)), ReportServerId()) == ReportServerIdResponse(
        0xFF, False, b"\x01\x02"
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"extended": {0x7F: "x"}}, "0x80..0xFF"),
        ({"extended": {0x100: "x"}}, "0x80..0xFF"),
        ({"extended": {"a": "x"}}, "0x80..0xFF"),
        ({"vendor_url": "x" * 245}, "at most 244"),
        ({"extended": {0x80: b"x" * 245}}, "at most 244"),
        ({"server_id": 256}, "server_id"),
        ({"server_id": -1}, "server_id"),
        ({"additional_data": b"x" * 250}, "249"),
    ],
)
def test_identity_checks_its_fields(options: dict[str, object], message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        DeviceIdentity("v", "p", "r", **options)  # type: ignore[arg-type]


def test_a_device_without_identity_uses_the_servers() -> None:
    server_identity = DeviceIdentity("Server", "S", "9")
    dispatcher = Dispatcher(Device(), identity=server_identity)
    response = answer(dispatcher, ReadDeviceIdentification(1, 0))
    assert isinstance(response, ReadDeviceIdentificationResponse)
    assert response.objects[0] == (0, b"Server")
    with pytest.raises(LocalProtocolError, match="DeviceIdentity"):
        Device(identity="Server")  # type: ignore[arg-type]
