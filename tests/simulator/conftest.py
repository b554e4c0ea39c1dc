"""Fixtures for the simulator tests (defined in sim_support.py, a name no other test directory uses)."""

from .sim_support import anyio_backend

__all__ = ["anyio_backend"]
