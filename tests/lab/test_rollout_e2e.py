"""Safe rollout (`govbaseline apply --canary N`) on the pyinfra lab, with pyinfra (the Ansible lab
carries the Ansible side of waivers and check mode): a canary that fails verification stops the
rollout before the next batch is touched; a healthy rollout reaches every host."""

from __future__ import annotations

import json

import pytest

from govbaseline.rollout import rollout
from tests.lab.conftest import sh

pytestmark = pytest.mark.lab

# A line the baseline puts back on its next run: whether it is still there tells if a host was touched.
MARKER_FILE = "/etc/fail2ban/jail.d/govbaseline.local"
MARKER = "# rollout test: the baseline removes this line"


def test_a_failing_canary_stops_the_rollout_and_a_healthy_one_reaches_every_host(pyinfra_lab, tmp_path):
    lab = pyinfra_lab
    canary, later = lab.hosts()[0], lab.hosts()[1]
    said: list[str] = []
    sh(lab, later, f"echo '{MARKER}' >> {MARKER_FILE}")
    # A file appears in /etc on the canary, and the scheduled integrity check records it: the baseline
    # does not (and must not) approve it, so the canary fails FIM-01 after its apply.
    sh(lab, canary, "echo unexpected > /etc/rollout-test.conf && "
                    "(systemctl start govbaseline-integrity-check.service || true)")
    try:
        stopped = rollout(lab.inventory, canary=1, batch_size=1, report_dir=tmp_path / "stopped", engine="pyinfra",
                          say=said.append)
    finally:
        sh(lab, canary, "rm -f /etc/rollout-test.conf && (systemctl start govbaseline-integrity-check.service || true)")
    assert not stopped.ok and len(stopped.batches) == 1, said
    first = stopped.batches[0]
    # The backup server goes with the canary: the canary's backups need it.
    assert first.hosts == [lab.sink.name, canary.name], first.hosts
    assert first.applied and not first.verified and f"{canary.name}: FIM-01" in first.problem, first.problem
    assert stopped.untouched == [later.name], said
    assert MARKER in sh(lab, later, f"cat {MARKER_FILE}"), "the rollout touched a host after the failed canary"
    report = json.loads((first.report_dir / "report.json").read_text())
    assert report["hosts"][canary.name]["controls"]["FIM-01"]["status"] == "fail"
    assert any("stopped the rollout" in line for line in said), said

    done = rollout(lab.inventory, canary=1, batch_size=1, report_dir=tmp_path / "done", engine="pyinfra",
                   say=said.append)
    assert done.ok and [b.hosts[-1] for b in done.batches][-1] == later.name, said
    assert all(b.applied and b.verified for b in done.batches) and len(done.batches) == 2, said
    assert MARKER not in sh(lab, later, f"cat {MARKER_FILE}"), "the last batch was not applied"
