"""Checks for backups (roles ``backup`` and ``backup_server``): BAK-01 a recent snapshot on the
backup server, BAK-02 a server whose history the client cannot delete (REST: append-only; SFTP
fallback: a chrooted account and a server-side copy of every snapshot), BAK-03 a recent restore
drill that restored identical data."""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest

from govbaseline.checks.schedule import alive, last_run, period_hours, wait_while_running

# A DELETE of a snapshot that cannot exist, with this host's own account: an append-only server
# answers 403, one that would let the client delete its history answers 404 or 200. Nothing is
# deleted either way; the account is read from the root-only repository file, never shown.
# Its argument: the client's settings (roles/backup/vars ``__backup_config``).
DELETE_PROBE = r"""
import base64, json, ssl, sys, urllib.error, urllib.parse, urllib.request
config = json.load(open(sys.argv[1]))
url = urllib.parse.urlsplit(open(config["repository_file"]).read().strip()[len("rest:"):])
context = ssl.create_default_context(cafile=config["ca_file"] or None)
request = urllib.request.Request("%s://%s:%s%ssnapshots/%s" % (url.scheme, url.hostname, url.port, url.path, "0" * 64),
                                 method="DELETE")
token = base64.b64encode(("%s:%s" % (urllib.parse.unquote(url.username), urllib.parse.unquote(url.password))).encode())
request.add_header("Authorization", "Basic " + token.decode())
try:
    print(urllib.request.urlopen(request, context=context, timeout=15).status)
except urllib.error.HTTPError as exc:
    print(exc.code)
"""


def _client_confined_to_its_sftp_folder(host, ssh_config: str, alias: str) -> None:
    """sftp: this host's account sees its repository folder only (a chroot: the server's copies are
    out of its reach) and runs no command on the server. ``ssh_config`` and ``alias``: the SSH
    settings restic connects with and the server's name in them (roles/backup/vars)."""
    listing = host.run("printf 'ls -1 /\\n' | timeout 60 sftp -q -F %s -b - %s", ssh_config, alias)
    assert listing.rc == 0, f"this host cannot reach its SFTP account on the backup server: {listing.stderr[-300:]}"
    seen = sorted(line.strip() for line in listing.stdout.splitlines() if line.strip() and "sftp>" not in line)
    assert seen == ["/repo"], f"this host's SFTP account sees {seen} at its root, not its repository folder only: " \
        "it is not confined (chroot) to its own folder"
    shell = host.run("timeout 30 ssh -F %s -T %s id </dev/null", ssh_config, alias)
    assert "uid=" not in shell.stdout, "this host's backup account can run commands on the backup server"


def _job(hostvars, name: str) -> tuple[str, str, int, str]:
    """One of the client's scheduled jobs (roles/backup/vars ``__backup_jobs``): its unit, the
    calendar and random delay the run applied, and what it is called."""
    job = next(j for j in hostvars["__backup_jobs"] if j["name"] == name)
    return job["unit"], hostvars[job["calendar_var"]], hostvars[job["delay_var"]], job["what"]


def _snapshot_hours(snapshot: dict) -> float:
    # restic writes nanoseconds; Python 3.11 reads any number of fractional digits.
    taken = datetime.fromisoformat(snapshot["time"].replace("Z", "+00:00"))
    return (time.time() - taken.timestamp()) / 3600


@pytest.mark.control("BAK-01")
def test_recent_backup_on_the_server(host, hostvars, evidence):
    unit, calendar, delay, what = _job(hostvars, "backup")
    # The first backup starts at converge.
    state, _, _ = last_run(host, unit, f"{hostvars['__backup_state_dir']}/last.json", calendar, delay, what, wait=300,
                           evidence=evidence)
    assert state["status"] == "ok", f"the last backup run failed: {state.get('error') or state.get('unreadable')}"
    listing = host.run("%s snapshots --latest", hostvars["__backup_command"])
    assert listing.rc == 0, f"the backup server's repository cannot be read: {listing.stderr.strip()[-500:]}"
    snapshots = json.loads(listing.stdout)
    assert snapshots, "the repository on the backup server holds no snapshot of this host"
    newest = snapshots[-1]
    hours, allowed = _snapshot_hours(newest), hostvars["backup_max_age_hours"]
    present = [p for p in hostvars["backup_paths"] if host.file(p).exists]
    missing = [p for p in present if p not in newest["paths"]]
    evidence("newest snapshot on the backup server",
             f"{newest['short_id']} taken {hours:.1f} h ago of {', '.join(newest['paths'])}", ok=hours <= allowed)
    assert hours <= allowed, f"the newest snapshot on the backup server is {hours:.1f} h old " \
        f"(backup_max_age_hours is {allowed})"
    assert not missing, f"the newest snapshot lacks {', '.join(missing)}"


@pytest.mark.control("BAK-01")
def test_repository_check_scheduled_and_passing(host, hostvars, evidence):
    unit, calendar, delay, what = _job(hostvars, "check")
    out = host.run("cat %s/check.json", hostvars["__backup_state_dir"])
    state = json.loads(out.stdout) if out.rc == 0 else {}
    # Its first run is its timer's: none yet on a host younger than one period.
    alive(host, unit, what, period_hours(host, calendar), delay, evidence, last_finished=state.get("finished"))
    if state:
        assert state["status"] == "ok", f"the last restic check failed: {state['detail']}"


@pytest.mark.control("BAK-02")
@pytest.mark.role("backup")
def test_client_cannot_delete_its_snapshots(host, hostvars):
    sftp = hostvars.get("backup_transport") == "sftp"
    secrets = (hostvars["__backup_repository_file"], hostvars["__backup_password_file"])
    for path in (*secrets, hostvars["__backup_ssh_key_file"]) if sftp else secrets:
        secret = host.file(path)
        assert secret.exists and secret.user == "root" and secret.mode == 0o600, \
            f"{path} must exist, belong to root and be mode 0600 (it holds a backup secret)"
    if sftp:
        _client_confined_to_its_sftp_folder(host, hostvars["__backup_ssh_config"], hostvars["__backup_sftp_alias"])
        return
    out = host.run("python3 -c %s %s", DELETE_PROBE, hostvars["__backup_config"])
    assert out.rc == 0, f"the deletion probe could not reach the backup server: {out.stderr.strip()[-300:]}"
    assert out.stdout.strip() == "403", f"the backup server answered {out.stdout.strip()} to a DELETE of a " \
        "snapshot with this host's account: it is not append-only (403 wanted)"


# The backup server's settings without the secrets in them (the clients' repository passwords):
# every command's output is evidence in the report. Its argument: the server's settings file
# (roles/backup_server/vars ``__backup_server_clients_file``).
SERVER_SETTINGS = """import json, sys
c = json.load(open(sys.argv[1]))
print(json.dumps({"transport": c["transport"], "sftp_dir": c["sftp_dir"],
                  "clients": [{"name": x["name"], "account": x.get("account")} for x in c["clients"]]}))"""


def _server_settings(host, hostvars) -> dict:
    clients = hostvars["__backup_server_clients_file"]
    out = host.run("python3 -c %s %s", SERVER_SETTINGS, clients)
    assert out.rc == 0, f"the backup server has no settings ({clients}): the role has not run"
    settings: dict = json.loads(out.stdout)
    return settings


def _server_transport(host, hostvars) -> str:
    return str(_server_settings(host, hostvars)["transport"])


def _prune_results_ok(host, hostvars, evidence) -> None:
    out = host.run("cat %s/prune.json", hostvars["__backup_server_state_dir"])
    finished = json.loads(out.stdout)["time"] if out.rc == 0 else None  # written when the prune ends
    alive(host, hostvars["__backup_server_prune_unit"], "pruning of the clients' repositories",
          period_hours(host, hostvars["backup_server_prune_calendar"]),
          hostvars["backup_server_prune_randomized_delay_minutes"], evidence, last_finished=finished)
    if out.rc == 0:
        failed = {n: r["detail"] for n, r in json.loads(out.stdout)["clients"].items() if r["status"] == "failed"}
        assert not failed, f"pruning failed for {', '.join(sorted(failed))}: {failed}"


@pytest.mark.control("BAK-02")
@pytest.mark.role("backup_server")
def test_sftp_accounts_confined_and_every_snapshot_copied(host, hostvars, evidence):
    """sftp fallback: each client's account is SFTP-only in a root-owned chroot, and every snapshot a
    client has written is held in the server's own repository, out of the client's reach."""
    config = _server_settings(host, hostvars)
    if config["transport"] != "sftp":
        pytest.skip("this backup server serves REST (append-only): no SFTP accounts")
    data = host.file(hostvars["backup_server_data_dir"])
    assert data.is_directory and data.user == "root" and data.mode & 0o077 == 0, \
        f"{hostvars['backup_server_data_dir']} (the server's copies) must be root's alone (mode 0700)"
    copy = hostvars["__backup_server_copy_unit"]
    path = host.service(f"{copy}.path")
    assert path.is_enabled and path.is_running, f"{copy}.path is off: new snapshots stay where the client can " \
        "delete them"
    alive(host, copy, "copy of new snapshots", period_hours(host, hostvars["__backup_server_copy_calendar"]), 0,
          evidence, wait=300)
    state = json.loads(host.run("cat %s/copy.json 2>/dev/null || echo '{\"clients\": {}}'",
                                hostvars["__backup_server_state_dir"]).stdout)
    for client in config["clients"]:
        account, name = client["account"], client["name"]
        chroot = host.file(f"{config['sftp_dir']}/{account}")
        assert chroot.user == "root" and chroot.mode & 0o022 == 0, \
            f"{chroot.path} must be root's and not writable by others (sshd's chroot rule)"
        effective = host.run("/usr/sbin/sshd -T -C user=%s,host=probe,addr=192.0.2.1", account)
        assert effective.rc == 0, f"sshd -T failed: {effective.stderr[-300:]}"
        settings = dict(line.split(" ", 1) for line in effective.stdout.lower().splitlines() if " " in line)
        wanted = {"chrootdirectory": f"{config['sftp_dir']}/%u".lower(), "forcecommand": "internal-sftp",
                  "allowtcpforwarding": "no", "authenticationmethods": "publickey"}
        wrong = {k: settings.get(k) for k, v in wanted.items() if settings.get(k) != v}
        assert not wrong, f"sshd gives {account} {wrong}, not {wanted}"
        written = host.run("ls -1 %s/%s/repo/snapshots 2>/dev/null", config["sftp_dir"], account).stdout.split()
        held = set(state["clients"].get(name, {}).get("copied", []))
        missing = sorted(set(written) - held)
        assert not missing, f"{len(missing)} snapshot(s) of {name} are only where {name} could delete them " \
            f"(not copied into {hostvars['backup_server_data_dir']}/{name}): {', '.join(m[:8] for m in missing)}"
    _prune_results_ok(host, hostvars, evidence)


@pytest.mark.control("BAK-02")
@pytest.mark.role("backup_server")
def test_rest_server_append_only_private_tls(host, hostvars, evidence):
    if _server_transport(host, hostvars) != "rest":
        pytest.skip("this backup server is the SFTP fallback (Debian 12): no REST server")
    service = host.service("restic-rest-server.service")
    assert service.is_enabled and service.is_running, "restic-rest-server is not running"
    pid = host.run("systemctl show -p MainPID --value restic-rest-server.service").stdout.strip()
    argv = host.run("tr '\\0' ' ' < /proc/%s/cmdline", pid).stdout.split()
    missing = [flag for flag in ("--append-only", "--private-repos", "--tls") if flag not in argv]
    assert not missing, f"restic-rest-server runs without {', '.join(missing)}"
    for path in (hostvars["__backup_server_htpasswd"], hostvars["__backup_server_tls_key"]):
        f = host.file(path)
        assert f.exists and f.mode & 0o007 == 0, f"{path} is readable by every user (mode {oct(f.mode)})"
    data = host.file(hostvars["backup_server_data_dir"])
    assert data.is_directory and data.mode & 0o077 == 0, \
        f"{hostvars['backup_server_data_dir']} must be the REST server's alone (mode 0700)"
    _prune_results_ok(host, hostvars, evidence)


@pytest.mark.control("BAK-03")
def test_restore_drill_recent_and_identical(host, hostvars, evidence):
    backup_unit = _job(hostvars, "backup")[0]
    wait_while_running(host, f"{backup_unit}.service", timeout=300)  # the first drill follows the first backup
    unit, calendar, delay, what = _job(hostvars, "drill")
    state, hours, allowed = last_run(host, unit, f"{hostvars['__backup_state_dir']}/drill.json", calendar, delay, what,
                                     evidence=evidence)
    evidence("last restore drill", json.dumps({k: state.get(k) for k in (
        "status", "snapshot", "paths", "files", "bytes", "compared_with_live", "mismatches", "error")}),
        ok=state["status"] == "ok")
    assert hours <= allowed, f"the last restore drill finished {hours:.1f} h ago (the schedule allows {allowed:.0f} h)"
    assert state["status"] == "ok", f"the last restore drill failed: {state.get('error')}"
    assert state["files"] > 0, "the last restore drill restored no file"
