"""The UDP server on asyncio and trio."""

from __future__ import annotations

import anyio
import pytest

from modbus_anyio import ConnectionInfo, UdpServer, serve_udp
from modbus_core import (
    ClientConnection,
    Device,
    MbapFramer,
    ReadHoldingRegisters,
    ReadHoldingRegistersResponse,
    Request,
    Response,
    RtuFramer,
    ServerContext,
    WriteSingleRegister,
)

pytestmark = pytest.mark.anyio


def mbap(transaction_id: int, pdu: bytes, unit: int = 1) -> bytes:
    return transaction_id.to_bytes(2, "big") + b"\x00\x00" + (len(pdu) + 1).to_bytes(2, "big") + bytes((unit,)) + pdu


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_one_datagram_one_request(host: str) -> None:
    device = Device.sized(10)
    async with UdpServer(ServerContext(device), host=host, port=0) as server:
        assert server.addresses[0][0] == host
        with anyio.fail_after(5):
            async with await anyio.create_connected_udp_socket(host, server.port) as udp:
                await udp.send(mbap(1, bytes.fromhex("06 0002 0102")))
                assert await udp.receive() == mbap(1, bytes.fromhex("06 0002 0102"))
                await udp.send(mbap(2, bytes.fromhex("03 0002 0001")))
                assert await udp.receive() == mbap(2, bytes.fromhex("03 02 0102"))
                await udp.send(b"\x00\x03\x00")  # too short: dropped
                await udp.send(mbap(4, bytes.fromhex("03 0000 0001")))
                assert await udp.receive() == mbap(4, bytes.fromhex("03 02 0000"))
                assert server.connections[0].transport == "udp"
    assert device.holding_registers[2] == 0x0102


async def test_rtu_over_udp() -> None:
    async with UdpServer(ServerContext(Device.sized(10)), port=0, framer="rtu") as server:
        with anyio.fail_after(5):
            client = ClientConnection(RtuFramer())
            async with await anyio.create_connected_udp_socket("127.0.0.1", server.port) as udp:
                request = client.request(WriteSingleRegister(1, 7), unit=5)
                await udp.send(client.send(request))
                client.receive_data(await udp.receive(), 0.0)
                event = client.next_event()
                assert isinstance(event, Response)
                assert event.unit == 5


async def test_async_handler_holds_back_only_its_peer() -> None:
    release = anyio.Event()

    async def handler(request: Request, info: ConnectionInfo) -> Response:
        if request.unit == 1:
            await release.wait()
        return request.reply(ReadHoldingRegistersResponse((request.unit,)))

    async with UdpServer(handler, port=0) as server:
        with anyio.fail_after(5):
            slow = await anyio.create_connected_udp_socket("127.0.0.1", server.port)
            fast = await anyio.create_connected_udp_socket("127.0.0.1", server.port)
            await slow.send(mbap(1, bytes.fromhex("03 0000 0001"), unit=1))
            await slow.send(mbap(2, bytes.fromhex("03 0000 0001"), unit=2))
            await fast.send(mbap(3, bytes.fromhex("03 0000 0001"), unit=3))
            assert await fast.receive() == mbap(3, bytes.fromhex("03 02 0003"), unit=3)
            release.set()
            assert await slow.receive() == mbap(1, bytes.fromhex("03 02 0001"), unit=1)
            assert await slow.receive() == mbap(2, bytes.fromhex("03 02 0002"), unit=2)
            await slow.aclose()
            await fast.aclose()


async def test_serve_udp_function() -> None:
    async with anyio.create_task_group() as task_group:
        server = await task_group.start(lambda task_status: serve_udp(ServerContext(), port=0, task_status=task_status))
        with anyio.fail_after(5):
            client = ClientConnection(MbapFramer())
            async with await anyio.create_connected_udp_socket("127.0.0.1", server.port) as udp:
                await udp.send(client.send(client.request(ReadHoldingRegisters(0, 1))))
                client.receive_data(await udp.receive(), 0.0)
                assert isinstance(client.next_event(), Response)
        await server.shutdown()
    assert not server.listening
