"""Copy modbus_core into another project (vendoring), and check a vendored copy later.

    python examples/vendor_modbus_core.py myproject/_vendor            # copy (or update) it there
    python examples/vendor_modbus_core.py myproject/_vendor --check    # exit 1 if it differs from upstream

modbus_core has no dependencies and imports itself only relatively, so the
package directory can live under any name in another code base: this copies
its ``.py`` files and ``py.typed`` to ``DEST/modbus_core/``, puts the MIT
licence beside them (the licence asks for that: keep the copyright notice
with every copy), and writes ``UPSTREAM.json`` with the version and a
SHA-256 of each file.  ``--check`` compares the copy with the modbus_core
installed now (run it in CI after upgrading modbuskit: a difference means
the copy is out of date, or someone edited it in place).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import shutil
import sys
from pathlib import Path

import modbus_core

SOURCE = Path(modbus_core.__file__).resolve().parent
STAMP = "UPSTREAM.json"
LICENSE = "LICENSE"


def upstream_files() -> list[Path]:
    """What a vendored copy holds: the modules and the PEP 561 marker, nothing generated."""
    return sorted([*SOURCE.glob("*.py"), SOURCE / "py.typed"])


def licence_text() -> str:
    """The licence of the installed distribution (it must travel with the code)."""
    distribution = importlib.metadata.distribution("modbuskit")
    for name in ("licenses/LICENSE", "LICENSE"):
        text = distribution.read_text(name)
        if text:
            return text
    raise SystemExit("cannot find modbuskit's LICENSE in its installed metadata")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def vendor(dest: Path) -> Path:
    target = dest / "modbus_core"
    if target.exists():
        shutil.rmtree(target)  # files removed upstream must go too
    target.mkdir(parents=True)
    for path in upstream_files():
        shutil.copy2(path, target / path.name)
    (target / LICENSE).write_text(licence_text(), encoding="utf-8")
    stamp = {
        "package": "modbus_core",
        "distribution": "modbuskit",
        "version": modbus_core.__version__,
        "licence": "MIT",
        "files": {path.name: digest(path) for path in upstream_files()},
    }
    (target / STAMP).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
    return target


def check(dest: Path) -> list[str]:
    """The differences between the copy in *dest* and the installed modbus_core (empty: up to date)."""
    target = dest / "modbus_core"
    problems: list[str] = []
    try:
        stamp = json.loads((target / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return [f"{target / STAMP}: {error}"]
    if stamp.get("version") != modbus_core.__version__:
        problems.append(f"vendored version {stamp.get('version')}, installed {modbus_core.__version__}")
    recorded: dict[str, str] = stamp.get("files", {})
    upstream = {path.name: digest(path) for path in upstream_files()}
    for name in sorted(set(recorded) | set(upstream)):
        copy = target / name
        if name not in upstream:
            problems.append(f"{name}: no longer in modbus_core")
        elif not copy.exists():
            problems.append(f"{name}: missing from the copy")
        elif digest(copy) != upstream[name]:
            edited = recorded.get(name) != digest(copy)
            problems.append(f"{name}: {'edited in place' if edited else 'changed upstream'}")
    if not (target / LICENSE).exists():
        problems.append(f"{LICENSE}: missing (the MIT licence must accompany the copy)")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description="Vendor modbus_core into another project.")
    parser.add_argument("dest", type=Path, help="the directory that will hold modbus_core/ (e.g. myproject/_vendor)")
    parser.add_argument("--check", action="store_true", help="compare the copy with upstream instead of copying")
    args = parser.parse_args()
    if args.check:
        problems = check(args.dest)
        for problem in problems:
            print(f"out of date: {problem}")
        if problems:
            return 1
        print(f"{args.dest / 'modbus_core'} matches modbus_core {modbus_core.__version__}")
        return 0
    target = vendor(args.dest)
    print(f"vendored modbus_core {modbus_core.__version__} into {target} ({len(upstream_files())} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
