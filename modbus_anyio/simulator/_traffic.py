"""Modbus traffic through the simulator: the request handler, the call
recorder and fault injection.

Every listener answers through a :class:`RequestHandler`: it asks the
:class:`FaultInjector` whether a rule applies (a dictionary lookup when
none is active), dispatches the request against the plant with a
``modbus_core`` :class:`~modbus_core.Dispatcher`, counts it, and records
it in the :class:`CallRecorder` (a bounded deque of immutable objects:
formatting waits until someone asks).
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeAlias

import anyio

from modbus_core import (
    Dispatcher,
    ExceptionCode,
    ExceptionResponse,
    FunctionCode,
    FunctionTable,
    MaskWriteRegister,
    ReadCoils,
    ReadDiscreteInputs,
    ReadHoldingRegisters,
    ReadHoldingRegistersResponse,
    ReadInputRegisters,
    ReadInputRegistersResponse,
    ReadWriteMultipleRegisters,
    ReadWriteMultipleRegistersResponse,
    Request,
    RequestPdu,
    Response,
    ServerConnection,
    WriteMultipleCoils,
    WriteMultipleRegisters,
    WriteSingleCoil,
    WriteSingleRegister,
)

from .._handler import ConnectionInfo, HandlerResult, RawReply
from ._plant import SimDevice

__all__ = ["CallRecord", "CallRecorder", "FaultInjector", "FaultRule", "RequestHandler", "request_spans"]

logger = logging.getLogger(__name__)

FAULT_EFFECTS = ("exception", "no_answer", "delay", "junk", "split")


# --------------------------------------------------------------------------
# what a request touches


def request_spans(pdu: RequestPdu) -> tuple[tuple[int, int], ...]:
    """The ``(first address, count)`` ranges a request reads or writes (empty for the others)."""
    cls = pdu.__class__
    if cls in (ReadCoils, ReadDiscreteInputs, ReadHoldingRegisters, ReadInputRegisters):
        return ((pdu.address, pdu.count),)  # type: ignore[attr-defined]
    if cls in (WriteSingleCoil, WriteSingleRegister, MaskWriteRegister):
        return ((pdu.address, 1),)  # type: ignore[attr-defined]
    if cls in (WriteMultipleCoils, WriteMultipleRegisters):
        return ((pdu.address, len(pdu.values)),)  # type: ignore[attr-defined]
    if cls is ReadWriteMultipleRegisters:
        assert isinstance(pdu, ReadWriteMultipleRegisters)
        return ((pdu.write_address, len(pdu.write_values)), (pdu.read_address, pdu.read_count))
    return ()


def function_name(code: int) -> str:
    """``3`` -> ``"read_holding_registers"``; unknown codes -> ``"function_65"``."""
    try:
        return FunctionCode(code & 0x7F).name.lower()
    except ValueError:
        return f"function_{code & 0x7F}"


def exception_name(code: int) -> str:
    try:
        return ExceptionCode(code).name.lower()
    except ValueError:
        return "unknown"


# --------------------------------------------------------------------------
# the recorder


class CallRecord:
    """One request and what the simulator did with it.

    *outcome* is the :class:`~modbus_core.Response` sent, the
    :class:`RawReply` written instead, or None when nothing was sent.
    *time* is the wall-clock time the request was handled; *duration* the
    seconds until the answer was handed to the connection (delays included).
    """

    __slots__ = ("_outcome", "_request", "duration", "fault", "id", "info", "time")

    def __init__(
        self,
        call_id: int,
        started: float,
        duration: float,
        info: ConnectionInfo,
        request: Request | _Packed,
        outcome: HandlerResult | _Packed | bytes,
        fault: int | None,
    ) -> None:
        self.id = call_id
        self.time = started
        self.duration = duration
        self.info = info
        self._request = request
        self._outcome = outcome
        self.fault = fault

    @property
    def request(self) -> Request:
        request = self._request
        if isinstance(request, _Packed):
            request = self._request = request.unpacked_request()
        return request

    @property
    def outcome(self) -> HandlerResult:
        outcome = self._outcome
        if isinstance(outcome, bytes):
            # The answer to this call's request, kept as its PDU (see CallRecorder.record).
            request = self._request
            outcome = self._outcome = Response(_STANDARD.decode_response(outcome), request.unit, request.transaction_id)
        elif isinstance(outcome, _Packed):
            outcome = self._outcome = outcome.unpacked_response()
        return outcome

    # What filters ask, answered without decoding a kept PDU.

    @property
    def unit(self) -> int:
        return self._request.unit

    @property
    def function(self) -> int:
        request = self._request
        return (request.data[0] if isinstance(request, _Packed) else request.pdu.function_code) & 0x7F

    @property
    def exception_code(self) -> int | None:
        outcome = self._outcome
        if isinstance(outcome, Response) and isinstance(outcome.pdu, ExceptionResponse):
            return int(outcome.pdu.exception_code)
        return None

    @property
    def result(self) -> str:
        """``"ok"``, ``"exception"``, ``"no_answer"`` or ``"raw"``."""
        outcome = self._outcome
        if outcome is None:
            return "no_answer"
        if isinstance(outcome, RawReply):
            return "raw"
        if isinstance(outcome, bytes | _Packed):
            return "ok"  # only answers carrying registers are kept packed
        return "exception" if isinstance(outcome.pdu, ExceptionResponse) else "ok"

    def to_json(self) -> dict[str, Any]:
        spans = request_spans(self.request.pdu)
        code = self.exception_code
        outcome = self.outcome
        if outcome is None:
            detail = "no answer"
        elif isinstance(outcome, RawReply):
            pieces = sum(1 for part in outcome.parts if isinstance(part, bytes))
            detail = f"{len(outcome.data)} raw bytes in {pieces} piece{'s' if pieces != 1 else ''}"
        elif code is not None:
            detail = f"exception {code:02X} {exception_name(code).replace('_', ' ')}"
        else:
            detail = "ok"
        try:
            response_hex = (
                outcome.data.hex(" ")
                if isinstance(outcome, RawReply)
                else (self.info.encode(outcome).hex(" ") if outcome is not None else "")
            )
        except Exception:  # noqa: BLE001 - a hand-built ConnectionInfo may not encode
            response_hex = ""
        return {
            "id": self.id,
            "time": self.time,
            "duration_ms": round(self.duration * 1000, 3),
            "server": self.info.server,
            "transport": self.info.transport,
            "peer": self.info.peer,
            "connection": self.info.connection_id,
            "unit": self.unit,
            "transaction": self.request.transaction_id,
            "function": self.function,
            "function_name": function_name(self.function),
            "address": spans[0][0] if spans else None,
            "count": spans[0][1] if spans else None,
            "result": self.result,
            "exception_code": code,
            "detail": detail,
            "fault": self.fault,
            "request_pdu": self.request.pdu.encode().hex(" "),
            "response": response_hex,
        }


class _Packed:
    """A request or response PDU carrying registers, kept as its bytes.

    Kept as objects, the 10,000 calls of FC16 x 100 that the recorder keeps
    by default hold a million int objects (44 MB); as bytes, under 6 MB.
    The bytes are usually free: a request decoded from the wire and the
    datastore's answer to a read keep their encoding.  The PDU is decoded
    again only when someone reads the call.  An answer with its
    request's unit and transaction id (every answer of the datastore) is
    kept as the PDU's bytes alone, with no object around them: that saves
    about 0.7 us a request.
    """

    __slots__ = ("data", "transaction_id", "unit")

    def __init__(self, data: bytes, unit: int, transaction_id: int) -> None:
        self.data = data
        self.unit = unit
        self.transaction_id = transaction_id

    def unpacked_request(self) -> Request:
        return Request(_STANDARD.decode_request(self.data), self.unit, self.transaction_id)

    def unpacked_response(self) -> Response:
        return Response(_STANDARD.decode_response(self.data), self.unit, self.transaction_id)


_STANDARD = FunctionTable()
# Exactly these classes (a custom function's own PDU class is kept as it is).
_PACKED_REQUESTS = frozenset({WriteMultipleRegisters, ReadWriteMultipleRegisters})
_PACKED_RESPONSES = frozenset(
    {ReadHoldingRegistersResponse, ReadInputRegistersResponse, ReadWriteMultipleRegistersResponse}
)

_Entry: TypeAlias = tuple[
    int, float, float, ConnectionInfo, "Request | _Packed", "HandlerResult | _Packed | bytes", "int | None"
]


class CallRecorder:
    """The last *keep* calls, newest last; ids increase from 1.

    Calls are kept as plain tuples (one allocation per request on the hot
    path) and become :class:`CallRecord` objects when someone reads them.
    """

    __slots__ = ("_calls", "keep", "last_id")

    def __init__(self, keep: int = 10000) -> None:
        self._calls: deque[_Entry] = deque(maxlen=keep)
        self.last_id = 0
        self.keep = keep

    def __len__(self) -> int:
        return len(self._calls)

    def record(
        self,
        started: float,
        duration: float,
        info: ConnectionInfo,
        request: Request,
        outcome: HandlerResult,
        fault: int | None = None,
    ) -> None:
        self.last_id = call_id = self.last_id + 1
        kept_request: Request | _Packed = request
        kept_outcome: HandlerResult | _Packed | bytes = outcome
        if request.pdu.__class__ in _PACKED_REQUESTS:
            kept_request = _Packed(request.pdu.encode(), request.unit, request.transaction_id)
        if type(outcome) is Response and outcome.pdu.__class__ in _PACKED_RESPONSES:
            if outcome.unit == request.unit and outcome.transaction_id == request.transaction_id:
                # Its PDU alone, as bytes (no object to make): the request has the rest.
                kept_outcome = outcome.pdu.encode()
            else:
                kept_outcome = _Packed(outcome.pdu.encode(), outcome.unit, outcome.transaction_id)
        self._calls.append((call_id, started, duration, info, kept_request, kept_outcome, fault))

    def record_answered(
        self, started: float, info: ConnectionInfo, unit: int, transaction_id: int, request: bytes, answer: bytes
    ) -> None:
        """:meth:`record` of a call answered without events: its request and answer PDUs as bytes."""
        self.last_id = call_id = self.last_id + 1
        kept_outcome: Response | bytes = answer
        if answer[0] & 0x80:
            # Exceptions are kept decoded: a call kept as bytes is one that succeeded.
            kept_outcome = Response(_STANDARD.decode_response(answer), unit, transaction_id)
        self._calls.append((call_id, started, 0.0, info, _Packed(request, unit, transaction_id), kept_outcome, None))

    def clear(self) -> None:
        self._calls.clear()

    def calls(self) -> list[CallRecord]:
        """Every kept call, oldest first."""
        return [CallRecord(*entry) for entry in list(self._calls)]

    def newest(
        self, call_id: int, limit: int, keep: Callable[[CallRecord], bool] | None = None
    ) -> tuple[list[CallRecord], int]:
        """The newest *limit* calls newer than *call_id* that *keep* accepts
        (None: every call), oldest first, and how many such calls are kept.

        Walks back from the newest call, so that a live page polling a busy
        server reads a few dozen entries, not every call since its last look.
        """
        newer = min(self.last_id - call_id, len(self._calls))
        if newer <= 0:
            return [], 0
        entries = itertools.islice(reversed(self._calls), newer)
        if keep is None:
            shown = [CallRecord(*entry) for entry in itertools.islice(entries, limit)]
            shown.reverse()
            return shown, newer
        shown = []
        matches = 0
        for entry in entries:
            call = CallRecord(*entry)
            if keep(call):
                matches += 1
                if matches <= limit:
                    shown.append(call)
        shown.reverse()
        return shown, matches


# --------------------------------------------------------------------------
# fault injection


class FaultRule:
    """What to do to the requests a rule matches, and for how long.

    Matching: *server* (listener name), *unit*, *functions* (codes) and an
    address range *address_first*..*address_last* that a request must touch;
    None matches anything.  Effects: ``exception`` (answer *exception_code*
    without executing the request), ``no_answer`` (drop it without
    executing it), ``delay`` (answer after *delay* seconds), ``junk``
    (write *junk_length* random bytes instead of the answer), ``split``
    (write the answer in *pieces* pieces, *pause* seconds apart).  Any
    effect may also wait *delay* seconds first.  The rule ends after
    *count* matches or *duration* seconds (None: never); *probability* is
    the chance that a matching request is affected.
    """

    __slots__ = (
        "address_first",
        "address_last",
        "applied",
        "count",
        "created",
        "delay",
        "duration",
        "effect",
        "ended",
        "exception_code",
        "expires",
        "functions",
        "id",
        "junk_length",
        "pause",
        "pieces",
        "probability",
        "server",
        "unit",
    )

    def __init__(
        self,
        rule_id: int,
        effect: str,
        *,
        server: str | None = None,
        unit: int | None = None,
        functions: Iterable[int] | None = None,
        address_first: int | None = None,
        address_last: int | None = None,
        exception_code: int = int(ExceptionCode.SERVER_DEVICE_FAILURE),
        delay: float = 0.0,
        junk_length: int = 10,
        pieces: int = 2,
        pause: float = 0.05,
        count: int | None = None,
        duration: float | None = None,
        probability: float = 1.0,
        now: float = 0.0,
        wall: float = 0.0,
    ) -> None:
        if effect not in FAULT_EFFECTS:
            raise ValueError(f"effect must be one of {', '.join(FAULT_EFFECTS)}, got {effect!r}")
        _check_range("unit", unit, 0, 255)
        _check_range("exception_code", exception_code, 1, 255)
        _check_range("address_first", address_first, 0, 65535)
        _check_range("address_last", address_last, 0, 65535)
        _check_range("junk_length", junk_length, 1, 4096)
        _check_range("pieces", pieces, 2, 256)
        _check_range("count", count, 1, None)
        if address_first is not None and address_last is not None and address_last < address_first:
            raise ValueError(f"address_last ({address_last}) is before address_first ({address_first})")
        for name, value in (("delay", delay), ("pause", pause), ("duration", duration), ("probability", probability)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
        if probability > 1:
            raise ValueError(f"probability must be 0..1, got {probability}")
        if delay > 600 or pause > 60:
            raise ValueError("delay is at most 600 s and pause at most 60 s")
        if effect == "delay" and not delay:
            raise ValueError("a delay rule needs delay > 0")
        if server is not None and not isinstance(server, str):
            raise ValueError(f"server must be the name of a listener, got {server!r}")
        codes = None
        if functions is not None:
            listed = list(functions)
            for code in listed:
                _check_range("functions", code, 1, 127)
            codes = frozenset(listed)
        self.id = rule_id
        self.effect = effect
        self.server = server
        self.unit = unit
        self.functions = codes
        self.address_first = address_first
        self.address_last = address_last
        self.exception_code = exception_code
        self.delay = float(delay)
        self.junk_length = junk_length
        self.pieces = pieces
        self.pause = float(pause)
        self.count = count
        self.duration = duration
        self.probability = float(probability)
        self.created = wall
        self.expires = None if duration is None else now + duration
        self.applied = 0
        self.ended: str | None = None

    def matches(self, info: ConnectionInfo, request: Request) -> bool:
        if self.server is not None and info.server != self.server:
            return False
        if self.unit is not None and request.unit != self.unit:
            return False
        if self.functions is not None and (request.pdu.function_code & 0x7F) not in self.functions:
            return False
        if self.address_first is None and self.address_last is None:
            return True
        low = 0 if self.address_first is None else self.address_first
        high = 0xFFFF if self.address_last is None else self.address_last
        return any(first <= high and low < first + count for first, count in request_spans(request.pdu))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "effect": self.effect,
            "server": self.server,
            "unit": self.unit,
            "functions": sorted(self.functions) if self.functions is not None else None,
            "address_first": self.address_first,
            "address_last": self.address_last,
            "exception_code": self.exception_code,
            "delay": self.delay,
            "junk_length": self.junk_length,
            "pieces": self.pieces,
            "pause": self.pause,
            "count": self.count,
            "duration": self.duration,
            "probability": self.probability,
            "created": self.created,
            "applied": self.applied,
            "active": self.ended is None,
            "ended": self.ended,
        }


def _check_range(name: str, value: Any, low: int, high: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be an integer {bounds}, got {value!r}")


class FaultInjector:
    """The active fault rules, first match wins."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.rules: list[FaultRule] = []
        self.ended: deque[FaultRule] = deque(maxlen=100)
        self._ids = itertools.count(1)
        self._clock = clock
        self._wall = wall
        self._random = rng if rng is not None else random.Random()

    def add(self, effect: str, **options: Any) -> FaultRule:
        """A new rule (ValueError for bad options); it applies from now on."""
        rule = FaultRule(next(self._ids), effect, now=self._clock(), wall=self._wall(), **options)
        self.rules.append(rule)
        logger.info("fault rule %d added: %s", rule.id, describe_rule(rule))
        return rule

    def remove(self, rule_id: int) -> FaultRule:
        """End a rule now (KeyError when no active rule has that id)."""
        for rule in self.rules:
            if rule.id == rule_id:
                self._end(rule, "removed")
                return rule
        raise KeyError(rule_id)

    def clear(self) -> int:
        """End every rule; how many there were."""
        count = len(self.rules)
        for rule in list(self.rules):
            self._end(rule, "removed")
        return count

    def all(self) -> list[FaultRule]:
        """Active rules, then the recently ended ones (newest first)."""
        self.expire()
        return [*self.rules, *reversed(self.ended)]

    def expire(self) -> None:
        """End the rules whose time is up."""
        now = self._clock()
        for rule in list(self.rules):
            if rule.expires is not None and now >= rule.expires:
                self._end(rule, "expired")

    def _end(self, rule: FaultRule, why: str) -> None:
        rule.ended = why
        self.rules.remove(rule)
        self.ended.append(rule)
        logger.info("fault rule %d ended (%s) after %d request(s)", rule.id, why, rule.applied)

    def pick(self, info: ConnectionInfo, request: Request) -> FaultRule | None:
        """The rule that applies to *request* now (counted as applied), or None."""
        now = self._clock()
        for rule in list(self.rules):
            if rule.expires is not None and now >= rule.expires:
                self._end(rule, "expired")
                continue
            if not rule.matches(info, request):
                continue
            if rule.probability < 1.0 and self._random.random() >= rule.probability:
                continue
            rule.applied += 1
            if rule.count is not None and rule.applied >= rule.count:
                self._end(rule, "count reached")
            return rule
        return None


def describe_rule(rule: FaultRule) -> str:
    """A sentence for logs."""
    effect = {
        "exception": f"answer exception {rule.exception_code:02X}",
        "no_answer": "do not answer",
        "delay": f"answer {rule.delay:g} s late",
        "junk": f"send {rule.junk_length} junk bytes",
        "split": f"split answers in {rule.pieces} pieces {rule.pause:g} s apart",
    }[rule.effect]
    if rule.delay and rule.effect != "delay":
        effect += f" after {rule.delay:g} s"
    where = []
    if rule.server is not None:
        where.append(f"server {rule.server}")
    if rule.unit is not None:
        where.append(f"unit {rule.unit}")
    if rule.functions is not None:
        where.append("functions " + ",".join(str(code) for code in sorted(rule.functions)))
    if rule.address_first is not None or rule.address_last is not None:
        where.append(
            f"addresses {rule.address_first or 0}..{0xFFFF if rule.address_last is None else rule.address_last}"
        )
    limit = []
    if rule.count is not None:
        limit.append(f"{rule.count} time{'s' if rule.count != 1 else ''}")
    if rule.duration is not None:
        limit.append(f"for {rule.duration:g} s")
    return f"{effect} for {', '.join(where) or 'every request'}" + (f", {' or '.join(limit)}" if limit else "")


# --------------------------------------------------------------------------
# the handler


def _not_ready(request: Request) -> Response:
    return request.exception(ExceptionCode.SERVER_DEVICE_BUSY)


class ServerCounters:
    """What one listener did: requests, answers by kind, faults applied."""

    __slots__ = ("exceptions", "faults", "no_answer", "raw", "requests", "responses")

    def __init__(self) -> None:
        self.requests = 0
        self.responses = 0
        self.exceptions = 0
        self.no_answer = 0
        self.raw = 0
        self.faults = 0

    def to_json(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class RequestHandler:
    """The :data:`~modbus_anyio.Handler` of one listener."""

    __slots__ = ("_any_unit", "_dispatch", "counters", "devices", "dispatcher", "faults", "recorder")

    def __init__(
        self,
        dispatcher: Dispatcher | None,
        devices: Mapping[int | None, SimDevice],
        recorder: CallRecorder,
        faults: FaultInjector,
    ) -> None:
        self.dispatcher = dispatcher
        self._dispatch: Callable[[Request], Response | Awaitable[Response | None] | None] = (
            dispatcher.dispatch if dispatcher is not None else _not_ready
        )
        self.devices = dict(devices)
        self._any_unit = self.devices.get(None)  # the device answering every unit, if any
        self.recorder = recorder
        self.faults = faults
        self.counters = ServerCounters()

    def use(self, dispatcher: Dispatcher) -> None:
        """Answer from *dispatcher* from now on."""
        self.dispatcher = dispatcher
        self._dispatch = dispatcher.dispatch

    def __call__(self, request: Request, info: ConnectionInfo) -> HandlerResult | Awaitable[HandlerResult]:
        started = time.time()
        if self.faults.rules:
            rule = self.faults.pick(info, request)
            if rule is not None:
                return self._faulty(rule, request, info, started)
        outcome = self._dispatch(request)
        if isinstance(outcome, Response):
            self._answered(request.unit, outcome.pdu.__class__ is ExceptionResponse)
        elif outcome is None:
            self._count(request, outcome, None)
        else:
            return self._later(outcome, request, info, started)
        # Its duration is nil next to the network's.
        if self.recorder.keep:
            self.recorder.record(started, 0.0, info, request, outcome)
        return outcome

    def _answer_now(self, connection: ServerConnection, data: bytes, info: ConnectionInfo) -> bytes | None:
        """Answer a repeated Modbus/TCP poll without events, as :meth:`__call__` would, or None.

        The sessions of :mod:`modbus_anyio` call it before they take events
        (see ``Session``); it declines while fault rules are set, since a
        rule may match any request.
        """
        dispatcher = self.dispatcher
        if dispatcher is None or self.faults.rules:
            return None
        out = connection.answer_now(data, dispatcher)
        if out is None:
            return None
        unit = data[6]
        self._answered(unit, bool(out[7] & 0x80))
        if self.recorder.keep:
            self.recorder.record_answered(time.time(), info, unit, data[0] << 8 | data[1], data[7:], out[7:])
        return out

    def _answered(self, unit: int, failed: bool) -> None:
        """_count() for an answer computed at once (the hot path)."""
        counters = self.counters
        counters.requests += 1
        counters.responses += 1
        if failed:
            counters.exceptions += 1
        device = self.devices.get(unit, self._any_unit)
        if device is not None:
            device_counters = device.counters
            device_counters["requests"] += 1
            if failed:
                device_counters["exceptions"] += 1

    def _count(self, request: Request, outcome: HandlerResult, fault: FaultRule | None) -> None:
        counters = self.counters
        counters.requests += 1
        device = self.devices.get(request.unit, self._any_unit)
        if device is not None:
            device.counters["requests"] += 1
        if fault is not None:
            counters.faults += 1
            if device is not None:
                device.counters["faults"] += 1
        if outcome is None:
            counters.no_answer += 1
            if device is not None:
                device.counters["no_answer"] += 1
        elif isinstance(outcome, RawReply):
            counters.raw += 1
        else:
            counters.responses += 1
            if outcome.pdu.__class__ is ExceptionResponse:
                counters.exceptions += 1
                if device is not None:
                    device.counters["exceptions"] += 1

    async def _later(
        self, pending: Awaitable[Response | None], request: Request, info: ConnectionInfo, started: float
    ) -> HandlerResult:
        outcome = await pending
        self._count(request, outcome, None)
        self.recorder.record(started, time.time() - started, info, request, outcome)
        return outcome

    def _faulty(
        self, rule: FaultRule, request: Request, info: ConnectionInfo, started: float
    ) -> HandlerResult | Awaitable[HandlerResult]:
        outcome: HandlerResult
        if rule.effect == "exception":
            outcome = request.exception(rule.exception_code)
        elif rule.effect == "no_answer":
            outcome = None
        else:
            answer = self._dispatch(request)
            if answer is not None and not isinstance(answer, Response):
                return self._fault_later(rule, answer, request, info, started)
            outcome = self._transform(rule, answer, info)
        if rule.delay:
            return self._delayed(rule, outcome, request, info, started)
        self._count(request, outcome, rule)
        self.recorder.record(started, time.time() - started, info, request, outcome, rule.id)
        return outcome

    @staticmethod
    def _transform(rule: FaultRule, answer: Response | None, info: ConnectionInfo) -> HandlerResult:
        if rule.effect == "junk":
            return RawReply((os.urandom(rule.junk_length),))
        if rule.effect == "split" and answer is not None:
            data = info.encode(answer)
            pieces = min(rule.pieces, len(data))
            size, extra = divmod(len(data), pieces)
            parts: list[bytes | float] = []
            start = 0
            for index in range(pieces):
                end = start + size + (1 if index < extra else 0)
                if parts:
                    parts.append(rule.pause)
                parts.append(data[start:end])
                start = end
            return RawReply(tuple(parts))
        return answer

    async def _fault_later(
        self,
        rule: FaultRule,
        pending: Awaitable[Response | None],
        request: Request,
        info: ConnectionInfo,
        started: float,
    ) -> HandlerResult:
        outcome = self._transform(rule, await pending, info)
        return await self._delayed(rule, outcome, request, info, started)

    async def _delayed(
        self, rule: FaultRule, outcome: HandlerResult, request: Request, info: ConnectionInfo, started: float
    ) -> HandlerResult:
        await anyio.sleep(rule.delay)
        self._count(request, outcome, rule)
        self.recorder.record(started, time.time() - started, info, request, outcome, rule.id)
        return outcome
