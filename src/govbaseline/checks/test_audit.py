"""Checks for the audit trail LOG-01, LOG-02 and LOG-03 (role ``audit``)."""

from __future__ import annotations

import posixpath

import pytest

from govbaseline import hostfacts
from govbaseline.checks.plugin import in_container
from govbaseline.checks.schedule import alive, period_hours


def rules_dir(hostvars) -> str:
    """The folder auditd loads its rules from: the one the role installs its rules file in."""
    return posixpath.dirname(hostvars["__audit_rules_file"])


def installed_rules(host, rules_dir: str) -> str:
    out = host.run("cat %s/*.rules", rules_dir)
    assert out.rc == 0, f"no audit rules in {rules_dir}: {out.stderr.strip()}"
    return out.stdout


@pytest.mark.control("LOG-01")
def test_audit_rules_cover_the_policy(host, hostvars):
    rules = [line.strip() for line in installed_rules(host, rules_dir(hostvars)).splitlines()
             if line.strip().startswith(("-w", "-a"))]
    missing = [key for key in hostvars["__audit_rule_keys"] if not any(line.endswith(f"-k {key}") for line in rules)]
    assert not missing, f"no audit rule for {missing} in {rules_dir(hostvars)}"
    web_root = hostvars["audit_web_root"]
    assert any(line.startswith(f"-w {web_root} ") and "-p wa" in line for line in rules), \
        f"writes under the web root {web_root} are not audited"
    for path in ("/etc/passwd", "/etc/shadow", "/etc/sudoers", "/etc/ssh/sshd_config"):
        assert any(line.startswith(f"-w {path} ") for line in rules), f"{path} is not watched"


@pytest.mark.control("LOG-01")
def test_auditd_running_with_the_rules_loaded(host, hostvars):
    container = in_container(host)
    if container:
        pytest.skip(f"auditd cannot run inside a {container} container; the installed rules are checked "
                    "by test_audit_rules_cover_the_policy")
    assert host.service("auditd").is_running, "auditd is not running: nothing is recorded"
    assert host.service("auditd").is_enabled, "auditd does not start at boot"
    loaded = host.run("auditctl -l")
    assert loaded.rc == 0, loaded.stderr
    missing = [key for key in hostvars["__audit_rule_keys"]
               if f"-k {key}" not in loaded.stdout and f"key={key}" not in loaded.stdout]
    assert not missing, f"the kernel has no audit rule for {missing} (rules installed but not loaded)"
    status = host.run("auditctl -s")
    locked = audit_enabled(status.stdout) == "2"
    # The engines' own comparison (govbaseline.hostfacts): what makes them load the rules again.
    differ = hostfacts.audit_rules_differ(installed_rules(host, rules_dir(hostvars)), loaded.stdout)
    assert not differ, (f"the kernel's audit rules are not the installed ones ({differ})"
                        + ("; they are locked until reboot: reboot the host to load them" if locked else ""))
    if hostvars["audit_rules_immutable"]:
        assert locked, f"the rules can be changed until reboot (audit_rules_immutable, but {status.stdout.strip()!r})"


def audit_enabled(status: str) -> str:
    """``auditctl -s``'s "enabled" value: 0 off, 1 on, 2 on and locked until reboot."""
    return next((line.split()[1] for line in status.splitlines() if line.startswith("enabled ")), "")


def journald_settings(host) -> dict[str, str]:
    out = host.run("systemd-analyze cat-config systemd/journald.conf")
    assert out.rc == 0, out.stderr
    values: dict[str, str] = {}
    for line in out.stdout.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()  # later files win, as in journald
    return values


@pytest.mark.control("LOG-02")
def test_journal_persistent_with_limits(host, hostvars):
    settings = journald_settings(host)
    assert settings.get("Storage") in ("persistent", "auto"), f"journal Storage={settings.get('Storage')}"
    assert settings.get("Storage") == "persistent" or host.file("/var/log/journal").is_directory, \
        "the journal is not kept on disk"
    assert settings.get("SystemMaxUse"), "the journal has no size limit (SystemMaxUse)"
    retention = settings.get("MaxRetentionSec", "")
    assert retention == f"{hostvars['audit_journal_max_retention_days']}day", \
        f"the journal's age limit is {retention or 'unset'}"
    files = host.run("find /var/log/journal -name 'system*.journal' -newermt '1 day ago'")
    assert files.stdout.strip(), "journald writes no journal file under /var/log/journal"


@pytest.mark.control("LOG-02")
def test_logs_forwarded_to_the_log_host_over_tls(host, hostvars):
    log_host = hostvars["audit_log_host"]
    if not log_host:
        pytest.skip("no central log host is configured (audit_log_host is empty)")
    assert host.service("rsyslog").is_running, "rsyslog is not running: nothing is forwarded"
    conf = host.file(hostvars["__audit_rsyslog_conf"])
    assert conf.exists and 'StreamDriverMode="1"' in conf.content_string, "forwarding is not configured with TLS"
    port = hostvars["audit_log_port"]
    host.run("logger -t govbaseline-verify 'log forwarding check'")
    conns = host.run("ss -Htn state established dst %s dport = :%s", log_host, str(port))
    assert conns.stdout.strip(), f"no TLS connection from rsyslog to {log_host}:{port}"


@pytest.mark.control("LOG-03")
def test_web_logs_past_retention_are_deleted(host, hostvars, evidence):
    days = hostvars["audit_web_log_retention_days"]
    old = []
    for folder in hostvars["audit_web_log_paths"]:
        out = host.run("find %s -xdev -type f -mmin +%s 2>/dev/null", folder, str(days * 1440))
        old += out.stdout.split()
    assert not old, f"web server logs older than {days} days are kept: {old[:20]}"
    alive(host, hostvars["__audit_retention_unit"], "deletion of old web server logs",
          period_hours(host, hostvars["__audit_retention_calendar"]), hostvars["__audit_retention_delay_minutes"],
          evidence)
