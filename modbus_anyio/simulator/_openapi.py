"""The OpenAPI 3.1 description of the simulator's REST API (``/openapi.json``).

Written by hand next to the handlers in :mod:`._web`; a test calls every
path and method listed here against a running simulator.
"""

from __future__ import annotations

from typing import Any

from modbus_core import __version__

__all__ = ["openapi_document"]

_JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _ok(description: str, schema: dict[str, Any], media: str = _JSON) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": _ref("Error")}}}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def _path(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _body(schema: dict[str, Any], example: Any) -> dict[str, Any]:
    return {"required": True, "content": {_JSON: {"schema": schema, "example": example}}}


def _page_of(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "total": {"type": "integer"},
            "offset": {"type": "integer"},
            "limit": {"type": "integer"},
            "items": {"type": "array", "items": _ref(item)},
        },
    }


def _list_of(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"last_id": {"type": "integer"}, "items": {"type": "array", "items": _ref(item)}},
    }


_INTEGER = {"type": "integer"}
_STRING = {"type": "string"}
_TABLE = {"type": "string", "enum": ["coils", "discrete_inputs", "holding_registers", "input_registers"]}
_PAGING = [
    _query("offset", "Skip this many matches.", {"type": "integer", "minimum": 0, "default": 0}),
    _query("limit", "Return at most this many.", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
]
_REGISTER_FILTERS = [
    _query("device", "A device name, or a glob such as meter-*.", _STRING),
    _query("name", "Register names containing this text (or matching this glob).", _STRING),
    _query("q", "Registers whose name or device name contains this text.", _STRING),
    _query("table", "Only this table.", _TABLE),
    _query("unit", "Only devices answering this unit id.", {"type": "integer", "minimum": 0, "maximum": 255}),
    _query("server", "Only devices of this server (listener).", _STRING),
    _query("address_from", "Registers touching addresses from this one ...", {"type": "integer", "minimum": 0}),
    _query("address_to", "... to this one (inclusive).", {"type": "integer", "minimum": 0}),
    *_PAGING,
]
_CALL_FILTERS = [
    _query("server", "Only this server (listener).", _STRING),
    _query("unit", "Only this unit id.", {"type": "integer", "minimum": 0, "maximum": 255}),
    _query("function", "Only this function code.", {"type": "integer", "minimum": 1, "maximum": 127}),
    _query("result", "Only this result.", {"type": "string", "enum": ["ok", "exception", "no_answer", "raw"]}),
]
_EVENTS = "text/event-stream"


def _interval(default: float, what: str) -> dict[str, Any]:
    return _query(
        "interval",
        f"The least time between two {what} events, in seconds.",
        {"type": "number", "minimum": 0.25, "maximum": 60, "default": default},
    )


_JSON_ONLY = (
    "Requests that change something must send `Content-Type: application/json` "
    "(else 415), so that forms of other web sites cannot."
)

_SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "Register": {
        "type": "object",
        "description": "A named value of a device. value is raw times scale; raw are the registers (or the bit).",
        "properties": {
            "id": {"type": "string", "description": "device/name"},
            "device": _STRING,
            "unit": {"type": ["integer", "null"], "description": "null: the device answers any unit"},
            "name": _STRING,
            "table": _TABLE,
            "address": _INTEGER,
            "count": {"type": "integer", "description": "addresses it takes"},
            "type": {
                "type": "string",
                "enum": [
                    "bool",
                    "int16",
                    "uint16",
                    "int32",
                    "uint32",
                    "int64",
                    "uint64",
                    "float32",
                    "float64",
                    "string",
                    "bits",
                ],
            },
            "length": {"type": ["integer", "null"]},
            "byte_order": {"type": "string", "enum": ["big", "little"]},
            "word_order": {"type": "string", "enum": ["big", "little"]},
            "scale": {"type": "number"},
            "units": _STRING,
            "description": _STRING,
            "read_only": {"type": "boolean"},
            "action": {"type": ["string", "null"]},
            "value": {"description": "number, string, boolean, or list of booleans; NaN and infinities as strings"},
            "raw": {"type": "array", "items": {"type": ["integer", "boolean"]}},
        },
    },
    "Device": {
        "type": "object",
        "properties": {
            "name": _STRING,
            "unit": {"type": ["integer", "null"]},
            "servers": {"type": "array", "items": _STRING},
            "description": _STRING,
            "registers": _INTEGER,
            "tables": {
                "type": "object",
                "description": "present (first, count) ranges of each table",
                "additionalProperties": {"type": "array", "items": {"type": "array", "items": _INTEGER}},
            },
            "counters": {"type": "object", "additionalProperties": _INTEGER},
            "identity": {"type": ["object", "null"], "additionalProperties": _STRING},
        },
    },
    "TableValues": {
        "type": "object",
        "properties": {
            "device": _STRING,
            "table": _TABLE,
            "address": _INTEGER,
            "values": {"type": "array", "items": {"type": ["integer", "boolean"]}},
        },
    },
    "TableWrite": {
        "type": "object",
        "required": ["address"],
        "description": (
            "Raw values (registers 0..65535, or booleans for coils and discrete inputs), or typed values "
            "with type (and byte_order, word_order, length) written one after the other. Read-only "
            "registers are written too."
        ),
        "properties": {
            "address": _INTEGER,
            "values": {"type": "array"},
            "value": {},
            "type": {
                "type": "string",
                "enum": [
                    "int16",
                    "uint16",
                    "int32",
                    "uint32",
                    "int64",
                    "uint64",
                    "float32",
                    "float64",
                    "string",
                    "bits",
                ],
            },
            "byte_order": {"type": "string", "enum": ["big", "little"]},
            "word_order": {"type": "string", "enum": ["big", "little"]},
            "length": _INTEGER,
        },
    },
    "Call": {
        "type": "object",
        "description": "A request and what was answered.",
        "properties": {
            "id": _INTEGER,
            "time": {"type": "number", "description": "seconds since 1970"},
            "duration_ms": {"type": "number"},
            "server": _STRING,
            "transport": _STRING,
            "peer": _STRING,
            "connection": _INTEGER,
            "unit": _INTEGER,
            "transaction": _INTEGER,
            "function": _INTEGER,
            "function_name": _STRING,
            "address": {"type": ["integer", "null"]},
            "count": {"type": ["integer", "null"]},
            "result": {"type": "string", "enum": ["ok", "exception", "no_answer", "raw"]},
            "exception_code": {"type": ["integer", "null"]},
            "detail": _STRING,
            "fault": {"type": ["integer", "null"], "description": "the fault rule that acted on it"},
            "request_pdu": {"type": "string", "description": "hex"},
            "response": {"type": "string", "description": "hex of the bytes sent"},
        },
    },
    "FaultRuleInput": {
        "type": "object",
        "required": ["effect"],
        "description": (
            "Matching: server, unit, functions, and an address range the request touches (omit to match "
            "anything). exception answers exception_code and no_answer stays silent, both without executing "
            "the request; delay answers delay seconds late; junk sends junk_length random bytes instead; "
            "split sends the answer in pieces, pause seconds apart. Any effect may add a delay first. The "
            "rule ends after count matches or duration seconds."
        ),
        "properties": {
            "effect": {"type": "string", "enum": ["exception", "no_answer", "delay", "junk", "split"]},
            "server": {"type": ["string", "null"]},
            "unit": {"type": ["integer", "null"], "minimum": 0, "maximum": 255},
            "functions": {"type": ["array", "null"], "items": {"type": "integer", "minimum": 1, "maximum": 127}},
            "address_first": {"type": ["integer", "null"], "minimum": 0, "maximum": 65535},
            "address_last": {"type": ["integer", "null"], "minimum": 0, "maximum": 65535},
            "exception_code": {"type": "integer", "minimum": 1, "maximum": 255, "default": 4},
            "delay": {"type": "number", "minimum": 0, "maximum": 600, "default": 0},
            "junk_length": {"type": "integer", "minimum": 1, "maximum": 4096, "default": 10},
            "pieces": {"type": "integer", "minimum": 2, "maximum": 256, "default": 2},
            "pause": {"type": "number", "minimum": 0, "maximum": 60, "default": 0.05},
            "count": {"type": ["integer", "null"], "minimum": 1},
            "duration": {"type": ["number", "null"], "minimum": 0},
            "probability": {"type": "number", "minimum": 0, "maximum": 1, "default": 1},
        },
    },
    "FaultRule": {
        "allOf": [
            _ref("FaultRuleInput"),
            {
                "type": "object",
                "properties": {
                    "id": _INTEGER,
                    "created": {"type": "number"},
                    "applied": _INTEGER,
                    "active": {"type": "boolean"},
                    "ended": {"type": ["string", "null"]},
                },
            },
        ]
    },
    "LogEntry": {
        "type": "object",
        "properties": {
            "id": _INTEGER,
            "time": {"type": "number"},
            "level": _STRING,
            "logger": _STRING,
            "message": _STRING,
        },
    },
    "Listener": {
        "type": "object",
        "properties": {
            "name": _STRING,
            "transport": {"type": "string", "enum": ["tcp", "tls", "udp", "serial"]},
            "framer": {"type": "string", "enum": ["socket", "rtu", "ascii"]},
            "description": _STRING,
            "addresses": {"type": "array", "items": _STRING},
            "state": {"type": "string", "enum": ["starting", "running", "stopping", "stopped", "failed"]},
            "error": {"type": ["string", "null"]},
            "enabled": {"type": "boolean"},
            "started": {"type": ["number", "null"]},
            "units": {"type": "array"},
            "connections": {"type": "array", "items": {"type": "object"}},
            "counters": {"type": "object", "additionalProperties": _INTEGER},
            "diagnostics": {"type": ["object", "null"]},
        },
    },
    "Server": {
        "type": "object",
        "properties": {
            "status": _STRING,
            "version": _STRING,
            "started": {"type": ["number", "null"]},
            "uptime": {"type": "number"},
            "config": _STRING,
            "http": {"type": ["string", "null"]},
            "listeners": {"type": "array", "items": _ref("Listener")},
            "totals": {"type": "object", "additionalProperties": _INTEGER},
            "devices": _INTEGER,
            "registers": _INTEGER,
            "busiest_devices": {"type": "array", "items": {"type": "object"}},
            "calls_recorded": _INTEGER,
            "faults_active": _INTEGER,
            "actions": {"type": "object"},
            "state_file": {"type": ["string", "null"]},
            "state_saves": _INTEGER,
        },
    },
}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI description of the simulator's REST API, as served at
    ``/openapi.json``: for generating clients or checking one against it
    without starting a simulator.  A fresh dict each time."""
    device = _path("device", "A device name.")
    paths: dict[str, Any] = {
        "/api/plant": {
            "get": {
                "summary": "What the simulator runs",
                "responses": {"200": _ok("Configuration source, counts, server names.", {"type": "object"})},
            }
        },
        "/api/schema": {
            "get": {
                "summary": "The JSON Schema of configuration files",
                "responses": {"200": _ok("A JSON Schema (draft 2020-12).", {"type": "object"})},
            }
        },
        "/api/devices": {
            "get": {
                "summary": "List devices",
                "parameters": [
                    _query("q", "Names containing this text (or matching this glob).", _STRING),
                    _query("server", "Only devices of this server.", _STRING),
                    *_PAGING,
                ],
                "responses": {"200": _ok("A page of devices.", _page_of("Device"))},
            }
        },
        "/api/devices/{device}": {
            "get": {
                "summary": "One device, with its identification",
                "parameters": [device],
                "responses": {"200": _ok("The device.", _ref("Device")), "404": _error("No such device.")},
            }
        },
        "/api/devices/{device}/tables/{table}": {
            "get": {
                "summary": "Read raw values of a table",
                "parameters": [
                    device,
                    _path("table", "The table.", _TABLE),
                    _query("address", "First address.", {"type": "integer", "minimum": 0, "default": 0}),
                    _query("count", "How many.", {"type": "integer", "minimum": 1, "maximum": 2000, "default": 1}),
                ],
                "responses": {
                    "200": _ok("The values.", _ref("TableValues")),
                    "404": _error("No such device, or addresses not all present."),
                },
            },
            "put": {
                "summary": "Write raw or typed values to a table",
                "description": _JSON_ONLY,
                "parameters": [device, _path("table", "The table.", _TABLE)],
                "requestBody": _body(_ref("TableWrite"), {"address": 0, "values": [1.5, -2.25], "type": "float32"}),
                "responses": {
                    "200": _ok("The values now stored.", _ref("TableValues")),
                    "400": _error("Values that do not fit."),
                    "404": _error("No such device, or addresses not all present."),
                },
            },
        },
        "/api/registers": {
            "get": {
                "summary": "List named registers with their values",
                "parameters": _REGISTER_FILTERS,
                "responses": {"200": _ok("A page of registers.", _page_of("Register"))},
            },
            "put": {
                "summary": "Set several named registers at once (all or none)",
                "description": _JSON_ONLY,
                "requestBody": _body(
                    {
                        "type": "object",
                        "required": ["values"],
                        "properties": {"values": {"type": "object", "description": "register id -> value"}},
                    },
                    {"values": {"energy-meter/ct_ratio": 200, "water-tank/inlet_valve": False}},
                ),
                "responses": {
                    "200": _ok(
                        "The registers after the change.",
                        {"type": "object", "properties": {"items": {"type": "array", "items": _ref("Register")}}},
                    ),
                    "400": _error("A value that does not fit (nothing was written)."),
                    "404": _error("An unknown register (nothing was written)."),
                },
            },
        },
        "/api/registers/events": {
            "get": {
                "summary": "Live register values (server-sent events)",
                "description": (
                    "The same filters as GET /api/registers. First a `page` event (like GET /api/registers), "
                    "then `values` events with the registers of that page that changed "
                    '(at most one per `interval`): {"items": [{"id", "value", "raw"}]}.'
                ),
                "parameters": [*_REGISTER_FILTERS, _interval(0.5, "`values`")],
                "responses": {"200": {"description": "An event stream.", "content": {_EVENTS: {}}}},
            }
        },
        "/api/registers/{device}/{name}": {
            "get": {
                "summary": "Read one named register",
                "parameters": [device, _path("name", "The register's name.")],
                "responses": {"200": _ok("The register.", _ref("Register")), "404": _error("No such register.")},
            },
            "put": {
                "summary": "Set one named register (read-only ones too)",
                "description": _JSON_ONLY,
                "parameters": [device, _path("name", "The register's name.")],
                "requestBody": _body(
                    {"type": "object", "required": ["value"], "properties": {"value": {}}}, {"value": 200}
                ),
                "responses": {
                    "200": _ok("The register after the change.", _ref("Register")),
                    "400": _error("A value that does not fit."),
                    "404": _error("No such register."),
                },
            },
        },
        "/api/calls": {
            "get": {
                "summary": "Recent requests and responses, newest first",
                "parameters": [
                    *_CALL_FILTERS,
                    _query("since", "Only calls with a larger id.", {"type": "integer", "minimum": 0}),
                    _query(
                        "limit",
                        "At most this many.",
                        {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                    ),
                ],
                "responses": {"200": _ok("Calls.", _list_of("Call"))},
            },
            "delete": {
                "summary": "Forget the recorded calls",
                "description": _JSON_ONLY,
                "responses": {"200": _ok("How many were removed.", {"type": "object"})},
            },
        },
        "/api/calls/events": {
            "get": {
                "summary": "Live traffic and fault rules (server-sent events)",
                "description": (
                    "`calls` events carry new calls (oldest first, at most 50 per event and one event per "
                    "`interval`, with `skipped`); `faults` events the fault rules whenever they change."
                ),
                "parameters": [*_CALL_FILTERS, _interval(0.25, "`calls`")],
                "responses": {"200": {"description": "An event stream.", "content": {_EVENTS: {}}}},
            }
        },
        "/api/calls.pcap": {
            "get": {
                "summary": "The recorded calls as a pcap file",
                "description": (
                    "Raw IP packets with synthesized TCP or UDP headers around Modbus/TCP ADUs. Wireshark "
                    "decodes port 502 as Modbus by itself; for other ports use Decode As (tshark: "
                    "-d tcp.port==5020,mbtcp) or server_port=502. TLS calls are written decrypted, to port 502."
                ),
                "parameters": [
                    *_CALL_FILTERS,
                    _query("server_port", "Write this port as every listener's.", {"type": "integer", "minimum": 1}),
                ],
                "responses": {
                    "200": {
                        "description": "A pcap file.",
                        "content": {"application/vnd.tcpdump.pcap": {"schema": {"type": "string", "format": "binary"}}},
                    }
                },
            }
        },
        "/api/faults": {
            "get": {
                "summary": "Fault rules: active ones, then recently ended ones",
                "responses": {
                    "200": _ok(
                        "Rules.",
                        {"type": "object", "properties": {"items": {"type": "array", "items": _ref("FaultRule")}}},
                    )
                },
            },
            "post": {
                "summary": "Inject a fault into the Modbus traffic",
                "description": _JSON_ONLY,
                "requestBody": _body(
                    _ref("FaultRuleInput"),
                    {"effect": "exception", "unit": 1, "functions": [3], "exception_code": 6, "count": 5},
                ),
                "responses": {"201": _ok("The new rule.", _ref("FaultRule")), "400": _error("Bad options.")},
            },
            "delete": {
                "summary": "End every fault rule",
                "description": _JSON_ONLY,
                "responses": {"200": _ok("How many were ended.", {"type": "object"})},
            },
        },
        "/api/faults/{rule}": {
            "get": {
                "summary": "One fault rule",
                "parameters": [_path("rule", "The rule's id.", _INTEGER)],
                "responses": {"200": _ok("The rule.", _ref("FaultRule")), "404": _error("No such rule.")},
            },
            "delete": {
                "summary": "End a fault rule",
                "description": _JSON_ONLY,
                "parameters": [_path("rule", "The rule's id.", _INTEGER)],
                "responses": {"200": _ok("The rule, ended.", _ref("FaultRule")), "404": _error("No such rule.")},
            },
        },
        "/api/log": {
            "get": {
                "summary": "Recent log records, newest first",
                "parameters": [
                    _query(
                        "level",
                        "At least this level.",
                        {"type": "string", "enum": ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]},
                    ),
                    _query("since", "Only records with a larger id.", {"type": "integer", "minimum": 0}),
                    _query(
                        "limit",
                        "At most this many.",
                        {"type": "integer", "minimum": 1, "maximum": 1000, "default": 200},
                    ),
                ],
                "responses": {"200": _ok("Records.", _list_of("LogEntry")), "400": _error("Unknown level.")},
            }
        },
        "/api/log/events": {
            "get": {
                "summary": "Live log records (server-sent events)",
                "description": "`log` events with new records, oldest first.",
                "parameters": [
                    _query(
                        "level",
                        "At least this level.",
                        {"type": "string", "enum": ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]},
                    )
                ],
                "responses": {"200": {"description": "An event stream.", "content": {_EVENTS: {}}}},
            }
        },
        "/api/server": {
            "get": {
                "summary": "Status, listeners, connected clients and counters",
                "responses": {"200": _ok("The status.", _ref("Server"))},
            }
        },
        "/api/server/events": {
            "get": {
                "summary": "Live status (server-sent events)",
                "description": "`server` events, like GET /api/server, at most one a second, when something changed.",
                "responses": {"200": {"description": "An event stream.", "content": {_EVENTS: {}}}},
            }
        },
        "/api/servers": {
            "get": {
                "summary": "The Modbus listeners",
                "responses": {
                    "200": _ok(
                        "Listeners.",
                        {"type": "object", "properties": {"items": {"type": "array", "items": _ref("Listener")}}},
                    )
                },
            }
        },
        "/api/servers/{name}": {
            "get": {
                "summary": "One listener",
                "parameters": [_path("name", "The listener's name.")],
                "responses": {"200": _ok("The listener.", _ref("Listener")), "404": _error("No such listener.")},
            }
        },
        "/api/servers/{name}/start": {
            "post": {
                "summary": "Start a listener",
                "description": _JSON_ONLY,
                "parameters": [_path("name", "The listener's name.")],
                "responses": {
                    "200": _ok("The listener.", _ref("Listener")),
                    "404": _error("No such listener."),
                    "409": _error("It cannot start (the port is taken, ...)."),
                },
            }
        },
        "/api/servers/{name}/stop": {
            "post": {
                "summary": "Stop a listener (its clients are disconnected)",
                "description": _JSON_ONLY,
                "parameters": [_path("name", "The listener's name.")],
                "responses": {"200": _ok("The listener.", _ref("Listener")), "404": _error("No such listener.")},
            }
        },
        "/openapi.json": {
            "get": {"summary": "This description", "responses": {"200": _ok("OpenAPI 3.1.", {"type": "object"})}}
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "modbuskit simulator",
            "version": __version__,
            "description": (
                "The REST API of `modbuskit sim`: the plant's registers, the Modbus traffic and fault "
                "injection, the log and the listeners. Addresses are the 0-based addresses on the wire."
            ),
        },
        "paths": paths,
        "components": {"schemas": _SCHEMAS},
    }
