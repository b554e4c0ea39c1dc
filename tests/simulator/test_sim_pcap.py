"""The traffic download: a pcap file that tshark decodes as Modbus."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import anyio
import pytest

from modbus_core import MbapFramer, ReadHoldingRegisters

from .sim_support import http, modbus_address, modbus_client, running, small_config

pytestmark = [pytest.mark.anyio, pytest.mark.skipif(shutil.which("tshark") is None, reason="needs tshark")]

FIELDS = ["frame.number", "ip.src", "ipv6.src", "tcp.srcport", "udp.srcport", "mbtcp.trans_id", "mbtcp.unit_id"]
FIELDS += ["modbus.func_code", "modbus.regval_uint16", "modbus.exception_code", "modbus.request_frame"]


def tshark(path: Path, *options: str) -> list[dict[str, str]]:
    command = ["tshark", "-r", str(path), "-T", "fields", *options]
    for field in FIELDS:
        command += ["-e", field]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    rows = [dict(zip(FIELDS, line.split("\t"), strict=True)) for line in result.stdout.splitlines()]
    return [row for row in rows if row["mbtcp.trans_id"]]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_recorded_traffic_decodes_as_modbus_in_tshark(tmp_path: Path) -> None:
    config = small_config(
        servers=[
            {"name": "tcp", "transport": "tcp", "port": 0},
            {"name": "v6", "transport": "tcp", "host": "::1", "port": 0},
            {"name": "udp", "transport": "udp", "port": 0},
        ]
    )
    async with running(config) as simulator, http(simulator) as web:
        tcp = modbus_address(simulator, "tcp")
        v6 = modbus_address(simulator, "v6")
        udp = modbus_address(simulator, "udp")
        simulator.faults.add("split", pieces=2, pause=0.01, unit=2)

        def traffic() -> None:
            with modbus_client(tcp) as client:
                assert client.read_holding_registers(0, count=2, device_id=1).registers == [100, 0xFFFF]
                assert client.read_holding_registers(30, count=1, device_id=1).exception_code == 2
                assert client.read_holding_registers(0, count=6, device_id=2).registers == [500, 0, 0, 0, 0, 0]
            with modbus_client(v6) as client:
                assert not client.write_register(0, 7, device_id=1).isError()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(2)
                sock.sendto(MbapFramer().encode(1, 99, ReadHoldingRegisters(0, 1).encode()), udp)
                assert sock.recv(512)[-2:] == b"\x00\x07"

        await anyio.to_thread.run_sync(traffic)
        native = await web.get("/api/calls.pcap")
        assert native.status_code == 200
        assert native.headers["content-type"] == "application/vnd.tcpdump.pcap"
        assert native.headers["content-disposition"].startswith('attachment; filename="modbuskit-')
        as_502 = await web.get("/api/calls.pcap", params={"server_port": 502})
        only_udp = await web.get("/api/calls.pcap", params={"server": "udp"})
    native_path = tmp_path / "native.pcap"
    native_path.write_bytes(native.content)
    decode_as = [option for port in (tcp[1], v6[1], udp[1]) for option in ("-d", f"tcp.port=={port},mbtcp")]
    decode_as += ["-d", f"udp.port=={udp[1]},mbudp"]
    rows = await anyio.to_thread.run_sync(lambda: tshark(native_path, *decode_as))
    # Five requests, five answers (one split in two segments, reassembled into one).
    assert [(row["mbtcp.trans_id"], row["modbus.func_code"]) for row in rows] == [
        ("1", "3"),
        ("1", "3"),
        ("2", "3"),
        ("2", "3"),
        ("3", "3"),
        ("3", "3"),
        ("1", "6"),
        ("1", "6"),
        ("99", "3"),
        ("99", "3"),
    ]
    assert rows[3]["modbus.exception_code"] == "2"
    assert rows[6]["ipv6.src"] == "::1"
    assert rows[8]["udp.srcport"] != ""
    path_502 = tmp_path / "502.pcap"
    path_502.write_bytes(as_502.content)
    rows = await anyio.to_thread.run_sync(lambda: tshark(path_502, "-d", "udp.port==502,mbudp"))
    # On port 502 tshark tells requests from responses, and decodes the registers answered.
    answers = [
        (row["modbus.regval_uint16"], row["modbus.exception_code"]) for row in rows if row["tcp.srcport"] == "502"
    ]
    assert answers == [("100,65535", ""), ("", "2"), ("500,0,0,0,0,0", ""), ("", "")]
    udp_path = tmp_path / "udp.pcap"
    udp_path.write_bytes(only_udp.content)
    rows = await anyio.to_thread.run_sync(lambda: tshark(udp_path, "-d", f"udp.port=={udp[1]},mbudp"))
    assert [row["mbtcp.trans_id"] for row in rows] == ["99", "99"]


def test_calls_of_serial_lines_are_written_as_modbus_tcp(tmp_path: Path) -> None:
    from modbus_anyio import ConnectionInfo, RawReply
    from modbus_anyio.simulator._pcap import write_pcap
    from modbus_anyio.simulator._traffic import CallRecorder
    from modbus_core import ReadHoldingRegistersResponse, Request, RtuFramer

    rtu = RtuFramer()
    info = ConnectionInfo(
        "serial",
        "/dev/pts/3",
        "/dev/pts/3",
        server="line",
        connection_id=4,
        encode=lambda response: rtu.encode(response.unit, 0, response.pdu.encode()),
    )
    recorder = CallRecorder()
    request = Request(ReadHoldingRegisters(0, 2), 5)
    recorder.record(1_700_000_000.0, 0.01, info, request, request.reply(ReadHoldingRegistersResponse((1, 2))))
    recorder.record(1_700_000_001.0, 0.01, info, request, RawReply((b"\x01\x02\x03",)))
    path = tmp_path / "serial.pcap"
    with path.open("wb") as file:
        assert write_pcap(recorder.calls(), file) == 3 + 4
    rows = tshark(path)
    assert [(row["ip.src"], row["mbtcp.unit_id"], row["modbus.regval_uint16"]) for row in rows] == [
        ("10.0.0.6", "5", ""),
        ("10.0.0.1", "5", "1,2"),
        ("10.0.0.6", "5", ""),
    ]


def test_tls_calls_are_written_decrypted_to_port_502(tmp_path: Path) -> None:
    from modbus_anyio import ConnectionInfo
    from modbus_anyio.simulator._pcap import write_pcap
    from modbus_anyio.simulator._traffic import CallRecorder
    from modbus_core import ReadHoldingRegistersResponse, Request

    info = ConnectionInfo("tls", "127.0.0.1:40000", "127.0.0.1:802", role="operator", server="secure", connection_id=9)
    recorder = CallRecorder()
    request = Request(ReadHoldingRegisters(0, 1), 1, 3)
    recorder.record(1_700_000_000.0, 0.001, info, request, request.reply(ReadHoldingRegistersResponse((42,))))
    path = tmp_path / "tls.pcap"
    with path.open("wb") as file:
        write_pcap(recorder.calls(), file)
    rows = tshark(path)  # no "decode as": port 502 is Modbus/TCP to Wireshark
    assert [(row["tcp.srcport"], row["modbus.regval_uint16"]) for row in rows] == [("40000", ""), ("502", "42")]
