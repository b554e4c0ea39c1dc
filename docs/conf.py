"""Sphinx configuration for the modbuskit documentation.

Built by the test command with warnings as errors and without network:
``sphinx-build -W --keep-going -b html docs docs/_build/html``.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))
sys.path.insert(0, str(DOCS / "_ext"))

from modbus_core import __version__  # noqa: E402 - after the path set-up

project = "modbuskit"
author = "the modbuskit developers"
copyright = "2026, the modbuskit developers"
version = release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "modbuskit_docs",  # docs/_ext: public-api, jsonschema-reference, openapi-reference, screenshot
]
html_theme = "furo"
html_title = f"modbuskit {release}"
exclude_patterns = ["_build", "_ext"]
nitpicky = False

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_class_signature = "mixed"
autodoc_preserve_defaults = True  # show `anyio.TASK_STATUS_IGNORED`, not the object's repr

# No intersphinx: the build runs offline (CI has no network), and an
# unreachable inventory is a warning, which -W turns into a failure.

# The sections of each API page, by the private module that defines the names
# (the public-api directive groups a package's __all__ with these titles).
public_api_sections = {
    # modbus_core
    "modbus_core._connection": "Connections",
    "modbus_core._events": "Events",
    "modbus_core._framing": "Framers",
    "modbus_core._pdu": "Protocol data units",
    "modbus_core._functions": "Function tables and custom function codes",
    "modbus_core._datastore": "Datastore",
    "modbus_core._dispatch": "Dispatch",
    "modbus_core._diagnostics": "Diagnostics",
    "modbus_core._identity": "Device identification",
    "modbus_core._values": "Typed values",
    "modbus_core._checksum": "Checksums",
    "modbus_core._errors": "Errors",
    "modbus_core._version": "Version",
    # modbus_anyio
    "modbus_anyio._server": "TCP and TLS servers, and any byte stream",
    "modbus_anyio._net": "Connection limits",
    "modbus_anyio._udp": "UDP server",
    "modbus_anyio._serial": "Serial server",
    "modbus_anyio._handler": "Handlers and connections",
    "modbus_anyio._security": "Modbus/TCP Security",
    "modbus_anyio._pymodbus": "pymodbus' server names",
    "modbus_anyio.compat": "pymodbus' datastore names",
    # modbus_sync
    "modbus_sync._tcp": "TCP and TLS servers",
    "modbus_sync._udp": "UDP server",
    "modbus_sync._serial": "Serial server",
    "modbus_sync._server": "What every server has",
    "modbus_sync._start": "pymodbus' blocking entry points",
    # modbus_anyio.simulator
    "modbus_anyio.simulator._simulator": "Running the simulator",
    "modbus_anyio.simulator._config": "Configuration",
    "modbus_anyio.simulator._plant": "The plant",
    "modbus_anyio.simulator._actions": "Actions",
    "modbus_anyio.simulator._traffic": "Traffic and faults",
    "modbus_anyio.simulator._compat": "pymodbus' simulator names",
    "modbus_anyio.simulator._errors": "Errors",
}
