"""Which ops a user means: module names, ``.py`` paths, package directories or op type names
(``--gradverify-ops``, ``op_suite``, ``gradverify check MODULE``), resolved to the ops whose
kernels those modules define. Imported by the pytest plugin in every project where gradverify
is installed: the engine loads only when a target is resolved.

>>> [o.type for o in ops_of("Relu", "Relu6")]
['Relu', 'Relu6']
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

OpDef = Any

__all__ = ["TargetError", "import_target", "ops_of"]


class TargetError(LookupError):
    """A target selects nothing: no such module, file or op type, or a module that registers
    no ops (a usage error of ``--gradverify-ops``)."""


class _UnusableTargetError(ImportError):
    """The module or file named by a target does not exist, or another module of its name
    shadows it (not: it raised while importing)."""


def import_target(target: str) -> ModuleType:
    """Import a module by dotted name, by ``.py`` path or by package directory.

    A path is imported under its dotted name, found the way pytest's default import mode finds
    a test file's (the first directory above it without ``__init__.py`` goes on ``sys.path``):
    ``mypkg/ops.py`` becomes ``mypkg.ops``, the same module ``import mypkg.ops`` gives, so its
    ops register once however it is named.

    >>> import_target("gradverify.engine.ops.math_ops").__name__
    'gradverify.engine.ops.math_ops'
    """
    if (target.endswith(".py") or "/" in target or "\\" in target
            or (Path(target) / "__init__.py").is_file()):
        return _import_path(target)
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as e:
        # Only a missing target (or a missing parent package of it) is "not found"; a module
        # missing inside the target's own imports is the target's error, raised as is.
        if e.name is not None and (target == e.name or target.startswith(e.name + ".")):
            raise _UnusableTargetError(f"no module named {target!r}", name=target) from None
        raise


def _import_path(target: str) -> ModuleType:
    path = Path(target).resolve()
    if path.is_dir():
        if not (path / "__init__.py").is_file():
            raise _UnusableTargetError(f"{target} is a directory without __init__.py, not a "
                                       "package", path=str(path))
        path = path / "__init__.py"
    elif not path.is_file() or path.suffix != ".py":
        raise _UnusableTargetError(f"no such Python file: {target}", path=str(path))
    parts = [] if path.name == "__init__.py" else [path.stem]
    base = path.parent
    while (base / "__init__.py").is_file():
        parts.insert(0, base.name)
        base = base.parent
    name = ".".join(parts)
    if str(base) not in sys.path:
        sys.path.insert(0, str(base))
        importlib.invalidate_caches()
    module = importlib.import_module(name)
    found = Path(module.__file__ or "").resolve()
    if found != path:
        raise _UnusableTargetError(f"{target}: importing it as {name!r} gives {found} "
                                   "instead (another module of that name comes first on "
                                   "sys.path)", path=str(path))
    return module


def ops_of(*targets: Any) -> list[OpDef]:
    """The registered ops named by ``targets``: OpDefs, op type names, or modules (every op
    whose kernel is defined in that module's file, or anywhere under a package's directory)
    given as module objects, dotted names, ``.py`` paths or package directories; in registry
    order, no duplicates.

    Raises :class:`TargetError` when a target names no module or op, or selects no op; an
    exception raised while importing a target propagates.

    >>> [o.type for o in ops_of("Relu", "Relu6")]
    ['Relu', 'Relu6']
    >>> len(ops_of("gradverify.engine.ops.nn_ops")) > 10
    True
    """
    from gradverify.engine import registry
    from gradverify.engine.registry import OpDef
    chosen: dict[str, OpDef] = {}
    for t in targets:
        if isinstance(t, OpDef):
            chosen[t.type] = t
            continue
        if isinstance(t, str) and t in registry.ops():
            chosen[t] = registry.lookup(t)
            continue
        if not isinstance(t, (str, ModuleType)):
            raise TypeError(f"cannot select ops from {t!r}: give an OpDef, an op type name "
                            "or a module")
        if isinstance(t, str):
            try:
                module = import_target(t)
            except _UnusableTargetError as e:
                if e.path is not None:  # a file or directory
                    raise TargetError(str(e)) from None
                raise TargetError(f"{t!r} is neither a registered op type nor an importable "
                                  f"module ({e})") from None
        else:
            module = t
        roots = _module_roots(module)
        found = [o for o in registry.ops().values() if _defined_in(o, module, roots)]
        if not found:
            where = ", ".join(str(r) for r in roots) or "(no source file)"
            raise TargetError(f"module {module.__name__} registers no ops (no op kernel is "
                              f"defined in {where})")
        chosen.update((o.type, o) for o in found)
    order = {name: i for i, name in enumerate(registry.ops())}
    return sorted(chosen.values(), key=lambda o: order.get(o.type, len(order)))


def _module_roots(module: ModuleType) -> list[Path]:
    """Where a module's ops are defined: a package's directories (several for a namespace
    package, which has no ``__file__``), else the module's file."""
    paths = getattr(module, "__path__", None)
    if paths is not None:
        return [Path(p).resolve() for p in paths]
    file = getattr(module, "__file__", None)
    return [Path(file).resolve()] if file else []


def _defined_in(op: OpDef, module: ModuleType, roots: list[Path]) -> bool:
    """Whether ``op``'s kernel is defined in ``module`` (or under the package): by the
    kernel's module name, or by its source file (the same file imported under another
    name)."""
    name = getattr(op.kernel, "__module__", None) or ""
    if name == module.__name__ or (hasattr(module, "__path__")
                                   and name.startswith(module.__name__ + ".")):
        return True
    file = op.source.rsplit(":", 1)[0]
    if file.startswith("<"):  # defined in a doctest, an exec'd string, the REPL
        return False
    path = Path(file).resolve()
    return any(path == r or (r.is_dir() and path.is_relative_to(r)) for r in roots)
