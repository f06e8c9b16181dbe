"""Waivers: what a waivers file may say, how a malformed one is refused, how verify reports them,
and that both engines skip the same work for a waived control."""

from __future__ import annotations

import datetime as dt
import json
import re

import jsonschema
import pytest

from govbaseline import report
from govbaseline.deploys.common import part_controls
from govbaseline.inventory import ResolvedInventory
from govbaseline.paths import PACKAGE_DIR, ROLES_DIR
from govbaseline.waivers import WaiverError, check_scope, find, load, state, waived
from tests.paths import ROOT

TODAY = dt.date(2026, 11, 23)
EXAMPLE = ROOT / "examples" / "waivers.yml"
GOOD = """\
# waivers of the web fleet
- control: AV-02
  scope: {hosts: [web1]}
  justification: scans overload the legacy CMS until its migration
  approver: J. Doe, information security officer
  expires: 2026-12-31
- control: TLS-05
  scope:
    groups: [legacy]
  justification: the WAF breaks the old forms
  approver: J. Doe
  expires: 2026-11-30
- control: FW-03
  scope: {hosts: [web2]}
  justification: load test
  approver: J. Doe
  expires: 2026-11-01
"""


def write(tmp_path, text):
    path = tmp_path / "waivers.yml"
    path.write_text(text)
    return path


def test_a_good_file_is_read_with_scope_states_and_lines(tmp_path):
    waivers = load(write(tmp_path, GOOD))
    assert [(w.control, w.hosts, w.groups, w.expires) for w in waivers] == [
        ("AV-02", ("web1",), (), dt.date(2026, 12, 31)),
        ("TLS-05", (), ("legacy",), dt.date(2026, 11, 30)),
        ("FW-03", ("web2",), (), dt.date(2026, 11, 1))]
    assert waivers[0].source.endswith("waivers.yml:2")
    assert [state(w, TODAY) for w in waivers] == ["active", "expiring soon", "expired"]
    # The last day still holds; the day after, the control is enforced and judged again.
    assert set(waived(waivers, "web1", ["legacy"], TODAY)) == {"AV-02", "TLS-05"}
    assert set(waived(waivers, "web2", [], TODAY)) == set()
    assert set(waived(waivers, "web1", [], dt.date(2027, 1, 1))) == set()


@pytest.mark.parametrize(("text", "line", "words"), [
    ("- control: AV-02\n  scope: {hosts: [web1]}\n  justification: x\n  approver: y\n", 1, "expires is missing"),
    (GOOD.replace("expires: 2026-12-31", "expires: end of year"), 6, "'end of year' is not a date"),
    (GOOD.replace("control: TLS-05", "control: TLS-99"), 7, "'TLS-99' is not a control of the catalogue"),
    (GOOD.replace("control: TLS-05", "control: REP-01"), 7, "REP-01 is enforced by `govbaseline inspection`"),
    (GOOD.replace("scope: {hosts: [web1]}", "scope: {hosts: []}"), 3, "scope names no host and no group"),
    (GOOD.replace("scope: {hosts: [web1]}", "scope: web1"), 3, "scope must be a mapping"),
    (GOOD.replace("approver: J. Doe\n", "approver: ''\n", 1), 11, "approver must be a non-empty text"),
    (GOOD.replace("  justification: load test", "  justification: load test\n  ticket: 42"), 16,
     "ticket is not a waiver field"),
    ("control: AV-02\n", 1, "a waivers file is a list"),
    ("- control: [\n", 2, "not valid YAML"),
], ids=["missing", "date", "unknown-control", "command-control", "empty-scope", "scope-type", "empty-approver",
        "unknown-field", "not-a-list", "bad-yaml"])
def test_a_malformed_waiver_is_an_error_naming_its_line(tmp_path, text, line, words):
    with pytest.raises(WaiverError) as refused:
        load(write(tmp_path, text))
    assert f"waivers.yml:{line}:" in str(refused.value) and words in str(refused.value), str(refused.value)


def test_scope_must_name_hosts_and_groups_of_the_inventory(tmp_path):
    waivers = load(write(tmp_path, GOOD))
    fleet = ResolvedInventory({"web1": {}, "web2": {}}, {"all": ["web1", "web2"], "legacy": ["web2"],
                                                          "webservers": ["web1", "web2"]})
    check_scope(waivers, fleet)
    with pytest.raises(WaiverError, match=r"waivers.yml:2: waiver of AV-02: host 'web1' is not in the inventory"):
        check_scope(waivers, ResolvedInventory({"web2": {}}, {"all": ["web2"], "legacy": ["web2"]}))


def test_without_a_file_there_are_no_waivers_and_a_named_file_must_exist(tmp_path):
    assert find(None) == []
    assert len(find(write(tmp_path, GOOD))) == 3
    with pytest.raises(WaiverError, match="cannot be read"):
        find(tmp_path / "missing.yml")
    assert load(EXAMPLE) == [], "the documented example holds no waiver"


def _result(host, control, status):
    return {"host": host, "controls": [control], "check": "c", "status": status, "message": "", "duration": 0.1,
            "evidence": []}


def test_verify_reports_waived_until_expiry_then_judges_the_control(tmp_path):
    waivers = load(write(tmp_path, GOOD))
    results = [_result("web1", "AV-02", "fail"), _result("web1", "TLS-05", "fail"), _result("web2", "FW-03", "fail"),
               _result("web2", "AV-02", "fail")]
    data = report.build(results, ["web1", "web2"], waivers=waivers, groups={"web1": ["legacy"], "web2": []},
                        today=TODAY)
    jsonschema.validate(data, json.loads(report.SCHEMA_FILE.read_text()))
    web1, web2 = data["hosts"]["web1"]["controls"], data["hosts"]["web2"]["controls"]
    assert web1["AV-02"]["status"] == "waived" and web1["AV-02"]["waiver"]["approver"].startswith("J. Doe")
    assert web1["AV-02"]["checks"][0]["status"] == "fail", "the checks still run, as evidence"
    assert web1["TLS-05"]["status"] == "waived"
    assert web2["FW-03"]["status"] == "fail", "an expired waiver no longer covers the control"
    assert web2["AV-02"]["status"] == "fail", "a waiver covers only its scope"
    assert data["hosts"]["web1"]["summary"]["score"] is None and not data["summary"]["passed"]
    page = report.render_html(data)
    top = page[:page.index('id="policies"')]
    assert "expired" in top and "FW-03" in top and "expiring soon" in top and "TLS-05" in top
    only_waived = report.build(results[:2], ["web1"], waivers=waivers, groups={"web1": ["legacy"]}, today=TODAY)
    assert only_waived["summary"]["passed"] is True


def test_both_engines_skip_the_same_parts_of_each_role():
    """Every task file of a role's tasks/main.yml is a part of its pyinfra deploy guarded by
    ``common.enforced(ROLE, "<file>")``, so a waiver skips the same work in both engines."""
    for role_dir in sorted(p for p in ROLES_DIR.iterdir() if (p / "tasks" / "main.yml").exists()):
        role = role_dir.name
        parts = {name for name, controls in part_controls(role).items() if controls}
        source = (PACKAGE_DIR / "deploys" / f"{role}.py").read_text()
        guarded = set(re.findall(r'common\.enforced\(ROLE, "([a-z_]+)"\)', source))
        assert guarded == parts, (role, sorted(parts), sorted(guarded))


@pytest.mark.parametrize("argv", [["apply"], ["apply", "--engine", "pyinfra"], ["apply", "--canary", "1"],
                                  ["verify", "--report-dir", "{tmp}/report"]],
                         ids=["apply-ansible", "apply-pyinfra", "rollout", "verify"])
def test_a_waiver_outside_the_inventory_is_refused_the_same_way_everywhere(tmp_path, capsys, argv):
    """apply (both engines), a rollout and verify refuse before touching any host: the inventory's
    host cannot be reached, so any attempt to connect would show as a different failure."""
    from govbaseline.cli import main

    inventory = tmp_path / "hosts.yml"
    inventory.write_text("webservers:\n  hosts:\n    web2:\n      ansible_host: 192.0.2.1\n    web3:\n"
                         "      ansible_host: 192.0.2.2\n  children:\n    legacy:\n      hosts:\n        web3:\n")
    waivers = write(tmp_path, GOOD)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code = main([*argv, "-i", str(inventory), "--waivers", str(waivers), "--limit", "web3"])
    err = capsys.readouterr().err
    assert code == 2
    assert "waivers.yml:2: waiver of AV-02: host 'web1' is not in the inventory" in err, err
    assert not (tmp_path / "report").exists()
