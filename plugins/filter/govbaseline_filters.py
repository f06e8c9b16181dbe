# Copyright: govbaseline contributors
# Apache License 2.0
"""Filters that hand inventory data to govbaseline's own code, which the pyinfra engine uses too."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def backup_clients(hostvars, names):
    """The backup server's view of its clients (``govbaseline.backup.server_clients``): accounts
    (bcrypt), repository passwords and retention, from each client's ``backup_*`` variables."""
    try:
        from govbaseline import backup, validation
    except ImportError as exc:
        raise AnsibleFilterError(f"govbaseline_backup_clients needs the govbaseline package on the controller: {exc}") \
            from exc
    fleet = {}
    for name in names:
        values = hostvars[name]
        fleet[name] = {key: values[key] for key in values if validation.role_of(key) == "backup"}
    try:
        return backup.server_clients(fleet)
    except validation.ValidationError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    def filters(self):
        return {"govbaseline_backup_clients": backup_clients}
