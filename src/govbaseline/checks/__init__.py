"""testinfra checks, one module per area; every test is marked with the control id it verifies.

They are product code: ``govbaseline verify`` runs them against production hosts, and the
project's own tests run the same modules against lab hosts.
"""
