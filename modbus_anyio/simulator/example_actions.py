"""Custom actions of the built-in example plant (and an example of writing your own).

A custom action is a function that takes an :class:`ActionContext` and
returns the new value of its register, or None to leave it alone.  Name
the module in the configuration (``"custom_actions": "my_actions"`` or
``"custom_actions": "my_actions.py"``) and the function in the action
(``{"kind": "custom", "function": "tank_level"}``).
"""

from __future__ import annotations

from ._actions import ActionContext

__all__ = ["tank_level"]


def tank_level(context: ActionContext) -> float:
    """The level of a tank, in percent: it rises while ``inlet_valve`` is on
    and falls while ``outlet_valve`` is on; ``high_level`` and ``low_level``
    follow the ``high_setpoint`` and ``low_setpoint`` registers."""
    device = context.device
    fill_rate = float(context.parameters.get("fill_rate", 1.0))
    drain_rate = float(context.parameters.get("drain_rate", 1.0))
    level = float(context.value)
    if device.point("inlet_valve").value:
        level += fill_rate * context.dt
    if device.point("outlet_valve").value:
        level -= drain_rate * context.dt
    level = min(100.0, max(0.0, level))
    device.point("high_level").set(level >= device.point("high_setpoint").value)
    device.point("low_level").set(level <= device.point("low_setpoint").value)
    return round(level, 1)
