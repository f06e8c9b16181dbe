"""Lab fixtures: one lab per engine, converged once, shared by the tests of a module."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from govbaseline.lab import Lab


@pytest.fixture(scope="session")
def lab_factory():
    labs: list[Lab] = []

    def make(name: str, hosts: int = 2) -> Lab:
        lab = Lab(name)
        lab.up(hosts)
        labs.append(lab)
        return lab

    yield make
    for lab in labs:
        lab.down()


def inventory_with(lab: Lab, tmp_path: Path, **overrides) -> Path:
    """A copy of the lab inventory with some variables overridden (for bad-input and lockout tests)."""
    data = yaml.safe_load(lab.inventory.read_text())
    data["all"]["vars"].update(overrides)
    path = tmp_path / f"{lab.name}-inventory.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def table_listing(lab: Lab, host) -> str:
    out = lab.exec(host, "nft", "-s", "-t", "list", "ruleset", check=False)
    return out.stdout.decode()
