"""Run every fuzz target for a bounded time and report executions and crashes.

    .venv/bin/python fuzz/run_all.py --seconds 600            # all targets, 10 minutes each
    .venv/bin/python fuzz/run_all.py --seconds 60 --jobs 2 rtu_server ascii_server

Each target fuzzes with the committed seeds (``fuzz/corpus/<target>/``,
never written to) behind a work corpus (``fuzz/.work/corpus/<target>/``,
where libFuzzer keeps what it finds, and which later runs start from).
Crashes and timeouts land in ``fuzz/.work/artifacts/<target>/``; the full
libFuzzer output in ``fuzz/.work/logs/<target>.log``; a summary of the run
in ``fuzz/.work/summary.json``.  The exit status is 1 when a target crashed.

By default the fuzzers load modbus_core as committed at HEAD (exported to
``fuzz/.work/core/<commit>/``), so that a half-edited checkout neither
breaks a run nor makes its findings unreproducible; ``--revision`` picks
another commit, ``--working-tree`` the checkout as it is.

Inputs that show an issue listed in ``fuzzsupport.OPEN_ISSUES`` (reported,
not fixed yet) are stepped over, so a run only stops for new bugs.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import fcntl
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
WORK = FUZZ / ".work"
TARGETS = sorted(path.stem.removeprefix("fuzz_") for path in FUZZ.glob("fuzz_*.py"))


@dataclasses.dataclass
class Result:
    target: str
    seconds: float
    executions: int | None
    exec_per_second: int | None
    coverage: int | None
    features: int | None
    corpus: int | None
    crashed: bool
    artifacts: list[str]
    log: str


def last_int(pattern: str, text: str) -> int | None:
    found = re.findall(pattern, text)
    return int(found[-1]) if found else None


def run_target(target: str, seconds: int, nice: int, timeout: int, core: Path | None) -> Result:
    corpus = WORK / "corpus" / target
    artifacts = WORK / "artifacts" / target
    logs = WORK / "logs"
    for directory in (corpus, artifacts, logs):
        directory.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{target}.log"
    before = set(artifacts.iterdir())
    command = [
        "nice",
        "-n",
        str(nice),
        sys.executable,
        str(FUZZ / f"fuzz_{target}.py"),
        str(corpus),
        str(FUZZ / "corpus" / target),
        f"-max_total_time={seconds}",
        f"-timeout={timeout}",
        "-rss_limit_mb=2048",
        "-print_final_stats=1",
        f"-artifact_prefix={artifacts}/",
    ]
    environment = dict(os.environ)
    if core is not None:
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, (str(core), environment.get("PYTHONPATH"))))
    started = time.monotonic()
    with log_path.open("wb") as log:
        # libFuzzer stops on its own after max_total_time; the margin covers
        # loading the corpus and the final merge of its statistics.
        completed = subprocess.run(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=environment, timeout=seconds + 600
        )
    elapsed = time.monotonic() - started
    text = log_path.read_text(errors="replace")
    new_artifacts = sorted(str(path.relative_to(ROOT)) for path in set(artifacts.iterdir()) - before)
    return Result(
        target=target,
        seconds=round(elapsed, 1),
        executions=last_int(r"stat::number_of_executed_units: (\d+)", text),
        exec_per_second=last_int(r"stat::average_exec_per_sec: +(\d+)", text),
        coverage=last_int(r"cov: (\d+)", text),
        features=last_int(r"ft: (\d+)", text),
        corpus=last_int(r"corp: (\d+)/", text),
        crashed=completed.returncode != 0 or bool(new_artifacts),
        artifacts=new_artifacts,
        log=str(log_path.relative_to(ROOT)),
    )


def git(*arguments: str) -> str:
    completed = subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    return completed.stdout.strip()


def export_core(revision: str) -> tuple[Path, str]:
    """modbus_core as committed in *revision*, unpacked under .work: the checkout may be mid-edit."""
    tree = git("rev-parse", f"{revision}:modbus_core")
    last_change = git("log", "-1", "--format=%h", revision, "--", "modbus_core")
    destination = WORK / "core" / tree[:12]
    if not (destination / "modbus_core" / "__init__.py").exists():
        destination.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", tree], cwd=ROOT, capture_output=True, timeout=60, check=True).stdout
        package = destination / "modbus_core"
        package.mkdir(exist_ok=True)
        subprocess.run(["tar", "-x", "-C", str(package)], input=archive, timeout=60, check=True)
    return destination, f"{last_change} (as committed)"


def working_tree_revision() -> str:
    commit = git("log", "-1", "--format=%h", "--", "modbus_core")
    dirty = git("status", "--porcelain", "--", "modbus_core")
    return f"{commit}{' + uncommitted changes' if dirty else ''} (working tree)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", metavar="TARGET", help="default: all of " + ", ".join(TARGETS))
    parser.add_argument("--seconds", type=int, default=60, help="fuzzing time per target (default 60)")
    parser.add_argument("--jobs", type=int, default=1, choices=(1, 2), help="targets run at once (default 1)")
    parser.add_argument("--nice", type=int, default=10, help="niceness of the fuzzers (default 10)")
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may take (default 10)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--revision", default="HEAD", help="fuzz modbus_core as committed in this git revision (default HEAD)"
    )
    source.add_argument(
        "--working-tree", action="store_true", help="fuzz the modbus_core of the checkout, uncommitted edits included"
    )
    options = parser.parse_args(argv)
    unknown = sorted(set(options.targets) - set(TARGETS))
    if unknown:
        parser.error(f"unknown targets {', '.join(unknown)}; the targets are {', '.join(TARGETS)}")
    targets = options.targets or TARGETS
    WORK.mkdir(exist_ok=True)
    lock = (WORK / "run_all.lock").open("w")
    try:
        # One run at a time: the machine is shared, and two runs would share work corpora.
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        parser.error("another run_all.py is running (fuzz/.work/run_all.lock)")
    core: Path | None = None
    if options.working_tree:
        revision = working_tree_revision()
    else:
        core, revision = export_core(options.revision)
    print(f"fuzzing modbus_core {revision}: {', '.join(targets)}, {options.seconds} s each", flush=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=options.jobs) as pool:
        futures = [
            pool.submit(run_target, target, options.seconds, options.nice, options.timeout, core) for target in targets
        ]
        results = []
        for future in concurrent.futures.as_completed(futures):
            result = future.result()
            results.append(result)
            status = "CRASH " + " ".join(result.artifacts) if result.crashed else "ok"
            print(
                f"{result.target:14} {result.seconds:7.0f} s {result.executions or 0:>10} execs "
                f"{result.exec_per_second or 0:>6}/s cov {result.coverage} ft {result.features} "
                f"corpus {result.corpus}  {status}",
                flush=True,
            )
    summary = {
        "modbus_core": revision,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "pid": os.getpid(),
        "results": [dataclasses.asdict(result) for result in sorted(results, key=lambda result: result.target)],
    }
    WORK.mkdir(exist_ok=True)
    (WORK / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 1 if any(result.crashed for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
