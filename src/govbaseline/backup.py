"""What the backup server needs to know of its clients, computed the same way for both engines.

Each client (a host of ``backup_server_clients_group``) gets a REST account named after its
inventory name, whose repository is ``<data dir>/<name>`` (the server's --private-repos rule). The
server keeps a bcrypt hash of the client's REST password, and the client's repository password
and retention, because pruning runs on the server (the client's account is append-only).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import bcrypt

from govbaseline import validation

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


def server_clients(fleet: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The accounts of every client in ``fleet`` (inventory name -> its inventory variables) whose
    backup role is on; raises ValidationError naming the host for a client with bad values."""
    clients = []
    for name in sorted(fleet):
        try:
            values = validation.validated_vars("backup", fleet[name])
        except validation.ValidationError as exc:
            raise validation.ValidationError("backup_server", [f"client {name}: {p}" for p in exc.problems]) from exc
        if not values["backup_enabled"]:
            continue
        clients.append({
            "name": name,
            "htpasswd": htpasswd_line(name, values["backup_rest_password"]),
            "repository_password": values["backup_repository_password"],
            "keep": {"daily": values["backup_keep_daily"], "weekly": values["backup_keep_weekly"],
                     "monthly": values["backup_keep_monthly"]},
        })
    return clients
