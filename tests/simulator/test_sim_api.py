"""The REST API over real HTTP (hypercorn): every documented path answers, filters, errors, live events."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest
from starlette.routing import Mount, Route

from modbus_anyio.simulator import Simulator, default_config, openapi_document

from .sim_support import http, modbus_address, modbus_client, running, small_config

pytestmark = pytest.mark.anyio

# Path parameters for the built-in plant (the OpenAPI examples are written for it).
PATH_VALUES = {"device": "energy-meter", "table": "holding_registers", "name": "ct_ratio"}


async def first_event(web: httpx.AsyncClient, path: str, wanted: str | None = None) -> tuple[str, Any]:
    """The first event (named *wanted*, if given) of a server-sent event stream."""
    with anyio.fail_after(5):
        async with web.stream("GET", path) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            event = ""
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and (wanted is None or event == wanted):
                    return event, json.loads(line.removeprefix("data: "))
    raise AssertionError("the stream ended")


async def test_every_documented_operation_exists_and_answers() -> None:
    config = default_config().with_overrides(http_port=0, modbus_port=0)
    async with running(config) as simulator, http(simulator) as web:
        document = (await web.get("/openapi.json")).json()
        assert document["openapi"].startswith("3.1")
        assert document == openapi_document()  # the public function describes what is served
        rule = (await web.post("/api/faults", json={"effect": "delay", "delay": 0.01, "unit": 200})).json()
        values = {**PATH_VALUES, "rule": str(rule["id"])}
        answered = []
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                url = path
                for parameter in operation.get("parameters", []):
                    if parameter["in"] == "path":
                        key = parameter["name"]
                        value = "plant" if path.startswith("/api/servers/") else values[key]
                        url = url.replace("{" + key + "}", value)
                content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
                body = content.get("example")
                media = next(iter(operation["responses"].values())).get("content", {})
                if "text/event-stream" in media:
                    event, _ = await first_event(web, url)
                    assert event
                    answered.append((method, path))
                    continue
                response = await web.request(
                    method.upper(),
                    url,
                    json=body,
                    headers={"Content-Type": "application/json"} if method != "get" else {},
                )
                assert response.status_code < 400, (method, url, response.status_code, response.text)
                assert str(response.status_code) in operation["responses"], (method, url, response.status_code)
                expected_media = next(
                    iter(operation["responses"][str(response.status_code)].get("content", {"application/json": {}}))
                )
                assert response.headers["content-type"].startswith(expected_media), (method, url)
                answered.append((method, path))
        assert len(answered) == sum(len(operations) for operations in document["paths"].values())
        # ... and every route of the application is documented.
        documented = set(document["paths"])
        routes = {
            route.path.replace(":int", "")
            for route in simulator.app.routes
            if isinstance(route, Route) and (route.path.startswith("/api") or route.path == "/openapi.json")
        }
        assert routes == documented
        assert any(isinstance(route, Mount) and route.path == "/static" for route in simulator.app.routes)


async def test_register_listing_filters_and_pages() -> None:
    async with running() as simulator, http(simulator) as web:
        everything = (await web.get("/api/registers")).json()
        assert everything["total"] == 6
        assert [item["id"] for item in everything["items"]][:2] == ["meter/voltage", "meter/setpoint"]
        voltage = everything["items"][0]
        assert (voltage["value"], voltage["type"], voltage["table"], voltage["unit"]) == (
            230.5,
            "float32",
            "input_registers",
            1,
        )
        assert voltage["raw"] == list(simulator.plant.point("meter/voltage").raw())
        cases: list[tuple[dict[str, Any], list[str]]] = [
            ({"device": "tank"}, ["tank/level"]),
            ({"device": "t*"}, ["tank/level"]),
            ({"table": "coils"}, ["meter/relay"]),
            ({"name": "LAB"}, ["meter/label"]),
            ({"q": "tan"}, ["tank/level"]),
            (
                {"unit": 1, "table": "holding_registers", "address_from": 2, "address_to": 4},
                ["meter/limit", "meter/label"],
            ),
            ({"offset": 4, "limit": 1}, ["meter/relay"]),
            ({"device": "nobody"}, []),
        ]
        for params, expected in cases:
            page = (await web.get("/api/registers", params=params)).json()
            assert [item["id"] for item in page["items"]] == expected, params
        bad = await web.get("/api/registers", params={"table": "drums"})
        assert bad.status_code == 400
        assert "table must be one of coils" in bad.json()["error"]
        bad = await web.get("/api/registers", params={"limit": "lots"})
        assert bad.json() == {"error": "query parameter limit must be an integer, got 'lots'"}


async def test_setting_registers_reaches_modbus_clients() -> None:
    async with running() as simulator, http(simulator) as web:
        address = modbus_address(simulator)
        one = await web.put("/api/registers/tank/level", json={"value": 12.3})
        assert one.status_code == 200
        assert one.json()["raw"] == [123]
        read_only = await web.put("/api/registers/meter/limit", json={"value": -9})
        assert read_only.json()["value"] == -9  # the API may set read-only values
        many = await web.put("/api/registers", json={"values": {"meter/setpoint": 2, "meter/relay": False}})
        assert [item["value"] for item in many.json()["items"]] == [2, False]
        refused = await web.put("/api/registers", json={"values": {"meter/setpoint": 3, "meter/relay": "maybe"}})
        assert refused.status_code == 400
        assert refused.json()["error"].startswith("meter/relay: expected true or false")
        assert simulator.plant.point("meter/setpoint").value == 2  # all or nothing
        missing = await web.put("/api/registers", json={"values": {"meter/nothing": 3}})
        assert missing.status_code == 404
        too_big = await web.put("/api/registers/meter/setpoint", json={"value": 70000})
        assert too_big.status_code == 400
        typed = await web.put(
            "/api/devices/meter/tables/holding_registers",
            json={"address": 10, "values": [1.5, -2.25], "type": "float32", "word_order": "little"},
        )
        assert typed.status_code == 200, typed.text
        raw = await web.put("/api/devices/meter/tables/coils", json={"address": 3, "values": [1, 0, True]})
        assert raw.json()["values"] == [True, False, True]
        outside = await web.put("/api/devices/meter/tables/holding_registers", json={"address": 19, "values": [1, 2]})
        assert outside.status_code == 404
        read = (await web.get("/api/devices/meter/tables/holding_registers", params={"address": 10, "count": 4})).json()

        def client_reads() -> tuple[Any, Any, Any]:
            with modbus_client(address) as client:
                level = client.read_holding_registers(0, count=1, device_id=2).registers
                floats = client.read_holding_registers(10, count=4, device_id=1).registers
                coils = client.read_coils(0, count=6, device_id=1).bits[:6]
                return level, floats, coils

        level, floats, coils = await anyio.to_thread.run_sync(client_reads)
        assert level == [123]
        assert floats == read["values"]
        assert coils == [False, False, False, True, False, True]


async def test_writes_need_a_json_content_type() -> None:
    async with running() as simulator, http(simulator) as web:
        form = await web.post("/api/faults", data={"effect": "no_answer"})
        assert form.status_code == 415
        assert simulator.faults.rules == []
        plain = await web.put(
            "/api/registers/meter/setpoint", content=b'{"value": 5}', headers={"Content-Type": "text/plain"}
        )
        assert plain.status_code == 415
        assert simulator.plant.point("meter/setpoint").value == 100


async def test_fault_rule_errors_and_listing() -> None:
    async with running() as simulator, http(simulator) as web:
        for body, message in [
            ({}, 'missing "effect"'),
            ({"effect": "explode"}, "effect must be one of exception"),
            ({"effect": "exception", "exception_code": 0}, "exception_code must be an integer 1..255"),
            ({"effect": "delay"}, "a delay rule needs delay > 0"),
            ({"effect": "split", "pieces": 1}, "pieces must be an integer 2..256"),
            ({"effect": "junk", "server": "elsewhere"}, "no server named 'elsewhere'"),
            ({"effect": "junk", "server": ["main"]}, "no server named ['main']"),
            ({"effect": "junk", "functions": [[3]]}, "functions must be an integer 1..127, got [3]"),
            ({"effect": "junk", "color": "red"}, "unknown field(s) color"),
            ({"effect": "junk", "address_first": 9, "address_last": 2}, "address_last (2) is before address_first (9)"),
        ]:
            response = await web.post("/api/faults", json=body)
            assert response.status_code == 400, body
            assert message in response.json()["error"], (body, response.json())
        created = (await web.post("/api/faults", json={"effect": "junk"})).json()
        ended = (await web.delete(f"/api/faults/{created['id']}", headers={"Content-Type": "application/json"})).json()
        assert ended["ended"] == "removed"
        assert (await web.get("/api/faults/99")).status_code == 404
        await web.post("/api/faults", json={"effect": "junk"})
        cleared = await web.delete("/api/faults", headers={"Content-Type": "application/json"})
        assert cleared.json() == {"removed": 1}
        listed = (await web.get("/api/faults")).json()["items"]
        assert [rule["active"] for rule in listed] == [False, False]


async def test_live_register_events_follow_modbus_writes() -> None:
    async with running() as simulator, http(simulator) as web:
        address = modbus_address(simulator)

        def write_setpoint() -> None:
            with modbus_client(address) as client:
                client.write_register(0, 4242, device_id=1)

        with anyio.fail_after(10):
            async with web.stream("GET", "/api/registers/events", params={"device": "meter"}) as response:
                lines = response.aiter_lines()
                event = ""
                wrote = False
                async for line in lines:
                    if line.startswith("event: "):
                        event = line.removeprefix("event: ")
                        continue
                    if not line.startswith("data: "):
                        continue
                    data = json.loads(line.removeprefix("data: "))
                    if event == "page":
                        assert data["total"] == 5
                        await anyio.to_thread.run_sync(write_setpoint)
                        wrote = True
                    elif event == "values":
                        assert wrote
                        assert data["items"] == [{"id": "meter/setpoint", "value": 4242, "raw": [4242]}]
                        break


async def events_during(
    web: httpx.AsyncClient, path: str, wanted: str, traffic: Callable[[threading.Event], None], seconds: float = 2.0
) -> list[Any]:
    """The data of the *wanted* events of a stream in the *seconds* after the first one,
    while *traffic* runs in a thread (until the event it is given is set)."""
    stop = threading.Event()
    seen: list[Any] = []
    with anyio.fail_after(seconds + 10):
        async with anyio.create_task_group() as group, web.stream("GET", path) as response:
            assert response.status_code == 200
            group.start_soon(anyio.to_thread.run_sync, traffic, stop)
            try:
                event, first = "", 0.0
                async for line in response.aiter_lines():
                    if line.startswith("event: "):
                        event = line.removeprefix("event: ")
                    elif line.startswith("data: ") and event == wanted:
                        seen.append(json.loads(line.removeprefix("data: ")))
                        first = first or time.monotonic()
                        if time.monotonic() - first > seconds:
                            break
            finally:
                stop.set()
    return seen


async def test_live_register_values_go_out_at_most_twice_a_second() -> None:
    # Each values event redraws a page of rows in the browser: a value that a
    # client rewrites 20 times a second must not make the page redraw 4 times.
    async with running() as simulator, http(simulator) as web:
        address = modbus_address(simulator)
        written = 0

        def write_continuously(stop: threading.Event) -> None:
            nonlocal written
            with modbus_client(address) as client:
                while not stop.is_set():
                    written += 1
                    client.write_register(0, written, device_id=1)
                    time.sleep(0.05)

        events = await events_during(web, "/api/registers/events?device=meter", "values", write_continuously)
        seen = [item["value"] for data in events for item in data["items"]]
        # Events at 0, 0.5, ..., 2.0 s after the first: five (at four a second, nine).
        assert 4 <= len(seen) <= 6, seen
        assert seen == sorted(seen)
        assert written > 2 * len(seen)  # the values seen are some of those written, not every one
        # A client may ask for another pace: one event a second.
        events = await events_during(web, "/api/registers/events?device=meter&interval=1", "values", write_continuously)
        assert 2 <= len(events) <= 4, events


async def test_live_calls_come_at_the_pace_asked_for() -> None:
    async with running() as simulator, http(simulator) as web:
        address = modbus_address(simulator)

        def read_continuously(stop: threading.Event) -> None:
            with modbus_client(address) as client:
                while not stop.is_set():
                    client.read_holding_registers(0, count=1, device_id=1)
                    time.sleep(0.02)

        # By default four events a second; the calls page asks for one (what it draws).
        for interval, least, most in ((None, 6, 10), (1.0, 2, 4)):
            path = "/api/calls/events" + (f"?interval={interval}" if interval else "")
            events = await events_during(web, path, "calls", read_continuously)
            assert least <= len(events) <= most, (interval, len(events))
            ids = [call["id"] for data in events for call in data["items"]]
            assert ids == sorted(ids)
            assert len(set(ids)) == len(ids)
        for wrong in ("0.1", "61", "nan", "soon"):
            response = await web.get("/api/calls/events", params={"interval": wrong})
            assert response.status_code == 400
            assert "interval" in response.json()["error"]


async def test_call_log_and_server_views() -> None:
    async with running() as simulator, http(simulator) as web:
        address = modbus_address(simulator)

        def traffic() -> None:
            with modbus_client(address) as client:
                client.read_holding_registers(0, count=1, device_id=1)
                client.read_holding_registers(0, count=1, device_id=2)
                client.read_holding_registers(50, count=1, device_id=2)

        await anyio.to_thread.run_sync(traffic)
        calls = (await web.get("/api/calls")).json()
        assert [call["unit"] for call in calls["items"]] == [2, 2, 1]  # newest first
        assert calls["last_id"] == 3
        only = (await web.get("/api/calls", params={"result": "exception"})).json()["items"]
        assert [(call["address"], call["exception_code"]) for call in only] == [(50, 2)]
        since = (await web.get("/api/calls", params={"since": 2})).json()["items"]
        assert [call["id"] for call in since] == [3]
        _, events = await first_event(web, "/api/calls/events?unit=1", "calls")
        assert [call["unit"] for call in events["items"]] == [1]
        server = (await web.get("/api/server")).json()
        assert server["status"] == "running"
        assert server["totals"]["requests"] == 3
        assert server["busiest_devices"][0] == {
            "name": "tank",
            "unit": 2,
            "counters": {"requests": 2, "exceptions": 1, "no_answer": 0, "faults": 0},
        }
        listener = server["listeners"][0]
        assert listener["units"] == [1, 2]
        assert listener["diagnostics"]["server_message_count"] >= 3
        devices = (await web.get("/api/devices", params={"q": "met"})).json()
        assert [device["name"] for device in devices["items"]] == ["meter"]
        assert devices["items"][0]["tables"]["holding_registers"] == [[0, 20]]
        detail = (await web.get("/api/devices/meter")).json()
        assert detail["identity"] is None
        log = (await web.get("/api/log", params={"level": "info"})).json()["items"]
        assert any("simulator running" in entry["message"] for entry in log)
        assert (await web.get("/api/log", params={"level": "loud"})).status_code == 400
        logging.getLogger("modbus_anyio.simulator").warning("a warning for the log page")
        warnings = (await web.get("/api/log", params={"level": "WARNING"})).json()["items"]
        assert [entry["message"] for entry in warnings] == ["a warning for the log page"]
        cleared = await web.delete("/api/calls", headers={"Content-Type": "application/json"})
        assert cleared.json() == {"removed": 3}


async def test_call_views_show_the_newest_calls_and_count_the_rest() -> None:
    async with running() as simulator, http(simulator) as web:
        address = modbus_address(simulator)

        def traffic() -> None:
            with modbus_client(address) as client:
                for index in range(70):
                    client.read_holding_registers(index % 10, count=1, device_id=1 if index < 60 else 2)

        await anyio.to_thread.run_sync(traffic)
        newest = (await web.get("/api/calls", params={"limit": 5})).json()["items"]
        assert [call["id"] for call in newest] == [70, 69, 68, 67, 66]
        of_unit_1 = (await web.get("/api/calls", params={"limit": 3, "unit": 1})).json()["items"]
        assert [call["id"] for call in of_unit_1] == [60, 59, 58]
        assert (await web.get("/api/calls", params={"since": 70})).json()["items"] == []
        # A live page gets the newest 50 calls, oldest first, and the count of the others.
        _, events = await first_event(web, "/api/calls/events", "calls")
        assert [call["id"] for call in events["items"]] == list(range(21, 71))
        assert events["skipped"] == 20
        _, events = await first_event(web, "/api/calls/events?unit=1", "calls")
        assert [call["id"] for call in events["items"]] == list(range(11, 61))
        assert events["skipped"] == 10
        _, events = await first_event(web, "/api/calls/events?unit=2", "calls")
        assert [call["id"] for call in events["items"]] == list(range(61, 71))
        assert events["skipped"] == 0


async def test_pages_and_assets_are_served_from_the_package() -> None:
    async with running() as simulator, http(simulator) as web:
        home = await web.get("/")
        assert home.status_code == 307
        assert home.headers["location"] == "/registers"
        for page in ("registers", "calls", "log", "server"):
            response = await web.get(f"/{page}")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/html")
            assert f'src="/static/{page}.js"' in response.text
            assert "https://" not in response.text  # no CDN
            script = await web.get(f"/static/{page}.js")
            assert script.status_code == 200
        for asset in ("common.js", "style.css", "favicon.svg"):
            assert (await web.get(f"/static/{asset}")).status_code == 200
        assert (await web.get("/static/../_web.py")).status_code == 404
        assert (await web.get("/nothing")).status_code == 404
        schema = (await web.get("/api/schema")).json()
        assert schema["title"] == "modbuskit simulator configuration"


async def test_the_asgi_app_works_without_a_network() -> None:
    simulator = Simulator(small_config(), http=False)
    transport = httpx.ASGITransport(app=simulator.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as web:
        response = await web.get("/api/registers/meter/voltage")
        assert response.json()["value"] == 230.5


async def test_a_loopback_web_page_answers_loopback_host_names_only() -> None:
    simulator = Simulator(small_config(), http=False)
    transport = httpx.ASGITransport(app=simulator.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8080") as web:
        for host in ("localhost:8080", "127.0.0.1", "127.0.0.2:80", "[::1]:8080", "LOCALHOST"):
            response = await web.get("/api/plant", headers={"Host": host})
            assert response.status_code == 200, host
        for host in ("evil.example:8080", "evil.example", "10.0.0.1", ""):
            response = await web.get("/api/plant", headers={"Host": host})
            assert response.status_code == 421, host
            assert response.json()["error"].startswith("unknown host")
    lan = Simulator(small_config(http={"host": "0.0.0.0", "port": 0}), http=False)
    transport = httpx.ASGITransport(app=lan.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://plant.lan") as web:
        assert (await web.get("/api/plant")).status_code == 200


async def test_stopping_ends_open_event_streams_promptly() -> None:
    simulator = Simulator(small_config())
    ended = anyio.Event()

    async def watch(web: httpx.AsyncClient) -> None:
        async with web.stream("GET", "/api/calls/events") as response:
            async for _ in response.aiter_lines():
                pass
        ended.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            await group.start(simulator.serve)
            async with http(simulator) as web:
                group.start_soon(watch, web)
                await first_event(web, "/api/log/events")
                await anyio.sleep(0.3)  # the watcher is connected by now
                started = time.monotonic()
                await simulator.stop()
                await ended.wait()
    assert time.monotonic() - started < 5
    assert simulator.status == "stopped"


async def test_an_error_inside_async_with_propagates_unwrapped_after_stopping() -> None:
    simulator = Simulator(small_config())
    addresses: list[tuple[str, int]] = []

    async def body() -> None:
        async with simulator:
            addresses.append(modbus_address(simulator))
            raise KeyError("from the body")

    with pytest.raises(KeyError, match="from the body"), anyio.fail_after(10):
        await body()
    with pytest.raises(OSError):
        await anyio.connect_tcp(*addresses[0])
