"""The simulator: a plant, its Modbus listeners, actions, state and web page.

:class:`Simulator` ties the pieces together and runs them in one anyio
task group, on asyncio or trio::

    async with Simulator(load_config("plant.json"), state_file="plant.state") as simulator:
        print(simulator.modbus_addresses, simulator.http_url)
        ...                                   # or: await simulator.wait_stopped()

Nothing starts half-configured: the configuration is checked and the
state file read before anything listens; if a listener cannot bind, the
ones already started are stopped and :class:`SimulatorError` says which
and why.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Container
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

from modbus_core import DeviceIdentity, Dispatcher, __version__

from ._actions import ActionRunner
from ._config import ServerSpec, SimulatorConfig, default_config
from ._errors import SimulatorError
from ._logbuffer import LogBuffer
from ._plant import Plant
from ._state import StateStore
from ._traffic import CallRecorder, FaultInjector, RequestHandler

__all__ = ["Listener", "Simulator"]

logger = logging.getLogger(__name__)

DEFAULT_IDENTITY = DeviceIdentity(
    "modbuskit", "SIM", __version__, product_name="modbuskit simulator", model_name="simulated device"
)


class _Units(Container[int]):
    """The units a serial listener answers: its dispatcher's, once it has one."""

    def __init__(self, handler: RequestHandler) -> None:
        self._handler = handler

    def __contains__(self, unit: object) -> bool:
        dispatcher = self._handler.dispatcher
        return dispatcher is not None and unit in dispatcher


def _format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Ready(anyio.abc.TaskStatus[Any]):
    """Marks the listener running when its server reports readiness."""

    def __init__(self, listener: Listener, outer: anyio.abc.TaskStatus[Any]) -> None:
        self.listener = listener
        self.outer = outer
        self.done = False

    def started(self, value: Any = None) -> None:
        self.done = True
        listener = self.listener
        listener.state = "running"
        listener.started_at = time.time()
        logger.info("listener %s: %s", listener.name, ", ".join(listener.addresses))
        self.outer.started(listener)


class Listener:
    """One configured Modbus server of the simulator, which can be stopped and started."""

    def __init__(self, simulator: Simulator, spec: ServerSpec) -> None:
        self.simulator = simulator
        self.spec = spec
        self.name = spec.name
        self.server: Any = None
        self.state = "stopped"
        self.error: str | None = None
        self.started_at: float | None = None
        plant = simulator.plant
        self.context = plant.context_for(spec.name)
        self.handler = RequestHandler(
            None,  # set when the server exists: the dispatcher counts in the server's diagnostics
            plant.units_of(spec.name),
            simulator.recorder,
            simulator.faults,
        )

    def __repr__(self) -> str:
        return f"<Listener {self.name} {self.spec.describe()} {self.state}>"

    @property
    def addresses(self) -> list[str]:
        """Where it listens now (bound ports), or the configured place when stopped."""
        server = self.server
        if server is not None and self.state == "running":
            bound = getattr(server, "addresses", None)
            if bound:
                return [
                    _format_address(str(item[0]), int(item[1])) if isinstance(item, tuple) else str(item)
                    for item in bound
                ]
        if self.spec.transport == "serial":
            return [str(self.spec.port)]
        return [_format_address(self.spec.host, int(self.spec.port))]

    def _make_server(self) -> Any:
        import modbus_anyio

        spec = self.spec
        options: dict[str, Any] = {"name": spec.name, "framer": spec.framer}
        serial = spec.transport == "serial"
        if serial:
            options["units"] = _Units(self.handler)
        if spec.transport in ("tcp", "tls") and spec.max_connections is not None:
            options["max_connections"] = spec.max_connections
        server: Any
        if spec.transport == "tcp":
            server = modbus_anyio.TcpServer(self.handler, host=spec.host, port=int(spec.port), **options)
        elif spec.transport == "tls":
            policy = None
            if spec.roles is not None:
                policy = modbus_anyio.RolePolicy.from_mapping(spec.roles)
            server = modbus_anyio.TlsServer(
                self.handler,
                host=spec.host,
                port=int(spec.port),
                certfile=spec.certfile,
                keyfile=spec.keyfile,
                cafile=spec.cafile,
                password=spec.password,
                require_client_certificate=spec.require_client_certificate,
                policy=policy,
                **options,
            )
        elif spec.transport == "udp":
            server = modbus_anyio.UdpServer(self.handler, host=spec.host, port=int(spec.port), **options)
        else:
            server = modbus_anyio.SerialServer(
                self.handler,
                port=str(spec.port),
                baudrate=spec.baudrate,
                bytesize=spec.bytesize,
                parity=spec.parity,
                stopbits=spec.stopbits,
                **options,
            )
        self.handler.use(
            Dispatcher(
                self.context,
                diagnostics=server.diagnostics,
                identity=spec.identity or DEFAULT_IDENTITY,
                serial=serial,
                broadcast=spec.broadcast,
                ignore_missing_units=spec.ignore_missing_units,
            )
        )
        return server

    async def run(self, *, task_status: anyio.abc.TaskStatus[Any] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve until stopped; reports readiness once listening."""
        self.state = "starting"
        self.error = None
        ready = _Ready(self, task_status)
        try:
            self.server = self._make_server()
            await self.server.serve_forever(task_status=ready)
        except (OSError, ValueError, SimulatorError) as error:
            self.state = "failed"
            self.error = str(error)
            if not ready.done:
                raise SimulatorError(
                    f"cannot start listener {self.name!r} ({self.spec.describe()}): {error}"
                ) from error
            logger.error("listener %s failed: %s", self.name, error)
        finally:
            if self.state != "failed":
                self.state = "stopped"

    async def start(self) -> None:
        """Start listening (again); SimulatorError when it cannot."""
        if self.state in ("running", "starting"):
            return
        await self.simulator.task_group.start(self.run)

    async def stop(self) -> None:
        """Answer what was received, close connections and stop listening."""
        server = self.server
        if server is None or self.state not in ("running", "starting"):
            return
        self.state = "stopping"
        await server.shutdown()

    def connections(self) -> list[Any]:
        server = self.server
        return list(server.connections) if server is not None and self.state == "running" else []


def _first(group: BaseExceptionGroup[Any]) -> BaseException:
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


class Simulator:
    """A running plant of simulated Modbus devices.

    *config* defaults to the built-in example plant.  *state_file* keeps
    register values across restarts (read now: a corrupt file raises
    :class:`StateError` before anything starts).  *http* overrides the
    configuration's ``http.enabled``.
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        state_file: str | Path | None = None,
        http: bool | None = None,
    ) -> None:
        self.config = config if config is not None else default_config()
        self.plant = Plant(self.config)
        self.state: StateStore | None = None
        if state_file is not None:
            self.state = StateStore(state_file, self.plant)
            try:
                self.state.load()
                self.state.check_writable()
            except BaseException:
                self.state.close()
                raise
        self.recorder = CallRecorder(self.config.calls_kept)
        self.faults = FaultInjector()
        self.logs = LogBuffer(self.config.log_records, logging.getLevelName(self.config.log_level))
        self.actions = ActionRunner(self.plant)
        self.listeners = {spec.name: Listener(self, spec) for spec in self.config.servers}
        self.http_enabled = self.config.http_enabled if http is None else http
        self.http_addresses: list[tuple[str, int]] = []
        self.started: float | None = None
        self.status = "new"
        self._task_group: anyio.abc.TaskGroup | None = None
        self._stop_requested: anyio.Event | None = None
        self._stopped: anyio.Event | None = None
        self.closing: anyio.Event | None = None
        self._context_group: anyio.abc.TaskGroup | None = None
        from ._web import create_app

        self.app = create_app(self)

    def __repr__(self) -> str:
        return f"<Simulator {self.config.source} {self.status} devices={len(self.plant)}>"

    @property
    def task_group(self) -> anyio.abc.TaskGroup:
        if self._task_group is None:
            raise RuntimeError("the simulator is not running")
        return self._task_group

    @property
    def modbus_addresses(self) -> dict[str, list[str]]:
        """Listener name -> where it listens (``"127.0.0.1:5020"``, ``"/dev/ttyUSB0"``)."""
        return {name: listener.addresses for name, listener in self.listeners.items()}

    @property
    def http_url(self) -> str | None:
        """The web page's address, once serving."""
        if not self.http_addresses:
            return None
        host, port = self.http_addresses[0]
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1" if host == "0.0.0.0" else "::1"
        return f"http://{_format_address(host, port)}"

    def _bind_http(self) -> socket.socket:
        host, port = self.config.http_host, self.config.http_port
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.create_server((host, port), family=family, backlog=128)
        except OSError as error:
            raise SimulatorError(
                f"cannot start the web page on {_format_address(host, port)}: {error.strerror or error}"
            ) from None
        self.http_addresses = [sock.getsockname()[:2]]
        return sock

    async def serve(self, *, task_status: anyio.abc.TaskStatus[Any] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run until :meth:`stop`; reports readiness (``task_status.started(self)``)."""
        if self.status != "new":
            raise RuntimeError("a Simulator runs once; make a new one")
        self.status = "starting"
        self._stop_requested = anyio.Event()
        self._stopped = anyio.Event()
        self.closing = anyio.Event()
        self.logs.attach()
        try:
            await self._run(task_status)
        except BaseExceptionGroup as group:
            # A listener that cannot start: say so plainly, not as a group.
            errors, others = group.split(SimulatorError)
            if errors is not None and others is None:
                raise _first(errors) from None
            raise

    async def _run(self, task_status: anyio.abc.TaskStatus[Any]) -> None:
        stop_requested, closing, stopped = self._stop_requested, self.closing, self._stopped
        assert stop_requested is not None
        assert closing is not None
        assert stopped is not None
        http_socket: socket.socket | None = None
        try:
            if self.http_enabled:
                http_socket = self._bind_http()
            async with anyio.create_task_group() as group:
                self._task_group = group
                for listener in self.listeners.values():
                    if listener.spec.enabled:
                        await listener.start()
                group.start_soon(self.actions.run)
                if self.state is not None:
                    group.start_soon(self.state.run)
                http_done = anyio.Event()
                if http_socket is not None:
                    from ._web import serve_http

                    sock, http_socket = http_socket, None
                    await group.start(serve_http, self, sock, http_done)
                else:
                    http_done.set()
                self.started = time.time()
                self.status = "running"
                logger.info(
                    "simulator running: %d device(s); Modbus %s; web page %s",
                    len(self.plant),
                    "; ".join(f"{name} {', '.join(addresses)}" for name, addresses in self.modbus_addresses.items()),
                    self.http_url or "off",
                )
                task_status.started(self)
                await stop_requested.wait()
                self.status = "stopping"
                logger.info("simulator stopping")
                closing.set()
                for listener in self.listeners.values():
                    await listener.stop()
                with anyio.move_on_after(5):
                    await http_done.wait()
                group.cancel_scope.cancel()
        finally:
            if http_socket is not None:
                http_socket.close()
            self.status = "stopped"
            closing.set()
            self.actions.close()
            if self.state is not None:
                with anyio.CancelScope(shield=True):
                    try:
                        self.state.save()
                    except OSError as error:
                        logger.error("cannot save the state file %s: %s", self.state.path, error)
                self.state.close()
            logger.info("simulator stopped")
            self.logs.detach()
            self._task_group = None
            stopped.set()

    def stop_soon(self) -> None:
        """Ask the simulator to stop (returns at once)."""
        if self._stop_requested is not None:
            self._stop_requested.set()

    async def stop(self) -> None:
        """Stop: answer what was received, close listeners and the web page, save the state."""
        self.stop_soon()
        if self._stopped is not None:
            await self._stopped.wait()

    async def wait_stopped(self) -> None:
        """Return once the simulator has stopped."""
        if self._stopped is not None:
            await self._stopped.wait()

    async def __aenter__(self) -> Simulator:
        group = anyio.create_task_group()
        await group.__aenter__()
        try:
            await group.start(self.serve)
        except BaseException as error:
            await group.__aexit__(type(error), error, error.__traceback__)
            raise
        self._context_group = group
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        # As for the servers: the body's exception propagates as it is (not
        # wrapped by the task group), after a shielded stop.
        group = self._context_group
        assert group is not None
        try:
            with anyio.CancelScope(shield=True):
                await self.stop()
        finally:
            self._context_group = None
            await group.__aexit__(None, None, None)
