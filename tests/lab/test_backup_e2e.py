"""Backups on real lab hosts (roles backup and backup_server): the lab's sink is the backup server.
The hosts are the pyinfra-converged lab, so pyinfra's backup deploys are proven end to end here
(the Ansible lab's idempotence test and verify prove Ansible's).

A web root deleted and restored is byte-identical; a stopped server fails the run and the alert
arrives, and the next run catches up; a backup too old fails verify; the client cannot delete its
history; no secret shows in the journal, the process list or the report; each check fails when its
control is broken.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import threading
import time

import pytest
import yaml

from govbaseline.engines import run_ansible
from govbaseline.inventory import tool
from govbaseline.validation import role_vars
from govbaseline.verify import verify
from tests.lab.conftest import (
    assert_checks_fail_when_broken_together,
    inventory_with,
    report_text,
    sh,
    wait_for_alert,
)

pytestmark = pytest.mark.lab

RECENT = "test_recent_backup_on_the_server"
def tree(root: str = "/") -> str:
    """The SHA-256 of every file of the web root under ``root`` (the live one by default), by path
    relative to ``root``: the same listing for the same bytes wherever they were restored."""
    return f"cd {root} && find var/www -type f -print0 | sort -z | xargs -0 sha256sum"


TREE = tree()


def run_backup(lab, host) -> subprocess.CompletedProcess:
    return lab.exec(host, "systemctl", "start", "govbaseline-backup.service", check=False)


def secrets_of(lab, host) -> list[str]:
    """The host's backup secrets; of an SSH key, each line of its body."""
    hostvars = yaml.safe_load(lab.inventory.read_text())["all"]["children"]["webservers"]["hosts"][host.name]
    found = [hostvars[k] for k in ("backup_rest_password", "backup_repository_password") if k in hostvars]
    key = hostvars.get("backup_sftp_private_key", "")
    return found + [line for line in key.splitlines() if len(line) > 20 and "PRIVATE KEY" not in line]


def test_web_root_deleted_and_restored_byte_identical(pyinfra_lab, tmp_path):
    lab, host = pyinfra_lab, pyinfra_lab.hosts()[0]
    # The converge's first backup may still be running: a start now would join it, not include what
    # is written next. Let it finish first.
    assert run_backup(lab, host).returncode == 0
    sh(lab, host, "mkdir -p /var/www/html/uploads && head -c 300000 /dev/urandom > /var/www/html/uploads/scan.pdf && "
                  "chmod 640 /var/www/html/uploads/scan.pdf && printf 'notice\\n' > '/var/www/html/notice 2026.txt'")
    assert run_backup(lab, host).returncode == 0, sh(lab, host, "journalctl -u govbaseline-backup -n 30 --no-pager")
    before = sh(lab, host, TREE)
    assert "scan.pdf" in before and "notice 2026.txt" in before
    sh(lab, host, "rm -rf /var/www")
    restore = [tool("govbaseline"), "restore", "-i", str(lab.inventory), "--host", host.name, "--path", "/var/www"]
    done = subprocess.run([*restore, "--in-place"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert sh(lab, host, TREE) == before
    assert sh(lab, host, "stat -c %a /var/www/html/uploads/scan.pdf").strip() == "640"
    # To a folder: the same bytes under it, the live tree untouched.
    done = subprocess.run([*restore, "--target", "/srv/restored"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-3000:]
    assert sh(lab, host, tree("/srv/restored")) == before
    sh(lab, host, "rm -rf /srv/restored")
    # A bad request is refused before restic runs, naming what is wrong.
    bad = subprocess.run([*restore[:-1], "var/www", "--in-place"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "--path and --target must be absolute" in bad.stderr
    # The web root as the baseline left it (FIM-02 compares it with the approved manifest).
    sh(lab, host, "rm -rf /var/www/html/uploads '/var/www/html/notice 2026.txt'")


# What the latest snapshot holds under a folder, listed by the host's own backup program (its restic
# settings: repository, password, CA).
LIST_LATEST = ("python3 -c 'import runpy, sys; b=runpy.run_path(\"/usr/local/sbin/govbaseline-backup\"); "
               "p=b[\"restic\"](b[\"load_config\"](), \"ls\", \"latest\", \"--recursive\", sys.argv[1]); "
               "print(p.stdout, p.stderr); sys.exit(p.returncode)' ")


def test_the_antivirus_quarantine_is_never_backed_up(pyinfra_lab):
    """issue 17: the backup excludes the quarantine named by antivirus_quarantine_dir (derived, not
    written again in backup_exclude): a quarantined file is in no snapshot, its neighbours are."""
    lab, host = pyinfra_lab, pyinfra_lab.hosts()[0]
    hostvars = yaml.safe_load(lab.inventory.read_text())["all"]
    quarantine = role_vars("backup", {**hostvars["vars"], **hostvars["children"]["webservers"]["hosts"][host.name]})[
        "antivirus_quarantine_dir"]
    parent = quarantine.rsplit("/", 1)[0]
    sh(lab, host, f"printf infected > {quarantine}/issue17.quarantined && printf kept > {parent}/issue17.kept")
    try:
        assert run_backup(lab, host).returncode == 0, sh(lab, host, "journalctl -u govbaseline-backup -n 30 --no-pager")
        listed = sh(lab, host, LIST_LATEST + parent)
        assert f"{parent}/issue17.kept" in listed, listed[-2000:]
        assert "issue17.quarantined" not in listed and quarantine not in listed.split(), listed[-2000:]
    finally:
        sh(lab, host, f"rm -f {quarantine}/issue17.quarantined {parent}/issue17.kept")


def test_stopped_server_fails_the_run_and_alerts_then_next_run_catches_up(pyinfra_lab):
    lab, host = pyinfra_lab, pyinfra_lab.hosts()[1]
    lab.clear_sink()
    lab.exec(lab.sink, "systemctl", "stop", "restic-rest-server.service")
    try:
        failed = run_backup(lab, host)
        assert failed.returncode != 0, "the backup run succeeded with the backup server stopped"
        assert sh(lab, host, "systemctl is-failed govbaseline-backup.service || true").strip() == "failed"
        state = json.loads(sh(lab, host, "cat /var/lib/govbaseline/backup/last.json"))
        assert state["status"] == "failed", state
        text = wait_for_alert(lab, "backup", "backup failed")
        for secret in secrets_of(lab, host):
            assert secret not in text
    finally:
        lab.exec(lab.sink, "systemctl", "start", "restic-rest-server.service")
    assert run_backup(lab, host).returncode == 0
    assert json.loads(sh(lab, host, "cat /var/lib/govbaseline/backup/last.json"))["status"] == "ok"


STRAY = "/run/systemd/system/govbaseline-backup.service.d/stray.conf"
STRAY_SCRIPT = "/root/govbaseline-e2e-stray"


def test_a_process_the_job_leaves_behind_is_killed_and_the_finished_backup_stands(pyinfra_lab):
    """What a run leaves in its unit (most likely restic's ssh over SFTP, once in CI) and ignores SIGTERM
    would hold the unit 90 s in stop-sigterm and fail a finished backup: the job waits for it 10 s,
    kills it, names it in the journal, and the unit succeeds."""
    lab, host = pyinfra_lab, pyinfra_lab.hosts()[1]
    stray = "#!/bin/sh\ntrap '' TERM\nsleep 600 </dev/null >/dev/null 2>&1 &\n"  # sleep keeps TERM ignored
    sh(lab, host, f"printf %s {shlex.quote(stray)} > {STRAY_SCRIPT} && chmod 0755 {STRAY_SCRIPT} && "
                  f"mkdir -p {STRAY.rsplit('/', 1)[0]} && "
                  f"printf '[Service]\\nExecStartPre={STRAY_SCRIPT}\\n' > {STRAY} && systemctl daemon-reload")
    try:
        ran = run_backup(lab, host)  # a stop-sigterm timeout would fail the unit
        deadline = time.monotonic() + 10
        while True:  # journald may not have written the job's last line yet
            journal = sh(lab, host, "journalctl -u govbaseline-backup -n 8 --no-pager -o cat")
            if "sleep 600" in journal or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert ran.returncode == 0, journal
        assert "still running at the end of the job, killed:" in journal and "sleep 600" in journal, journal
        assert not sh(lab, host, "pgrep -fx 'sleep 600' || true").strip()
    finally:
        sh(lab, host, f"rm -f {STRAY} {STRAY_SCRIPT} && systemctl daemon-reload && pkill -9 -fx 'sleep 600' || true")


def test_client_credentials_cannot_delete_snapshots(pyinfra_lab):
    lab, host = pyinfra_lab, pyinfra_lab.hosts()[0]
    before = json.loads(sh(lab, host, "govbaseline-backup snapshots"))
    assert before, "no snapshot to try to delete"
    out = lab.exec(host, "sh", "-c", "restic --repository-file /etc/govbaseline/backup/repository "
                   "--password-file /etc/govbaseline/backup/password --cacert /etc/govbaseline/backup/server-ca.pem "
                   f"--no-cache forget {before[0]['id']}", check=False)
    # restic 0.18 reports the refusal ("unable to remove") but may still exit 0: what counts is
    # that the snapshot is still there.
    said = (out.stdout + out.stderr).decode()
    assert out.returncode != 0 or "unable to remove" in said, said[-1500:]
    after = json.loads(sh(lab, host, "govbaseline-backup snapshots"))
    assert [s["id"] for s in after] == [s["id"] for s in before], "the client deleted one of its snapshots"


def test_backup_older_than_allowed_fails_verify_until_the_next_run(pyinfra_lab, tmp_path):
    """Only a 30-hour-old snapshot on the server (its repository recreated): BAK-01 fails at 26 h."""
    lab, host = pyinfra_lab, pyinfra_lab.hosts()[1]
    sh(lab, lab.sink, f"rm -rf /srv/restic/{host.name}")  # backup_server_data_dir
    old = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() - 30 * 3600))
    restic = ("restic --repository-file /etc/govbaseline/backup/repository --password-file "
              "/etc/govbaseline/backup/password --cacert /etc/govbaseline/backup/server-ca.pem --no-cache")
    sh(lab, host, f"{restic} init >/dev/null && {restic} backup --host {host.name} --time '{old}' /var/www >/dev/null")
    late = verify(lab.inventory, tmp_path / "late", limit=host.name, checks=[RECENT])
    message = late.checks(host.name)[RECENT]["message"]
    assert not late.passed and "h old (backup_max_age_hours is 26)" in message, message
    assert run_backup(lab, host).returncode == 0
    fresh = verify(lab.inventory, tmp_path / "fresh", limit=host.name, checks=[RECENT])
    assert fresh.passed, fresh.output[-2000:]


def test_no_secret_in_journal_process_list_or_report(pyinfra_lab, tmp_path):
    lab, host = pyinfra_lab, pyinfra_lab.hosts()[0]
    secrets = secrets_of(lab, host)
    seen: list[str] = []

    def watch() -> None:  # the process list, sampled while the backup runs
        for _ in range(40):
            seen.append(lab.exec(host, "ps", "-eo", "args", check=False).stdout.decode())
            time.sleep(0.25)

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert run_backup(lab, host).returncode == 0
    watcher.join()
    assert any("restic" in sample for sample in seen), "the backup was not seen running"
    journal = sh(lab, host, "journalctl --no-pager -o cat")
    outcome = verify(lab.inventory, tmp_path / "report", limit=host.name)
    report = report_text(tmp_path / "report")
    assert outcome.data["hosts"][host.name]["controls"]["BAK-01"]["status"] == "pass"
    for secret in secrets:
        assert secret not in journal and secret not in report and not any(secret in s for s in seen)


BREAKS = {
    "test_repository_check_scheduled_and_passing": (
        ["systemctl disable --now govbaseline-backup-check.timer"],
        "govbaseline-backup-check.timer (repository check) is not enabled"),
    "test_client_cannot_delete_its_snapshots": (
        ["chmod 0644 /etc/govbaseline/backup/password"], "must exist, belong to root and be mode 0600"),
    "test_restore_drill_recent_and_identical": (
        ["systemctl disable --now govbaseline-backup-drill.timer"],
        "govbaseline-backup-drill.timer (restore drill) is not enabled"),
}


def test_every_backup_check_fails_for_its_own_reason_when_broken(pyinfra_lab, tmp_path):
    assert_checks_fail_when_broken_together(pyinfra_lab, tmp_path, BREAKS, repair_tags="backup")


def test_server_check_fails_without_append_only(pyinfra_lab, tmp_path):
    """The backup server run without --append-only: its own check fails, and so does every client's
    deletion probe (the server now answers 404 to deleting a snapshot that does not exist)."""
    lab, sink = pyinfra_lab, pyinfra_lab.sink
    inventory = inventory_with(lab, tmp_path)
    sh(lab, sink, "sed -i 's/ --append-only//' /etc/default/restic-rest-server && "
                  "systemctl restart restic-rest-server.service")
    try:
        broken = verify(inventory, tmp_path / "broken", checks=["test_rest_server_append_only_private_tls",
                                                                 "test_client_cannot_delete_its_snapshots"])
        server = broken.checks(sink.name)["test_rest_server_append_only_private_tls"]["message"]
        assert "runs without --append-only" in server, server
        client = broken.checks(lab.hosts()[0].name)["test_client_cannot_delete_its_snapshots"]["message"]
        assert "it is not append-only" in client, client
    finally:
        repaired = run_ansible(lab.inventory, limit=sink.name, stream=False)
    assert repaired.ok, repaired.output[-3000:]
    assert "--append-only" in sh(lab, sink, "cat /etc/default/restic-rest-server")


# -- the SFTP fallback (a Debian 12 backup server), run from the Debian 12 lab test ----------------

SFTP_CHECK = "test_sftp_accounts_confined_and_every_snapshot_copied"
CLIENT_CHECK = "test_client_cannot_delete_its_snapshots"
# restic with the client's own credentials and settings (what an intruder on the web server has).
AS_CLIENT = ("python3 -c 'import json,shlex; c=json.load(open(\"/etc/govbaseline/backup/config.json\")); "
             "print(shlex.join([\"restic\", \"--repository-file\", c[\"repository_file\"], \"--password-file\", "
             "c[\"password_file\"], \"--no-cache\", \"-o\", \"sftp.command=\" + c[\"sftp_command\"]]))'")
# On the backup server: the originals of the snapshots it holds for a client, from its own repository.
HELD = r"""
import json, os, subprocess, sys
config = json.load(open("/etc/govbaseline/backup-server/clients.json"))
client = next(c for c in config["clients"] if c["name"] == sys.argv[1])
out = subprocess.run(["restic", "--no-cache", "-r", os.path.join(config["data_dir"], client["name"]), "snapshots",
                      "--json"], env={"RESTIC_PASSWORD": client["repository_password"], "PATH": "/usr/bin:/bin"},
                     capture_output=True, text=True, check=True)
print(json.dumps(sorted(s.get("original") or s["id"] for s in json.loads(out.stdout))))
"""
RESTORE_ON_SERVER = r"""
import json, os, subprocess, sys
config = json.load(open("/etc/govbaseline/backup-server/clients.json"))
client = next(c for c in config["clients"] if c["name"] == sys.argv[1])
subprocess.run(["restic", "--no-cache", "-r", os.path.join(config["data_dir"], client["name"]), "restore", "latest",
                "--target", sys.argv[2], "--include", "/var/www"],
               env={"RESTIC_PASSWORD": client["repository_password"], "PATH": "/usr/bin:/bin"}, check=True)
"""


def assert_sftp_fallback_keeps_the_history(lab, tmp_path) -> None:
    """On a Debian 12 backup server (SFTP): the client deletes every snapshot it can reach with its
    own credentials, and the server still holds them all and restores the same bytes; with the copy
    stopped, or the chroot gone, the server's and the client's BAK-02 checks fail; a converge of the
    backup server (and the copy's next run) repairs both."""
    host, sink = lab.hosts()[0], lab.sink
    assert run_backup(lab, host).returncode == 0, sh(lab, host, "journalctl -u govbaseline-backup -n 30 --no-pager")
    sh(lab, sink, "systemctl start govbaseline-backup-copy.service")  # as its path unit does; no-op if done
    ids = [s["id"] for s in json.loads(sh(lab, host, "/usr/local/sbin/govbaseline-backup snapshots"))]
    assert ids
    restic = sh(lab, host, AS_CLIENT).strip()
    forgot = lab.exec(host, "sh", "-c", f"{restic} forget {' '.join(ids)}", check=False)
    assert forgot.returncode == 0, "over SFTP the client's own credentials can delete its snapshots " \
        f"(this test relies on it): {forgot.stderr.decode()[-500:]}"
    assert json.loads(sh(lab, host, "/usr/local/sbin/govbaseline-backup snapshots")) == []
    held = json.loads(sh(lab, sink, f"python3 -c '{HELD}' {host.name}"))
    assert set(ids) <= set(held), f"the server lost snapshots the client deleted: {sorted(set(ids) - set(held))}"
    sh(lab, sink, f"rm -rf /root/restored && python3 -c '{RESTORE_ON_SERVER}' {host.name} /root/restored")
    assert sh(lab, sink, tree("/root/restored")) == sh(lab, host, TREE)
    # Negative twins of the copy: stopped, the check fails; started again after a backup it missed
    # (a path unit does not look back), that snapshot is only where the client could delete it,
    # until the copy's hourly run.
    sh(lab, sink, "systemctl stop govbaseline-backup-copy.path govbaseline-backup-copy.timer")
    assert run_backup(lab, host).returncode == 0
    broken = verify(lab.inventory, tmp_path / "no-copy", limit=sink.name, checks=[SFTP_CHECK]).checks(sink.name)
    assert broken[SFTP_CHECK]["status"] == "fail" and "is off" in broken[SFTP_CHECK]["message"], broken
    copy_run = "systemctl show -p InvocationID --value govbaseline-backup-copy.service"
    before = sh(lab, sink, copy_run)
    repaired = run_ansible(lab.inventory, tags="backup_server", limit=sink.name, stream=False)
    assert repaired.ok, repaired.output[-3000:]
    broken = verify(lab.inventory, tmp_path / "missed", limit=sink.name, checks=[SFTP_CHECK]).checks(sink.name)
    # Unless the hourly run came in between: the timer is Persistent, so when the stop spanned a full
    # hour its start runs the copy at once (rehearsal 8, at 16:00), and the snapshot is copied.
    if sh(lab, sink, copy_run) == before:
        assert broken[SFTP_CHECK]["status"] == "fail" and "only where" in broken[SFTP_CHECK]["message"], broken
    sh(lab, sink, "systemctl start govbaseline-backup-copy.service")  # the hourly run, now
    after = verify(lab.inventory, tmp_path / "copied", limit=sink.name, checks=[SFTP_CHECK]).checks(sink.name)
    assert after[SFTP_CHECK]["status"] == "pass", after
    for report in (tmp_path / "copied").rglob("report.*"):
        assert not [s for s in secrets_of(lab, host) if s in report.read_text()], f"a backup secret is in {report}"
    # Negative twin: without the chroot the client's account sees the server's whole file system.
    sh(lab, sink, "sed -i '/ChrootDirectory/d' /etc/ssh/sshd_config.d/50-govbaseline-backup.conf && "
                  "systemctl reload ssh")
    broken = verify(lab.inventory, tmp_path / "no-chroot", limit=host.name, checks=[CLIENT_CHECK]).checks(host.name)
    assert broken[CLIENT_CHECK]["status"] == "fail" and "not confined" in broken[CLIENT_CHECK]["message"], broken
    repaired = run_ansible(lab.inventory, tags="backup_server", limit=sink.name, stream=False)
    assert repaired.ok, repaired.output[-3000:]
    after = verify(lab.inventory, tmp_path / "chroot", limit=host.name, checks=[CLIENT_CHECK]).checks(host.name)
    assert after[CLIENT_CHECK]["status"] == "pass", after
