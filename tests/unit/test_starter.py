"""`govbaseline init DIR`: a starting repository an ops team can use at once, never written over
existing files."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import yaml

from govbaseline import cli
from govbaseline.starter import starter_files

BIN = Path(sys.executable).parent


def test_init_writes_the_starter_repository_with_private_vault_skeletons(tmp_path, capsys):
    assert cli.main(["init", str(tmp_path / "ops")]) == 0
    ops = tmp_path / "ops"
    for name in ("README.md", "ansible.cfg", "site.yml", "collections/requirements.yml", "inventory/hosts.yml",
                 "inventory/group_vars/webservers.yml", "inventory/host_vars/web1.example.gov/vault.yml"):
        assert (ops / name).is_file(), name
    vaults = sorted(ops.rglob("vault.yml"))
    assert vaults and all(stat.S_IMODE(v.stat().st_mode) == 0o600 for v in vaults)
    assert stat.S_IMODE((ops / "site.yml").stat().st_mode) == 0o644
    assert "next steps" in capsys.readouterr().out


def test_the_inventory_names_every_required_variable_and_the_vault_holds_what_it_refers_to(tmp_path):
    cli.main(["init", str(tmp_path / "ops")])
    inventory = tmp_path / "ops" / "inventory"
    web = yaml.safe_load((inventory / "group_vars" / "webservers.yml").read_text())
    required = {"firewall_management_cidrs", "alerts_smtp_host", "alerts_recipients", "tls_server_names",
                "backup_rest_url", "backup_rest_password", "backup_repository_password"}
    assert required <= set(web), required - set(web)
    text = "\n".join(line for p in (inventory / "group_vars").glob("*.yml") for line in p.read_text().splitlines()
                     if not line.lstrip().startswith("#"))  # in use, not in a comment
    wanted = {word.strip("{} '\"") for word in text.split() if word.startswith("vault_")}
    vaulted = set()
    for path in inventory.rglob("vault.yml"):
        vaulted |= set(yaml.safe_load(path.read_text()))
    assert wanted and wanted <= vaulted, wanted - vaulted


def test_ansible_reads_the_inventory_and_the_site_playbook_from_the_new_folder(tmp_path):
    cli.main(["init", str(tmp_path / "ops")])
    ops = tmp_path / "ops"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "ANSIBLE_CONFIG": str(ops / "ansible.cfg")}
    listed = subprocess.run(["ansible-inventory", "--list"], cwd=ops, env=env, capture_output=True, text=True,
                            check=False)
    assert listed.returncode == 0, listed.stderr
    assert "web1.example.gov" in listed.stdout and "backup.example.gov" in listed.stdout
    syntax = subprocess.run(["ansible-playbook", "--syntax-check", "site.yml"], cwd=ops, env=env,
                            capture_output=True, text=True, check=False)
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr


def test_init_refuses_to_write_over_any_existing_file_and_writes_nothing(tmp_path, capsys):
    ops = tmp_path / "ops"
    (ops / "inventory").mkdir(parents=True)
    (ops / "inventory" / "hosts.yml").write_text("mine\n")
    assert cli.main(["init", str(ops)]) == 2
    err = capsys.readouterr().err
    assert "writes nothing over existing files" in err and str(ops / "inventory" / "hosts.yml") in err
    assert (ops / "inventory" / "hosts.yml").read_text() == "mine\n"
    assert sorted(p.name for p in ops.rglob("*")) == ["hosts.yml", "inventory"]


def test_init_refuses_a_file_and_reads_a_relative_folder_from_the_working_folder(tmp_path, capsys, monkeypatch):
    (tmp_path / "afile").write_text("")
    assert cli.main(["init", str(tmp_path / "afile")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)
    assert cli.main(["init", "relative/ops"]) == 0
    assert len(list((tmp_path / "relative" / "ops").rglob("*.yml"))) >= len(
        [f for f in starter_files() if f.suffix == ".yml"])
