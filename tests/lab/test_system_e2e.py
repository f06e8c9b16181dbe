"""The operating system's hardening end to end: each check of the system role fails for its own
reason when its control is broken on a converged host, and a converge of either engine repairs it;
a crontab refused to an account not listed, a lab host's own kernel network parameters live; the
clock synchronised over NTS with the lab's time server (the sink), and SYS-06 failing when chrony
stops or follows a server the inventory does not list; a source marked trusted=yes failing SYS-08
and refused by both engines before any change.
"""

from __future__ import annotations

import pytest

from govbaseline.engines import apply, run_ansible
from govbaseline.verify import verify
from tests.lab.conftest import assert_checks_fail_when_broken_together, sh

pytestmark = pytest.mark.lab

WW, UNOWNED = "/var/lib/govbaseline-e2e-world-writable", "/var/lib/govbaseline-e2e-unowned"
# A file of base-files that is no configuration file (dpkg --verify compares it) and that AIDE does
# not watch (FIM-01 watches programs, /etc and the web root), and one to remove.
CHANGED, GONE = "/usr/share/common-licenses/GPL-3", "/usr/share/common-licenses/GPL-2"
APT_SIGNED = "/etc/apt/apt.conf.d/zz-govbaseline-signed-packages"

# Check -> (scripts that break its control, the words its failure must carry). Not here:
# test_kernel_process_parameters_live skips in a container (the machine's kernel); a VM host proves it.
BREAKS = {
    "test_kernel_network_parameters_persisted_and_live": (
        ["sysctl -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.all.accept_redirects=1"],
        "net.ipv4.conf.all.rp_filter is 0 live, 1 wanted"),
    "test_kernel_process_parameters_persisted": (
        ["sed -i 's/^kernel.kptr_restrict = .*/kernel.kptr_restrict = 0/' /etc/sysctl.d/99-zz-govbaseline-kernel.conf"],
        "kernel.kptr_restrict is 0 at boot (from /etc/sysctl.d/99-zz-govbaseline-kernel.conf), 2 wanted"),
    "test_core_dumps_off": (["rm /etc/security/limits.d/60-govbaseline-core.conf"],
                            "login sessions of * may dump core"),
    "test_scheduler_limited_to_listed_accounts": (["rm /etc/cron.allow && touch /etc/cron.deny"],
                                                  "/etc/cron.allow is missing"),
    "test_scheduler_files_root_only": (["chmod 0755 /etc/cron.d"],
                                       "/etc/cron.d is 755 root root, 700 root root wanted"),
    # sshd refuses a host key others can read: the group changes, the mode stays.
    "test_account_files_and_host_keys_modes": (
        ["chmod 0644 /etc/gshadow", "chgrp daemon /etc/ssh/ssh_host_ed25519_key"],
        "/etc/ssh/ssh_host_ed25519_key is 600 root daemon, 600 root root wanted"),
    "test_no_world_writable_or_unowned_files": (
        [f"touch {WW} && chmod 0666 {WW} && touch {UNOWNED} && chown 54321:54321 {UNOWNED}"],
        f"666 root root {WW}"),
    # The sink's server taken without NTS: answers that anyone on the way could forge.
    "test_clock_synchronised_to_the_listed_servers": (
        ["sed -i 's/ iburst nts$/ iburst/' /etc/chrony/chrony.conf && systemctl restart chrony"],
        "listed with nts: true but used with authentication -, not NTS"),
    # Debian's 10-uname prints the kernel at each login once it may run again.
    "test_logins_show_no_system_name_or_version": (["chmod 0755 /etc/update-motd.d/10-uname"],
                                                   "the scripts in /etc/update-motd.d shows"),
    "test_passwords_hashed_with_yescrypt": (["sed -i 's/^ENCRYPT_METHOD.*/ENCRYPT_METHOD SHA512/' /etc/login.defs"],
                                            "login.defs ENCRYPT_METHOD is SHA512, YESCRYPT wanted"),
    "test_system_accounts_have_no_login_shell": (["usermod -s /bin/bash games"],
                                                 "system accounts with a login shell: games"),
    "test_packages_only_from_signed_sources": (
        [f"sed -i 's/AllowUnauthenticated \"false\"/AllowUnauthenticated \"true\"/' {APT_SIGNED}"],
        f"apt allows APT::Get::AllowUnauthenticated true (set in {APT_SIGNED})"),
    # One module's lines gone (a hand edit): its request by name and its aliases reach the kernel again.
    "test_listed_kernel_modules_cannot_load": (["sed -i '/ dccp/d' /etc/modprobe.d/60-govbaseline-blocked.conf"],
                                               "dccp is not blocked (modprobe -D says: "),
    # The common sandbox gone (a hand edit): every govbaseline service runs with the system writable.
    "test_own_services_sandboxed_within_their_exposure_limits": (
        ["rm /etc/systemd/system/govbaseline-.service.d/50-govbaseline-sandbox.conf && systemctl daemon-reload"],
        "govbaseline-alert-retry: not in the common sandbox /etc/systemd/system/govbaseline-.service.d/"
        "50-govbaseline-sandbox.conf (drop-ins: none); govbaseline-alert-retry: exposure "),
    "test_installed_files_match_their_packages": (
        [f"cp -p {CHANGED} {CHANGED}.e2e && cp -p {GONE} {GONE}.e2e && echo changed >> {CHANGED} && rm {GONE}"],
        f"{GONE} (missing, package base-files); {CHANGED} (content differs, package base-files)"),
}
# The search finds; removing what it found is the administrator's (no converge deletes files). A
# changed package file is evidence: no converge reinstalls it; here the originals are put back.
CLEANUP = [f"rm -f {WW} {UNOWNED}", f"mv {CHANGED}.e2e {CHANGED} && mv {GONE}.e2e {GONE}"]
NOT_REPAIRED = {"test_no_world_writable_or_unowned_files", "test_installed_files_match_their_packages"}


def test_every_system_check_fails_for_its_own_reason_when_broken(ansible_lab, tmp_path):
    assert_checks_fail_when_broken_together(ansible_lab, tmp_path, BREAKS, repair_tags="system", cleanup=CLEANUP)


def test_an_account_not_listed_cannot_use_cron_and_the_network_parameters_are_the_hosts_own(ansible_lab):
    host = ansible_lab.hosts()[1]
    refused = ansible_lab.exec(host, "su", "-s", "/bin/sh", "nobody", "-c", "crontab -l", check=False)
    assert refused.returncode != 0 and b"not allowed" in refused.stdout + refused.stderr, refused
    assert sh(ansible_lab, host, "sysctl -n net.ipv4.tcp_syncookies net.ipv4.conf.all.rp_filter").split() == ["1", "1"]


def test_pyinfra_repairs_the_same_breaks(pyinfra_lab, tmp_path):
    host = pyinfra_lab.hosts()[1]
    for check, (scripts, _) in BREAKS.items():
        if check not in NOT_REPAIRED:
            for script in scripts:
                sh(pyinfra_lab, host, script)
    broken = verify(pyinfra_lab.inventory, tmp_path / "broken", limit=host.name, checks=list(BREAKS))
    failed = {name for name, c in broken.checks(host.name).items() if c["status"] == "fail"}
    assert failed == set(BREAKS) - NOT_REPAIRED, broken.output[-2000:]
    repaired = apply(pyinfra_lab.inventory, engine="pyinfra", limit=host.name, stream=False)
    assert repaired.ok, repaired.output[-3000:]
    after = verify(pyinfra_lab.inventory, tmp_path / "after", limit=host.name, checks=list(BREAKS))
    statuses = {name: c["status"] for name, c in after.checks(host.name).items()}
    assert statuses and all(statuses.get(check) == "pass" for check in BREAKS), after.output[-2000:]


TIME_CHECK = "test_clock_synchronised_to_the_listed_servers"


def test_the_clock_follows_the_sink_over_nts_and_fails_when_chrony_stops_or_strays(ansible_lab, tmp_path):
    lab, host = ansible_lab, ansible_lab.hosts()[1]
    sink = lab.sink.address
    synced = verify(lab.inventory, tmp_path / "synced", limit=host.name, checks=[TIME_CHECK])
    assert synced.checks(host.name)[TIME_CHECK]["status"] == "pass", synced.output[-2000:]
    # A real synchronisation: the sink selected, its NTS session has cookies, and its NTP port answers.
    sources = sh(lab, host, "chronyc -c -N sources")
    assert f"^,*,{sink}," in sources, sources
    auth = sh(lab, host, "chronyc -c -N authdata").split(",")
    assert auth[:2] == [sink, "NTS"] and int(auth[8]) > 0, auth  # name, mode, ..., cookies
    for script, words in (
            ("systemctl stop chrony", "chrony is inactive: the clock follows no time server"),
            # A server the inventory does not list, added by hand (another lab address: never queried far).
            (f"echo 'server {lab.subnet.network_address + 99} iburst' >> /etc/chrony/chrony.conf && "
             "systemctl restart chrony", "chrony follows servers the inventory does not list")):
        sh(lab, host, script)
        broken = verify(lab.inventory, tmp_path / "broken", limit=host.name, checks=[TIME_CHECK])
        message = broken.checks(host.name)[TIME_CHECK]["message"]
        assert words in message, message
        repaired = run_ansible(lab.inventory, limit=host.name, tags="sys-06", stream=False)
        assert repaired.ok, repaired.output[-3000:]
        after = verify(lab.inventory, tmp_path / "after", limit=host.name, checks=[TIME_CHECK])
        assert after.checks(host.name)[TIME_CHECK]["status"] == "pass", after.output[-2000:]


HASH_CHECK = "test_passwords_hashed_with_yescrypt"


def test_a_password_hashed_the_old_way_fails_until_it_is_set_again(ansible_lab, tmp_path):
    """The converge cannot rehash a password: the check names the account until its password is set
    again, which then hashes it with yescrypt (login.defs, through PAM)."""
    lab, host = ansible_lab, ansible_lab.hosts()[1]
    sh(lab, host, "useradd -m carla-hash && usermod -p '$6$rounds=5000$salt$notarealhash' carla-hash")
    try:
        old = verify(lab.inventory, tmp_path / "old", limit=host.name, checks=[HASH_CHECK])
        failed = old.checks(host.name)[HASH_CHECK]
        assert failed["status"] == "fail" and "carla-hash (SHA-512)" in failed["message"], failed
        sh(lab, host, "echo 'carla-hash:Long-enough-passphrase-42' | chpasswd")
        assert sh(lab, host, "getent shadow carla-hash | cut -d: -f2").startswith("$y$")
        again = verify(lab.inventory, tmp_path / "again", limit=host.name, checks=[HASH_CHECK])
        assert again.checks(host.name)[HASH_CHECK]["status"] == "pass", again.output[-2000:]
    finally:
        sh(lab, host, "userdel -r carla-hash 2>/dev/null; rm -f /run/faillock/carla-hash; true")


TRUSTED = "/etc/apt/sources.list.d/govbaseline-e2e-trusted.list"
SIGNED_CHECK = "test_packages_only_from_signed_sources"


def test_a_trusted_source_fails_sys08_and_both_engines_refuse_the_host_before_any_change(ansible_lab, tmp_path):
    """A source marked trusted=yes cannot be made safe by a setting: the check names it, and either
    engine refuses the host before its first change (a broken control elsewhere stays broken)."""
    lab, host = ansible_lab, ansible_lab.hosts()[1]
    sh(lab, host, f"echo 'deb [trusted=yes] http://{lab.sink.address}/debian trixie main' > {TRUSTED} && "
                  "chmod 0755 /etc/cron.d")
    try:
        broken = verify(lab.inventory, tmp_path / "trusted", limit=host.name, checks=[SIGNED_CHECK])
        message = broken.checks(host.name)[SIGNED_CHECK]["message"]
        assert f"apt installs without checking signatures from: {TRUSTED}:1: deb [trusted=yes]" in message, message
        for engine in ("ansible", "pyinfra"):
            refused = apply(lab.inventory, engine=engine, limit=host.name, stream=False)
            assert not refused.ok and f"apt installs from {TRUSTED}:1: deb [trusted=yes]" in refused.output, \
                refused.output[-3000:]
            mode = sh(lab, host, "stat -c %a /etc/cron.d").strip()
            assert mode == "755", f"{engine} changed the host before refusing it"
    finally:
        sh(lab, host, f"rm -f {TRUSTED} && chmod 0700 /etc/cron.d")
    after = verify(lab.inventory, tmp_path / "signed", limit=host.name, checks=[SIGNED_CHECK])
    assert after.checks(host.name)[SIGNED_CHECK]["status"] == "pass", after.output[-2000:]
