"""Vault for both engines (govbaseline.vault): an inventory with inline !vault values, read by the real
ansible-inventory, gives the engines and the checks the plain values with the secrets the command
line names, and is refused with a message naming the variable and the options without them."""

from __future__ import annotations

import os
import stat

import pytest
from ansible.parsing.vault import VaultLib, VaultSecret

from govbaseline import cli, vault
from govbaseline.inventory import resolve

PLAIN = "hunter2"  # the vaulted value: a test secret


@pytest.fixture
def vaulted(tmp_path, monkeypatch):
    """An inventory whose web1 has a vaulted backup_rest_password, and the vault password file."""
    for name in ("ANSIBLE_VAULT_IDENTITY_LIST", "ANSIBLE_VAULT_PASSWORD_FILE"):
        # setenv records the variable's state before the test (absent here): configure() writes it,
        # and monkeypatch's undo restores that state; delenv then starts the test without it.
        monkeypatch.setenv(name, "unset")
        monkeypatch.delenv(name)
    secret = VaultLib([("default", VaultSecret(b"correct horse"))]).encrypt(PLAIN).decode()
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    web1:\n      ansible_host: 192.0.2.10\n"
                         "      backup_rest_password: !vault |\n"
                         + "".join(f"        {line}\n" for line in secret.splitlines()))
    password = tmp_path / "vault-pass"
    password.write_text("correct horse\n")
    password.chmod(0o600)
    monkeypatch.chdir(tmp_path)
    return inventory, password


def test_the_engines_see_the_plain_value_with_a_password_file(vaulted):
    inventory, password = vaulted
    vault.configure(password_files=[password.name])  # relative: from the working folder
    assert resolve(inventory).hostvars["web1"]["backup_rest_password"] == PLAIN


def test_a_vault_id_with_a_label_works_the_same(vaulted):
    inventory, password = vaulted
    vault.configure(vault_ids=[f"prod@{password}"])
    assert resolve(inventory).hostvars["web1"]["backup_rest_password"] == PLAIN


def test_without_a_secret_the_inventory_is_refused_naming_the_variable(vaulted):
    inventory, _ = vaulted
    with pytest.raises(vault.VaultError, match=r"web1: backup_rest_password.*--vault-password-file"):
        resolve(inventory)


def test_a_wrong_password_is_refused_naming_the_variable(vaulted, tmp_path):
    inventory, _ = vaulted
    wrong = tmp_path / "wrong"
    wrong.write_text("battery staple\n")
    vault.configure(password_files=[str(wrong)])
    with pytest.raises(vault.VaultError, match="web1: backup_rest_password cannot be decrypted"):
        resolve(inventory)


def test_the_command_line_refuses_a_missing_password_file(vaulted, capsys):
    inventory, _ = vaulted
    assert cli.main(["verify", "-i", str(inventory), "--vault-password-file", "nope"]) == 2
    assert "--vault-password-file: vault password file" in capsys.readouterr().err


def test_the_command_line_hands_the_password_to_every_ansible_tool(vaulted, monkeypatch):
    inventory, password = vaulted
    seen = {}

    def fake_verify(inventory, **kwargs):
        seen["identities"] = os.environ["ANSIBLE_VAULT_IDENTITY_LIST"]
        seen["value"] = resolve(inventory).hostvars["web1"]["backup_rest_password"]
        raise RuntimeError("stop here")

    import govbaseline.verify

    monkeypatch.setattr(govbaseline.verify, "verify", fake_verify)
    assert cli.main(["verify", "-i", inventory.name, "--vault-password-file", password.name]) == 1
    assert seen == {"identities": str(password), "value": PLAIN}


def test_a_prompted_vault_id_is_asked_once_for_every_tool(vaulted, monkeypatch):
    inventory, _ = vaulted
    asked = []
    monkeypatch.setattr(vault.getpass, "getpass", lambda prompt: asked.append(prompt) or "correct horse")
    vault.configure(vault_ids=["prod@prompt"])
    label, _, path = os.environ["ANSIBLE_VAULT_IDENTITY_LIST"].partition("@")
    assert (label, asked) == ("prod", ["Vault password (prod): "])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # ansible-inventory (a child process) and govbaseline's own reading both open the value, no prompt.
    assert resolve(inventory).hostvars["web1"]["backup_rest_password"] == PLAIN
    assert len(asked) == 1


def test_a_decrypted_value_is_masked_whatever_its_name(vaulted):
    from govbaseline.verify import masker, secret_values

    inventory, password = vaulted
    vault.configure(password_files=[str(password)])
    hostvars = resolve(inventory).hostvars
    hostvars["web1"]["greeting"] = hostvars["web1"].pop("backup_rest_password")  # a name no rule knows
    assert PLAIN in secret_values(hostvars)
    assert PLAIN not in masker(secret_values(hostvars))(f"the output said {PLAIN}")
