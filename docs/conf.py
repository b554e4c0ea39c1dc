"""Sphinx configuration for the modbuskit documentation."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

project = "modbuskit"
author = "the modbuskit developers"
copyright = "2026, the modbuskit developers"  # noqa: A001 - Sphinx's name

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
html_theme = "furo"
html_title = "modbuskit"
autodoc_member_order = "bysource"
autodoc_typehints = "description"
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
}
# The build runs offline in CI: never fetch inventories there.
intersphinx_disabled_reftypes = ["*"]
nitpicky = False
exclude_patterns = ["_build"]
