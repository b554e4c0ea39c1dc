"""Fixtures for the modbus_sync tests (defined in sync_support.py)."""

from .sync_support import ca, cert_dir, client_certs, context, pty_pair, server_cert

__all__ = ["ca", "cert_dir", "client_certs", "context", "pty_pair", "server_cert"]
