"""pymodbus' server names, over the servers of modbus_anyio.

A pymodbus 3.16 program moves by changing its imports::

    from modbus_anyio import ModbusTcpServer, StartAsyncTcpServer, ServerAsyncStop
    from modbus_anyio.compat import ModbusServerContext, ModbusDeviceContext, ...

The classes take pymodbus' arguments (``context``, ``framer``,
``identity``, ``address``, ``ignore_missing_devices``,
``broadcast_enable``, ``trace_packet``, ``trace_pdu``, ``trace_connect``,
``custom_pdu``; ``sslctx`` for TLS; ``port``, ``baudrate``... for serial)
and any keyword of the modbus_anyio class they extend.  Differences, each
deliberate:

* the default address binds 127.0.0.1, not every interface (give
  ``address=("", 502)`` for every interface);
* ``trace_pdu`` sees :mod:`modbus_core` PDUs, and ``custom_pdu`` takes
  :class:`modbus_core.CustomFunction` entries;
* every hook may take one more positional argument, the
  :class:`~modbus_anyio.ConnectionInfo` (peer address, TLS role);
* they run on asyncio and on trio; ``serve_forever(background=True)``
  exists on asyncio only (elsewhere use ``async with server:``).

:func:`ServerAsyncStop` stops every server the ``StartAsync*`` functions
started in the running event loop (not only the last one).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
from anyio.lowlevel import RunVar

from modbus_core import CustomFunction, DeviceIdentity, ServerContext

from ._serial import SerialServer
from ._server import TcpServer, TlsServer, _current_backend_is_asyncio
from ._session import TraceConnect, TracePacket, TracePdu
from ._udp import UdpServer
from .compat import FramerType

if TYPE_CHECKING:
    from .compat import ModbusDeviceIdentification

__all__ = [
    "ModbusSerialServer",
    "ModbusTcpServer",
    "ModbusTlsServer",
    "ModbusUdpServer",
    "ServerAsyncStop",
    "StartAsyncSerialServer",
    "StartAsyncTcpServer",
    "StartAsyncTlsServer",
    "StartAsyncUdpServer",
    "started_servers",
]

Identity = "DeviceIdentity | ModbusDeviceIdentification | None"


def _common(
    identity: DeviceIdentity | ModbusDeviceIdentification | None,
    ignore_missing_devices: bool,
    broadcast_enable: bool,
    trace_packet: TracePacket | None,
    trace_pdu: TracePdu | None,
    trace_connect: TraceConnect | None,
    custom_pdu: Iterable[CustomFunction] | None,
) -> dict[str, Any]:
    return {
        "identity": identity,
        "ignore_missing_units": ignore_missing_devices,
        "broadcast": broadcast_enable,
        "trace_packet": trace_packet,
        "trace_pdu": trace_pdu,
        "trace_connect": trace_connect,
        "custom_pdu": list(custom_pdu) if custom_pdu else None,
    }


def _host(address: tuple[str, int]) -> str | None:
    host = address[0]
    return host if host else None


class _Background:
    """pymodbus' ``serve_forever(background=True)`` (asyncio only)."""

    async def serve_forever(
        self, *, background: bool = False, task_status: anyio.abc.TaskStatus[Any] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        if not background:
            await super().serve_forever(task_status=task_status)  # type: ignore[misc]
            return
        if not _current_backend_is_asyncio():
            raise RuntimeError("serve_forever(background=True) needs asyncio; use `async with server:` instead")
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        class _Status:
            def started(self, value: object = None) -> None:
                started.set_result(None)

        task = asyncio.ensure_future(super().serve_forever(task_status=_Status()))  # type: ignore[misc]
        self._background_task = task
        done, _ = await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # raises what stopped it


class ModbusTcpServer(_Background, TcpServer):
    """pymodbus' ``ModbusTcpServer`` (see the module documentation)."""

    def __init__(
        self,
        context: ServerContext,
        *,
        framer: FramerType | str = FramerType.SOCKET,
        identity: DeviceIdentity | ModbusDeviceIdentification | None = None,
        address: tuple[str, int] = ("127.0.0.1", 502),
        ignore_missing_devices: bool = False,
        broadcast_enable: bool = False,
        trace_packet: TracePacket | None = None,
        trace_pdu: TracePdu | None = None,
        trace_connect: TraceConnect | None = None,
        custom_pdu: Iterable[CustomFunction] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            context,
            host=_host(address),
            port=address[1],
            framer=framer,
            **_common(
                identity, ignore_missing_devices, broadcast_enable, trace_packet, trace_pdu, trace_connect, custom_pdu
            ),
            **options,
        )


class ModbusTlsServer(_Background, TlsServer):
    """pymodbus' ``ModbusTlsServer``: *sslctx* is required, as in pymodbus.

    The context is used as given (pymodbus' contexts do not ask for a
    client certificate unless told to: ``sslctx.verify_mode = ssl.CERT_REQUIRED``
    and ``sslctx.load_verify_locations(...)`` make it Modbus/TCP Security).
    """

    def __init__(
        self,
        context: ServerContext,
        *,
        framer: FramerType | str = FramerType.TLS,
        identity: DeviceIdentity | ModbusDeviceIdentification | None = None,
        address: tuple[str, int] = ("127.0.0.1", 802),
        sslctx: ssl.SSLContext | None = None,
        ignore_missing_devices: bool = False,
        broadcast_enable: bool = False,
        trace_packet: TracePacket | None = None,
        trace_pdu: TracePdu | None = None,
        trace_connect: TraceConnect | None = None,
        custom_pdu: Iterable[CustomFunction] | None = None,
        **options: Any,
    ) -> None:
        if sslctx is None:
            raise TypeError("Cannot start server without a certificate, please add sslctx=")
        super().__init__(
            context,
            ssl_context=sslctx,
            host=_host(address),
            port=address[1],
            framer=framer,
            **_common(
                identity, ignore_missing_devices, broadcast_enable, trace_packet, trace_pdu, trace_connect, custom_pdu
            ),
            **options,
        )


class ModbusUdpServer(_Background, UdpServer):
    """pymodbus' ``ModbusUdpServer`` (see the module documentation)."""

    def __init__(
        self,
        context: ServerContext,
        *,
        framer: FramerType | str = FramerType.SOCKET,
        identity: DeviceIdentity | ModbusDeviceIdentification | None = None,
        address: tuple[str, int] = ("127.0.0.1", 502),
        ignore_missing_devices: bool = False,
        broadcast_enable: bool = False,
        trace_packet: TracePacket | None = None,
        trace_pdu: TracePdu | None = None,
        trace_connect: TraceConnect | None = None,
        custom_pdu: Iterable[CustomFunction] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            context,
            host=_host(address),
            port=address[1],
            framer=framer,
            **_common(
                identity, ignore_missing_devices, broadcast_enable, trace_packet, trace_pdu, trace_connect, custom_pdu
            ),
            **options,
        )


class ModbusSerialServer(_Background, SerialServer):
    """pymodbus' ``ModbusSerialServer``: *handle_local_echo* is ``echo``;
    *timeout* is accepted and unused (frames end by length and silence)."""

    def __init__(
        self,
        context: ServerContext,
        *,
        framer: FramerType | str = FramerType.RTU,
        identity: DeviceIdentity | ModbusDeviceIdentification | None = None,
        port: str = "",
        stopbits: float = 1,
        bytesize: int = 8,
        parity: str = "N",
        baudrate: int = 19200,
        timeout: float = 3,
        handle_local_echo: bool = False,
        ignore_missing_devices: bool = False,
        broadcast_enable: bool = False,
        reconnect_delay: float = 2,
        trace_packet: TracePacket | None = None,
        trace_pdu: TracePdu | None = None,
        trace_connect: TraceConnect | None = None,
        custom_pdu: Iterable[CustomFunction] | None = None,
        **options: Any,
    ) -> None:
        del timeout
        super().__init__(
            context,
            port=port,
            stopbits=stopbits,
            bytesize=bytesize,
            parity=parity,
            baudrate=baudrate,
            framer=framer,
            echo=handle_local_echo,
            reconnect_delay=reconnect_delay,
            **_common(
                identity, ignore_missing_devices, broadcast_enable, trace_packet, trace_pdu, trace_connect, custom_pdu
            ),
            **options,
        )


# -- StartAsync* and ServerAsyncStop ---------------------------------------------
#
# The servers the StartAsync* functions started, per event loop run: anyio's
# RunVar keys its values by the running loop (asyncio) or run (trio) in a
# WeakKeyDictionary.  A ContextVar would not do: a value set inside the task
# running StartAsyncTcpServer is invisible to the sibling task that calls
# ServerAsyncStop.  And a process-wide list (pymodbus keeps one class
# attribute) would mix servers of different loops or threads.
_started: RunVar[set[Any]] = RunVar("modbuskit_started_servers")


def _registry() -> set[Any]:
    servers = _started.get(None)
    if servers is None:
        servers = set()
        _started.set(servers)
    return servers


async def _run_registered(server: Any) -> None:
    registry = _registry()
    registry.add(server)
    try:
        await server.serve_forever()
    finally:
        registry.discard(server)


async def StartAsyncTcpServer(context: ServerContext, **kwargs: Any) -> None:
    """Run a :class:`ModbusTcpServer` until :func:`ServerAsyncStop` (pymodbus' signature)."""
    await _run_registered(ModbusTcpServer(context, **kwargs))


async def StartAsyncTlsServer(context: ServerContext, **kwargs: Any) -> None:
    """Run a :class:`ModbusTlsServer` until :func:`ServerAsyncStop`."""
    await _run_registered(ModbusTlsServer(context, **kwargs))


async def StartAsyncUdpServer(context: ServerContext, **kwargs: Any) -> None:
    """Run a :class:`ModbusUdpServer` until :func:`ServerAsyncStop`."""
    await _run_registered(ModbusUdpServer(context, **kwargs))


async def StartAsyncSerialServer(context: ServerContext, **kwargs: Any) -> None:
    """Run a :class:`ModbusSerialServer` until :func:`ServerAsyncStop`."""
    await _run_registered(ModbusSerialServer(context, **kwargs))


def started_servers() -> list[Any]:
    """The servers the ``StartAsync*`` functions run now in this event loop
    (to learn a bound port, or stop one of them)."""
    return list(_started.get(None) or ())


async def ServerAsyncStop() -> None:
    """Stop every server the ``StartAsync*`` functions started in this event loop.

    Raises :class:`RuntimeError` when none runs, as pymodbus does.
    """
    servers = list(_started.get(None) or ())
    if not servers:
        raise RuntimeError("Modbus server not running.")
    async with anyio.create_task_group() as task_group:
        for server in servers:
            task_group.start_soon(server.shutdown)
