"""Firewall end to end on real lab hosts: break each control and see its check fail (the negative
twins); refuse bad input and lockouts before any change, with both engines; roll back a ruleset that
cuts SSH off. Converging and verifying the whole baseline is in test_baseline_e2e.py.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from govbaseline.engines import changed_count, run_ansible
from govbaseline.inventory import ansible_env, tool
from govbaseline.verify import verify
from tests.lab.conftest import assert_checks_fail_when_broken_together, changed_steps, inventory_with, table_listing

pytestmark = pytest.mark.lab

# -- negative twins: break the control on a converged host and see its check fail ------------

# Deletes the input rules whose listing matches a pattern (by their handles).
DELETE_RULES = ("nft -a list chain inet govbaseline input | awk '/%s/ {print $NF}' | "
                "xargs -r -n1 nft delete rule inet govbaseline input handle")

# Each break with the words its check's failure must contain. Deleting the whole table breaks every
# other check too, so it is twinned on its own.
BREAKS = {
    "test_only_declared_ports_are_open": (["nft insert rule inet govbaseline input tcp dport 47999 accept"],
                                          "[47999] are accepted but not declared"),
    "test_undeclared_port_unreachable_from_outside": ([], "the firewall let it through"),
    "test_ruleset_loaded_at_boot": (["systemctl disable nftables"], "nftables.service is not enabled"),
    "test_ssh_only_from_management_networks": (["nft insert rule inet govbaseline input tcp dport 22 accept"],
                                               "SSH is accepted from anywhere"),
    "test_icmp_echo_rate_limited": (["nft insert rule inet govbaseline input icmp type echo-request accept"],
                                    "echo requests are accepted without a rate limit"),
    "test_new_connection_flood_guard": ([DELETE_RULES % "@flood_v6"], "per-client new-connection limits missing"),
    "test_dropped_packets_logged_with_limit": ([DELETE_RULES % "log prefix"], "dropped packets are not logged"),
}


def test_every_firewall_check_fails_for_its_own_reason_when_broken(ansible_lab, tmp_path):
    assert_checks_fail_when_broken_together(ansible_lab, tmp_path, BREAKS, repair_tags="firewall")


def test_default_deny_check_fails_without_the_table(ansible_lab, tmp_path):
    assert_checks_fail_when_broken_together(
        ansible_lab, tmp_path, {"test_default_deny_inbound_and_forward": (["nft delete table inet govbaseline"],
                                                                          "is not loaded")},
        repair_tags="firewall")


def test_quoted_ports_are_applied_and_judged_as_numbers(ansible_lab, tmp_path):
    """Issue 17, kind 2: ports quoted as other firewall roles write them (``"443"``) converge to the
    same ruleset, and the checks judge the numbers the engines applied, not the inventory's strings."""
    inventory = inventory_with(ansible_lab, tmp_path, firewall_allowed_tcp_ports=["80", "443"], firewall_ssh_port="22")
    result = run_ansible(inventory, tags="fw-01", stream=False)
    assert result.ok, result.output[-3000:]
    assert changed_count(result) == 0, "quoted ports changed:\n" + "\n".join(changed_steps(result.output))
    host = ansible_lab.hosts()[0]
    outcome = verify(inventory, tmp_path / "quoted", controls=["FW-01", "FW-02", "VULN-02", "IDS-01"])
    for control in ("FW-01", "FW-02", "VULN-02", "IDS-01"):
        assert outcome.status(host.name, control) == "pass", (control, outcome.output[-3000:])


# -- lockout rollback --------------------------------------------------------------------------


def ansible_ping(inventory, host: str) -> bool:
    proc = subprocess.run([tool("ansible"), "-i", str(inventory), host, "-m", "ansible.builtin.ping",
                           "-T", "5"], capture_output=True, text=True, env=ansible_env(), check=False)
    return proc.returncode == 0


def test_ruleset_that_cuts_ssh_is_rolled_back(ansible_lab):
    host = ansible_lab.hosts()[1]
    # The known-good ruleset first (an earlier test may have left the host's firewall changed).
    assert run_ansible(ansible_lab.inventory, tags="firewall", limit=host.name, stream=False).ok
    good = table_listing(ansible_lab, host)
    cutting = ("table inet govbaseline\ndelete table inet govbaseline\n"
               "table inet govbaseline {\n chain input {\n  type filter hook input priority filter; policy drop;\n"
               "  iif \"lo\" accept\n }\n}\n")
    args = f"table='inet govbaseline' rollback_timeout=15 content='{cutting}'"
    load = subprocess.run([tool("ansible"), "-i", str(ansible_lab.inventory), host.name,
                           "-m", "govbaseline.baseline.nftables_table", "-a", args],
                          capture_output=True, text=True, env=ansible_env(), check=False)
    assert load.returncode == 0 and "CHANGED" in load.stdout, load.stdout + load.stderr
    subprocess.run([tool("ansible"), "-i", str(ansible_lab.inventory), host.name, "-m", "meta",
                    "-a", "reset_connection"], capture_output=True, env=ansible_env(), check=False)
    assert not ansible_ping(ansible_lab.inventory, host.name), "the cutting ruleset did not cut SSH"
    deadline = time.monotonic() + 60
    while not ansible_ping(ansible_lab.inventory, host.name):
        assert time.monotonic() < deadline, "the host did not roll back within 60 seconds"
        time.sleep(2)
    assert table_listing(ansible_lab, host) == good
