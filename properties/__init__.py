"""gradverify's property suite: Hypothesis strategies and properties generated from the op
registry, profiles, and the pytest plugin. Names load on first use (pytest imports the
plugin in every project where gradverify is installed).

>>> from properties import op_suite
>>> test_relu = op_suite("Relu")      # in a test module: every property of Relu
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "op_suite": "properties.plugin", "ops_of": "properties.plugin",
    "op_properties": "properties.checks", "property_test": "properties.checks",
    "validate": "properties.checks", "op_cases": "properties.strategies",
    "shapes": "properties.strategies", "values_in": "properties.strategies",
    "load_profile": "properties.profiles", "active_profile": "properties.profiles",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'properties' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
