"""The OSCAL exports (issue 22 part 4): every document loads back through compliance-trestle's models and
passes `trestle validate` in a trestle workspace; findings point at existing controls and clauses; a failing
check becomes a not-satisfied finding; the same input gives the same document."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import subprocess
import sys

import pytest
from trestle.oscal.assessment_results import AssessmentResults
from trestle.oscal.catalog import Catalog
from trestle.oscal.component import ComponentDefinition
from trestle.oscal.profile import Profile

import govbaseline
from govbaseline import oscal, report
from govbaseline.catalogue import Catalogue, load_catalogue
from govbaseline.cli import main
from govbaseline.waivers import Waiver

CATALOGUE = load_catalogue()
MODELS = {"catalog": Catalog, "profile": Profile, "component": ComponentDefinition, "results": AssessmentResults}
NS = oscal.NS


def _props(item, name):
    return [p.value for p in item.props or [] if p.name == name and p.ns == NS]


def _result(host, control, status, check, message="", evidence=None):
    return {"host": host, "controls": [control], "check": check, "status": status, "message": message,
            "duration": 0.1, "evidence": evidence or []}


def _report():
    """A run on web1 (FW-01 passes, FW-02 fails, TLS-01 fails under a waiver, LOG-01 errors, ACC-02 is not
    applicable, SYS-01 answers no clause) with web2 unreachable."""
    evidence = [{"command": "nft list ruleset", "rc": 0, "stdout": "table inet filter {", "stderr": "",
                 "time": "2026-11-30T10:00:00Z"}]
    waiver = Waiver("TLS-01", ("web1",), (), "A legacy client until its migration", "CISO",
                    dt.date(2027, 1, 31), "waivers.yml:3")
    results = [_result("web1", "FW-01", "pass", "test_default_deny", evidence=evidence),
               _result("web1", "FW-02", "pass", "test_ssh_a"),
               _result("web1", "FW-02", "fail", "test_ssh_b", "port 22 open to 0.0.0.0/0"),
               _result("web1", "TLS-01", "fail", "test_tls", "TLS 1.0 offered"),
               _result("web1", "LOG-01", "error", "test_audit", "auditctl: not found"),
               _result("web1", "ACC-02", "skipped", "test_vendor", "Skipped: no vendor accounts declared"),
               _result("web1", "SYS-01", "pass", "test_kernel")]
    # web1 is also in pull mode, and its own last ansible-pull failed (a report of `govbaseline collect`).
    pull = {"finished": "2026-11-30T09:30:00Z", "commit": "4f1c4be", "apply_returncode": 2,
            "apply_log_tail": "fatal: [web1]: FAILED! => nginx -t failed"}
    return report.build(results, ["web1", "web2"], inventory="inventory.yml",
                        unreachable={"web2": "ssh: connect timed out"}, waivers=[waiver],
                        today=dt.date(2026, 11, 30), pulls={"web1": pull})


@pytest.fixture
def exported(tmp_path, monkeypatch):
    """All four documents written by the CLI into one folder, under their default names."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "report.json").write_text(json.dumps(_report()))
    for name in ("catalog", "profile", "component"):
        assert main(["oscal", name]) == 0
    assert main(["oscal", "results", "report.json"]) == 0
    return tmp_path


def _load(folder):
    return {name: model.oscal_read(folder / oscal.FILE_NAMES[name]) for name, model in MODELS.items()}


def test_catalog_holds_every_clause_and_the_profile_selects_those_a_server_can_satisfy(exported):
    docs = _load(exported)
    controls = {c.id: c for g in docs["catalog"].groups for c in g.controls}
    assert sorted(oscal.clause_id(t) for t in controls) == sorted(c.id for c in CATALOGUE.clauses)
    for clause in CATALOGUE.clauses:
        control = controls[oscal.clause_token(clause.id)]
        assert [p.value for p in control.props if p.name == "label"] == [clause.id]
        statement = next(p for p in control.parts if p.name == "statement")
        assert statement.id == oscal.statement_id(clause.id) and statement.prose == clause.quote
    assert [g.id for g in docs["catalog"].groups] == list(dict.fromkeys(c.policy for c in CATALOGUE.clauses))
    (imported,) = docs["profile"].imports
    selected = imported.include_controls[0].with_ids
    assert sorted(selected) == sorted(oscal.clause_token(c.id) for c in CATALOGUE.clauses if c.server)
    # The import points at the catalog through the profile's back matter.
    (resource,) = docs["profile"].back_matter.resources
    assert imported.href == f"#{resource.uuid}" and resource.rlinks[0].href == oscal.CATALOG_HREF


def test_each_control_of_the_component_definition_implements_catalogue_clauses_with_its_references(exported):
    docs = _load(exported)
    selected = set(docs["profile"].imports[0].include_controls[0].with_ids)
    (component,) = docs["component"].components
    implemented = {}
    for implementation in component.control_implementations:
        (control_id,) = _props(implementation, "control-id")
        control = CATALOGUE.get(control_id)
        implemented[control_id] = implementation
        assert implementation.source == oscal.PROFILE_HREF
        assert [r.control_id for r in implementation.implemented_requirements] == \
            [oscal.clause_token(c) for c in control.clauses]
        assert {r.control_id for r in implementation.implemented_requirements} <= selected
        assert _props(implementation, "iso27001") == control.iso27001 and _props(implementation, "cis") == control.cis
        assert _props(implementation, "check") == control.checks
        assert _props(implementation, "status") == [control.status]
    unasked = _props(component, "unasked-control")
    # Every control is there: as the implementation of its clauses, or (asked by none) a property.
    assert sorted([*implemented, *unasked]) == sorted(c.id for c in CATALOGUE.controls)
    assert unasked and all(not CATALOGUE.get(c).clauses for c in unasked)


def test_a_control_no_role_carries_is_exported_with_the_command_that_enforces_it():
    # Issue 22 makes REP-01 such a control (role "", command "inspection").
    control = next(c for c in CATALOGUE.controls if c.clauses)
    odd = dataclasses.replace(control, role="")
    object.__setattr__(odd, "command", "inspection")
    catalogue = Catalogue(clauses=CATALOGUE.clauses, controls=[odd])
    (implementation,) = oscal.component_definition(catalogue).components[0].control_implementations
    assert not _props(implementation, "role") and _props(implementation, "command") == ["inspection"]
    assert "enforced by the `govbaseline inspection` command" in implementation.description


def test_every_finding_points_at_an_existing_control_clause_and_implementation(exported):
    docs = _load(exported)
    statements = {p.id for g in docs["catalog"].groups for c in g.controls for p in c.parts}
    requirements = {r.uuid: (_props(i, "control-id")[0], oscal.clause_id(r.control_id))
                    for i in docs["component"].components[0].control_implementations
                    for r in i.implemented_requirements}
    (result,) = docs["results"].results
    observations = {o.uuid: o for o in result.observations}
    hosts = {i.uuid: _props(i, "host-name")[0] for i in result.local_definitions.inventory_items}
    assert sorted(hosts.values()) == ["web1", "web2"]
    assert result.findings
    for finding in result.findings:
        (control_id,) = _props(finding, "control-id")
        clause = oscal.clause_id(finding.target.target_id.removesuffix(oscal.STATEMENT))
        assert finding.target.type.value == "statement-id" and finding.target.target_id in statements
        assert clause in CATALOGUE.get(control_id).clauses
        assert requirements[finding.implementation_statement_uuid] == (control_id, clause)
        for related in finding.related_observations:
            observation = observations[related.observation_uuid]
            assert _props(observation, "control-id") == [control_id]
            assert [hosts[s.subject_uuid] for s in observation.subjects] == _props(finding, "host")
    # Every check of the report is an observation of its host, with its evidence.
    checks = [(h, c["check"]) for h, d in _report()["hosts"].items() for ctl in d["controls"].values()
              for c in ctl["checks"]]
    observed = [(hosts[o.subjects[0].subject_uuid], _props(o, "check")[0]) for o in observations.values()
                if _props(o, "check")]
    assert sorted(observed) == sorted(checks)
    nft = next(o for o in observations.values() if _props(o, "check") == ["test_default_deny"])
    assert "nft list ruleset" in nft.relevant_evidence[0].description
    assert nft.collected == dt.datetime(2026, 11, 30, 10, tzinfo=dt.UTC)


def _states(result, control_id):
    return {f.target.target_id: (f.target.status.state.value, f.target.status.reason)
            for f in result.findings if _props(f, "control-id") == [control_id]}


def test_a_failing_check_is_a_not_satisfied_finding_for_every_clause_of_its_control(exported):
    (result,) = _load(exported)["results"].results
    for control_id, expected in (("FW-01", ("satisfied", "pass")), ("FW-02", ("not-satisfied", "fail")),
                                 ("LOG-01", ("not-satisfied", "other"))):
        states = _states(result, control_id)
        assert set(states) == {oscal.statement_id(c) for c in CATALOGUE.get(control_id).clauses}
        assert set(states.values()) == {expected}, control_id
    # Not applicable here (skipped), or no clause to point at: observations only, no finding.
    assert not _states(result, "ACC-02") and not _states(result, "SYS-01")
    unreachable = next(o for o in result.observations if _props(o, "status") == ["unreachable"])
    assert unreachable.description == "ssh: connect timed out"
    pull = next(o for o in result.observations if _props(o, "status") == ["pull-failed"])
    assert "exit code 2" in pull.description and "nginx -t failed" in pull.remarks
    (web1,) = [i for i in result.local_definitions.inventory_items if _props(i, "host-name") == ["web1"]]
    assert _props(web1, "pull-commit") == ["4f1c4be"]
    assert _props(result, "passed") == ["false"]


def test_the_results_name_the_exact_report_json_by_its_hash(exported):
    results = _load(exported)["results"]
    (report_json,) = [r for r in results.back_matter.resources if r.rlinks[0].href == "report.json"]
    (digest,) = report_json.rlinks[0].hashes
    assert digest.value == hashlib.sha256((exported / "report.json").read_bytes()).hexdigest()
    assert results.import_ap.href == f"#{next(r.uuid for r in results.back_matter.resources if r is not report_json)}"


def test_a_waived_control_is_judged_by_its_checks_and_carries_its_approved_deviation(exported):
    (result,) = _load(exported)["results"].results
    assert set(_states(result, "TLS-01").values()) == {("not-satisfied", "fail")}
    (risk,) = result.risks
    assert json.loads(risk.json(by_alias=True, exclude_none=True))["status"] == "deviation-approved"
    assert risk.description == "A legacy client until its migration" and "CISO" in risk.statement
    assert risk.deadline.tzinfo is not None and risk.deadline.date() == dt.date(2027, 1, 31)
    waived = [f for f in result.findings if _props(f, "control-id") == ["TLS-01"]]
    assert all(f.related_risks[0].risk_uuid == risk.uuid and _props(f, "status") == ["waived"] for f in waived)


def test_the_same_input_gives_the_same_document_with_timezone_aware_times(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1790000000")
    for name, build in oscal.DOCUMENTS.items():
        first, second = build(), build()
        assert first.oscal_serialize_json() == second.oscal_serialize_json(), name
        assert first.metadata.last_modified.tzinfo is not None
    data = _report()
    first = oscal.assessment_results(data)
    assert first.oscal_serialize_json() == oscal.assessment_results(data).oscal_serialize_json()
    assert first.results[0].end.utcoffset() == dt.timedelta(0)
    # Another run: another document, but each host keeps its inventory item's UUID.
    later = dict(data, generated="2026-12-01T00:00:00Z")
    second = oscal.assessment_results(later)
    assert second.uuid != first.uuid
    assert [i.uuid for i in second.results[0].local_definitions.inventory_items] == \
        [i.uuid for i in first.results[0].local_definitions.inventory_items]


def test_trestle_validates_every_document_in_a_workspace(exported, tmp_path):
    workspace = tmp_path / "trestle"
    workspace.mkdir()

    def trestle(*args):
        return subprocess.run([sys.executable, "-m", "trestle", *args], cwd=workspace, capture_output=True,
                              text=True, check=False, timeout=300)

    assert trestle("init").returncode == 0
    for name in MODELS:
        imported = trestle("import", "-f", str(exported / oscal.FILE_NAMES[name]), "-o", "govbaseline")
        assert imported.returncode == 0, imported.stdout + imported.stderr
    validated = trestle("validate", "-a")
    output = validated.stdout + validated.stderr
    assert validated.returncode == 0, output
    assert output.count("VALID: Model") == len(MODELS), output
    assert "INVALID" not in output


def test_a_file_that_is_not_a_report_is_refused_by_name(tmp_path, capsys):
    assert main(["oscal", "results", str(tmp_path / "missing.json")]) == 2
    assert "missing.json does not exist" in capsys.readouterr().err
    (tmp_path / "other.json").write_text('{"catalog": {}}')
    assert main(["oscal", "results", str(tmp_path / "other.json"), "-o", str(tmp_path / "out.json")]) == 2
    assert "other.json is not a govbaseline report.json" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()


def test_without_the_extra_the_error_names_it(tmp_path, monkeypatch, capsys):
    # As if compliance-trestle were not installed: an import of it fails, govbaseline.oscal is imported anew.
    monkeypatch.setitem(sys.modules, "trestle.oscal", None)
    monkeypatch.delitem(sys.modules, "govbaseline.oscal")
    monkeypatch.delattr(govbaseline, "oscal")
    assert main(["oscal", "catalog", "-o", str(tmp_path / "catalog.json")]) == 2
    err = capsys.readouterr().err
    assert "compliance-trestle" in err and "pip install 'govbaseline[oscal]'" in err
    assert not (tmp_path / "catalog.json").exists()


def test_an_inspection_period_is_one_result_per_run_each_naming_its_archived_report(tmp_path, capsys):
    """inspection --oscal: the period's runs (and none outside it), each result linking its report.json
    in the history by relative path and SHA-256; trestle validates the document."""
    from govbaseline import history

    where = tmp_path / "history"
    days = ("2026-11-29", "2026-11-30", "2026-12-01", "2026-12-02")
    for n, day in enumerate(days):
        folder = tmp_path / f"run{n}"
        folder.mkdir()
        data = dict(_report(), generated=f"{day}T06:00:00Z")
        (folder / "report.json").write_text(json.dumps(data))
        history.archive(folder, where, {"web1": ["webservers"], "web2": ["webservers"]})
    out = tmp_path / "inspection"
    args = ["inspection", "--history", str(where), "--from", "2026-11-30", "--to", "2026-12-01", "-o", str(out)]
    assert main([*args, "--oscal"]) == 0
    assert f"oscal: {out / 'assessment-results.json'}" in capsys.readouterr().out
    results = AssessmentResults.oscal_read(out / "assessment-results.json")
    assert [r.end.date() for r in results.results] == [dt.date(2026, 11, 30), dt.date(2026, 12, 1)]
    reports = [r for r in results.back_matter.resources if r.title == "report.json of the run"]
    assert len(reports) == 2
    for resource in reports:
        archived = (out / resource.rlinks[0].href).resolve()
        assert archived.is_relative_to(where.resolve()) and archived.name == "report.json"
        assert resource.rlinks[0].hashes[0].value == hashlib.sha256(archived.read_bytes()).hexdigest()
    assert results.import_ap.href.removeprefix("#") in {r.uuid for r in results.back_matter.resources}
    workspace = tmp_path / "trestle"
    workspace.mkdir()
    for step in (["init"], ["import", "-f", str(out / "assessment-results.json"), "-o", "period"],
                 ["validate", "-a"]):
        done = subprocess.run([sys.executable, "-m", "trestle", *step], cwd=workspace, capture_output=True,
                              text=True, check=False, timeout=300)
        assert done.returncode == 0 and "INVALID" not in done.stdout, done.stdout + done.stderr
    # A period without a run has no results to export: refused before anything is written.
    empty = tmp_path / "empty"
    assert main(["inspection", "--history", str(where), "--from", "2026-01-01", "--to", "2026-01-31",
                 "-o", str(empty), "--oscal"]) == 2
    assert "no verify run in 2026-01-01 to 2026-01-31" in capsys.readouterr().err and not empty.exists()
