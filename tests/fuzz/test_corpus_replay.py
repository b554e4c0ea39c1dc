"""Replay the fuzz corpus and every crash the fuzzers found, without atheris.

Each target in ``fuzz/`` exposes ``check(data: bytes) -> None``, the same
function atheris drives, holding the target's invariants.  Here every file
of ``fuzz/corpus/<target>/`` must pass it (tolerating the bugs listed in
``fuzzsupport.OPEN_ISSUES``, as the fuzzers do), and every file of
``fuzz/crashes-found/<target>/`` must pass it once its bug is fixed; while
the bug is open the test is an expected failure, checked to fail the way the
finding says and not some other way (and a warning says when it passes).
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

FUZZ = Path(__file__).resolve().parents[2] / "fuzz"
TARGETS = sorted(path.stem.removeprefix("fuzz_") for path in FUZZ.glob("fuzz_*.py"))
CRASHES = sorted((FUZZ / "crashes-found").glob("*/*"))


def fuzz_module(name: str) -> ModuleType:
    # The targets are scripts in fuzz/ that import their siblings by name.
    if str(FUZZ) not in sys.path:
        sys.path.insert(0, str(FUZZ))
    return importlib.import_module(name)


def check_of(target: str) -> Callable[[bytes], None]:
    check: Callable[[bytes], None] = fuzz_module(f"fuzz_{target}").check
    return check


def test_every_target_has_seeds() -> None:
    assert TARGETS == [
        "ascii_server",
        "dispatch",
        "mbap_server",
        "pdu_request",
        "pdu_response",
        "rtu_client",
        "rtu_server",
    ]
    for target in TARGETS:
        assert any((FUZZ / "corpus" / target).glob("seed-*")), f"no seeds for {target}: run fuzz/make_corpus.py"


@pytest.mark.parametrize("target", TARGETS)
def test_corpus_passes(target: str) -> None:
    check = fuzz_module("fuzzsupport").tolerant(check_of(target))
    inputs = sorted((FUZZ / "corpus" / target).iterdir())
    for path in inputs:
        try:
            check(path.read_bytes())
        except Exception as error:
            raise AssertionError(f"fuzz/corpus/{target}/{path.name} fails: {error}") from error


def test_crash_files_are_named_after_findings() -> None:
    keys = {finding.key for finding in fuzz_module("fuzzsupport").FINDINGS}
    for path in CRASHES:
        assert path.parent.name in TARGETS, f"{path}: no such target"
        assert path.name.rsplit("-", 1)[0] in keys, f"{path.name}: not named after a finding of fuzzsupport.FINDINGS"


@pytest.mark.parametrize("path", CRASHES, ids=[f"{path.parent.name}/{path.name}" for path in CRASHES])
def test_found_crash(path: Path) -> None:
    support = fuzz_module("fuzzsupport")
    key = path.name.rsplit("-", 1)[0]
    finding = next(finding for finding in support.FINDINGS if finding.key == key)
    check = check_of(path.parent.name)
    data = path.read_bytes()
    if finding.fixed:
        check(data)  # a regression input like any other
        return
    try:
        check(data)
    except Exception as error:
        if support.open_issue(error) is not finding:
            raise  # it fails, but not the way the finding says
        pytest.xfail(f"open: {finding.summary}")
    warnings.warn(
        f"{path.name} passes: {key} looks fixed; mark it fixed in fuzzsupport.FINDINGS",
        stacklevel=1,
    )
