"""Bad values are refused by both engines before anything on a converged host changes.

The cases live in tests/bad_input.py (each is also refused on its own in the unit tests); here each
batch of them is one real run per engine, whose refusal must name every problem of the batch while
no managed file, package setting or firewall rule on the host changes. Lockouts are decided by what
the host tells about the connection, so only a real run proves them.
"""

from __future__ import annotations

import shlex

import pytest

from govbaseline.rules.firewall import LISTENING_TCP_PORTS
from govbaseline.validation import role_defaults
from tests.bad_input import BATCHES, batch
from tests.lab.conftest import assert_refused_without_change, sh

pytestmark = pytest.mark.lab


@pytest.mark.parametrize("engine", ["ansible", "pyinfra"])
@pytest.mark.parametrize("name", sorted(BATCHES))
def test_bad_values_refused_before_any_change(pyinfra_lab, tmp_path, engine, name):
    overrides, words = batch(name)
    assert_refused_without_change(pyinfra_lab, tmp_path, engine, overrides, words)


def test_the_lockout_context_sees_sshd_listening(pyinfra_lab):
    """The shell both engines run for the lockout check (rules/firewall.py's LISTENING_TCP_PORTS) finds sshd's
    port on a real host, so a good firewall_ssh_port is never refused as unserved."""
    host = pyinfra_lab.hosts()[0]
    for shell in ("sh", "bash"):
        ports = sh(pyinfra_lab, host, f"{shell} -c {shlex.quote(LISTENING_TCP_PORTS)}").split()
        assert str(role_defaults("firewall")["firewall_ssh_port"]) in ports, (shell, ports)
