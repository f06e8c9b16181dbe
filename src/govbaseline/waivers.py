"""Waivers: a control knowingly not enforced on some hosts, with a reason, an approver and an end.

A waivers file is a YAML list; each entry::

    - control: AV-02                    # a control of the catalogue
      scope: {hosts: [web1], groups: [legacy]}   # hosts and/or inventory groups
      justification: scans overload the legacy CMS host until its migration
      approver: J. Doe, information security officer
      expires: 2027-03-31               # the last day it holds

Until it expires, ``apply`` skips the control's tasks on its scope (both engines) and ``verify``
reports the control as ``waived``; from the day after, apply enforces it again and verify judges it
as usual (``fail`` if it does not hold). A malformed file is an error naming the line.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from govbaseline.catalogue import load_catalogue
from govbaseline.inventory import ResolvedInventory

FIELDS = ("control", "scope", "justification", "approver", "expires")
SOON_DAYS = 30  # a waiver ending within this many days is listed as expiring soon


class WaiverError(ValueError):
    pass


@dataclass(frozen=True)
class Waiver:
    control: str
    hosts: tuple[str, ...]
    groups: tuple[str, ...]
    justification: str
    approver: str
    expires: dt.date
    source: str  # file:line, for messages

    def covers(self, host: str, groups: list[str]) -> bool:
        return host in self.hosts or bool(set(groups) & set(self.groups))

    def active(self, today: dt.date) -> bool:
        return today <= self.expires

    def as_dict(self, today: dt.date) -> dict[str, Any]:
        return {"control": self.control, "hosts": list(self.hosts), "groups": list(self.groups),
                "justification": self.justification, "approver": self.approver,
                "expires": self.expires.isoformat(), "source": self.source,
                "state": state(self, today)}


def state(waiver: Waiver, today: dt.date) -> str:
    if not waiver.active(today):
        return "expired"
    return "expiring soon" if (waiver.expires - today).days < SOON_DAYS else "active"


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


def load(path: Path) -> list[Waiver]:
    """Read and check a waivers file; every problem is an error naming its line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WaiverError(f"waivers file {path}: cannot be read: {exc.strerror or exc}") from None
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise WaiverError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if root is None:
        return []
    if not isinstance(root, yaml.SequenceNode):
        raise WaiverError(f"{path}:{root.start_mark.line + 1}: a waivers file is a list of waivers")
    controls = {c.id: c for c in load_catalogue().controls}
    waivers = []
    for number, node in enumerate(root.value, start=1):
        where = f"{path}:{node.start_mark.line + 1}"
        if not isinstance(node, yaml.MappingNode):
            raise WaiverError(f"{where}: waiver {number} is not a mapping of {', '.join(FIELDS)}")
        lines = {key.value: f"{path}:{key.start_mark.line + 1}" for key, _ in node.value}
        entry = yaml.safe_load(yaml.serialize(node))

        def fail(field: str, problem: str, entry: dict[str, Any] = entry, number: int = number,
                 lines: dict[str, str] = lines, where: str = where) -> WaiverError:
            control = entry.get("control") if isinstance(entry.get("control"), str) else "?"
            return WaiverError(f"{lines.get(field, where)}: waiver {number} ({control}): {field} {problem}")

        unknown = sorted(set(entry) - set(FIELDS))
        if unknown:
            raise fail(unknown[0], f"is not a waiver field (fields: {', '.join(FIELDS)})")
        for field in FIELDS:
            if field not in entry:
                raise fail(field, "is missing")
        control = entry["control"]
        if not isinstance(control, str) or control not in controls:
            raise fail("control", f"{control!r} is not a control of the catalogue")
        if controls[control].status != "implemented":
            raise fail("control", f"{control} is not implemented yet: there is nothing to waive")
        if controls[control].command:
            raise fail("control", f"{control} is enforced by `govbaseline {controls[control].command}`, not on "
                                  "hosts: there is nothing to waive")
        scope = entry["scope"]
        if not isinstance(scope, dict) or set(scope) - {"hosts", "groups"} or not scope:
            raise fail("scope", "must be a mapping with hosts and/or groups")
        for key in ("hosts", "groups"):
            if key in scope and not _strings(scope[key]):
                raise fail("scope", f"{key} must be a list of names")
        if not scope.get("hosts") and not scope.get("groups"):
            raise fail("scope", "names no host and no group")
        for field in ("justification", "approver"):
            if not isinstance(entry[field], str) or not entry[field].strip():
                raise fail(field, "must be a non-empty text")
        expires = entry["expires"]
        if isinstance(expires, str):
            try:
                expires = dt.date.fromisoformat(expires)
            except ValueError:
                raise fail("expires", f"{expires!r} is not a date (YYYY-MM-DD)") from None
        if not isinstance(expires, dt.date) or isinstance(expires, dt.datetime):
            raise fail("expires", f"{expires!r} is not a date (YYYY-MM-DD)")
        waivers.append(Waiver(control, tuple(scope.get("hosts") or ()), tuple(scope.get("groups") or ()),
                              entry["justification"].strip(), entry["approver"].strip(), expires, where))
    return waivers


def check_scope(waivers: list[Waiver], fleet: ResolvedInventory) -> None:
    """Refuse a waiver naming a host or group the (whole) inventory does not have: a typo would
    waive nothing. The one check of a waiver's scope, for apply and verify alike."""
    groups = set(fleet.groups)
    for waiver in waivers:
        for host in waiver.hosts:
            if host not in fleet.hostvars:
                raise WaiverError(f"{waiver.source}: waiver of {waiver.control}: host {host!r} is not in the inventory")
        for group in waiver.groups:
            if group not in groups:
                raise WaiverError(f"{waiver.source}: waiver of {waiver.control}: group {group!r} is not in the "
                                  "inventory")


def find(explicit: Path | None) -> list[Waiver]:
    """The waivers of ``--waivers FILE`` (none without it). There is deliberately no default file:
    an inventory folder would read it as an inventory source, and a waiver should be chosen."""
    return load(explicit) if explicit is not None else []


def waived(waivers: list[Waiver], host: str, groups: list[str], today: dt.date | None = None) -> dict[str, Waiver]:
    """The controls waived on a host today, by control id."""
    today = today or dt.date.today()
    return {w.control: w for w in waivers if w.active(today) and w.covers(host, groups)}
