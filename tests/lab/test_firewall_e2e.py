"""Firewall end to end on real lab hosts, with both engines.

Converge, converge again with nothing changed, verify with the shared checks; break each control
and see its check fail (the negative twins); refuse bad input and lockouts before any change;
roll back a ruleset that cuts SSH off.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from govbaseline.engines import apply, changed_count, run_ansible
from govbaseline.inventory import ansible_env, tool
from govbaseline.verify import verify
from tests.lab.conftest import inventory_with, table_listing

pytestmark = pytest.mark.lab

FW_CONTROLS = ("FW-01", "FW-02", "FW-03")


@pytest.fixture(scope="module")
def ansible_lab(lab_factory):
    return lab_factory("t-ansible", hosts=2)


@pytest.fixture(scope="module")
def pyinfra_lab(lab_factory):
    return lab_factory("t-pyinfra", hosts=2)


def assert_all_pass(lab, tmp_path):
    outcome = verify(lab.inventory, report_dir=tmp_path / "report", forks=4)
    for host in lab.hosts():
        for control in FW_CONTROLS:
            assert outcome.status(host.name, control) == "pass", outcome.output[-3000:]
    assert (tmp_path / "report" / "junit.xml").exists() and (tmp_path / "report" / "report.html").exists()
    return outcome


def converge_twice(lab, engine):
    """First converge changes the host; the second changes nothing."""
    first = apply(lab.inventory, engine=engine, stream=False)
    assert first.ok, first.output[-3000:]
    assert changed_count(first) > 0
    second = apply(lab.inventory, engine=engine, stream=False)
    assert second.ok, second.output[-3000:]
    assert changed_count(second) == 0, second.output[-3000:]


def test_ansible_converges_idempotently_and_verifies(ansible_lab, tmp_path):
    converge_twice(ansible_lab, "ansible")
    outcome = assert_all_pass(ansible_lab, tmp_path)
    # The reachability check ran from the other lab host, not from the controller.
    checks = outcome.data["hosts"][ansible_lab.hosts()[0].name]["controls"]["FW-01"]["checks"]
    probe = next(c for c in checks if c["check"] == "test_undeclared_port_unreachable_from_outside")
    assert any("python3 -c" in e["command"] for e in probe["evidence"])


def test_pyinfra_converges_idempotently_and_verifies(pyinfra_lab, tmp_path):
    converge_twice(pyinfra_lab, "pyinfra")
    assert_all_pass(pyinfra_lab, tmp_path)
    # One inventory, two engines, one result: Ansible finds nothing to change on a pyinfra host.
    after = apply(pyinfra_lab.inventory, engine="ansible", stream=False)
    assert after.ok and changed_count(after) == 0, after.output[-3000:]


# -- negative twins: break the control on a converged host and see its check fail ------------

# Deletes the input rules whose listing matches a pattern (by their handles).
DELETE_RULES = ("nft -a list chain inet govbaseline input | awk '/%s/ {print $NF}' | "
                "xargs -r -n1 nft delete rule inet govbaseline input handle")

BREAKS = {
    "test_default_deny_inbound_and_forward": [["nft", "delete", "table", "inet", "govbaseline"]],
    "test_only_declared_ports_are_open": [["nft", "insert", "rule", "inet", "govbaseline", "input",
                                           "tcp", "dport", "47999", "accept"]],
    "test_undeclared_port_unreachable_from_outside": [["nft", "insert", "rule", "inet", "govbaseline", "input",
                                                       "tcp", "dport", "47999", "accept"]],
    "test_ruleset_loaded_at_boot": [["systemctl", "disable", "nftables"]],
    "test_ssh_only_from_management_networks": [["nft", "insert", "rule", "inet", "govbaseline", "input",
                                                "tcp", "dport", "22", "accept"]],
    "test_icmp_echo_rate_limited": [["nft", "insert", "rule", "inet", "govbaseline", "input",
                                     "icmp", "type", "echo-request", "accept"]],
    "test_new_connection_flood_guard": [["sh", "-c", DELETE_RULES % "@flood_v6"]],
    "test_dropped_packets_logged_with_limit": [["sh", "-c", DELETE_RULES % "log prefix"]],
}


@pytest.mark.parametrize("check", sorted(BREAKS))
def test_negative_twin_sees_broken_control_fail(ansible_lab, tmp_path, check):
    host = ansible_lab.hosts()[0]
    assert run_ansible(ansible_lab.inventory, stream=False).ok  # start from a converged host
    before = verify(ansible_lab.inventory, tmp_path / "before", limit=host.name, checks=[check])
    assert before.data["summary"]["controls"].get("pass", 0) >= 1 and before.passed, before.output[-2000:]
    for argv in BREAKS[check]:
        ansible_lab.exec(host, *argv)
    broken = verify(ansible_lab.inventory, tmp_path / "broken", limit=host.name, checks=[check])
    results = [c for ctl in broken.data["hosts"][host.name]["controls"].values() for c in ctl["checks"]]
    assert results and all(c["check"] == check for c in results)
    assert [c["status"] for c in results] == ["fail"], broken.output[-2000:]
    assert not broken.passed
    # The engine repairs the drift.
    repaired = run_ansible(ansible_lab.inventory, stream=False)
    assert repaired.ok and changed_count(repaired) > 0


# -- refused before any change -----------------------------------------------------------------

BAD_INPUT = {
    "port-name": ({"firewall_allowed_tcp_ports": ["http"]}, "firewall_allowed_tcp_ports"),
    "cidr-33": ({"firewall_management_cidrs": ["10.0.0.0/33"]}, "firewall_management_cidrs[0] is not a valid network"),
    "empty-management": ({"firewall_management_cidrs": []}, "firewall_management_cidrs"),
    "lockout": ({"firewall_management_cidrs": ["192.0.2.0/24"]}, "the address this controller connects from"),
}


@pytest.mark.parametrize("engine", ["ansible", "pyinfra"])
@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_and_lockout_refused_before_any_change(pyinfra_lab, tmp_path, engine, case):
    overrides, words = BAD_INPUT[case]
    host = pyinfra_lab.hosts()[0]
    pyinfra_lab.exec(host, "nft", "add", "table", "inet", "marker")  # any change would disturb this state
    before = table_listing(pyinfra_lab, host)
    result = apply(inventory_with(pyinfra_lab, tmp_path, **overrides), engine=engine, stream=False)
    assert not result.ok
    assert words in result.output, result.output[-3000:]
    assert table_listing(pyinfra_lab, host) == before
    pyinfra_lab.exec(host, "nft", "delete", "table", "inet", "marker")


# -- lockout rollback --------------------------------------------------------------------------


def ansible_ping(inventory, host: str) -> bool:
    proc = subprocess.run([tool("ansible"), "-i", str(inventory), host, "-m", "ansible.builtin.ping",
                           "-T", "5"], capture_output=True, text=True, env=ansible_env(), check=False)
    return proc.returncode == 0


def test_ruleset_that_cuts_ssh_is_rolled_back(ansible_lab):
    host = ansible_lab.hosts()[1]
    assert run_ansible(ansible_lab.inventory, stream=False).ok
    good = table_listing(ansible_lab, host)
    cutting = ("table inet govbaseline\ndelete table inet govbaseline\n"
               "table inet govbaseline {\n chain input {\n  type filter hook input priority filter; policy drop;\n"
               "  iif \"lo\" accept\n }\n}\n")
    args = f"table='inet govbaseline' rollback_timeout=15 content='{cutting}'"
    load = subprocess.run([tool("ansible"), "-i", str(ansible_lab.inventory), host.name, "-m", "nftables_table",
                           "-a", args], capture_output=True, text=True, env=ansible_env(), check=False)
    assert load.returncode == 0 and "CHANGED" in load.stdout, load.stdout + load.stderr
    subprocess.run([tool("ansible"), "-i", str(ansible_lab.inventory), host.name, "-m", "meta",
                    "-a", "reset_connection"], capture_output=True, env=ansible_env(), check=False)
    assert not ansible_ping(ansible_lab.inventory, host.name), "the cutting ruleset did not cut SSH"
    deadline = time.monotonic() + 60
    while not ansible_ping(ansible_lab.inventory, host.name):
        assert time.monotonic() < deadline, "the host did not roll back within 60 seconds"
        time.sleep(2)
    assert table_listing(ansible_lab, host) == good
