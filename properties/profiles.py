"""Hypothesis profiles for the property suite, registered in this one place.

- ``dev`` (default on a workstation): 60 examples per property, random, with the example
  database so a failure found once is replayed first next time.
- ``ci`` (selected automatically when the ``CI`` environment variable is set):
  derandomised — the same examples every run, so a red CI is reproducible and never flaky —
  no deadline (shared CI machines stall), no database, and the reproduction blob printed
  with every failure.
- ``thorough``: 400 examples per property, for ``tox -e thorough`` and nightly runs.

``HYPOTHESIS_PROFILE`` overrides the choice.

Nothing here changes Hypothesis' global settings on import: the tests gradverify generates
(``op_suite``, ``--gradverify-ops``, ``gradverify check``) carry their own
:func:`generated_settings`; a project's other ``@given`` tests keep whatever that project
chose. This repository's own ``tests/conftest.py`` calls :func:`load_profile`.

>>> from gradverify.properties.profiles import active_profile
>>> active_profile({"CI": "true"}), active_profile({"CI": "false"}), active_profile({})
('ci', 'dev', 'dev')
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path

from hypothesis import HealthCheck, Phase, settings

__all__ = ["PROFILES", "exclude_own_constants", "register_profiles", "active_profile",
           "load_profile", "profile_settings", "generated_settings"]

# Generated cases are costly (a graph build and a gradient check each) and strategies
# filter on purpose (ops with coupled shapes); neither is a health problem here.
_QUIET = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]

PROFILES: dict[str, dict] = {
    "dev": dict(max_examples=60, deadline=None, suppress_health_check=_QUIET),
    "ci": dict(max_examples=25, deadline=None, derandomize=True, database=None,
               print_blob=True, suppress_health_check=_QUIET,
               phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target,
                       Phase.shrink]),
    "thorough": dict(max_examples=400, deadline=None, suppress_health_check=_QUIET,
                     print_blob=True),
}


def _own_source_roots() -> tuple[str, ...]:
    """The folders gradverify's modules are loaded from (several in an editable install,
    where ``gradverify.engine`` maps to a top-level ``engine/`` folder), without importing
    the subpackages."""
    roots = []
    for name in ("gradverify", "gradverify.engine", "gradverify.harness",
                 "gradverify.properties"):
        spec = importlib.util.find_spec(name)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            roots.append(str(Path(folder).resolve()) + os.sep)
    return tuple(roots)


def exclude_own_constants() -> None:
    """Keep gradverify's own source out of the constants Hypothesis mixes into its draws.

    Hypothesis draws, now and then, a number found in the source of "local" modules: those
    outside site-packages. gradverify is local in an editable install and not in a regular
    one, so the same ``--seed`` drew different examples in the two, and a reproduction line
    printed by one did not reproduce in the other. Excluding our own modules makes the draws
    depend on the seed and the user's code only. Idempotent; a Hypothesis without this
    mechanism is left alone.

    >>> exclude_own_constants()
    >>> from hypothesis.internal.conjecture import providers
    >>> import gradverify.harness.budget as own
    >>> providers.is_local_module_file(own.__file__)
    False
    """
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:   # pragma: no cover - a Hypothesis without local constants
        return
    original = getattr(providers, "is_local_module_file", None)
    if original is None or getattr(original, "gradverify_excluded", False):
        return
    roots = _own_source_roots()

    @functools.lru_cache(4096)
    def is_local_module_file(path: str) -> bool:
        return original(path) and not str(Path(path).resolve()).startswith(roots)

    is_local_module_file.gradverify_excluded = True  # type: ignore[attr-defined]
    providers.is_local_module_file = is_local_module_file
    # Modules scanned before this point (another project's @given test that ran first)
    # are scanned again, under the new rule.
    if hasattr(providers, "_seen_modules") and hasattr(providers, "_sys_modules_len"):
        providers._seen_modules.clear()
        providers._sys_modules_len = None
        for pool in ("integers", "floats", "bytes", "strings"):
            getattr(providers._local_constants, pool).clear()
        providers.CONSTANTS_CACHE.cache.clear()


def register_profiles() -> None:
    """Register ``dev``, ``ci`` and ``thorough`` with Hypothesis (idempotent), each on top of
    Hypothesis' defaults (not of whatever is loaded: Hypothesis loads its own derandomised
    ``ci`` profile when it detects a CI service)."""
    exclude_own_constants()
    default = settings.get_profile("default")
    for name, kwargs in PROFILES.items():
        settings.register_profile(name, parent=default, **kwargs)


def active_profile(environ: Mapping[str, str] | None = None) -> str:
    """The profile to use: ``HYPOTHESIS_PROFILE``, else ``ci`` when ``CI`` is set, else
    ``dev``."""
    environ = os.environ if environ is None else environ
    chosen = environ.get("HYPOTHESIS_PROFILE")
    if chosen:
        if chosen not in PROFILES and chosen not in settings._profiles:
            raise ValueError(f"unknown Hypothesis profile {chosen!r}; choose one of "
                             f"{', '.join(PROFILES)}")
        return chosen
    ci = environ.get("CI", "").strip().lower()
    return "ci" if ci not in ("", "0", "false", "no") else "dev"


def load_profile(name: str | None = None) -> str:
    """Register the profiles and load ``name`` (default: :func:`active_profile`)."""
    register_profiles()
    name = name or active_profile()
    settings.load_profile(name)
    return name


def profile_settings(name: str) -> settings:
    """The settings of profile ``name``: ours (``dev``, ``ci``, ``thorough``) built on
    Hypothesis' defaults, whatever profile is loaded globally; any other registered profile
    as registered.

    >>> profile_settings("ci").max_examples
    25
    """
    exclude_own_constants()
    if name in PROFILES:
        return settings(settings.get_profile("default"), **PROFILES[name])
    try:
        return settings.get_profile(name)
    except Exception:  # noqa: BLE001 - Hypothesis raises InvalidArgument
        raise ValueError(f"unknown Hypothesis profile {name!r}; choose one of "
                         f"{', '.join(PROFILES)}") from None


def generated_settings(name: str | None = None) -> settings:
    """Settings for a generated op-property test: profile ``name`` (default
    :func:`active_profile`) without a deadline (a gradient check's cost varies tenfold with
    the drawn shape) and without Hypothesis' "Explanation" phase (it points at lines of the
    property machinery, not of the op).

    >>> s = generated_settings("dev")
    >>> s.deadline is None and Phase.explain not in s.phases
    True
    """
    parent = profile_settings(name or active_profile())
    return settings(parent, deadline=None,
                    phases=[p for p in parent.phases if p is not Phase.explain])
