# PYTHON_ARGCOMPLETE_OK
"""The govbaseline command line: controls, lab, apply, verify, history, inspection, demo.

Shell completion (argcomplete): ``eval "$(register-python-argcomplete govbaseline)"`` in bash."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from govbaseline import __version__
from govbaseline.lab.image import DEFAULT_DISTRO, DISTROS


def _cmd_controls(args: argparse.Namespace) -> int:
    from govbaseline.catalogue import load_catalogue, render_table

    catalogue = load_catalogue()
    if args.format == "json":
        print(json.dumps(catalogue.as_dict(), indent=2, ensure_ascii=False))
    else:
        print(render_table(catalogue))
    return 0


def _cmd_oscal(args: argparse.Namespace) -> int:
    from govbaseline import oscal  # needs the extra govbaseline[oscal]: a clear error if it is missing

    out = Path(args.out or oscal.FILE_NAMES[args.document])
    if args.document == "results":
        data, sha256 = oscal.load_report(Path(args.report))
        document = oscal.assessment_results(data, report_href=os.path.relpath(args.report, out.parent.resolve()),
                                            report_sha256=sha256)
    else:
        document = oscal.DOCUMENTS[args.document]()
    oscal.write(document, out)
    print(out)
    return 0


def _cmd_lab(args: argparse.Namespace) -> int:
    from govbaseline.lab import Lab
    from govbaseline.lab.image import DEFAULT_DISTRO

    lab = Lab(args.name, distro=getattr(args, "distro", None) or DEFAULT_DISTRO)
    if args.lab_command == "up":
        hosts = lab.up(args.hosts, distro=args.distro, vm=args.vm)
        for host in hosts:
            print(f"{host.name}\t{host.address}\t{host.distro}{' (VM)' if host.machine == 'vm' else ''}")
        backup = "backup server :8000" if lab.sink.distro != "debian12" else "backup server: SFTP"
        print(f"{lab.sink.name}\t{lab.sink.address}\tsink (SMTP :25, webhook :8025; {backup})")
        print(f"inventory: {lab.inventory}")
    elif args.lab_command == "down":
        lab.down()
        print(f"lab {lab.name}: removed")
    elif args.lab_command == "status":
        rows = lab.status()
        if not rows:
            print(f"lab {lab.name}: no hosts")
        for row in rows:
            print(f"{row['host']}\t{row['address']}\t{row['state']}\t{row['container']}")
    elif args.lab_command == "inventory":
        if not lab.inventory.exists():
            print(f"lab {lab.name} has no inventory; run `govbaseline lab up` first", file=sys.stderr)
            return 1
        print(lab.inventory)
    elif args.lab_command == "image":
        from govbaseline.lab.image import ensure_image

        if args.vm:
            from govbaseline.lab.vm import ensure_base

            print(ensure_base(args.distro or DEFAULT_DISTRO, log=False).disk)
        else:
            print(ensure_image(args.distro or DEFAULT_DISTRO))
    return 0


def _waivers(args: argparse.Namespace) -> list[Any] | None:
    """The waivers of --waivers (none without it), or None after saying what is wrong with the file."""
    from govbaseline.waivers import WaiverError, find

    try:
        found = find(Path(args.waivers) if args.waivers else None)
    except WaiverError as exc:
        print(f"govbaseline: {exc}", file=sys.stderr)
        return None
    if found:
        print(f"waivers: {len(found)} read", file=sys.stderr)
    return found


def _cmd_apply(args: argparse.Namespace) -> int:
    from govbaseline.waivers import WaiverError

    waivers = _waivers(args)
    if waivers is None:
        return 2
    try:
        return _apply(args, waivers)
    except WaiverError as exc:
        print(f"govbaseline: refused before any change: {exc}", file=sys.stderr)
        return 2


def _apply(args: argparse.Namespace, waivers: list[Any]) -> int:
    from govbaseline.engines import apply

    if args.artifact_dir and args.engine != "ansible":
        print("govbaseline: --artifact-dir keeps Ansible's events: use it with --engine ansible", file=sys.stderr)
        return 2
    artifact_dir = Path(args.artifact_dir) if args.artifact_dir else None
    if args.canary is not None:
        if args.check or args.tags:
            print("govbaseline: --canary applies the whole baseline for real: it cannot be combined with "
                  "--check or --tags", file=sys.stderr)
            return 2
        from govbaseline.rollout import rollout

        done = rollout(Path(args.inventory), canary=args.canary, batch_size=args.batch_size or args.canary,
                       report_dir=Path(args.report_dir), engine=args.engine, limit=args.limit, waivers=waivers,
                       artifact_dir=artifact_dir)
        _say_artifacts(args)
        return 0 if done.ok else 1
    if args.batch_size is not None:
        print("govbaseline: --batch-size needs --canary", file=sys.stderr)
        return 2
    if args.tags and args.engine == "pyinfra":
        print("govbaseline: --tags selects Ansible tasks; the pyinfra engine applies whole deploys: "
              "use --engine ansible with --tags, or leave --tags out", file=sys.stderr)
        return 2
    if args.tags:
        from govbaseline.engines import known_tags

        known = known_tags()
        unknown = sorted({t.strip() for t in args.tags.split(",") if t.strip()} - known)
        if unknown:
            print(f"govbaseline: unknown tag {', '.join(unknown)} in --tags: use control ids (e.g. fw-01) or role "
                  f"names (e.g. firewall); `govbaseline controls` lists them", file=sys.stderr)
            return 2
    result = apply(Path(args.inventory), engine=args.engine, check=args.check, limit=args.limit,
                   tags=args.tags, waivers=waivers, selection=_selected(args),
                   artifact_dir=artifact_dir)
    _say_artifacts(args)
    if not result.ok and result.output.startswith("refused before any change"):
        print(result.output, file=sys.stderr, end="")
    return result.exit_code


def _say_artifacts(args: argparse.Namespace) -> None:
    if args.artifact_dir:
        print(f"artifacts: {args.artifact_dir} (events.jsonl: each task's start and each host's result; stdout)")


def _cmd_verify(args: argparse.Namespace) -> int:
    from govbaseline.verify import verify

    waivers = _waivers(args)
    if waivers is None:
        return 2
    # As the checks read them: upper case, several ids per option allowed (FW-01,FW-02).
    controls = [c.strip().upper() for given in args.control or [] for c in given.split(",") if c.strip()]
    if controls or args.role:
        from govbaseline.catalogue import load_catalogue

        catalogue = load_catalogue().controls
        unknown_ids = sorted(set(controls) - {c.id for c in catalogue})
        if unknown_ids:
            print(f"govbaseline: unknown control {', '.join(unknown_ids)} in --control (`govbaseline controls` "
                  "lists them, e.g. FW-01)", file=sys.stderr)
            return 2
        known = {c.role for c in catalogue if c.role}
        unknown = sorted(set(args.role or []) - known)
        if unknown:
            print(f"govbaseline: unknown role {', '.join(unknown)} (roles: {', '.join(sorted(known))})",
                  file=sys.stderr)
            return 2
        controls += [c.id for c in catalogue if c.role in (args.role or []) and c.status == "implemented"]
    if not _pdf_ready(args):
        return 2
    # A waiver outside the inventory (WaiverError, a ValueError) is reported by main(), exit 2.
    outcome = verify(Path(args.inventory), report_dir=Path(args.report_dir), forks=args.forks,
                     limit=args.limit, controls=controls or None, waivers=waivers,
                     progress=lambda line: print(line, flush=True))
    # Archived first: a PDF that fails to print must not cost the period a day of evidence.
    return _printed(args, outcome, _archived(args, outcome, _reported(outcome)))


def _pdf_ready(args: argparse.Namespace) -> bool:
    """With --pdf: the renderer is there (checked before any host is read: the run would end without
    the PDF asked for); otherwise says how to install it."""
    if not args.pdf:
        return True
    from govbaseline import pages

    try:
        pages.pdf_renderer()
    except pages.RendererMissing as exc:
        print(f"govbaseline: {exc}", file=sys.stderr)
        return False
    return True


def _printed(args: argparse.Namespace, outcome: Any, code: int) -> int:
    """With --pdf: report.pdf beside report.html, written after the run is archived (a PDF that fails
    to print must not cost the period a day of evidence); the run's exit code."""
    if args.pdf:
        from govbaseline import report

        print(f"pdf: {report.write_pdf(outcome.data, outcome.report_dir)}")
    return code


def _cmd_collect(args: argparse.Namespace) -> int:
    from govbaseline.pull import collect

    waivers = _waivers(args)
    if waivers is None or not _pdf_ready(args):
        return 2
    outcome = collect(Path(args.inventory), Path(args.report_dir), limit=args.limit, forks=args.forks,
                      max_age_hours=args.max_age_hours, waivers=waivers)
    return _printed(args, outcome, _archived(args, outcome, _reported(outcome)))


def _archived(args: argparse.Namespace, outcome: Any, code: int) -> int:
    """With --history (or GOVBASELINE_HISTORY): gather the hosts' own records and archive the run
    in the evidence history (``govbaseline.history``); the run's exit code, or 1 when the run could
    not be archived."""
    from govbaseline.history import RUNS, HistoryError, history_dir
    from govbaseline.records import archive_run

    where = history_dir(args.history)
    if where is None:
        return code
    try:
        entry = archive_run(_selected(args), outcome.report_dir, outcome.data, where)
    except HistoryError as exc:  # the hosts were checked: a failure now, not a refusal
        print(f"govbaseline: failed: the run is in {outcome.report_dir} but not in the history: {exc}",
              file=sys.stderr)
        return 1
    print(f"history: {where / RUNS / entry['run']} chained as entry {entry['seq']} "
          f"(chain sha256 {entry['chain_sha256']})")
    return code


def _cmd_history(args: argparse.Namespace) -> int:
    from govbaseline.history import HistoryError, verify_history

    try:
        problems = verify_history(Path(args.dir))
    except HistoryError as exc:
        problems = [str(exc)]
    for problem in problems:
        print(f"govbaseline: {problem}", file=sys.stderr)
    if problems:
        print(f"history {args.dir}: BROKEN, first at {problems[0]}", file=sys.stderr)
        return 1
    from govbaseline.history import last_entry

    last = last_entry(Path(args.dir))
    head = f"{last['seq']} runs, last chain sha256 {last['chain_sha256']}" if last else "no runs"
    if args.expect_chain and (not last or last["chain_sha256"] != args.expect_chain):
        # Runs removed from the end leave an intact, shorter chain: only a recorded head shows it.
        print(f"history {args.dir}: the chain ends at {head}, not at the expected {args.expect_chain}: runs were "
              "removed from its end (or the expected value is of another history)", file=sys.stderr)
        return 1
    print(f"history {args.dir}: every run and the chain are intact; {head} (keep it outside the history: "
          "--expect-chain proves later that no run was removed from the end)")
    return 0


def _date(text: str) -> Any:
    import datetime as dt

    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _cmd_inspection(args: argparse.Namespace) -> int:
    from govbaseline import inspection
    from govbaseline.history import HistoryError, load_runs

    where = Path(args.history)
    if not where.is_dir():
        print(f"govbaseline: history {where} does not exist (verify --history writes it)", file=sys.stderr)
        return 2
    if (args.previous_from is None) != (args.previous_to is None):
        print("govbaseline: give both --previous-from and --previous-to, or neither (the period of the same "
              "length just before)", file=sys.stderr)
        return 2
    period = inspection.Period(args.date_from, args.date_to)
    previous = inspection.Period(args.previous_from, args.previous_to) if args.previous_from else None
    try:
        runs = load_runs(where)
    except HistoryError as exc:
        print(f"govbaseline: refused: {exc}", file=sys.stderr)
        return 2
    if args.pdf:
        from govbaseline import pages

        try:  # refused before anything is written: the run would end without the PDF asked for
            pages.pdf_renderer()
        except pages.RendererMissing as exc:
            print(f"govbaseline: {exc}", file=sys.stderr)
            return 2
    out = Path(args.out)
    if out.resolve() == where.resolve() or where.resolve() in out.resolve().parents:
        print(f"govbaseline: --out {out} is inside the history {where}: a history holds only archived runs "
              "(a folder of its own would break `history verify`); write the report elsewhere", file=sys.stderr)
        return 2
    in_period = [run for run in runs if period.holds(run.generated)]
    if args.oscal:
        try:  # refused before anything is written, as --pdf
            from govbaseline import oscal
        except ImportError as exc:
            print(f"govbaseline: --oscal needs the extra govbaseline[oscal] (compliance-trestle): {exc}",
                  file=sys.stderr)
            return 2
        if not in_period:
            print(f"govbaseline: --oscal: no verify run in {period}, so there are no assessment results to export",
                  file=sys.stderr)
            return 2
    data = inspection.build(runs, period, previous, out=out, history=where)
    json_path, html_path = inspection.write(data, out)
    if args.pdf:
        pages.write_pdf(inspection.render_html(data), out / "inspection.pdf")
        print(f"pdf: {out / 'inspection.pdf'}")
    if args.oscal:
        import datetime as dt
        import hashlib

        reports = [(run.data, os.path.relpath(run.folder / "report.json", out.resolve()),
                    hashlib.sha256((run.folder / "report.json").read_bytes()).hexdigest()) for run in in_period]
        start = dt.datetime.combine(period.start, dt.time(), dt.UTC)
        end = dt.datetime.combine(period.end, dt.time(23, 59, 59), dt.UTC)
        oscal.write(oscal.period_results(reports, str(period), start, end), out / oscal.FILE_NAMES["results"])
        print(f"oscal: {out / oscal.FILE_NAMES['results']}")
    supported = sum(s["supported"] for s in data["statements"])
    print(f"inspection {period}: {data['coverage']['runs']} runs on {data['coverage']['days_with_runs']} of "
          f"{data['coverage']['days']} days, {len(data['findings'])} findings, {supported} of "
          f"{len(data['statements'])} statements supported by the evidence")
    print(f"report: {html_path}\ndata: {json_path}")
    return 0


def _selected(args: argparse.Namespace) -> Any:
    """The hosts of the inventory and --limit (a ``Selection``, handed on to the engine); refuses
    (ValueError, exit 2) a selection without hosts: Ansible would end with "no hosts matched" and
    exit 0, as if the baseline were applied."""
    from govbaseline.inventory import select

    return select(Path(args.inventory), args.limit).refuse_empty("--limit")


def _reported(outcome: Any) -> int:
    """Say where the report of a verify or collect run is, and how it ended (exit 1 if it failed)."""
    from govbaseline import report

    for failure in report.failures(outcome.data):
        message = (failure["message"].strip().splitlines() or [""])[0][:200]
        print(f"{failure['status'].upper()} {failure['host']} {failure['control']} {failure['title']}"
              f"{': ' + message if message else ''}\n    repair: {failure['repair']}")
    print(outcome.summary_line())
    print(f"report: {outcome.report_dir / 'report.html'}")
    print(f"evidence: {outcome.report_dir / 'evidence.tar.gz'} sha256 {outcome.bundle_sha256} "
          "(record this hash apart from the files)")
    return 0 if outcome.passed else 1


def _cmd_pull_result(args: argparse.Namespace) -> int:
    from govbaseline.pull import write_result

    result = write_result(Path(args.inventory), args.host, Path(args.out), Path(args.report_dir),
                          args.apply_returncode, Path(args.apply_log) if args.apply_log else None, args.commit)
    failed = [r["check"] for r in result["results"] if r["status"] in ("fail", "error")]
    print(f"{args.host}: {len(result['results'])} checks, {len(failed)} failed; result in {args.out}")
    return 0 if not failed else 1


def _cmd_restore(args: argparse.Namespace) -> int:
    from govbaseline.engines import run_ansible

    if not args.path.startswith("/") or (args.target and not args.target.startswith("/")):
        print("govbaseline: --path and --target must be absolute paths", file=sys.stderr)
        return 2
    from govbaseline.inventory import select

    # Ansible would end with "no hosts matched" and exit 0, as if the files were back.
    if not select(Path(args.inventory), args.host).hosts.hostvars:
        raise ValueError(f"inventory {args.inventory} has no host {args.host} (--host)")
    extra: dict[str, object] = {"restore_path": args.path, "restore_snapshot": args.snapshot}
    extra.update({"restore_target": args.target} if args.target else {"restore_in_place": True})
    result = run_ansible(Path(args.inventory), limit=args.host, playbook="restore.yml", extra_vars=extra)
    return result.exit_code


def _cmd_init(args: argparse.Namespace) -> int:
    from govbaseline.starter import init

    target = Path(args.dir)
    written = init(target)
    for path in written:
        print(path)
    print(f"init: {len(written)} files in {target}; next steps: {target / 'README.md'}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from govbaseline.demo import demo

    return demo(Path(args.report_dir), engine=args.engine, distro=args.distro, vm=args.vm)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _shared_options() -> dict[str, argparse.ArgumentParser]:
    """Options several commands take, each defined once (argparse parent parsers)."""
    inventory = argparse.ArgumentParser(add_help=False)
    inventory.add_argument("-i", "--inventory", required=True, help="the Ansible inventory (file or folder)")
    limit = argparse.ArgumentParser(add_help=False)
    limit.add_argument("--limit", help="only these hosts or groups (Ansible pattern)")
    waivers = argparse.ArgumentParser(add_help=False)
    waivers.add_argument("--waivers", metavar="FILE",
                         help="waivers file: controls not enforced on some hosts until a date (see README)")
    vault = argparse.ArgumentParser(add_help=False)
    group = vault.add_argument_group("vault (as ansible-playbook's options; for every Ansible tool of the run)")
    group.add_argument("--vault-id", action="append", metavar="ID",
                       help="vault identity, label@file or label@prompt (repeatable)")
    group.add_argument("--vault-password-file", action="append", metavar="FILE",
                       help="file holding the vault password, or a script printing it (repeatable)")
    group.add_argument("--ask-vault-pass", action="store_true", help="ask for the vault password")
    return {"inventory": inventory, "limit": limit, "waivers": waivers, "vault": vault}


def build_parser() -> argparse.ArgumentParser:
    shared = _shared_options()
    run = [shared["inventory"], shared["limit"], shared["waivers"], shared["vault"]]
    parser = argparse.ArgumentParser(prog="govbaseline", description=__doc__, epilog=EXIT_CODES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"govbaseline {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    controls = sub.add_parser("controls", help="print the control catalogue")
    controls.add_argument("--format", choices=("table", "json"), default="table")
    controls.set_defaults(func=_cmd_controls)

    oscal_p = sub.add_parser("oscal", help="export the catalogue, the component definition or a run's report as "
                             "OSCAL (needs govbaseline[oscal])")
    oscal_sub = oscal_p.add_subparsers(dest="document", required=True)
    for name, text in (("catalog", "the policies' clauses"), ("profile", "the clauses a server can satisfy"),
                       ("component", "govbaseline's controls, the clauses they implement"),
                       ("results", "a verify run's report.json as assessment results")):
        p = oscal_sub.add_parser(name, help=text)
        if name == "results":
            p.add_argument("report", help="report.json of a verify or collect run")
        p.add_argument("-o", "--out", metavar="FILE",
                       help="where to write it, .json or .yaml (default: catalog.json, profile.json, "
                            "component-definition.json or assessment-results.json, the names the documents "
                            "refer to each other by)")
    oscal_p.set_defaults(func=_cmd_oscal)

    lab = sub.add_parser("lab", help="disposable Debian test hosts (podman + systemd, or QEMU VMs)")
    lab_sub = lab.add_subparsers(dest="lab_command", required=True)
    for name, text in (("up", "start hosts (removing this lab's old ones first)"), ("down", "remove hosts"),
                       ("status", "list hosts"), ("inventory", "print the inventory file's path"),
                       ("image", "build or find the host image")):
        p = lab_sub.add_parser(name, help=text)
        p.add_argument("--name", default="default", help="lab name (default: %(default)s)")
        if name in ("up", "image"):
            p.add_argument("--distro", choices=sorted(DISTROS), default=None,
                           help=f"Debian release of the hosts (default: {DEFAULT_DISTRO})")
        if name == "up":
            p.add_argument("--hosts", type=int, default=1, help="how many hosts (default: %(default)s)")
        if name in ("up", "image"):
            p.add_argument("--vm", action="store_true",
                           help="web servers as QEMU virtual machines (kernel-level controls, reboots); "
                                "KVM where it works, software emulation otherwise" if name == "up" else
                                "the VM hosts' disk, kernel and initramfs instead of the container image")
    lab.set_defaults(func=_cmd_lab)

    apply_p = sub.add_parser("apply", help="apply the baseline to an inventory", parents=run)
    apply_p.add_argument("--engine", choices=("ansible", "pyinfra"), default="ansible")
    apply_p.add_argument("--check", action="store_true", help="report what would change, change nothing")
    apply_p.add_argument("--tags", help="only these controls, e.g. fw-01,fw-02 (Ansible engine)")
    apply_p.add_argument("--canary", type=_positive_int, metavar="N",
                         help="safe rollout: apply to N web servers (with the hosts they depend on), verify "
                              "them, then continue in batches; stop at the first batch that fails")
    apply_p.add_argument("--batch-size", type=_positive_int, metavar="M",
                         help="web servers per batch after the canaries (default: N)")
    apply_p.add_argument("--report-dir", default="reports/rollout",
                         help="where each batch's verification report goes (with --canary)")
    apply_p.add_argument("--artifact-dir", metavar="DIR",
                         help="keep the Ansible run's events (events.jsonl, one JSON object per task start and "
                              "host result) and printed text (stdout) in DIR, appended, private (0700/0600)")
    apply_p.set_defaults(func=_cmd_apply)

    verify_p = sub.add_parser("verify", help="check every host in an inventory and write the report", parents=run)
    verify_p.add_argument("--report-dir", default="reports")
    verify_p.add_argument("--forks", type=_positive_int, default=4,
                          help="checks run at once across the hosts (default 4)")
    verify_p.add_argument("--control", action="append", help="only this control id (repeatable)")
    verify_p.add_argument("--role", action="append", help="only the controls of this role, e.g. tls (repeatable)")
    verify_p.add_argument("--history", metavar="DIR",
                          help="archive the run and the hosts' records in this evidence history "
                               "(default: $GOVBASELINE_HISTORY; none if unset)")
    verify_p.add_argument("--pdf", action="store_true",
                          help="also write report.pdf (printed by headless Chromium: chromium-headless-shell)")
    verify_p.set_defaults(func=_cmd_verify)

    collect_p = sub.add_parser("collect", help="gather the results of hosts in pull mode into one report", parents=run)
    collect_p.add_argument("--report-dir", default="reports/pull")
    collect_p.add_argument("--forks", type=_positive_int, default=10, help="hosts read at once (default 10)")
    collect_p.add_argument("--max-age-hours", type=float, default=6.0,
                           help="older results fail the host: above pull_calendar's interval plus its delay "
                                "(default %(default)s)")
    collect_p.add_argument("--history", metavar="DIR",
                           help="archive the run and the hosts' records in this evidence history "
                                "(default: $GOVBASELINE_HISTORY; none if unset)")
    collect_p.add_argument("--pdf", action="store_true",
                           help="also write report.pdf (printed by headless Chromium: chromium-headless-shell)")
    collect_p.set_defaults(func=_cmd_collect)

    history_p = sub.add_parser("history", help="the evidence history of verify --history")
    history_sub = history_p.add_subparsers(dest="history_command", required=True)
    history_verify = history_sub.add_parser("verify", help="check every run's files and the index's chain")
    history_verify.add_argument("dir", help="the history folder")
    history_verify.add_argument("--expect-chain", metavar="SHA256",
                                help="the last chain sha256 recorded earlier: fail when the chain ends elsewhere")
    history_verify.set_defaults(func=_cmd_history)

    inspection_p = sub.add_parser("inspection", help="the self-inspection report of a period (REP-01)")
    inspection_p.add_argument("--history", required=True, metavar="DIR", help="the evidence history")
    inspection_p.add_argument("--from", dest="date_from", type=_date, required=True, metavar="DATE",
                              help="first day of the period (YYYY-MM-DD, UTC)")
    inspection_p.add_argument("--to", dest="date_to", type=_date, required=True, metavar="DATE",
                              help="last day of the period (inclusive)")
    inspection_p.add_argument("--previous-from", type=_date, metavar="DATE",
                              help="the period to compare with (default: the same length just before)")
    inspection_p.add_argument("--previous-to", type=_date, metavar="DATE")
    inspection_p.add_argument("-o", "--out", default="reports/inspection",
                              help="folder for inspection.html and inspection.json (default %(default)s)")
    inspection_p.add_argument("--pdf", action="store_true",
                              help="also write inspection.pdf (printed by headless Chromium: chromium-headless-shell)")
    inspection_p.add_argument("--oscal", action="store_true",
                              help="also write assessment-results.json: every verify run of the period as an "
                                   "OSCAL result, each naming its archived report.json by hash (needs "
                                   "govbaseline[oscal])")
    inspection_p.set_defaults(func=_cmd_inspection)

    # Run on a host in pull mode by /usr/local/sbin/govbaseline-pull, from its checkout: not for people.
    result_p = sub.add_parser("pull-result")  # no help: left out of the command list
    result_p.add_argument("--inventory", required=True)
    result_p.add_argument("--host", required=True)
    result_p.add_argument("--out", required=True)
    result_p.add_argument("--report-dir", required=True)
    result_p.add_argument("--apply-returncode", type=int, required=True)
    result_p.add_argument("--apply-log")
    result_p.add_argument("--commit", default="")
    result_p.set_defaults(func=_cmd_pull_result)

    restore_p = sub.add_parser("restore", help="restore a path from a host's backups (latest or a given snapshot)",
                               parents=[shared["inventory"], shared["vault"]])
    restore_p.add_argument("--host", required=True, help="the host whose backups to restore from (and onto)")
    restore_p.add_argument("--path", required=True, help="absolute path to restore, e.g. /var/www")
    restore_p.add_argument("--snapshot", default="latest", help="snapshot id (default: %(default)s)")
    where = restore_p.add_mutually_exclusive_group(required=True)
    where.add_argument("--target", help="restore under this folder (the path is recreated inside it)")
    where.add_argument("--in-place", action="store_true", help="restore over the live files")
    restore_p.set_defaults(func=_cmd_restore)

    init_p = sub.add_parser("init", help="write a starting repository for your organisation "
                            "(inventory, vault skeletons, ansible.cfg, collection requirements)")
    init_p.add_argument("dir", help="a new or empty folder (existing files are never overwritten)")
    init_p.set_defaults(func=_cmd_init)

    demo_p = sub.add_parser("demo", help="lab host -> apply -> verify -> report")
    demo_p.add_argument("--report-dir", default="reports/demo")
    demo_p.add_argument("--engine", choices=("ansible", "pyinfra"), default="ansible")
    demo_p.add_argument("--distro", choices=sorted(DISTROS), default=DEFAULT_DISTRO)
    demo_p.add_argument("--vm", action="store_true", help="the web servers are QEMU virtual machines (slower: "
                        "software emulation where KVM does not work)")
    demo_p.set_defaults(func=_cmd_demo)
    return parser


EXIT_CODES = """exit codes:
  0    done: applied, or every check passed
  1    a run failed, or a check failed (the report says which), or an error stopped a run once started
  2    refused before anything ran: bad input, a missing file, an unknown control, tag or host
  130  interrupted (Ctrl-C)
  141  the output was closed early (e.g. piped into head)"""

# Options whose value is a path: resolved from the folder govbaseline is started in, before any
# engine runs, whatever folder the engines' tools are started in.
PATH_OPTIONS = ("inventory", "report_dir", "waivers", "out", "apply_log", "dir", "history", "artifact_dir")


def _absolute_paths(args: argparse.Namespace) -> None:
    """Make every path option absolute against the working folder; an inventory that does not exist
    is refused (FileNotFoundError, exit 2) naming the path as given and as resolved."""
    for name in PATH_OPTIONS:
        value = getattr(args, name, None)
        if value:
            setattr(args, name, os.path.abspath(os.path.expanduser(value)))
    inventory = getattr(args, "inventory", None)
    if inventory and not os.path.exists(inventory):
        raise FileNotFoundError(f"inventory {inventory} does not exist (-i is read from {os.getcwd()})")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    if argv is None and "_ARGCOMPLETE" in os.environ:  # the shell asks for completions
        # Only then: a host in pull mode runs `python3 -m govbaseline pull-result` with Debian's packages.
        try:
            import argcomplete
        except ModuleNotFoundError:
            return 0
        argcomplete.autocomplete(parser)
    args = parser.parse_args(argv)
    try:
        _absolute_paths(args)
        if hasattr(args, "vault_id"):
            from govbaseline import vault

            vault.configure(args.vault_id, args.vault_password_file, args.ask_vault_pass)
        code = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows here, not in Python's own flush at exit
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`govbaseline controls | head`): no traceback, and no second error when
        # Python flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError) as exc:
        # bad input (a value, a path, an extra not installed): refused before anything ran
        print(f"govbaseline: {exc}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError) as exc:  # a run that started and could not finish
        print(f"govbaseline: failed: {exc}", file=sys.stderr)
        return 1
