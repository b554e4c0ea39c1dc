"""Shrink a failing fuzz input and file it under ``fuzz/crashes-found/<target>/``.

    .venv/bin/python fuzz/minimize.py rtu_client fuzz/.work/artifacts/rtu_client/crash-...

Runs the target's ``check`` directly (no atheris), removes chunks and bytes
and zeroes bytes for as long as the input still fails the same way (the
same open issue of ``fuzzsupport.OPEN_ISSUES``, else the same exception type
and message shape), then saves it as ``<issue key>-<sha1 prefix>`` and
prints its hex and traceback for the report.  Files saved there stay: once
the bug is fixed they are regression inputs (tests/fuzz replays them).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import re
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from fuzzsupport import open_issue

FUZZ = Path(__file__).resolve().parent


def signature(check: Callable[[bytes], None], data: bytes) -> str | None:
    """How *data* fails: an open issue's key, or the exception's type and message shape; None if it passes."""
    try:
        check(data)
    except Exception as error:  # noqa: BLE001 - any exception is a finding here
        issue = open_issue(error)
        if issue is not None:
            return issue.key
        shape = re.sub(r"0x[0-9a-fA-F]+|[0-9a-f]{6,}|\d+", "#", str(error).splitlines()[0] if str(error) else "")
        return f"{type(error).__name__}: {shape[:80]}"
    return None


def shrink(check: Callable[[bytes], None], data: bytes, wanted: str) -> bytes:
    def fails(candidate: bytes) -> bool:
        return signature(check, candidate) == wanted

    changed = True
    while changed:
        changed = False
        size = max(len(data) // 2, 1)
        while size >= 1:
            start = 0
            while start < len(data):
                candidate = data[:start] + data[start + size :]
                if fails(candidate):
                    data, changed = candidate, True
                else:
                    start += size
            size //= 2
        for index in range(len(data)):
            if data[index] != 0:
                candidate = data[:index] + b"\x00" + data[index + 1 :]
                if fails(candidate):
                    data, changed = candidate, True
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", help="e.g. rtu_client")
    parser.add_argument("input", type=Path)
    parser.add_argument("--key", help="name to file it under (default: the open issue it shows, or 'new')")
    parser.add_argument("--dry-run", action="store_true", help="print, do not save")
    options = parser.parse_args(argv)
    check: Callable[[bytes], None] = importlib.import_module(f"fuzz_{options.target}").check
    data = options.input.read_bytes()
    wanted = signature(check, data)
    if wanted is None:
        print(f"{options.input} passes {options.target}: nothing to minimize", file=sys.stderr)
        return 1
    small = shrink(check, data, wanted)
    key = options.key or (wanted if re.fullmatch(r"[a-z0-9-]+", wanted) else "new")
    print(f"{options.target}: {len(data)} -> {len(small)} bytes, fails as {wanted}")
    print(f"hex: {small.hex()}")
    try:
        check(small)
    except Exception:  # noqa: BLE001 - printed for the report
        traceback.print_exc()
    if not options.dry_run:
        directory = FUZZ / "crashes-found" / options.target
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{key}-{hashlib.sha1(small).hexdigest()[:12]}"
        path.write_bytes(small)
        print(f"saved {path.relative_to(FUZZ.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
