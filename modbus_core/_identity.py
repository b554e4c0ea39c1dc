"""Device identification: the objects of function 43/14 and the answer of 17."""

from __future__ import annotations

from collections.abc import Mapping

from ._errors import LocalProtocolError, ModbusExceptionError
from ._pdu import DeviceIdCode, ExceptionCode, ReadDeviceIdentificationResponse

__all__ = ["DeviceIdentity"]

# Object ids of the basic and regular categories.
VENDOR_NAME = 0x00
PRODUCT_CODE = 0x01
MAJOR_MINOR_REVISION = 0x02
VENDOR_URL = 0x03
PRODUCT_NAME = 0x04
MODEL_NAME = 0x05
USER_APPLICATION_NAME = 0x06

# The largest object that fits a response on its own (253 - 7 header - 2),
# so that stream access always advances by at least one object.
MAX_OBJECT_SIZE = 244
_RESPONSE_SPACE = 253 - 7

# Ids each read code streams: categories are cumulative, ids 0x07-0x7F are
# reserved and never streamed.
_CATEGORY_IDS = {
    DeviceIdCode.BASIC: range(0x03),
    DeviceIdCode.REGULAR: range(0x07),
    DeviceIdCode.EXTENDED: [*range(0x07), *range(0x80, 0x100)],
}


_READ_CODES = frozenset(DeviceIdCode)


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


class DeviceIdentity:
    """What a device says about itself (functions 43/14 and 17).

    The three basic objects are mandatory and always present (empty when not
    given).  *extended* maps ids 0x80-0xFF to values.  *server_id*,
    *running* and *additional_data* make the answer of function 17
    (additional data defaults to the vendor and product names).
    """

    __slots__ = ("_objects", "additional_data", "running", "server_id")

    def __init__(
        self,
        vendor_name: str | bytes = "",
        product_code: str | bytes = "",
        major_minor_revision: str | bytes = "",
        *,
        vendor_url: str | bytes = "",
        product_name: str | bytes = "",
        model_name: str | bytes = "",
        user_application_name: str | bytes = "",
        extended: Mapping[int, str | bytes] | None = None,
        server_id: int = 0x01,
        running: bool = True,
        additional_data: bytes | None = None,
    ) -> None:
        objects = {
            VENDOR_NAME: _as_bytes(vendor_name),
            PRODUCT_CODE: _as_bytes(product_code),
            MAJOR_MINOR_REVISION: _as_bytes(major_minor_revision),
        }
        for object_id, value in (
            (VENDOR_URL, vendor_url),
            (PRODUCT_NAME, product_name),
            (MODEL_NAME, model_name),
            (USER_APPLICATION_NAME, user_application_name),
        ):
            if value:
                objects[object_id] = _as_bytes(value)
        for object_id, value in (extended or {}).items():
            if not isinstance(object_id, int) or not 0x80 <= object_id <= 0xFF:
                raise LocalProtocolError(f"extended object ids are 0x80..0xFF, got {object_id!r}")
            objects[object_id] = _as_bytes(value)
        for object_id, value in objects.items():
            if len(value) > MAX_OBJECT_SIZE:
                raise LocalProtocolError(f"object {object_id:#04x} takes {len(value)} bytes, at most {MAX_OBJECT_SIZE}")
        if not isinstance(server_id, int) or not 0 <= server_id <= 0xFF:
            raise LocalProtocolError(f"server_id must be 0..255, got {server_id!r}")
        self._objects = dict(sorted(objects.items()))
        self.server_id = server_id
        self.running = bool(running)
        if additional_data is None:
            names = [objects[VENDOR_NAME], objects.get(PRODUCT_NAME, objects[PRODUCT_CODE])]
            additional_data = b" ".join(name for name in names if name)
        if len(additional_data) > 249:
            raise LocalProtocolError("additional_data holds at most 249 bytes")
        self.additional_data = bytes(additional_data)

    def __repr__(self) -> str:
        return f"DeviceIdentity({self._objects.get(VENDOR_NAME, b'')!r}, {self._objects.get(PRODUCT_CODE, b'')!r})"

    @property
    def objects(self) -> Mapping[int, bytes]:
        """Every object by id, in id order."""
        return dict(self._objects)

    @property
    def conformity_level(self) -> int:
        """0x81, 0x82 or 0x83: the highest category present, individual access supported."""
        if any(object_id >= 0x80 for object_id in self._objects):
            return 0x83
        if any(VENDOR_URL <= object_id <= USER_APPLICATION_NAME for object_id in self._objects):
            return 0x82
        return 0x81

    def read(self, read_code: int, object_id: int) -> ReadDeviceIdentificationResponse:
        """The response to a 43/14 request.

        Read codes 1..3 stream the objects of their category (cumulative:
        regular includes basic) from *object_id* on, or from object 0 when
        *object_id* is not one of them.  Objects are never split: when the
        next one does not fit, the response says More Follows with the id
        to ask for next, which is always higher than the request's.  Read
        code 4 returns the one object *object_id*, or raises exception 02
        when there is no such object; any other read code raises 03.
        """
        if read_code not in _READ_CODES:
            raise ModbusExceptionError(ExceptionCode.ILLEGAL_DATA_VALUE, f"read device id code {read_code} is not 1..4")
        if read_code == DeviceIdCode.SPECIFIC:
            if object_id not in self._objects:
                raise ModbusExceptionError(ExceptionCode.ILLEGAL_DATA_ADDRESS, f"no object {object_id:#04x}")
            return ReadDeviceIdentificationResponse(
                read_code, self.conformity_level, False, 0, ((object_id, self._objects[object_id]),)
            )
        ids = [i for i in _CATEGORY_IDS[DeviceIdCode(read_code)] if i in self._objects]
        if object_id not in ids:
            object_id = ids[0]  # an unknown start object restarts the stream
        selected: list[tuple[int, bytes]] = []
        space = _RESPONSE_SPACE
        more_follows = False
        next_object_id = 0
        for candidate in ids[ids.index(object_id) :]:
            value = self._objects[candidate]
            if 2 + len(value) > space:
                more_follows = True
                next_object_id = candidate
                break
            selected.append((candidate, value))
            space -= 2 + len(value)
        return ReadDeviceIdentificationResponse(
            read_code, self.conformity_level, more_follows, next_object_id, tuple(selected)
        )
