"""Pull mode without hosts: how the collector judges a host's result, and how the report shows it.
The lab test (tests/lab/test_pull_e2e.py) runs the whole loop on real hosts."""

from __future__ import annotations

import datetime as dt
import json

import jsonschema

from govbaseline import report
from govbaseline.paths import PACKAGE_DIR
from govbaseline.pull import RESULT_FORMAT, judge

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
SCHEMA = json.loads((PACKAGE_DIR / "report.schema.json").read_text())


def result(**changes):
    base = {"format": RESULT_FORMAT, "host": "web1", "finished": "2026-11-23T11:00:00Z", "commit": "abc",
            "apply": {"returncode": 0, "log_tail": ""}, "results": []}
    return {**base, **changes}


def test_a_fresh_result_of_the_host_stands_for_it():
    assert judge("web1", result(), NOW, dt.timedelta(hours=6)) is None


def test_a_stale_foreign_or_malformed_result_does_not():
    six = dt.timedelta(hours=6)
    assert "stale: its last pull result is 7.0 h old" in judge("web1", result(finished="2026-11-23T05:00:00Z"),
                                                               NOW, six)
    assert "is the result of 'web2', not of web1" in judge("web1", result(host="web2"), NOW, six)
    assert "not a result of format" in judge("web1", result(format=0), NOW, six)
    assert "no valid finishing time" in judge("web1", result(finished="yesterday"), NOW, six)
    assert "lacks its results" in judge("web1", result(results=None), NOW, six)
    assert "wrong shape" in judge("web1", result(results=[{"check": "c", "status": "pass"}]), NOW, six)
    good = {"check": "c", "controls": ["FW-01"], "status": "pass", "message": "", "duration": 0.1,
            "evidence": [{"command": "nft list ruleset", "rc": 0, "stdout": "", "stderr": "", "time": "t"}]}
    assert judge("web1", result(results=[good]), NOW, six) is None
    assert "wrong shape" in judge("web1", result(results=[{**good, "status": "fine"}]), NOW, six)


def test_a_failed_ansible_pull_fails_the_report_and_its_log_is_escaped():
    checks = [{"host": "web1", "controls": ["FW-01"], "check": "c", "status": "pass", "message": "",
               "duration": 0.1, "evidence": []}]
    pulls = {"web1": {"finished": "2026-11-23T11:00:00Z", "commit": "abc", "apply_returncode": 2,
                      "apply_log_tail": "<script>alert(1)</script> fatal: [web1]"}}
    data = report.build(checks, ["web1"], pulls=pulls)
    jsonschema.validate(data, SCHEMA)
    assert not data["summary"]["passed"] and data["hosts"]["web1"]["controls"]["FW-01"]["status"] == "pass"
    page = report.render_html(data)
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "ansible-pull exited 2" in page
    pulls["web1"]["apply_returncode"] = 0
    assert report.build(checks, ["web1"], pulls=pulls)["summary"]["passed"]
