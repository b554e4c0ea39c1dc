"""The serial server: RTU or ASCII on a serial line, with pyserial.

The port is opened non-blocking and the server waits on its file
descriptor with :func:`anyio.wait_readable` (asyncio and trio alike),
feeding the core with the arrival time taken from the same clock its
deadlines use (:func:`anyio.current_time`), and calling the core's
timeout at its deadline (RTU silence, ASCII inter-character timeout).

On a shared RS-485 line the server answers only its own units (the
datastore's, or *units*), keeps in step with other servers' responses
(the core's framer knows their lengths), and with ``echo=True`` removes
the echo of what it sent (adapters that hear themselves).  pyserial's
:class:`serial.rs485.RS485Settings` pass through as *rs485_mode* (the
kernel's RS-485 support: Linux), other pyserial options as *serial_options*.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from ._options import SerialLine
from ._server import Answer, ServerBase, _Record, _unblock, event_loop_clock
from ._session import FramerSpec, Session

if TYPE_CHECKING:
    import serial
    import serial.rs485

__all__ = ["SerialServer", "serve_serial"]

logger = logging.getLogger(__name__)


class _Line(_Record):
    __slots__ = ()

    def __init__(self, session: Session, now: float) -> None:
        self.session = session
        self.info = session.info
        self.last_activity = now

    def close(self) -> None:
        pass

    def stop_reading(self) -> None:
        pass


class SerialServer(SerialLine, ServerBase):
    """A Modbus server on a serial line (RTU by default, or ASCII).

    *port* is the device (``"/dev/ttyUSB0"``); *baudrate*, *bytesize*,
    *parity* (``"N"``, ``"E"``, ``"O"``, ``"M"``, ``"S"``) and *stopbits*
    configure it.  *units* limits the unit ids answered (default: the
    datastore's units, or every unit with a handler).  Broadcasts (unit 0)
    execute writes unanswered.  *echo* removes the local echo; *rs485_mode*
    and *serial_options* pass through to pyserial; *strict_timing* applies
    the t1.5/t3.5 rules to arrival times (only for ports that deliver bytes
    as they arrive).  When the device fails (unplugged), the server retries
    every *reconnect_delay* seconds (None: it stops with the error).
    ``trace_connect`` is called when the port opens and closes.
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
        rs485_mode: serial.rs485.RS485Settings | None = None,
        serial_options: Mapping[str, Any] | None = None,
        strict_timing: bool = False,
        reconnect_delay: float | None = 2.0,
        **options: Any,
    ) -> None:
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
        self._serial: serial.Serial | None = None
        self._line: _Line | None = None
        self._stopping = False
        self._read_scope: anyio.CancelScope | None = None

    def _open_port(self) -> serial.Serial:
        import serial

        try:
            port = serial.Serial(
                port=self.device,
                baudrate=self.baudrate,
                bytesize=self.bytesize,
                parity=self.parity,
                stopbits=self.stopbits,
                timeout=0,
                write_timeout=0,
                **self.serial_options,
            )
        except serial.SerialException as error:
            raise OSError(f"cannot open serial port {self.device}: {error}") from None
        try:
            if self.rs485_mode is not None:
                port.rs485_mode = self.rs485_mode
            port.reset_input_buffer()
        except (OSError, ValueError, serial.SerialException) as error:
            port.close()
            raise OSError(f"cannot configure serial port {self.device}: {error}") from None
        return port

    async def _prepare(self) -> None:
        self._stopping = False
        self._serial = self._open_port()

    async def _open(self, task_group: anyio.abc.TaskGroup) -> None:
        framer = self._framer()
        info = self._info("serial", self.device, self.device, framer)
        session = self._new_session(framer, info, echo=self.echo)
        self._line = _Line(session, anyio.current_time())
        self._records[info.connection_id] = self._line
        self.hooks.connected(True, info)
        task_group.start_soon(self._run)

    def _close_port(self) -> None:
        if self._serial is not None:
            self._serial.close()
            self._serial = None
            if self._line is not None:
                self.hooks.connected(False, self._line.info)

    async def _close_listeners(self) -> None:
        self._stopping = True
        if self._read_scope is not None:
            self._read_scope.cancel()

    async def _finish_connections(self) -> None:
        with anyio.move_on_after(self.shutdown_timeout):
            while self._line is not None and self._line.busy:
                await anyio.sleep(0.01)
        self._close_port()
        self._records.clear()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self._serve_line()
                return
            except OSError as error:
                if self._stopping:
                    return
                if self.reconnect_delay is None:
                    raise
                logger.warning("%s: %s: reopening in %.1f s", self.name, error, self.reconnect_delay)
            self._close_port()
            while not self._stopping:
                await anyio.sleep(self.reconnect_delay)
                try:
                    self._serial = self._open_port()
                    if self._line is not None:
                        self.hooks.connected(True, self._line.info)
                    break
                except OSError as error:
                    logger.debug("%s: %s", self.name, error)

    async def _serve_line(self) -> None:
        assert self._serial is not None
        assert self._line is not None
        fd = self._serial.fileno()
        session = self._line.session
        current_time = event_loop_clock()

        async def write(data: bytes) -> None:
            view = memoryview(data)
            while view:
                try:
                    written = os.write(fd, view)
                except BlockingIOError:
                    await anyio.wait_writable(fd)
                    continue
                view = view[written:]

        while not self._stopping:
            deadline = session.next_deadline()
            with anyio.CancelScope(deadline=math.inf if deadline is None else deadline) as scope:
                self._read_scope = scope
                await anyio.wait_readable(fd)
            self._read_scope = None
            if self._stopping:
                return
            now = current_time()
            if scope.cancelled_caught:
                out = session.timeout(now)
            else:
                try:
                    data = os.read(fd, 4096)
                except BlockingIOError:
                    continue
                if not data:
                    raise OSError(f"serial port {self.device} closed")
                self._line.last_activity = now
                out = session.receive(data, now)
            if out:
                await write(out)
            while session.blocked is not None:
                out = await _unblock(session, write)
                if out:
                    await write(out)


async def serve_serial(
    answer: Answer, *, task_status: anyio.abc.TaskStatus[Any] = anyio.TASK_STATUS_IGNORED, **options: Any
) -> None:
    """``SerialServer(answer, **options).serve_forever()``: reports the server object when ready."""
    await SerialServer(answer, **options).serve_forever(task_status=task_status)
