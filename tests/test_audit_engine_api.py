"""The tools use the engine only through its public API (``engine.inspect`` and the TF1
surface): nothing in ``harness/`` or ``gradverify/`` reads an engine attribute whose name
starts with ``_``. The inspection API itself is tested here too."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

import gradverify.engine as tf
from gradverify.engine import inspect

ROOT = Path(__file__).resolve().parents[1]


def _engine_private_names() -> set[str]:
    """Every ``_name`` the engine defines: attributes, methods, slots, module globals."""
    names: set[str] = set()
    for path in (ROOT / "engine").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            found = []
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                found.append(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                found.append(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                found.append(node.id)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.append(node.value)   # __slots__ entries
            names.update(n for n in found if n.startswith("_") and not n.startswith("__"))
    return names


def _private_uses(path: Path, private: set[str]) -> list[str]:
    out = []
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in private:
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue  # the tool's own classes
            out.append(f"{where}:{node.lineno}: .{node.attr}")
        elif isinstance(node, ast.ImportFrom) and "engine" in (node.module or ""):
            out += [f"{where}:{node.lineno}: import {a.name}"
                    for a in node.names if a.name.startswith("_")]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "getattr":
            args = node.args
            if len(args) >= 2 and isinstance(args[1], ast.Constant) and str(
                    args[1].value) in private:
                out.append(f"{where}:{node.lineno}: getattr "
                           f"{args[1].value}")
    return out


def _own_private_names(folder: str) -> set[str]:
    """``_names`` the tool folders define themselves (their own helpers may use them)."""
    names: set[str] = set()
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
    return names


def test_harness_and_cli_use_no_private_engine_attribute():
    private = _engine_private_names()
    assert {"_state", "_consumers", "_ref", "_flat_specs", "_id", "_slot_owners",
            "_context", "_origin"} <= private   # the scan sees what it must forbid
    uses = []
    for folder in ("harness", "src/gradverify"):
        mine = _own_private_names(folder)
        for path in sorted((ROOT / folder).rglob("*.py")):
            uses += [u for u in _private_uses(path, private - mine)]
    assert uses == []


def test_the_scan_catches_a_private_access(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from gradverify.engine.session import _flatten\n"
                   "def f(session, t):\n    return session._state, t._consumers, "
                   "getattr(t, '_ref')\n")
    found = _private_uses(bad, _engine_private_names())
    assert [f.split(": ", 1)[1] for f in found] == [
        "import _flatten", ".\x5fstate", ".\x5fconsumers", "getattr _ref"]


# -- the inspection API ---------------------------------------------------------------------------
def test_ancestors_follow_data_and_control_edges_and_stop_at_cut_tensors(graph):
    a = tf.constant(1.0, name="a")
    b = tf.identity(a, name="b")
    with tf.control_dependencies([b]):
        c = tf.constant(2.0, name="c")
    d = tf.add(b, c, name="d")
    names = lambda ops: sorted(op.name for op in ops)
    assert names(inspect.ancestors([d])) == ["a", "b", "c", "d"]
    assert names(inspect.ancestors([c], control=False)) == ["c"]
    # b is fed (cut) as d's input, but still runs as c's control input
    assert names(inspect.ancestors([d], cut=[b])) == ["a", "b", "c", "d"]
    assert names(inspect.ancestors([d], cut=[b], control=False)) == ["c", "d"]
    assert names(inspect.descendants([a])) == ["b", "d"]
    assert inspect.consumers(b) == [d.op]
    assert inspect.creation_index(a.op) < inspect.creation_index(d.op)


def test_differentiable_inputs_and_writes(graph):
    w = tf.Variable([1.0, 2.0], name="w")
    s = tf.stop_gradient(w)
    upd = w.assign_sub(s)
    assert inspect.differentiable_inputs(s.op) == [False]
    assert inspect.differentiable_inputs(tf.multiply(w, 2.0).op) == [True, True]
    assert inspect.is_write(upd.op) and not inspect.is_write(s.op)
    assert inspect.written_refs(upd.op) == [inspect.variable_ref(w)]
    assert inspect.variable_by_ref(graph)[inspect.variable_ref(w)] is w


def test_snapshot_restore_and_random_state(graph):
    tf.set_random_seed(3)
    w = tf.Variable([1.0, 2.0], name="w")
    noise = tf.random_normal([2], seed=1)
    upd = w.assign_add(noise)
    s = tf.Session()
    s.run(w.initializer)
    before = inspect.snapshot(s)
    randoms = [op for op in inspect.ancestors([upd]) if op.opdef.random]
    state = inspect.random_state(s, randoms)
    first = s.run(upd)
    inspect.restore_snapshot(s, before)
    inspect.restore_random_state(s, state)
    assert np.array_equal(s.run(upd), first)   # the same draw from the same values
    inspect.restore_snapshot(s, {w: None})
    assert inspect.snapshot(s)[w] is None


def test_fetch_leaves_follow_session_run_order():
    assert inspect.fetch_leaves([1, {"b": 2, "a": (3, 4)}]) == [1, 2, 3, 4]


def test_gradient_sources_name_the_variable(graph):
    w = tf.Variable(1.0, name="w")
    b = tf.Variable(2.0, name="b")
    loss = w * w + 3.0 * b
    gw, gb = tf.gradients(loss, [w, b])
    sources = inspect.gradient_sources(graph)
    assert sources[gw].variable is w and sources[gb].variable is b
    assert sources[gw].ys == (loss,)
    (g_read,) = tf.gradients(loss, [w.value()])   # with respect to the read: still w's
    assert inspect.gradient_sources(graph)[g_read].variable is w
