"""Shared by the doctests in src/ and the tests in tests/."""

from __future__ import annotations

import tempfile

import pytest


@pytest.fixture(autouse=True)
def _doctest_files_in_pytest_tmp(request, monkeypatch):
    """The docstring examples write with ``tempfile.mkdtemp()``: into pytest's own temporary
    folder (removed after a few runs), not into the system's, where they would pile up."""
    if isinstance(request.node, pytest.DoctestItem):
        folder = request.getfixturevalue("tmp_path")
        monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield
