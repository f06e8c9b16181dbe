"""pyinfra deploy file for the whole baseline (run by ``govbaseline apply --engine pyinfra``)."""

from govbaseline.deploys import firewall

firewall.apply()
