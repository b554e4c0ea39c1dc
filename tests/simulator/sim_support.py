"""Helpers and fixtures of the simulator tests (imported by conftest.py)."""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pymodbus
import pytest
from hypothesis import strategies as st
from pymodbus.client import ModbusTcpClient

from modbus_anyio.simulator import Simulator, SimulatorConfig, parse_config

PYMODBUS_SETUP = Path(pymodbus.__file__ or "").parent / "server" / "simulator" / "setup.json"

# Any JSON value, with the numbers and words a configuration or an API call is made of.
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["", "any", "tcp", "rtu", "float32", "string", "bits", "coils", "0x10", "1e9", "-1"])
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)


def paths_in(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path of *document*, containers included."""
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found += paths_in(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += paths_in(value, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, original: dict[str, Any]) -> dict[str, Any]:
    """*original* with one to three of its values replaced, removed, or given a new key."""
    document = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, 3))):
        paths = paths_in(document)[1:]
        if not paths:
            break  # earlier changes removed every key: an empty document is a change too
        path = draw(st.sampled_from(paths))
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        last = path[-1]
        change = draw(st.sampled_from(["replace", "remove", "add"]))
        if change == "replace":
            parent[last] = draw(json_values)
        elif change == "remove":
            del parent[last]
        elif isinstance(parent[last], dict):
            parent[last][draw(st.text(min_size=1, max_size=10))] = draw(json_values)
        elif isinstance(parent[last], list):
            parent[last].append(draw(json_values))
        else:
            parent[last] = draw(json_values)
    return document


@pytest.fixture(
    params=[
        pytest.param("asyncio", id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),  # what `modbuskit sim` runs on by default
        pytest.param("trio", id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> object:
    return request.param


def plant_document(**changes: Any) -> dict[str, Any]:
    """A small plant on ephemeral ports: one TCP server, two devices."""
    document: dict[str, Any] = {
        "http": {"port": 0},
        "servers": [{"name": "main", "transport": "tcp", "port": 0}],
        "devices": [
            {
                "name": "meter",
                "unit": 1,
                "holding_registers": 20,
                "input_registers": 10,
                "coils": 8,
                "registers": [
                    {"name": "voltage", "table": "input_registers", "address": 0, "type": "float32", "value": 230.5},
                    {"name": "setpoint", "address": 0, "type": "uint16", "value": 100},
                    {"name": "limit", "address": 1, "type": "int32", "value": -5, "read_only": True},
                    {"name": "label", "address": 4, "type": "string", "length": 4, "value": "M-1"},
                    {"name": "relay", "table": "coils", "address": 0, "value": True},
                ],
            },
            {
                "name": "tank",
                "unit": 2,
                "holding_registers": 10,
                "registers": [{"name": "level", "address": 0, "type": "uint16", "scale": 0.1, "value": 50.0}],
            },
        ],
    }
    document.update(copy.deepcopy(changes))
    return document


def small_config(**changes: Any) -> SimulatorConfig:
    return parse_config(plant_document(**changes), source="test.json")


def write_json(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def running(config: SimulatorConfig | None = None, **options: Any) -> AsyncIterator[Simulator]:
    """A started simulator (a small plant on ephemeral ports by default), stopped on exit."""
    simulator = Simulator(config if config is not None else small_config(), **options)
    with anyio.fail_after(10):
        async with simulator:
            yield simulator


def modbus_address(simulator: Simulator, listener: str | None = None) -> tuple[str, int]:
    name = listener or next(iter(simulator.listeners))
    text = simulator.modbus_addresses[name][0]
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


@contextlib.contextmanager
def modbus_client(address: tuple[str, int], timeout: float = 2.0) -> Iterator[ModbusTcpClient]:
    """A connected pymodbus client (no retries: a fault must reach the test)."""
    client = ModbusTcpClient(address[0], port=address[1], timeout=timeout, retries=0)
    assert client.connect(), f"cannot connect to {address}"  # type: ignore[no-untyped-call]
    try:
        yield client
    finally:
        client.close()  # type: ignore[no-untyped-call]


def http(simulator: Simulator) -> httpx.AsyncClient:
    assert simulator.http_url is not None
    return httpx.AsyncClient(base_url=simulator.http_url, timeout=10)
