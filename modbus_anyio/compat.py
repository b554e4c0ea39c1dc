"""pymodbus datastore names over the modbuskit datastore.

So that a pymodbus 3.16 program moves by changing its imports::

    from modbus_anyio.compat import (
        ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext,
        ModbusSparseDataBlock, ModbusDeviceIdentification, FramerType)

These are thin builders of :mod:`modbus_core` objects:
:class:`ModbusServerContext` *is* a :class:`modbus_core.ServerContext`,
:class:`ModbusDeviceContext` holds a :class:`modbus_core.Device`
(``.device``), and :meth:`ModbusDeviceIdentification.to_identity` gives a
:class:`modbus_core.DeviceIdentity`.  Every server of ``modbus_anyio`` and
``modbus_sync`` accepts them.

Addresses, as pymodbus 3.16.1 does them (checked against it in the tests):

* ``ModbusSequentialDataBlock(address, values)`` is read with pymodbus'
  historical offset of one: protocol address ``p`` reads block address
  ``p + 1``.  ``ModbusSequentialDataBlock(1, [10, 11])`` answers 10 at
  protocol address 0 and 11 at 1.  (pymodbus 3.16 refuses address 0;
  earlier versions accepted it, and its first value is then unreachable:
  so it is here.)
* ``ModbusSparseDataBlock({address: value})`` has no offset in pymodbus
  3.16: protocol address ``p`` reads key ``p``.
* Bits (coils, discrete inputs) are exactly the values given: pymodbus 3.16
  stores them in 16-bit registers and also answers the padding up to the
  next multiple of 16 with zeros, where these answer exception 02.
* ``getValues``/``setValues`` of :class:`ModbusDeviceContext` (pymodbus 2.x
  and 3.x before the simulator rewrite) take protocol addresses.

Like pymodbus, a context built from a mapping that holds device id 0
answers every unknown device id with that device.

This module imports neither anyio nor asyncio.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping, Sequence

from modbus_core import AsyncDevice, Device, DeviceIdentity, LocalProtocolError, ServerContext, TableKind

__all__ = [
    "FramerType",
    "ModbusDeviceContext",
    "ModbusDeviceIdentification",
    "ModbusSequentialDataBlock",
    "ModbusServerContext",
    "ModbusSparseDataBlock",
]


class FramerType(enum.StrEnum):
    """The framings, by pymodbus' names (and values: ``"rtu"`` works too)."""

    ASCII = "ascii"
    RTU = "rtu"
    SOCKET = "socket"
    TLS = "tls"


_Scalar = int | bool


def _as_list(values: _Scalar | Iterable[_Scalar]) -> list[int]:
    if isinstance(values, int):  # bool is an int
        return [int(values)]
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise LocalProtocolError(f"values must be an integer or a list of integers, got {values!r}")
    result = []
    for value in values:
        if not isinstance(value, int):
            raise LocalProtocolError(f"values must be integers or booleans, got {value!r}")
        result.append(int(value))
    return result


class ModbusSequentialDataBlock:
    """Values at consecutive addresses from *address* (see the module doc for the offset of one)."""

    def __init__(self, address: int, values: _Scalar | Iterable[_Scalar]) -> None:
        if not isinstance(address, int) or not 0 <= address <= 0xFFFF:
            raise LocalProtocolError(f"address must be 0..65535, got {address!r}")
        self.address = address
        self.values = _as_list(values)
        if address + len(self.values) > 0x10000:
            raise LocalProtocolError("the block runs past address 65535")

    def __repr__(self) -> str:
        return f"ModbusSequentialDataBlock({self.address}, <{len(self.values)} values>)"

    @classmethod
    def create(cls) -> ModbusSequentialDataBlock:
        """A block of 65536 zeros (protocol addresses 0..65534)."""
        return cls(0x00, [0] * 0x10000)

    def protocol_values(self) -> dict[int, int]:
        """Protocol address -> value, as a server reads this block."""
        start = self.address - 1
        return {start + index: value for index, value in enumerate(self.values) if start + index >= 0}


class ModbusSparseDataBlock:
    """Values at the given addresses only: a mapping, or a list (addresses 0, 1, ...)."""

    def __init__(self, values: Mapping[int, _Scalar] | Iterable[_Scalar] | None = None, mutable: bool = True) -> None:
        self.mutable = mutable
        if values is None:
            values = {}
        items = dict(values) if isinstance(values, Mapping) else dict(enumerate(_as_list(values)))
        self.values: dict[int, int] = {}
        for address, value in items.items():
            if not isinstance(address, int) or not 0 <= address <= 0xFFFF:
                raise LocalProtocolError(f"addresses must be 0..65535, got {address!r}")
            if not isinstance(value, int):
                raise LocalProtocolError(f"values must be integers or booleans, got {value!r}")
            self.values[address] = int(value)

    def __repr__(self) -> str:
        return f"ModbusSparseDataBlock(<{len(self.values)} values>)"

    def protocol_values(self) -> dict[int, int]:
        """Protocol address -> value, as a server reads this block."""
        return dict(self.values)


DataBlock = ModbusSequentialDataBlock | ModbusSparseDataBlock

# pymodbus maps function codes to tables this way in getValues/setValues.
_FUNCTION_TABLES = {
    **dict.fromkeys((1, 5, 15), TableKind.COILS),
    2: TableKind.DISCRETE_INPUTS,
    **dict.fromkeys((3, 6, 16, 22, 23), TableKind.HOLDING_REGISTERS),
    4: TableKind.INPUT_REGISTERS,
}


class ModbusDeviceContext:
    """One device's four tables, from data blocks (``di``, ``co``, ``hr``, ``ir``).

    A table without a block holds one zero at protocol address 0, as in
    pymodbus.  :attr:`device` is the :class:`modbus_core.Device` the
    servers use.
    """

    def __init__(
        self,
        *_args: object,
        di: DataBlock | None = None,
        co: DataBlock | None = None,
        ir: DataBlock | None = None,
        hr: DataBlock | None = None,
    ) -> None:
        def spec(block: DataBlock | None, bits: bool) -> dict[int, int] | dict[int, bool]:
            if block is None:
                block = ModbusSequentialDataBlock(1, 0)
            if not isinstance(block, ModbusSequentialDataBlock | ModbusSparseDataBlock):
                raise LocalProtocolError(f"expected a data block, got {type(block).__name__}")
            values = block.protocol_values()
            if bits:
                return {address: bool(value) for address, value in values.items()}
            for value in values.values():
                if not 0 <= value <= 0xFFFF:
                    raise LocalProtocolError(f"register values are 0..65535, got {value}")
            return values

        self.device = Device(
            coils=spec(co, True),  # type: ignore[arg-type]
            discrete_inputs=spec(di, True),  # type: ignore[arg-type]
            holding_registers=spec(hr, False),
            input_registers=spec(ir, False),
        )

    def __repr__(self) -> str:
        return f"ModbusDeviceContext({self.device!r})"

    def _table(self, func_code: int) -> object:
        kind = _FUNCTION_TABLES.get(func_code)
        if kind is None:
            raise LocalProtocolError(f"function code {func_code} addresses no table")
        return self.device.tables[kind]

    def validate(self, func_code: int, address: int, count: int = 1) -> bool:
        """Whether protocol addresses ``address..address+count-1`` exist in the table of *func_code*."""
        return bool(self._table(func_code).covers(address, count))  # type: ignore[attr-defined]

    def getValues(self, func_code: int, address: int, count: int = 1) -> list[int] | list[bool]:
        """The values at protocol addresses ``address..address+count-1`` (pymodbus 2.x/3.x API)."""
        return list(self._table(func_code).read(address, count))  # type: ignore[attr-defined]

    def setValues(self, func_code: int, address: int, values: Sequence[int] | Sequence[bool]) -> None:
        """Write *values* from protocol address *address* on (read-only ranges included)."""
        if isinstance(values, int):
            values = [values]
        self._table(func_code).write(address, list(values), force=True)  # type: ignore[attr-defined]


class ModbusServerContext(ServerContext):
    """Device contexts by device id, as a :class:`modbus_core.ServerContext`.

    ``ModbusServerContext(devices=ctx)`` (one device) answers every device
    id; ``ModbusServerContext(devices={1: a, 2: b})`` answers those ids, and
    also every other id when the mapping holds id 0.  *single* is accepted
    and ignored, as in pymodbus 3.16.
    """

    __slots__ = ("_contexts", "_fallback")

    def __init__(
        self,
        devices: ModbusDeviceContext | Mapping[int, ModbusDeviceContext] | None = None,
        single: bool = True,
    ) -> None:
        del single
        if not devices:
            raise TypeError("devices= cannot be None")
        self._fallback: Device | None = None
        if isinstance(devices, ModbusDeviceContext):
            self._contexts: dict[int, ModbusDeviceContext] = {0: devices}
            super().__init__(devices.device)
            return
        if not isinstance(devices, Mapping):
            raise TypeError(f"devices= must be a ModbusDeviceContext or a dict of them, got {type(devices).__name__}")
        for context in devices.values():
            if not isinstance(context, ModbusDeviceContext):
                raise TypeError(f"expected ModbusDeviceContext values, got {type(context).__name__}")
        self._contexts = dict(devices)
        super().__init__({unit: context.device for unit, context in devices.items()})
        if 0 in self._contexts:
            self._fallback = self._contexts[0].device

    def get(self, unit: int) -> Device | AsyncDevice | None:
        device = super().get(unit)
        return self._fallback if device is None else device

    def __contains__(self, unit: object) -> bool:
        return self._fallback is not None or super().__contains__(unit)

    def __getitem__(self, unit: int) -> ModbusDeviceContext:  # type: ignore[override]
        """The :class:`ModbusDeviceContext` of *unit* (for ``getValues``/``setValues``)."""
        if self.single:
            return self._contexts[0]
        context = self._contexts.get(unit)
        if context is None:
            context = self._contexts.get(0)
        if context is None:
            raise KeyError(unit)
        return context

    def device_ids(self) -> list[int]:
        """The configured device ids (pymodbus' name)."""
        return list(self._contexts)


_OBJECT_NAMES = (
    "VendorName",
    "ProductCode",
    "MajorMinorRevision",
    "VendorUrl",
    "ProductName",
    "ModelName",
    "UserApplicationName",
)


class ModbusDeviceIdentification:
    """Device identification objects (function 43/14), by id or by pymodbus' names.

    ``ModbusDeviceIdentification(info_name={"VendorName": "ACME", "ProductCode": "PM"})``;
    ids 0x00-0x06 and 0x80-0xFF may also be given in *info*.  Servers
    accept it where they accept a :class:`modbus_core.DeviceIdentity`.
    """

    def __init__(
        self, info: Mapping[int, str | bytes] | None = None, info_name: Mapping[str, str | bytes] | None = None
    ) -> None:
        self._objects: dict[int, str | bytes] = dict.fromkeys(range(7), "")
        for name, value in (info_name or {}).items():
            if name not in _OBJECT_NAMES:
                expected = ", ".join(_OBJECT_NAMES)
                raise LocalProtocolError(f"unknown identification name {name!r}; expected one of {expected}")
            self._objects[_OBJECT_NAMES.index(name)] = value
        for object_id, value in (info or {}).items():
            self[object_id] = value

    def __repr__(self) -> str:
        return f"ModbusDeviceIdentification({self.summary()!r})"

    def __iter__(self) -> Iterator[tuple[int, str | bytes]]:
        return iter(self._objects.items())

    def __getitem__(self, object_id: int) -> str | bytes:
        return self._objects.get(object_id, "")

    def __setitem__(self, object_id: int, value: str | bytes) -> None:
        if not (0x00 <= object_id <= 0x06 or 0x80 <= object_id <= 0xFF):
            raise LocalProtocolError(f"identification object ids are 0x00-0x06 and 0x80-0xFF, got {object_id:#x}")
        self._objects[object_id] = value

    def update(self, value: ModbusDeviceIdentification | Mapping[int, str | bytes]) -> None:
        """Copy objects from another identification or a mapping."""
        for object_id, item in value if isinstance(value, ModbusDeviceIdentification) else value.items():
            self[object_id] = item

    def summary(self) -> dict[str, str | bytes]:
        """The basic and regular objects by name."""
        return {name: self._objects[index] for index, name in enumerate(_OBJECT_NAMES)}

    def to_identity(self) -> DeviceIdentity:
        """The equivalent :class:`modbus_core.DeviceIdentity`."""
        objects = self._objects
        return DeviceIdentity(
            objects[0],
            objects[1],
            objects[2],
            vendor_url=objects[3],
            product_name=objects[4],
            model_name=objects[5],
            user_application_name=objects[6],
            extended={object_id: value for object_id, value in objects.items() if object_id >= 0x80},
        )


def as_identity(identity: DeviceIdentity | ModbusDeviceIdentification | None) -> DeviceIdentity | None:
    """A :class:`DeviceIdentity` from either kind of identity (for servers)."""
    if identity is None or isinstance(identity, DeviceIdentity):
        return identity
    if isinstance(identity, ModbusDeviceIdentification):
        return identity.to_identity()
    raise TypeError(f"identity must be a DeviceIdentity or ModbusDeviceIdentification, got {type(identity).__name__}")
