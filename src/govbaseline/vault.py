"""Ansible Vault for both engines: one set of vault secrets for every Ansible tool govbaseline starts
and for the variables it reads itself.

The command line's ``--vault-id``, ``--vault-password-file`` and ``--ask-vault-pass`` become
Ansible's own settings in the environment (``ANSIBLE_VAULT_IDENTITY_LIST``,
``ANSIBLE_VAULT_PASSWORD_FILE``), so ``ansible-playbook``, ``ansible-inventory`` and testinfra's
Ansible runs all read them. ``ansible-inventory --list`` leaves inline ``!vault`` values encrypted;
``decrypt`` opens them with the same secrets (ansible-core's own vault code) for the pyinfra engine,
the validation and the checks, which read the resolved variables.
"""

from __future__ import annotations

import atexit
import getpass
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

VAULT_KEY = "__ansible_vault"  # how ansible-inventory --list writes an encrypted value
# Every value this process decrypted: secrets whatever their variable is called (verify masks them).
OPENED: set[str] = set()


class VaultError(ValueError):
    """A vaulted value that cannot be opened: no vault secret given, or none that fits."""


def configure(vault_ids: list[str] | None = None, password_files: list[str] | None = None,
              ask: bool = False) -> None:
    """Hand the vault options to every Ansible tool started from now on (environment variables, added
    to any the user set). ``ask``: prompt once for the password (no echo) and keep it in a private
    file (mode 0600) that is removed when the process ends. Paths are made absolute (the tools run
    in other folders); a missing password file raises FileNotFoundError."""
    identities = [i for i in os.environ.get("ANSIBLE_VAULT_IDENTITY_LIST", "").split(",") if i]
    for vault_id in vault_ids or []:
        # As Ansible reads it: "label@source" or a bare source; the source is a file, a script or "prompt".
        label, sep, source = vault_id.partition("@") if "@" in vault_id else ("", "", vault_id)
        if source in ("prompt", "prompt_ask_vault_pass"):
            # Asked here, once: each Ansible tool of the run would ask again, or fail without a terminal.
            source = _prompted(label or "default")
        else:
            source = _existing(source, "--vault-id")
        identities.append(f"{label}{sep}{source}")
    for path in password_files or []:
        identities.append(_existing(path, "--vault-password-file"))
    if ask:
        identities.append(_prompted("default"))
    if identities:
        os.environ["ANSIBLE_VAULT_IDENTITY_LIST"] = ",".join(identities)


def _existing(path: str, option: str) -> str:
    absolute = os.path.abspath(os.path.expanduser(path))
    if not os.path.exists(absolute):
        raise FileNotFoundError(f"{option}: vault password file {absolute} does not exist")
    return absolute


def _prompted(label: str) -> str:
    """Ask for the password of vault id ``label`` (no echo) and keep it in a private file (mode 0600,
    removed when the process ends) that the run's Ansible tools read; returns its path."""
    password = getpass.getpass(f"Vault password ({label}): ")
    # The user's runtime folder (memory, the user's only) where there is one; mode 0600 either way.
    handle, name = tempfile.mkstemp(prefix="govbaseline-vault-", dir=os.environ.get("XDG_RUNTIME_DIR") or None)
    with os.fdopen(handle, "w") as out:
        out.write(password + "\n")
    atexit.register(lambda: Path(name).unlink(missing_ok=True))
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:  # a killed run still removes the file
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    return name


def secrets() -> list[tuple[str, Any]]:
    """The vault secrets of the environment's settings, loaded as Ansible loads them (a password
    file, or a script that prints the password)."""
    from ansible.cli import CLI
    from ansible.parsing.dataloader import DataLoader

    # The process's own environment: configure() puts the options there, and inventory.ansible_env
    # hands them to every Ansible tool unchanged (importing it here would make vault and inventory
    # import each other).
    env = os.environ
    ids = [i for i in env.get("ANSIBLE_VAULT_IDENTITY_LIST", "").split(",") if i]
    files = [env["ANSIBLE_VAULT_PASSWORD_FILE"]] if env.get("ANSIBLE_VAULT_PASSWORD_FILE") else []
    if not ids and not files:
        return []
    options = {"vault_ids": ids, "vault_password_files": files, "ask_vault_pass": False, "auto_prompt": False}
    try:  # ansible-core 2.19 also makes them the process's vault context, once only: not wanted here
        return list(CLI.setup_vault_secrets(DataLoader(), initialize_context=False, **options))
    except TypeError:  # ansible-core 2.18 has no such context
        return list(CLI.setup_vault_secrets(DataLoader(), **options))


def _each_vaulted(hostvars: dict[str, dict[str, Any]], replace: Any) -> None:
    """Replace, in place, every encrypted value in ``hostvars`` (at any depth) by
    ``replace(ciphertext, host, variable)``."""

    def walk(node: Any, host: str, name: str) -> Any:
        if isinstance(node, dict):
            if set(node) == {VAULT_KEY}:
                return replace(node[VAULT_KEY], host, name)
            return {k: walk(v, host, name) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, host, name) for v in node]
        return node

    for host, variables in hostvars.items():
        for name in list(variables):
            variables[name] = walk(variables[name], host, name)


def decrypt(hostvars: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``hostvars`` (host -> variables, from ansible-inventory) with every encrypted value opened, in
    place. Raises VaultError naming the host and variable when no secret was given or none fits."""
    found: list[tuple[str, str]] = []

    def note(ciphertext: str, host: str, name: str) -> dict[str, str]:
        found.append((host, name))
        return {VAULT_KEY: ciphertext}

    _each_vaulted(hostvars, note)
    if not found:
        return hostvars
    loaded = secrets()
    if not loaded:
        where = ", ".join(f"{h}: {n}" for h, n in found[:5])
        raise VaultError(f"the inventory has vault-encrypted values ({where}): give --vault-password-file, "
                         "--vault-id or --ask-vault-pass")
    from ansible.errors import AnsibleError
    from ansible.parsing.vault import VaultLib

    vault = VaultLib(loaded)

    def opened(ciphertext: str, host: str, name: str) -> str:
        try:
            plain: str = vault.decrypt(ciphertext).decode()
        except AnsibleError as exc:
            raise VaultError(f"{host}: {name} cannot be decrypted with the vault secrets given "
                             f"({exc.message})") from None
        OPENED.add(plain)
        return plain

    _each_vaulted(hostvars, opened)
    return hostvars
