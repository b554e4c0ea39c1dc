"""A Modbus RTU or ASCII server on a serial line (pyserial), blocking."""

from __future__ import annotations

import logging
import os
import selectors
import time
from collections.abc import Iterable, Mapping
from typing import Any

import serial

from modbus_anyio._handler import ConnectionInfo, Handler, next_connection_id
from modbus_core import CustomFunction, DeviceIdentity, FunctionTable, ServerConnection, ServerContext

from ._options import positive_or_none
from ._server import Link, Server, TraceConnect, TracePacket, TracePdu, _reason
from ._tcp import _encoder

__all__ = ["SerialServer"]

logger = logging.getLogger(__name__)

_READ_SIZE = 4096


class _LineLink(Link):
    """The serial line: one link for the server's whole life, reopened after errors."""

    __slots__ = ("port",)

    def __init__(self, server: SerialServer, port: serial.Serial, conn: ServerConnection, now: float) -> None:
        info = ConnectionInfo(
            transport="serial",
            peer=server.device,
            local=server.device,
            server=server.name,
            connection_id=next_connection_id(),
            encode=_encoder(conn.framer),
        )
        super().__init__(server, conn, info, now)
        self.port = port

    def fileobj(self) -> int:
        return self.port.fileno()  # type: ignore[no-any-return]

    def close_transport(self) -> None:
        try:
            self.port.close()
        except (OSError, serial.SerialException) as error:
            logger.debug("%s: close failed: %s", self, error)

    def write_some(self, data: bytes) -> int:
        # Serial writes block until the driver took the bytes: a frame is at
        # most 513 characters, and nothing else shares this line's thread.
        written = self.port.write(data)
        return len(data) if written is None else int(written)

    def on_ready(self, mask: int, now: float) -> None:
        server = self.server
        try:
            if mask & selectors.EVENT_READ:
                data = os.read(self.port.fileno(), _READ_SIZE)
                if not data:
                    raise serial.SerialException("the device reports end of file")
                self.receive(data, now)
            if mask & selectors.EVENT_WRITE and not self.closed:
                self.flush(now)
        except (OSError, serial.SerialException) as error:
            assert isinstance(server, SerialServer)
            server.line_lost(self, error)
        except Exception as error:
            logger.exception("%s: error while serving", self)
            del error


class SerialServer(Server):
    """A Modbus server on a serial line: RTU (default) or ASCII.

    *port* is the device (``/dev/ttyUSB0``, ``COM3``); *baudrate*,
    *bytesize*, *parity* and *stopbits* configure it.  *handle_local_echo*:
    the adapter echoes what it sends (common on RS-485), and the echo is
    dropped.  *rs485_mode* (a ``serial.rs485.RS485Settings``) and
    *serial_options* (more ``serial.Serial`` keyword arguments, e.g.
    ``{"exclusive": True}``) go to pyserial as they are.

    The server answers only the units its context holds (or, with a
    handler, *units* if given) and ignores other servers' traffic on a
    shared line; unit 0 is broadcast (executed, never answered).
    *strict_timing*: apply RTU's t1.5/t3.5 to arrival times (only for
    ports that deliver bytes as they come; USB adapters do not).  If the
    port fails (an adapter unplugged), the server reopens it every
    *reconnect_delay* seconds until it is back.  Other options are those
    of :class:`TcpServer`.  POSIX only: the loop waits on the port's file
    descriptor.
    """

    transport = "serial"
    default_framer = "rtu"

    def __init__(
        self,
        context: ServerContext | Handler,
        *,
        port: str,
        baudrate: int = 19200,
        bytesize: int = 8,
        parity: str = "N",
        stopbits: float = 1,
        framer: object = "rtu",
        name: str = "",
        identity: DeviceIdentity | Any = None,
        ignore_missing_units: bool | None = None,
        broadcast: bool | None = None,
        units: Iterable[int] | None = None,
        functions: FunctionTable | None = None,
        custom_pdu: Iterable[CustomFunction] | None = None,
        trace_packet: TracePacket | None = None,
        trace_pdu: TracePdu | None = None,
        trace_connect: TraceConnect | None = None,
        handle_local_echo: bool = False,
        strict_timing: bool = False,
        frame_timeout: float | None = None,
        reconnect_delay: float = 2.0,
        rs485_mode: Any = None,
        serial_options: Mapping[str, Any] | None = None,
        handler_threads: int = 0,
        shutdown_timeout: float = 5.0,
    ) -> None:
        if os.name != "posix":  # pragma: no cover - the tests run on POSIX
            raise OSError("modbus_sync.SerialServer needs POSIX (it waits on the port's file descriptor)")
        if not isinstance(port, str) or not port:
            raise ValueError(f"port must name a serial device, got {port!r}")
        if isinstance(baudrate, bool) or not isinstance(baudrate, int) or baudrate <= 0:
            raise ValueError(f"baudrate must be a positive integer, got {baudrate!r}")
        super().__init__(
            context,
            name=name,
            identity=identity,
            framer=framer,
            serial_line=True,
            broadcast=broadcast,
            ignore_missing_units=ignore_missing_units,
            functions=functions,
            custom_pdu=custom_pdu,
            trace_packet=trace_packet,
            trace_pdu=trace_pdu,
            trace_connect=trace_connect,
            idle_timeout=None,
            frame_timeout=frame_timeout,
            handler_threads=handler_threads,
            shutdown_timeout=shutdown_timeout,
            baudrate=baudrate,
            strict_timing=strict_timing,
        )
        if units is not None:
            if self.dispatcher is not None:
                raise ValueError("units= is for handlers: with a ServerContext the server answers the context's units")
            unit_set = frozenset(units)
            for unit in unit_set:
                if isinstance(unit, bool) or not isinstance(unit, int) or not 0 <= unit <= 247:
                    raise ValueError(f"units are 0..247, got {unit!r}")
            self.units = unit_set
        delay = positive_or_none("reconnect_delay", reconnect_delay)
        assert delay is not None
        self.reconnect_delay = delay
        self.device = port
        self.echo = bool(handle_local_echo)
        self._port_options: dict[str, Any] = {
            "baudrate": baudrate,
            "bytesize": bytesize,
            "parity": parity,
            "stopbits": stopbits,
            **dict(serial_options or {}),
        }
        self._rs485_mode = rs485_mode
        self._line: _LineLink | None = None
        self._reopen_pending = False

    @property
    def addresses(self) -> list[str]:
        """The serial device, as a one-item list (network servers list ``(host, port)``)."""
        return [self.device]

    def describe(self) -> str:
        return f"{self.device} ({self.framer_name}, {self._port_options['baudrate']} baud)"

    def _open_port(self) -> serial.Serial:
        port = serial.serial_for_url(self.device, do_not_open=True, timeout=0, write_timeout=None)
        for option, value in self._port_options.items():
            setattr(port, option, value)
        if self._rs485_mode is not None:
            port.rs485_mode = self._rs485_mode
        port.open()
        if not hasattr(port, "fileno"):
            port.close()
            raise OSError(f"{self.device}: this kind of port has no file descriptor to wait on")
        return port

    def _open_transport(self, selector: selectors.BaseSelector) -> None:
        try:
            port = self._open_port()
        except serial.SerialException as error:
            raise OSError(f"cannot open {self.device}: {error}") from None
        self._start_line(port)

    def _start_line(self, port: serial.Serial) -> None:
        conn = ServerConnection(
            self.new_framer(),
            functions=self.functions,
            units=self.units,
            echo=self.echo,
            diagnostics=self.diagnostics,
        )
        self._line = _LineLink(self, port, conn, time.monotonic())
        if self._selector is not None:
            self.add_link(self._line)

    def line_lost(self, link: _LineLink, error: BaseException) -> None:
        """The port failed: close it and try again every reconnect_delay seconds."""
        logger.error("%s: %s failed: %s; reopening every %g s", self, self.device, _reason(error), self.reconnect_delay)
        self.close_link(link, None)
        self._line = None
        self._schedule_reopen()

    def _schedule_reopen(self) -> None:
        def reopen(now: float) -> None:
            if self._draining or self._line is not None:
                return
            try:
                port = self._open_port()
            except (OSError, serial.SerialException) as error:
                logger.debug("%s: %s still unavailable: %s", self, self.device, error)
                self._schedule_reopen()
                return
            logger.info("%s: %s reopened", self, self.device)
            self._start_line(port)

        self.call_later(self.reconnect_delay, reopen)

    @property
    def line(self) -> ConnectionInfo | None:
        """The serial line's :class:`ConnectionInfo` while the port is open."""
        return None if self._line is None else self._line.info

    def _close_transport(self) -> None:
        pass  # the line drains as a link; _close_everything closes it
