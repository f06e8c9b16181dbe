"""The host's patch report command (roles/patching/files/govbaseline-patch-report): the record of
pending security updates keeps when each was first seen across runs, which PATCH-02 relies on."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json

from govbaseline.paths import ROLES_DIR


def load_command():
    path = ROLES_DIR / "patching" / "files" / "govbaseline-patch-report"
    loader = importlib.machinery.SourceFileLoader("govbaseline_patch_report", str(path))
    spec = importlib.util.spec_from_loader("govbaseline_patch_report", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_first_seen_survives_later_runs_and_only_new_updates_are_new(tmp_path, monkeypatch):
    command = load_command()
    pending = {"openssl": {"installed": "3.0.1-1", "candidate": "3.0.1-2", "origin": "Debian-Security:12"}}
    monkeypatch.setattr(command, "pending_security", lambda: dict(pending))
    clock = iter([1000, 5000, 9000])
    monkeypatch.setattr(command.time, "time", lambda: next(clock))

    assert command.track(str(tmp_path))[0] == ["openssl"]
    # A newer candidate of the same package keeps its first-seen time; another package is new.
    pending["openssl"] = {**pending["openssl"], "candidate": "3.0.1-3"}
    pending["zlib1g"] = {"installed": "1:1.2-1", "candidate": "1:1.2-2", "origin": "Debian-Security:12"}
    new, record = command.track(str(tmp_path))
    assert new == ["zlib1g"]
    assert record["openssl"]["first_seen"] == 1000 and record["openssl"]["candidate"] == "3.0.1-3"
    assert record["zlib1g"]["first_seen"] == 5000
    # Once installed, an update leaves the record.
    del pending["openssl"]
    assert command.track(str(tmp_path))[0] == []
    saved = json.loads((tmp_path / "pending.json").read_text())
    assert saved["checked"] == 9000 and sorted(saved["pending"]) == ["zlib1g"]
