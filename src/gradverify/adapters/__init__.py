"""Framework adapters: check PyTorch and JAX functions with gradverify's harness.

The public entry points are :mod:`gradverify.torch` and :mod:`gradverify.jax`; this package
holds their machinery. Nothing here imports a framework at import time: each framework is
imported only by the module that adapts it, so the default install never needs one.

>>> import gradverify.adapters.common as common
>>> common.real_dtype_name("float32")
'float32'
"""
