"""The installed distribution adds one import name, ``gradverify``: a project with its own
``engine``, ``harness`` or ``properties`` modules is not disturbed by it, and is not able to
disturb it."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("engine", "harness", "properties")


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run with the environment a user has: no PYTHONPATH pointing into this repository."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CI")}
    env["HYPOTHESIS_PROFILE"] = ""
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def test_distribution_provides_only_the_gradverify_import_name():
    owners = importlib.metadata.packages_distributions()
    provided = {name for name, dists in owners.items() if "gradverify" in dists}
    assert provided == {"gradverify"}


def test_every_source_package_is_mapped_under_gradverify():
    """A subpackage folder missing from pyproject's package list would be left out of the
    wheel; every folder with an ``__init__.py`` must be listed under its gradverify name."""
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {"gradverify": "src/gradverify", **{f"gradverify.{p}": p for p in OURS}}
    assert conf["package-dir"] == folders
    found = set()
    for name, folder in folders.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((name, *rel)))
    assert set(conf["packages"]) == found


def test_importing_gradverify_loads_no_generic_top_level_module(tmp_path):
    code = ("import sys, gradverify.engine, gradverify.harness, gradverify.properties, "
            "gradverify.cli, gradverify.properties.plugin\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {OURS!r}))")
    r = _run([sys.executable, "-c", code], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


@pytest.fixture
def user_project(tmp_path: Path) -> Path:
    """A project of somebody else's, whose own modules carry gradverify's folder names."""
    (tmp_path / "properties.py").write_text("COLOUR = 'blue'\n")
    (tmp_path / "engine.py").write_text("def start():\n    return 'vroom'\n")
    (tmp_path / "harness.py").write_text("HORSES = 2\n")
    (tmp_path / "test_theirs.py").write_text(textwrap.dedent("""
        import engine, harness, properties

        def test_own_modules():
            assert (engine.start(), harness.HORSES, properties.COLOUR) == ("vroom", 2, "blue")
        """))
    return tmp_path


def test_user_project_with_same_module_names_runs_pytest(user_project):
    r = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=user_project)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 passed" in r.stdout


def test_gradverify_check_ignores_the_working_directorys_modules(user_project):
    # Modules that would break the gate if it ever imported them instead of its own.
    for name in OURS:
        (user_project / f"{name}.py").write_text(f"raise ImportError('user {name} imported')\n")
    r = _run([sys.executable, "-m", "gradverify", "check", "--ops", "Square",
              "--properties", "shapes", "--examples", "2", "--quiet"], cwd=user_project)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "user" not in r.stdout + r.stderr
