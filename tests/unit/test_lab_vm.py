"""The VM lab's pure parts: the host key read from a serial console that others write to as well."""

from __future__ import annotations

import hashlib

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
