"""Start, list and remove lab hosts, and write the inventory that reaches them over SSH."""

from __future__ import annotations

import concurrent.futures
import hashlib
import ipaddress
import json
import os
import secrets
import shlex
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import urllib.parse
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from govbaseline import eicar
from govbaseline.lab.ca import LabCA
from govbaseline.lab.image import DEFAULT_DISTRO, LABEL, debian_mirror, ensure_image
from govbaseline.lab.podman import PodmanError, podman, podman_json
from govbaseline.paths import state_dir

BOOT_TIMEOUT = 90.0
MAX_VMS = 4  # about 1 GiB of memory each, and QEMU's emulation is CPU-bound
VM_COMMAND_TIMEOUT = 600.0  # seconds a command over SSH on a VM host may take (an apt run under TCG)
FIRST_HOST_OFFSET = 10
SINK_OFFSET = 5
SINK_SPOOL = "/var/lib/govbaseline-sink"
SYSLOG_PORT = 6514
SINK_WEB_PORT = 8025  # the sink's HTTP port: webhook (POST) and files (GET)
SINK_GIT_PORT = 8443  # the sink's HTTPS port: git repositories, read-only ("dumb" HTTP protocol)
BACKUP_PORT = 8000  # the sink's restic REST server (the lab's backup server)
# rsyslog on the sink: a TLS syslog listener (RFC 5425) writing what it receives to one file.
SINK_RSYSLOG = f"""global(
  DefaultNetstreamDriver="gtls"
  DefaultNetstreamDriverCAFile="/etc/govbaseline-sink/ca.pem"
  DefaultNetstreamDriverCertFile="/etc/govbaseline-sink/cert.pem"
  DefaultNetstreamDriverKeyFile="/etc/govbaseline-sink/key.pem"
)
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")
ruleset(name="govbaseline_remote") {{
  action(type="omfile" file="{SINK_SPOOL}/syslog/remote.log")
}}
input(type="imtcp" port="{SYSLOG_PORT}" ruleset="govbaseline_remote")
"""
SINK_UNIT = f"""[Unit]
Description=govbaseline lab sink: SMTP and webhook receiver for the tests
After=network-online.target

[Service]
ExecStart=/usr/bin/python3 /usr/local/lib/govbaseline-sink/sink.py {SINK_SPOOL}
Restart=on-failure

[Install]
WantedBy=multi-user.target
"""

NTS_KE_PORT = 4460  # the sink's NTS key establishment (RFC 8915); NTP itself on 123/udp
# The lab's time server (SYS-06's servers): the machine's clock, served by chrony over NTS with a
# certificate of the lab CA. A container cannot set the clock (no CAP_SYS_TIME): chronyd runs with -x
# and serves the clock it reads, as the role's container drop-in does for a client.
SINK_CHRONY = """# Written by govbaseline's lab: the lab's NTP/NTS server.
local stratum 8
allow {subnet}
ntsserverkey /etc/chrony/govbaseline-sink.key
ntsservercert /etc/chrony/govbaseline-sink.crt
ntsdumpdir /var/lib/chrony
driftfile /var/lib/chrony/chrony.drift
"""
SINK_CHRONY_DROPIN = """[Unit]
ConditionCapability=

[Service]
ExecStart=
ExecStart=!/usr/sbin/chronyd $DAEMON_OPTS -x
"""


class LabError(RuntimeError):
    """A lab host could not be made or reached; the message says which and why."""


@dataclass(frozen=True)
class LabHost:
    name: str
    address: str
    container: str
    distro: str
    kind: str = "web"  # "web": a baseline host in group webservers; "sink": the lab's receiver
    machine: str = "container"  # "container": a podman container; "vm": a QEMU virtual machine (lab/vm.py)


class Lab:
    """One named lab: a private podman network and the hosts on it.

    Everything the lab creates carries the label ``govbaseline.lab=<name>``, so a lab left behind
    by a killed run is found and removed before new hosts start.
    """

    def __init__(self, name: str = "default", distro: str = DEFAULT_DISTRO, subnet: str | None = None,
                 ipv6: bool = False):
        if not name.replace("-", "").isalnum():
            raise ValueError(f"lab name {name!r} must be letters, digits and dashes")
        self.name = name
        self.distro = distro
        self.dir = state_dir() / "labs" / name
        self.network = f"govbaseline-{name}"
        self.subnet = ipaddress.ip_network(subnet or self._default_subnet())
        # ipv6: the lab network has an IPv6 (ULA) subnet too, and its hosts an IPv6 default route, so
        # a host can be made IPv6-only (``ipv6_only``) while the controller still reaches it on-link.
        self.subnet6 = ipaddress.ip_network(self._default_subnet6()) if ipv6 else None

    def _default_subnet(self) -> str:
        # A stable /24 per lab name inside 10.213.0.0/16, so two labs can run side by side.
        return f"10.213.{zlib.crc32(self.name.encode()) % 200 + 20}.0/24"

    def _default_subnet6(self) -> str:
        # A stable ULA /64 per lab name (RFC 4193 range), beside the IPv4 one.
        return f"fd00:213:{zlib.crc32(self.name.encode()) % 0xffff:x}::/64"

    @property
    def key(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    @property
    def inventory(self) -> Path:
        return self.dir / "inventory.yml"

    @property
    def gateway(self) -> str:
        """The controller's address as the lab hosts see it."""
        return str(self.subnet.network_address + 1)

    # -- lifecycle -----------------------------------------------------------------------------

    def up(self, hosts: int = 1, distro: str | None = None, vm: bool = False) -> list[LabHost]:
        """Start ``hosts`` web servers and the sink on a new private network, removing this lab's
        old hosts first; ``vm``: the web servers are virtual machines (the sink stays a container)."""
        if not 1 <= hosts <= (MAX_VMS if vm else 50):
            raise ValueError(f"--hosts must be between 1 and {MAX_VMS if vm else 50}{' with --vm' if vm else ''}, "
                           f"not {hosts}")
        distro = distro or self.distro
        self.down()
        image = ensure_image(distro)
        if vm:
            if self.subnet6 is not None:
                raise ValueError("VM hosts get an IPv4 address only (ip= on the kernel command line): "
                               "make the IPv6 lab with containers")
            try:
                return self._up_vms(hosts, distro, image)
            except BaseException:
                # A VM that failed to boot keeps two emulated CPUs busy until stopped: stop it now.
                from govbaseline.lab import vm as vms

                vms.stop_all(self.name)
                raise
        self._prepare()
        made = [self._start(i, image, distro) for i in range(1, hosts + 1)]
        # The sink runs the lab's distribution too: it is the lab's backup server, restic's REST
        # server on Debian 13 and the SFTP fallback on Debian 12.
        sink = self._start(0, image, distro)
        self._wait([*made, sink])
        self._update(made)
        self._start_sink(sink)
        self._write_known_hosts([*made, sink])
        self._write_inventory(made, sink)
        self._write_hosts([*made, sink])
        return made

    def _prepare(self) -> None:
        """The lab's folder, a fresh CA, its SSH key and its labelled private network."""
        self.dir.mkdir(parents=True, exist_ok=True)
        # A fresh CA for every incarnation of the lab: nothing issued by an older one stays trusted.
        shutil.rmtree(self.dir / "ca", ignore_errors=True)
        self._ensure_key()
        ipv6 = ["--ipv6", "--subnet", str(self.subnet6)] if self.subnet6 else []
        podman("network", "create", "--subnet", str(self.subnet), *ipv6, "--label", f"{LABEL}={self.name}",
               self.network)

    def _up_vms(self, hosts: int, distro: str, image: str) -> list[LabHost]:
        from govbaseline.lab import vm

        base = vm.ensure_base(distro)
        accel = vm.accelerator(base)
        print(f"lab: VM hosts run under {'KVM' if accel == 'kvm' else 'QEMU software emulation (TCG)'}", flush=True)
        self._prepare()
        # The sink first: its container brings the network's bridge up, which the VMs' taps join. The
        # VMs boot while the sink's systemd starts.
        sink = self._start(0, image, distro)
        bridge = podman_json("network", "inspect", self.network)[0]["network_interface"]
        made = []
        for index in range(1, hosts + 1):
            name = f"{self.name}-{index}"
            address = str(self.subnet.network_address + FIRST_HOST_OFFSET + index - 1)
            vm.Machine(self.name, name, self.dir / "vms").start(
                base, accel, bridge, address, self.subnet.prefixlen, self.gateway,
                (self.key.with_suffix(".pub")).read_text(), index)
            made.append(LabHost(name=name, address=address, container="", distro=distro, kind="web", machine="vm"))
        self._write_hosts([*made, sink])
        self._wait([sink])
        self._wait_vms(made)
        self._write_known_hosts([*made, sink])
        self._update(made)
        self._start_sink(sink)
        self._write_inventory(made, sink)
        return made

    def _machine(self, host: LabHost) -> Any:
        from govbaseline.lab import vm

        return vm.Machine(self.name, host.name, self.dir / "vms")

    def _wait_vms(self, hosts: list[LabHost]) -> None:
        """Wait until every VM printed its host key, answers SSH with it and has finished booting."""
        from govbaseline.lab import vm

        deadline = time.monotonic() + vm.BOOT_TIMEOUT
        pending = list(hosts)
        last_error = ""
        while pending:
            for host in list(pending):
                machine = self._machine(host)
                if not machine.running():
                    raise LabError(f"lab VM {host.name} stopped while booting; its console: {machine.console}")
                if panic := machine.panic():
                    raise LabError(f"lab VM {host.name}'s kernel panicked while booting ({panic}); "
                                   f"its console: {machine.console}")
                if machine.host_key() and _port_open(host.address, 22):
                    self._write_known_hosts([h for h in hosts if self._machine(h).host_key()])
                    state = self.exec(host, "timeout", "60", "systemctl", "is-system-running", "--wait",
                                      check=False)
                    if state.stdout.decode().strip() in ("running", "degraded"):
                        pending.remove(host)
                    elif state.returncode == 255:  # ssh's own failure, not the host's answer
                        last_error = f"; ssh to {host.name}: {state.stderr.decode(errors='replace').strip()[-300:]}"
            if pending and time.monotonic() > deadline:
                raise LabError(f"lab VM(s) {', '.join(h.name for h in pending)} did not boot in "
                               f"{vm.BOOT_TIMEOUT:.0f}s; consoles in {self.dir / 'vms'}{last_error}")
            time.sleep(1)

    def reboot(self, host: LabHost, scheduled_in: float | None = None) -> float:
        """Reboot a VM host (``systemctl reboot``) and wait until it has booted again: a new boot id,
        SSH answering with its pinned key, systemd done starting. With ``scheduled_in`` (seconds), the
        host reboots itself (a scheduled shutdown): wait that long more, issuing nothing. Returns the
        seconds until it was back; LabError when it stopped, panicked or did not come back in time."""
        from govbaseline.lab import vm

        if host.machine != "vm":
            raise LabError(f"{host.name} is a container: it shares the controller's kernel and cannot reboot")
        start = time.monotonic()
        before = self.exec(host, "cat", "/proc/sys/kernel/random/boot_id").stdout
        machine = self._machine(host)
        console_before = machine.console_size()
        if scheduled_in is None:
            self.exec(host, "systemctl", "reboot", check=False)
        deadline = start + (scheduled_in or 0) + vm.BOOT_TIMEOUT
        went_down = False
        while time.monotonic() < deadline:
            time.sleep(2)
            if not machine.running():
                raise LabError(f"lab VM {host.name} stopped instead of rebooting; its console: {machine.console}")
            if panic := machine.panic(since=console_before):
                raise LabError(f"lab VM {host.name}'s kernel panicked in the reboot ({panic}); "
                               f"its console: {machine.console}")
            now = self.exec(host, "cat", "/proc/sys/kernel/random/boot_id", check=False)
            went_down = went_down or now.returncode != 0 or now.stdout != before
            if now.returncode == 0 and now.stdout != before:
                state = self.exec(host, "timeout", "60", "systemctl", "is-system-running", "--wait", check=False)
                if state.stdout.decode().strip() in ("running", "degraded"):
                    return time.monotonic() - start
        if not went_down:
            raise LabError(f"lab VM {host.name} did not reboot in {deadline - start:.0f}s: the same boot still answers")
        raise LabError(f"lab VM {host.name} did not come back from a reboot in {deadline - start:.0f}s")

    def _write_hosts(self, hosts: list[LabHost]) -> None:
        (self.dir / "hosts.json").write_text(json.dumps([asdict(h) for h in hosts], indent=2))

    def _update(self, hosts: list[LabHost]) -> None:
        """Fetch the package lists and install the updates published since the image was built, on
        every host at once: a lab host starts as a freshly installed server would, without pending
        security updates (or the self-audit warns of them) and with current lists (so the roles
        install current versions). The patching tests make an update pending on purpose."""
        script = ("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get dist-upgrade -y -qq "
                  "-o Dpkg::Options::=--force-confold >/dev/null")

        def update(host: LabHost) -> None:
            proc = self.exec(host, "sh", "-c", script, check=False)
            if proc.returncode != 0:
                raise LabError(f"updating {host.name} failed: {proc.stderr.decode()[-1500:]}")

        with concurrent.futures.ThreadPoolExecutor(max_workers=len(hosts)) as pool:
            list(pool.map(update, hosts))

    def down(self) -> None:
        """Remove this lab's hosts and network, including any left by a killed run."""
        from govbaseline.lab import vm

        vm.stop_all(self.name)  # before the network: their taps are on its bridge
        shutil.rmtree(self.dir / "vms", ignore_errors=True)
        for socket_path in self.dir.glob("ssh-*"):  # the VMs' multiplexed SSH connections
            socket_path.unlink(missing_ok=True)
        stale = podman_json("ps", "-a", "--filter", f"label={LABEL}={self.name}", "--format", "json")
        ids = [c["Id"] for c in stale]
        if ids:
            podman("rm", "-f", "-t", "0", *ids)
        nets = podman_json("network", "ls", "--filter", f"label={LABEL}={self.name}", "--format", "json")
        for net in nets:
            podman("network", "rm", "-f", net["name"] if "name" in net else net["Name"], check=False)
        if podman("network", "exists", self.network, check=False).returncode == 0:
            podman("network", "rm", "-f", self.network, check=False)
        for path in (self.inventory, self.known_hosts, self.dir / "hosts.json"):
            path.unlink(missing_ok=True)

    def _all_hosts(self) -> list[LabHost]:
        path = self.dir / "hosts.json"
        if not path.exists():
            return []
        return [LabHost(**h) for h in json.loads(path.read_text())]

    def hosts(self) -> list[LabHost]:
        """The baseline hosts (inventory group webservers), without the sink."""
        return [h for h in self._all_hosts() if h.kind == "web"]

    @property
    def sink(self) -> LabHost:
        """The lab's receiver of mail, webhooks and syslog, and its backup server (group backup_servers)."""
        found = [h for h in self._all_hosts() if h.kind == "sink"]
        if not found:
            raise LabError(f"lab {self.name} has no sink host: run `govbaseline lab up --name {self.name}`")
        return found[0]

    def sink_messages(self, kind: str = "mail") -> list[tuple[str, bytes]]:
        """What the sink received, oldest first: "mail" (.eml), "webhook" (.json) or "syslog" (remote.log)."""
        code = ("import json,pathlib,sys\n"
                f"d=pathlib.Path({SINK_SPOOL!r})/{kind!r}\n"
                "print(json.dumps([[p.name,p.read_bytes().decode('utf-8','replace')] "
                "for p in sorted(d.glob('*.*'))]))")
        out = self.exec(self.sink, "python3", "-c", code).stdout.decode()
        return [(name, body.encode()) for name, body in json.loads(out)]

    def publish_repository(self, name: str, bare: Path) -> str:
        """Serve the bare git repository ``bare`` from the sink over HTTPS (certificate of the lab CA),
        replacing an earlier one of the same name; return its URL. ``git update-server-info`` is run
        first: the sink serves files only ("dumb" HTTP protocol)."""
        subprocess.run(["git", "-C", str(bare), "update-server-info"], check=True, capture_output=True)
        target = f"{SINK_SPOOL}/git/{name}.git"
        self.exec(self.sink, "rm", "-rf", target)
        self.exec(self.sink, "mkdir", "-p", f"{SINK_SPOOL}/git")
        podman("cp", str(bare), f"{self.sink.container}:{target}")
        return f"https://{self.sink.address}:{SINK_GIT_PORT}/{name}.git"

    def clear_sink(self) -> None:
        self.exec(self.sink, "sh", "-c", f"rm -f {SINK_SPOOL}/mail/* {SINK_SPOOL}/webhook/*")

    def status(self) -> list[dict[str, str]]:
        rows = podman_json("ps", "-a", "--filter", f"label={LABEL}={self.name}", "--format", "json")
        by_name = {h.container: h for h in self._all_hosts()}
        out = []
        for row in rows:
            name = row["Names"][0]
            host = by_name.get(name)
            out.append({"container": name, "state": row.get("State", "?"),
                        "address": host.address if host else "?", "host": host.name if host else "?"})
        for host in self._all_hosts():
            if host.machine == "vm":
                machine = self._machine(host)
                state = f"running (VM, pid {machine.pid()})" if machine.running() else "stopped (VM)"
                out.append({"container": f"vm {host.name}", "state": state, "address": host.address,
                            "host": host.name})
        return sorted(out, key=lambda r: r["container"])

    # -- helpers -------------------------------------------------------------------------------

    def _ensure_key(self) -> None:
        if not self.key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"govbaseline-lab-{self.name}",
                            "-f", str(self.key)], check=True)
        self.key.chmod(0o600)

    def _start(self, index: int, image: str, distro: str) -> LabHost:
        """Start host ``index`` (1, 2, ...); index 0 is the sink."""
        name = f"{self.name}-{index}" if index else f"{self.name}-sink"
        container = f"govbaseline-{name}"
        offset = FIRST_HOST_OFFSET + index - 1 if index else SINK_OFFSET
        address = str(self.subnet.network_address + offset)
        podman(
            "run", "-d", "--name", container, "--hostname", name,
            "--label", f"{LABEL}={self.name}",
            "--systemd=always", "--cgroupns=host",
            # nftables inside the host needs these; the host keeps its own network namespace.
            "--cap-add", "NET_ADMIN,NET_RAW",
            # As a production container manager should (SYS-12): a container cannot remount them itself.
            "--tmpfs", "/tmp:rw,nodev,nosuid,noexec,mode=1777",
            "--tmpfs", "/var/tmp:rw,nodev,nosuid,noexec,mode=1777",
            "--network", self.network, "--ip", address,
            "-v", f"{self.key}.pub:/root/.ssh/authorized_keys:ro",
            image,
        )
        _own_network_parameters(container)
        return LabHost(name=name, address=address, container=container, distro=distro,
                       kind="web" if index else "sink")

    @property
    def ca(self) -> LabCA:
        return LabCA(self.dir / "ca", self.name)

    def _start_sink(self, sink: LabHost) -> None:
        """Start the SMTP/webhook receiver and the TLS syslog listener on the sink; wait until they answer."""
        cert, key = self.ca.issue(sink.name, dns=[sink.name], ips=[sink.address])
        podman("exec", sink.container, "mkdir", "-p", "/etc/govbaseline-sink", f"{SINK_SPOOL}/syslog")
        for name, text in (("ca.pem", self.ca.pem), ("cert.pem", cert), ("key.pem", key),
                           ("../rsyslog.d/govbaseline-sink.conf", SINK_RSYSLOG)):
            podman("exec", "-i", sink.container, "sh", "-c", f"umask 077; cat > /etc/govbaseline-sink/{name}",
                   input_bytes=text.encode())
        podman("exec", sink.container, "systemctl", "restart", "rsyslog")
        podman("exec", sink.container, "mkdir", "-p", "/usr/local/lib/govbaseline-sink")
        podman("cp", str(Path(__file__).with_name("sink.py")), f"{sink.container}:/usr/local/lib/govbaseline-sink/")
        podman("exec", "-i", sink.container, "sh", "-c", "cat > /etc/systemd/system/lab-sink.service",
               input_bytes=SINK_UNIT.encode())
        # The lab's signature mirror: a ClamAV signature of the EICAR test file (no internet here).
        podman("exec", sink.container, "mkdir", "-p", f"{SINK_SPOOL}/files")
        podman("exec", "-i", sink.container, "sh", "-c", f"cat > {SINK_SPOOL}/files/{eicar.SIGNATURE_FILE}",
               input_bytes=eicar.hsb_signature().encode())
        podman("exec", sink.container, "systemctl", "enable", "--now", "lab-sink.service")
        self._start_time_server(sink, cert, key)
        deadline = time.monotonic() + 30
        while not (_port_open(sink.address, 25) and _port_open(sink.address, SYSLOG_PORT)
                   and _port_open(sink.address, NTS_KE_PORT)):
            if time.monotonic() > deadline:
                log = podman("exec", sink.container, "journalctl", "-u", "lab-sink", "-u", "rsyslog",
                             "--no-pager", "-n", "30", check=False).stdout.decode()
                raise LabError(f"the lab sink on {sink.address} did not start:\n{log}")
            time.sleep(0.2)

    def _start_time_server(self, sink: LabHost, cert: str, key: str) -> None:
        """chrony on the sink serving the lab's hosts over NTS (its key readable by chronyd's own user)."""
        allowed = "\nallow ".join(str(net) for net in (self.subnet, self.subnet6) if net is not None)
        for path, text, mode in (("/etc/chrony/govbaseline-sink.crt", cert, "0644"),
                                 ("/etc/chrony/govbaseline-sink.key", key, "0640"),
                                 ("/etc/chrony/chrony.conf", SINK_CHRONY.format(subnet=allowed), "0644"),
                                 ("/etc/systemd/system/chrony.service.d/60-lab-sink.conf", SINK_CHRONY_DROPIN, "0644")):
            podman("exec", "-i", sink.container, "sh", "-c",
                   f"mkdir -p {shlex.quote(path.rsplit('/', 1)[0])} && umask 077 && cat > {path} && "
                   f"chgrp _chrony {path} && chmod {mode} {path}", input_bytes=text.encode())
        podman("exec", sink.container, "systemctl", "daemon-reload")
        podman("exec", sink.container, "systemctl", "restart", "chrony")

    def _wait(self, hosts: list[LabHost]) -> None:
        deadline = time.monotonic() + BOOT_TIMEOUT
        for host in hosts:
            while True:
                state = podman("exec", host.container, "systemctl", "is-system-running", check=False)
                text = state.stdout.decode().strip()
                if text in ("running", "degraded") and _port_open(host.address, 22):
                    break
                if time.monotonic() > deadline:
                    failed = podman("exec", host.container, "systemctl", "--failed", "--no-legend",
                                    check=False).stdout.decode()
                    raise LabError(f"lab host {host.name} did not boot in {BOOT_TIMEOUT:.0f}s "
                                   f"(systemd says {text or 'nothing'}; failed units: {failed.strip() or 'none'})")
                time.sleep(0.3)

    def _write_known_hosts(self, hosts: list[LabHost]) -> None:
        lines = []
        for host in hosts:
            if host.machine == "vm":
                key = self._machine(host).host_key() or ""  # from its serial console (lab/vm.py)
            else:
                key = podman("exec", host.container, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.decode()
            lines.append(f"{host.address} {' '.join(key.split()[:2])}")
        self.known_hosts.write_text("\n".join(lines) + "\n")

    def _write_inventory(self, hosts: list[LabHost], sink: LabHost) -> None:
        sftp = sink.distro == "debian12"  # Debian 12 has no restic-rest-server: the SFTP fallback
        ssh_args = (f"-o UserKnownHostsFile={self.known_hosts} -o StrictHostKeyChecking=yes "
                    "-o ControlMaster=auto -o ControlPersist=60s")
        inventory = {
            "all": {
                "children": {
                    "webservers": {
                        "hosts": {h.name: {**self._host_vars(h, hosts), **self._tls_vars(h),
                                           **_backup_secrets(sftp)} for h in hosts},
                    },
                    # The sink is the lab's backup server: restic's REST server with a certificate of
                    # the lab CA (Debian 13), or SFTP accounts (Debian 12); the web servers back up to it.
                    "backup_servers": {
                        "hosts": {sink.name: {"ansible_host": sink.address,
                                              **({} if sftp else self._backup_server_vars(sink))}},
                    },
                },
                "vars": {
                    "ansible_user": "root",
                    "ansible_ssh_private_key_file": str(self.key),
                    "ansible_ssh_common_args": ssh_args,
                    "ansible_python_interpreter": "/usr/bin/python3",
                    "govbaseline_lab": self.name,
                    # The lab network is the management network: the controller is its gateway.
                    "firewall_management_cidrs": [str(self.subnet)],
                    # Every host is a web server: HTTP (redirected) and HTTPS are open to all.
                    "firewall_allowed_tcp_ports": [80, 443],
                    # The lab connects as root with a key, so root keeps key-only login.
                    "access_permit_root_login": "prohibit-password",
                    # Alerts go to the lab sink over STARTTLS; its certificate comes from the lab CA.
                    "alerts_smtp_host": sink.address,
                    "alerts_smtp_port": 25,
                    "alerts_smtp_tls": "starttls",
                    "alerts_smtp_ca_cert": self.ca.pem,
                    "alerts_from": f"govbaseline@{self.name}.lab.test",
                    "alerts_recipients": {"low": ["ops@lab.test"], "high": ["security-officer@lab.test"]},
                    "alerts_cert_address": "cert@lab.test",
                    "alerts_webhook_token": "lab-webhook-token",
                    "alerts_webhook_url": f"http://{sink.address}:{SINK_WEB_PORT}/alerts",
                    # Lab tests each wait for an alert of their own, many of one kind within minutes
                    # on one host: flood control would merge them. Its own lab test turns it on
                    # (test_alerts_e2e.py, the 30-ban burst).
                    "alerts_flood_window_minutes": 0,
                    "alerts_flood_max_per_hour": 0,
                    # Logs are forwarded over TLS to the sink, whose certificate the lab CA signed.
                    "audit_log_host": sink.address,
                    "audit_log_host_name": sink.name,
                    "audit_log_port": SYSLOG_PORT,
                    "audit_log_ca_cert": self.ca.pem,
                    # Each host serves HTTPS with a certificate of the lab CA; the checks verify the
                    # chain against it. The web application firewall blocks in the lab.
                    "tls_trusted_ca_cert": self.ca.pem,
                    "tls_waf_mode": "block",
                    # No internet: ClamAV's signatures come from the sink (a signature of the EICAR
                    # test file), scanned at low priority as on a real host.
                    "antivirus_signature_source": "custom",
                    "antivirus_custom_signature_urls": [
                        f"http://{sink.address}:{SINK_WEB_PORT}/files/{eicar.SIGNATURE_FILE}"],
                    # The lab's tests change files on purpose and run the integrity check themselves:
                    # no scheduled check starts in between and alerts on a test's change.
                    "integrity_check_calendar": "monthly",
                    # The clock follows the sink's time server over NTS; its certificate comes from the lab CA.
                    "system_time_servers": [{"name": sink.address, "nts": True}],
                    "system_time_nts_ca_cert": self.ca.pem,
                    **self._backup_vars(sink, sftp),
                },
            }
        }
        header = (f"# Written by `govbaseline lab up` for lab {self.name!r}; rewritten on every `lab up`.\n"
                  "# It holds the lab hosts' TLS keys: root only.\n")
        self.inventory.touch(mode=0o600, exist_ok=True)
        self.inventory.chmod(0o600)
        self.inventory.write_text(header + yaml.safe_dump(inventory, sort_keys=False))

    def _backup_vars(self, sink: LabHost, sftp: bool) -> dict[str, object]:
        if sftp:
            # Backups go to the sink's SFTP accounts; its host key is pinned.
            key = podman("exec", sink.container, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.decode()
            return {"backup_transport": "sftp", "backup_sftp_host": sink.address,
                    "backup_sftp_host_key": " ".join(key.split()[:2])}
        # Backups go to the sink's REST server over HTTPS, verified against the lab CA.
        return {"backup_rest_url": f"https://{sink.address}:{BACKUP_PORT}", "backup_rest_ca_cert": self.ca.pem}

    def _backup_server_vars(self, sink: LabHost) -> dict[str, object]:
        cert, key = self.ca.issue(sink.name, dns=[sink.name], ips=[sink.address])
        return {"backup_server_certificate": cert, "backup_server_private_key": key, "backup_server_port": BACKUP_PORT}

    def _tls_vars(self, host: LabHost) -> dict[str, object]:
        """The host's site name and a certificate for it (and its address) from the lab CA."""
        cert, key = self.ca.issue(host.name, dns=[host.name], ips=[host.address])
        return {"tls_server_names": [host.name], "tls_certificate": cert, "tls_private_key": key}

    @staticmethod
    def _host_vars(host: LabHost, hosts: list[LabHost]) -> dict[str, object]:
        values: dict[str, object] = {"ansible_host": host.address}
        if len(hosts) > 1:
            # Reachability checks run from the next lab host: a real vantage point outside this one.
            values["govbaseline_probe_host"] = hosts[(hosts.index(host) + 1) % len(hosts)].name
            # The last host port-scans the others: well-known ports, databases and a web range, so
            # a scan takes about 20 s (a full 1-65535 scan, the production default, takes hours at
            # a rate the firewall's flood limit lets through).
            values["vulnscan_scanner_host"] = hosts[-1].name
            values["vulnscan_port_scan_ports"] = "1-100,443,3306,5432,6379,8000-8100,9200,27017"
        return values

    def ipv6_only(self, host: LabHost) -> None:
        """Make ``host`` IPv6-only as far as routing goes: its IPv4 default route is removed, its
        IPv6 one (through the lab's IPv6 gateway) stays. It keeps its on-link IPv4 lab address, so
        the controller and the sink still reach it, as a management network would, and a host route
        to the Debian mirror and the name servers (this machine has no IPv6 way out: an IPv6-only
        server reaches its mirror through an IPv6 proxy or NAT64, which the lab stands in for)."""
        if self.subnet6 is None:
            raise LabError(f"lab {self.name} has no IPv6 subnet: make it with Lab(..., ipv6=True)")
        mirror = urllib.parse.urlsplit(debian_mirror()).hostname or ""
        wanted = {info[4][0] for info in socket.getaddrinfo(mirror, 80, socket.AF_INET)} if mirror else set()
        resolv = self.exec(host, "cat", "/etc/resolv.conf", check=False).stdout.decode().split("\n")
        wanted |= {line.split()[1] for line in resolv if line.startswith("nameserver") and "." in line}
        self.exec(host, "ip", "-4", "route", "flush", "default")
        for address in sorted(wanted):
            if ipaddress.ip_address(address) not in self.subnet:
                self.exec(host, "ip", "-4", "route", "replace", f"{address}/32", "via", self.gateway)
        routes = self.exec(host, "ip", "-j", "-6", "route", "show", "default").stdout.decode().strip()
        if not json.loads(routes or "[]"):
            raise LabError(f"lab host {host.name} has no IPv6 default route: {routes or 'none'}")

    def without_default_route(self, host: LabHost) -> None:
        """Remove every default route of ``host`` (both families); the on-link lab addresses stay."""
        self.exec(host, "ip", "-4", "route", "flush", "default")
        self.exec(host, "ip", "-6", "route", "flush", "default", check=False)

    def exec(self, host: LabHost, *argv: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        """Run a command inside a lab host (for tests that break a control): through podman in a
        container, over SSH (the lab's key, the pinned host key) in a VM."""
        if host.machine == "vm":
            try:
                # stdin from /dev/null: ssh makes its stdin non-blocking, and one killed by the timeout
                # leaves it so for every later process sharing it (Ansible then refuses to run).
                proc = subprocess.run(self.ssh_argv(host, shlex.join(argv)), capture_output=True, check=False,
                                      stdin=subprocess.DEVNULL, timeout=VM_COMMAND_TIMEOUT)
            except subprocess.TimeoutExpired as exc:
                raise LabError(f"{' '.join(argv[:3])} on {host.name} did not end in {VM_COMMAND_TIMEOUT:.0f}s") from exc
            if check and proc.returncode != 0:
                raise LabError(f"{' '.join(argv[:3])} on {host.name} failed ({proc.returncode}): "
                               f"{proc.stderr.decode(errors='replace').strip()[-1500:]}")
            return proc
        try:
            return podman("exec", host.container, *argv, check=check)
        except PodmanError as exc:
            raise LabError(str(exc)) from exc


    def ssh_argv(self, host: LabHost, command: str) -> list[str]:
        """The ``ssh`` command line that runs the shell ``command`` on ``host`` as root, with the lab's
        key and pinned host keys, over one multiplexed connection per host."""
        return ["ssh", "-i", str(self.key), "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                # A VM stopped or rebooting sends no FIN: the multiplexed connection notices within 15 s.
                "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
                "-o", "ControlMaster=auto", "-o", f"ControlPath={self.control_path()}", "-o", "ControlPersist=60s",
                f"root@{host.address}", command]

    def control_path(self) -> str:
        """SSH's ``ControlPath`` for this lab: in a short private folder, because a socket path must fit in
        ``sun_path`` (108 bytes) with ssh's 17-byte temporary suffix, which the lab folder under
        ``~/.local/state`` does not leave room for (a lab named ``molecule-audit`` failed every SSH
        command with "too long for Unix domain socket"). The lab's name is in it, so a master of a removed
        lab is never reused for a new lab's host at the same address.

        Raises LabError when the folder exists but is not a private folder of this user."""
        folder = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()) / f"govbaseline-ssh-{os.getuid()}"
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise LabError(f"{folder} must be a folder of this user with mode 0700 (SSH's control sockets); "
                           "remove it and run again")
        tag = hashlib.sha256(self.name.encode()).hexdigest()[:8]
        return f"{folder}/{tag}-%C"


def _backup_secrets(sftp: bool = False) -> dict[str, str]:
    """A lab host's backup secrets: random for every incarnation of the lab (the inventory is root only)."""
    if not sftp:
        return {"backup_rest_password": secrets.token_hex(24), "backup_repository_password": secrets.token_hex(24)}
    key = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()).decode()
    return {"backup_sftp_private_key": key, "backup_repository_password": secrets.token_hex(24)}


def _port_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def _own_network_parameters(container: str) -> None:
    """Let the host set its own kernel network parameters (the system role's SYS-01), as a machine does.

    The kernel keeps net.* per network namespace and each lab host has its own, but podman mounts
    /proc/sys read-only all the same. /proc/sys/net alone is bind-mounted onto itself read-write in
    the host's mount namespace, from outside (as root, so the mount is not locked): kernel.* and fs.*
    stay read-only, the machine's (the controller's) to set, and a VM host proves those."""
    pid = podman("inspect", "-f", "{{.State.Pid}}", container).stdout.decode().strip()
    done = subprocess.run(["nsenter", "-t", pid, "-m", "sh", "-c",
                           "mount --bind /proc/sys/net /proc/sys/net && mount -o remount,bind,rw /proc/sys/net"],
                          capture_output=True, check=False)
    if done.returncode != 0:
        raise LabError(f"could not make /proc/sys/net writable in {container}: {done.stderr.decode().strip()}")
