"""Checks for brute-force blocking IDS-02 (role ``ids``)."""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
import time
import uuid

import pytest

from govbaseline import hostfacts
from govbaseline.checks import tls_probe
from govbaseline.checks.plugin import Probe
from govbaseline.checks.schedule import alive, period_hours

MERGED_RULES = "/var/lib/suricata/rules/suricata.rules"
# Opens an SSH connection, sends a client identification carrying the marker, reads the server's.
SSH_PROBE = (
    "import socket,sys\n"
    "s=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=10)\n"
    "s.sendall(('SSH-2.0-'+sys.argv[3]+'\\r\\n').encode()); s.recv(256); s.close()\n"
)
SHIPPED = ("sid:9100000;", "sid:9100010;", "sid:9100012;")  # the probe, path traversal, SQL injection


@pytest.mark.control("IDS-01")
def test_suricata_inspects_the_public_interface_with_the_shipped_rules(host, hostvars, evidence):
    unit = host.service(hostvars["__ids_suricata_service"])
    assert unit.is_running and unit.is_enabled, "suricata is not running (and enabled at boot): no traffic is inspected"
    conf = host.file(hostvars["__ids_suricata_conf"])
    assert conf.exists and "Role ids: IDS-01" in conf.content_string, f"{conf.path} is not govbaseline's"
    listening = re.findall(r"^  - interface: (\S+)$", conf.content_string, re.M)
    # The engines' own choice: ids_suricata_interface, else the default route's (IPv4, else IPv6).
    wanted = hostfacts.suricata_interface(hostvars, hostfacts.parse(host.run(hostfacts.OBSERVE).stdout))
    evidence("interface", f"Suricata listens on {', '.join(listening) or 'nothing'}; the public interface is {wanted}")
    assert wanted in listening, f"Suricata listens on {', '.join(listening) or 'nothing'}, not the public {wanted}"
    stats = host.run("suricatasc -c ruleset-stats")
    assert stats.rc == 0 and '"return": "OK"' in stats.stdout, \
        f"Suricata's command socket does not answer: {(stats.stdout + stats.stderr).strip()[-300:]}"
    engine = json.loads(stats.stdout)["message"][0]
    # What Suricata captures on now, from its own socket (the configuration could name one it failed to open).
    ifaces = host.run("suricatasc -c iface-list")
    live = json.loads(ifaces.stdout)["message"].get("ifaces", []) if '"return": "OK"' in ifaces.stdout else []
    evidence("capture", f"Suricata captures on {', '.join(live) or 'nothing'}")
    assert wanted in live, f"Suricata captures on {', '.join(live) or 'nothing'}, not the public {wanted}"
    evidence("rules", f"{engine['rules_loaded']} loaded, {engine['rules_failed']} failed")
    assert engine["rules_loaded"] > 0 and engine["rules_failed"] == 0, \
        f"Suricata loaded {engine['rules_loaded']} rules and failed {engine['rules_failed']}: see suricata.log"
    merged = host.file(MERGED_RULES).content_string if host.file(MERGED_RULES).exists else ""
    missing = [sid for sid in SHIPPED if sid not in merged]
    assert not missing, f"the rules govbaseline ships are not in {MERGED_RULES}: {', '.join(missing)}"
    alive(host, hostvars["__ids_update_unit"], "Suricata rule update",
          period_hours(host, hostvars["ids_suricata_update_calendar"]), hostvars["__ids_update_delay_minutes"],
          evidence)


@pytest.mark.control("IDS-01")
@pytest.mark.outside
def test_suricata_sees_a_probe_and_forwards_alerts(host, hostvars, probe, evidence):
    forwarder = host.service(hostvars["__ids_alerts_unit"])
    assert forwarder.is_running and forwarder.is_enabled, \
        "govbaseline-ids-alerts is not running (and enabled at boot): no IDS alert reaches anyone"
    # A request only the shipped probe rule matches (severity low: recorded, never forwarded).
    marker = f"govbaseline-ids-probe-{uuid.uuid4().hex[:12]}"
    if hostvars["tls_enabled"]:
        plain = 80 in hostvars.get("firewall_allowed_tcp_ports", [])
        how = "http" if plain else "tls"
        tls_probe.http(probe, hostvars, [{"path": f"/{marker}"}], tls=not plain, name=None if plain else
                       f"{marker}.invalid")
    else:  # no web site on this host: an SSH client whose software version carries the marker
        # From the controller: the firewall lets SSH in from the management networks only, and the
        # controller is in them (a run is refused otherwise); the probe host need not be.
        how, probe = "ssh", Probe(where="controller")
        address = str(hostvars.get("ansible_host") or hostvars["inventory_hostname"])
        rc, output = probe.run("python3 -c %s %s %s %s", SSH_PROBE, address, str(hostvars["firewall_ssh_port"]),
                               marker)
        assert rc == 0, f"the SSH probe at {probe.where} failed: {output[-500:]}"
    seen = ""
    for _ in range(20):
        seen = host.run("grep -F %s %s | tail -1", marker, hostvars["__ids_eve"]).stdout.strip()
        if seen:
            break
        time.sleep(1)
    alert = json.loads(seen)["alert"] if seen else {}
    evidence("probe", f"{how} request for {marker} from {probe.where}: "
             f"{alert.get('signature', 'no alert in EVE JSON')}")
    assert alert.get("signature_id") in (9100000, 9100001, 9100002), \
        f"Suricata raised no alert within 20 s for a request the shipped probe rule matches ({marker})"


# The prompt of fail2ban-client's interactive mode, printed before each answer.
PROMPT = "fail2ban> "


def enabled_jails(hostvars) -> list[str]:
    web = hostvars["tls_enabled"]  # the web jails read nginx's logs: off where the tls role is
    wanted = {"sshd": hostvars["ids_ssh_jail"], "nginx-http-auth": hostvars["ids_web_auth_jail"] and web,
              hostvars["__ids_filter_4xx"]: hostvars["ids_web_4xx_jail"] and web}
    return [jail for jail, on in wanted.items() if on]


def ask_fail2ban(host, *questions: str) -> dict[str, str]:
    """fail2ban's answer to ``status`` and to each of ``questions`` (``get <jail> actions``, ...), as
    ``fail2ban-client <question>`` prints it: one interactive client (``fail2ban-client -i``) asks them
    all, where a client per question costs the host about 80 ms of Python start-up each.

    Raises AssertionError when the client cannot reach the server (an unreachable server leaves every
    answer empty: the status, which always names the jails, tells) or does not answer every question."""
    asked = ["status", *questions]
    out = host.run("printf %s " + shlex.quote("".join(f"{q}\n" for q in asked) + "exit\n") + " | fail2ban-client -i")
    # The client prints a banner, then a "fail2ban> " prompt before each answer and one after the last.
    answers = [a.strip() for a in out.stdout.split(PROMPT)[1:len(asked) + 1]]
    assert out.rc == 0 and len(answers) == len(asked) and "Jail list:" in answers[0], \
        f"fail2ban-client cannot reach the server: {(out.stderr or out.stdout).strip()[-300:]}"
    return dict(zip(asked, answers, strict=True))


def running_jails(status: str) -> list[str]:
    """The jails of ``fail2ban-client status``'s answer."""
    found = re.search(r"Jail list:\s*(.*)$", status, re.M)
    return [j.strip() for j in found.group(1).split(",") if j.strip()] if found else []


@pytest.mark.control("IDS-02")
def test_fail2ban_bans_into_its_own_nftables_table(host, hostvars, evidence):
    unit = host.service(hostvars["__ids_service"])
    assert unit.is_running and unit.is_enabled, "fail2ban is not running (and enabled at boot): nothing is banned"
    wanted = enabled_jails(hostvars)
    asked = ("actions", "action nftables table", "action nftables chain_priority")
    answers = ask_fail2ban(host, *[f"get {jail} {q}" for jail in wanted for q in asked])
    jails = running_jails(answers["status"])
    missing = [j for j in wanted if j not in jails]
    assert not missing, f"fail2ban jails not running: {', '.join(missing)} (running: {', '.join(jails) or 'none'})"
    firewall_table = hostvars.get("__firewall_nft_table")  # absent where the firewall role is off
    for jail in wanted:
        actions, table, priority = (answers[f"get {jail} {q}"] for q in asked)
        assert "nftables" in actions, f"jail {jail} does not ban with nftables (actions: {actions})"
        assert hostvars["__ids_action_alert"] in actions, \
            f"jail {jail} raises no alert when it bans (actions: {actions})"
        # Bans go into fail2ban's own table (created at the first ban), never the firewall role's
        # table, which every converge replaces whole. (A drop in any chain of the input hook is final.)
        evidence(f"jail {jail} bans into", f"nftables table inet {table}, input hook priority {priority}")
        assert table and f"inet {table}" != firewall_table, \
            f"jail {jail} bans into the firewall role's table {table}: the next converge would drop every ban"
    if "sshd" in wanted:
        # The SSH filter still reads what this host's sshd logs (OpenSSH 9.8+ logs as sshd-session).
        daemon = "sshd-session" if host.file("/usr/lib/openssh/sshd-session").exists else "sshd"
        line = f"Nov 23 02:11:23 web1 {daemon}[4242]: Invalid user admin from 192.0.2.7 port 50000"
        probe = host.run("fail2ban-regex %s sshd", line)
        evidence("sshd filter against a failed login line", f"{line} -> "
                 f"{'matched' if 'Lines: 1 lines, 0 ignored, 1 matched' in probe.stdout else 'not matched'}")
        assert "1 matched" in probe.stdout, f"fail2ban's sshd filter does not recognise a failed login of {daemon}"


@pytest.mark.control("IDS-02")
def test_management_addresses_are_never_banned(host, hostvars, evidence):
    never = [*hostvars["firewall_management_cidrs"], *hostvars["ids_never_ban_cidrs"]]
    networks = [ipaddress.ip_network(c, strict=False) for c in never]
    problems = []
    wanted = enabled_jails(hostvars)
    answers = ask_fail2ban(host, *[f"get {jail} {q}" for jail in wanted for q in ("ignoreip", "banip")])
    running = running_jails(answers["status"])
    for jail in [j for j in wanted if j in running]:
        ignored = answers[f"get {jail} ignoreip"]
        listed = set(re.findall(r"[0-9A-Fa-f:.]+/\d+|[0-9A-Fa-f:.]{3,}", ignored))
        missing = [c for c in never if c not in listed and c.split("/")[0] not in listed]
        if missing:
            problems.append(f"jail {jail} may ban management addresses {', '.join(missing)}")
        banned = answers[f"get {jail} banip"].split()
        evidence(f"jail {jail}", f"never bans: {' '.join(sorted(listed))}; banned now: {' '.join(banned) or 'none'}")
        for address in banned:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                continue
            if any(ip in net for net in networks if net.version == ip.version):
                problems.append(f"jail {jail} has banned the management address {address}")
    assert not problems, "; ".join(problems)
