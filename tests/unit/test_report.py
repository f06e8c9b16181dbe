"""How check results roll up into control, host and clause statuses, and what the evidence holds."""

from __future__ import annotations

import io
import json
import tarfile

import jsonschema
import pytest

from govbaseline import report
from govbaseline.catalogue import load_catalogue
from govbaseline.report import build, control_status
from govbaseline.verify import masker, redact, secret_values


def test_a_control_fails_if_any_check_fails_and_passes_with_not_applicable_checks():
    assert control_status(["pass", "skipped"]) == "pass"
    assert control_status(["pass", "fail", "skipped"]) == "fail"
    assert control_status(["error", "fail"]) == "error"
    assert control_status(["skipped", "skipped"]) == "skipped"


def test_build_counts_controls_per_host():
    results = [
        {"host": "web1", "controls": ["ACC-02"], "check": "a", "status": "pass", "message": "", "duration": 0.1,
         "evidence": []},
        {"host": "web1", "controls": ["ACC-02"], "check": "b", "status": "skipped", "message": "none declared",
         "duration": 0.0, "evidence": []},
        {"host": "web1", "controls": ["FW-01"], "check": "c", "status": "fail", "message": "x", "duration": 0.0,
         "evidence": []},
    ]
    data = build(results, ["web1"])
    controls = data["hosts"]["web1"]["controls"]
    assert controls["ACC-02"]["status"] == "pass" and controls["FW-01"]["status"] == "fail"
    assert data["summary"]["passed"] is False
    assert data["hosts"]["web1"]["summary"]["score"] == 50


# -- report.json schema, policies, drift, evidence bundle, escaping, secrets ----------------------

SCHEMA = json.loads(report.SCHEMA_FILE.read_text())


def _result(host, control, status, check="c", message="", evidence=None):
    return {"host": host, "controls": [control], "check": check, "status": status, "message": message,
            "duration": 0.1, "evidence": evidence or []}


def _clause(data, clause_id):
    policy = clause_id.split(":", 1)[0]
    return next(c for c in data["policies"][policy] if c["clause"] == clause_id)


def test_report_matches_its_schema_and_the_schema_refuses_a_wrong_report():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    data = report.build([_result("web1", "FW-01", "pass"), _result("web2", "FW-01", "fail", message="port 23 open")],
                        ["web1", "web2", "web3"], unreachable={"web3": "SSH port did not answer"})
    jsonschema.validate(data, SCHEMA)
    data["hosts"]["web1"]["controls"]["FW-01"]["status"] = "green"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, SCHEMA)


def test_clause_status_follows_the_controls_behind_it_across_hosts():
    catalogue = load_catalogue()
    firewall = next(c for c in catalogue.clauses if c.id == "bureau-of-mines-security-measures:measures.2")
    behind = [c.id for c in catalogue.answering(firewall.id) if c.status == "implemented"]
    assert len(behind) >= 2, behind
    all_pass = [_result("web1", cid, "pass") for cid in behind]
    assert _clause(report.build(all_pass, ["web1"]), firewall.id)["status"] == report.ANSWERED
    one_fails = [*all_pass[1:], _result("web1", behind[0], "fail")]
    partly = _clause(report.build(one_fails, ["web1"]), firewall.id)
    assert partly["status"] == report.PARTLY and partly["controls"][behind[0]] == "fail"
    # The same control passing on one host and failing on another is not answered for the fleet.
    split = [_result("web1", cid, "pass") for cid in behind] + [_result("web2", cid, "fail") for cid in behind]
    assert _clause(report.build(split, ["web1", "web2"]), firewall.id)["status"] == report.NOT_ANSWERED
    assert _clause(report.build([], ["web1"]), firewall.id)["status"] == report.NOT_CHECKED
    # A run that checked only some of the controls behind a clause cannot call it answered.
    assert _clause(report.build(all_pass[:1], ["web1"]), firewall.id)["status"] == report.PARTLY
    organisational = next(c for c in catalogue.clauses if not c.server)
    entry = _clause(report.build(all_pass, ["web1"]), organisational.id)
    assert entry["status"] == report.NOT_A_SERVER_MATTER and entry["why"] == organisational.why


def test_a_control_switched_off_answers_no_clause():
    """Issue 17, kind 4: a role switched off on a host makes its controls not applicable there, but a
    clause they answer is then at best partly answered: one inventory line takes no control out of
    the verdict."""
    catalogue = load_catalogue()
    firewall = next(c for c in catalogue.clauses if c.id == "bureau-of-mines-security-measures:measures.2")
    behind = [c.id for c in catalogue.answering(firewall.id) if c.status == "implemented"]
    off = {**_result("web1", behind[0], "skipped"),
           "message": f"Skipped: {report.SWITCHED_OFF}firewall_enabled is false on this host: the role is not applied"}
    data = report.build([off, *[_result("web1", cid, "pass") for cid in behind[1:]]], ["web1"])
    jsonschema.validate(data, SCHEMA)
    entry = _clause(data, firewall.id)
    assert entry["controls"][behind[0]] == "switched off" and entry["status"] == report.PARTLY
    assert data["hosts"]["web1"]["controls"][behind[0]]["status"] == "skipped"
    # Skipped for another reason (nothing of the kind declared on the host) still neither answers nor fails.
    other = {**off, "message": "no vendor accounts declared"}
    data = report.build([other, *[_result("web1", cid, "pass") for cid in behind[1:]]], ["web1"])
    assert _clause(data, firewall.id)["status"] == report.ANSWERED


def test_drift_lists_every_control_whose_status_changed():
    before = report.build([_result("web1", "FW-01", "pass"), _result("web1", "TLS-01", "fail")], ["web1"])
    after = report.build([_result("web1", "FW-01", "fail"), _result("web1", "TLS-01", "fail"),
                          _result("web2", "FW-01", "pass")], ["web1", "web2"], previous=before)
    assert after["drift"]["previous"] == before["generated"]
    assert after["drift"]["changes"] == [
        {"host": "web1", "control": "FW-01", "before": "pass", "after": "fail"},
        {"host": "web2", "control": "FW-01", "before": "absent", "after": "pass"},
    ]
    assert report.build([], ["web1"])["drift"] == {"previous": None, "changes": []}


def test_an_unreachable_host_fails_the_run_and_is_named():
    data = report.build([_result("web1", "FW-01", "pass")], ["web1", "web2"], unreachable={"web2": "refused"})
    assert data["summary"]["passed"] is False and data["summary"]["unreachable"] == ["web2"]
    assert data["hosts"]["web2"] == {"reachable": False, "error": "refused", "controls": {},
                                     "summary": {"controls": {}, "score": None}}
    assert "Not checked: refused" in report.render_html(data)


def test_evidence_cannot_inject_markup():
    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    evidence = [{"command": hostile, "rc": 0, "stdout": hostile, "stderr": "", "time": "2026-01-01T00:00:00Z"}]
    data = report.build([_result(hostile, "FW-01", "fail", check=hostile, message=hostile, evidence=evidence)],
                        [hostile], inventory=hostile)
    page = report.render_html(data)
    # The page's one script is its own filter, at the end; nothing from the host became markup.
    assert page.count("<script>") == 1 and page.index("<script>") > page.rindex("&lt;script&gt;")
    assert hostile not in page and "<img" not in page and page.count("&lt;script&gt;") >= 5


def test_bundle_holds_every_file_with_a_manifest_that_catches_an_edit(tmp_path):
    data = report.build([_result("web1", "FW-01", "pass")], ["web1"])
    (tmp_path / "junit.xml").write_text("<testsuites/>")
    digest = report.write(data, tmp_path)
    bundle = tmp_path / report.BUNDLE
    assert report.verify_bundle(bundle) == []
    assert (tmp_path / f"{report.BUNDLE}.sha256").read_text().split()[0] == digest
    with tarfile.open(bundle) as tar:
        assert sorted(tar.getnames()) == sorted([*report.EVIDENCE_FILES, report.MANIFEST])
    # The same evidence makes the same archive, so the hash can be recomputed.
    assert report.write_bundle(tmp_path, data["generated"]) == digest
    # An edited report in a repacked bundle no longer matches the manifest.
    edited = tmp_path / "edited.tar.gz"
    with tarfile.open(bundle) as src, tarfile.open(edited, "w:gz") as dst:
        for member in src.getmembers():
            content = src.extractfile(member).read()
            if member.name == "report.json":
                content = content.replace(b'"pass"', b'"fail"')
                member.size = len(content)
            dst.addfile(member, io.BytesIO(content))
    assert report.verify_bundle(edited) == ["report.json does not match its SHA-256 in the manifest"]


def test_secrets_from_the_inventory_are_masked_in_evidence():
    hostvars = {"web1": {"backup_repository_password": "s3cret-passphrase", "alert_smtp": {"password": "hunter22"},
                         "tls_server_names": ["web1"]}}
    secrets = secret_values(hostvars)
    assert secrets == {"s3cret-passphrase", "hunter22"}
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----"
    evidence = [{"command": "cat /etc/x", "rc": 0, "stdout": f"pass=s3cret-passphrase\n{pem}\nweb1",
                 "stderr": "hunter22", "time": "t"}]
    results = [_result("web1", "BAK-01", "fail", message="saw hunter22", evidence=evidence)]
    redact(results, secrets)
    text = json.dumps(results)
    assert "s3cret" not in text and "hunter22" not in text and "MIIEv" not in text and "web1" in text


def test_secrets_are_masked_in_junit_xml_also_where_xml_escapes_them():
    from xml.etree import ElementTree

    secret = "p<w>&'d\"1"  # noqa: S105 - a made-up secret
    junit = ElementTree.Element("testsuite")
    case = ElementTree.SubElement(junit, "testcase", name="test_backup")
    ElementTree.SubElement(case, "failure", message=f"saw {secret}").text = f"config: password={secret}"
    xml = ElementTree.tostring(junit, encoding="unicode")
    assert secret not in xml and "&lt;w&gt;" in xml  # escaped: a plain replace would miss it
    masked = masker(secret_values({"web1": {"backup_repository_password": secret}}))(xml)
    failure = ElementTree.fromstring(masked).find("testcase/failure")  # noqa: S314 - XML this test made
    assert failure is not None and failure.get("message") == "saw ********"
    assert failure.text == "config: password=********" and "w&gt;" not in masked


def test_rollout_plan_puts_supporting_hosts_with_the_canaries_then_batches():
    from govbaseline.rollout import plan

    hosts = ["backup1", "web1", "web2", "web3", "web4", "web5"]
    web = hosts[1:]
    assert plan(hosts, web, canary=1, batch_size=2) == [["backup1", "web1"], ["web2", "web3"], ["web4", "web5"]]
    assert plan(hosts, web, canary=5, batch_size=1) == [hosts]
    with pytest.raises(ValueError, match="at least 1"):
        plan(hosts, web, canary=0, batch_size=1)


def test_a_control_a_command_enforces_is_named_and_does_not_hold_back_its_clauses():
    """REP-01 is answered by `govbaseline inspection`, never by a host's checks: a clause it shares
    with host controls is answered when those pass (it showed "partly" for ever before)."""
    catalogue = load_catalogue()
    rep = next(c for c in catalogue.controls if c.id == "REP-01")
    clause = next(cl for cl in rep.clauses
                  if any(c.id != "REP-01" and c.status == "implemented" for c in catalogue.answering(cl)))
    others = [c.id for c in catalogue.answering(clause) if c.id != "REP-01"]
    hosts = {"web1": {"controls": {cid: {"status": "pass", "checks": []} for cid in others}}}
    entry = next(e for entries in report.policy_summary(catalogue, hosts).values() for e in entries
                 if e["clause"] == clause)
    assert entry["controls"]["REP-01"] == "by govbaseline inspection"
    assert entry["status"] == report.ANSWERED, entry
