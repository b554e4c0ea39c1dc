"""Helpers shared by the dispatcher tests (public API only)."""

from __future__ import annotations

from modbus_core import (
    Dispatcher,
    ExceptionResponse,
    FunctionTable,
    Request,
    RequestPdu,
    Response,
    ResponsePdu,
)

FUNCTIONS = FunctionTable()


def wire(hex_pdu: str) -> RequestPdu:
    """The request PDU a server decodes from these bytes (spaces allowed)."""
    return FUNCTIONS.decode_request(bytes.fromhex(hex_pdu))


def ask(dispatcher: Dispatcher, pdu: RequestPdu, unit: int = 1, transaction_id: int = 0) -> Response | None:
    """Dispatch synchronously; fails if the dispatcher returned an awaitable."""
    result = dispatcher.dispatch(Request(pdu, unit, transaction_id))
    assert result is None or isinstance(result, Response), f"expected a synchronous answer, got {result!r}"
    return result


def answer(dispatcher: Dispatcher, pdu: RequestPdu, unit: int = 1) -> ResponsePdu:
    """The response PDU, which must exist."""
    response = ask(dispatcher, pdu, unit)
    assert response is not None, f"{pdu!r} got no answer"
    assert response.unit == unit
    return response.pdu


def error_code(dispatcher: Dispatcher, pdu: RequestPdu, unit: int = 1) -> int:
    """The exception code of the answer, which must be an exception for *pdu*'s function."""
    response = answer(dispatcher, pdu, unit)
    assert isinstance(response, ExceptionResponse), f"expected an exception, got {response!r}"
    assert response.function_code == pdu.function_code & 0x7F
    return int(response.exception_code)
