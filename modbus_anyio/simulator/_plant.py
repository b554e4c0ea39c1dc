"""The plant: ``modbus_core`` devices built from a configuration, with names.

A :class:`Plant` holds one :class:`SimDevice` per configured device.  Each
wraps a real :class:`modbus_core.Device` (the servers read and write it
directly, so Modbus traffic pays nothing for the simulator's bookkeeping)
and knows its named values, :class:`Point`, which read and write typed,
scaled values.  Observers on the tables count changes (the web page and
the state file use them) and run the actions triggered by writes.

Devices of pymodbus simulator files keep pymodbus' memory model: one array
of registers behind all four tables (:class:`MemoryDevice`).
"""

from __future__ import annotations

import bisect
import decimal
import functools
import logging
import math
import struct
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from modbus_core import (
    BitTable,
    Change,
    Device,
    ExceptionCode,
    ModbusExceptionError,
    RegisterTable,
    ServerContext,
    Subscription,
    TableKind,
    from_registers,
    to_registers,
)

from ._config import BIT_TABLES, DeviceSpec, MemoryLayout, RegisterSpec, SimulatorConfig, check_value, raw_number

__all__ = ["MemoryDevice", "Plant", "Point", "SimDevice"]

logger = logging.getLogger(__name__)

ReadHook = Callable[[], None]


def _overlaps(first: int, count: int, start: int, end: int) -> bool:
    return first < end and start < first + count


class _ReadHooks:
    """Actions that run before a Modbus read touches their value (trigger "read")."""

    __slots__ = ("_hooks",)

    def __init__(self) -> None:
        self._hooks: dict[TableKind, list[tuple[int, int, ReadHook]]] = {}

    def add(self, kind: TableKind, start: int, end: int, hook: ReadHook) -> None:
        self._hooks.setdefault(kind, []).append((start, end, hook))

    def __bool__(self) -> bool:
        return bool(self._hooks)

    def run(self, kind: TableKind, address: int, count: int) -> None:
        for start, end, hook in self._hooks.get(kind, ()):
            if _overlaps(address, count, start, end):
                hook()


class HookedDevice(Device):
    """A :class:`Device` that runs read-triggered actions before reads."""

    __slots__ = ("read_hooks",)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.read_hooks = _ReadHooks()

    def read_coils(self, address: int, count: int) -> Sequence[bool]:
        self.read_hooks.run(TableKind.COILS, address, count)
        return self.coils.read(address, count)

    def read_discrete_inputs(self, address: int, count: int) -> Sequence[bool]:
        self.read_hooks.run(TableKind.DISCRETE_INPUTS, address, count)
        return self.discrete_inputs.read(address, count)

    def read_holding_registers(self, address: int, count: int) -> Sequence[int]:
        self.read_hooks.run(TableKind.HOLDING_REGISTERS, address, count)
        return self.holding_registers.read(address, count)

    def read_input_registers(self, address: int, count: int) -> Sequence[int]:
        self.read_hooks.run(TableKind.INPUT_REGISTERS, address, count)
        return self.input_registers.read(address, count)

    def read_write_registers(
        self, read_address: int, read_count: int, write_address: int, values: Sequence[int]
    ) -> Sequence[int]:
        self.read_hooks.run(TableKind.HOLDING_REGISTERS, read_address, read_count)
        return super().read_write_registers(read_address, read_count, write_address, values)


def _illegal(kind: TableKind, address: int, count: int) -> ModbusExceptionError:
    return ModbusExceptionError(
        ExceptionCode.ILLEGAL_DATA_ADDRESS, f"{kind.value} {address}..{address + count - 1} are not all present"
    )


class MemoryDevice(Device):
    """pymodbus' simulator memory: one register array seen by all four tables.

    Registers of table *t* are ``memory[offset_t + a]``; coil or discrete
    input *a* is bit ``a % 16`` of ``memory[offset_t + a // 16]``.  Only
    the configured ranges exist; writes outside the writable ranges
    answer exception 02, as pymodbus does.
    """

    __slots__ = ("_value_ends", "_value_starts", "layout", "memory", "read_hooks")

    def __init__(self, layout: MemoryLayout, **options: Any) -> None:
        super().__init__(**options)
        self.layout = layout
        self.memory = RegisterTable(TableKind.HOLDING_REGISTERS)
        self.memory.lock = self.lock
        for first, count in layout.valid:
            self.memory.add(first, array("H", bytes(2 * count)))
        for first, values in layout.initial:
            self.memory.write(first, values, force=True)
        writable = sorted(layout.writable)
        cursor = 0
        for first, count in [*writable, (layout.size, 0)]:
            if first > cursor:
                self.memory.set_read_only(cursor, first - cursor)
            cursor = max(cursor, first + count)
        self.read_hooks = _ReadHooks()
        self._value_starts = [first for first, _ in layout.values]
        self._value_ends = {first + count for first, count in layout.values}

    # -- region access (no read hooks, no alignment rules) ------------------

    def _region(self, kind: TableKind) -> tuple[int, int]:
        return self.layout.regions[kind]

    def region_read(self, kind: TableKind, address: int, count: int) -> tuple[int, ...] | tuple[bool, ...]:
        offset, size = self._region(kind)
        if kind in BIT_TABLES:
            first_word, last_word = address // 16, (address + count - 1) // 16
            if address < 0 or last_word >= size:
                raise _illegal(kind, address, count)
            words = self.memory.read(offset + first_word, last_word - first_word + 1)
            return tuple(
                bool(words[(bit // 16) - first_word] >> (bit % 16) & 1) for bit in range(address, address + count)
            )
        if address < 0 or address + count > size:
            raise _illegal(kind, address, count)
        return self.memory.read(offset + address, count)

    def region_write(self, kind: TableKind, address: int, values: Sequence[Any], *, force: bool) -> None:
        offset, size = self._region(kind)
        count = len(values)
        with self.lock:
            if kind in BIT_TABLES:
                first_word, last_word = address // 16, (address + count - 1) // 16
                if address < 0 or last_word >= size:
                    raise _illegal(kind, address, count)
                words = list(self.memory.read(offset + first_word, last_word - first_word + 1))
                if not force and self.memory.is_read_only(offset + first_word, len(words)):
                    raise _illegal(kind, address, count)
                for bit, value in zip(range(address, address + count), values, strict=True):
                    index, mask = bit // 16 - first_word, 1 << (bit % 16)
                    words[index] = words[index] | mask if value else words[index] & ~mask
                self.memory.write(offset + first_word, words, force=True)
                return
            if address < 0 or address + count > size:
                raise _illegal(kind, address, count)
            self.memory.write(offset + address, values, force=force)

    def _check_alignment(self, kind: TableKind, address: int, count: int) -> None:
        if not self.layout.type_exception or kind in BIT_TABLES:
            return
        offset, _ = self._region(kind)
        first, end = offset + address, offset + address + count
        index = bisect.bisect_left(self._value_starts, first)
        if index >= len(self._value_starts) or self._value_starts[index] != first or end not in self._value_ends:
            raise _illegal(kind, address, count)

    def _modbus_read(self, kind: TableKind, address: int, count: int) -> Sequence[Any]:
        offset, _ = self._region(kind)
        if kind in BIT_TABLES:
            self.read_hooks.run(TableKind.HOLDING_REGISTERS, offset + address // 16, (count + 15) // 16 + 1)
        else:
            self._check_alignment(kind, address, count)
            self.read_hooks.run(TableKind.HOLDING_REGISTERS, offset + address, count)
        return self.region_read(kind, address, count)

    # -- the operations the dispatcher calls ------------------------------

    def read_coils(self, address: int, count: int) -> Sequence[bool]:
        return self._modbus_read(TableKind.COILS, address, count)

    def read_discrete_inputs(self, address: int, count: int) -> Sequence[bool]:
        return self._modbus_read(TableKind.DISCRETE_INPUTS, address, count)

    def read_holding_registers(self, address: int, count: int) -> Sequence[int]:
        return self._modbus_read(TableKind.HOLDING_REGISTERS, address, count)

    def read_input_registers(self, address: int, count: int) -> Sequence[int]:
        return self._modbus_read(TableKind.INPUT_REGISTERS, address, count)

    def write_coils(self, address: int, values: Sequence[bool]) -> None:
        self.region_write(TableKind.COILS, address, values, force=False)

    def write_registers(self, address: int, values: Sequence[int]) -> None:
        self._check_alignment(TableKind.HOLDING_REGISTERS, address, len(values))
        self.region_write(TableKind.HOLDING_REGISTERS, address, values, force=False)

    def mask_write_register(self, address: int, and_mask: int, or_mask: int) -> None:
        with self.lock:
            (current,) = self.region_read(TableKind.HOLDING_REGISTERS, address, 1)
            value = (int(current) & and_mask) | (or_mask & ~and_mask & 0xFFFF)
            self.region_write(TableKind.HOLDING_REGISTERS, address, (value,), force=False)

    def read_write_registers(
        self, read_address: int, read_count: int, write_address: int, values: Sequence[int]
    ) -> Sequence[int]:
        with self.lock:
            offset, size = self._region(TableKind.HOLDING_REGISTERS)
            if read_address + read_count > size or not self.memory.covers(offset + read_address, read_count):
                raise _illegal(TableKind.HOLDING_REGISTERS, read_address, read_count)
            self.write_registers(write_address, values)
            return self._modbus_read(TableKind.HOLDING_REGISTERS, read_address, read_count)


class Point:
    """A named value of a device: read and write it typed and scaled.

    ``point.value`` is what a user sees (raw number times scale, a string,
    a bool, a tuple of bools); ``point.raw()`` the registers or bit.
    """

    __slots__ = ("_address", "_codec", "_table", "device", "id", "spec")

    def __init__(self, device: SimDevice, spec: RegisterSpec, table: RegisterTable | BitTable, address: int) -> None:
        self.device = device
        self.spec = spec
        self.id = f"{device.name}/{spec.name}"
        self._table = table
        self._address = address
        self._codec = _codec(spec)

    def __repr__(self) -> str:
        return f"<Point {self.id} {self.spec.table.value} {self.spec.address} {self.spec.type}>"

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def storage(self) -> tuple[RegisterTable | BitTable, int, int]:
        """(table, first address, count) where the value is stored."""
        return self._table, self._address, self.spec.count

    def raw(self) -> tuple[int, ...] | tuple[bool, ...]:
        """The registers (or the one bit) holding the value."""
        return self._table.read(self._address, self.spec.count)

    def decode(self, raw: Sequence[Any]) -> Any:
        """The user's value of *raw* registers.

        Scaled values are rounded to the scale's decimals (2301 x 0.1 is
        230.1, not 230.10000000000002) and float32 values to the 7 digits a
        float32 holds (8.3, not 8.300000190734863); :meth:`raw` is exact.
        """
        spec = self.spec
        if spec.type == "bool":
            return bool(raw[0])
        codec = self._codec
        if codec is not None:
            value = codec.unpack(_to_bytes(raw, codec))[0]
            if spec.scale != 1:
                return round(value * spec.scale, _decimals(spec.scale))
            if spec.type == "float32" and math.isfinite(value):
                return float(f"{value:.7g}")
            return value
        return from_registers(raw, spec.type, byte_order=spec.byte_order, word_order=spec.word_order)

    @property
    def value(self) -> Any:
        return self.decode(self.raw())

    def encode(self, value: Any) -> tuple[int, ...] | tuple[bool, ...]:
        """The registers for *value* (ValueError or LocalProtocolError when it does not fit)."""
        return encode_value(self.spec, value)

    def set(self, value: Any, *, force: bool = True) -> None:
        """Write *value*; read-only values accept it unless *force* is false."""
        self._table.write(self._address, self.encode(value), force=force)


def encode_value(spec: RegisterSpec, value: Any) -> tuple[int, ...] | tuple[bool, ...]:
    """The registers (or the bit) for *value* of *spec*; ValueError or LocalProtocolError when it does not fit."""
    codec = _codec(spec)
    if codec is not None:
        # Numbers, the common case (actions write them every second): one struct.pack.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected a number, got {value!r}")
        try:
            return _from_bytes(codec.pack(raw_number(value, spec)), codec)
        except (struct.error, OverflowError):
            raise ValueError(f"{value!r} does not fit in {spec.type}") from None
    checked = check_value(value, spec)
    if spec.type == "bool":
        return (checked,)
    if spec.type in ("string", "bits"):
        return to_registers(
            checked, spec.type, length=spec.length, byte_order=spec.byte_order, word_order=spec.word_order
        )
    return to_registers(raw_number(checked, spec), spec.type, byte_order=spec.byte_order, word_order=spec.word_order)


class _Codec(struct.Struct):
    """A number type's struct, with the register orders (see :func:`_codec`)."""

    swap_bytes: bool
    reverse_words: bool
    words: struct.Struct


_FORMATS = {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "int64": "q", "uint64": "Q"}
_FORMATS.update({"float32": "f", "float64": "d"})


def _codec(spec: RegisterSpec) -> _Codec | None:
    return _shared_codec(spec.type, spec.byte_order, spec.word_order)


@functools.cache
def _shared_codec(value_type: str, byte_order: str, word_order: str) -> _Codec | None:
    """One codec per type and orders (they never change once made)."""
    code = _FORMATS.get(value_type)
    if code is None:
        return None
    codec = _Codec(">" + code)
    codec.swap_bytes = byte_order == "little"
    codec.reverse_words = word_order == "little"
    codec.words = struct.Struct(f">{codec.size // 2}H")
    return codec


def _from_bytes(data: bytes, codec: _Codec) -> tuple[int, ...]:
    words = codec.words.unpack(data)
    if codec.swap_bytes:
        words = tuple(((word & 0xFF) << 8) | (word >> 8) for word in words)
    if codec.reverse_words:
        words = words[::-1]
    return words


def _to_bytes(raw: Sequence[Any], codec: _Codec) -> bytes:
    words = tuple(raw)
    if codec.reverse_words:
        words = words[::-1]
    if codec.swap_bytes:
        words = tuple(((word & 0xFF) << 8) | (word >> 8) for word in words)
    return codec.words.pack(*words)


@functools.cache
def _decimals(scale: float) -> int:
    """The decimals of a scale: 0.1 -> 1, 0.025 -> 3, 10 -> 0."""
    exponent = decimal.Decimal(repr(scale)).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


class SimDevice:
    """One configured device: the ``modbus_core`` device, its points, counters."""

    __slots__ = (
        "_subscription",
        "by_name",
        "counters",
        "device",
        "name",
        "plant",
        "points",
        "spec",
    )

    def __init__(self, plant: Plant, spec: DeviceSpec, device: Device) -> None:
        self.plant = plant
        self.spec = spec
        self.name = spec.name
        self.device = device
        self.points: list[Point] = []
        self.by_name: dict[str, Point] = {}
        # requests, exceptions, reads, writes: counted by the request handler.
        self.counters = {"requests": 0, "exceptions": 0, "no_answer": 0, "faults": 0}
        self._subscription: Subscription | None = None

    def __repr__(self) -> str:
        return f"<SimDevice {self.name} unit={self.unit_text}>"

    @property
    def unit(self) -> int | None:
        return self.spec.unit

    @property
    def unit_text(self) -> str:
        return "any" if self.spec.unit is None else str(self.spec.unit)

    def point(self, name: str) -> Point:
        """The point called *name* (KeyError when there is none)."""
        return self.by_name[name]

    # -- raw table access, for the REST API ---------------------------------

    def storage_tables(self) -> dict[str, RegisterTable | BitTable]:
        """The tables that hold the device's values, by name (for state files)."""
        if isinstance(self.device, MemoryDevice):
            return {"memory": self.device.memory}
        return {kind.value: table for kind, table in self.device.tables.items()}

    def table_ranges(self, kind: TableKind) -> list[tuple[int, int]]:
        """The present ``(first, count)`` ranges of a table, as clients address it."""
        device = self.device
        if isinstance(device, MemoryDevice):
            offset, size = device.layout.regions[kind]
            ranges = []
            for first, count in device.memory.ranges():
                start, end = max(first, offset), min(first + count, offset + size)
                if start < end:
                    scale = 16 if kind in BIT_TABLES else 1
                    ranges.append(((start - offset) * scale, (end - start) * scale))
            return ranges
        return device.tables[kind].ranges()

    def read(self, kind: TableKind, address: int, count: int) -> tuple[int, ...] | tuple[bool, ...]:
        """Raw values as a client would read them (no actions run); ModbusExceptionError 02 when missing."""
        if isinstance(self.device, MemoryDevice):
            return self.device.region_read(kind, address, count)
        return self.device.tables[kind].read(address, count)

    def write(self, kind: TableKind, address: int, values: Sequence[Any]) -> None:
        """Write raw values, read-only ones included; ModbusExceptionError 02 when missing."""
        if isinstance(self.device, MemoryDevice):
            self.device.region_write(kind, address, values, force=True)
        else:
            self.device.tables[kind].write(address, values, force=True)

    # -- initial values ---------------------------------------------------

    def reset(self) -> None:
        """Put back every initial value (fill values, then the points' values)."""
        device = self.device
        with device.lock:
            if isinstance(device, MemoryDevice):
                for first, values in device.layout.initial:
                    device.memory.write(first, values, force=True)
                return
            for kind, blocks in self.spec.tables.items():
                table = device.tables[kind]
                holes = sorted(
                    (first, first + count) for hole_kind, first, count in self.spec.invalid if hole_kind is kind
                )
                for block in blocks:
                    for start, end in _subtract(block.start, block.start + block.size, holes):
                        fill = bool(block.fill) if kind in BIT_TABLES else block.fill
                        table.write(start, [fill] * (end - start), force=True)
            for point in self.points:
                table, address, _ = point.storage
                table.write(address, self.plant.initial_raw(point), force=True)


class Plant:
    """Every simulated device, by name, with the server contexts that expose them."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.devices: list[SimDevice] = []
        self.by_name: dict[str, SimDevice] = {}
        self._change_listeners: list[Callable[[SimDevice, Change], object]] = []
        # Caches keyed by the ids of the config's specs, which live as long as the config:
        # encoded initial values, and initial table contents per device body.
        self._initial: dict[int, tuple[int, ...] | tuple[bool, ...]] = {}
        self._images: dict[tuple[int, int, int], dict[TableKind, list[tuple[int, Any]]]] = {}
        for spec in config.devices:
            sim = self._build(spec)
            self.devices.append(sim)
            self.by_name[sim.name] = sim

    def __iter__(self) -> Iterator[SimDevice]:
        return iter(self.devices)

    def __len__(self) -> int:
        return len(self.devices)

    def device(self, name: str) -> SimDevice:
        """The device called *name* (KeyError when there is none)."""
        return self.by_name[name]

    def point(self, point_id: str) -> Point:
        """The point ``"device/name"`` (KeyError when there is none)."""
        device_name, _, name = point_id.partition("/")
        return self.by_name[device_name].by_name[name]

    def points(self) -> Iterator[Point]:
        for sim in self.devices:
            yield from sim.points

    def context_for(self, server: str) -> ServerContext:
        """The :class:`ServerContext` of the devices *server* exposes."""
        members = [sim for sim in self.devices if server in sim.spec.servers]
        if len(members) == 1 and members[0].unit is None:
            return ServerContext(members[0].device)
        return ServerContext({sim.unit: sim.device for sim in members if sim.unit is not None})

    def units_of(self, server: str) -> dict[int | None, SimDevice]:
        """Unit id (None for "any") -> device, for one server."""
        return {sim.unit: sim for sim in self.devices if server in sim.spec.servers}

    def initial_raw(self, point: Point) -> tuple[int, ...] | tuple[bool, ...]:
        """The registers of *point*'s initial value (encoded once for all the copies of a repeated device)."""
        return self._initial_of(point.spec)

    def _initial_of(self, spec: RegisterSpec) -> tuple[int, ...] | tuple[bool, ...]:
        key = id(spec)
        raw = self._initial.get(key)
        if raw is None:
            raw = self._initial[key] = encode_value(spec, spec.value)
        return raw

    def add_change_listener(self, listener: Callable[[SimDevice, Change], object]) -> Callable[[], None]:
        """Call ``listener(device, change)`` after every write to any device; returns a remover.

        The tables are observed only while someone listens (the state file):
        without listeners, Modbus writes pay nothing for the simulator.
        """
        if not self._change_listeners:
            for sim in self.devices:
                sim._subscription = self._observe(sim)
        self._change_listeners.append(listener)

        def remove() -> None:
            if listener in self._change_listeners:
                self._change_listeners.remove(listener)
                if not self._change_listeners:
                    for sim in self.devices:
                        if sim._subscription is not None:
                            sim._subscription.cancel()
                            sim._subscription = None

        return remove

    # -- building ------------------------------------------------------------

    def _build(self, spec: DeviceSpec) -> SimDevice:
        needs_hooks = any(p.action is not None and p.action.trigger == "read" for p in spec.registers)
        options: dict[str, Any] = {"identity": spec.identity, "exception_status": spec.exception_status}
        device: Device
        if spec.layout is not None:
            device = MemoryDevice(spec.layout, **options)
        else:
            for kind, blocks in self._image(spec).items():
                table: RegisterTable | BitTable = BitTable(kind) if kind in BIT_TABLES else RegisterTable(kind)
                for start, values in blocks:
                    table.add(start, values[:])  # a copy: each device owns its values
                options[kind.value] = table
            device = HookedDevice(**options) if needs_hooks else Device(**options)
        sim = SimDevice(self, spec, device)
        for register in spec.registers:
            if isinstance(device, MemoryDevice):
                offset, _ = spec.layout.regions[register.table] if spec.layout else (0, 0)
                point = Point(sim, register, device.memory, offset + register.address)
            else:
                point = Point(sim, register, device.tables[register.table], register.address)
            sim.points.append(point)
            sim.by_name[register.name] = point
            if register.read_only and not isinstance(device, MemoryDevice):
                device.tables[register.table].set_read_only(register.address, register.count)
        return sim

    def _image(self, spec: DeviceSpec) -> dict[TableKind, list[tuple[int, Any]]]:
        """The initial contents of a device's tables (fill values, then the registers' initial values),
        as ``(start, array or list)`` blocks: built once for all the copies of a repeated device."""
        key = (id(spec.tables), id(spec.registers), id(spec.invalid))
        image = self._images.get(key)
        if image is None:
            tables = {kind: self._table(kind, spec) for kind in TableKind}
            for register in spec.registers:
                tables[register.table].write(register.address, self._initial_of(register), force=True)
            image = {}
            for kind, table in tables.items():
                image[kind] = [
                    (start, list(values) if kind in BIT_TABLES else array("H", values))
                    for start, count in table.ranges()
                    for values in (table.read(start, count),)
                ]
            self._images[key] = image
        return image

    @staticmethod
    def _table(kind: TableKind, spec: DeviceSpec) -> RegisterTable | BitTable:
        table: RegisterTable | BitTable = BitTable(kind) if kind in BIT_TABLES else RegisterTable(kind)
        holes = sorted((first, first + count) for table_kind, first, count in spec.invalid if table_kind is kind)
        for block in spec.tables.get(kind, ()):
            for start, end in _subtract(block.start, block.start + block.size, holes):
                if kind in BIT_TABLES:
                    table.add(start, [bool(block.fill)] * (end - start))
                elif block.fill:
                    table.add(start, array("H", [block.fill]) * (end - start))
                else:
                    table.add(start, array("H", bytes(2 * (end - start))))
        return table

    def _observe(self, sim: SimDevice) -> Subscription:
        def changed(change: Change) -> None:
            for listener in self._change_listeners:
                listener(sim, change)

        if isinstance(sim.device, MemoryDevice):
            return sim.device.memory.subscribe(changed)
        return sim.device.subscribe(changed)


def _subtract(start: int, end: int, holes: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """``[start, end)`` without the *holes* (sorted half-open ranges)."""
    pieces = []
    cursor = start
    for hole_start, hole_end in holes:
        if hole_end <= cursor or hole_start >= end:
            continue
        if hole_start > cursor:
            pieces.append((cursor, hole_start))
        cursor = max(cursor, hole_end)
    if cursor < end:
        pieces.append((cursor, end))
    return pieces


def json_value(value: Any) -> Any:
    """A point value as JSON: tuples of bits become lists; NaN and infinities become strings."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float) and value != value:
        return "NaN"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return value
