"""A coverage-guided fuzz target (atheris) for the custom function code of custom_function.py.

    python examples/fuzz_custom_function.py -max_total_time=60     # fuzz for a minute
    python examples/fuzz_custom_function.py -runs=20000            # or a number of inputs

The input is what an RTU line delivers: any bytes.  A server connection with
the custom function in its table frames and decodes them; every request it
produces must be a ReadLabel that re-encodes to the bytes that carried it, or a
MalformedRequest the server answers with exception 03, and every response the
server could send for it must decode again on the client side.  Arguments after
the script name go to libFuzzer (``-help=1`` lists them); a crash prints the
input and leaves it in a ``crash-*`` file to replay with
``python examples/fuzz_custom_function.py crash-...``.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from custom_function import READ_LABEL, ReadLabel, ReadLabelResponse

    from modbus_core import (
        NEED_DATA,
        FrameDropped,
        FunctionTable,
        MalformedRequest,
        Request,
        RtuFramer,
        ServerConnection,
    )

TABLE = FunctionTable([READ_LABEL])


def test_one_input(data: bytes) -> None:
    server = ServerConnection(RtuFramer(19200), functions=TABLE)
    server.receive_data(data, 0.0)
    server.handle_timeout(1.0)  # the line falls silent: whatever is left is judged now
    while (event := server.next_event()) is not NEED_DATA:
        if isinstance(event, FrameDropped):
            continue
        assert isinstance(event, Request), event
        pdu = event.pdu
        if isinstance(pdu, ReadLabel):
            assert TABLE.decode_request(pdu.encode()) == pdu
            answer = ReadLabelResponse(f"label {pdu.index}")
            assert TABLE.decode_response(answer.encode()) == answer
        elif isinstance(pdu, MalformedRequest) and pdu.function_code == READ_LABEL.function_code:
            assert pdu.exception_code == 3, pdu


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
