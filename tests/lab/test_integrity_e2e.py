"""File integrity (FIM-01) and web tamper detection (FIM-02) end to end, on the pyinfra lab (so
pyinfra's integrity deploy is proven here; the Ansible lab's converge, idempotence and verify prove
the role's). The attack happens on the host; the alert must arrive at the lab sink and verify must
fail naming the files, until the change is approved or put back.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest

from govbaseline.engines import apply, run_ansible
from govbaseline.verify import verify
from tests.lab.conftest import assert_checks_fail_when_broken_together, inventory_with, sh, wait_for_alert

pytestmark = pytest.mark.lab

AIDE_CHECK = "test_aide_database_is_current_and_no_file_changed"
TAMPER_CHECK = "test_web_root_matches_the_known_good_copy_and_is_watched"
# The web root with modes, owners, sizes and SHA-256 of every entry, relative to the folder given.
LISTING = "cd {} && find . -printf '%y %m %u %g %s %p %l\\n' | sort && find . -type f -print0 | sort -z | " \
          "xargs -0 -r sha256sum"


def run_check(lab, host) -> tuple[int, dict]:
    """Start the scheduled AIDE check (what its timer does); its exit code and the result it recorded."""
    ran = lab.exec(host, "systemctl", "start", "govbaseline-integrity-check.service", check=False)
    return ran.returncode, json.loads(sh(lab, host, "cat /var/lib/govbaseline/integrity/aide.json"))


def check_status(lab, host, tmp_path, check: str, name: str) -> dict:
    result = verify(lab.inventory, tmp_path / name, limit=host.name, checks=[check])
    return result.checks(host.name)[check]


def test_changed_system_files_are_alerted_and_fail_until_approved(pyinfra_lab, tmp_path):
    lab, host = pyinfra_lab, pyinfra_lab.hosts()[1]
    dropped = f"/usr/local/sbin/helper-{uuid.uuid4().hex[:6]}"
    # From an approved state: another test of this lab may have changed accounts on this host (SYS-07's
    # repair leaves a new /etc/passwd-), which is not this test's change.
    sh(lab, host, "govbaseline-integrity approve --reason 'integrity test start'")
    sh(lab, host, f"cp /etc/motd /root/motd.orig && echo 'owned' >> /etc/motd && printf '#!/bin/sh\\n' > {dropped}")
    try:
        lab.clear_sink()
        code, state = run_check(lab, host)
        assert code != 0, f"the integrity check's unit succeeded although files changed: {state}"
        assert "/etc/motd" in state["changed"] and dropped in state["added"], state
        text = wait_for_alert(lab, "integrity", "files differ from the approved state")
        assert "/etc/motd" in text and dropped in text, text
        failed = check_status(lab, host, tmp_path, AIDE_CHECK, "changed")
        assert failed["status"] == "fail" and "changed /etc/motd" in failed["message"] and dropped in \
            failed["message"], failed
    finally:
        sh(lab, host, f"mv /root/motd.orig /etc/motd && rm -f {dropped}")
    # Put back: the next check finds nothing, the unit succeeds, verify passes.
    code, state = run_check(lab, host)
    assert code == 0 and state["result"] == "clean", state
    assert check_status(lab, host, tmp_path, AIDE_CHECK, "put-back")["status"] == "pass"
    # A wanted change is approved (the reason is in the journal), and stays approved.
    sh(lab, host, "echo 'maintenance on Sunday' > /etc/motd.d-note && govbaseline-integrity approve "
                  "--reason 'ticket 42'")
    try:
        code, state = run_check(lab, host)
        assert code == 0 and state["result"] == "clean", state
        approved = check_status(lab, host, tmp_path, AIDE_CHECK, "approved")
        assert approved["status"] == "pass", approved
        assert "ticket 42" in sh(lab, host, "journalctl -t govbaseline-integrity --no-pager -n 20")
    finally:
        sh(lab, host, "rm -f /etc/motd.d-note && govbaseline-integrity approve --reason 'test cleanup'")


def test_a_tampered_page_is_alerted_within_the_delay(pyinfra_lab, tmp_path):
    lab, host = pyinfra_lab, pyinfra_lab.hosts()[1]
    page = sh(lab, host, "find /var/www -type f -name '*.html' | sort | head -1").strip()
    assert page, "the converged web root holds no page"
    sh(lab, host, f"cp -p {page} /root/page.orig")
    lab.clear_sink()
    started = time.monotonic()
    sh(lab, host, f"echo '<h1>hacked</h1>' >> {page} && echo '<?php system($_GET[0]);' > /var/www/shell.php")
    try:
        # The watch judges 2 s after the writes settle; the alert goes out at once.
        text = wait_for_alert(lab, "integrity", "differ from the known-good copy", timeout=10)
        assert time.monotonic() - started < 10
        assert page.removeprefix("/var/www/") in text and "shell.php" in text, text
        assert any("shell.php" in body.decode() for _, body in lab.sink_messages("webhook")), \
            "the tamper alert did not reach the webhook"
        failed = check_status(lab, host, tmp_path, TAMPER_CHECK, "tampered")
        assert failed["status"] == "fail" and "added shell.php" in failed["message"], failed
    finally:
        sh(lab, host, f"cp -p /root/page.orig {page} && rm -f /var/www/shell.php /root/page.orig")
    assert check_status(lab, host, tmp_path, TAMPER_CHECK, "put-back")["status"] == "pass"


def test_restore_puts_the_known_good_copy_back_byte_identical(pyinfra_lab, tmp_path):
    lab, host = pyinfra_lab, pyinfra_lab.hosts()[1]
    # Set-group-id folders (a web root shared by a group): the restore must put the bit back, which a
    # sandbox with RestrictSUIDSGID would refuse (SYS-10: the tamper watch's unit leaves it out).
    sh(lab, host, "rm -rf /srv/release && cp -a /var/www /srv/release && "
                  "find /srv/release -type d -exec chmod g+s {} +")
    restoring = inventory_with(lab, tmp_path, integrity_tamper_restore=True, integrity_known_good_dir="/srv/release")
    try:
        done = apply(restoring, engine="pyinfra", limit=host.name, stream=False)
        assert done.ok, done.output[-3000:]
        page = sh(lab, host, "find /var/www -type f -name '*.html' | sort | head -1").strip()
        lab.clear_sink()
        sh(lab, host, f"echo defaced > {page} && mkdir -p /var/www/kit && echo x > /var/www/kit/a.php && "
                      f"chmod 777 {page.rsplit('/', 1)[0]}")
        text = wait_for_alert(lab, "integrity", "restored from /srv/release", timeout=15)
        assert "kit" in text, text
        time.sleep(1)
        assert sh(lab, host, LISTING.format("/var/www")) == sh(lab, host, LISTING.format("/srv/release"))
        result = verify(restoring, tmp_path / "restored", limit=host.name, checks=[TAMPER_CHECK])
        assert result.checks(host.name)[TAMPER_CHECK]["status"] == "pass", result.output[-2000:]
    finally:
        back = apply(lab.inventory, engine="pyinfra", limit=host.name, stream=False)
        # The web root as approved (the watch, no longer restoring, judges it against its manifest).
        sh(lab, host, "rm -rf /srv/release && find /var/www -type d -exec chmod g-s {} +")
        assert back.ok, back.output[-3000:]


BREAKS = {
    AIDE_CHECK: (["rm -f /var/lib/aide/aide.db"], "no root-only AIDE database"),
    TAMPER_CHECK: (["systemctl stop govbaseline-tamper.service"], "govbaseline-tamper.service is not running"),
}


def test_every_integrity_check_fails_for_its_own_reason_when_broken(pyinfra_lab, tmp_path):
    assert_checks_fail_when_broken_together(pyinfra_lab, tmp_path, BREAKS, repair_tags="integrity", host_index=1)


def test_approve_playbook_needs_a_reason_and_approves(pyinfra_lab, tmp_path):
    lab, host = pyinfra_lab, pyinfra_lab.hosts()[1]
    refused = run_ansible(lab.inventory, playbook="approve.yml", limit=host.name, stream=False)
    assert not refused.ok and "approve_reason must say why" in refused.output, refused.output[-2000:]
    sh(lab, host, "echo 'release 2026.11' > /var/www/release.txt")
    try:
        assert check_status(lab, host, tmp_path, TAMPER_CHECK, "deployed")["status"] == "fail"
        done = run_ansible(lab.inventory, playbook="approve.yml", limit=host.name, stream=False,
                           extra_vars={"approve_reason": "release 2026.11"})
        assert done.ok, done.output[-2000:]
        assert check_status(lab, host, tmp_path, TAMPER_CHECK, "approved")["status"] == "pass"
    finally:
        sh(lab, host, "rm -f /var/www/release.txt && govbaseline-integrity approve --reason 'test cleanup'")
