"""The verification report on real lab hosts: one host down does not stop the others, the report
matches its schema, the evidence bundle proves nothing was edited, drift names what broke since
the previous run, and a real browser renders the page without running anything from a host."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from govbaseline import report
from govbaseline.verify import verify
from tests.lab.conftest import sh
from tests.paths import ROOT

pytestmark = pytest.mark.lab

ARTEFACTS = Path(os.environ.get("GOVBASELINE_TEST_ARTEFACTS", ROOT / "reports" / "test-artefacts"))
# A file name is evidence the report shows (the inventory path): this one would run script if the
# page let markup through.
HOSTILE_NAME = "<img src=x onerror=document.title=1>.yml"
CONTROLS = ["FW-01", "IDS-02"]


def inventory_with_a_host_down(lab, tmp_path: Path) -> Path:
    data = yaml.safe_load(lab.inventory.read_text())
    webservers = data["all"]["children"]["webservers"]["hosts"]
    template = next(iter(webservers.values()))
    # An address on the lab network that no host has: the SSH port never answers.
    webservers["down-1"] = {**template, "ansible_host": str(lab.subnet.network_address + 250)}
    folder = tmp_path / "inventory"
    folder.mkdir()
    path = folder / HOSTILE_NAME
    path.write_text(yaml.safe_dump(data))
    path.chmod(0o600)
    return path


def browser(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium-headless-shell") or shutil.which("chromium")
    assert binary, "no headless Chromium: scripts/setup.sh installs chromium-headless-shell"
    return subprocess.run([binary, "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_report_with_a_host_down_is_schema_valid_tamper_evident_and_shows_drift(ansible_lab, tmp_path):
    lab = ansible_lab
    target = lab.hosts()[0]
    inventory = inventory_with_a_host_down(lab, tmp_path)
    report_dir = tmp_path / "report"

    first = verify(inventory, report_dir=report_dir, controls=CONTROLS)
    assert first.data["summary"]["unreachable"] == ["down-1"] and not first.passed, first.summary_line()
    assert "did not answer" in first.data["hosts"]["down-1"]["error"]
    for host in lab.hosts():
        for control in CONTROLS:
            assert first.status(host.name, control) == "pass", (host.name, control, first.output[-3000:])
    jsonschema.validate(first.data, json.loads(report.SCHEMA_FILE.read_text()))
    assert first.data["drift"]["previous"] is None

    # The bundle holds the three files and a manifest that matches them, and its own hash is given.
    assert report.verify_bundle(report_dir / report.BUNDLE) == []
    checked = subprocess.run(["sha256sum", "-c", report.MANIFEST], cwd=report_dir, capture_output=True, text=True,
                             check=False)
    assert checked.returncode == 0 and checked.stdout.count(": OK") == 3, checked.stdout + checked.stderr
    (report_dir / "report.json").write_text((report_dir / "report.json").read_text().replace('"pass"', '"fail"'))
    edited = subprocess.run(["sha256sum", "-c", report.MANIFEST], cwd=report_dir, capture_output=True, text=True,
                            check=False)
    assert edited.returncode != 0 and "report.json: FAILED" in edited.stdout, edited.stdout

    # Break brute-force blocking on one host: the next run names exactly that change.
    sh(lab, target, "systemctl stop fail2ban")
    try:
        (report_dir / "report.json").write_text(json.dumps(first.data))
        said: list[str] = []
        second = verify(inventory, report_dir=report_dir, controls=CONTROLS, progress=said.append)
    finally:
        sh(lab, target, "systemctl start fail2ban")
    assert second.data["drift"]["previous"] == first.data["generated"]
    assert second.data["drift"]["changes"] == [
        {"host": target.name, "control": "IDS-02", "before": "pass", "after": "fail"}], second.data["drift"]
    jsonschema.validate(second.data, json.loads(report.SCHEMA_FILE.read_text()))
    # Progress while it ran: the host down at once, each host when its checks were done.
    assert said[0].startswith("down-1: not checked: SSH port") and "did not answer" in said[0], said
    for host in lab.hosts():
        assert any(line.startswith(f"{host.name}: done, ") for line in said), said
    # Failing controls first, with the command that repairs exactly that one.
    repair = f"govbaseline apply -i {shlex.quote(str(inventory))} --limit {target.name} --tags ids-02"
    assert [(f["host"], f["control"], f["repair"]) for f in report.failures(second.data)] == [
        (target.name, "IDS-02", repair)]
    pdf = report.write_pdf(second.data, report_dir)
    printed = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    # A long command wraps in print, also after a hyphen, which pdftotext then drops: compare without either.
    assert "Failing controls (1)" in printed and re.sub(r"[\s-]", "", f"--limit {target.name} --tags ids-02") in \
        re.sub(r"[\s-]", "", printed)

    # A real browser: the page renders, the hostile file name stays text, a screenshot is kept.
    page = (report_dir / "report.html").as_uri()
    dom = browser("--dump-dom", page)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<title>govbaseline report</title>" in dom.stdout and "<img" not in dom.stdout, dom.stdout[:2000]
    assert "&lt;img src=x onerror=document.title=1&gt;" in dom.stdout
    for words in ("Policies and clauses", "Changes since the previous run", "down-1", "unreachable",
                  f"{target.name}</td><td>IDS-02</td>"):
        assert words in dom.stdout, words
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTEFACTS / "report.png"
    shot.unlink(missing_ok=True)
    taken = browser("--window-size=1280,2400", f"--screenshot={shot}", page)
    assert taken.returncode == 0 and shot.exists(), taken.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
