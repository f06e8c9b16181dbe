"""Each role's validation rules, in a module named for the role: ``rules/firewall.py`` for
``roles/firewall/``, beside ``deploys/firewall.py`` and ``checks/test_firewall.py``.

A role's module holds ``RULES`` (one rule per variable, for what the role's
``meta/argument_specs.yml`` cannot say: ranges, CIDRs, non-empty lists) and ``CROSS_RULES`` (rules
over several of its variables), and where the role needs them ``platform`` (what the host's Debian
version allows), ``lockout`` (what would cut off the controller's session) and ``derived`` (internal
variables that follow from its values). ``common.py`` holds the rule types several roles share,
``baseline.py`` the rules across roles. ``govbaseline.validation`` registers each role's module
(``ROLES``) and runs the rules, for both engines.
"""
