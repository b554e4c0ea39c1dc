"""A Modbus device whose registers live in an SQLite database: an AsyncDevice.

    python examples/database_device.py [--port 5020] [--database registers.sqlite3] [--size 100]

The datastore need not be modbus_core's Device: any object with the
operations of ``modbus_core.AsyncDevice`` (coroutines) can answer.  This
one keeps coils and holding registers in SQLite, so that other programs
see what Modbus clients write and the values survive a restart.  Database
calls run in a worker thread (``anyio.to_thread``) while the server keeps
serving other clients.

The dispatcher has already checked each request (function code,
quantities: exceptions 01 and 03) before it calls the device; the device
answers for addresses (exception 02) and makes each write all or none, in
one transaction.  Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import signal
import sqlite3
import threading
from collections.abc import Sequence

import anyio

from modbus_anyio import TcpServer
from modbus_core import ExceptionCode, FileRecord, FileRecordReference, ModbusExceptionError, ServerContext

SCHEMA = """
CREATE TABLE IF NOT EXISTS point (
    kind TEXT NOT NULL,         -- 'coil' or 'holding'
    address INTEGER NOT NULL,   -- the 0-based address on the wire
    value INTEGER NOT NULL,
    PRIMARY KEY (kind, address)
)
"""


class SqliteDevice:
    """Coils and holding registers 0..size-1 in an SQLite file; the other tables are absent."""

    def __init__(self, path: str, size: int) -> None:
        # One connection, used by one worker thread at a time under the lock.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute(SCHEMA)
            self._db.execute("BEGIN")
            for kind in ("coil", "holding"):
                self._db.executemany(
                    "INSERT OR IGNORE INTO point (kind, address, value) VALUES (?, ?, 0)",
                    ((kind, address) for address in range(size)),
                )
            self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    # -- in the worker thread ---------------------------------------------------

    def _read(self, kind: str, address: int, count: int) -> list[int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT value FROM point WHERE kind = ? AND address BETWEEN ? AND ? ORDER BY address",
                (kind, address, address + count - 1),
            ).fetchall()
        if len(rows) != count:
            raise ModbusExceptionError(ExceptionCode.ILLEGAL_DATA_ADDRESS, f"{kind} {address}..{address + count - 1}")
        return [value for (value,) in rows]

    def _write(self, kind: str, address: int, values: Sequence[int]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for offset, value in enumerate(values):
                    cursor = self._db.execute(
                        "UPDATE point SET value = ? WHERE kind = ? AND address = ?", (value, kind, address + offset)
                    )
                    if cursor.rowcount != 1:  # a missing address: undo the whole write
                        raise ModbusExceptionError(ExceptionCode.ILLEGAL_DATA_ADDRESS, f"{kind} {address + offset}")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _mask_write(self, address: int, and_mask: int, or_mask: int) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT value FROM point WHERE kind = 'holding' AND address = ?", (address,)
                ).fetchone()
                if row is None:
                    raise ModbusExceptionError(ExceptionCode.ILLEGAL_DATA_ADDRESS, f"holding {address}")
                value = (row[0] & and_mask) | (or_mask & ~and_mask & 0xFFFF)
                self._db.execute("UPDATE point SET value = ? WHERE kind = 'holding' AND address = ?", (value, address))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- the AsyncDevice operations -----------------------------------------------

    async def read_coils(self, address: int, count: int) -> Sequence[bool]:
        return [bool(value) for value in await anyio.to_thread.run_sync(self._read, "coil", address, count)]

    async def read_holding_registers(self, address: int, count: int) -> Sequence[int]:
        return await anyio.to_thread.run_sync(self._read, "holding", address, count)

    async def write_coils(self, address: int, values: Sequence[bool]) -> None:
        await anyio.to_thread.run_sync(self._write, "coil", address, [int(value) for value in values])

    async def write_registers(self, address: int, values: Sequence[int]) -> None:
        await anyio.to_thread.run_sync(self._write, "holding", address, values)

    async def mask_write_register(self, address: int, and_mask: int, or_mask: int) -> None:
        await anyio.to_thread.run_sync(self._mask_write, address, and_mask, or_mask)

    async def read_write_registers(
        self, read_address: int, read_count: int, write_address: int, values: Sequence[int]
    ) -> Sequence[int]:
        def write_then_read() -> list[int]:
            self._read("holding", read_address, read_count)  # a bad read range must not write
            self._write("holding", write_address, values)
            return self._read("holding", read_address, read_count)

        return await anyio.to_thread.run_sync(write_then_read)

    # Tables and functions this device does not have: exception 01 (illegal function).

    async def read_discrete_inputs(self, address: int, count: int) -> Sequence[bool]:
        raise ModbusExceptionError(ExceptionCode.ILLEGAL_FUNCTION)

    async def read_input_registers(self, address: int, count: int) -> Sequence[int]:
        raise ModbusExceptionError(ExceptionCode.ILLEGAL_FUNCTION)

    async def read_exception_status(self) -> int:
        raise ModbusExceptionError(ExceptionCode.ILLEGAL_FUNCTION)

    async def read_fifo_queue(self, address: int) -> Sequence[int]:
        raise ModbusExceptionError(ExceptionCode.ILLEGAL_FUNCTION)

    async def read_file_records(self, references: Sequence[FileRecordReference]) -> Sequence[Sequence[int]]:
        raise ModbusExceptionError(ExceptionCode.ILLEGAL_FUNCTION)

    async def write_file_records(self, records: Sequence[FileRecord]) -> None:
        raise ModbusExceptionError(ExceptionCode.ILLEGAL_FUNCTION)


async def main(port: int, database: str, size: int) -> None:
    device = SqliteDevice(database, size)
    try:
        async with TcpServer(ServerContext(device), port=port) as server:
            print(f"listening on tcp://127.0.0.1:{server.port}", flush=True)
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    break
    finally:
        device.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A Modbus device backed by SQLite.")
    parser.add_argument("--port", type=int, default=5020, help="TCP port (0: any free port)")
    parser.add_argument("--database", default="registers.sqlite3", help="the SQLite file (created when missing)")
    parser.add_argument("--size", type=int, default=100, help="coils and holding registers 0..SIZE-1")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    anyio.run(main, args.port, args.database, args.size, backend=args.backend)
