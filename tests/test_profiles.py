"""Hypothesis profiles: the generated tests' settings come from the chosen profile and never
from whatever profile happens to be loaded globally."""

from __future__ import annotations

import pytest
from hypothesis import Phase, settings

from gradverify.properties.profiles import PROFILES, generated_settings, profile_settings


@pytest.fixture
def foreign_global_profile():
    """Somebody else's profile loaded globally, as a user's conftest may do."""
    before = settings.get_current_profile_name()
    settings.register_profile("gv-test-foreign", max_examples=3, derandomize=True,
                              deadline=1)
    settings.load_profile("gv-test-foreign")
    yield
    settings.load_profile(before)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_our_profiles_ignore_the_global_one(foreign_global_profile, name):
    s = profile_settings(name)
    for key, value in PROFILES[name].items():
        got = getattr(s, key)
        assert (tuple(got) == tuple(value)) if isinstance(value, list) else got == value, key
    if "derandomize" not in PROFILES[name]:
        assert s.derandomize is False   # not inherited from the loaded profile


def test_generated_settings_have_no_deadline_and_no_explanation(foreign_global_profile):
    for name in PROFILES:
        s = generated_settings(name)
        assert s.deadline is None and Phase.explain not in s.phases
        assert s.max_examples == PROFILES[name]["max_examples"]


def test_a_users_registered_profile_is_used_as_registered(foreign_global_profile):
    assert generated_settings("gv-test-foreign").max_examples == 3


def test_an_unknown_profile_is_an_error():
    with pytest.raises(ValueError, match="unknown Hypothesis profile 'nope'"):
        profile_settings("nope")


def test_our_own_source_never_feeds_hypothesis_constants(tmp_path):
    # An editable install puts our modules outside site-packages, where Hypothesis mines
    # their literals for its draws: the same --seed then drew different examples in an
    # editable and a regular install, and a printed reproduction line did not reproduce.
    import sys

    from hypothesis.internal.conjecture import providers

    import gradverify.engine
    import gradverify.harness.checker  # noqa: F401 - their files are what is asked about
    from gradverify.properties.profiles import exclude_own_constants, register_profiles

    register_profiles()
    exclude_own_constants()   # idempotent: wraps once
    assert getattr(providers.is_local_module_file, "gradverify_excluded", False)
    own = [m.__file__ for name, m in list(sys.modules.items())
           if name.split(".")[0] == "gradverify" and getattr(m, "__file__", None)]
    assert any("harness" in f for f in own) and any("engine" in f for f in own)
    assert not any(providers.is_local_module_file(f) for f in own)
    user = tmp_path / "userops.py"
    user.write_text("LIMIT = 0.125\n")
    assert providers.is_local_module_file(str(user))   # a user's own code still counts
