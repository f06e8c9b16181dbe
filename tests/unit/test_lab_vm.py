"""The VM lab's pure parts: the host key read from a serial console that others write to as well."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from govbaseline.lab import vm

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINFXhtkcImeP4u/O8YqOqP+bXeyvFojRQGaRLzfL8PXu"
SUM = hashlib.sha256(KEY.encode()).hexdigest()


def machine(tmp_path, console: str) -> vm.Machine:
    found = vm.Machine("lab", "lab-1", tmp_path)
    found.console.write_text(console)
    return found


def test_the_host_key_is_read_from_a_line_whose_sum_matches(tmp_path):
    text = f"boot\ngovbaseline-hostkey: {KEY} {SUM}\nlogin:"
    assert machine(tmp_path, text).host_key() == KEY


def test_a_line_cut_by_a_kernel_message_is_not_taken(tmp_path):
    # Seen on a TCG boot: a kernel message landed inside the line; the next copy is whole.
    cut = f"govbaseline-hostkey: {KEY[:40]}[  138.713678] kvm_amd: Virtual GIF supported\n{KEY[40:]} {SUM}\n"
    assert machine(tmp_path, cut).host_key() is None
    assert machine(tmp_path, cut + f"govbaseline-hostkey: {KEY} {SUM}\n").host_key() == KEY


def test_a_key_with_the_wrong_sum_or_no_console_is_not_taken(tmp_path):
    assert machine(tmp_path, f"govbaseline-hostkey: {KEY} {'0' * 64}\n").host_key() is None
    assert vm.Machine("lab", "lab-2", tmp_path).host_key() is None


def test_the_netmask_of_a_prefix():
    assert vm._netmask(24) == "255.255.255.0"
    assert vm._netmask(20) == "255.255.240.0"


def test_the_ssh_control_socket_of_a_long_lab_name_fits_a_socket_address(monkeypatch):
    # A lab named molecule-audit failed every SSH command with "too long for Unix domain socket":
    # the control path lived in the lab's folder under ~/.local/state.
    import socket

    from govbaseline.lab.hosts import Lab

    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    template = Lab("molecule-a-rather-long-scenario-name").control_path()
    # ssh expands %C to 40 hex digits and binds a temporary name with a 17-byte suffix first.
    path = template.replace("%C", "c" * 40) + ".abcdefghijklmnop"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(path)
    Path(path).unlink()
    assert Lab("a").control_path() != Lab("b").control_path()


def test_a_control_folder_others_can_write_is_refused(monkeypatch, tmp_path):
    import pytest

    from govbaseline.lab.hosts import Lab, LabError

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    shared = tmp_path / f"govbaseline-ssh-{os.getuid()}"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    with pytest.raises(LabError, match="mode 0700"):
        Lab("a").control_path()


def test_a_kernel_panic_on_the_console_is_found_after_an_offset(tmp_path):
    # panic=-1 reboots a panicked kernel at once: the lab stops waiting when the console shows one.
    before = "govbaseline-hostkey: ...\nlogin: \n"
    found = machine(tmp_path, before)
    assert found.panic() is None
    size = found.console_size()
    with found.console.open("a") as console:
        console.write("[    1.2] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\r\n")
    assert found.panic() == "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"
    assert found.panic(since=size) is not None
    assert found.panic(since=found.console_size()) is None
