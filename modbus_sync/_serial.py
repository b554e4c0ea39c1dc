"""A Modbus RTU or ASCII server on a serial line (pyserial), blocking."""

from __future__ import annotations

import logging
import os
import selectors
import time
from collections.abc import Mapping
from typing import Any

import serial

from modbus_anyio._options import SerialLine
from modbus_anyio._session import FramerSpec

from ._server import Answer, Link, Server, reason

__all__ = ["SerialServer"]

logger = logging.getLogger(__name__)

_READ_SIZE = 4096


class _LineLink(Link):
    """The serial line: one link while the port is open (a new one after a reopen)."""

    __slots__ = ("port",)

    def __init__(self, server: SerialServer, port: serial.Serial, now: float) -> None:
        framer = server._framer()
        super().__init__(server, server._info("serial", server.device, server.device, framer), now)
        self.port = port
        self.start_session(server._new_session(framer, self.info, echo=server.echo))

    def fileobj(self) -> int:
        return int(self.port.fileno())

    def close_transport(self) -> None:
        try:
            self.port.close()
        except (OSError, serial.SerialException) as error:
            logger.debug("%s: closing %s failed: %s", self.server.name, self.info.peer, error)

    def write_some(self, data: bytes) -> int:
        # Straight to the non-blocking descriptor: a line held by flow
        # control must not stall the loop (pyserial's write would wait).
        try:
            return os.write(self.port.fileno(), data)
        except (BlockingIOError, InterruptedError):
            return 0

    def on_ready(self, mask: int, now: float) -> None:
        server = self.server
        assert isinstance(server, SerialServer)
        try:
            if mask & selectors.EVENT_READ:
                data = os.read(self.port.fileno(), _READ_SIZE)
                if not data:
                    raise serial.SerialException("the device reports end of file")
                self.receive(data, now)
            if mask & selectors.EVENT_WRITE and not self.closed:
                self.flush(now)
        except (OSError, serial.SerialException) as error:
            server._line_lost(self, error)
        except Exception:
            # A hook's or custom framer's bug: the line itself is fine.
            logger.exception("%s: error while serving", server.name)


class SerialServer(SerialLine, Server):
    """A Modbus server on a serial line (RTU by default, or ASCII).

    *port* is the device (``"/dev/ttyUSB0"``); *baudrate*, *bytesize*,
    *parity* (``"N"``, ``"E"``, ``"O"``, ``"M"``, ``"S"``) and *stopbits*
    configure it.  *units* limits the unit ids answered (default: the
    datastore's units, or every unit with a handler); frames for other
    units, and other servers' answers on a shared RS-485 line, are
    skipped.  Broadcasts (unit 0) execute writes unanswered.  *echo*
    removes the local echo of adapters that hear themselves;
    *rs485_mode* (a ``serial.rs485.RS485Settings``) and *serial_options*
    (more ``serial.Serial`` arguments) pass through to pyserial;
    *strict_timing* applies RTU's t1.5/t3.5 to arrival times (only for
    ports that deliver bytes as they arrive, which USB adapters do not).
    When the device fails (an adapter unplugged), the server reopens it
    every *reconnect_delay* seconds (None: :meth:`serve_forever` raises
    the error).  ``trace_connect`` is called when the port opens and
    closes.  POSIX only: the loop waits on the port's file descriptor.
    The common options are those of :class:`TcpServer`.
    """

    transport = "serial"
    _serial_line = True

    def __init__(
        self,
        answer: Answer,
        *,
        port: str,
        baudrate: int = 19200,
        bytesize: int = 8,
        parity: str = "N",
        stopbits: float = 1,
        framer: FramerSpec = "rtu",
        echo: bool = False,
        rs485_mode: Any = None,
        serial_options: Mapping[str, Any] | None = None,
        strict_timing: bool = False,
        reconnect_delay: float | None = 2.0,
        **options: Any,
    ) -> None:
        if os.name != "posix":  # pragma: no cover - the tests run on POSIX
            raise OSError("modbus_sync.SerialServer needs POSIX: it waits on the port's file descriptor")
        super().__init__(answer, framer=framer, **options)
        self._init_line(
            port=port,
            baudrate=baudrate,
            bytesize=bytesize,
            parity=parity,
            stopbits=stopbits,
            framer=framer,
            echo=echo,
            rs485_mode=rs485_mode,
            serial_options=serial_options,
            strict_timing=strict_timing,
            reconnect_delay=reconnect_delay,
        )
        self._line: _LineLink | None = None
        self._failure: BaseException | None = None

    def _open_port(self) -> serial.Serial:
        try:
            port = serial.serial_for_url(
                self.device,
                baudrate=self.baudrate,
                bytesize=self.bytesize,
                parity=self.parity,
                stopbits=self.stopbits,
                timeout=0,
                write_timeout=0,
                do_not_open=True,
                **self.serial_options,
            )
            if self.rs485_mode is not None:
                port.rs485_mode = self.rs485_mode
            port.open()
        except (serial.SerialException, ValueError) as error:
            raise OSError(f"cannot open serial port {self.device}: {error}") from None
        try:
            os.set_blocking(port.fileno(), False)
            port.reset_input_buffer()
        except (AttributeError, OSError, serial.SerialException) as error:
            port.close()
            raise OSError(f"cannot wait on serial port {self.device}: {error}") from None
        return port

    def _open_transport(self, selector: selectors.BaseSelector) -> None:
        self._start_line(self._open_port())

    def _start_line(self, port: serial.Serial) -> None:
        self._line = _LineLink(self, port, time.monotonic())
        self._add_link(self._line)

    def _line_lost(self, line: _LineLink, error: BaseException) -> None:
        """The port failed: close it, and reopen it every reconnect_delay seconds."""
        self._close_link(line, None)
        self._line = None
        if self.reconnect_delay is None:
            logger.error("%s: %s", self.name, reason(error))
            self._failure = error
            self._request_stop()
            return
        logger.warning("%s: %s: reopening every %.1f s", self.name, reason(error), self.reconnect_delay)
        self._schedule_reopen(self.reconnect_delay)

    def _schedule_reopen(self, delay: float) -> None:
        def reopen(now: float) -> None:
            if self._draining or self._line is not None:
                return
            try:
                port = self._open_port()
            except OSError as error:
                logger.debug("%s: still unavailable: %s", self.name, error)
                self._schedule_reopen(delay)
                return
            logger.info("%s: %s reopened", self.name, self.device)
            self._start_line(port)

        self._call_later(delay, reopen)

    def serve_forever(self) -> None:
        super().serve_forever()
        if self._failure is not None:
            raise OSError(f"serial port {self.device} failed: {reason(self._failure)}") from self._failure
