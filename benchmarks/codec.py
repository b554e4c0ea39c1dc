"""Codec speed: modbus_core against pymodbus, in the same process and run.

usage: python benchmarks/codec.py [--repeat 7]

Prints one line per operation:
``<operation> ours_us=<x> pymodbus_us=<y> ratio=<y/x>``.

Both sides do the same work per call, checked for correctness before any
timing: bytes in, a request object with unit and transaction id out (the
server's receive path), or a response object in, bytes out (its send path).
Every MBAP request carries a new transaction id.  Every RTU decode is
handed a new ``bytes`` object, as a serial read would produce (the RTU
cache below looks the read up as it is, and Python caches the hash of a
``bytes`` object: reusing one object would flatter that lookup).

The server connection of modbus_core remembers the frames it has decoded
(pollers repeat the same requests; see ``ServerConnection``).  The four
main lines measure that, the path of a poller, with a new transaction id
for every MBAP request.  On RTU the remembered frame includes its CRC: a
read identical, CRC and all, to a frame already checked is not checked
again (identical bytes, identical result).  The ``_uncached`` lines measure the full work for
a request the connection has never seen: 4096 different requests in turn,
more than its caches hold.  Repeats alternate between the two libraries so
that a burst of load on this shared machine hits both alike; the best
repeat of each is reported.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import struct
import sys
import timeit
from collections.abc import Callable, Iterator
from typing import Any

from modbus_core import (
    MbapFramer,
    ReadHoldingRegisters,
    ReadHoldingRegistersResponse,
    Request,
    Response,
    RtuFramer,
    ServerConnection,
    ServerDiagnostics,
    crc16,
)

REGISTERS = tuple((i * 257) & 0xFFFF for i in range(125))
PDU_RESPONSE = struct.pack(">BB", 3, 250) + struct.pack(">125H", *REGISTERS)
TCP_RESPONSE = struct.pack(">HHHB", 0x1234, 0, len(PDU_RESPONSE) + 1, 1) + PDU_RESPONSE
RTU_RESPONSE = bytes([1]) + PDU_RESPONSE
RTU_RESPONSE += crc16(RTU_RESPONSE).to_bytes(2, "little")
DISTINCT = 4096  # requests in the uncached runs: far more than a connection caches


def tcp_request(transaction_id: int, address: int = 0) -> bytes:
    pdu = struct.pack(">BHH", 3, address, 125)
    return struct.pack(">HHHB", transaction_id, 0, len(pdu) + 1, 1) + pdu


def rtu_request(address: int = 0) -> bytes:
    frame = bytes([1]) + struct.pack(">BHH", 3, address, 125)
    return frame + crc16(frame).to_bytes(2, "little")


TCP_POLLS = [tcp_request(transaction_id) for transaction_id in range(1, DISTINCT + 1)]
TCP_DISTINCT = [tcp_request(address + 1, address) for address in range(DISTINCT)]
# Templates as bytearrays: bytes(template) is a new object on every call.
RTU_POLL = bytearray(rtu_request())
RTU_DISTINCT = [bytearray(rtu_request(address)) for address in range(DISTINCT)]


def _inputs() -> tuple[Iterator[bytes], Iterator[bytes], Iterator[bytearray]]:
    """Polls, distinct MBAP requests and distinct RTU templates, each side its own."""
    return itertools.cycle(TCP_POLLS), itertools.cycle(TCP_DISTINCT), itertools.cycle(RTU_DISTINCT)


Operations = dict[str, Callable[[], object]]


def _ours() -> Operations:
    # Configured as the servers configure them: with the line's counters.
    tcp = ServerConnection(MbapFramer(), diagnostics=ServerDiagnostics())
    tcp_cold = ServerConnection(MbapFramer(), diagnostics=ServerDiagnostics())
    rtu = ServerConnection(RtuFramer(19200), diagnostics=ServerDiagnostics())
    rtu_cold = ServerConnection(RtuFramer(19200), diagnostics=ServerDiagnostics())
    tcp_response = Response(ReadHoldingRegistersResponse(REGISTERS), 1, 0x1234)
    rtu_response = Response(ReadHoldingRegistersResponse(REGISTERS), 1, 0)
    polls, distinct_tcp, distinct_rtu = _inputs()
    clock = [0.0]

    def tcp_decode() -> object:
        tcp.receive_data(next(polls), 0.0)
        return tcp.next_event()

    def tcp_decode_uncached() -> object:
        tcp_cold.receive_data(next(distinct_tcp), 0.0)
        return tcp_cold.next_event()

    def rtu_decode() -> object:
        clock[0] += 1.0  # a second of silence before each frame, as on a line
        rtu.receive_data(bytes(RTU_POLL), clock[0])
        return rtu.next_event()

    def rtu_decode_uncached() -> object:
        clock[0] += 1.0
        rtu_cold.receive_data(bytes(next(distinct_rtu)), clock[0])
        return rtu_cold.next_event()

    def tcp_encode() -> bytes:
        return tcp.send(tcp_response)

    def rtu_encode() -> bytes:
        return rtu.send(rtu_response)

    for transaction_id in range(1, 3):
        assert tcp_decode() == Request(ReadHoldingRegisters(0, 125), 1, transaction_id)
    for address in range(3):
        assert tcp_decode_uncached() == Request(ReadHoldingRegisters(address, 125), 1, address + 1)
        assert rtu_decode_uncached() == Request(ReadHoldingRegisters(address, 125), 1, 0)
    for _ in range(2):
        assert rtu_decode() == Request(ReadHoldingRegisters(0, 125), 1, 0)
    assert tcp_encode() == TCP_RESPONSE
    assert rtu_encode() == RTU_RESPONSE
    return {
        "tcp_decode": tcp_decode,
        "tcp_decode_uncached": tcp_decode_uncached,
        "tcp_encode": tcp_encode,
        "rtu_decode": rtu_decode,
        "rtu_decode_uncached": rtu_decode_uncached,
        "rtu_encode": rtu_encode,
    }


def _pymodbus() -> Operations:
    from pymodbus.framer import FramerRTU, FramerSocket
    from pymodbus.pdu import DecodePDU
    from pymodbus.pdu.register_message import ReadHoldingRegistersRequest
    from pymodbus.pdu.register_message import ReadHoldingRegistersResponse as PmResponse

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL + 10)
    tcp = FramerSocket(DecodePDU(True))
    rtu = FramerRTU(DecodePDU(True))
    tcp_response = PmResponse(registers=list(REGISTERS), dev_id=1, transaction_id=0x1234)
    rtu_response = PmResponse(registers=list(REGISTERS), dev_id=1, transaction_id=0)
    polls, distinct_tcp, distinct_rtu = _inputs()

    def tcp_decode() -> Any:
        return tcp.handleFrame(next(polls), 0, 0)

    def tcp_decode_uncached() -> Any:
        return tcp.handleFrame(next(distinct_tcp), 0, 0)

    def rtu_decode() -> Any:
        return rtu.handleFrame(bytes(RTU_POLL), 0, 0)

    def rtu_decode_uncached() -> Any:
        return rtu.handleFrame(bytes(next(distinct_rtu)), 0, 0)

    used, pdu = tcp_decode()
    assert used == 12
    assert isinstance(pdu, ReadHoldingRegistersRequest)
    assert (pdu.address, pdu.count, pdu.dev_id, pdu.transaction_id) == (0, 125, 1, 1)
    used, pdu = tcp_decode_uncached()
    assert (used, pdu.address, pdu.count, pdu.dev_id, pdu.transaction_id) == (12, 0, 125, 1, 1)
    used, pdu = rtu_decode()
    assert used == 8
    assert (pdu.address, pdu.count, pdu.dev_id) == (0, 125, 1)
    used, pdu = rtu_decode_uncached()
    assert (used, pdu.address, pdu.count, pdu.dev_id) == (8, 0, 125, 1)
    assert tcp.buildFrame(tcp_response) == TCP_RESPONSE
    assert rtu.buildFrame(rtu_response) == RTU_RESPONSE
    return {
        "tcp_decode": tcp_decode,
        "tcp_decode_uncached": tcp_decode_uncached,
        "tcp_encode": lambda: tcp.buildFrame(tcp_response),
        "rtu_decode": rtu_decode,
        "rtu_decode_uncached": rtu_decode_uncached,
        "rtu_encode": lambda: rtu.buildFrame(rtu_response),
    }


OPERATIONS = {
    "tcp_decode": "decode_mbap_fc3_request",
    "tcp_encode": "encode_mbap_fc3_response_125",
    "rtu_decode": "decode_rtu_fc3_request_crc",
    "rtu_encode": "encode_rtu_fc3_response_125_crc",
    "tcp_decode_uncached": "decode_mbap_fc3_request_uncached",
    "rtu_decode_uncached": "decode_rtu_fc3_request_crc_uncached",
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
