"""The state file: values survive restarts, writes are atomic and prompt, bad files are errors."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modbus_anyio.simulator import Simulator, StateError, parse_config
from modbus_anyio.simulator._plant import Plant, SimDevice
from modbus_anyio.simulator._state import SAVE_INTERVAL, StateStore
from modbus_core import TableKind

from .sim_support import (
    modbus_address,
    modbus_client,
    mutated,
    plant_document,
    running,
    small_config,
    write_json,
)


def test_values_round_trip_through_the_file(tmp_path: Path) -> None:
    path = tmp_path / "plant.state"
    plant = Plant(small_config())
    store = StateStore(path, plant)
    plant.point("meter/voltage").set(231.25)
    plant.point("meter/label").set("ZZ")
    plant.point("meter/relay").set(False)
    plant.device("meter").write(TableKind.HOLDING_REGISTERS, 19, [65535])
    store.save()
    document = json.loads(path.read_text())
    assert document["format"] == "modbuskit-simulator-state"
    assert document["devices"]["meter"]["coils"] == [[0, "00000000"]]
    assert [entry.name for entry in tmp_path.iterdir()] == ["plant.state"]  # no temporary file left

    restored = Plant(small_config())
    assert StateStore(path, restored).load() == 2
    assert restored.point("meter/voltage").value == 231.25
    assert restored.point("meter/label").value == "ZZ"
    assert restored.point("meter/relay").value is False
    assert restored.device("meter").read(TableKind.HOLDING_REGISTERS, 19, 1) == (65535,)


def test_only_changed_devices_are_encoded_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plant = Plant(small_config())
    store = StateStore(tmp_path / "s", plant)
    encoded: list[str] = []
    original = store._fragment

    def counting(sim: SimDevice) -> str:
        encoded.append(sim.name)
        return original(sim)

    monkeypatch.setattr(store, "_fragment", counting)
    store.save()
    assert encoded == ["meter", "tank"]
    assert not store.dirty
    plant.point("tank/level").set(1)
    assert store.dirty
    store.save()
    assert encoded == ["meter", "tank", "tank"]
    store.close()
    plant.point("tank/level").set(2)
    assert not store.dirty  # closed: no longer listening


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the state file is corrupt (not JSON"),
        (b'{"devices": {', "the state file is corrupt (not JSON"),
        (b"\xff\xfe", "the state file is corrupt (not JSON"),
        (b'{"devices": {}}', "not a modbuskit simulator state file"),
        (b'{"format": "modbuskit-simulator-state", "version": 9, "devices": {}}', "state file version 9"),
        (b'{"format": "modbuskit-simulator-state", "version": 1, "devices": []}', '"devices" is not an object'),
        (
            (
                b'{"format": "modbuskit-simulator-state", "version": 1,'
                b' "devices": {"meter": {"holding_registers": [[0, "zz"]]}}}'
            ),
            "devices.meter.holding_registers[0]: non-hexadecimal number",
        ),
        (
            b'{"format": "modbuskit-simulator-state", "version": 1, "devices": {"meter": {"coils": [[0, "0120"]]}}}',
            "devices.meter.coils[0]: bits must be a string of 0 and 1",
        ),
        (
            b'{"format": "modbuskit-simulator-state", "version": 1, "devices": {"meter": {"coils": [0]}}}',
            "devices.meter.coils[0] is not [address, values]",
        ),
    ],
)
def test_a_bad_file_is_an_error_and_restores_nothing(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.state"
    good = Plant(small_config())
    good.point("meter/setpoint").set(9)
    store = StateStore(path, good)
    store.save()
    saved = json.loads(path.read_text())
    path.write_bytes(content)
    fresh = Plant(small_config())
    with pytest.raises(StateError) as caught:
        StateStore(path, fresh).load()
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)
    assert fresh.point("meter/setpoint").value == 100
    assert path.read_bytes() == content  # never silently replaced
    assert saved["devices"]["meter"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_changed_state_file_loads_or_is_refused_whole(tmp_path: Path, data: st.DataObject) -> None:
    path = tmp_path / "changed.state"
    saved = Plant(small_config())
    saved.point("meter/setpoint").set(9)
    saved.point("meter/relay").set(False)
    StateStore(path, saved).save()
    document = data.draw(mutated(json.loads(path.read_text())))
    path.write_text(json.dumps(document))
    fresh = Plant(small_config())
    message = ""
    try:
        StateStore(path, fresh).load()
    except StateError as error:
        message = str(error)
    if message:  # refused: with its reason, and nothing restored
        assert message.startswith(f"{path}: ")
        assert (fresh.point("meter/setpoint").value, fresh.point("meter/relay").value) == (100, True)


def test_a_changed_configuration_keeps_what_still_fits(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "s.state"
    old = Plant(small_config())
    old.point("meter/setpoint").set(7)
    old.device("meter").write(TableKind.HOLDING_REGISTERS, 15, [1, 2, 3, 4, 5])
    StateStore(path, old).save()
    document = plant_document()
    document["devices"][0]["holding_registers"] = 17  # registers 17..19 are gone
    del document["devices"][1]
    new = Plant(parse_config(document))
    with caplog.at_level(logging.WARNING):
        assert StateStore(path, new).load() == 1
    assert new.point("meter/setpoint").value == 7
    assert new.device("meter").read(TableKind.HOLDING_REGISTERS, 15, 2) == (1, 2)
    assert "holding_registers 0..19 is no longer all present; 17 of 20 values restored" in caplog.text
    assert "device 'tank' is not configured any more" in caplog.text


def test_a_missing_file_starts_fresh_and_is_created(tmp_path: Path) -> None:
    path = tmp_path / "new" / "plant.state"
    plant = Plant(small_config())
    store = StateStore(path, plant)
    assert store.load() == 0
    store.save()
    assert path.exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where nothing can be created")
def test_the_simulator_refuses_a_state_file_it_could_not_write() -> None:
    where = Path("/proc/modbuskit-test/plant.state")
    with pytest.raises(StateError, match=rf"^{where}: cannot write the state file there: "):
        Simulator(small_config(), state_file=where)


def test_the_simulator_refuses_a_corrupt_state_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.state"
    path.write_text("{", encoding="utf-8")
    with pytest.raises(StateError, match="corrupt"):
        Simulator(small_config(), state_file=path)


@pytest.mark.anyio
async def test_changes_are_saved_promptly_and_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "plant.state"
    async with running(state_file=path) as simulator:
        address = modbus_address(simulator)

        def write() -> None:
            with modbus_client(address) as client:
                assert not client.write_register(0, 321, device_id=1).isError()

        await anyio.to_thread.run_sync(write)
        # Saved while running (every SAVE_INTERVAL), not only at shutdown.
        assert SAVE_INTERVAL <= 1.0
        with anyio.fail_after(5):
            while (
                not path.exists()
                or json.loads(path.read_text())["devices"]["meter"]["holding_registers"][0][1][:4] != "0141"
            ):
                await anyio.sleep(0.05)
        simulator.plant.point("tank/level").set(77.7)  # saved at shutdown at the latest
    async with running(state_file=path) as again:
        assert again.plant.point("meter/setpoint").value == 321
        assert again.plant.point("tank/level").value == pytest.approx(77.7)


@pytest.mark.anyio
async def test_a_save_that_fails_is_retried_and_said_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    directory = tmp_path / "state"
    path = directory / "plant.state"

    def saved_setpoint() -> int:
        return int(json.loads(path.read_text())["devices"]["meter"]["holding_registers"][0][1][:4], 16)

    async with running(state_file=path) as simulator:
        assert simulator.state is not None
        simulator.plant.point("meter/setpoint").set(5)
        with anyio.fail_after(5):
            while not path.exists() or saved_setpoint() != 5:
                await anyio.sleep(0.05)
        path.unlink()
        directory.rmdir()
        directory.write_text("in the way")  # the directory cannot be made again: every save fails
        saves = simulator.state.saves
        simulator.plant.point("meter/setpoint").set(6)
        await anyio.sleep(8 * SAVE_INTERVAL)
        failures = [record for record in caplog.records if "cannot save the state file" in record.getMessage()]
        assert len(failures) == 1, failures
        assert simulator.state.saves == saves
        directory.unlink()  # out of the way: the next retry writes the change, with no new change needed
        with anyio.fail_after(5):
            while not path.exists():
                await anyio.sleep(0.05)
        assert saved_setpoint() == 6
        assert any("saved again" in record.getMessage() for record in caplog.records)


def test_a_killed_simulator_loses_at_most_the_last_second(tmp_path: Path) -> None:
    config = write_json(tmp_path / "plant.json", plant_document())
    state = tmp_path / "plant.state"
    script = textwrap.dedent(
        f"""
        import anyio, sys
        from modbus_anyio.simulator import Simulator, load_config

        async def main():
            async with Simulator(load_config({str(config)!r}), state_file={str(state)!r}, http=False) as simulator:
                print(simulator.modbus_addresses["main"][0], flush=True)
                await anyio.sleep_forever()

        anyio.run(main)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        host, _, port = process.stdout.readline().strip().rpartition(":")
        with modbus_client((host, int(port))) as client:
            assert not client.write_registers(0, [11, 22], device_id=2).isError()
        deadline = time.monotonic() + 5  # SAVE_INTERVAL on an idle machine; this one may be busy
        while time.monotonic() < deadline and not (state.exists() and "000b0016" in state.read_text()):
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL
    saved = json.loads(state.read_text())
    assert saved["devices"]["tank"]["holding_registers"][0][1][:8] == "000b0016"
    assert [entry.name for entry in tmp_path.iterdir() if entry.name.startswith(".")] == []
