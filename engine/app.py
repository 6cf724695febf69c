"""``tf.app``: ``run`` a script's ``main`` after parsing flags; ``tf.app.flags``.

As in TF1, ``run`` parses the known flags out of ``argv`` (unknown ones are left for
``main``), calls ``main(remaining_argv)`` and exits with its return value. A bad flag value
prints ``FATAL Flags parsing error`` and exits with status 1; ``--help`` prints the flags.

>>> import gradverify.engine as tf
>>> fv = tf.flags.FlagValues()
>>> tf.flags.DEFINE_integer("epochs", 1, "passes", flag_values=fv)
>>> def main(argv):
...     print(argv, fv.epochs)
>>> try:
...     tf.app.run(main, argv=["prog", "--epochs=4", "--other"], flag_values=fv)
... except SystemExit as e:
...     e.code
['prog', '--other'] 4
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from gradverify.engine import flags
from gradverify.engine.registry import export

__all__ = ["run", "flags"]


@export("app.run")
def run(main: Callable[[list[str]], Any] | None = None, argv: Sequence[str] | None = None,
        flag_values: flags.FlagValues | None = None) -> None:
    """Parse flags from ``argv`` (default ``sys.argv``), then ``sys.exit(main(argv))``.

    ``main`` defaults to the ``main`` function of the ``__main__`` module, as in TF1.
    """
    fv = flag_values if flag_values is not None else flags.FLAGS
    argv = list(sys.argv if argv is None else argv)
    if any(a in ("--help", "-help", "-h", "--helpfull") for a in argv[1:]):
        print(f"{argv[0]}:\n{fv.help_text()}")
        sys.exit(0)
    try:
        remaining = fv(argv, known_only=True)
    except flags.Error as e:
        print(f"FATAL Flags parsing error: {e}", file=sys.stderr)
        print("Pass --help to see help on flags.", file=sys.stderr)
        sys.exit(1)
    if main is None:
        main = sys.modules["__main__"].main
    sys.exit(main(remaining))
