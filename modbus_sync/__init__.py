"""modbus_sync: Modbus servers on blocking sockets, selectors and pyserial.

For applications without an event loop.  The same protocol stack as
``modbus_anyio`` (all protocol work happens in :mod:`modbus_core`, through
the same session: role rules, trace hooks, handlers), the same datastore
objects, options and robustness::

    from modbus_core import Device, ServerContext
    from modbus_sync import TcpServer

    context = ServerContext(Device.sized(100))
    with TcpServer(context, port=5020) as server:    # serves in a background thread
        ...                                          # clients see what the program writes

    TcpServer(context, port=5020).serve_forever()    # or block this thread; shutdown() from any other

Servers: :class:`TcpServer` (any framer: MBAP, RTU or ASCII over TCP),
:class:`TlsServer` (Modbus/TCP Security: TLS 1.2+, client roles,
:class:`RolePolicy`), :class:`UdpServer` and :class:`SerialServer` (RTU or
ASCII, pyserial).  Each runs one ``selectors`` loop in one thread: no
thread per connection (a connection costs about 2 KiB), requests of a
connection answered in order, pipelined ones in one write; a handler that
blocks (a gateway, a database) gets ``handler_threads=N`` so that it does
not stall the other connections.  The datastore locks itself, so servers,
handler threads and the application may share it.

pymodbus' blocking entry points are here too: ``StartTcpServer``,
``StartTlsServer``, ``StartUdpServer``, ``StartSerialServer`` and
``ServerStop`` (which stops every server the ``Start*`` functions run, from
any thread or a signal handler), with the pymodbus datastore names
(``ModbusServerContext`` and friends, from ``modbus_anyio.compat``).
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
