"""govbaseline used as an ops team uses it (issue 19): the wheel installed with pip into a fresh
virtualenv outside the checkout, `govbaseline init` for the team's repository, the lab host's values
filled in with the secrets in Ansible Vault files, then from that folder: apply with both engines,
verify, and a plain `ansible-playbook` of the team's own playbook, whose second run changes nothing;
then the collection alone, built with ansible-galaxy and installed into the team's collections path,
runs the team's playbook of roles named by their full names, a second run changing nothing.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from govbaseline.verify import SECRET_NAME
from tests.lab.conftest import LAB_PREFIX
from tests.paths import ROOT

pytestmark = pytest.mark.lab

VAULT_PASSWORD = secrets.token_hex(16)  # a vault of this test only
# A team's own playbook naming the collection's roles, as it would beside its other roles.
TEAM_PLAYBOOK = """- name: Our web servers, with roles of the collection by their full names
  hosts: webservers
  gather_facts: false
  roles:
    - govbaseline.baseline.firewall
    - govbaseline.baseline.access
    - govbaseline.baseline.audit
    - govbaseline.baseline.tls
"""


def run(argv: list[str | Path], cwd: Path, env: dict[str, str], timeout: float = 900) -> str:
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtualenv with the wheel built from this checkout (dependencies from the package
    index, as `pip install govbaseline` gets them); returns its bin folder."""
    work = tmp_path_factory.mktemp("product")
    staged = work / "project"  # a copy: a build writes build/ and *.egg-info beside its sources
    staged.mkdir()
    shutil.copy2(ROOT / "pyproject.toml", staged)
    shutil.copytree(ROOT / "src", staged / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", work / "dist", staged],
        cwd=work, env=dict(os.environ))
    (wheel,) = (work / "dist").glob("govbaseline-*.whl")
    run([sys.executable, "-m", "venv", work / "venv"], cwd=work, env=dict(os.environ))
    run([work / "venv" / "bin" / "pip", "install", "-q", wheel], cwd=work, env=dict(os.environ), timeout=1200)
    # The collection's own artefact, as `ansible-galaxy collection build` makes it for Galaxy, AWX or a
    # team's collections/requirements.yml.
    run([work / "venv" / "bin" / "ansible-galaxy", "collection", "build", "--output-path", work / "dist",
         staged / "src" / "ansible_collections" / "govbaseline" / "baseline"], cwd=work, env=dict(os.environ))
    return work / "venv" / "bin"


def unchanged(output: str) -> bool:
    """Whether a plain ansible-playbook run's recap has lines, each with changed=0."""
    recap = [line for line in output.splitlines() if "changed=" in line and "unreachable=" in line]
    return bool(recap) and all(" changed=0 " in line for line in recap)


def split_secrets(values: dict) -> tuple[dict, dict]:
    """(the values without secrets, the secrets) by the names verify masks as secrets."""
    plain = {k: v for k, v in values.items() if not SECRET_NAME.search(k)}
    return plain, {k: v for k, v in values.items() if SECRET_NAME.search(k)}


def team_repository(lab, folder: Path, bin_dir: Path, env: dict[str, str]) -> None:
    """`govbaseline init`, then the lab's hosts and values in its inventory, each host's secrets in
    an encrypted host_vars/<host>/vault.yml (the starter's example values are replaced)."""
    run([bin_dir / "govbaseline", "init", folder.name], cwd=folder.parent, env=env)
    lab_inventory = yaml.safe_load(lab.inventory.read_text())["all"]
    inventory = folder / "inventory"
    for path in (inventory / "group_vars").glob("*.yml"):
        if path.name != "all.yml":
            path.unlink()
    for path in (inventory / "host_vars").iterdir():
        for file in path.iterdir():
            file.unlink()
        path.rmdir()
    common, common_secrets = split_secrets(lab_inventory["vars"])
    hosts: dict = {"all": {"vars": common, "children": {}}}
    vaults: dict[str, dict] = {}
    for group, body in lab_inventory["children"].items():
        hosts["all"]["children"][group] = {"hosts": {}}
        for name, values in body["hosts"].items():
            plain, secret = split_secrets(values)
            hosts["all"]["children"][group]["hosts"][name] = plain
            vaults[name] = {**secret, **common_secrets}
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts, sort_keys=False))
    for name, secret in vaults.items():
        vault = inventory / "host_vars" / name / "vault.yml"
        vault.parent.mkdir(parents=True)
        vault.write_text(yaml.safe_dump(secret))
        run([bin_dir / "ansible-vault", "encrypt", "--vault-password-file", folder.parent / "vault-password", vault],
            cwd=folder, env=env)
        assert vault.read_text().startswith("$ANSIBLE_VAULT;")


def test_an_ops_team_installs_the_package_and_runs_from_its_own_repository(lab_factory, installed, tmp_path):
    lab = lab_factory(f"{LAB_PREFIX}-product", hosts=1)
    # Only the new venv's tools, nothing of the checkout's: the team's machine.
    env = {"PATH": f"{installed}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": os.environ["HOME"], "LANG": "C.UTF-8"}
    (tmp_path / "vault-password").write_text(VAULT_PASSWORD + "\n")
    (tmp_path / "vault-password").chmod(0o600)
    ops = tmp_path / "ops"
    team_repository(lab, ops, installed, env)
    vault = ["--vault-password-file", "../vault-password"]

    applied = run([installed / "govbaseline", "apply", "-i", "inventory/", *vault], cwd=ops, env=env)
    assert "failed=0" in applied
    run([installed / "govbaseline", "apply", "-i", "inventory/", "--engine", "pyinfra", *vault], cwd=ops, env=env)
    verified = run([installed / "govbaseline", "verify", "-i", "inventory/", "--report-dir", "reports", *vault],
                   cwd=ops, env=env)
    assert "-> PASS" in verified, verified[-3000:]
    assert (ops / "reports" / "report.json").exists()
    # What the engines ran came from the installed package, not from this checkout.
    python = installed / "python"
    where = run([python, "-c", "import govbaseline.paths as p; print(p.COLLECTION_DIR)"], cwd=ops, env=env).strip()
    assert not where.startswith(str(ROOT)) and where.startswith(str(installed.parent)), where

    # The team's own playbook (site.yml imports govbaseline.baseline.site) with plain Ansible.
    plain_env = {**env, "ANSIBLE_CONFIG": str(ops / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    first = run([installed / "ansible-playbook", "site.yml", *vault], cwd=ops, env=plain_env)
    second = run([installed / "ansible-playbook", "site.yml", *vault], cwd=ops, env=plain_env)
    assert unchanged(second), second[-3000:]
    assert "failed=0" in first

    # The collection alone, from its artefact: installed into the team's own collections path, with
    # Python's path not searched (the package carries a copy of the collection, which must not be
    # what runs); its Python requirement (requirements.txt: govbaseline) is this venv's.
    (artefact,) = (installed.parent.parent / "dist").glob("govbaseline-baseline-*.tar.gz")
    collections = ops / "collections"
    own_env = {**plain_env, "ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "False"}
    # (Searching Python's path, ansible-galaxy would find the package's copy and install nothing.)
    run([installed / "ansible-galaxy", "collection", "install", "-p", collections, artefact], cwd=ops, env=own_env)
    found = run([installed / "ansible-galaxy", "collection", "list", "govbaseline.baseline"], cwd=ops, env=own_env)
    assert str(collections) in found and "site-packages" not in found, found
    (ops / "web.yml").write_text(TEAM_PLAYBOOK)
    first = run([installed / "ansible-playbook", "web.yml", *vault], cwd=ops, env=own_env)
    second = run([installed / "ansible-playbook", "web.yml", *vault], cwd=ops, env=own_env)
    assert "failed=0" in first and unchanged(second), second[-3000:]
    lab.down()  # its hosts go now, not at the end of the session
