"""The simulator's errors: bad configuration, bad state files."""

from __future__ import annotations

__all__ = ["ConfigError", "SimulatorError", "StateError"]


class SimulatorError(Exception):
    """Base class of the simulator's errors."""


class ConfigError(SimulatorError, ValueError):
    """A configuration that cannot be used.

    *problems* are ``(key path, what is wrong)`` pairs; the message names
    the file, the key path and what was expected, one problem per line.
    """

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = [f"{source}: {path}: {text}" if path else f"{source}: {text}" for path, text in self.problems]
        super().__init__("\n".join(lines))


class StateError(SimulatorError):
    """A state file that cannot be read back (corrupt, or not a state file)."""
