"""Waivers on real hosts, with both engines: apply leaves a waived control alone on its scope and
enforces it elsewhere (and after expiry); verify shows it waived, then failed once the waiver ends."""

from __future__ import annotations

import datetime as dt

import pytest

from govbaseline.engines import apply
from govbaseline.verify import verify
from govbaseline.waivers import load
from tests.lab.conftest import sh

pytestmark = pytest.mark.lab

JAIL = "/etc/fail2ban/jail.d/govbaseline.local"
# Brute-force blocking that could ban the administrators: IDS-02 fails, and apply puts it right.
BREAK = f"sed -i 's|^ignoreip = .*|ignoreip = 127.0.0.1/8|' {JAIL} && fail2ban-client reload >/dev/null"
BROKEN = "ignoreip = 127.0.0.1/8"  # the whole line: the right one starts the same


def broken(lab, host) -> bool:
    return BROKEN in sh(lab, host, f"cat {JAIL}").splitlines()


def waivers_file(tmp_path, name: str, entries: list[tuple[str, dt.date]]):
    path = tmp_path / name
    path.write_text("".join(
        f"- control: IDS-02\n  scope: {{hosts: [{host}]}}\n  justification: fail2ban replaced by the provider's WAF\n"
        f"  approver: Information security officer\n  expires: {expires.isoformat()}\n" for host, expires in entries))
    return load(path)


def assert_waivers_hold_until_they_end(lab, engine, tmp_path):
    kept, enforced = lab.hosts()[1], lab.hosts()[0]
    today = dt.date.today()
    waivers = waivers_file(tmp_path, "waivers.yml", [(kept.name, today), (enforced.name, today - dt.timedelta(days=1))])
    for host in (kept, enforced):
        sh(lab, host, BREAK)
    try:
        result = apply(lab.inventory, engine=engine, stream=False, waivers=waivers)
        assert result.ok, result.output[-3000:]
        assert broken(lab, kept), f"{engine} changed a waived control"
        assert not broken(lab, enforced), f"{engine} did not enforce after the waiver expired"
        outcome = verify(lab.inventory, tmp_path / "waived", controls=["IDS-02"], waivers=waivers)
        assert outcome.status(kept.name, "IDS-02") == "waived", outcome.output[-2000:]
        assert outcome.status(enforced.name, "IDS-02") == "pass", outcome.output[-2000:]
        assert outcome.passed, outcome.summary_line()
        states = {w["source"].rsplit(":", 1)[1]: w["state"] for w in outcome.data["waivers"]}
        assert states == {"1": "expiring soon", "6": "expired"}, states
        # The day after the waiver's last day, the same host fails.
        ended = waivers_file(tmp_path, "ended.yml", [(kept.name, today - dt.timedelta(days=1))])
        after = verify(lab.inventory, tmp_path / "ended", controls=["IDS-02"], waivers=ended, limit=kept.name)
        assert after.status(kept.name, "IDS-02") == "fail" and not after.passed, after.summary_line()
    finally:
        # The repair an operator runs: Ansible with the control's tag; pyinfra applies whole deploys.
        repaired = apply(lab.inventory, engine=engine, stream=False, limit=kept.name,
                         tags="ids-02" if engine == "ansible" else None)
        assert repaired.ok, repaired.output[-3000:]
    assert not broken(lab, kept)


def test_ansible_skips_a_waived_control_on_its_scope_only(ansible_lab, tmp_path):
    assert_waivers_hold_until_they_end(ansible_lab, "ansible", tmp_path)


def test_pyinfra_skips_a_waived_control_on_its_scope_only(pyinfra_lab, tmp_path):
    assert_waivers_hold_until_they_end(pyinfra_lab, "pyinfra", tmp_path)
