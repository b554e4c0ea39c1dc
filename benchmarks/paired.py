#!/usr/bin/env python3
"""Paired comparisons: two measurements seconds apart, many times, and the ratio within each pair.

usage (from the project root, after ``make -C ../shared/bench``):

    .venv/bin/python benchmarks/paired.py connections [--pairs 8] [--reps 2] [--servers a,b] [--pin]
    .venv/bin/python benchmarks/paired.py servers [--rounds 16] [--servers a,b] [--client loadgen] [--pin]

This machine's speed drifts by 20-50% over minutes, which moves a ratio of
medians taken minutes apart (as ``run_server_bench.py``'s) by as much as
the effects looked for.  Here every ratio is taken within a pair of runs a
few seconds apart, and the table gives the median of those ratios with its
quartiles.

``connections``: one server process at a time (``--reps`` processes each),
``--pairs`` pairs of FC3 x 10 runs, 10 connections then 100 or the reverse,
with each client:

* ``loadgen``: ``../shared/bench/loadgen``, a thread per connection, as in
  ``run_server_bench.py``;
* ``evloadgen``: ``benchmarks/evloadgen.c``, one thread driving every
  connection through epoll, whose cost per request barely depends on how
  many connections it drives.

``servers``: the base server (``--base``, pymodbus unless told) and the
chosen servers all listening at once (an idle server waits in its poll);
in each of ``--rounds`` rounds, for FC3 x 10 and FC3 x 125 at ``--conns``
connections, every server in turn (the order rotating from round to
round), each paired with a run of the base server just before or just
after it (by turns).

With ``--pin``, every server runs on CPU 1 and the client on CPU 0
(``taskset``, the ``PIN=1:0`` knob of ``../shared/bench/run_tcp_bench.sh``):
a server no longer shares its core with the client, so the figure is the
server's own limit, or the client's when the client is the slower.

Both print Markdown tables and write the raw numbers to
``/tmp/modbus-bench/paired-<comparison>.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from run_server_bench import LOADGEN, OUT, median, parse_line, running, servers

ROOT = Path(__file__).resolve().parent.parent
EVLOADGEN = OUT / "evloadgen"
CLIENTS = ("loadgen", "evloadgen")
CONNECTIONS_SERVERS = "pymodbus,modbuskit-asyncio,modbuskit-uvloop,modbuskit-trio,ceiling-asyncio,libmodbus"
SERVERS_SERVERS = "modbuskit-asyncio,modbuskit-uvloop,modbuskit-trio,libmodbus"
DEFAULT_BASE = "pymodbus"


def build_evloadgen() -> None:
    source = ROOT / "benchmarks" / "evloadgen.c"
    if EVLOADGEN.exists() and EVLOADGEN.stat().st_mtime >= source.stat().st_mtime:
        return
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise SystemExit("paired.py: no C compiler (gcc) to build evloadgen")
    OUT.mkdir(parents=True, exist_ok=True)
    subprocess.run([compiler, "-O2", "-Wall", "-Wextra", "-o", str(EVLOADGEN), str(source)], check=True)


def measure(client: str, port: int, conns: int, registers: int, secs: int, pin: Sequence[str] = ()) -> dict[str, float]:
    """One closed-loop FC3 run: requests/s and the client's CPU time per request (us)."""
    if client == "loadgen":
        command = [str(LOADGEN), "--warmup", "1", "127.0.0.1", str(port), str(conns), str(secs), "fc3", "0"]
    else:
        command = [str(EVLOADGEN), "--warmup", "1", "127.0.0.1", str(port), str(conns), str(secs)]
    result = subprocess.run(
        [*pin, *command, str(registers)], capture_output=True, text=True, timeout=secs + 60, check=False
    )
    row = parse_line(result.stdout.strip())
    if result.returncode != 0 or "rps" not in row or int(row.get("err", "1")) != 0:
        raise SystemExit(f"{client} failed on port {port}: {result.stdout}{result.stderr}")
    rps = float(row["rps"])
    # client_cpu_pct: of one core, over the measured seconds
    return {"rps": rps, "client_us": float(row["client_cpu_pct"]) / 100 / rps * 1e6}


def paired_ratio(rows: Sequence[dict[str, object]], top: str, bottom: str) -> str:
    """'median (first quartile-third quartile)' of *top* / *bottom* within each row."""
    values = [float(str(row[top])) / float(str(row[bottom])) for row in rows]
    if len(values) < 2:
        return f"{values[0]:.2f}" if values else "-"
    low, middle, high = statistics.quantiles(values, n=4)
    return f"{middle:.2f} ({low:.2f}-{high:.2f})"


def pick(rows: Sequence[dict[str, object]], key: str) -> float:
    return median([float(str(row[key])) for row in rows])


# -- 10 connections against 100 ------------------------------------------------------------


def pins(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The command prefixes that put the server and the client on a core each (none without --pin)."""
    if not args.pin:
        return [], []
    if shutil.which("taskset") is None:
        raise SystemExit("paired.py: --pin needs taskset (util-linux)")
    return ["taskset", "-c", "1"], ["taskset", "-c", "0"]


def connections(args: argparse.Namespace, names: list[str], table: dict[str, tuple[int, list[str]]]) -> str:
    server_pin, client_pin = pins(args)
    rows: list[dict[str, object]] = []
    for rep in range(1, args.reps + 1):
        for name in names:
            port, command = table[name]
            print(f"# rep {rep}/{args.reps}: {name}", file=sys.stderr, flush=True)
            with running([*server_pin, *command], port):
                for pair in range(args.pairs):
                    for client in CLIENTS:
                        row: dict[str, object] = {"name": name, "rep": rep, "pair": pair, "client": client}
                        # Alternate which count runs first: neither always meets a warmer server.
                        for conns in (10, 100) if pair % 2 == 0 else (100, 10):
                            measured = measure(client, port, conns, 10, args.secs, client_pin)
                            row[f"rps_{conns}"] = measured["rps"]
                            row[f"client_us_{conns}"] = measured["client_us"]
                        rows.append(row)
    (OUT / "paired-connections.json").write_text(json.dumps(rows, indent=1))
    lines = [
        (
            "| server | client | rps at 10 | rps at 100 | 100 / 10 in each pair: median (quartiles) | pairs"
            " | client CPU us/request at 10 | at 100 |"
        ),
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        for client in CLIENTS:
            chosen = [row for row in rows if row["name"] == name and row["client"] == client]
            lines.append(
                f"| {name} | {client} | {pick(chosen, 'rps_10'):,.0f} | {pick(chosen, 'rps_100'):,.0f} "
                f"| {paired_ratio(chosen, 'rps_100', 'rps_10')} | {len(chosen)} "
                f"| {pick(chosen, 'client_us_10'):.1f} | {pick(chosen, 'client_us_100'):.1f} |"
            )
    return "\n".join(lines)


# -- every server against the base ----------------------------------------------------------


def against_base(args: argparse.Namespace, names: list[str], table: dict[str, tuple[int, list[str]]]) -> str:
    base_name = args.base
    server_pin, client_pin = pins(args)
    rows: list[dict[str, object]] = []
    with ExitStack() as stack:
        for name in [base_name, *names]:
            port, command = table[name]
            stack.enter_context(running([*server_pin, *command], port))
        for round_ in range(args.rounds):
            print(f"# round {round_ + 1}/{args.rounds}", file=sys.stderr, flush=True)
            for registers in (10, 125):
                shift = round_ % len(names)
                for name in names[shift:] + names[:shift]:
                    # the base next to each server, before it or after it by turns
                    pair = (base_name, name) if round_ % 2 == 0 else (name, base_name)
                    rps = {
                        which: measure(args.client, table[which][0], args.conns, registers, args.secs, client_pin)
                        for which in pair
                    }
                    row = {"round": round_, "registers": registers, "name": name}
                    rows.append({**row, "rps": rps[name]["rps"], "base": rps[base_name]["rps"]})
    (OUT / "paired-servers.json").write_text(json.dumps(rows, indent=1))
    lines = [
        (
            f"| FC3 registers | server | rps | {base_name} rps in its pairs | server / {base_name}: median (quartiles)"
            " | pairs |"
        ),
        "|---:|---|---:|---:|---:|---:|",
    ]
    for registers in (10, 125):
        for name in names:
            chosen = [row for row in rows if row["name"] == name and row["registers"] == registers]
            lines.append(
                f"| {registers} | {name} | {pick(chosen, 'rps'):,.0f} | {pick(chosen, 'base'):,.0f} "
                f"| {paired_ratio(chosen, 'rps', 'base')} | {len(chosen)} |"
            )
    return "\n".join(lines)


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="comparison", required=True)
    by_connections = commands.add_parser("connections", help="10 connections against 100, with both clients")
    by_connections.add_argument("--servers", default=CONNECTIONS_SERVERS, help="comma-separated")
    by_connections.add_argument("--reps", type=positive, default=2, help="server processes, one after another")
    by_connections.add_argument("--pairs", type=positive, default=8, help="pairs per process and client")
    by_server = commands.add_parser("servers", help="each server against a base server, in pairs")
    by_server.add_argument("--base", default=DEFAULT_BASE, help=f"the server each is compared with ({DEFAULT_BASE})")
    by_server.add_argument("--servers", default=SERVERS_SERVERS, help="comma-separated")
    by_server.add_argument("--rounds", type=positive, default=16)
    by_server.add_argument("--conns", type=positive, default=10)
    by_server.add_argument("--client", choices=CLIENTS, default="loadgen")
    for command in (by_connections, by_server):
        command.add_argument("--secs", type=positive, default=2, help="seconds measured a run (after 1 s of warm-up)")
        command.add_argument("--base-port", type=int, default=25560)
        command.add_argument(
            "--pin", action="store_true", help="servers on CPU 1, client on CPU 0 (taskset): a core each"
        )
    args = parser.parse_args()
    table = servers(args.base_port)
    names = [name.strip() for name in args.servers.split(",") if name.strip()]
    unknown = [name for name in [*names, getattr(args, "base", DEFAULT_BASE)] if name not in table]
    if unknown or not names:
        parser.error(f"unknown server(s): {', '.join(unknown)}; known: {', '.join(table)}")
    if not LOADGEN.exists():
        raise SystemExit(f"paired.py: {LOADGEN} is missing: run make -C ../shared/bench")
    build_evloadgen()
    if args.comparison == "connections":
        print(connections(args, names, table))
    else:
        others = [name for name in names if name != args.base]
        if not others:
            parser.error("servers: name a server other than the base")
        print(against_base(args, others, table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
