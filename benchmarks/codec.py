"""Codec speed: modbus_core against pymodbus, in the same process and run.

usage: python benchmarks/codec.py [--repeat 7]

Prints one line per operation:
``<operation> ours_us=<x> pymodbus_us=<y> ratio=<y/x>``.
Both sides do the same work per call, checked for correctness before any
timing: bytes in, a request object with unit and transaction id out (the
server's receive path), or a response object in, bytes out (its send path).
Repeats alternate between the two libraries so that a burst of load on this
shared machine hits both alike; the best repeat of each is reported.
"""

from __future__ import annotations

import argparse
import logging
import struct
import sys
import timeit
from collections.abc import Callable

from modbus_core import (
    MbapFramer,
    ReadHoldingRegisters,
    ReadHoldingRegistersResponse,
    Request,
    Response,
    RtuFramer,
    ServerConnection,
    crc16,
)

REGISTERS = tuple((i * 257) & 0xFFFF for i in range(125))
PDU_REQUEST = struct.pack(">BHH", 3, 0, 125)
TCP_REQUEST = struct.pack(">HHHB", 0x1234, 0, len(PDU_REQUEST) + 1, 1) + PDU_REQUEST
PDU_RESPONSE = struct.pack(">BB", 3, 250) + struct.pack(">125H", *REGISTERS)
TCP_RESPONSE = struct.pack(">HHHB", 0x1234, 0, len(PDU_RESPONSE) + 1, 1) + PDU_RESPONSE
RTU_REQUEST = bytes([1]) + PDU_REQUEST
RTU_REQUEST += crc16(RTU_REQUEST).to_bytes(2, "little")
RTU_RESPONSE = bytes([1]) + PDU_RESPONSE
RTU_RESPONSE += crc16(RTU_RESPONSE).to_bytes(2, "little")

Case = tuple[str, Callable[[], object], Callable[[], object]]


def _ours() -> dict[str, Callable[[], object]]:
    tcp = ServerConnection(MbapFramer())
    rtu = ServerConnection(RtuFramer(19200))
    tcp_response = Response(ReadHoldingRegistersResponse(REGISTERS), 1, 0x1234)
    rtu_response = Response(ReadHoldingRegistersResponse(REGISTERS), 1, 0)
    clock = [0.0]

    def tcp_decode() -> object:
        tcp.receive_data(TCP_REQUEST, 0.0)
        return tcp.next_event()

    def rtu_decode() -> object:
        clock[0] += 1.0  # a second of silence before each frame, as on a line
        rtu.receive_data(RTU_REQUEST, clock[0])
        return rtu.next_event()

    def tcp_encode() -> bytes:
        return tcp.send(tcp_response)

    def rtu_encode() -> bytes:
        return rtu.send(rtu_response)

    assert tcp_decode() == Request(ReadHoldingRegisters(0, 125), 1, 0x1234)
    assert rtu_decode() == Request(ReadHoldingRegisters(0, 125), 1, 0)
    assert tcp_encode() == TCP_RESPONSE
    assert rtu_encode() == RTU_RESPONSE
    return {"tcp_decode": tcp_decode, "tcp_encode": tcp_encode, "rtu_decode": rtu_decode, "rtu_encode": rtu_encode}


def _pymodbus() -> dict[str, Callable[[], object]]:
    from pymodbus.framer import FramerRTU, FramerSocket
    from pymodbus.pdu import DecodePDU
    from pymodbus.pdu.register_message import ReadHoldingRegistersRequest
    from pymodbus.pdu.register_message import ReadHoldingRegistersResponse as PmResponse

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL + 10)
    tcp = FramerSocket(DecodePDU(True))
    rtu = FramerRTU(DecodePDU(True))
    tcp_response = PmResponse(registers=list(REGISTERS), dev_id=1, transaction_id=0x1234)
    rtu_response = PmResponse(registers=list(REGISTERS), dev_id=1, transaction_id=0)

    def tcp_decode() -> object:
        return tcp.handleFrame(TCP_REQUEST, 0, 0)

    def rtu_decode() -> object:
        return rtu.handleFrame(RTU_REQUEST, 0, 0)

    used, pdu = tcp_decode()  # type: ignore[misc]
    assert used == len(TCP_REQUEST)
    assert isinstance(pdu, ReadHoldingRegistersRequest)
    assert (pdu.address, pdu.count, pdu.dev_id, pdu.transaction_id) == (0, 125, 1, 0x1234)
    used, pdu = rtu_decode()  # type: ignore[misc]
    assert used == len(RTU_REQUEST)
    assert (pdu.address, pdu.count, pdu.dev_id) == (0, 125, 1)
    assert tcp.buildFrame(tcp_response) == TCP_RESPONSE
    assert rtu.buildFrame(rtu_response) == RTU_RESPONSE
    return {
        "tcp_decode": tcp_decode,
        "tcp_encode": lambda: tcp.buildFrame(tcp_response),
        "rtu_decode": rtu_decode,
        "rtu_encode": lambda: rtu.buildFrame(rtu_response),
    }


OPERATIONS = {
    "tcp_decode": "decode_mbap_fc3_request",
    "tcp_encode": "encode_mbap_fc3_response_125",
    "rtu_decode": "decode_rtu_fc3_request_crc",
    "rtu_encode": "encode_rtu_fc3_response_125_crc",
}


def _number(fn: Callable[[], object]) -> int:
    number, _ = timeit.Timer(fn).autorange()
    return number


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=7, help="timed repeats per side (default 7)")
    args = parser.parse_args()
    ours = _ours()
    theirs = _pymodbus()
    for key, name in OPERATIONS.items():
        mine, other = ours[key], theirs[key]
        counts = (_number(mine), _number(other))
        best = [float("inf"), float("inf")]
        for _ in range(args.repeat):
            for side, fn in enumerate((mine, other)):
                seconds = timeit.Timer(fn).timeit(counts[side]) / counts[side]
                best[side] = min(best[side], seconds)
        ours_us, pymodbus_us = best[0] * 1e6, best[1] * 1e6
        print(f"{name} ours_us={ours_us:.3f} pymodbus_us={pymodbus_us:.3f} ratio={pymodbus_us / ours_us:.2f}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
