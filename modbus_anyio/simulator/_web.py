"""The web page and REST API: a Starlette application served by hypercorn.

Pages (``/registers``, ``/calls``, ``/log``, ``/server``) are static HTML
with plain JavaScript from ``static/``; they get live data from
server-sent events (``/api/.../events``).  The REST API under ``/api`` is
described by ``/openapi.json`` (see :mod:`._openapi`).

Requests that change something (POST, PUT, DELETE) must say
``Content-Type: application/json``: an HTML form of another site cannot,
so a page elsewhere cannot drive the simulator through the browser.  When
the web page listens on a loopback address (the default), requests must
also name a loopback host (``Host: 127.0.0.1:8080``, ``localhost``,
``[::1]``), so that a site that points its own name at 127.0.0.1 (DNS
rebinding) gets nothing either.
"""

from __future__ import annotations

import fnmatch
import io
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from modbus_core import DataType, LocalProtocolError, ModbusExceptionError, TableKind, __version__, to_registers

from ._config import BIT_TABLES, config_schema
from ._logbuffer import parse_level
from ._openapi import openapi_document
from ._pcap import write_pcap
from ._plant import Point, SimDevice, json_value
from ._traffic import CallRecord, FaultRule

if TYPE_CHECKING:
    import socket

    from ._simulator import Listener, Simulator

__all__ = ["create_app", "serve_http"]

logger = logging.getLogger(__name__)

STATIC_PACKAGE = ("modbus_anyio.simulator", "static")
MAX_LIMIT = 1000
EVENT_INTERVAL = 0.25  # seconds between checks for news in the event streams
# Register values go out at most twice a second unless asked otherwise: nobody
# reads numbers faster, and each event redraws a page of rows (most of a
# browser's work on the page).
VALUES_INTERVAL = 0.5
MAX_INTERVAL = 60.0
KEEPALIVE = 15.0
CALLS_PER_EVENT = 50  # at thousands of requests a second, nobody reads every one: the rest are counted


class ApiError(HTTPException):
    """An error answered as ``{"error": message}``."""


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def json_response(data: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_dumps(data), status_code, headers=headers, media_type="application/json")


def _int(request: Request, name: str, default: int | None = None, low: int = 0, high: int | None = None) -> int | None:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text, 0)
    except ValueError:
        raise ApiError(400, f"query parameter {name} must be an integer, got {text!r}") from None
    if value < low or (high is not None and value > high):
        raise ApiError(400, f"query parameter {name} must be {low}..{high if high is not None else ''}, got {value}")
    return value


def _interval(request: Request, default: float) -> float:
    """The ``interval`` query parameter: the least time between two events of a kind."""
    text = request.query_params.get("interval")
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        raise ApiError(400, f"query parameter interval must be a number of seconds, got {text!r}") from None
    if not EVENT_INTERVAL <= value <= MAX_INTERVAL:
        raise ApiError(400, f"query parameter interval must be {EVENT_INTERVAL}..{MAX_INTERVAL:g} seconds, got {text}")
    return value


def _table(text: str | None) -> TableKind | None:
    if text is None or text == "":
        return None
    try:
        return TableKind(text)
    except ValueError:
        choices = ", ".join(kind.value for kind in TableKind)
        raise ApiError(400, f"table must be one of {choices}, got {text!r}") from None


def _matches(pattern: str, text: str) -> bool:
    """Glob (``meter-*``) when the pattern has wildcards, else case-insensitive substring."""
    if any(char in pattern for char in "*?["):
        return fnmatch.fnmatchcase(text.lower(), pattern.lower())
    return pattern.lower() in text.lower()


async def _body(request: Request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "the body must be JSON") from None


def _field(body: Any, name: str, kinds: type | tuple[type, ...], *, required: bool = False, default: Any = None) -> Any:
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    if name not in body or body[name] is None:
        if required:
            raise ApiError(400, f"missing {name!r}")
        return default
    value = body[name]
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise ApiError(400, f"{name} must not be a boolean")
    if not isinstance(value, kinds):
        raise ApiError(400, f"{name} has the wrong type: {value!r}")
    return value


def point_json(point: Point, raw: tuple[Any, ...] | None = None) -> dict[str, Any]:
    spec = point.spec
    device = point.device
    raw = point.raw() if raw is None else raw
    return {
        "id": point.id,
        "device": device.name,
        "unit": device.unit,
        "name": spec.name,
        "table": spec.table.value,
        "address": spec.address,
        "count": spec.count,
        "type": spec.type,
        "length": spec.length,
        "byte_order": spec.byte_order,
        "word_order": spec.word_order,
        "scale": spec.scale,
        "units": spec.units,
        "description": spec.description,
        "read_only": spec.read_only,
        "action": spec.action.describe() if spec.action is not None else None,
        "value": json_value(point.decode(raw)),
        "raw": [int(value) for value in raw],
    }


def _value_from_json(value: Any) -> Any:
    """JSON can say "NaN" and "Infinity" only as strings."""
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
        return float(value.replace("Infinity", "inf"))
    return value


class _PointFilter:
    """The register list's filters (query parameters of /api/registers)."""

    def __init__(self, request: Request) -> None:
        params = request.query_params
        self.device = params.get("device") or None
        self.name = params.get("name") or None
        self.search = params.get("q") or None
        self.server = params.get("server") or None
        self.table = _table(params.get("table"))
        self.unit = _int(request, "unit", None, 0, 255)
        self.address_from = _int(request, "address_from", None, 0, 65535)
        self.address_to = _int(request, "address_to", None, 0, 65535)
        self.offset = _int(request, "offset", 0, 0) or 0
        self.limit = _int(request, "limit", 100, 1, MAX_LIMIT) or 100

    def select(self, simulator: Simulator) -> list[Point]:
        plant = simulator.plant
        devices = plant.devices
        if self.device is not None:
            if any(char in self.device for char in "*?["):
                devices = [sim for sim in devices if fnmatch.fnmatchcase(sim.name, self.device)]
            else:
                exact = plant.by_name.get(self.device)
                devices = [exact] if exact is not None else []
        if self.server is not None:
            devices = [sim for sim in devices if self.server in sim.spec.servers]
        if self.unit is not None:
            devices = [sim for sim in devices if sim.unit == self.unit]
        low = self.address_from if self.address_from is not None else 0
        high = self.address_to if self.address_to is not None else 0xFFFF
        check_address = self.address_from is not None or self.address_to is not None
        found: list[Point] = []
        for sim in devices:
            for point in sim.points:
                spec = point.spec
                if self.table is not None and spec.table is not self.table:
                    continue
                if check_address and not (spec.address <= high and low < spec.address + spec.count):
                    continue
                if self.name is not None and not _matches(self.name, spec.name):
                    continue
                if self.search is not None and not (
                    _matches(self.search, spec.name) or _matches(self.search, sim.name)
                ):
                    continue
                found.append(point)
        return found


class _Api:
    """The REST API's handlers, over one simulator."""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator

    # -- helpers -----------------------------------------------------------

    def _device(self, name: str) -> SimDevice:
        try:
            return self.simulator.plant.device(name)
        except KeyError:
            raise ApiError(404, f"no device named {name!r}") from None

    def _listener(self, name: str) -> Listener:
        listener = self.simulator.listeners.get(name)
        if listener is None:
            raise ApiError(404, f"no server named {name!r}")
        return listener

    async def _events(self, produce: Callable[[], Iterable[tuple[str, Any]]]) -> AsyncIterator[str]:
        closing = self.simulator.closing
        yield "retry: 1000\n\n"
        quiet_since = time.monotonic()
        while closing is None or not closing.is_set():
            for event, data in produce():
                yield f"event: {event}\ndata: {_dumps(data)}\n\n"
                quiet_since = time.monotonic()
            if time.monotonic() - quiet_since > KEEPALIVE:
                yield ": keep-alive\n\n"
                quiet_since = time.monotonic()
            with anyio.move_on_after(EVENT_INTERVAL):
                if closing is not None:
                    await closing.wait()
                else:
                    await anyio.sleep_forever()

    @staticmethod
    def _stream(events: AsyncIterator[str]) -> StreamingResponse:
        return StreamingResponse(
            events,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    # -- description ----------------------------------------------------------

    async def openapi(self, request: Request) -> Response:
        return json_response(openapi_document())

    async def schema(self, request: Request) -> Response:
        return json_response(config_schema())

    async def plant(self, request: Request) -> Response:
        simulator = self.simulator
        return json_response(
            {
                "description": simulator.config.description,
                "config": simulator.config.source,
                "devices": len(simulator.plant),
                "registers": sum(len(sim.points) for sim in simulator.plant),
                "servers": list(simulator.listeners),
                "version": __version__,
            }
        )

    # -- devices and raw tables ---------------------------------------------------

    def _device_json(self, sim: SimDevice, *, detail: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": sim.name,
            "unit": sim.unit,
            "servers": list(sim.spec.servers),
            "description": sim.spec.description,
            "registers": len(sim.points),
            "tables": {kind.value: [list(span) for span in sim.table_ranges(kind)] for kind in TableKind},
            "counters": dict(sim.counters),
        }
        if detail:
            identity = sim.device.identity
            data["identity"] = (
                {str(key): value.decode("utf-8", "replace") for key, value in identity.objects.items()}
                if identity is not None
                else None
            )
            data["pymodbus_layout"] = sim.spec.layout is not None
        return data

    async def devices(self, request: Request) -> Response:
        search = request.query_params.get("q") or None
        server = request.query_params.get("server") or None
        offset = _int(request, "offset", 0, 0) or 0
        limit = _int(request, "limit", 100, 1, MAX_LIMIT) or 100
        found = [
            sim
            for sim in self.simulator.plant
            if (search is None or _matches(search, sim.name)) and (server is None or server in sim.spec.servers)
        ]
        items = [self._device_json(sim) for sim in found[offset : offset + limit]]
        return json_response({"total": len(found), "offset": offset, "limit": limit, "items": items})

    async def device(self, request: Request) -> Response:
        return json_response(self._device_json(self._device(request.path_params["device"]), detail=True))

    async def table(self, request: Request) -> Response:
        sim = self._device(request.path_params["device"])
        kind = _table(request.path_params["table"])
        assert kind is not None
        if request.method == "PUT":
            return await self._write_table(request, sim, kind)
        address = _int(request, "address", 0, 0, 65535) or 0
        count = _int(request, "count", 1, 1, 2000) or 1
        try:
            values = sim.read(kind, address, count)
        except ModbusExceptionError as error:
            raise ApiError(404, str(error)) from None
        return json_response(
            {"device": sim.name, "table": kind.value, "address": address, "values": [_plain(v) for v in values]}
        )

    async def _write_table(self, request: Request, sim: SimDevice, kind: TableKind) -> Response:
        body = await _body(request)
        address = _field(body, "address", int, required=True)
        data_type = _field(body, "type", str)
        values = _field(body, "values", list)
        if values is None:
            if not isinstance(body, dict) or "value" not in body:
                raise ApiError(400, 'give "values" (a list) or "value"')
            values = [body["value"]]
        if not values:
            raise ApiError(400, "values must not be empty")
        raw: list[Any] = []
        try:
            if kind in BIT_TABLES:
                if data_type not in (None, "bool"):
                    raise ApiError(400, f"{kind.value} hold single bits: type must be bool, got {data_type!r}")
                for value in values:
                    if not (isinstance(value, bool) or value in (0, 1)):
                        raise ApiError(400, f"{kind.value} take true/false (or 0/1), got {value!r}")
                    raw.append(bool(value))
            elif data_type is None:
                for value in values:
                    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
                        raise ApiError(
                            400, f'registers are integers 0..65535 (give "type" for typed values), got {value!r}'
                        )
                    raw.append(value)
            else:
                try:
                    kind_type = DataType(data_type)
                except ValueError:
                    types = ", ".join(item.value for item in DataType)
                    raise ApiError(400, f"type must be one of {types}, got {data_type!r}") from None
                byte_order = _field(body, "byte_order", str, default="big")
                word_order = _field(body, "word_order", str, default="big")
                length = _field(body, "length", int)
                for value in values:
                    raw.extend(
                        to_registers(
                            _value_from_json(value),
                            kind_type,
                            byte_order=byte_order,
                            word_order=word_order,
                            length=length,
                        )
                    )
            sim.write(kind, address, raw)
        except LocalProtocolError as error:
            raise ApiError(400, str(error)) from None
        except ModbusExceptionError as error:
            raise ApiError(404, str(error)) from None
        logger.info("%s %s %d..%d set through the API", sim.name, kind.value, address, address + len(raw) - 1)
        written = sim.read(kind, address, len(raw))
        return json_response(
            {"device": sim.name, "table": kind.value, "address": address, "values": [_plain(v) for v in written]}
        )

    # -- named registers -------------------------------------------------------------

    async def registers(self, request: Request) -> Response:
        if request.method == "PUT":
            return await self._set_registers(request)
        selection = _PointFilter(request)
        found = selection.select(self.simulator)
        page = found[selection.offset : selection.offset + selection.limit]
        return json_response(
            {
                "total": len(found),
                "offset": selection.offset,
                "limit": selection.limit,
                "items": [point_json(point) for point in page],
            }
        )

    def _point(self, device: str, name: str) -> Point:
        sim = self._device(device)
        point = sim.by_name.get(name)
        if point is None:
            raise ApiError(404, f"device {device!r} has no register named {name!r}")
        return point

    async def register(self, request: Request) -> Response:
        point = self._point(request.path_params["device"], request.path_params["name"])
        if request.method == "PUT":
            body = await _body(request)
            if not isinstance(body, dict) or "value" not in body:
                raise ApiError(400, 'the body must be {"value": ...}')
            self._set(point, body["value"])
            logger.info("%s set to %r through the API", point.id, body["value"])
        return json_response(point_json(point))

    @staticmethod
    def _check(point: Point, value: Any) -> tuple[Any, ...]:
        try:
            return point.encode(_value_from_json(value))
        except (ValueError, LocalProtocolError) as error:
            raise ApiError(400, f"{point.id}: {error}") from None

    def _set(self, point: Point, value: Any) -> None:
        raw = self._check(point, value)
        table, address, _ = point.storage
        table.write(address, raw, force=True)

    async def _set_registers(self, request: Request) -> Response:
        body = await _body(request)
        values = _field(body, "values", dict, required=True)
        plant = self.simulator.plant
        planned: list[tuple[Point, tuple[Any, ...]]] = []
        for point_id, value in values.items():
            try:
                point = plant.point(point_id)
            except KeyError:
                raise ApiError(404, f'no register {point_id!r} (ids are "device/name")') from None
            planned.append((point, self._check(point, value)))
        # Every value is checked before any is written: all or nothing.
        for point, raw in planned:
            table, address, _ = point.storage
            table.write(address, raw, force=True)
        if planned:
            logger.info("%d register(s) set through the API", len(planned))
        return json_response({"items": [point_json(point) for point, _ in planned]})

    async def register_events(self, request: Request) -> Response:
        selection = _PointFilter(request)
        found = selection.select(self.simulator)
        page = found[selection.offset : selection.offset + selection.limit]
        interval = _interval(request, VALUES_INTERVAL)
        sent: dict[str, tuple[Any, ...]] = {}
        first = True
        last_values = -math.inf

        def produce() -> list[tuple[str, Any]]:
            nonlocal first, last_values
            if first:
                first = False
                items = []
                for point in page:
                    raw = point.raw()
                    sent[point.id] = raw
                    items.append(point_json(point, raw))
                return [
                    (
                        "page",
                        {"total": len(found), "offset": selection.offset, "limit": selection.limit, "items": items},
                    )
                ]
            now = time.monotonic()
            if now - last_values < interval:
                return []
            # Reading a page of values is cheaper than observing every write of the plant.
            changed = []
            for point in page:
                raw = point.raw()
                if raw != sent[point.id]:
                    sent[point.id] = raw
                    changed.append(
                        {"id": point.id, "value": json_value(point.decode(raw)), "raw": [int(v) for v in raw]}
                    )
            if not changed:
                return []
            last_values = now
            return [("values", {"items": changed})]

        return self._stream(self._events(produce))

    # -- calls and faults ---------------------------------------------------------------

    def _call_filter(self, request: Request) -> Callable[[CallRecord], bool] | None:
        """The query's call filter, or None when it asks for every call."""
        server = request.query_params.get("server") or None
        unit = _int(request, "unit", None, 0, 255)
        function = _int(request, "function", None, 1, 127)
        result = request.query_params.get("result") or None
        if result is not None and result not in ("ok", "exception", "no_answer", "raw"):
            raise ApiError(400, f"result must be ok, exception, no_answer or raw, got {result!r}")
        if server is None and unit is None and function is None and result is None:
            return None

        def keep(call: CallRecord) -> bool:
            return (
                (server is None or call.info.server == server)
                and (unit is None or call.unit == unit)
                and (function is None or call.function == function)
                and (result is None or call.result == result)
            )

        return keep

    async def calls(self, request: Request) -> Response:
        recorder = self.simulator.recorder
        if request.method == "DELETE":
            count = len(recorder)
            recorder.clear()
            return json_response({"removed": count})
        keep = self._call_filter(request)
        since = _int(request, "since", 0, 0) or 0
        limit = _int(request, "limit", 100, 1, MAX_LIMIT) or 100
        newest, _ = recorder.newest(since, limit, keep)
        newest.reverse()
        return json_response({"last_id": recorder.last_id, "items": [call.to_json() for call in newest]})

    async def call_events(self, request: Request) -> Response:
        recorder = self.simulator.recorder
        faults = self.simulator.faults
        keep = self._call_filter(request)
        interval = _interval(request, EVENT_INTERVAL)
        last = max(0, recorder.last_id - 100)
        last_calls = -math.inf
        rules_seen: str | None = None

        def produce() -> list[tuple[str, Any]]:
            nonlocal last, last_calls, rules_seen
            events: list[tuple[str, Any]] = []
            rules = [rule.to_json() for rule in faults.all()]
            text = _dumps(rules)
            if text != rules_seen:
                rules_seen = text
                events.append(("faults", {"items": rules}))
            now = time.monotonic()
            if recorder.last_id != last and now - last_calls >= interval:
                shown, matches = recorder.newest(last, CALLS_PER_EVENT, keep)
                last = recorder.last_id
                last_calls = now
                if shown:
                    items = [call.to_json() for call in shown]
                    events.append(("calls", {"items": items, "skipped": matches - len(shown)}))
            return events

        return self._stream(self._events(produce))

    async def pcap(self, request: Request) -> Response:
        keep = self._call_filter(request)
        server_port = _int(request, "server_port", None, 1, 65535)
        buffer = io.BytesIO()
        calls = [call for call in self.simulator.recorder.calls() if keep is None or keep(call)]
        write_pcap(calls, buffer, server_port=server_port)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return Response(
            buffer.getvalue(),
            media_type="application/vnd.tcpdump.pcap",
            headers={"Content-Disposition": f'attachment; filename="modbuskit-{stamp}.pcap"'},
        )

    async def faults(self, request: Request) -> Response:
        injector = self.simulator.faults
        if request.method == "DELETE":
            return json_response({"removed": injector.clear()})
        if request.method == "POST":
            body = await _body(request)
            if not isinstance(body, dict):
                raise ApiError(400, "the body must be a JSON object")
            options = dict(body)
            effect = options.pop("effect", None)
            if not isinstance(effect, str):
                raise ApiError(400, 'missing "effect": exception, no_answer, delay, junk or split')
            known = {
                "server",
                "unit",
                "functions",
                "address_first",
                "address_last",
                "exception_code",
                "delay",
                "junk_length",
                "pieces",
                "pause",
                "count",
                "duration",
                "probability",
            }
            unknown = sorted(set(options) - known)
            if unknown:
                raise ApiError(400, f"unknown field(s) {', '.join(unknown)}; expected {', '.join(sorted(known))}")
            options = {key: value for key, value in options.items() if value is not None}
            server = options.get("server")
            if server is not None and (not isinstance(server, str) or server not in self.simulator.listeners):
                raise ApiError(400, f"no server named {server!r}")
            functions = options.get("functions")
            if functions is not None and not isinstance(functions, list):
                raise ApiError(400, "functions must be a list of function codes")
            try:
                rule = injector.add(effect, **options)
            except (ValueError, TypeError) as error:
                raise ApiError(400, str(error)) from None
            return json_response(rule.to_json(), 201, headers={"Location": f"/api/faults/{rule.id}"})
        return json_response({"items": [rule.to_json() for rule in injector.all()]})

    def _rule(self, rule_id: int) -> FaultRule:
        for rule in self.simulator.faults.all():
            if rule.id == rule_id:
                return rule
        raise ApiError(404, f"no fault rule {rule_id}")

    async def fault(self, request: Request) -> Response:
        rule = self._rule(request.path_params["rule"])
        if request.method == "DELETE" and rule.ended is None:
            self.simulator.faults.remove(rule.id)
        return json_response(rule.to_json())

    # -- log ---------------------------------------------------------------------

    def _level(self, request: Request) -> int:
        try:
            return parse_level(request.query_params.get("level"))
        except ValueError as error:
            raise ApiError(400, str(error)) from None

    async def log(self, request: Request) -> Response:
        level = self._level(request)
        since = _int(request, "since", 0, 0) or 0
        limit = _int(request, "limit", 200, 1, MAX_LIMIT) or 200
        logs = self.simulator.logs
        entries = logs.entries(level=level, since=since, limit=limit)
        entries.reverse()
        return json_response({"last_id": logs.last_id, "items": [entry.to_json() for entry in entries]})

    async def log_events(self, request: Request) -> Response:
        level = self._level(request)
        logs = self.simulator.logs
        last = max(0, logs.last_id - 200)

        def produce() -> list[tuple[str, Any]]:
            nonlocal last
            if logs.last_id == last:
                return []
            entries = logs.entries(level=level, since=last)
            last = logs.last_id
            return [("log", {"items": [entry.to_json() for entry in entries[-500:]]})] if entries else []

        return self._stream(self._events(produce))

    # -- server ---------------------------------------------------------------------

    def _listener_json(self, listener: Listener) -> dict[str, Any]:
        spec = listener.spec
        server = listener.server
        diagnostics = getattr(server, "diagnostics", None) if server is not None else None
        return {
            "name": listener.name,
            "transport": spec.transport,
            "framer": spec.framer,
            "description": spec.describe(),
            "addresses": listener.addresses,
            "state": listener.state,
            "error": listener.error,
            "enabled": spec.enabled,
            "started": listener.started_at,
            "units": sorted("any" if unit is None else unit for unit in listener.handler.devices),
            "connections": [
                {"id": info.connection_id, "peer": info.peer, "transport": info.transport, "role": info.role}
                for info in listener.connections()
            ],
            "counters": listener.handler.counters.to_json(),
            "diagnostics": (
                {
                    "bus_message_count": diagnostics.bus_message_count,
                    "bus_communication_error_count": diagnostics.bus_communication_error_count,
                    "bus_exception_error_count": diagnostics.bus_exception_error_count,
                    "server_message_count": diagnostics.server_message_count,
                    "server_no_response_count": diagnostics.server_no_response_count,
                    "listen_only": diagnostics.listen_only,
                }
                if diagnostics is not None
                else None
            ),
        }

    def _server_json(self) -> dict[str, Any]:
        simulator = self.simulator
        listeners = [self._listener_json(listener) for listener in simulator.listeners.values()]
        totals: dict[str, int] = {}
        for listener in listeners:
            for key, value in listener["counters"].items():
                totals[key] = totals.get(key, 0) + value
        busiest = sorted(simulator.plant, key=lambda sim: sim.counters["requests"], reverse=True)[:20]
        return {
            "status": simulator.status,
            "version": __version__,
            "started": simulator.started,
            "uptime": round(time.time() - simulator.started, 3) if simulator.started else 0,
            "config": simulator.config.source,
            "description": simulator.config.description,
            "http": simulator.http_url,
            "listeners": listeners,
            "totals": totals,
            "devices": len(simulator.plant),
            "registers": sum(len(sim.points) for sim in simulator.plant),
            "busiest_devices": [
                {"name": sim.name, "unit": sim.unit, "counters": dict(sim.counters)}
                for sim in busiest
                if sim.counters["requests"]
            ],
            "calls_recorded": len(simulator.recorder),
            "faults_active": len(simulator.faults.rules),
            "actions": {
                "timers": simulator.actions.timer_count,
                "runs": simulator.actions.runs,
                "failures": simulator.actions.failures,
            },
            "state_file": str(simulator.state.path) if simulator.state is not None else None,
            "state_saves": simulator.state.saves if simulator.state is not None else 0,
        }

    async def server(self, request: Request) -> Response:
        return json_response(self._server_json())

    async def server_events(self, request: Request) -> Response:
        last_sent = 0.0
        last_text = ""

        def produce() -> list[tuple[str, Any]]:
            nonlocal last_sent, last_text
            now = time.monotonic()
            if now - last_sent < 1.0:
                return []
            last_sent = now
            data = self._server_json()
            text = _dumps({**data, "uptime": 0})
            if text == last_text:
                return []
            last_text = text
            return [("server", data)]

        return self._stream(self._events(produce))

    async def servers(self, request: Request) -> Response:
        return json_response({"items": [self._listener_json(item) for item in self.simulator.listeners.values()]})

    async def listener(self, request: Request) -> Response:
        return json_response(self._listener_json(self._listener(request.path_params["name"])))

    async def start_listener(self, request: Request) -> Response:
        listener = self._listener(request.path_params["name"])
        try:
            await listener.start()
        except Exception as error:  # noqa: BLE001 - reported to the caller
            raise ApiError(409, str(error)) from None
        return json_response(self._listener_json(listener))

    async def stop_listener(self, request: Request) -> Response:
        listener = self._listener(request.path_params["name"])
        await listener.stop()
        return json_response(self._listener_json(listener))


def _plain(value: Any) -> Any:
    return bool(value) if isinstance(value, bool) else int(value)


def _page(name: str) -> Callable[[Request], Awaitable[Response]]:
    from importlib import resources

    path = resources.files(__package__).joinpath("static", name)

    async def page(request: Request) -> Response:
        return FileResponse(str(path), media_type="text/html", headers={"Cache-Control": "no-cache"})

    return page


def _json_only(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Refuse changes whose Content-Type is not JSON (see the module's docstring)."""

    async def guarded(request: Request) -> Response:
        if request.method in ("POST", "PUT", "DELETE", "PATCH"):
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type != "application/json":
                raise ApiError(415, "requests that change something must send Content-Type: application/json")
        return await handler(request)

    return guarded


async def _error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if request.url.path.startswith("/api") or request.url.path == "/openapi.json":
        return json_response({"error": error.detail}, error.status_code, headers=getattr(error, "headers", None))
    return Response(f"{error.status_code} {error.detail}\n", error.status_code, media_type="text/plain")


async def _failure(request: Request, error: Exception) -> Response:
    logger.error("%s %s failed", request.method, request.url.path, exc_info=error)
    return json_response({"error": f"internal error: {error!r}"}, 500)


LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def _host_name(header: str) -> str:
    """``"[::1]:8080"`` -> ``"::1"``; ``"localhost:80"`` -> ``"localhost"``."""
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


class _LoopbackHostsOnly:
    """ASGI middleware: refuse requests whose Host is not a loopback name (see the module's docstring)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = dict(scope.get("headers") or ())
            host = _host_name(headers.get(b"host", b"").decode("latin-1")).lower()
            if host not in LOOPBACK_NAMES and not host.startswith("127."):
                response = json_response({"error": f"unknown host {host!r}: use 127.0.0.1 or localhost"}, 421)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _is_loopback(host: str) -> bool:
    return host in LOOPBACK_NAMES or host.startswith("127.")


def create_app(simulator: Simulator) -> Starlette:
    """The ASGI application of *simulator*: pages, static assets, REST API, OpenAPI."""
    api = _Api(simulator)

    def route(path: str, handler: Callable[[Request], Awaitable[Response]], methods: list[str] | None = None) -> Route:
        return Route(path, _json_only(handler), methods=methods or ["GET"])

    async def home(request: Request) -> Response:
        return RedirectResponse("/registers", 307)

    routes = [
        Route("/", home),
        Route("/registers", _page("registers.html")),
        Route("/calls", _page("calls.html")),
        Route("/log", _page("log.html")),
        Route("/server", _page("server.html")),
        route("/openapi.json", api.openapi),
        route("/api/schema", api.schema),
        route("/api/plant", api.plant),
        route("/api/devices", api.devices),
        route("/api/devices/{device}", api.device),
        route("/api/devices/{device}/tables/{table}", api.table, ["GET", "PUT"]),
        route("/api/registers", api.registers, ["GET", "PUT"]),
        route("/api/registers/events", api.register_events),
        route("/api/registers/{device}/{name}", api.register, ["GET", "PUT"]),
        route("/api/calls", api.calls, ["GET", "DELETE"]),
        route("/api/calls/events", api.call_events),
        route("/api/calls.pcap", api.pcap),
        route("/api/faults", api.faults, ["GET", "POST", "DELETE"]),
        route("/api/faults/{rule:int}", api.fault, ["GET", "DELETE"]),
        route("/api/log", api.log),
        route("/api/log/events", api.log_events),
        route("/api/server", api.server),
        route("/api/server/events", api.server_events),
        route("/api/servers", api.servers),
        route("/api/servers/{name}", api.listener),
        route("/api/servers/{name}/start", api.start_listener, ["POST"]),
        route("/api/servers/{name}/stop", api.stop_listener, ["POST"]),
        Mount("/static", StaticFiles(packages=[STATIC_PACKAGE]), name="static"),
    ]
    middleware = [Middleware(_LoopbackHostsOnly)] if _is_loopback(simulator.config.http_host) else []
    return Starlette(
        routes=routes, middleware=middleware, exception_handlers={HTTPException: _error, Exception: _failure}
    )


async def serve_http(
    simulator: Simulator,
    sock: socket.socket,
    done: anyio.Event,
    *,
    task_status: anyio.abc.TaskStatus[Any] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the app with hypercorn on *sock* (bound and listening) until the
    simulator closes; sets *done* when hypercorn has finished."""
    import sniffio
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.graceful_timeout = 1.0
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    closing = simulator.closing
    assert closing is not None
    try:
        if sniffio.current_async_library() == "trio":
            from hypercorn.trio import serve as trio_serve

            await trio_serve(simulator.app, config, shutdown_trigger=closing.wait, task_status=task_status)  # type: ignore[arg-type]
        else:
            from hypercorn.asyncio import serve as asyncio_serve

            task_status.started()
            await asyncio_serve(simulator.app, config, shutdown_trigger=closing.wait)  # type: ignore[arg-type]
    finally:
        done.set()
