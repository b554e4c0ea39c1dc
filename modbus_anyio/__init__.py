"""modbus_anyio: Modbus servers on anyio (asyncio or trio), and the simulator.

Importing this package is cheap: the transport-independent pieces below
(handlers, Modbus/TCP Security, the pymodbus datastore names) import
neither anyio nor asyncio, so that ``modbus_sync`` can share them.
"""

from ._handler import ConnectionInfo as ConnectionInfo
from ._handler import Handler as Handler
from ._handler import HandlerResult as HandlerResult
from ._handler import RawReply as RawReply
from ._handler import dispatcher_handler as dispatcher_handler
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

__all__ = [
    "AccessRule",
    "client_role",
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
    "ROLE_OID",
    "RolePolicy",
    "server_ssl_context",
]
