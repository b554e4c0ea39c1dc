"""The exception hierarchy of modbus_core.

Modbus *exception responses* are values (:class:`ExceptionResponse`), never
Python exceptions.  The classes here are for programming errors and for
peers that break the framing so badly that a stream cannot continue.
"""

from __future__ import annotations

__all__ = [
    "LocalProtocolError",
    "ModbusError",
    "ModbusExceptionError",
    "ProtocolError",
    "RemoteProtocolError",
]


class ModbusError(Exception):
    """Base class of every exception raised by modbuskit."""


class ProtocolError(ModbusError):
    """Something violates the Modbus specification."""


class LocalProtocolError(ProtocolError, ValueError):
    """We were asked to build or send something the specification forbids.

    Raised by PDU constructors (a quantity out of range, a value that does
    not fit in 16 bits) and by connections used out of turn.
    """


class RemoteProtocolError(ProtocolError):
    """The peer broke a byte stream beyond recovery.

    Only stream transports raise it (an MBAP length outside 2..254 leaves no
    way to find the next frame).  The adapter should close the connection.
    Serial framers never raise it: garbage on a bus is reported as
    :class:`FrameDropped` events instead.
    """


class ModbusExceptionError(ModbusError):
    """Raise it from a datastore or a handler to answer with *exception_code*.

    The dispatcher turns it into an :class:`ExceptionResponse`; for example
    ``raise ModbusExceptionError(ExceptionCode.SERVER_DEVICE_BUSY)``.  Any
    other exception raised while a request executes is logged and answered
    with exception 04 (server device failure).
    """

    def __init__(self, exception_code: int, message: str = "") -> None:
        super().__init__(message or f"Modbus exception {exception_code:#04x}")
        self.exception_code = exception_code
