"""The evidence history and the self-inspection report (REP-01), over a simulated period.

Reports are built with ``report.build`` (the real report.json, checked against its schema) for
runs at constructed times, with host records of the form ``govbaseline.records`` gathers; every
number of the inspection is checked against what the test put in, and the history is tampered
with in every way ``history verify`` must catch.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import os
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from govbaseline import history, inspection, report
from govbaseline.catalogue import load_catalogue
from govbaseline.cli import main
from govbaseline.waivers import Waiver

CATALOGUE = load_catalogue()
CONTROLS = [c.id for c in CATALOGUE.controls if c.status == "implemented" and not c.command]
GROUPS = {"web1": ["webservers"], "db1": ["databases"]}
SCHEMA = json.loads(report.SCHEMA_FILE.read_text())
WAIVERS = [
    Waiver("AV-02", ("db1",), (), "legacy host, migration", "J. Doe", dt.date(2026, 11, 5), "w.yml:1"),
    Waiver("TLS-05", (), ("webservers",), "old clients", "J. Doe", dt.date(2027, 1, 31), "w.yml:7"),
]


def at(day: str, hour: int = 6) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=dt.UTC)


def alert(when: dt.datetime, source: str, message: str, alert_id: str, kind: str = "", **extra: str) -> dict[str, str]:
    entry = {"__REALTIME_TIMESTAMP": str(int(when.timestamp() * 1_000_000)), "MESSAGE": message,
             "GOVBASELINE_ALERT_ID": alert_id, **extra}
    if source:
        entry.update(GOVBASELINE_SOURCE=source, GOVBASELINE_KIND=kind or message[:20])
    return entry


def state(when: dt.datetime, **fields: Any) -> dict[str, Any]:
    return {"finished": int(when.timestamp()), **fields}


def run(tmp: Path, where: Path, when: dt.datetime, failing: dict[str, list[str]] | None = None,
        records: dict[str, dict[str, Any]] | None = None, hosts: list[str] | None = None) -> dict[str, Any]:
    """One verify run at ``when``: every control passes on both hosts except ``failing`` (host ->
    controls); archived in ``where`` with ``records``."""
    failing = failing or {}
    results = [{"host": host, "controls": [cid], "check": f"test_{cid.lower().replace('-', '_')}",
                "status": "fail" if cid in failing.get(host, []) else "pass",
                "message": f"{cid} does not hold on {host}\nsecond line" if cid in failing.get(host, []) else "",
                "duration": 0.1, "evidence": []}
               for host in hosts or GROUPS for cid in CONTROLS]
    data = report.build(results, sorted(hosts or GROUPS), inventory="inv.yml", waivers=WAIVERS, groups=GROUPS,
                        today=when.date())
    data["generated"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    jsonschema.validate(data, SCHEMA)
    folder = tmp / "report"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    report.write(data, folder)
    (folder / "junit.xml").write_text("<testsuites/>")
    default = {h: {"alerts": [], "state": {}, "quarantine": [], "problems": []} for h in hosts or GROUPS}
    return history.archive(folder, where, GROUPS, {**default, **(records or {})})


# The period: 2026-11-01 to 2026-11-10, a run every day at 06:00 except 11-05.
EICAR = alert(at("2026-11-04", 3), "antivirus", "Win.Test.EICAR_HDB-1 found in /var/www/eicar.com on web1; moved "
              "to the quarantine: /var/lib/govbaseline/quarantine/x.quarantined", "a-eicar")
TAMPER = alert(at("2026-11-07", 2), "integrity", "web pages in /var/www on web1 differ from the known-good copy: "
               "changed index.html; restored from /srv/known-good", "a-tamper", kind="web pages differ, restored")
BAN = alert(at("2026-11-02", 9), "fail2ban", "banned 192.0.2.9 on web1 for 600 s in jail sshd", "a-ban")
LOST = alert(at("2026-11-06", 1), "patching", "unattended-upgrades installed 3 packages", "a-lost")
LOST_TRY = alert(at("2026-11-06", 1), "", "delivery of alert a-lost by mail failed", "a-lost",
                 GOVBASELINE_DELIVERY="failed")
SENT = alert(at("2026-11-02", 9), "", "alert a-ban delivered by mail", "a-ban", GOVBASELINE_DELIVERY="ok")
BACKUP = alert(at("2026-11-08", 1), "backup", "backup failed: the backup failed (exit 1)", "a-backup")
# Before both periods, read by the first run of the period: counted in neither.
BEFORE = alert(at("2026-10-20", 1), "antivirus", "X found in /tmp/x on db1; moved to the quarantine: q", "a-old")


def web1_records(day: str) -> dict[str, Any]:
    """What web1's journal and state files hold when a run on ``day`` reads them (each run reads
    from a day before the previous one: entries come again and must be counted once)."""
    events = [e for e in (BAN, SENT, EICAR, LOST, LOST_TRY, TAMPER, BACKUP)
              if int(e["__REALTIME_TIMESTAMP"]) / 1e6 < at(day).timestamp()]
    states: dict[str, Any] = {"vulnscan/last.json": state(at("2026-11-01", 4), hardening_index=70, warnings={"A": 1})}
    if day >= "2026-11-03":
        states["backup/drill.json"] = state(at("2026-11-02", 5), status="ok")
    if day >= "2026-11-09":
        states["backup/drill.json"] = state(at("2026-11-08", 5), status="failed", error="snapshot empty")
        states["vulnscan/last.json"] = state(at("2026-11-08", 4), hardening_index=72, warnings={})
    return {"alerts": events, "state": states, "quarantine": [], "problems": []}


FAILING = {  # day -> host -> failing controls
    "2026-11-03": {"web1": ["FW-01"]}, "2026-11-04": {"web1": ["FW-01"]},
    "2026-11-09": {"db1": ["AV-01"]}, "2026-11-10": {"db1": ["AV-01"]},
}


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("history")
    where = tmp / "history"
    # The previous period, 2026-10-29 to 2026-10-31: a run every day, nothing happened but a drill.
    for day in ("2026-10-29", "2026-10-30", "2026-10-31"):
        web1 = {"alerts": [], "state": {"backup/drill.json": state(at("2026-10-29", 5), status="ok"),
                                        "backup/last.json": state(at(day, 2), status="ok")},
                "quarantine": [], "problems": []}
        run(tmp, where, at(day), records={"web1": web1})
    for number in range(1, 11):
        day = f"2026-11-{number:02d}"
        if day != "2026-11-05":
            db1 = {"alerts": [BEFORE], "state": {}, "quarantine": [], "problems": []}
            run(tmp, where, at(day), FAILING.get(day), {"web1": web1_records(day), "db1": db1})
    # A run after the period reads the journal of its last day.
    run(tmp, where, at("2026-11-11"), records={"web1": web1_records("2026-11-11")})
    return where


PERIOD = inspection.Period(dt.date(2026, 11, 1), dt.date(2026, 11, 10))
PREVIOUS = inspection.Period(dt.date(2026, 10, 29), dt.date(2026, 10, 31))


def test_history_is_intact_and_private(simulated: Path):
    assert history.verify_history(simulated) == []
    entries = [json.loads(line) for line in (simulated / history.INDEX).read_text().splitlines()]
    assert [e["seq"] for e in entries] == list(range(1, 14))
    assert entries[0]["previous"] == history.GENESIS
    assert all(b["previous"] == a["chain_sha256"] for a, b in itertools.pairwise(entries))
    folder = simulated / history.RUNS / entries[0]["run"]
    assert entries[0]["run"].startswith("20261029T060000Z-")
    assert {p.name for p in folder.iterdir()} >= {"report.json", "report.html", "junit.xml", "evidence.tar.gz",
                                                  "groups.json", "records"}
    for path in [simulated, folder, *folder.rglob("*")]:
        assert (path.stat().st_mode & 0o777) == (0o700 if path.is_dir() else 0o600), path
    assert (simulated / history.INDEX).stat().st_mode & 0o777 == 0o600


def test_inspection_numbers(simulated: Path, tmp_path: Path):
    data = inspection.build(history.load_runs(simulated), PERIOD, PREVIOUS, out=tmp_path)
    coverage = data["coverage"]
    assert (coverage["days"], coverage["days_with_runs"], coverage["runs"]) == (10, 9, 9)
    assert coverage["days_without_runs"] == ["2026-11-05"]
    assert data["systems"] == {"databases": ["db1"], "webservers": ["web1"]}
    assert data["hosts"]["web1"] == {"runs": 9, "unreachable": 0, "records_missing": 0, "last_score": 100,
                                     "days_without_runs": 0}
    found = {(f["host"], f["control"]): f for f in data["findings"]}
    assert set(found) == {("web1", "FW-01"), ("db1", "AV-01")}
    fw = found[("web1", "FW-01")]
    assert (fw["failed"], fw["fixed"]) == ("2026-11-03T06:00:00Z", "2026-11-06T06:00:00Z")
    assert fw["failed_run"].startswith("20261103T060000Z-") and fw["fixed_run"].startswith("20261106T060000Z-")
    assert fw["message"] == "FW-01 does not hold on web1"
    assert found[("db1", "AV-01")]["fixed"] is None
    counts = {kind: i["count"] for kind, i in data["incidents"].items()}
    assert counts == {"malware_found": 1, "malware_quarantined": 1, "scan_failures": 0, "intrusion_alerts": 1,
                      "pages_tampered": 1, "pages_restored": 1, "files_changed": 0, "backup_failures": 1,
                      "port_scan_findings": 0,
                      "hardening_findings": 0, "patch_reports": 1, "undelivered_alerts": 1, "held_back_alerts": 0}
    assert data["incidents"]["malware_found"]["events"][0]["time"] == "2026-11-04T03:00:00Z"
    assert data["drills"]["run"] == 2 and data["drills"]["passed"] == 1
    assert data["backups"] == {"recorded": 0, "failed": 0}
    assert {h: (t["first"], t["last"], t["lowest"]) for h, t in data["hardening"].items()} == {"web1": (70, 72, 70)}
    assert data["patch_latency"]["median_days"] is None and "cannot be computed" in data["patch_latency"]["why"]
    waivers = {k: [w["control"] for w in v] for k, v in data["waivers"].items()}
    assert waivers == {"in_force": ["TLS-05"], "expired_in_period": ["AV-02"], "expired_before": []}
    # FW-01 failed on the runs of 11-03 and 11-04; 11-05 has no run: 10 - 3 days answered.
    fw_clause = next(c for c in data["clauses"] if c["clause"] in CATALOGUE.get("FW-01").clauses
                     and all(x.id in CONTROLS for x in CATALOGUE.answering(c["clause"])))
    assert (fw_clause["days_answered"], fw_clause["days"], fw_clause["share"]) == (7, 10, 0.7)


def test_statements_only_where_the_evidence_supports_them(simulated: Path, tmp_path: Path):
    data = inspection.build(history.load_runs(simulated), PERIOD, PREVIOUS, out=tmp_path)
    said = {s["statement"]: s for s in data["statements"]}
    assert not any(s["supported"] for s in said.values())  # a day without a run: no claim holds
    malware = said["No system was infected by malicious code."]
    assert "1 malicious code found (web1)" in malware["instead"] and "1 of 10 days have no run" in malware["instead"]
    assert "1 web pages tampered with (web1)" in said["The portal was not attacked or tampered with."]["instead"]
    assert "1 of 2 restore drills failed" in said["Backups ran and every restore drill passed."]["instead"]
    # No backup recorded in the period: no claim that backups ran.
    assert "no backup was recorded" in said["Backups ran and every restore drill passed."]["instead"]
    assert "AV-01 on db1" in data["statements"][-1]["instead"]
    # The previous period: a run every day, records read, nothing found: every statement, with evidence.
    before = data["previous"]
    assert before["coverage"]["days_without_runs"] == [] and before["findings"] == []
    assert all(s["supported"] for s in before["statements"]), before["statements"]
    evidence = before["statements"][0]["evidence"]
    assert len(evidence) == 3 and all((tmp_path / e).resolve().is_file() for e in evidence)
    assert before["incidents"]["malware_found"]["count"] == 0
    rows = {r["what"]: (r["this period"], r["previous period"]) for r in data["comparison"]}
    assert rows["runs"] == (9, 3) and rows["findings"] == (2, 0) and rows["malicious code found"] == (1, 0)


def test_a_period_without_runs_says_so(simulated: Path):
    data = inspection.summarise(history.load_runs(simulated), inspection.Period(dt.date(2026, 1, 1),
                                                                                dt.date(2026, 1, 31)))
    assert data["coverage"]["runs"] == 0 and len(data["coverage"]["days_without_runs"]) == 31
    assert all(not s["supported"] and "no verify run in the period" in s["instead"] for s in data["statements"])
    assert all(c["share"] == 0 for c in data["clauses"])


def test_the_cli_writes_the_report_escaped(simulated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "out"
    assert main(["inspection", "--history", str(simulated), "--from", "2026-11-01", "--to", "2026-11-10",
                 "-o", str(out)]) == 0
    assert "9 runs on 9 of 10 days, 2 findings, 0 of 5 statements supported" in capsys.readouterr().out
    data = json.loads((out / "inspection.json").read_text())
    assert data["previous"]["period"] == {"from": "2026-10-22", "to": "2026-10-31"}  # same length, just before
    page = (out / "inspection.html").read_text()
    assert "2026-11-05" in page and "still failing" in page and "<script" not in page
    assert main(["inspection", "--history", str(simulated), "--from", "2026-11-10", "--to", "2026-11-01",
                 "-o", str(out)]) == 2
    assert "swap --from and --to" in capsys.readouterr().err
    # A report written into the history would be a folder the index does not know.
    assert main(["inspection", "--history", str(simulated), "--from", "2026-11-01", "--to", "2026-11-10",
                 "-o", str(simulated / "runs" / "report")]) == 2
    assert "is inside the history" in capsys.readouterr().err
    assert not (simulated / "runs" / "report").exists()


def test_html_is_autoescaped():
    data = inspection.summarise([], PERIOD)
    data.update(previous=inspection.summarise([], PERIOD.before()), generated="now", history="<h>", tool="t")
    data["comparison"] = inspection.compare(data, data["previous"])
    data["findings"] = [{"control": "FW-01", "title": "<b>x</b>", "host": "web1", "failed": "t", "failed_run": "r",
                         "failed_evidence": "e", "message": "<script>alert(1)</script>", "fixed": None}]
    page = inspection.render_html(data)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page


@pytest.fixture
def copy(simulated: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(simulated, target)
    return target


def _runs(where: Path) -> list[Path]:
    return sorted((where / history.RUNS).iterdir())


def test_history_verify_catches_an_edited_run(copy: Path, capsys: pytest.CaptureFixture[str]):
    edited = _runs(copy)[4] / "report.json"
    edited.write_text(edited.read_text().replace('"status": "pass"', '"status": "fail"', 1))
    assert main(["history", "verify", str(copy)]) == 1
    err = capsys.readouterr().err
    assert f"BROKEN, first at entry 5 ({_runs(copy)[4].name}): the files of" in err
    with pytest.raises(history.HistoryError, match="entry 5"):
        history.load_runs(copy)
    assert main(["inspection", "--history", str(copy), "--from", "2026-11-01", "--to", "2026-11-10",
                 "-o", str(copy.parent / "o")]) == 2


def test_history_verify_catches_a_removed_or_replaced_run(copy: Path):
    shutil.rmtree(_runs(copy)[2])
    assert history.verify_history(copy)[0].startswith("entry 3 (")
    assert "is missing" in history.verify_history(copy)[0]


def test_history_verify_catches_a_record_added_to_a_run(copy: Path):
    (_runs(copy)[7] / history.RECORDS / "web1.json").write_text("{}")
    assert history.verify_history(copy)[0].startswith("entry 8 (")


def test_history_verify_catches_a_removed_index_line_and_a_rewritten_hash(copy: Path):
    index = copy / history.INDEX
    lines = index.read_text().splitlines()
    index.write_text("\n".join(lines[:5] + lines[6:]) + "\n")
    problems = history.verify_history(copy)
    assert problems[0].startswith("entry 6 (") and "sequence number 7" in problems[0]
    assert any("not in the index" in p for p in problems)
    # Re-hashing an edited run in its own line is not enough: the next line's chain breaks.
    index.write_text("\n".join(lines) + "\n")
    folder = _runs(copy)[1]
    (folder / "junit.xml").write_text("<testsuites>edited</testsuites>")
    entry = json.loads(lines[1])
    entry["run_sha256"] = history.folder_sha256(folder)
    index.write_text("\n".join([lines[0], json.dumps(entry), *lines[2:]]) + "\n")
    assert history.verify_history(copy)[0].startswith("entry 2 (") and "chain is broken" in history.verify_history(
        copy)[0]


def test_history_refuses_symbolic_links(copy: Path, tmp_path: Path):
    link = tmp_path / "link"
    link.symlink_to(copy)
    with pytest.raises(history.HistoryError, match="symbolic link"):
        history.verify_history(link)
    target = _runs(copy)[0] / "junit.xml"
    target.unlink()
    target.symlink_to("/etc/hostname")
    assert "symbolic link" in history.verify_history(copy)[0]
    with pytest.raises(history.HistoryError, match="symbolic link"):
        history.archive(tmp_path, link, {})


def test_history_dir_is_off_unless_asked(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(history.ENV_VAR, raising=False)
    assert history.history_dir(None) is None
    monkeypatch.setenv(history.ENV_VAR, "/srv/evidence")
    assert history.history_dir(None) == Path("/srv/evidence")
    assert history.history_dir("~/h") == Path(os.path.expanduser("~/h"))


def test_records_not_read_are_a_gap_not_a_quiet_period(tmp_path: Path):
    where = tmp_path / "h"
    for day in ("2026-11-01", "2026-11-02"):
        run(tmp_path, where, at(day), records={"db1": {"error": "the host's records could not be read: timeout"}})
    data = inspection.summarise(history.load_runs(where), inspection.Period(dt.date(2026, 11, 1),
                                                                            dt.date(2026, 11, 2)))
    assert data["coverage"]["days_without_runs"] == [] and data["hosts"]["db1"]["records_missing"] == 2
    assert all(not s["supported"] and "the records of db1 could not be read" in s["instead"]
               for s in data["statements"])


def test_gather_names_a_host_it_cannot_read():
    from govbaseline.records import gather

    found = gather(Path("/nonexistent/inventory.yml"), {"_meta": {"hostvars": {}}, "all": {"hosts": []}}, ["ghost"],
                   {"ghost": 0})
    assert found["ghost"]["error"].startswith("the host's records could not be read"), found


def test_the_pdf_of_the_period_prints_its_header_and_statements(simulated: Path, tmp_path: Path):
    """inspection --pdf: printed by headless Chromium, every page headed with the period; the first
    page read back as an image (OCR) shows the title and the statements' verdicts."""
    import shutil
    import subprocess

    out = tmp_path / "out"
    assert main(["inspection", "--history", str(simulated), "--from", "2026-11-01", "--to", "2026-11-10",
                 "-o", str(out), "--pdf"]) == 0
    pdf = out / "inspection.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    layer = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    printed = layer.split("\f")[:-1]
    assert printed and all("Self-inspection report 2026-11-01 to 2026-11-10" in p for p in printed), printed[:1]
    assert shutil.which("tesseract"), "tesseract is missing: scripts/setup.sh installs tesseract-ocr"
    subprocess.run(["pdftoppm", "-r", "150", "-gray", "-png", "-singlefile", "-f", "1", "-l", "1", str(pdf),
                    str(tmp_path / "page1")], check=True)
    seen = " ".join(subprocess.run(["tesseract", str(tmp_path / "page1.png"), "-", "--psm", "3"],
                                   capture_output=True, text=True, check=True).stdout.split())
    seen = seen.replace("- ", "-")  # a heading wrapped after a date's hyphen
    assert "Self-inspection report, 2026-11-01 to 2026-11-10" in seen and "Statements" in seen, seen[:600]
    assert "9 verification runs on 9 of 10 days" in seen, seen[:600]


def test_an_antivirus_scan_that_could_not_run_counts_against_the_malware_statement():
    failed = {"GOVBASELINE_SOURCE": "antivirus", "GOVBASELINE_KIND": "scan",
              "MESSAGE": "the antivirus scan of /var/www could not run: clamscan exited 2"}
    assert inspection._kinds_of(failed) == ["scan_failures"]
    found = {"GOVBASELINE_SOURCE": "antivirus", "MESSAGE": "Eicar-Signature found in /tmp/x, moved to the quarantine"}
    assert inspection._kinds_of(found) == ["malware_found", "malware_quarantined"]


def test_a_host_left_out_of_runs_is_a_gap_and_is_read_from_its_own_last_read(tmp_path: Path):
    """db1 is checked on one day of two (verify --limit web1 on the other): no claim for the
    period, and its next gathering starts at its own last read, not at web1's later run."""
    where = tmp_path / "history"
    clean = {"alerts": [], "state": {}, "quarantine": [], "problems": []}
    run(tmp_path, where, at("2026-11-01"), records={"web1": clean, "db1": clean})
    run(tmp_path, where, at("2026-11-02"), records={"web1": clean}, hosts=["web1"])
    data = inspection.summarise(history.load_runs(where), inspection.Period(dt.date(2026, 11, 1),
                                                                              dt.date(2026, 11, 2)))
    assert data["hosts"]["db1"]["days_without_runs"] == 1 and data["hosts"]["web1"]["days_without_runs"] == 0
    assert all("db1 not checked on every day with a run" in s["instead"] for s in data["statements"])
    read = history.last_read_by_host(where)
    assert read["db1"] == at("2026-11-01") and read["web1"] == at("2026-11-02")


def test_host_records_are_masked_before_they_reach_the_history():
    from govbaseline.records import masked
    from govbaseline.verify import masker

    clean = masker({"s3cret-repository-password"})
    records = {"web1": {"state": {"backup/last.json": {"error": "rest:https://u:s3cret-repository-password@b/ 401"}},
                        "alerts": [{"MESSAGE": "x s3cret-repository-password y"}]}}
    text = json.dumps(masked(records, clean))
    assert "s3cret-repository-password" not in text and "rest:https://u:" in text


def test_a_file_name_with_a_line_break_cannot_forge_the_hashed_lines(copy: Path):
    """The review's attack: one host's records moved into a folder whose name carries a line break
    and another file's hash, the other host's records deleted; the folder hash must not survive."""
    folder = _runs(copy)[3]
    records = folder / history.RECORDS
    web1, db1 = records / "web1.json", records / "db1.json"
    forged = records / f"web1.json\n{hashlib.sha256(db1.read_bytes()).hexdigest()}  records"
    forged.mkdir()
    web1.rename(forged / "db1.json")
    db1.unlink()
    problems = history.verify_history(copy)
    assert problems and "line break" in problems[0] and problems[0].startswith("entry 4 ("), problems


def test_an_edited_index_date_and_runs_cut_from_the_end_are_found(copy: Path, capsys: pytest.CaptureFixture[str]):
    index = copy / history.INDEX
    lines = index.read_text().splitlines()
    entry = json.loads(lines[2])
    entry["generated"] = "2026-12-31T00:00:00Z"  # would move the next records window
    index.write_text("\n".join([*lines[:2], json.dumps(entry, sort_keys=True), *lines[3:]]) + "\n")
    assert "the index line was changed" in history.verify_history(copy)[0]
    # The newest runs removed with their index lines leave an intact chain: the recorded head shows it.
    index.write_text("\n".join(lines) + "\n")
    head = json.loads(lines[-1])["chain_sha256"]
    assert main(["history", "verify", str(copy), "--expect-chain", head]) == 0
    assert f"last chain sha256 {head}" in capsys.readouterr().out
    shutil.rmtree(_runs(copy)[-1])
    index.write_text("\n".join(lines[:-1]) + "\n")
    assert main(["history", "verify", str(copy)]) == 0
    assert main(["history", "verify", str(copy), "--expect-chain", head]) == 1
    assert "runs were removed from its end" in capsys.readouterr().err


def test_a_narrowed_last_run_does_not_support_the_whole_assessment(tmp_path: Path):
    where = tmp_path / "history"
    clean = {"alerts": [], "state": {}, "quarantine": [], "problems": []}
    run(tmp_path, where, at("2026-11-01"), records={"web1": clean, "db1": clean})
    runs = history.load_runs(where)
    runs[-1].data["selection"] = {"limit": "", "controls": ["FW-01"], "checks": []}
    assert inspection._partial(runs[-1], {"web1": {}, "db1": {}}) == ["the last run checked only FW-01 (controls)"]
    runs[-1].data["selection"] = {"limit": "web1", "controls": [], "checks": []}
    del runs[-1].data["hosts"]["db1"]
    assert inspection._partial(runs[-1], {"web1": {}, "db1": {}}) == ["the last run did not check db1"]


def _killed(*_: Any) -> None:
    raise KeyboardInterrupt


def _cut_off(monkeypatch: pytest.MonkeyPatch, target: Any, name: str, tmp_path: Path, where: Path, day: str) -> None:
    """An archive of a run on ``day`` interrupted where ``target.name`` is called."""
    with monkeypatch.context() as patched:
        patched.setattr(target, name, _killed)
        with pytest.raises(KeyboardInterrupt):
            run(tmp_path, where, at(day))


def test_an_archive_cut_off_leaves_no_half_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]):
    where = tmp_path / "history"
    run(tmp_path, where, at("2026-11-01"))
    # Cut off after the run folder was renamed into place, before its index line: history verify
    # names it, and the next archive indexes it (its hash still matches), in order.
    _cut_off(monkeypatch, history, "_append", tmp_path, where, "2026-11-02")
    problems = history.verify_history(where)
    assert len(problems) == 1 and "cut off before its index line" in problems[0], problems
    # Cut off before the rename: a temporary folder is left (this archive indexed the one before).
    capsys.readouterr()
    _cut_off(monkeypatch, os, "rename", tmp_path, where, "2026-11-03")
    assert "indexed" in capsys.readouterr().err
    assert list((where / history.RUNS).glob(".*.tmp"))
    run(tmp_path, where, at("2026-11-04"))
    assert "removed" in capsys.readouterr().err
    assert history.verify_history(where) == []
    assert not list((where / history.RUNS).glob(".*"))
    assert [r.generated.day for r in history.load_runs(where)] == [1, 2, 4]


def test_a_run_folder_not_in_the_index_without_the_pending_note_is_left_to_verify(copy: Path):
    # Runs cut from the end of the index (tampering, not a crash) are not put back by the next archive.
    index = copy / history.INDEX
    lines = index.read_text().splitlines()
    index.write_text("\n".join(lines[:-1]) + "\n")
    last = _runs(copy)[-1]
    tmp = copy.parent / "again"
    tmp.mkdir()
    run(tmp, copy, at("2026-11-20"))
    problems = history.verify_history(copy)
    assert problems == [f"run folder {last} is not in the index"], problems


def test_a_planted_pending_note_does_not_chain_a_forged_run(tmp_path: Path):
    where = tmp_path / "history"
    run(tmp_path, where, at("2026-11-01"))
    first = _runs(where)[0]
    # A copy of a real run under the next sequence number but another time, with a note that also
    # claims a verdict: the name does not follow from its report, so nothing is indexed.
    forged = where / history.RUNS / "20261231T000000Z-00002"
    shutil.copytree(first, forged)
    (where / history.RUNS / history.PENDING).write_text(json.dumps(
        {"run": forged.name, "run_sha256": history.folder_sha256(forged), "passed": True, "extra": 1}))
    with pytest.raises(history.HistoryError, match="could not complete"):
        run(tmp_path, where, at("2026-11-02"))
    assert [json.loads(line)["run"] for line in (where / history.INDEX).read_text().splitlines()] == [first.name]
    assert any("is not in the index" in p for p in history.verify_history(where))
