"""modbus_anyio: Modbus servers on anyio (asyncio, uvloop or trio), and the simulator.

::

    import anyio
    from modbus_core import Device, ServerContext
    from modbus_anyio import TcpServer

    async def main():
        context = ServerContext(Device.sized(100))
        async with TcpServer(context, port=5020) as server:   # 127.0.0.1 unless told
            await anyio.sleep_forever()

    anyio.run(main)              # or anyio.run(main, backend="trio"),
                                 # or anyio.run(main, backend_options={"use_uvloop": True})

Servers: :class:`TcpServer`, :class:`TlsServer` (Modbus/TCP Security),
:class:`UdpServer`, :class:`SerialServer`, and :func:`serve_stream` for any
anyio byte stream; they answer from a :class:`modbus_core.ServerContext` or
through a :data:`Handler`.  pymodbus' names (``ModbusTcpServer``,
``StartAsyncTcpServer``, ``ServerAsyncStop``...) are thin layers over them.

Importing this package is cheap: the transport-independent pieces
(handlers, Modbus/TCP Security, the pymodbus datastore names) import
neither anyio nor asyncio, so that ``modbus_sync`` can share them; the
servers load on first use.
"""

import importlib
from typing import TYPE_CHECKING, Any

from ._handler import ConnectionInfo as ConnectionInfo
from ._handler import Handler as Handler
from ._handler import HandlerResult as HandlerResult
from ._handler import RawReply as RawReply
from ._handler import dispatcher_handler as dispatcher_handler
from ._net import ConnectionPolicy as ConnectionPolicy
from ._security import ROLE_OID as ROLE_OID
from ._security import AccessRule as AccessRule
from ._security import RolePolicy as RolePolicy
from ._security import client_role as client_role
from ._security import server_ssl_context as server_ssl_context
from .compat import FramerType as FramerType
from .compat import ModbusDeviceContext as ModbusDeviceContext
from .compat import ModbusDeviceIdentification as ModbusDeviceIdentification
from .compat import ModbusSequentialDataBlock as ModbusSequentialDataBlock
from .compat import ModbusServerContext as ModbusServerContext
from .compat import ModbusSparseDataBlock as ModbusSparseDataBlock

if TYPE_CHECKING:
    from ._pymodbus import ModbusSerialServer as ModbusSerialServer
    from ._pymodbus import ModbusTcpServer as ModbusTcpServer
    from ._pymodbus import ModbusTlsServer as ModbusTlsServer
    from ._pymodbus import ModbusUdpServer as ModbusUdpServer
    from ._pymodbus import ServerAsyncStop as ServerAsyncStop
    from ._pymodbus import StartAsyncSerialServer as StartAsyncSerialServer
    from ._pymodbus import StartAsyncTcpServer as StartAsyncTcpServer
    from ._pymodbus import StartAsyncTlsServer as StartAsyncTlsServer
    from ._pymodbus import StartAsyncUdpServer as StartAsyncUdpServer
    from ._pymodbus import started_servers as started_servers
    from ._serial import SerialServer as SerialServer
    from ._serial import serve_serial as serve_serial
    from ._server import TcpServer as TcpServer
    from ._server import TlsServer as TlsServer
    from ._server import serve_stream as serve_stream
    from ._server import serve_tcp as serve_tcp
    from ._server import serve_tls as serve_tls
    from ._udp import UdpServer as UdpServer
    from ._udp import serve_udp as serve_udp

# The servers import anyio: they load on first use, so that modbus_sync can import
# the transport-independent pieces above without pulling in an event loop.
_LAZY = {
    "ModbusSerialServer": "_pymodbus",
    "ModbusTcpServer": "_pymodbus",
    "ModbusTlsServer": "_pymodbus",
    "ModbusUdpServer": "_pymodbus",
    "ServerAsyncStop": "_pymodbus",
    "StartAsyncSerialServer": "_pymodbus",
    "StartAsyncTcpServer": "_pymodbus",
    "StartAsyncTlsServer": "_pymodbus",
    "StartAsyncUdpServer": "_pymodbus",
    "started_servers": "_pymodbus",
    "SerialServer": "_serial",
    "serve_serial": "_serial",
    "TcpServer": "_server",
    "TlsServer": "_server",
    "serve_stream": "_server",
    "serve_tcp": "_server",
    "serve_tls": "_server",
    "UdpServer": "_udp",
    "serve_udp": "_udp",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'modbus_anyio' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"modbus_anyio.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AccessRule",
    "client_role",
    "ConnectionInfo",
    "ConnectionPolicy",
    "dispatcher_handler",
    "FramerType",
    "Handler",
    "HandlerResult",
    "ModbusDeviceContext",
    "ModbusDeviceIdentification",
    "ModbusSequentialDataBlock",
    "ModbusSerialServer",
    "ModbusServerContext",
    "ModbusSparseDataBlock",
    "ModbusTcpServer",
    "ModbusTlsServer",
    "ModbusUdpServer",
    "RawReply",
    "ROLE_OID",
    "RolePolicy",
    "SerialServer",
    "serve_serial",
    "serve_stream",
    "serve_tcp",
    "serve_tls",
    "serve_udp",
    "server_ssl_context",
    "ServerAsyncStop",
    "StartAsyncSerialServer",
    "StartAsyncTcpServer",
    "StartAsyncTlsServer",
    "StartAsyncUdpServer",
    "started_servers",
    "TcpServer",
    "TlsServer",
    "UdpServer",
]
