"""Checks for file integrity FIM-01 and web tamper detection FIM-02 (role ``integrity``)."""

from __future__ import annotations

import json

import pytest

from govbaseline.checks.schedule import last_run

COMMAND = "/usr/local/sbin/govbaseline-integrity"
AIDE_CONF = "/etc/govbaseline/integrity/aide.conf"
AIDE_DB = "/var/lib/aide/aide.db"
STATE = "/var/lib/govbaseline/integrity/aide.json"
TAMPER_UNIT = "govbaseline-tamper"
LISTED = 20


def named(paths: list[str]) -> str:
    return ", ".join(paths[:LISTED]) + (f" and {len(paths) - LISTED} more" if len(paths) > LISTED else "")


@pytest.mark.control("FIM-01")
def test_aide_database_is_current_and_no_file_changed(host, hostvars, evidence):
    conf = host.file(AIDE_CONF)
    assert conf.exists and "Role integrity: FIM-01" in conf.content_string, \
        f"{AIDE_CONF} is missing or not govbaseline's: AIDE has no rules for this host"
    rules = [line for line in conf.content_string.splitlines() if line.endswith(" Govbaseline")]
    evidence("folders AIDE records", "\n".join(rules))
    db = host.file(AIDE_DB)
    assert db.exists and db.user == "root" and db.mode & 0o077 == 0, \
        f"no root-only AIDE database at {AIDE_DB}: nothing to compare the files with"
    masked = host.run("systemctl is-enabled dailyaidecheck.timer").stdout.strip()
    assert masked in ("masked", ""), f"Debian's daily AIDE check is {masked}, not masked: it would compare " \
                                     "govbaseline's database with Debian's rules and alert on every file"
    last, hours, allowed = last_run(host, hostvars["__integrity_check_unit"], STATE,
                                    hostvars["integrity_check_calendar"],
                                    hostvars["integrity_check_randomized_delay_minutes"], "file integrity check",
                                    evidence=evidence)
    approved = f", approved {last['reason']!r}" if last.get("approved") else ""
    evidence("last integrity check", f"finished {hours:.1f} h ago{approved}, result {last['result']}; changed: "
             f"{named(last['changed']) or 'none'}; added: {named(last['added']) or 'none'}; "
             f"removed: {named(last['removed']) or 'none'}")
    assert hours <= allowed, f"the last file integrity check finished {hours:.1f} h ago (the schedule allows " \
                             f"{allowed:.0f} h)"
    assert last["result"] != "failed", f"the last file integrity check could not run: {last['error']}"
    changes = [f"{kind} {named(last[kind])}" for kind in ("changed", "added", "removed") if last[kind]]
    assert not changes, "files differ from the approved state (approve them if the change was wanted): " + \
        "; ".join(changes)


@pytest.mark.control("FIM-02")
def test_web_root_matches_the_known_good_copy_and_is_watched(host, hostvars, evidence):
    watch = host.service(f"{TAMPER_UNIT}.service")
    assert watch.is_running and watch.is_enabled, \
        f"{TAMPER_UNIT}.service is not running (and enabled at boot): tampering would go unnoticed"
    out = host.run(f"{COMMAND} diff")
    assert out.rc == 0, f"{COMMAND} diff failed: {(out.stderr or out.stdout)[-500:]}"
    diff = json.loads(out.stdout)
    root = hostvars["integrity_web_root"]
    source = hostvars["integrity_known_good_dir"] if hostvars["integrity_tamper_restore"] else "the approved manifest"
    evidence("web root compared with the known-good copy",
             f"{root} against {source}: " + ("; ".join(f"{kind} {named(diff[kind])}" for kind in
                                                       ("changed", "added", "removed") if diff.get(kind)) or
                                            diff.get("error") or "identical"))
    assert not diff.get("error"), f"the web root cannot be judged: {diff['error']}"
    pages = [f"{kind} {named(diff[kind])}" for kind in ("changed", "added", "removed") if diff[kind]]
    assert not pages, f"{root} differs from {source}: " + "; ".join(pages)
