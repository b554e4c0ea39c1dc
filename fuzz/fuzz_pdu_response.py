"""Fuzz target: decoding response PDUs (what a client receives).

Input: one PDU, function code first.

Checked: ``decode_response`` raises nothing but RemoteProtocolError, with
the default table and with a custom one (which must agree on standard
codes); what it returns is a ResponsePdu of the PDU's function (an
ExceptionResponse for codes with the high bit set, a RawPdu only for codes
the table does not know); a typed response re-encodes to the same bytes
(FC17: the run indicator as 0x00/0xFF), passes its own constructor's
validation, and its RTU length rule frames it whole.
"""

from __future__ import annotations

from fuzzsupport import fuzz, instrumented

with instrumented(__name__ == "__main__"):
    from fuzzoracles import CUSTOM_FUNCTIONS, DEFAULT_FUNCTIONS, InvariantError, check_decoded_response, expect

    from modbus_core import FunctionTable, RemoteProtocolError, ResponsePdu


def decode(functions: FunctionTable, raw: bytes) -> ResponsePdu | RemoteProtocolError:
    try:
        return functions.decode_response(raw)
    except RemoteProtocolError as error:
        return error
    except Exception as error:
        raise InvariantError(f"decode_response({raw.hex()}) raised {error!r}") from error


def check(data: bytes) -> None:
    results = []
    for functions in (DEFAULT_FUNCTIONS, CUSTOM_FUNCTIONS):
        result = decode(functions, data)
        if not isinstance(result, RemoteProtocolError):
            check_decoded_response(functions, data, result)
        results.append(result)
    default, custom = results
    if data and data[0] & 0x7F not in {function.function_code for function in CUSTOM_FUNCTIONS.custom}:
        same = (
            str(default) == str(custom)
            if isinstance(default, RemoteProtocolError) and isinstance(custom, RemoteProtocolError)
            else default == custom
        )
        expect(same, "{}: the custom table gives {!r}, the default {!r}", data.hex(), custom, default)


if __name__ == "__main__":
    fuzz(check)
