"""pymodbus simulator ``setup.json`` files: ``server_list`` and ``device_list``.

One server entry and one device entry are chosen (``"server"`` and
``"device"`` by default, as pymodbus does).  The device keeps pymodbus'
memory model (see :class:`~._config.MemoryLayout`): typed cells in one
array of registers behind all four tables, only configured cells exist,
only cells listed under ``"write"`` accept writes, actions run when a
client reads their cell.

Differences from pymodbus, on purpose:

* the TLS entry works: ``certfile``/``keyfile`` build the TLS context
  (pymodbus 3.16 passes them to a server that does not take them and
  crashes); paths are relative to the file; no client certificate is
  required, as with pymodbus;
* ``reset`` puts the device back to its initial values instead of
  raising an error inside the server;
* ``int16`` cells hold signed 16-bit values.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from modbus_core import TableKind, from_registers

from ._config import (
    ActionSpec,
    DeviceSpec,
    MemoryLayout,
    RegisterSpec,
    ServerSpec,
    SimulatorConfig,
    _Problems,
    check_plant,
    key_path,
    load_actions_module,
    parse_identity,
)
from ._errors import ConfigError

__all__ = ["parse_pymodbus_setup"]

_IDENTITY_KEYS = {
    "VendorName": "vendor_name",
    "ProductCode": "product_code",
    "MajorMinorRevision": "major_minor_revision",
    "VendorUrl": "vendor_url",
    "ProductName": "product_name",
    "ModelName": "model_name",
    "UserApplicationName": "user_application_name",
}
_SERVER_KEYS = {
    "comm",
    "host",
    "port",
    "framer",
    "identity",
    "ignore_missing_devices",
    "broadcast_enable",
    "device_id",
    "baudrate",
    "bytesize",
    "parity",
    "stopbits",
    "timeout",
    "reconnect_delay",
    "certfile",
    "keyfile",
    "password",
    "handle_local_echo",
}
# Register count of each fixed-size cell type.
_SIZES = {
    "bits": 1,
    "int16": 1,
    "uint16": 1,
    "int32": 2,
    "uint32": 2,
    "int64": 4,
    "uint64": 4,
    "float32": 2,
    "float64": 4,
}
_TYPES = (*_SIZES, "string")
_BUILTIN_ACTIONS = ("increment", "random", "reset", "timestamp", "uptime")
_NEXT = "next"


def _registers_of(value: Any, cell_type: str) -> list[int]:
    """pymodbus' encoding of a cell value (big-endian, ABCD)."""
    size = _SIZES[cell_type]
    if cell_type.startswith("float"):
        raw = struct.pack(">f" if size == 2 else ">d", float(value))
    else:
        number = int(value)
        signed = cell_type.startswith("int")
        raw = number.to_bytes(2 * size, "big", signed=signed)
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


class _CellView:
    """pymodbus custom actions get ``(registers, index, **parameters)`` and
    change ``registers[index].value``: this is that list, over our memory."""

    class _Cell:
        __slots__ = ("_address", "_table")

        def __init__(self, table: Any, address: int) -> None:
            self._table = table
            self._address = address

        @property
        def value(self) -> int:
            return int(self._table.read(self._address, 1)[0])

        @value.setter
        def value(self, value: int) -> None:
            self._table.write(self._address, (value,), force=True)

    def __init__(self, table: Any) -> None:
        self._table = table

    def __getitem__(self, address: int) -> _CellView._Cell:
        return self._Cell(self._table, address)


def _pymodbus_action(function: Callable[..., Any]) -> Callable[[Any], None]:
    def run(context: Any) -> None:
        table, address, _ = context.point.storage
        function(_CellView(table), address, **dict(context.parameters))

    run.__name__ = getattr(function, "__name__", "custom")
    return run


def _parse_server(
    raw: Any, name: str, path: str, base_dir: Path, problems: _Problems
) -> tuple[ServerSpec | None, int | None]:
    if not isinstance(raw, Mapping):
        problems.add(path, f"expected an object, got {type(raw).__name__}")
        return None, None
    for key in raw:
        if key not in _SERVER_KEYS:
            problems.add(key_path([key], path), f"unknown key; expected one of: {', '.join(sorted(_SERVER_KEYS))}")
    comm = raw.get("comm")
    if comm not in ("tcp", "tls", "udp", "serial"):
        problems.add(f"{path}.comm", f'expected one of "tcp", "tls", "udp", "serial", got {comm!r}')
        return None, None
    framer = raw.get("framer", "rtu" if comm == "serial" else "socket")
    if framer == "tls":
        framer = "socket"
    if framer not in ("socket", "rtu", "ascii"):
        problems.add(f"{path}.framer", f'expected one of "socket", "rtu", "ascii", "tls", got {framer!r}')
    options: dict[str, Any] = {"name": name, "transport": comm, "framer": framer}
    port = raw.get("port")
    if comm == "serial":
        if not isinstance(port, str) or not port:
            problems.add(f"{path}.port", f"expected the serial device, got {port!r}")
        for key, kind in (("baudrate", int), ("bytesize", int), ("stopbits", int | float), ("parity", str)):
            if key in raw:
                if not isinstance(raw[key], kind) or isinstance(raw[key], bool):
                    problems.add(
                        f"{path}.{key}", f"expected {'a string' if kind is str else 'a number'}, got {raw[key]!r}"
                    )
                options[key] = raw[key]
    else:
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            problems.add(f"{path}.port", f"expected a port number 0..65535, got {port!r}")
        host = raw.get("host", "127.0.0.1")
        if not isinstance(host, str):
            problems.add(f"{path}.host", f"expected a string, got {host!r}")
        options["host"] = host
    options["port"] = port
    if comm == "tls":
        for key in ("certfile", "keyfile"):
            if not isinstance(raw.get(key), str):
                problems.add(f"{path}.{key}", "expected the path of a PEM file (TLS needs a certificate and its key)")
                continue
            file = (base_dir / raw[key]).resolve()
            if not file.is_file():
                problems.add(f"{path}.{key}", f"expected an existing file, {file} is not one")
            options[key] = str(file)
        if "password" in raw:
            options["password"] = raw["password"]
        options["require_client_certificate"] = False
    if "ignore_missing_devices" in raw:
        options["ignore_missing_units"] = bool(raw["ignore_missing_devices"])
    if "broadcast_enable" in raw:
        options["broadcast"] = bool(raw["broadcast_enable"])
    if "identity" in raw:
        identity = raw["identity"]
        if not isinstance(identity, Mapping):
            problems.add(f"{path}.identity", "expected an object")
        else:
            converted: dict[str, Any] = {}
            for key, value in identity.items():
                if key not in _IDENTITY_KEYS:
                    problems.add(
                        key_path(["identity", key], path), f"unknown key; expected one of: {', '.join(_IDENTITY_KEYS)}"
                    )
                else:
                    converted[_IDENTITY_KEYS[key]] = str(value)
            options["identity"] = parse_identity(converted, f"{path}.identity", problems)
    unit = raw.get("device_id")
    if unit is not None and (not isinstance(unit, int) or not 0 <= unit <= 255):
        problems.add(f"{path}.device_id", f"expected a unit id 0..255, got {unit!r}")
        unit = None
    return ServerSpec(**options), unit


def _entries(raw: Mapping[str, Any], key: str, path: str, problems: _Problems) -> list[Any]:
    """The list under *key* (none when it is missing), or a problem."""
    entries = raw.get(key, [])
    if not isinstance(entries, list):
        problems.add(f"{path}.{key}", f"expected a list, got {entries!r}")
        return []
    return entries


def _span(entry: Any, path: str, problems: _Problems) -> tuple[int, int] | None:
    """``5`` or ``[5, 9]`` -> (5, 9) inclusive."""
    if isinstance(entry, int) and not isinstance(entry, bool):
        return entry, entry
    if (
        isinstance(entry, list)
        and len(entry) == 2
        and all(isinstance(item, int) and not isinstance(item, bool) for item in entry)
        and 0 <= entry[0] <= entry[1]
    ):
        return entry[0], entry[1]
    problems.add(path, f"expected an address or [first, last], got {entry!r}")
    return None


class _DeviceBuilder:
    """pymodbus' cell model, sparse: address -> [type, register, action, parameters, writable]."""

    def __init__(
        self,
        raw: Mapping[str, Any],
        path: str,
        actions: Mapping[str, Callable[..., Any]],
        problems: _Problems,
    ) -> None:
        self.raw = raw
        self.path = path
        self.actions = actions
        self.problems = problems
        self.cells: dict[int, list[Any]] = {}
        self.size = 0

    def build(self, name: str, unit: int | None, server: str) -> DeviceSpec | None:
        raw, path, problems = self.raw, self.path, self.problems
        before = len(problems.items)
        known = {"setup", "invalid", "write", "repeat", *_TYPES}
        for key in raw:
            if key not in known:
                problems.add(key_path([key], path), f"unknown key; expected one of: {', '.join(sorted(known))}")
        setup = raw.get("setup")
        if not isinstance(setup, Mapping):
            problems.add(f"{path}.setup", 'missing required object "setup"')
            return None
        sizes = {}
        for key in ("co size", "di size", "hr size", "ir size"):
            value = setup.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 65536:
                problems.add(key_path([*path.split("."), "setup", key]), f"expected a size 0..65536, got {value!r}")
                value = 0
            sizes[key] = value
        shared = bool(setup.get("shared blocks", True))
        if shared:
            self.size = max(sizes.values())
            regions = dict.fromkeys(TableKind, (0, self.size))
        else:
            co, di, ir, hr = sizes["co size"], sizes["di size"], sizes["ir size"], sizes["hr size"]
            regions = {
                TableKind.COILS: (0, co),
                TableKind.DISCRETE_INPUTS: (co, di),
                TableKind.INPUT_REGISTERS: (co + di, ir),
                TableKind.HOLDING_REGISTERS: (co + di + ir, hr),
            }
            self.size = co + di + ir + hr
            if self.size > 65536:
                problems.add(
                    key_path(["setup"], path),
                    f"the four blocks take {co} + {di} + {ir} + {hr} = {self.size} registers, more than the 65536"
                    ' of one memory: make them smaller, or share them ("shared blocks": true)',
                )
                return None
        defaults = setup.get("defaults", {})
        if not isinstance(defaults, Mapping):
            problems.add(f"{path}.setup.defaults", f"expected an object, got {defaults!r}")
            defaults = {}
        default_values, default_actions = defaults.get("value", {}), defaults.get("action", {})
        if not isinstance(default_values, Mapping):
            problems.add(f"{path}.setup.defaults.value", f"expected an object by cell type, got {default_values!r}")
            default_values = {}
        if not isinstance(default_actions, Mapping):
            problems.add(f"{path}.setup.defaults.action", f"expected an object by cell type, got {default_actions!r}")
            default_actions = {}
        for entry_index, entry in enumerate(_entries(raw, "invalid", path, problems)):
            span = _span(entry, f"{path}.invalid[{entry_index}]", problems)
            if span is not None:
                for address in range(span[0], span[1] + 1):
                    self.cells.pop(address, None)
        for cell_type in _TYPES:
            for entry_index, entry in enumerate(_entries(raw, cell_type, path, problems)):
                self._add_cells(cell_type, entry, f"{path}.{cell_type}[{entry_index}]", default_values, default_actions)
        for entry_index, entry in enumerate(_entries(raw, "write", path, problems)):
            span = _span(entry, f"{path}.write[{entry_index}]", problems)
            if span is None:
                continue
            for address in range(span[0], span[1] + 1):
                if address not in self.cells:
                    problems.add(f"{path}.write[{entry_index}]", f"register {address} is not defined by any type")
                    break
                self.cells[address][4] = True
        for entry_index, entry in enumerate(_entries(raw, "repeat", path, problems)):
            self._repeat(entry, f"{path}.repeat[{entry_index}]")
        if len(problems.items) > before:
            return None
        return self._device(name, unit, server, regions, bool(setup.get("type exception", False)))

    def _add_cells(
        self,
        cell_type: str,
        entry: Any,
        path: str,
        default_values: Mapping[str, Any],
        default_actions: Mapping[str, Any],
    ) -> None:
        problems = self.problems
        if not isinstance(entry, Mapping):
            entry = {"addr": entry}
        span = _span(entry.get("addr"), f"{path}.addr", problems)
        if span is None:
            return
        first, last = span
        if last >= self.size:
            problems.add(f"{path}.addr", f"{first}..{last} is past the device's {self.size} registers")
            return
        value = entry.get("value", default_values.get(cell_type, 0 if cell_type != "string" else " "))
        action = entry.get("action", default_actions.get(cell_type))
        if action is not None and (
            not isinstance(action, str) or (action not in _BUILTIN_ACTIONS and action not in self.actions)
        ):
            problems.add(
                f"{path}.action", f"expected one of {', '.join(_BUILTIN_ACTIONS)} or a custom action, got {action!r}"
            )
            return
        parameters = entry.get("parameters")
        if parameters is not None and not isinstance(parameters, Mapping):
            problems.add(f"{path}.parameters", "expected an object")
            return
        if cell_type == "string":
            text = str(value)
            count = last - first + 1
            data = text.encode("utf-8")
            if len(data) > 2 * count:
                problems.add(f"{path}.value", f"{text!r} does not fit in {count} registers")
                return
            data = data.ljust(2 * count, b" ")
            registers = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
            self._claim(first, registers, "string", action, parameters, path)
            return
        size = _SIZES[cell_type]
        try:
            registers = _registers_of(value, cell_type)
        except (OverflowError, ValueError, TypeError) as error:
            problems.add(f"{path}.value", f"{value!r} does not fit {cell_type}: {error}")
            return
        for address in range(first, last + 1, size):
            if address + size - 1 > last:
                problems.add(f"{path}.addr", f"{first}..{last} does not hold whole {cell_type} values")
                return
            self._claim(address, registers, cell_type, action, parameters, path)

    def _claim(self, first: int, registers: list[int], cell_type: str, action: Any, parameters: Any, path: str) -> None:
        for offset, register in enumerate(registers):
            address = first + offset
            if address in self.cells:
                self.problems.add(path, f"register {address} is already defined")
                return
            head = offset == 0
            self.cells[address] = [
                cell_type if head else _NEXT,
                register,
                action if head else None,
                parameters if head else None,
                False,
            ]

    def _repeat(self, entry: Any, path: str) -> None:
        if not isinstance(entry, Mapping):
            self.problems.add(path, 'expected an object with "addr" and "to"')
            return
        source = _span(entry.get("addr"), f"{path}.addr", self.problems)
        target = _span(entry.get("to"), f"{path}.to", self.problems)
        if source is None or target is None:
            return
        if target[1] >= self.size:
            self.problems.add(f"{path}.to", f"{target[0]}..{target[1]} is past the device's {self.size} registers")
            return
        copy_from = source[0] - 1
        for address in range(target[0], target[1] + 1):
            copy_from = source[0] if copy_from >= source[1] else copy_from + 1
            cell = self.cells.get(copy_from)
            if cell is None:
                self.cells.pop(address, None)
            else:
                self.cells[address] = list(cell)

    def _device(
        self,
        name: str,
        unit: int | None,
        server: str,
        regions: Mapping[TableKind, tuple[int, int]],
        type_exception: bool,
    ) -> DeviceSpec:
        addresses = sorted(self.cells)
        valid = _ranges(addresses)
        writable = _ranges([address for address in addresses if self.cells[address][4]])
        values: list[tuple[int, int]] = []
        registers: list[RegisterSpec] = []
        initial: list[tuple[int, tuple[int, ...]]] = [
            (first, tuple(self.cells[a][1] for a in range(first, first + count))) for first, count in valid
        ]
        for address in addresses:
            cell_type, _, action, parameters, is_writable = self.cells[address]
            if cell_type == _NEXT:
                continue
            count = _SIZES.get(cell_type, 1)
            if cell_type == "string":
                while self.cells.get(address + count, [None])[0] == _NEXT:
                    count += 1
            values.append((address, count))
            table = _region_of(address, regions)
            offset = regions[table][0]
            registers.append(
                RegisterSpec(
                    name=f"{cell_type}_{address}",
                    table=table,
                    address=address - offset,
                    type=cell_type,
                    count=count,
                    length=count if cell_type in ("string", "bits") else None,
                    read_only=not is_writable,
                    value=_decode([self.cells[a][1] for a in range(address, address + count)], cell_type),
                    action=self._action(action, parameters),
                )
            )
        layout = MemoryLayout(
            size=self.size,
            regions=regions,
            valid=tuple(valid),
            writable=tuple(writable),
            type_exception=type_exception,
            values=tuple(values),
            initial=tuple(initial),
        )
        return DeviceSpec(
            name=name,
            unit=unit,
            servers=(server,),
            tables={},
            registers=tuple(registers),
            layout=layout,
            description="a pymodbus simulator device",
        )

    def _action(self, name: str | None, parameters: Mapping[str, Any] | None) -> ActionSpec | None:
        if name is None:
            return None
        options = dict(parameters or {})
        if name in self.actions:
            function = _pymodbus_action(self.actions[name])
            return ActionSpec("custom", "read", parameters=options, function=function, function_name=name)
        renamed = {{"minval": "min", "maxval": "max"}.get(key, key): value for key, value in options.items()}
        if name == "timestamp":
            renamed["layout"] = "pymodbus"
        return ActionSpec(name, "read", parameters=renamed)


def _decode(registers: list[int], cell_type: str) -> Any:
    if cell_type == "bits":
        return tuple(bool(registers[0] >> bit & 1) for bit in range(16))
    if cell_type == "string":
        return from_registers(registers, "string")
    return from_registers(registers, cell_type)


def _region_of(address: int, regions: Mapping[TableKind, tuple[int, int]]) -> TableKind:
    for kind in (TableKind.HOLDING_REGISTERS, TableKind.INPUT_REGISTERS, TableKind.DISCRETE_INPUTS, TableKind.COILS):
        offset, size = regions[kind]
        if offset <= address < offset + size:
            return kind
    return TableKind.HOLDING_REGISTERS  # pragma: no cover - cells are inside the memory


def _ranges(addresses: list[int]) -> list[tuple[int, int]]:
    """Sorted addresses -> (first, count) runs."""
    runs: list[tuple[int, int]] = []
    for address in addresses:
        if runs and runs[-1][0] + runs[-1][1] == address:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((address, 1))
    return runs


def _names(entries: Mapping[str, Any]) -> str:
    return ", ".join(repr(name) for name in entries) or "none"


def _custom_actions(module: ModuleType) -> dict[str, Callable[..., Any]]:
    table = getattr(module, "custom_actions_dict", None)
    if not isinstance(table, Mapping):
        raise ImportError(f"{module.__name__} has no custom_actions_dict")
    return {str(name): function for name, function in table.items() if callable(function)}


def parse_pymodbus_setup(
    document: Mapping[str, Any],
    *,
    source: str,
    base_dir: Path,
    modbus_server: str = "server",
    modbus_device: str = "device",
    custom_actions_module: str | None = None,
) -> SimulatorConfig:
    """The :class:`SimulatorConfig` of one server and one device of a pymodbus ``setup.json``."""
    problems = _Problems(source)
    for key in document:
        if key not in ("server_list", "device_list"):
            problems.add(key_path([key]), "unknown key; expected server_list and device_list")
    servers = document.get("server_list")
    devices = document.get("device_list")
    if not isinstance(servers, Mapping):
        problems.add("server_list", "expected an object of servers by name")
    elif modbus_server not in servers:
        problems.add("server_list", f"expected a server named {modbus_server!r}; there are {_names(servers)}")
    if not isinstance(devices, Mapping):
        problems.add("device_list", "expected an object of devices by name")
    elif modbus_device not in devices:
        problems.add("device_list", f"expected a device named {modbus_device!r}; there are {_names(devices)}")
    problems.raise_if_any()
    assert isinstance(servers, Mapping)
    assert isinstance(devices, Mapping)
    actions: dict[str, Callable[..., Any]] = {}
    if custom_actions_module:
        try:
            actions = _custom_actions(load_actions_module(custom_actions_module, base_dir))
        except Exception as error:  # noqa: BLE001 - any failure of the user's module is a config problem
            raise ConfigError(
                source, [("custom_actions_module", f"cannot use {custom_actions_module!r}: {error}")]
            ) from None
    server_path = key_path(["server_list", modbus_server])
    server, unit = _parse_server(servers[modbus_server], modbus_server, server_path, base_dir, problems)
    device_path = key_path(["device_list", modbus_device])
    raw_device = devices[modbus_device]
    device = None
    if not isinstance(raw_device, Mapping):
        problems.add(device_path, "expected an object")
    elif server is not None:
        device = _DeviceBuilder(raw_device, device_path, actions, problems).build(modbus_device, unit, server.name)
    problems.raise_if_any()
    assert server is not None
    assert device is not None
    check_plant([server], [device], problems)
    problems.raise_if_any()
    return SimulatorConfig(servers=(server,), devices=(device,), source=source)
