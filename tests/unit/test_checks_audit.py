"""The LOG-01 check's reading of audit rules: a rules file and ``auditctl -l`` count the same rules."""

from __future__ import annotations

from collections import Counter

from govbaseline.checks.test_audit import audit_enabled, rule_keys, rules_differ

INSTALLED = """\
## comment
-D
-b 8192
-w /etc/passwd -p wa -k identity
-w /etc/shadow -p wa -k identity
-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -k time-change
-a always,exit -F path=/usr/bin/sudo -F perm=x -F auid>=1000 -F auid!=unset -k privileged
-e 2
"""
# What auditctl -l printed for those rules on a Debian 13 kernel.
LOADED = """\
-w /etc/passwd -p wa -k identity
-w /etc/shadow -p wa -k identity
-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -F key=time-change
-a always,exit -S all -F path=/usr/bin/sudo -F perm=x -F auid>=1000 -F auid!=-1 -F key=privileged
"""


def test_a_rules_file_and_the_kernels_listing_count_the_same_rules():
    assert rule_keys(INSTALLED) == Counter({"identity": 2, "time-change": 1, "privileged": 1})
    assert rules_differ(rule_keys(INSTALLED), rule_keys(LOADED)) == ""


def test_a_rule_missing_from_the_kernel_is_named_with_its_counts():
    loaded = "\n".join(LOADED.splitlines()[1:])
    assert rules_differ(rule_keys(INSTALLED), rule_keys(loaded)) == "identity: 2 installed, 1 loaded"
    assert rules_differ(rule_keys(INSTALLED), rule_keys("No rules\n")) == (
        "identity: 2 installed, 0 loaded, privileged: 1 installed, 0 loaded, time-change: 1 installed, 0 loaded")


def test_an_extra_rule_in_the_kernel_is_named_too():
    loaded = LOADED + "-w /tmp -p wa\n"
    assert rules_differ(rule_keys(INSTALLED), rule_keys(loaded)) == "-: 0 installed, 1 loaded"


def test_the_lock_is_read_from_auditctl_status():
    assert audit_enabled("enabled 2\nfailure 1\npid 358\n") == "2"
    assert audit_enabled("enabled 1\nfailure 1\n") == "1"
    assert audit_enabled("") == ""
