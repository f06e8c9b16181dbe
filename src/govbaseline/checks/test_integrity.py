"""Checks for file integrity FIM-01 and web tamper detection FIM-02 (role ``integrity``)."""

from __future__ import annotations

import json

import pytest

from govbaseline.checks.schedule import last_run

LISTED = 20


def named(paths: list[str]) -> str:
    return ", ".join(paths[:LISTED]) + (f" and {len(paths) - LISTED} more" if len(paths) > LISTED else "")


@pytest.mark.control("FIM-01")
def test_aide_database_is_current_and_no_file_changed(host, hostvars, evidence):
    aide_conf, aide_db = hostvars["__integrity_aide_conf"], hostvars["__integrity_aide_db"]
    conf = host.file(aide_conf)
    assert conf.exists and "Role integrity: FIM-01" in conf.content_string, \
        f"{aide_conf} is missing or not govbaseline's: AIDE has no rules for this host"
    rules = [line for line in conf.content_string.splitlines() if line.endswith(" Govbaseline")]
    evidence("folders AIDE records", "\n".join(rules))
    db = host.file(aide_db)
    assert db.exists and db.user == "root" and db.mode & 0o077 == 0, \
        f"no root-only AIDE database at {aide_db}: nothing to compare the files with"
    masked = host.run("systemctl is-enabled dailyaidecheck.timer").stdout.strip()
    assert masked in ("masked", ""), f"Debian's daily AIDE check is {masked}, not masked: it would compare " \
                                     "govbaseline's database with Debian's rules and alert on every file"
    last, hours, allowed = last_run(host, hostvars["__integrity_check_unit"],
                                    f"{hostvars['__integrity_state_dir']}/aide.json",
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
    tamper_unit, command = hostvars["__integrity_tamper_unit"], hostvars["__integrity_command"]
    watch = host.service(f"{tamper_unit}.service")
    assert watch.is_running and watch.is_enabled, \
        f"{tamper_unit}.service is not running (and enabled at boot): tampering would go unnoticed"
    out = host.run(f"{command} diff")
    assert out.rc == 0, f"{command} diff failed: {(out.stderr or out.stdout)[-500:]}"
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
