"""Each role's rules live in the module named for the role (rules/<role>.py) and judge that role's
variables: a rule under a misspelt name would never run, and a role without its module would be
judged by its argument spec alone."""

from __future__ import annotations

import pytest

from govbaseline.paths import ROLES_DIR
from govbaseline.validation import CROSS_RULES, ROLES, RULES, argument_spec, baseline_roles


def test_every_role_of_the_site_playbook_has_its_rules_module():
    assert sorted(ROLES) == sorted(baseline_roles())
    for role, module in ROLES.items():
        assert module.__name__ == f"govbaseline.rules.{role}"
        assert (ROLES_DIR / role).is_dir(), f"rules/{role}.py is named for no role of the collection"


@pytest.mark.parametrize("role", sorted(RULES))
def test_every_rule_judges_a_variable_the_role_declares(role):
    # A variable of another role that this role reads (validation.READS) is declared by both.
    assert set(RULES[role]) <= set(argument_spec(role)), f"rules/{role}.py names variables role {role} lacks"
    assert all(callable(rule) for rule in CROSS_RULES[role])
