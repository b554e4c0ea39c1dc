#!/usr/bin/env python3
"""The canned-answer ceiling of one task serving every connection through an epoll object of its own.

usage: ceiling_epoll.py asyncio|trio PORT

What modbus_anyio's reactor (``modbus_anyio/_reactor.py``) does, minus
the Modbus work: the peer of ``../shared/bench/transport_ceiling.py``, whose
trio ceiling is a task per connection on anyio streams.  Answers FC3 from a
canned table of 10000 registers, any unit; binds 127.0.0.1 (Linux only).
"""

from __future__ import annotations

import select
import socket
import struct
import sys

REGISTERS = struct.pack(">10000H", *range(10000))
HEADER = struct.Struct(">HHHBBHH")  # MBAP header, function, address, count
ANSWER = struct.Struct(">HHHBBB")


def answers(buffer: bytearray) -> bytes:
    """Answer every complete FC3 request in *buffer* (and remove them)."""
    out = []
    while len(buffer) >= HEADER.size:
        transaction, _, length, unit, function, address, count = HEADER.unpack_from(buffer)
        if len(buffer) < 6 + length:
            break
        del buffer[: 6 + length]
        body = REGISTERS[2 * address : 2 * (address + count)]
        out.append(ANSWER.pack(transaction, 0, 3 + len(body), unit, function, len(body)) + body)
    return b"".join(out)


def main() -> None:
    loop_name, port = sys.argv[1], int(sys.argv[2])
    epoll = select.epoll()
    listener = socket.create_server(("127.0.0.1", port), backlog=1024)
    listener.setblocking(False)
    epoll.register(listener.fileno(), select.EPOLLIN)
    connections: dict[int, tuple[socket.socket, bytearray]] = {}

    def ready() -> None:
        for fd, _ in epoll.poll(0):
            if fd == listener.fileno():
                try:
                    sock, _ = listener.accept()
                except BlockingIOError:
                    continue
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                connections[sock.fileno()] = (sock, bytearray())
                epoll.register(sock.fileno(), select.EPOLLIN)
                continue
            sock, buffer = connections[fd]
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                epoll.unregister(fd)
                del connections[fd]
                sock.close()
                continue
            buffer += data
            out = answers(buffer)
            if out:
                sock.send(out)  # a few hundred bytes: the socket takes them

    if loop_name == "trio":
        import trio
        import trio.lowlevel

        async def serve_trio() -> None:
            while True:
                await trio.lowlevel.wait_readable(epoll)
                ready()

        trio.run(serve_trio)
    else:
        import asyncio

        async def serve_asyncio() -> None:
            asyncio.get_running_loop().add_reader(epoll.fileno(), ready)
            await asyncio.Event().wait()

        asyncio.run(serve_asyncio())


if __name__ == "__main__":
    main()
