#!/usr/bin/env python3
"""The simulator's costs: Modbus throughput beside the plain server, a 1000-device plant's start, its register page.

usage: python benchmarks/simulator.py [--rounds 3] [--secs 4] [--out benchmarks/RESULTS-simulator.md]
                                      [--skip-throughput] [--skip-plant] [--backend uvloop]

1. Throughput.  ``loadgen`` (../shared/bench, libmodbus; 10 connections)
   against the plain server (benchmarks/tcp_server.py: modbus_anyio's
   TcpServer on a ServerContext) and against ``modbuskit sim`` serving an
   equal device (every request through the simulator's handler: fault
   check, counters, call recorder), alone, with the registers page open in
   headless Chromium, and with the calls page open (live traffic).  The
   four run side by side throughout; each round loads each in turn, the
   order rotating, and the ratio to the plain server is taken within the
   round.  All on the event loop that ``--backend`` names (default uvloop,
   what ``modbuskit sim`` runs on).
2. A plant of 1000 devices (200 units on each of 5 TCP listeners, 20 named
   float32 values per device, 5 of them moving every second): time from
   ``Simulator(...)`` to listening, and from launching ``modbuskit sim`` to
   its "Press Ctrl-C" line (Python start and imports included).
3. Its register page: REST listing with filters and paging, the first event
   of the live stream, and Chromium's time to show a page of rows and to
   show the next page.

Results go to the output file (markdown) and stdout.  The machine has 2
cores shared by loadgen, the server and Chromium: compare ratios within a
run, not absolute figures across runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LOADGEN = Path("/tmp/modbus-bench/loadgen")
BENCH_DIR = ROOT.parent / "shared" / "bench"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
WORKLOADS = [("fc3", 0, 10), ("fc16", 0, 100)]
NOTES = "## Reading these numbers"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, process: subprocess.Popen[Any], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited early ({process.returncode})")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


@contextlib.contextmanager
def process(command: list[str], port: int) -> Iterator[subprocess.Popen[str]]:
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    try:
        wait_port(port, child)
        yield child
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=5)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def browser_cpu_seconds() -> float:
    """User + system CPU time so far of every Chromium process on the machine."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            text = stat.read_text()
            if "(chrom" in text.split(")", 1)[0]:
                fields = text.rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def loadgen(
    port: int, secs: float, workload: tuple[str, int, int], server_pid: int, connections: int = 10
) -> tuple[float, float, float]:
    """(requests/s, server CPU microseconds per request, Chromium's CPU share of one core) of
    one loadgen run (after its warm-up)."""
    function, address, count = workload
    command = [str(LOADGEN), "--warmup", "1", "127.0.0.1", str(port), str(connections), str(secs)]
    command += [function, str(address), str(count)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # loadgen's warm-up
    cpu_before, browser_before, started = cpu_seconds(server_pid), browser_cpu_seconds(), time.monotonic()
    out, _ = child.communicate(timeout=secs + 40)
    cpu_used = cpu_seconds(server_pid) - cpu_before
    browser_share = (browser_cpu_seconds() - browser_before) / (time.monotonic() - started)
    if child.returncode:
        raise RuntimeError(f"loadgen failed: {out}")
    fields = dict(item.split("=", 1) for item in out.split() if "=" in item)
    if int(fields["err"]):
        raise RuntimeError(f"loadgen saw errors: {out}")
    return float(fields["rps"]), cpu_used / int(fields["ok"]) * 1e6, browser_share


def bench_plant_file(directory: Path) -> Path:
    """One device like benchmarks/tcp_server.py's: 10000 of each table, any unit."""
    document = {
        "servers": [{"name": "bench", "transport": "tcp", "port": 0, "max_connections": 4096}],
        "devices": [
            {
                "name": "bench",
                "unit": "any",
                "coils": 10000,
                "discrete_inputs": 10000,
                "holding_registers": 10000,
                "input_registers": 10000,
                "registers": [
                    {"name": f"value_{n}", "address": 2 * n, "type": "float32", "value": 1.5} for n in range(50)
                ],
            }
        ],
    }
    path = directory / "bench.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def large_plant_document() -> dict[str, Any]:
    registers: list[dict[str, Any]] = []
    for n in range(20):
        register: dict[str, Any] = {
            "name": f"value_{n:02}",
            "table": "input_registers",
            "address": 2 * n,
            "type": "float32",
        }
        if n < 5:
            register["action"] = {"kind": "sine", "amplitude": 5, "offset": 50 + n, "period": 30 + n}
        registers.append(register)
    return {
        "http": {"port": 0},
        "servers": [{"name": f"bus{bus}", "transport": "tcp", "port": 0} for bus in range(5)],
        "templates": {"meter": {"input_registers": 40, "holding_registers": 10, "registers": registers}},
        "devices": [
            {
                "name": f"bus{bus}-meter-{{n}}",
                "template": "meter",
                "unit": 1,
                "servers": [f"bus{bus}"],
                "repeat": {"count": 200},
            }
            for bus in range(5)
        ],
    }


class Chromium:
    """Headless Chromium showing pages of the simulator, one browser each (Playwright, sync API)."""

    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        self._manager = sync_playwright()
        self._playwright = self._manager.__enter__()
        self._browsers: list[Any] = []

    def show(self, url: str) -> None:
        browser = self._playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        self._browsers.append(browser)
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("#live.connected", timeout=15_000)

    def close(self) -> None:
        for browser in self._browsers:
            browser.close()
        self._manager.__exit__(None, None, None)


def throughput(rounds: int, secs: float, backend: str) -> list[str]:
    """Every contender runs at once (the pages stay open throughout); in each round loadgen
    loads them in turn, in an order that rotates, so that the ratio of one round compares runs
    a few seconds apart: this machine's load moves by more than the differences measured."""
    if not LOADGEN.exists():
        subprocess.run(["make", "-C", str(BENCH_DIR)], check=True, timeout=300)
    python = sys.executable
    results: dict[tuple[str, str], list[float]] = {}
    ratios: dict[tuple[str, str], list[float]] = {}
    costs: dict[tuple[str, str], list[float]] = {}
    browser: dict[tuple[str, str], list[float]] = {}
    contenders = ["plain server", "simulator", "simulator + registers page", "simulator + calls page"]
    labels = [f"{function} x {count}" for function, _, count in WORKLOADS]
    with tempfile.TemporaryDirectory() as directory, contextlib.ExitStack() as stack:
        plant = bench_plant_file(Path(directory))
        servers: dict[str, tuple[int, subprocess.Popen[str]]] = {}
        chromium = Chromium()
        stack.callback(chromium.close)
        for name in contenders:
            port, http_port = free_port(), free_port()
            if name == "plain server":
                command = [python, str(HERE / "tcp_server.py"), "--port", str(port), "--backend", backend]
            else:
                command = [python, "-m", "modbus_anyio", "sim", "--config", str(plant), "--modbus-port", str(port)]
                command += ["--http-port", str(http_port), "--log-level", "WARNING", "--backend", backend]
            servers[name] = (port, stack.enter_context(process(command, port)))
            if name.endswith("page"):
                which = "registers" if "registers" in name else "calls"
                chromium.show(f"http://127.0.0.1:{http_port}/{which}")
        for round_number in range(rounds):
            order = contenders[round_number % len(contenders) :] + contenders[: round_number % len(contenders)]
            for workload, label in zip(WORKLOADS, labels, strict=True):
                measured: dict[str, float] = {}
                for name in order:
                    port, server = servers[name]
                    rps, cost, browser_share = loadgen(port, secs, workload, server.pid)
                    measured[name] = rps
                    results.setdefault((name, label), []).append(rps)
                    costs.setdefault((name, label), []).append(cost)
                    browser.setdefault((name, label), []).append(browser_share)
                    print(
                        f"round {round_number + 1} {name:28} {label:10} {rps:9.0f} requests/s"
                        f" {cost:6.1f} us CPU/request  Chromium {browser_share:4.0%} of a core",
                        flush=True,
                    )
                for name in contenders:
                    ratios.setdefault((name, label), []).append(measured[name] / measured["plain server"])
    lines = [
        f"### Modbus throughput (loadgen, 10 connections, {secs:g} s runs, {rounds} rounds, on {backend})",
        "",
        "The four servers run side by side for the whole measurement, the two pages open in headless",
        "Chromium throughout; in each round loadgen loads each server in turn (the order rotates).",
        "Median requests/s; the median over rounds of the ratio to the plain server in the same round,",
        "with the least and greatest; the server process's least CPU time per request over the rounds",
        "(user + system: the least is the run least disturbed by other work on the machine) and the",
        "plain server's share of it; the CPU Chromium took meanwhile (median, in cores: it runs on the",
        "same two cores as loadgen and the servers).",
        "",
        "| server | workload | requests/s | ratio (range) | CPU/request | ratio | Chromium |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for label in labels:
        for name in contenders:
            median = statistics.median(results[name, label])
            ratio = ratios[name, label]
            cost = min(costs[name, label])
            plain_cost = min(costs["plain server", label])
            share = statistics.median(browser[name, label])
            lines.append(
                f"| {name} | {label} | {median:,.0f} | {statistics.median(ratio):.0%}"
                f" ({min(ratio):.0%}-{max(ratio):.0%}) | {cost:.1f} us | {plain_cost / cost:.0%} | {share:.2f} |"
            )
    return lines


def handler_cost(rounds: int = 15, requests: int = 20000) -> list[str]:
    """Python time per request without sockets: a modbus_core ServerConnection answering from the
    plain Dispatcher, then through the simulator's request handler (counters, call recorder)."""
    from modbus_anyio import ConnectionInfo
    from modbus_anyio.simulator import load_config
    from modbus_anyio.simulator._plant import Plant
    from modbus_anyio.simulator._traffic import CallRecorder, FaultInjector, RequestHandler
    from modbus_core import (
        Dispatcher,
        MbapFramer,
        ReadHoldingRegisters,
        RequestPdu,
        ServerConnection,
        WriteMultipleRegisters,
    )

    with tempfile.TemporaryDirectory() as directory:
        plant = Plant(load_config(bench_plant_file(Path(directory))))
    dispatcher = Dispatcher(plant.context_for("bench"))
    handler = RequestHandler(dispatcher, plant.units_of("bench"), CallRecorder(10000), FaultInjector())
    info = ConnectionInfo("tcp", "127.0.0.1:50000", "127.0.0.1:502", server="bench", connection_id=1)
    lines = [
        f"### Python cost per request, without sockets (least of {rounds} rounds of {requests:,})",
        "",
        "The same bytes through a modbus_core ServerConnection, answered by the Dispatcher alone (what",
        "the plain server runs), then by the simulator's handler (fault check, counters, call recorder).",
        "",
        "| request | dispatcher | simulator handler | difference |",
        "|---|---:|---:|---:|",
    ]
    pdus: list[RequestPdu] = [ReadHoldingRegisters(0, 10), WriteMultipleRegisters(0, tuple(range(100)))]
    for pdu in pdus:
        frame = MbapFramer().encode(1, 5, pdu.encode())
        connection = ServerConnection(MbapFramer())

        def run(answer: Any, connection: ServerConnection = connection, frame: bytes = frame) -> float:
            begin = time.process_time()
            for _ in range(requests):
                connection.receive_data(frame, 0.0)
                request = connection.next_event()
                connection.next_event()
                connection.send(answer(request))
            return (time.process_time() - begin) / requests * 1e6

        plain, simulated = float("inf"), float("inf")
        for _ in range(rounds):
            plain = min(plain, run(dispatcher.dispatch))
            simulated = min(simulated, run(lambda request: handler(request, info)))
        name = f"fc{pdu.function_code} x {10 if pdu.function_code == 3 else 100}"
        lines.append(f"| {name} | {plain:.2f} us | {simulated:.2f} us | {simulated - plain:+.2f} us |")
    return lines


def in_process_cost(rounds: int = 6, secs: float = 2) -> list[str]:
    """Server CPU per request with the servers taking turns inside this one process (so that they
    share the same interpreter state), loadgen driving each: the least over the rounds."""
    import resource

    import anyio

    from modbus_anyio import TcpServer
    from modbus_anyio.simulator import Simulator, load_config
    from modbus_anyio.simulator._plant import Plant
    from modbus_anyio.simulator._traffic import CallRecorder, FaultInjector, RequestHandler
    from modbus_core import Dispatcher

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    async def load(port: int, workload: tuple[str, int, int]) -> float:
        function, address, count = workload
        command = [str(LOADGEN), "--warmup", "1", "127.0.0.1", str(port), "10", str(secs), function]
        async with await anyio.open_process([*command, str(address), str(count)]) as child:
            await anyio.sleep(1.0)  # loadgen's warm-up
            before = cpu()
            assert child.stdout is not None
            out = b"".join([chunk async for chunk in child.stdout])
            used = cpu() - before
        fields = dict(item.split("=", 1) for item in out.decode().split() if "=" in item)
        return used / int(fields["ok"]) * 1e6

    variants = [
        "TcpServer answering from a ServerContext (the plain server)",
        "TcpServer answering through the simulator's handler",
        "the simulator, web page off",
        "the simulator, web page on",
    ]

    async def main(config: Any) -> dict[tuple[str, str], float]:
        best: dict[tuple[str, str], float] = {}
        for _ in range(rounds):
            plant = Plant(config)
            for variant in variants:
                for workload in WORKLOADS:
                    label = f"{workload[0]} x {workload[2]}"
                    if variant.startswith("TcpServer"):
                        handler = RequestHandler(None, plant.units_of("bench"), CallRecorder(10000), FaultInjector())
                        answer: Any = plant.context_for("bench") if "ServerContext" in variant else handler
                        server = TcpServer(answer, port=0, max_connections=4096)
                        handler.use(Dispatcher(plant.context_for("bench"), diagnostics=server.diagnostics))
                        async with server:
                            cost = await load(server.port, workload)
                    else:
                        async with Simulator(config, http=variant.endswith("on")) as simulator:
                            port = int(simulator.modbus_addresses["bench"][0].rsplit(":", 1)[1])
                            cost = await load(port, workload)
                    best[variant, label] = min(best.get((variant, label), float("inf")), cost)
        return best

    with tempfile.TemporaryDirectory() as directory:
        config = load_config(bench_plant_file(Path(directory))).with_overrides(http_port=0, modbus_port=0)
        best = anyio.run(main, config)
    labels = [f"{function} x {count}" for function, _, count in WORKLOADS]
    lines = [
        f"### Server CPU per request, the servers taking turns in one process (least of {rounds} rounds)",
        "",
        "| server | " + " | ".join(f"{label} CPU/request | plain's share" for label in labels) + " |",
        "|---|" + "---:|---:|" * len(labels),
    ]
    for variant in variants:
        cells = []
        for label in labels:
            cost, plain = best[variant, label], best[variants[0], label]
            cells.append(f"{cost:.1f} us | {plain / cost:.0%}")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return lines


def plant_numbers() -> list[str]:
    import anyio
    import httpx

    from modbus_anyio.simulator import Simulator, parse_config

    document = large_plant_document()
    lines = ["### A plant of 1000 devices (5 TCP listeners x 200 units, 20 float32 values each, 5 moving)", ""]

    page_timings: dict[str, float] = {}

    async def in_process() -> dict[str, float]:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        config = parse_config(document)
        timings["configuration checked"] = time.perf_counter() - started
        simulator = Simulator(config)
        timings["plant built"] = time.perf_counter() - started
        async with simulator:
            timings["listening (5 Modbus listeners + web page)"] = time.perf_counter() - started
            assert simulator.http_url is not None
            async with httpx.AsyncClient(base_url=simulator.http_url, timeout=30) as web:
                requests: list[tuple[str, dict[str, str | int]]] = [
                    ("GET /api/registers (first 50 of 20000)", {"limit": 50}),
                    ("GET /api/registers, deep page (offset 19000)", {"offset": 19000, "limit": 50}),
                    ("GET /api/registers?device=bus3-meter-1*", {"device": "bus3-meter-1*"}),
                    ("GET /api/registers?q=meter-150&address_from=10", {"q": "meter-150", "address_from": 10}),
                    ("GET /api/registers, 500 rows", {"limit": 500}),
                    ("GET /api/devices (first 100 of 1000)", {}),
                ]
                for label, params in requests:
                    path = "/api/devices" if "devices" in label else "/api/registers"
                    samples = []
                    for _ in range(5):
                        begin = time.perf_counter()
                        response = await web.get(path, params=params)
                        response.raise_for_status()
                        samples.append(time.perf_counter() - begin)
                    timings[label] = statistics.median(samples)
                begin = time.perf_counter()
                async with web.stream("GET", "/api/registers/events", params={"limit": 50}) as stream:
                    async for line in stream.aiter_lines():
                        if line.startswith("data: "):
                            break
                timings["first live event (a page of 50)"] = time.perf_counter() - begin
                page_timings.update(await anyio.to_thread.run_sync(browser_timings, simulator.http_url))
        return timings

    timings = anyio.run(in_process)
    lines += ["| step | time |", "|---|---:|"]
    for label, seconds in timings.items():
        lines.append(f"| {label} | {seconds * 1000:,.1f} ms |")
    for label, seconds in page_timings.items():
        lines.append(f"| Chromium: {label} | {seconds * 1000:,.1f} ms |")
    lines.append(f"| `modbuskit sim` launched to ready (a new Python process) | {cli_start(document) * 1000:,.0f} ms |")
    return lines


# Measured inside the page: from the click to the rows in the table, and the next frame painted.
IN_PAGE = """(action) => new Promise((resolve) => {
    const body = document.querySelector('#registers tbody');
    const begin = performance.now();
    const old = body.rows[0];
    const observer = new MutationObserver(() => {
        if (body.rows.length && body.rows[0] !== old) {
            observer.disconnect();
            requestAnimationFrame(() => resolve((performance.now() - begin) / 1000));
        }
    });
    observer.observe(body, {childList: true});
    if (action === 'next') document.querySelector('#next').click();
    else {
        document.querySelector('input[name=q]').value = 'meter-199';
        document.querySelector('button[type=submit]').click();
    }
})"""


def browser_timings(url: str) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            timings = {}
            page.goto(f"{url}/registers?limit=100")
            page.wait_for_function("document.querySelectorAll('#registers tbody tr').length === 100", polling=10)
            # From the start of navigation (the page's own clock) to 100 rows shown.
            timings["registers page opened, 100 rows shown"] = page.evaluate("performance.now()") / 1000
            timings["next page shown"] = page.evaluate(IN_PAGE, "next")
            timings["filter applied (100 of 20000 match)"] = page.evaluate(IN_PAGE, "filter")
            assert page.locator("#summary").text_content() == "100 registers match."
            return timings
        finally:
            browser.close()


def cli_start(document: dict[str, Any]) -> float:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "plant.json"
        path.write_text(json.dumps(document), encoding="utf-8")
        begin = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "modbus_anyio", "sim", "--config", str(path), "--log-level", "WARNING"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert child.stdout is not None
            for line in child.stdout:
                if line.startswith("Press Ctrl-C"):
                    return time.perf_counter() - begin
            raise RuntimeError("modbuskit sim did not start")
        finally:
            child.send_signal(signal.SIGINT)
            child.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--secs", type=float, default=4)
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS-simulator.md")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-plant", action="store_true")
    parser.add_argument(
        "--backend",
        choices=("asyncio", "uvloop", "trio"),
        default="uvloop",
        help="the event loop of both servers in the throughput part (default: uvloop, what `modbuskit sim` runs on)",
    )
    arguments = parser.parse_args()
    if shutil.which(CHROMIUM) is None:
        print(f"needs {CHROMIUM}", file=sys.stderr)
        return 2
    os.environ.setdefault("PYTHONHASHSEED", "0")
    start_load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    cpu = re.sub(r"\s+", " ", Path("/proc/cpuinfo").read_text().split("model name")[1].split("\n")[0].strip(": \t"))
    lines = [
        "# Simulator benchmarks",
        "",
        f"Run with `python benchmarks/simulator.py` on {os.cpu_count()} cores ({cpu}), {time.strftime('%Y-%m-%d')}.",
        "",
    ]
    if not arguments.skip_throughput:
        lines += [*throughput(arguments.rounds, arguments.secs, arguments.backend), ""]
        lines += [*in_process_cost(), ""]
        lines += [*handler_cost(), ""]
    if not arguments.skip_plant:
        lines += [*plant_numbers(), ""]
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    lines += [f"Load average at the end (1, 5, 15 min): {load}; at the start: {start_load}.", ""]
    text = "\n".join(lines)
    print(text)
    # Keep the hand-written notes that follow the numbers in an earlier version of the file.
    notes = ""
    if arguments.out.exists():
        earlier = arguments.out.read_text(encoding="utf-8")
        if NOTES in earlier:
            notes = earlier[earlier.index(NOTES) :]
    arguments.out.write_text(text + ("\n" + notes if notes else ""), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
