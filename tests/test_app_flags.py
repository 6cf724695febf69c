"""tf.app.flags / tf.flags (absl-style parsing, bounds, errors) and tf.app.run."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

import gradverify.engine as tf
from gradverify.engine import flags


@pytest.fixture
def fv():
    values = flags.FlagValues()
    flags.DEFINE_string("data_dir", "/tmp/data", "where", flag_values=values)
    flags.DEFINE_integer("steps", 100, "how many", lower_bound=1, flag_values=values)
    flags.DEFINE_float("learning_rate", 0.5, "rate", lower_bound=0.0, flag_values=values)
    flags.DEFINE_boolean("fake_data", False, "fake", flag_values=values)
    flags.DEFINE_bool("verbose", True, "chatty", flag_values=values)
    flags.DEFINE_enum("mode", "train", ["train", "eval"], "what", flag_values=values)
    flags.DEFINE_list("layers", "64,32", "sizes", flag_values=values)
    return values


def test_tf_app_flags_is_tf_flags_with_a_global_flags_object():
    assert tf.app.flags is tf.flags
    assert isinstance(tf.app.flags.FLAGS, flags.FlagValues)
    assert tf.flags.FLAGS is tf.app.flags.FLAGS


def test_defaults_after_parsing_an_empty_command_line(fv):
    assert fv(["prog"]) == ["prog"]
    assert fv.flag_values_dict() == {
        "data_dir": "/tmp/data", "steps": 100, "learning_rate": 0.5, "fake_data": False,
        "verbose": True, "mode": "train", "layers": ["64", "32"]}


def test_every_spelling_of_values(fv):
    rest = fv(["prog", "--data_dir", "/d", "-steps=7", "--learning_rate=1e-3",
               "--fake_data", "--noverbose", "pos", "--mode=eval", "--layers=8, 4",
               "--", "--steps=9"])
    assert rest == ["prog", "pos", "--steps=9"]
    assert (fv.data_dir, fv.steps, fv.learning_rate, fv.fake_data, fv.verbose, fv.mode,
            fv.layers) == ("/d", 7, 1e-3, True, False, "eval", ["8", "4"])
    fv(["prog", "--fake_data=false", "--verbose=1", "--steps=0x10"])
    assert (fv.fake_data, fv.verbose, fv.steps) == (False, True, 16)


@given(st.integers(1, 10**12), st.floats(0, 1e6, allow_nan=False), st.booleans())
def test_parsed_values_round_trip(steps, rate, fake):
    values = flags.FlagValues()
    flags.DEFINE_integer("steps", 1, "", lower_bound=1, flag_values=values)
    flags.DEFINE_float("rate", 0.0, "", lower_bound=0.0, flag_values=values)
    flags.DEFINE_boolean("fake", True, "", flag_values=values)
    values(["p", f"--steps={steps}", "--rate", repr(rate), f"--fake={fake}"])
    assert (values.steps, values.rate, values.fake) == (steps, rate, fake)


def test_errors_name_the_flag_and_value(fv):
    with pytest.raises(flags.UnparsedFlagAccessError, match="--steps before flags were "
                                                           "parsed"):
        _ = fv.steps
    with pytest.raises(flags.UnrecognizedFlagError, match="'stepz'"):
        fv(["prog", "--stepz=3"])
    assert fv(["prog", "--stepz=3"], known_only=True) == ["prog", "--stepz=3"]
    for bad, pattern in [("--steps=abc", "--steps=abc"), ("--steps=0", r"0 is not >= 1"),
                         ("--learning_rate=-1", "not >= 0.0"), ("--mode=test", "train|eval"),
                         ("--fake_data=maybe", "Non-boolean"), ("--steps", "Missing value")]:
        with pytest.raises(flags.IllegalFlagValueError, match=pattern):
            fv(["prog", bad])
    with pytest.raises(flags.IllegalFlagValueError, match="not >= 1"):  # defaults too
        flags.DEFINE_integer("n", 0, "", lower_bound=1, flag_values=fv)
    with pytest.raises(AttributeError):
        _ = fv.nothing


def test_duplicate_definition_from_another_file_is_an_error(fv):
    code = "flags.DEFINE_integer('steps', 1, '', flag_values=fv)"
    with pytest.raises(flags.DuplicateFlagError, match="'steps' is defined twice"):
        exec(compile(code, "/elsewhere/other.py", "exec"), {"flags": flags, "fv": fv})


def test_required_flag(fv):
    flags.DEFINE_string("out", None, "output", flag_values=fv)
    flags.mark_flag_as_required("out", flag_values=fv)
    with pytest.raises(flags.IllegalFlagValueError, match="--out"):
        fv(["prog"])
    fv(["prog", "--out=x"])
    assert fv.out == "x"


def test_assigning_a_flag_parses_it(fv):
    fv(["prog"])
    fv.steps = "12"
    assert fv.steps == 12
    with pytest.raises(flags.IllegalFlagValueError):
        fv.steps = -4


def test_app_run_passes_unknown_flags_to_main_and_exits_with_its_value(fv):
    seen = []

    def main(argv):
        seen.append((argv, fv.steps))
        return 3
    with pytest.raises(SystemExit) as e:
        tf.app.run(main, argv=["prog", "--steps=5", "--unknown", "x"], flag_values=fv)
    assert e.value.code == 3 and seen == [(["prog", "--unknown", "x"], 5)]


def test_app_run_bad_value_exits_1_with_message(fv, capsys):
    with pytest.raises(SystemExit) as e:
        tf.app.run(lambda argv: 0, argv=["prog", "--steps=zero"], flag_values=fv)
    assert e.value.code == 1
    assert "FATAL Flags parsing error: flag --steps=zero" in capsys.readouterr().err


def test_app_run_as_a_script_uses_sys_argv_and_main():
    script = textwrap.dedent("""
        import gradverify.engine as tf
        tf.app.flags.DEFINE_integer("n", 2, "count")
        FLAGS = tf.app.flags.FLAGS
        def main(_):
            print("n =", FLAGS.n)
        if __name__ == "__main__":
            tf.app.run()
    """)
    out = subprocess.run([sys.executable, "-c", script, "--n=6"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "n = 6"
    helped = subprocess.run([sys.executable, "-c", script, "--help"], capture_output=True,
                            text=True, check=True)
    assert "--n: count" in helped.stdout
