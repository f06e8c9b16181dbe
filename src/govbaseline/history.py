"""The evidence history: every verify or collect run archived in its own folder, chained in an index.

A history folder holds::

    index.jsonl                     one line per run, append-only
    runs/<YYYYMMDDTHHMMSSZ>-<seq>/  the run's report.json, report.html, junit.xml, evidence bundle,
                                    groups.json (each host's inventory groups) and records/<host>.json
                                    (what the host itself recorded: alerts, quarantines, scans...)

Each index line holds the run folder's hash (``run_sha256``: SHA-256 over the lines
``<sha256 of the file>  <path in the folder>`` of every file, sorted by path, the form of
``sha256sum``) and ``chain_sha256``, the SHA-256 of the previous line's ``chain_sha256`` and this
run's name and hash. Replacing, editing or removing a past run, or an index line, breaks the chain
from there on: ``govbaseline history verify DIR`` names the first broken entry. The index is the
record to keep apart (or its last ``chain_sha256``): whoever rewrites the whole chain has to
rewrite that too.

Files are written 0600 and folders 0700, a run's folder is built under a temporary name and renamed
into place, and no path of the history may be a symbolic link (it could point anywhere). An archive
cut off (a crash, a kill) leaves no half run behind: the next archive removes a temporary folder and
completes a run renamed into place whose index line was not written yet (``runs/.pending`` names it
with its hash; a run folder not in the index without that note is left for ``history verify`` to report).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from govbaseline import report

INDEX = "index.jsonl"
RUNS = "runs"
GROUPS = "groups.json"
RECORDS = "records"
PENDING = ".pending"
GENESIS = "0" * 64
# The run's files copied from its report folder (those that exist).
RUN_FILES = (*report.EVIDENCE_FILES, report.MANIFEST, report.BUNDLE, f"{report.BUNDLE}.sha256")
# Where a history goes when --history is not given: none (see README, "Evidence history").
ENV_VAR = "GOVBASELINE_HISTORY"


class HistoryError(ValueError):
    pass


@dataclass
class Run:
    """One archived run, as the index and its folder tell it."""

    seq: int
    name: str
    generated: dt.datetime
    folder: Path
    data: dict[str, Any]
    groups: dict[str, list[str]] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)


def _refuse_links(path: Path) -> None:
    """Refuse ``path`` or any folder above it being a symbolic link (after making it absolute)."""
    path = path.absolute()
    for part in [path, *path.parents]:
        if part.is_symlink():
            raise HistoryError(f"history path {part} is a symbolic link: give the real folder")


def _write_new(path: Path, content: bytes) -> None:
    """Write a new file 0600, never through a link and never over an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)
        fh.flush()
        os.fsync(fh.fileno())


def _files(folder: Path) -> Iterator[tuple[str, Path]]:
    """Every file under ``folder`` with its path relative to it, sorted; refuses links."""
    found = []
    for path in folder.rglob("*"):
        if path.is_symlink():
            raise HistoryError(f"{path} is a symbolic link: a history holds only files")
        name = path.relative_to(folder).as_posix()
        if any(c in name for c in "\n\r\\"):
            # The hashed lines are "<sha256>  <name>\n": a name with a line break could forge other lines.
            raise HistoryError(f"{folder}: a file name with a line break or backslash ({name!r}): a history "
                               "holds only the files govbaseline wrote")
        if path.is_file():
            found.append((name, path))
    yield from sorted(found)


def folder_sha256(folder: Path) -> str:
    """The run folder's hash: SHA-256 over ``<sha256>  <relative path>`` lines, sorted by path."""
    lines = "".join(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {name}\n" for name, path in _files(folder))
    return hashlib.sha256(lines.encode()).hexdigest()


def chain_sha256(previous: str, name: str, run_sha256: str) -> str:
    return hashlib.sha256(f"{previous}\n{name}\n{run_sha256}\n".encode()).hexdigest()


def _index_entries(history: Path) -> list[dict[str, Any]]:
    index = history / INDEX
    if index.is_symlink():
        raise HistoryError(f"{index} is a symbolic link: a history holds only files")
    if not index.exists():
        return []
    entries = []
    for number, line in enumerate(index.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            entry = json.loads(line)
            if not isinstance(entry, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            raise HistoryError(f"{index}:{number}: not a JSON object: {exc}") from None
        entries.append(entry)
    return entries


@contextlib.contextmanager
def _locked(history: Path) -> Iterator[None]:
    """One writer at a time (two verify runs archiving at once would both chain to the same line)."""
    fd = os.open(history / ".lock", os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _append(history: Path, entry: dict[str, Any]) -> None:
    fd = os.open(history / INDEX, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _next_entry(entries: list[dict[str, Any]], name: str, generated: str, passed: bool, digest: str) -> dict[str, Any]:
    """The index line of the run ``name`` after ``entries``, chained to the last of them."""
    previous = str(entries[-1].get("chain_sha256", "")) if entries else GENESIS
    return {"seq": len(entries) + 1, "run": name, "generated": generated, "passed": passed, "run_sha256": digest,
            "previous": previous, "chain_sha256": chain_sha256(previous, name, digest)}


def _run_name(generated: str, seq: int) -> str:
    """A run folder's name: its report's UTC time and its sequence number (``20261101T060000Z-00003``)."""
    return dt.datetime.strptime(generated, "%Y-%m-%dT%H:%M:%SZ").strftime("%Y%m%dT%H%M%SZ") + f"-{seq:05d}"


def _recover(history: Path, entries: list[dict[str, Any]]) -> list[str]:
    """Finish what an archive cut off left (called under the lock): temporary folders are removed;
    a run renamed into place but not indexed is indexed when ``runs/.pending`` names it as the next
    run and its files still have the hash the note records. The index line is built again from the
    folder (its report's time and verdict, the name those give), never taken from the note.
    Returns what was done, one line each; ``entries`` grows."""
    done = []
    runs = history / RUNS
    for temporary in sorted(runs.glob(".*.tmp")):
        if temporary.is_dir() and not temporary.is_symlink():
            shutil.rmtree(temporary)
            done.append(f"removed {temporary}, left by an archive that was cut off")
    pending = runs / PENDING
    if pending.is_symlink() or (pending.exists() and not pending.is_file()):
        raise HistoryError(f"{pending} is not a file: remove it (an archive writes its note there)")
    if not pending.exists():
        return done
    try:
        note = json.loads(pending.read_text(encoding="utf-8"))
        name, digest = str(note["run"]), str(note["run_sha256"])
        if "/" not in name and not name.startswith(".") and not (runs / name).exists():
            # Cut off before the rename: its temporary folder is gone above, nothing was archived.
            pending.unlink()
            done.append(f"removed {pending}: its run {name} was never put in place")
            return done
        data = json.loads((runs / name / "report.json").read_text(encoding="utf-8"))
        generated, passed = str(data["generated"]), bool(data["summary"]["passed"])
        expected = _run_name(generated, len(entries) + 1)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        done.append(f"left {pending} alone: it names no run this archive can complete ({exc})")
        return done
    folder = runs / name
    if name == expected and not folder.is_symlink() and folder.is_dir() and folder_sha256(folder) == digest:
        entry = _next_entry(entries, name, generated, passed, digest)
        _append(history, entry)
        entries.append(entry)
        done.append(f"indexed {folder}: its archive was cut off before its index line was written")
        pending.unlink()
    else:
        done.append(f"left {pending} alone: it does not name the next run ({expected}) with the hash its files have")
    return done


def archive(report_dir: Path, history: Path, groups: dict[str, list[str]],
            records: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Copy the run in ``report_dir`` (its report.json must be there) into ``history`` with the
    hosts' ``groups`` and ``records``; append its index line and return it."""
    _refuse_links(history)
    odd = sorted(h for h in records or {} if "/" in h or h.startswith("."))
    if odd:
        raise HistoryError(f"host name {odd[0]!r} cannot name a records file")
    history.mkdir(mode=0o700, parents=True, exist_ok=True)
    (history / RUNS).mkdir(mode=0o700, exist_ok=True)
    _refuse_links(history / RUNS)
    data = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    with _locked(history):
        entries = _index_entries(history)
        for line in _recover(history, entries):
            print(f"history: {line}", file=sys.stderr)
        name = _run_name(data["generated"], len(entries) + 1)
        final = history / RUNS / name
        temporary = history / RUNS / f".{name}.tmp"
        if final.exists() or temporary.exists():
            raise HistoryError(f"{final} exists already: the index and the runs folder disagree "
                               f"(`govbaseline history verify {history}`)")
        temporary.mkdir(mode=0o700)
        for file_name in RUN_FILES:
            source = report_dir / file_name
            if source.is_file() and not source.is_symlink():
                _write_new(temporary / file_name, source.read_bytes())
        _write_new(temporary / GROUPS, json.dumps(groups, indent=1, sort_keys=True).encode())
        if records:
            (temporary / RECORDS).mkdir(mode=0o700)
            for host, content in sorted(records.items()):
                _write_new(temporary / RECORDS / f"{host}.json",
                           json.dumps(content, indent=1, sort_keys=True, ensure_ascii=False).encode())
        digest = folder_sha256(temporary)
        entry = _next_entry(entries, name, data["generated"], data["summary"]["passed"], digest)
        pending = history / RUNS / PENDING
        if pending.exists():
            raise HistoryError(f"{pending} names a run this archive could not complete: see it, then remove it")
        _write_new(pending, json.dumps({"run": name, "run_sha256": digest}, sort_keys=True).encode())
        os.rename(temporary, final)
        _append(history, entry)
        pending.unlink()
    return entry


def verify_history(history: Path) -> list[str]:
    """Problems of a history, the first broken entry first: an index line out of sequence, a chain
    that does not follow, a run folder missing or whose files changed, a run folder not in the index."""
    _refuse_links(history)
    if not (history / INDEX).exists():
        return [f"{history} has no {INDEX}: not a govbaseline history"]
    problems = []
    previous = GENESIS
    listed = set()
    for number, entry in enumerate(_index_entries(history), start=1):
        name = str(entry.get("run", ""))
        label = f"entry {number} ({name or 'no run named'})"
        listed.add(name)
        if entry.get("seq") != number:
            problems.append(f"{label}: sequence number {entry.get('seq')!r}, expected {number}: a line was "
                            "removed or inserted")
        if entry.get("previous") != previous or \
                entry.get("chain_sha256") != chain_sha256(previous, name, str(entry.get("run_sha256"))):
            problems.append(f"{label}: the chain is broken: this line or an earlier one was changed or removed")
        previous = str(entry.get("chain_sha256"))
        folder = history / RUNS / name
        if not name or "/" in name or name.startswith("."):
            problems.append(f"{label}: not a run folder name")
        elif folder.is_symlink() or not folder.is_dir():
            problems.append(f"{label}: the run folder {folder} is missing")
        else:
            try:
                digest = folder_sha256(folder)
            except HistoryError as exc:
                problems.append(f"{label}: {exc}")
            else:
                if digest != entry.get("run_sha256"):
                    problems.append(f"{label}: the files of {folder} were changed (SHA-256 {digest}, "
                                    f"the index recorded {entry.get('run_sha256')})")
                else:
                    problems += _index_fields_problems(label, entry, folder)
    runs = history / RUNS
    pending = runs / PENDING
    try:
        cut_off = json.loads(pending.read_text(encoding="utf-8")).get("run") if pending.is_file() else None
    except (OSError, ValueError, AttributeError):
        cut_off = None
    for extra in sorted(p.name for p in runs.iterdir()) if runs.is_dir() else []:
        if extra not in listed and not extra.startswith("."):
            why = (": its archive was cut off before its index line (runs/.pending names it); the next archive "
                   "indexes it only if it is the next run and its files are unchanged" if extra == cut_off else "")
            problems.append(f"run folder {runs / extra} is not in the index{why}")
    return problems


def last_entry(history: Path) -> dict[str, Any] | None:
    """The index's last entry (the chain's head), or None for an empty history."""
    entries = _index_entries(history)
    return entries[-1] if entries else None


def _index_fields_problems(label: str, entry: dict[str, Any], folder: Path) -> list[str]:
    """The index's own fields outside the chain (``generated``, ``passed``) must be the run's
    report's, which the chain covers: an edited date would move the next records window."""
    try:
        data = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []  # a run without a readable report is reported where it is read
    if entry.get("generated") != data.get("generated") or entry.get("passed") != data.get("summary", {}).get("passed"):
        return [f"{label}: the index says generated {entry.get('generated')!r}, passed {entry.get('passed')!r}; the "
                f"run's report says {data.get('generated')!r}, {data.get('summary', {}).get('passed')!r}: the index "
                "line was changed"]
    return []


def load_runs(history: Path) -> list[Run]:
    """Every run of a verified history, oldest first; HistoryError naming the first problem of a
    broken one (a report over a history someone changed would prove nothing)."""
    problems = verify_history(history)
    if problems:
        raise HistoryError(f"history {history} fails its check, first: {problems[0]} "
                           f"(`govbaseline history verify {history}` lists all)")
    runs = []
    for entry in _index_entries(history):
        folder = history / RUNS / str(entry["run"])
        data = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        groups = json.loads((folder / GROUPS).read_text(encoding="utf-8")) if (folder / GROUPS).exists() else {}
        records = {p.stem: json.loads(p.read_text(encoding="utf-8"))
                   for p in sorted((folder / RECORDS).glob("*.json"))}
        generated = dt.datetime.strptime(data["generated"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        runs.append(Run(int(entry["seq"]), str(entry["run"]), generated, folder, data, groups, records))
    return sorted(runs, key=lambda r: (r.generated, r.seq))


def history_dir(given: str | None) -> Path | None:
    """The history folder of --history, else of GOVBASELINE_HISTORY, else none (no archiving)."""
    value = given or os.environ.get(ENV_VAR, "")
    return Path(os.path.abspath(os.path.expanduser(value))) if value else None


def last_read_by_host(history: Path) -> dict[str, dt.datetime]:
    """When each host's records were last read into the history (the end of the last run that
    archived them without an error): the next gathering of that host starts there, whatever runs of
    other hosts came between (a host checked weekly is read for its whole week)."""
    found: dict[str, dt.datetime] = {}
    for entry in _index_entries(history) if history.is_dir() else []:
        folder = history / RUNS / str(entry.get("run", "")) / RECORDS
        if not folder.is_dir() or folder.is_symlink():
            continue
        when = dt.datetime.strptime(str(entry["generated"]), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        for path in folder.glob("*.json"):
            try:
                if "error" not in json.loads(path.read_text(encoding="utf-8")):
                    found[path.stem] = when
            except (OSError, ValueError):
                continue
    return found


def last_generated(history: Path) -> dt.datetime | None:
    """When the last archived run ended, None for a new history."""
    entries = _index_entries(history) if history.is_dir() else []
    if not entries:
        return None
    return dt.datetime.strptime(str(entries[-1]["generated"]), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
