"""The simulator: a plant of Modbus devices to point clients at, watch and break.

``modbuskit sim`` runs it from the command line; :class:`Simulator` runs it
inside a program (asyncio or trio)::

    from modbus_anyio.simulator import Simulator, load_config

    async with Simulator(load_config("plant.json")) as simulator:
        simulator.plant.point("energy-meter/voltage_l1").set(231.5)
        ...

The configuration format is described by its JSON Schema
(:func:`config_schema`, ``config.schema.json`` in this package), its REST
API by an OpenAPI document (:func:`openapi_document`, also served at
``/openapi.json``); pymodbus simulator ``setup.json`` files load too.  :class:`ModbusSimulatorServer`
and :func:`get_simulator_commandline` keep pymodbus' names.

The names load on first use, so that ``modbuskit`` (whose ``sim`` command
lives here) starts quickly for its other commands.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._actions import ActionContext as ActionContext
    from ._compat import ModbusSimulatorServer as ModbusSimulatorServer
    from ._compat import get_simulator_commandline as get_simulator_commandline
    from ._config import SimulatorConfig as SimulatorConfig
    from ._config import config_schema as config_schema
    from ._config import default_config as default_config
    from ._config import load_config as load_config
    from ._config import parse_config as parse_config
    from ._errors import ConfigError as ConfigError
    from ._errors import SimulatorError as SimulatorError
    from ._errors import StateError as StateError
    from ._openapi import openapi_document as openapi_document
    from ._plant import Plant as Plant
    from ._plant import Point as Point
    from ._plant import SimDevice as SimDevice
    from ._simulator import Simulator as Simulator
    from ._traffic import CallRecord as CallRecord
    from ._traffic import FaultRule as FaultRule

_LAZY = {
    "ActionContext": "_actions",
    "CallRecord": "_traffic",
    "config_schema": "_config",
    "ConfigError": "_errors",
    "default_config": "_config",
    "FaultRule": "_traffic",
    "get_simulator_commandline": "_compat",
    "load_config": "_config",
    "ModbusSimulatorServer": "_compat",
    "openapi_document": "_openapi",
    "parse_config": "_config",
    "Plant": "_plant",
    "Point": "_plant",
    "SimDevice": "_plant",
    "Simulator": "_simulator",
    "SimulatorConfig": "_config",
    "SimulatorError": "_errors",
    "StateError": "_errors",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'modbus_anyio.simulator' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "ActionContext",
    "CallRecord",
    "config_schema",
    "ConfigError",
    "default_config",
    "FaultRule",
    "get_simulator_commandline",
    "load_config",
    "ModbusSimulatorServer",
    "openapi_document",
    "parse_config",
    "Plant",
    "Point",
    "SimDevice",
    "Simulator",
    "SimulatorConfig",
    "SimulatorError",
    "StateError",
]
