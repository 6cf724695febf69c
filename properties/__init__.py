"""gradverify's property suite: Hypothesis strategies and properties generated from the op
registry, profiles, and the pytest plugin. Names load on first use (pytest imports the
plugin in every project where gradverify is installed).

>>> from gradverify.properties import op_suite
>>> test_relu = op_suite("Relu")      # in a test module: every property of Relu
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "op_suite": ".plugin", "ops_of": ".targets", "run_property": ".plugin",
    "op_properties": ".checks", "property_test": ".checks",
    "validate": ".checks", "op_cases": ".strategies",
    "shapes": ".strategies", "values_in": ".strategies",
    "load_profile": ".profiles", "active_profile": ".profiles",
    "generated_settings": ".profiles",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
