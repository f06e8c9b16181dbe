"""report.html and report.pdf as people read them (issue 22, part 3): failing controls first with why
and how to repair them, the header, unreachable hosts with their reason, the filter, the printed PDF
read back from images of its pages."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from govbaseline import cli, engines, pages, report
from govbaseline.catalogue import load_catalogue
from govbaseline.verify import Outcome

EVIDENCE = [{"command": "nft list ruleset", "rc": 0, "stderr": "", "time": "2026-12-01T03:00:00Z",
             "stdout": "table inet filter {\n  chain input { policy drop; }\n}\n"}]
DOWN = "SSH port 10.88.0.250:22 did not answer: timed out"


def _result(host, control, status, check="c", message=""):
    return {"host": host, "controls": [control], "check": check, "status": status, "message": message,
            "duration": 0.1, "evidence": EVIDENCE}


def fleet() -> dict:
    """Host names OCR reads without doubt (not web1: "webl"). alpha fails FW-01 and errs on TLS-01,
    bravo fails SSH-01, charlie passes, delta is down."""
    results = [
        _result("alpha", "FW-01", "fail", "test_default_deny", "port 23 answered from outside\nsecond line"),
        _result("alpha", "FW-01", "pass", "test_ruleset_loaded"),
        _result("alpha", "TLS-01", "error", "test_protocols", "TLS handshake timed out"),
        _result("bravo", "SSH-01", "fail", "test_root_login", "PermitRootLogin yes"),
        _result("bravo", "FW-01", "pass", "test_default_deny"),
        _result("charlie", "FW-01", "pass", "test_default_deny"),
    ]
    return report.build(results, ["delta", "alpha", "bravo", "charlie"], inventory="inventories/prod lab.yml",
                        unreachable={"delta": DOWN})


def test_failing_controls_come_first_worst_first_with_first_message_and_repair_command():
    data = fleet()
    found = report.failures(data)
    assert [(f["status"], f["host"], f["control"]) for f in found] == [
        ("error", "alpha", "TLS-01"), ("fail", "alpha", "FW-01"), ("fail", "bravo", "SSH-01")]
    fw = found[1]
    assert fw["message"].startswith("port 23 answered from outside") and fw["check"] == "test_default_deny"
    # The inventory path is quoted for the shell; the tag is the one the roles carry for the control.
    assert fw["repair"] == "govbaseline apply -i 'inventories/prod lab.yml' --limit alpha --tags fw-01"
    assert shlex.split(fw["repair"])[-1] in engines.known_tags()
    # Why the control exists: the clauses it answers, verbatim.
    quotes = {c.id: c.quote for c in load_catalogue().clauses}
    assert any(quotes[c] in why for c in load_catalogue().get("FW-01").clauses for why in fw["rationale"])

    page = report.render_html(data)
    failing = page.index('id="failing"')
    # In the page too: the failing section before anything else, its entries in that order.
    assert failing < page.index('id="policies"') < page.index('id="hosts"')
    positions = [page.index(f'data-control="{c}"', failing) for c in ("TLS-01", "FW-01", "SSH-01")]
    assert positions == sorted(positions)
    assert "govbaseline apply -i &#39;inventories/prod lab.yml&#39; --limit alpha --tags fw-01" in page
    assert "Failing controls (3)" in page


def test_a_control_without_a_tag_of_its_own_is_repaired_by_its_role_or_the_whole_baseline(monkeypatch):
    monkeypatch.setattr(report, "_known_tags", lambda: frozenset({"firewall"}))
    assert report.repair_command("inv.yml", "alpha", "FW-01").endswith("--limit alpha --tags firewall")
    monkeypatch.setattr(report, "_known_tags", lambda: frozenset())
    assert report.repair_command("inv.yml", "alpha", "FW-01") == "govbaseline apply -i inv.yml --limit alpha"


def test_an_unreachable_host_shows_why_instead_of_an_empty_score():
    page = report.render_html(fleet())
    hosts_table = page[page.index('id="hosts"'):page.index('<section class="host"')]
    row = hosts_table[hosts_table.index('data-host="delta"'):]
    row = row[:row.index("</tr>")]
    assert f"Not checked: {DOWN}" in row and "None" not in row
    assert page.count(f"Not checked: {DOWN}") == 3  # first section, hosts table, the host's own section


def test_header_names_the_tool_version_the_roles_commit_and_the_inventory():
    data = fleet()
    assert data["tool"] == {"version": pages.tool_version(), "roles": pages.roles_commit()}
    page = report.render_html(data)
    header = page[page.index("<header>"):page.index("</header>")]
    for words in (pages.tool_version(), pages.roles_commit(), "inventories/prod lab.yml", data["generated"]):
        assert words in header, words
    # A report.json written before the header existed still renders.
    del data["tool"]
    assert "Roles applied" in report.render_html(data)


def test_roles_commit_is_the_checkouts_commit_and_the_version_without_git(monkeypatch):
    pages.roles_commit.cache_clear()
    head = subprocess.run(["git", "-C", str(pages.COLLECTION_DIR), "rev-parse", "--short=12", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    try:
        assert head in pages.roles_commit()
        pages.roles_commit.cache_clear()
        monkeypatch.setattr(pages.shutil, "which", lambda name: None)
        assert pages.roles_commit() == f"govbaseline {pages.tool_version()} (package)"
    finally:
        pages.roles_commit.cache_clear()


def test_the_page_filters_by_host_status_and_control_without_external_resources():
    page = report.render_html(fleet())
    for control in ('id="f-host"', 'id="f-status"', 'id="f-control"', "<option>bravo</option>",
                    "<option>unreachable</option>"):
        assert control in page
    assert 'data-host="alpha" data-status="fail" data-control="FW-01"' in page
    assert "src=" not in page and "http://" not in page and "https://" not in page and "@import" not in page


def test_css_string_cannot_end_the_string_or_the_style_element():
    assert pages.css_string('a"b</style><script>') == '"a\\22 b\\3c /style\\3e \\3c script\\3e "'


def test_printed_evidence_is_open_and_hosts_start_a_page():
    data = fleet()
    assert "<details open>" not in report.render_html(data)
    assert "<details open>" in report.render_html(data, expanded=True)
    page = report.render_html(data)
    assert ".host{break-before:page}" in page and "@top-right" in page


def test_the_pdf_renderer_missing_is_a_clear_refusal(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(pages.shutil, "which", lambda name: None)
    with pytest.raises(pages.RendererMissing, match="apt-get install chromium-headless-shell"):
        report.write_pdf(fleet(), tmp_path)
    # verify --pdf refuses before it reads any host.
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("all:\n  hosts:\n    alpha: {}\n")
    for command in ("verify", "collect"):
        assert cli.main([command, "-i", str(inventory), "--pdf", "--report-dir", str(tmp_path)]) == 2
        assert "needs a headless Chromium" in capsys.readouterr().err


def _ocr(pdf: Path, tmp_path: Path, pages: list[int]) -> dict[int, str]:
    """Pages of the PDF (1-based) as images (pdftoppm), read back by OCR (tesseract), blanks refused."""
    for tool in ("pdftoppm", "tesseract"):
        assert shutil.which(tool), f"{tool} is missing: scripts/setup.sh installs poppler-utils and tesseract-ocr"
    texts = {}
    for number in pages:
        prefix = tmp_path / f"page{number}"
        subprocess.run(["pdftoppm", "-r", "150", "-gray", "-png", "-singlefile", "-f", str(number), "-l", str(number),
                        str(pdf), str(prefix)], check=True)
        image = prefix.with_suffix(".png")
        assert image.stat().st_size > 10_000, f"page {number} is blank"
        read = subprocess.run(["tesseract", str(image), "-", "--psm", "3"], capture_output=True, text=True, check=True)
        texts[number] = " ".join(read.stdout.split())
    return texts


def test_the_pdf_prints_failures_first_a_page_per_host_and_the_dated_header(tmp_path):
    data = fleet()
    pdf = report.write_pdf(data, tmp_path)
    assert pdf == tmp_path / "report.pdf" and pdf.read_bytes()[:5] == b"%PDF-"
    # The text layer: the dated header on every page (cheap to read for all of them).
    layer = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    printed = layer.split("\f")[:-1]
    assert len(printed) >= 5 and all(f"generated {data['generated']}" in p for p in printed), len(printed)
    # Each host begins a page of its own: the first line under the header names it.
    starts = {}
    for number, text in enumerate(printed, start=1):
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        for host in ("alpha", "bravo", "charlie", "delta"):
            if len(lines) > 1 and lines[1].startswith(f"{host} "):
                starts[host] = number
    assert sorted(starts) == ["alpha", "bravo", "charlie", "delta"] and len(set(starts.values())) == 4, starts
    # What a reader sees, by OCR: the first page and each host's first page.
    seen = _ocr(pdf, tmp_path, [1, *starts.values()])
    first = seen[1]
    assert "verification report: FAIL" in first and "Failing controls (3)" in first, first
    assert "--limit alpha --tags tls-01" in first and "TLS handshake timed out" in first, first
    for host, number in starts.items():
        assert data["generated"][:10] in seen[number], seen[number][:200]
        assert f"{host} score" in seen[number] or f"{host} unreachable" in seen[number], seen[number][:300]
    # The evidence is printed open; the host that was not reached says why.
    assert "policy drop" in seen[starts["charlie"]]
    assert "did not answer" in seen[starts["delta"]]


# -- what verify prints while it runs and at the end ----------------------------------------------


def test_verify_ends_with_the_failing_controls_their_first_message_and_repair(tmp_path, capsys):
    outcome = Outcome(report_dir=tmp_path, data=fleet(), returncode=1, output="")
    assert cli._reported(outcome) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == [f"ERROR alpha TLS-01 {load_catalogue().get('TLS-01').title}: TLS handshake timed out",
                       "    repair: govbaseline apply -i 'inventories/prod lab.yml' --limit alpha --tags tls-01"]
    fw = next(line for line in out if line.startswith("FAIL alpha FW-01"))
    assert fw.endswith(": port 23 answered from outside")  # the first line of the first failing check
    assert any(line.startswith("FAIL bravo SSH-01") for line in out)
    assert out[-3].startswith("4 hosts, controls: 1 error, 2 fail") and out[-3].endswith("FAIL")


class _Config:
    def __init__(self, hosts: str) -> None:
        self.options = {"--govbaseline-progress": True, "hosts": hosts}

    def getoption(self, name: str) -> object:
        return self.options[name]


def test_progress_counts_each_hosts_checks_and_says_when_a_host_is_done(capsys):
    from govbaseline.checks.plugin import Progress

    progress = Progress()
    ids = [f"test_firewall.py::test_{n}[ansible://{h}]" for n in ("a", "b") for h in ("web1", "web10")]
    progress.expect(_Config("ansible://web1,ansible://web10"), [*ids, "test_tls.py::test_c[ansible://web10]"])
    progress.expect(_Config("ansible://web1"), ids)  # a second xdist worker's list: counted once
    assert progress.expected == {"web1": 2, "web10": 3}
    progress.finished("web1", "pass")
    progress.finished("web10", "pass")
    progress.finished("web1", "fail")
    lines = capsys.readouterr().err.splitlines()
    assert all(line.startswith(report.PROGRESS) for line in lines)
    assert lines[0].endswith("5 checks on 2 hosts: web1 2, web10 3")
    assert lines[-1].removeprefix(report.PROGRESS).startswith("web1: done, 2 checks: 1 fail, 1 pass (")


def test_progress_lines_are_handed_on_while_the_rest_of_the_output_is_kept(tmp_path):
    from govbaseline.verify import _run_pytest

    script = (f"import sys; print('dots'); sys.stderr.write({report.PROGRESS!r} + 'web1: done\\n'); "
              "sys.stderr.write('a warning\\n'); sys.exit(1)")
    seen: list[str] = []
    proc = _run_pytest([sys.executable, "-c", script], dict(os.environ), tmp_path / "out", seen.append)
    assert seen == ["web1: done"]
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "dots\n", "a warning\n")


def test_the_filter_script_hides_what_does_not_match_in_a_real_browser(tmp_path):
    """The page's own script, run by headless Chromium: choosing a host and a status hides the rest."""
    choose = ('<script>var h = document.getElementById("f-host"), s = document.getElementById("f-status");'
              'h.value = "alpha"; h.dispatchEvent(new Event("change"));'
              's.value = "fail"; s.dispatchEvent(new Event("change"));</script></body>')
    page = tmp_path / "report.html"
    page.write_text(report.render_html(fleet()).replace("</body>", choose))
    dom = subprocess.run([pages.pdf_renderer(), "--headless", "--no-sandbox", "--disable-gpu",
                          f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout

    def shown(host: str, status: str, control: str) -> bool:
        start = dom.index(f'<tr data-host="{host}" data-status="{status}" data-control="{control}"')
        return 'class="hidden"' not in dom[start:dom.index(">", start)]

    assert shown("alpha", "fail", "FW-01")
    assert not shown("alpha", "error", "TLS-01") and not shown("bravo", "fail", "SSH-01")
    assert not shown("charlie", "pass", "FW-01")
    assert '<span id="f-count">1 control shown</span>' in dom
