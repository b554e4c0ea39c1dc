"""Fixtures for the modbus_anyio tests (defined in anyio_support.py, a name no other test directory uses)."""

from .anyio_support import anyio_backend, ca, issue_client, pty_pair, server_cert

__all__ = ["anyio_backend", "ca", "issue_client", "pty_pair", "server_cert"]
