"""Remote access and accounts end to end: a locked vendor account cannot log in, an administrator
from the inventory can (with a key only), a weak password is rejected by passwd, an account locks
after N failed logins; each check fails when its control is broken; lockouts and bad values are
refused before any change, by both engines.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from govbaseline.engines import run_ansible
from govbaseline.verify import verify
from tests.lab.conftest import (
    assert_checks_fail_when_broken_together,
    inventory_with,
    sh,
)

pytestmark = pytest.mark.lab

STRONG = "Vq7#mZ2!pL9@xR4w"

# Talks to a program through a pseudo-terminal (passwd and su read passwords from a terminal),
# optionally as another user, answering each prompt that ends in ":"; prints rc and output as JSON.
PTY_DIALOG = r"""
import json, os, pty, pwd, select, signal, sys, time
argv, user, answers = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    if user:
        entry = pwd.getpwnam(user)
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    os.execvp(argv[0], argv)
out, since, deadline = b"", 0, time.time() + 30
while time.time() < deadline:
    ready, _, _ = select.select([fd], [], [], 0.5)
    if ready:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    if answers and out[since:].rstrip().endswith(b":"):
        time.sleep(0.2)
        os.write(fd, (answers.pop(0) + "\n").encode())
        since = len(out)
else:
    os.kill(pid, signal.SIGKILL)
_, status = os.waitpid(pid, 0)
print(json.dumps({"rc": os.waitstatus_to_exitcode(status), "out": out.decode(errors="replace")}))
"""


def dialog(lab, host, argv: list[str], answers: list[str], user: str | None = None) -> dict:
    out = lab.exec(host, "python3", "-c", PTY_DIALOG, json.dumps([argv, user, answers]))
    return json.loads(out.stdout.decode())


def ssh_as(lab, host, user: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ssh", "-i", str(lab.key), "-o", f"UserKnownHostsFile={lab.known_hosts}",
                           "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "IdentitiesOnly=yes",
                           f"{user}@{host.address}", "id"], capture_output=True, text=True, timeout=30, check=False)


def remove_account(lab, host, name: str) -> None:
    """Remove a test's account with its home and its pam_faillock record: a record left in
    /run/faillock would be a file of no owner, which SYS-05 rightly reports on the shared lab."""
    sh(lab, host, f"userdel -r {name} 2>/dev/null; rm -f /run/faillock/{name}; true")


@pytest.fixture
def carol(ansible_lab):
    """A local human account with a known strong password on host 1 (removed afterwards)."""
    host = ansible_lab.hosts()[1]
    sh(ansible_lab, host, f"useradd -m -s /bin/bash carol && echo 'carol:{STRONG}' | chpasswd")
    yield host
    remove_account(ansible_lab, host, "carol")


def test_weak_password_rejected_by_passwd(ansible_lab, carol):
    weak = dialog(ansible_lab, carol, ["passwd", "carol"], ["abc123"] * 6)
    assert weak["rc"] != 0, weak["out"]
    assert "BAD PASSWORD" in weak["out"], weak["out"]
    strong = dialog(ansible_lab, carol, ["passwd", "carol"], ["Zt5$kq8!Wm3#rP6y"] * 2)
    assert strong["rc"] == 0, strong["out"]


def test_account_locks_after_repeated_failures(ansible_lab, carol):
    deny = 5  # access_faillock_deny's default, which the lab uses
    for _ in range(deny):
        wrong = dialog(ansible_lab, carol, ["su", "-c", "true", "carol"], ["wrong-password"], user="nobody")
        assert wrong["rc"] != 0, wrong["out"]
    right = dialog(ansible_lab, carol, ["su", "-c", "true", "carol"], [STRONG], user="nobody")
    assert right["rc"] != 0, "the right password still worked after repeated failures: no lockout"
    tally = sh(ansible_lab, carol, "faillock --user carol")
    assert len(re.findall(r"^\d{4}-\d\d-\d\d ", tally, flags=re.M)) >= deny, tally
    sh(ansible_lab, carol, "faillock --user carol --reset")
    unlocked = dialog(ansible_lab, carol, ["su", "-c", "true", "carol"], [STRONG], user="nobody")
    assert unlocked["rc"] == 0, unlocked["out"]


def test_locked_vendor_account_cannot_log_in(ansible_lab, tmp_path):
    host = ansible_lab.hosts()[1]
    pub = ansible_lab.key.with_suffix(".pub").read_text().strip()
    keys = "~vendor1/.ssh/authorized_keys"
    sh(ansible_lab, host, "useradd -m -s /bin/bash -G sshadmins vendor1 && "
                          f"echo 'vendor1:{STRONG}' | chpasswd && install -d -m 700 -o vendor1 ~vendor1/.ssh && "
                          f"echo '{pub}' > {keys} && chown vendor1 {keys}")
    try:
        assert ssh_as(ansible_lab, host, "vendor1").returncode == 0, "vendor1 could not log in before the lock"
        inventory = inventory_with(ansible_lab, tmp_path, access_vendor_accounts=["vendor1"])
        locked = run_ansible(inventory, tags="access", limit=host.name, stream=False)
        assert locked.ok, locked.output[-3000:]
        refused = ssh_as(ansible_lab, host, "vendor1")
        assert refused.returncode != 0, "a locked, expired vendor account still logs in with its key"
        outcome = verify(inventory, tmp_path / "report", limit=host.name,
                         checks=["test_vendor_accounts_locked_and_expired"])
        assert outcome.passed, outcome.output[-2000:]
        # The negative twin: unlocked and unexpired, the check fails; the engine locks it again.
        assert_checks_fail_when_broken_together(
            ansible_lab, tmp_path, {"test_vendor_accounts_locked_and_expired": (
                ["usermod -U -e '' -s /bin/bash vendor1"], "vendor account vendor1 has a usable password")},
            repair_tags="access", host_index=1, inventory=inventory)
    finally:
        remove_account(ansible_lab, host, "vendor1")


def test_listed_administrator_logs_in_with_a_key(ansible_lab, tmp_path):
    host = ansible_lab.hosts()[1]
    pub = ansible_lab.key.with_suffix(".pub").read_text().strip()
    inventory = inventory_with(ansible_lab, tmp_path, access_admin_users=[{"name": "alice", "ssh_public_keys": [pub]}])
    result = run_ansible(inventory, tags="access", limit=host.name, stream=False)
    assert result.ok, result.output[-3000:]
    login = ssh_as(ansible_lab, host, "alice")
    assert login.returncode == 0 and "sshadmins" in login.stdout, login.stderr
    remove_account(ansible_lab, host, "alice")


DROPIN = "/etc/ssh/sshd_config.d/0-break.conf"  # sorts before 00-govbaseline.conf, so it wins


LISTENER = ("import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); "
            "s.bind(('',23)); s.listen(1); time.sleep(600)")
SSHD_BREAK = ("printf '%s\\n' 'PasswordAuthentication yes' 'KexAlgorithms +diffie-hellman-group14-sha1' "
              f"'AllowTcpForwarding yes' > {DROPIN} && systemctl reload ssh")

# One foreign sshd drop-in breaks the four SSH checks, each for its own reason.
BREAKS = {
    "test_sshd_key_only_for_the_admin_group": ([SSHD_BREAK], "sshd allows more than keys"),
    "test_sshd_algorithms_hardened_and_post_quantum_kept": ([], "sshd still offers"),
    "test_forwarding_off_and_banner_shown": ([], "forwarding is on"),
    "test_password_login_and_weak_kex_refused_from_outside": ([], "the server offers more than public keys"),
    "test_no_remote_access_servers": ([f'systemd-run --unit=break-telnet python3 -c "{LISTENER}" && sleep 1'],
                                      "remote-access ports listening"),
    "test_password_quality_enforced": (["rm /etc/security/pwquality.conf.d/govbaseline.conf"], "minlen is"),
    "test_failed_logins_lock_the_account": (
        ["DEBIAN_FRONTEND=noninteractive pam-auth-update --disable govbaseline-faillock govbaseline-faillock-notify"],
        "pam_faillock is not wired"),
    "test_passwords_age_and_none_is_empty": (
        [f"useradd -m dave && echo 'dave:{STRONG}' | chpasswd && chage -M 99999 dave"],
        "human accounts whose passwords do not age"),
    "test_idle_sessions_end": (["rm -f /etc/profile.d/govbaseline-session.sh"], "login shells have TMOUT="),
    "test_sudo_uses_a_pty_and_logs": (["echo 'Defaults !use_pty' > /etc/sudoers.d/zz-break && "
                                       "chmod 440 /etc/sudoers.d/zz-break"], "sudo does not use use_pty"),
    "test_umask_027": (["sed -i 's/^UMASK.*/UMASK\t022/' /etc/login.defs"], "looser than 027"),
}


def test_every_access_check_fails_for_its_own_reason_when_broken(ansible_lab, tmp_path):
    assert_checks_fail_when_broken_together(
        ansible_lab, tmp_path, BREAKS, repair_tags="access",
        cleanup=[f"rm -f {DROPIN} /etc/sudoers.d/zz-break && systemctl reload ssh",
                 "systemctl stop break-telnet", "userdel -r dave && rm -f /run/faillock/dave"])

