"""The ``gradverify`` command line: exit statuses, reproducible JSON, JUnit, shards, the HTML
report (with and without matplotlib), ``explain`` and ``audit`` on the notMNIST example.

Runs are kept small (a few ops, a few examples); the faulty op lives in a temporary module
that ``check`` imports by path, and is unregistered afterwards.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gradverify import reports
from gradverify.cli import main
from gradverify.runner import CheckResult, TargetResult

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "notmnist_l2.py"

FAULTY_OPS = '''
"""A custom op whose gradient uses sigmoid(-x) instead of sigmoid(x)."""
import numpy as np

import gradverify.engine as tf
from gradverify.engine import meta


@tf.op("CliBadSoftplus", inputs={"x": meta.reals}, api=None,
       reference=lambda x: np.logaddexp(0.0, x))
def cli_bad_softplus(x):
    return np.logaddexp(0.0, x)


@cli_bad_softplus.gradient
def _(op, grad):
    return grad * tf.sigmoid(-op.inputs[0])
'''

FAULTY_OPTIMIZER = '''
import numpy as np
import gradverify.engine as tf


class SloppySGD(tf.train.GradientDescentOptimizer):
    """Records the plain SGD rule but steps twice as far."""

    def _apply_dense(self, grad, var):
        lr = self._hyper("learning_rate", self._learning_rate, var.dtype)
        return tf.assign_sub(var, 2.0 * lr * grad).op, {"learning_rate": lr}


w = tf.Variable(np.array([1.0, -2.0, 0.5]), name="w")
loss = tf.reduce_sum(w * w)
train_op = SloppySGD(0.1).minimize(loss)
'''

SMALL = ["--ops", "Tanh,MatMul,Square", "--properties", "shapes,forward,gradient", "--examples",
         "4", "--no-training"]


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("CI", None)
    env.pop("HYPOTHESIS_PROFILE", None)
    return subprocess.run([sys.executable, "-m", "gradverify", *args], capture_output=True,
                          text=True, cwd=cwd or ROOT, env=env, timeout=120, check=False)


@pytest.fixture
def faulty(tmp_path):
    """The faulty-op module as a file; the op is unregistered after the test."""
    path = tmp_path / "faulty_ops.py"
    path.write_text(FAULTY_OPS)
    yield path
    from gradverify.engine import registry
    if "CliBadSoftplus" in registry.list_ops():
        registry.unregister("CliBadSoftplus")
    sys.modules.pop("gradverify_user_faulty_ops", None)


# -- exit statuses ---------------------------------------------------------------------------
def test_passing_run_exits_0(capsys):
    status = main(["check", "--ops", "Square,Neg", "--properties", "shapes,forward",
                   "--examples", "3", "--jobs", "1", "--plain"])
    out = capsys.readouterr().out
    assert status == 0
    assert "Square" in out and "Neg" in out and "PASS: 4 checks, 0 failed" in out
    assert "seed 0" in out


def test_faulty_op_fails_with_report_junit_json_and_html(faulty, tmp_path):
    junit, js, rep = tmp_path / "r.xml", tmp_path / "r.json", tmp_path / "html"
    r = _cli("check", str(faulty), "--ops", "CliBadSoftplus", "--properties",
             "gradient,forward", "--examples", "5", "--mode", "full", "--junit", str(junit),
             "--json", str(js), "--report-dir", str(rep), "--seed", "7")
    assert r.returncode == 1, r.stderr
    assert "FAIL CliBadSoftplus[gradient]" in r.stdout
    assert "diagnosis: scaled by a constant" in r.stdout
    assert (f"reproduce: gradverify check {faulty} --ops CliBadSoftplus --properties "
            "gradient --seed 7") in r.stdout
    # JUnit: one testcase per op x check, the failure text is the readable report
    root = ET.parse(junit).getroot()
    cases = list(root.iter("testcase"))
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("gradverify.CliBadSoftplus", "forward"), ("gradverify.CliBadSoftplus", "gradient")]
    failure = cases[1].find("failure")
    assert failure is not None and cases[0].find("failure") is None
    assert "gradient check of CliBadSoftplus" in failure.text
    assert "analytic" in failure.text and "numeric" in failure.text
    assert root.get("tests") == "2" and root.get("failures") == "1"
    # JSON
    doc = json.loads(js.read_text())
    assert doc["summary"]["verdict"] == "FAIL" and doc["run"]["seed"] == 7
    grad = doc["targets"][0]["checks"][1]
    assert grad["check"] == "gradient" and grad["verdict"] == "FAIL"
    assert grad["worst"]["ratio"] > 1 and "timings" not in doc
    # HTML: worst-entries table, a step-size plot and Jacobian heatmaps, embedded
    page = (rep / "index.html").read_text()
    assert 'class="entries"' in page and "error/tol" in page
    assert "CliBadSoftplus [gradient]" in page and "Plots unavailable" not in page
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]+)"',
                        page)
    assert {alt for _, alt in images} == {"step-size plot", "Jacobian heatmaps"}
    import base64
    assert all(base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n" for data, _ in images)
    assert [p.name for p in rep.iterdir()] == ["index.html"]


def test_report_dir_without_matplotlib(faulty, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # import matplotlib -> ImportError
    status = main(["check", str(faulty), "--ops", "CliBadSoftplus", "--properties",
                   "gradient", "--examples", "3", "--jobs", "1", "--report-dir",
                   str(tmp_path / "html"), "--quiet"])
    assert status == 1
    page = (tmp_path / "html" / "index.html").read_text()
    assert "Plots unavailable" in page
    assert 'class="entries"' in page and "CliBadSoftplus" in page
    assert "data:image/png" not in page
    assert "HTML report:" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--ops", "Reluu"], r"unknown op 'Reluu' \(did you mean: Relu"),
    (["--ops", "Relu", "--shard", "3/2"], r"--shard '3/2': need 1 <= K <= N"),
    (["--ops", "Relu", "--shard", "x"], r"--shard 'x': expected K/N"),
    (["no_such_module_for_gradverify"], r"cannot import no_such_module_for_gradverify: "
                                        r"ModuleNotFoundError"),
    (["missing_file.py"], r"cannot import missing_file.py: no such file"),
    (["--properties", "gradient_order3"], r"unknown property 'gradient_order3'"),
    (["--mode", "slow"], r"argument --mode: invalid choice"),
])
def test_usage_errors_exit_2_with_one_line(args, message, capsys):
    assert main(["check", *args]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("gradverify: error: ") and re.search(message, err), err
    assert "Traceback" not in captured.err + captured.out


def test_broken_module_exit_2_traceback_only_with_debug(tmp_path):
    bad = tmp_path / "broken_ops.py"
    bad.write_text("import gradverify.engine\nraise RuntimeError('boom at import')\n")
    r = _cli("check", str(bad))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"gradverify: error: cannot import {bad}: RuntimeError: boom at import"]
    r = _cli("check", str(bad), "--debug")
    assert r.returncode == 2
    assert "Traceback (most recent call last)" in r.stderr and "boom at import" in r.stderr


def test_strict_turns_inconclusive_into_failure():
    unsure = [TargetResult("Op", "op", [CheckResult("Op", "gradient", "INCONCLUSIVE", 1)])]
    assert reports.exit_status(unsure) == 0
    assert reports.exit_status(unsure, strict=True) == 1
    failed = [TargetResult("Op", "op", [CheckResult("Op", "gradient", "FAIL", 1)])]
    assert reports.exit_status(failed) == 1
    tree = reports.junit_tree(unsure, {"seed": 0})
    assert tree.getroot().find(".//skipped") is not None
    tree = reports.junit_tree(unsure, {"seed": 0}, strict=True)
    assert tree.getroot().find(".//failure").get("type") == "INCONCLUSIVE"


# -- reproducibility -------------------------------------------------------------------------
def test_json_is_byte_identical_for_a_seed_and_across_jobs(tmp_path):
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    for path, jobs in ((a, "1"), (b, "1"), (c, "2")):
        r = _cli("check", *SMALL, "--seed", "11", "--jobs", jobs, "--json", str(path),
                 "--quiet")
        assert r.returncode in (0, 1), r.stderr
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() == c.read_bytes()
    doc = json.loads(a.read_text())
    assert [t["name"] for t in doc["targets"]] == ["MatMul", "Square", "Tanh"]
    seeds = {c["seed"] for t in doc["targets"] for c in t["checks"]}
    assert len(seeds) == sum(len(t["checks"]) for t in doc["targets"])  # one per op x check


def test_a_different_seed_draws_different_examples(tmp_path):
    out = []
    for seed in ("1", "2"):
        path = tmp_path / f"s{seed}.json"
        main(["check", "--ops", "Square", "--properties", "shapes", "--examples", "2",
              "--seed", seed, "--json", str(path), "--quiet", "--jobs", "1"])
        out.append(json.loads(path.read_text())["targets"][0]["checks"][0]["seed"])
    assert out[0] != out[1]


def test_shards_partition_the_targets(capsys):
    def listed(*extra: str) -> list[str]:
        assert main(["check", "--list", *extra]) == 0
        return [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    everything = listed()
    assert len(everything) >= 98 and everything == sorted(everything)
    shards = [listed("--shard", f"{k}/3") for k in (1, 2, 3)]
    assert sorted(n for s in shards for n in s) == sorted(everything)
    assert sum(len(s) for s in shards) == len(everything)          # disjoint
    assert max(map(len, shards)) - min(map(len, shards)) <= 1       # balanced


# -- explain / audit -------------------------------------------------------------------------
def _section(text: str, name: str) -> str:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"  {name} "))
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"  \S", lines[i])),
               len(lines))
    return "\n".join(lines[start:end])


def test_explain_the_notmnist_example(tmp_path, capsys):
    dot = tmp_path / "g.dot"
    assert main(["explain", str(EXAMPLE), "--dot", str(dot)]) == 0
    out = capsys.readouterr().out
    weights, biases = _section(out, "weights"), _section(out, "biases")
    assert "trainable" in weights and "not trainable" not in weights
    assert "updated by GradientDescent: sgd" in weights and "learning_rate = 0.5" in weights
    assert "gradient paths from the loss: 2" in weights
    paths = [line.strip() for line in weights.splitlines() if " -> " in line]
    assert len(paths) == 2
    assert any("SoftmaxCrossEntropyWithLogits" in p for p in paths)
    assert any("L2Loss" in p for p in paths)
    assert "gradient paths from the loss: 1" in biases
    bias_paths = [line for line in biases.splitlines() if " -> " in line]
    assert len(bias_paths) == 1 and "SoftmaxCrossEntropyWithLogits" in bias_paths[0]
    assert "L2Loss" not in biases
    text = dot.read_text()
    assert text.startswith("digraph") and text.rstrip().endswith("}")
    assert text.count("{") == text.count("}")
    nodes = dict(re.findall(r'^  "([^"]+)" \[(.*)\];$', text, re.M))
    assert "UPDATED" in nodes["weights"] and "#ffb74d" in nodes["weights"]
    assert "UPDATED" in nodes["biases"]
    assert "(loss)" in nodes["add_1"] and "(train op)" in nodes["GradientDescent"]
    edges = re.findall(r'^  "([^"]+)" -> "([^"]+)"', text, re.M)
    assert ("weights/read", "L2Loss") in edges and ("weights", "weights/read") in edges


def test_audit_the_example_passes(capsys):
    assert main(["audit", str(EXAMPLE), "--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert [line.split(":")[1].split()[0] for line in out.splitlines()
            if line.startswith("step ")] == ["PASS"] * 3
    assert "PASS: 3 steps, 0 failed" in out


def test_audit_a_faulty_optimizer_fails(tmp_path, capsys):
    script = tmp_path / "sloppy.py"
    script.write_text(FAULTY_OPTIMIZER)
    assert main(["audit", str(script), "--steps", "2"]) == 1
    out = capsys.readouterr().out
    assert "step 0: FAIL" in out and "off the sgd rule" in out


FED_SCRIPT = '''
import numpy as np
import gradverify.engine as tf

x = tf.placeholder(tf.float64, [None, 3])
w = tf.Variable(np.ones((3, 1)), name="w")
frozen = tf.Variable(np.zeros(1), trainable=False, name="frozen")
loss = tf.reduce_mean(tf.square(tf.matmul(x, w) + frozen))
opt = tf.train.MomentumOptimizer(0.05, 0.9)     # an Optimizer object, not the train op
step = opt.minimize(loss)                       # found in the TRAIN_OP collection


def make_feed(i):
    return {x: np.random.default_rng(i).standard_normal((4, 3))}
'''


def test_script_protocol_make_feed_and_train_op_collection(tmp_path, capsys):
    script = tmp_path / "fed.py"
    script.write_text(FED_SCRIPT)
    assert main(["explain", str(script)]) == 0
    out = capsys.readouterr().out
    assert "from the TRAIN_OP collection" in out
    assert "updated by Momentum: momentum" in _section(out, "w")
    assert "not updated by Momentum: not trainable" in _section(out, "frozen")
    assert "slot 'momentum' of w" in out
    assert main(["audit", str(script), "--steps", "2"]) == 0
    assert "PASS: 2 steps, 0 failed" in capsys.readouterr().out


def test_explain_without_a_train_op_is_a_usage_error(tmp_path, capsys):
    script = tmp_path / "no_train.py"
    script.write_text("import gradverify.engine as tf\nx = tf.constant(1.0)\n")
    assert main(["explain", str(script)]) == 2
    err = capsys.readouterr().err
    assert "no train op" in err and len(err.strip().splitlines()) == 1


def test_python_dash_m_help():
    r = _cli("--help")
    assert r.returncode == 0 and "check" in r.stdout and "explain" in r.stdout


def test_worst_ratio_is_a_passing_checks_margin_and_a_failing_checks_excess():
    # relu(a) - relu(b) at (0, 0) in fast mode: the probes cross both kinks and disagree far
    # beyond their smooth tolerance (entries kept as evidence), the joint kink judgement
    # PASSes the check - the table's "worst err/tol" (> 1 fails) must not show them
    import numpy as np

    from gradverify.harness import FAIL, PASS, check_vjp
    from gradverify.runner import _Recorder

    def f(a, b):
        return np.maximum(a, 0) - np.maximum(b, 0)

    def vjp(xs, gs, scale=1.0):
        return (gs[0] * (xs[0] > 0) * scale, -gs[0] * (xs[1] > 0))

    good = check_vjp(f, vjp, [np.zeros(3), np.zeros(3)], mode="fast", seed=0)
    assert good.verdict == PASS and max(e.excess for c in good.checks for e in c.worst) > 1
    rec = _Recorder(keep=False)
    rec.report(good)
    assert rec.worst is None or rec.worst["ratio"] <= 1
    x = [np.array([1.0, -2.0, 3.0]), np.array([2.0, 1.0, -1.0])]
    bad = check_vjp(f, lambda xs, gs: vjp(xs, gs, 1.5), x, mode="fast", seed=0)
    assert bad.verdict == FAIL
    rec.report(bad)
    assert rec.worst["ratio"] > 1
