"""Fuzz target: a Modbus TCP server (ServerConnection over MbapFramer), stream or datagram.

Input: ``flags`` then ops (see ``fuzzsupport.read_ops``).

flags: bit 0 datagram mode (UDP: every op is one datagram), bits 1-2 the
frame timeout (none, 1 s, 0.5 s, 10 s), bit 3 several units (else one
device answers every unit), bit 4 custom function table, bit 5 a lazy
adapter (it reads events only after a timeout and at the end, not after
every read: h11-style connections allow it), bits 6-7 where the clock
starts.

Each op arrives ``delay`` after the previous one (``wrap``: the data is
transaction id (2 bytes), unit, PDU and gets an MBAP header with protocol id
0; ``extra``: the bytes arrive in two reads, or two datagrams, split at
``arg``).  ``timeout_first`` calls handle_timeout at the deadline first.

Checked: on a stream only Request, FrameDropped (whole ADUs of another
protocol) or RemoteProtocolError (a length outside 2..254 at the head of the
stream, or a partial ADU older than the frame timeout); in datagram mode no
exception at all, at most one ADU per datagram and no ADU put together from
two datagrams; every byte accounted for
in order; a valid ADU on an idle connection comes out whole; every request
is answered (unless the server was put in listen-only mode) and the answer
reads back through a TCP client.
"""

from __future__ import annotations

from fuzzsupport import START_TIMES, STREAM_DELAYS, Reader, fuzz, instrumented, read_ops

with instrumented(__name__ == "__main__"):
    from fuzzoracles import (
        ServerRig,
        TappedMbapFramer,
        expect,
        function_table,
        make_context,
        mbap_adu,
    )

    from modbus_core import Dispatcher, MbapFramer, RemoteProtocolError, Response

FRAME_TIMEOUTS = (None, 1.0, 0.5, 10.0)


class _Closed(Exception):
    """The connection raised RemoteProtocolError, rightly: the adapter closes it."""


def check(data: bytes) -> None:
    reader = Reader(data)
    flags = reader.u8()
    datagram = bool(flags & 0x01)
    frame_timeout = FRAME_TIMEOUTS[flags >> 1 & 3]
    functions = function_table(bool(flags & 0x10))
    lazy = bool(flags & 0x20)
    now = START_TIMES[flags >> 6]

    framer = TappedMbapFramer(datagram=datagram, frame_timeout=frame_timeout)
    dispatcher = Dispatcher(make_context(multi=bool(flags & 0x08)))

    def wire(response: Response) -> bytes:
        return mbap_adu(response.transaction_id, response.unit, response.pdu.encode())

    rig = ServerRig(
        framer,
        functions=functions,
        units=None,
        dispatcher=dispatcher,
        echo=False,
        client_framer=MbapFramer(),
        wire=wire,
        answers_everything=True,
    )
    ledger = framer.ledger

    def drain() -> None:
        try:
            rig.drain(now)
        except RemoteProtocolError as error:
            expect(not datagram, "datagram mode raised {!r}", error)
            head = ledger.at_cursor(7)
            length = head[4] << 8 | head[5] if len(head) >= 6 else None
            expect(
                length is not None and not 2 <= length <= 254,
                "{!r} with a good length at the head of the stream: {}",
                error,
                head.hex(),
            )
            raise _Closed from error
        if datagram:
            expect(ledger.idle, "bytes of a datagram are left for the next one")

    def timeout() -> float:
        deadline = rig.connection.next_deadline()
        try:
            return rig.timeout(now)
        except RemoteProtocolError as error:
            expect(not datagram, "datagram mode raised {!r} at its deadline", error)
            expect(frame_timeout is not None and not ledger.idle, "{!r} without a partial ADU", error)
            assert frame_timeout is not None
            assert deadline is not None
            began = ledger.arrival(ledger.cursor)
            expect(
                max(now, deadline) >= began + frame_timeout,
                "{!r} at {}, though the partial ADU began at {}",
                error,
                max(now, deadline),
                began,
            )
            raise _Closed from error

    try:
        for op in read_ops(reader):
            if op.timeout_first:
                now = timeout()
                drain()
            chunk = op.data
            if op.wrap and len(chunk) >= 3:
                chunk = mbap_adu(chunk[0] << 8 | chunk[1], chunk[2], chunk[3:])
                if ledger.idle and 1 <= len(op.data) - 3 <= 253 and not (datagram and op.extra):
                    ledger.claims[len(ledger.fed)] = chunk
            now += STREAM_DELAYS[op.delay]
            if op.extra:
                cut = op.arg % (len(chunk) + 1)
                rig.receive(chunk[:cut], now)
                if not lazy:
                    drain()
                chunk = chunk[cut:]
            rig.receive(chunk, now)
            if not lazy:
                drain()
        drain()
        if frame_timeout is not None:
            now = timeout()
            drain()
    except _Closed:
        return
    if not ledger.idle:
        # What is left must be the start of an ADU still waiting for its bytes.
        rest = ledger.at_cursor(len(ledger.fed))
        expect(
            len(rest) < 7 or len(rest) < 6 + (rest[4] << 8 | rest[5]),
            "a whole ADU is left unread: {}",
            rest.hex(),
        )
    expect(not ledger.claims, "valid ADUs never came out: {}", ledger.claims)


if __name__ == "__main__":
    fuzz(check)
