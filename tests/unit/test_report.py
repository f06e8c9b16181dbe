"""How check results roll up into control and host statuses."""

from __future__ import annotations

from govbaseline.report import build, control_status


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
