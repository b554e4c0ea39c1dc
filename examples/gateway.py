"""A Modbus TCP gateway: an async handler that forwards every request to another server.

    python examples/gateway.py [--port 5021] [--upstream 127.0.0.1:5020] [--backend asyncio|trio]

Clients connect here; each request goes, unchanged, to the upstream server, and
its answer (or exception) comes back with the client's transaction id.  The
upstream side is modbus_core's ClientConnection over an anyio stream, so the
gateway needs nothing but modbuskit and runs on asyncio or trio.

Requests of one client connection are answered in order even though the handler
awaits (the server waits for each answer before it takes the next request); the
upstream connection is shared, one request at a time.  When the upstream server
cannot be reached the client gets exception 0A (gateway path unavailable), when
it does not answer in time 0B (gateway target device failed to respond).

Try it: ``python examples/first_server_asyncio.py`` in one terminal, this in
another, then point a client at port 5021.  Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import logging
import signal

import anyio
import anyio.abc

from modbus_anyio import ConnectionInfo, TcpServer
from modbus_core import (
    NEED_DATA,
    ClientConnection,
    ExceptionCode,
    MbapFramer,
    Request,
    Response,
    ResponsePdu,
)

logger = logging.getLogger("gateway")


class Upstream:
    """One Modbus TCP connection to the upstream server, opened on demand and shared."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._lock = anyio.Lock()
        self._stream: anyio.abc.SocketStream | None = None
        self._connection: ClientConnection | None = None

    async def forward(self, request: Request) -> Response:
        """The upstream server's answer to *request*, re-addressed to the client's transaction."""
        async with self._lock:  # one request at a time on the shared connection
            try:
                with anyio.fail_after(self.timeout):
                    pdu = await self._exchange(request)
            except OSError as error:  # refused, reset, unreachable
                logger.warning("upstream %s:%d: %s", self.host, self.port, error or type(error).__name__)
                await self._close()
                return request.exception(ExceptionCode.GATEWAY_PATH_UNAVAILABLE)
            except TimeoutError:
                logger.warning("upstream %s:%d: no answer within %.1f s", self.host, self.port, self.timeout)
                await self._close()  # a late answer must not be taken for the next request's
                return request.exception(ExceptionCode.GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND)
        return request.reply(pdu)

    async def _exchange(self, request: Request) -> ResponsePdu:
        if self._stream is None or self._connection is None:
            self._stream = await anyio.connect_tcp(self.host, self.port)
            self._connection = ClientConnection(MbapFramer())
        stream, connection = self._stream, self._connection
        outgoing = connection.request(request.pdu, request.unit)  # our own transaction id upstream
        try:
            await stream.send(connection.send(outgoing))
            while True:
                event = connection.next_event()
                if event is NEED_DATA:
                    connection.receive_data(await stream.receive(), anyio.current_time())
                elif isinstance(event, Response):
                    return event.pdu
                # else a FrameDropped: garbage or a stale answer, keep waiting
        except (anyio.EndOfStream, anyio.BrokenResourceError) as error:
            raise ConnectionResetError("the upstream server closed the connection") from error
        finally:
            connection.cancel(outgoing)  # no-op once answered

    async def _close(self) -> None:
        if self._stream is not None:
            await anyio.aclose_forcefully(self._stream)
        self._stream = self._connection = None


async def main(port: int, upstream_host: str, upstream_port: int, timeout: float) -> None:
    upstream = Upstream(upstream_host, upstream_port, timeout)

    async def handle(request: Request, info: ConnectionInfo) -> Response:
        logger.debug("%s: %r", info.peer, request)
        return await upstream.forward(request)

    async with TcpServer(handle, port=port) as server:
        print(f"listening on tcp://127.0.0.1:{server.port}", flush=True)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A Modbus TCP gateway with an async handler.")
    parser.add_argument("--port", type=int, default=5021, help="TCP port of the gateway (0: any free port)")
    parser.add_argument("--upstream", default="127.0.0.1:5020", help="HOST:PORT of the server to forward to")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the upstream answer")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    host, _, upstream_port = args.upstream.rpartition(":")
    anyio.run(main, args.port, host.strip("[]"), int(upstream_port), args.timeout, backend=args.backend)
