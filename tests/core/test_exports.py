"""The public API: what modbus_core exports, that it is documented, and that
the core's tests use nothing else."""

from __future__ import annotations

import ast
import enum
import importlib
import inspect
import itertools
import pkgutil
import types
from pathlib import Path

import pytest

import modbus_core

TESTS = Path(__file__).parent
# The private modules, found on disk so that one __init__.py forgot is found too.
PRIVATE_MODULES = sorted(
    module.name for module in pkgutil.iter_modules(modbus_core.__path__) if module.name.startswith("_")
)


def test_every_exported_name_exists_once() -> None:
    names = modbus_core.__all__
    assert len(names) == len(set(names))
    missing = [name for name in names if not hasattr(modbus_core, name)]
    assert missing == []


def test_nothing_public_is_left_out_of_all() -> None:
    public = {
        name
        for name, value in vars(modbus_core).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public - set(modbus_core.__all__) == set()


def _module_docstrings(module: types.ModuleType) -> dict[str, str]:
    """Attribute docstrings: a string right after ``NAME = ...`` or ``NAME: T = ...``."""
    tree = ast.parse(inspect.getsource(module))
    found: dict[str, str] = {}
    body = tree.body
    for statement, following in itertools.pairwise(body):
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
        elif isinstance(statement, ast.AnnAssign):
            target = statement.target
        else:
            continue
        if (
            isinstance(target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            found[target.id] = following.value.value
    return found


def _doc_of(name: str) -> str:
    value = getattr(modbus_core, name)
    if isinstance(value, type | types.FunctionType | types.BuiltinFunctionType):
        doc = value.__doc__ or ""
        # A dataclass without a docstring gets its signature as one.
        if doc.startswith(f"{value.__name__}("):
            return ""
        return doc
    for module_name in PRIVATE_MODULES:
        module = importlib.import_module(f"modbus_core.{module_name}")
        docstrings = _module_docstrings(module)  # where the name is assigned, not imported
        if name in docstrings and vars(module)[name] is value:
            return docstrings[name]
    return ""


@pytest.mark.parametrize("name", [name for name in modbus_core.__all__ if name != "__version__"])
def test_every_exported_name_is_documented(name: str) -> None:
    assert _doc_of(name).strip(), f"{name} has no docstring"


def test_the_package_is_documented() -> None:
    assert modbus_core.__doc__
    assert isinstance(modbus_core.__version__, str)


# The modules of the codec half; the datastore half checks its own.
CODEC_MODULES = {f"modbus_core.{name}" for name in ("_checksum", "_connection", "_errors", "_events", "_framing")} | {
    f"modbus_core.{name}" for name in ("_functions", "_pdu")
}


def test_public_methods_are_documented() -> None:
    undocumented = []
    for name in modbus_core.__all__:
        value = getattr(modbus_core, name)
        if not isinstance(value, type) or issubclass(value, enum.Enum | BaseException):
            continue
        if value.__module__ not in CODEC_MODULES:
            continue
        for attribute, member in vars(value).items():
            if attribute.startswith("_") or (not callable(member) and not isinstance(member, property)):
                continue
            # Overrides inherit the documentation of the method they override.
            if not inspect.getdoc(getattr(value, attribute)):
                undocumented.append(f"{name}.{attribute}")
    assert undocumented == []


@pytest.mark.parametrize("module_name", PRIVATE_MODULES)
def test_private_modules_export_their_public_classes(module_name: str) -> None:
    # The one place a test looks inside: to check that nothing stays inside.
    module = importlib.import_module(f"modbus_core.{module_name}")
    declared = getattr(module, "__all__", [])
    for name in declared:
        assert name in modbus_core.__all__, f"{module_name}.{name} is not exported"
        assert getattr(modbus_core, name) is getattr(module, name)
    classes = {
        name
        for name, value in vars(module).items()
        if isinstance(value, type) and value.__module__ == module.__name__ and not name.startswith("_")
    }
    assert classes - set(declared) == set(), f"{module_name} does not export {classes - set(declared)}"


def _private_uses(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module == "modbus_core":
            names = [f"modbus_core.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "modbus_core":
            names = [f"modbus_core.{node.attr}"]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if (
                parts[0] == "modbus_core"
                and len(parts) > 1
                and parts[1].startswith("_")
                and not parts[1].endswith("__")
            ):
                found.append(f"{path.name}:{node.lineno}: {name}")
    return found


@pytest.mark.parametrize("path", sorted(TESTS.glob("*.py")), ids=lambda path: path.name)
def test_core_tests_use_only_the_public_api(path: Path) -> None:
    assert _private_uses(path) == []


def test_the_private_use_check_finds_private_uses(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import modbus_core._pdu\n"
        "from modbus_core._framing import RtuFramer\n"
        "from modbus_core import _events\n"
        "import modbus_core\n"
        "modbus_core._connection.ServerConnection\n"
        "importlib.import_module('modbus_core._checksum')\n"
        "modbus_core.__version__\n"
    )
    found = sorted(use.split(": ")[1].removeprefix("modbus_core.") for use in _private_uses(sample))
    assert found == ["_checksum", "_connection", "_events", "_framing", "_pdu"]
