"""pyinfra deploy file for the whole baseline (run by ``govbaseline apply --engine pyinfra``)."""

import importlib

from govbaseline.validation import baseline_roles

# The same roles, in the same order, as playbooks/site.yml: each has a deploys/<role>.py.
for role in baseline_roles():
    importlib.import_module(f"govbaseline.deploys.{role}").apply()
