"""Every bad value of tests/bad_input.py is refused by the validation both engines run first, alone
and in its batch, against a lab inventory (the lab test runs the batches on real hosts)."""

from __future__ import annotations

import pytest
import yaml

from govbaseline.lab.hosts import Lab, LabHost
from govbaseline.validation import ValidationError, role_vars, roles_for, validate_roles
from tests.bad_input import BATCHES, CASES, batch

WEB_ROLES = roles_for(["webservers"])


@pytest.fixture(scope="module")
def lab_hostvars(tmp_path_factory):
    """What a 2-host lab's first host sees (group and host variables), and the lockout context of
    a controller connecting as root from the lab gateway."""
    state = tmp_path_factory.mktemp("state")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GOVBASELINE_STATE", str(state))
        lab = Lab("unit")
        lab.ca.ensure()
        net = lab.subnet.network_address
        hosts = [LabHost(f"unit-{i}", str(net + 9 + i), f"c{i}", "debian13") for i in (1, 2)]
        lab._write_inventory(hosts, LabHost("unit-sink", str(net + 5), "cs", "debian13", kind="sink"))
        data = yaml.safe_load(lab.inventory.read_text())["all"]
    hostvars = {**data["vars"], **data["children"]["webservers"]["hosts"]["unit-1"]}
    groups = {name: sorted(group.get("hosts") or {}) for name, group in data["children"].items()}
    groups["all"] = sorted({h for hosts in groups.values() for h in hosts})
    context = {"controller_address": lab.gateway, "controller_port": "22", "connecting_user": "root",
               "connecting_groups": ["root"], "inventory_groups": groups,
               "probe_host": hostvars.get("govbaseline_probe_host", "")}
    return hostvars, context


def refusal(lab_hostvars, overrides, context=None) -> str:
    hostvars, lab_context = lab_hostvars
    values = {**hostvars, **overrides}
    try:
        validate_roles({role: role_vars(role, values) for role in WEB_ROLES},
                       lab_context if context is None else context, ("Debian", "13"))
    except ValidationError as err:
        return str(err)
    return ""


def test_the_lab_inventory_itself_is_valid(lab_hostvars):
    hostvars, context = lab_hostvars
    converted = validate_roles({role: role_vars(role, hostvars) for role in WEB_ROLES}, context,
                               ("Debian", "13"))
    assert sorted(converted) == sorted(WEB_ROLES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_bad_value_is_refused_naming_it(lab_hostvars, case):
    overrides, words = CASES[case]
    message = refusal(lab_hostvars, overrides)
    assert words in message, message or "accepted"


@pytest.mark.parametrize("name", sorted(BATCHES))
def test_each_batch_names_every_problem_in_one_run(lab_hostvars, name):
    overrides, words = batch(name)
    message = refusal(lab_hostvars, overrides)
    assert [w for w in words if w not in message] == [], message
    # The controller checks the values before it knows how it connects (pyinfra stops there): a
    # batch is either all found without that context or all lockouts, found only with it.
    alone = refusal(lab_hostvars, overrides, context={})
    assert [w for w in words if w in alone] in (words, []), alone


def test_every_case_is_in_exactly_one_batch():
    batched = [case for cases in BATCHES.values() for case in cases]
    assert sorted(batched) == sorted(CASES)


def test_an_unsupported_release_is_refused(lab_hostvars):
    hostvars, context = lab_hostvars
    with pytest.raises(ValidationError, match="supports Debian 12 and 13; this host runs Debian 11"):
        validate_roles({role: role_vars(role, hostvars) for role in WEB_ROLES}, context, ("Debian", "11"))
