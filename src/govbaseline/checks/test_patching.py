"""Checks for automatic security patching PATCH-01 and PATCH-02 (role ``patching``)."""

from __future__ import annotations

import json
import re
import shlex
import time

import pytest

from govbaseline.checks.schedule import alive, period_hours

# apt-get -s prints "Inst <pkg> [<installed>] (<candidate> <origin>:<release> [<arch>])"; the host's
# govbaseline-patch-report parses the same format (it records first-seen times; this check decides).
INST = re.compile(r"^Inst (\S+) \[([^\]]+)\] \((\S+) (.+?)(?: \[[^\]]+\])?\)")

# Prints "Allowed origins are: <pattern>, ..." as unattended-upgrades computes them (its program has no .py name).
# Run with python3 -B: importing the program would otherwise write /usr/bin/__pycache__, a change to
# the host that the integrity check (FIM-01) rightly reports; a check must leave the host as it was.
ALLOWED_ORIGINS = """
import sys
sys.dont_write_bytecode = True
import importlib.machinery, importlib.util
loader = importlib.machinery.SourceFileLoader("unattended_upgrade", "/usr/bin/unattended-upgrade")
module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
loader.exec_module(module)
print("Allowed origins are:", ", ".join(module.get_allowed_origins()))
"""


def apt_config(host) -> str:
    out = host.run("apt-config dump")
    assert out.rc == 0, out.stderr
    return out.stdout


@pytest.mark.control("PATCH-01")
def test_unattended_upgrades_installs_security_updates_daily(host, hostvars, evidence):
    for package in ("unattended-upgrades", "needrestart"):
        assert host.package(package).is_installed, f"{package} is not installed"
    config = apt_config(host)
    for key in ("APT::Periodic::Update-Package-Lists", "APT::Periodic::Unattended-Upgrade"):
        assert f'{key} "1";' in config, f"{key} is not 1: apt does not do it every day"
    # Ask unattended-upgrades itself which origins it would install from: its own get_allowed_origins()
    # on apt's configuration, what a run logs as "Allowed origins are" (a dry run costs a second to open apt's cache).
    origins = host.run(f"python3 -B -c {shlex.quote(ALLOWED_ORIGINS)}")
    assert "-security" in origins.stdout, \
        f"unattended-upgrades does not take the security archive: {(origins.stdout or origins.stderr).strip()[-500:]}"
    # apt's own timers, held to Debian's schedule: a foreign drop-in that moves or stops them fails.
    # Both are judged before the check fails, so its message names every timer that is not alive.
    dead = []
    for unit in hostvars["__patching_apt_units"]:
        schedule = hostvars["__patching_apt_schedule"][unit]
        try:
            alive(host, unit, "apt's own job", period_hours(host, schedule["calendar"]), schedule["delay_minutes"],
                  evidence)
        except AssertionError as exc:
            dead.append(str(exc))
    assert not dead, "; ".join(dead)


@pytest.mark.control("PATCH-01")
def test_services_restarted_and_runs_reported(host, hostvars):
    mode = host.run("perl -e 'our %nrconf; do $_ for glob(q{/etc/needrestart/conf.d/*.conf}); print $nrconf{restart}'")
    assert mode.stdout.strip() in ("a", "l"), \
        f"needrestart would ask interactively (restart mode {mode.stdout.strip() or 'unset'}): an unattended " \
        "upgrade leaves services on old libraries"
    for unit in hostvars["__patching_apt_units"]:
        post = host.run("systemctl show -p ExecStopPost --value %s.service", unit)
        assert "govbaseline-patch-report" in post.stdout, \
            f"{unit}.service runs no govbaseline-patch-report: its runs are neither recorded nor reported"
    report = host.file(hostvars["__patching_report_command"])
    assert report.exists and report.mode & 0o111, "govbaseline-patch-report is missing or not executable"


def pending_security(host) -> dict[str, dict[str, str]]:
    out = host.run("LC_ALL=C apt-get -s -o Debug::NoLocking=true dist-upgrade")
    assert out.rc == 0, f"apt-get cannot simulate an upgrade: {out.stderr.strip()[-500:]}"
    found = {}
    for line in out.stdout.splitlines():
        match = INST.match(line)
        if match and ("-security" in match.group(4) or "Security" in match.group(4)):
            found[match.group(1)] = {"installed": match.group(2), "candidate": match.group(3),
                                     "origin": match.group(4)}
    return found


@pytest.mark.control("PATCH-02")
def test_no_security_update_pending_too_long(host, hostvars, evidence):
    max_days = hostvars["patching_max_pending_days"]
    list_days = hostvars["patching_max_list_age_days"]
    newest = host.run("find /var/lib/apt/lists -maxdepth 1 -name '*security*_InRelease' -printf '%T@\\n' "
                      "| sort -n | tail -1")
    assert newest.stdout.strip(), "apt has no lists of the Debian security archive: pending updates are unknown"
    list_age = (time.time() - float(newest.stdout)) / 86400
    assert list_age <= list_days, \
        f"the security archive's package lists are {list_age:.1f} days old (at most {list_days}): " \
        "pending updates are unknown"
    pending = pending_security(host)
    state = host.run("cat %s/pending.json", hostvars["__patching_state_dir"])
    seen = json.loads(state.stdout).get("pending", {}) if state.rc == 0 and state.stdout.strip() else {}
    now = time.time()
    rows, late = [], []
    for name, info in sorted(pending.items()):
        days = (now - seen.get(name, {}).get("first_seen", now)) / 86400
        rows.append(f"{name}: installed {info['installed']}, candidate {info['candidate']} ({info['origin']}), "
                    f"pending {days:.1f} days")
        if days > max_days or max_days == 0:
            late.append(rows[-1])
    evidence(f"pending security updates (at most {max_days} days allowed)", "\n".join(rows) or "none", ok=not late)
    assert not late, f"security updates pending longer than {max_days} days: " + "; ".join(late)
