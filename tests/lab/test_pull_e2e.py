"""Pull mode on real hosts: the organisation's repository is served by a lab host (the sink, over
HTTPS with a certificate of the lab CA), its inventory encrypted with Ansible Vault. A push enrols
both web servers (role pull only); then one host's timer unit runs: ansible-pull converges the host
from the repository, the host checks itself, and `govbaseline collect` gathers the results. The
other host has not run yet and is named as such; a second pull changes nothing; the controller's
own verify agrees with what the host said of itself; a result older than allowed fails the host.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess

import jsonschema
import pytest
import yaml

from govbaseline.cli import main
from govbaseline.engines import apply
from govbaseline.inventory import tool
from govbaseline.paths import PACKAGE_DIR
from govbaseline.pull import RESULT_PATH, collect
from govbaseline.verify import verify
from tests.lab.conftest import LAB_PREFIX, implemented_controls, report_text, sh
from tests.paths import ROOT

pytestmark = [pytest.mark.lab, pytest.mark.xdist_group("pull_lab")]

# What the repository holds: the project as the organisation keeps it (no tests, no venv).
# The collection (roles, plugins, playbooks) is under src/ansible_collections/, found on the PYTHONPATH
# govbaseline-pull gives (src/).
SHIPPED = ("ansible.cfg", "src/")
VAULT_PASSWORD = "lab-pull-vault-password"  # noqa: S105 - the lab's throwaway vault password


def git(*args: str, cwd) -> str:
    env = {"GIT_AUTHOR_NAME": "govbaseline lab", "GIT_AUTHOR_EMAIL": "lab@lab.test", "PATH": "/usr/bin:/bin",
           "GIT_COMMITTER_NAME": "govbaseline lab", "GIT_COMMITTER_EMAIL": "lab@lab.test", "HOME": str(cwd)}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def repository(tmp_path, inventory: dict) -> tuple:
    """The organisation's repository: this project's shipped files and the inventory, vault-encrypted."""
    work = tmp_path / "work"
    listed = git("ls-files", "--cached", "--others", "--exclude-standard", "-z", cwd=ROOT).split("\0")
    for name in listed:
        source = ROOT / name
        if name.startswith(SHIPPED) and source.is_file() and "__pycache__" not in name:
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, work / name)
    (work / "inventory").mkdir()
    hosts = work / "inventory" / "hosts.yml"
    hosts.write_text(yaml.safe_dump(inventory, sort_keys=False))
    password = tmp_path / "vault-password"
    password.write_text(VAULT_PASSWORD + "\n")
    subprocess.run([tool("ansible-vault"), "encrypt", "--vault-password-file", str(password), str(hosts)],
                   check=True, capture_output=True)
    assert hosts.read_text().startswith("$ANSIBLE_VAULT;"), "the repository's inventory is not encrypted"
    git("init", "-q", "-b", "main", cwd=work)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "baseline for the lab fleet", cwd=work)
    bare = tmp_path / "govbaseline.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    return bare, git("rev-parse", "HEAD", cwd=work).strip()


def test_hosts_apply_and_check_themselves_and_the_collector_gathers_them(lab_factory, tmp_path):
    lab = lab_factory(f"{LAB_PREFIX}-pull", hosts=2)
    first, second = lab.hosts()
    data = yaml.safe_load(lab.inventory.read_text())
    for values in data["all"]["children"]["webservers"]["hosts"].values():
        values.pop("vulnscan_scanner_host", None)  # no fleet scan: the second host is never converged
    url = f"https://{lab.sink.address}:8443/govbaseline.git"
    data["all"]["children"]["webservers"]["vars"] = {
        "pull_enabled": True, "pull_repository_url": url, "pull_repository_ca_cert": lab.ca.pem,
        "pull_inventory": "inventory/hosts.yml", "pull_vault_password": VAULT_PASSWORD,
        # The lab starts each run itself: the timer's own runs would come between the steps.
        "pull_calendar": "monthly"}
    inventory = tmp_path / "inventory.yml"
    inventory.touch(mode=0o600)
    inventory.write_text(yaml.safe_dump(data, sort_keys=False))
    bare, commit = repository(tmp_path, data)
    assert lab.publish_repository("govbaseline", bare) == url

    # The backup server the web servers back up to, then the web servers enrolled by push: the pull
    # role only (the checks of every role's values still run first).
    server = apply(inventory, engine="ansible", limit="backup_servers", stream=False)
    assert server.ok, server.output[-3000:]
    enrolled = apply(inventory, engine="ansible", limit="webservers", tags="pull", stream=False)
    assert enrolled.ok, enrolled.output[-3000:]
    for host in (first, second):
        assert sh(lab, host, "systemctl is-enabled govbaseline-pull.timer; systemctl is-active "
                             "govbaseline-pull.timer").split() == ["enabled", "active"]
        modes = sh(lab, host, "stat -c '%a %U' /etc/govbaseline/pull/config.json "
                              "/etc/govbaseline/pull/vault-password").split("\n")
        assert modes[:2] == ["600 root", "600 root"], modes
        # Enrolling applied nothing else: no self-audit timer yet (the image has the packages only).
        assert lab.exec(host, "test", "-e", "/etc/systemd/system/govbaseline-lynis.timer", check=False).returncode != 0

    # The first host's timer unit runs: it converges itself from the repository, then checks itself.
    ran = lab.exec(first, "systemctl", "start", "govbaseline-pull.service", check=False)
    log = sh(lab, first, "cat /var/lib/govbaseline/pull/apply.log")
    assert f"{first.name}" in log and "failed=0" in log, log[-3000:]
    assert VAULT_PASSWORD not in log

    report_dir = tmp_path / "collected"
    outcome = collect(inventory, report_dir, forks=4)
    jsonschema.validate(outcome.data, json.loads((PACKAGE_DIR / "report.schema.json").read_text()))
    hosts = outcome.data["hosts"]
    failed = [f"{c['check']}: {c['message']}" for control in hosts[first.name]["controls"].values()
              for c in control["checks"] if c["status"] not in ("pass", "skipped")]
    assert ran.returncode == 0 and not failed, "\n".join(failed) + sh(
        lab, first, "journalctl -u govbaseline-pull --no-pager -n 30")
    assert hosts[first.name]["pull"]["commit"] == commit and hosts[first.name]["pull"]["apply_returncode"] == 0
    statuses = {c: hosts[first.name]["controls"][c]["status"] for c in implemented_controls()
                if c in hosts[first.name]["controls"]}
    assert statuses and not [c for c, s in statuses.items() if s not in ("pass", "skipped")], statuses
    assert statuses["FW-02"] == "pass" and statuses["TLS-01"] == "pass", statuses
    # Checks that need a view from outside are left to the controller, and said so.
    outside = [c for c in hosts[first.name]["controls"]["FW-01"]["checks"]
               if c["check"] == "test_undeclared_port_unreachable_from_outside"]
    assert outside and outside[0]["status"] == "skipped" and "from the controller" in outside[0]["message"]
    # The second host is enrolled but its timer has not fired: named, and the fleet fails.
    assert not hosts[second.name]["reachable"] and "no pull result yet" in hosts[second.name]["error"]
    assert not outcome.passed and outcome.data["summary"]["unreachable"] == [second.name]
    text = report_text(report_dir)
    assert VAULT_PASSWORD not in text
    assert data["all"]["children"]["webservers"]["hosts"][first.name]["backup_repository_password"] not in text
    # The same from the command line, printed: the PDF names both hosts and why the second failed.
    assert main(["collect", "-i", str(inventory), "--report-dir", str(tmp_path / "printed"), "--pdf"]) == 1
    printed = subprocess.run(["pdftotext", str(tmp_path / "printed" / "report.pdf"), "-"], capture_output=True,
                             text=True, check=True).stdout
    assert first.name in printed and second.name in printed and "no pull result yet" in printed, printed[:3000]

    # A second pull changes nothing: pull mode converges as push mode does.
    again = lab.exec(first, "systemctl", "start", "govbaseline-pull.service", check=False)
    log = sh(lab, first, "cat /var/lib/govbaseline/pull/apply.log")
    assert again.returncode == 0 and "changed=0" in log and "failed=0" in log, log[-3000:]

    # The controller, from outside, finds what the host said of itself.
    pushed = verify(inventory, tmp_path / "pushed", limit=first.name)
    assert pushed.passed, pushed.summary_line()
    assert {c: pushed.status(first.name, c) for c in implemented_controls()} == {
        c: "skipped" if c in ("VULN-02", "SYS-11") else "pass" for c in implemented_controls()}

    # A result older than allowed no longer stands for the host.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=7)
    stale = collect(inventory, tmp_path / "stale", limit=first.name, max_age_hours=6, now=later)
    assert "stale" in stale.data["hosts"][first.name]["error"] and not stale.passed
    # The result on the host is root's alone.
    assert sh(lab, first, f"stat -c '%a %U' {RESULT_PATH}").strip() == "600 root"
    lab.down()  # its hosts go now, not at the end of the session
