"""The audit rules the role installs load into a real kernel (LOG-01).

Lab hosts are containers, where the kernel's audit system cannot be touched; this machine can, so
the rendered rules are loaded here with auditctl, listed, and removed again. It runs only as root,
with auditctl installed, and only when the machine has no audit rules of its own to disturb.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from govbaseline import templating, validation


def auditctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["auditctl", *args], capture_output=True, text=True, check=False)


def usable() -> str | None:
    if os.geteuid() != 0 or not shutil.which("auditctl"):
        return "needs root and auditctl (package auditd)"
    status = auditctl("-s")
    if status.returncode != 0:
        return f"this machine's kernel audit system is not reachable: {status.stderr.strip()}"
    if "enabled 2" in status.stdout:
        return "this machine's audit rules are immutable (-e 2)"
    if auditctl("-l").stdout.strip() != "No rules":
        return "this machine has audit rules of its own, which the test would disturb"
    return None


@pytest.mark.skipif(usable() is not None, reason=str(usable()))
def test_rendered_rules_load_into_the_kernel(tmp_path):
    values = {**validation.validated_vars("audit", {"audit_watch_paths": ["/srv"]}),
              **validation.internal_vars("audit"),
              "__audit_b32": os.uname().machine == "x86_64"}
    text = templating.render("audit", "audit.rules.j2", values)
    assert "-e 2" not in text  # never lock this machine's rules
    path = tmp_path / "50-govbaseline.rules"
    path.write_text(text)
    try:
        loaded = auditctl("-R", str(path))
        assert loaded.returncode == 0, loaded.stdout + loaded.stderr
        listing = auditctl("-l").stdout
        for key in values["__audit_rule_keys"]:
            assert f"-k {key}" in listing or f"key={key}" in listing, f"rule key {key} not loaded:\n{listing}"
        expected = sum(1 for line in text.splitlines() if line.startswith(("-w", "-a")))
        assert len(listing.strip().splitlines()) == expected, listing
    finally:
        auditctl("-D")
