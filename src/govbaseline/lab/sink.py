"""The lab's sink host: receives what the baseline sends out, so tests can see it arrive.

Runs inside the lab sink host (copied there by ``govbaseline lab up``), under Debian's python3
with Debian's ``python3-aiosmtpd``, not in the project venv:

- SMTP on port 25 (STARTTLS required, with the lab CA's certificate): every message is stored as
  ``<spool>/mail/<time>-<n>.eml`` with the envelope recipients in an ``X-Sink-Rcpt`` header;
- HTTP on port 8025: every POST body (the alert webhook) is stored as ``<spool>/webhook/<time>-<n>.json``;
  a GET of ``/files/<name>`` serves ``<spool>/files/<name>`` (the lab's ClamAV signature mirror);
- HTTPS on port 8443 (the lab CA's certificate): ``<spool>/git`` read-only, git's "dumb" HTTP
  protocol, as the organisation's repository that hosts in pull mode clone.

Nothing here is part of what the baseline installs on a real server.
"""

from __future__ import annotations

import functools
import http.server
import itertools
import ssl
import sys
import threading
import time
from pathlib import Path
from typing import Any

SMTP_PORT = 25
# Written by `govbaseline lab up` from the lab CA; with them the sink requires STARTTLS.
CERT, KEY = "/etc/govbaseline-sink/cert.pem", "/etc/govbaseline-sink/key.pem"
WEBHOOK_PORT = 8025
GIT_PORT = 8443
_counter = itertools.count()


def _name(suffix: str) -> str:
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{next(_counter):05d}.{suffix}"


class MailHandler:
    def __init__(self, folder: Path):
        self.folder = folder

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        rcpt = ", ".join(envelope.rcpt_tos)
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode()
        path = self.folder / _name("eml")
        path.write_bytes(f"X-Sink-Rcpt: {rcpt}\r\nX-Sink-From: {envelope.mail_from}\r\n".encode() + data)
        return "250 Message accepted for delivery"


def webhook_handler(folder: Path, served: Path) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name = self.path.removeprefix("/files/")
            path = served / name
            if not self.path.startswith("/files/") or "/" in name or not path.is_file():
                self.send_error(404)
                return
            body = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Last-Modified", self.date_time_string(int(path.stat().st_mtime)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            auth = self.headers.get("Authorization", "")
            (folder / _name("json")).write_bytes(body)
            (folder / "last-authorization").write_text(auth)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    return Handler


class QuietFiles(http.server.SimpleHTTPRequestHandler):
    """Files of one folder, read-only (GET and HEAD only), without a line per request on stderr."""

    def log_message(self, *args: object) -> None:
        return


def main(spool: str) -> None:
    from aiosmtpd.controller import Controller  # type: ignore[import-not-found]  # Debian's, on the sink host

    root = Path(spool)
    for sub in ("mail", "webhook", "files"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    tls = None
    if Path(CERT).exists():
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(CERT, KEY)
    smtp = Controller(MailHandler(root / "mail"), hostname="0.0.0.0", port=SMTP_PORT,  # noqa: S104 - lab only
                      tls_context=tls, require_starttls=tls is not None)
    smtp.start()
    web = http.server.ThreadingHTTPServer(("0.0.0.0", WEBHOOK_PORT), webhook_handler(root / "webhook", root / "files"))  # noqa: S104
    threading.Thread(target=web.serve_forever, daemon=True).start()
    if tls is not None:
        (root / "git").mkdir(exist_ok=True)
        handler = functools.partial(QuietFiles, directory=str(root / "git"))
        repos = http.server.ThreadingHTTPServer(("0.0.0.0", GIT_PORT), handler)  # noqa: S104 - lab only
        served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        served.load_cert_chain(CERT, KEY)
        repos.socket = served.wrap_socket(repos.socket, server_side=True)
        threading.Thread(target=repos.serve_forever, daemon=True).start()
    print(f"sink: SMTP on {SMTP_PORT}, webhook on {WEBHOOK_PORT}, git on {GIT_PORT}, spool {root}", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/var/lib/govbaseline-sink")
