"""The audit trail end to end: a log line reaches the lab's log host over TLS, web server logs past
their retention are deleted and recent ones kept; each check fails when its control is broken; bad
values are refused before any change, by both engines.
"""

from __future__ import annotations

import time
import uuid

import pytest

from govbaseline.verify import verify
from tests.lab.conftest import assert_checks_fail_when_broken_together, sh

pytestmark = pytest.mark.lab


def test_log_line_reaches_the_log_host_over_tls(ansible_lab):
    host = ansible_lab.hosts()[0]
    marker = f"govbaseline-e2e-{uuid.uuid4()}"
    sh(ansible_lab, host, f"logger -t govbaseline-e2e {marker}")
    deadline = time.monotonic() + 30
    while True:
        received = ansible_lab.exec(ansible_lab.sink, "cat", "/var/lib/govbaseline-sink/syslog/remote.log",
                                    check=False).stdout.decode()
        line = next((x for x in received.splitlines() if marker in x), None)
        if line:
            break
        assert time.monotonic() < deadline, "the log line did not reach the log host"
        time.sleep(1)
    assert host.name in line


def test_web_logs_past_retention_deleted_and_recent_kept(ansible_lab, tmp_path):
    host = ansible_lab.hosts()[1]
    check = "test_web_logs_past_retention_are_deleted"
    sh(ansible_lab, host, "mkdir -p /var/log/nginx && touch -d '100 days ago' /var/log/nginx/access.log.9.gz "
                          "&& touch -d '10 days ago' /var/log/nginx/access.log.2.gz")
    broken = verify(ansible_lab.inventory, tmp_path / "broken", limit=host.name, checks=[check])
    assert not broken.passed and "access.log.9.gz" in broken.output, broken.output[-2000:]
    sh(ansible_lab, host, "systemctl start govbaseline-weblog-retention.service")
    left = sh(ansible_lab, host, "ls /var/log/nginx")
    assert "access.log.9.gz" not in left and "access.log.2.gz" in left, left
    after = verify(ansible_lab.inventory, tmp_path / "after", limit=host.name, checks=[check])
    assert after.passed, after.output[-2000:]


BREAKS = {
    "test_audit_rules_cover_the_policy": (["rm /etc/audit/rules.d/50-govbaseline.rules"], "no audit rule for ["),
    "test_journal_persistent_with_limits": (["rm /etc/systemd/journald.conf.d/50-govbaseline.conf"],
                                            "journal Storage=None"),
    # (Stopping rsyslog is no break: syslog.socket starts it again at the next log line.)
    "test_logs_forwarded_to_the_log_host_over_tls": (
        ["rm /etc/rsyslog.d/60-govbaseline-forward.conf && systemctl restart rsyslog"],
        "forwarding is not configured with TLS"),
    "test_web_logs_past_retention_are_deleted": (["systemctl disable --now govbaseline-weblog-retention.timer"],
                                                 "govbaseline-weblog-retention.timer (deletion of old web "
                                                 "server logs) is not enabled"),
}


def test_every_audit_check_fails_for_its_own_reason_when_broken(ansible_lab, tmp_path):
    assert_checks_fail_when_broken_together(ansible_lab, tmp_path, BREAKS, repair_tags="audit")

