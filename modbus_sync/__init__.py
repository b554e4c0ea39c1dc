"""modbus_sync: Modbus servers on blocking sockets, selectors and pyserial.

For applications without an event loop.  The same protocol stack as
``modbus_anyio`` (all protocol work happens in :mod:`modbus_core`), the
same datastore objects, handlers, hooks and Modbus/TCP Security rules::

    from modbus_core import Device, ServerContext
    from modbus_sync import TcpServer

    context = ServerContext(Device.sized(100))
    with TcpServer(context, port=5020) as server:    # serves in a background thread
        ...                                          # context changes are seen by clients

    TcpServer(context, port=5020).serve_forever()    # or block this thread

pymodbus' blocking entry points are here too: ``StartTcpServer``,
``StartTlsServer``, ``StartUdpServer``, ``StartSerialServer`` and
``ServerStop``, with the pymodbus datastore names (``ModbusServerContext``
and friends).  See :mod:`modbus_sync._server` for the concurrency model.
"""

from modbus_anyio._handler import ConnectionInfo as ConnectionInfo
from modbus_anyio._handler import Handler as Handler
from modbus_anyio._handler import HandlerResult as HandlerResult
from modbus_anyio._handler import RawReply as RawReply
from modbus_anyio._handler import dispatcher_handler as dispatcher_handler
from modbus_anyio._security import AccessRule as AccessRule
from modbus_anyio._security import RolePolicy as RolePolicy
from modbus_anyio._security import server_ssl_context as server_ssl_context
from modbus_anyio.compat import FramerType as FramerType
from modbus_anyio.compat import ModbusDeviceContext as ModbusDeviceContext
from modbus_anyio.compat import ModbusDeviceIdentification as ModbusDeviceIdentification
from modbus_anyio.compat import ModbusSequentialDataBlock as ModbusSequentialDataBlock
from modbus_anyio.compat import ModbusServerContext as ModbusServerContext
from modbus_anyio.compat import ModbusSparseDataBlock as ModbusSparseDataBlock

from ._serial import SerialServer as SerialServer
from ._server import Server as Server
from ._start import ServerStop as ServerStop
from ._start import StartSerialServer as StartSerialServer
from ._start import StartTcpServer as StartTcpServer
from ._start import StartTlsServer as StartTlsServer
from ._start import StartUdpServer as StartUdpServer
from ._tcp import TcpServer as TcpServer
from ._tcp import TlsServer as TlsServer
from ._udp import UdpServer as UdpServer

__all__ = [
    "AccessRule",
    "ConnectionInfo",
    "dispatcher_handler",
    "FramerType",
    "Handler",
    "HandlerResult",
    "ModbusDeviceContext",
    "ModbusDeviceIdentification",
    "ModbusSequentialDataBlock",
    "ModbusServerContext",
    "ModbusSparseDataBlock",
    "RawReply",
    "RolePolicy",
    "SerialServer",
    "Server",
    "server_ssl_context",
    "ServerStop",
    "StartSerialServer",
    "StartTcpServer",
    "StartTlsServer",
    "StartUdpServer",
    "TcpServer",
    "TlsServer",
    "UdpServer",
]
