"""The simulator's configuration: the file format, its schema, and checking.

A configuration file (JSON, or TOML when its name ends in ``.toml``) is
checked against the published JSON Schema (``config.schema.json`` in this
package), then for what a schema cannot say: names that must be unique,
units two devices share on one server, registers that overlap or do not
fit their table, values that do not fit their type.  Every problem is
reported with the file, the key path (``devices[2].registers[0].type``)
and what was expected; nothing is built until the whole file is good.

The result is a :class:`SimulatorConfig` of frozen specs: the plant
(:mod:`._plant`) builds ``modbus_core`` devices from it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import itertools
import json
import math
import re
import sys
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, TypeAlias

import jsonschema
import jsonschema.exceptions

from modbus_core import DataType, DeviceIdentity, LocalProtocolError, TableKind, register_count, to_registers

from ._errors import ConfigError

__all__ = [
    "ActionSpec",
    "BlockSpec",
    "DeviceSpec",
    "MemoryLayout",
    "RegisterSpec",
    "ServerSpec",
    "SimulatorConfig",
    "config_schema",
    "default_config",
    "is_pymodbus_setup",
    "load_config",
    "parse_config",
]

Order: TypeAlias = Literal["big", "little"]

BIT_TABLES = frozenset({TableKind.COILS, TableKind.DISCRETE_INPUTS})
NUMERIC_TYPES = frozenset(
    {"int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"},
)
ACTION_KINDS = ("increment", "random", "sine", "timestamp", "uptime", "reset", "custom")
NETWORK_TRANSPORTS = frozenset({"tcp", "tls", "udp"})
DEFAULT_PORTS = {"tcp": 502, "udp": 502, "tls": 802}


# --------------------------------------------------------------------------
# specs


@dataclasses.dataclass(frozen=True, slots=True)
class ActionSpec:
    """What moves a value.

    *kind* is one of increment, random, sine, timestamp, uptime, reset,
    custom; *trigger* is ``"timer"`` (every *interval* seconds),
    ``"read"`` (before each Modbus read touching the value) or
    ``"write"`` (after each write to it).  *parameters* are the kind's
    options (step, min, max, amplitude, period, offset, phase, layout; the
    user's parameters for custom).  *function* is the custom function.
    """

    kind: str
    trigger: str = "timer"
    interval: float = 1.0
    parameters: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    function: Callable[..., Any] | None = dataclasses.field(default=None, compare=False)
    function_name: str = ""

    def describe(self) -> str:
        """A short text for listings: ``"sine every 1s"``."""
        name = self.function_name if self.kind == "custom" else self.kind
        if self.trigger == "timer":
            return f"{name} every {self.interval:g}s"
        return f"{name} on {self.trigger}"


@dataclasses.dataclass(frozen=True, slots=True)
class RegisterSpec:
    """A named value of a device: a typed value in registers, or one bit.

    *type* is ``"bool"`` for coils and discrete inputs, else a
    :class:`~modbus_core.DataType` value; *count* is how many addresses it
    takes.  The value a user sees is the raw number times *scale*.
    """

    name: str
    table: TableKind
    address: int
    type: str
    count: int = 1
    length: int | None = None
    byte_order: Order = "big"
    word_order: Order = "big"
    scale: float = 1
    read_only: bool = False
    value: Any = 0
    units: str = ""
    description: str = ""
    action: ActionSpec | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class BlockSpec:
    """Addresses ``start..start+size-1`` of a table, filled with *fill*."""

    start: int
    size: int
    fill: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class MemoryLayout:
    """pymodbus simulator devices: one array of registers behind all four tables.

    *regions* maps each table to ``(offset, size)`` in the array, in
    registers; coils and discrete inputs are the bits of their registers
    (coil ``a`` is bit ``a % 16`` of register ``offset + a // 16``).
    *writable* lists the ``(first, count)`` ranges Modbus may write (the
    rest is read-only).  With *type_exception*, a request must cover whole
    typed values (*values*: ``(first, count)``), else exception 02.
    *initial* holds the initial registers as ``(first, values)`` runs.
    """

    size: int
    regions: Mapping[TableKind, tuple[int, int]]
    valid: tuple[tuple[int, int], ...]
    writable: tuple[tuple[int, int], ...]
    type_exception: bool = False
    values: tuple[tuple[int, int], ...] = ()
    initial: tuple[tuple[int, tuple[int, ...]], ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class DeviceSpec:
    """A simulated device: its unit, tables, named registers and identity.

    *unit* None answers every unit id (the only device of its servers).
    *servers* are the names of the servers that expose it.
    """

    name: str
    unit: int | None
    servers: tuple[str, ...]
    tables: Mapping[TableKind, tuple[BlockSpec, ...]]
    registers: tuple[RegisterSpec, ...] = ()
    invalid: tuple[tuple[TableKind, int, int], ...] = ()
    identity: DeviceIdentity | None = dataclasses.field(default=None, compare=False)
    exception_status: int = 0
    description: str = ""
    layout: MemoryLayout | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ServerSpec:
    """One Modbus listener: TCP, TLS, UDP or a serial line."""

    name: str
    transport: str
    framer: str = "socket"
    host: str = "127.0.0.1"
    port: int | str = 502
    baudrate: int = 19200
    bytesize: int = 8
    parity: str = "N"
    stopbits: float = 1
    certfile: str | None = None
    keyfile: str | None = None
    cafile: str | None = None
    password: str | None = None
    require_client_certificate: bool = True
    roles: Mapping[str, Any] | None = None
    identity: DeviceIdentity | None = dataclasses.field(default=None, compare=False)
    ignore_missing_units: bool | None = None
    broadcast: bool | None = None
    enabled: bool = True
    max_connections: int | None = None

    @property
    def is_network(self) -> bool:
        return self.transport in NETWORK_TRANSPORTS

    def describe(self) -> str:
        """``"tcp 127.0.0.1:5020"``, ``"serial /dev/ttyUSB0 rtu 19200 8N1"``."""
        if self.transport == "serial":
            stopbits = f"{self.stopbits:g}"
            return f"serial {self.port} {self.framer} {self.baudrate} {self.bytesize}{self.parity}{stopbits}"
        framing = "" if self.framer == "socket" else f" ({self.framer})"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport} {host}:{self.port}{framing}"


@dataclasses.dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """A whole plant: servers, devices, and the simulator's own settings."""

    servers: tuple[ServerSpec, ...]
    devices: tuple[DeviceSpec, ...]
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    http_enabled: bool = True
    calls_kept: int = 10000
    log_records: int = 2000
    log_level: str = "INFO"
    source: str = "<config>"
    description: str = ""

    def with_overrides(
        self,
        *,
        http_host: str | None = None,
        http_port: int | None = None,
        modbus_port: int | None = None,
        modbus_host: str | None = None,
    ) -> SimulatorConfig:
        """A copy with the command line's choices: *modbus_port* and
        *modbus_host* move the first network listener."""
        changes: dict[str, Any] = {}
        if http_host is not None:
            changes["http_host"] = http_host
        if http_port is not None:
            changes["http_port"] = http_port
        if modbus_port is not None or modbus_host is not None:
            servers = list(self.servers)
            for index, server in enumerate(servers):
                if server.is_network:
                    moved = server
                    if modbus_port is not None:
                        moved = dataclasses.replace(moved, port=modbus_port)
                    if modbus_host is not None:
                        moved = dataclasses.replace(moved, host=modbus_host)
                    servers[index] = moved
                    break
            else:
                raise ConfigError(self.source, [("servers", "--modbus-port needs a tcp, tls or udp server")])
            changes["servers"] = tuple(servers)
        return dataclasses.replace(self, **changes)


# --------------------------------------------------------------------------
# the schema


@cache
def config_schema() -> dict[str, Any]:
    """The published JSON Schema of the configuration file (a fresh copy is not made: do not change it)."""
    text = resources.files(__package__).joinpath("config.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> jsonschema.protocols.Validator:
    schema = config_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator: jsonschema.protocols.Validator = validator_class(schema)
    return validator


def key_path(parts: Iterable[str | int], base: str = "") -> str:
    """``["devices", 0, "unit"]`` -> ``"devices[0].unit"``; *base* is a path the parts continue."""
    text = base
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$ ]*", part) and not part.endswith(" "):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


# What JSON leaves as it is but str.splitlines() breaks at: a message is one line per problem.
_LINE_BREAKS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=repr).translate(_LINE_BREAKS)
    return text if len(text) <= 60 else text[:57] + "..."


_TYPE_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "object": "an object",
    "array": "a list",
    "null": "null",
}


def _describe_error(error: jsonschema.exceptions.ValidationError, document: Any) -> tuple[str, str]:
    """(key path, what was expected) for one schema error."""
    path = list(error.absolute_path)
    validator = error.validator
    value: Any = error.validator_value
    instance: Any = error.instance
    if validator == "type":
        types = [value] if isinstance(value, str) else list(value)
        expected = " or ".join(_TYPE_WORDS.get(name, name) for name in types)
        return key_path(path), f"expected {expected}, got {_show(instance)}"
    if validator == "enum":
        choices = ", ".join(_show(choice) for choice in value)
        return key_path(path), f"expected one of {choices}, got {_show(instance)}"
    if validator == "const":
        return key_path(path), f"expected {_show(value)}, got {_show(instance)}"
    if validator == "required":
        missing = [name for name in value if isinstance(instance, Mapping) and name not in instance]
        names = ", ".join(repr(name) for name in missing) or repr(value)
        return key_path(path), f"missing required key {names}"
    if validator == "additionalProperties" and isinstance(instance, Mapping):
        allowed = sorted(error.schema.get("properties", {})) if isinstance(error.schema, Mapping) else []
        extra = sorted(str(key) for key in instance if key not in allowed)
        where = key_path([*path, extra[0]]) if len(extra) == 1 else key_path(path)
        keys = ", ".join(repr(key) for key in extra)
        return where, f"unknown key {keys}; expected one of: {', '.join(allowed)}"
    if validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        relation = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[validator]
        return key_path(path), f"expected a number {relation} {value}, got {_show(instance)}"
    if validator == "minItems":
        return key_path(path), f"expected at least {value} item{'s' if value != 1 else ''}"
    if validator == "minLength":
        return key_path(path), f"expected a non-empty string, got {_show(instance)}"
    if validator == "maxLength":
        return key_path(path), f"expected at most {value} characters, got {len(instance)}"
    if validator == "pattern":
        return key_path(path), f"expected a name without '/', not starting with a space, got {_show(instance)}"
    if validator == "not":
        return key_path(path), f"expected a non-zero number, got {_show(instance)}"
    if validator is None or error.schema is False:
        # A property whose subschema is false: find which (the error does not say).
        properties = _schema_at(list(error.absolute_schema_path))
        rules = properties.items() if isinstance(properties, Mapping) else ()
        forbidden = [key for key, rule in rules if rule is False]
        parent = _instance_at(document, path)
        present = [key for key in forbidden if isinstance(parent, Mapping) and key in parent]
        where = key_path([*path, present[0]]) if len(present) == 1 else key_path(path)
        transport = parent.get("transport") if isinstance(parent, Mapping) else None
        reason = f" for transport {transport!r}" if transport else ""
        return where, f"this key is not allowed{reason}"
    return key_path(path), error.message


def _schema_at(schema_path: list[Any]) -> Any:
    """The part of the schema at *schema_path*, following local $refs."""
    node: Any = config_schema()
    for part in schema_path:
        while isinstance(node, Mapping) and part not in node and "$ref" in node:
            node = _resolve(node["$ref"])
        if (isinstance(node, Mapping) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            node = node[part]
        else:
            return None
    return node


def _resolve(reference: str) -> Any:
    node: Any = config_schema()
    for part in reference.removeprefix("#/").split("/"):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def _instance_at(document: Any, path: list[Any]) -> Any:
    node = document
    for part in path:
        node = node[part]
    return node


def _explain(error: jsonschema.exceptions.ValidationError, document: Any) -> tuple[str, str]:
    """(key path, message) of one error.

    oneOf / anyOf errors hide the useful message among their alternatives:
    when the value got into one of them (it has the right JSON type, and
    something inside is wrong), that one explains; else every alternative says what it expected.
    """
    while error.validator in ("oneOf", "anyOf") and error.context:
        depth = len(error.absolute_path)
        deeper = [
            child
            for child in error.context
            if len(child.absolute_path) > depth or child.validator not in ("type", "enum", "const")
        ]
        if not deeper:
            expectations: list[str] = []
            for child in error.context:
                text = _describe_error(child, document)[1].split(", got ")[0].removeprefix("expected ")
                if text not in expectations:
                    expectations.append(text)
            return key_path(error.absolute_path), f"expected {' or '.join(expectations)}, got {_show(error.instance)}"
        error = jsonschema.exceptions.best_match(deeper)
    return _describe_error(error, document)


def schema_problems(document: Any) -> list[tuple[str, str]]:
    """Every schema violation of *document*, as (key path, message), in document order."""
    problems: list[tuple[str, str]] = []
    for error in _validator().iter_errors(document):
        problem = _explain(error, document)
        if problem not in problems:
            problems.append(problem)
    problems.sort(key=lambda item: item[0])
    return problems


# --------------------------------------------------------------------------
# reading files


def read_document(path: str | Path) -> Any:
    """The parsed contents of a JSON or TOML file, or ConfigError."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(source, [("", f"cannot read the file: {error.strerror or error}")]) from None
    if source.endswith(".toml"):
        try:
            return tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(source, [("", f"not valid TOML: {error}")]) from None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise ConfigError(
            source, [("", f"not valid JSON: line {error.lineno} column {error.colno}: {error.msg}")]
        ) from None
    except UnicodeDecodeError as error:
        raise ConfigError(source, [("", f"not valid JSON: {error}")]) from None


def is_pymodbus_setup(document: Any) -> bool:
    """Whether a parsed file is a pymodbus simulator ``setup.json``."""
    return isinstance(document, Mapping) and ("server_list" in document or "device_list" in document)


def load_config(
    path: str | Path,
    *,
    modbus_server: str | None = None,
    modbus_device: str | None = None,
    custom_actions_module: str | None = None,
) -> SimulatorConfig:
    """Read and check a configuration file: this project's format (JSON or
    TOML), or a pymodbus simulator ``setup.json`` (its ``server_list`` and
    ``device_list``; *modbus_server* and *modbus_device* pick the entries,
    ``"server"`` and ``"device"`` by default, as pymodbus does).

    Raises :class:`ConfigError` naming the file, the key path and what
    was expected.
    """
    document = read_document(path)
    if is_pymodbus_setup(document):
        from ._pymodbus import parse_pymodbus_setup

        return parse_pymodbus_setup(
            document,
            source=str(path),
            base_dir=Path(path).resolve().parent,
            modbus_server=modbus_server or "server",
            modbus_device=modbus_device or "device",
            custom_actions_module=custom_actions_module,
        )
    if modbus_server is not None or modbus_device is not None:
        raise ConfigError(str(path), [("", "modbus_server and modbus_device only apply to pymodbus setup.json files")])
    return parse_config(
        document, source=str(path), base_dir=Path(path).resolve().parent, custom_actions_module=custom_actions_module
    )


def default_config() -> SimulatorConfig:
    """The built-in example plant (``default_plant.json`` in this package)."""
    text = resources.files(__package__).joinpath("default_plant.json").read_text(encoding="utf-8")
    return parse_config(json.loads(text), source="<built-in plant>", base_dir=Path.cwd())


# --------------------------------------------------------------------------
# custom actions


def load_actions_module(spec: str, base_dir: Path) -> ModuleType:
    """Import *spec*: a path to a ``.py`` file (relative to *base_dir*) or a module name."""
    if spec.endswith(".py") or "/" in spec or "\\" in spec:
        path = (base_dir / spec).resolve()
        if not path.is_file():
            raise ImportError(f"no such file: {path}")
        name = "modbuskit_actions_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
        if name in sys.modules:
            return sys.modules[name]
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:  # pragma: no cover - a .py file always has one
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module
    return importlib.import_module(spec)


def find_action(module: ModuleType, name: str) -> Callable[..., Any] | None:
    """The function *name* of *module*, or its entry in a pymodbus-style ``custom_actions_dict``."""
    table = getattr(module, "custom_actions_dict", None)
    if isinstance(table, Mapping) and callable(table.get(name)):
        function: Callable[..., Any] = table[name]
        return function
    found = getattr(module, name, None)
    return found if callable(found) else None


# --------------------------------------------------------------------------
# parsing our format


class _Problems:
    """Collects problems; raises them all at once."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append((path, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.source, self.items)


def parse_identity(raw: Mapping[str, Any], path: str, problems: _Problems) -> DeviceIdentity | None:
    """A :class:`DeviceIdentity` from the ``identity`` object."""
    extended: dict[int, str] = {}
    for key, value in raw.get("extended", {}).items():
        object_id = int(key, 16) if key.lower().startswith("0x") else int(key)
        if not 0x80 <= object_id <= 0xFF:
            problems.add(f"{path}.extended.{key}", "expected an object id 0x80..0xFF")
            continue
        extended[object_id] = value
    try:
        return DeviceIdentity(
            raw.get("vendor_name", ""),
            raw.get("product_code", ""),
            raw.get("major_minor_revision", ""),
            vendor_url=raw.get("vendor_url", ""),
            product_name=raw.get("product_name", ""),
            model_name=raw.get("model_name", ""),
            user_application_name=raw.get("user_application_name", ""),
            extended=extended,
            server_id=raw.get("server_id", 1),
            running=raw.get("running", True),
        )
    except LocalProtocolError as error:
        problems.add(path, str(error))
        return None


def _parse_server(raw: Mapping[str, Any], path: str, base_dir: Path, problems: _Problems) -> ServerSpec:
    transport = raw["transport"]
    serial = transport == "serial"
    framer = raw.get("framer", "rtu" if serial else "socket")
    if serial and framer == "socket":
        problems.add(f"{path}.framer", 'expected rtu or ascii on a serial line, got "socket"')
    options: dict[str, Any] = {
        "name": raw["name"],
        "transport": transport,
        "framer": framer,
        "port": raw.get("port", DEFAULT_PORTS.get(transport, "")),
        "identity": parse_identity(raw["identity"], f"{path}.identity", problems) if "identity" in raw else None,
    }
    for key in (
        "host",
        "baudrate",
        "bytesize",
        "parity",
        "stopbits",
        "password",
        "require_client_certificate",
        "roles",
        "ignore_missing_units",
        "broadcast",
        "enabled",
        "max_connections",
    ):
        if key in raw:
            options[key] = raw[key]
    if "roles" in raw:
        from .._security import RolePolicy

        try:
            RolePolicy.from_mapping(raw["roles"])
        except (ValueError, TypeError) as error:
            problems.add(f"{path}.roles", str(error))
    for key in ("certfile", "keyfile", "cafile"):
        if key in raw:
            file = (base_dir / raw[key]).resolve()
            if not file.is_file():
                problems.add(f"{path}.{key}", f"expected an existing file, {file} is not one")
            options[key] = str(file)
    return ServerSpec(**options)


def _parse_action(
    raw: Any, value_type: str, path: str, actions: ModuleType | None, problems: _Problems
) -> ActionSpec | None:
    if isinstance(raw, str):
        raw = {"kind": raw}
    kind = raw["kind"]
    trigger = raw.get("trigger", "write" if kind == "reset" else "timer")
    parameters = {key: value for key, value in raw.items() if key not in ("kind", "trigger", "interval", "function")}
    numeric = value_type in NUMERIC_TYPES
    function = None
    function_name = ""
    if kind in ("increment", "sine", "uptime") and not numeric:
        problems.add(f"{path}.kind", f"{kind} needs a numeric type, the value is {value_type}")
    elif kind == "random" and not (numeric or value_type == "bool"):
        problems.add(f"{path}.kind", f"random needs a numeric or bool type, the value is {value_type}")
    elif kind == "timestamp":
        layout = raw.get("layout", "unix")
        if layout == "unix" and value_type not in ("int32", "uint32", "int64", "uint64", "float64"):
            problems.add(f"{path}.kind", f"a unix timestamp needs a 32 or 64-bit type, the value is {value_type}")
        if layout == "pymodbus" and value_type not in ("uint16", "int16"):
            problems.add(f"{path}.layout", "the pymodbus timestamp layout needs a uint16 value (it fills 7 registers)")
    elif kind == "random" and "min" in raw and "max" in raw and raw["min"] > raw["max"]:
        problems.add(f"{path}.min", f"expected min <= max, got {raw['min']} > {raw['max']}")
    elif kind == "custom":
        function_name = raw["function"]
        if actions is None:
            problems.add(f"{path}.function", "a custom action needs a custom_actions module in the configuration")
        else:
            function = find_action(actions, function_name)
            if function is None:
                problems.add(
                    f"{path}.function", f"expected a function of {actions.__name__}, there is no {function_name!r}"
                )
        parameters = dict(raw.get("parameters", {}))
    if kind == "sine" and "period" not in raw:
        parameters["period"] = 60.0
    return ActionSpec(
        kind=kind,
        trigger=trigger,
        interval=float(raw.get("interval", 1.0)),
        parameters=parameters,
        function=function,
        function_name=function_name,
    )


def check_value(value: Any, spec: RegisterSpec) -> Any:
    """*value* as the register's engineering value, or ValueError saying why not."""
    if spec.type == "bool":
        if isinstance(value, bool) or value in (0, 1):
            return bool(value)
        raise ValueError(f"expected true or false, got {_show(value)}")
    if spec.type == "string":
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {_show(value)}")
        to_registers(value, DataType.STRING, length=spec.length)
        return value
    if spec.type == "bits":
        if isinstance(value, int) and not isinstance(value, bool):
            if not 0 <= value < 1 << (16 * (spec.length or 1)):
                raise ValueError(f"expected {16 * (spec.length or 1)} bits, got {value}")
            return tuple(bool(value >> bit & 1) for bit in range(16 * (spec.length or 1)))
        if isinstance(value, list | tuple) and all(isinstance(bit, bool) or bit in (0, 1) for bit in value):
            to_registers([bool(bit) for bit in value], DataType.BITS, length=spec.length)
            return tuple(bool(bit) for bit in value)
        raise ValueError(f"expected a list of booleans or an integer bit mask, got {_show(value)}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {_show(value)}")
    to_registers(raw_number(value, spec), spec.type)
    return value


def raw_number(value: float, spec: RegisterSpec) -> int | float:
    """The number stored for engineering *value* (divided by the scale; rounded for integer types)."""
    if not math.isfinite(value) and spec.type.startswith(("int", "uint")):
        raise ValueError(f"{spec.type} cannot hold {value}")
    scaled = value / spec.scale if spec.scale != 1 else value
    if spec.type.startswith(("int", "uint")):
        if isinstance(scaled, float):
            if scaled != round(scaled) and spec.scale == 1:
                raise ValueError(f"{spec.type} takes an integer, got {value}")
            scaled = round(scaled)
        return scaled
    return float(scaled)


def _parse_register(
    raw: Mapping[str, Any],
    path: str,
    device: Mapping[str, Any],
    actions: ModuleType | None,
    problems: _Problems,
) -> list[RegisterSpec]:
    table = TableKind(raw.get("table", "holding_registers"))
    is_bit = table in BIT_TABLES
    value_type = raw.get("type", "bool" if is_bit else "uint16")
    if is_bit and value_type != "bool":
        problems.add(f"{path}.type", f'{table.value} hold single bits: expected "bool", got {_show(value_type)}')
        return []
    if not is_bit and value_type == "bool":
        problems.add(f"{path}.type", f'{table.value} hold registers: use "bits" or a number type, not "bool"')
        return []
    length = raw.get("length")
    if value_type == "string" and length is None:
        problems.add(path, 'a string needs "length" (in registers, two bytes each)')
        return []
    if value_type == "bits" and length is None:
        length = 1
    if length is not None and value_type not in ("string", "bits"):
        problems.add(f"{path}.length", f"only string and bits take a length, the value is {value_type}")
    count = (
        1 if value_type == "bool" else register_count(value_type, length if value_type in ("string", "bits") else None)
    )
    scale = raw.get("scale", 1)
    if scale != 1 and value_type not in NUMERIC_TYPES:
        problems.add(f"{path}.scale", f"only numbers take a scale, the value is {value_type}")
    default_value: Any = {"bool": False, "string": "", "bits": ()}.get(value_type, 0)
    action = _parse_action(raw["action"], value_type, f"{path}.action", actions, problems) if "action" in raw else None
    template = RegisterSpec(
        name=raw["name"],
        table=table,
        address=raw["address"],
        type=value_type,
        count=count,
        length=length if value_type in ("string", "bits") else None,
        byte_order=raw.get("byte_order", device.get("byte_order", "big")),
        word_order=raw.get("word_order", device.get("word_order", "big")),
        scale=scale,
        read_only=raw.get("read_only", False),
        value=default_value,
        units=raw.get("units", ""),
        description=raw.get("description", ""),
        action=action,
    )
    try:
        initial = check_value(raw.get("value", default_value), template)
    except (ValueError, LocalProtocolError) as error:
        problems.add(f"{path}.value", str(error))
        return []
    template = dataclasses.replace(template, value=initial)
    repeat = raw.get("repeat")
    if repeat is None:
        copies = [template]
    else:
        step = repeat.get("step", count)
        name = template.name
        copies = []
        for number in range(1, repeat["count"] + 1):
            copy_name = name.replace("{n}", str(number)) if "{n}" in name else f"{name}_{number}"
            copies.append(dataclasses.replace(template, name=copy_name, address=template.address + (number - 1) * step))
    last = copies[-1]
    if last.address + last.count > 0x10000:
        problems.add(f"{path}.address", f"{last.name} at {last.address} takes {last.count} addresses, past 65535")
        return []
    return copies


def _table_blocks(
    raw: Any,
    kind: TableKind,
    registers: Sequence[RegisterSpec],
    path: str,
    problems: _Problems,
) -> tuple[BlockSpec, ...]:
    if raw is None:
        ends = [spec.address + spec.count for spec in registers if spec.table is kind]
        return (BlockSpec(0, max(ends)),) if ends else ()
    if isinstance(raw, int):
        return (BlockSpec(0, raw),) if raw else ()
    start, size, fill = raw.get("start", 0), raw["size"], raw.get("fill", 0)
    if start + size > 0x10000:
        problems.add(path, f"addresses {start}..{start + size - 1} go past 65535")
        return ()
    if kind in BIT_TABLES:
        if fill not in (0, 1):
            problems.add(f"{path}.fill", f"expected true or false for {kind.value}, got {_show(fill)}")
        fill = int(bool(fill))
    elif isinstance(fill, bool):
        fill = int(fill)
    return (BlockSpec(start, size, fill),) if size else ()


def _covers(blocks: Sequence[BlockSpec], invalid: Sequence[tuple[TableKind, int, int]], spec: RegisterSpec) -> bool:
    end = spec.address + spec.count
    inside = any(block.start <= spec.address and end <= block.start + block.size for block in blocks)
    hole = any(kind is spec.table and first < end and spec.address < first + count for kind, first, count in invalid)
    return inside and not hole


def _parse_device(
    raw: Mapping[str, Any],
    path: str,
    register_paths: Sequence[tuple[str, Mapping[str, Any]]],
    server_names: Sequence[str],
    actions: ModuleType | None,
    problems: _Problems,
) -> DeviceSpec | None:
    before = len(problems.items)
    registers: list[RegisterSpec] = []
    for register_path, register in register_paths:
        registers.extend(_parse_register(register, register_path, raw, actions, problems))
    seen: set[str] = set()
    for spec in registers:
        if spec.name in seen:
            problems.add(f"{path}.registers", f"two registers are named {spec.name!r}")
        seen.add(spec.name)
    invalid = tuple(
        (TableKind(entry["table"]), entry["address"], entry.get("count", 1)) for entry in raw.get("invalid", [])
    )
    tables: dict[TableKind, tuple[BlockSpec, ...]] = {}
    for kind in TableKind:
        tables[kind] = _table_blocks(raw.get(kind.value), kind, registers, f"{path}.{kind.value}", problems)
    for spec in registers:
        if not _covers(tables[spec.table], invalid, spec):
            span = f"{spec.address}" if spec.count == 1 else f"{spec.address}..{spec.address + spec.count - 1}"
            problems.add(
                f"{path}.registers",
                f"{spec.name!r} at {spec.table.value} {span} is outside the table or in an invalid range",
            )
    by_table: dict[TableKind, list[RegisterSpec]] = {}
    for spec in registers:
        by_table.setdefault(spec.table, []).append(spec)
    for specs in by_table.values():
        specs.sort(key=lambda spec: spec.address)
        for first, second in itertools.pairwise(specs):
            if second.address < first.address + first.count:
                problems.add(
                    f"{path}.registers",
                    f"{second.name!r} at {second.table.value} {second.address} overlaps {first.name!r}",
                )
    servers = tuple(raw.get("servers", server_names))
    for name in servers:
        if name not in server_names:
            problems.add(f"{path}.servers", f"expected one of the servers {', '.join(server_names)}, got {name!r}")
    identity = parse_identity(raw["identity"], f"{path}.identity", problems) if "identity" in raw else None
    if len(problems.items) > before:
        return None
    unit = raw["unit"]
    return DeviceSpec(
        name=raw["name"],
        unit=None if unit == "any" else unit,
        servers=servers,
        tables=tables,
        registers=tuple(registers),
        invalid=invalid,
        identity=identity,
        exception_status=raw.get("exception_status", 0),
        description=raw.get("description", ""),
    )


def parse_config(
    document: Any,
    *,
    source: str = "<config>",
    base_dir: Path | None = None,
    custom_actions_module: str | None = None,
) -> SimulatorConfig:
    """Check *document* (the parsed file) and build its :class:`SimulatorConfig`.

    *base_dir* resolves relative file paths (certificates, a custom
    actions file); *custom_actions_module* overrides the file's
    ``custom_actions``.
    """
    base_dir = base_dir if base_dir is not None else Path.cwd()
    problems = _Problems(source)
    for path, message in schema_problems(document):
        problems.add(path, message)
    problems.raise_if_any()

    actions: ModuleType | None = None
    actions_spec = custom_actions_module or document.get("custom_actions")
    if actions_spec:
        try:
            actions = load_actions_module(actions_spec, base_dir)
        except Exception as error:  # noqa: BLE001 - any failure of the user's module is a config problem
            problems.add("custom_actions", f"cannot import {actions_spec!r}: {error!r}")

    servers: list[ServerSpec] = []
    for index, raw in enumerate(document["servers"]):
        server = _parse_server(raw, f"servers[{index}]", base_dir, problems)
        if any(other.name == server.name for other in servers):
            problems.add(f"servers[{index}].name", f"two servers are named {server.name!r}")
        servers.append(server)
    server_names = [server.name for server in servers]

    templates: Mapping[str, Mapping[str, Any]] = document.get("templates", {})
    devices: list[DeviceSpec] = []
    device_paths: list[str] = []
    for index, entry in enumerate(document["devices"]):
        path = f"devices[{index}]"
        register_paths = [(f"{path}.registers[{i}]", register) for i, register in enumerate(entry.get("registers", []))]
        merged: dict[str, Any] = dict(entry)
        if "template" in entry:
            template = templates.get(entry["template"])
            if template is None:
                known = ", ".join(repr(name) for name in templates) or "none"
                problems.add(f"{path}.template", f"expected one of the templates ({known}), got {entry['template']!r}")
                continue
            template_path = key_path(["templates", entry["template"]])
            merged = {**template, **entry}
            register_paths = [
                (f"{template_path}.registers[{i}]", register)
                for i, register in enumerate(template.get("registers", []))
            ] + register_paths
        missing = [key for key in ("name", "unit") if key not in merged]
        if missing:
            problems.add(
                path, f"missing required key {', '.join(repr(key) for key in missing)} (in the device or its template)"
            )
            continue
        repeat = merged.get("repeat")
        if repeat is None:
            copies = [merged]
        else:
            if merged["unit"] == "any" and repeat["count"] > 1:
                problems.add(f"{path}.repeat", "a device answering any unit cannot be repeated")
                continue
            step = repeat.get("unit_step", 1)
            copies = []
            for number in range(1, repeat["count"] + 1):
                name = merged["name"]
                unit = merged["unit"] if merged["unit"] == "any" else merged["unit"] + (number - 1) * step
                name = (
                    name.replace("{n}", str(number)).replace("{unit}", str(unit)) if "{" in name else f"{name}-{number}"
                )
                copies.append({**merged, "name": name, "unit": unit})
            if isinstance(copies[-1]["unit"], int) and copies[-1]["unit"] > 255:
                problems.add(
                    f"{path}.repeat", f"copy {repeat['count']} would answer unit {copies[-1]['unit']}, past 255"
                )
                continue
        first = _parse_device(copies[0], path, register_paths, server_names, actions, problems)
        if first is None:
            continue
        devices.append(first)
        device_paths.append(path)
        for copy in copies[1:]:
            unit = copy["unit"]
            devices.append(dataclasses.replace(first, name=copy["name"], unit=None if unit == "any" else unit))
            device_paths.append(path)
    problems.raise_if_any()
    check_plant(servers, devices, problems, device_paths=device_paths)
    problems.raise_if_any()

    http = document.get("http", {})
    return SimulatorConfig(
        servers=tuple(servers),
        devices=tuple(devices),
        http_host=http.get("host", "127.0.0.1"),
        http_port=http.get("port", 8080),
        http_enabled=http.get("enabled", True),
        calls_kept=document.get("recorder", {}).get("calls", 10000),
        log_records=document.get("log", {}).get("records", 2000),
        log_level=document.get("log", {}).get("level", "INFO"),
        source=source,
        description=document.get("description", ""),
    )


def check_plant(
    servers: Sequence[ServerSpec],
    devices: Sequence[DeviceSpec],
    problems: _Problems,
    *,
    device_paths: Sequence[str] | None = None,
) -> None:
    """Names unique, and no two devices answering one unit of one server.

    *device_paths* are the key paths of *devices*, for messages.
    """
    seen_names: set[str] = set()
    owners: dict[tuple[str, int | None], str] = {}
    for index, device in enumerate(devices):
        path = device_paths[index] if device_paths is not None else "devices"
        if device.name in seen_names:
            problems.add(path, f"two devices are named {device.name!r}")
        seen_names.add(device.name)
        for server in device.servers:
            if device.unit is None:
                others = [name for (srv, _), name in owners.items() if srv == server]
                if others:
                    problems.add(
                        f"{path}.unit", f'"any" must be alone on server {server!r}, which also has {others[0]!r}'
                    )
            elif (server, None) in owners:
                problems.add(
                    f"{path}.unit", f"server {server!r} already answers every unit with {owners[server, None]!r}"
                )
            key = (server, device.unit)
            if key in owners:
                problems.add(
                    f"{path}.unit",
                    f"unit {device.unit} of server {server!r} is already {owners[key]!r}'s",
                )
            owners[key] = device.name
