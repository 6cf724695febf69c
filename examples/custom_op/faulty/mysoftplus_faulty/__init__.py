"""A copy of ``mysoftplus`` with a deliberately wrong gradient (``MySoftplusFaulty``): the
property suite must reject it. Not collected by the default test run (see
``examples/custom_op/conftest.py``); ``tests/test_plugin.py`` puts it through the suite in a
separate pytest process, where its registration cannot leak into other tests."""

from mysoftplus_faulty.ops import my_softplus_faulty

__all__ = ["my_softplus_faulty"]
