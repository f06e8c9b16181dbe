"""Lab fixtures: one lab per engine, converged once per session and shared by every lab test module.

Helpers here break a control on a converged host and see its check fail (the negative twins), and
fingerprint the files the baseline manages, to prove a refused run changed nothing.
"""

from __future__ import annotations

import email
import os
import re
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from govbaseline.catalogue import load_catalogue
from govbaseline.engines import apply, changed_count, run_ansible
from govbaseline.lab import Lab
from govbaseline.verify import verify

# Lab names start with this ("t-ansible", ...); another prefix lets a second test run share the machine.
LAB_PREFIX = os.environ.get("GOVBASELINE_TEST_LAB_PREFIX", "t")

# Everything the baseline writes, hashed; a refused run must leave this unchanged.
MANAGED = ("/etc/nftables.conf /etc/ssh/sshd_config.d /etc/govbaseline /etc/security/pwquality.conf.d "
           "/etc/security/faillock.conf /etc/pam.d /etc/sudoers.d /etc/profile.d /etc/audit/rules.d "
           "/etc/systemd/journald.conf.d /etc/rsyslog.d /etc/login.defs /etc/systemd/system "
           "/etc/nginx/sites-available /etc/nginx/conf.d /etc/nginx/govbaseline-modsecurity.conf "
           "/etc/apt/apt.conf.d /etc/needrestart/conf.d /etc/clamav/freshclam.conf /etc/fail2ban/jail.d "
           "/etc/suricata /etc/aide")


def implemented_controls() -> list[str]:
    """The implemented controls verify checks on hosts (not those a command implements: REP-01 is
    the ``inspection`` command's, judged from the evidence history)."""
    return [c.id for c in load_catalogue().controls if c.status == "implemented" and not c.command]


def expected_status(lab: Lab, host, control: str) -> str:
    """What verify must say of an implemented control on a converged lab host: pass, except the
    fleet port scan, which the lab's scanner host (the last one) does not run on itself and a
    one-host lab has no scanner for, and process accounting (SYS-11, off by default)."""
    hosts = lab.hosts()
    if control == "VULN-02" and (len(hosts) == 1 or host == hosts[-1]):
        return "skipped"
    # Process accounting is off by default (and refused in a container): the VM tier turns it on.
    if control == "SYS-11":
        return "skipped"
    return "pass"


@pytest.fixture(scope="session")
def lab_factory():
    labs: list[Lab] = []

    def make(name: str, hosts: int = 2, distro: str = "debian13", ipv6: bool = False, vm: bool = False) -> Lab:
        lab = Lab(name, distro=distro, ipv6=ipv6)
        labs.append(lab)  # before up(): a lab that fails to start is removed too (a VM keeps running)
        lab.up(hosts, vm=vm)
        return lab

    yield make
    for lab in labs:
        lab.down()


# Debian's one-shot freshclam as Debian installs it (enabled): the lab image masks it (it held each
# boot for 40 s, reaching for ClamAV's mirrors); the first converge of each engine must mask it (AV-01).
ONESHOT_FRESHCLAM = ("systemctl unmask clamav-freshclam-once.timer clamav-freshclam-once.service && "
                     "systemctl enable clamav-freshclam-once.timer clamav-freshclam-once.service")


def _converged(lab_factory, name: str, engine: str):
    lab = lab_factory(name, hosts=2)
    for host in lab.hosts():
        sh(lab, host, ONESHOT_FRESHCLAM)
    first = apply(lab.inventory, engine=engine, stream=False)
    if not first.ok:
        pytest.fail(f"first {engine} converge of lab {name} failed:\n{first.output[-4000:]}")
    lab.first_converge = first  # type: ignore[attr-defined]
    return lab


@pytest.fixture(scope="session")
def ansible_lab(lab_factory):
    """Two hosts converged once with Ansible (the negative twins break and repair them)."""
    return _converged(lab_factory, f"{LAB_PREFIX}-ansible", "ansible")


@pytest.fixture(scope="session")
def pyinfra_lab(lab_factory):
    """Two hosts converged once with pyinfra (bad-input tests prove refused runs change nothing; the
    TLS and backup lab tests run here, so each pytest worker has about half of the lab tests)."""
    return _converged(lab_factory, f"{LAB_PREFIX}-pyinfra", "pyinfra")


def inventory_with(lab: Lab, tmp_path: Path, **overrides) -> Path:
    """A copy of the lab inventory with some variables overridden (bad input, lockouts, options)."""
    data = yaml.safe_load(lab.inventory.read_text())
    data["all"]["vars"].update(overrides)
    for group in data["all"]["children"].values():  # a host's own value would win over all.vars
        for hostvars in group["hosts"].values():
            hostvars.update({k: v for k, v in overrides.items() if k in hostvars})
    path = tmp_path / f"{lab.name}-inventory.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def table_listing(lab: Lab, host) -> str:
    out = lab.exec(host, "nft", "-s", "-t", "list", "ruleset", check=False)
    return out.stdout.decode()


def managed_state(lab: Lab, host) -> str:
    """A fingerprint of the host as the baseline shapes it: every file it manages, the installed
    packages, the enabled units, the accounts and the live ruleset."""
    files = lab.exec(host, "sh", "-c", f"find {MANAGED} -type f 2>/dev/null | sort | xargs sha256sum",
                     check=False).stdout.decode()
    system = lab.exec(host, "sh", "-c", "dpkg-query -W -f '${Package} ${Version} ${Status}\\n'; "
                      "systemctl list-unit-files --state=enabled --no-legend --no-pager; getent passwd group",
                      check=False).stdout.decode()
    return files + system + table_listing(lab, host)


def report_text(folder: Path) -> str:
    """Everything a verify run wrote, as text: each file, and each member of the evidence bundle."""
    texts = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        if path.name.endswith(".tar.gz"):
            with tarfile.open(path) as bundle:
                texts += [bundle.extractfile(m).read().decode() for m in bundle.getmembers() if m.isfile()]
        else:
            texts.append(path.read_text())
    return "".join(texts)


def sh(lab: Lab, host, script: str) -> str:
    out = lab.exec(host, "sh", "-c", script, check=False)
    assert out.returncode == 0, f"{script!r} failed: {out.stderr.decode()[-1000:]}"
    return out.stdout.decode()


def changed_steps(output: str) -> list[str]:
    """The tasks (Ansible) or operations (pyinfra) that reported a change, with the changed lines."""
    steps: list[str] = []
    header = ""
    for line in output.splitlines():
        if line.startswith("TASK [") or line.startswith("--> Starting operation:"):
            header = line.rstrip("* ")
        # pyinfra pads host names to one width: "[web-1]    Success" beside "[web-sink] Success".
        elif header and (line.startswith("changed:") or re.search(r"\]\s+Success$", line.rstrip())):
            steps.append(f"{header}\n    {line.strip()[:300]}")
    return steps


def converge_is_clean(lab: Lab, engine: str) -> None:
    result = apply(lab.inventory, engine=engine, stream=False)
    assert result.ok, result.output[-3000:]
    assert changed_count(result) == 0, "a second converge changed:\n" + "\n".join(changed_steps(result.output))


def assert_refused_without_change(lab: Lab, tmp_path: Path, engine: str, overrides: dict,
                                  words: list[str]) -> None:
    """A run with these variables fails naming every problem, and no managed file or rule changed
    (a table the baseline does not manage stays too: a reload of the ruleset would remove it)."""
    host = lab.hosts()[0]
    lab.exec(host, "nft", "add", "table", "inet", "marker")
    before = managed_state(lab, host)
    result = apply(inventory_with(lab, tmp_path, **overrides), engine=engine, stream=False)
    assert not result.ok, result.output[-3000:]
    assert [w for w in words if w not in result.output] == [], result.output[-3000:]
    assert managed_state(lab, host) == before
    lab.exec(host, "nft", "delete", "table", "inet", "marker")


def assert_checks_fail_when_broken_together(lab: Lab, tmp_path: Path,
                                            breaks: dict[str, tuple[list[str], str | tuple[str, ...]]],
                                            repair_tags: str, cleanup: list[str] | None = None,
                                            host_index: int = 0, inventory: Path | None = None) -> None:
    """The negative twins of several checks at once, each still tied to its own break.

    ``breaks`` maps a check to (shell scripts that break its control, words its failure message must
    contain: a string, or a tuple of strings that must all be there). Every control is broken, one
    verify run must fail each check *for its own reason* (the words), one tag-limited converge
    repairs them all, and one verify run passes them all again.
    Three runs instead of three per check: the twins of a role cost about one converge.
    """
    host = lab.hosts()[host_index]
    inventory = inventory or lab.inventory
    for scripts, _ in breaks.values():
        for script in scripts:
            sh(lab, host, script)
    broken = verify(inventory, tmp_path / "broken", limit=host.name, checks=list(breaks))
    results = broken.checks(host.name)
    wrong = [f"{check} did not run" if check not in results else
             f"{check} should fail with {words!r} when broken; it is {results[check]['status']}: "
             f"{results[check]['message'][:800]}"
             for check, (_, words) in breaks.items()
             if check not in results or results[check]["status"] != "fail"
             or not all(w in results[check]["message"] for w in ((words,) if isinstance(words, str) else words))]
    assert not wrong, "\n".join(wrong) + f"\n{broken.output[-1500:]}"
    for script in cleanup or []:
        sh(lab, host, script)
    repaired = run_ansible(inventory, tags=repair_tags, limit=host.name, stream=False)
    assert repaired.ok, repaired.output[-3000:]
    after = verify(inventory, tmp_path / "after", limit=host.name, checks=list(breaks))
    statuses = {name: c["status"] for name, c in after.checks(host.name).items()}
    assert statuses and all(statuses.get(check) == "pass" for check in breaks), \
        {name: f"{c['status']}: {c['message'][:600]}" for name, c in after.checks(host.name).items()}


# Run inside the lab host with Debian's python3-apt: the smallest installed package whose version
# came from the security archive and whose older release version can be installed alone.
FIND_DOWNGRADE = r"""
import apt, subprocess
cache = apt.Cache()
options = []
for pkg in cache:
    inst = pkg.installed
    if not inst or not any(o.archive.endswith("-security") for o in inst.origins):
        continue
    older = [v for v in pkg.versions if v < inst and v.downloadable
             and not any(o.archive.endswith("-security") for o in v.origins)]
    if older:
        options.append((inst.installed_size, pkg.name, max(older).version))
for _, name, version in sorted(options):
    sim = subprocess.run(["apt-get", "-s", "install", "--allow-downgrades", f"{name}={version}"],
                         capture_output=True, text=True, env={"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    if sim.returncode == 0 and len([l for l in sim.stdout.splitlines() if l.startswith(("Inst", "Remv"))]) == 1:
        print(name, version)
        break
"""


def installed_version(lab: Lab, host, package: str) -> str:
    return sh(lab, host, f"dpkg-query -W -f '${{Version}}' {package}")


def make_security_update_pending(lab: Lab, host) -> tuple[str, str, str]:
    """Put an installed package back to its older release version, so its security update is
    pending again; return (package, older version, the security version it came from)."""
    found = sh(lab, host, f"python3 -c '{FIND_DOWNGRADE}'").split()
    assert len(found) == 2, "no installed package has an older release version to go back to"
    package, older = found
    fixed = installed_version(lab, host, package)
    # apt's daily timers may hold apt's lock (the patching role starts them): wait for it.
    sh(lab, host, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 "
                  f"--allow-downgrades {package}={older}")
    return package, older, fixed


def wait_for_alert(lab: Lab, source: str, words: str, timeout: float = 30.0) -> str:
    """The decoded text of the first alert mail from ``source`` at the lab sink that contains ``words``."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        seen = []
        for _, raw in lab.sink_messages("mail"):
            body = email.message_from_bytes(raw).get_payload(decode=True)
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else ""
            if f"source: {source}" in text:
                seen.append(text)
                if words in text:
                    return text
        time.sleep(1)
    raise AssertionError(f"no alert from {source} with {words!r} reached the lab mail sink in {timeout:.0f} s; "
                         f"from {source}: {seen[-3:]}")
