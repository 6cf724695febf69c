"""Make ``import mysoftplus`` work from anywhere pytest is started (the repository root,
this directory, any import mode), as an installed package would; keep the faulty copy out of
the default run (tests/test_plugin.py runs it in a separate pytest process)."""

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

collect_ignore = ["faulty"]
