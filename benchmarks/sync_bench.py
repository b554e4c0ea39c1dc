#!/usr/bin/env python3
"""modbus_sync beside modbus_anyio (asyncio) and pymodbus 3.16, in one run.

usage: python benchmarks/sync_bench.py [--rounds 3] [--secs 4] [--out benchmarks/RESULTS-sync.md]

Uses the reference instruments in ../shared/bench: ``run_tcp_bench.sh``
starts each server, checks it owns its port, drives it with ``loadgen``
and stops it.  The servers take turns: each round runs pymodbus, then
modbus_anyio on asyncio, then modbus_sync, once per workload and
connection count, so that a burst of load from elsewhere on this shared
2-core machine does not hit one server's every run.  Medians over rounds,
and ratios to pymodbus, go to the output file (markdown).

Then, for modbus_sync alone: latency with 10 busy connections while 1000
idle ones are open, against 10 alone, and the server's memory per idle
connection (resident set size before and after opening them).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(os.environ.get("BENCH_DIR", ROOT.parent / "shared" / "bench"))
LOADGEN = Path(os.environ.get("LOADGEN", "/tmp/modbus-bench/loadgen"))
PYTHON = sys.executable

SERVERS = {
    "pymodbus": (25512, [PYTHON, str(BENCH / "pymodbus_server.py"), "--port", "{port}"]),
    "anyio-asyncio": (25513, [PYTHON, str(ROOT / "benchmarks" / "tcp_server.py"), "--port", "{port}"]),
    "sync": (25514, [PYTHON, str(ROOT / "benchmarks" / "sync_server.py"), "--port", "{port}"]),
}
WORKLOADS = "fc3:0:10 fc3:0:125 fc16:0:100"
CONNECTIONS = "1 10 100"


def run_round(name: str, secs: int, outdir: Path) -> Path:
    port, command = SERVERS[name]
    environment = {
        **os.environ,
        "SECS": str(secs),
        "WARMUP": "1",
        "REPS": "1",
        "CONNS": CONNECTIONS,
        "WORKLOADS": WORKLOADS,
        "OUTDIR": str(outdir),
        "PYTHONPATH": str(ROOT),
    }
    arguments = [part.format(port=port) for part in command]
    subprocess.run(
        ["bash", str(BENCH / "run_tcp_bench.sh"), name, str(port), "--", *arguments],
        env=environment,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=60 * 20,
    )
    return outdir / f"{name}.raw"


def parse_raw(path: Path) -> list[dict[str, str]]:
    rows = []
    for line in path.read_text().splitlines():
        rows.append(dict(token.split("=", 1) for token in line.split() if "=" in token))
    return rows


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def comparison(results: dict[str, list[dict[str, str]]], rounds: int, secs: int) -> str:
    keys = sorted(
        {(int(row["fc"]), int(row["count"]), int(row["conns"])) for rows in results.values() for row in rows},
        key=lambda key: ({3: 0, 16: 1}.get(key[0], 9), key[1], key[2]),
    )

    def pick(name: str, key: tuple[int, int, int], field: str) -> list[float]:
        return [
            float(row[field])
            for row in results[name]
            if (int(row["fc"]), int(row["count"]), int(row["conns"])) == key and field in row
        ]

    lines = [
        f"Medians of {rounds} rounds of {secs} s each (servers taking turns within each round).",
        "",
        (
            "| fc | count | conns | pymodbus rps | anyio (asyncio) rps | sync rps | sync / pymodbus | sync / anyio "
            "| sync p50 us | sync p99 us | sync server CPU % |"
        ),
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key in keys:
        pym = median(pick("pymodbus", key, "rps"))
        aio = median(pick("anyio-asyncio", key, "rps"))
        syn = median(pick("sync", key, "rps"))
        errors = sum(int(float(value)) for value in pick("sync", key, "err"))
        p50 = median(pick("sync", key, "p50_us"))
        p99 = median(pick("sync", key, "p99_us"))
        cpu = median(pick("sync", key, "server_cpu_pct"))
        lines.append(
            f"| {key[0]} | {key[1]} | {key[2]} | {pym:.0f} | {aio:.0f} | {syn:.0f} | {syn / pym:.2f}x "
            f"| {syn / aio:.2f}x | {p50:.0f} | {p99:.0f} | {cpu:.0f} |" + (f" errors: {errors}" if errors else "")
        )
    return "\n".join(lines)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


@contextlib.contextmanager
def sync_server(port: int) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [PYTHON, str(ROOT / "benchmarks" / "sync_server.py"), "--port", str(port), "--max-connections", "4096"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the sync server did not start")
            time.sleep(0.1)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def loadgen(port: int, connections: int, secs: int) -> dict[str, str]:
    completed = subprocess.run(
        [str(LOADGEN), "--warmup", "1", "127.0.0.1", str(port), str(connections), str(secs), "fc3", "0", "10"],
        capture_output=True,
        text=True,
        timeout=secs + 60,
        check=True,
    )
    return dict(token.split("=", 1) for token in completed.stdout.split() if "=" in token)


def idle_connections(port: int, rounds: int, secs: int) -> str:
    lines = []
    with sync_server(port) as process:
        alone = [loadgen(port, 10, secs) for _ in range(rounds)]
        time.sleep(0.5)
        before = rss_kib(process.pid)
        idle = []
        for _ in range(1000):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            # One request each, so that every connection is accepted and has its session.
            sock.sendall(b"\x00\x01\x00\x00\x00\x06\x01\x03\x00\x00\x00\x01")
            idle.append(sock)
        for sock in idle:
            sock.recv(64)
        time.sleep(0.5)
        after = rss_kib(process.pid)
        crowded = [loadgen(port, 10, secs) for _ in range(rounds)]
        for sock in idle:
            sock.close()

    def summary(runs: list[dict[str, str]]) -> str:
        rps = median([float(run["rps"]) for run in runs])
        p50 = median([float(run["p50_us"]) for run in runs])
        p99 = median([float(run["p99_us"]) for run in runs])
        return f"{rps:.0f} rps, p50 {p50:.0f} us, p99 {p99:.0f} us"

    p99_alone = median([float(run["p99_us"]) for run in alone])
    p99_crowded = median([float(run["p99_us"]) for run in crowded])
    lines.append(f"- 10 busy connections alone: {summary(alone)}")
    lines.append(f"- 10 busy connections with 1000 idle ones open: {summary(crowded)}")
    lines.append(f"- p99 with 1000 idle / p99 alone: {p99_crowded / p99_alone:.2f}x")
    lines.append(
        f"- server memory: {before} KiB resident before, {after} KiB with 1000 idle connections: "
        f"{(after - before) / 1000:.1f} KiB per idle connection"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--secs", type=int, default=4)
    parser.add_argument("--out", type=Path, default=None, help="write the markdown here (default: print it)")
    args = parser.parse_args()
    if not LOADGEN.exists():
        subprocess.run(["make", "-C", str(BENCH)], check=True, stdout=subprocess.DEVNULL)
    workdir = Path("/tmp/modbus-bench/sync-compare")
    shutil.rmtree(workdir, ignore_errors=True)
    results: dict[str, list[dict[str, str]]] = {name: [] for name in SERVERS}
    for round_index in range(args.rounds):
        for name in SERVERS:
            outdir = workdir / f"round{round_index}"
            outdir.mkdir(parents=True, exist_ok=True)
            print(f"round {round_index + 1}/{args.rounds}: {name}", file=sys.stderr, flush=True)
            results[name] += parse_raw(run_round(name, args.secs, outdir))
    load = Path("/proc/loadavg").read_text().split()[:3]
    text = "\n\n".join(
        [
            comparison(results, args.rounds, args.secs),
            "modbus_sync with 1000 idle connections (FC3 x 10):",
            idle_connections(SERVERS["sync"][0], args.rounds, args.secs),
            f"Load average at the end: {' '.join(load)} (2 cores, shared with other work).",
        ]
    )
    if args.out is not None:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
