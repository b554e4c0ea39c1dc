"""Modbus TCP with nothing but modbus_core and an asyncio.Protocol.

    python examples/core_asyncio_protocol.py [--port 5020] [--framer socket|rtu]

The same adapter as core_selectors_server.py, this time in asyncio's
callback style: ``data_received`` feeds the core with ``loop.time()`` (the
clock ``call_at`` sleeps on), answers go out with ``transport.write``, and
a timer handle wakes the connection at its next deadline.  Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from modbus_core import (
    NEED_DATA,
    Device,
    Dispatcher,
    FrameDropped,
    Framer,
    MbapFramer,
    RemoteProtocolError,
    Request,
    Response,
    RtuFramer,
    ServerConnection,
    ServerContext,
)

logger = logging.getLogger("core_asyncio_protocol")


class ModbusProtocol(asyncio.Protocol):
    """One connection: bytes in from asyncio, bytes out to it, the core in between."""

    def __init__(self, dispatcher: Dispatcher, framer: Framer) -> None:
        self.dispatcher = dispatcher
        self.connection = ServerConnection(framer)
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.connection.receive_data(data, self.loop.time())
        self.answer()

    def answer(self) -> None:
        assert self.transport is not None
        out = bytearray()
        try:
            while (event := self.connection.next_event()) is not NEED_DATA:
                if isinstance(event, Request):
                    response = self.dispatcher.dispatch(event)
                    if isinstance(response, Response):
                        out += self.connection.send(response)
                elif isinstance(event, FrameDropped):
                    logger.info("dropped %d bytes: %s", len(event.data), event.reason)
        except RemoteProtocolError as error:
            logger.info("closing a connection: %s", error)
            self.transport.close()
            return
        if out:
            self.transport.write(out)  # pipelined requests: all their answers in one write
        self.schedule()

    def schedule(self) -> None:
        """Wake up at the connection's next deadline (an RTU frame's silence, a half ADU's timeout)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        deadline = self.connection.next_deadline()
        if deadline is not None:
            self.timer = self.loop.call_at(deadline, self.on_deadline)

    def on_deadline(self) -> None:
        self.timer = None
        try:
            self.connection.handle_timeout(self.loop.time())
        except RemoteProtocolError as error:
            logger.info("closing a connection: %s", error)
            if self.transport is not None:
                self.transport.close()
            return
        self.answer()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()


async def main(host: str, port: int, framer_name: str) -> None:
    device = Device.sized(100)
    device.holding_registers[0] = 1234
    dispatcher = Dispatcher(ServerContext(device))

    def new_framer() -> Framer:
        return RtuFramer(baudrate=19200) if framer_name == "rtu" else MbapFramer(frame_timeout=10.0)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: ModbusProtocol(dispatcher, new_framer()), host, port)
    bound_host, bound_port = server.sockets[0].getsockname()[:2]
    print(f"listening on tcp://{bound_host}:{bound_port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Modbus TCP on modbus_core and an asyncio.Protocol alone.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5020, help="TCP port (0: any free port)")
    parser.add_argument("--framer", choices=["socket", "rtu"], default="socket", help="socket (MBAP) or RTU over TCP")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.host, args.port, args.framer))
