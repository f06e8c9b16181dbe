"""LOG-01's comparison of the kernel's audit rules with the installed ones (govbaseline.hostfacts),
which the engines use to reload and the check to fail: a rules file and ``auditctl -l`` write the
same rules differently."""

from __future__ import annotations

from govbaseline.checks.test_audit import audit_enabled
from govbaseline.hostfacts import audit_rule_signatures, audit_rules_differ

INSTALLED = """\
## comment
-D
-b 8192
-w /etc/passwd -p wa -k identity
-w /etc/sudoers.d/ -p wa -k privilege
-w /var/www -p wa -k webroot
-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -k time-change
-a always,exit -F path=/usr/bin/sudo -F perm=x -F auid>=1000 -F auid!=unset -k privileged
-e 2
"""
# How auditctl -l writes those rules (audit 4 on Debian 13): -F key=, -S all, -1 for unset, no
# trailing slash, system calls in its own order.
LOADED = """\
-w /etc/passwd -p wa -k identity
-w /etc/sudoers.d -p wa -k privilege
-w /var/www -p wa -k webroot
-a always,exit -F arch=b64 -S clock_settime,adjtimex,settimeofday -F key=time-change
-a always,exit -S all -F path=/usr/bin/sudo -F perm=x -F auid>=1000 -F auid!=-1 -F key=privileged
"""


def test_a_rules_file_and_the_kernels_listing_are_the_same_rules():
    assert sum(audit_rule_signatures(INSTALLED).values()) == 5
    assert audit_rule_signatures(INSTALLED) == audit_rule_signatures(LOADED)
    assert audit_rules_differ(INSTALLED, LOADED) == ""


def test_rules_deleted_from_the_kernel_are_named():
    assert audit_rules_differ(INSTALLED, "No rules\n") == (
        "identity: 1 installed not loaded (e.g. /etc/passwd aw); "
        "privilege: 1 installed not loaded (e.g. /etc/sudoers.d aw); "
        "privileged: 1 installed not loaded (e.g. always,exit auid!=-1 auid>=1000 path=/usr/bin/sudo perm=x); "
        "time-change: 1 installed not loaded (e.g. always,exit adjtimex,clock_settime,settimeofday arch=b64); "
        "webroot: 1 installed not loaded (e.g. /var/www aw)")


def test_a_rule_changed_under_the_same_key_is_a_difference():
    # A locked kernel still watching the old web root: the same key, as many rules, another path.
    loaded = LOADED.replace("-w /var/www ", "-w /srv/old ")
    assert audit_rules_differ(INSTALLED, loaded) == (
        "webroot: 1 installed not loaded (e.g. /var/www aw), 1 loaded not installed (e.g. /srv/old aw)")
    # A deleted rule hidden by a foreign one of the same count is no match either.
    decoy = LOADED.replace("-w /etc/passwd -p wa -k identity", "-w /tmp -p wa -k identity")
    assert audit_rules_differ(INSTALLED, decoy).startswith("identity: 1 installed not loaded")


def test_an_extra_rule_in_the_kernel_is_named_too():
    assert audit_rules_differ(INSTALLED, LOADED + "-w /tmp -p wa\n") == "-: 1 loaded not installed (e.g. /tmp aw)"


def test_the_lock_is_read_from_auditctl_status():
    assert audit_enabled("enabled 2\nfailure 1\npid 358\n") == "2"
    assert audit_enabled("enabled 1\nfailure 1\n") == "1"
    assert audit_enabled("") == ""
