"""Automatic patching end to end: a security update made pending on purpose (a package put back to
its older release version) fails verify once it has waited too long, an unattended run installs
it and reports through the alert channel, and verify passes; each PATCH-01 check fails for its
own reason when broken; bad values are refused before any change, by both engines.
"""

from __future__ import annotations

import time

import pytest

from govbaseline.engines import apply, changed_count
from govbaseline.verify import verify
from tests.lab.conftest import (
    assert_checks_fail_when_broken_together,
    installed_version,
    inventory_with,
    make_security_update_pending,
    sh,
    wait_for_alert,
)

pytestmark = pytest.mark.lab

PENDING_CHECK = "test_no_security_update_pending_too_long"
# Move the record's first-seen time of every pending update back by this many days (time passing).
AGE_RECORD = r"""
import json, sys
path = "/var/lib/govbaseline/patching/pending.json"
data = json.load(open(path))
for info in data["pending"].values():
    info["first_seen"] -= int(sys.argv[1]) * 86400
json.dump(data, open(path, "w"))
"""


def test_pending_security_update_fails_then_unattended_run_installs_and_reports_it(ansible_lab, tmp_path):
    lab, host = ansible_lab, ansible_lab.hosts()[1]
    package, older, fixed = make_security_update_pending(lab, host)
    # apt-daily's run records it as pending now; eight days later it is overdue (at most 7 allowed).
    sh(lab, host, "systemctl start apt-daily.service")
    recorded = sh(lab, host, "cat /var/lib/govbaseline/patching/pending.json")
    assert f'"{package}"' in recorded, recorded
    fresh = verify(lab.inventory, tmp_path / "fresh", limit=host.name, checks=[PENDING_CHECK])
    assert fresh.passed, fresh.output[-2000:]  # pending for minutes: within the allowed days
    sh(lab, host, f"python3 -c '{AGE_RECORD}' 8")
    late = verify(lab.inventory, tmp_path / "late", limit=host.name, checks=[PENDING_CHECK])
    message = late.checks(host.name)[PENDING_CHECK]["message"]
    assert not late.passed and f"{package}: installed {older}, candidate {fixed}" in message \
        and "pending 8.0 days" in message, message
    strict = verify(inventory_with(lab, tmp_path, patching_max_pending_days=0), tmp_path / "strict",
                    limit=host.name, checks=[PENDING_CHECK])
    assert not strict.passed
    # apt's daily upgrade service, as its timer would start it (the stamps say it has not run today).
    lab.clear_sink()
    sh(lab, host, "rm -f /var/lib/apt/periodic/*upgrade*-stamp && systemctl start --no-block apt-daily-upgrade.service")
    deadline = time.monotonic() + 240
    while installed_version(lab, host, package) != fixed or \
            sh(lab, host, "systemctl is-active apt-daily-upgrade.service || true").strip() != "inactive":
        assert time.monotonic() < deadline, f"the unattended run did not install {package} {fixed}"
        time.sleep(2)
    after = verify(lab.inventory, tmp_path / "after", limit=host.name, checks=[PENDING_CHECK])
    assert after.passed, after.output[-2000:]
    text = wait_for_alert(lab, "patching", f"upgraded on {host.name}")
    assert package in text, text


MOVED = "/etc/systemd/system/apt-daily-upgrade.timer.d/50-moved.conf"
COPY = "/etc/systemd/system/apt-daily.timer"
BREAKS = {
    "test_unattended_upgrades_installs_security_updates_daily": (
        # The example: a drop-in moves the upgrade to a date past; the timer stays enabled and
        # active with no next run (NEXT -), and unattended upgrades never run again.
        [f"mkdir -p {MOVED.rsplit('/', 1)[0]} && printf '[Timer]\\nOnCalendar=\\nOnCalendar=2025-01-01 06:00:00\\n' "
         f"> {MOVED} && systemctl daemon-reload"],
        "apt-daily-upgrade.timer (apt's own job) has no next run"),
    "test_services_restarted_and_runs_reported": (
        ["rm /etc/systemd/system/apt-daily-upgrade.service.d/50-govbaseline-report.conf && systemctl daemon-reload",
         "rm /etc/needrestart/conf.d/50-govbaseline.conf"],
        "needrestart would ask interactively"),
}


def test_every_patching_check_fails_for_its_own_reason_when_broken(ansible_lab, tmp_path):
    assert_checks_fail_when_broken_together(ansible_lab, tmp_path, BREAKS, repair_tags="patching")


# Each case runs in the worker that holds its engine's shared lab (tests/conftest.py): a case that
# asked for the lab in another worker would build a lab of the same name there and clear this one.
@pytest.mark.parametrize("engine", [pytest.param(engine, marks=pytest.mark.xdist_group(f"{engine}_lab"))
                                    for engine in ("ansible", "pyinfra")])
def test_a_drop_in_that_stops_unattended_upgrades_fails_and_a_patch01_converge_removes_it(request, engine,
                                                                                        tmp_path):
    """The issue's example, in both engines: verify fails PATCH-01 naming the timer with no next run;
    a converge tagged patch-01 reports the change naming the file, removes it; verify passes."""
    lab = request.getfixturevalue(f"{engine}_lab")
    host = lab.hosts()[1]
    check = "test_unattended_upgrades_installs_security_updates_daily"
    sh(lab, host, BREAKS[check][0][0])
    # And a copy of apt's own unit file in /etc, overriding Debian's schedule (a year apart).
    sh(lab, host, f"cp /usr/lib/systemd/system/apt-daily.timer {COPY} && "
                  f"sed -i 's/^OnCalendar=.*/OnCalendar=yearly/' {COPY} && systemctl daemon-reload")
    before = verify(lab.inventory, tmp_path / "before", limit=host.name, controls=["PATCH-01"], checks=[check])
    message = before.checks(host.name)[check]["message"]
    assert not before.passed and BREAKS[check][1] in message and "the next run of apt-daily.timer" in message, \
        message
    # pyinfra applies whole deploys (no tags).
    repaired = apply(lab.inventory, engine=engine, limit=host.name, tags="patch-01" if engine == "ansible" else None,
                     stream=False)
    assert repaired.ok, repaired.output[-3000:]
    assert changed_count(repaired) > 0 and MOVED in repaired.output and COPY in repaired.output, \
        repaired.output[-3000:]
    for path in (MOVED, COPY):
        assert lab.exec(host, "test", "-e", path, check=False).returncode != 0, f"{path} is still there"
    after = verify(lab.inventory, tmp_path / "after", limit=host.name, controls=["PATCH-01"], checks=[check])
    assert after.passed, after.output[-2000:]

