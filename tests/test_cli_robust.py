"""``gradverify check`` on the events CI produces: an op that hangs, exits or crashes the
interpreter, a cancel (SIGTERM) or Ctrl-C (SIGINT), stale reports, and a working directory
that must stay as it was. Each run is a real ``gradverify`` process on a module of bad ops.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

BAD_OPS = '''
import os, signal, sys, time
import numpy as np
import gradverify.engine as tf
from gradverify.engine import meta


def _ref(x):
    return x


def _identity_grad(op, grad):
    return grad


@tf.op("GvHang", inputs={"x": meta.reals}, api=None, reference=_ref)
def gv_hang(x):
    time.sleep(10**6)
    return x


@tf.op("GvExit", inputs={"x": meta.reals}, api=None, reference=_ref)
def gv_exit(x):
    sys.exit(3)


@tf.op("GvAbort", inputs={"x": meta.reals}, api=None, reference=_ref)
def gv_abort(x):
    os._exit(7)


@tf.op("GvSegv", inputs={"x": meta.reals}, api=None, reference=_ref)
def gv_segv(x):
    os.kill(os.getpid(), signal.SIGSEGV)


@tf.op("GvRaise", inputs={"x": meta.reals}, api=None, reference=_ref)
def gv_raise(x):
    return _deep_in_user_code(x)


def _deep_in_user_code(x):
    raise ValueError(f"kernel cannot take shape {np.shape(x)}")


@tf.op("GvNoGrad", inputs={"x": meta.reals}, api=None, reference=_ref)
def gv_no_grad(x):
    return np.array(x, copy=True)


for _op in (gv_hang, gv_exit, gv_abort, gv_segv, gv_raise):
    _op.gradient(_identity_grad)
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's directory holding a module of misbehaving ops."""
    (tmp_path / "bad_ops.py").write_text(BAD_OPS)
    return tmp_path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "HYPOTHESIS_PROFILE")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def _check(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gradverify", "check", "bad_ops.py",
                           "--plain", "--examples", "2", *args], cwd=project, env=_env(),
                          capture_output=True, text=True, timeout=240, check=False)


def _checks(path: Path) -> dict[str, dict]:
    doc = json.loads(path.read_text())
    return {f"{t['name']}[{c['check']}]": c for t in doc["targets"] for c in t["checks"]}


# one job is the same supervision without the pool (slow: `tox -e thorough`)
@pytest.mark.parametrize("jobs", [pytest.param("1", marks=pytest.mark.slow), "2"])
def test_hung_exiting_and_crashing_ops_fail_their_checks_only(project, jobs):
    # 10 s: the well-behaved Square check must finish within it on a loaded 2-core machine
    r = _check(project, "--ops", "GvHang,GvExit,GvAbort,GvSegv,Square", "--properties",
               "shapes", "--timeout", "10", "--jobs", jobs, "--json", "r.json")
    assert r.returncode == 1, r.stdout + r.stderr
    checks = _checks(project / "r.json")
    assert checks["Square[shapes]"]["verdict"] == "PASS"
    expected = {"GvHang[shapes]": "timed out after 10 s",
                "GvExit[shapes]": "the op called sys.exit(3)",
                "GvAbort[shapes]": "the worker process died (exit code 7)",
                "GvSegv[shapes]": "the worker process died (killed by signal SIGSEGV)"}
    for name, message in expected.items():
        assert checks[name]["verdict"] == "FAIL" and checks[name]["error"], name
        assert message in checks[name]["message"], checks[name]["message"]
        assert checks[name]["reproduce"].startswith("gradverify check bad_ops.py --ops ")
    assert "Traceback" not in r.stderr


def test_raising_kernel_shows_the_traceback_into_the_users_file(project):
    r = _check(project, "--ops", "GvRaise", "--properties", "shapes", "--jobs", "1")
    assert r.returncode == 1
    user_file = str(project / "bad_ops.py")
    assert f'File "{user_file}", line' in r.stdout and "_deep_in_user_code" in r.stdout
    assert "ValueError: kernel cannot take shape" in r.stdout
    assert "session.py" not in r.stdout and "hypothesis" not in r.stdout.lower().replace(
        "--hypothesis", "")
    full = _check(project, "--ops", "GvRaise", "--properties", "shapes", "--jobs", "1",
                  "--debug")
    assert "session.py" in full.stdout and f'File "{user_file}"' in full.stdout


def test_missing_gradient_fails_the_gate(project):
    r = _check(project, "--ops", "GvNoGrad", "--jobs", "1", "--json", "r.json")
    assert r.returncode == 1
    meta = _checks(project / "r.json")["GvNoGrad[metadata]"]
    assert meta["verdict"] == "FAIL" and "no gradient" in meta["message"]


def test_a_module_that_registers_no_ops_is_a_usage_error(project):
    (project / "empty_ops.py").write_text("import gradverify.engine\nVALUE = 1\n")
    r = subprocess.run([sys.executable, "-m", "gradverify", "check", "empty_ops.py"],
                       cwd=project, env=_env(), capture_output=True, text=True, timeout=120,
                       check=False)
    assert r.returncode == 2
    assert r.stderr.strip() == "gradverify: error: no ops registered by empty_ops.py (no op " \
        "kernel is defined in it)"


def test_version():
    r = subprocess.run([sys.executable, "-m", "gradverify", "--version"], env=_env(),
                       capture_output=True, text=True, timeout=60, check=False)
    from gradverify import __version__
    assert r.returncode == 0 and r.stdout.strip() == f"gradverify {__version__}"


def test_writes_only_its_reports_and_clears_stale_ones(project):
    (project / "html").mkdir()
    keep = [project / "html" / "img" / "mine.png", project / "html" / "notes.txt"]
    keep[0].parent.mkdir()
    for k in keep:
        k.write_text("not gradverify's")
    stale = project / "r.json"
    stale.write_text('{"stale": true}')
    before = {p.relative_to(project) for p in project.rglob("*")}
    r = _check(project, "--ops", "Square", "--properties", "shapes,forward,gradient",
               "--json", "r.json", "--junit", "r.xml", "--report-dir", "html", "--jobs", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    after = {p.relative_to(project) for p in project.rglob("*")}
    assert after - before == {Path("r.xml"), Path("html/index.html")}, after - before
    assert all(k.read_text() == "not gradverify's" for k in keep)
    assert "stale" not in stale.read_text()
    assert not (project / ".hypothesis").exists()


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads worker processes from /proc")
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_cancel_stops_workers_and_writes_incomplete_reports(project, signum, status):
    (project / "r.json").write_text('{"stale": true}')
    proc = subprocess.Popen(
        [sys.executable, "-m", "gradverify", "check", "bad_ops.py", "--plain", "--ops",
         "GvHang,Square", "--properties", "shapes,forward", "--examples", "2", "--jobs", "2",
         "--timeout", "0", "--json", "r.json", "--junit", "r.xml"],
        cwd=project, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while time.monotonic() < deadline and len(workers) < 2:
            time.sleep(0.2)
            workers = _children(proc.pid)
        assert len(workers) == 2, "the workers never started"
        assert not (project / "r.json").exists()  # cleared at start: no stale report
        time.sleep(1.0)   # the workers are in the hanging kernel now
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == status, out + err
    assert not [w for w in workers if _alive(w)], "orphaned worker processes"
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert f"interrupted by {signal.Signals(signum).name}" in out
    doc = json.loads((project / "r.json").read_text())
    assert doc["complete"] is False
    assert {"target": "GvHang", "check": "shapes"} in doc["interrupted"]["not_run"]
    import xml.etree.ElementTree as ET
    cases = {c.get("name"): c for c in ET.parse(project / "r.xml").getroot().iter("testcase")}
    assert cases["run interrupted"].find("error") is not None
    assert not list(project.glob(".r.*tmp"))   # no temporary files left
