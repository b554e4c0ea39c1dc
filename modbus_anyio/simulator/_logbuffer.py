"""Recent log records, kept for the log page and ``GET /api/log``."""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Iterable
from typing import Any

__all__ = ["LogBuffer", "LogEntry"]

# The loggers whose records the simulator shows.
WATCHED_LOGGERS = ("modbus_anyio", "modbus_core", "hypercorn.error")


class LogEntry:
    __slots__ = ("created", "id", "level", "levelno", "logger", "message")

    def __init__(self, entry_id: int, record: logging.LogRecord, message: str) -> None:
        self.id = entry_id
        self.created = record.created
        self.levelno = record.levelno
        self.level = record.levelname
        self.logger = record.name
        self.message = message

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.created,
            "level": self.level,
            "logger": self.logger,
            "message": self.message,
        }


class LogBuffer(logging.Handler):
    """A logging handler that keeps the last *keep* records.

    :meth:`attach` adds it to the simulator's loggers and :meth:`detach`
    removes it; the simulator does both around its run, so that nothing is
    left on the process' loggers afterwards.
    """

    def __init__(self, keep: int = 2000, level: int = logging.INFO) -> None:
        super().__init__(level)
        self._entries: deque[LogEntry] = deque(maxlen=keep)
        self._ids = itertools.count(1)
        self.last_id = 0
        self._attached: list[tuple[logging.Logger, int]] = []
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
        except Exception:  # noqa: BLE001 - a bad log call must not break the caller
            self.handleError(record)
            return
        entry = LogEntry(next(self._ids), record, message)
        self._entries.append(entry)
        self.last_id = entry.id

    def attach(self, names: Iterable[str] = WATCHED_LOGGERS) -> None:
        """Receive the records of *names*; lowers a logger's level to this handler's when it would drop them."""
        for name in names:
            logger = logging.getLogger(name)
            self._attached.append((logger, logger.level))
            if logger.getEffectiveLevel() > self.level:
                logger.setLevel(self.level)
            logger.addHandler(self)

    def detach(self) -> None:
        for logger, level in self._attached:
            logger.removeHandler(self)
            logger.setLevel(level)
        self._attached.clear()

    def entries(self, *, level: int = logging.NOTSET, since: int = 0, limit: int | None = None) -> list[LogEntry]:
        """Records at *level* or above, newer than id *since*, oldest first (the last *limit*)."""
        found = [entry for entry in list(self._entries) if entry.id > since and entry.levelno >= level]
        return found[-limit:] if limit is not None else found

    def clear(self) -> None:
        self._entries.clear()


def parse_level(text: str | None) -> int:
    """``"warning"`` -> 30; None or ``""`` -> 0; ValueError for unknown names."""
    if not text:
        return logging.NOTSET
    if text.isdigit():
        return int(text)
    level = logging.getLevelName(text.upper())
    if not isinstance(level, int):
        raise ValueError(f"unknown log level {text!r}; expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level
