"""The documentation: what the build itself cannot check.

The test command builds the HTML with warnings as errors; here the docs are
built once more (the faster ``dummy`` builder, warnings still errors) so
that the result can be inspected: every public name of every
package is documented, nothing under a private module is, the generated
simulator references cover the whole JSON Schema and every OpenAPI
operation, the screenshots and the examples are all shown.  The migration
page's table of behaviours that differ from pymodbus is checked against a
pymodbus 3.16.1 server and ours, fed the same raw requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import pickle
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from docutils import nodes  # type: ignore[import-untyped]
from sphinx import addnodes

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
PACKAGES = ("modbus_core", "modbus_anyio", "modbus_sync", "modbus_anyio.simulator")


class BuiltDocs:
    """The result of a build: its environment and doctrees, as Sphinx pickled them."""

    def __init__(self, doctrees: Path) -> None:
        self.doctrees = doctrees
        with (doctrees / "environment.pickle").open("rb") as file:
            self.env: Any = pickle.load(file)

    @property
    def docnames(self) -> list[str]:
        return sorted(self.env.all_docs)

    def doctree(self, docname: str) -> nodes.document:
        with (self.doctrees / f"{docname}.doctree").open("rb") as file:
            document: nodes.document = pickle.load(file)
        return document

    def literals(self, docname: str) -> set[str]:
        return {literal.astext() for literal in self.doctree(docname).findall(nodes.literal)}


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> BuiltDocs:
    """Build once, in another process: autodoc changes what it documents (signatures), which
    other tests of this process must not see."""
    out = tmp_path_factory.mktemp("docs")
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "dummy"]
    completed = subprocess.run(
        [*command, "-d", str(out / "doctrees"), str(DOCS), str(out / "build")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, f"the docs build failed:\n{completed.stderr}"
    assert not completed.stderr.strip(), f"the docs build warns:\n{completed.stderr}"
    return BuiltDocs(out / "doctrees")


def _documented_signatures(docs: BuiltDocs) -> set[str]:
    """``module.name`` of every object description in the docs, index entry or not."""
    found: set[str] = set()
    for docname in docs.docnames:
        for signature in docs.doctree(docname).findall(addnodes.desc_signature):
            module, fullname = signature.get("module"), signature.get("fullname")
            if module and fullname:
                found.add(f"{module}.{fullname}")
    return found


def test_every_public_name_is_documented(docs: BuiltDocs) -> None:
    documented = _documented_signatures(docs)
    missing = [
        f"{package}.{name}"
        for package in PACKAGES
        for name in importlib.import_module(package).__all__
        if f"{package}.{name}" not in documented
    ]
    assert not missing, f"public names missing from the API reference: {missing}"


def test_reference_shows_public_names_only(docs: BuiltDocs) -> None:
    """Nothing is documented under a private module (``modbus_core._pdu.X``), nor any private name.

    (Aliased entries, the ``:canonical:`` names autodoc records for links, are
    not shown and are left out.)"""
    python = docs.env.domaindata["py"]
    private = [
        name
        for name, entry in python["objects"].items()
        if not entry.aliased and any(part.startswith("_") and not part.endswith("__") for part in name.split("."))
    ]
    assert not private, f"private names in the API reference: {private}"
    assert sorted(python["modules"]) == sorted(PACKAGES)


def _schema_keys(schema: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, sub in schema.get("properties", {}).items():
        yield f"{prefix}{key}"
        if isinstance(sub, Mapping) and "properties" in sub and "$ref" not in sub:
            yield from _schema_keys(sub, f"{prefix}{key}.")
    for alternative in schema.get("oneOf", []):
        if isinstance(alternative, Mapping):
            yield from _schema_keys(alternative, prefix)


def test_configuration_reference_covers_the_schema(docs: BuiltDocs) -> None:
    from modbus_anyio.simulator import config_schema

    schema = config_schema()
    shown = docs.literals("guides/simulator-config")
    expected = set(_schema_keys(schema))
    for definition in schema["$defs"].values():
        expected.update(_schema_keys(definition))
    assert expected, "the schema has no properties?"
    assert not expected - shown, f"configuration keys missing from the reference: {sorted(expected - shown)}"


def test_rest_reference_covers_every_operation(docs: BuiltDocs) -> None:
    from modbus_anyio.simulator import openapi_document

    document = openapi_document()
    titles = {title.astext() for title in docs.doctree("guides/simulator-api").findall(nodes.title)}
    operations = {
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in ("get", "put", "post", "patch", "delete")
        if method in item
    }
    assert len(operations) > 20
    assert not operations - titles, f"operations missing from the REST reference: {sorted(operations - titles)}"
    assert set(document["components"]["schemas"]) <= titles


def test_every_screenshot_is_shown(docs: BuiltDocs) -> None:
    screenshots = {path.name for path in (DOCS / "_static" / "screenshots").glob("*.png")}
    shown = {Path(image["uri"]).name for image in docs.doctree("guides/simulator").findall(nodes.image)}
    assert screenshots <= shown, f"screenshots not in the simulator guide: {sorted(screenshots - shown)}"


def test_every_example_is_documented(docs: BuiltDocs) -> None:
    examples = {path.name for path in EXAMPLES.iterdir() if path.is_file() and path.name != "README.md"}
    listed = docs.literals("examples")
    assert not examples - listed, f"examples missing from docs/examples.rst: {sorted(examples - listed)}"
    included = set()
    for docname in docs.docnames:
        for dependency in docs.env.dependencies.get(docname, ()):
            included.add(Path(dependency).name)
    walked_through = examples - {"roles.json", "make_certificates.sh"}
    assert not walked_through - included, f"examples no page quotes: {sorted(walked_through - included)}"


# --------------------------------------------------------------------------
# "Behaviours that differ on purpose" (docs/migrating.rst), checked


def _context(datastore: Any) -> Any:
    """The same pymodbus-style datastore, from pymodbus.datastore or modbus_anyio.compat."""
    device = datastore.ModbusDeviceContext(
        hr=datastore.ModbusSequentialDataBlock(1, [10, 11, 12, 13]),
        co=datastore.ModbusSequentialDataBlock(1, [1, 0, 1]),
        ir=datastore.ModbusSparseDataBlock({0: 5, 1: 6, 5: 7}),
    )
    return datastore.ModbusServerContext(devices={1: device})


@pytest.fixture(scope="module")
def both_servers() -> Iterator[dict[str, tuple[str, int]]]:
    """A pymodbus 3.16.1 server and modbus_anyio's ModbusTcpServer, same datastore, one event loop."""
    from pymodbus.server import ModbusTcpServer as PymodbusServer

    from modbus_anyio import ModbusTcpServer

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # it logs each failure with a traceback
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> tuple[Any, Any]:
        theirs = PymodbusServer(_context(importlib.import_module("pymodbus.datastore")), address=("127.0.0.1", 0))
        await theirs.serve_forever(background=True)
        ours = ModbusTcpServer(_context(importlib.import_module("modbus_anyio.compat")), address=("127.0.0.1", 0))
        await ours.serve_forever(background=True)
        return theirs, ours

    theirs, ours = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=15)
    try:
        yield {
            "pymodbus": theirs.transport.sockets[0].getsockname()[:2],
            "modbuskit": ("127.0.0.1", ours.port),
        }
    finally:

        async def stop() -> None:
            await theirs.shutdown()
            await ours.shutdown()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=15)
        loop.close()


def _ask(address: tuple[str, int], unit: int, pdu_hex: str) -> str:
    """The PDU of the answer to one raw MBAP request, in hex; "" for no answer within a second."""
    pdu = bytes.fromhex(pdu_hex)
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(struct.pack(">HHHB", 7, 0, len(pdu) + 1, unit) + pdu)
        sock.settimeout(1.0)
        answer = b""
        try:
            while len(answer) < 6 or len(answer) < 6 + struct.unpack_from(">H", answer, 4)[0]:
                chunk = sock.recv(300)
                if not chunk:
                    break
                answer += chunk
        except TimeoutError:
            return ""
    return answer[7:].hex()


# (what the migration page says, unit, request PDU, pymodbus' answer, ours)
DIFFERENCES = [
    ("a read of 0 registers", 1, "0300000000", "8001", "8303"),
    ("a read of 126 registers", 1, "030000007e", "8001", "8303"),
    ("an unknown function code", 1, "41", "8001", "c101"),
    ("FC05 with a value other than 0x0000 or 0xFF00", 1, "0500001234", "050000ff00", "8503"),
    ("coils past the end of a block", 1, "0100000010", "01020500", "8102"),
    ("a unit id the context lacks", 7, "0300000001", "8304", "830b"),
    ("unit id 0 on TCP, not in the context", 0, "0300000001", "8304", "830b"),
    ("FC08 bus message counter", 1, "08000b0000", "08000b0000", None),
    ("FC08 unknown sub-function", 1, "0800990000", "8804", "8801"),
    ("FC24 without a FIFO queue", 1, "180000", None, "9802"),
    ("FC43/14 without an identity", 1, "2b0e0100", "2b0e0183000000", None),
    # Where both agree, per the page: the +1 block convention and the sparse block.
    ("block address 1 is protocol address 0", 1, "0300000002", "0304000a000b", "0304000a000b"),
    ("sparse blocks have no offset", 1, "0400000002", "040400050006", "040400050006"),
]


@pytest.mark.interop
@pytest.mark.parametrize(
    ("claim", "unit", "request_hex", "pymodbus", "modbuskit"), DIFFERENCES, ids=[case[0] for case in DIFFERENCES]
)
def test_documented_difference_from_pymodbus(
    both_servers: dict[str, tuple[str, int]],
    claim: str,
    unit: int,
    request_hex: str,
    pymodbus: str | None,
    modbuskit: str | None,
) -> None:
    theirs = _ask(both_servers["pymodbus"], unit, request_hex)
    ours = _ask(both_servers["modbuskit"], unit, request_hex)
    if pymodbus is not None:
        assert theirs == pymodbus, f"pymodbus no longer answers {claim} as documented"
    else:
        assert theirs[:2] == request_hex[:2], f"pymodbus should answer {claim} without an exception"
    if modbuskit is not None:
        assert ours == modbuskit, claim
    else:
        assert ours[:2] == request_hex[:2], f"{claim}: {ours}"
        assert ours != theirs


def test_documented_default_bind_addresses() -> None:
    import inspect

    from pymodbus.server import ModbusTcpServer as PymodbusServer

    from modbus_anyio import ModbusTcpServer, TcpServer

    assert inspect.signature(PymodbusServer).parameters["address"].default == ("", 502)
    assert inspect.signature(ModbusTcpServer).parameters["address"].default == ("127.0.0.1", 502)
    assert inspect.signature(TcpServer).parameters["host"].default == "127.0.0.1"
