"""The REST API fed arbitrary input: a 2xx or a 4xx with an explanation, never a server error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from modbus_anyio.simulator import Simulator

from .sim_support import json_values, small_config

QUERY_NAMES = [
    "device", "table", "q", "address_from", "address_to", "limit", "offset", "server", "unit",
    "function", "address", "count", "result", "level", "since", "server_port", "name",
]  # fmt: skip
query_values = st.sampled_from(["", "0", "-1", "1", "65535", "65536", "1e3", "NaN", "meter", "*", "coils"]) | st.text(
    max_size=8
)
queries = st.dictionaries(st.sampled_from(QUERY_NAMES), query_values, max_size=4)
names = st.sampled_from(["meter", "tank", "voltage", "setpoint", "limit", "label", "relay", "level"]) | st.text(
    min_size=1, max_size=6
)
FAULT_KEYS = [
    "effect", "server", "unit", "functions", "address_first", "address_last", "exception_code", "delay",
    "junk_length", "pieces", "pause", "count", "duration", "probability",
]  # fmt: skip
fault_values = json_values | st.sampled_from(["exception", "no_answer", "delay", "junk", "split", 3, 0.5, -1, 1e300])


@st.composite
def api_requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str], Any]:
    """(method, path, query, JSON body or None) aimed at every operation that takes input."""
    device, name = quote(draw(names), safe=""), quote(draw(names), safe="")
    table = draw(st.sampled_from(["holding_registers", "coils", "input_registers", "discrete_inputs", "registers"]))
    body: Any = None
    kind = draw(st.sampled_from(["get", "put_one", "put_many", "put_table", "fault", "delete_fault", "listener"]))
    if kind == "get":
        method = "GET"
        path = draw(
            st.sampled_from(
                [
                    "/api/registers",
                    f"/api/registers/{device}/{name}",
                    "/api/devices",
                    f"/api/devices/{device}",
                    f"/api/devices/{device}/tables/{table}",
                    "/api/calls",
                    "/api/calls.pcap",
                    "/api/faults",
                    "/api/log",
                    "/api/servers",
                    f"/api/servers/{name}",
                ]
            )
        )
    elif kind == "put_one":
        method, path = "PUT", f"/api/registers/{device}/{name}"
        body = draw(st.fixed_dictionaries({"value": json_values}) | json_values)
    elif kind == "put_many":
        method, path = "PUT", "/api/registers"
        item = st.fixed_dictionaries({"id": st.just(f"{device}/{name}") | json_values, "value": json_values})
        items = st.lists(item, max_size=3)
        body = draw(st.fixed_dictionaries({"items": items}) | items | json_values)
    elif kind == "put_table":
        method, path = "PUT", f"/api/devices/{device}/tables/{table}"
        body = draw(st.fixed_dictionaries({"address": json_values, "values": json_values}) | json_values)
    elif kind == "fault":
        method, path = "POST", "/api/faults"
        body = draw(st.dictionaries(st.sampled_from(FAULT_KEYS), fault_values, max_size=6) | json_values)
    elif kind == "delete_fault":
        method, path = "DELETE", f"/api/faults/{draw(st.integers(0, 2**70))}"
    else:
        method, path = "POST", f"/api/servers/{name}/{draw(st.sampled_from(['start', 'stop']))}"
    return method, path, draw(queries), body


async def call(simulator: Simulator, method: str, path: str, query: dict[str, str], body: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=simulator.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as web:
        content = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json"}
        return await web.request(method, path, params=query, content=content, headers=headers)


@pytest.fixture(scope="module")
def simulator() -> Iterator[tuple[BlockingPortal, Simulator]]:
    with start_blocking_portal() as portal:
        started = Simulator(small_config(), http=False)
        with portal.wrap_async_context_manager(started):
            yield portal, started


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=api_requests())
@example(request=("GET", "/api/devices/%2F", {}, None))
def test_any_input_gets_an_answer_or_an_explanation(
    simulator: tuple[BlockingPortal, Simulator], request: tuple[str, str, dict[str, str], Any]
) -> None:
    portal, running = simulator
    response = portal.call(call, running, *request)
    assert response.status_code < 500, response.text
    if 300 <= response.status_code < 400:
        # A trailing slash (%2F decodes to one) is redirected to the route without it.
        assert response.headers["location"].startswith("http://localhost/")
    elif response.status_code >= 400:
        message = response.json()["error"]
        assert isinstance(message, str)
        assert message
    elif not request[1].endswith(".pcap"):
        response.json()
