"""Sphinx directives of the modbuskit documentation.

``.. public-api:: PACKAGE``
    The API reference of *PACKAGE*: every name of its ``__all__`` (and only
    those), grouped by the private module that defines it (titles from the
    ``public_api_sections`` setting), documented with autodoc under its
    public name (``modbus_core.ReadCoils``, never ``modbus_core._pdu``).  A
    name that another package defines (``modbus_sync.AccessRule``) gets a
    short entry pointing at its home.

``.. jsonschema-reference:: PACKAGE/RESOURCE``
    A JSON Schema shipped in a package (``modbus_anyio.simulator/config.schema.json``),
    rendered as tables: the top-level keys, then every object definition.

``.. openapi-reference:: MODULE:FUNCTION``
    An OpenAPI 3 document returned by ``FUNCTION()`` (or a package resource,
    ``PACKAGE/RESOURCE``), rendered as one section per operation and one per
    schema.

``.. screenshot:: NAME.png``
    ``_static/screenshots/NAME.png`` as a figure (the content is its caption),
    or a note saying how to make it when the browser tests have not yet.

Everything is generated as reStructuredText and parsed in place, so the
output obeys the same rules (and warnings) as hand-written pages.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import importlib
import inspect
import json
import pkgutil
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

PACKAGES = ("modbus_core", "modbus_anyio", "modbus_sync", "modbus_anyio.simulator")


# --------------------------------------------------------------------------
# reStructuredText helpers

_INLINE_MARKUP = re.compile(r"([\\*`|])")
_TRAILING_UNDERSCORE = re.compile(r"(\w)_(?=\W|$)")
_MARKDOWN_CODE = re.compile(r"(?<!`)`([^`]+)`(?!`)")


def escape(text: str) -> str:
    """*text* as literal prose in reStructuredText (no accidental markup)."""
    text = _INLINE_MARKUP.sub(r"\\\1", text)
    return _TRAILING_UNDERSCORE.sub(r"\1\\_", text)


def prose(text: str) -> str:
    """Plain or Markdown-ish prose (OpenAPI descriptions): `code` becomes ``code``, the rest is escaped."""
    parts = _MARKDOWN_CODE.split(text)
    return "".join(f"``{part}``" if index % 2 else escape(part) for index, part in enumerate(parts))


def literal(value: Any) -> str:
    """A JSON value as an inline literal."""
    text = value if isinstance(value, str) and value.startswith('"') else json.dumps(value, ensure_ascii=False)
    return f"``{text}``"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def heading(title: str, underline: str) -> list[str]:
    return [title, underline * max(len(title), 3), ""]


def table(header: list[str], rows: list[list[str]], widths: list[int] | None = None) -> list[str]:
    """A list-table; cells may hold several lines."""
    lines = [".. list-table::", "   :header-rows: 1"]
    if widths:
        lines.append(f"   :widths: {' '.join(map(str, widths))}")
    lines.append("")
    for row in [header, *rows]:
        for index, cell in enumerate(row):
            cell_lines = cell.splitlines() or [""]
            marker = "   * - " if index == 0 else "     - "
            lines.append(marker + cell_lines[0])
            lines.extend("       " + line for line in cell_lines[1:])
    lines.append("")
    return lines


class GeneratedDirective(SphinxDirective):
    """A directive that writes reStructuredText and parses it where it stands."""

    def parse_lines(self, lines: list[str]) -> list[nodes.Node]:
        container = nodes.section()
        container.document = self.state.document
        source = self.get_source_info()[0] or "<generated>"
        content = StringList()
        for number, line in enumerate(lines):
            content.append(line, source, number)
        nested_parse_with_titles(self.state, content, container)
        return list(container.children)


# --------------------------------------------------------------------------
# public-api


def _defining_module(package: str, name: str, obj: Any) -> str:
    """The module that defines *name* (for data: the module that assigns it at top level)."""
    module_name = getattr(obj, "__module__", None)
    if (inspect.isclass(obj) or inspect.isroutine(obj)) and isinstance(module_name, str):
        return module_name
    for candidate in _assignments_of(name):
        module = sys.modules.get(candidate)
        if module is not None and getattr(module, name, None) is obj:
            return candidate
    return package


_MODULES: list[str] = []


def _package_modules() -> list[str]:
    """Our packages and their private modules (where public names are defined); never ``__main__``."""
    if not _MODULES:
        for package_name in ("modbus_core", "modbus_anyio", "modbus_sync"):
            package = importlib.import_module(package_name)
            _MODULES.append(package_name)
            for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
                last = info.name.rsplit(".", 1)[-1]
                if info.ispkg or (last.startswith("_") and last != "__main__"):
                    _MODULES.append(info.name)
    return _MODULES


_SOURCES: dict[str, ast.Module] = {}


def _module_ast(module_name: str) -> tuple[ast.Module, str] | None:
    try:
        module = importlib.import_module(module_name)
        source = inspect.getsource(module)
    except (ImportError, OSError, TypeError):
        return None
    if module_name not in _SOURCES:
        _SOURCES[module_name] = ast.parse(source)
    return _SOURCES[module_name], source


def _assigned_value(module_name: str, name: str) -> str | None:
    """The source text assigned to *name* at the top level of *module_name*, or None."""
    parsed = _module_ast(module_name)
    if parsed is None:
        return None
    tree, source = parsed
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == name for target in node.targets
        ):
            return ast.get_source_segment(source, node.value)
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == name
            and node.value is not None
        ):
            return ast.get_source_segment(source, node.value)
    return None


def _assignments_of(name: str) -> list[str]:
    return [module for module in _package_modules() if _assigned_value(module, name) is not None]


def _attribute_doc(module_name: str, name: str) -> list[str]:
    from sphinx.pycode import ModuleAnalyzer

    try:
        analyzer = ModuleAnalyzer.for_module(module_name)
        docs = analyzer.find_attr_docs()
    except Exception:  # noqa: BLE001 - no source: no docstring
        return []
    return list(docs.get(("", name), []))


def _public_home(defining_module: str) -> str:
    """The public module a private one belongs to (``modbus_anyio._handler`` -> ``modbus_anyio``)."""
    public: list[str] = []
    for part in defining_module.split("."):
        if part.startswith("_"):
            break
        public.append(part)
    return ".".join(public)


def _is_public_class(cls: type) -> bool:
    """A class from outside modbuskit, or one that a package exports."""
    module = getattr(cls, "__module__", "")
    if not module.startswith(("modbus_core", "modbus_anyio", "modbus_sync")):
        return True
    return any(
        getattr(importlib.import_module(package), cls.__name__, None) is cls
        and cls.__name__ in getattr(importlib.import_module(package), "__all__", ())
        for package in PACKAGES
    )


def _documented_as(name: str, obj: Any, public_home: str) -> str:
    """Where *obj* has its full entry: the first package exporting it from its home, else its home."""
    for package_name in PACKAGES:
        if package_name != public_home and not public_home.startswith(f"{package_name}."):
            continue
        package = importlib.import_module(package_name)
        if name in getattr(package, "__all__", ()) and getattr(package, name, None) is obj:
            return f"{package_name}.{name}"
    return f"{public_home}.{name}"


class PublicApi(GeneratedDirective):
    required_arguments = 1
    option_spec: ClassVar[dict[str, Callable[[str], Any]]] = {"level": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        package_name = self.arguments[0]
        underline = self.options.get("level", "-")
        package = importlib.import_module(package_name)
        exported = list(getattr(package, "__all__", []))
        if not exported:
            raise self.error(f"{package_name} has no __all__")
        sections: Mapping[str, str] = self.config.public_api_sections
        groups: dict[str, list[tuple[str, Any, str]]] = {}
        for name in exported:
            obj = getattr(package, name)
            home = _defining_module(package_name, name, obj)
            groups.setdefault(home, []).append((name, obj, home))
        order = list(sections)
        ordered = sorted(groups, key=lambda module: (order.index(module) if module in order else len(order), module))
        lines = [f".. py:currentmodule:: {package_name}", ""]
        for module in ordered:
            title = sections.get(module)
            if title is None:
                title = "Other names" if module == package_name else f"From {_public_home(module) or module}"
            lines += heading(title, underline)
            for name, obj, home in sorted(groups[module], key=lambda item: item[0].lstrip("_").lower()):
                lines += self.entry(package_name, name, obj, home)
        self.env.note_dependency(inspect.getfile(package))
        return self.parse_lines(lines)

    def entry(self, package_name: str, name: str, obj: Any, home: str) -> list[str]:
        full = f"{package_name}.{name}"
        public_home = _public_home(home)
        if public_home and public_home != package_name and not public_home.startswith(f"{package_name}."):
            return self.alias(name, obj, public_home)
        if inspect.isclass(obj):
            kind = "autoexception" if issubclass(obj, BaseException) else "autoclass"
            lines = [f".. {kind}:: {full}", "   :members:"]
            if issubclass(obj, enum.Enum) or dataclasses.is_dataclass(obj):
                lines.append("   :undoc-members:")
            if any(not _is_public_class(base) for base in obj.__mro__[1:]):
                # Methods a private base class defines are documented here, under the public name.
                lines.append("   :inherited-members:")
            elif obj.__bases__ not in ((object,), (enum.Enum,), (enum.IntEnum,), (enum.StrEnum,)):
                lines.append("   :show-inheritance:")
            return [*lines, ""]
        if inspect.isroutine(obj):
            return [f".. autofunction:: {full}", ""]
        value = _assigned_value(home, name)
        lines = [f".. py:data:: {name}"]  # under py:currentmodule: the package
        if value is not None and len(value) <= 200 and "\n" not in value:
            lines.append(f"   :value: {value}")
        lines.append("")
        lines += [f"   {line}" if line else "" for line in _attribute_doc(home, name)]
        return [*lines, ""]

    @staticmethod
    def alias(name: str, obj: Any, public_home: str) -> list[str]:
        target = _documented_as(name, obj, public_home)
        if inspect.isclass(obj):
            kind, role = ("exception", "exc") if issubclass(obj, BaseException) else ("class", "class")
        elif inspect.isroutine(obj):
            kind, role = "function", "func"
        else:
            kind, role = "data", "data"
        # No index entry: a second target for the same object would make bare
        # references to it ambiguous.
        return [
            f".. py:{kind}:: {name}",
            "   :no-index:",
            "",
            f"   The same object as :py:{role}:`{target}`, re-exported here.",
            "",
        ]


# --------------------------------------------------------------------------
# JSON Schema


def _load_resource(spec: str) -> Any:
    """``package/resource.json`` from package data, or ``module:function`` called."""
    if ":" in spec:
        module_name, _, attribute = spec.partition(":")
        function: Callable[[], Any] = getattr(importlib.import_module(module_name), attribute)
        return function()
    package, _, resource = spec.partition("/")
    return json.loads(resources.files(package).joinpath(resource).read_text(encoding="utf-8"))


def _source_file(spec: str) -> str | None:
    try:
        if ":" in spec:
            return inspect.getfile(importlib.import_module(spec.partition(":")[0]))
        package, _, resource = spec.partition("/")
        return str(resources.files(package).joinpath(resource))
    except (ImportError, TypeError):
        return None


class SchemaRenderer:
    """Type descriptions and property tables for JSON Schema (draft 2020-12 and OpenAPI 3.1)."""

    def __init__(self, root: Mapping[str, Any], label_prefix: str, definitions: str) -> None:
        self.root = root
        self.label_prefix = label_prefix
        self.definitions_key = definitions  # "$defs", or "components/schemas"
        self.definitions: Mapping[str, Any] = root
        for part in definitions.split("/"):
            self.definitions = self.definitions.get(part, {})

    def is_linked(self, definition: str) -> bool:
        """Object-like definitions get a section; simple ones are spelled out where used."""
        schema = self.definitions.get(definition, {})
        alternatives = schema.get("oneOf", []) + schema.get("allOf", [])
        return (
            "properties" in schema
            or schema.get("type") == "object"
            or any(isinstance(item, dict) and ("properties" in item or "$ref" in item) for item in alternatives)
        )

    def label(self, definition: str) -> str:
        return f"{self.label_prefix}-{slug(definition)}"

    def ref_name(self, reference: str) -> str:
        return reference.rsplit("/", 1)[-1]

    def describe(self, schema: Any) -> str:
        """A short description of what *schema* accepts (reStructuredText)."""
        if schema is False:
            return "not allowed"
        if schema is True or not isinstance(schema, Mapping) or not schema:
            return "any value"
        if "$ref" in schema:
            name = self.ref_name(schema["$ref"])
            if self.is_linked(name):
                return f":ref:`{name} <{self.label(name)}>`"
            return self.describe(self.definitions.get(name, {}))
        if "const" in schema:
            return literal(schema["const"])
        if "enum" in schema:
            return "one of " + ", ".join(literal(value) for value in schema["enum"])
        if "oneOf" in schema or "anyOf" in schema:
            return " or ".join(self.describe(item) for item in schema.get("oneOf", schema.get("anyOf", [])))
        if "allOf" in schema and "type" not in schema:
            return ", and ".join(self.describe(item) for item in schema["allOf"] if "if" not in item)
        kinds = schema.get("type")
        if isinstance(kinds, list):
            described = [self.describe({**schema, "type": kind}) for kind in kinds if kind != "null"]
            text = " or ".join(described)
            return f"{text}, or ``null``" if "null" in kinds else text
        return self.describe_type(kinds, schema)

    def describe_type(self, kind: Any, schema: Mapping[str, Any]) -> str:
        if kind in ("integer", "number"):
            low, high = schema.get("minimum"), schema.get("maximum")
            low_open, high_open = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
            if low is not None and high is not None:
                bounds = [f"{low}..{high}"]
            else:
                bounds = []
                if low is not None:
                    bounds.append(f"≥ {low}")
                if low_open is not None:
                    bounds.append(f"> {low_open}")
                if high is not None:
                    bounds.append(f"≤ {high}")
                if high_open is not None:
                    bounds.append(f"< {high_open}")
            text = f"{kind} {', '.join(bounds)}" if bounds else kind
            if "not" in schema and isinstance(schema["not"], Mapping) and "const" in schema["not"]:
                text += f", not {literal(schema['not']['const'])}"
            return text
        if kind == "string":
            details = []
            low, high = schema.get("minLength"), schema.get("maxLength")
            if low and high:
                details.append(f"{low}..{high} characters")
            elif high:
                details.append(f"at most {high} characters")
            elif low:
                details.append("not empty" if low == 1 else f"at least {low} characters")
            if "pattern" in schema:
                details.append(f"matching ``{schema['pattern']}``")
            if "format" in schema:
                details.append(f"format {schema['format']}")
            return "string" + (f" ({', '.join(details)})" if details else "")
        if kind == "array":
            if "prefixItems" in schema:
                return "[" + ", ".join(self.describe(item) for item in schema["prefixItems"]) + "]"
            text = "array"
            if "items" in schema:
                text = f"array of {self.describe(schema['items'])}"
            low, high = schema.get("minItems"), schema.get("maxItems")
            if low:
                text += f" (at least {low})" if not high else f" ({low}..{high} items)"
            return text
        if kind == "object" or "properties" in schema or "additionalProperties" in schema:
            extra = schema.get("additionalProperties")
            if "properties" not in schema and isinstance(extra, Mapping):
                keys = ""
                names = schema.get("propertyNames", {})
                if isinstance(names, Mapping) and "pattern" in names:
                    keys = f" (keys matching ``{names['pattern']}``)"
                return f"object{keys} mapping names to {self.describe(extra)}"
            properties = schema.get("properties", {})
            if properties:
                fields = ", ".join(f"``{key}`` ({self.describe(sub)})" for key, sub in properties.items())
                return f"object with {fields}"
            return "object"
        if kind == "boolean":
            return "boolean"
        if kind == "null":
            return "``null``"
        if kind is None and "description" in schema:
            return "any value"
        return str(kind or "any value")

    def rows(self, schema: Mapping[str, Any], prefix: str = "") -> list[list[str]]:
        """Property rows: key, type, default, description; inline objects flattened as ``a.b``."""
        required = set(schema.get("required", []))
        rows: list[list[str]] = []
        for key, sub in schema.get("properties", {}).items():
            name = f"{prefix}{key}"
            key_cell = f"``{name}``" + (" (required)" if key in required else "")
            if sub is False:
                rows.append([key_cell, "not allowed", "", ""])
                continue
            nested = isinstance(sub, Mapping) and "properties" in sub and "$ref" not in sub
            default = literal(sub["default"]) if isinstance(sub, Mapping) and "default" in sub else ""
            description = escape(sub.get("description", "")) if isinstance(sub, Mapping) else ""
            if nested:
                rows.append([key_cell, "object", default, description or "See the keys below."])
                rows += self.rows(sub, prefix=f"{name}.")
            else:
                rows.append([key_cell, self.describe(sub), default, description])
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping) and "properties" in schema:
            rows.append([f"``{prefix}<any name>``", self.describe(extra), "", ""])
        return rows

    def property_table(self, schema: Mapping[str, Any]) -> list[str]:
        rows = self.rows(schema)
        if not rows:
            return []
        return table(["Key", "Type", "Default", "Description"], rows, [18, 30, 10, 42])

    def condition(self, schema: Mapping[str, Any]) -> str:
        parts = []
        for key, sub in schema.get("properties", {}).items():
            if isinstance(sub, Mapping) and "const" in sub:
                parts.append(f"``{key}`` is {literal(sub['const'])}")
            else:
                parts.append(f"``{key}`` is {self.describe(sub)}")
        return " and ".join(parts) or "always"

    def consequence(self, schema: Any) -> str:
        if not isinstance(schema, Mapping):
            return self.describe(schema)
        parts = []
        if schema.get("required"):
            parts.append(", ".join(f"``{key}``" for key in schema["required"]) + " required")
        refused = [key for key, sub in schema.get("properties", {}).items() if sub is False]
        if refused:
            parts.append(", ".join(f"``{key}``" for key in refused) + " not allowed")
        for key, sub in schema.get("properties", {}).items():
            if sub is not False:
                parts.append(f"``{key}``: {self.describe(sub)}")
        return "; ".join(parts) or "no further rule"

    def rules(self, schema: Mapping[str, Any]) -> list[str]:
        lines = []
        for item in schema.get("allOf", []):
            if not isinstance(item, Mapping) or "if" not in item:
                continue
            text = f"* When {self.condition(item['if'])}: {self.consequence(item.get('then', {}))}"
            if "else" in item:
                text += f". Otherwise: {self.consequence(item['else'])}"
            lines.append(text + ".")
        return ["Rules:", "", *lines, ""] if lines else []

    def definition_section(self, name: str, schema: Mapping[str, Any], underline: str) -> list[str]:
        lines = [f".. _{self.label(name)}:", "", *heading(name, underline)]
        if schema.get("description"):
            lines += [escape(schema["description"]), ""]
        alternatives = schema.get("oneOf", [])
        if alternatives and "properties" not in schema:
            lines += ["One of:", ""]
            objects = []
            for item in alternatives:
                if isinstance(item, Mapping) and "properties" in item:
                    lines.append("* an object with the keys below")
                    objects.append(item)
                else:
                    lines.append(f"* {self.describe(item)}")
            lines.append("")
            for item in objects:
                lines += self.property_table(item)
                lines += self.rules(item)
        for item in schema.get("allOf", []):
            if isinstance(item, Mapping) and "$ref" in item:
                name = self.ref_name(item["$ref"])
                lines += [f"Every key of :ref:`{name} <{self.label(name)}>`, and:", ""]
            elif isinstance(item, Mapping) and "properties" in item:
                lines += self.property_table(item)
        lines += self.property_table(schema)
        lines += self.rules(schema)
        return lines


def _reference_order(schema: Any, names: list[str]) -> list[str]:
    """*names* in the order a reader meets them: depth first from the top level, then the rest."""
    seen: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            reference = node.get("$ref")
            if isinstance(reference, str):
                name = reference.rsplit("/", 1)[-1]
                if name in names and name not in seen:
                    seen.append(name)
                    walk(schema.get("$defs", {}).get(name))
            for key, value in node.items():
                if key != "$defs":
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(schema)
    return seen + [name for name in names if name not in seen]


class JsonSchemaReference(GeneratedDirective):
    required_arguments = 1
    option_spec: ClassVar[dict[str, Callable[[str], Any]]] = {
        "level": directives.unchanged,
        "label": directives.unchanged,
    }

    def run(self) -> list[nodes.Node]:
        spec = self.arguments[0]
        try:
            schema = _load_resource(spec)
        except (ImportError, OSError, ValueError, AttributeError) as error:
            raise self.error(f"cannot load the JSON Schema {spec}: {error}") from None
        source = _source_file(spec)
        if source:
            self.env.note_dependency(source)
        underline = self.options.get("level", "-")
        renderer = SchemaRenderer(schema, self.options.get("label", slug(spec)), "$defs")
        lines: list[str] = []
        if schema.get("description"):
            lines += [escape(schema["description"]), ""]
        if schema.get("$id"):
            lines += [f"Schema id: ``{schema['$id']}`` (JSON Schema ``{schema.get('$schema', '')}``).", ""]
        lines += [f".. _{renderer.label('top-level')}:", "", *heading("Top level", underline)]
        lines += renderer.property_table(schema)
        lines += renderer.rules(schema)
        definitions = schema.get("$defs", {})
        simple = [name for name in definitions if not renderer.is_linked(name)]
        for name in _reference_order(schema, [name for name in definitions if renderer.is_linked(name)]):
            lines += renderer.definition_section(name, definitions[name], underline)
        if simple:
            lines += heading("Value types", underline)
            lines += ["Written out in full where they are used:", ""]
            lines += table(
                ["Name", "Accepts", "Description"],
                [
                    [f"``{name}``", renderer.describe(schema), escape(schema.get("description", ""))]
                    for name, schema in ((name, definitions[name]) for name in simple)
                ],
                [20, 45, 35],
            )
        return self.parse_lines(lines)


# --------------------------------------------------------------------------
# OpenAPI

_METHODS = ("get", "put", "post", "patch", "delete")


def _anchor(prefix: str, method: str, path: str) -> str:
    return f"{prefix}-{slug(method + ' ' + path)}"


class OpenApiReference(GeneratedDirective):
    required_arguments = 1
    option_spec: ClassVar[dict[str, Callable[[str], Any]]] = {
        "level": directives.unchanged,
        "label": directives.unchanged,
    }

    def run(self) -> list[nodes.Node]:
        spec = self.arguments[0]
        try:
            document = _load_resource(spec)
        except (ImportError, OSError, ValueError, AttributeError) as error:
            raise self.error(f"cannot load the OpenAPI document {spec}: {error}") from None
        source = _source_file(spec)
        if source:
            self.env.note_dependency(source)
        underline = self.options.get("level", "-")
        sub_underline = {"-": "~", "~": "^", "=": "-"}.get(underline, "^")
        prefix = self.options.get("label", "openapi")
        renderer = SchemaRenderer(document, f"{prefix}-schema", "components/schemas")
        info = document.get("info", {})
        lines: list[str] = []
        if info.get("description"):
            lines += [prose(info["description"]), ""]
        lines += [f"OpenAPI {document.get('openapi', '3')}, API version {info.get('version', '')}.", ""]
        operations = [
            (path, method, item[method])
            for path, item in document.get("paths", {}).items()
            for method in _METHODS
            if method in item
        ]
        lines += heading("Operations", underline)
        lines += table(
            ["Operation", "Summary"],
            [
                [
                    f":ref:`{method.upper()} {escape(path)} <{_anchor(prefix, method, path)}>`",
                    prose(op.get("summary", "")),
                ]
                for path, method, op in operations
            ],
            [40, 60],
        )
        for path, method, operation in operations:
            lines += self.operation(path, method, operation, renderer, prefix, sub_underline)
        schemas = document.get("components", {}).get("schemas", {})
        if schemas:
            lines += heading("Schemas", underline)
            for name, schema in schemas.items():
                lines += renderer.definition_section(name, schema, sub_underline)
        return self.parse_lines(lines)

    @staticmethod
    def operation(
        path: str, method: str, operation: Mapping[str, Any], renderer: SchemaRenderer, prefix: str, underline: str
    ) -> list[str]:
        title = f"{method.upper()} {path}"
        lines = [f".. _{_anchor(prefix, method, path)}:", "", *heading(escape(title), underline)]
        if operation.get("summary"):
            lines += [f"**{prose(operation['summary'])}**", ""]
        if operation.get("description"):
            lines += [prose(operation["description"]), ""]
        parameters = operation.get("parameters", [])
        if parameters:
            rows = []
            for parameter in parameters:
                schema = parameter.get("schema", {})
                default = literal(schema["default"]) if "default" in schema else ""
                name = f"``{parameter['name']}``" + (" (required)" if parameter.get("required") else "")
                description = prose(parameter.get("description", ""))
                rows.append([name, parameter.get("in", ""), renderer.describe(schema), default, description])
            lines += table(["Parameter", "In", "Type", "Default", "Description"], rows, [16, 8, 26, 10, 40])
        body = operation.get("requestBody")
        if body:
            for media, content in body.get("content", {}).items():
                lines += [f"Request body ({media}): {renderer.describe(content.get('schema', {}))}.", ""]
                if "example" in content:
                    lines += ["Example:", "", ".. code-block:: json", ""]
                    lines += ["   " + line for line in json.dumps(content["example"], indent=2).splitlines()]
                    lines.append("")
        responses = operation.get("responses", {})
        if responses:
            lines += ["Responses:", ""]
            for status, response in responses.items():
                text = f"* **{status}**: {prose(response.get('description', ''))}"
                for media, content in response.get("content", {}).items():
                    schema = content.get("schema")
                    described = f": {renderer.describe(schema)}" if schema else ""
                    text += f" ``{media}``{described}."
                lines.append(text)
            lines.append("")
        return lines


# --------------------------------------------------------------------------
# screenshots


class Screenshot(GeneratedDirective):
    required_arguments = 1
    has_content = True
    option_spec: ClassVar[dict[str, Callable[[str], Any]]] = {
        "alt": directives.unchanged,
        "width": directives.unchanged,
    }

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        path = Path(self.env.srcdir) / "_static" / "screenshots" / name
        alt = self.options.get("alt", name)
        if not path.exists():
            text = (
                f".. note:: The screenshot ``{name}`` is made by the simulator's browser tests "
                "(``.venv/bin/python -m pytest tests/simulator -m browser``), which save it to "
                "``docs/_static/screenshots/``; it has not been made in this checkout yet."
            )
            return self.parse_lines([text, ""])
        self.env.note_dependency(str(path))
        lines = [f".. figure:: /_static/screenshots/{name}", f"   :alt: {alt}"]
        if "width" in self.options:
            lines.append(f"   :width: {self.options['width']}")
        lines.append("")
        lines += [f"   {line}" for line in self.content]
        return self.parse_lines([*lines, ""])


def resolve_reexport(app: Sphinx, env: Any, node: Any, contnode: Any) -> Any:
    """Link a name to its full entry when the page's package only re-exports it.

    ``:class:`RolePolicy``` in a ``modbus_sync`` docstring finds no
    ``modbus_sync.RolePolicy`` target (re-exports get no index entry, see
    ``PublicApi.alias``): point it at ``modbus_anyio.RolePolicy``.
    """
    if node.get("refdomain") != "py":
        return None
    target: str = node["reftarget"].lstrip("~.")
    package = next((name for name in PACKAGES if target.startswith(f"{name}.")), None)
    name = target.removeprefix(f"{package}.") if package else target
    if "." in name:
        return None
    module = node.get("py:module") or ""
    order = sorted(PACKAGES, key=lambda candidate: not module.startswith(candidate))
    domain = env.get_domain("py")
    for candidate in order:
        entry = domain.objects.get(f"{candidate}.{name}")
        if entry is not None and not entry.aliased:
            return domain.resolve_xref(
                env, node["refdoc"], app.builder, node["reftype"], f"{candidate}.{name}", node, contnode
            )
    return None


def hide_private_bases(app: Sphinx, name: str, obj: object, options: object, bases: list[type]) -> None:
    """Leave private mixins (the shapes PDUs share) out of "Bases:" lines."""
    bases[:] = [base for base in bases if not base.__name__.startswith("_")]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("public_api_sections", {}, "env", types=[dict])
    app.add_directive("public-api", PublicApi)
    app.add_directive("jsonschema-reference", JsonSchemaReference)
    app.add_directive("openapi-reference", OpenApiReference)
    app.add_directive("screenshot", Screenshot)
    app.connect("missing-reference", resolve_reexport)
    app.connect("autodoc-process-bases", hide_private_bases)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}


def public_names(packages: Iterable[str] = PACKAGES) -> dict[str, list[str]]:
    """Every package's ``__all__`` (for the tests)."""
    return {package: list(importlib.import_module(package).__all__) for package in packages}
