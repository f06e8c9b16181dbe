"""Bad values are refused with a message naming the variable, for both engines."""

from __future__ import annotations

import pytest

from govbaseline.validation import ValidationError, baseline_roles, check_lockout, validated_vars

GOOD = {
    "firewall_management_cidrs": ["192.0.2.0/24", "2001:db8::/64"],
    "firewall_allowed_tcp_ports": [80, 443],
}


def firewall(**overrides):
    return validated_vars("firewall", {**GOOD, **overrides})


def test_good_values_pass_and_defaults_fill_in():
    values = firewall()
    assert values["firewall_ssh_port"] == 22
    assert values["firewall_allowed_tcp_ports"] == [80, 443]


@pytest.mark.parametrize(("overrides", "words"), [
    ({"firewall_allowed_tcp_ports": ["http"]}, "firewall_allowed_tcp_ports"),
    ({"firewall_allowed_tcp_ports": [70000]}, "firewall_allowed_tcp_ports[0] must be between 1 and 65535"),
    ({"firewall_management_cidrs": ["10.0.0.0/33"]}, "firewall_management_cidrs[0] is not a valid network"),
    ({"firewall_management_cidrs": ["10.0.0.5/24"]}, "firewall_management_cidrs[0] is not a valid network"),
    ({"firewall_management_cidrs": []}, "firewall_management_cidrs must list at least one network"),
    ({"firewall_rollback_timeout": 5}, "firewall_rollback_timeout must be between 10 and 600"),
    ({"firewall_log_prefix": 'a"b'}, "firewall_log_prefix"),
    ({"firewall_enabled": "maybe"}, "firewall_enabled"),
    ({"firewall_alowed_tcp_ports": [80]}, "firewall_alowed_tcp_ports is not a variable of role firewall"),
])
def test_bad_values_are_refused_naming_the_variable(overrides, words):
    with pytest.raises(ValidationError) as err:
        firewall(**overrides)
    assert words in str(err.value)


def test_lockout_is_refused():
    values = firewall()
    check_lockout("firewall", values, {"controller_address": "192.0.2.7"})
    check_lockout("firewall", values, {"controller_address": "2001:db8::5"})
    with pytest.raises(ValidationError, match=r"198\.51\.100\.9, the address this controller connects from"):
        check_lockout("firewall", values, {"controller_address": "198.51.100.9"})


def test_baseline_roles_come_from_the_site_playbook():
    assert baseline_roles() == ["firewall"]
