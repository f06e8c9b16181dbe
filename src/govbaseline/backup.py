"""What the backup server needs to know of its clients, computed the same way for both engines.

Each client (a host of ``backup_server_clients_group``) gets an account on the backup server, and
the server keeps the client's repository password and retention, because pruning runs there.

- REST (Debian 13's restic-rest-server): the account is named after the client's inventory name,
  its repository is ``<data dir>/<name>`` (the server's --private-repos rule), and the server keeps
  a bcrypt hash of the client's REST password.
- SFTP (the fallback where restic-rest-server is missing, Debian 12): a system account
  ``sftp_account(name)`` chrooted to its own folder, logging in with the client's SSH key (the
  server keeps the public half, derived from the client's private key by ``ssh_public_key``, which
  lives with the backup role's rules in ``rules/backup.py``: the rule that judges the key uses it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

import bcrypt

from govbaseline import validation
from govbaseline.rules.backup import ssh_public_key

# bcrypt's own base64 alphabet, in the order of the standard one.
_STD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_BCRYPT = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
BCRYPT_COST = 10


def htpasswd_line(user: str, password: str) -> str:
    """``user:$2y$...`` with a salt derived from the user and the password: the same inputs give the
    same line on every run (so a converge changes nothing), and no two users share a hash."""
    digest = hmac.new(f"govbaseline-htpasswd:{user}".encode(), password.encode(), hashlib.sha256).digest()
    encoded = base64.b64encode(digest[:16]).decode().rstrip("=").translate(str.maketrans(_STD, _BCRYPT))
    # The 22nd character carries only 2 bits: bcrypt wants its low 4 bits zero.
    encoded = encoded[:21] + _BCRYPT[_BCRYPT.index(encoded[21]) & 0x30]
    salt = f"$2b${BCRYPT_COST:02d}${encoded}".encode()
    hashed = bcrypt.hashpw(password.encode(), salt).decode()
    return f"{user}:$2y${hashed[4:]}"


def sftp_account(name: str) -> str:
    """The SFTP account of the client ``name`` on the backup server: ``bk-`` and the name in the
    characters a Debian account name allows, at most 32 long; a hash of the name is appended when
    it had to be changed, so two clients never share an account."""
    plain = re.sub(r"[^a-z0-9-]", "-", name.lower())
    if plain == name and len(plain) <= 29:
        return f"bk-{plain}"
    return f"bk-{plain[:20]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def server_clients(fleet: Mapping[str, Mapping[str, Any]], transport: str = "rest") -> list[dict[str, Any]]:
    """The accounts of every client in ``fleet`` (inventory name -> its inventory variables) whose
    backup role is on, for a server of ``transport`` (rest or sftp); raises ValidationError naming
    the host for a client with bad values or one that talks to the server the other way."""
    clients = []
    for name in sorted(fleet):
        try:
            values = validation.validated_vars("backup", fleet[name])
        except validation.ValidationError as exc:
            raise validation.ValidationError("backup_server", [f"client {name}: {p}" for p in exc.problems]) from exc
        if not values["backup_enabled"]:
            continue
        if values["backup_transport"] != transport:
            raise validation.ValidationError("backup_server", [
                f"client {name}: backup_transport is {values['backup_transport']} but this backup server serves "
                f"{transport} (backup_server_transport; auto is rest on Debian 13, sftp on Debian 12)"])
        client: dict[str, Any] = {
            "name": name,
            "repository_password": values["backup_repository_password"],
            "keep": {"daily": values["backup_keep_daily"], "weekly": values["backup_keep_weekly"],
                     "monthly": values["backup_keep_monthly"]},
        }
        if transport == "rest":
            client["htpasswd"] = htpasswd_line(name, values["backup_rest_password"])
        else:
            client["account"] = sftp_account(name)
            client["ssh_key"] = ssh_public_key(values["backup_sftp_private_key"])
        clients.append(client)
    return clients
