"""Build the lab host image from Debian's own packages with debootstrap, and cache it.

The image tag carries a hash of its recipe, so a changed recipe builds a new image and an
unchanged one is reused. Debian packages are kept in a cache folder on the controller, so a
rebuild downloads nothing that was fetched before.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from govbaseline.lab.podman import podman
from govbaseline.paths import ROLES_DIR, cache_dir

RECIPE_VERSION = 6
LABEL = "govbaseline.lab"


@dataclass(frozen=True)
class Distro:
    name: str
    suite: str


DISTROS = {"debian13": Distro("debian13", "trixie"), "debian12": Distro("debian12", "bookworm")}
DEFAULT_DISTRO = "debian13"

# What every lab host needs to be a real, reachable Debian server.
BASE_PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "netbase", "iproute2",
    "sudo", "ca-certificates", "procps",
    # Ansible's apt module needs it for check mode (a normal run would install it itself).
    "python3-apt",
)

# What the lab's sink host runs (lab/sink.py): Debian's SMTP server library. Not a baseline package.
LAB_PACKAGES = ("python3-aiosmtpd",)

# Generates per-host SSH host keys at first boot, so no two hosts share a key.
HOSTKEYS_UNIT = """[Unit]
Description=govbaseline lab: generate this host's SSH host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
"""

# Units that make no sense in a container and only slow the boot or fail. ClamAV's one-shot update
# fetches from ClamAV's mirrors on the internet, which no lab host reaches: it held every host's boot
# (and so every `lab up`) for about 40 s of DNS time-outs; the antivirus role gives freshclam's
# daemon the lab's own mirror.
MASKED_UNITS = ("getty@tty1.service", "console-getty.service", "systemd-logind.service",
                "apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_reap.service",
                "systemd-timesyncd.service", "clamav-freshclam-once.service", "clamav-freshclam-once.timer")


# Packages of features no lab host can use: ACME needs a CA on the internet. (certbot's Python
# dependencies also fail to configure inside debootstrap, as do ansible-core's: pull mode's packages
# are installed when a host is enrolled, which the pull lab test does.) Process accounting (SYS-11)
# needs the machine's kernel: installed, its unit would fail at every container's boot; the VM tier
# installs it when it converges.
NOT_PREINSTALLED = frozenset({"tls_acme_packages", "pull_packages", "system_accounting_packages"})

# Role packages a Debian release does not have (the roles use another way there: a Debian 12
# backup server is the SFTP fallback, see roles/backup_server). debootstrap refuses a missing one.
MISSING = {"bookworm": frozenset({"restic-rest-server", "suricata", "suricata-update"})}


def role_packages() -> list[str]:
    """Packages the roles install, pre-installed in the image so converges are not download-bound.

    Read from each role's ``<role>_packages`` and ``<role>_*_packages`` defaults (packages of
    optional features too): one source for what a role installs. The roles still install them
    (a no-op here), so a real host gets the same result.
    """
    packages: set[str] = set()
    for defaults in sorted(ROLES_DIR.glob("*/defaults/main.yml")):
        role = defaults.parent.parent.name
        data = yaml.safe_load(defaults.read_text()) or {}
        for name, value in data.items():
            if name.startswith(f"{role}_") and name.endswith("_packages") and name not in NOT_PREINSTALLED:
                packages.update(value)
    return sorted(packages)


def debian_mirror() -> str:
    """The Debian mirror this machine's apt already uses, or ``GOVBASELINE_DEBIAN_MIRROR``."""
    override = os.environ.get("GOVBASELINE_DEBIAN_MIRROR")
    if override:
        return override
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            words = line.split()
            if path.suffix == ".sources" and words[:1] == ["URIs:"]:
                uri = words[1]
            elif path.suffix != ".sources" and words[:1] == ["deb"]:
                uri = next((w for w in words[1:] if not w.startswith("[")), "")
            else:
                continue
            if "security" not in uri and uri.rstrip("/").endswith("debian"):
                return uri
    raise RuntimeError("no Debian mirror found in /etc/apt; set GOVBASELINE_DEBIAN_MIRROR to one")


def security_mirror() -> str:
    """Debian's security archive next to the main mirror (…/debian → …/debian-security), or
    ``GOVBASELINE_DEBIAN_SECURITY_MIRROR``."""
    override = os.environ.get("GOVBASELINE_DEBIAN_SECURITY_MIRROR")
    if override:
        return override
    return debian_mirror().rstrip("/") + "-security"


def sources_list(distro: Distro) -> str:
    """What a Debian installer writes: the release and its security updates (the patching role's source)."""
    return (f"deb {debian_mirror()} {distro.suite} main\n"
            f"deb {security_mirror()} {distro.suite}-security main\n")


def recipe(distro: Distro) -> dict[str, object]:
    return {
        "version": RECIPE_VERSION,
        "suite": distro.suite,
        "packages": sorted({*BASE_PACKAGES, *LAB_PACKAGES, *role_packages()} - MISSING.get(distro.suite, set())),
        "hostkeys_unit": HOSTKEYS_UNIT,
        "masked": MASKED_UNITS,
        "sources": sources_list(distro),
    }


def image_tag(distro: Distro) -> str:
    digest = hashlib.sha256(json.dumps(recipe(distro), sort_keys=True).encode()).hexdigest()[:12]
    return f"localhost/govbaseline-lab:{distro.name}-{digest}"


def image_exists(tag: str) -> bool:
    return podman("image", "exists", tag, check=False).returncode == 0


def ensure_image(distro_name: str = DEFAULT_DISTRO, log: bool = True) -> str:
    """Return the tag of the image for ``distro_name``, building it if its recipe changed."""
    if distro_name not in DISTROS:
        raise ValueError(f"unknown distro {distro_name!r}; choose one of {', '.join(DISTROS)}")
    distro = DISTROS[distro_name]
    tag = image_tag(distro)
    if image_exists(tag):
        return tag
    # One build at a time per distro: parallel test workers (or two shells) may ask at once.
    with open(cache_dir() / f"image-{distro.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if image_exists(tag):
            return tag
        if log:
            print(f"lab: building {tag} with debootstrap (once per recipe change)", flush=True)
        build(distro, tag)
        prune_old_images(distro, keep=tag)
    return tag


def prune_old_images(distro: Distro, keep: str) -> None:
    """Remove this distro's images of older recipes (those no container uses; podman refuses the rest)."""
    rows = podman("images", "--filter", f"label={LABEL}.image={distro.name}", "--format", "{{.Repository}}:{{.Tag}}",
                  check=False).stdout.decode().split()
    for old in rows:
        if old != keep and old.startswith("localhost/govbaseline-lab:"):
            podman("image", "rm", old, check=False)


def build(distro: Distro, tag: str) -> None:
    spec = recipe(distro)
    debs = cache_dir() / "debs" / distro.suite
    debs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir(), prefix="rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        cmd = ["debootstrap", "--variant=minbase", f"--cache-dir={debs}",
               "--include=" + ",".join(spec["packages"]),  # type: ignore[arg-type]
               distro.suite, str(rootfs), debian_mirror()]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"debootstrap failed for {distro.suite}:\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}")
        customise(rootfs)
        upgrade(rootfs, distro, debs)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
        podman("import", "--change", 'CMD=["/sbin/init"]', "--change", "STOPSIGNAL=SIGRTMIN+3",
               "--change", f"LABEL {LABEL}.image={distro.name}", "-", tag, stdin=tar.stdout)
        tar.wait()


def upgrade(rootfs: Path, distro: Distro, debs: Path) -> None:
    """Point apt at the release and its security archive, and install the security updates, as a
    freshly installed Debian server would be: lab hosts start without pending security updates
    (the patching tests then make one on purpose). Downloaded packages go to the controller's cache."""
    (rootfs / "etc/apt/sources.list").write_text(sources_list(distro))
    archives = rootfs / "var/cache/apt/archives"
    (archives / "partial").mkdir(parents=True, exist_ok=True)
    for deb in debs.glob("*.deb"):
        shutil.copy2(deb, archives)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    for argv in (["apt-get", "update", "-q"], ["apt-get", "upgrade", "-y", "-q", "--no-install-recommends"]):
        proc = subprocess.run(["chroot", str(rootfs), *argv], capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} in the {distro.suite} image failed:\n{proc.stdout[-2000:]}"
                               f"{proc.stderr[-2000:]}")
    for deb in archives.glob("*.deb"):
        if not (debs / deb.name).exists():
            shutil.copy2(deb, debs)
    shutil.rmtree(archives, ignore_errors=True)
    (archives / "partial").mkdir(parents=True, exist_ok=True)


def customise(rootfs: Path) -> None:
    """Make the debootstrapped tree a bootable, reachable lab host."""
    for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    # The lab's own units are named lab-*: every govbaseline-*.service is the baseline's and gets its
    # sandbox (SYS-10), in which this one could not write /etc/ssh.
    unit = rootfs / "etc/systemd/system/lab-ssh-hostkeys.service"
    unit.write_text(HOSTKEYS_UNIT)
    wants = rootfs / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / "lab-ssh-hostkeys.service").symlink_to("/etc/systemd/system/lab-ssh-hostkeys.service")
    for name in MASKED_UNITS:
        link = rootfs / "etc/systemd/system" / name
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    # An empty machine-id makes systemd generate a fresh one per host at boot.
    (rootfs / "etc/machine-id").write_text("")
    ssh_dir = rootfs / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
    (rootfs / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
