"""Lab hosts as virtual machines: what containers cannot prove (auditd, kernel settings, reboots).

A VM host boots the lab image's own root file system (the container image of the same recipe,
``image.ensure_image``) with Debian's kernel, under QEMU: KVM where a test boot shows it works,
software emulation (TCG) otherwise. The base disk is built once per recipe and cached
(``cache_dir()/vm``); every VM writes to a throw-away qcow2 overlay in its lab's folder.

The VM joins the lab's podman network through a tap device on that network's bridge, with the
fixed address a container host would have: the sink and the other hosts reach it, and it reaches
them, as a container host. Its settings arrive on the kernel command line (the address through
systemd-network-generator's ``ip=``, the hostname through ``systemd.hostname=``, the lab's SSH
public key through ``govbaseline.ssh_key=``); its SSH host key is made at first boot, as in a
container, and printed to the serial console, which only the controller reads: the key is pinned
from there (cloud-init's way of publishing host keys).

Every QEMU process carries the environment variable ``GOVBASELINE_LAB=<lab name>`` (the lab's
label) and its process id is recorded: a VM left behind by a killed run is found and stopped by
that label on the next ``lab up`` or ``lab down``, never by a name pattern.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from govbaseline.lab.image import DISTROS, ensure_image
from govbaseline.lab.podman import CONTAINERS_CONF, podman
from govbaseline.paths import cache_dir

VM_RECIPE_VERSION = 3
LABEL_ENV = "GOVBASELINE_LAB"
MEMORY_MIB = 1024
DISK_GIB = 8
PANIC_LINE = re.compile(r"Kernel panic - not syncing:[^\r\n]*")
BOOT_TIMEOUT = 420.0  # TCG on a loaded 2-core machine: about a minute alone, several beside other VMs
# A kernel that reaches its first panic within this many seconds under KVM is fast enough; a
# paravirtualised KVM that crawls does not (measured: TCG gets there in about 3 s).
KVM_PROBE_SECONDS = 8.0

# What a VM needs beyond the container image: a kernel with its initramfs (virtio drivers are in
# Debian's default MODULES=most), udev for devices and module loading, the kernel module tools.
VM_PACKAGES = ("linux-image-amd64", "initramfs-tools", "udev", "kmod")

# Writes the lab's SSH public key (kernel command line) to root's authorized_keys, and, once the
# host keys exist, prints the ed25519 host key to the serial console for the controller to pin.
FIRSTBOOT_SCRIPT = """#!/bin/sh
set -eu
for word in $(cat /proc/cmdline); do
  case "$word" in
    govbaseline.ssh_key=*)
      key=${word#govbaseline.ssh_key=}
      install -d -m 0700 /root/.ssh
      want=$(echo "$key" | tr ':' ' ')
      # Written only when it differs: a file watcher (AIDE) sees no change at every boot.
      if [ "$(cat /root/.ssh/authorized_keys 2>/dev/null)" != "$want" ]; then
        (umask 077; printf '%s\\n' "$want" > /root/.ssh/authorized_keys)
      fi ;;
    govbaseline.nameserver=*)
      want="nameserver ${word#govbaseline.nameserver=}"
      if [ "$(cat /etc/resolv.conf 2>/dev/null)" != "$want" ]; then
        printf '%s\\n' "$want" > /etc/resolv.conf
      fi ;;
  esac
done
# Kernel and systemd messages share the console and may cut into a line: the key goes out three
# times with its SHA-256, and the controller takes a line whose sum matches.
key=$(cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub)
sum=$(printf '%s' "$key" | sha256sum | cut -c1-64)
for _ in 1 2 3; do printf '\ngovbaseline-hostkey: %s %s\n' "$key" "$sum" > /dev/ttyS0; done
"""
FIRSTBOOT_UNIT = """[Unit]
Description=govbaseline lab VM: authorized key and DNS from the kernel command line; host key to the console
After=lab-ssh-hostkeys.service
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/govbaseline-vm-boot

[Install]
WantedBy=multi-user.target
"""
# The container image masks units a container cannot use; a VM has a console, logins and a clock.
UNMASKED = ("systemd-logind.service", "getty@tty1.service", "systemd-timesyncd.service", "e2scrub_reap.service")


HOSTKEY_LINE = re.compile(r"govbaseline-hostkey: (ssh-ed25519 [A-Za-z0-9+/]+=*) ([0-9a-f]{64})")


class VMError(RuntimeError):
    """A VM could not be built, started or reached; the message says which and why."""


@dataclass(frozen=True)
class BaseImage:
    disk: Path
    kernel: Path
    initrd: Path


def _qemu() -> str:
    found = shutil.which("qemu-system-x86_64")
    if not found:
        raise VMError("qemu-system-x86_64 is not installed: `apt-get install qemu-system-x86 qemu-utils` "
                      "(scripts/setup.sh does)")
    return found


def recipe(distro: str) -> dict[str, object]:
    return {"version": VM_RECIPE_VERSION, "image": ensure_image(distro, log=False), "packages": VM_PACKAGES,
            "firstboot": FIRSTBOOT_SCRIPT, "unit": FIRSTBOOT_UNIT, "unmasked": UNMASKED, "disk_gib": DISK_GIB}


def ensure_base(distro: str, log: bool = True) -> BaseImage:
    """The cached base disk, kernel and initramfs for ``distro``, built if its recipe changed."""
    if distro not in DISTROS:
        raise ValueError(f"unknown distro {distro!r}; choose one of {', '.join(DISTROS)}")
    spec = recipe(distro)
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    folder = cache_dir() / "vm" / f"{distro}-{digest}"
    base = BaseImage(folder / "disk.qcow2", folder / "vmlinuz", folder / "initrd.img")
    if base.disk.exists():
        return base
    with open(cache_dir() / f"vm-{distro}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if base.disk.exists():
            return base
        if log:
            print(f"lab: building the {distro} VM disk from {spec['image']} (once per recipe change)", flush=True)
        _build(str(spec["image"]), DISTROS[distro].suite, folder)
        for old in (cache_dir() / "vm").glob(f"{distro}-*"):
            if old != folder:
                shutil.rmtree(old, ignore_errors=True)
    return base


def _run(argv: list[str], what: str, **kwargs: object) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if proc.returncode != 0:
        raise VMError(f"{what} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")


def _build(image: str, suite: str, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    debs = cache_dir() / "debs" / suite
    debs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir(), prefix="vmroot-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        rootfs.mkdir()
        container = podman("create", image).stdout.decode().strip()
        try:
            export = subprocess.Popen(["podman", "export", container], stdout=subprocess.PIPE,
                                      env=dict(os.environ, CONTAINERS_CONF=str(CONTAINERS_CONF)))
            _run(["tar", "-x", "--numeric-owner", "-C", str(rootfs)], "unpacking the lab image", stdin=export.stdout)
            export.wait()
        finally:
            podman("rm", "-f", container, check=False)
        archives = rootfs / "var/cache/apt/archives"
        (archives / "partial").mkdir(parents=True, exist_ok=True)
        for deb in debs.glob("*.deb"):
            shutil.copy2(deb, archives)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
        # The image's resolv.conf is podman's (empty once exported): apt needs names to fetch.
        (rootfs / "etc/resolv.conf").unlink(missing_ok=True)
        shutil.copy2("/etc/resolv.conf", rootfs / "etc/resolv.conf")
        _run(["mount", "--bind", "/proc", str(rootfs / "proc")], "mounting /proc for the kernel's install")
        try:
            _run(["chroot", str(rootfs), "apt-get", "install", "-y", "-q", "--no-install-recommends", *VM_PACKAGES],
                 f"installing {', '.join(VM_PACKAGES)}", env=env)
        finally:
            subprocess.run(["umount", str(rootfs / "proc")], check=False)
        for deb in archives.glob("*.deb"):
            if not (debs / deb.name).exists():
                shutil.copy2(deb, debs)
        shutil.rmtree(archives, ignore_errors=True)
        (archives / "partial").mkdir(parents=True, exist_ok=True)
        _customise(rootfs)
        boot = rootfs / "boot"
        shutil.copy2(max(boot.glob("vmlinuz-*")), folder / "vmlinuz")
        shutil.copy2(max(boot.glob("initrd.img-*")), folder / "initrd.img")
        raw = Path(tmp) / "disk.raw"
        _run(["mkfs.ext4", "-q", "-L", "root", "-d", str(rootfs), str(raw), f"{DISK_GIB}G"], "making the file system")
        _run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(folder / "disk.tmp")], "converting the disk")
    (folder / "disk.tmp").replace(folder / "disk.qcow2")


def _customise(rootfs: Path) -> None:
    """Make the container image's tree boot on a kernel of its own."""
    (rootfs / "etc/fstab").write_text("LABEL=root / ext4 defaults,errors=remount-ro 0 1\n")
    (rootfs / "etc/resolv.conf").unlink(missing_ok=True)
    (rootfs / "etc/resolv.conf").write_text("")
    for name in UNMASKED:
        link = rootfs / "etc/systemd/system" / name
        if link.is_symlink():
            link.unlink()
    script = rootfs / "usr/local/sbin/govbaseline-vm-boot"
    script.write_text(FIRSTBOOT_SCRIPT)
    script.chmod(0o755)
    (rootfs / "etc/systemd/system/lab-vm-boot.service").write_text(FIRSTBOOT_UNIT)
    wants = rootfs / "etc/systemd/system/multi-user.target.wants"
    (wants / "lab-vm-boot.service").symlink_to("/etc/systemd/system/lab-vm-boot.service")
    # The address comes from the kernel command line (ip=): systemd-network-generator writes it for
    # systemd-networkd.
    for unit, target in (("systemd-networkd.service", "multi-user.target.wants"),
                         ("systemd-network-generator.service", "sysinit.target.wants")):
        folder = rootfs / "etc/systemd/system" / target
        folder.mkdir(parents=True, exist_ok=True)
        link = folder / unit
        link.unlink(missing_ok=True)
        link.symlink_to(f"/usr/lib/systemd/system/{unit}")
    (rootfs / "etc/machine-id").write_text("")


# -- acceleration ------------------------------------------------------------------------------


def accelerator(base: BaseImage) -> str:
    """``kvm`` when a test boot of the lab kernel under KVM reaches its first panic quickly, else
    ``tcg``. Decided once per controller boot (``/proc/sys/kernel/random/boot_id``) and cached;
    ``GOVBASELINE_VM_ACCEL`` (kvm or tcg) overrides it."""
    forced = os.environ.get("GOVBASELINE_VM_ACCEL")
    if forced:
        if forced not in ("kvm", "tcg"):
            raise ValueError(f"GOVBASELINE_VM_ACCEL must be kvm or tcg, not {forced!r}")
        return forced
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg"
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    cached = cache_dir() / "vm" / "accelerator.json"
    try:
        known = json.loads(cached.read_text())
        if known.get("boot_id") == boot_id and known.get("kernel") == base.kernel.stat().st_size:
            return str(known["accel"])
    except (OSError, ValueError):
        pass
    accel = "kvm" if _test_boot(base, "kvm") else "tcg"
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps({"boot_id": boot_id, "kernel": base.kernel.stat().st_size, "accel": accel}))
    return accel


def _test_boot(base: BaseImage, accel: str) -> bool:
    """Boot the kernel with no root file system and no initramfs: it panics as soon as it has
    started, reboots (panic=-1) and QEMU ends (-no-reboot). True when that takes under
    ``KVM_PROBE_SECONDS``."""
    argv = [_qemu(), "-accel", accel, "-cpu", "host" if accel == "kvm" else "max", "-m", "256",
            "-display", "none", "-serial", "null", "-monitor", "none", "-no-reboot", "-nodefaults",
            "-kernel", str(base.kernel), "-append", "console=ttyS0 panic=-1 quiet"]
    try:
        proc = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, timeout=KVM_PROBE_SECONDS,
                              check=False)
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0


# -- machines ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Machine:
    """One VM of a lab: its files live in ``folder`` (overlay disk, console log, pid file)."""

    lab: str
    name: str
    folder: Path

    @property
    def overlay(self) -> Path:
        return self.folder / f"{self.name}.qcow2"

    @property
    def console(self) -> Path:
        return self.folder / f"{self.name}.console"

    @property
    def pidfile(self) -> Path:
        return self.folder / f"{self.name}.pid"

    def start(self, base: BaseImage, accel: str, bridge: str, address: str, prefix: int, gateway: str,
              public_key: str, index: int) -> None:
        """Start the VM in the background on a new overlay; returns once QEMU runs (not booted)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for path in (self.overlay, self.console, self.pidfile):
            path.unlink(missing_ok=True)
        _run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(base.disk), str(self.overlay)],
             f"making {self.name}'s overlay disk")
        ifup = self.folder / "ifup"
        ifup.write_text(f"#!/bin/sh\nip link set dev \"$1\" master {bridge} up\n")
        ifup.chmod(0o755)
        tap = f"gbv{zlib.crc32(self.lab.encode()) % 10**6}x{index}"  # at most 15 characters
        mac = "52:54:00:" + ":".join(f"{b:02x}" for b in bytes(int(x) for x in address.split(".")[1:]))
        key = ":".join(public_key.split()[:2])
        append = " ".join([
            "root=LABEL=root", "rw", "console=ttyS0", "net.ifnames=0", "panic=-1",
            f"ip={address}::{gateway}:{_netmask(prefix)}:{self.name}:eth0:off",
            f"systemd.hostname={self.name}", f"govbaseline.ssh_key={key}", f"govbaseline.nameserver={gateway}",
        ])
        cpu = "host" if accel == "kvm" else "max"
        # TCG: a 256 MiB translation cache (the default 1 GiB doubles the VM's memory for no speed here).
        accel_opt = "kvm" if accel == "kvm" else "tcg,thread=multi,tb-size=256"
        argv = [
            _qemu(), "-name", f"govbaseline-{self.name}", "-accel", accel_opt, "-cpu", cpu, "-smp", "2",
            "-m", str(MEMORY_MIB), "-nodefaults", "-display", "none", "-monitor", "none",
            "-serial", f"file:{self.console}",
            "-kernel", str(base.kernel), "-initrd", str(base.initrd), "-append", append,
            "-drive", f"file={self.overlay},if=virtio,format=qcow2,cache=unsafe,discard=unmap",
            "-netdev", f"tap,id=lab,ifname={tap},script={ifup},downscript=no",
            "-device", f"virtio-net-pci,netdev=lab,mac={mac}",
            "-device", "virtio-rng-pci",
            "-daemonize", "-pidfile", str(self.pidfile),
        ]
        env = dict(os.environ, **{LABEL_ENV: self.lab})
        # stdin from /dev/null: a QEMU left running must not hold (or change the mode of) the caller's.
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, check=False)
        if proc.returncode != 0:
            raise VMError(f"QEMU did not start {self.name}: {proc.stderr.strip()[-1500:]}")

    def host_key(self) -> str | None:
        """The ed25519 host key the VM printed to its console at boot (``type base64``), if it has."""
        try:
            text = self.console.read_text(errors="replace")
        except OSError:
            return None
        keys = [key for key, digest in HOSTKEY_LINE.findall(text)
                if hashlib.sha256(key.encode()).hexdigest() == digest]
        return keys[-1] if keys else None

    def panic(self, since: int = 0) -> str | None:
        """The kernel's panic line on the console after byte ``since``, if the VM's kernel panicked.
        (``panic=-1`` reboots a panicked kernel at once: without this a lab would wait out the boot
        timeout while the VM panics again and again.)"""
        try:
            with self.console.open("rb") as console:
                console.seek(since)
                text = console.read().decode(errors="replace")
        except OSError:
            return None
        found = PANIC_LINE.search(text)
        return found.group(0).strip() if found else None

    def console_size(self) -> int:
        try:
            return self.console.stat().st_size
        except OSError:
            return 0

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        pid = self.pid()
        return pid is not None and pid in lab_processes(self.lab)


def _netmask(prefix: int) -> str:
    bits = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
    return ".".join(str((bits >> shift) & 0xFF) for shift in (24, 16, 8, 0))


def lab_processes(lab: str) -> list[int]:
    """Process ids of the QEMU processes labelled for ``lab`` (their environment's GOVBASELINE_LAB)."""
    wanted = f"{LABEL_ENV}={lab}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if wanted in (entry / "environ").read_bytes().split(b"\0") and \
                    (entry / "exe").resolve().name.startswith("qemu-system"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def stop_all(lab: str, timeout: float = 10.0) -> None:
    """Stop every VM labelled for ``lab``: SIGTERM (QEMU ends the guest at once: the disks are
    throw-away), SIGKILL after ``timeout``."""
    pids = lab_processes(lab)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if Path(f"/proc/{p}").exists()]
        time.sleep(0.1)
    still = set(lab_processes(lab))  # asked again: a pid that ended may have been given to another process
    for pid in pids:
        if pid in still:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
