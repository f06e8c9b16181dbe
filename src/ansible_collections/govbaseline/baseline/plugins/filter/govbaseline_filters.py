# Copyright: govbaseline contributors
# Apache License 2.0
"""Filters that hand inventory data to govbaseline's own code, which the pyinfra engine uses too."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def _govbaseline():
    try:
        from govbaseline import backup, validation
    except ImportError as exc:
        raise AnsibleFilterError("govbaseline's filters need the govbaseline package on the controller "
                                 f"(pip install govbaseline): {exc}") from exc
    return backup, validation


def backup_clients(hostvars, names, transport="rest"):
    """The backup server's view of its clients (``govbaseline.backup.server_clients``): accounts
    (bcrypt hashes or SSH keys), repository passwords and retention, from each client's ``backup_*``
    variables."""
    backup, validation = _govbaseline()
    fleet = {}
    for name in names:
        values = hostvars[name]
        fleet[name] = {key: values[key] for key in values if validation.role_of(key) == "backup"}
    try:
        return backup.server_clients(fleet, transport)
    except validation.ValidationError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def sftp_account(name):
    """A backup client's SFTP account on the backup server (``govbaseline.backup.sftp_account``)."""
    backup = _govbaseline()[0]
    return backup.sftp_account(str(name))


def declared_tcp_ports(allowed=None, ssh_port=None):
    """The TCP ports a host opens on purpose (``govbaseline.validation.declared_tcp_ports``), from its
    ``firewall_allowed_tcp_ports`` and ``firewall_ssh_port`` (None: the firewall role's default)."""
    validation = _govbaseline()[1]
    given = {"firewall_allowed_tcp_ports": allowed, "firewall_ssh_port": ssh_port}
    try:
        return validation.declared_tcp_ports({k: v for k, v in given.items() if v is not None})
    except validation.ValidationError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def accounts_with_shell(read, exempt):
    """System accounts with a login shell (``govbaseline.hostfacts.accounts_with_shell``), from the
    output of the system role's ``__system_accounts_read``; ``exempt`` names keep theirs."""
    try:
        from govbaseline.hostfacts import accounts_with_shell as find
    except ImportError as exc:
        raise AnsibleFilterError("govbaseline's filters need the govbaseline package on the controller "
                                 f"(pip install govbaseline): {exc}") from exc
    return find(str(read), [str(name) for name in exempt])


class FilterModule:
    def filters(self):
        return {"govbaseline_backup_clients": backup_clients, "govbaseline_sftp_account": sftp_account,
                "govbaseline_declared_tcp_ports": declared_tcp_ports,
                "govbaseline_accounts_with_shell": accounts_with_shell}
