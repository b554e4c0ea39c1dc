"""A user-defined function code, 65 "read label": its PDUs, and a server that answers it.

    python examples/custom_function.py [--port 5020]

``hypothesis_codec.py`` and ``fuzz_custom_function.py`` import it to fuzz it.

Request: function code 0x41, one byte (which label, 0..9).  Response: function
code 0x41, a byte count, then that many bytes of UTF-8 text.  The labels are
strings of 8 registers (16 bytes) in holding registers 100, 108, ... of the
device, so the request can be served by any modbuskit server given
``custom_pdu=[READ_LABEL]`` (or ``functions=FunctionTable([READ_LABEL])``).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from modbus_core import (
    CustomFunction,
    DataType,
    Device,
    ExceptionCode,
    ModbusExceptionError,
    RequestPdu,
    ResponsePdu,
)

LABELS = 10
LABEL_ADDRESS = 100
LABEL_REGISTERS = 8


@dataclasses.dataclass(frozen=True, slots=True)
class ReadLabel(RequestPdu):
    """0x41: read label *index* (0..9)."""

    function_code: ClassVar[int] = 0x41
    index: int

    def __post_init__(self) -> None:
        if not 0 <= self.index <= 0xFF:
            raise ValueError(f"index is one byte, got {self.index}")

    def encode(self) -> bytes:
        return bytes((self.function_code, self.index))

    @classmethod
    def decode(cls, pdu: bytes) -> ReadLabel:
        if len(pdu) != 2:
            raise ValueError(f"a read label request is 2 bytes, got {len(pdu)}")
        return cls(pdu[1])

    def execute(self, device: Device) -> ReadLabelResponse:
        """Called by the dispatcher; an exception code is raised as ModbusExceptionError."""
        if self.index >= LABELS:
            raise ModbusExceptionError(ExceptionCode.ILLEGAL_DATA_ADDRESS, f"no label {self.index}")
        address = LABEL_ADDRESS + LABEL_REGISTERS * self.index
        text = device.holding_registers.get_value(address, DataType.STRING, length=LABEL_REGISTERS)
        assert isinstance(text, str)
        return ReadLabelResponse(text)


@dataclasses.dataclass(frozen=True, slots=True)
class ReadLabelResponse(ResponsePdu):
    """0x41 response: the label's text."""

    function_code: ClassVar[int] = 0x41
    text: str

    def __post_init__(self) -> None:
        if len(self.text.encode("utf-8")) > 250:
            raise ValueError("a label holds at most 250 bytes of UTF-8")

    def encode(self) -> bytes:
        raw = self.text.encode("utf-8")
        return bytes((self.function_code, len(raw))) + raw

    @classmethod
    def decode(cls, pdu: bytes) -> ReadLabelResponse:
        if len(pdu) < 2 or len(pdu) != 2 + pdu[1]:
            raise ValueError("the byte count does not match the length")
        return cls(pdu[2:].decode("utf-8"))  # UnicodeDecodeError is a ValueError


def _response_length(pdu: bytes) -> int | None:
    """RTU: where a response ends, from the bytes received so far (None: need more)."""
    return 2 + pdu[1] if len(pdu) >= 2 else None


READ_LABEL = CustomFunction(0x41, ReadLabel, ReadLabelResponse, request_length=2, response_length=_response_length)
"""Give it to a FunctionTable, or to a server as ``custom_pdu=[READ_LABEL]``."""


async def main(port: int) -> None:
    """Serve labels 0..2 over Modbus TCP, until Ctrl-C."""
    import signal

    import anyio

    from modbus_anyio import TcpServer
    from modbus_core import ServerContext

    device = Device.sized(200)
    for index, text in enumerate(["pump P-101", "valve V-7", "tank T-1"]):
        address = LABEL_ADDRESS + LABEL_REGISTERS * index
        device.holding_registers.set_value(address, text, DataType.STRING, length=LABEL_REGISTERS)
    async with TcpServer(ServerContext(device), port=port, custom_pdu=[READ_LABEL]) as server:
        print(f"listening on tcp://127.0.0.1:{server.port}", flush=True)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break


if __name__ == "__main__":
    import argparse

    import anyio

    parser = argparse.ArgumentParser(description="Serve the custom function code 65, read label.")
    parser.add_argument("--port", type=int, default=5020, help="TCP port (0: any free port)")
    anyio.run(main, parser.parse_args().port)
