"""Fuzz target: decoding request PDUs (what a server receives).

Input: one PDU, function code first.

Checked: ``FunctionTable().decode_request`` never raises and returns a
RequestPdu; a MalformedRequest keeps the bytes and carries 01 or 03 as the
specification's validation order says; a RawPdu only stands for a code the
table does not know; a typed request re-encodes to the same bytes (FC15:
with the unused bits cleared), passes its own constructor's validation and
has an RTU length rule that frames it whole; a custom table agrees with the
default one on every standard code; and every request a client can send
crosses MBAP, RTU and ASCII framing unchanged.
"""

from __future__ import annotations

from fuzzsupport import fuzz, instrumented

with instrumented(__name__ == "__main__"):
    from fuzzoracles import (
        CUSTOM_FUNCTIONS,
        DEFAULT_FUNCTIONS,
        MAX_PDU,
        InvariantError,
        check_decoded_request,
        crc_prefix_ambiguous,
        decode_request,
        expect,
    )

    from modbus_core import (
        NEED_DATA,
        AsciiFramer,
        ClientConnection,
        Framer,
        FunctionTable,
        LocalProtocolError,
        MalformedRequest,
        MbapFramer,
        RequestPdu,
        RtuFramer,
        ServerConnection,
    )


def crosses(framer: Framer, server_framer: Framer, pdu: RequestPdu, functions: FunctionTable) -> None:
    """A client sends *pdu*; the server connection receives exactly that request."""
    client = ClientConnection(framer, functions=functions)
    server = ServerConnection(server_framer, functions=functions)
    request = client.request(pdu, unit=0x11)
    if len(pdu.encode()) > MAX_PDU:
        try:
            wire = client.send(request)
        except LocalProtocolError:
            return
        raise InvariantError(f"send() framed a {len(pdu.encode())}-byte PDU, over 253, as {wire.hex()}")
    wire = client.send(request)
    if isinstance(framer, RtuFramer) and crc_prefix_ambiguous(wire):
        return  # a shorter prefix has a valid CRC too: RTU cannot tell where such a frame ends
    server.receive_data(wire, 1.0)
    events = []
    while (event := server.next_event()) is not NEED_DATA:
        events.append(event)
    deadline = server.next_deadline()
    if deadline is not None:
        server.handle_timeout(deadline)
        while (event := server.next_event()) is not NEED_DATA:
            events.append(event)
    expect(events == [request], "{!r} sent as {} arrived as {!r}", request, wire.hex(), events)


def check(data: bytes) -> None:
    pdu = decode_request(DEFAULT_FUNCTIONS, data)
    check_decoded_request(DEFAULT_FUNCTIONS, data, pdu)
    custom = decode_request(CUSTOM_FUNCTIONS, data)
    check_decoded_request(CUSTOM_FUNCTIONS, data, custom)
    if data and data[0] not in {function.function_code for function in CUSTOM_FUNCTIONS.custom}:
        expect(custom == pdu, "{}: the custom table decodes {!r}, the default {!r}", data.hex(), custom, pdu)
    for functions, request in ((DEFAULT_FUNCTIONS, pdu), (CUSTOM_FUNCTIONS, custom)):
        if not 1 <= request.function_code <= 0x7F:
            continue  # not something a client can send
        crosses(MbapFramer(), MbapFramer(), request, functions)
        crosses(AsciiFramer(), AsciiFramer(), request, functions)
        if not isinstance(request, MalformedRequest):
            # RTU frames by length, and a malformed request has the wrong one.
            crosses(RtuFramer(), RtuFramer(), request, functions)


if __name__ == "__main__":
    fuzz(check)
