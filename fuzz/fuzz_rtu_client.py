"""Fuzz target: an RTU client (ClientConnection over RtuFramer) reading a serial line.

Input: ``flags, baud index, mode`` then ops (see ``fuzzsupport.read_ops``).

flags: bit 0 strict timing, bit 1 datagram (RTU over UDP), bit 2 the line
echoes what the client sends, bit 3 custom function table, bits 6-7 where
the clock starts.  mode: bit 0 a lazy adapter (it reads events only after a
timeout and at the end, not after every read).

An op with ``extra`` and ``arg >= 0x80`` is a client action: ``arg & 0x40``
cancels the oldest pending request, otherwise the data is unit + request
PDU, decoded and sent (when the unit has nothing pending).  Other ops are
bytes arriving on the line after ``delay`` of silence, back to back at the
baud rate (``wrap``: unit + PDU gets its CRC; ``extra``: two reads split at
``arg``, no gap between them).

Checked: no exception ever; every byte accounted for in order; valid frames
on an idle line come out whole; a Response answers a pending request of its
unit with its function (or an exception to it), bit reads trimmed to the
count asked for, and the request is no longer pending afterwards; the
response is the decoding of its frame, passes its constructor's validation
and survives encode/decode; frames that were skipped could not be responses.
"""

from __future__ import annotations

from fuzzsupport import START_TIMES, Reader, fuzz, instrumented, read_ops, serial_delay

with instrumented(__name__ == "__main__"):
    from fuzzoracles import (
        BY_SILENCE,
        MAX_PDU,
        InvariantError,
        TappedRtuFramer,
        check_response_roundtrip,
        expect,
        function_table,
        rtu_frame,
        rtu_frame_gap,
        rtu_frames_whole,
        rtu_silence_ended,
    )

    from modbus_core import (
        NEED_DATA,
        ClientConnection,
        DropCause,
        ExceptionResponse,
        FrameDropped,
        LocalProtocolError,
        ReadCoils,
        ReadCoilsResponse,
        ReadDiscreteInputs,
        ReadDiscreteInputsResponse,
        Request,
        Response,
    )

BAUDRATES = (1200, 9600, 19200, 38400, 115200, 1_000_000)
CLIENT_ACTION = 0x80
CANCEL = 0x40


def check(data: bytes) -> None:
    reader = Reader(data)
    flags = reader.u8()
    baudrate = BAUDRATES[reader.u8() % len(BAUDRATES)]
    lazy = bool(reader.u8() & 0x01)
    strict = bool(flags & 0x01)
    datagram = bool(flags & 0x02)
    echo = bool(flags & 0x04)
    functions = function_table(bool(flags & 0x08))
    now = START_TIMES[flags >> 6]

    framer = TappedRtuFramer(baudrate, strict_timing=strict, datagram=datagram)
    client = ClientConnection(framer, functions=functions, echo=echo)
    ledger = framer.ledger
    char_time = framer.char_time
    frame_gap = rtu_frame_gap(framer, strict)
    silence_claim: int | None = None  # a claimed frame that only silence ends

    def drain() -> None:
        while True:
            produced = len(framer.frames)
            pending = {(request.transaction_id, request.unit): request for request in client.pending}
            event = client.next_event()
            new_frames = framer.frames[produced:]
            if isinstance(event, Response):
                expect(new_frames, "{!r} without a frame", event)
                skipped, frame = new_frames[:-1], new_frames[-1]
                check_response(event, frame, pending)
            elif isinstance(event, FrameDropped) and event.cause in (DropCause.MALFORMED, DropCause.UNEXPECTED):
                # The connection refused a frame the framer accepted.
                expect(new_frames and new_frames[-1][2] == event.data, "{!r} is not the last frame", event)
                skipped = new_frames[:-1]
            else:
                skipped = new_frames
            for unit, _, pdu, _ in skipped:
                # Skipped frames read as requests (another master's, or our echo): they
                # must not read as the response a pending request waits for.
                waiting = pending.get((0, unit))
                if waiting is None or waiting.pdu.function_code != pdu[0] & 0x7F:
                    continue
                length = functions.response_length(pdu, 0, len(pdu))
                expect(
                    length not in (len(pdu), BY_SILENCE),
                    "{} from unit {} reads as the answer to {!r}, but was skipped",
                    pdu.hex(),
                    unit,
                    waiting,
                )
            if event is NEED_DATA:
                return
            expect(isinstance(event, Response | FrameDropped), "next_event returned {!r}", event)

    def check_response(
        response: Response, frame: tuple[int, int, bytes, int], pending: dict[tuple[int, int], Request]
    ) -> None:
        unit, _, raw, _ = frame
        request = pending.get((0, unit))
        expect(request is not None, "{!r} answers nothing pending: {}", response, list(pending))
        assert request is not None
        expect(response.unit == unit and response.transaction_id == 0, "{!r} from {!r}", response, frame)
        answer = response.pdu
        if isinstance(answer, ExceptionResponse):
            expect(
                answer.function_code == request.pdu.function_code & 0x7F,
                "{!r} answers {!r}",
                response,
                request,
            )
        else:
            expect(answer.function_code == request.pdu.function_code, "{!r} answers {!r}", response, request)
        if isinstance(request.pdu, ReadCoils | ReadDiscreteInputs) and isinstance(
            answer, ReadCoilsResponse | ReadDiscreteInputsResponse
        ):
            expect(len(answer.values) == request.pdu.count, "{!r} answers {!r}", response, request)
        decoded = functions.decode_response(raw)
        if isinstance(answer, ReadCoilsResponse | ReadDiscreteInputsResponse):
            # Trimmed to the count asked for; what the padding bits said is not our business.
            same = type(decoded) is type(answer) and decoded.values[: len(answer.values)] == answer.values
        else:
            same = decoded == answer
        expect(same, "frame {} decodes to {!r}, not {!r}", raw.hex(), decoded, answer)
        check_response_roundtrip(functions, answer, "the client")
        expect(
            (0, unit) not in {(request.transaction_id, request.unit) for request in client.pending},
            "{!r} is still pending after {!r}",
            request,
            response,
        )

    for op in read_ops(reader):
        if op.timeout_first:
            deadline = client.next_deadline()
            if deadline is not None:
                now = max(now, deadline)
                client.handle_timeout(now)
                after = client.next_deadline()
                expect(after is None or after > now, "handle_timeout({}) left the deadline at {}", now, after)
            drain()
        if op.extra and op.arg & CLIENT_ACTION:
            if op.arg & CANCEL:
                if client.pending:
                    client.cancel(client.pending[0])
                continue
            if len(op.data) < 2:
                continue
            pdu = functions.decode_request(op.data[1:])
            unit = op.data[0]
            if not 1 <= pdu.function_code <= 0x7F or (0, unit) in {(r.transaction_id, r.unit) for r in client.pending}:
                continue
            if len(pdu.encode()) > MAX_PDU:
                try:
                    wire = client.send(Request(pdu, unit))
                except LocalProtocolError:
                    expect(
                        (0, unit) not in {(r.transaction_id, r.unit) for r in client.pending},
                        "a refused request stayed pending",
                    )
                    continue
                raise InvariantError(f"send() framed a {len(pdu.encode())}-byte PDU, over 253, as {wire.hex()}")
            wire = client.send(Request(pdu, unit))
            expect(wire == rtu_frame(unit, pdu.encode()), "{!r} to unit {} went out as {}", pdu, unit, wire.hex())
            if echo:
                fed = len(ledger.fed)
                client.receive_data(wire, now)
                expect(len(ledger.fed) == fed, "the echo of our own request reached the framer")
            continue
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
            now += silence + len(part) * char_time
            silence = 0.0
            client.receive_data(part, now)
            if not lazy:
                drain()
    drain()
    deadline = client.next_deadline()
    if deadline is not None:
        client.handle_timeout(max(now, deadline))
    drain()
    expect(ledger.idle, "after the final silence, bytes from {} on are unaccounted for", ledger.cursor)
    expect(not ledger.claims, "valid frames never came out: {}", ledger.claims)


if __name__ == "__main__":
    fuzz(check)
