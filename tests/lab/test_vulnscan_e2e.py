"""The Lynis self-audit end to end: the audit started at converge passes verify; a real regression
(a security update made pending again, which Lynis reports as PKGS-7392) raises an alert that
arrives and fails verify; the check fails for its own reason when the schedule is broken; bad
values are refused before any change, by both engines.
"""

from __future__ import annotations

import pytest

from govbaseline.verify import verify
from tests.lab.conftest import (
    assert_checks_fail_when_broken_together,
    assert_refused_without_change,
    make_security_update_pending,
    sh,
    wait_for_alert,
)

pytestmark = pytest.mark.lab

CHECK = "test_self_audit_recent_without_regressions"
LAST = "/var/lib/govbaseline/vulnscan/last.json"


def test_new_lynis_warning_is_alerted_and_fails_verify(ansible_lab, tmp_path):
    lab, host = ansible_lab, ansible_lab.hosts()[0]
    before = verify(lab.inventory, tmp_path / "before", limit=host.name, checks=[CHECK])  # waits for the first audit
    assert before.passed, before.output[-2000:]
    package, _, fixed = make_security_update_pending(lab, host)
    sh(lab, host, f"cp {LAST} {LAST}.orig")
    try:
        lab.clear_sink()
        sh(lab, host, "systemctl start govbaseline-lynis.service")  # what the timer starts; about a minute
        text = wait_for_alert(lab, "lynis", "new warning PKGS-7392")
        assert f"Lynis self-audit on {host.name}" in text, text
        after = verify(lab.inventory, tmp_path / "after", limit=host.name, checks=[CHECK])
        message = after.checks(host.name)[CHECK]["message"]
        assert not after.passed and "Lynis warns: PKGS-7392" in message, message
    finally:
        sh(lab, host, f"DEBIAN_FRONTEND=noninteractive apt-get install -y -q {package}={fixed} "
                      f"&& mv {LAST}.orig {LAST}")


BREAKS = {CHECK: (["systemctl disable --now govbaseline-lynis.timer"], "the Lynis self-audit is not scheduled")}


def test_the_self_audit_check_fails_when_unscheduled(ansible_lab, tmp_path):
    assert_checks_fail_when_broken_together(ansible_lab, tmp_path, BREAKS, repair_tags="vulnscan")


BAD_INPUT = {
    "hardening-index": ({"vulnscan_min_hardening_index": 120},
                        "vulnscan_min_hardening_index must be between 0 and 100"),
}


@pytest.mark.parametrize("engine", ["ansible", "pyinfra"])
@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_refused_before_any_change(pyinfra_lab, tmp_path, engine, case):
    overrides, words = BAD_INPUT[case]
    assert_refused_without_change(pyinfra_lab, tmp_path, engine, overrides, words)
