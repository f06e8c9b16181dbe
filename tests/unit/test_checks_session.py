"""The checks' command sessions and run order (govbaseline.checks.session, plugin._longest_first) and
the connection inventory verify hands to testinfra. The sessions' end-to-end proof is every lab test
that runs verify: the checks and their negative twins run through them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import testinfra
from testinfra.backend.ssh import SshBackend

from govbaseline import verify
from govbaseline.checks import session
from govbaseline.inventory import ResolvedInventory, Selection


def ssh_backend(extra: str = "-o UserKnownHostsFile=/lab/known_hosts") -> SshBackend:
    host = testinfra.get_host("ssh://root@10.0.0.5:2222", ssh_identity_file="/lab/id_ed25519",
                              ssh_extra_args=extra, controlpath="/run/cp-%C")
    backend: SshBackend = host.backend
    return backend


def test_a_session_uses_the_ssh_options_testinfra_would():
    spec = session.Session(ssh_backend(), "/usr/bin/python3").spec()
    assert spec is not None
    ssh, _, python = spec.partition("//python=")
    words = ssh.removeprefix("ssh=").split()
    assert python == "env PYTHONCOERCECLOCALE=0 /usr/bin/python3"
    assert words[-1] == "10.0.0.5"
    for option in ("UserKnownHostsFile=/lab/known_hosts", "User=root", "Port=2222", "ControlPath=/run/cp-%C",
                   "ControlMaster=auto"):
        assert option in words, option
    assert words[words.index("-i") + 1] == "/lab/id_ed25519"


def test_options_a_session_cannot_pass_leave_the_host_to_plain_ssh():
    quoted = ssh_backend("-o ProxyCommand='ssh -W %h:%p bastion'")
    assert session.Session(quoted, "python3").spec() is None
    assert session.Session(ssh_backend(), "/opt/my python/bin/python3").spec() is None


def test_a_session_that_cannot_open_falls_back_to_the_command_testinfra_runs():
    backend = ssh_backend("-o ProxyCommand='unusable'")
    calls: list[str] = []
    backend.run_ssh = lambda command: calls.append(command) or backend.result(0, b"", b"fallback", b"")
    s = session.Session(backend, "python3")
    result = s.run("uname -s")
    assert calls == ["uname -s"] and result.stdout == "fallback" and s.broken


def test_a_host_that_refuses_the_session_is_served_by_plain_ssh():
    """A real failure to start: ssh to a closed loopback port exits at once; execnet reports the host
    as not found, and the command goes to testinfra's own ssh (here: recorded) instead."""
    host = testinfra.get_host("ssh://root@127.0.0.1:1", ssh_extra_args="-o BatchMode=yes")
    backend: SshBackend = host.backend
    calls: list[str] = []
    backend.run_ssh = lambda command: calls.append(command) or backend.result(255, b"", b"", b"refused")
    s = session.Session(backend, "python3")
    assert s.spec() is not None
    result = s.run("true")
    assert s.broken and calls == ["true"] and result.rc == 255
    s.close()


def test_testinfra_gets_only_connection_variables_and_the_hosts_checks_look_from():
    hostvars = {
        "web1": {"ansible_host": "10.0.0.10", "ansible_user": "root", "backup_password": "s3cret",
                 "govbaseline_probe_host": "probe1", "vulnscan_scanner_host": "scan1"},
        "probe1": {"ansible_host": "10.0.0.20"}, "scan1": {"ansible_host": "10.0.0.30"},
        "web2": {"ansible_host": "10.0.0.11"}}
    whole = ResolvedInventory(hostvars, {"all": sorted(hostvars), "webservers": ["web1", "web2"]})
    limited = Selection(Path("inventory.yml"), "web1", hosts=whole.subset(["web1"]), fleet=whole)
    applied = {"web1": hostvars["web1"]}
    data = verify.connection_inventory(limited, applied, ["web1"])
    assert sorted(data["_meta"]["hostvars"]) == ["probe1", "scan1", "web1"]
    assert data["_meta"]["hostvars"]["web1"] == {"ansible_host": "10.0.0.10", "ansible_user": "root"}
    assert data["webservers"]["hosts"] == ["web1"]
    assert "s3cret" not in json.dumps(data)


def test_checks_run_longest_first_by_their_seconds_in_earlier_runs(tmp_path, monkeypatch):
    from govbaseline.checks import plugin

    monkeypatch.setattr(verify, "check_seconds_file", lambda: tmp_path / "seconds.json")
    verify.remember_check_seconds([
        {"check": "test_quick", "status": "pass", "duration": 0.05},
        {"check": "test_probe", "status": "fail", "duration": 2.1},
        {"check": "test_probe", "status": "pass", "duration": 1.2},
        {"check": "test_off", "status": "skipped", "duration": 0.0}])
    seconds = json.loads((tmp_path / "seconds.json").read_text())
    assert seconds == {"test_probe": 2.1, "test_quick": 0.05}

    class Item:
        def __init__(self, name: str) -> None:
            self.originalname = self.name = name

    monkeypatch.setenv("GOVBASELINE_CHECK_SECONDS", str(tmp_path / "seconds.json"))
    order = [i.name for i in plugin._longest_first([Item("test_quick"), Item("test_new"), Item("test_probe")])]
    assert order == ["test_probe", "test_new", "test_quick"]


def test_the_checks_run_where_execnet_is_not_installed(tmp_path):
    """A host checking itself in pull mode has Debian's pytest and testinfra, not the controller's
    execnet: the plugin must load, hand testinfra the inventory and finish without a session."""
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"_meta": {"hostvars": {}}, "all": {"hosts": ["localhost"]}}))
    script = """
import sys, types
sys.modules["execnet"] = None  # import execnet raises ImportError, as on a host without it
import pytest
from govbaseline.checks import plugin
config = types.SimpleNamespace(getoption=lambda name: "/nonexistent/inventory")
plugin._use_resolved_inventory(config)
plugin.pytest_unconfigure(config)
from testinfra.utils.ansible_runner import AnsibleRunner
assert AnsibleRunner.get_runner("/nonexistent/inventory").inventory["all"]["hosts"] == ["localhost"]
assert "govbaseline.checks.session" not in sys.modules
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "GOVBASELINE_INVENTORY": str(inventory)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
