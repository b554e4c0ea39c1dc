"""Configuration files changed at random: the loader gives a usable plant or a ConfigError, nothing else."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modbus_anyio.simulator import ConfigError, load_config, parse_config
from modbus_anyio.simulator._plant import Plant

from .sim_support import PYMODBUS_SETUP, json_values, mutated, plant_document


def loads_or_explains(document: Any, tmp_path: Path, **options: Any) -> None:
    """The file either loads into a plant that builds, or raises a ConfigError that names it."""
    path = tmp_path / "plant.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    try:
        config = load_config(path, **options)
    except ConfigError as error:
        lines = str(error).splitlines()
        assert lines, "an error without a message"
        assert all(line.startswith(f"{path}: ") for line in lines), lines
        return
    Plant(config)  # a checked configuration builds: nothing fails half-way at start


BUILT_IN = json.loads(resources.files("modbus_anyio.simulator").joinpath("default_plant.json").read_text("utf-8"))
EXAMPLES = {"built-in plant": BUILT_IN, "small plant": plant_document()}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_changed_configurations_load_or_explain(name: str, data: st.DataObject, tmp_path: Path) -> None:
    loads_or_explains(data.draw(mutated(EXAMPLES[name])), tmp_path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_changed_pymodbus_setups_load_or_explain(data: st.DataObject, tmp_path: Path) -> None:
    setup = json.loads(PYMODBUS_SETUP.read_text(encoding="utf-8"))
    loads_or_explains(data.draw(mutated(setup)), tmp_path)


@settings(max_examples=100, deadline=None)
@given(document=json_values)
def test_any_json_document_is_checked(document: Any) -> None:
    message = ""
    try:
        Plant(parse_config(document, source="any.json"))
    except ConfigError as error:
        message = str(error)
    assert all(line.startswith("any.json: ") for line in message.splitlines()), message
