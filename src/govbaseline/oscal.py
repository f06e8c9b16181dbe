"""OSCAL exports (NIST's Open Security Controls Assessment Language), built with compliance-trestle's models.

- ``catalog``: the source policies' clauses (one group per policy, one control per clause, its quote the
  statement), as the catalogue cites them;
- ``profile``: the clauses a server can satisfy, selected from that catalog: govbaseline's baseline;
- ``component``: govbaseline as a component definition: one control implementation per control, an
  implemented requirement per clause it answers, its ISO/IEC 27001 and CIS references as properties;
- ``results``: a verify run's report.json as assessment results: the hosts as inventory items, one
  observation per check on a host (its evidence), one finding per host, control and clause it answers,
  pointing at the clause's statement and at the component's implemented requirement; a waiver is an
  approved deviation (a risk) tied to its finding.

Every document is a trestle pydantic model, so it is checked against OSCAL's types as it is built and
written by trestle itself (never hand-written JSON). Identifiers are UUID version 5 of what they name:
the same catalogue or report gives the same document, and a diff between two exports shows only what
changed. compliance-trestle is the optional extra ``govbaseline[oscal]`` (see pyproject.toml).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from govbaseline import __version__
from govbaseline.catalogue import Catalogue, Clause, Control, load_catalogue
from govbaseline.report import control_status

EXTRA = "oscal"


class MissingExtra(ValueError):
    """compliance-trestle is not installed: ``--oscal`` is refused before anything runs (exit 2)."""


try:
    from trestle.oscal import OSCAL_VERSION
    from trestle.oscal import assessment_results as ar
    from trestle.oscal import catalog as cat
    from trestle.oscal import common as cm
    from trestle.oscal import component as comp
    from trestle.oscal import profile as prof
except ModuleNotFoundError as exc:  # pragma: no cover - exercised by a test that hides trestle
    if not (exc.name or "").startswith("trestle"):
        raise
    raise MissingExtra(
        f"the OSCAL export needs compliance-trestle, which is not installed ({exc}): "
        f"pip install 'govbaseline[{EXTRA}]' (or ./scripts/setup.sh in a checkout)") from exc

# The namespace of govbaseline's own properties (OSCAL wants a namespace on any property name it does
# not define itself); the same host as report.schema.json's $id.
NS = "https://govbaseline.example/ns/oscal"
UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, NS)
# File names the documents refer to each other by (what `govbaseline oscal ... -o` writes by default).
CATALOG_HREF, PROFILE_HREF, COMPONENT_HREF = "catalog.json", "profile.json", "component-definition.json"
STATEMENT = "_smt"


def uuid_of(*parts: str) -> str:
    """The same name, the same UUID (version 5, govbaseline's namespace)."""
    return str(uuid.uuid5(UUID_NAMESPACE, "\x1f".join(parts)))


def clause_token(clause_id: str) -> str:
    """A clause id as an OSCAL control id (a token: no ``:``), e.g. ``kaohsiung-mvo-security-policy_3.6``;
    the catalogue's ids hold no ``_``, so ``clause_id`` reverses it."""
    return clause_id.replace(":", "_")


def clause_id(token: str) -> str:
    return token.replace("_", ":", 1)


def statement_id(clause: str) -> str:
    """The id of a clause's statement part in the catalog: what a finding targets."""
    return clause_token(clause) + STATEMENT


def _now() -> dt.datetime:
    """Now, or SOURCE_DATE_EPOCH where it is set (reproducible builds' convention): the catalogue's
    documents then come out byte for byte the same."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return dt.datetime.fromtimestamp(int(epoch), dt.UTC)
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _prop(name: str, value: object, remarks: str | None = None) -> cm.Property:
    return cm.Property(name=name, ns=NS, value=" ".join(str(value).split()), remarks=remarks)


def _metadata(title: str, when: dt.datetime, remarks: str | None = None) -> cm.Metadata:
    return cm.Metadata(title=title, last_modified=when, version=__version__, oscal_version=OSCAL_VERSION,
                       remarks=remarks)


def _digest(catalogue: Catalogue) -> str:
    """What the catalogue says, hashed: the name of the documents made from it."""
    return hashlib.sha256(json.dumps(catalogue.as_dict(), sort_keys=True).encode()).hexdigest()


def _resource(name: str, title: str, href: str, description: str) -> cm.Resource:
    return cm.Resource(uuid=uuid_of("resource", name, href), title=title, description=description,
                       rlinks=[cm.Rlink(href=href)])


# --- catalog and profile ---------------------------------------------------------------------------

def _catalog_control(clause: Clause) -> cat.Control:
    token = clause_token(clause.id)
    parts = [cm.Part(id=token + STATEMENT, name="statement", prose=clause.quote)]
    if not clause.server:
        parts.append(cm.Part(id=token + "_gdn", name="guidance", prose=f"Not a server matter: {clause.why}"))
    return cat.Control(id=token, title=clause.id.split(":", 1)[1],
                       props=[cm.Property(name="label", value=clause.id),
                              _prop("server-matter", str(clause.server).lower())],
                       parts=parts)


def catalog(catalogue: Catalogue | None = None, when: dt.datetime | None = None) -> cat.Catalog:
    """The source policies' clauses: a group per policy (its file stem), a control per clause."""
    catalogue = catalogue or load_catalogue()
    groups: dict[str, list[cat.Control]] = {}
    for clause in catalogue.clauses:
        groups.setdefault(clause.policy, []).append(_catalog_control(clause))
    return cat.Catalog(
        uuid=uuid_of("catalog", _digest(catalogue)),
        metadata=_metadata("govbaseline: the clauses of the source policies", when or _now(),
                           "Each control is a clause of a published public-sector security policy, cited "
                           "<policy file stem>:<item> (its label), its statement the policy's own words."),
        groups=[cat.Group2(id=policy, title=policy, controls=controls) for policy, controls in groups.items()])


def profile(catalogue: Catalogue | None = None, when: dt.datetime | None = None,
            catalog_href: str = CATALOG_HREF) -> prof.Profile:
    """govbaseline's baseline: the clauses a server can satisfy, from the catalog at ``catalog_href``."""
    catalogue = catalogue or load_catalogue()
    source = _resource("catalog", "govbaseline catalog of the policies' clauses", catalog_href,
                       "The OSCAL catalog `govbaseline oscal catalog` writes.")
    return prof.Profile(
        uuid=uuid_of("profile", _digest(catalogue), catalog_href),
        metadata=_metadata("govbaseline baseline: the policy clauses a server can satisfy", when or _now()),
        imports=[prof.Import2(href=f"#{source.uuid}", include_controls=[prof.SelectControl(
            with_ids=[clause_token(c.id) for c in catalogue.clauses if c.server])])],
        back_matter=cm.BackMatter(resources=[source]))


# --- component definition --------------------------------------------------------------------------

def implemented_requirement_uuid(control_id: str, clause: str) -> str:
    return uuid_of("implemented-requirement", control_id, clause)


def _command(control: Control) -> str:
    """The govbaseline command enforcing a control no role carries (``role: ""``), e.g. ``inspection``: the
    catalogue's ``command`` field, which issue 22 adds (read with a default until it is there)."""
    return str(getattr(control, "command", ""))


def _enforcer(control: Control) -> str:
    if control.role:
        return f"the {control.role} role"
    return f"the `govbaseline {_command(control)}` command" if _command(control) else "govbaseline"


def _control_props(control: Control) -> list[cm.Property]:
    props = [_prop("control-id", control.id), _prop("status", control.status)]
    props += [_prop("role", control.role)] if control.role else []
    props += [_prop("command", _command(control))] if _command(control) else []
    props += [_prop("check", check) for check in control.checks]
    props += [cm.Property(name="iso27001", ns=NS, value=ref, class_="ISO-IEC-27001-2022-Annex-A")
              for ref in control.iso27001]
    props += [_prop("cis", ref) for ref in control.cis]
    return props


def _control_implementation(control: Control, source: str) -> comp.ControlImplementation:
    return comp.ControlImplementation(
        uuid=uuid_of("control-implementation", control.id), source=source,
        description=f"{control.id}: {control.title} (enforced by {_enforcer(control)}, verified by "
                    f"{len(control.checks)} checks; {control.status})",
        props=_control_props(control),
        implemented_requirements=[comp.ImplementedRequirement(
            uuid=implemented_requirement_uuid(control.id, clause), control_id=clause_token(clause),
            description=f"{control.id} ({control.title}) answers {clause}.",
            props=[_prop("control-id", control.id)]) for clause in control.clauses])


def component_definition(catalogue: Catalogue | None = None, when: dt.datetime | None = None,
                         profile_href: str = PROFILE_HREF) -> comp.ComponentDefinition:
    """govbaseline as one software component implementing the profile's clauses. A control no clause
    asks for (it stands on the CIS benchmark alone) has nothing in the profile to implement: it is a
    property of the component, its references in the remarks."""
    catalogue = catalogue or load_catalogue()
    unasked = [_prop("unasked-control", c.id, f"{c.title}. {c.unasked} ISO/IEC 27001: {', '.join(c.iso27001)}. "
                     f"CIS: {'; '.join(c.cis)}.") for c in catalogue.controls if not c.clauses]
    component = comp.DefinedComponent(
        uuid=uuid_of("component", "govbaseline"), type="software", title="govbaseline",
        description="Security policy as code for Debian web servers: Ansible roles and pyinfra deploys "
                    "enforce each control, testinfra checks verify it (`govbaseline verify`).",
        props=[_prop("version", __version__), *unasked],
        control_implementations=[_control_implementation(c, profile_href)
                                 for c in catalogue.controls if c.clauses])
    return comp.ComponentDefinition(
        uuid=uuid_of("component-definition", _digest(catalogue), profile_href),
        metadata=_metadata("govbaseline component definition", when or _now()),
        components=[component])


# --- assessment results ----------------------------------------------------------------------------

def _utc(text: str) -> dt.datetime:
    """report.json's UTC times ("...Z") as timezone-aware datetimes."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)


def host_uuid(host: str) -> str:
    """A host's inventory item: the same in every run, so runs can be compared."""
    return uuid_of("host", host)


def _clip(text: str, limit: int = 2000) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n... ({len(text) - limit} more characters in report.json)"


def _evidence(item: dict[str, Any]) -> cm.RelevantEvidence:
    output = "\n".join(part for part in (item.get("stdout", ""), item.get("stderr", "")) if part.strip())
    return cm.RelevantEvidence(description=f"`{item['command']}` (exit code {item.get('rc')}, {item.get('time')})",
                               remarks=_clip(output) if output else None)


def _observation(run: str, host: str, control_id: str, check: dict[str, Any], when: dt.datetime) -> cm.Observation:
    times = [_utc(e["time"]) for e in check.get("evidence", []) if e.get("time")]
    return cm.Observation(
        uuid=uuid_of("observation", run, host, control_id, check["check"]),
        title=f"{control_id} {check['check']} on {host}: {check['status']}",
        description=check.get("message") or f"The check {check['status']}.",
        props=[_prop("control-id", control_id), _prop("check", check["check"]), _prop("status", check["status"])],
        methods=["TEST"],
        subjects=[cm.SubjectReference(subject_uuid=host_uuid(host), type="inventory-item", title=host)],
        relevant_evidence=[_evidence(e) for e in check.get("evidence", [])] or None,
        collected=min(times) if times else when)


def _risk(run: str, host: str, control_id: str, waiver: dict[str, Any]) -> cm.Risk:
    expires = dt.datetime.combine(dt.date.fromisoformat(waiver["expires"]), dt.time.max, dt.UTC).replace(microsecond=0)
    return cm.Risk(
        uuid=uuid_of("risk", run, host, control_id), title=f"{control_id} waived on {host}",
        description=waiver["justification"],
        statement=f"Approved by {waiver['approver']} until {waiver['expires']} ({waiver['source']}); "
                  f"the checks still ran, as evidence.",
        props=[_prop("control-id", control_id), _prop("approver", waiver["approver"]),
               _prop("waiver-source", waiver["source"]), _prop("waiver-state", waiver["state"])],
        status="deviation-approved", deadline=expires)


# A control's status in report.json (its checks' worst, or waived) as a finding's objective status.
STATE = {"pass": ("satisfied", "pass"), "fail": ("not-satisfied", "fail"), "error": ("not-satisfied", "other")}


def _host_findings(run: str, host: str, controls: dict[str, Any], catalogue: Catalogue, when: dt.datetime,
                   result: dict[str, list[Any]]) -> None:
    for control_id, control in sorted(controls.items()):
        observed = [_observation(run, host, control_id, check, when) for check in control["checks"]]
        result["observations"] += observed
        # A waived control is judged by its checks; its waiver becomes an approved deviation.
        status = control_status([c["status"] for c in control["checks"]]) if control["status"] == "waived" \
            else control["status"]
        clauses = catalogue.get(control_id).clauses if catalogue.has(control_id) else []
        if status not in STATE or not clauses:
            continue  # skipped (not applicable here), or no clause to point at: its observations stand alone
        risks = []
        if control.get("waiver"):
            risk = _risk(run, host, control_id, control["waiver"])
            result["risks"].append(risk)
            risks = [cm.AssociatedRisk(risk_uuid=risk.uuid)]
        state, reason = STATE[status]
        for clause in clauses:
            result["findings"].append(cm.Finding(
                uuid=uuid_of("finding", run, host, control_id, clause),
                title=f"{control_id} on {host}: {clause}",
                description=f"{control_id} ({control['title']}): {control['status']} on {host}.",
                props=[_prop("control-id", control_id), _prop("host", host), _prop("status", control["status"])],
                target=cm.FindingTarget(type="statement-id", target_id=statement_id(clause),
                                        status=cm.ObjectiveStatus(state=state, reason=reason)),
                implementation_statement_uuid=implemented_requirement_uuid(control_id, clause),
                related_observations=[cm.RelatedObservation(observation_uuid=o.uuid) for o in observed] or None,
                related_risks=risks or None))


def assessment_results(report: dict[str, Any], report_href: str = "report.json", report_sha256: str | None = None,
                       component_href: str = COMPONENT_HREF,
                       catalogue: Catalogue | None = None) -> ar.AssessmentResults:
    """A verify run (report.json's data) as OSCAL assessment results with one result; ``report_sha256``,
    the hash of the report.json file, goes with its link, so the results name the exact evidence."""
    catalogue = catalogue or load_catalogue()
    when = _utc(report["generated"])
    digest = hashlib.sha256(json.dumps(report, sort_keys=True).encode()).hexdigest()
    run = f"{report['generated']} {digest}"
    parts: dict[str, list[Any]] = {"observations": [], "findings": [], "risks": []}
    items = []
    for host, data in sorted(report["hosts"].items()):
        score = data.get("summary", {}).get("score")
        pull = data.get("pull")  # a host in pull mode (a report of `govbaseline collect`): its own run
        items.append(cm.InventoryItem(
            uuid=host_uuid(host), description=f"{host} (inventory host)",
            props=[_prop("host-name", host), _prop("reachable", str(data["reachable"]).lower()),
                   *([_prop("score", score)] if score is not None else []),
                   *([_prop("pull-commit", pull["commit"])] if pull and pull["commit"] else [])]))
        if pull and pull["apply_returncode"]:
            parts["observations"].append(cm.Observation(
                uuid=uuid_of("observation", run, host, "pull"), title=f"ansible-pull failed on {host}",
                description=f"ansible-pull ended with exit code {pull['apply_returncode']}; the end of its log "
                            f"is in the remarks.", methods=["TEST"], props=[_prop("status", "pull-failed")],
                subjects=[cm.SubjectReference(subject_uuid=host_uuid(host), type="inventory-item", title=host)],
                collected=_utc(pull["finished"]), remarks=_clip(pull["apply_log_tail"]) or None))
        if not data["reachable"]:
            parts["observations"].append(cm.Observation(
                uuid=uuid_of("observation", run, host, "unreachable"), title=f"{host} could not be checked",
                description=data.get("error") or "unreachable", methods=["TEST"],
                props=[_prop("status", "unreachable")],
                subjects=[cm.SubjectReference(subject_uuid=host_uuid(host), type="inventory-item", title=host)],
                collected=when))
        _host_findings(run, host, data["controls"], catalogue, when, parts)
    targeted = sorted({clause_id(f.target.target_id.removesuffix(STATEMENT)) for f in parts["findings"]})
    report_resource = cm.Resource(
        uuid=uuid_of("resource", "report", digest), title="report.json of the run",
        description="The verify run's own report: every check with its full evidence.",
        rlinks=[cm.Rlink(href=report_href, media_type="application/json",
                         hashes=[cm.Hash(algorithm="SHA-256", value=report_sha256)] if report_sha256 else None)])
    plan = _resource("component", "govbaseline component definition", component_href,
                     "No separate assessment plan: `govbaseline verify` runs the checks the component "
                     "definition names for each control.")
    summary = report["summary"]
    result = ar.Result(
        uuid=uuid_of("result", run), title=f"govbaseline verify, {report['generated']}",
        description=f"{summary['hosts']} hosts of {report['inventory'] or 'the inventory'}; "
                    f"{'passed' if summary['passed'] else 'not passed'}.",
        start=min((o.collected for o in parts["observations"]), default=when), end=when,
        props=[_prop("passed", str(summary["passed"]).lower())],
        local_definitions=ar.LocalDefinitions1(inventory_items=items) if items else None,
        reviewed_controls=cm.ReviewedControls(control_selections=[cm.ControlSelections(
            include_controls=[cm.SelectControlById(control_id=clause_token(c)) for c in targeted])]
            if targeted else [cm.ControlSelectionsAll(include_all=cm.IncludeAll(),
                                                      remarks="No finding: no clause was judged in this run.")]),
        observations=parts["observations"] or None, risks=parts["risks"] or None,
        findings=parts["findings"] or None)
    return ar.AssessmentResults(
        uuid=uuid_of("assessment-results", run),
        metadata=_metadata(f"govbaseline verification run {report['generated']}", when),
        import_ap=ar.ImportAp(href=f"#{plan.uuid}"),
        results=[result], back_matter=cm.BackMatter(resources=[plan, report_resource]))


def _hosts_of_this_result(result: ar.Result) -> ar.Result:
    """``result`` with inventory items of its own: a host's UUID (``host_uuid``, the same in every
    run) scoped to the result, and its observations' subjects with it. A document of several runs
    may define each UUID once (trestle refuses duplicates); the host stays named by its prop."""
    items = result.local_definitions.inventory_items if result.local_definitions else None
    scoped = {item.uuid: uuid_of("host", result.uuid, item.uuid) for item in items or []}
    for item in items or []:
        item.uuid = scoped[item.uuid]
    for observation in result.observations or []:
        for subject in observation.subjects or []:
            subject.subject_uuid = scoped.get(subject.subject_uuid, subject.subject_uuid)
    return result


def period_results(runs: list[tuple[dict[str, Any], str, str]], title: str, start: dt.datetime, end: dt.datetime,
                   component_href: str = COMPONENT_HREF, catalogue: Catalogue | None = None) -> ar.AssessmentResults:
    """The verify runs of an inspection period as one set of OSCAL assessment results, a result per
    run (each as ``assessment_results`` makes it, its report.json named by link and SHA-256).
    ``runs``: (report.json's data, its href from the document, its SHA-256), oldest first; ``start``
    and ``end``: the period's first and last moment (UTC). ValueError when ``runs`` is empty (OSCAL
    asks for at least one result)."""
    if not runs:
        raise ValueError(f"no verify run in {title}: there are no assessment results to export")
    catalogue = catalogue or load_catalogue()
    results: list[ar.Result] = []
    resources: dict[str, cm.Resource] = {}
    for report, href, sha256 in runs:
        one = assessment_results(report, report_href=href, report_sha256=sha256, component_href=component_href,
                                 catalogue=catalogue)
        results += [_hosts_of_this_result(result) for result in one.results]
        resources.update((r.uuid, r) for r in one.back_matter.resources)
    plan = _resource("component", "govbaseline component definition", component_href, "")
    key = " ".join(sha256 for _, _, sha256 in runs)
    return ar.AssessmentResults(
        uuid=uuid_of("assessment-results", "period", title, key),
        metadata=_metadata(f"govbaseline self-inspection period {title}", end,
                           remarks=f"{len(runs)} verify runs from {start.isoformat()} to {end.isoformat()}, "
                                   "each a result of its own."),
        import_ap=ar.ImportAp(href=f"#{plan.uuid}"),
        results=results, back_matter=cm.BackMatter(resources=list(resources.values())))


DOCUMENTS: dict[str, Callable[[], Any]] = {"catalog": catalog, "profile": profile, "component": component_definition}
FILE_NAMES = {"catalog": CATALOG_HREF, "profile": PROFILE_HREF, "component": COMPONENT_HREF,
              "results": "assessment-results.json"}


def load_report(path: Path) -> tuple[dict[str, Any], str]:
    """A verify (or collect) run's report.json and the file's SHA-256; refused with its path if it is not one."""
    if not path.is_file():
        raise FileNotFoundError(f"report {path} does not exist: give the report.json a verify run wrote "
                                f"(in its --report-dir)")
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"{path} is not JSON ({exc}): give the report.json a verify run wrote") from None
    if not isinstance(data, dict) or data.get("schema_version") != 1 \
            or not {"generated", "hosts", "summary"} <= set(data):
        raise ValueError(f"{path} is not a govbaseline report.json (schema_version 1, see report.schema.json)")
    return data, hashlib.sha256(raw).hexdigest()


def write(document: Any, path: Path) -> None:
    """Write a trestle model as OSCAL JSON (or YAML, by the file's suffix), through trestle itself."""
    document.oscal_write(path)
