"""Shared fixtures: lab hosts for the end-to-end tests (skipped with GOVBASELINE_SKIP_LAB=1)."""

from __future__ import annotations

import os

import pytest

# Tests sharing a session lab run in one pytest-xdist worker (scripts/test.sh runs two with
# --dist loadgroup): a second worker would create the same-named lab and clear the first's hosts.
SHARED_LABS = ("ansible_lab", "pyinfra_lab")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups into the test ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in SHARED_LABS:
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(fixture))
                break
    if os.environ.get("GOVBASELINE_SKIP_LAB") == "1":
        skip = pytest.mark.skip(reason="GOVBASELINE_SKIP_LAB=1")
        for item in items:
            if "lab" in item.keywords:
                item.add_marker(skip)
