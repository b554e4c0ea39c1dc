"""The state file: register values that survive a restart.

The file is JSON::

    {"format": "modbuskit-simulator-state", "version": 1, "saved": "...",
     "devices": {"energy-meter": {"holding_registers": [[0, "0064000f..."]],
                                  "coils": [[0, "0110"]], ...}, ...}}

Register blocks are ``[first address, hex of the big-endian registers]``,
bit blocks ``[first address, "0101..."]``.  It is written whole to a
temporary file in the same directory, flushed to disk, and renamed over
the old one (``os.replace``), so that a crash leaves either the old or the
new file, never half of one.  The simulator saves at most a quarter of a
second after a batch of changes and when it stops; a file it cannot read
back is an error (:class:`StateError`), never silently replaced.

On load, values of devices or addresses the configuration no longer has
are skipped with a warning.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import sys
import tempfile
import threading
from array import array
from pathlib import Path
from typing import Any

import anyio

from modbus_core import BitTable, Change, ModbusExceptionError, RegisterTable

from ._errors import StateError
from ._plant import Plant, SimDevice

__all__ = ["StateStore"]

logger = logging.getLogger(__name__)

FORMAT = "modbuskit-simulator-state"
VERSION = 1
SAVE_INTERVAL = 0.25  # seconds between checks for changes: a crash loses at most this much (plus the write)


def _encode_block(table: RegisterTable | BitTable, first: int, count: int) -> list[Any]:
    values = table.read(first, count)
    if isinstance(table, BitTable):
        return [first, "".join("1" if bit else "0" for bit in values)]
    registers = array("H", values)
    if sys.byteorder == "little":
        registers.byteswap()
    return [first, registers.tobytes().hex()]


def _decode_block(table: RegisterTable | BitTable, text: str) -> list[Any]:
    if isinstance(table, BitTable):
        if text.strip("01"):
            raise ValueError("bits must be a string of 0 and 1")
        return [char == "1" for char in text]
    raw = bytes.fromhex(text)
    if len(raw) % 2:
        raise ValueError("registers must be whole 16-bit words")
    registers = array("H", raw)
    if sys.byteorder == "little":
        registers.byteswap()
    return list(registers)


class StateStore:
    """Loads, tracks and saves the plant's values in *path*."""

    def __init__(self, path: str | Path, plant: Plant) -> None:
        self.path = Path(path)
        self.plant = plant
        self.saves = 0
        self._dirty: set[str] = set()
        self._fragments: dict[str, str] = {}
        self._lock = threading.Lock()
        self._remove_listener = plant.add_change_listener(self._changed)

    def close(self) -> None:
        self._remove_listener()

    def _changed(self, device: SimDevice, change: Change) -> None:
        self._dirty.add(device.name)

    @property
    def dirty(self) -> bool:
        return bool(self._dirty)

    # -- loading ------------------------------------------------------------

    def load(self) -> int:
        """Put the saved values back; the number of devices restored (0 without a file).

        Raises :class:`StateError` for a file that is not a readable state file.
        """
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            logger.info("state file %s does not exist yet: starting from the configured values", self.path)
            return 0
        except OSError as error:
            raise StateError(f"{self.path}: cannot read the state file: {error.strerror or error}") from None
        try:
            document = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise StateError(
                f"{self.path}: the state file is corrupt (not JSON: {error}); move it away to start afresh"
            ) from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise StateError(f'{self.path}: not a modbuskit simulator state file (no "format": "{FORMAT}")')
        if document.get("version") != VERSION:
            raise StateError(
                f"{self.path}: state file version {document.get('version')!r}, this simulator reads {VERSION}"
            )
        devices = document.get("devices")
        if not isinstance(devices, dict):
            raise StateError(f'{self.path}: the state file is corrupt: "devices" is not an object')
        # Check everything before changing anything: a bad file restores nothing.
        plan: list[tuple[SimDevice, RegisterTable | BitTable, int, list[Any]]] = []
        for name, tables in devices.items():
            sim = self.plant.by_name.get(name)
            if not isinstance(tables, dict):
                raise StateError(f"{self.path}: the state file is corrupt: devices.{name} is not an object")
            if sim is None:
                logger.warning(
                    "state file %s: device %r is not configured any more; its values are skipped", self.path, name
                )
                continue
            storage = sim.storage_tables()
            for table_name, blocks in tables.items():
                table = storage.get(table_name)
                if not isinstance(blocks, list):
                    raise StateError(
                        f"{self.path}: the state file is corrupt: devices.{name}.{table_name} is not a list"
                    )
                for index, block in enumerate(blocks):
                    where = f"devices.{name}.{table_name}[{index}]"
                    if (
                        not isinstance(block, list)
                        or len(block) != 2
                        or not isinstance(block[0], int)
                        or not isinstance(block[1], str)
                    ):
                        raise StateError(f"{self.path}: the state file is corrupt: {where} is not [address, values]")
                    if table is None:
                        logger.warning(
                            "state file %s: %s: device %r has no table %r; skipped", self.path, where, name, table_name
                        )
                        continue
                    try:
                        values = _decode_block(table, block[1])
                    except ValueError as error:
                        raise StateError(f"{self.path}: the state file is corrupt: {where}: {error}") from None
                    plan.append((sim, table, block[0], values))
        restored: set[str] = set()
        for sim, table, first, values in plan:
            try:
                table.write(first, values, force=True)
            except ModbusExceptionError:
                # The configuration changed: keep what still fits, address by address.
                kept = 0
                for offset, value in enumerate(values):
                    if first + offset in table:
                        table.write(first + offset, [value], force=True)
                        kept += 1
                logger.warning(
                    "state file %s: %s %s %d..%d is no longer all present; %d of %d values restored",
                    self.path,
                    sim.name,
                    table.kind.value,
                    first,
                    first + len(values) - 1,
                    kept,
                    len(values),
                )
            restored.add(sim.name)
        self._dirty.clear()
        logger.info("restored the values of %d device(s) from %s", len(restored), self.path)
        return len(restored)

    # -- saving -------------------------------------------------------------

    def check_writable(self) -> None:
        """Raise :class:`StateError` unless the file can be written where it is (checked at start,
        so that a mistyped or read-only location is not found only at the first save)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, probe = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
            os.close(handle)
            os.unlink(probe)
        except OSError as error:
            raise StateError(f"{self.path}: cannot write the state file there: {error.strerror or error}") from None

    def _fragment(self, sim: SimDevice) -> str:
        tables = {}
        for name, table in sim.storage_tables().items():
            with table.lock:
                blocks = [_encode_block(table, first, count) for first, count in table.ranges()]
            if blocks:
                tables[name] = blocks
        return json.dumps(tables, separators=(",", ":"))

    def snapshot(self) -> bytes:
        """The whole file's contents now (re-encodes only the devices that changed)."""
        dirty, self._dirty = self._dirty, set()
        parts = []
        for sim in self.plant:
            if sim.name in dirty or sim.name not in self._fragments:
                self._fragments[sim.name] = self._fragment(sim)
            parts.append(f"{json.dumps(sim.name)}:{self._fragments[sim.name]}")
        saved = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
        head = json.dumps({"format": FORMAT, "version": VERSION, "saved": saved, "config": self.plant.config.source})
        return (head[:-1] + ',"devices":{' + ",\n".join(parts) + "}}\n").encode("utf-8")

    def write(self, data: bytes) -> None:
        """Replace the file with *data* atomically (a temporary file, fsync, rename)."""
        with self._lock:
            directory = self.path.parent
            directory.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
            try:
                with os.fdopen(handle, "wb") as file:
                    file.write(data)
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(temporary, self.path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            self.saves += 1

    def save(self) -> None:
        """Snapshot and write now."""
        self.write(self.snapshot())

    async def run(self) -> None:
        """Save every change batch, at most SAVE_INTERVAL after it, until cancelled."""
        pending: bytes | None = None  # a snapshot not written yet: retried until it is
        failing: str | None = None  # the error of the saves failing now, said once (not every retry)
        while True:
            await anyio.sleep(SAVE_INTERVAL)
            if self._dirty:
                pending = self.snapshot()
            if pending is None:
                continue
            try:
                await anyio.to_thread.run_sync(self.write, pending, abandon_on_cancel=False)
            except OSError as error:
                if str(error) != failing:
                    failing = str(error)
                    logger.error("cannot save the state file %s (retrying): %s", self.path, error)
                continue
            pending = None
            if failing is not None:
                failing = None
                logger.warning("state file %s saved again", self.path)
