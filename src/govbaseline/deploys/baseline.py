"""pyinfra deploy file for the whole baseline (run by ``govbaseline apply --engine pyinfra``)."""

import importlib

from pyinfra.context import ctx_host, host
from pyinfra.facts.server import LinuxDistribution

from govbaseline.deploys import factcache
from govbaseline.deploys.common import connection, observed
from govbaseline.hostfacts import decide
from govbaseline.validation import role_vars, roles_for, validate_roles

# Each fact is read once while the run has not changed the host, and the questions the last run
# asked are asked first, together (see factcache).
factcache.install(ctx_host.get())  # type: ignore[no-untyped-call]  # pyinfra leaves get() untyped

# Every role's variables, lockouts and the rules across roles, all problems at once, before any
# operation is even planned (each role's deploy checks its own again, as each Ansible role does).
_distro = host.get_fact(LinuxDistribution) or {}
ROLES = roles_for(host.data.govbaseline_groups)
# What the roles derive from the host (the IDS interface from a default route of either family)
# is decided here too: a host a role cannot work on is refused before the first role is planned.
decide(validate_roles({role: role_vars(role, host.data.govbaseline_hostvars) for role in ROLES},
                      connection(), (str(_distro.get("name") or "unknown"), str(_distro.get("major") or "?"))),
       observed())

# The same roles, in the same order, as playbooks/site.yml gives the host's groups: each has a
# deploys/<role>.py.
MODULES = [importlib.import_module(f"govbaseline.deploys.{role}") for role in ROLES]
for module in MODULES:
    module.apply()
# What a role does once every role has changed the host (integrity: approve the first converge).
for module in MODULES:
    if hasattr(module, "finish"):
        module.finish()
