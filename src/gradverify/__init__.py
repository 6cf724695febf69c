"""gradverify's command line: ``gradverify check``, ``explain`` and ``audit``.

``gradverify check`` puts every registered op (and the training-step properties) through the
generated property suite and exits 0 (pass), 1 (a check failed) or 2 (usage error);
``gradverify explain FILE.py`` says which variables a TF1 training script's train op updates
and along which paths; ``gradverify audit FILE.py`` runs steps under ``audit_step``.

>>> import contextlib, io
>>> from gradverify.cli import main
>>> with contextlib.redirect_stdout(io.StringIO()) as out:
...     status = main(["check", "--ops", "Square", "--properties", "shapes",
...                    "--examples", "2", "--quiet"])
>>> status, out.getvalue().splitlines()[-1].startswith("PASS: 1 checks")
(0, True)
"""

__version__ = "0.1.0"
