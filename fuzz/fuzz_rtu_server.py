"""Fuzz target: an RTU server on a serial line (ServerConnection over RtuFramer).

Input: ``flags, baud index, unit, mode`` then ops (see ``fuzzsupport.read_ops``).

flags: bit 0 strict timing, bit 1 datagram (RTU over UDP), bit 2 the line
echoes what the server sends, bit 3 custom function table, bits 4-5 the
units filter (none, the dispatcher, ``{unit}``, ``{unit, 0}``), bits 6-7
where the clock starts.  mode: bit 0 a lazy adapter (it reads events only
after a timeout and at the end, not after every read).

Each op waits ``delay`` of silence, then its bytes arrive back to back at
the baud rate (``wrap``: the data is unit + PDU and gets its CRC; ``extra``:
the bytes arrive in two reads split at ``arg``, with no gap between them).
``timeout_first`` calls handle_timeout at the deadline before the op.

Besides "never an exception" (serial framers never raise), every byte must
be accounted for in order by a frame or a drop, a valid frame that arrives
on an idle line must come out whole, every request must decode and re-encode
consistently, and every answer must be read back by an RTU client.
"""

from __future__ import annotations

from fuzzsupport import START_TIMES, Reader, fuzz, instrumented, read_ops, serial_delay

with instrumented(__name__ == "__main__"):
    from fuzzoracles import (
        ServerRig,
        TappedRtuFramer,
        expect,
        function_table,
        make_context,
        rtu_frame,
        rtu_frame_gap,
        rtu_frames_whole,
        rtu_silence_ended,
    )

    from modbus_core import Dispatcher, Response, RtuFramer

BAUDRATES = (1200, 9600, 19200, 38400, 115200, 1_000_000)


def check(data: bytes) -> None:
    reader = Reader(data)
    flags = reader.u8()
    baudrate = BAUDRATES[reader.u8() % len(BAUDRATES)]
    unit = reader.u8()
    lazy = bool(reader.u8() & 0x01)
    strict = bool(flags & 0x01)
    datagram = bool(flags & 0x02)
    functions = function_table(bool(flags & 0x08))
    now = START_TIMES[flags >> 6]

    framer = TappedRtuFramer(baudrate, strict_timing=strict, datagram=datagram)
    dispatcher = Dispatcher(make_context(multi=True), serial=True)
    units = (None, dispatcher, frozenset({unit}), frozenset({unit, 0}))[flags >> 4 & 3]

    def wire(response: Response) -> bytes:
        return rtu_frame(response.unit, response.pdu.encode())

    rig = ServerRig(
        framer,
        functions=functions,
        units=units,
        dispatcher=dispatcher,
        echo=bool(flags & 0x04),
        client_framer=RtuFramer(baudrate),
        wire=wire,
    )
    ledger = framer.ledger
    char_time = framer.char_time
    frame_gap = rtu_frame_gap(framer, strict)
    silence_claim: int | None = None  # a claimed frame that only silence ends
    for op in read_ops(reader):
        if op.timeout_first:
            now = rig.timeout(now)
            rig.drain(now)
        chunk = rtu_frame(op.data[0], op.data[1:]) if op.wrap and op.data else op.data
        silence = serial_delay(op.delay, char_time)
        cut = op.arg % (len(chunk) + 1) if op.extra else len(chunk)
        if silence_claim in ledger.claims and silence < frame_gap:
            del ledger.claims[silence_claim]  # more bytes before the silence: they belong to that frame
        silence_claim = None
        if (
            op.wrap
            and ledger.idle
            and rtu_frames_whole(functions, chunk)
            and not (datagram and 0 < cut < len(chunk))
            and (not strict or silence > 1.01 * framer.t3_5)
        ):
            ledger.claims[len(ledger.fed)] = chunk
            if rtu_silence_ended(functions, chunk) and not datagram:
                silence_claim = len(ledger.fed)
        for part in (chunk[:cut], chunk[cut:]) if op.extra else (chunk,):
            now += silence + len(part) * char_time  # the time its last byte arrived
            silence = 0.0  # the second part follows the first without a gap
            rig.receive(part, now)
            if not lazy:
                rig.drain(now)
    rig.drain(now)
    now = rig.timeout(now)
    rig.drain(now)
    expect(ledger.idle, "after the final silence, bytes from {} on are unaccounted for", ledger.cursor)
    expect(not ledger.claims, "valid frames never came out: {}", ledger.claims)


if __name__ == "__main__":
    fuzz(check)
