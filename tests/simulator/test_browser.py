"""The web page in a real headless Chromium (Debian's), driven by Playwright.

One browser and one simulator (the built-in plant, on free ports, in a
background thread) serve the whole module; each test opens its own page.
Screenshots for the documentation go to docs/_static/screenshots/ when
MODBUSKIT_SCREENSHOTS=1 is set.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio.from_thread
import pytest

from modbus_anyio.simulator import Simulator, default_config

from .sim_support import modbus_client

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "_static" / "screenshots"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="needs Debian's chromium"),
]


@pytest.fixture(scope="module")
def simulator() -> Iterator[Simulator]:
    config = default_config().with_overrides(http_port=0, modbus_port=0)
    with anyio.from_thread.start_blocking_portal("asyncio") as portal:
        instance = Simulator(config)
        with portal.wrap_async_context_manager(instance):
            yield instance


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_sync.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
            ],
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, simulator: Simulator) -> Iterator[Any]:
    context = browser.new_context(base_url=simulator.http_url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # The browser also reports answers 4xx as console errors: those are the tests' own bad inputs.
    page.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if message.type == "error" and not message.text.startswith("Failed to load resource")
            else None
        ),
    )
    try:
        yield page
        assert errors == []
    finally:
        context.close()


def modbus(simulator: Simulator) -> tuple[str, int]:
    host, _, port = simulator.modbus_addresses["plant"][0].rpartition(":")
    return host, int(port)


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """docs/_static/screenshots/ with MODBUSKIT_SCREENSHOTS=1 (to refresh the documentation's
    pictures), else a temporary directory: a test run leaves the checkout as it was."""
    if os.environ.get("MODBUSKIT_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS
    return tmp_path_factory.mktemp("screenshots")


def screenshot(page: Any, directory: Path, name: str) -> None:
    page.screenshot(path=str(directory / f"{name}.png"), full_page=True)
    assert (directory / f"{name}.png").stat().st_size > 10_000


def test_editing_a_register_on_the_page_reaches_a_modbus_client(page: Any, simulator: Simulator) -> None:
    expect = playwright_sync.expect
    page.goto("/registers?device=energy-meter")
    field = page.get_by_label("Value of energy-meter/ct_ratio")
    expect(field).to_have_value("100")
    field.fill("250")
    field.press("Enter")
    expect(page.locator("#message")).to_have_text("energy-meter/ct_ratio set to 250")
    with modbus_client(modbus(simulator)) as client:
        assert client.read_holding_registers(0, count=1, device_id=1).registers == [250]
    # A value that does not fit is refused with the server's reason, and nothing changes.
    field.fill("70000")
    field.press("Enter")
    expect(page.locator("#message")).to_contain_text("does not fit")
    expect(field).to_have_attribute("aria-invalid", "true")
    assert simulator.plant.point("energy-meter/ct_ratio").value == 250
    # Coils are checkboxes.
    page.goto("/registers?device=water-tank&table=coils")
    valve = page.get_by_label("Value of water-tank/outlet_valve")
    expect(valve).not_to_be_checked()
    valve.check()
    expect(page.locator("#message")).to_have_text("water-tank/outlet_valve set to true")
    with modbus_client(modbus(simulator)) as client:
        assert client.read_coils(0, count=2, device_id=2).bits[:2] == [True, True]
    valve.uncheck()
    expect(page.locator("#message")).to_have_text("water-tank/outlet_valve set to false")


def test_a_modbus_write_shows_on_the_page_without_reloading(page: Any, simulator: Simulator, screenshots: Path) -> None:
    expect = playwright_sync.expect
    page.goto("/registers?device=water-tank")
    field = page.get_by_label("Value of water-tank/high_setpoint")
    expect(field).to_have_value("90")
    page.evaluate("window.stillTheSamePage = true")
    # Which values get highlighted when they change (whenever the check below runs).
    page.evaluate(
        """() => {
            window.flashed = [];
            new MutationObserver((records) => {
                for (const record of records) {
                    if (record.target.classList.contains("changed")) {
                        window.flashed.push(record.target.getAttribute("aria-label"));
                    }
                }
            }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ["class"] });
        }"""
    )
    with modbus_client(modbus(simulator)) as client:
        assert not client.write_register(0, 955, device_id=2).isError()
    expect(field).to_have_value("95.5")
    assert "Value of water-tank/high_setpoint" in page.evaluate("window.flashed")
    assert page.evaluate("window.stillTheSamePage") is True
    row = page.locator("tr", has=field)
    expect(row.locator("td.mono")).to_have_text("955")
    # Values that move by themselves move on the page too.
    level = page.get_by_label("Value of water-tank/level")
    first = level.input_value()
    deadline = time.monotonic() + 5
    while level.input_value() == first and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert level.input_value() != first
    screenshot(page, screenshots, "registers")


def test_injecting_a_fault_on_the_page_reaches_a_modbus_client(
    page: Any, simulator: Simulator, screenshots: Path
) -> None:
    expect = playwright_sync.expect
    page.goto("/calls")
    page.get_by_label("What happens").select_option("exception")
    page.get_by_label("Exception code").select_option("6")
    page.get_by_label("Unit").first.fill("3")
    page.get_by_label("Function codes").fill("3")
    page.get_by_label("Requests", exact=True).fill("1")
    page.get_by_role("button", name="Inject fault").click()
    expect(page.locator("#fault-message")).to_have_text(re.compile(r"Fault rule \d+ is active\."))
    rules = page.locator("#rules tbody tr")
    expect(rules.first).to_contain_text("exception 06 (server device busy)")
    expect(rules.first).to_contain_text("unit 3, function 3")
    with modbus_client(modbus(simulator)) as client:
        refused = client.read_holding_registers(0, count=2, device_id=3)
        answered = client.read_holding_registers(0, count=2, device_id=3)
    assert (refused.isError(), refused.exception_code) == (True, 6)
    assert not answered.isError()
    expect(rules.first).to_contain_text("ended (count reached)")
    traffic = page.locator("#calls tbody tr")
    expect(traffic.filter(has_text="exception 06 server device busy")).to_have_count(1)
    expect(traffic.first).to_contain_text("read holding registers")
    # A delay rule shows in the list and ends from the page.
    page.get_by_label("What happens").select_option("delay")
    page.get_by_label("Delay (s)").fill("0.2")
    page.get_by_label("Requests", exact=True).fill("")
    page.get_by_role("button", name="Inject fault").click()
    expect(page.locator("#fault-message")).to_have_text(re.compile(r"Fault rule \d+ is active\."))
    expect(rules.first).to_contain_text("answer 0.2 s late")
    screenshot(page, screenshots, "calls")
    rules.first.get_by_role("button").click()
    expect(rules.first).to_contain_text("ended (removed)")
    assert simulator.faults.rules == []


def test_heavy_traffic_keeps_the_traffic_table_short_and_redraws_it_every_two_seconds(
    page: Any, simulator: Simulator
) -> None:
    page.goto("/calls")
    page.wait_for_selector("#live.connected")
    # Each redraw changes the table's rows in one task: one observer call, timed.
    page.evaluate(
        """() => {
            window.redraws = [];
            new MutationObserver(() => window.redraws.push(performance.now()))
                .observe(document.querySelector("#calls tbody"), { childList: true });
        }"""
    )
    deadline = time.monotonic() + 30
    with modbus_client(modbus(simulator)) as client:
        # Far more than the 50 calls a redraw shows, until four redraws have happened.
        while page.evaluate("window.redraws.length") < 4 and time.monotonic() < deadline:
            for _ in range(100):
                assert not client.read_holding_registers(0, count=1, device_id=1).isError()
    redraws = page.evaluate("window.redraws")
    assert len(redraws) >= 4, redraws
    assert page.locator("#calls tbody tr").count() == 100
    playwright_sync.expect(page.locator("#traffic-summary")).to_contain_text("not shown: too fast")
    # The first redraw after a quiet time comes at once; once the calls outpace it, every 2 s.
    gaps = [later - earlier for earlier, later in itertools.pairwise(redraws[1:])]
    assert all(gap >= 1900 for gap in gaps), gaps


def test_log_and_server_pages(page: Any, simulator: Simulator, screenshots: Path) -> None:
    expect = playwright_sync.expect
    page.goto("/log")
    expect(page.locator("#log tbody tr").filter(has_text="simulator running")).to_have_count(1)
    page.get_by_label("At least").select_option("WARNING")
    page.get_by_role("button", name="Show").click()
    logging.getLogger("modbus_anyio.simulator").warning("pressure too high")
    expect(page.locator("#log tbody tr").first).to_contain_text("pressure too high")
    expect(page.locator("#log tbody tr").filter(has_text="simulator running")).to_have_count(0)
    screenshot(page, screenshots, "log")
    page.goto("/server")
    listener = page.locator("#listeners tbody tr").first
    expect(listener).to_contain_text("running")
    expect(listener).to_contain_text(simulator.modbus_addresses["plant"][0])
    with modbus_client(modbus(simulator)) as client:
        client.read_holding_registers(0, count=1, device_id=1)
        expect(listener.locator("li")).to_contain_text(re.compile(r"127\.0\.0\.1:\d+"))  # the connected client
        screenshot(page, screenshots, "server")
    listener.get_by_role("button", name="Stop listener plant").click()
    expect(listener).to_contain_text("stopped")
    listener.get_by_role("button", name="Start listener plant").click()
    expect(listener).to_contain_text("running")
    with modbus_client(modbus(simulator)) as client:
        assert not client.read_holding_registers(0, count=1, device_id=1).isError()


def test_every_control_has_an_accessible_name(page: Any) -> None:
    for path in ("/registers", "/calls", "/log", "/server"):
        page.goto(path)
        page.wait_for_selector("#live.connected")
        unnamed = page.evaluate(
            """() => [...document.querySelectorAll("input:not([type=hidden]), select, button")]
                .filter((element) => !(element.labels && element.labels.length) && !element.getAttribute("aria-label")
                                     && !element.textContent.trim())
                .map((element) => element.outerHTML)"""
        )
        assert unnamed == [], path
        assert page.locator("h1").count() == 1
        assert page.locator("nav [aria-current=page]").count() == 1
