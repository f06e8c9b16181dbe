"""Vulnerability scanning end to end. The Lynis self-audit started at converge passes verify; a real
regression (a security update made pending again, which Lynis reports as PKGS-7392) raises an alert
that arrives and fails verify. The fleet port scan from the scanner host finds a port opened on
another host (a listener and a firewall rule) that it does not declare, alerts, and fails verify
naming the port. Checks fail for their own reason when broken; bad values are refused before any
change, by both engines.
"""

from __future__ import annotations

import pytest

from govbaseline.verify import verify
from tests.lab.conftest import (
    assert_checks_fail_when_broken_together,
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


PORT_CHECK = "test_fleet_scan_finds_only_declared_ports"


def test_undeclared_open_port_is_found_by_the_fleet_scan(ansible_lab, tmp_path):
    lab, target, scanner = ansible_lab, ansible_lab.hosts()[0], ansible_lab.hosts()[1]
    before = verify(lab.inventory, tmp_path / "before", limit=target.name, checks=[PORT_CHECK])
    assert before.passed, before.output[-2000:]  # the first scan, started at converge, saw only declared ports
    # Not named govbaseline-*: SYS-10's sandbox (role system) would keep a unit of that prefix off the network.
    sh(lab, target, "systemd-run --unit e2e-listener python3 -m http.server 8080 "
                    "&& nft insert rule inet govbaseline input tcp dport 8080 accept "
                    "&& for i in $(seq 50); do ss -Htln sport = :8080 | grep -q . && exit 0; sleep 0.2; done; exit 1")
    try:
        lab.clear_sink()
        sh(lab, scanner, "systemctl start govbaseline-portscan.service")  # what its timer starts
        text = wait_for_alert(lab, "portscan", f"{target.name} ({target.address}) has undeclared open TCP ports 8080")
        assert f"seen from {scanner.name}" in text, text
        found = verify(lab.inventory, tmp_path / "found", limit=target.name, checks=[PORT_CHECK])
        message = found.checks(target.name)[PORT_CHECK]["message"]
        assert not found.passed and f"undeclared open TCP ports on {target.name}: 8080 (declared: 22, 80, 443)" \
            in message, message
    finally:
        # The listener goes, and the firewall's own ruleset (as loaded at boot) comes back.
        sh(lab, target, "systemctl stop e2e-listener; nft -f /etc/nftables.conf")
    sh(lab, scanner, "systemctl start govbaseline-portscan.service")
    after = verify(lab.inventory, tmp_path / "after", limit=target.name, checks=[PORT_CHECK])
    assert after.passed, after.output[-2000:]


BREAKS = {CHECK: (["systemctl disable --now govbaseline-lynis.timer"],
                  "govbaseline-lynis.timer (Lynis self-audit) is not enabled")}


def test_the_self_audit_check_fails_when_unscheduled(ansible_lab, tmp_path):
    assert_checks_fail_when_broken_together(ansible_lab, tmp_path, BREAKS, repair_tags="vulnscan")

