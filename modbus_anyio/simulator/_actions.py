"""Actions: what makes simulated values move.

Each named value may have one action.  Timer actions run every
*interval* seconds from one anyio task (:meth:`ActionRunner.run`); read
actions run before a Modbus read touches their value (the device calls
them); write actions run after a write to their value (a table observer
calls them).

Built-in kinds: ``increment`` (add *step*, wrap from *max* to *min*),
``random`` (uniform in *min*..*max*), ``sine`` (*offset* + *amplitude*
sin(2 pi t / *period* + *phase*)), ``timestamp`` (seconds since 1970, or
pymodbus' seven registers), ``uptime`` (seconds since the start),
``reset`` (a non-zero write puts the whole device back to its initial
values) and ``custom``: a function of the user's module called with an
:class:`ActionContext` that returns the new value (or None to leave it).
"""

from __future__ import annotations

import datetime
import functools
import heapq
import itertools
import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import anyio

from modbus_core import Change, Subscription

from ._config import ActionSpec
from ._plant import HookedDevice, MemoryDevice, Plant, Point, SimDevice

__all__ = ["ActionContext", "ActionRunner"]

logger = logging.getLogger(__name__)

BATCH = 200  # timer actions run between two checkpoints of the event loop


class ActionContext:
    """What a custom action function gets.

    *point* is the value the action moves (``point.value``, ``point.set()``),
    *device* its device (``device.point("other").value``); *now* is the
    wall-clock time, *elapsed* the seconds since the simulator started and
    *dt* the seconds since this action last ran (0 the first time).
    *state* is a dict kept between runs; *parameters* the configuration's.
    """

    __slots__ = ("device", "dt", "elapsed", "now", "parameters", "point", "state")

    def __init__(
        self,
        point: Point,
        parameters: Mapping[str, Any],
        state: dict[str, Any],
        *,
        now: float,
        elapsed: float,
        dt: float,
    ) -> None:
        self.point = point
        self.device: SimDevice = point.device
        self.parameters = parameters
        self.state = state
        self.now = now
        self.elapsed = elapsed
        self.dt = dt

    @property
    def value(self) -> Any:
        """The point's current value."""
        return self.point.value


class _Job:
    __slots__ = ("action", "disabled", "last_run", "point", "state")

    def __init__(self, point: Point, action: ActionSpec) -> None:
        self.point = point
        self.action = action
        self.last_run: float | None = None
        self.state: dict[str, Any] = {}
        self.disabled = False


class ActionRunner:
    """Runs the plant's actions.  *clock* is monotonic, *wall* the time of day."""

    def __init__(
        self,
        plant: Plant,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.plant = plant
        self.clock = clock
        self.wall = wall
        self.random = rng if rng is not None else random.Random()
        self.started = clock()
        self.runs = 0
        self.failures = 0
        self._timers: list[tuple[float, int, _Job]] = []
        self._order = itertools.count()
        self._in_write_job = False
        self._subscriptions: list[Subscription] = []
        for sim in plant:
            for point in sim.points:
                action = point.spec.action
                if action is None:
                    continue
                job = _Job(point, action)
                if action.trigger == "timer":
                    heapq.heappush(self._timers, (self.started, next(self._order), job))
                elif action.trigger == "read":
                    self._install_read_hook(sim, job)
                else:
                    table, address, count = point.storage
                    observer = functools.partial(self._on_write, job)
                    self._subscriptions.append(table.subscribe(observer, address, count))

    def close(self) -> None:
        """Stop reacting to writes."""
        for subscription in self._subscriptions:
            subscription.cancel()
        self._subscriptions.clear()

    @property
    def timer_count(self) -> int:
        return len(self._timers)

    # -- triggers ------------------------------------------------------------

    def _install_read_hook(self, sim: SimDevice, job: _Job) -> None:
        device = sim.device
        table, address, count = job.point.storage
        if isinstance(device, HookedDevice | MemoryDevice):
            device.read_hooks.add(table.kind, address, address + count, lambda: self.execute(job, self.clock()))

    def _on_write(self, job: _Job, change: Change) -> None:
        """A write touched the value of a write-triggered action (the table observer)."""
        if self._in_write_job:
            return
        if job.action.kind == "reset":
            _, address, count = job.point.storage
            start = max(0, address - change.address)
            touched = change.values[start : max(start, address + count - change.address)]
            if not any(touched):  # writing 0 does not reset
                return
        self._in_write_job = True
        try:
            self.execute(job, self.clock())
        finally:
            self._in_write_job = False

    # -- running -------------------------------------------------------------

    def run_due(self, now: float, limit: int | None = None) -> float | None:
        """Run the timer actions due at *now* (at most *limit*); the delay until
        the next one (0 when some due ones are left), None when there is none."""
        timers = self._timers
        done = 0
        while timers and timers[0][0] <= now:
            if limit is not None and done >= limit:
                return 0.0
            done += 1
            due, order, job = heapq.heappop(timers)
            self.execute(job, now)
            if job.disabled:
                continue
            following = due + job.action.interval
            if following <= now:  # fell behind (a busy loop): skip, do not burst
                following = now + job.action.interval
            heapq.heappush(timers, (following, order, job))
        return timers[0][0] - now if timers else None

    async def run(self) -> None:
        """Run the timer actions until cancelled.

        A big plant has thousands due at once: they run in batches, with a
        checkpoint between batches, so Modbus requests are not held up for
        the whole lot.
        """
        while True:
            delay = self.run_due(self.clock(), limit=BATCH)
            await anyio.sleep(3600.0 if delay is None else max(delay, 0.0))

    def execute(self, job: _Job, now: float) -> None:
        """Run one action now; a failing action is logged and disabled."""
        if job.disabled:
            return
        dt = 0.0 if job.last_run is None else now - job.last_run
        job.last_run = now
        self.runs += 1
        try:
            self._apply(job, now, dt)
        except Exception as error:
            self.failures += 1
            job.disabled = True
            logger.error(
                "action %s of %s failed and is now off: %s",
                job.action.describe(),
                job.point.id,
                error,
                exc_info=job.action.kind == "custom",
            )

    def _apply(self, job: _Job, now: float, dt: float) -> None:
        point = job.point
        action = job.action
        spec = point.spec
        options = action.parameters
        kind = action.kind
        elapsed = now - self.started
        is_integer = spec.type.startswith(("int", "uint"))
        if kind == "increment":
            step = options.get("step", 1)
            low = options.get("min")
            high = options.get("max")
            value = point.value + step
            if high is not None and value > high:
                value = low if low is not None else 0
            if low is not None and value < low:
                value = low
            try:
                point.encode(value)
            except ValueError:
                value = low if low is not None else 0  # overflowed its type: wrap
            point.set(value)
        elif kind == "random":
            if spec.type == "bool":
                point.set(self.random.random() < 0.5)
                return
            low, high = options.get("min", 0), options.get("max", 100)
            if is_integer:
                point.set(self.random.randint(math.ceil(low), math.floor(high)))
            else:
                point.set(self.random.uniform(low, high))
        elif kind == "sine":
            amplitude = options.get("amplitude", 1.0)
            offset = options.get("offset", 0.0)
            period = options.get("period", 60.0)
            phase = math.radians(options.get("phase", 0.0))
            value = offset + amplitude * math.sin(2 * math.pi * elapsed / period + phase)
            point.set(round(value / spec.scale) * spec.scale if is_integer else value)
        elif kind == "timestamp":
            wall = self.wall()
            if options.get("layout", "unix") == "pymodbus":
                moment = datetime.datetime.fromtimestamp(wall)
                table, address, _ = point.storage
                table.write(
                    address,
                    [
                        moment.year,
                        moment.month - 1,
                        moment.day,
                        moment.weekday() + 1,
                        moment.hour,
                        moment.minute,
                        moment.second,
                    ],
                    force=True,
                )
            else:
                point.set(wall if spec.type == "float64" else int(wall))
        elif kind == "uptime":
            point.set(int(elapsed) if is_integer else elapsed)
        elif kind == "reset":
            logger.info("%s: reset to initial values (written %s)", point.device.name, point.name)
            point.device.reset()
        else:
            function = action.function
            if function is None:  # pragma: no cover - the configuration checks this
                raise RuntimeError(f"custom action {action.function_name!r} has no function")
            context = ActionContext(point, options, job.state, now=self.wall(), elapsed=elapsed, dt=dt)
            result = function(context)
            if result is not None:
                point.set(result)
