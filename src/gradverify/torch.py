"""gradverify for PyTorch: ``check`` gives a report; ``gradcheck``/``gradgradcheck`` are
drop-in replacements for torch's (swap the import); ``torch_suite`` puts a function through
Hypothesis-drawn inputs in one line. Needs the ``torch`` extra.

>>> import torch
>>> from gradverify.torch import gradcheck
>>> gradcheck(torch.sigmoid, (torch.randn(4, dtype=torch.float64, requires_grad=True),))
True
"""

try:
    import torch as _torch  # noqa: F401 - the clear error below if it is missing
except ModuleNotFoundError as _e:  # pragma: no cover - the default install has no torch
    if _e.name != "torch":
        raise
    raise ModuleNotFoundError("gradverify.torch needs PyTorch: pip install "
                              "'gradverify[torch]'", name="torch") from _e

from gradverify.adapters.common import ComplexInputError, GradverifyWarning, InconclusiveWarning
from gradverify.adapters.torch_api import GradcheckError, check, gradcheck, gradgradcheck

__all__ = ["ComplexInputError", "GradcheckError", "GradverifyWarning", "InconclusiveWarning",  # noqa: F822
           "check", "gradcheck", "gradgradcheck", "torch_suite"]


def __getattr__(name: str):
    # The pytest/Hypothesis side loads only when asked for.
    if name == "torch_suite":
        from gradverify.adapters.suite import torch_suite
        return torch_suite
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
