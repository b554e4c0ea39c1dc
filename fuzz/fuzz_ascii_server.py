"""Fuzz target: an ASCII server on a serial line (ServerConnection over AsciiFramer).

Input: ``flags, delimiter, unit, mode`` then ops (see ``fuzzsupport.read_ops``).

flags: bit 0 start with *delimiter* as the input delimiter instead of LF,
bit 1 the line echoes what the server sends, bit 2 custom function table,
bits 3-4 the inter-character timeout, bits 5-6 the units filter (none, the
dispatcher, ``{unit}``, ``{unit, 0}``), bit 7 where the clock starts.
mode: bit 0 a lazy adapter (it reads events only after a timeout and at the
end, not after every read).

Each op waits ``delay`` of silence, then its bytes arrive at 9600 baud
(``wrap``: the data is unit + PDU, sent as ``:`` hex LRC CR and the current
input delimiter; ``extra``: the bytes arrive in two reads split at ``arg``).
Function 08/03 requests change the delimiter along the way.

Checked: no exception ever, every byte accounted for in order (blank line
noise aside), valid frames on an idle line come out whole, requests decode
and re-encode consistently, answers are read back by an ASCII client, and
the framer's delimiter follows the diagnostics' after every request.
"""

from __future__ import annotations

from fuzzsupport import START_TIMES, Reader, fuzz, instrumented, read_ops, serial_delay

with instrumented(__name__ == "__main__"):
    from fuzzoracles import ServerRig, TappedAsciiFramer, ascii_frame, expect, function_table, make_context

    from modbus_core import AsciiFramer, Dispatcher, Response

TIMEOUTS = (1.0, 0.001, 0.05, 3.0)
CHAR_TIME = 10 / 9600  # seconds per character: 7E1 or 7N2 at 9600 baud
MAX_ASCII_FRAME = 513


def check(data: bytes) -> None:
    reader = Reader(data)
    flags = reader.u8()
    delimiter_choice = reader.u8()
    delimiter = delimiter_choice if flags & 0x01 else 0x0A
    unit = reader.u8()
    lazy = bool(reader.u8() & 0x01)
    functions = function_table(bool(flags & 0x04))
    timeout = TIMEOUTS[flags >> 3 & 3]
    now = START_TIMES[(flags >> 7) * 2]

    framer = TappedAsciiFramer(timeout=timeout, input_delimiter=delimiter)
    dispatcher = Dispatcher(make_context(multi=True), serial=True)
    units = (None, dispatcher, frozenset({unit}), frozenset({unit, 0}))[flags >> 5 & 3]

    def wire(response: Response) -> bytes:
        return ascii_frame(response.unit, response.pdu.encode())

    rig = ServerRig(
        framer,
        functions=functions,
        units=units,
        dispatcher=dispatcher,
        echo=bool(flags & 0x02),
        client_framer=AsciiFramer(),
        wire=wire,
    )
    diagnostics = dispatcher.diagnostics
    if hasattr(diagnostics, "change_ascii_delimiter"):
        diagnostics.change_ascii_delimiter(delimiter)  # the line's configuration, as an adapter sets it
    ledger = framer.ledger

    def drain() -> None:
        rig.drain(now)
        if hasattr(diagnostics, "ascii_delimiter"):
            expect(
                framer.input_delimiter == diagnostics.ascii_delimiter,
                "the framer ends frames with {:#04x}, the diagnostics say {:#04x}",
                framer.input_delimiter,
                diagnostics.ascii_delimiter,
            )

    for op in read_ops(reader):
        if op.timeout_first:
            now = rig.timeout(now)
            drain()
        wrapped = op.wrap and op.data
        chunk = ascii_frame(op.data[0], op.data[1:], framer.input_delimiter) if wrapped else op.data
        cut = op.arg % (len(chunk) + 1) if op.extra else len(chunk)
        if not lazy:
            ledger.skip_blanks()  # read events discard blank line noise without a drop
        if (
            wrapped
            and ledger.idle
            and len(op.data) >= 2
            and len(chunk) <= MAX_ASCII_FRAME
            and (len(chunk) - cut) * CHAR_TIME < 0.99 * timeout
        ):
            ledger.claims[len(ledger.fed)] = chunk
        silence = serial_delay(op.delay, CHAR_TIME)
        for part in (chunk[:cut], chunk[cut:]) if op.extra else (chunk,):
            now += silence + len(part) * CHAR_TIME
            silence = 0.0
            rig.receive(part, now)
            if not lazy:
                drain()
    drain()
    now = rig.timeout(now)
    drain()
    ledger.skip_blanks()
    expect(ledger.idle, "after the final timeout, bytes from {} on are unaccounted for", ledger.cursor)
    expect(not ledger.claims, "valid frames never came out: {}", ledger.claims)


if __name__ == "__main__":
    fuzz(check)
