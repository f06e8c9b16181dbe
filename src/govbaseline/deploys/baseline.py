"""pyinfra deploy file for the whole baseline (run by ``govbaseline apply --engine pyinfra``)."""

import importlib

from pyinfra.context import host
from pyinfra.facts.server import LinuxDistribution

from govbaseline.deploys.common import connection
from govbaseline.validation import baseline_roles, role_vars, validate_roles

# Every role's variables, lockouts and the rules across roles, all problems at once, before any
# operation is even planned (each role's deploy checks its own again, as each Ansible role does).
_distro = host.get_fact(LinuxDistribution) or {}
validate_roles({role: role_vars(role, host.data.govbaseline_hostvars) for role in baseline_roles()},
                  connection(), (str(_distro.get("name") or "unknown"), str(_distro.get("major") or "?")))

# The same roles, in the same order, as playbooks/site.yml: each has a deploys/<role>.py.
for role in baseline_roles():
    importlib.import_module(f"govbaseline.deploys.{role}").apply()
