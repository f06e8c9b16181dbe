"""An IPv6-only web server through the whole baseline, and a host no role can find its way on.

Issue 17, kind 5: a host with no IPv4 default route stopped ``apply --tags ids-01`` with a Jinja
error (``No first item, sequence was empty``) after five roles had changed it. What a role derives
from the host is now decided in the first step (govbaseline.hostfacts): Suricata listens on the
interface of the IPv6 default route, and a host with no default route at all is refused, naming
ids_suricata_interface, before anything changes. One lab (one web host, IPv6-only) for the module.
"""

from __future__ import annotations

import json

import pytest

from govbaseline.engines import apply, changed_count
from govbaseline.verify import verify
from tests.lab.conftest import (
    LAB_PREFIX,
    assert_checks_fail_when_broken_together,
    assert_refused_without_change,
    changed_steps,
    expected_status,
    implemented_controls,
    sh,
)

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def v6_lab(lab_factory):
    """One web host without an IPv4 default route (IPv6 default route only), converged by Ansible."""
    lab = lab_factory(f"{LAB_PREFIX}-v6", hosts=1, ipv6=True)
    lab.ipv6_only(lab.hosts()[0])
    first = apply(lab.inventory, engine="ansible", stream=False)
    if not first.ok:
        pytest.fail(f"first converge of the IPv6-only host failed:\n{first.output[-4000:]}")
    yield lab
    lab.down()  # its hosts go with the module, not at the end of the session


def routes(lab, host, family: str) -> list[dict]:
    return json.loads(sh(lab, host, f"ip -j {family} route show default") or "[]")


def test_the_whole_baseline_converges_and_verifies_on_an_ipv6_only_host(v6_lab, tmp_path):
    host = v6_lab.hosts()[0]
    assert routes(v6_lab, host, "-4") == [] and routes(v6_lab, host, "-6")[0]["dev"] == "eth0"
    again = apply(v6_lab.inventory, engine="ansible", stream=False)
    assert again.ok and changed_count(again) == 0, "\n".join(changed_steps(again.output)) or again.output[-3000:]
    assert "  - interface: eth0\n" in sh(v6_lab, host, "cat /etc/suricata/suricata.yaml")
    outcome = verify(v6_lab.inventory, report_dir=tmp_path / "report", forks=4)
    wrong = {c: outcome.status(host.name, c) for c in implemented_controls()
             if outcome.status(host.name, c) != expected_status(v6_lab, host, c)}
    assert not wrong, (wrong, outcome.output[-3000:])
    evidence = json.dumps(outcome.data["hosts"][host.name]["controls"]["IDS-01"])
    assert "Suricata captures on eth0" in evidence


def test_apply_tags_ids_01_works_on_an_ipv6_only_host(v6_lab):
    """The issue's example: it died in roles/ids/tasks/suricata.yml with a Jinja error."""
    result = apply(v6_lab.inventory, engine="ansible", tags="ids-01", stream=False)
    assert result.ok, result.output[-3000:]
    assert "No first item" not in result.output and changed_count(result) == 0, result.output[-3000:]


def test_the_capture_check_fails_when_suricata_runs_on_another_interface(v6_lab, tmp_path):
    """The twin of IDS-01's new capture check: the configuration names the IPv6 route's eth0 again,
    but the running Suricata still captures on lo (restarted with another one, the file put back)."""
    conf = "/etc/suricata/suricata.yaml"
    # Until Suricata's command socket answers (it loads its rules first).
    ready = "for i in $(seq 90); do suricatasc -c uptime >/dev/null 2>&1 && break; sleep 1; done"
    breaks = {"test_suricata_inspects_the_public_interface_with_the_shipped_rules": (
        [f"sed -i 's/^  - interface: eth0$/  - interface: lo/' {conf} && systemctl restart suricata && {ready} "
         f"&& sed -i 's/^  - interface: lo$/  - interface: eth0/' {conf}"],
        "Suricata captures on lo, not the public eth0")}
    # A converge finds the file as it wants it and does not restart Suricata: the restart is the repair.
    assert_checks_fail_when_broken_together(v6_lab, tmp_path, breaks, repair_tags="ids-01",
                                            cleanup=[f"systemctl restart suricata && {ready}"])


def test_pyinfra_finds_nothing_to_change_on_the_ipv6_only_host(v6_lab):
    """pyinfra derives the same interface from the same routes: the host Ansible converged is as it wants it."""
    result = apply(v6_lab.inventory, engine="pyinfra", stream=False)
    assert result.ok, result.output[-3000:]
    assert changed_count(result) == 0, "\n".join(changed_steps(result.output))


@pytest.mark.parametrize("engine", ["ansible", "pyinfra"])
def test_a_host_without_any_default_route_is_refused_before_any_change(v6_lab, tmp_path, engine):
    host = v6_lab.hosts()[0]
    gateway6 = routes(v6_lab, host, "-6")[0]["gateway"]
    v6_lab.without_default_route(host)
    try:
        assert_refused_without_change(v6_lab, tmp_path, engine, {}, [
            "no default route (IPv4 or IPv6)", "set ids_suricata_interface to it (this host has eth0)"])
    finally:
        sh(v6_lab, host, f"ip -6 route replace default via {gateway6} dev eth0")
