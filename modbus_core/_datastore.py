"""The datastore: tables of coils and registers, devices, the server context.

Addresses are the 0-based addresses on the wire everywhere in this module:
``RegisterTable.zeros(10)`` holds addresses 0..9, and a client reading
holding register 0 reads ``table[0]``.  There is no hidden +1.

A table is a set of contiguous blocks; addresses outside every block are
missing and answered with exception 02.  Registers are stored in
``array('H')`` and bits in lists of booleans, so that a read is one slice.

Locking: each :class:`Device` owns one re-entrant lock, shared by its
tables.  Every table method and every device operation holds it, so that a
Modbus write is all-or-none and atomic even when the synchronous server
serves several connections from threads while application code changes
values.  Hold ``device.lock`` yourself to make several changes atomic.
"""

from __future__ import annotations

import bisect
import dataclasses
import enum
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Generic, TypeAlias, TypeVar

from ._errors import LocalProtocolError, ModbusExceptionError
from ._identity import DeviceIdentity
from ._pdu import ExceptionCode, FileRecord, FileRecordReference
from ._values import DataType, Order, Value, from_registers, register_count, to_registers

__all__ = [
    "BitTable",
    "Change",
    "Device",
    "RegisterTable",
    "ServerContext",
    "Subscription",
    "TableKind",
]

_V = TypeVar("_V", bool, int)


class TableKind(enum.StrEnum):
    """The four tables of a Modbus device."""

    COILS = "coils"
    DISCRETE_INPUTS = "discrete_inputs"
    HOLDING_REGISTERS = "holding_registers"
    INPUT_REGISTERS = "input_registers"


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    """Values written to a table, given to its observers after the write."""

    table: TableKind
    address: int
    values: tuple[bool, ...] | tuple[int, ...]


Observer: TypeAlias = Callable[[Change], object]


class Subscription:
    """Returned by ``subscribe``; call :meth:`cancel` to stop the calls."""

    __slots__ = ("_entry", "_observers")

    def __init__(self, observers: list[tuple[int, int, Observer]], entry: tuple[int, int, Observer]) -> None:
        self._observers = observers
        self._entry = entry

    def cancel(self) -> None:
        """Stop calling the observer (idempotent)."""
        if self._entry in self._observers:
            self._observers.remove(self._entry)


def _illegal_address(kind: TableKind, address: int, count: int) -> ModbusExceptionError:
    return ModbusExceptionError(
        ExceptionCode.ILLEGAL_DATA_ADDRESS,
        f"{kind.value} {address}..{address + count - 1} are not all present",
    )


class _Table(Generic[_V]):
    """Blocks of one table kind; see :class:`BitTable` and :class:`RegisterTable`."""

    __slots__ = ("_blocks", "_observers", "_read_only", "_starts", "kind", "lock")

    def __init__(self, kind: TableKind) -> None:
        self.kind = kind
        self._blocks: list[tuple[int, list[bool] | array[int]]] = []
        self._starts: list[int] = []
        self._read_only: list[tuple[int, int]] = []
        self._observers: list[tuple[int, int, Observer]] = []
        self.lock: threading.RLock = threading.RLock()

    # -- construction ------------------------------------------------------

    def _storage(self, values: Iterable[_V]) -> list[bool] | array[int]:
        raise NotImplementedError  # pragma: no cover

    def add(self, address: int, values: Iterable[_V]) -> None:
        """Make addresses ``address..address+len(values)-1`` present, with *values*.

        A block adjacent to an existing one joins it, so that a read may span
        both; overlapping an existing block is an error.
        """
        storage = self._storage(values)
        if not storage:
            return
        end = address + len(storage)
        if address < 0 or end > 0x10000:
            raise LocalProtocolError(f"{self.kind.value} block {address}..{end - 1} is outside 0..65535")
        with self.lock:
            for start, block in self._blocks:
                if start < end and address < start + len(block):
                    raise LocalProtocolError(f"{self.kind.value} block at {address} overlaps the one at {start}")
            blocks = sorted([*self._blocks, (address, storage)], key=lambda item: item[0])
            merged: list[tuple[int, list[bool] | array[int]]] = []
            for start, block in blocks:
                if merged and merged[-1][0] + len(merged[-1][1]) == start:
                    merged[-1][1].extend(block)  # type: ignore[arg-type]
                else:
                    merged.append((start, block))
            self._blocks = merged
            self._starts = [start for start, _ in merged]

    def set_read_only(self, address: int, count: int = 1) -> None:
        """Refuse Modbus writes to ``address..address+count-1`` (exception 02)."""
        with self.lock:
            self._read_only.append((address, address + count))

    # -- inspection --------------------------------------------------------

    def ranges(self) -> list[tuple[int, int]]:
        """The present address ranges as ``(first, count)`` pairs."""
        with self.lock:
            return [(start, len(block)) for start, block in self._blocks]

    def __len__(self) -> int:
        return sum(len(block) for _, block in self._blocks)

    def __iter__(self) -> Iterator[int]:
        """The present addresses, in order."""
        for start, block in list(self._blocks):
            yield from range(start, start + len(block))

    def __contains__(self, address: object) -> bool:
        return isinstance(address, int) and self._locate(address, 1) is not None

    def covers(self, address: int, count: int) -> bool:
        """Whether every address of ``address..address+count-1`` is present."""
        return self._locate(address, count) is not None

    def is_read_only(self, address: int, count: int = 1) -> bool:
        """Whether any address of the range refuses Modbus writes."""
        end = address + count
        return any(start < end and address < stop for start, stop in self._read_only)

    def __repr__(self) -> str:
        spans = ", ".join(f"{start}..{start + size - 1}" for start, size in self.ranges())
        return f"<{type(self).__name__} {self.kind.value} [{spans}]>"

    def _locate(self, address: int, count: int) -> tuple[list[bool] | array[int], int] | None:
        blocks = self._blocks
        if len(blocks) == 1:
            start, block = blocks[0]
        else:
            index = bisect.bisect_right(self._starts, address) - 1
            if index < 0:
                return None
            start, block = blocks[index]
        offset = address - start
        if offset < 0 or offset + count > len(block):
            return None
        return block, offset

    # -- access ------------------------------------------------------------

    def read(self, address: int, count: int) -> tuple[_V, ...]:
        """The values of ``address..address+count-1``; exception 02 if any is missing."""
        with self.lock:
            found = self._locate(address, count)
            if found is None:
                raise _illegal_address(self.kind, address, count)
            block, offset = found
            return tuple(block[offset : offset + count])  # type: ignore[arg-type]

    def __getitem__(self, address: int) -> _V:
        return self.read(address, 1)[0]

    def __setitem__(self, address: int, value: _V) -> None:
        self.write(address, (value,), force=True)

    def write(self, address: int, values: Sequence[_V], *, force: bool = False) -> None:
        """Write *values* from *address* on, all or none.

        Missing addresses raise exception 02 and change nothing.  Read-only
        ranges refuse the write too unless *force* (application code, a
        simulator action) is set.  Observers are called after the write.
        """
        storage = self._storage(values)
        count = len(storage)
        with self.lock:
            found = self._locate(address, count) if count else None
            if found is None or (not force and self._read_only and self.is_read_only(address, count)):
                raise _illegal_address(self.kind, address, count)
            block, offset = found
            block[offset : offset + count] = storage  # type: ignore[assignment]
            if self._observers:
                self._notify(address, tuple(storage))  # type: ignore[arg-type]

    def _notify(self, address: int, values: tuple[_V, ...]) -> None:
        end = address + len(values)
        change = Change(self.kind, address, values)
        for start, stop, observer in list(self._observers):
            if start < end and address < stop:
                observer(change)

    def subscribe(self, observer: Observer, address: int = 0, count: int = 0x10000) -> Subscription:
        """Call ``observer(change)`` after every write touching ``address..address+count-1``.

        The call happens in the writer's thread, with the device lock held:
        keep it short, or hand the change to a queue.  An exception it raises
        turns the Modbus answer into exception 04 (the write stays done).
        """
        entry = (address, address + count, observer)
        with self.lock:
            self._observers.append(entry)
        return Subscription(self._observers, entry)


class BitTable(_Table[bool]):
    """Coils or discrete inputs."""

    __slots__ = ()

    def _storage(self, values: Iterable[bool]) -> list[bool]:
        return [bool(value) for value in values]

    @classmethod
    def zeros(cls, size: int, kind: TableKind = TableKind.COILS, *, address: int = 0) -> BitTable:
        """*size* bits, all off, from *address* on."""
        table = cls(kind)
        table.add(address, [False] * size)
        return table


class RegisterTable(_Table[int]):
    """Holding or input registers, with typed access helpers."""

    __slots__ = ()

    def _storage(self, values: Iterable[int]) -> array[int]:
        try:
            return values if isinstance(values, array) and values.typecode == "H" else array("H", values)
        except (OverflowError, TypeError) as error:
            raise LocalProtocolError(f"register values are integers in 0..65535: {error}") from None

    @classmethod
    def zeros(cls, size: int, kind: TableKind = TableKind.HOLDING_REGISTERS, *, address: int = 0) -> RegisterTable:
        """*size* registers, all 0, from *address* on."""
        table = cls(kind)
        table.add(address, array("H", bytes(2 * size)))
        return table

    def get_value(
        self,
        address: int,
        data_type: DataType | str,
        *,
        length: int | None = None,
        byte_order: Order = "big",
        word_order: Order = "big",
    ) -> Value:
        """Read a typed value (see :func:`from_registers`)."""
        count = register_count(data_type, length)
        return from_registers(self.read(address, count), data_type, byte_order=byte_order, word_order=word_order)

    def set_value(
        self,
        address: int,
        value: Value,
        data_type: DataType | str,
        *,
        length: int | None = None,
        byte_order: Order = "big",
        word_order: Order = "big",
        force: bool = True,
    ) -> None:
        """Write a typed value (see :func:`to_registers`); read-only ranges are ignored by default."""
        registers = to_registers(value, data_type, byte_order=byte_order, word_order=word_order, length=length)
        self.write(address, registers, force=force)


TableSpec: TypeAlias = "int | Sequence[int] | Mapping[int, int] | RegisterTable | None"
BitSpec: TypeAlias = "int | Sequence[bool] | Mapping[int, bool] | BitTable | None"


def _build_table(spec: object, table_type: type[_Table[_V]], kind: TableKind) -> _Table[_V]:
    if isinstance(spec, _Table):
        if not isinstance(spec, table_type):
            raise LocalProtocolError(f"{kind.value} needs a {table_type.__name__}, got {type(spec).__name__}")
        spec.kind = kind
        return spec
    table = table_type(kind)
    if spec is None:
        return table
    if isinstance(spec, bool) or not isinstance(spec, int | Sequence | Mapping):
        raise LocalProtocolError(f"{kind.value}: expected a size, a sequence, a mapping or a table, got {spec!r}")
    if isinstance(spec, int):
        if not 0 <= spec <= 0x10000:
            raise LocalProtocolError(f"{kind.value}: size must be 0..65536, got {spec}")
        table.add(0, [0] * spec)  # type: ignore[list-item]
    elif isinstance(spec, Mapping):
        # A sparse table: consecutive addresses become one block.
        run_start: int | None = None
        run: list[_V] = []
        for address in sorted(spec):
            if run_start is not None and address == run_start + len(run):
                run.append(spec[address])
                continue
            if run_start is not None:
                table.add(run_start, run)
            run_start, run = address, [spec[address]]
        if run_start is not None:
            table.add(run_start, run)
    else:
        table.add(0, spec)
    return table


class Device:
    """One Modbus device: four tables, identification, FIFO queues, files.

    Tables accept a size (addresses 0..size-1, zeros), a sequence (values
    from address 0), a mapping of address to value (sparse: addresses not
    in it are missing), a ready table, or None (an empty table: every
    address answers exception 02).

    *fifos* maps the address of a FIFO pointer register to the queued values
    (function 24).  *files* maps a file number to its records, one 16-bit
    value per record number (functions 20 and 21), or to a record count.
    *identity* overrides the server's identity for this device.
    """

    __slots__ = (
        "coils",
        "discrete_inputs",
        "exception_status",
        "fifos",
        "files",
        "holding_registers",
        "identity",
        "input_registers",
        "lock",
    )

    def __init__(
        self,
        *,
        coils: BitSpec = None,
        discrete_inputs: BitSpec = None,
        holding_registers: TableSpec = None,
        input_registers: TableSpec = None,
        identity: DeviceIdentity | None = None,
        fifos: Mapping[int, Iterable[int]] | None = None,
        files: Mapping[int, int | Iterable[int]] | None = None,
        exception_status: int = 0,
    ) -> None:
        self.lock = threading.RLock()
        self.coils: BitTable = _build_table(coils, BitTable, TableKind.COILS)  # type: ignore[assignment]
        self.discrete_inputs: BitTable = _build_table(discrete_inputs, BitTable, TableKind.DISCRETE_INPUTS)  # type: ignore[assignment]
        self.holding_registers: RegisterTable = _build_table(
            holding_registers, RegisterTable, TableKind.HOLDING_REGISTERS
        )  # type: ignore[assignment]
        self.input_registers: RegisterTable = _build_table(input_registers, RegisterTable, TableKind.INPUT_REGISTERS)  # type: ignore[assignment]
        for table in self.tables.values():
            table.lock = self.lock
        self.identity = identity
        self.fifos: dict[int, list[int]] = {}
        for address, values in (fifos or {}).items():
            self.fifos[address] = [_register(value) for value in values]
        self.files: dict[int, array[int]] = {}
        for number, records in (files or {}).items():
            if not isinstance(number, int) or not 1 <= number <= 0xFFFF:
                raise LocalProtocolError(f"file numbers are 1..65535, got {number!r}")
            self.files[number] = array("H", bytes(2 * records)) if isinstance(records, int) else array("H", records)
        if not 0 <= exception_status <= 0xFF:
            raise LocalProtocolError("exception_status is one byte")
        self.exception_status = exception_status

    @classmethod
    def sized(cls, size: int = 10000, **options: object) -> Device:
        """A device with all four tables at addresses 0..size-1, zeroed."""
        return cls(coils=size, discrete_inputs=size, holding_registers=size, input_registers=size, **options)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        sizes = ", ".join(f"{kind.value}={len(table)}" for kind, table in self.tables.items())
        return f"<Device {sizes}>"

    @property
    def tables(self) -> dict[TableKind, BitTable | RegisterTable]:
        """The four tables by kind."""
        return {
            TableKind.COILS: self.coils,
            TableKind.DISCRETE_INPUTS: self.discrete_inputs,
            TableKind.HOLDING_REGISTERS: self.holding_registers,
            TableKind.INPUT_REGISTERS: self.input_registers,
        }

    def subscribe(self, observer: Observer, tables: Iterable[TableKind] | None = None) -> list[Subscription]:
        """Observe writes to every table (or to *tables*)."""
        kinds = list(tables) if tables is not None else list(TableKind)
        return [self.tables[TableKind(kind)].subscribe(observer) for kind in kinds]

    # -- the operations the dispatcher calls (see AsyncDevice) -------------

    def read_coils(self, address: int, count: int) -> Sequence[bool]:
        return self.coils.read(address, count)

    def read_discrete_inputs(self, address: int, count: int) -> Sequence[bool]:
        return self.discrete_inputs.read(address, count)

    def read_holding_registers(self, address: int, count: int) -> Sequence[int]:
        return self.holding_registers.read(address, count)

    def read_input_registers(self, address: int, count: int) -> Sequence[int]:
        return self.input_registers.read(address, count)

    def write_coils(self, address: int, values: Sequence[bool]) -> None:
        self.coils.write(address, values)

    def write_registers(self, address: int, values: Sequence[int]) -> None:
        self.holding_registers.write(address, values)

    def mask_write_register(self, address: int, and_mask: int, or_mask: int) -> None:
        with self.lock:
            (current,) = self.holding_registers.read(address, 1)
            self.holding_registers.write(address, ((current & and_mask) | (or_mask & ~and_mask & 0xFFFF),))

    def read_write_registers(
        self, read_address: int, read_count: int, write_address: int, values: Sequence[int]
    ) -> Sequence[int]:
        with self.lock:
            # Both ranges are checked before the write, so that a bad read
            # range leaves the registers untouched.
            if not self.holding_registers.covers(read_address, read_count):
                raise _illegal_address(TableKind.HOLDING_REGISTERS, read_address, read_count)
            self.holding_registers.write(write_address, values)
            return self.holding_registers.read(read_address, read_count)

    def read_exception_status(self) -> int:
        return self.exception_status

    def read_fifo_queue(self, address: int) -> Sequence[int]:
        with self.lock:
            queue = self.fifos.get(address)
            if queue is None:
                raise ModbusExceptionError(ExceptionCode.ILLEGAL_DATA_ADDRESS, f"no FIFO queue at {address}")
            if len(queue) > 31:
                raise ModbusExceptionError(
                    ExceptionCode.ILLEGAL_DATA_VALUE, f"FIFO at {address} holds {len(queue)} > 31"
                )
            return tuple(queue)

    def read_file_records(self, references: Sequence[FileRecordReference]) -> list[tuple[int, ...]]:
        with self.lock:
            found = [self._file_range(r.file_number, r.record_number, r.record_length) for r in references]
            return [tuple(records[start:end]) for records, start, end in found]

    def write_file_records(self, records: Sequence[FileRecord]) -> None:
        with self.lock:
            found = [self._file_range(r.file_number, r.record_number, len(r.values)) for r in records]
            for (storage, start, end), record in zip(found, records, strict=True):
                storage[start:end] = array("H", record.values)

    def _file_range(self, file_number: int, record_number: int, length: int) -> tuple[array[int], int, int]:
        records = self.files.get(file_number)
        if records is None or record_number + length > len(records):
            raise ModbusExceptionError(
                ExceptionCode.ILLEGAL_DATA_ADDRESS,
                f"file {file_number} records {record_number}..{record_number + length - 1} do not exist",
            )
        return records, record_number, record_number + length


def _register(value: int) -> int:
    if not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        raise LocalProtocolError(f"register values are integers in 0..65535, got {value!r}")
    return value


class ServerContext:
    """Which device answers which unit id.

    ``ServerContext(device)`` answers every unit id with one device (the
    "single" mode).  ``ServerContext({1: meter, 2: tank})`` answers those
    units; what happens for other units is the server's choice
    (``ignore_missing_units``: silence, or exception 0B).
    """

    __slots__ = ("_devices", "_single")

    def __init__(self, devices: Device | Mapping[int, Device] | None = None) -> None:
        self._single: Device | None = None
        self._devices: dict[int, Device] = {}
        if devices is None:
            devices = Device.sized()
        if isinstance(devices, Mapping):
            for unit, device in devices.items():
                self[unit] = device
        else:
            self._single = devices

    def __repr__(self) -> str:
        if self._single is not None:
            return "ServerContext(single)"
        return f"ServerContext(units={sorted(self._devices)})"

    @property
    def single(self) -> bool:
        """True when one device answers every unit id."""
        return self._single is not None

    def get(self, unit: int) -> Device | None:
        """The device for *unit*, or None."""
        if self._single is not None:
            return self._single
        return self._devices.get(unit)

    def __getitem__(self, unit: int) -> Device:
        device = self.get(unit)
        if device is None:
            raise KeyError(unit)
        return device

    def __setitem__(self, unit: int, device: Device) -> None:
        if self._single is not None:
            raise LocalProtocolError("a single-device context answers every unit; build one with a mapping instead")
        if not isinstance(unit, int) or not 0 <= unit <= 0xFF:
            raise LocalProtocolError(f"unit ids are 0..255, got {unit!r}")
        self._devices[unit] = device

    def __delitem__(self, unit: int) -> None:
        del self._devices[unit]

    def __contains__(self, unit: object) -> bool:
        return self._single is not None or unit in self._devices

    def units(self) -> list[int]:
        """The configured unit ids (empty in single mode: every id answers)."""
        return sorted(self._devices)

    def devices(self) -> list[Device]:
        """Every distinct device, for broadcasts."""
        if self._single is not None:
            return [self._single]
        unique: dict[int, Device] = {}
        for device in self._devices.values():
            unique.setdefault(id(device), device)
        return list(unique.values())
