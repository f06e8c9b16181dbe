"""Pages people read and print: HTML from the Jinja2 templates in ``templates/``, and their PDF.

The verify report (``report.html.j2``) is rendered here; another report reuses ``environment()``
with a template of its own beside it. Autoescaping is on for every ``.html.j2`` template, so a
value read from a host (a message, a command's output, a file name) is always text, never markup.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from govbaseline.paths import COLLECTION_DIR

# Chromium's headless shell prints the PDF (Debian's chromium-headless-shell; the full `chromium`
# does the same). Chosen over WeasyPrint because it is the browser people open report.html in: the
# print CSS, the filter script and the layout are the ones a reader sees, with no second layout
# engine to keep in step, and the lab test that screenshots the report already installs it (apt,
# no Python dependency). It supports CSS @page margin boxes (Chromium 131 on), which carry the header.
PDF_RENDERERS = ("chromium-headless-shell", "chromium")
PDF_TIMEOUT = 180


class RendererMissing(RuntimeError):
    """No program that can print a page to PDF is installed."""


@cache
def environment() -> jinja2.Environment:
    """The templates of ``govbaseline/templates`` (shipped in the wheel as package data)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("govbaseline", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["css_string"] = css_string
    env.filters["anchor"] = anchor
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def css_string(value: Any) -> Markup:
    """A value as a CSS string literal for a ``<style>`` block (e.g. the printed header), where HTML
    escaping does not apply: quotes, backslashes and line ends escaped, and ``<`` too, so the text
    can never close the style element."""
    text = str(value)
    for char in ("\\", '"', "<", ">", "\n", "\r"):
        text = text.replace(char, f"\\{ord(char):x} ")
    return Markup(f'"{text}"')  # noqa: S704 - every character that could end the string or the element is escaped above


def anchor(value: Any) -> str:
    """An id for a page anchor: letters and digits kept, anything else a dash."""
    return "".join(ch if ch.isalnum() else "-" for ch in str(value))


@cache
def tool_version() -> str:
    try:
        return importlib.metadata.version("govbaseline")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@cache
def roles_commit() -> str:
    """Which roles this govbaseline applies: ``git describe`` of the collection where it is a git
    checkout (``-modified`` when its files differ from the commit), else the package version (a
    wheel has no history). A checkout without git installed says so rather than failing."""
    release = f"govbaseline {tool_version()} (package)"
    git = shutil.which("git")
    if git is None:
        return release

    def run(*args: str) -> str | None:
        try:
            proc = subprocess.run([git, "-C", str(COLLECTION_DIR), *args], capture_output=True, text=True,
                                  timeout=20, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    # Tracked here: a wheel installed into a venv inside some other checkout is not that checkout.
    if not run("ls-files", "--", "galaxy.yml"):
        return release
    described = run("describe", "--always", "--tags", "--abbrev=12")
    if not described:
        return release
    return described + ("-modified" if run("status", "--porcelain", "--", ".") else "")


def pdf_renderer() -> str:
    """The browser that prints PDFs, or RendererMissing saying how to install one."""
    for name in PDF_RENDERERS:
        found = shutil.which(name)
        if found:
            return found
    raise RendererMissing("--pdf needs a headless Chromium to print the report, and none is installed: "
                          "`apt-get install chromium-headless-shell` (scripts/setup.sh installs it)")


def write_pdf(page: str, pdf: Path) -> None:
    """Print an HTML page (its text) to ``pdf`` with headless Chromium: A4, the page's own @page
    header, backgrounds kept. Raises RendererMissing, or RuntimeError with the browser's output."""
    binary = pdf_renderer()
    with tempfile.TemporaryDirectory(prefix="govbaseline-pdf-") as tmp:
        source = Path(tmp) / "page.html"
        source.write_text(page, encoding="utf-8")
        target = Path(tmp) / "page.pdf"
        # --no-sandbox: Chromium's sandbox refuses to start as root (setup and CI run as root); the
        # page is our own file, with the inline script only. Chromium's own header and footer (the
        # file's path, its date) give way to the page's @page header.
        cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
               "--run-all-compositor-stages-before-draw", f"--user-data-dir={Path(tmp) / 'profile'}",
               f"--print-to-pdf={target}", source.as_uri()]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PDF_TIMEOUT, check=False)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"{binary} did not print the PDF within {PDF_TIMEOUT} s") from exc
        if proc.returncode != 0 or not target.exists() or target.stat().st_size == 0:
            raise RuntimeError(f"{binary} could not print the PDF (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
        pdf.write_bytes(target.read_bytes())
