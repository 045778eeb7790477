"""The doctest examples in madpad.metrics, madpad.report (and the columnar score-file reader)
are part of the documentation:
keep them true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "madpad.metrics.pad",
    "madpad.metrics.verification",
    "madpad.metrics.vulnerability",
    "madpad.metrics.bootstrap",
    "madpad.report.html",
    "madpad.report.pad",
    "madpad.data.columnar",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert res.attempted > 0, f"{name} has no doctest examples"
    assert res.failed == 0
