"""The molecule scenarios (molecule/firewall, molecule/tls) as lab tests: each makes its own lab host
with the lab code (molecule/shared/create.yml), converges its role, converges again and must change
nothing (idempotence), verifies with the shared checks and removes the host. Run by pytest, the two
workers fit them in beside the other lab tests (run after the suite, they added about 1.5 minutes).
The VM scenario (molecule/audit) is run by hand: README, "The VM tier"."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import ROOT

pytestmark = pytest.mark.lab


@pytest.mark.parametrize("scenario", ["firewall", "tls"])
def test_molecule_scenario_converges_idempotently_and_verifies(scenario):
    molecule = Path(sys.executable).parent / "molecule"
    proc = subprocess.run([str(molecule), "test", "-s", scenario], cwd=ROOT, capture_output=True, text=True,
                          timeout=1800, check=False)
    output = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)  # molecule colours even a pipe
    assert proc.returncode == 0, f"molecule test -s {scenario} exited {proc.returncode}:\n{output[-6000:]}"
    # The steps that prove something ran (a scenario whose sequence lost one would still exit 0).
    for step in ("converge", "idempotence", "verify"):
        assert f"{scenario} \u279c {step}: Executed: Successful" in output, (step, output[-3000:])
