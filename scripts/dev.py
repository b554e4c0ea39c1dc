#!/usr/bin/env python3
"""Set up and run modbuskit from a fresh checkout, with nothing but Python.

    python3 scripts/dev.py sim [ARGS...]   the simulator (default plant unless ARGS say otherwise)
    python3 scripts/dev.py test            the whole test suite, with every check CI runs
    python3 scripts/dev.py serve [ARGS...] the quick server (`modbuskit serve`)

Each command creates ``.venv`` beside this checkout when it is missing,
installs the project into it (again only when pyproject.toml changed), and
for ``test`` installs the system packages the tests drive (socat, mbpoll,
chromium, tshark) with apt-get when they are missing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")

# Debian packages the tests use, and the command each provides.
SYSTEM_PACKAGES = {"socat": "socat", "mbpoll": "mbpoll", "chromium": "chromium", "tshark": "tshark"}


def say(message: str) -> None:
    print(f"[dev] {message}", file=sys.stderr, flush=True)


def run(*command: str | Path, check: bool = True, **options: object) -> int:
    say(" ".join(str(part) for part in command))
    completed = subprocess.run([str(part) for part in command], cwd=ROOT, check=False, **options)  # type: ignore[call-overload]
    if check and completed.returncode != 0:
        say(f"failed with exit code {completed.returncode}")
        sys.exit(completed.returncode)
    return int(completed.returncode)


def ensure_venv(extras: str) -> None:
    """Create .venv and install the project with *extras*, when needed."""
    if not PYTHON.exists():
        say(f"creating {VENV}")
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    stamp = VENV / f".installed-{extras or 'base'}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    target = f".[{extras}]" if extras else "."
    run(PYTHON, "-m", "pip", "install", "--quiet", "--editable", target)
    stamp.write_text(digest)


def ensure_system_packages() -> None:
    """Install the Debian packages the tests drive, when missing."""
    missing = [package for package, command in SYSTEM_PACKAGES.items() if shutil.which(command) is None]
    if not missing:
        return
    apt = shutil.which("apt-get")
    if apt is None:
        say(f"missing {', '.join(missing)} and no apt-get to install them: install them by hand")
        sys.exit(3)
    sudo: list[str] = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(*sudo, apt, "update", "-qq", env=env)
    run(*sudo, apt, "install", "-y", "-qq", "--no-install-recommends", *missing, env=env)


def test() -> int:
    ensure_system_packages()
    ensure_venv("test,docs,fuzz")
    os.environ.setdefault("PYTHONHASHSEED", "0")
    os.environ["MODBUSKIT_NO_SKIPS"] = "1"  # every tool is installed: a skip would hide a part of the suite
    steps: list[tuple[str, ...]] = [
        (str(BIN / "ruff"), "check", "."),
        (str(BIN / "ruff"), "format", "--check", "."),
        (str(BIN / "mypy"),),
        # The core's full branch coverage must come from its own public-API tests.
        (
            str(PYTHON),
            "-m",
            "pytest",
            "tests/core",
            "-q",
            "-p",
            "no:cacheprovider",
            "--cov=modbus_core",
            "--cov-branch",
            "--cov-report=term-missing:skip-covered",
            "--cov-fail-under=100",
        ),
        (str(PYTHON), "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider", "--ignore=tests/core"),
        (str(BIN / "sphinx-build"), "-W", "--keep-going", "-q", "-b", "html", "docs", "docs/_build/html"),
    ]
    for step in steps:
        run(*step)
    say("all checks passed")
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("sim", "serve", "test"):
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "test":
        return test()
    ensure_venv("")
    modbuskit = BIN / "modbuskit"
    os.execv(modbuskit, [str(modbuskit), command, *rest])
    return 0  # pragma: no cover - execv does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
