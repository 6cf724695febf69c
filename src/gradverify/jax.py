"""gradverify for JAX: ``check`` gives a report; ``check_grads`` is a drop-in replacement
for ``jax.test_util.check_grads`` (swap the import); ``jax_suite`` puts a function through
Hypothesis-drawn inputs in one line. Needs the ``jax`` extra.

>>> import jax.numpy as jnp, numpy as np
>>> from gradverify.jax import check_grads
>>> check_grads(jnp.tanh, (np.array([0.1, -2.0, 3.0]),), order=2)
"""

try:
    import jax as _jax  # noqa: F401 - the clear error below if it is missing
except ModuleNotFoundError as _e:  # pragma: no cover - the default install has no jax
    if _e.name != "jax":
        raise
    raise ModuleNotFoundError("gradverify.jax needs JAX: pip install 'gradverify[jax]'",
                              name="jax") from _e

from gradverify.adapters.common import ComplexInputError, GradverifyWarning, InconclusiveWarning
from gradverify.adapters.jax_api import check, check_grads

__all__ = ["ComplexInputError", "GradverifyWarning", "InconclusiveWarning", "check",  # noqa: F822
           "check_grads", "jax_suite"]


def __getattr__(name: str):
    # The pytest/Hypothesis side loads only when asked for.
    if name == "jax_suite":
        from gradverify.adapters.suite import jax_suite
        return jax_suite
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
