"""The backup server's view of its clients (govbaseline.backup) and the transport rules: REST on
Debian 13, the SFTP fallback on Debian 12."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from govbaseline import backup, validation


def _ssh_key() -> str:
    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()).decode()


SFTP_CLIENT = {"backup_transport": "sftp", "backup_sftp_host": "backup.example.gov",
               "backup_sftp_host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0",
               "backup_repository_password": "r" * 32}
REST_CLIENT = {"backup_rest_url": "https://backup.example.gov:8000", "backup_rest_password": "p" * 32,
               "backup_repository_password": "r" * 32}


def test_sftp_accounts_are_valid_distinct_account_names():
    assert backup.sftp_account("web1") == "bk-web1"
    names = ["www.example.gov", "www-example-gov", "Web1", "a" * 40, "a" * 41]
    accounts = [backup.sftp_account(n) for n in names]
    assert len(set(accounts)) == len(names), accounts
    for account in accounts:
        assert len(account) <= 32 and account.startswith("bk-")
        assert all(c.islower() or c.isdigit() or c == "-" for c in account), account


@pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="needs ssh-keygen")
def test_public_key_is_what_ssh_keygen_derives(tmp_path):
    key = _ssh_key()
    path = tmp_path / "key"
    path.write_text(key)
    path.chmod(0o600)
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(path)], capture_output=True, text=True, check=True)
    assert backup.ssh_public_key(key) == " ".join(derived.stdout.split()[:2])


def test_sftp_clients_get_an_account_and_a_key_and_no_password_hash():
    key = _ssh_key()
    clients = backup.server_clients({"web1": {**SFTP_CLIENT, "backup_sftp_private_key": key}}, "sftp")
    assert clients[0]["account"] == "bk-web1" and clients[0]["ssh_key"] == backup.ssh_public_key(key)
    assert "htpasswd" not in clients[0] and key not in str(clients)


def test_a_client_of_the_other_transport_is_refused_by_name():
    with pytest.raises(validation.ValidationError) as caught:
        backup.server_clients({"web1": REST_CLIENT}, "sftp")
    assert "client web1: backup_transport is rest but this backup server serves sftp" in str(caught.value)


def test_sftp_client_needs_host_host_key_and_private_key():
    with pytest.raises(validation.ValidationError) as caught:
        validation.validated_vars("backup", {"backup_transport": "sftp", "backup_repository_password": "r" * 32})
    text = str(caught.value)
    for name in ("backup_sftp_host", "backup_sftp_host_key", "backup_sftp_private_key"):
        assert f"{name} is missing" in text
    assert "backup_rest_url" not in text  # not needed over sftp


def test_a_bad_private_key_is_refused_without_showing_it():
    with pytest.raises(validation.ValidationError) as caught:
        validation.validated_vars("backup", {**SFTP_CLIENT, "backup_sftp_private_key": "hunter2-secret"})
    assert "backup_sftp_private_key is not an unencrypted OpenSSH private key" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_server_transport_follows_the_debian_version():
    values = validation.validated_vars("backup_server", {})
    assert validation.derived("backup_server", values, "12") == {"__backup_server_transport": "sftp"}
    assert validation.derived("backup_server", values, "13") == {"__backup_server_transport": "rest"}
    validation.check_platform("backup_server", "Debian", "12", values)  # sftp needs no certificate
    with pytest.raises(validation.ValidationError, match="backup_server_certificate is missing"):
        validation.check_platform("backup_server", "Debian", "13", values)
    rest = validation.validated_vars("backup_server", {"backup_server_transport": "rest"})
    with pytest.raises(validation.ValidationError, match="Debian 12 has no restic-rest-server package: use sftp"):
        validation.check_platform("backup_server", "Debian", "12", rest)
