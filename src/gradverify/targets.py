"""What ``gradverify check`` runs: the targets (registered ops, ``train:<optimizer>``,
``composite``), their selection by name or pattern, shards, and the ordered work list of
(target, property) pairs.

>>> [t.name for t in select_targets(discover_targets(), ["MatMul"])]
['MatMul']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gradverify.runner import _ORDER, PROPERTY_FACTS, RunOptions, Target, UsageError

__all__ = ["discover_targets", "select_targets", "parse_shard", "shard_targets", "wanted",
           "plan_tasks"]


def _optional(module: str) -> tuple[Any, str | None]:
    """Import an optional property module; (None, note) when it does not exist yet."""
    import importlib
    try:
        return importlib.import_module(module), None
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        return None, f"{module} is not available: skipped"


def discover_targets(training: bool = True) -> list[Target]:
    """Every registered op, then ``train:<optimizer>`` and ``composite`` (when their
    property modules exist), sorted by name.

    >>> names = [t.name for t in discover_targets()]
    >>> "MatMul" in names and names == sorted(names)
    True
    """
    from gradverify.engine import registry
    from gradverify.properties.checks import op_properties

    out = []
    for name, opdef in registry.ops().items():
        props = tuple(op_properties(opdef))
        note = None if props else "no op-level properties (source, state or random op)"
        # The registration itself is checked for every op: a missing gradient or shape
        # rule fails the gate even where no other property applies.
        out.append(Target(name, "op", ("metadata", *props), note))
    if training:
        models, note = _optional("gradverify.properties.models")
        if models is None:
            out.append(Target("train", "train", (), note))
        else:
            props = ("train_step",) + (("train_no_gradient",) if hasattr(
                models, "no_gradient_test") else ())
            out += [Target(f"train:{o}", "train", props) for o in models.OPTIMIZER_NAMES]
        graphs, note = _optional("gradverify.properties.graphs")
        if graphs is None:
            out.append(Target("composite", "composite", (), note))
        else:
            out.append(Target("composite", "composite", ("composite",)))
    return sorted(out, key=lambda t: t.name)


def select_targets(targets: Sequence[Target], names: Sequence[str] | None) -> list[Target]:
    """The targets named (exact names or shell patterns like ``Reduce*``); UsageError
    naming close matches for an unknown name.

    >>> [t.name for t in select_targets(discover_targets(), ["Relu*"])]
    ['Relu', 'Relu6']
    """
    if not names:
        return list(targets)
    import difflib
    import fnmatch
    by_name = {t.name: t for t in targets}
    chosen: dict[str, Target] = {}
    for n in names:
        hits = [t for t in targets if fnmatch.fnmatchcase(t.name, n)] if any(
            c in n for c in "*?[") else ([by_name[n]] if n in by_name else [])
        if not hits:
            close = difflib.get_close_matches(n, list(by_name), n=5, cutoff=0.6)
            if not close:
                close = [t for t in by_name if t.lower() == n.lower()]
            hint = f" (did you mean: {', '.join(close)}?)" if close else (
                " (`gradverify check --list` lists them)")
            raise UsageError(f"unknown op {n!r}{hint}")
        chosen.update((t.name, t) for t in hits)
    return sorted(chosen.values(), key=lambda t: t.name)


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> (K, N) with 1 <= K <= N; UsageError otherwise.

    >>> parse_shard("2/3")
    (2, 3)
    """
    try:
        k, n = (int(p) for p in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard {text!r}: expected K/N, e.g. 1/4") from None
    if n < 1 or not 1 <= k <= n:
        raise UsageError(f"--shard {text!r}: need 1 <= K <= N")
    return k, n


def shard_targets(targets: Sequence[Target], k: int, n: int) -> list[Target]:
    """Shard ``k`` of ``n`` (1-based) of the name-sorted targets: every n-th one from the
    k-th, so the shards are disjoint, cover all targets and mix slow and fast ops.

    >>> ts = [Target(c, "op", ()) for c in "abcde"]
    >>> [t.name for t in shard_targets(ts, 2, 2)]
    ['b', 'd']
    """
    ordered = sorted(targets, key=lambda t: t.name)
    return [t for i, t in enumerate(ordered) if i % n == k - 1]


def wanted(prop: str, opts: RunOptions) -> bool:
    """Whether ``prop`` runs under the filters: ``--properties`` names them; ``--order`` and
    ``--dtype`` keep only the gradient properties with that order/dtype.

    >>> [p for p in ("shapes", "gradient", "gradient_order2") if wanted(p, RunOptions(order=2))]
    ['gradient_order2']
    """
    if opts.properties is not None and prop not in opts.properties:
        return False
    facts = PROPERTY_FACTS.get(prop, {"gradient": False})
    if opts.order is not None or opts.dtype is not None:
        if not facts["gradient"]:
            return False
        if opts.order is not None and facts["order"] != opts.order:
            return False
        if opts.dtype is not None and facts["dtype"] != opts.dtype:
            return False
    return True


def plan_tasks(targets: Sequence[Target], opts: RunOptions) -> list[tuple[Target, str]]:
    """(target, property) pairs to run, the slowest kinds first (for the process pool)."""
    tasks = [(t, p) for t in targets for p in t.properties if wanted(p, opts)]
    return sorted(tasks, key=lambda tp: (-PROPERTY_FACTS.get(tp[1], {}).get("cost", 1),
                                         tp[0].name, _ORDER.index(tp[1])
                                         if tp[1] in _ORDER else 99))
