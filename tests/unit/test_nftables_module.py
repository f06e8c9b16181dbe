"""The nftables_table module's pure parts, shared with the pyinfra operation."""

from __future__ import annotations

from govbaseline.deploys.nftables import NFT


def test_decide_reports_why_a_load_is_needed():
    assert NFT.decide("A", "A", "L", "L") is None
    assert "file differs" in NFT.decide("A", "B", "L", "L")
    assert "not loaded" in NFT.decide("A", "A", None, "L")
    assert "drifted" in NFT.decide("A", "A", "L2", "L")
    assert "drifted" in NFT.decide("A", "A", "L", None)


def test_rollback_restores_the_table_and_the_file():
    text = NFT.rollback_ruleset("inet govbaseline", "table inet govbaseline {\n}\n")
    assert text.startswith("table inet govbaseline\ndelete table inet govbaseline\n")
    argv = NFT.rollback_command("inet govbaseline", "/etc/nftables.conf", 60)
    assert argv[:2] == ["systemd-run", "--quiet"]
    assert "60s" in argv
    assert "/var/lib/govbaseline/nftables/inet-govbaseline.rollback" in argv[-1]
    assert "/etc/nftables.conf.govbaseline-rollback" in argv[-1]


def test_the_rollback_unit_is_outside_the_sandbox_of_govbaseline_services():
    """SYS-10's drop-in applies to every govbaseline-*.service; in it (local sockets only) nft could
    not load the old ruleset back, and a ruleset that cut SSH would stay: found by the lab's lockout
    test (tests/lab/test_firewall_e2e.py)."""
    import yaml

    from govbaseline.paths import ROLES_DIR

    dropin = yaml.safe_load((ROLES_DIR / "system" / "vars" / "main.yml").read_text())["__system_sandbox_dropin"]
    prefix = dropin.split("/")[-2].removesuffix(".service.d")  # "govbaseline-"
    assert not NFT.ROLLBACK_UNIT.startswith(prefix), NFT.ROLLBACK_UNIT
    assert NFT.rollback_command("inet govbaseline", "/etc/nftables.conf", 60)[4] == NFT.ROLLBACK_UNIT
