"""modbus_core: a sans-IO Modbus protocol stack.

Framing (MBAP, RTU, ASCII), every PDU of the Modbus application protocol,
connections in the style of h11, a datastore and a dispatcher with the
specification's semantics.  No I/O, no clock, no threads, no dependencies:
adapters (``modbus_anyio``, ``modbus_sync``, or your own event loop) move
the bytes and pass the time.
"""

from ._checksum import crc16 as crc16
from ._checksum import lrc as lrc
from ._connection import ClientConnection as ClientConnection
from ._connection import ServerConnection as ServerConnection
from ._datastore import AsyncDevice as AsyncDevice
from ._datastore import BitTable as BitTable
from ._datastore import Change as Change
from ._datastore import Device as Device
from ._datastore import RegisterTable as RegisterTable
from ._datastore import ServerContext as ServerContext
from ._datastore import Subscription as Subscription
from ._datastore import TableKind as TableKind
from ._diagnostics import ServerDiagnostics as ServerDiagnostics
from ._dispatch import Dispatcher as Dispatcher
from ._errors import LocalProtocolError as LocalProtocolError
from ._errors import ModbusError as ModbusError
from ._errors import ModbusExceptionError as ModbusExceptionError
from ._errors import ProtocolError as ProtocolError
from ._errors import RemoteProtocolError as RemoteProtocolError
from ._events import NEED_DATA as NEED_DATA
from ._events import DropCause as DropCause
from ._events import Event as Event
from ._events import FrameDropped as FrameDropped
from ._events import NeedData as NeedData
from ._events import Request as Request
from ._events import Response as Response
from ._framing import AsciiFramer as AsciiFramer
from ._framing import Framer as Framer
from ._framing import MbapFramer as MbapFramer
from ._framing import RtuFramer as RtuFramer
from ._functions import CustomFunction as CustomFunction
from ._functions import CustomPdu as CustomPdu
from ._functions import FunctionTable as FunctionTable
from ._functions import RtuLength as RtuLength
from ._identity import DeviceIdentity as DeviceIdentity
from ._pdu import DeviceIdCode as DeviceIdCode
from ._pdu import Diagnostics as Diagnostics
from ._pdu import DiagnosticsResponse as DiagnosticsResponse
from ._pdu import DiagnosticSubFunction as DiagnosticSubFunction
from ._pdu import ExceptionCode as ExceptionCode
from ._pdu import ExceptionResponse as ExceptionResponse
from ._pdu import FileRecord as FileRecord
from ._pdu import FileRecordReference as FileRecordReference
from ._pdu import FunctionCode as FunctionCode
from ._pdu import GetCommEventCounter as GetCommEventCounter
from ._pdu import GetCommEventCounterResponse as GetCommEventCounterResponse
from ._pdu import GetCommEventLog as GetCommEventLog
from ._pdu import GetCommEventLogResponse as GetCommEventLogResponse
from ._pdu import MalformedRequest as MalformedRequest
from ._pdu import MaskWriteRegister as MaskWriteRegister
from ._pdu import MaskWriteRegisterResponse as MaskWriteRegisterResponse
from ._pdu import Pdu as Pdu
from ._pdu import RawPdu as RawPdu
from ._pdu import ReadCoils as ReadCoils
from ._pdu import ReadCoilsResponse as ReadCoilsResponse
from ._pdu import ReadDeviceIdentification as ReadDeviceIdentification
from ._pdu import ReadDeviceIdentificationResponse as ReadDeviceIdentificationResponse
from ._pdu import ReadDiscreteInputs as ReadDiscreteInputs
from ._pdu import ReadDiscreteInputsResponse as ReadDiscreteInputsResponse
from ._pdu import ReadExceptionStatus as ReadExceptionStatus
from ._pdu import ReadExceptionStatusResponse as ReadExceptionStatusResponse
from ._pdu import ReadFifoQueue as ReadFifoQueue
from ._pdu import ReadFifoQueueResponse as ReadFifoQueueResponse
from ._pdu import ReadFileRecord as ReadFileRecord
from ._pdu import ReadFileRecordResponse as ReadFileRecordResponse
from ._pdu import ReadHoldingRegisters as ReadHoldingRegisters
from ._pdu import ReadHoldingRegistersResponse as ReadHoldingRegistersResponse
from ._pdu import ReadInputRegisters as ReadInputRegisters
from ._pdu import ReadInputRegistersResponse as ReadInputRegistersResponse
from ._pdu import ReadWriteMultipleRegisters as ReadWriteMultipleRegisters
from ._pdu import ReadWriteMultipleRegistersResponse as ReadWriteMultipleRegistersResponse
from ._pdu import ReportServerId as ReportServerId
from ._pdu import ReportServerIdResponse as ReportServerIdResponse
from ._pdu import RequestPdu as RequestPdu
from ._pdu import ResponsePdu as ResponsePdu
from ._pdu import WriteFileRecord as WriteFileRecord
from ._pdu import WriteFileRecordResponse as WriteFileRecordResponse
from ._pdu import WriteMultipleCoils as WriteMultipleCoils
from ._pdu import WriteMultipleCoilsResponse as WriteMultipleCoilsResponse
from ._pdu import WriteMultipleRegisters as WriteMultipleRegisters
from ._pdu import WriteMultipleRegistersResponse as WriteMultipleRegistersResponse
from ._pdu import WriteSingleCoil as WriteSingleCoil
from ._pdu import WriteSingleCoilResponse as WriteSingleCoilResponse
from ._pdu import WriteSingleRegister as WriteSingleRegister
from ._pdu import WriteSingleRegisterResponse as WriteSingleRegisterResponse
from ._values import DataType as DataType
from ._values import from_registers as from_registers
from ._values import register_count as register_count
from ._values import to_registers as to_registers
from ._version import __version__ as __version__

__all__ = [
    "__version__",
    "AsciiFramer",
    "AsyncDevice",
    "BitTable",
    "Change",
    "ClientConnection",
    "crc16",
    "CustomFunction",
    "CustomPdu",
    "DataType",
    "Device",
    "DeviceIdCode",
    "DeviceIdentity",
    "Diagnostics",
    "DiagnosticsResponse",
    "DiagnosticSubFunction",
    "Dispatcher",
    "DropCause",
    "Event",
    "ExceptionCode",
    "ExceptionResponse",
    "FileRecord",
    "FileRecordReference",
    "FrameDropped",
    "Framer",
    "from_registers",
    "FunctionCode",
    "FunctionTable",
    "GetCommEventCounter",
    "GetCommEventCounterResponse",
    "GetCommEventLog",
    "GetCommEventLogResponse",
    "LocalProtocolError",
    "lrc",
    "MalformedRequest",
    "MaskWriteRegister",
    "MaskWriteRegisterResponse",
    "MbapFramer",
    "ModbusError",
    "ModbusExceptionError",
    "NEED_DATA",
    "NeedData",
    "Pdu",
    "ProtocolError",
    "RawPdu",
    "ReadCoils",
    "ReadCoilsResponse",
    "ReadDeviceIdentification",
    "ReadDeviceIdentificationResponse",
    "ReadDiscreteInputs",
    "ReadDiscreteInputsResponse",
    "ReadExceptionStatus",
    "ReadExceptionStatusResponse",
    "ReadFifoQueue",
    "ReadFifoQueueResponse",
    "ReadFileRecord",
    "ReadFileRecordResponse",
    "ReadHoldingRegisters",
    "ReadHoldingRegistersResponse",
    "ReadInputRegisters",
    "ReadInputRegistersResponse",
    "ReadWriteMultipleRegisters",
    "ReadWriteMultipleRegistersResponse",
    "register_count",
    "RegisterTable",
    "RemoteProtocolError",
    "ReportServerId",
    "ReportServerIdResponse",
    "Request",
    "RequestPdu",
    "Response",
    "ResponsePdu",
    "RtuFramer",
    "RtuLength",
    "ServerConnection",
    "ServerContext",
    "ServerDiagnostics",
    "Subscription",
    "TableKind",
    "to_registers",
    "WriteFileRecord",
    "WriteFileRecordResponse",
    "WriteMultipleCoils",
    "WriteMultipleCoilsResponse",
    "WriteMultipleRegisters",
    "WriteMultipleRegistersResponse",
    "WriteSingleCoil",
    "WriteSingleCoilResponse",
    "WriteSingleRegister",
    "WriteSingleRegisterResponse",
]
