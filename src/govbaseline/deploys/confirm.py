"""pyinfra deploy file run after baseline.py, over new connections, to cancel pending rollbacks."""

from govbaseline.deploys import firewall

firewall.confirm()
