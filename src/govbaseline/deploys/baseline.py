"""pyinfra deploy file for the whole baseline (run by ``govbaseline apply --engine pyinfra``)."""

import importlib

from pyinfra.context import host

from govbaseline.validation import baseline_roles, check_baseline, validated_vars

# Rules across roles first (each role's own rules run in its deploy, before it changes anything).
check_baseline({role: validated_vars(role, host.data.govbaseline_hostvars) for role in baseline_roles()})

# The same roles, in the same order, as playbooks/site.yml: each has a deploys/<role>.py.
for role in baseline_roles():
    importlib.import_module(f"govbaseline.deploys.{role}").apply()
