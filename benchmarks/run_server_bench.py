#!/usr/bin/env python3
"""Server throughput and latency: modbuskit (asyncio, trio) against pymodbus 3.16.1 and libmodbus.

usage (from the project root):

    .venv/bin/python benchmarks/run_server_bench.py [--secs 5] [--reps 3] [--idle 1000] [--quick]

In one run, interleaved so that a burst of outside load does not hit one
server only:

1. throughput: ``../shared/bench/run_tcp_bench.sh`` (loadgen on libmodbus)
   against each server (modbuskit on asyncio's own loop, on uvloop and on
   trio; and ``transport_ceiling.py``'s canned FC3 servers on an asyncio
   Protocol, on uvloop and on anyio/trio, and ``ceiling_epoll.py``'s on
   trio: what the I/O path alone allows; pymodbus also with glibc's mmap
   threshold raised, see ``GLIBC_TUNED``),
   FC3 x 10 and FC3 x 125 registers, 10 and 100 connections, one repetition
   per call, repeated ``--reps`` times;
2. many idle connections: with ``--idle`` connections open and quiet, 10
   busy connections run FC3 x 10; their p99 latency is compared with 10
   connections alone on the same server process, and the server's resident
   memory before and after opening the idle connections gives the memory
   per idle connection.

Prints Markdown tables (medians and ratios) and writes the raw numbers to
``/tmp/modbus-bench/server_bench.json``.  The machine's cores are shared by
client and server: compare ratios from one run, not absolute figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT.parent / "shared" / "bench"
OUT = Path(os.environ.get("OUTDIR", "/tmp/modbus-bench"))
LOADGEN = OUT / "loadgen"
PYTHON = ROOT / ".venv" / "bin" / "python"


def servers(base_port: int) -> dict[str, tuple[int, list[str]]]:
    """Name -> (port, command) of every server compared."""
    ours = [str(PYTHON), str(ROOT / "benchmarks" / "tcp_server.py")]
    ceiling = [str(PYTHON), str(BENCH / "transport_ceiling.py")]
    return {
        "libmodbus": (base_port, [str(OUT / "libmodbus_server"), str(base_port)]),
        "pymodbus": (base_port + 1, [str(PYTHON), str(BENCH / "pymodbus_server.py"), "--port", str(base_port + 1)]),
        # pymodbus reads through asyncio's Protocol: a new 256 KiB bytes object per read,
        # which glibc serves with mmap/mremap/munmap unless its mmap threshold is raised.
        "pymodbus-tuned": (
            base_port + 8,
            ["env", *GLIBC_TUNED, str(PYTHON), str(BENCH / "pymodbus_server.py"), "--port", str(base_port + 8)],
        ),
        "modbuskit-asyncio": (base_port + 2, [*ours, "--port", str(base_port + 2), "--backend", "asyncio"]),
        "modbuskit-trio": (base_port + 3, [*ours, "--port", str(base_port + 3), "--backend", "trio"]),
        "modbuskit-uvloop": (base_port + 6, [*ours, "--port", str(base_port + 6), "--backend", "uvloop"]),
        # What the I/O path alone allows (a canned FC3 answer, no Modbus work): the headroom.
        "ceiling-asyncio": (
            base_port + 4,
            [*ceiling, "protocol", str(base_port + 4)],
        ),
        "ceiling-trio": (
            base_port + 5,
            [*ceiling, "anyio-trio", str(base_port + 5)],
        ),
        "ceiling-uvloop": (
            base_port + 7,
            [*ceiling, "uvloop", str(base_port + 7)],
        ),
        # One task for every connection through its own epoll: the reactor's ceiling on trio.
        "ceiling-trio-epoll": (
            base_port + 9,
            [str(PYTHON), str(ROOT / "benchmarks" / "ceiling_epoll.py"), "trio", str(base_port + 9)],
        ),
    }


GLIBC_TUNED = ["MALLOC_MMAP_THRESHOLD_=1048576", "MALLOC_TRIM_THRESHOLD_=4194304"]


def parse_line(line: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in line.split() if "=" in item)


# -- part 1: throughput with the shared run_tcp_bench.sh ---------------------------------


def throughput(
    names: Sequence[str], base_port: int, secs: int, reps: int, conns: str, workloads: str
) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    table = servers(base_port)
    for rep in range(1, reps + 1):
        for name in names:
            port, command = table[name]
            env = {**os.environ, "SECS": str(secs), "REPS": "1", "CONNS": conns, "WORKLOADS": workloads, "WARMUP": "1"}
            print(f"# rep {rep}/{reps}: {name}", file=sys.stderr, flush=True)
            result = subprocess.run(
                [str(BENCH / "run_tcp_bench.sh"), name, str(port), "--", *command],
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if result.returncode != 0:
                print(result.stderr, file=sys.stderr)
                raise SystemExit(f"run_tcp_bench.sh failed for {name}")
            for line in (OUT / f"{name}.raw").read_text().splitlines():
                row = parse_line(line)
                row["rep"] = str(rep)
                rows.append(row)
    return rows


# -- part 2: many idle connections ----------------------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


@contextmanager
def running(command: list[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited early")
            time.sleep(0.1)
        else:
            raise RuntimeError(f"{command} did not listen on {port}")
        time.sleep(0.5)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def loadgen(port: int, conns: int, secs: int, count: int = 10) -> dict[str, str]:
    result = subprocess.run(
        [str(LOADGEN), "--warmup", "1", "127.0.0.1", str(port), str(conns), str(secs), "fc3", "0", str(count)],
        capture_output=True,
        text=True,
        timeout=secs + 60,
        check=False,
    )
    return parse_line(result.stdout.strip())


def open_idle(port: int, count: int) -> list[socket.socket]:
    idle = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        idle.append(sock)
    return idle


def idle_connections(names: Sequence[str], base_port: int, secs: int, reps: int, count: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    table = servers(base_port + 10)
    for rep in range(1, reps + 1):
        for name in names:
            port, command = table[name]
            print(f"# idle rep {rep}/{reps}: {name}", file=sys.stderr, flush=True)
            with running(command, port) as process:
                alone = loadgen(port, 10, secs)
                before = rss_kib(process.pid)
                idle = open_idle(port, count)
                try:
                    time.sleep(2)
                    after = rss_kib(process.pid)
                    crowded = loadgen(port, 10, secs)
                    # the idle connections are still open: the server kept them
                    alive = sum(1 for sock in idle if sock.fileno() != -1)
                finally:
                    for sock in idle:
                        sock.close()
            rows.append(
                {
                    "name": name,
                    "rep": rep,
                    "alone_rps": float(alone.get("rps", 0)),
                    "alone_p99_us": float(alone.get("p99_us", 0)),
                    "crowded_rps": float(crowded.get("rps", 0)),
                    "crowded_p99_us": float(crowded.get("p99_us", 0)),
                    "crowded_errors": int(crowded.get("err", -1)),
                    "rss_before_kib": before,
                    "rss_after_kib": after,
                    "idle": alive,
                }
            )
    return rows


# -- report ------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(rows: list[dict[str, str]], idle_rows: list[dict[str, object]], names: Sequence[str]) -> str:
    lines = ["### Throughput (requests/s, median; p99 latency in microseconds)", ""]
    keys = sorted({(int(r["count"]), int(r["conns"])) for r in rows})
    ours = [name for name in names if name.startswith("modbuskit-")]
    bases = [name for name in ("pymodbus", "pymodbus-tuned") if name in names]
    lines.append(
        "| FC3 registers | connections | "
        + " | ".join(names)
        + "".join(f" | {name.removeprefix('modbuskit-')} / {base}" for base in bases for name in ours)
        + " |"
    )
    lines.append("|---:|---:|" + "---:|" * (len(names) + len(ours) * len(bases)))
    medians: dict[tuple[str, int, int], float] = {}
    for count, conns in keys:
        cells = []
        for name in names:
            picked = [r for r in rows if r["label"] == name and int(r["count"]) == count and int(r["conns"]) == conns]
            rps = median([float(r["rps"]) for r in picked])
            p99 = median([float(r["p99_us"]) for r in picked])
            medians[(name, count, conns)] = rps
            cells.append(f"{rps:,.0f} (p99 {p99:,.0f})")
        ratios = [
            medians.get((name, count, conns), float("nan")) / medians.get((base, count, conns), float("nan"))
            for base in bases
            for name in ours
        ]
        lines.append(f"| {count} | {conns} | " + " | ".join([*cells, *(f"{ratio:.1f}x" for ratio in ratios)]) + " |")
    lines += ["", "### 100 connections against 10 (same server, FC3 x 10)", ""]
    lines.append("| server | rps at 10 | rps at 100 | 100 / 10 |")
    lines.append("|---|---:|---:|---:|")
    for name in names:
        ten, hundred = medians.get((name, 10, 10), float("nan")), medians.get((name, 10, 100), float("nan"))
        lines.append(f"| {name} | {ten:,.0f} | {hundred:,.0f} | {hundred / ten:.2f} |")
    if idle_rows:
        idle_count = max(int(str(row["idle"])) for row in idle_rows)
        lines += ["", f"### {idle_count} idle connections open, 10 busy (FC3 x 10)", ""]
        lines.append(
            "| server | p99 alone (us) | p99 with idle (us) | ratio | rps alone | rps with idle | errors "
            "| memory per idle connection |"
        )
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name in names:
            chosen = [row for row in idle_rows if row["name"] == name]
            if not chosen:
                continue
            alone = median([float(str(r["alone_p99_us"])) for r in chosen])
            crowded = median([float(str(r["crowded_p99_us"])) for r in chosen])
            per_connection = median(
                [
                    (int(str(r["rss_after_kib"])) - int(str(r["rss_before_kib"]))) * 1024 / max(1, int(str(r["idle"])))
                    for r in chosen
                ]
            )
            lines.append(
                f"| {name} | {alone:,.0f} | {crowded:,.0f} | {crowded / alone:.2f} "
                f"| {median([float(str(r['alone_rps'])) for r in chosen]):,.0f} "
                f"| {median([float(str(r['crowded_rps'])) for r in chosen]):,.0f} "
                f"| {sum(int(str(r['crowded_errors'])) for r in chosen)} | {per_connection / 1024:.1f} KiB |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--secs", type=int, default=5)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--idle", type=int, default=1000, help="idle connections in part 2 (0: skip it)")
    parser.add_argument("--base-port", type=int, default=25520)
    parser.add_argument(
        "--servers",
        default=(
            "libmodbus,pymodbus,pymodbus-tuned,modbuskit-asyncio,modbuskit-uvloop,modbuskit-trio,"
            "ceiling-asyncio,ceiling-uvloop,ceiling-trio,ceiling-trio-epoll"
        ),
        help="comma-separated names",
    )
    parser.add_argument("--quick", action="store_true", help="2 s runs, 1 repetition (a smoke test)")
    args = parser.parse_args()
    if args.quick:
        args.secs, args.reps = 2, 1
    names = [name for name in args.servers.split(",") if name]
    if not LOADGEN.exists() or not (OUT / "libmodbus_server").exists():
        subprocess.run(["make", "-C", str(BENCH)], check=True, timeout=300)
    if shutil.which("ss") is None:
        raise SystemExit("run_tcp_bench.sh needs ss (iproute2)")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # servers and loadgen inherit it
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    rows = throughput(names, args.base_port, args.secs, args.reps, "10 100", "fc3:0:10 fc3:0:125")
    # libmodbus' select() loop stops at FD_SETSIZE (1024); the ceilings are no servers.
    idle_names = [name for name in names if name.startswith(("pymodbus", "modbuskit-"))]
    idle_rows = idle_connections(idle_names, args.base_port, args.secs, args.reps, args.idle) if args.idle else []
    text = report(rows, idle_rows, names)
    load = os.getloadavg()
    header = (
        f"Run {started}, {os.cpu_count()} CPUs, load average {load[0]:.1f} at the end; "
        f"SECS={args.secs} REPS={args.reps}; loadgen and servers share the cores.\n"
    )
    print(header)
    print(text)
    (OUT / "server_bench.json").write_text(json.dumps({"throughput": rows, "idle": idle_rows, "header": header}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
