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
