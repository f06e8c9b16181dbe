"""Checks for the firewall controls FW-01, FW-02 and FW-03 (role ``firewall``)."""

from __future__ import annotations

import ipaddress
import time

import pytest

from govbaseline.checks import nft

# A port no baseline opens; a listener is started on it to prove the drop, not just silence.
CANARY_PORT = 47999


def live_table(host, table: str):
    """The firewall role's loaded table ``table`` (roles/firewall/vars ``__firewall_nft_table``)."""
    out = host.run("nft -j list table %s %s", *table.split())
    assert out.rc == 0, f"table {table} is not loaded: {out.stderr.strip()}"
    return nft.parse(out.stdout)


def declared_ports(hostvars, proto):
    return set(hostvars[f"firewall_allowed_{proto}_ports"])


@pytest.mark.control("FW-01")
def test_default_deny_inbound_and_forward(host, hostvars):
    table = live_table(host, hostvars["__firewall_nft_table"])
    assert table.policy("input") == "drop", "inbound policy is not drop"
    assert table.policy("forward") == "drop", "forward policy is not drop"


@pytest.mark.control("FW-01")
def test_only_declared_ports_are_open(host, hostvars):
    table = live_table(host, hostvars["__firewall_nft_table"])
    ssh = hostvars["firewall_ssh_port"]
    for proto in ("tcp", "udp"):
        allowed = declared_ports(hostvars, proto) | ({ssh} if proto == "tcp" else set())
        for rule in table.input_rules():
            if rule.verdict == "accept" and rule.ports(proto):
                extra = rule.ports(proto) - allowed
                assert not extra, f"{proto} ports {sorted(extra)} are accepted but not declared: {rule.text}"


@pytest.mark.control("FW-01")
def test_ruleset_loaded_at_boot(host, hostvars):
    assert host.service(hostvars["__firewall_service_name"]).is_enabled, \
        "nftables.service is not enabled: the ruleset is lost at reboot"
    path = hostvars["firewall_config_path"]
    check = host.run("nft -c -f %s", path)
    assert check.rc == 0, f"{path} does not load: {check.stderr.strip()}"
    text = host.file(path).content_string
    assert f"table {hostvars['__firewall_nft_table']} {{" in text and "policy drop" in text, \
        f"{path} does not define the default-deny table"


@pytest.mark.control("FW-01")
@pytest.mark.outside
def test_undeclared_port_unreachable_from_outside(host, hostvars, probe):
    """A listener on an undeclared port is reachable on the host itself but not from outside."""
    address = hostvars.get("ansible_host", hostvars.get("inventory_hostname"))
    family = "AF_INET6" if ":" in address else "AF_INET"
    listener = (
        "import socket,time\n"
        f"s=socket.socket(socket.{family})\n"
        "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
        f"s.bind(('',{CANARY_PORT})); s.listen(8); s.settimeout(20)\n"
        "end=time.time()+20\n"
        "while time.time()<end:\n"
        " try: s.accept()[0].close()\n"
        " except OSError: pass\n"
    )
    pid = host.run("timeout 25 python3 -c %s >/dev/null 2>&1 & echo $!", listener).stdout.strip()
    spec = f"tcp://[::]:{CANARY_PORT}" if ":" in address else f"tcp://0.0.0.0:{CANARY_PORT}"
    try:
        for _ in range(50):
            if host.socket(spec).is_listening:
                break
            time.sleep(0.1)
        assert host.socket(spec).is_listening, "the canary listener did not start"
        assert not probe.connects(address, CANARY_PORT), (
            f"port {CANARY_PORT} (not declared) answered {probe.where}: the firewall let it through")
        ssh = hostvars["firewall_ssh_port"]
        assert probe.connects(address, ssh), f"SSH port {ssh} did not answer {probe.where}, a management address"
    finally:
        host.run("kill %s 2>/dev/null || true", pid)


@pytest.mark.control("FW-02")
def test_ssh_only_from_management_networks(host, hostvars):
    table = live_table(host, hostvars["__firewall_nft_table"])
    ssh = hostvars["firewall_ssh_port"]
    allowed = [ipaddress.ip_network(c) for c in hostvars["firewall_management_cidrs"]]
    ssh_rules = [r for r in table.input_rules() if r.verdict == "accept" and ssh in r.ports("tcp")]
    assert ssh_rules, f"no rule accepts SSH on port {ssh}"
    for rule in ssh_rules:
        sources = rule.sources()
        assert sources, f"SSH is accepted from anywhere: {rule.text}"
        outside = [s for s in sources if not any(s.version == a.version and s.subnet_of(a) for a in allowed)]
        assert not outside, f"SSH is accepted from {outside}, outside firewall_management_cidrs"


@pytest.mark.control("FW-03")
def test_icmp_echo_rate_limited(host, hostvars):
    table = live_table(host, hostvars["__firewall_nft_table"])
    echo = [r for r in table.input_rules() if r.verdict == "accept" and "echo-request" in r.text]
    if hostvars["firewall_icmp_rate_per_second"] == 0:
        assert not echo, "ping is answered although firewall_icmp_rate_per_second is 0"
    else:
        assert echo, "echo requests are not accepted at all"
    for rule in echo:
        assert rule.has("limit"), f"echo requests are accepted without a rate limit: {rule.text}"


@pytest.mark.control("FW-03")
def test_new_connection_flood_guard(host, hostvars):
    table = live_table(host, hostvars["__firewall_nft_table"])
    families = {r.per_source_limit() for r in table.input_rules() if r.verdict == "drop"} - {None}
    assert families == {"ip", "ip6"}, f"per-client new-connection limits missing for {sorted({'ip', 'ip6'} - families)}"


@pytest.mark.control("FW-03")
def test_dropped_packets_logged_with_limit(host, hostvars):
    if hostvars["firewall_log_drops_per_minute"] == 0:
        pytest.skip("drop logging is turned off (firewall_log_drops_per_minute: 0)")
    table = live_table(host, hostvars["__firewall_nft_table"])
    logs = [r for r in table.input_rules() if r.has("log")]
    assert logs, "dropped packets are not logged"
    assert all(r.has("limit") for r in logs), "drop logging has no rate limit"
    assert any(hostvars["firewall_log_prefix"] in r.text for r in logs), "drop log lines lack the configured prefix"
