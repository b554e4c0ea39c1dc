"""What every server has, in both packages: the answer, the common options, their checks.

:class:`ServerOptions` is the base of ``modbus_anyio``'s servers and of
``modbus_sync``'s; :class:`SerialLine` holds a serial server's line
settings in both.  How a server runs (tasks or a selector loop) is each
package's own.  This module imports neither anyio nor asyncio:
``modbus_sync`` uses it too.
"""

from __future__ import annotations

import math
from collections.abc import Container, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from modbus_core import (
    AsciiFramer,
    CustomFunction,
    DeviceIdentity,
    Dispatcher,
    Framer,
    FunctionTable,
    RtuFramer,
    ServerConnection,
    ServerContext,
    ServerDiagnostics,
)

from ._handler import ConnectionInfo, Handler, new_connection_info
from ._session import (
    FramerSpec,
    Hooks,
    TraceConnect,
    TracePacket,
    TracePdu,
    build_framer,
    framer_kind,
    function_table,
    make_connection,
)
from .compat import ModbusDeviceIdentification, as_identity

if TYPE_CHECKING:
    import serial.rs485

__all__ = ["SerialLine", "ServerOptions", "check_shutdown_timeout", "positive_or_none"]

_PARITIES = ("N", "E", "O", "M", "S")


def positive_or_none(name: str, value: float | None) -> float | None:
    """*value* checked to be a positive finite number of seconds, or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ValueError(f"{name} must be a positive number of seconds or None, got {value!r}")
    return float(value)


def check_shutdown_timeout(value: float) -> float:
    """*value* checked to be a number of seconds, 0 or more."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"shutdown_timeout must be a number of seconds >= 0, got {value!r}")
    return float(value)


class ServerOptions:
    """The answer (datastore or handler) and the options every server takes.

    *answer* is a :class:`modbus_core.ServerContext`, answered by the
    core's :class:`~modbus_core.Dispatcher` (built here with *identity*,
    *broadcast* and *ignore_missing_units*), or a handler.  The options
    are checked here, so that a bad one fails at construction.
    """

    transport: ClassVar[str] = ""
    _serial_line: ClassVar[bool] = False

    def __init__(
        self,
        answer: ServerContext | Handler,
        *,
        name: str | None = None,
        identity: DeviceIdentity | ModbusDeviceIdentification | None = None,
        framer: FramerSpec = "socket",
        ignore_missing_units: bool | None = None,
        broadcast: bool | None = None,
        functions: FunctionTable | None = None,
        custom_pdu: Iterable[CustomFunction] | None = None,
        units: Container[int] | None = None,
        trace_packet: TracePacket | None = None,
        trace_pdu: TracePdu | None = None,
        trace_connect: TraceConnect | None = None,
        shutdown_timeout: float = 5.0,
    ) -> None:
        framer_kind(framer)  # a clear error now rather than at the first connection
        self._framer_spec = framer
        self._name = name
        self.functions = function_table(functions, custom_pdu)
        self.hooks = Hooks(trace_packet, trace_pdu, trace_connect)
        self.diagnostics = ServerDiagnostics()
        self.dispatcher: Dispatcher | None = None
        self.handler: Handler | None = None
        if isinstance(answer, ServerContext):
            self.dispatcher = Dispatcher(
                answer,
                diagnostics=self.diagnostics,
                identity=as_identity(identity),
                serial=self._serial_line,
                broadcast=broadcast,
                ignore_missing_units=ignore_missing_units,
            )
        elif callable(answer):
            if identity is not None or broadcast is not None or ignore_missing_units is not None:
                raise ValueError("identity, broadcast and ignore_missing_units apply to a datastore, not to a handler")
            self.handler = answer
        else:
            raise TypeError(f"a server answers from a ServerContext or a handler, got {type(answer).__name__}")
        self.units = units
        self.shutdown_timeout = check_shutdown_timeout(shutdown_timeout)

    @property
    def name(self) -> str:
        """The name given to the server, or ``"tcp 127.0.0.1:502"`` style once bound."""
        if self._name is not None:
            return self._name
        where = self._address_text()
        return f"{self.transport} {where}" if where else self.transport

    def _address_text(self) -> str:
        return ""

    def _connection(self, framer: Framer, *, echo: bool = False) -> ServerConnection:
        """The core's connection for one link (TCP connection, UDP peer, serial line)."""
        return make_connection(
            framer,
            units=self.units,
            dispatcher=self.dispatcher,
            serial_line=self._serial_line,
            functions=self.functions,
            echo=echo,
            diagnostics=self.diagnostics,
        )

    def _info(self, transport: str, peer: str, local: str, framer: Framer, role: str | None = None) -> ConnectionInfo:
        return new_connection_info(transport, peer, local, role, self.name, framer)


class SerialLine:
    """A serial server's line: the device, its settings, and the framer they call for."""

    _framer_spec: FramerSpec

    def _init_line(
        self,
        *,
        port: str,
        baudrate: int,
        bytesize: int,
        parity: str,
        stopbits: float,
        framer: FramerSpec,
        echo: bool,
        rs485_mode: serial.rs485.RS485Settings | None,
        serial_options: Mapping[str, Any] | None,
        strict_timing: bool,
        reconnect_delay: float | None,
    ) -> None:
        if not isinstance(port, str) or not port:
            raise ValueError("a serial server needs port= (the device, e.g. /dev/ttyUSB0)")
        if isinstance(baudrate, bool) or not isinstance(baudrate, int) or baudrate <= 0:
            raise ValueError(f"baudrate must be a positive integer, got {baudrate!r}")
        if bytesize not in (5, 6, 7, 8):
            raise ValueError(f"bytesize must be 5, 6, 7 or 8, got {bytesize!r}")
        parity = str(parity).upper()[:1]
        if parity not in _PARITIES:
            raise ValueError(f"parity must be one of N, E, O, M, S, got {parity!r}")
        if stopbits not in (1, 1.5, 2):
            raise ValueError(f"stopbits must be 1, 1.5 or 2, got {stopbits!r}")
        if framer_kind(framer) == "socket":
            raise ValueError("a serial line carries RTU or ASCII frames (or a custom framer), not MBAP")
        if reconnect_delay is not None and not reconnect_delay > 0:
            raise ValueError(f"reconnect_delay must be positive or None, got {reconnect_delay!r}")
        self.device = port
        self.baudrate = baudrate
        self.bytesize = bytesize
        self.parity = parity
        self.stopbits = stopbits
        self.echo = bool(echo)
        self.rs485_mode = rs485_mode
        self.serial_options = dict(serial_options or {})
        self.strict_timing = strict_timing
        self.reconnect_delay = reconnect_delay

    @property
    def addresses(self) -> list[str]:
        """The serial device, as a one-item list."""
        return [self.device]

    @property
    def port(self) -> str:
        """The serial device."""
        return self.device

    def _address_text(self) -> str:
        return self.device

    def _framer(self) -> Framer:
        kind = framer_kind(self._framer_spec)
        if kind == "rtu":
            return RtuFramer(self.baudrate, strict_timing=self.strict_timing)
        if kind == "ascii":
            return AsciiFramer()
        return build_framer(self._framer_spec, baudrate=self.baudrate)
