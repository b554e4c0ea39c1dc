"""Checks and conversions of the options every server takes.

Kept apart from the servers so that each transport's constructor reads as
the list of its options, and so that bad input fails at construction with a
message that names the option.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable
from typing import Literal

from modbus_core import (
    AsciiFramer,
    CustomFunction,
    DeviceIdentity,
    Framer,
    FunctionTable,
    MbapFramer,
    RtuFramer,
    ServerContext,
)

__all__ = [
    "ASYNC_DEVICE_OPERATIONS",
    "ConnectionLimitPolicy",
    "FramerName",
    "check_sync_context",
    "check_sync_handler",
    "framer_factory",
    "function_table",
    "identity_of",
    "positive_or_none",
]

FramerName = Literal["socket", "tls", "rtu", "ascii"]
ConnectionLimitPolicy = Literal["refuse", "close_oldest_idle"]

ASYNC_DEVICE_OPERATIONS = (
    "read_coils",
    "read_discrete_inputs",
    "read_holding_registers",
    "read_input_registers",
    "write_coils",
    "write_registers",
    "mask_write_register",
    "read_write_registers",
    "read_exception_status",
    "read_fifo_queue",
    "read_file_records",
    "write_file_records",
)


def framer_name(framer: object, default: str) -> str:
    """``"socket"``, ``"rtu"`` or ``"ascii"`` for a name or a ``FramerType`` member."""
    if framer is None:
        return default
    value = getattr(framer, "value", framer)  # compat FramerType members carry their name as value
    if not isinstance(value, str):
        raise ValueError(f"framer must be 'socket', 'tls', 'rtu' or 'ascii', got {framer!r}")
    name = value.lower()
    if name == "tls":
        name = "socket"  # TLS carries MBAP frames, as plain TCP does
    if name not in ("socket", "rtu", "ascii"):
        raise ValueError(f"framer must be 'socket', 'tls', 'rtu' or 'ascii', got {framer!r}")
    return name


def framer_factory(
    name: str,
    *,
    datagram: bool = False,
    frame_timeout: float | None = None,
    baudrate: int = 19200,
    strict_timing: bool = False,
) -> Callable[[], Framer]:
    """A function making one fresh framer per connection."""
    if name == "socket":
        timeout = None if datagram else frame_timeout
        return lambda: MbapFramer(datagram=datagram, frame_timeout=timeout)
    if name == "rtu":
        return lambda: RtuFramer(baudrate, strict_timing=strict_timing, datagram=datagram)
    return lambda: AsciiFramer(timeout=frame_timeout) if frame_timeout is not None else AsciiFramer()


def function_table(functions: FunctionTable | None, custom_pdu: Iterable[CustomFunction] | None) -> FunctionTable:
    """The table decoding requests: *functions*, or the standard one plus *custom_pdu*."""
    if functions is not None and custom_pdu is not None:
        raise ValueError("give either functions= or custom_pdu=, not both")
    if functions is not None:
        if not isinstance(functions, FunctionTable):
            raise TypeError(f"functions must be a modbus_core.FunctionTable, got {type(functions).__name__}")
        return functions
    return FunctionTable(custom_pdu or ())


def identity_of(identity: object) -> DeviceIdentity | None:
    """A :class:`DeviceIdentity` from ours or from the pymodbus-style compat object."""
    if identity is None or isinstance(identity, DeviceIdentity):
        return identity
    convert = getattr(identity, "to_core", None)
    if callable(convert):
        converted = convert()
        if isinstance(converted, DeviceIdentity):
            return converted
    raise TypeError(
        f"identity must be a modbus_core.DeviceIdentity or a ModbusDeviceIdentification, got {type(identity).__name__}"
    )


def positive_or_none(name: str, value: float | None) -> float | None:
    """*value* checked to be a positive finite number of seconds, or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ValueError(f"{name} must be a positive number of seconds or None, got {value!r}")
    return float(value)


def _is_async_callable(function: object) -> bool:
    if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
        return True
    call = getattr(function, "__call__", None)  # noqa: B004 - a callable object's method, not callability
    return call is not None and not inspect.isroutine(function) and inspect.iscoroutinefunction(call)


def check_sync_handler(handler: object) -> None:
    """Refuse an ``async def`` handler: a blocking server cannot await it."""
    if not callable(handler):
        raise TypeError(f"expected a ServerContext or a handler function, got {type(handler).__name__}")
    if _is_async_callable(handler):
        raise TypeError(
            f"{getattr(handler, '__qualname__', handler)!r} is an async handler: modbus_sync calls handlers "
            "synchronously; give a plain function, or serve it with modbus_anyio"
        )


def check_sync_context(context: ServerContext) -> None:
    """Refuse devices whose operations are coroutines (``AsyncDevice``)."""
    for device in context.devices():
        for operation in ASYNC_DEVICE_OPERATIONS:
            if _is_async_callable(getattr(device, operation, None)):
                raise TypeError(
                    f"{type(device).__name__}.{operation} is a coroutine function: modbus_sync serves "
                    "synchronous devices only; serve an AsyncDevice with modbus_anyio"
                )
