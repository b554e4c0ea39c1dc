"""The configuration file: schema, checks, error messages, templates, TOML, pymodbus setup.json."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import trustme

from modbus_anyio.simulator import ConfigError, config_schema, default_config, load_config, parse_config
from modbus_core import TableKind

from .sim_support import PYMODBUS_SETUP, plant_document, write_json


def problems_of(document: Any, tmp_path: Path) -> list[str]:
    path = write_json(tmp_path / "plant.json", document)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    lines = str(caught.value).splitlines()
    assert all(line.startswith(f"{path}: ") for line in lines), lines
    return [line.removeprefix(f"{path}: ") for line in lines]


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = config_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_built_in_plant_is_valid_and_realistic() -> None:
    config = default_config()
    jsonschema.validate(
        json.loads(resources.files("modbus_anyio.simulator").joinpath("default_plant.json").read_text()),
        config_schema(),
    )
    assert [(server.transport, server.host, server.port) for server in config.servers] == [("tcp", "127.0.0.1", 5020)]
    assert (config.http_host, config.http_port) == ("127.0.0.1", 8080)
    devices = {device.name: device for device in config.devices}
    assert set(devices) == {"energy-meter", "water-tank", "plc"}
    meter_types = {register.type for register in devices["energy-meter"].registers}
    assert "float32" in meter_types
    tank = {register.name: register for register in devices["water-tank"].registers}
    assert tank["inlet_valve"].table is TableKind.COILS
    assert tank["level"].action is not None
    plc_actions = {register.action.kind for register in devices["plc"].registers if register.action is not None}
    assert {"increment", "uptime", "timestamp", "reset"} <= plc_actions


def test_a_small_plant_parses_with_defaults(tmp_path: Path) -> None:
    config = load_config(write_json(tmp_path / "plant.json", plant_document()))
    meter = config.devices[0]
    registers = {register.name: register for register in meter.registers}
    assert registers["voltage"].count == 2
    assert registers["label"].count == 4
    assert registers["relay"].type == "bool"
    assert registers["setpoint"].byte_order == "big"
    assert meter.servers == ("main",)
    assert config.servers[0].host == "127.0.0.1"


def server(**options: Any) -> dict[str, Any]:
    return {"servers": [{"name": "main", "transport": "tcp", **options}]}


def devices(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"devices": list(entries)}


def device(**options: Any) -> dict[str, Any]:
    return devices({"name": "a", "unit": 1, **options})


def register(**options: Any) -> dict[str, Any]:
    return device(registers=[{"name": "x", "address": 0, **options}])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (server(port="502"), 'servers[0].port: expected an integer, got "502"'),
        (server(port=70000), "servers[0].port: expected a number <= 65535, got 70000"),
        (server(transport="ftp"), 'servers[0].transport: expected one of "tcp", "tls", "udp", "serial", got "ftp"'),
        ({"servers": [{"transport": "tcp"}]}, "servers[0]: missing required key 'name'"),
        (server(prot=5), "servers[0].prot: unknown key 'prot'"),
        (server(baudrate=9600), "servers[0].baudrate: this key is not allowed for transport 'tcp'"),
        (server(transport="tls", port=802), "servers[0]: missing required key 'certfile', 'keyfile'"),
        ({"servers": []}, "servers: expected at least 1 item"),
        (device(unit=300), "devices[0].unit: expected a number <= 255, got 300"),
        (device(unit="all"), 'devices[0].unit: expected an integer or "any", got "all"'),
        (device(name="a/b"), "devices[0].name: expected a name without '/'"),
        (register(type="flaot32"), 'devices[0].registers[0].type: expected one of "bool", "int16"'),
        (register(action="explode"), 'devices[0].registers[0].action: expected one of "increment"'),
        (register(action={"kind": "sine", "period": "x"}), "devices[0].registers[0].action.period: expected a number"),
        (device(coils=-1), "devices[0].coils: expected a number >= 0, got -1"),
        (device(holding_registers={"size": 5, "x": 1}), "devices[0].holding_registers.x: unknown key 'x'"),
        ({"http": {"port": True}}, "http.port: expected an integer, got true"),
    ],
)
def test_schema_errors_name_the_key_path_and_what_was_expected(
    tmp_path: Path, change: dict[str, Any], expected: str
) -> None:
    problems = problems_of(plant_document(**change), tmp_path)
    assert any(problem.startswith(expected) for problem in problems), problems


TWO_REGISTERS = [{"name": "x", "address": 0, "type": "float32"}, {"name": "y", "address": 1, "type": "uint16"}]
HOLE = [{"table": "holding_registers", "address": 0, "count": 2}]
CUSTOM = {"kind": "custom", "function": "f"}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"servers": [{"name": "main", "transport": "tcp"}, {"name": "main", "transport": "udp"}]},
            "servers[1].name: two servers are named 'main'",
        ),
        (
            devices({"name": "a", "unit": 1}, {"name": "b", "unit": 1}),
            "devices[1].unit: unit 1 of server 'main' is already 'a''s",
        ),
        (devices({"name": "a", "unit": 1}, {"name": "a", "unit": 2}), "devices[1]: two devices are named 'a'"),
        (
            devices({"name": "a", "unit": "any"}, {"name": "b", "unit": 2}),
            "devices[1].unit: server 'main' already answers every unit with 'a'",
        ),
        (device(servers=["other"]), "devices[0].servers: expected one of the servers main, got 'other'"),
        (register(type="uint16", value=70000), "devices[0].registers[0].value: 70000 does not fit in uint16"),
        (register(type="float32", value="hot"), 'devices[0].registers[0].value: expected a number, got "hot"'),
        (register(table="coils", type="uint16"), "devices[0].registers[0].type: coils hold single bits"),
        (register(type="string"), 'devices[0].registers[0]: a string needs "length"'),
        (device(registers=TWO_REGISTERS), "devices[0].registers: 'y' at holding_registers 1 overlaps 'x'"),
        (
            device(holding_registers=2, registers=[{"name": "x", "address": 1, "type": "float32"}]),
            "devices[0].registers: 'x' at holding_registers 1..2 is outside the table",
        ),
        (
            device(invalid=HOLE, registers=[{"name": "x", "address": 1}]),
            "devices[0].registers: 'x' at holding_registers 1 is outside the table or in an invalid range",
        ),
        (register(table="coils", action="sine"), "devices[0].registers[0].action.kind: sine needs a numeric type"),
        (
            register(action=CUSTOM),
            "devices[0].registers[0].action.function: a custom action needs a custom_actions module",
        ),
        (device(unit=250, repeat={"count": 10}), "devices[0].repeat: copy 10 would answer unit 259"),
        (device(template="nothing"), "devices[0].template: expected one of the templates (none)"),
        (devices({"unit": 1}), "devices[0]: missing required key 'name' (in the device or its template)"),
        ({"custom_actions": "no_such_module_anywhere"}, "custom_actions: cannot import 'no_such_module_anywhere'"),
        (
            server(transport="tls", certfile="c", keyfile="k", roles={"roles": {"operator": [{"units": [300]}]}}),
            "servers[0].roles.roles.operator[0].units[0]: expected a number <= 255, got 300",
        ),
        (
            server(
                transport="tls", certfile="c", keyfile="k", roles={"roles": {"operator": [{"addresses": [[9, 2]]}]}}
            ),
            "servers[0].roles: roles.operator[0]: addresses: range 9..2 is empty",
        ),
    ],
)
def test_semantic_errors_name_the_key_path(tmp_path: Path, change: dict[str, Any], expected: str) -> None:
    problems = problems_of(plant_document(**change), tmp_path)
    assert any(problem.startswith(expected) for problem in problems), problems


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    document = plant_document(
        servers=[{"name": "main", "transport": "tcp", "port": -1, "host": 5}],
        devices=[{"name": "a", "unit": 999}],
    )
    problems = problems_of(document, tmp_path)
    assert [problem.split(":")[0] for problem in problems] == ["devices[0].unit", "servers[0].host", "servers[0].port"]


def test_files_that_are_not_json_or_missing_are_reported(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"servers": [}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken.json: not valid JSON: line 1 column 14"):
        load_config(broken)
    with pytest.raises(ConfigError, match=r"missing.json: cannot read the file: No such file"):
        load_config(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match=r"list.json: expected an object, got \[\]"):
        load_config(write_json(tmp_path / "list.json", []))


def test_toml_files_load(tmp_path: Path) -> None:
    path = tmp_path / "plant.toml"
    path.write_text(
        """
[http]
port = 0

[[servers]]
name = "main"
transport = "tcp"
port = 1502

[[devices]]
name = "boiler"
unit = 7
holding_registers = 4

[[devices.registers]]
name = "temperature"
address = 0
type = "int16"
scale = 0.1
value = -12.5
""",
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.servers[0].port == 1502
    assert config.devices[0].registers[0].value == -12.5
    bad = tmp_path / "bad.toml"
    bad.write_text("servers = [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
        load_config(bad)


def test_templates_and_repeated_devices(tmp_path: Path) -> None:
    document = plant_document(
        templates={
            "meter": {
                "holding_registers": 10,
                "registers": [{"name": "power", "address": 0, "type": "float32", "value": 1.5}],
            }
        },
        devices=[
            {
                "name": "meter-{n}",
                "template": "meter",
                "unit": 10,
                "repeat": {"count": 3, "unit_step": 2},
                "registers": [{"name": "extra", "address": 4}],
            },
            {"name": "single", "template": "meter", "unit": 1},
            {"name": "plain", "unit": 2, "repeat": {"count": 2}},
        ],
    )
    config = load_config(write_json(tmp_path / "plant.json", document))
    assert [(device.name, device.unit) for device in config.devices] == [
        ("meter-1", 10),
        ("meter-2", 12),
        ("meter-3", 14),
        ("single", 1),
        ("plain-1", 2),
        ("plain-2", 3),
    ]
    assert [register.name for register in config.devices[0].registers] == ["power", "extra"]
    assert [register.name for register in config.devices[3].registers] == ["power"]


def test_repeated_registers(tmp_path: Path) -> None:
    document = plant_document(
        devices=[
            {
                "name": "rack",
                "unit": 1,
                "registers": [
                    {"name": "temp_{n}", "address": 10, "type": "float32", "repeat": {"count": 3}},
                    {"name": "alarm", "table": "coils", "address": 0, "repeat": {"count": 2, "step": 4}},
                ],
            }
        ]
    )
    device = load_config(write_json(tmp_path / "plant.json", document)).devices[0]
    assert [(register.name, register.address) for register in device.registers] == [
        ("temp_1", 10),
        ("temp_2", 12),
        ("temp_3", 14),
        ("alarm_1", 0),
        ("alarm_2", 4),
    ]
    # An omitted table covers the registers in it.
    assert device.tables[TableKind.HOLDING_REGISTERS][0].size == 16


def test_overrides_move_the_first_network_listener_and_the_web_page() -> None:
    config = default_config().with_overrides(http_host="::1", http_port=0, modbus_port=0, modbus_host="::1")
    assert (config.http_host, config.http_port) == ("::1", 0)
    assert (config.servers[0].host, config.servers[0].port) == ("::1", 0)
    serial_only = parse_config(
        plant_document(servers=[{"name": "line", "transport": "serial", "port": "/dev/null"}]), source="s.json"
    )
    with pytest.raises(ConfigError, match="--modbus-port needs a tcp, tls or udp server"):
        serial_only.with_overrides(modbus_port=1502)


def test_custom_actions_from_a_file_next_to_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "my_actions.py").write_text("def double(context):\n    return context.value * 2\n", encoding="utf-8")
    document = plant_document(
        custom_actions="my_actions.py",
        devices=[
            {
                "name": "a",
                "unit": 1,
                "registers": [
                    {"name": "x", "address": 0, "value": 1, "action": {"kind": "custom", "function": "double"}}
                ],
            }
        ],
    )
    config = load_config(write_json(tmp_path / "plant.json", document))
    action = config.devices[0].registers[0].action
    assert action is not None
    assert action.function is not None
    assert action.function.__name__ == "double"
    document["devices"][0]["registers"][0]["action"]["function"] = "triple"
    problems = problems_of(document, tmp_path)
    assert problems == [
        "devices[0].registers[0].action.function: expected a function of modbuskit_actions_"
        + problems[0].split("modbuskit_actions_")[1].split(",")[0]
        + ", there is no 'triple'"
    ]


# -- pymodbus setup.json ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "device"),
    [("server", "device"), ("server_try_serial", "device_try"), ("server_test_try_udp", "device")],
)
def test_pymodbus_setup_json_entries_load(server: str, device: str) -> None:
    config = load_config(PYMODBUS_SETUP, modbus_server=server, modbus_device=device)
    assert config.servers[0].name == server
    assert config.devices[0].layout is not None
    assert config.devices[0].servers == (server,)


def test_pymodbus_tls_entry_loads_when_its_certificates_exist(tmp_path: Path) -> None:
    """pymodbus 3.16 crashes on this entry (its server takes no certfile); here it is a TLS server."""
    shutil.copy(PYMODBUS_SETUP, tmp_path / "setup.json")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "setup.json", modbus_server="server_try_tls")
    assert (
        str(caught.value)
        .splitlines()[0]
        .startswith(f"{tmp_path / 'setup.json'}: server_list.server_try_tls.certfile: ")
    )
    certificate = trustme.CA().issue_cert("localhost")
    (tmp_path / "certificates").mkdir()
    certificate.cert_chain_pems[0].write_to_path(str(tmp_path / "certificates" / "pymodbus_tls.crt"))
    certificate.private_key_pem.write_to_path(str(tmp_path / "certificates" / "pymodbus_tls.key"))
    config = load_config(tmp_path / "setup.json", modbus_server="server_try_tls")
    server = config.servers[0]
    assert (server.transport, server.framer, server.port) == ("tls", "socket", 5020)
    assert server.certfile == str(tmp_path / "certificates" / "pymodbus_tls.crt")
    assert server.require_client_certificate is False


def test_pymodbus_setup_semantics() -> None:
    config = load_config(PYMODBUS_SETUP)
    layout = config.devices[0].layout
    assert layout is not None
    assert layout.writable == ((3, 1),)
    assert (1, 1) not in layout.valid
    registers = {register.name: register for register in config.devices[0].registers}
    assert registers["uint32_4"].value == 617001
    assert registers["float64_8"].value == -505.78
    assert registers["string_16"].value == "A_B_C_D_E_"
    assert registers["uint16_3"].read_only is False
    assert registers["float32_6"].action is not None
    assert registers["float32_6"].action.trigger == "read"


def test_pymodbus_setup_errors_name_the_key_path(tmp_path: Path) -> None:
    setup = json.loads(PYMODBUS_SETUP.read_text())
    setup["server_list"]["server"]["port"] = "x"
    setup["device_list"]["device"]["uint16"].append({"addr": 3})
    setup["device_list"]["device"]["bits"].append({"addr": 70000})
    path = write_json(tmp_path / "setup.json", setup)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert f"{path}: server_list.server.port: expected a port number 0..65535, got 'x'" in message
    with pytest.raises(
        ConfigError, match=r"device_list: expected a device named 'nope'; there are 'device', 'device_try'"
    ):
        load_config(PYMODBUS_SETUP, modbus_device="nope")
    del setup["server_list"]["server"]["port"]
    setup["server_list"]["server"]["port"] = 5020
    path = write_json(tmp_path / "setup2.json", setup)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "device_list.device.uint16[2]: register 3 is already defined" in message
    assert "device_list.device.bits[1].addr: 70000..70000 is past the device's 63000 registers" in message


def test_pymodbus_setup_shapes_are_checked(tmp_path: Path) -> None:
    """Found by the property tests: these crashed the loader, or broke its one-line-per-problem message."""
    setup = json.loads(PYMODBUS_SETUP.read_text())
    device = setup["device_list"]["device"]
    device["invalid"] = {"addr": 1}
    device["setup"]["defaults"]["action"] = ["increment"]
    device["uint16"][0]["action"] = ["increment"]
    device["new\rkey"] = 1
    path = write_json(tmp_path / "setup.json", setup)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    lines = str(caught.value).splitlines()
    assert all(line.startswith(f"{path}: ") for line in lines), lines
    assert f"{path}: device_list.device.invalid: expected a list, got {{'addr': 1}}" in lines
    assert (
        f"{path}: device_list.device.setup.defaults.action: expected an object by cell type, got ['increment']" in lines
    )
    assert any(line.startswith(f'{path}: device_list.device["new\\rkey"]: unknown key') for line in lines), lines

    setup = json.loads(PYMODBUS_SETUP.read_text())
    setup["device_list"]["device"]["setup"]["shared blocks"] = False
    path = write_json(tmp_path / "blocks.json", setup)
    with pytest.raises(ConfigError, match=r"device_list.device.setup: the four blocks take 63000 \+ 63000 \+ 63000"):
        load_config(path)


def test_the_package_exports_what_it_lists() -> None:
    import modbus_anyio.simulator as simulator

    assert sorted(dir(simulator)) == sorted(simulator.__all__)
    for name in simulator.__all__:
        assert getattr(simulator, name) is not None
    with pytest.raises(AttributeError, match="has no attribute 'Nothing'"):
        _ = simulator.Nothing
