"""Shared fixtures: lab hosts for the end-to-end tests (skipped with GOVBASELINE_SKIP_LAB=1)."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("GOVBASELINE_SKIP_LAB") == "1":
        skip = pytest.mark.skip(reason="GOVBASELINE_SKIP_LAB=1")
        for item in items:
            if "lab" in item.keywords:
                item.add_marker(skip)
