"""Recorded calls as a pcap file that Wireshark and tshark decode as Modbus.

The simulator sees requests and responses, not packets, so the packets are
synthesized: raw IPv4 or IPv6 (link type 101) with TCP (a handshake per
connection, sequence numbers that add up) or UDP around each Modbus/TCP
ADU, from the client's real address to the listener's.  Responses split by
fault injection appear as the separate segments they were; junk as the
bytes that were sent.

TLS calls are written decrypted, as Modbus/TCP to port 502 (on port 802
Wireshark would expect TLS records).  Calls of serial lines and
RTU-over-TCP listeners are written as Modbus/TCP too (the same PDUs with an MBAP header; junk bytes as sent),
between made-up addresses 10.0.0.<connection> -> 10.0.0.1, so that one
file shows all the simulator's traffic.  Wireshark decodes TCP port 502 as
Modbus/TCP by itself; for other ports use *Decode As* (tshark:
``-d tcp.port==5020,mbtcp``), or ask for ``server_port=502``.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from typing import BinaryIO

from modbus_core import MbapFramer, Response

from .._handler import RawReply
from ._traffic import CallRecord

__all__ = ["LINKTYPE_RAW", "write_pcap"]

LINKTYPE_RAW = 101  # raw IPv4/IPv6, no link-layer header
_FILE_HEADER = struct.Struct("<IHHiIII")
_PACKET_HEADER = struct.Struct("<IIII")
_MBAP = MbapFramer()

_SYN, _ACK, _PSH = 0x02, 0x10, 0x08


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _split_address(text: str, default_port: int) -> tuple[str, int] | None:
    """``"127.0.0.1:5020"`` / ``"[::1]:5020"`` -> (host, port); None for non-IP (serial)."""
    host, port = text, default_port
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        if port_text.isdigit():
            port = int(port_text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return host, port


class _Flow:
    """One synthesized connection: addresses, ports and TCP sequence numbers."""

    __slots__ = ("client", "client_port", "client_seq", "server", "server_port", "server_seq", "transport", "version")

    def __init__(self, client: str, client_port: int, server: str, server_port: int, transport: str) -> None:
        client_ip, server_ip = ipaddress.ip_address(client), ipaddress.ip_address(server)
        if client_ip.version != server_ip.version:  # an IPv4-mapped mix: keep both in IPv6
            client_ip = ipaddress.IPv6Address(f"::ffff:{client_ip}") if client_ip.version == 4 else client_ip
            server_ip = ipaddress.IPv6Address(f"::ffff:{server_ip}") if server_ip.version == 4 else server_ip
        self.version = client_ip.version
        self.client = client_ip.packed
        self.server = server_ip.packed
        self.client_port = client_port
        self.server_port = server_port
        self.transport = transport
        self.client_seq = 1000
        self.server_seq = 5000

    def packet(self, from_client: bool, payload: bytes, flags: int = _PSH | _ACK) -> bytes:
        source, target = (self.client, self.server) if from_client else (self.server, self.client)
        sport, dport = (self.client_port, self.server_port) if from_client else (self.server_port, self.client_port)
        if self.transport == "udp":
            protocol = 17
            segment = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
            checksum_at = 6
        else:
            protocol = 6
            seq, ack = (self.client_seq, self.server_seq) if from_client else (self.server_seq, self.client_seq)
            segment = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
            checksum_at = 16
            advance = len(payload) + (1 if flags & _SYN else 0)
            if from_client:
                self.client_seq = (self.client_seq + advance) & 0xFFFFFFFF
            else:
                self.server_seq = (self.server_seq + advance) & 0xFFFFFFFF
        if self.version == 4:
            pseudo = source + target + struct.pack("!BBH", 0, protocol, len(segment))
        else:
            pseudo = source + target + struct.pack("!IxxxB", len(segment), protocol)
        checksum = _checksum(pseudo + segment) or 0xFFFF
        segment = segment[:checksum_at] + struct.pack("!H", checksum) + segment[checksum_at + 2 :]
        if self.version == 4:
            header = struct.pack(
                "!BBHHHBBH4s4s", 0x45, 0, 20 + len(segment), 0, 0x4000, 64, protocol, 0, source, target
            )
            header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
        else:
            header = struct.pack("!IHBB16s16s", 6 << 28, len(segment), protocol, 64, source, target)
        return header + segment


def _request_adu(call: CallRecord) -> bytes:
    request = call.request
    return _MBAP.encode(request.unit, request.transaction_id, request.pdu.encode())


def _response_parts(call: CallRecord, native: bool) -> list[tuple[float, bytes]]:
    """(seconds after the answer started, bytes) for each piece written."""
    outcome = call.outcome
    if outcome is None:
        return []
    if isinstance(outcome, Response):
        data = (
            call.info.encode(outcome)
            if native
            else _MBAP.encode(outcome.unit, outcome.transaction_id, outcome.pdu.encode())
        )
        return [(0.0, data)]
    assert isinstance(outcome, RawReply)
    pieces: list[tuple[float, bytes]] = []
    offset = 0.0
    for part in outcome.parts:
        if isinstance(part, bytes):
            pieces.append((offset, part))
        else:
            offset += part
    return pieces


def write_pcap(calls: Iterable[CallRecord], out: BinaryIO, *, server_port: int | None = None) -> int:
    """Write *calls* to *out* as a pcap file; returns the number of packets.

    *server_port* replaces every listener's port (502 makes Wireshark
    decode without *Decode As*).
    """
    out.write(_FILE_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_RAW))
    flows: dict[tuple[str, int], _Flow] = {}
    packets = 0

    def emit(moment: float, data: bytes) -> None:
        nonlocal packets
        seconds = int(moment)
        micros = round((moment - seconds) * 1_000_000)
        if micros >= 1_000_000:
            seconds, micros = seconds + 1, micros - 1_000_000
        out.write(_PACKET_HEADER.pack(seconds, micros, len(data), len(data)))
        out.write(data)
        packets += 1

    for call in calls:
        info = call.info
        key = (info.server, info.connection_id)
        flow = flows.get(key)
        native = info.transport in ("tcp", "tls", "udp") and _split_address(info.local, 502) is not None
        if flow is None:
            local = _split_address(info.local, 502) if native else None
            peer = _split_address(info.peer, 0) if native else None
            if local is None or peer is None:
                native = False
                synthetic = 2 + info.connection_id % 250
                local, peer = ("10.0.0.1", 502), (f"10.0.0.{synthetic}", 1024 + info.connection_id % 60000)
            transport = "udp" if info.transport == "udp" else "tcp"
            port = local[1]
            if server_port is not None:
                port = server_port
            elif info.transport == "tls":
                port = 502  # written decrypted: Wireshark would take port 802 for TLS
            flow = _Flow(peer[0], peer[1], local[0], port, transport)
            flows[key] = flow
            if transport == "tcp":
                opening = call.time - 0.000003
                emit(opening, flow.packet(True, b"", _SYN))
                emit(opening + 0.000001, flow.packet(False, b"", _SYN | _ACK))
                emit(opening + 0.000002, flow.packet(True, b"", _ACK))
        native = native and not _is_rtu(call)
        emit(call.time, flow.packet(True, _request_adu(call)))
        answered = call.time + call.duration
        for offset, data in _response_parts(call, native):
            emit(answered + offset, flow.packet(False, data))
    return packets


def _is_rtu(call: CallRecord) -> bool:
    """Whether the listener frames as RTU or ASCII (its encoding is not MBAP)."""
    outcome = call.outcome
    if not isinstance(outcome, Response):
        return False
    try:
        data = call.info.encode(outcome)
    except Exception:  # noqa: BLE001 - a hand-built ConnectionInfo may not encode
        return True
    return not (len(data) >= 7 and data[2:4] == b"\x00\x00" and int.from_bytes(data[4:6], "big") == len(data) - 6)
