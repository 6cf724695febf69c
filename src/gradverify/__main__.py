"""``python -m gradverify``: the same as the ``gradverify`` command."""

from gradverify.cli import main

raise SystemExit(main())
