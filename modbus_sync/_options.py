"""Checks of what a blocking server is given, so that bad input fails at
construction with a message that names it."""

from __future__ import annotations

import inspect

from modbus_core import AsyncDevice, ServerContext

__all__ = ["ASYNC_DEVICE_OPERATIONS", "check_sync_context", "check_sync_handler"]

# The operations a device may have: AsyncDevice's methods, all coroutines there.
ASYNC_DEVICE_OPERATIONS = tuple(
    name for name, member in vars(AsyncDevice).items() if inspect.iscoroutinefunction(member)
)


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
