"""Settings for the whole suite.

Tests that drive outside programs (socat, mbpoll, tshark, chromium) skip
themselves when a developer's machine lacks one.  The README's test command
installs them all and sets ``MODBUSKIT_NO_SKIPS=1``: there, a skipped test
means a part of the suite silently did not run, and counts as a failure.

A suite started from a background job (``cmd &`` in a script) inherits SIGINT
ignored, and so would every program it starts and then stops with SIGINT
(the examples, the command-line tools): the suite restores it first.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Generator

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and os.environ.get("MODBUSKIT_NO_SKIPS") == "1" and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in a run that must run every test (MODBUSKIT_NO_SKIPS=1): {report.longrepr}"
