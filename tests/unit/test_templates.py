"""Both engines write the same bytes, and what they write is a valid nftables ruleset."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from govbaseline import templating, validation
from govbaseline.deploys import firewall as firewall_deploy
from govbaseline.paths import ANSIBLE_CFG, PLAYBOOKS_DIR, ROLES_DIR

CASES = {
    "ipv4-only": {"firewall_management_cidrs": ["192.0.2.0/24"]},
    "dual-stack-with-services": {"firewall_management_cidrs": ["192.0.2.0/24", "2001:db8::/64"],
                                 "firewall_allowed_tcp_ports": [443, 80, 80], "firewall_allowed_udp_ports": [53],
                                 "firewall_icmp_rate_per_second": 0, "firewall_log_drops_per_minute": 0},
}
INTERNAL = firewall_deploy.os_vars()


def render(case):
    values = validation.validated_vars("firewall", CASES[case])
    return templating.render("firewall", "nftables.conf.j2", {**values, **INTERNAL})


@pytest.mark.parametrize("case", CASES)
def test_pyinfra_rendering_equals_ansible_rendering(case, tmp_path):
    values = validation.validated_vars("firewall", CASES[case])
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps({**values, **INTERNAL}))
    dest = tmp_path / "ansible.nft"
    bindir = Path(sys.executable).parent
    proc = subprocess.run(
        [str(bindir / "ansible"), "localhost", "-c", "local", "-i", "localhost,", "--playbook-dir", str(PLAYBOOKS_DIR),
         "-m", "ansible.builtin.template", "-e", f"ansible_python_interpreter={sys.executable}",
         "-e", f"@{extra}", "-e", f"@{PLAYBOOKS_DIR / 'group_vars' / 'all.yml'}",
         "-a", f"src={ROLES_DIR / 'firewall' / 'templates' / 'nftables.conf.j2'} dest={dest}"],
        capture_output=True, text=True, env=dict(os.environ, ANSIBLE_CONFIG=str(ANSIBLE_CFG)), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert render(case) == dest.read_text()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="nft -c needs root and nftables")
@pytest.mark.parametrize("case", CASES)
def test_rendered_ruleset_is_valid_nftables(case, tmp_path):
    path = tmp_path / "ruleset.nft"
    path.write_text(render(case))
    proc = subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_rendering_carries_the_declared_values():
    text = render("dual-stack-with-services")
    assert "tcp dport { 80, 443 } accept" in text
    assert "ip6 saddr { 2001:db8::/64 } tcp dport 22 accept" in text
    assert "echo-request" not in text
    assert " log prefix" not in text
