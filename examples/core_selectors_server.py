"""Modbus TCP with nothing but modbus_core and the standard library's selectors.

    python examples/core_selectors_server.py [--port 5020] [--framer socket|rtu]

The core does no I/O: this loop accepts connections, reads bytes, hands them
to a ServerConnection with the time they arrived, writes what it returns,
and wakes up at the connection's next deadline.  That is all an adapter is.
``--framer rtu`` serves RTU over TCP with the same code.  Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import selectors
import socket
import time

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

logger = logging.getLogger("core_selectors_server")


class Client:
    """One TCP connection: its socket, its ServerConnection, and output not yet written."""

    def __init__(self, sock: socket.socket, framer: Framer) -> None:
        self.sock = sock
        self.connection = ServerConnection(framer)
        self.outgoing = bytearray()


class SelectorServer:
    def __init__(self, listener: socket.socket, dispatcher: Dispatcher, framer_name: str) -> None:
        self.listener = listener
        self.dispatcher = dispatcher
        self.framer_name = framer_name
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ)
        self.clients: dict[socket.socket, Client] = {}

    def new_framer(self) -> Framer:
        if self.framer_name == "rtu":
            return RtuFramer(baudrate=19200)
        # A client that sends half an ADU and stops is closed after 10 s.
        return MbapFramer(frame_timeout=10.0)

    def serve_forever(self) -> None:
        while True:
            # Sleep until a socket is ready or the earliest deadline of a connection.
            deadlines = [d for client in self.clients.values() if (d := client.connection.next_deadline()) is not None]
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            for key, mask in self.selector.select(timeout):
                if key.fileobj is self.listener:
                    self.accept()
                    continue
                client = self.clients.get(key.fileobj)  # type: ignore[call-overload]
                if client is not None and mask & selectors.EVENT_READ:
                    self.read(client)
                if client is not None and client.sock in self.clients and mask & selectors.EVENT_WRITE:
                    self.flush(client)
            now = time.monotonic()
            for client in list(self.clients.values()):
                deadline = client.connection.next_deadline()
                if deadline is not None and now >= deadline:
                    try:
                        client.connection.handle_timeout(now)  # silence ends an RTU frame, or a half ADU
                    except RemoteProtocolError as error:
                        self.close(client, str(error))
                        continue
                    self.answer(client)

    def accept(self) -> None:
        sock, address = self.listener.accept()
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.clients[sock] = Client(sock, self.new_framer())
        self.selector.register(sock, selectors.EVENT_READ)
        logger.info("connection from %s:%d", *address[:2])

    def read(self, client: Client) -> None:
        try:
            data = client.sock.recv(65536)
        except OSError as error:
            self.close(client, str(error))
            return
        if not data:
            self.close(client, "closed by the client")
            return
        client.connection.receive_data(data, time.monotonic())
        self.answer(client)

    def answer(self, client: Client) -> None:
        """Answer every complete request the connection holds (pipelined ones in order)."""
        connection = client.connection
        try:
            while (event := connection.next_event()) is not NEED_DATA:
                if isinstance(event, Request):
                    response = self.dispatcher.dispatch(event)
                    if isinstance(response, Response):  # None: no answer (a broadcast, listen-only mode)
                        client.outgoing += connection.send(response)
                elif isinstance(event, FrameDropped):
                    logger.info("dropped %d bytes: %s", len(event.data), event.reason)
        except RemoteProtocolError as error:  # the stream cannot be resynchronised
            self.close(client, str(error))
            return
        self.flush(client)

    def flush(self, client: Client) -> None:
        try:
            sent = client.sock.send(client.outgoing) if client.outgoing else 0
        except BlockingIOError:
            sent = 0
        except OSError as error:
            self.close(client, str(error))
            return
        del client.outgoing[:sent]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.outgoing else 0)
        self.selector.modify(client.sock, events)

    def close(self, client: Client, why: str) -> None:
        logger.info("closing a connection: %s", why)
        # Forgiving, because Ctrl-C may have stopped an earlier close() half-way.
        self.clients.pop(client.sock, None)
        with contextlib.suppress(KeyError):
            self.selector.unregister(client.sock)
        client.sock.close()

    def close_all(self) -> None:
        for client in list(self.clients.values()):
            self.close(client, "server stopping")
        self.selector.close()
        self.listener.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Modbus TCP on modbus_core and selectors alone.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5020, help="TCP port (0: any free port)")
    parser.add_argument("--framer", choices=["socket", "rtu"], default="socket", help="socket (MBAP) or RTU over TCP")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    device = Device.sized(100)
    device.holding_registers[0] = 1234
    dispatcher = Dispatcher(ServerContext(device))  # TCP rules: every unit id answers, unit 0 included
    listener = socket.create_server((args.host, args.port))
    listener.setblocking(False)
    host, port = listener.getsockname()[:2]
    print(f"listening on tcp://{host}:{port}", flush=True)
    server = SelectorServer(listener, dispatcher, args.framer)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    finally:
        server.close_all()


if __name__ == "__main__":
    main()
